/*
 * session.c
 *		What a client's session looks like to the server it borrows.
 *
 * In transaction pooling a client runs each transaction on whichever
 * server is free, so two things must be handled:
 *
 * Settings.  client_encoding, DateStyle, TimeZone, IntervalStyle,
 * standard_conforming_strings and application_name (the "tracked"
 * parameters, which the server reports with ParameterStatus) follow each
 * client: the pooler knows each server's values and each client's, and
 * sets the server's before the client's transaction runs.  Settings given
 * in the start-up packet (other parameters, options=-c name=value) follow
 * the client the same way; a server that ran another client's settings has
 * them RESET first.
 *
 * Session state.  Some commands leave state on the server that outlives
 * the transaction: LISTEN, PREPARE in SQL, WITH HOLD cursors, temporary
 * tables, SET of an untracked setting, session advisory locks.  They are
 * recognised from the command tag the server sends, helped by a few words
 * of the statement's text (session_keywords), and the client is then
 * pinned to its server until the state is gone (DISCARD ALL, UNLISTEN *,
 * CLOSE ALL, ...) or the client leaves.  This sees commands, not
 * functions: set_config() or a function that creates a temporary table is
 * not noticed; see docs/pooler.md.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "intern.h"
#include "log.h"
#include "session.h"

static const char *const tracked[] = {
	"application_name",
	"client_encoding",
	"DateStyle",
	"IntervalStyle",
	"standard_conforming_strings",
	"TimeZone",
};
#define N_TRACKED (sizeof(tracked) / sizeof(tracked[0]))

/*
 * Could a and b be equal but for case?  Only if their first bytes are, and
 * then they are equal after | 0x20 (a few other pairs are too, such as '@'
 * and '`': strcasecmp decides).  A filter for the loops below, which run
 * for each of a dozen parameters at every login and would otherwise call
 * strcasecmp for most pairs.
 */
static inline bool
same_first_letter(const char *a, const char *b)
{
	return (a[0] | 0x20) == (b[0] | 0x20);
}

/* The canonical spelling of a tracked parameter, or NULL. */
const char *
session_tracked_name(const char *name)
{
	for (size_t i = 0; i < N_TRACKED; i++)
	{
		if (same_first_letter(name, tracked[i]) &&
			strcasecmp(name, tracked[i]) == 0)
			return tracked[i];
	}
	return NULL;
}

/*
 * What a character starts, for the scanner's dispatch: one table look-up
 * and one jump per token rather than a chain of tests.
 */
enum
{
	CK_OTHER,  /* punctuation: a token of its own */
	CK_WORD,   /* an identifier or keyword */
	CK_SPACE,  /* white space */
	CK_DIGIT,  /* a number */
	CK_QUOTE,  /* ' or " */
	CK_DASH,   /* -, or -- a comment */
	CK_SLASH,  /* /, or a block comment */
	CK_DOLLAR, /* $, a parameter or a dollar quote */
	CK_END	   /* ; or the end of the text */
};

static const uint8_t ch_kind[256] = {
	['a' ... 'z'] = CK_WORD,   ['A' ... 'Z'] = CK_WORD,	 ['_'] = CK_WORD,
	[0x80 ... 0xff] = CK_WORD, [' '] = CK_SPACE,		 ['\t'] = CK_SPACE,
	['\n'] = CK_SPACE,		   ['\r'] = CK_SPACE,		 ['\f'] = CK_SPACE,
	['\v'] = CK_SPACE,		   ['0' ... '9'] = CK_DIGIT, ['\''] = CK_QUOTE,
	['"'] = CK_QUOTE,		   ['-'] = CK_DASH,			 ['/'] = CK_SLASH,
	['$'] = CK_DOLLAR,		   [';'] = CK_END,			 ['\0'] = CK_END,
};

/*
 * Character classes of the SQL scanner, as PostgreSQL's lexer has them:
 * bytes from 0x80 are letters.  A table, not <ctype.h>: the scanner reads
 * every byte of every query.
 */
#define CH_START 0x01 /* starts an identifier */
#define CH_CONT	 0x02 /* continues one */
#define CH_SPACE 0x04 /* white space */
#define CH_KW	 0x08 /* first letter of a word that matters anywhere */
#define CH_SPECIAL                                                            \
	0x10 /* may start a quote, a comment, a dollar quote, a statement */

#define CH_LETTER (CH_START | CH_CONT)
#define CH_KWLET  (CH_START | CH_CONT | CH_KW)

static const uint8_t ch_class[256] = {
	/* letters; c d h i o p t start keyword_table's words and ON COMMIT DROP */
	['a' ... 'b'] = CH_LETTER,	['c' ... 'd'] = CH_KWLET,
	['e' ... 'g'] = CH_LETTER,	['h' ... 'i'] = CH_KWLET,
	['j' ... 'n'] = CH_LETTER,	['o' ... 'p'] = CH_KWLET,
	['q' ... 's'] = CH_LETTER,	['t'] = CH_KWLET,
	['u' ... 'z'] = CH_LETTER,	['A' ... 'B'] = CH_LETTER,
	['C' ... 'D'] = CH_KWLET,	['E' ... 'G'] = CH_LETTER,
	['H' ... 'I'] = CH_KWLET,	['J' ... 'N'] = CH_LETTER,
	['O' ... 'P'] = CH_KWLET,	['Q' ... 'S'] = CH_LETTER,
	['T'] = CH_KWLET,			['U' ... 'Z'] = CH_LETTER,
	['_'] = CH_START | CH_CONT, [0x80 ... 0xff] = CH_START | CH_CONT,
	['0' ... '9'] = CH_CONT,	['$'] = CH_CONT | CH_SPECIAL,
	['\''] = CH_SPECIAL,		['"'] = CH_SPECIAL,
	['-'] = CH_SPECIAL,			['/'] = CH_SPECIAL,
	[';'] = CH_SPECIAL,			['\0'] = CH_SPECIAL,
	[' '] = CH_SPACE,			['\t'] = CH_SPACE,
	['\n'] = CH_SPACE,			['\r'] = CH_SPACE,
	['\f'] = CH_SPACE,			['\v'] = CH_SPACE,
};

static inline bool
ident_start(char ch)
{
	return (ch_class[(unsigned char) ch] & CH_START) != 0;
}

static inline bool
ident_cont(char ch)
{
	return (ch_class[(unsigned char) ch] & CH_CONT) != 0;
}

/*
 * Past the identifier characters that follow p (p itself is one): four at
 * a time, as most of a query's bytes are in words.
 */
static inline const char *
skip_ident(const char *p)
{
	for (;;)
	{
		if (!ident_cont(p[1]))
			return p + 1;
		if (!ident_cont(p[2]))
			return p + 2;
		if (!ident_cont(p[3]))
			return p + 3;
		if (!ident_cont(p[4]))
			return p + 4;
		p += 4;
	}
}

static bool
word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(w, lit, n) == 0;
}

/* The words that mean something anywhere, by length; all lower case. */
static const struct
{
	const char *word;
	uint8_t		len;
	uint32_t	kw;
} keyword_table[] = {
	{"temp", 4, KW_TEMP},
	{"hold", 4, KW_HOLD},
	{"into", 4, KW_CREATE_INTO},
	{"create", 6, KW_CREATE_INTO}, /* first word only: see below */
	{"pg_temp", 7, KW_TEMP},
	{"temporary", 9, KW_TEMP},
	{"pg_advisory_lock", 16, KW_ADVLOCK},
	{"pg_try_advisory_lock", 20, KW_ADVLOCK},
	{"pg_advisory_unlock_all", 22, KW_UNLOCK_ALL},
	{"pg_advisory_lock_shared", 23, KW_ADVLOCK},
	{"pg_try_advisory_lock_shared", 27, KW_ADVLOCK},
};

/*
 * Could the word w (n bytes) be in keyword_table?  Inline, for the words
 * that are not: nearly all of them.
 */
static inline bool
word_may_be_keyword(const char *w, size_t n)
{
	if (n < 4 || n > 27 || !(ch_class[(unsigned char) w[0]] & CH_KW))
		return false;
	/* pg_temp and the advisory lock functions; not pgbench_accounts */
	if ((w[0] | 0x20) == 'p')
		return w[2] == '_' && (w[1] | 0x20) == 'g';
	return true;
}

/*
 * Follow ON COMMIT DROP word by word (state in *on_commit: 0, then 1 after
 * ON, 2 after COMMIT): a temporary table so made ends with the
 * transaction, and the statement gets KW_COMMIT_DROP.
 */
static inline uint32_t
on_commit_drop(const char *w, size_t len, int *on_commit)
{
	if (word_is(w, len, "on"))
		*on_commit = 1;
	else if (*on_commit == 1 && word_is(w, len, "commit"))
		*on_commit = 2;
	else if (*on_commit == 2 && word_is(w, len, "drop"))
	{
		*on_commit = 0;
		return KW_COMMIT_DROP;
	}
	else
		*on_commit = 0;
	return 0;
}

/*
 * The KW_ bit of one word, or 0.  It runs for every word of every query:
 * the length and first letter rule out nearly all entries before any
 * comparison of the whole word.
 */
static uint32_t
word_keyword(const char *w, size_t n, bool first)
{
	char c0;

	if (n < 4 || n > 27)
		return 0;
	/* the table's first letters: most words stop here */
	switch (w[0])
	{
		case 't':
		case 'T':
		case 'h':
		case 'H':
		case 'i':
		case 'I':
		case 'c':
		case 'C':
			break;
		case 'p':
		case 'P':
			/* pg_temp and the advisory lock functions */
			if (w[2] != '_' || (w[1] != 'g' && w[1] != 'G'))
				return 0;
			break;
		default:
			return 0;
	}
	c0 = (char) tolower((unsigned char) w[0]);
	for (size_t i = 0; i < sizeof(keyword_table) / sizeof(keyword_table[0]);
		 i++)
	{
		if (keyword_table[i].len > n)
			break;
		if (keyword_table[i].len == n && keyword_table[i].word[0] == c0 &&
			strncasecmp(w, keyword_table[i].word, n) == 0)
		{
			if (keyword_table[i].kw == KW_CREATE_INTO && c0 == 'c' && !first)
				return 0;
			return keyword_table[i].kw;
		}
	}
	return 0;
}

/*
 * A token among the first of a statement, kept for the statements read by
 * position (SET, RESET, UNLISTEN, DEALLOCATE, PREPARE).
 */
typedef struct Token
{
	char		kind; /* 'w' word, 'q' "name", 'u' U&"name", 's' literal,
					   * 'o' any other character */
	const char *p;	  /* w, o: the text; q, u: after the opening quote */
	size_t		len;  /* q, u: up to the closing quote, raw */
} Token;

#define LEAD_TOKENS 8

/* Is t the word w (any case), or the quoted name w (any case, as GUCs)? */
static bool
tok_is(const Token *t, const char *w)
{
	return (t->kind == 'w' || t->kind == 'q') && word_is(t->p, t->len, w);
}

/* The same, and not the first part of a dotted name (SET local.x = 1). */
static bool
tok_alone(const Token *t, const char *w)
{
	return tok_is(t, w) && !(t[1].kind == 'o' && t[1].p[0] == '.');
}

/* Does hex digit text of n characters start at p?  Its value in *out. */
static bool
hex_at(const char *p, size_t avail, int n, unsigned *out)
{
	unsigned v = 0;

	if ((size_t) n > avail)
		return false;
	for (int i = 0; i < n; i++)
	{
		if (!isxdigit((unsigned char) p[i]))
			return false;
		v = v * 16 +
			(unsigned) (isdigit((unsigned char) p[i])
							? p[i] - '0'
							: tolower((unsigned char) p[i]) - 'a' + 10);
	}
	*out = v;
	return true;
}

/*
 * Could t name one of the pooler's "_aps_" statements?  A U&"..." name is
 * decoded (\XXXX, \+XXXXXX); one with its own UESCAPE counts as yes, as
 * does one that cannot be decoded: a client has no reason to write either.
 */
static bool
tok_pooler_name(const Token *t)
{
	static const char prefix[] = "_aps_";
	char			  first[5];
	size_t			  n = 0;

	if (t->kind == 'w')
		return t->len >= 5 && strncasecmp(t->p, prefix, 5) == 0;
	if (t->kind == 'q')
		return t->len >= 5 && strncmp(t->p, prefix, 5) == 0;
	if (t->kind != 'u')
		return false;
	if (tok_is(t + 1, "uescape"))
		return true;
	for (size_t i = 0; i < t->len && n < 5;)
	{
		unsigned code;

		if (t->p[i] != '\\')
		{
			first[n++] = t->p[i++];
			continue;
		}
		if (i + 1 < t->len && t->p[i + 1] == '\\')
		{
			first[n++] = '\\';
			i += 2;
		}
		else if (hex_at(t->p + i + 1, t->len - i - 1, 4, &code))
		{
			first[n++] = code < 0x80 ? (char) code : '\x80';
			i += 5;
		}
		else if (i + 1 < t->len && t->p[i + 1] == '+' &&
				 hex_at(t->p + i + 2, t->len - i - 2, 6, &code))
		{
			first[n++] = code < 0x80 ? (char) code : '\x80';
			i += 8;
		}
		else
			return true;
	}
	return n == 5 && memcmp(first, prefix, 5) == 0;
}

/* The value of SET ... [TO | =] value at t: NONE or DEFAULT? */
static bool
tok_resets(const Token *t)
{
	if (t->kind == 'o' && t->p[0] == '=')
		t++;
	else if (tok_is(t, "to"))
		t++;
	return (t->kind == 'w' && (word_is(t->p, t->len, "none") ||
							   word_is(t->p, t->len, "default"))) ||
		   (t->kind == 's' && t->len == 4 && strncmp(t->p, "none", 4) == 0);
}

/*
 * The KW_ bits of a statement read by position, from its first tokens
 * (t[n] and beyond are zeroed, so looking one past the end is safe).
 * Anything not recognised gets no bit: a SET then pins, a RESET unpins
 * nothing.
 */
static uint32_t
lead_keywords(const Token *t, int n)
{
	uint32_t kw = 0;
	int		 i = 1;

	if (n == 0 || t[0].kind != 'w')
		return 0;
	if (word_is(t[0].p, t[0].len, "set"))
	{
		if (tok_alone(&t[1], "local"))
		{
			kw |= KW_LOCAL;
			i = 2;
		}
		else if (tok_alone(&t[1], "session") &&
				 !tok_is(&t[2], "authorization") &&
				 !tok_is(&t[2], "characteristics"))
			i = 2;
		if (tok_is(&t[i], "session") && tok_is(&t[i + 1], "authorization"))
			kw |= KW_SESSION_AUTH |
				  (tok_is(&t[i + 2], "default") ? KW_TO_DEFAULT : 0);
		else if (tok_is(&t[i], "session") &&
				 tok_is(&t[i + 1], "characteristics"))
			kw |= KW_CHARACTERISTICS;
		else if (tok_alone(&t[i], "transaction"))
			kw |= KW_TRANSACTION;
		else if (tok_alone(&t[i], "role"))
			kw |= KW_ROLE | (tok_resets(&t[i + 1]) ? KW_TO_DEFAULT : 0);
		else if (tok_alone(&t[i], "session_authorization"))
			kw |=
				KW_SESSION_AUTH | (tok_resets(&t[i + 1]) ? KW_TO_DEFAULT : 0);
		else if ((tok_is(&t[i], "time") && tok_is(&t[i + 1], "zone")) ||
				 tok_alone(&t[i], "names"))
			kw |= KW_TRACKED;
		else if (t[i].kind == 'w' || t[i].kind == 'q')
		{
			char name[32];

			if (t[i].len < sizeof(name) &&
				!(t[i + 1].kind == 'o' && t[i + 1].p[0] == '.'))
			{
				memcpy(name, t[i].p, t[i].len);
				name[t[i].len] = '\0';
				if (session_tracked_name(name))
					kw |= KW_TRACKED;
			}
		}
	}
	else if (word_is(t[0].p, t[0].len, "reset"))
	{
		if (t[1].kind == 'w' && tok_alone(&t[1], "all"))
			kw |= KW_ALL;
		else if (tok_alone(&t[1], "role"))
			kw |= KW_ROLE;
		else if ((tok_is(&t[1], "session") &&
				  tok_is(&t[2], "authorization")) ||
				 tok_alone(&t[1], "session_authorization"))
			kw |= KW_SESSION_AUTH;
	}
	else if (word_is(t[0].p, t[0].len, "unlisten"))
	{
		if (t[1].kind == 'o' && t[1].p[0] == '*')
			kw |= KW_STAR;
	}
	else if (word_is(t[0].p, t[0].len, "deallocate"))
	{
		if (tok_is(&t[1], "prepare"))
			i = 2;
		if (tok_pooler_name(&t[i]))
			kw |= KW_POOLER_DEALLOC;
	}
	else if (word_is(t[0].p, t[0].len, "prepare"))
	{
		if (tok_pooler_name(&t[1]))
			kw |= KW_POOLER_PREPARE;
	}
	return kw;
}

/* Is t the first word of a statement lead_keywords reads by position? */
static inline bool
reads_by_position(const Token *t)
{
	switch (t->len)
	{
		case 3:
			return word_is(t->p, 3, "set");
		case 5:
			return word_is(t->p, 5, "reset");
		case 7:
			return word_is(t->p, 7, "prepare");
		case 8:
			return word_is(t->p, 8, "unlisten");
		case 10:
			return word_is(t->p, 10, "deallocate");
		default:
			return false;
	}
}

/*
 * Keep a token among the first of the statement: the first always, the
 * rest only when the first word makes it a statement read by position.
 */
#define LEAD(kind, p, len)                                                    \
	do                                                                        \
	{                                                                         \
		if (nlead == 0 || positional)                                         \
			lead_add(lead, &nlead, (kind), (p), (len));                       \
	} while (0)

/* Keep tok among the first tokens of the statement. */
static void
lead_add(Token *lead, int *n, char kind, const char *p, size_t len)
{
	if (*n >= LEAD_TOKENS)
		return;
	lead[*n].kind = kind;
	lead[*n].p = p;
	lead[*n].len = len;
	(*n)++;
}

/*
 * Past a quoted string or name that starts at p (at its quote): doubled
 * quotes stay inside; with escapes, so does anything after a backslash.
 * Sets *backslash, if given, when a backslash was seen.
 */
static const char *
skip_quoted(const char *p, bool escapes, bool *backslash)
{
	char q = *p++;

	while (*p)
	{
		if (*p == '\\')
		{
			if (backslash)
				*backslash = true;
			if (escapes && p[1])
			{
				p += 2;
				continue;
			}
		}
		if (*p == q)
		{
			if (p[1] != q)
				break;
			p++;
		}
		p++;
	}
	return p;
}

/*
 * The end of a dollar-quoted string whose opening $tag$ is p..p+taglen, or
 * the end of the text if it is not closed.
 */
static const char *
skip_dollar(const char *p, size_t taglen)
{
	for (const char *q = p + taglen; *q; q++)
	{
		if (*q == '$' && strncmp(q, p, taglen) == 0)
			return q + taglen;
	}
	return p + strlen(p);
}

/*
 * The KW_ words of each statement of sql (separated by semicolons), outside
 * string literals, quoted identifiers and comments: out[i] for the i-th
 * statement that has any word (empty statements get no CommandComplete).
 * Statements past max are counted into out[max - 1].  Returns how many
 * statements there are, at most max.  Cheap: one pass, no allocation (it
 * runs for every query).
 *
 * The text is split as PostgreSQL's lexer splits it (nested comments,
 * dollar quotes with any tag, E'' strings), so that no statement can hide
 * from it.  escapes: standard_conforming_strings is off, backslashes
 * escape in '...' too; the caller that does not know scans with false and
 * again with true if KW_BACKSLASH comes back.
 */
int
session_statement_keywords_full(const char *sql, bool escapes, uint32_t *out,
								int max)
{
	const char *p = sql;
	uint32_t	kw = 0;
	int			n = 0;
	bool		words = false; /* the current statement has a word */
	int			on_commit = 0; /* words of "ON COMMIT DROP" seen in a row */
	Token		lead[LEAD_TOKENS + 3];
	int			nlead = 0;
	bool		positional = false; /* its first word is read by position */
	bool		backslash = false;

	for (;;)
	{
		char ch = *p;

		switch (ch_kind[(unsigned char) ch])
		{
			case CK_WORD:
			{
				const char *w = p;
				size_t		len;

				p = skip_ident(p);
				len = (size_t) (p - w);
				if (!words)
				{
					/* the first word: which kind of statement */
					words = true;
					lead_add(lead, &nlead, 'w', w, len);
					positional = reads_by_position(&lead[0]);
					kw |= word_keyword(w, len, true);
					on_commit = 0;
					break;
				}
				if (positional)
					lead_add(lead, &nlead, 'w', w, len);
				/* most words start with a letter no keyword starts with */
				if (!(ch_class[(unsigned char) *w] & CH_KW))
				{
					on_commit = 0;
					break;
				}
				kw |= word_keyword(w, len, false);
				kw |= on_commit_drop(w, len, &on_commit);
				break;
			}
			case CK_SPACE:
				do
					p++;
				while (ch_kind[(unsigned char) *p] == CK_SPACE);
				break;
			case CK_DIGIT:
			{
				/* a number: its digits (and a dot) are no words */
				const char *start = p;

				while ((unsigned) (*p - '0') < 10 || *p == '.')
					p++;
				LEAD('o', start, 1);
				on_commit = 0;
				break;
			}
			case CK_QUOTE:
			{
				const char *start = p;
				char		prefix = 0; /* E, B, X, N... glued to the quote */
				bool		unicode = false; /* U&'...' or U&"..." */
				char		kind = ch == '"' ? 'q' : 's';
				bool		esc = false;

				if (p > sql && ident_start(p[-1]) &&
					(p - 1 == sql || !ident_cont(p[-2])))
					prefix = (char) tolower((unsigned char) p[-1]);
				else if (p - 1 > sql && p[-1] == '&' &&
						 tolower((unsigned char) p[-2]) == 'u' &&
						 (p - 2 == sql || !ident_cont(p[-3])))
					unicode = true;
				/* the prefix is part of the string, not a word of its own */
				if (prefix && nlead > 0 && lead[nlead - 1].p == p - 1)
					nlead--;
				else if (unicode && nlead > 1 && lead[nlead - 2].p == p - 2)
					nlead -= 2;
				if (unicode && kind == 'q')
					kind = 'u';
				/* backslashes escape in E'' always, in plain '' if told */
				if (ch == '\'' && !unicode && prefix != 'b' && prefix != 'x')
					esc = prefix == 'e' || escapes;
				p = skip_quoted(p, esc,
								ch == '\'' && !esc && prefix != 'b' &&
										prefix != 'x' && !unicode
									? &backslash
									: NULL);
				LEAD(kind, start + 1, (size_t) (p - start - 1));
				if (*p)
					p++;
				on_commit = 0;
				break;
			}
			case CK_DASH:
				if (p[1] != '-')
					goto other;
				while (*p && *p != '\n')
					p++;
				break;
			case CK_SLASH:
			{
				int depth = 1; /* PostgreSQL's block comments nest */

				if (p[1] != '*')
					goto other;
				p += 2;
				while (*p && depth > 0)
				{
					if (p[0] == '/' && p[1] == '*')
					{
						depth++;
						p += 2;
					}
					else if (p[0] == '*' && p[1] == '/')
					{
						depth--;
						p += 2;
					}
					else
						p++;
				}
				break;
			}
			case CK_DOLLAR:
			{
				if (p[1] != '$' && !ident_start(p[1]))
					goto other;
				/* a dollar-quoted string, $tag$ ... $tag$, or a lone $ */
				const char *tag_end = p + 1;

				while (*tag_end != '$' && *tag_end && ident_cont(*tag_end))
					tag_end++;
				if (*tag_end == '$')
				{
					const char *start = p;

					p = skip_dollar(p, (size_t) (tag_end - p + 1));
					LEAD('s', start, (size_t) (p - start));
				}
				else
				{
					LEAD('o', p, 1);
					p++;
				}
				on_commit = 0;
				break;
			}
			case CK_END:
			{
				if (words && positional)
				{
					/* zeroed past the end: lead_keywords may look ahead */
					memset(&lead[nlead], 0,
						   sizeof(Token) * (size_t) (LEAD_TOKENS + 3 - nlead));
					kw |= lead_keywords(lead, nlead);
				}
				if (words)
				{
					if (n < max)
						out[n++] = kw;
					else
						out[max - 1] |= kw;
				}
				if (ch == '\0')
					break;
				kw = 0;
				words = false;
				nlead = 0;
				positional = false;
				on_commit = 0;
				p++;
				break;
			}
			default:
			other:
				LEAD('o', p, 1);
				on_commit = 0;
				p++;
				break;
		}
		if (ch == '\0')
			break;
	}
	if (backslash && !escapes && n > 0)
		out[0] |= KW_BACKSLASH;
	return n;
}

/*
 * session_statement_keywords_full for a statement of words, numbers,
 * operators and white space, with at most a semicolon at the end: the
 * same answer, from a loop with fewer things to tell apart.  -1 as soon as
 * the text turns out to be more than that (a quote, a dollar quote or
 * $name, a comment, a second statement), or when the statement is one read
 * by position (SET, RESET, ...): those take the full scan.
 */
static int
plain_statement_keywords(const char *sql, uint32_t *out)
{
	const char *p = sql;
	uint32_t	kw = 0;
	bool		words = false;
	int			on_commit = 0;

	for (;;)
	{
		unsigned char ch = (unsigned char) *p;
		uint8_t		  cls = ch_class[ch];
		const char	 *w;
		size_t		  len;

		if (!(cls & CH_START))
		{
			if (cls & CH_SPACE)
			{
				p++;
				continue;
			}
			if (cls & CH_SPECIAL)
			{
				if (ch == '\0')
					break;
				if (ch == ';')
				{
					while (ch_class[(unsigned char) *++p] & CH_SPACE)
						;
					if (*p != '\0')
						return -1;
					break;
				}
				if (ch == '-' || ch == '/')
				{
					if (p[1] == (ch == '-' ? '-' : '*'))
						return -1;
				}
				else if (ch == '$')
				{
					if (p[1] == '$' || ident_start(p[1]))
						return -1;
				}
				else
					return -1; /* a quote */
			}
			on_commit = 0;
			if ((unsigned) (ch - '0') < 10)
			{
				/* a number: its digits (and a dot) are no words */
				do
					p++;
				while ((unsigned) (*p - '0') < 10 || *p == '.');
			}
			else
				p++;
			continue;
		}
		w = p;
		p = skip_ident(p);
		len = (size_t) (p - w);
		if (!words)
		{
			Token first = {'w', w, len};

			if (reads_by_position(&first))
				return -1;
			words = true;
			if (word_may_be_keyword(w, len))
				kw |= word_keyword(w, len, true);
			continue;
		}
		if (!(cls & CH_KW))
		{
			on_commit = 0;
			continue;
		}
		if (word_may_be_keyword(w, len))
			kw |= word_keyword(w, len, false);
		kw |= on_commit_drop(w, len, &on_commit);
	}
	if (!words)
		return 0;
	out[0] = kw;
	return 1;
}

/*
 * The KW_ words of each statement of sql: see
 * session_statement_keywords_full.  Most queries an application sends are
 * one statement without quotes or comments; they take a shorter loop.
 */
int
session_statement_keywords(const char *sql, bool escapes, uint32_t *out,
						   int max)
{
	if (max > 0)
	{
		int n = plain_statement_keywords(sql, out);

		if (n >= 0)
			return n;
	}
	return session_statement_keywords_full(sql, escapes, out, max);
}

/* The KW_ words of all of sql's statements together. */
uint32_t
session_keywords(const char *sql, bool escapes)
{
	uint32_t one[1] = {0};

	session_statement_keywords(sql, escapes, one, 1);
	return one[0];
}

static bool
tag_is(const char *tag, const char *lit)
{
	return strcmp(tag, lit) == 0;
}

/*
 * What the command with this tag (and these keywords in its text) did to
 * the session.  Where the words do not say for sure, a command pins (state
 * made) rather than unpins (state gone): a pinned client costs a pool slot,
 * a wrong unpin hands one client's state to the next.
 */
void
session_tag_effect(const char *tag, uint32_t keywords, TagEffect *out)
{
	memset(out, 0, sizeof(*out));
	switch (tag[0])
	{
		case 'L':
			if (tag_is(tag, "LISTEN"))
				out->pin = PIN_LISTEN;
			break;
		case 'U':
			if (tag_is(tag, "UNLISTEN") && (keywords & KW_STAR))
				out->unpin = PIN_LISTEN;
			break;
		case 'P':
			if (tag_is(tag, "PREPARE"))
				out->pin = PIN_PREPARE;
			break;
		case 'D':
			if (tag_is(tag, "DEALLOCATE ALL"))
			{
				out->unpin = PIN_PREPARE;
				out->dealloc_all = true;
			}
			else if (tag_is(tag, "DECLARE CURSOR") && (keywords & KW_HOLD))
				out->pin = PIN_CURSOR;
			else if (tag_is(tag, "DISCARD ALL"))
			{
				out->unpin = 0xff;
				out->dealloc_all = true;
				out->reset = true;
			}
			else if (tag_is(tag, "DISCARD TEMP"))
				out->unpin = PIN_TEMP;
			break;
		case 'C':
			if (tag_is(tag, "CLOSE CURSOR ALL"))
				out->unpin = PIN_CURSOR;
			else if ((tag_is(tag, "CREATE TABLE") ||
					  tag_is(tag, "CREATE VIEW") ||
					  tag_is(tag, "CREATE SEQUENCE") ||
					  tag_is(tag, "CREATE TABLE AS")) &&
					 (keywords & (KW_TEMP | KW_COMMIT_DROP)) == KW_TEMP)
				out->pin = PIN_TEMP;
			break;
		case 'S':
			/* SELECT n, the commonest tag: nothing to do without keywords */
			if (tag[1] == 'E' && tag[2] == 'L')
			{
				if (keywords != 0 && strncmp(tag, "SELECT", 6) == 0)
				{
					/* CREATE TEMP TABLE ... AS, SELECT ... INTO TEMP */
					if ((keywords &
						 (KW_TEMP | KW_CREATE_INTO | KW_COMMIT_DROP)) ==
						(KW_TEMP | KW_CREATE_INTO))
						out->pin = PIN_TEMP;
					if (keywords & KW_ADVLOCK)
						out->pin |= PIN_ADVISORY;
					if (keywords & KW_UNLOCK_ALL)
						out->unpin = PIN_ADVISORY;
				}
			}
			else if (tag_is(tag, "SET"))
			{
				uint8_t what = PIN_SET;

				/*
				 * A tracked parameter follows the client anyway (SET
				 * TimeZone, SET TIME ZONE, SET NAMES); SET LOCAL and SET
				 * TRANSACTION end with the transaction, but SET SESSION
				 * CHARACTERISTICS AS TRANSACTION does not.  The identity
				 * (SET ROLE, SET SESSION AUTHORIZATION) has pins of its
				 * own, which RESET ALL does not remove.
				 */
				if (keywords & (KW_LOCAL | KW_TRACKED | KW_TRANSACTION))
					break;
				if (keywords & KW_ROLE)
					what = PIN_ROLE;
				else if (keywords & KW_SESSION_AUTH)
					what = PIN_AUTH;
				if (what != PIN_SET && (keywords & KW_TO_DEFAULT))
					out->unpin = what;
				else
					out->pin = what;
			}
			break;
		case 'R':
			if (tag_is(tag, "RESET"))
			{
				out->reset = true;
				if (keywords & KW_ALL)
					out->unpin = PIN_SET;
				else if (keywords & KW_ROLE)
					out->unpin = PIN_ROLE;
				else if (keywords & KW_SESSION_AUTH)
					out->unpin = PIN_AUTH;
			}
			break;
		default:
			break;
	}
}

/* "LISTEN, temporary table" for the pins set; "" if none. */
const char *
session_pins_to_str(uint8_t pins, char *buf, size_t len)
{
	static const struct
	{
		uint8_t		pin;
		const char *what;
	} names[] = {
		{PIN_LISTEN, "LISTEN"},
		{PIN_PREPARE, "PREPARE"},
		{PIN_CURSOR, "WITH HOLD cursor"},
		{PIN_TEMP, "temporary table"},
		{PIN_SET, "SET"},
		{PIN_ADVISORY, "advisory lock"},
		{PIN_ROLE, "SET ROLE"},
		{PIN_AUTH, "SET SESSION AUTHORIZATION"},
	};
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		if (pins & names[i].pin)
			used += (size_t) snprintf(buf + used, used < len ? len - used : 0,
									  "%s%s", used ? ", " : "", names[i].what);
	}
	return buf;
}

/* ---- settings ---- */

static int
settings_find(const Settings *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
	{
		if (same_first_letter(s->names[i], name) &&
			strcasecmp(s->names[i], name) == 0)
			return i;
	}
	return -1;
}

/*
 * Room for cap settings in s.  Names and values are in one block: an idle
 * client's settings cost one allocation, the strings being shared.
 */
void
settings_reserve(Settings *s, int cap)
{
	const char **names;

	if (cap <= s->cap)
		return;
	names = malloc(sizeof(char *) * 2 * (size_t) cap);
	if (names == NULL)
		fatal("out of memory");
	if (s->n)
	{
		memcpy(names, s->names, sizeof(char *) * (size_t) s->n);
		memcpy(names + cap, s->values, sizeof(char *) * (size_t) s->n);
	}
	free(s->names);
	s->names = names;
	s->values = names + cap;
	s->cap = cap;
}

/* Append a setting s does not have; name and value are s's references. */
static void
settings_append(Settings *s, const char *name, const char *value)
{
	s->fp_valid = false;
	/*
	 * Two at a time: a client has few settings (the six tracked parameters,
	 * one or two from its start-up packet), and every byte counts per idle
	 * client.  A login reserves what it adds at once (client_welcome).
	 */
	if (s->n == s->cap)
		settings_reserve(s, s->cap + 2);
	s->names[s->n] = name;
	s->values[s->n] = value;
	s->n++;
}

const char *
settings_get(const Settings *s, const char *name)
{
	int i = settings_find(s, name);

	return i < 0 ? NULL : s->values[i];
}

void
settings_set(Settings *s, const char *name, const char *value)
{
	int i = settings_find(s, name);

	if (i >= 0)
	{
		if (strcmp(s->values[i], value) != 0)
		{
			intern_put(s->values[i]);
			s->values[i] = intern_get(value);
			s->fp_valid = false;
		}
		return;
	}
	settings_append(s, intern_get(name), intern_get(value));
}

/*
 * Add name = value, both interned (intern.h), which s does not have yet:
 * the login path's settings_set, without the search and the hashing.
 */
void
settings_add(Settings *s, const char *name, const char *value)
{
	settings_append(s, intern_ref(name), intern_ref(value));
}

static void
settings_remove_at(Settings *s, int i)
{
	s->fp_valid = false;
	intern_put(s->names[i]);
	intern_put(s->values[i]);
	s->n--;
	s->names[i] = s->names[s->n];
	s->values[i] = s->values[s->n];
}

/* Forget every setting but the tracked parameters (after a RESET). */
void
settings_remove_untracked(Settings *s)
{
	for (int i = s->n - 1; i >= 0; i--)
	{
		if (session_tracked_name(s->names[i]) == NULL)
			settings_remove_at(s, i);
	}
}

void
settings_free(Settings *s)
{
	for (int i = 0; i < s->n; i++)
	{
		intern_put(s->names[i]);
		intern_put(s->values[i]);
	}
	free(s->names);
	memset(s, 0, sizeof(*s));
}

/*
 * A fingerprint of the whole list, whatever its order: equal lists have
 * equal fingerprints, so a server whose settings' fingerprint is the
 * client's needs no sync (checked for every transaction; the lists are
 * compared in full only when the fingerprints differ).  Names count in
 * lower case, as PostgreSQL compares them.
 */
uint64_t
settings_fingerprint_compute(Settings *s)
{
	{
		uint64_t fp = (uint64_t) s->n * 0x9e3779b97f4a7c15ULL;

		for (int i = 0; i < s->n; i++)
		{
			uint64_t h = 14695981039346656037ULL;

			for (const char *p = s->names[i]; *p; p++)
				h = (h ^ (uint8_t) tolower((unsigned char) *p)) *
					1099511628211ULL;
			h = (h ^ 0xff) * 1099511628211ULL;
			for (const char *p = s->values[i]; *p; p++)
				h = (h ^ (uint8_t) *p) * 1099511628211ULL;
			fp += h;
		}
		s->fp = fp;
		s->fp_valid = true;
	}
	return s->fp;
}

/* Append str to a growing malloc'd buffer. */
static void
buf_add(char **buf, size_t *len, size_t *cap, const char *str, size_t n)
{
	if (*len + n + 1 > *cap)
	{
		*cap = (*len + n + 1) * 2;
		*buf = realloc(*buf, *cap);
		if (*buf == NULL)
			fatal("out of memory");
	}
	memcpy(*buf + *len, str, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* Append str quoted: qc doubled; backslashes doubled too if escape. */
static void
buf_add_quoted(char **buf, size_t *len, size_t *cap, const char *str, char qc,
			   bool escape)
{
	buf_add(buf, len, cap, &qc, 1);
	for (const char *p = str; *p; p++)
	{
		if (*p == qc || (escape && *p == '\\'))
			buf_add(buf, len, cap, p, 1);
		buf_add(buf, len, cap, p, 1);
	}
	buf_add(buf, len, cap, &qc, 1);
}

/*
 * The SQL that makes a server whose settings are have look like want:
 * set_config() for each wanted value it does not have (it takes the value
 * as the start-up packet gives it, so a list like search_path stays a
 * list), RESET for each untracked setting it has that is not wanted.  have
 * is updated to match.  NULL if nothing needs doing.  Literals are E'', so
 * they mean the same whatever the server's standard_conforming_strings.
 */
char *
session_sync_sql(const Settings *want, Settings *have)
{
	char  *buf = NULL;
	size_t len = 0;
	size_t cap = 0;

	for (int i = 0; i < want->n; i++)
	{
		const char *cur = settings_get(have, want->names[i]);

		if (cur && strcmp(cur, want->values[i]) == 0)
			continue;
		if (len == 0)
			buf_add(&buf, &len, &cap, "SELECT ", 7);
		else
			buf_add(&buf, &len, &cap, ", ", 2);
		buf_add(&buf, &len, &cap, "pg_catalog.set_config(E", 23);
		buf_add_quoted(&buf, &len, &cap, want->names[i], '\'', true);
		buf_add(&buf, &len, &cap, ", E", 3);
		buf_add_quoted(&buf, &len, &cap, want->values[i], '\'', true);
		buf_add(&buf, &len, &cap, ", false)", 8);
		settings_set(have, want->names[i], want->values[i]);
	}
	if (len > 0)
		buf_add(&buf, &len, &cap, ";", 1);
	for (int i = have->n - 1; i >= 0; i--)
	{
		if (session_tracked_name(have->names[i]) ||
			settings_get(want, have->names[i]))
			continue;
		buf_add(&buf, &len, &cap, "RESET ", 6);
		buf_add_quoted(&buf, &len, &cap, have->names[i], '"', false);
		buf_add(&buf, &len, &cap, ";", 1);
		settings_remove_at(have, i);
	}
	return buf;
}
