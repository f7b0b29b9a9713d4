/*-------------------------------------------------------------------------
 *
 * normalize.c
 *		Normalized statement text from the core query jumbling.
 *
 * The core jumbler (compute_query_id, switched on by EnableQueryId) records
 * where each constant of a statement starts, but not how long it is.  We run
 * the core SQL scanner over the statement to find each constant's token and
 * replace it by $n, numbering after the highest $n the statement already
 * uses.  The result is what apiscale.queries shows: literal values never
 * reach the views.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "parser/scanner.h"

#include "normalize.h"

/*
 * Copy of one statement out of a (possibly multi-statement) source string,
 * with surrounding white space and the trailing semicolon removed.
 * Allocated in CurrentMemoryContext.
 */
char *
aps_statement_text(const char *source, int location, int len, int *out_len)
{
	const char *start = CleanQuerytext(source, &location, &len);

	*out_len = len;
	return pnstrdup(start, len);
}

static int
cmp_location(const void *a, const void *b)
{
	int la = ((const LocationLen *) a)->location;
	int lb = ((const LocationLen *) b)->location;

	return (la > lb) - (la < lb);
}

/*
 * Fill in the length of each constant in locs[] (sorted by location,
 * relative to "text"), using the core scanner.  A constant whose token
 * cannot be found keeps length -1 and is left as it is.
 */
static void
measure_constants(const char *text, LocationLen *locs, int nlocs)
{
	core_yyscan_t	   scanner;
	core_yy_extra_type extra;
	core_YYSTYPE	   yylval;
	YYLTYPE			   yylloc = -1; /* start of the token last read */
	int				   tok = -1;	/* that token; 0 at end of input */
	int				   last = -1;

	scanner = scanner_init(text, &extra, &ScanKeywords, ScanKeywordTokens);
	/* Scan as the server would, but never emit warnings from here. */
	extra.escape_string_warning = false;

	for (int i = 0; i < nlocs; i++)
	{
		int loc = locs[i].location;

		locs[i].length = -1;
		if (loc <= last)
			continue; /* duplicate location */

		while (tok != 0 && yylloc < loc)
			tok = core_yylex(&yylval, &yylloc, scanner);
		if (tok == 0)
			break;
		if (yylloc != loc)
			continue; /* the scanner disagrees: leave it alone */

		/*
		 * The scanner NUL-terminates the current token inside its buffer, so
		 * strlen gives its length.  A negative number was folded into one
		 * constant by the grammar and starts at the '-': take the number
		 * that follows too.
		 */
		if (tok == '-')
		{
			tok = core_yylex(&yylval, &yylloc, scanner);
			if (tok == 0)
				break;
		}
		locs[i].length = yylloc + strlen(extra.scanbuf + yylloc) - loc;
		last = loc;
	}

	scanner_finish(scanner);
}

/*
 * Normalized text of the statement at [location, location + len) of
 * source: every constant recorded by the jumbler becomes $n.  Falls back to
 * the plain statement text when there is nothing to replace.  Allocated in
 * CurrentMemoryContext.
 */
char *
aps_normalize_query(const char *source, int location, int len,
					const JumbleState *jstate, int *out_len)
{
	const char	  *text;
	LocationLen	  *locs;
	int			   nlocs = 0;
	StringInfoData buf;
	int			   copied = 0;
	int			   param = jstate->highest_extern_param_id;

	text = CleanQuerytext(source, &location, &len);
	if (jstate->clocations_count == 0)
	{
		*out_len = len;
		return pnstrdup(text, len);
	}

	/* Work on a copy, relative to the cleaned statement, sorted. */
	locs = palloc(jstate->clocations_count * sizeof(LocationLen));
	for (int i = 0; i < jstate->clocations_count; i++)
	{
		int rel = jstate->clocations[i].location - location;

		if (rel >= 0 && rel < len)
			locs[nlocs++].location = rel;
	}
	qsort(locs, nlocs, sizeof(LocationLen), cmp_location);

	/* The scanner wants a NUL-terminated string of just this statement. */
	text = pnstrdup(text, len);
	measure_constants(text, locs, nlocs);

	initStringInfo(&buf);
	for (int i = 0; i < nlocs; i++)
	{
		int loc = locs[i].location;

		if (locs[i].length < 0 || loc < copied)
			continue;
		appendBinaryStringInfo(&buf, text + copied, loc - copied);
		appendStringInfo(&buf, "$%d", ++param);
		copied = loc + locs[i].length;
	}
	if (copied < len)
		appendBinaryStringInfo(&buf, text + copied, len - copied);

	pfree(locs);
	*out_len = buf.len;
	return buf.data;
}
