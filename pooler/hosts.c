/*
 * hosts.c
 *		The PostgreSQL hosts behind the [databases] entries: role, lag and
 *		health, from active checks and passive signals.
 *
 * One Host per host:port, shared by every entry and pool that lists it
 * (app read-write and app_ro read-only may use the same servers).  Each
 * host is checked every health_check_interval seconds over a connection of
 * its own (pgconn.c): pg_is_in_recovery(), default_transaction_read_only
 * and, for a standby, its replay lag: 0 when replay has caught up with
 * what was received, otherwise now() - pg_last_xact_replay_timestamp(),
 * and the LSN distance.  A check that fails or takes longer than
 * health_check_timeout marks the host down; so does a passive signal from
 * the pool (a refused connection, a failed login: host_failed).  A host
 * that is down is checked every CHECK_WHILE_DOWN seconds and comes back after
 * health_check_rise good checks in a row.  BAN keeps a host down by hand.
 *
 * The check logs in as its entry's user, or as the layer above says
 * (check_user), with the password auth_file holds.  A check the server
 * answers with an authentication error still proves the postmaster alive:
 * it counts as good, with the role unknown.
 *
 * Whatever changes a host's usefulness (up, down, role, read-only, lag
 * crossing max_replica_lag) is told to the layer above through the changed
 * callback: this file decides what a host is, pool.c what to do about it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "hosts.h"
#include "log.h"
#include "process.h"
#include "server.h"

#define CHECK_WHILE_DOWN 0.25 /* seconds between checks of a down host */

struct HostList hosts = TAILQ_HEAD_INITIALIZER(hosts);

static const HostCallbacks *callbacks = NULL;
static struct event		   *tick_ev = NULL;
static struct event		   *tell_ev = NULL;	   /* tells at the next pass */
static Host				  **configured = NULL; /* refs of [databases] */
static int					n_configured = 0;

static const char check_sql[] =
	"SELECT pg_is_in_recovery(), "
	"current_setting('default_transaction_read_only') = 'on', "
	"CASE WHEN NOT pg_is_in_recovery() THEN 0 "
	"WHEN pg_last_wal_receive_lsn() IS NOT NULL AND "
	"pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0 "
	"ELSE coalesce(extract(epoch FROM now() - "
	"pg_last_xact_replay_timestamp()), 0) END, "
	"CASE WHEN pg_is_in_recovery() THEN coalesce(pg_wal_lsn_diff("
	"pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0) ELSE 0 END";

static void check_connected(void *arg);
static void check_result(void *arg, PGresult *res, int step);
static void check_done(void *arg);
static void check_failed(void *arg, const char *error);

static const PgConnCallbacks check_callbacks = {
	.connected = check_connected,
	.result = check_result,
	.done = check_done,
	.failed = check_failed,
};

const char *
host_role_to_str(HostRole role)
{
	switch (role)
	{
		case HOST_ROLE_PRIMARY:
			return "primary";
		case HOST_ROLE_STANDBY:
			return "standby";
		case HOST_ROLE_UNKNOWN:
			return "unknown";
	}
	return "unknown";
}

const char *
host_state_to_str(const Host *h)
{
	return h->banned ? "banned" : h->up ? "up" : "down";
}

static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* May new servers go there? */
bool
host_usable(const Host *h)
{
	return h->up && !h->banned;
}

/* Is a standby close enough to its primary (max_replica_lag)? */
bool
host_lag_ok(const Host *h)
{
	return cf.max_replica_lag <= 0 || h->lag <= cf.max_replica_lag;
}

/* Tell the layer above about the hosts marked "changed". */
static void
tell_cb(evutil_socket_t fd, short what, void *arg)
{
	Host *h;
	Host *next;

	for (h = TAILQ_FIRST(&hosts); h; h = next)
	{
		next = TAILQ_NEXT(h, link);
		if (!h->changed)
			continue;
		h->changed = false;
		h->refs++; /* the callback may close servers, dropping refs */
		if (callbacks && callbacks->changed)
			callbacks->changed(h);
		next = TAILQ_NEXT(h, link);
		host_unref(h);
	}
}

/*
 * h changed: the layer above hears it at the next pass of the loop, never
 * from inside its own call (host_failed comes from the middle of a pool
 * function).
 */
static void
tell(Host *h)
{
	struct timeval now = {0, 0};

	h->changed = true;
	if (tell_ev == NULL)
		tell_ev = evtimer_new(ev_base, tell_cb, NULL);
	evtimer_add(tell_ev, &now);
}

/* The host of host:port, made if new; one more reference to it. */
Host *
host_get(const char *host, const char *port)
{
	Host  *h;
	size_t n;

	TAILQ_FOREACH(h, &hosts, link)
	{
		if (strcmp(h->host, host) == 0 && strcmp(h->port, port) == 0)
		{
			h->refs++;
			return h;
		}
	}
	h = calloc(1, sizeof(Host));
	if (h == NULL)
		fatal("out of memory");
	h->host = xstrdup(host);
	h->port = xstrdup(port);
	n = strlen(host) + strlen(port) + 2;
	h->name = malloc(n);
	if (h->name == NULL)
		fatal("out of memory");
	snprintf(h->name, n, "%s:%s", host, port);
	h->refs = 1;
	h->up = true;
	pgconn_init(&h->pc, &check_callbacks, h);
	TAILQ_INSERT_TAIL(&hosts, h, link);
	return h;
}

/* One reference less; the last one frees it. */
void
host_unref(Host *h)
{
	if (--h->refs > 0)
		return;
	pgconn_close(&h->pc);
	TAILQ_REMOVE(&hosts, h, link);
	free(h->host);
	free(h->port);
	free(h->name);
	free(h->last_error);
	free(h);
}

/* "host:port" or "host" (the only host of that name) as written in BAN. */
Host *
host_find(const char *spec)
{
	Host *h;
	Host *found = NULL;
	int	  n = 0;

	TAILQ_FOREACH(h, &hosts, link)
	{
		if (strcasecmp(h->name, spec) == 0)
			return h;
		if (strcasecmp(h->host, spec) == 0)
		{
			found = h;
			n++;
		}
	}
	return n == 1 ? found : NULL;
}

Host *
host_find_exact(const char *host, const char *port)
{
	Host *h;

	TAILQ_FOREACH(h, &hosts, link)
	{
		if (strcmp(h->host, host) == 0 && strcmp(h->port, port) == 0)
			return h;
	}
	return NULL;
}

/* BAN (ban) or UNBAN: no new servers there, its idle ones closed. */
void
host_ban(Host *h, bool ban)
{
	if (h->banned == ban)
		return;
	h->banned = ban;
	log_info("host %s %s", h->name, ban ? "banned" : "unbanned");
	tell(h);
}

/*
 * The hosts cfg's [databases] entries list, each with a reference held
 * here, so that they are checked from the start (and SHOW HOSTS knows
 * them) before any pool needs them; the previous list's are let go.
 */
void
hosts_configure(const Config *cfg)
{
	Host **old = configured;
	int	   nold = n_configured;
	int	   n = 0;

	for (const DbConfig *db = cfg->databases; db; db = db->next)
		n += db->nhosts;
	configured = calloc((size_t) (n ? n : 1), sizeof(Host *));
	if (configured == NULL)
		fatal("out of memory");
	n_configured = 0;
	for (const DbConfig *db = cfg->databases; db; db = db->next)
	{
		for (int i = 0; i < db->nhosts; i++)
			configured[n_configured++] = host_get(db->hosts[i], db->ports[i]);
	}
	for (int i = 0; i < nold; i++)
		host_unref(old[i]);
	free(old);
}

static void
mark_down(Host *h, const char *why)
{
	h->good = 0;
	free(h->last_error);
	h->last_error = xstrdup(why);
	if (!h->up)
		return;
	h->up = false;
	h->down_since = wall_now();
	log_warning("host %s is down: %s", h->name, why);
	tell(h);
}

/*
 * A passive signal from the pool (a refused connection, a failed login, a
 * server gone without a word): down at once, checked again in a second.
 */
void
host_failed(Host *h, const char *why)
{
	mark_down(h, why);
	h->next_check = mono_now() + CHECK_WHILE_DOWN;
}

/* Check h at the next tick (a login refused for its role, say). */
void
host_check_soon(Host *h)
{
	h->next_check = 0;
}

/* The [databases] entry whose credentials check h: the first listing it. */
static const DbConfig *
entry_of(const Host *h)
{
	for (const DbConfig *db = cf.databases; db; db = db->next)
	{
		for (int i = 0; i < db->nhosts; i++)
		{
			if (strcmp(db->hosts[i], h->host) == 0 &&
				strcmp(db->ports[i], h->port) == 0)
				return db;
		}
	}
	return NULL;
}

static void
start_check(Host *h)
{
	const DbConfig *db = entry_of(h);
	DbConfig		one;
	const char	   *kw[SERVER_CONNINFO_MAX];
	const char	   *val[SERVER_CONNINFO_MAX];

	if (db == NULL)
		return;
	if (h->pc.state == PGC_IDLE)
	{
		pgconn_send(&h->pc, check_sql);
		return;
	}
	/* the entry, reduced to this host, whatever its role */
	one = *db;
	one.host = h->host;
	one.port = h->port;
	one.target = TSA_ANY;
	server_conninfo(&one, callbacks->check_user(h, db),
					"apiscale-pooler health", kw, val);
	pgconn_open(&h->pc, kw, val);
}

static void
check_connected(void *arg)
{
	Host *h = (Host *) arg;

	pgconn_send(&h->pc, check_sql);
}

static void
check_result(void *arg, PGresult *res, int step)
{
	Host	*h = (Host *) arg;
	HostRole role;
	bool	 read_only;
	bool	 lag_was_ok = host_lag_ok(h);
	bool	 changed = false;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		char msg[512];

		pgconn_one_line(msg, sizeof(msg), PQresultErrorMessage(res));
		mark_down(h, msg[0] ? msg : "the health check failed");
		return;
	}
	role = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? HOST_ROLE_STANDBY
												   : HOST_ROLE_PRIMARY;
	read_only = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	h->lag = strtod(PQgetvalue(res, 0, 2), NULL);
	h->lag_bytes = strtod(PQgetvalue(res, 0, 3), NULL);
	h->last_check = wall_now();
	if (role != h->role || read_only != h->read_only)
	{
		if (h->role != HOST_ROLE_UNKNOWN)
			log_info("host %s is now %s%s", h->name, host_role_to_str(role),
					 read_only ? " (read-only by default)" : "");
		h->role = role;
		h->read_only = read_only;
		changed = true;
	}
	if (role == HOST_ROLE_STANDBY && host_lag_ok(h) != lag_was_ok)
	{
		log_info("host %s: replay lag %.1f s is %s max_replica_lag (%g s)",
				 h->name, h->lag, lag_was_ok ? "over" : "back within",
				 cf.max_replica_lag);
		changed = true;
	}
	if (!h->up && ++h->good >= cf.health_check_rise)
	{
		h->up = true;
		h->down_since = 0;
		log_info("host %s is up (%s)", h->name, host_role_to_str(h->role));
		changed = true;
	}
	if (changed)
		tell(h);
}

static void
check_done(void *arg)
{
	Host *h = (Host *) arg;

	h->next_check = mono_now() +
					(h->up ? cf.health_check_interval
						   : fmin(CHECK_WHILE_DOWN, cf.health_check_interval));
}

/*
 * The check's connection failed.  If the server answered (an error
 * message from it: authentication, too many connections) the postmaster
 * is alive: a good check with the role unknown.  Otherwise the host is
 * down.
 */
static void
check_failed(void *arg, const char *error)
{
	Host *h = (Host *) arg;

	if (pgconn_server_answered(error))
	{
		if (!h->up && ++h->good >= cf.health_check_rise)
		{
			h->up = true;
			h->down_since = 0;
			log_info("host %s is up (its health check cannot log in: %s)",
					 h->name, error);
			tell(h);
		}
		h->last_check = wall_now();
	}
	else
		mark_down(h, error);
	h->next_check =
		mono_now() + (h->up ? cf.health_check_interval : CHECK_WHILE_DOWN);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	double now = mono_now();
	Host  *h;
	Host  *next;

	if (shutting_down)
		return;
	for (h = TAILQ_FIRST(&hosts); h; h = next)
	{
		next = TAILQ_NEXT(h, link);
		pgconn_check_time(&h->pc, cf.health_check_timeout,
						  cf.health_check_timeout);
		if (h->pc.state != PGC_CONNECTING && h->pc.state != PGC_BUSY &&
			now >= h->next_check)
		{
			h->next_check = now + cf.health_check_interval;
			start_check(h);
		}
	}
}

/* Check the hosts from now on; cb says who logs in and who is told. */
void
hosts_start(const HostCallbacks *cb)
{
	struct timeval every = {0, 100 * 1000};

	callbacks = cb;
	if (tick_ev)
		return;
	tick_ev = event_new(ev_base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(tick_ev, &every);
}

void
hosts_stop(void)
{
	Host *h;

	TAILQ_FOREACH(h, &hosts, link)
	pgconn_close(&h->pc);
	if (tick_ev)
		event_free(tick_ev);
	tick_ev = NULL;
	if (tell_ev)
		event_free(tell_ev);
	tell_ev = NULL;
}
