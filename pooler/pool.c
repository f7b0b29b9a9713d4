/*
 * pool.c
 *		Server pools per (database, user), with the semantics of SQLAlchemy's
 *		QueuePool: pool_size, max_overflow, pool_timeout, pool_recycle.
 *
 * All pool accounting lives here: which servers exist, in which state, who
 * waits for one.  A server is in exactly one of the pool's three lists
 * (login, idle, active); pool_set_state moves it.  Waiting clients form a
 * FIFO, timed out by one janitor timer.
 *
 *	request:  idle server (not past pool_recycle) -> attach at once;
 *			  otherwise queue, and open servers while fewer are logging in
 *			  than clients wait and fewer than pool_size + max_overflow exist.
 *	release:  past pool_recycle -> close; more servers than pool_size +
 *			  max_overflow (lowered by a RELOAD) -> close; else first waiter;
 *			  else close if pool_size servers are already idle (overflow
 *			  given back); else idle.
 *	reload:   idle servers beyond the new pool_size, or beyond the new
 *			  capacity, are closed at once; the busy ones as they come back.
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
#include "log.h"
#include "main.h"
#include "pool.h"

struct PoolList pools = TAILQ_HEAD_INITIALIZER(pools);
bool			pool_paused = false;

#define LOGIN_RETRY_DELAY	0.5	 /* seconds after a failed login */
#define EMPTY_POOL_LIFETIME 60.0 /* seconds an unused pool is kept */
#define SWEEP_INTERVAL		10	 /* seconds between looks for unused pools */

static int			 n_pools = 0;
static struct event *sweep_timer = NULL; /* every SWEEP_INTERVAL */
static struct event *sweep_now = NULL;	 /* at the next loop pass */

static void open_for_waiters(Pool *p);
static void sweep_cb(evutil_socket_t fd, short what, void *arg);

static void
copy_db(DbConfig *dst, const DbConfig *src)
{
	free(dst->name);
	free(dst->host);
	free(dst->port);
	free(dst->dbname);
	free(dst->user);
	free(dst->password);
	dst->name = xstrdup(src->name);
	dst->host = xstrdup(src->host);
	dst->port = xstrdup(src->port);
	dst->dbname = xstrdup(src->dbname);
	dst->user = xstrdup(src->user);
	dst->password = xstrdup(src->password);
	dst->next = NULL;
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	open_for_waiters((Pool *) arg);
}

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
	TAILQ_REMOVE(&pools, p, link);
	n_pools--;
	event_free(p->retry_timer);
	free(p->history);
	for (int i = 0; i < p->nparams; i++)
	{
		free(p->param_names[i]);
		free(p->param_values[i]);
	}
	free(p->param_names);
	free(p->param_values);
	free(p->db.name);
	free(p->db.host);
	free(p->db.port);
	free(p->db.dbname);
	free(p->db.user);
	free(p->db.password);
	free(p->dbname);
	free(p->user);
	free(p);
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
	TAILQ_INIT(&p->login);
	TAILQ_INIT(&p->idle);
	TAILQ_INIT(&p->active);
	TAILQ_INIT(&p->waiting);
	TAILQ_INIT(&p->login_wait);
	p->retry_timer = evtimer_new(ev_base, retry_cb, p);
	TAILQ_INSERT_TAIL(&pools, p, link);
	n_pools++;
	log_info("pool %s/%s created", dbname, user);
	return p;
}

/*
 * After RELOAD: pools follow their [databases] entry if it still exists,
 * and their sizes.  A lower pool_size or max_overflow closes the idle
 * servers it leaves over at once (pool_release closes the busy ones as
 * their transactions end); a higher one opens servers for who waits.
 */
void
pool_refresh_config(void)
{
	Pool *p;

	TAILQ_FOREACH(p, &pools, link)
	{
		DbConfig *db = config_find_db(&cf, p->dbname);
		Server	 *s;

		if (db)
			copy_db(&p->db, db);
		while ((s = TAILQ_FIRST(&p->idle)) != NULL &&
			   (p->n_idle > cf.pool_size || pool_total(p) > pool_capacity(p)))
			server_close(s, "pool size lowered by a reload");
		open_for_waiters(p);
	}
}

/*
 * Servers in use over what the pool may have: pool_size + max_overflow, or
 * pool_size with no overflow limit.  SHOW POOLS, /metrics and the report
 * to the extension all use this.
 */
double
pool_utilization(const Pool *p)
{
	int cap =
		cf.max_overflow < 0 ? cf.pool_size : cf.pool_size + cf.max_overflow;

	return cap > 0 ? (double) p->n_active / cap : 0.0;
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

int
pool_total(const Pool *p)
{
	return p->n_login + p->n_idle + p->n_active;
}

/* pool_size + max_overflow, or no cap. */
int
pool_capacity(const Pool *p)
{
	return cf.max_overflow < 0 ? INT_MAX : cf.pool_size + cf.max_overflow;
}

static struct ServerList *
list_of(Pool *p, ServerState state, int **count)
{
	switch (state)
	{
		case SV_LOGIN:
			*count = &p->n_login;
			return &p->login;
		case SV_IDLE:
			*count = &p->n_idle;
			return &p->idle;
		case SV_ACTIVE:
		case SV_RESET:
			*count = &p->n_active;
			return &p->active;
		default:
			fatal("server state %d has no list", state);
	}
}

/* Move s to the list of its new state.  The one place states change. */
void
pool_set_state(Server *s, ServerState state)
{
	Pool			  *p = s->pool;
	int				  *from_n = NULL;
	int				  *to_n = NULL;
	struct ServerList *from = list_of(p, s->state, &from_n);
	struct ServerList *to = list_of(p, state, &to_n);

	TAILQ_REMOVE(from, s, link);
	(*from_n)--;
	TAILQ_INSERT_TAIL(to, s, link);
	(*to_n)++;
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
	Pool *p = s->pool;
	int	 *n = NULL;

	struct ServerList *list = list_of(p, s->state, &n);

	/* Not inside TAILQ_REMOVE: it evaluates its head argument only sometimes. */
	TAILQ_REMOVE(list, s, link);
	(*n)--;
	if (!shutting_down)
		open_for_waiters(p);
	pool_check_unused(p);
}

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
						   cf.pool_timeout);
		return;
	}
	p->timeouts++;
	log_info("C-%u: %s/%s pool_timeout after %.2f s", c->id, p->dbname,
			 p->user, cf.pool_timeout);
	client_wait_failed(c, "53300",
					   "pool limit of size %d overflow %d reached, connection "
					   "timed out, timeout %.2f",
					   cf.pool_size, cf.max_overflow, cf.pool_timeout);
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
			   now - c->wait_start >= cf.pool_timeout)
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

/* Open servers for the waiting clients, within the pool's capacity. */
static void
open_for_waiters(Pool *p)
{
	double now = mono_now();

	if (pool_paused || shutting_down)
		return;
	if (now < p->retry_after)
	{
		struct timeval tv;
		double		   d = p->retry_after - now;

		tv.tv_sec = (time_t) d;
		tv.tv_usec = (suseconds_t) ((d - (double) tv.tv_sec) * 1e6);
		evtimer_add(p->retry_timer, &tv);
		return;
	}
	while (p->n_login < p->n_waiting && pool_total(p) < pool_capacity(p))
		server_open(p);
}

/* An idle server still young enough to be handed out, or NULL. */
static Server *
take_idle(Pool *p)
{
	Server *s;

	while ((s = TAILQ_FIRST(&p->idle)) != NULL)
	{
		if (cf.pool_recycle > 0 && server_age(s) > cf.pool_recycle)
		{
			p->recycled++;
			server_close(s, "pool_recycle");
			continue;
		}
		return s;
	}
	return NULL;
}

/*
 * c needs a server.  Returns true if one was attached right away; otherwise
 * c waits in the FIFO and client_attached or client_wait_failed follow.
 */
bool
pool_request(Pool *p, Client *c)
{
	Server *s = NULL;

	if (!pool_paused)
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
	c->wait_start = mono_now();
	janitor_start();
	open_for_waiters(p);
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
		p->total_wait += mono_now() - c->wait_start;
	}
	c->queued = false;
}

/* c logged in before the pool knows the server's parameters. */
void
pool_want_params(Pool *p, Client *c)
{
	c->state = CL_LOGIN_WAIT;
	TAILQ_INSERT_TAIL(&p->login_wait, c, link);
	c->queued = true;
	if (p->n_login == 0)
		server_open(p);
}

/* Hand s to the first waiter, if any.  True if it was taken. */
static bool
give_to_waiter(Server *s)
{
	Pool   *p = s->pool;
	Client *c;

	if (pool_paused || (c = TAILQ_FIRST(&p->waiting)) == NULL)
		return false;
	stats_observe(&p->wait_hist, mono_now() - c->wait_start);
	pool_leave_queue(c);
	server_attach(s, c);
	client_attached(c);
	return true;
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
	if (s->state != SV_IDLE)
		pool_set_state(s, SV_IDLE);

	if (cf.pool_recycle > 0 && server_age(s) > cf.pool_recycle)
	{
		p->recycled++;
		server_close(s, "pool_recycle");
		return;
	}
	if (pool_total(p) > pool_capacity(p))
	{
		/* a RELOAD lowered the limits: the waiters get what is left */
		server_close(s, "pool size lowered by a reload");
		return;
	}
	if (give_to_waiter(s))
		return;
	if (p->n_idle > cf.pool_size)
	{
		server_close(s, "overflow returned");
		return;
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
	{
		Server *s;

		while (p->n_waiting > 0 && (s = take_idle(p)) != NULL)
			give_to_waiter(s);
		open_for_waiters(p);
	}
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
			p->param_names[i] = xstrdup(names[i]);
			p->param_values[i] = xstrdup(values[i]);
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

/*
 * Logging s into its server failed; the caller closes s next.  If the pool
 * has no other live server, nobody will release one: fail the waiting
 * clients now rather than after pool_timeout.  New logins wait a moment.
 */
void
pool_login_failed(Server *s, const char *error)
{
	Pool *p = s->pool;

	p->login_failures++;
	p->retry_after = mono_now() + LOGIN_RETRY_DELAY;

	if (p->n_idle + p->n_active + p->n_login - 1 > 0)
		return;
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
