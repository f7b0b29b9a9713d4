/*
 * relay.c
 *		Passing a client's messages to its server in transaction pooling:
 *		what the server will answer, named statements, the pooler's own
 *		answers.
 *
 * Each message that the server answers gets an entry in the server's
 * queue (request.c).  Named prepared statements are the client's names for
 * shared statements (prepared.c): Parse, Bind, Describe and Close of them
 * are rewritten to the pooler's names, with a Parse sent first where the
 * server lacks the statement, and ParseComplete / CloseComplete answered
 * by the pooler where the server need not be asked.  An error the pooler
 * raises in the middle of a pipeline is made to behave like PostgreSQL's:
 * answered in turn, with the server given a statement that fails so that
 * its transaction is aborted and it skips to Sync.  The session keywords
 * of each statement (session.c) go with its request, for the command tag
 * to be read with.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "client.h"
#include "log.h"
#include "process.h"
#include "pool.h"
#include "prepared.h"
#include "protocol.h"
#include "relay.h"
#include "request.h"
#include "server.h"
#include "session.h"

#define NO_NAMED_STATEMENTS                                                   \
	"named prepared statements are not supported in transaction pooling "     \
	"mode with max_prepared_statements = 0"

/*
 * Named prepared statements are rewritten (prepared.c) for clients that
 * logged in under transaction pooling while max_prepared_statements was
 * above 0; with 0 they are refused instead, and in session pooling they
 * pass unchanged: the server is the client's.  Decided at log-in, so a
 * RELOAD does not pull a client's names from under it.
 */
static bool
rewrites_statements(const Client *c)
{
	return c->rewrite;
}

/* Does this message refer to a named prepared statement? */
static bool
names_prepared_statement(Client *c, char type, uint32_t len)
{
	const char *name;

	if (type != 'P' && type != 'B' && type != 'D' && type != 'C')
		return false;
	name = pkt_statement_name(type, buf_data(&c->st.in), len);
	return name != NULL && name[0] != '\0';
}

/* Is name one of the pooler's own statement names on servers? */
static bool
is_pooler_name(const char *name)
{
	return strncmp(name, "_aps_", 5) == 0;
}

/* Does the client read '...' with backslash escapes (see session.c)? */
static bool
client_escapes(const Client *c)
{
	const char *v = settings_get(&c->want, "standard_conforming_strings");

	return v != NULL && strcmp(v, "off") == 0;
}

/*
 * The keywords of each statement of sql as the client's server reads it:
 * read a second time, with backslash escapes, only if a literal holds a
 * backslash and the client turned standard_conforming_strings off.
 */
static int
client_statement_keywords(const Client *c, const char *sql, uint32_t *kw,
						  int max)
{
	int n = session_statement_keywords(sql, false, kw, max);

	if (n > 0 && (kw[0] & KW_BACKSLASH) && client_escapes(c))
		n = session_statement_keywords(sql, true, kw, max);
	return n;
}

/* Queue the pooler's own answer to a request; give it now if its turn. */
static Request *
push_synth(Server *s, SynthKind kind)
{
	Request *r = rq_push(&s->rq, RQ_SYNTH, 0);

	r->synth = (uint8_t) kind;
	return r;
}

/*
 * Answer the client's request with an error, in turn, as PostgreSQL
 * would: the error, and the server's transaction aborted and skipping to
 * Sync like PostgreSQL's after an error, for which the server is given a
 * statement of ours that fails (its error is not passed on).  query: the
 * request was a simple Query, whose ReadyForQuery the failing statement's
 * stands for.
 */
static void
push_error(Server *s, bool query, const char *sqlstate, const char *fmt, ...)
{
	static const uint8_t fail[] = "apiscale-pooler: refused\0\0\0";
	Request				*r = push_synth(s, SY_ERROR);
	char				 msg[512];
	va_list				 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", sqlstate);
	r->name = xstrdup(msg);
	if (query)
	{
		pkt_add_query(&s->st.out, "apiscale-pooler: refused");
		rq_push(&s->rq, RQ_QUERY, REQ_HIDE_ERROR);
	}
	else
	{
		pkt_add_parse(&s->st.out, "", fail, sizeof(fail) - 1);
		rq_push(&s->rq, RQ_PARSE, REQ_HIDDEN | REQ_HIDE_ERROR);
	}
	server_answer_synth(s);
}

/*
 * A client's DEALLOCATE or PREPARE of a name that could be one of the
 * pooler's "_aps_" statements, in whatever spelling, comment or
 * multi-statement Query: those statements are shared by every client of
 * the server and must not be dropped or shadowed by one of them.  Refused
 * in turn like PostgreSQL's own errors.  kw: the statement's KW_ bits.
 */
static void
refuse_pooler_name(Server *s, bool query, uint32_t kw)
{
	if (kw & KW_POOLER_DEALLOC)
		push_error(s, query, "26000",
				   "prepared statement names beginning with \"_aps_\" are "
				   "apiscale-pooler's, shared by its clients: DEALLOCATE of "
				   "one is refused");
	else
		push_error(s, query, "42939",
				   "prepared statement names beginning with \"_aps_\" are "
				   "reserved for apiscale-pooler");
}

/*
 * Make sure s has st prepared (as "_aps_<id>") before the message being
 * sent: if not, a Parse goes first.  A statement counts as prepared once
 * its ParseComplete came, or when it was sent since the last Sync (an
 * error would skip the message using it too); otherwise it is sent again.
 * A Close of the name always goes before a Parse: a statement the pooler
 * lost track of (a Close skipped after an error, a stale plan dropped) is
 * then never "already there".  A full cache closes its least recently used
 * statement first.  flags/client_name: for the client's own Parse, whose
 * ParseComplete it must see.
 */
static void
prepare_on_server(Server *s, Statement *st, uint8_t flags,
				  const char *client_name)
{
	char		name[STMT_NAME_LEN];
	Request	   *r;
	CachedStmt *e = stmt_cache_get(&s->stmts, st);
	uint32_t	limit = cf.max_prepared_statements > 0
							? (uint32_t) cf.max_prepared_statements
							: 1;

	if (e && client_name == NULL && (e->confirmed || e->seg == s->seg))
		return;
	if (e)
		stmt_cache_remove(&s->stmts, st);
	while (s->stmts.n >= limit)
	{
		Statement *old = stmt_cache_oldest(&s->stmts);

		stmt_server_name(old, name);
		pkt_add_target(&s->st.out, 'C', 'S', name);
		r = rq_push(&s->rq, RQ_CLOSE, REQ_HIDDEN);
		r->stmt = old;
		stmt_ref(old);
		stmt_cache_remove(&s->stmts, old);
	}
	stmt_server_name(st, name);
	pkt_add_target(&s->st.out, 'C', 'S', name);
	rq_push(&s->rq, RQ_CLOSE, REQ_HIDDEN);
	pkt_add_parse(&s->st.out, name, st->body, st->bodylen);
	r = rq_push(&s->rq, RQ_PARSE, flags);
	r->stmt = st;
	stmt_ref(st);
	if (client_name)
	{
		r->flags |= REQ_CLIENT_NAME;
		r->name = xstrdup(client_name);
	}
	stmt_cache_add(&s->stmts, st)->seg = s->seg;
}

/* The text a Parse/Bind/... message carries is malformed. */
static bool
bad_message(Client *c, const char *what)
{
	char reason[128];

	snprintf(reason, sizeof(reason), "invalid %s message", what);
	client_close(c, "08P01", reason);
	return false;
}

/*
 * Statements are shared by content, and what a statement means depends on
 * the search_path it is planned with: clients with different start-up
 * search_paths do not share.
 */
static Statement *
intern_for(Client *c, const ParseMsg *pm)
{
	const char *path = settings_get(&c->want, "search_path");

	return stmt_intern(pm->body, pm->bodylen, path ? path : "");
}

/*
 * Parse.  A named statement becomes the client's name for a shared
 * Statement; the server gets it under the pooler's name unless it has it
 * already, in which case the pooler answers ParseComplete itself.
 */
static bool
send_parse(Client *c, Server *s, uint32_t len)
{
	Buf		  *in = &c->st.in;
	ParseMsg   pm;
	Statement *st;
	Request	  *r;

	if (!pkt_parse_parse(buf_data(in), len, &pm))
		return bad_message(c, "Parse");
	if (pm.name[0] == '\0' || !rewrites_statements(c))
	{
		char name[256];

		if (c->pool_mode == POOL_TRANSACTION)
		{
			uint32_t kw = 0;

			client_statement_keywords(c, pm.query, &kw, 1);
			if (kw & KW_POOLER_NAME)
			{
				refuse_pooler_name(s, false, kw);
				buf_drain(in, len);
				return true;
			}
			c->unnamed_keywords = kw;
		}
		c->unnamed_dealloc = false;
		rq_push(&s->rq, RQ_PARSE, 0);
		if (rewrites_statements(c) && c->stmts.n > 0 && s->txn_status != 'E' &&
			pm.bodylen == strlen(pm.query) + 3 &&
			stmt_parse_deallocate(pm.query, name, sizeof(name)) &&
			stmt_map_remove(&c->stmts, name))
		{
			/*
			 * DEALLOCATE of a name the client prepared with the protocol,
			 * sent with the extended protocol (psycopg does this): the
			 * server does not know the name.  It runs a statement that
			 * does nothing instead, whose tag becomes DEALLOCATE.
			 */
			static const uint8_t nothing[] = "DO 'BEGIN END'\0\0\0";

			pkt_add_parse(&s->st.out, "", nothing, sizeof(nothing) - 1);
			buf_drain(in, len);
			c->unnamed_dealloc = true;
			return true;
		}
		buf_move(in, &s->st.out, len);
		return true;
	}
	if (stmt_map_get(&c->stmts, pm.name))
	{
		/* PostgreSQL refuses a second statement of the same name */
		push_error(s, false, "42P05",
				   "prepared statement \"%s\" already exists", pm.name);
		buf_drain(in, len);
		return true;
	}
	st = intern_for(c, &pm);
	if (st->keywords & KW_POOLER_NAME)
	{
		refuse_pooler_name(s, false, st->keywords);
		stmt_unref(st);
		buf_drain(in, len);
		return true;
	}
	stmt_map_put(&c->stmts, pm.name, st);
	if (stmt_cache_get(&s->stmts, st) && s->txn_status != 'E')
	{
		r = push_synth(s, SY_PARSE_COMPLETE);
		r->flags |= REQ_CLIENT_NAME;
		r->name = xstrdup(pm.name);
		r->stmt = st;
		stmt_ref(st);
	}
	else
	{
		/*
		 * Not there, or the transaction is aborted, where PostgreSQL
		 * refuses any Parse (25P02): the server must say so itself.
		 */
		prepare_on_server(s, st, 0, pm.name);
	}
	stmt_unref(st);
	buf_drain(in, len);
	server_answer_synth(s);
	return true;
}

/*
 * The keywords of the statement bound to portal (see session.c): the
 * unnamed portal's in the client, named portals' in a short list, which
 * is emptied when the client's server goes back (portals end with the
 * transaction).
 */
static void
portal_set_keywords(Client *c, const char *portal, uint32_t kw)
{
	if (portal[0] == '\0')
	{
		c->portal_keywords = kw;
		return;
	}
	for (int i = 0; i < c->nportals; i++)
	{
		if (strcmp(c->portals[i].name, portal) == 0)
		{
			c->portals[i].keywords = kw;
			return;
		}
	}
	if (kw == 0)
		return; /* an unknown portal counts as 0 anyway */
	if (c->nportals == MAX_NAMED_PORTALS)
	{
		/* forget the oldest: at worst its state is not seen */
		free(c->portals[0].name);
		memmove(&c->portals[0], &c->portals[1],
				sizeof(c->portals[0]) * (MAX_NAMED_PORTALS - 1));
		c->nportals--;
	}
	c->portals[c->nportals].name = xstrdup(portal);
	c->portals[c->nportals].keywords = kw;
	c->nportals++;
}

static uint32_t
portal_keywords(const Client *c, const char *portal)
{
	if (portal[0] == '\0')
		return c->portal_keywords;
	for (int i = 0; i < c->nportals; i++)
	{
		if (strcmp(c->portals[i].name, portal) == 0)
			return c->portals[i].keywords;
	}
	return 0;
}

void
relay_forget_portals(Client *c)
{
	for (int i = 0; i < c->nportals; i++)
		free(c->portals[i].name);
	c->nportals = 0;
}

/* Bind: a named statement is bound under the server's name for it. */
static bool
send_bind(Client *c, Server *s, uint32_t len)
{
	Buf		  *in = &c->st.in;
	BindMsg	   bm;
	Statement *st = NULL;
	char	   name[STMT_NAME_LEN];
	Request	  *r;

	if (!pkt_parse_bind(buf_data(in), len, &bm))
		return bad_message(c, "Bind");
	if (bm.portal[0] == '\0')
		c->portal_dealloc = bm.statement[0] == '\0' && c->unnamed_dealloc;
	if (bm.statement[0] == '\0')
		portal_set_keywords(c, bm.portal, c->unnamed_keywords);
	else if (rewrites_statements(c))
	{
		st = stmt_map_get(&c->stmts, bm.statement);
		if (st == NULL && is_pooler_name(bm.statement))
		{
			/* another client's statement, as far as this one knows */
			push_error(s, false, "26000",
					   "prepared statement \"%s\" does not exist",
					   bm.statement);
			buf_drain(in, len);
			return true;
		}
	}
	if (st == NULL)
	{
		/* unnamed, or a name the client never prepared: the server says */
		if (bm.statement[0] != '\0')
			portal_set_keywords(c, bm.portal, 0);
		rq_push(&s->rq, RQ_BIND, 0);
		buf_move(in, &s->st.out, len);
		return true;
	}
	prepare_on_server(s, st, REQ_HIDDEN, NULL);
	stmt_server_name(st, name);
	pkt_add_bind(&s->st.out, bm.portal, name, bm.rest, bm.restlen);
	portal_set_keywords(c, bm.portal, st->keywords);
	r = rq_push(&s->rq, RQ_BIND, REQ_USES_STMT);
	r->stmt = st;
	stmt_ref(st);
	buf_drain(in, len);
	return true;
}

/* Describe or Close (type) of a statement or portal. */
static bool
send_target(Client *c, Server *s, char type, uint32_t len)
{
	Buf		   *in = &c->st.in;
	char		kind;
	const char *target;
	Statement  *st = NULL;
	char		name[STMT_NAME_LEN];
	Request	   *r;

	if (!pkt_parse_target(buf_data(in), len, &kind, &target))
		return bad_message(c, type == 'D' ? "Describe" : "Close");
	if (kind == 'S' && target[0] != '\0' && rewrites_statements(c))
	{
		st = stmt_map_get(&c->stmts, target);
		if (type == 'C')
		{
			/*
			 * The server keeps it for others; the client's name goes.  If
			 * the server skips this Close (an error before it), the name
			 * comes back: the request remembers it.
			 */
			r = push_synth(s, SY_CLOSE_COMPLETE);
			if (st)
			{
				r->flags |= REQ_CLIENT_NAME;
				r->name = xstrdup(target);
				r->stmt = st;
				stmt_ref(st);
				stmt_map_remove(&c->stmts, target);
			}
			buf_drain(in, len);
			server_answer_synth(s);
			return true;
		}
		if (st == NULL && is_pooler_name(target))
		{
			/* another client's statement, as far as this one knows */
			push_error(s, false, "26000",
					   "prepared statement \"%s\" does not exist", target);
			buf_drain(in, len);
			return true;
		}
	}
	if (st == NULL)
	{
		rq_push(&s->rq, type == 'D' ? RQ_DESCRIBE : RQ_CLOSE, 0);
		buf_move(in, &s->st.out, len);
		return true;
	}
	prepare_on_server(s, st, REQ_HIDDEN, NULL);
	stmt_server_name(st, name);
	pkt_add_target(&s->st.out, 'D', 'S', name);
	r = rq_push(&s->rq, RQ_DESCRIBE, REQ_USES_STMT);
	r->stmt = st;
	stmt_ref(st);
	buf_drain(in, len);
	return true;
}

/* Query (simple protocol). */
static bool
send_query(Client *c, Server *s, uint32_t len)
{
	Buf		*in = &c->st.in;
	uint32_t kw[64];
	int		 n = 0;

	if (c->pool_mode == POOL_TRANSACTION)
	{
		const char *sql = pkt_string_body(buf_data(in), len);
		uint32_t	all = 0;

		if (sql == NULL)
			return bad_message(c, "Query");
		n = client_statement_keywords(c, sql, kw, 64);
		for (int i = 0; i < n; i++)
			all |= kw[i];
		if (all & KW_POOLER_NAME)
		{
			refuse_pooler_name(s, true, all);
			buf_drain(in, len);
			return true;
		}
	}
	rq_set_keywords(rq_push(&s->rq, RQ_QUERY, 0), kw, n);
	buf_move(in, &s->st.out, len);
	return true;
}

/*
 * "DEALLOCATE name" in SQL for a statement the client prepared with the
 * protocol (psycopg does this): the name is the client's, not the server's,
 * so the pooler forgets it and answers, in turn if a server is attached,
 * at once if not.  In an aborted transaction it goes to the server, which
 * refuses it (25P02) as PostgreSQL would.  Returns true if handled.
 */
bool
relay_try_deallocate(Client *c, uint32_t len)
{
	Buf		   *in = &c->st.in;
	const char *sql;
	char		name[256];

	if (!rewrites_statements(c) || c->stmts.n == 0 ||
		(c->server && c->server->txn_status == 'E'))
		return false;
	sql = pkt_string_body(buf_data(in), len);
	if (sql == NULL || !stmt_parse_deallocate(sql, name, sizeof(name)) ||
		!stmt_map_remove(&c->stmts, name))
		return false;
	buf_drain(in, len);
	if (c->server)
	{
		push_synth(c->server, SY_DEALLOCATE);
		server_answer_synth(c->server);
	}
	else
	{
		pkt_add_command_complete(&c->st.out, "DEALLOCATE");
		pkt_add_ready(&c->st.out, 'I');
	}
	return true;
}

/*
 * A named statement from a client whose statements are not rewritten in
 * transaction pooling (max_prepared_statements was 0 at its log-in):
 * refused with 0A000, in turn if a server is attached, and aborting the
 * transaction as PostgreSQL's errors do.  Returns true if it was one.
 */
bool
relay_refuse_named(Client *c, char type, uint32_t len)
{
	if (c->pool_mode != POOL_TRANSACTION || rewrites_statements(c) ||
		!names_prepared_statement(c, type, len))
		return false;
	buf_drain(&c->st.in, len);
	if (c->server)
	{
		if (!c->server->skipping)
			push_error(c->server, false, "0A000", "%s", NO_NAMED_STATEMENTS);
		return true;
	}
	pkt_add_error(&c->st.out, "ERROR", "0A000", "%s", NO_NAMED_STATEMENTS);
	stats_count_error(&c->pool->errors, "0A000");
	c->skip_to_sync = true;
	return true;
}

/*
 * Pass one message from c to its server s, recording what s will answer
 * (request.c), rewriting named statements, answering what the pooler
 * answers itself.  Returns false if c is gone or must stop reading.
 */
bool
relay_message(Client *c, Server *s, char type, uint32_t len)
{
	Buf *in = &c->st.in;

	switch (type)
	{
		case 'Q':
			c->pool->query_count++;
			return send_query(c, s, len);
		case 'P':
			return send_parse(c, s, len);
		case 'B':
			return send_bind(c, s, len);
		case 'D':
		case 'C':
			return send_target(c, s, type, len);
		case 'E':
		{
			const char *portal = pkt_string_body(buf_data(in), len);
			Request	   *r;

			if (portal == NULL)
				return bad_message(c, "Execute");
			r = rq_push(&s->rq, RQ_EXECUTE, 0);
			r->keywords = portal_keywords(c, portal);
			if (c->portal_dealloc && portal[0] == '\0')
				r->flags |= REQ_RETAG;
			break;
		}
		case 'S':
			rq_push(&s->rq, RQ_SYNC, 0);
			s->skipping = false;
			s->seg++;
			break;
		case 'c':
		case 'f':
		{
			/* a COPY ends here: Syncs after this one count again */
			Request *last = rq_at(&s->rq, s->rq.count - 1);

			if (last)
				last->flags |= REQ_COPY_END_AFTER;
			break;
		}
		case 'F':
			rq_push(&s->rq, RQ_FUNCTION, 0);
			break;
		default:
			/* Flush, CopyData: no answer of their own */
			break;
	}
	buf_move(in, &s->st.out, len);
	return true;
}
