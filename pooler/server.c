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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "auth.h"
#include "client.h"
#include "log.h"
#include "main.h"
#include "pool.h"
#include "protocol.h"
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
	return mono_now() - s->created;
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
		}
	}
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

/* Start logging a new server into p's database.  Never fails at once. */
Server *
server_open(Pool *p)
{
	const char	  *kw[12];
	const char	  *val[12];
	int			   n = 0;
	const char	  *password = p->db.password;
	Server		  *s = calloc(1, sizeof(Server));
	struct timeval tv;

	if (s == NULL)
		fatal("out of memory");
	s->id = next_server_id++;
	s->pool = p;
	s->state = SV_LOGIN;
	s->created = mono_now();
	s->connect_time = time(NULL);
	TAILQ_INSERT_TAIL(&p->login, s, link);
	p->n_login++;

	if (password == NULL)
	{
		password = auth_password(p->db.user ? p->db.user : p->user);
		if (password && strncmp(password, "md5", 3) == 0 &&
			strlen(password) == 35)
			password = NULL; /* a hash cannot log in */
	}
	kw[n] = "host", val[n++] = p->db.host;
	kw[n] = "port", val[n++] = p->db.port;
	kw[n] = "dbname", val[n++] = p->db.dbname;
	kw[n] = "user", val[n++] = p->db.user ? p->db.user : p->user;
	if (password)
		kw[n] = "password", val[n++] = password;
	kw[n] = "application_name", val[n++] = "apiscale-pooler";
	kw[n] = "sslmode", val[n++] = sslmode_to_str(cf.server_tls_sslmode);
	/* Empty: libpq's defaults (~/.postgresql/root.crt, ...). */
	if (cf.server_tls_ca_file[0] != '\0')
		kw[n] = "sslrootcert", val[n++] = cf.server_tls_ca_file;
	if (cf.server_tls_cert_file[0] != '\0')
		kw[n] = "sslcert", val[n++] = cf.server_tls_cert_file;
	if (cf.server_tls_key_file[0] != '\0')
		kw[n] = "sslkey", val[n++] = cf.server_tls_key_file;
	kw[n] = NULL, val[n] = NULL;

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
	free(s);
	pooler_check_shutdown();
}

void
server_attach(Server *s, Client *c)
{
	pool_set_state(s, SV_ACTIVE);
	s->client = c;
	s->outstanding = 0;
	s->throttled = false;
	c->server = s;
	c->state = CL_ACTIVE;
}

/* Session mode: forget the session's state before the next client. */
void
server_reset(Server *s)
{
	static const char query[] = "DISCARD ALL";
	uint32_t		  len = htonl((uint32_t) (4 + sizeof(query)));
	struct evbuffer	 *out = s->st.out;

	pool_set_state(s, SV_RESET);
	s->client = NULL;
	evbuffer_add(out, "Q", 1);
	evbuffer_add(out, &len, 4);
	evbuffer_add(out, query, sizeof(query));
	stream_flush(&s->st);
}

static void *
cancel_thread(void *arg)
{
	PGcancel *cancel = (PGcancel *) arg;
	char	  err[256];

	if (!PQcancel(cancel, err, sizeof(err)))
		log_warning("cancel request failed: %s", err);
	PQfreeCancel(cancel);
	return NULL;
}

/*
 * Forward a client's cancel request to s.  PQcancel blocks while it
 * connects, so it runs in a short-lived thread of its own.
 */
void
server_cancel(Server *s)
{
	PGcancel	  *cancel = PQgetCancel(s->conn);
	pthread_t	   th;
	pthread_attr_t attr;

	if (cancel == NULL)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, cancel_thread, cancel) != 0)
	{
		log_warning("could not start a thread for a cancel request");
		PQfreeCancel(cancel);
	}
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

static void
server_read_cb(void *arg)
{
	Server			*s = (Server *) arg;
	Client			*to = s->client; /* flushed once at the end */
	struct evbuffer *in = s->st.in;
	size_t			 batch = 0; /* complete messages not yet moved to "to" */
	char			 type;
	char			 status;
	uint32_t		 len;
	PktStatus		 st;

	/*
	 * Messages for the client are moved in one piece (a whole buffer chain
	 * changes hands without a copy); we only look at their headers, to see
	 * where a transaction ends.
	 */
	while ((st = pkt_peek_at(in, batch, &type, &len, &status)) == PKT_READY)
	{
		Client *c = s->client;

		if (type == 'Z')
			s->txn_status = status;

		if (s->state == SV_RESET || c == NULL)
		{
			/* Not for any client: DISCARD ALL's answer, or unsolicited. */
			evbuffer_drain(in, len);
			if (s->state == SV_RESET && type == 'Z')
			{
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

		batch += len;
		if (type != 'Z')
			continue;
		if (s->outstanding > 0)
			s->outstanding--;
		if (status == 'I' && s->outstanding == 0 &&
			cf.pool_mode == POOL_TRANSACTION)
		{
			/* End of the transaction: give the server back. */
			s->pool->bytes_out += batch;
			evbuffer_remove_buffer(in, c->st.out, batch);
			s->pool->xact_count++;
			c->server = NULL;
			c->state = CL_IDLE;
			pool_release(s);
			client_server_message_done(c);
			return;
		}
	}
	if (st == PKT_BAD)
	{
		server_lost(s, "invalid message from the server");
		return;
	}
	if (batch > 0 && to && !to->dead)
	{
		s->pool->bytes_out += batch;
		evbuffer_remove_buffer(in, to->st.out, batch);
	}
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

static void
server_event_cb(void *arg, const char *why)
{
	Server *s = (Server *) arg;

	log_info("S-%llu: %s/%s: %s", (unsigned long long) s->id, s->pool->dbname,
			 s->pool->user, why);
	server_lost(s, "server closed the connection unexpectedly");
}
