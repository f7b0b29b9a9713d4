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

/*
 * Messages silenced while apiscale scans or parses a statement's text
 * again: the client saw the scanner's notices and warnings (a truncated
 * identifier, a nonstandard backslash) the first time.
 */
typedef struct ApsQuiet
{
	int	 client_min_messages;
	int	 log_min_messages;
	bool escape_string_warning;
} ApsQuiet;

extern char *aps_normalize_query(const ApsTextSource *src, int *out_len);
extern bool	 aps_statement_at(const char *text, int offset, int *location,
							  int *len);
extern void	 aps_quiet(ApsQuiet *saved);
extern void	 aps_unquiet(const ApsQuiet *saved);

#endif /* APS_NORMALIZE_H */
