/*-------------------------------------------------------------------------
 *
 * normalize.h
 *		Turn a statement's text into its normalized form ($n for constants).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_NORMALIZE_H
#define APS_NORMALIZE_H

#include "compat.h"

/* Where a statement's text comes from; jstate may be NULL. */
typedef struct ApsTextSource
{
	const char		  *source;	 /* the whole query string */
	int				   location; /* statement start in it, -1 if unknown */
	int				   len;		 /* statement length, 0 for "to the end" */
	const JumbleState *jstate;	 /* constant locations, if known */
} ApsTextSource;

extern char *aps_normalize_query(const ApsTextSource *src, int *out_len);

#endif /* APS_NORMALIZE_H */
