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
 * not noticed; see the README.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The canonical spelling of a tracked parameter, or NULL. */
const char *
session_tracked_name(const char *name)
{
	for (size_t i = 0; i < N_TRACKED; i++)
	{
		if (strcasecmp(name, tracked[i]) == 0)
			return tracked[i];
	}
	return NULL;
}

static bool
word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(w, lit, n) == 0;
}

/* The words that mean something, by length; all lower case. */
static const struct
{
	const char *word;
	uint8_t		len;
	uint16_t	kw;
} keyword_table[] = {
	{"all", 3, KW_ALL},
	{"zone", 4, KW_TRACKED},
	{"temp", 4, KW_TEMP},
	{"hold", 4, KW_HOLD},
	{"into", 4, KW_CREATE_INTO},
	{"names", 5, KW_TRACKED},
	{"local", 5, KW_LOCAL},
	{"create", 6, KW_CREATE_INTO}, /* first word only: see below */
	{"pg_temp", 7, KW_TEMP},
	{"timezone", 8, KW_TRACKED},
	{"datestyle", 9, KW_TRACKED},
	{"temporary", 9, KW_TEMP},
	{"transaction", 11, KW_TRANSACTION},
	{"intervalstyle", 13, KW_TRACKED},
	{"client_encoding", 15, KW_TRACKED},
	{"characteristics", 15, KW_CHARACTERISTICS},
	{"application_name", 16, KW_TRACKED},
	{"pg_advisory_lock", 16, KW_ADVLOCK},
	{"pg_try_advisory_lock", 20, KW_ADVLOCK},
	{"pg_advisory_unlock_all", 22, KW_UNLOCK_ALL},
	{"pg_advisory_lock_shared", 23, KW_ADVLOCK},
	{"pg_try_advisory_lock_shared", 27, KW_ADVLOCK},
	{"standard_conforming_strings", 27, KW_TRACKED},
};

/*
 * The KW_ bit of one word, or 0.  It runs for every word of every query:
 * the length and first letter rule out nearly all entries before any
 * comparison of the whole word.
 */
static uint16_t
word_keyword(const char *w, size_t n, bool first)
{
	char c0;

	if (n < 3 || n > 27)
		return 0;
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
 * The KW_ words of each statement of sql (separated by semicolons), outside
 * string literals, quoted identifiers and comments: out[i] for the i-th
 * statement that has any word (empty statements get no CommandComplete).
 * Statements past max are counted into out[max - 1].  Returns how many
 * statements there are, at most max.  Cheap: one pass, no allocation (it
 * runs for every query).
 */
int
session_statement_keywords(const char *sql, uint16_t *out, int max)
{
	const char *p = sql;
	uint16_t	kw = 0;
	int			n = 0;
	bool		words = false; /* the current statement has a word */
	int			on_commit = 0; /* words of "ON COMMIT DROP" seen in a row */

	for (;;)
	{
		char ch = *p;

		if (ch == '\0' || ch == ';')
		{
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
			on_commit = 0;
			p++;
		}
		else if (ch == '\'' || ch == '"')
		{
			/* a literal or quoted identifier; doubled quotes stay inside */
			p++;
			while (*p && !(*p == ch && p[1] != ch))
				p += (*p == ch) ? 2 : 1;
			if (*p)
				p++;
			on_commit = 0;
		}
		else if (ch == '-' && p[1] == '-')
		{
			while (*p && *p != '\n')
				p++;
		}
		else if (ch == '/' && p[1] == '*')
		{
			const char *end = strstr(p + 2, "*/");

			p = end ? end + 2 : p + strlen(p);
		}
		else if (ch == '$' &&
				 (p[1] == '$' || isalpha((unsigned char) p[1]) || p[1] == '_'))
		{
			/* a dollar-quoted string: $tag$ ... $tag$ */
			const char *tag_end = p + 1;
			const char *end = NULL;

			while (isalnum((unsigned char) *tag_end) || *tag_end == '_')
				tag_end++;
			if (*tag_end == '$')
			{
				size_t taglen = (size_t) (tag_end - p + 1);
				char   tag[64];

				if (taglen < sizeof(tag))
				{
					memcpy(tag, p, taglen);
					tag[taglen] = '\0';
					end = strstr(tag_end + 1, tag);
				}
				p = end ? end + taglen : p + strlen(p);
			}
			else
				p = tag_end;
			on_commit = 0;
		}
		else if (isalpha((unsigned char) ch) || ch == '_')
		{
			const char *w = p;
			size_t		len;

			while (isalnum((unsigned char) *p) || *p == '_' || *p == '$')
				p++;
			len = (size_t) (p - w);
			kw |= word_keyword(w, len, !words);
			words = true;
			/* ON COMMIT DROP: the temporary table ends with the transaction */
			if (word_is(w, len, "on"))
				on_commit = 1;
			else if (on_commit == 1 && word_is(w, len, "commit"))
				on_commit = 2;
			else if (on_commit == 2 && word_is(w, len, "drop"))
			{
				kw |= KW_COMMIT_DROP;
				on_commit = 0;
			}
			else
				on_commit = 0;
		}
		else
		{
			if (ch == '*')
				kw |= KW_STAR;
			if (!isspace((unsigned char) ch))
				on_commit = 0;
			p++;
		}
	}
	return n;
}

/* The KW_ words of all of sql's statements together. */
uint16_t
session_keywords(const char *sql)
{
	uint16_t one[1] = {0};

	session_statement_keywords(sql, one, 1);
	return one[0];
}

static bool
tag_is(const char *tag, const char *lit)
{
	return strcmp(tag, lit) == 0;
}

/*
 * What the command with this tag (and these keywords in its text) did to
 * the session.
 */
void
session_tag_effect(const char *tag, uint16_t keywords, TagEffect *out)
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
			if (tag_is(tag, "SET"))
			{
				/*
				 * A tracked parameter follows the client anyway (its name in
				 * the statement: SET TimeZone, SET TIME ZONE, SET NAMES);
				 * SET LOCAL and SET TRANSACTION end with the transaction,
				 * but SET SESSION CHARACTERISTICS AS TRANSACTION does not.
				 */
				if (!(keywords & (KW_LOCAL | KW_TRACKED)) &&
					(!(keywords & KW_TRANSACTION) ||
					 (keywords & KW_CHARACTERISTICS)))
					out->pin = PIN_SET;
			}
			else if (strncmp(tag, "SELECT", 6) == 0)
			{
				/* CREATE TEMP TABLE ... AS, SELECT ... INTO TEMP */
				if ((keywords & (KW_TEMP | KW_CREATE_INTO | KW_COMMIT_DROP)) ==
					(KW_TEMP | KW_CREATE_INTO))
					out->pin = PIN_TEMP;
				if (keywords & KW_ADVLOCK)
					out->pin |= PIN_ADVISORY;
				if (keywords & KW_UNLOCK_ALL)
					out->unpin = PIN_ADVISORY;
			}
			break;
		case 'R':
			if (tag_is(tag, "RESET"))
			{
				out->reset = true;
				if (keywords & KW_ALL)
					out->unpin = PIN_SET;
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
		if (strcasecmp(s->names[i], name) == 0)
			return i;
	}
	return -1;
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
			free(s->values[i]);
			s->values[i] = xstrdup(value);
			s->fp_valid = false;
		}
		return;
	}
	s->fp_valid = false;
	if (s->n == s->cap)
	{
		s->cap = s->cap ? s->cap * 2 : 8;
		s->names = realloc(s->names, sizeof(char *) * (size_t) s->cap);
		s->values = realloc(s->values, sizeof(char *) * (size_t) s->cap);
		if (s->names == NULL || s->values == NULL)
			fatal("out of memory");
	}
	s->names[s->n] = xstrdup(name);
	s->values[s->n] = xstrdup(value);
	s->n++;
}

static void
settings_remove_at(Settings *s, int i)
{
	s->fp_valid = false;
	free(s->names[i]);
	free(s->values[i]);
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
		free(s->names[i]);
		free(s->values[i]);
	}
	free(s->names);
	free(s->values);
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
settings_fingerprint(Settings *s)
{
	if (!s->fp_valid)
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
