/*
 * server.c
 *		Connections to PostgreSQL servers.
 *
 * libpq logs in without blocking (PQconnectStartParams / PQconnectPoll,
 * driven by libevent), which gives us every server-side authentication
 * method and TLS (server_tls_sslmode is libpq's sslmode) for free.  Once
 * logged in, the socket is read and written through a Stream; the PGconn
 * stays alive to own the socket and to be closed with PQfinish.  With TLS
 * the Stream goes on through libpq's SSL object, whose BIO reads and writes
 * through the PGconn: so the Stream is always closed before PQfinish, which
 * then sends Terminate and close_notify through that same session and
 * frees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "auth.h"
#include "client.h"
#include "hosts.h"
#include "log.h"
#include "process.h"
#include "pool.h"
#include "protocol.h"
#include "relay.h"
#include "server.h"

static uint64_t next_server_id = 1;

/* ParameterStatus values passed on to clients at login. */
static const char *const reported_params[] = {
	"client_encoding",
	"DateStyle",
	"default_transaction_read_only",
	"in_hot_standby",
	"integer_datetimes",
	"IntervalStyle",
	"is_superuser",
	"server_encoding",
	"server_version",
	"session_authorization",
	"standard_conforming_strings",
	"TimeZone",
};
#define N_REPORTED (sizeof(reported_params) / sizeof(reported_params[0]))

static void login_poll(Server *s, PostgresPollingStatusType st);
static void server_read_cb(void *arg);
static void server_event_cb(void *arg, const char *why);
static void server_drain_cb(void *arg);

const char *
server_state_to_str(ServerState state)
{
	switch (state)
	{
		case SV_LOGIN:
			return "login";
		case SV_IDLE:
			return "idle";
		case SV_ACTIVE:
			return "active";
		case SV_RESET:
			return "reset";
	}
	return "unknown";
}

double
server_age(const Server *s)
{
	return pass_now() - s->created;
}

static void
login_failed(Server *s, const char *msg)
{
	char   err[512];
	size_t n;

	snprintf(err, sizeof(err), "%s", msg && msg[0] ? msg : "unknown error");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	log_warning("S-%llu: %s/%s login failed: %s", (unsigned long long) s->id,
				s->pool->dbname, s->pool->user, err);
	pool_login_failed(s, err);
	server_close(s, "login failed");
}

static void
login_event_cb(evutil_socket_t fd, short what, void *arg)
{
	Server *s = (Server *) arg;

	login_poll(s, PQconnectPoll(s->conn));
}

static void
login_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	login_failed((Server *) arg, "timeout while logging into the server");
}

static void
login_failed_later_cb(evutil_socket_t fd, short what, void *arg)
{
	Server *s = (Server *) arg;

	login_failed(s, PQerrorMessage(s->conn));
}

/* Logged in: take the socket over. */
static void
login_done(Server *s)
{
	const char *names[N_REPORTED];
	const char *values[N_REPORTED];
	int			n = 0;

	event_free(s->login_ev);
	s->login_ev = NULL;
	evtimer_del(s->login_timer);

	s->backend_pid = PQbackendPID(s->conn);
	s->txn_status = 'I';
	for (size_t i = 0; i < N_REPORTED; i++)
	{
		const char *v = PQparameterStatus(s->conn, reported_params[i]);

		if (v)
		{
			names[n] = reported_params[i];
			values[n] = v;
			n++;
			if (session_tracked_name(reported_params[i]))
				settings_set(&s->settings, reported_params[i], v);
		}
	}
	settings_set(&s->settings, "application_name",
				 PQparameterStatus(s->conn, "application_name") ?: "");
	if (!stream_init(&s->st, PQsocket(s->conn), false, server_read_cb,
					 server_drain_cb, server_event_cb, s))
	{
		login_failed(s, "could not set up the server socket");
		return;
	}
	s->has_stream = true;
	if (PQsslInUse(s->conn) &&
		!stream_tls_adopt(&s->st, PQsslStruct(s->conn, "OpenSSL")))
	{
		login_failed(s, "could not take over the server's TLS session");
		return;
	}
	stream_read(&s->st, true);
	log_debug("S-%llu: %s/%s logged in, backend pid %d",
			  (unsigned long long) s->id, s->pool->dbname, s->pool->user,
			  s->backend_pid);
	pool_server_ready(s, names, values, n);
}

static void
login_poll(Server *s, PostgresPollingStatusType st)
{
	short what;

	switch (st)
	{
		case PGRES_POLLING_OK:
			login_done(s);
			return;
		case PGRES_POLLING_FAILED:
			login_failed(s, PQerrorMessage(s->conn));
			return;
		case PGRES_POLLING_READING:
			what = EV_READ;
			break;
		case PGRES_POLLING_WRITING:
			what = EV_WRITE;
			break;
		default:
			login_failed(s, "unexpected libpq polling state");
			return;
	}
	/* The socket can change between attempts (several hosts). */
	if (s->login_ev)
		event_free(s->login_ev);
	s->login_ev =
		event_new(ev_base, PQsocket(s->conn), what, login_event_cb, s);
	event_add(s->login_ev, NULL);
}

/*
 * libpq's keywords and values (NULL-terminated, at most SERVER_CONNINFO_MAX
 * with the terminator) to log user into db's server: the entry's forced
 * user and password if it has them, else the password auth_file holds in
 * plain text, the TCP keepalive settings and the server-side TLS settings.
 */
int
server_conninfo(const DbConfig *db, const char *user, const char *appname,
				const char **kw, const char **val)
{
	/* numbers as text; every caller uses them before calling again */
	static char keepidle[16];
	static char keepintvl[16];
	static char keepcnt[16];
	static char user_timeout[16];
	int			n = 0;
	const char *password = db->password;

	if (password == NULL)
	{
		password = auth_password(db->user ? db->user : user);
		/* An md5 hash or a SCRAM secret is no password: cannot log in. */
		if (password && auth_secret_kind(password) != AUTH_SECRET_PLAIN)
			password = NULL;
	}
	kw[n] = "host", val[n++] = db->host;
	kw[n] = "port", val[n++] = db->port;
	kw[n] = "dbname", val[n++] = db->dbname;
	kw[n] = "user", val[n++] = db->user ? db->user : user;
	if (password)
		kw[n] = "password", val[n++] = password;
	kw[n] = "application_name", val[n++] = appname;
	/* libpq checks the role too, should it change before a health check */
	if (db->target != TSA_ANY)
		kw[n] = "target_session_attrs",
		val[n++] = target_attrs_to_str(db->target);
	/* tcp_keepalive and friends, for a server that vanishes (a partition) */
	kw[n] = "keepalives", val[n++] = cf.tcp_keepalive ? "1" : "0";
	if (cf.tcp_keepalive && cf.tcp_keepidle > 0)
	{
		snprintf(keepidle, sizeof(keepidle), "%d", cf.tcp_keepidle);
		kw[n] = "keepalives_idle", val[n++] = keepidle;
	}
	if (cf.tcp_keepalive && cf.tcp_keepintvl > 0)
	{
		snprintf(keepintvl, sizeof(keepintvl), "%d", cf.tcp_keepintvl);
		kw[n] = "keepalives_interval", val[n++] = keepintvl;
	}
	if (cf.tcp_keepalive && cf.tcp_keepcnt > 0)
	{
		snprintf(keepcnt, sizeof(keepcnt), "%d", cf.tcp_keepcnt);
		kw[n] = "keepalives_count", val[n++] = keepcnt;
	}
	if (cf.tcp_user_timeout > 0)
	{
		snprintf(user_timeout, sizeof(user_timeout), "%d",
				 cf.tcp_user_timeout);
		kw[n] = "tcp_user_timeout", val[n++] = user_timeout;
	}
	kw[n] = "sslmode", val[n++] = sslmode_to_str(cf.server_tls_sslmode);
	/* Empty: libpq's defaults (~/.postgresql/root.crt, ...). */
	if (cf.server_tls_ca_file[0] != '\0')
		kw[n] = "sslrootcert", val[n++] = cf.server_tls_ca_file;
	if (cf.server_tls_cert_file[0] != '\0')
		kw[n] = "sslcert", val[n++] = cf.server_tls_cert_file;
	if (cf.server_tls_key_file[0] != '\0')
		kw[n] = "sslkey", val[n++] = cf.server_tls_key_file;
	kw[n] = NULL, val[n] = NULL;
	return n;
}

/*
 * Start logging a new server into p's database on its host hidx.  Never
 * fails at once.
 */
Server *
server_open(Pool *p, int hidx)
{
	const char	  *kw[SERVER_CONNINFO_MAX];
	const char	  *val[SERVER_CONNINFO_MAX];
	Server		  *s = calloc(1, sizeof(Server));
	struct timeval tv;
	DbConfig	   one = p->db;

	if (s == NULL)
		fatal("out of memory");
	s->id = next_server_id++;
	s->pool = p;
	s->hidx = hidx;
	s->created = pass_now();
	s->connect_time = time(NULL);
	stmt_cache_init(&s->stmts);
	pool_server_added(s);

	/* the entry, reduced to this server's host */
	one.host = s->host->host;
	one.port = s->host->port;
	server_conninfo(&one, p->user, "apiscale-pooler", kw, val);

	s->login_timer = evtimer_new(ev_base, login_timeout_cb, s);
	tv.tv_sec = (time_t) cf.server_connect_timeout;
	tv.tv_usec =
		(suseconds_t) ((cf.server_connect_timeout - (double) tv.tv_sec) * 1e6);
	evtimer_add(s->login_timer, &tv);

	s->conn = PQconnectStartParams(kw, val, 0);
	if (s->conn == NULL)
		fatal("out of memory");
	if (PQstatus(s->conn) == CONNECTION_BAD)
	{
		struct timeval now = {0, 0};

		/* Report it from the loop, not from inside our caller. */
		event_base_once(ev_base, -1, EV_TIMEOUT, login_failed_later_cb, s,
						&now);
		return s;
	}
	login_poll(s, PGRES_POLLING_WRITING);
	return s;
}

/* Close s, whatever its state; s is freed. */
void
server_close(Server *s, const char *reason)
{
	log_debug("S-%llu: %s/%s closed: %s", (unsigned long long) s->id,
			  s->pool->dbname, s->pool->user, reason);
	pool_server_gone(s);
	if (s->login_ev)
		event_free(s->login_ev);
	if (s->login_timer)
		event_free(s->login_timer);
	/* First the stream, then libpq, which may still write through its TLS. */
	if (s->has_stream)
		stream_close(&s->st);
	PQfinish(s->conn);
	rq_clear(&s->rq);
	stmt_cache_clear(&s->stmts);
	settings_free(&s->settings);
	free(s);
	pooler_check_shutdown();
}

/*
 * s starts serving c.  If the server's settings are not the client's
 * (another client ran on it, or the client gave its own at start-up), the
 * pooler's own query to set them goes first; its answers are not passed
 * on, and if it fails the client's settings are wrong and it is closed.
 */
void
server_attach(Server *s, Client *c)
{
	char	   *sql;
	const char *enc;
	const char *cur;

	pool_set_state(s, SV_ACTIVE);
	s->client = c;
	s->attached_at = pass_now();
	s->throttled = false;
	s->skipping = false;
	s->setup_state[0] = '\0';
	s->idle_seen = s->busy_seen = 0;
	c->server = s;
	c->state = CL_ACTIVE;
	if (settings_fingerprint(&c->want) == settings_fingerprint(&s->settings))
		return; /* the usual case: nothing to set */
	enc = settings_get(&c->want, "client_encoding");
	cur = settings_get(&s->settings, "client_encoding");
	if (enc && (cur == NULL || strcmp(enc, cur) != 0))
	{
		/*
		 * The encoding first, on its own: the rest of the settings are
		 * read in the encoding in force, which must be the client's.
		 */
		Settings only = {0};

		settings_set(&only, "client_encoding", enc);
		sql = session_sync_sql(&only, &s->settings);
		settings_free(&only);
		pkt_add_query(&s->st.out, sql);
		rq_push(&s->rq, RQ_QUERY, REQ_HIDDEN | REQ_HIDE_ERROR | REQ_SETUP);
		free(sql);
	}
	sql = session_sync_sql(&c->want, &s->settings);
	if (sql)
	{
		pkt_add_query(&s->st.out, sql);
		rq_push(&s->rq, RQ_QUERY, REQ_HIDDEN | REQ_HIDE_ERROR | REQ_SETUP);
		free(sql);
	}
}

/*
 * s's client is done with it (end of a transaction, or of the session):
 * how long it had it goes into the transaction duration histogram.
 */
void
server_detach(Server *s)
{
	if (s->attached_at > 0)
		stats_observe(&s->pool->xact_hist, pass_now() - s->attached_at);
	s->attached_at = 0;
}

/*
 * Forget the session's state before the next client: session pooling, or a
 * client pinned by session state left.
 */
void
server_reset(Server *s)
{
	pool_set_state(s, SV_RESET);
	s->client = NULL;
	pkt_add_query(&s->st.out, "DISCARD ALL");
	stream_flush(&s->st);
}

/*
 * Cancel requests.  PQcancel blocks while it connects, so each runs in a
 * short-lived thread of its own, which reports back through a pipe when
 * done.  Until then the server is not handed to another client: a cancel
 * that arrives late then finds the server idle, where PostgreSQL ignores
 * it, instead of cancelling someone else's query.
 */
typedef struct CancelJob
{
	PGcancel *cancel;
	uint64_t  server_id;
} CancelJob;

static int			 cancel_pipe[2] = {-1, -1};
static struct event *cancel_ev = NULL;

static void *
cancel_thread(void *arg)
{
	CancelJob *job = (CancelJob *) arg;
	char	   err[256];
	ssize_t	   n;

	if (!PQcancel(job->cancel, err, sizeof(err)))
		log_warning("cancel request failed: %s", err);
	PQfreeCancel(job->cancel);
	do
		n = write(cancel_pipe[1], &job->server_id, sizeof(job->server_id));
	while (n < 0 && errno == EINTR);
	free(job);
	return NULL;
}

static Server *
find_server(uint64_t id)
{
	Pool   *p;
	Server *s;

	TAILQ_FOREACH(p, &pools, link)
	{
		TAILQ_FOREACH(s, &p->active, link)
		{
			if (s->id == id)
				return s;
		}
	}
	return NULL;
}

/* Cancel requests finished: servers held back for them may go. */
static void
cancel_done_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t ids[64];
	ssize_t	 n = read(fd, ids, sizeof(ids));

	for (ssize_t i = 0; i < n / (ssize_t) sizeof(uint64_t); i++)
	{
		Server *s = find_server(ids[i]);

		if (s == NULL || --s->cancels > 0 || !s->held)
			continue;
		s->held = false;
		pool_release(s);
	}
}

static bool
cancel_setup(void)
{
	if (cancel_ev)
		return true;
	if (pipe(cancel_pipe) != 0)
		return false;
	evutil_make_socket_nonblocking(cancel_pipe[0]);
	evutil_make_socket_closeonexec(cancel_pipe[0]);
	evutil_make_socket_closeonexec(cancel_pipe[1]);
	cancel_ev = event_new(ev_base, cancel_pipe[0], EV_READ | EV_PERSIST,
						  cancel_done_cb, NULL);
	return cancel_ev && event_add(cancel_ev, NULL) == 0;
}

/* Forward a client's cancel request to s. */
void
server_cancel(Server *s)
{
	CancelJob	  *job;
	pthread_t	   th;
	pthread_attr_t attr;

	if (!cancel_setup())
	{
		log_warning("could not set up cancel requests: %s", strerror(errno));
		return;
	}
	job = calloc(1, sizeof(CancelJob));
	if (job == NULL)
		fatal("out of memory");
	job->cancel = PQgetCancel(s->conn);
	job->server_id = s->id;
	if (job->cancel == NULL)
	{
		free(job);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, cancel_thread, job) != 0)
	{
		log_warning("could not start a thread for a cancel request");
		PQfreeCancel(job->cancel);
		free(job);
	}
	else
		s->cancels++;
	pthread_attr_destroy(&attr);
}

/* The server went away under its client, or sent garbage. */
static void
server_lost(Server *s, const char *reason)
{
	Client *c = s->client;

	if (c)
	{
		s->client = NULL;
		c->server = NULL;
		client_close(c, "08006", reason);
	}
	server_close(s, reason);
}

/*
 * May s go back to the pool, or to a next client?  Not with requests
 * unanswered, a transaction open, or bytes unread.
 */
bool
server_is_clean(const Server *s)
{
	return s->txn_status == 'I' && rq_empty(&s->rq) && buf_len(&s->st.in) == 0;
}

/*
 * Answer the pooler's own requests that have reached the head of the
 * queue: everything before them has been answered and passed on.
 */
void
server_answer_synth(Server *s)
{
	Client	*c = s->client;
	Request *r;

	while ((r = rq_head(&s->rq)) != NULL && r->kind == RQ_SYNTH)
	{
		Buf *out = c ? &c->st.out : NULL;

		if (out)
		{
			switch ((SynthKind) r->synth)
			{
				case SY_PARSE_COMPLETE:
					pkt_add_empty(out, '1');
					break;
				case SY_CLOSE_COMPLETE:
					pkt_add_empty(out, '3');
					break;
				case SY_ERROR:
					pkt_add_error(out, "ERROR", r->sqlstate, "%s", r->name);
					stats_count_error(&s->pool->errors, r->sqlstate);
					break;
				case SY_DEALLOCATE:
					pkt_add_command_complete(out, "DEALLOCATE");
					pkt_add_ready(out, s->txn_status);
					break;
				default:
					log_error("S-%llu: unknown pooler answer %d",
							  (unsigned long long) s->id, r->synth);
					break;
			}
		}
		rq_pop(&s->rq);
	}
}

/*
 * After an error in the extended protocol the server ignores every message
 * up to the next Sync: the requests up to there will not be answered.
 * What they would have done did not happen: statements they prepared are
 * not prepared, the names a client gave them do not exist, statements they
 * closed are still there.
 */
static void
skip_to_sync(Server *s)
{
	Client	*c = s->client;
	Request *r;

	while ((r = rq_head(&s->rq)) != NULL && r->kind != RQ_SYNC)
	{
		if (r->kind == RQ_PARSE && r->stmt)
			stmt_cache_remove(&s->stmts, r->stmt);
		else if (r->kind == RQ_CLOSE && r->stmt &&
				 stmt_cache_get(&s->stmts, r->stmt) == NULL)
			stmt_cache_add(&s->stmts, r->stmt);
		if ((r->flags & REQ_CLIENT_NAME) && c)
		{
			if (r->kind == RQ_SYNTH && r->synth == SY_CLOSE_COMPLETE)
			{
				/* a Close that did not happen: the name is still there */
				if (stmt_map_get(&c->stmts, r->name) == NULL)
					stmt_map_put(&c->stmts, r->name, r->stmt);
			}
			else if (stmt_map_get(&c->stmts, r->name) == r->stmt)
				stmt_map_remove(&c->stmts, r->name);
		}
		rq_pop(&s->rq);
	}
	if (r == NULL)
		s->skipping = true;
}

/*
 * A COPY FROM STDIN began, started by an Execute.  PostgreSQL ignores the
 * Syncs (and Flushes) it reads until CopyDone or CopyFail: libpq sends one
 * with the Execute and one after CopyDone, and only the second is
 * answered.  So the Syncs queued behind the Execute that the client sent
 * before ending the COPY will get no answer.
 */
static void
copy_in_started(Server *s)
{
	Request *head = rq_head(&s->rq);
	uint32_t i = 1;

	if (head->flags & REQ_COPY_END_AFTER)
		return;
	while (i < s->rq.count)
	{
		Request *r = rq_at(&s->rq, i);
		bool	 end = (r->flags & REQ_COPY_END_AFTER) != 0;

		if (r->kind != RQ_SYNC)
			break; /* the server fails the COPY on it */
		rq_remove_at(&s->rq, i);
		if (end)
			break;
	}
}

/* A ParameterStatus: the server's setting changed. */
static void
note_parameter(Server *s, const uint8_t *msg, uint32_t len)
{
	const char *name;
	const char *value;
	const char *tracked;

	if (!pkt_parse_param_status(msg, len, &name, &value))
		return;
	tracked = session_tracked_name(name);
	if (tracked == NULL)
		return; /* server_version, is_superuser, ...: not the client's */
	settings_set(&s->settings, tracked, value);
	/*
	 * The client's own SET, or our set_config in the server's spelling.
	 * After a RESET the server reports its own default; the client's is the
	 * value it gave at start-up, which the next sync sets again.
	 */
	if (s->client)
	{
		const char *mine = settings_get(&s->client->startup, tracked);

		settings_set(&s->client->want, tracked,
					 s->after_reset && mine ? mine : value);
	}
}

/*
 * The transaction on s was rolled back, or failed and will be: the state
 * its commands removed is still there.
 */
static void
forget_uncommitted(Server *s)
{
	s->unpin_at_commit = 0;
	s->reset_at_commit = false;
}

/*
 * ReadyForQuery 'I': whatever the commands of the transaction removed is
 * gone for good (an error or a ROLLBACK since would have forgotten it).
 */
static void
apply_committed(Server *s, Client *c)
{
	if (s->reset_at_commit)
		settings_remove_untracked(&s->settings);
	if (c && c->pool_mode == POOL_TRANSACTION)
		c->pins &= (uint8_t) ~s->unpin_at_commit;
	forget_uncommitted(s);
}

/*
 * A CommandComplete of a client's statement: did it create or end session
 * state?  State made pins the client at once, whatever becomes of the
 * transaction (some of it, advisory locks and SQL prepared statements,
 * survives a rollback).  State removed counts only once the transaction
 * commits (apply_committed): RESET ALL or UNLISTEN * rolled back leave
 * everything as it was.  Returns false if the client was closed for it.
 */
static bool
note_command(Server *s, Request *r, const uint8_t *msg, uint32_t len)
{
	Client	   *c = s->client;
	const char *tag = pkt_string_body(msg, len);
	TagEffect	eff;
	char		what[128];

	if (tag == NULL || c == NULL)
		return true;
	session_tag_effect(tag, rq_next_keywords(r), &eff);
	/* ROLLBACK [TO SAVEPOINT], or COMMIT of a failed transaction */
	if ((tag[0] == 'R' && strcmp(tag, "ROLLBACK") == 0) ||
		(tag[0] == 'P' && strcmp(tag, "PREPARE TRANSACTION") == 0))
		forget_uncommitted(s);
	if (eff.dealloc_all)
	{
		/* prepared statements are not transactional */
		stmt_cache_clear(&s->stmts);
		stmt_map_clear(&c->stmts);
	}
	if (eff.reset)
	{
		s->reset_at_commit = true;
		s->after_reset = true;
	}
	if (c->pool_mode != POOL_TRANSACTION)
		return true;
	s->unpin_at_commit |= eff.unpin;
	s->unpin_at_commit &= (uint8_t) ~eff.pin;
	if (eff.pin == 0 || (c->pins & eff.pin) == eff.pin)
		return true;
	session_pins_to_str(eff.pin, what, sizeof(what));
	if (cf.session_state == SESSION_STATE_ERROR)
	{
		char reason[512];

		snprintf(reason, sizeof(reason),
				 "%s leaves session state on the server, which transaction "
				 "pooling cannot keep (session_state = error); use "
				 "pool_mode = session for this client",
				 what);
		client_close(c, "0A000", reason);
		return false;
	}
	c->pins |= eff.pin;
	s->reset_before_reuse = true;
	log_info("C-%u: pinned to its server by session state (%s)", c->id, what);
	return true;
}

/* Does message type complete a request of this kind? */
static bool
completes(char type, const Request *r)
{
	switch (type)
	{
		case '1':
			return r->kind == RQ_PARSE;
		case '2':
			return r->kind == RQ_BIND;
		case '3':
			return r->kind == RQ_CLOSE;
		case 'n':
		case 'T':
			return r->kind == RQ_DESCRIBE;
		case 'C':
		case 'I':
		case 's':
			return r->kind == RQ_EXECUTE;
		case 'Z':
			return r->kind == RQ_SYNC || r->kind == RQ_QUERY ||
				   r->kind == RQ_FUNCTION;
		default:
			return false;
	}
}

/* Messages that answer exactly one request, never part of a longer one. */
static bool
is_completion_only(char type)
{
	return type == '1' || type == '2' || type == '3' || type == 'n' ||
		   type == 's' || type == 'Z';
}

/* Messages no request asked for, which may come at any time. */
static bool
is_async(char type)
{
	return type == 'N' || type == 'A' || type == 'S';
}

/*
 * Move the *batch bytes of whole messages at the front of s's input to c:
 * a whole buffer chain changes hands without a copy.
 */
static void
pass_batch(Server *s, Client *c, size_t *batch)
{
	if (*batch == 0)
		return;
	s->pool->bytes_out += *batch;
	buf_move(&s->st.in, &c->st.out, *batch);
	*batch = 0;
}

/*
 * Is s's transaction over, with nothing to keep it: ReadyForQuery 'I' came
 * with nothing left to answer, its client is in transaction pooling and
 * not pinned, and no message of the client is half-way to it (a streamed
 * CopyData that outlived a failed COPY: the rest must reach this server,
 * which drops it, before another client's bytes do).
 */
bool
server_may_go(const Server *s)
{
	const Client *c = s->client;

	return c && s->txn_status == 'I' && rq_empty(&s->rq) &&
		   c->pool_mode == POOL_TRANSACTION && c->pins == 0 &&
		   (c->relay_left == 0 || c->relay_discard);
}

/*
 * End of the transaction: give s back to the pool.  If its client was
 * pinned here, the state it removed is gone as far as the pooler can tell;
 * DISCARD ALL first makes sure of it.  The caller checked server_may_go.
 */
void
server_end_transaction(Server *s)
{
	Client *c = s->client;

	relay_forget_portals(c);
	s->pool->xact_count++;
	c->server = NULL;
	c->state = CL_IDLE;
	c->idle_seen = 0; /* idle from now, as timeouts.c will see */
	server_detach(s);
	if (s->reset_before_reuse)
		server_reset(s);
	else
		pool_release(s);
	client_server_message_done(c);
}

/*
 * A DataRow or CopyData for the client, of which only the start has come
 * (pkt_peek_at gave its type and total length): stream it to the client as
 * it arrives rather than hold it whole (a SELECT of a 500 MB value).  The
 * complete messages before it go first.  True if it was started.
 */
static bool
stream_start(Server *s, char type, uint32_t len, size_t *batch)
{
	Request *r = rq_head(&s->rq);

	if ((type != 'D' && type != 'd') || len < STREAM_MIN ||
		s->state != SV_ACTIVE || s->client == NULL || r == NULL ||
		(r->flags & REQ_HIDDEN))
		return false;
	pass_batch(s, s->client, batch);
	s->relay_left = len;
	return true;
}

/*
 * Pass on what has come of the message being streamed (dropped if its
 * client is gone).  Returns true once all of it has.
 */
static bool
stream_part(Server *s)
{
	Buf	  *in = &s->st.in;
	size_t avail = buf_len(in);
	size_t n = avail < s->relay_left ? avail : s->relay_left;

	if (s->client && !s->client->dead)
	{
		buf_move(in, &s->client->st.out, n);
		s->pool->bytes_out += n;
	}
	else
		buf_drain(in, n);
	s->relay_left -= (uint32_t) n;
	return s->relay_left == 0;
}

/*
 * The server's answers.  Each message is matched against the request at
 * the head of the queue; messages for the client are moved in batches (a
 * whole buffer chain changes hands without a copy), those answering the
 * pooler's own requests are dropped, long rows are streamed.  At
 * ReadyForQuery 'I' with nothing left to answer, the transaction is over
 * and the server goes back to the pool.
 */
static void
server_read_cb(void *arg)
{
	Server	 *s = (Server *) arg;
	Client	 *to = s->client; /* flushed once at the end */
	Buf		 *in = &s->st.in;
	size_t	  batch = 0; /* complete messages not yet moved to "to" */
	char	  type;
	char	  status;
	uint32_t  len;
	PktStatus st;

	for (;;)
	{
		Client	*c = s->client;
		Request *r = rq_head(&s->rq);
		bool	 hide;
		bool	 pop = false;
		uint8_t *msg = NULL;

		if (s->relay_left > 0)
		{
			/* batch is 0 here: stream_start moved it first */
			if (!stream_part(s))
			{
				st = PKT_INCOMPLETE;
				break;
			}
			continue;
		}
		len = 0;
		st = pkt_peek_at(in, batch, &type, &len, &status);
		if (st == PKT_INCOMPLETE && len > 0 &&
			stream_start(s, type, len, &batch))
			continue;
		if (st != PKT_READY)
			break;

		/*
		 * Rows, and the description of a query's rows: passed on with
		 * nothing to note or answer.  Most of the messages a server sends.
		 */
		if ((type == 'D' || (type == 'T' && r && r->kind != RQ_DESCRIBE)) &&
			r && c && !(r->flags & REQ_HIDDEN) && s->state != SV_RESET)
		{
			batch += len;
			continue;
		}

		if (type == 'Z')
		{
			s->txn_status = status;
			s->idle_seen = s->busy_seen = 0; /* timeouts.c starts again */
		}
		else if (type == 'E')
			forget_uncommitted(s); /* the transaction is lost */
		if (type == 'S' || type == 'E' ||
			(type == 'C' && c && r &&
			 (r->kind == RQ_QUERY || r->kind == RQ_EXECUTE)))
			msg = buf_data(in) + batch; /* in place, read only */
		if (type == 'S')
			note_parameter(s, msg, len);

		if (s->state == SV_RESET || c == NULL)
		{
			/* Not for any client: DISCARD ALL's answer, or unsolicited. */
			buf_drain(in, len);
			if (s->state == SV_RESET && type == 'Z')
			{
				stmt_cache_clear(&s->stmts);
				settings_remove_untracked(&s->settings);
				forget_uncommitted(s);
				s->reset_before_reuse = false;
				rq_clear(&s->rq);
				if (status == 'I')
					pool_release(s);
				else
					server_close(s, "reset failed");
				return;
			}
			if (type == 'E')
			{
				server_close(s, "error from an idle server");
				return;
			}
			continue;
		}

		if (r == NULL)
		{
			if (!is_async(type) && type != 'E')
			{
				log_error("S-%llu: message '%c' answers no request",
						  (unsigned long long) s->id, type);
				server_lost(s, "unexpected message from the server");
				return;
			}
			hide = false;
		}
		else
		{
			hide = (r->flags & REQ_HIDDEN) != 0;
			if (type == 'E')
			{
				hide = (r->flags & REQ_HIDE_ERROR) != 0;
				if (!hide)
					stats_count_error(&s->pool->errors,
									  pkt_error_field(msg, len, 'C'));
				if ((r->flags & REQ_USES_STMT) && r->stmt)
				{
					const char *code = pkt_error_field(msg, len, 'C');

					/*
					 * "cached plan must not change result type": the server's
					 * statement is stale for good.  Forget it, so that the
					 * client's Close + Parse prepares it again (Close first).
					 * "does not exist": something dropped it behind the
					 * pooler's back (a DEALLOCATE in a function): the next
					 * use prepares it again, for every client.
					 */
					if (code && (strcmp(code, "0A000") == 0 ||
								 strcmp(code, "26000") == 0))
						stmt_cache_remove(&s->stmts, r->stmt);
				}
				if (r->flags & REQ_SETUP)
				{
					const char *code = pkt_error_field(msg, len, 'C');
					const char *text = pkt_error_field(msg, len, 'M');

					snprintf(s->setup_state, sizeof(s->setup_state), "%s",
							 code ? code : "XX000");
					snprintf(s->setup_error, sizeof(s->setup_error), "%s",
							 text ? text : "could not apply settings");
				}
			}
			else if (completes(type, r))
			{
				pop = true;
				if (type == '1' && r->stmt)
				{
					CachedStmt *e = stmt_cache_get(&s->stmts, r->stmt);

					if (e)
						e->confirmed = true;
				}
			}
			else if (type == 'G' && r->kind == RQ_EXECUTE)
				copy_in_started(s);
			else if (is_completion_only(type))
			{
				log_error("S-%llu: message '%c' does not answer request %d",
						  (unsigned long long) s->id, type, r->kind);
				server_lost(s, "unexpected message from the server");
				return;
			}
			if (type == 'C' && msg && !hide)
			{
				bool ok = note_command(s, r, msg, len);

				if (!ok)
				{
					return; /* the client was closed, and s with it */
				}
			}
		}

		if (type == 'C' && r && (r->flags & REQ_RETAG))
			hide = true;
		if (hide)
		{
			pass_batch(s, c, &batch);
			buf_drain(in, len);
			if (type == 'C' && (r->flags & REQ_RETAG))
				pkt_add_command_complete(&c->st.out, "DEALLOCATE");
		}
		else
			batch += len;

		if (type == 'E' && r && rq_is_extended(r))
			skip_to_sync(s);
		else if (pop)
		{
			bool setup_failed = (r->flags & REQ_SETUP) && s->setup_state[0];

			rq_pop(&s->rq);
			if (setup_failed)
			{
				char reason[300];

				snprintf(reason, sizeof(reason), "%s", s->setup_error);
				s->client = NULL;
				c->server = NULL;
				client_close(c, s->setup_state, reason);
				server_close(s, "could not apply a client's settings");
				return;
			}
		}
		if ((r = rq_head(&s->rq)) != NULL && r->kind == RQ_SYNTH)
		{
			pass_batch(s, c, &batch);
			server_answer_synth(s);
		}

		if (type == 'Z')
		{
			s->after_reset = false;
			if (status == 'I')
				apply_committed(s, c);
		}
		if (type == 'Z' && status == 'I' && server_may_go(s))
		{
			pass_batch(s, c, &batch);
			server_end_transaction(s);
			return;
		}
	}
	if (st == PKT_BAD)
	{
		server_lost(s, "invalid message from the server");
		return;
	}
	if (to && !to->dead)
		pass_batch(s, to, &batch);
	if (to && !to->dead)
	{
		stream_flush(&to->st);
		if (stream_pending(&to->st) > FLOW_HIGH)
		{
			/* The client reads slowly: wait for it (server_unthrottle). */
			s->throttled = true;
			stream_read(&s->st, false);
		}
	}
}

/* The client caught up: read from the server again. */
void
server_unthrottle(Server *s)
{
	if (!s->throttled)
		return;
	s->throttled = false;
	stream_read(&s->st, true);
	server_read_cb(s); /* what is already buffered */
}

/* The server took in what its client sent: let the client go on. */
static void
server_drain_cb(void *arg)
{
	Server *s = (Server *) arg;

	if (s->client)
		client_unthrottle(s->client);
}

/*
 * The server's socket failed or closed.  Its host may be gone: a health
 * check of it runs at once (a backend ended by pg_terminate_backend must
 * not take its host down with it).
 */
static void
server_event_cb(void *arg, const char *why)
{
	Server *s = (Server *) arg;

	log_info("S-%llu: %s/%s: %s", (unsigned long long) s->id, s->pool->dbname,
			 s->pool->user, why);
	host_check_soon(s->host);
	server_lost(s, "server closed the connection unexpectedly");
}
