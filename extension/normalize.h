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

extern char *aps_statement_text(const char *source, int location, int len,
								int *out_len);
extern char *aps_normalize_query(const char *source, int location, int len,
								 const JumbleState *jstate, int *out_len);

#endif /* APS_NORMALIZE_H */
