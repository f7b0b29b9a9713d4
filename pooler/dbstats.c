/*
 * dbstats.c
 *		Per-database totals and averages for SHOW STATS, STATS_TOTALS and
 *		STATS_AVERAGES, PgBouncer's way.
 *
 * The pooler counts per (database, user) pool; PgBouncer's tools expect one
 * row per database, whose counters only ever grow.  A pool is freed when
 * nobody has used it for a while (pool.c), so what a freed pool counted is
 * kept here, per database name, through the callback pool.c calls when it
 * frees one: totals are the live pools plus those retired ones.
 *
 * Averages are over the last stats_period seconds, as PgBouncer's: a timer
 * takes the totals every period and keeps the differences of the last two
 * takes.  Before the first period has passed they are 0.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "dbstats.h"
#include "log.h"
#include "process.h"
#include "pool.h"

/* Counters of one database name, kept across pools and periods. */
typedef struct DbEntry
{
	char		   *name;
	DbCounters		retired; /* of its pools freed so far */
	DbCounters		last;	 /* totals at the last take */
	bool			taken;	 /* last is set */
	DbStats			avg;	 /* the averages of the last period */
	struct DbEntry *next;
} DbEntry;

static DbEntry		*entries = NULL;
static struct event *period_ev = NULL;
static double		 last_take = 0; /* mono_now() of the last take */

static DbEntry *
entry_get(const char *name)
{
	DbEntry *e;

	for (e = entries; e; e = e->next)
	{
		if (strcmp(e->name, name) == 0)
			return e;
	}
	e = calloc(1, sizeof(DbEntry));
	if (e == NULL)
		fatal("out of memory");
	e->name = xstrdup(name);
	e->next = entries;
	entries = e;
	return e;
}

static void
counters_add(DbCounters *sum, const DbCounters *c)
{
	sum->xact_count += c->xact_count;
	sum->query_count += c->query_count;
	sum->bytes_in += c->bytes_in;
	sum->bytes_out += c->bytes_out;
	sum->xact_time += c->xact_time;
	sum->wait_time += c->wait_time;
	sum->timeouts += c->timeouts;
	sum->recycled += c->recycled;
}

static void
pool_counters(const Pool *p, DbCounters *c)
{
	c->xact_count = p->xact_count;
	c->query_count = p->query_count;
	c->bytes_in = p->bytes_in;
	c->bytes_out = p->bytes_out;
	c->xact_time = p->xact_hist.sum;
	c->wait_time = p->total_wait;
	c->timeouts = p->timeouts;
	c->recycled = p->recycled;
}

/* pool.c frees p: keep what it counted. */
static void
pool_freed(const Pool *p)
{
	DbCounters c;

	pool_counters(p, &c);
	counters_add(&entry_get(p->dbname)->retired, &c);
}

/* The totals of database name now: its live pools and its retired ones. */
static void
totals_of(const DbEntry *e, DbCounters *sum)
{
	const Pool *p;

	*sum = e->retired;
	TAILQ_FOREACH(p, &pools, link)
	{
		DbCounters c;

		if (strcmp(p->dbname, e->name) != 0)
			continue;
		pool_counters(p, &c);
		counters_add(sum, &c);
	}
}

/* a - b, never below 0 */
static double
diff(double a, double b)
{
	return a > b ? a - b : 0;
}

/* Every stats_period: the averages of the period that ended. */
static void
period_cb(evutil_socket_t fd, short what, void *arg)
{
	double		   now = mono_now();
	double		   secs = now - last_take;
	const Pool	  *p;
	struct timeval tv;

	/* databases that appeared since the last take */
	for (DbConfig *db = cf.databases; db; db = db->next)
		(void) entry_get(db->name);
	TAILQ_FOREACH(p, &pools, link)(void) entry_get(p->dbname);

	for (DbEntry *e = entries; e; e = e->next)
	{
		DbCounters now_c;
		double	   xacts;
		double	   queries;

		totals_of(e, &now_c);
		memset(&e->avg, 0, sizeof(e->avg));
		if (e->taken && secs > 0)
		{
			xacts =
				diff((double) now_c.xact_count, (double) e->last.xact_count);
			queries =
				diff((double) now_c.query_count, (double) e->last.query_count);
			e->avg.avg_xact_count = xacts / secs;
			e->avg.avg_query_count = queries / secs;
			e->avg.avg_recv =
				diff((double) now_c.bytes_in, (double) e->last.bytes_in) /
				secs;
			e->avg.avg_sent =
				diff((double) now_c.bytes_out, (double) e->last.bytes_out) /
				secs;
			if (xacts > 0)
			{
				e->avg.avg_xact_time =
					diff(now_c.xact_time, e->last.xact_time) * 1e6 / xacts;
				e->avg.avg_wait_time =
					diff(now_c.wait_time, e->last.wait_time) * 1e6 / xacts;
			}
			if (queries > 0)
				e->avg.avg_query_time =
					diff(now_c.xact_time, e->last.xact_time) * 1e6 / queries;
		}
		e->last = now_c;
		e->taken = true;
	}
	last_take = now;
	tv.tv_sec = (time_t) cf.stats_period;
	tv.tv_usec = (suseconds_t) ((cf.stats_period - (double) tv.tv_sec) * 1e6);
	evtimer_add(period_ev, &tv);
}

/* Start taking totals every stats_period (read again at each take). */
void
dbstats_start(void)
{
	pool_set_free_callback(pool_freed);
	period_ev = evtimer_new(ev_base, period_cb, NULL);
	if (period_ev == NULL)
		fatal("could not create the stats timer");
	period_cb(-1, 0, NULL);
}

void
dbstats_stop(void)
{
	if (period_ev)
		event_free(period_ev);
	period_ev = NULL;
	pool_set_free_callback(NULL);
	while (entries)
	{
		DbEntry *next = entries->next;

		free(entries->name);
		free(entries);
		entries = next;
	}
}

/* Append the row of name to rows (no duplicates). */
static void
add_row(DbStats **rows, int *n, int *cap, const char *name)
{
	DbEntry *e;

	for (int i = 0; i < *n; i++)
	{
		if (strcmp((*rows)[i].name, name) == 0)
			return;
	}
	if (*n == *cap)
	{
		*cap = *cap ? *cap * 2 : 16;
		*rows = realloc(*rows, (size_t) *cap * sizeof(DbStats));
		if (*rows == NULL)
			fatal("out of memory");
	}
	e = entry_get(name);
	(*rows)[*n] = e->avg;
	(*rows)[*n].name = xstrdup(name);
	totals_of(e, &(*rows)[*n].total);
	(*n)++;
}

int
dbstats_collect(DbStats **out)
{
	DbStats	   *rows = NULL;
	int			n = 0;
	int			cap = 0;
	const Pool *p;

	for (DbConfig *db = cf.databases; db; db = db->next)
		add_row(&rows, &n, &cap, db->name);
	TAILQ_FOREACH(p, &pools, link)
	add_row(&rows, &n, &cap, p->dbname);
	for (DbEntry *e = entries; e; e = e->next)
		add_row(&rows, &n, &cap, e->name);
	*out = rows;
	return n;
}

void
dbstats_free(DbStats *rows, int n)
{
	for (int i = 0; i < n; i++)
		free(rows[i].name);
	free(rows);
}
