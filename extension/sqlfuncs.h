/*-------------------------------------------------------------------------
 *
 * sqlfuncs.h
 *		What the views' functions share with those of other files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_SQLFUNCS_H
#define APS_SQLFUNCS_H

#include "postgres.h"

/* Shown in place of another user's statement text, plan or message. */
extern const char *const aps_no_privilege;

extern Datum aps_text_for_reader(const char *str, int src_encoding);

#endif /* APS_SQLFUNCS_H */
