/*
 * client.c
 *		Application connections: start-up, authentication, and passing
 *		messages to the server the pool lends for each transaction.
 *
 * A client's unread messages stay in its input buffer while it waits for a
 * server (reading is paused: back-pressure), and are passed on, whole
 * message by whole message, once a server is attached (relay.c does the
 * passing).  The server end (server.c) gives the server back at
 * ReadyForQuery 'I' with no request outstanding, and calls
 * client_server_message_done.
 *
 * TLS (client_tls_sslmode): an SSLRequest over TCP is answered 'S' and the
 * stream switches to TLS; the start-up packet and all that follows go
 * through it.  Bytes the client sent after its SSLRequest but before the
 * handshake are refused, not read as plain text (CVE-2021-23214).  With
 * require or stricter, a TCP client in plain text is refused with 28000, as
 * a pg_hba.conf without a matching host line would; Unix sockets are local
 * and libpq never asks for TLS over them, so they stay in plain text.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "auth.h"
#include "client.h"
#include "intern.h"
#include "log.h"
#include "process.h"
#include "peers.h"
#include "pool.h"
#include "protocol.h"
#include "relay.h"
#include "scram.h"
#include "server.h"
#include "tls.h"

struct ClientList all_clients = TAILQ_HEAD_INITIALIZER(all_clients);
int				  n_clients = 0;
static uint32_t	  next_client_id = 1;

static void client_process(Client *c);
static void client_read_cb(void *arg);
static void client_event_cb(void *arg, const char *why);
static void client_drain_cb(void *arg);

/* The admin console (admin.c, a layer above), given at start-up. */
static ConsoleHandlers console;

void
client_set_console(const ConsoleHandlers *handlers)
{
	console = *handlers;
}

const char *
client_state_to_str(ClientState state)
{
	switch (state)
	{
		case CL_STARTUP:
			return "startup";
		case CL_AUTH:
			return "auth";
		case CL_LOGIN_WAIT:
			return "login";
		case CL_IDLE:
			return "idle";
		case CL_WAITING:
			return "waiting";
		case CL_ACTIVE:
			return "active";
	}
	return "unknown";
}

/*
 * client_login_timeout: a client that has not logged in by then is closed,
 * as PostgreSQL's authentication_timeout does; otherwise max_client_conn
 * silent sockets would lock everybody out.
 */
static void
login_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	Client *c = (Client *) arg;

	if (c->state == CL_STARTUP)
		client_close(c, NULL,
					 "no start-up packet within client_login_timeout");
	else if (c->state == CL_AUTH)
		client_close(c, "08P01",
					 "canceling authentication due to timeout "
					 "(client_login_timeout)");
}

/*
 * tcp_keepalive and friends on a client's TCP socket, so that a client that
 * vanished (a partition, a host that went down) is found out: keepalive
 * probes while it is quiet, tcp_user_timeout while the pooler's answers go
 * unacknowledged.  0 leaves the kernel's default.  Server sockets get the
 * same through libpq (server_conninfo).
 */
static void
set_tcp_options(int fd)
{
	int on = cf.tcp_keepalive ? 1 : 0;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0)
		log_warning("could not set SO_KEEPALIVE: %s", strerror(errno));
	if (on && cf.tcp_keepidle > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &cf.tcp_keepidle,
				   sizeof(int));
	if (on && cf.tcp_keepintvl > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &cf.tcp_keepintvl,
				   sizeof(int));
	if (on && cf.tcp_keepcnt > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cf.tcp_keepcnt, sizeof(int));
	if (cf.tcp_user_timeout > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &cf.tcp_user_timeout,
				   sizeof(int));
}

/*
 * a as dotted quad into out (at least 16 bytes), as inet_ntop(AF_INET)
 * writes it.  glibc's inet_ntop formats it with sprintf: about 1,700
 * instructions, one in sixteen of what a connection cost the pooler in a
 * reconnect storm.
 */
static void
format_ipv4(const struct in_addr *a, char *out)
{
	const uint8_t *b = (const uint8_t *) &a->s_addr; /* network order */

	for (int i = 0; i < 4; i++)
	{
		unsigned v = b[i];

		if (v >= 100)
			*out++ = (char) ('0' + v / 100);
		if (v >= 10)
			*out++ = (char) ('0' + v / 10 % 10);
		*out++ = (char) ('0' + v % 10);
		*out++ = i < 3 ? '.' : '\0';
	}
}

void
client_accept(int fd, struct sockaddr *addr, int socklen)
{
	Client *c = calloc(1, sizeof(Client));

	if (c == NULL)
		fatal("out of memory");
	c->id = next_client_id++;
	if (c->id == 0)
		c->id = next_client_id++;
	auth_random(&c->cancel_key, sizeof(c->cancel_key));
	c->state = CL_STARTUP;
	c->connect_time = time(NULL);
	if (addr->sa_family == AF_INET)
	{
		struct sockaddr_in *in = (struct sockaddr_in *) addr;

		format_ipv4(&in->sin_addr, c->addr);
		c->port = ntohs(in->sin_port);
	}
	else if (addr->sa_family == AF_INET6)
	{
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) addr;

		inet_ntop(AF_INET6, &in6->sin6_addr, c->addr, sizeof(c->addr));
		c->port = ntohs(in6->sin6_port);
	}
	else
		snprintf(c->addr, sizeof(c->addr), "unix");

	if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)
	{
		int on = 1;

		/* Replies are whole batches: send them without Nagle's delay. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		set_tcp_options(fd);
	}
	if (!stream_init(&c->st, fd, true, client_read_cb, client_drain_cb,
					 client_event_cb, c))
	{
		log_error("could not create a buffer for a client socket");
		evutil_closesocket(fd);
		free(c);
		return;
	}
	stream_read(&c->st, true);
	TAILQ_INSERT_TAIL(&all_clients, c, all);
	n_clients++;
	if (cf.client_login_timeout > 0)
	{
		struct timeval tv;

		tv.tv_sec = (time_t) cf.client_login_timeout;
		tv.tv_usec =
			(suseconds_t) ((cf.client_login_timeout - (double) tv.tv_sec) *
						   1e6);
		c->login_timer = evtimer_new(ev_base, login_timeout_cb, c);
		if (c->login_timer)
			evtimer_add(c->login_timer, &tv);
	}
	/* The kernel held it until its first bytes came (main.c): read them
	 * now.  c may be closed by this; nothing here touches it after. */
	if (cf.tcp_defer_accept > 0 && addr->sa_family != AF_UNIX)
		stream_read_now(&c->st);
}

/*
 * Closing a socket that still has unread input makes the kernel send a
 * reset, and the peer may then lose the last message we wrote (a FATAL
 * error, say).  So a closed client lingers: its last words are flushed,
 * its write side is shut down, and whatever it still sends is discarded
 * until it closes too, or LINGER_SECONDS pass.  Only then is it freed,
 * always from the event loop, never under a caller that still holds c.
 * A client with nothing to hear does not linger (see client_close): it is
 * freed at the end of the loop pass (client_end_of_pass).
 */
#define LINGER_SECONDS 2

/* The longest password or SASL message accepted, as PostgreSQL's. */
#define MAX_AUTH_LEN 65535

static void
client_free(Client *c)
{
	if (c->linger_timer)
		event_free(c->linger_timer);
	if (c->login_timer)
		event_free(c->login_timer);
	stream_close(&c->st);
	stmt_map_clear(&c->stmts);
	settings_free(&c->want);
	settings_free(&c->startup);
	relay_forget_portals(c);
	free(c->portals);
	scram_free(c->scram);
	intern_put(c->user);
	intern_put(c->dbname);
	free(c);
}

static void
linger_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	client_free((Client *) arg);
}

/*
 * What a lingering client still sends is discarded, up to LINGER_MAX_BYTES:
 * past that it is not waiting for our last words but flooding, and is let
 * go at once (freed from its own read callback, as linger_event does).
 */
#define LINGER_MAX_BYTES (1024 * 1024)

static void
linger_read(void *arg)
{
	Client *c = (Client *) arg;
	size_t	n = buf_len(&c->st.in);

	buf_drain(&c->st.in, n);
	c->linger_discarded += n;
	if (c->linger_discarded > LINGER_MAX_BYTES)
		client_free(c);
}

static void
linger_drain(void *arg)
{
	Client *c = (Client *) arg;

	if (stream_pending(&c->st) == 0)
		stream_shutdown(&c->st); /* close_notify with TLS, then FIN */
}

static void
linger_event(void *arg, const char *why)
{
	client_free((Client *) arg);
}

/*
 * Clients closed without lingering (client_close), freed at the end of the
 * loop pass by client_end_of_pass, once no caller holds them.
 */
static TAILQ_HEAD(, Client) ended = TAILQ_HEAD_INITIALIZER(ended);

void
client_end_of_pass(void)
{
	Client *c;

	while ((c = TAILQ_FIRST(&ended)) != NULL)
	{
		TAILQ_REMOVE(&ended, c, all);
		client_free(c);
	}
}

/*
 * After a Terminate, or when the connection ended or failed, may c close
 * at once?  Yes if all it was sent is written (and no TLS session is left
 * to close): then lingering (shut down, wait for its end of file, close)
 * protects nothing, and in a reconnect storm cost a system call, a read
 * and a loop pass per connection (PgBouncer closes at once too).  A reset
 * is sent only if the client sent more after its Terminate, and then
 * nothing of ours is left for it to lose.
 */
static bool
nothing_left(Client *c)
{
	if (c->st.tls)
		return false;
	stream_flush(&c->st);
	return stream_pending(&c->st) == 0;
}

static void
client_linger(Client *c)
{
	struct timeval tv = {LINGER_SECONDS, 0};

	buf_drain(&c->st.in, buf_len(&c->st.in));
	c->st.on_read = linger_read;
	c->st.on_drain = linger_drain;
	c->st.on_event = linger_event;
	stream_flush(&c->st);
	if (stream_pending(&c->st) == 0)
		stream_shutdown(&c->st);
	stream_read(&c->st, true);
	c->linger_timer = evtimer_new(ev_base, linger_timeout_cb, c);
	evtimer_add(c->linger_timer, &tv);
}

/*
 * End c's connection, with a FATAL error first if sqlstate is given.  Its
 * server goes back to the pool if it is clean, and is closed otherwise:
 * a server is never handed on in the middle of a transaction.
 */
void
client_close(Client *c, const char *sqlstate, const char *reason)
{
	Server *s = c->server;

	if (c->dead)
		return;
	if (reason)
		log_info("C-%u: %s/%s@%s:%d closing: %s", c->id,
				 c->dbname ? c->dbname : "-", c->user ? c->user : "-", c->addr,
				 c->port, reason);
	if (c->queued)
		pool_leave_queue(c);
	if (sqlstate && c->pool)
		stats_count_error(&c->pool->errors, sqlstate);
	if (s)
	{
		c->server = NULL;
		s->client = NULL;
		server_detach(s);
		if (!server_is_clean(s) || (c->relay_left > 0 && !c->relay_discard))
			server_close(s, "client left in the middle of a transaction");
		else if (c->pool_mode == POOL_SESSION || c->pins ||
				 s->reset_before_reuse)
			server_reset(s);
		else
			pool_release(s);
	}
	if (c->pool && c->state != CL_STARTUP && c->state != CL_AUTH)
	{
		c->pool->n_clients--;
		pool_check_unused(c->pool);
		c->pool = NULL; /* it may be freed from now on */
	}
	TAILQ_REMOVE(&all_clients, c, all);
	n_clients--;

	c->dead = true;
	if (sqlstate)
		pkt_add_error(&c->st.out, "FATAL", sqlstate, "%s", reason);
	if (sqlstate == NULL && reason == NULL && nothing_left(c))
	{
		stream_read(&c->st, false);
		TAILQ_INSERT_TAIL(&ended, c, all);
	}
	else
		client_linger(c);
	pooler_check_shutdown();
}

static void
send_ready(Client *c)
{
	pkt_add_ready(&c->st.out, c->server ? c->server->txn_status : 'I');
}

/*
 * Logged in: the server's parameters (with the client's own settings where
 * it gave some), our cancel key, ready.  From here on, c's tracked
 * parameters have a value each, which follows it to every server.
 */
void
client_welcome(Client *c)
{
	Pool	   *p = c->pool;
	const char *value;
	int			take[32]; /* the pool's tracked parameters c takes */
	int			ntake = 0;

	for (int i = 0; i < p->nparams; i++)
	{
		const char *name = p->param_names[i];

		value = settings_get(&c->want, name);
		if (value == NULL)
		{
			value = p->param_values[i];
			if (session_tracked_name(name))
			{
				if (ntake < (int) (sizeof(take) / sizeof(take[0])))
					take[ntake++] = i;
				else
					settings_add(&c->want, name, value);
			}
		}
		pkt_add_param(&c->st.out, name, value);
	}
	/*
	 * One allocation for them all and application_name (which the server
	 * does not report at login), not one per two: exactly the room needed,
	 * as an idle client keeps it.
	 */
	settings_reserve(&c->want,
					 c->want.n + ntake +
						 (settings_get(&c->want, "application_name") == NULL));
	for (int k = 0; k < ntake; k++) /* both interned */
		settings_add(&c->want, p->param_names[take[k]],
					 p->param_values[take[k]]);
	value = settings_get(&c->want, "application_name");
	if (value == NULL)
	{
		value = "";
		settings_set(&c->want, "application_name", value);
	}
	pkt_add_param(&c->st.out, "application_name", value);
	pkt_add_backend_key(&c->st.out, peers_key_pid(c->id), c->cancel_key);
	pkt_add_ready(&c->st.out, 'I');
	c->state = CL_IDLE;
	if (c->throttled)
	{
		c->throttled = false;
		stream_read(&c->st, true);
	}
	log_debug("C-%u: %s/%s@%s:%d logged in", c->id, c->dbname, c->user,
			  c->addr, c->port);
	client_process(c);
}

static void
auth_ok(Client *c)
{
	DbConfig *db;

	if (c->login_timer)
	{
		event_free(c->login_timer); /* not kept for an idle client's life */
		c->login_timer = NULL;
	}
	pkt_add_auth(&c->st.out, 0, NULL, 0);
	if (c->admin)
	{
		console.welcome(c);
		c->state = CL_IDLE;
		return;
	}
	/* only now: unauthenticated names must not make pools */
	db = config_find_db(&cf, c->dbname);
	if (db == NULL)
	{
		char err[256];

		snprintf(err, sizeof(err), "database \"%s\" does not exist",
				 c->dbname);
		client_close(c, "3D000", err);
		return;
	}
	c->pool = pool_get(c->dbname, c->user, db);
	if (c->pool == NULL)
	{
		char err[256];

		snprintf(err, sizeof(err),
				 "too many pools: max_pools (%d) database/user pairs are in "
				 "use",
				 cf.max_pools);
		client_close(c, "53300", err);
		return;
	}
	c->pool->n_clients++;
	/* fixed for the connection's life: a RELOAD must not change its rules */
	c->pool_mode = c->pool->set.pool_mode;
	c->rewrite =
		c->pool_mode == POOL_TRANSACTION && cf.max_prepared_statements > 0;
	if (c->pool->nparams > 0)
		client_welcome(c);
	else
		pool_want_params(c->pool, c);
}

static Client *
find_client(uint32_t id, uint32_t key)
{
	Client *c;

	TAILQ_FOREACH(c, &all_clients, all)
	{
		if (peers_key_pid(c->id) == id && c->cancel_key == key)
			return c;
	}
	return NULL;
}

/*
 * Does user log in with SCRAM?  When configured, and under md5 too for a
 * user whose auth_file entry is a SCRAM secret, as PostgreSQL does: no md5
 * answer can be checked against a SCRAM secret.
 */
static bool
wants_scram(const char *user)
{
	const char *stored = auth_password(user);

	return cf.auth_type == AUTH_SCRAM_SHA_256 ||
		   (cf.auth_type == AUTH_MD5 && stored != NULL &&
			auth_secret_kind(stored) == AUTH_SECRET_SCRAM);
}

/* A client over a Unix socket (client_accept names its address "unix"). */
static bool
client_is_local(const Client *c)
{
	return strcmp(c->addr, "unix") == 0;
}

/* Log why a client's TLS went wrong before it logged in, then close. */
static void
client_tls_event_cb(void *arg, const char *why)
{
	Client *c = (Client *) arg;

	/* A probe that hangs up after the handshake is no news. */
	if (c->state == CL_STARTUP && strcmp(why, "connection closed") != 0)
		log_info("C-%u: -/-@%s:%d closing: %s", c->id, c->addr, c->port, why);
	client_event_cb(arg, why);
}

/*
 * Answer an SSLRequest: 'S' and a TLS handshake when client TLS is on and c
 * is a TCP client in plain text, else 'N'.  Returns false if c is gone.
 */
static bool
start_tls(Client *c)
{
	if (tls_client_ctx == NULL || client_is_local(c) || stream_ssl(&c->st))
	{
		buf_add(&c->st.out, "N", 1);
		return true;
	}
	if (buf_len(&c->st.in) > 0)
	{
		client_close(c, "08P01",
					 "received unencrypted data after SSL request");
		return false;
	}
	buf_add(&c->st.out, "S", 1);
	if (!stream_tls_accept(&c->st, tls_client_ctx))
	{
		client_close(c, NULL, "could not start TLS");
		return false;
	}
	c->st.on_event = client_tls_event_cb;
	return true;
}

/*
 * May c, as it came in (TLS or not, with which certificate), log in as
 * c->user?  If not, c is closed with 28000 and false returned.
 */
static bool
tls_allows(Client *c)
{
	SSL	   *ssl = stream_ssl(&c->st);
	char	cn[256];
	char	err[512];
	SslMode mode = cf.client_tls_sslmode;

	if (mode >= SSLMODE_REQUIRE && ssl == NULL && !client_is_local(c))
	{
		snprintf(err, sizeof(err),
				 "SSL connection is required (client_tls_sslmode = %s) for "
				 "user \"%s\", database \"%s\"",
				 sslmode_to_str(mode), c->user, c->dbname);
		client_close(c, "28000", err);
		return false;
	}
	/* As PostgreSQL's clientcert=verify-full: the certificate names the user. */
	if (mode == SSLMODE_VERIFY_FULL && ssl != NULL)
	{
		if (!tls_peer_common_name(ssl, cn, sizeof(cn)))
		{
			snprintf(err, sizeof(err),
					 "certificate authentication failed for user \"%s\": "
					 "no usable common name in the client certificate",
					 c->user);
			client_close(c, "28000", err);
			return false;
		}
		if (strcmp(cn, c->user) != 0)
		{
			snprintf(err, sizeof(err),
					 "certificate authentication failed for user \"%s\": "
					 "the client certificate's common name is \"%s\"",
					 c->user, cn);
			client_close(c, "28000", err);
			return false;
		}
	}
	return true;
}

/* Returns false if c is gone or must stop reading. */
static bool
handle_startup(Client *c, uint32_t len)
{
	uint8_t	  *pkt = malloc(len);
	StartupPkt sp;
	char	   err[256];
	bool	   ok;

	if (pkt == NULL)
		fatal("out of memory");
	buf_remove(&c->st.in, pkt, len);
	ok = pkt_parse_startup(pkt, len, &sp, err, sizeof(err));
	free(pkt);
	if (!ok)
	{
		client_close(c, "08P01", err);
		return false;
	}
	if (sp.code == CODE_SSL || sp.code == CODE_GSSENC)
	{
		/*
		 * One of each per connection, as PostgreSQL allows: a second one is
		 * a protocol error (and answering each would let a client that
		 * does not read queue a byte for every 8 it sends).
		 */
		bool *done = sp.code == CODE_SSL ? &c->ssl_done : &c->gss_done;

		if (*done || stream_ssl(&c->st))
		{
			snprintf(err, sizeof(err),
					 "unsupported frontend protocol %u.%u: server supports "
					 "3.0 to 3.0",
					 sp.code >> 16, sp.code & 0xffff);
			client_close(c, "0A000", err);
			return false;
		}
		*done = true;
		if (sp.code == CODE_SSL)
			return start_tls(c);
		buf_add(&c->st.out, "N", 1); /* no GSSAPI encryption */
		return true;
	}
	if (sp.code == CODE_CANCEL)
	{
		Client *target = NULL;

		if (!peers_forward_cancel(sp.cancel_pid, sp.cancel_key))
			target = find_client(sp.cancel_pid, sp.cancel_key);

		if (target && target->server)
		{
			log_info("C-%u: cancel request for its server", target->id);
			server_cancel(target->server);
		}
		client_close(c, NULL, NULL);
		return false;
	}

	if ((sp.code & 0xffff) != 0 || sp.npq > 0)
	{
		/* a newer 3.x, or protocol options: we speak 3.0 and know none */
		pkt_add_negotiate(&c->st.out, 0, sp.pq_options, sp.npq);
	}
	/* shared: most clients of a pool give the same two names */
	c->user = intern_get(sp.user);
	c->dbname = intern_get(sp.database);
	for (int i = 0; i < sp.nsettings; i++)
	{
		const char *tracked = session_tracked_name(sp.names[i]);

		settings_set(&c->want, tracked ? tracked : sp.names[i], sp.values[i]);
		settings_set(&c->startup, tracked ? tracked : sp.names[i],
					 sp.values[i]);
	}
	startup_free(&sp);
	if (!tls_allows(c))
		return false;

	if (shutting_down)
	{
		client_close(c, "57P01", "the pooler is shutting down");
		return false;
	}
	if (n_clients > cf.max_client_conn)
	{
		client_close(c, "53300",
					 "no more connections allowed (max_client_conn)");
		return false;
	}
	/* the admin console, under its own name and PgBouncer's */
	if (strcmp(c->dbname, "apiscale") == 0 ||
		strcmp(c->dbname, "pgbouncer") == 0)
	{
		/* stats_users too: admin.c lets them run SHOW commands only */
		if (!config_is_admin(&cf, c->user) &&
			!config_is_stats_user(&cf, c->user))
		{
			snprintf(err, sizeof(err),
					 "user \"%s\" is not allowed to use the admin console "
					 "(admin_users, stats_users)",
					 c->user);
			client_close(c, "28000", err);
			return false;
		}
		c->admin = true;
	}
	else
	{
		DbConfig *db = config_find_db(&cf, c->dbname);

		if (db == NULL)
		{
			snprintf(err, sizeof(err), "database \"%s\" does not exist",
					 c->dbname);
			client_close(c, "3D000", err);
			return false;
		}
	}

	if (wants_scram(c->user))
	{
		/* Without a usable secret: a doomed exchange (see scram.c). */
		ScramSecret secret;
		const char *why_not = NULL;
		bool		have = auth_scram_secret(c->user, &secret, &why_not);

		c->scram = scram_start(c->user, have ? &secret : NULL, why_not);
		explicit_bzero(&secret, sizeof(secret));
		pkt_add_auth(&c->st.out, AUTH_REQ_SASL,
					 (const uint8_t *) SCRAM_SASL_MECHANISMS,
					 sizeof(SCRAM_SASL_MECHANISMS));
		c->state = CL_AUTH;
		return true;
	}
	if (cf.auth_type == AUTH_MD5)
	{
		auth_random(c->salt, sizeof(c->salt));
		pkt_add_auth(&c->st.out, 5, c->salt, sizeof(c->salt));
		c->state = CL_AUTH;
		return true;
	}
	auth_ok(c);
	return !c->dead && c->state != CL_LOGIN_WAIT;
}

/*
 * One step of c's SCRAM exchange (scram.c): send what it answers, or end
 * the connection.  A failed proof gets the same message whatever the
 * reason (wrong password, unknown user, md5 hash), which goes to the log
 * only.  Returns false if c is gone or must stop reading.
 */
static bool
handle_sasl(Client *c, const uint8_t *body, size_t len)
{
	char		err[256];
	char		msg[300];
	ScramStatus status =
		scram_handle_message(c->scram, body, len, err, sizeof(err));

	switch (status)
	{
		case SCRAM_CONTINUE:
			pkt_add_auth(&c->st.out, AUTH_REQ_SASL_CONTINUE,
						 (const uint8_t *) c->scram->reply,
						 c->scram->reply_len);
			return true;
		case SCRAM_OK:
			pkt_add_auth(&c->st.out, AUTH_REQ_SASL_FINAL,
						 (const uint8_t *) c->scram->reply,
						 c->scram->reply_len);
			scram_free(c->scram);
			c->scram = NULL;
			auth_ok(c);
			return !c->dead && c->state != CL_LOGIN_WAIT;
		case SCRAM_FAILED:
			log_warning("C-%u: %s/%s@%s:%d SCRAM authentication failed: %s",
						c->id, c->dbname, c->user, c->addr, c->port, err);
			snprintf(msg, sizeof(msg),
					 "password authentication failed for user \"%s\"",
					 c->user);
			client_close(c, "28P01", msg);
			return false;
		case SCRAM_MALFORMED:
			client_close(c, "08P01", err);
			return false;
		case SCRAM_ERROR:
		default:
			log_error("C-%u: SCRAM exchange failed (%s): %s", c->id,
					  scram_status_to_str(status), err);
			client_close(c, "XX000",
						 "internal error during SCRAM authentication");
			return false;
	}
}

static bool
handle_password(Client *c, char type, uint32_t len)
{
	char	   *msg;
	const char *stored;
	char		err[256];
	bool		ok;

	if (type != 'p')
	{
		client_close(c, "08P01", "expected a password message");
		return false;
	}
	msg = malloc(len + 1);
	if (msg == NULL)
		fatal("out of memory");
	buf_remove(&c->st.in, msg, len);
	msg[len] = '\0';
	if (c->scram)
	{
		/* SASLInitialResponse or SASLResponse: the body after 'p', len. */
		ok = handle_sasl(c, (const uint8_t *) msg + 5, len - 5);
		free(msg);
		return ok;
	}
	stored = auth_password(c->user);
	if (stored == NULL || len < 6 ||
		!auth_md5_check(c->user, stored, c->salt, msg + 5))
	{
		free(msg);
		snprintf(err, sizeof(err),
				 "password authentication failed for user \"%s\"", c->user);
		client_close(c, "28P01", err);
		return false;
	}
	free(msg);
	auth_ok(c);
	return !c->dead && c->state != CL_LOGIN_WAIT;
}

/* Returns false if c is gone or must stop reading. */
static bool
handle_message(Client *c, char type, uint32_t len)
{
	Buf	   *in = &c->st.in;
	Server *s;

	if (type == 'X')
	{
		buf_drain(in, len);
		client_close(c, NULL, NULL);
		return false;
	}
	if (c->admin)
	{
		c->idle_seen = 0; /* not idle: client_idle_timeout starts again */
		return console.handle(c, type, len);
	}

	if (c->skip_to_sync)
	{
		buf_drain(in, len);
		if (type == 'S')
		{
			c->skip_to_sync = false;
			send_ready(c);
		}
		return true;
	}

	if (relay_refuse_named(c, type, len))
		return true;
	if (type == 'Q' && (c->server == NULL || !c->server->skipping) &&
		relay_try_deallocate(c, len))
		return true;

	if (c->server == NULL)
	{
		/*
		 * Flush, and CopyData/CopyDone/CopyFail outside a COPY (which
		 * PostgreSQL ignores), ask for nothing: no server for them.
		 */
		if (type == 'H' || type == 'd' || type == 'c' || type == 'f')
		{
			buf_drain(in, len);
			return true;
		}
		if (shutting_down)
		{
			client_close(c, "57P01", "the pooler is shutting down");
			return false;
		}
		if (!pool_request(c->pool, c))
			return false; /* resumes in client_attached */
	}

	s = c->server;
	c->pool->bytes_in += len;
	if (s->skipping && type != 'S')
	{
		/* after an error the server ignores all up to Sync: so do we */
		buf_drain(in, len);
		return true;
	}
	return relay_message(c, s, type, len);
}

/*
 * Can a CopyData of len bytes, of which only the start has come, be
 * streamed: passed to the server (or dropped, where handle_message would
 * drop it) as it arrives?  Then it is started, and true returned.
 */
static bool
stream_start(Client *c, char type, uint32_t len)
{
	if (type != 'd' || len < STREAM_MIN || c->admin ||
		(c->state != CL_IDLE && c->state != CL_ACTIVE))
		return false;
	c->relay_left = len;
	c->relay_discard =
		c->skip_to_sync || c->server == NULL || c->server->skipping;
	return true;
}

/*
 * Pass on (or drop) what has come of the message being streamed.  Returns
 * true once all of it has.
 */
static bool
stream_part(Client *c)
{
	size_t avail = buf_len(&c->st.in);
	size_t n = avail < c->relay_left ? avail : c->relay_left;

	if (c->relay_discard || c->server == NULL)
		buf_drain(&c->st.in, n);
	else
	{
		buf_move(&c->st.in, &c->server->st.out, n);
		c->pool->bytes_in += n;
	}
	c->relay_left -= (uint32_t) n;
	if (c->relay_left > 0)
		return false;
	/* the server may have ended the transaction meanwhile (a failed COPY) */
	if (c->server && server_may_go(c->server))
	{
		stream_flush(&c->server->st);
		server_end_transaction(c->server);
	}
	return !c->dead;
}

/*
 * Handle every whole message in c's input, as far as c's state allows.  A
 * long CopyData is streamed; any other message is held whole, up to
 * max_packet_size.
 */
static void
client_process_messages(Client *c)
{
	Buf *in = &c->st.in;

	for (;;)
	{
		char	  type;
		uint32_t  len;
		PktStatus st;
		bool	  go_on;

		if (c->state == CL_LOGIN_WAIT || c->state == CL_WAITING)
			return;
		if (c->relay_left > 0)
		{
			if (!stream_part(c))
				return;
			continue;
		}
		len = 0;
		st = pkt_peek(in, c->state == CL_STARTUP, &type, &len);
		if (st != PKT_BAD && c->state == CL_AUTH && len > MAX_AUTH_LEN)
		{
			/* do not buffer a gigabyte for someone not logged in */
			client_close(c, "08P01", "authentication message too long");
			return;
		}
		if (st == PKT_INCOMPLETE && len > 0 && stream_start(c, type, len))
			continue;
		if (st != PKT_BAD && len > (uint32_t) cf.max_packet_size &&
			c->state != CL_STARTUP)
		{
			char err[128];

			snprintf(err, sizeof(err),
					 "message of %u bytes is longer than max_packet_size "
					 "(%d)",
					 len, cf.max_packet_size);
			client_close(c, "08P01", err);
			return;
		}
		if (st == PKT_INCOMPLETE)
			return;
		if (st == PKT_BAD)
		{
			client_close(c, "08P01", "invalid message length");
			return;
		}
		switch (c->state)
		{
			case CL_STARTUP:
				go_on = handle_startup(c, len);
				break;
			case CL_AUTH:
				go_on = handle_password(c, type, len);
				break;
			case CL_IDLE:
			case CL_ACTIVE:
				go_on = handle_message(c, type, len);
				break;
			default:
				log_error("C-%u: message in state %s", c->id,
						  client_state_to_str(c->state));
				client_close(c, "XX000", "internal error: unexpected state");
				return;
		}
		if (!go_on)
			return;
	}
}

/*
 * Handle c's input, then send what it produced, to c and to its server, in
 * one write each.
 */
static void
client_process(Client *c)
{
	client_process_messages(c);
	if (c->dead)
		return;
	if ((c->state == CL_WAITING || c->state == CL_LOGIN_WAIT) &&
		buf_len(&c->st.in) > FLOW_HIGH)
	{
		/* Queued and still sending: leave the rest in the socket. */
		c->throttled = true;
		stream_read(&c->st, false);
	}
	stream_flush(&c->st);
	if (stream_pending(&c->st) > FLOW_HIGH)
	{
		/*
		 * c does not read what the pooler answers itself (errors, admin
		 * results): stop reading it until that drains (client_drain_cb).
		 */
		c->throttled = true;
		stream_read(&c->st, false);
	}
	if (c->server)
	{
		stream_flush(&c->server->st);
		if (stream_pending(&c->server->st) > FLOW_HIGH)
		{
			/* The server reads slowly (a big COPY): wait for it. */
			c->throttled = true;
			stream_read(&c->st, false);
		}
	}
}

static void
client_read_cb(void *arg)
{
	client_process((Client *) arg);
}

/* c's output drained below FLOW_LOW: its server may send again. */
static void
client_drain_cb(void *arg)
{
	Client *c = (Client *) arg;

	if (c->server)
		server_unthrottle(c->server);
	else
		client_unthrottle(c);
}

/* c's server took in what c sent: read from c again. */
void
client_unthrottle(Client *c)
{
	if (!c->throttled)
		return;
	c->throttled = false;
	if (c->state == CL_ACTIVE || c->state == CL_IDLE)
		client_resume(c);
}

static void
client_event_cb(void *arg, const char *why)
{
	client_close((Client *) arg, NULL, NULL);
}

/* The pool attached a server to c after it waited: carry on. */
void
client_attached(Client *c)
{
	c->throttled = false;
	stream_read(&c->st, true);
	client_process(c);
}

/* c's transaction ended and its server went back to the pool. */
void
client_server_message_done(Client *c)
{
	if (shutting_down)
	{
		client_close(c, "57P01", "the pooler is shutting down");
		return;
	}
	client_process(c);
}

/* Resume reading after a pause (RESUME, reload). */
void
client_resume(Client *c)
{
	stream_read(&c->st, true);
	client_process(c);
}

/*
 * c waited for a server in vain (pool_timeout, server down, paused): answer
 * the request it made with an error and ReadyForQuery.  The connection
 * stays usable.
 */
void
client_wait_failed(Client *c, const char *sqlstate, const char *fmt, ...)
{
	Buf		*in = &c->st.in;
	char	 msg[512];
	va_list	 ap;
	char	 type;
	uint32_t len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	c->state = CL_IDLE;
	c->idle_seen = 0;
	pkt_add_error(&c->st.out, "ERROR", sqlstate, "%s", msg);
	stats_count_error(&c->pool->errors, sqlstate);
	/* Drop the request: messages up to its Query or Sync. */
	c->skip_to_sync = true;
	while (pkt_peek(in, false, &type, &len) == PKT_READY)
	{
		buf_drain(in, len);
		if (type == 'Q' || type == 'S')
		{
			c->skip_to_sync = false;
			send_ready(c);
			break;
		}
		if (type == 'X')
		{
			client_close(c, NULL, NULL);
			return;
		}
	}
	client_resume(c);
}
