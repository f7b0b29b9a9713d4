/*
 * timeouts.c
 *		Timeouts that need a clock: idle_transaction_timeout, query_timeout
 *		and client_idle_timeout, with PgBouncer's meanings.
 *
 * A client is
 *	idle in a transaction  when its server's last ReadyForQuery said 'T' or
 *						   'E' and nothing it asked since is unanswered;
 *						   after idle_transaction_timeout it gets FATAL 25P03
 *						   and its server is closed, so its backend rolls
 *						   back and the pool slot is free again;
 *	waiting for an answer  when its server owes it one; if no ReadyForQuery
 *						   came for query_timeout, it gets FATAL 57014 and
 *						   its server is closed (a server that stopped
 *						   answering, or a network that stopped carrying);
 *	idle				   when it is logged in and outside any transaction:
 *						   no server (transaction pooling), or a server whose
 *						   last ReadyForQuery said 'I' (session pooling, a
 *						   pinned client); after client_idle_timeout it gets
 *						   FATAL 57P05, and its server goes back to the pool.
 * Clients logging in (client_login_timeout) or waiting for a server
 * (pool_timeout) have timeouts of their own.
 *
 * No timer per connection and no clock read per message: the hot path only
 * sets a mark back to 0 when a phase begins (each ReadyForQuery, the end of
 * each transaction, each admin command), and a janitor looks at every
 * client a few times a second.  The first time it sees a connection in a
 * phase, it notes the time in the mark; a later look at a mark that is
 * still set measures how long the phase has lasted.  A timeout so fires
 * between its value and its value plus one period of the janitor, which
 * runs every tenth of the shortest timeout set (at least every 0.1 s, at
 * most every second), and not at all while all three are 0.
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "client.h"
#include "log.h"
#include "process.h"
#include "pool.h"
#include "server.h"
#include "timeouts.h"

#define PERIOD_MIN 0.1 /* seconds */
#define PERIOD_MAX 1.0

typedef enum Expiry
{
	EXP_NONE,
	EXP_IDLE_TRANSACTION, /* idle_transaction_timeout */
	EXP_QUERY,			  /* query_timeout */
	EXP_CLIENT_IDLE		  /* client_idle_timeout */
} Expiry;

static struct event *janitor = NULL;
static double		 period = 0; /* of the janitor, 0 = stopped */

/*
 * How long the phase marked by *mark has lasted: 0 the first time it is
 * seen (the mark is set then).
 */
static double
phase_age(double *mark, double now)
{
	if (*mark == 0)
	{
		*mark = now;
		return 0;
	}
	return now - *mark;
}

/* Has limit (seconds, 0 = off) passed since *mark? */
static bool
expired(double limit, double *mark, double now)
{
	double age = phase_age(mark, now);

	return limit > 0 && age >= limit;
}

/* Which timeout, if any, c has run into by now. */
static Expiry
check_client(Client *c, double now)
{
	Server *s = c->server;

	if (c->dead || c->relay_left > 0)
		return EXP_NONE; /* a message on its way is no idleness */
	if (s == NULL)
	{
		if (c->state != CL_IDLE)
			return EXP_NONE; /* logging in, or waiting for a server */
		return expired(cf.client_idle_timeout, &c->idle_seen, now)
				   ? EXP_CLIENT_IDLE
				   : EXP_NONE;
	}
	if (s->state != SV_ACTIVE || s->relay_left > 0)
		return EXP_NONE;
	if (!rq_empty(&s->rq))
		return expired(cf.query_timeout, &s->busy_seen, now) ? EXP_QUERY
															 : EXP_NONE;
	if (s->txn_status == 'I')
		return expired(cf.client_idle_timeout, &s->idle_seen, now)
				   ? EXP_CLIENT_IDLE
				   : EXP_NONE;
	return expired(cf.idle_transaction_timeout, &s->idle_seen, now)
			   ? EXP_IDLE_TRANSACTION
			   : EXP_NONE;
}

/* End c (and its server, unless it is clean) for the timeout it ran into. */
static void
expire(Client *c, Expiry what)
{
	Server *s = c->server;
	char	msg[256];

	switch (what)
	{
		case EXP_IDLE_TRANSACTION:
			snprintf(msg, sizeof(msg),
					 "terminating connection due to idle-in-transaction "
					 "timeout (idle_transaction_timeout = %g s); the "
					 "transaction was rolled back",
					 cf.idle_transaction_timeout);
			/* never handed on: its backend rolls back as it closes */
			c->server = NULL;
			s->client = NULL;
			server_close(s, "idle_transaction_timeout");
			client_close(c, "25P03", msg);
			break;
		case EXP_QUERY:
			snprintf(msg, sizeof(msg),
					 "canceling statement due to query_timeout (%g s): the "
					 "server sent no answer in time, and the connection to "
					 "it was closed",
					 cf.query_timeout);
			c->server = NULL;
			s->client = NULL;
			server_close(s, "query_timeout");
			client_close(c, "57014", msg);
			break;
		case EXP_CLIENT_IDLE:
			snprintf(msg, sizeof(msg),
					 "terminating connection due to idle-session timeout "
					 "(client_idle_timeout = %g s)",
					 cf.client_idle_timeout);
			client_close(c, "57P05", msg);
			break;
		default:
			log_error("C-%u: unexpected expiry %d", c->id, (int) what);
			break;
	}
}

/*
 * Look at every client.  Those that ran into a timeout are collected first
 * and ended after the walk: ending one may hand its server to a waiter,
 * which may end that waiter too (no client is freed before the loop comes
 * back, see client_linger and client_end_of_pass, but the list changes
 * under the walk).
 */
static void
janitor_cb(evutil_socket_t fd, short what, void *arg)
{
	static Client **due = NULL;
	static Expiry  *why = NULL;
	static int		cap = 0;
	double			now = mono_now();
	int				n = 0;
	Client		   *c;

	TAILQ_FOREACH(c, &all_clients, all)
	{
		Expiry e = check_client(c, now);

		if (e == EXP_NONE)
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 64;
			due = realloc(due, sizeof(Client *) * (size_t) cap);
			why = realloc(why, sizeof(Expiry) * (size_t) cap);
			if (due == NULL || why == NULL)
				fatal("out of memory");
		}
		due[n] = c;
		why[n] = e;
		n++;
	}
	for (int i = 0; i < n; i++)
	{
		/* gone meanwhile, or its state changed: look again next time */
		if (!due[i]->dead && check_client(due[i], now) == why[i])
			expire(due[i], why[i]);
	}
}

/*
 * Start, stop or re-time the janitor after the configuration changed (at
 * start-up and after each reload).
 */
void
timeouts_configure(void)
{
	double shortest = 0;
	double want;
	double limits[] = {cf.idle_transaction_timeout, cf.query_timeout,
					   cf.client_idle_timeout};

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
	{
		if (limits[i] > 0 && (shortest == 0 || limits[i] < shortest))
			shortest = limits[i];
	}
	want = shortest / 10;
	if (want < PERIOD_MIN)
		want = PERIOD_MIN;
	if (want > PERIOD_MAX)
		want = PERIOD_MAX;
	if (shortest == 0)
		want = 0;
	if (want == period)
		return;
	period = want;
	if (janitor == NULL)
		janitor = event_new(ev_base, -1, EV_PERSIST, janitor_cb, NULL);
	event_del(janitor);
	if (period > 0)
	{
		struct timeval tv = {
			(time_t) period,
			(suseconds_t) ((period - (double) (time_t) period) * 1e6)};

		event_add(janitor, &tv);
	}
}

void
timeouts_stop(void)
{
	if (janitor)
		event_free(janitor);
	janitor = NULL;
	period = 0;
}
