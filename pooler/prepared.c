/*
 * prepared.c
 *		Named prepared statements in transaction pooling.
 *
 * A client that prepares "get_user" may run it in its next transaction on
 * another server.  So the pooler keeps, per client, its names for
 * statements (StmtMap), and per server, the statements it has prepared
 * (StmtCache, bounded by max_prepared_statements, least recently used out
 * first).  Statements themselves are interned once, by content: a thousand
 * clients preparing the same query share one Statement, and a server
 * prepares it once, as "_aps_<id>", for all of them.
 *
 * Reference counts: each client name, each server cache entry and each
 * request in flight that names a statement holds one.  The last unref
 * frees it.  Everything here runs on the event loop thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "prepared.h"
#include "session.h"

static Statement **interned = NULL;
static uint32_t	   n_interned = 0;
static uint32_t	   interned_buckets = 0;
static uint64_t	   next_stmt_id = 1;

/* FNV-1a: a table hash, not a digest (keys are always compared in full). */
static uint32_t
hash_bytes(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t	   h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void *
zalloc(size_t n)
{
	void *p = calloc(1, n);

	if (p == NULL)
		fatal("out of memory");
	return p;
}

/* Grow a chained table to twice its size; next_of gives a node's link. */
#define REHASH(type, buckets, nbuckets, hashof)                               \
	do                                                                        \
	{                                                                         \
		uint32_t newn = (nbuckets) ? (nbuckets) *2 : 16;                      \
		type   **newb = zalloc(sizeof(type *) * newn);                        \
		for (uint32_t i_ = 0; i_ < (nbuckets); i_++)                          \
		{                                                                     \
			type *e_ = (buckets)[i_];                                         \
			while (e_)                                                        \
			{                                                                 \
				type	*next_ = e_->next;                                    \
				uint32_t b_ = (hashof(e_)) & (newn - 1);                      \
				e_->next = newb[b_];                                          \
				newb[b_] = e_;                                                \
				e_ = next_;                                                   \
			}                                                                 \
		}                                                                     \
		free(buckets);                                                        \
		(buckets) = newb;                                                     \
		(nbuckets) = newn;                                                    \
	} while (0)

#define STMT_HASH(e)   ((e)->hash)
#define CLIENT_HASH(e) (hash_bytes((e)->name, strlen((e)->name)))
#define CACHED_HASH(e) ((e)->stmt->hash)

/*
 * The shared Statement with this body planned under context (the
 * search_path), with one more reference.
 */
Statement *
stmt_intern(const uint8_t *body, size_t bodylen, const char *context)
{
	uint32_t h =
		hash_bytes(body, bodylen) ^ hash_bytes(context, strlen(context));
	Statement *st;

	if (interned_buckets > 0)
	{
		for (st = interned[h & (interned_buckets - 1)]; st; st = st->next)
		{
			if (st->hash == h && st->bodylen == bodylen &&
				memcmp(st->body, body, bodylen) == 0 &&
				strcmp(st->context, context) == 0)
			{
				st->refs++;
				return st;
			}
		}
	}
	if (n_interned >= interned_buckets)
		REHASH(Statement, interned, interned_buckets, STMT_HASH);

	st = zalloc(sizeof(Statement) + bodylen);
	st->id = next_stmt_id++;
	st->hash = h;
	st->refs = 1;
	st->bodylen = bodylen;
	memcpy(st->body, body, bodylen);
	st->context = xstrdup(context);
	/*
	 * The body starts with the NUL-terminated query text.  Statements are
	 * shared whatever each client's standard_conforming_strings: a text
	 * whose backslashes matter is read both ways.
	 */
	st->keywords = session_keywords((const char *) st->body, false);
	if (st->keywords & KW_BACKSLASH)
		st->keywords |= session_keywords((const char *) st->body, true);
	st->next = interned[h & (interned_buckets - 1)];
	interned[h & (interned_buckets - 1)] = st;
	n_interned++;
	return st;
}

void
stmt_ref(Statement *st)
{
	st->refs++;
}

void
stmt_unref(Statement *st)
{
	Statement **pp;

	if (--st->refs > 0)
		return;
	for (pp = &interned[st->hash & (interned_buckets - 1)]; *pp;
		 pp = &(*pp)->next)
	{
		if (*pp == st)
		{
			*pp = st->next;
			n_interned--;
			break;
		}
	}
	free(st->context);
	free(st);
}

/*
 * buf (STMT_NAME_LEN bytes) = the statement's name on every server,
 * "_aps_<id>".  Written by hand: it is made for every Bind of a prepared
 * statement, and snprintf cost a fifth of such a transaction's
 * instructions.
 */
void
stmt_server_name(const Statement *st, char *buf)
{
	char	 digits[20];
	int		 n = 0;
	uint64_t id = st->id;

	do
	{
		digits[n++] = (char) ('0' + id % 10);
		id /= 10;
	} while (id > 0);
	memcpy(buf, "_aps_", 5);
	for (int i = 0; i < n; i++)
		buf[5 + i] = digits[n - 1 - i];
	buf[5 + n] = '\0';
}

uint32_t
stmt_count(void)
{
	return n_interned;
}

static const char *
skip_space(const char *p)
{
	while (isspace((unsigned char) *p))
		p++;
	return p;
}

/* Does p start with word (any case), followed by a non-word character? */
static bool
starts_with_word(const char *p, const char *word)
{
	size_t n = strlen(word);

	return strncasecmp(p, word, n) == 0 &&
		   !(isalnum((unsigned char) p[n]) || p[n] == '_' || p[n] == '$');
}

/*
 * Is sql exactly "DEALLOCATE [PREPARE] name [;]"?  Then name (unquoted:
 * folded to lower case; quoted: as is) goes to buf.  DEALLOCATE ALL is not.
 */
bool
stmt_parse_deallocate(const char *sql, char *buf, size_t buflen)
{
	const char *p = skip_space(sql);
	size_t		n = 0;

	if (!starts_with_word(p, "deallocate"))
		return false;
	p = skip_space(p + 10);
	if (starts_with_word(p, "prepare"))
		p = skip_space(p + 7);
	if (*p == '"')
	{
		for (p++; *p; p++)
		{
			if (*p == '"')
			{
				if (p[1] != '"')
					break;
				p++;
			}
			if (n + 1 >= buflen)
				return false;
			buf[n++] = *p;
		}
		if (*p != '"' || n == 0)
			return false;
		p++;
	}
	else
	{
		if (!(isalpha((unsigned char) *p) || *p == '_') ||
			starts_with_word(p, "all"))
			return false;
		while (isalnum((unsigned char) *p) || *p == '_' || *p == '$')
		{
			if (n + 1 >= buflen)
				return false;
			buf[n++] = (char) tolower((unsigned char) *p++);
		}
	}
	buf[n] = '\0';
	p = skip_space(p);
	if (*p == ';')
		p = skip_space(p + 1);
	return *p == '\0';
}

/* ---- a client's names ---- */

Statement *
stmt_map_get(const StmtMap *m, const char *name)
{
	uint32_t h;

	if (m->n == 0)
		return NULL;
	h = hash_bytes(name, strlen(name));
	for (ClientStmt *e = m->buckets[h & (m->nbuckets - 1)]; e; e = e->next)
	{
		if (strcmp(e->name, name) == 0)
			return e->stmt;
	}
	return NULL;
}

/* name (not in m yet) now means st; m takes a reference. */
void
stmt_map_put(StmtMap *m, const char *name, Statement *st)
{
	ClientStmt *e;
	uint32_t	h = hash_bytes(name, strlen(name));

	if (m->n >= m->nbuckets)
		REHASH(ClientStmt, m->buckets, m->nbuckets, CLIENT_HASH);
	e = zalloc(sizeof(ClientStmt));
	e->name = xstrdup(name);
	e->stmt = st;
	stmt_ref(st);
	e->next = m->buckets[h & (m->nbuckets - 1)];
	m->buckets[h & (m->nbuckets - 1)] = e;
	m->n++;
}

bool
stmt_map_remove(StmtMap *m, const char *name)
{
	ClientStmt **pp;
	uint32_t	 h;

	if (m->n == 0)
		return false;
	h = hash_bytes(name, strlen(name));
	for (pp = &m->buckets[h & (m->nbuckets - 1)]; *pp; pp = &(*pp)->next)
	{
		ClientStmt *e = *pp;

		if (strcmp(e->name, name) == 0)
		{
			*pp = e->next;
			stmt_unref(e->stmt);
			free(e->name);
			free(e);
			m->n--;
			return true;
		}
	}
	return false;
}

void
stmt_map_clear(StmtMap *m)
{
	for (uint32_t i = 0; i < m->nbuckets; i++)
	{
		ClientStmt *e = m->buckets[i];

		while (e)
		{
			ClientStmt *next = e->next;

			stmt_unref(e->stmt);
			free(e->name);
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	memset(m, 0, sizeof(*m));
}

/* ---- a server's prepared statements ---- */

void
stmt_cache_init(StmtCache *c)
{
	memset(c, 0, sizeof(*c));
	TAILQ_INIT(&c->lru);
}

/* The entry for st, made the most recently used; NULL if not prepared. */
CachedStmt *
stmt_cache_get(StmtCache *c, const Statement *st)
{
	if (c->n == 0)
		return NULL;
	for (CachedStmt *e = c->buckets[st->hash & (c->nbuckets - 1)]; e;
		 e = e->next)
	{
		if (e->stmt == st)
		{
			if (e != TAILQ_FIRST(&c->lru))
			{
				TAILQ_REMOVE(&c->lru, e, lru);
				TAILQ_INSERT_HEAD(&c->lru, e, lru);
			}
			return e;
		}
	}
	return NULL;
}

/* st (not in c yet) is being prepared on the server. */
CachedStmt *
stmt_cache_add(StmtCache *c, Statement *st)
{
	CachedStmt *e;

	if (c->n >= c->nbuckets)
		REHASH(CachedStmt, c->buckets, c->nbuckets, CACHED_HASH);
	e = zalloc(sizeof(CachedStmt));
	e->stmt = st;
	stmt_ref(st);
	e->next = c->buckets[st->hash & (c->nbuckets - 1)];
	c->buckets[st->hash & (c->nbuckets - 1)] = e;
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	c->n++;
	return e;
}

void
stmt_cache_remove(StmtCache *c, const Statement *st)
{
	CachedStmt **pp;

	if (c->n == 0)
		return;
	for (pp = &c->buckets[st->hash & (c->nbuckets - 1)]; *pp;
		 pp = &(*pp)->next)
	{
		CachedStmt *e = *pp;

		if (e->stmt == st)
		{
			*pp = e->next;
			TAILQ_REMOVE(&c->lru, e, lru);
			c->n--;
			stmt_unref(e->stmt);
			free(e);
			return;
		}
	}
}

/* The least recently used statement, the next to close; NULL if empty. */
Statement *
stmt_cache_oldest(const StmtCache *c)
{
	CachedStmt *e = TAILQ_LAST(&c->lru, CachedStmtList);

	return e ? e->stmt : NULL;
}

/* Forget everything (the server deallocated all, or is closing). */
void
stmt_cache_clear(StmtCache *c)
{
	CachedStmt *e;

	while ((e = TAILQ_FIRST(&c->lru)) != NULL)
	{
		TAILQ_REMOVE(&c->lru, e, lru);
		stmt_unref(e->stmt);
		free(e);
	}
	free(c->buckets);
	stmt_cache_init(c);
}
