/*-------------------------------------------------------------------------
 *
 * sample.h
 *		The representative run of a statement, kept for re-planning.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_SAMPLE_H
#define APS_SAMPLE_H

#include "executor/execdesc.h"

#include "evidence.h"

extern void aps_sample_make(QueryDesc *qd, const char *src, int loc, int len,
							ApsSample *s);

#endif /* APS_SAMPLE_H */
