/*-------------------------------------------------------------------------
 *
 * normalize.c
 *		Normalized statement text: every literal becomes $n.
 *
 * Literal values are sensitive (passwords, e-mail addresses, tokens), so no
 * path through this file may hand back a statement with a literal in it,
 * and none may raise an error into the application's statement.
 *
 * The core SQL scanner cuts the statement into tokens.  When the jumbler's
 * constant locations are known (at parse analysis) each of them must start
 * a token, and that token (with the number after a leading '-') is
 * replaced.  Without them (a cached plan whose entry was evicted) every
 * literal token is replaced instead.  The scanner depends on
 * standard_conforming_strings, which may have changed since the statement
 * was parsed (SET earlier in the same query string), so a scan that fails
 * or disagrees with the jumbler is retried with the other setting.  If
 * nothing works, the text is withheld.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/qunique.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
/* token codes; needs the two above first */
#include "parser/gram.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "normalize.h"

/* One token of the statement. */
typedef struct ApsToken
{
	int start; /* byte offset in the statement */
	int len;   /* byte length */
	int tok;   /* core scanner token code */
	int param; /* number of a $n token, else 0 */
} ApsToken;

/* A byte range to replace by the next $n. */
typedef struct ApsSpan
{
	int start;
	int len;
} ApsSpan;

static const char *const withheld =
	"<statement text withheld: it could not be normalized>";

/*
 * Cut text into tokens with the given standard_conforming_strings.
 * Returns false, having swallowed the error, if the scanner rejects the
 * text.  The scanner is a pure function of its input (it only allocates
 * memory in the current context), which is what makes catching its errors
 * without a subtransaction safe.
 */
void
aps_quiet(ApsQuiet *saved)
{
	saved->client_min_messages = client_min_messages;
	saved->log_min_messages = log_min_messages;
	saved->escape_string_warning = escape_string_warning;
	client_min_messages = ERROR;
	log_min_messages = ERROR;
	escape_string_warning = false;
}

void
aps_unquiet(const ApsQuiet *saved)
{
	client_min_messages = saved->client_min_messages;
	log_min_messages = saved->log_min_messages;
	escape_string_warning = saved->escape_string_warning;
}

static bool
lex_all(const char *text, bool scs, ApsToken **tokens, int *ntokens)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;
	volatile int  cap = 64;
	volatile int  n = 0;
	ApsToken *volatile toks = palloc(cap * sizeof(ApsToken));
	ApsQuiet quiet;

	aps_quiet(&quiet);
	PG_TRY();
	{
		core_yyscan_t	   scanner;
		core_yy_extra_type extra;
		core_YYSTYPE	   yylval;
		YYLTYPE			   yylloc;
		int				   tok;

		scanner = scanner_init(text, &extra, &ScanKeywords, ScanKeywordTokens);
		extra.standard_conforming_strings = scs;
		extra.escape_string_warning = false;
		extra.backslash_quote = BACKSLASH_QUOTE_ON;

		while ((tok = core_yylex(&yylval, &yylloc, scanner)) != 0)
		{
			if (n == cap)
			{
				cap *= 2;
				toks = repalloc(toks, cap * sizeof(ApsToken));
			}
			toks[n].start = yylloc;
			/* The scanner NUL-terminates the current token in its buffer. */
			toks[n].len = strlen(extra.scanbuf + yylloc);
			toks[n].tok = tok;
			toks[n].param = (tok == PARAM) ? yylval.ival : 0;
			n++;
		}
		scanner_finish(scanner);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();

	aps_unquiet(&quiet);
	*tokens = ok ? toks : NULL;
	*ntokens = ok ? n : 0;
	return ok;
}

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *) a;
	int y = *(const int *) b;

	return (x > y) - (x < y);
}

/*
 * Spans of the jumbler's constants (locs: sorted, distinct, relative to
 * text).  False if any constant does not start a token.
 */
static bool
spans_from_jumble(const char *text, bool scs, const int *locs, int nlocs,
				  ApsSpan *spans)
{
	ApsToken *toks;
	int		  ntoks;
	int		  t = 0;

	if (!lex_all(text, scs, &toks, &ntoks))
		return false;

	for (int i = 0; i < nlocs; i++)
	{
		int end;

		while (t < ntoks && toks[t].start < locs[i])
			t++;
		if (t == ntoks || toks[t].start != locs[i])
			return false;
		end = toks[t].start + toks[t].len;
		/* A negative number is one constant starting at the '-'. */
		if (toks[t].tok == '-' && t + 1 < ntoks)
			end = toks[t + 1].start + toks[t + 1].len;
		spans[i].start = locs[i];
		spans[i].len = end - locs[i];
	}
	return true;
}

/*
 * Spans of every literal token, and the highest $n already in the text.
 */
static bool
spans_from_tokens(const char *text, bool scs, ApsSpan **spans, int *nspans,
				  int *max_param)
{
	ApsToken *toks;
	int		  ntoks;
	int		  n = 0;

	if (!lex_all(text, scs, &toks, &ntoks))
		return false;

	*spans = palloc((ntoks + 1) * sizeof(ApsSpan));
	*max_param = 0;
	for (int t = 0; t < ntoks; t++)
	{
		switch (toks[t].tok)
		{
			case SCONST:
			case USCONST:
			case BCONST:
			case XCONST:
			case ICONST:
			case FCONST:
				(*spans)[n].start = toks[t].start;
				(*spans)[n].len = toks[t].len;
				n++;
				break;
			case PARAM:
				*max_param = Max(*max_param, toks[t].param);
				break;
			default:
				break;
		}
	}
	*nspans = n;
	return true;
}

/* text with each span replaced by $(first_param + 1), $(first_param + 2)... */
static char *
replace_spans(const char *text, int len, const ApsSpan *spans, int nspans,
			  int first_param, int *out_len)
{
	StringInfoData buf;
	int			   copied = 0;
	int			   param = first_param;

	initStringInfo(&buf);
	for (int i = 0; i < nspans; i++)
	{
		if (spans[i].start < copied)
			continue; /* overlaps the previous one */
		appendBinaryStringInfo(&buf, text + copied, spans[i].start - copied);
		appendStringInfo(&buf, "$%d", ++param);
		copied = spans[i].start + spans[i].len;
	}
	if (copied < len)
		appendBinaryStringInfo(&buf, text + copied, len - copied);
	*out_len = buf.len;
	return buf.data;
}

/*
 * Normalized text of the statement described by src, palloc'd in the
 * current memory context.  Never raises an error for any input text.
 */
char *
aps_normalize_query(const ApsTextSource *src, int *out_len)
{
	int				   location = src->location;
	int				   len = src->len;
	const char		  *start = CleanQuerytext(src->source, &location, &len);
	char			  *text = pnstrdup(start, len);
	bool			   scs_now = standard_conforming_strings;
	const JumbleState *jstate = src->jstate;

	if (jstate != NULL)
	{
		int		*locs = palloc((jstate->clocations_count + 1) * sizeof(int));
		ApsSpan *spans;
		int		 nlocs = 0;

		for (int i = 0; i < jstate->clocations_count; i++)
		{
			int rel = jstate->clocations[i].location - location;

			if (rel >= 0 && rel < len)
				locs[nlocs++] = rel;
		}
		if (nlocs == 0)
		{
			*out_len = len;
			return text; /* the jumbler saw no constant */
		}
		qsort(locs, nlocs, sizeof(int), cmp_int);
		nlocs = qunique(locs, nlocs, sizeof(int), cmp_int);
		spans = palloc(nlocs * sizeof(ApsSpan));

		if (spans_from_jumble(text, scs_now, locs, nlocs, spans) ||
			spans_from_jumble(text, !scs_now, locs, nlocs, spans))
			return replace_spans(text, len, spans, nlocs,
								 jstate->highest_extern_param_id, out_len);
	}

	/* No (usable) constant locations: replace every literal token. */
	{
		ApsSpan *spans;
		int		 nspans;
		int		 max_param;

		if (spans_from_tokens(text, scs_now, &spans, &nspans, &max_param) ||
			spans_from_tokens(text, !scs_now, &spans, &nspans, &max_param))
			return replace_spans(text, len, spans, nspans, max_param, out_len);
	}

	*out_len = strlen(withheld);
	return pstrdup(withheld);
}

/*
 * Bounds (*location, *len) of the statement of a query string of several
 * statements that holds byte offset: from after the top-level ';' before
 * it to the ';' after it (or the end).  False, bounds untouched, if the
 * scanner rejects the text under both settings of
 * standard_conforming_strings.  A ';' inside a BEGIN ATOMIC body counts as
 * a boundary too: the scanner does not know the grammar.
 */
bool
aps_statement_at(const char *text, int offset, int *location, int *len)
{
	ApsToken *toks;
	int		  ntoks;
	int		  start = 0;
	int		  end = strlen(text);

	if (!lex_all(text, standard_conforming_strings, &toks, &ntoks) &&
		!lex_all(text, !standard_conforming_strings, &toks, &ntoks))
		return false;
	for (int t = 0; t < ntoks; t++)
	{
		if (toks[t].tok != ';')
			continue;
		if (toks[t].start < offset)
			start = toks[t].start + 1;
		else
		{
			end = toks[t].start;
			break;
		}
	}
	*location = start;
	*len = end - start;
	return true;
}
