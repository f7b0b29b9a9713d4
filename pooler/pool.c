/*
 * pool.c
 *		Server pools per (database, user), with the semantics of SQLAlchemy's
 *		QueuePool: pool_size, max_overflow, pool_timeout, pool_recycle.
 *
 * All pool accounting lives here: which servers exist, on which host, in
 * which state, who waits for one.  A server is in exactly one of the pool's
 * lists: login, active (attached or being reset), or the idle list of its
 * host; pool_set_state moves it.  Waiting clients form one FIFO per pool,
 * timed out by one janitor timer.  The settings are the pool's own
 * (config_pool_settings: [users] over [databases] over [pooler]).
 *
 * Hosts (hosts.c says what each is) decide which servers a pool may use:
 * the eligible hosts of its entry for its target_session_attrs, that are up
 * and not banned.  pool_size and max_overflow apply per host, so a replica
 * adds capacity; load_balance_hosts picks the host of the next server.
 *
 *	request:  idle server on an eligible host (not past pool_recycle) ->
 *			  attach at once; otherwise queue, and open servers while fewer
 *			  are logging in than clients wait, on eligible hosts with fewer
 *			  than pool_size + max_overflow of the pool's servers.
 *	release:  past pool_recycle, or its host no longer eligible -> close;
 *			  more servers on its host than pool_size + max_overflow
 *			  (lowered by a RELOAD) -> close; else first waiter; else close
 *			  if pool_size servers are already idle on its host (overflow
 *			  given back); else idle.
 *	reload:   idle servers beyond the new pool_size, or beyond the new
 *			  capacity, are closed at once; the busy ones as they come back.
 *	hosts:    a host that goes down loses its idle and logging-in servers;
 *			  with no host up, the waiting clients get 08001 at once (with
 *			  hosts up but none eligible, as lagging standbys, they wait).
 *
 * Pools are made when an authenticated client first names a (database,
 * user), at most max_pools of them, and freed when nobody uses them (no
 * client, no server): at once if no server ever logged in for them (a user
 * name the server does not know, under auth_type = trust), otherwise after
 * EMPTY_POOL_LIFETIME, so that SHOW STATS keeps what they did for a while.
 * Freeing runs from a timer, never inside a pool function, so no caller
 * ever holds a freed pool.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "auth.h"
#include "hosts.h"
#include "intern.h"
#include "log.h"
#include "process.h"
#include "pgconn.h"
#include "pool.h"

struct PoolList pools = TAILQ_HEAD_INITIALIZER(pools);
bool			pool_paused = false;

/* Told when a pool is freed (dbstats.c keeps what it counted). */
static PoolFreeFn on_free = NULL;

#define LOGIN_RETRY_DELAY	0.5	 /* seconds after a login the server refused */
#define EMPTY_POOL_LIFETIME 60.0 /* seconds an unused pool is kept */
#define SWEEP_INTERVAL		10	 /* seconds between looks for unused pools */

static int n_pools = 0;

/* Pools with servers released for their waiters (pool_end_of_pass) */
static TAILQ_HEAD(, Pool) handoffs = TAILQ_HEAD_INITIALIZER(handoffs);
static struct event *sweep_timer = NULL; /* every SWEEP_INTERVAL */
static struct event *sweep_now = NULL;	 /* at the next loop pass */

static void open_for_waiters(Pool *p);
static void open_or_fail(Pool *p);
static void sweep_cb(evutil_socket_t fd, short what, void *arg);
static void fail_waiters(Pool *p, const char *error);

/*
 * The idle lists keep release order.  take_idle hands out next_idle:
 * with pool_use_lifo the server released last, otherwise the one idle
 * longest.  Servers closed for size are the last_idle ones: with LIFO the
 * coldest.
 */
static Server *
next_idle(PoolHost *ph)
{
	return cf.pool_use_lifo ? TAILQ_LAST(&ph->idle, ServerList)
							: TAILQ_FIRST(&ph->idle);
}

static Server *
last_idle(PoolHost *ph)
{
	return cf.pool_use_lifo ? TAILQ_FIRST(&ph->idle)
							: TAILQ_LAST(&ph->idle, ServerList);
}

/* ---- the pool's copy of its entry, and its hosts ---- */

static void
free_db_copy(DbConfig *db)
{
	free(db->name);
	free(db->host);
	free(db->port);
	free(db->dbname);
	free(db->user);
	free(db->password);
	memset(db, 0, sizeof(*db));
}

/* The parts of a [databases] entry a pool needs (not its host lists). */
static void
copy_db(DbConfig *dst, const DbConfig *src)
{
	free_db_copy(dst);
	dst->name = xstrdup(src->name);
	dst->host = xstrdup(src->host);
	dst->port = xstrdup(src->port);
	dst->dbname = xstrdup(src->dbname);
	dst->user = src->user ? xstrdup(src->user) : NULL;
	dst->password = src->password ? xstrdup(src->password) : NULL;
	dst->target = src->target;
	dst->ovr = src->ovr;
}

/* Index of host h in p's hosts, or -1. */
static int
host_index(const Pool *p, const Host *h)
{
	for (int i = 0; i < p->nhosts; i++)
	{
		if (p->hosts[i].host == h)
			return i;
	}
	return -1;
}

/*
 * The pool's hosts become db's, in db's order.  Idle servers on a host the
 * entry no longer lists are closed first; the others keep their host and
 * find its new index.  A login or active server on a dropped host gets
 * hidx -1: pool_release closes it.
 */
static void
set_hosts(Pool *p, const DbConfig *db)
{
	PoolHost *old = p->hosts;
	int		  nold = p->nhosts;
	PoolHost *ph = calloc((size_t) db->nhosts, sizeof(PoolHost));
	Server	 *s;

	if (ph == NULL)
		fatal("out of memory");
	for (int i = 0; i < db->nhosts; i++)
	{
		ph[i].host = host_get(db->hosts[i], db->ports[i]);
		TAILQ_INIT(&ph[i].idle);
	}
	p->reconfiguring = true; /* no new server while the lists move */
	for (int j = 0; j < nold; j++)
	{
		bool kept = false;

		for (int i = 0; i < db->nhosts; i++)
			kept |= ph[i].host == old[j].host;
		while (!kept && (s = TAILQ_FIRST(&old[j].idle)) != NULL)
			server_close(s, "its host left the database entry");
	}
	p->reconfiguring = false;
	for (int j = 0; j < nold; j++)
	{
		for (int i = 0; i < db->nhosts; i++)
		{
			if (ph[i].host != old[j].host)
				continue;
			while ((s = TAILQ_FIRST(&old[j].idle)) != NULL)
			{
				TAILQ_REMOVE(&old[j].idle, s, link);
				TAILQ_INSERT_TAIL(&ph[i].idle, s, link);
			}
			ph[i].n_login = old[j].n_login;
			ph[i].n_idle = old[j].n_idle;
			ph[i].n_active = old[j].n_active;
		}
	}
	p->hosts = ph;
	p->nhosts = db->nhosts;
	TAILQ_FOREACH(s, &p->login, link)
	s->hidx = host_index(p, s->host);
	TAILQ_FOREACH(s, &p->active, link)
	s->hidx = host_index(p, s->host);
	for (int i = 0; i < p->nhosts; i++)
	{
		TAILQ_FOREACH(s, &ph[i].idle, link)
		s->hidx = i;
	}
	for (int j = 0; j < nold; j++)
		host_unref(old[j].host);
	free(old);
}

/* ---- pools come and go ---- */

/* Nobody uses p: no client, no server, nobody queued. */
static bool
pool_is_unused(const Pool *p)
{
	return p->n_clients == 0 && pool_total(p) == 0 && p->n_waiting == 0 &&
		   TAILQ_EMPTY(&p->login_wait);
}

static void
pool_free(Pool *p)
{
	log_info("pool %s/%s freed: unused", p->dbname, p->user);
	if (on_free)
		on_free(p);
	TAILQ_REMOVE(&pools, p, link);
	if (p->handoff)
		TAILQ_REMOVE(&handoffs, p, handoff_link);
	n_pools--;
	if (p->retry_timer)
		event_free(p->retry_timer);
	free(p->history);
	for (int i = 0; i < p->nparams; i++)
	{
		intern_put(p->param_names[i]);
		intern_put(p->param_values[i]);
	}
	free(p->param_names);
	free(p->param_values);
	for (int i = 0; i < p->nhosts; i++)
		host_unref(p->hosts[i].host);
	free(p->hosts);
	free_db_copy(&p->db);
	free(p->dbname);
	free(p->user);
	free(p);
}

/* fn is called with each pool about to be freed (NULL: nobody). */
void
pool_set_free_callback(PoolFreeFn fn)
{
	on_free = fn;
}

/*
 * Free the unused pools that are due (see the top of the file); all unused
 * ones if force.  Never called from inside another pool function.
 */
static void
sweep(bool force)
{
	double now = mono_now();
	Pool  *p;
	Pool  *next;

	for (p = TAILQ_FIRST(&pools); p != NULL; p = next)
	{
		next = TAILQ_NEXT(p, link);
		if (!pool_is_unused(p))
		{
			p->empty_since = 0;
			continue;
		}
		if (p->empty_since == 0)
			p->empty_since = now;
		if (force || p->nparams == 0 ||
			now - p->empty_since >= EMPTY_POOL_LIFETIME)
			pool_free(p);
	}
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	sweep(false);
}

/*
 * A client or server of p went away: if p is now unused and no server ever
 * logged in for it, free it at the next pass of the loop.
 */
void
pool_check_unused(Pool *p)
{
	struct timeval now = {0, 0};

	if (p->nparams == 0 && pool_is_unused(p) && sweep_now)
		evtimer_add(sweep_now, &now);
}

int
pool_count(void)
{
	return n_pools;
}

/*
 * The pool of (dbname, user), created on first use; NULL if that would
 * make more than max_pools (the caller refuses the client).
 */
Pool *
pool_get(const char *dbname, const char *user, const DbConfig *db)
{
	Pool *p;

	TAILQ_FOREACH(p, &pools, link)
	{
		if (strcmp(p->dbname, dbname) == 0 && strcmp(p->user, user) == 0)
			return p;
	}
	if (n_pools >= cf.max_pools)
		sweep(true); /* make room from the unused ones */
	if (n_pools >= cf.max_pools)
		return NULL;
	if (sweep_timer == NULL)
	{
		struct timeval every = {SWEEP_INTERVAL, 0};

		sweep_timer = event_new(ev_base, -1, EV_PERSIST, sweep_cb, NULL);
		sweep_now = evtimer_new(ev_base, sweep_cb, NULL);
		event_add(sweep_timer, &every);
	}
	p = calloc(1, sizeof(Pool));
	if (p == NULL)
		fatal("out of memory");
	p->dbname = xstrdup(dbname);
	p->user = xstrdup(user);
	copy_db(&p->db, db);
	p->set = config_pool_settings(&cf, db, user);
	TAILQ_INIT(&p->login);
	TAILQ_INIT(&p->active);
	TAILQ_INIT(&p->waiting);
	TAILQ_INIT(&p->login_wait);
	set_hosts(p, db);
	TAILQ_INSERT_TAIL(&pools, p, link);
	n_pools++;
	log_info("pool %s/%s created", dbname, user);
	return p;
}

/* Do the host lists of two entries differ? */
static bool
hosts_differ(const Pool *p, const DbConfig *db)
{
	if (p->nhosts != db->nhosts)
		return true;
	for (int i = 0; i < db->nhosts; i++)
	{
		if (strcmp(p->hosts[i].host->host, db->hosts[i]) != 0 ||
			strcmp(p->hosts[i].host->port, db->ports[i]) != 0)
			return true;
	}
	return false;
}

/*
 * After RELOAD: pools follow their [databases] entry if it still exists,
 * with its hosts and their settings.  A lower pool_size or max_overflow
 * closes the idle servers it leaves over at once (pool_release closes the
 * busy ones as their transactions end); a higher one opens servers for who
 * waits.
 */
void
pool_refresh_config(void)
{
	Pool *p;

	TAILQ_FOREACH(p, &pools, link)
	{
		DbConfig *db = config_find_db(&cf, p->dbname);

		if (db)
		{
			copy_db(&p->db, db);
			if (hosts_differ(p, db))
				set_hosts(p, db);
		}
		p->set = config_pool_settings(&cf, db, p->user);
		for (int i = 0; i < p->nhosts; i++)
		{
			PoolHost *ph = &p->hosts[i];
			Server	 *s;

			while ((s = last_idle(ph)) != NULL &&
				   (ph->n_idle > p->set.pool_size ||
					pool_host_total(ph) > pool_host_capacity(p)))
				server_close(s, "pool size lowered by a reload");
		}
		open_for_waiters(p);
	}
}

/* ---- capacity and eligibility ---- */

int
pool_total(const Pool *p)
{
	return p->n_login + p->n_idle + p->n_active;
}

int
pool_host_total(const PoolHost *ph)
{
	return ph->n_login + ph->n_idle + ph->n_active;
}

/* Servers the pool may have on one host: pool_size + max_overflow. */
int
pool_host_capacity(const Pool *p)
{
	return p->set.max_overflow < 0 ? INT_MAX
								   : p->set.pool_size + p->set.max_overflow;
}

/*
 * May p's new servers and handed-out servers be on host i?  Its
 * target_session_attrs against what the host's checks said, and the host
 * up and not banned.  Two usable primaries for a read-write or primary
 * entry make none eligible (writes wait until one of them is demoted).
 */
static bool
eligible_for(TargetAttrs target, const Host *h, bool standby_usable,
			 bool split_brain)
{
	if (!host_usable(h))
		return false;
	switch (target)
	{
		case TSA_ANY:
			return true;
		case TSA_READ_WRITE:
			return !split_brain && h->role == HOST_ROLE_PRIMARY &&
				   !h->read_only;
		case TSA_PRIMARY:
			return !split_brain && h->role == HOST_ROLE_PRIMARY;
		case TSA_READ_ONLY:
			return (h->role == HOST_ROLE_STANDBY && host_lag_ok(h)) ||
				   (h->role == HOST_ROLE_PRIMARY && h->read_only);
		case TSA_STANDBY:
			return h->role == HOST_ROLE_STANDBY && host_lag_ok(h);
		case TSA_PREFER_STANDBY:
			if (standby_usable)
				return h->role == HOST_ROLE_STANDBY && host_lag_ok(h);
			return h->role == HOST_ROLE_PRIMARY;
	}
	return false;
}

/*
 * Which of an entry's hosts (target_session_attrs target) are eligible
 * now, as a bit per host (the first 64).
 */
uint64_t
pool_hosts_eligible(TargetAttrs target, Host *const *list, int n)
{
	bool	 standby = false;
	int		 primaries = 0;
	uint64_t mask = 0;

	for (int i = 0; i < n && i < 64; i++)
	{
		const Host *h = list[i];

		if (!host_usable(h))
			continue;
		if (h->role == HOST_ROLE_STANDBY && host_lag_ok(h))
			standby = true;
		if (h->role == HOST_ROLE_PRIMARY)
			primaries++;
	}
	for (int i = 0; i < n && i < 64; i++)
	{
		if (eligible_for(target, list[i], standby, primaries > 1))
			mask |= (uint64_t) 1 << i;
	}
	return mask;
}

/* Which of p's hosts are eligible, as a bit per host index. */
uint64_t
pool_eligible(const Pool *p)
{
	Host *h[64];
	int	  n = p->nhosts < 64 ? p->nhosts : 64;

	/* the usual entry, asked twice a transaction: one host, any role */
	if (n == 1 && p->db.target == TSA_ANY)
		return host_usable(p->hosts[0].host) ? 1 : 0;

	for (int i = 0; i < n; i++)
		h[i] = p->hosts[i].host;
	return pool_hosts_eligible(p->db.target, h, n);
}

/* Is any of p's hosts up (eligible or not)? */
static bool
any_host_usable(const Pool *p)
{
	for (int i = 0; i < p->nhosts; i++)
	{
		if (host_usable(p->hosts[i].host))
			return true;
	}
	return false;
}

/*
 * Servers in use (in_use of them) over what the pool may have: pool_size +
 * max_overflow per eligible host (or pool_size with no overflow limit).
 * SHOW POOLS, /metrics and the report to the extension all use this.
 */
double
pool_utilization_of(const Pool *p, int in_use)
{
	int n = __builtin_popcountll(pool_eligible(p));
	int per = p->set.max_overflow < 0 ? p->set.pool_size
									  : p->set.pool_size + p->set.max_overflow;

	if (n == 0)
		n = 1;
	return per > 0 ? (double) in_use / ((double) per * n) : 0.0;
}

double
pool_utilization(const Pool *p)
{
	return pool_utilization_of(p, p->n_active);
}

/*
 * The most servers in use and clients waiting since who last asked (at
 * least the current numbers); who's peaks start again from now.
 */
void
pool_take_peaks(Pool *p, PeakReader who, int *active, int *waiting)
{
	*active =
		p->peak_active[who] > p->n_active ? p->peak_active[who] : p->n_active;
	*waiting = p->peak_waiting[who] > p->n_waiting ? p->peak_waiting[who]
												   : p->n_waiting;
	p->peak_active[who] = p->n_active;
	p->peak_waiting[who] = p->n_waiting;
}

/* ---- server states ---- */

static inline __attribute__((always_inline)) struct ServerList *
list_of(Pool *p, const Server *s, ServerState state, int **count,
		int **host_count)
{
	PoolHost  *ph = s->hidx >= 0 ? &p->hosts[s->hidx] : NULL;
	static int nowhere;

	*host_count = &nowhere;
	switch (state)
	{
		case SV_LOGIN:
			*count = &p->n_login;
			if (ph)
				*host_count = &ph->n_login;
			return &p->login;
		case SV_IDLE:
			*count = &p->n_idle;
			if (ph == NULL)
				fatal("an idle server with no host in its pool");
			*host_count = &ph->n_idle;
			return &ph->idle;
		case SV_ACTIVE:
		case SV_RESET:
			*count = &p->n_active;
			if (ph)
				*host_count = &ph->n_active;
			return &p->active;
		default:
			fatal("server state %d has no list", state);
	}
}

/* A new server of p, on host hidx, logging in. */
void
pool_server_added(Server *s)
{
	Pool *p = s->pool;

	s->state = SV_LOGIN;
	s->host = p->hosts[s->hidx].host;
	s->host->refs++;
	TAILQ_INSERT_TAIL(&p->login, s, link);
	p->n_login++;
	p->hosts[s->hidx].n_login++;
}

/* Move s to the list of its new state.  The one place states change. */
void
pool_set_state(Server *s, ServerState state)
{
	Pool			  *p = s->pool;
	int				  *from_n = NULL;
	int				  *to_n = NULL;
	int				  *from_h = NULL;
	int				  *to_h = NULL;
	struct ServerList *from = list_of(p, s, s->state, &from_n, &from_h);
	struct ServerList *to = list_of(p, s, state, &to_n, &to_h);

	TAILQ_REMOVE(from, s, link);
	(*from_n)--;
	(*from_h)--;
	TAILQ_INSERT_TAIL(to, s, link);
	(*to_n)++;
	(*to_h)++;
	s->state = state;
	if (state == SV_ACTIVE)
	{
		for (int i = 0; i < PEAK_READERS; i++)
		{
			if (p->n_active > p->peak_active[i])
				p->peak_active[i] = p->n_active;
		}
	}
}

/* s is closing: forget it. */
void
pool_server_gone(Server *s)
{
	Pool			  *p = s->pool;
	int				  *n = NULL;
	int				  *h = NULL;
	struct ServerList *list = list_of(p, s, s->state, &n, &h);

	/* Not inside TAILQ_REMOVE: it evaluates its head argument only sometimes. */
	TAILQ_REMOVE(list, s, link);
	(*n)--;
	(*h)--;
	if (s->host)
		host_unref(s->host);
	s->host = NULL;
	/*
	 * Maybe the last server of a pool whose hosts are all down:
	 * pool_host_changed left the waiters while it was still open (a health
	 * check saw the server die before the pool did).
	 */
	if (!shutting_down)
		open_or_fail(p);
	pool_check_unused(p);
}

/* ---- waiting ---- */

/* c waited pool_timeout in vain: take it out of the queue and tell it. */
static void
wait_timed_out(Client *c)
{
	Pool *p = c->pool;

	pool_leave_queue(c);
	if (pool_paused)
	{
		client_wait_failed(c, "57P03",
						   "the pooler is paused, timed out after %.2f s",
						   p->set.pool_timeout);
		return;
	}
	p->timeouts++;
	log_info("C-%u: %s/%s pool_timeout after %.2f s", c->id, p->dbname,
			 p->user, p->set.pool_timeout);
	client_wait_failed(c, "53300",
					   "pool limit of size %d overflow %d reached, connection "
					   "timed out, timeout %.2f",
					   p->set.pool_size, p->set.max_overflow,
					   p->set.pool_timeout);
}

/*
 * The janitor times waiting clients out.  Queues are FIFO, so only the
 * head of each can be due; one persistent timer replaces a timer per
 * queued request (a heap insert and delete per transaction under load).
 * It runs every JANITOR_MS while anybody waits, and stops otherwise.
 */
#define JANITOR_MS 10

static struct event *janitor = NULL;
static bool			 janitor_on = false;

static void
janitor_cb(evutil_socket_t fd, short what, void *arg)
{
	double now = mono_now();
	bool   anybody = false;
	Pool  *p;

	TAILQ_FOREACH(p, &pools, link)
	{
		Client *c;

		while ((c = TAILQ_FIRST(&p->waiting)) != NULL &&
			   now - c->wait_start >= p->set.pool_timeout)
			wait_timed_out(c);
		if (p->n_waiting > 0)
			anybody = true;
	}
	if (!anybody)
	{
		event_del(janitor);
		janitor_on = false;
	}
}

static void
janitor_start(void)
{
	struct timeval tv = {0, JANITOR_MS * 1000};

	if (janitor_on)
		return;
	if (janitor == NULL)
		janitor = event_new(ev_base, -1, EV_PERSIST, janitor_cb, NULL);
	event_add(janitor, &tv);
	janitor_on = true;
}

/*
 * The host (index) of p's next new server, by load_balance_hosts among the
 * eligible hosts with room and no server of p logging in there: the fewest
 * servers in use (least-connections); the next in turn (round-robin); the
 * first with room, once its login in progress is done (disable).  -1 if
 * none.
 *
 * One login at a time per host, as PgBouncer does: a backend's start is
 * mostly the server's CPU (fork, catalog caches), so logins started
 * together share it and all come late together, while one after another
 * each server starts serving as soon as it is in.  A cold pool of 20 under
 * 1,000 clients served four times as many transactions in its first 0.25 s
 * so, and its p99 fell from 422 to 239 ms (docs/benchmarks.md, eighth
 * pass).  Where a login is mostly network round trips the pool fills more
 * slowly; the servers already in serve meanwhile.
 */
static int
host_for_new(Pool *p)
{
	uint64_t mask = pool_eligible(p);
	int		 cap = pool_host_capacity(p);
	int		 best = -1;

	for (int k = 0; k < p->nhosts && k < 64; k++)
	{
		int		  i = cf.load_balance_hosts == LB_ROUND_ROBIN
						  ? (p->rr + 1 + k) % p->nhosts
						  : k;
		PoolHost *ph = &p->hosts[i];

		if (!(mask & ((uint64_t) 1 << i)) || pool_host_total(ph) >= cap)
			continue;
		if (ph->n_login > 0)
		{
			if (cf.load_balance_hosts == LB_DISABLE)
				break; /* the first host with room, once its login is done */
			continue;
		}
		if (cf.load_balance_hosts != LB_LEAST_CONNECTIONS)
		{
			best = i;
			break;
		}
		if (best < 0 || ph->n_active < p->hosts[best].n_active)
			best = i;
	}
	if (best >= 0)
		p->rr = best;
	return best;
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	open_for_waiters((Pool *) arg);
}

/*
 * Open servers for the waiting clients, within the hosts' capacity; not
 * before retry_after, after a login the server refused (no login storm
 * while a password is wrong).
 */
static void
open_for_waiters(Pool *p)
{
	double now;

	if (pool_paused || shutting_down || p->reconfiguring)
		return;
	now = pass_now(); /* called for every client that queues */
	if (now < p->retry_after)
	{
		double		   d = p->retry_after - now;
		struct timeval tv = {(time_t) d,
							 (suseconds_t) ((d - (double) (time_t) d) * 1e6)};

		if (p->retry_timer == NULL)
			p->retry_timer = evtimer_new(ev_base, retry_cb, p);
		evtimer_add(p->retry_timer, &tv);
		return;
	}
	while (p->n_login < p->n_waiting)
	{
		int i = host_for_new(p);

		if (i < 0)
			break;
		server_open(p, i);
	}
}

/*
 * Servers for p's waiters or, with no host usable and no server left that
 * could come back to the pool, 08001 for every one of them at once:
 * nothing would come for them before pool_timeout.
 */
static void
open_or_fail(Pool *p)
{
	if (!any_host_usable(p) && pool_total(p) == 0)
		fail_waiters(p, "no host of this database is up");
	else
		open_for_waiters(p);
}

/*
 * An idle server on an eligible host, still young enough to be handed
 * out, or NULL.  The host is chosen as for a new server, among those with
 * an idle server.  Within the host, pool_use_lifo takes the server released
 * last (its backend's caches are warm, and under a light load the same few
 * backends serve everybody), otherwise the one idle longest, as QueuePool's
 * default.  The idle lists keep release order either way.
 */
static Server *
take_idle(Pool *p)
{
	uint64_t mask = pool_eligible(p);

	for (;;)
	{
		int		best = -1;
		Server *s;

		for (int k = 0; k < p->nhosts && k < 64; k++)
		{
			int		  i = cf.load_balance_hosts == LB_ROUND_ROBIN
							  ? (p->rr + 1 + k) % p->nhosts
							  : k;
			PoolHost *ph = &p->hosts[i];

			if (!(mask & ((uint64_t) 1 << i)) || ph->n_idle == 0)
				continue;
			if (cf.load_balance_hosts != LB_LEAST_CONNECTIONS)
			{
				best = i;
				break;
			}
			if (best < 0 || ph->n_active < p->hosts[best].n_active)
				best = i;
		}
		if (best < 0)
			return NULL;
		if (cf.load_balance_hosts == LB_ROUND_ROBIN)
			p->rr = best;
		s = next_idle(&p->hosts[best]);
		if (p->set.pool_recycle > 0 && server_age(s) > p->set.pool_recycle)
		{
			p->recycled++;
			server_close(s, "pool_recycle");
			continue;
		}
		return s;
	}
}

/*
 * c needs a server.  Returns true if one was attached right away; otherwise
 * c waits in the FIFO and client_attached or client_wait_failed follow.
 * With no host up at all it gets 08001 at once.
 */
bool
pool_request(Pool *p, Client *c)
{
	Server *s = NULL;

	if (!pool_paused && p->n_waiting == 0) /* else released ones are theirs */
		s = take_idle(p);
	if (s)
	{
		stats_observe(&p->wait_hist, 0);
		server_attach(s, c);
		return true;
	}

	TAILQ_INSERT_TAIL(&p->waiting, c, link);
	c->queued = true;
	p->n_waiting++;
	for (int i = 0; i < PEAK_READERS; i++)
	{
		if (p->n_waiting > p->peak_waiting[i])
			p->peak_waiting[i] = p->n_waiting;
	}
	c->state = CL_WAITING;
	c->wait_start = pass_now();
	janitor_start();
	if (!pool_paused)
		open_or_fail(p);
	return false;
}

/* Take c out of whichever pool list it is in. */
void
pool_leave_queue(Client *c)
{
	Pool *p = c->pool;

	if (!c->queued)
		return;
	if (c->state == CL_LOGIN_WAIT)
		TAILQ_REMOVE(&p->login_wait, c, link);
	else
	{
		TAILQ_REMOVE(&p->waiting, c, link);
		p->n_waiting--;
		p->total_wait += pass_now() - c->wait_start;
	}
	c->queued = false;
}

/*
 * c logged in before the pool knows the server's parameters: one server
 * logs in to learn them, on an eligible host if there is one, else on any
 * host that is up.
 */
void
pool_want_params(Pool *p, Client *c)
{
	c->state = CL_LOGIN_WAIT;
	TAILQ_INSERT_TAIL(&p->login_wait, c, link);
	c->queued = true;
	if (p->n_login == 0)
	{
		int i = host_for_new(p);

		for (int k = 0; i < 0 && k < p->nhosts; k++)
		{
			if (host_usable(p->hosts[k].host))
				i = k;
		}
		if (i < 0)
		{
			fail_waiters(p, "no host of this database is up");
			return;
		}
		server_open(p, i);
	}
}

/*
 * p's idle servers to its waiters, first come first served.  Then servers
 * open for those still waiting (take_idle may have recycled what it
 * found), or, if nobody waits any more, overflow goes back as at release.
 */
static void
serve_waiters(Pool *p)
{
	Server *s;

	while (!pool_paused && p->n_waiting > 0 && (s = take_idle(p)) != NULL)
	{
		Client *c = TAILQ_FIRST(&p->waiting);

		stats_observe(&p->wait_hist, pass_now() - c->wait_start);
		pool_leave_queue(c);
		server_attach(s, c);
		client_attached(c);
	}
	if (p->n_waiting > 0)
	{
		open_for_waiters(p);
		return;
	}
	for (int i = 0; i < p->nhosts; i++)
	{
		while (p->hosts[i].n_idle > p->set.pool_size)
			server_close(last_idle(&p->hosts[i]), "overflow returned");
	}
}

/*
 * s finished a transaction (or logged in, or was reset) and is clean.
 * s may be freed on return.
 */
void
pool_release(Server *s)
{
	Pool *p = s->pool;

	s->client = NULL;
	if (s->cancels > 0)
	{
		/* a cancel is on its way to it: keep it until that is done */
		s->held = true;
		return;
	}
	if (!rq_empty(&s->rq))
	{
		server_close(s, "released with requests unanswered");
		return;
	}
	if (p->set.pool_recycle > 0 && server_age(s) > p->set.pool_recycle)
	{
		p->recycled++;
		server_close(s, "pool_recycle");
		return;
	}
	if (s->hidx < 0 || !(pool_eligible(p) & ((uint64_t) 1 << s->hidx)))
	{
		/* its host left the entry, went down or changed role */
		server_close(s, "its host is no longer eligible");
		return;
	}
	if (pool_host_total(&p->hosts[s->hidx]) > pool_host_capacity(p))
	{
		/* a RELOAD lowered the limits: the waiters get what is left */
		server_close(s, "pool size lowered by a reload");
		return;
	}
	if (s->state != SV_IDLE)
		pool_set_state(s, SV_IDLE);
	if (!pool_paused && p->n_waiting > 0)
	{
		/* for the first waiter, at the end of this pass (pool_end_of_pass) */
		if (!p->handoff)
		{
			p->handoff = true;
			TAILQ_INSERT_TAIL(&handoffs, p, handoff_link);
		}
		return;
	}
	if (p->hosts[s->hidx].n_idle > p->set.pool_size)
	{
		server_close(s, "overflow returned");
		return;
	}
	pooler_check_shutdown();
}

/*
 * The end of an event loop pass (main.c runs the loop one pass at a time):
 * the servers released during the pass go to the clients waiting for them.
 * So the answers that ended those transactions are all written before the
 * next queries wake the servers up, as PgBouncer orders it (the A/B is in
 * docs/benchmarks.md).  The queue stays FIFO: pool_request does not take
 * an idle server while anybody waits.
 */
void
pool_end_of_pass(void)
{
	Pool *p;

	while ((p = TAILQ_FIRST(&handoffs)) != NULL)
	{
		TAILQ_REMOVE(&handoffs, p, handoff_link);
		p->handoff = false;
		serve_waiters(p);
	}
	pooler_check_shutdown();
}

/* PAUSE is over: hand out servers again. */
void
pool_resume_all(void)
{
	Pool *p;

	pool_paused = false;
	TAILQ_FOREACH(p, &pools, link)
	serve_waiters(p); /* pools are freed by the sweep timer, not here */
}

/* s logged in: remember the server's parameters, welcome who waited. */
void
pool_server_ready(Server *s, const char *const *names,
				  const char *const *values, int n)
{
	Pool *p = s->pool;

	p->retry_after = 0;
	if (p->nparams == 0 && n > 0)
	{
		p->param_names = calloc(n, sizeof(char *));
		p->param_values = calloc(n, sizeof(char *));
		if (p->param_names == NULL || p->param_values == NULL)
			fatal("out of memory");
		for (int i = 0; i < n; i++)
		{
			p->param_names[i] = intern_get(names[i]);
			p->param_values[i] = intern_get(values[i]);
		}
		p->nparams = n;
	}
	while (!TAILQ_EMPTY(&p->login_wait))
	{
		Client *c = TAILQ_FIRST(&p->login_wait);

		pool_leave_queue(c);
		client_welcome(c);
	}
	pool_release(s);
}

/* Every client waiting on p gets error, as 08001. */
static void
fail_waiters(Pool *p, const char *error)
{
	while (!TAILQ_EMPTY(&p->login_wait))
	{
		Client *c = TAILQ_FIRST(&p->login_wait);

		pool_leave_queue(c);
		client_close(c, "08001", error);
	}
	while (!TAILQ_EMPTY(&p->waiting))
	{
		Client *c = TAILQ_FIRST(&p->waiting);

		pool_leave_queue(c);
		client_wait_failed(c, "08001", "could not connect to server: %s",
						   error);
	}
}

/*
 * Did libpq refuse a login for the host's role (target_session_attrs)?
 * Then the host is fine; its role changed since the last check.
 */
static bool
role_refused(const char *error)
{
	return strstr(error, "read-only") || strstr(error, "hot standby mode");
}

/*
 * Logging s into its server failed; the caller closes s next.  If nothing
 * answered (refused, timed out, the server starting or stopping) the host
 * is down from now on, and the waiting clients go to another host; a host
 * that answered with the wrong role is checked again at once; one that
 * refused the login itself (a password, a role that does not exist) stays
 * up: a client's made-up user name must not take a host down for
 * everyone.  If no other live server or usable host is left, nobody will
 * release one: fail the waiting clients now rather than after
 * pool_timeout.
 */
void
pool_login_failed(Server *s, const char *error)
{
	Pool *p = s->pool;

	p->login_failures++;
	if (role_refused(error))
		host_check_soon(s->host);
	else if (!pgconn_server_answered(error))
		host_failed(s->host, error);
	else
		p->retry_after = mono_now() + LOGIN_RETRY_DELAY;
	if (p->n_idle + p->n_active + p->n_login - 1 > 0)
		return;
	for (int i = 0; i < p->nhosts; i++)
	{
		if (host_usable(p->hosts[i].host) && p->hosts[i].host != s->host)
			return; /* open_for_waiters tries it when s is gone */
	}
	/* none other: a refused login would fail again; fail them now */
	fail_waiters(p, error);
}

/*
 * Who logs into h for its health checks (hosts.c asks): the entry's forced
 * user, else the user of a pool of that entry (whose password auth_file
 * has), else the first of admin_users.
 */
const char *
pool_check_user(const Host *h, const DbConfig *db)
{
	static char admin[256];
	Pool	   *p;
	size_t		n = 0;
	const char *a = cf.admin_users;

	if (db->user)
		return db->user;
	TAILQ_FOREACH(p, &pools, link)
	{
		if (strcmp(p->dbname, db->name) == 0)
			return p->user;
	}
	while (*a == ' ' || *a == ',')
		a++;
	while (*a && *a != ',' && *a != ' ' && n < sizeof(admin) - 1)
		admin[n++] = *a++;
	admin[n] = '\0';
	return n > 0 ? admin : NULL;
}

/*
 * hosts.c says h changed (up, down, role, lag): every pool that lists it
 * closes the idle servers it may no longer hand out (and, if h is down,
 * those logging in there), then opens servers for its waiters where it
 * can, or fails them if no host is up at all.  Two primaries are said
 * once, loudly.
 */
void
pool_host_changed(Host *h)
{
	Pool *p;

	for (DbConfig *db = cf.databases; db; db = db->next)
	{
		int primaries = 0;

		if (db->target != TSA_READ_WRITE && db->target != TSA_PRIMARY)
			continue;
		for (int i = 0; i < db->nhosts; i++)
		{
			Host *o = host_find_exact(db->hosts[i], db->ports[i]);

			if (o && host_usable(o) && o->role == HOST_ROLE_PRIMARY)
				primaries++;
		}
		if (primaries > 1 && !db->split_reported)
			log_error("database %s: %d hosts say they are the primary: "
					  "writes wait until only one is (demote or BAN the "
					  "other)",
					  db->name, primaries);
		db->split_reported = primaries > 1;
	}
	TAILQ_FOREACH(p, &pools, link)
	{
		uint64_t mask;
		bool	 lists = false;

		for (int i = 0; i < p->nhosts; i++)
			lists |= p->hosts[i].host == h;
		if (!lists)
			continue;
		mask = pool_eligible(p);
		for (int i = 0; i < p->nhosts; i++)
		{
			PoolHost *ph = &p->hosts[i];
			Server	 *s;
			Server	 *next;

			if (mask & ((uint64_t) 1 << i))
				continue;
			while ((s = TAILQ_FIRST(&ph->idle)) != NULL)
				server_close(s, "its host is no longer eligible");
			if (host_usable(ph->host))
				continue;
			for (s = TAILQ_FIRST(&p->login); s; s = next)
			{
				next = TAILQ_NEXT(s, link);
				if (s->hidx == i)
					server_close(s, "its host is down");
			}
		}
		open_or_fail(p);
	}
}
