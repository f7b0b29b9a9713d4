/*
 * monitor.c
 *		The pooler's own connections to its databases.
 *
 * Two jobs need a database connection that no client ever gets:
 *
 * Reports.  Every report_interval seconds, for each pool of a [databases]
 * entry, apiscale.report_pool(pool, size, overflow, in_use, waiting,
 * timeouts) with the most servers in use and clients waiting since the
 * last report, so that the extension's pool_utilization_pct is live.  A
 * database without the extension (or whose role may not call the
 * function) is logged once and not asked again until a RELOAD.
 *
 * Fetches.  For the databases in http_metrics_databases (with http_listen
 * set), every FETCH_INTERVAL seconds: the scaling signals, the top
 * statements and apiscale.metrics(), and every ADVICE_INTERVAL the index
 * advice (which re-plans when read).  The HTTP endpoint serves what the
 * last fetch got; it never waits for a database.
 *
 * One Monitor, with one libpq connection, per [databases] entry that has
 * work.  The connection is opened without blocking and driven by libevent
 * like a server login, and runs one query at a time.  A one-second tick
 * decides what is due, opens connections (again RETRY_INTERVAL after a
 * failure), and drops a query that takes longer than QUERY_TIMEOUT.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "log.h"
#include "process.h"
#include "metrics.h"
#include "monitor.h"
#include "pgconn.h"
#include "pool.h"
#include "server.h"
#include "textout.h"

#define FETCH_INTERVAL	5  /* signals, top statements, metrics() */
#define ADVICE_INTERVAL 60 /* index advice */
#define RETRY_INTERVAL	10 /* after a failed connection */
#define QUERY_TIMEOUT	30 /* then the connection is dropped */
#define MAX_SIGNALS		16

/* The signals the dashboard plots, in the order of the history arrays. */
static const char *const hist_signals[] = {
	"p95_response_time_ms", "error_rate_pct",	  "connection_utilization_pct",
	"pool_utilization_pct", "cache_hit_rate_pct", "cpu_usage_pct",
	"memory_usage_pct",
};
#define N_HIST_SIGNALS (sizeof(hist_signals) / sizeof(hist_signals[0]))

typedef enum MonJob
{
	JOB_REPORT, /* report_pool() for each pool */
	JOB_FETCH	/* the extension's numbers */
} MonJob;

/* One row of apiscale.scaling_signals. */
typedef struct SignalRow
{
	char  *name;
	double value; /* NAN: no data */
	double threshold;
	char  *status; /* ok, warning, no data */
	char  *action;
} SignalRow;

typedef struct Monitor
{
	TAILQ_ENTRY(Monitor) link;
	char  *name; /* the [databases] entry */
	PgConn pc;	 /* its connection */
	MonJob job;
	bool   with_advice;	 /* the fetch in flight reads index_advice */
	bool   with_metrics; /* ... and apiscale.metrics() */
	double next_report;
	double next_fetch;
	double next_advice;
	double retry_after;
	bool   report_off;	  /* no extension or no right: until RELOAD */
	bool   no_metrics_fn; /* apiscale.metrics() is missing (1.0) */
	bool   down_logged;	  /* quiet about failures until it works */
	bool   needed;		  /* still has work (monitor_tick) */
	/* what the last fetch got */
	char	 *error; /* why there is no data, or NULL */
	double	  fetched_at;
	int		  nsignals;
	SignalRow signals[MAX_SIGNALS];
	char	 *top_json;
	char	 *advice_json;
	char	 *metrics_text;
	float	 *hist;		  /* [N_HIST_SIGNALS][HISTORY_LEN], NAN: no data */
	uint64_t  hist_first; /* first history sample it has */
} Monitor;

static TAILQ_HEAD(, Monitor) monitors = TAILQ_HEAD_INITIALIZER(monitors);
static struct event *tick_ev = NULL;

static void monitor_tick(evutil_socket_t fd, short what, void *arg);

static void
set_str(char **field, const char *value)
{
	free(*field);
	*field = value ? xstrdup(value) : NULL;
}

static void
clear_signals(Monitor *m)
{
	for (int i = 0; i < m->nsignals; i++)
	{
		free(m->signals[i].name);
		free(m->signals[i].status);
		free(m->signals[i].action);
	}
	m->nsignals = 0;
}

static void
mon_disconnect(Monitor *m)
{
	pgconn_close(&m->pc);
}

static void
mon_free(Monitor *m)
{
	mon_disconnect(m);
	TAILQ_REMOVE(&monitors, m, link);
	clear_signals(m);
	free(m->name);
	free(m->error);
	free(m->top_json);
	free(m->advice_json);
	free(m->metrics_text);
	free(m->hist);
	free(m);
}

static Monitor *
mon_find(const char *name)
{
	Monitor *m;

	TAILQ_FOREACH(m, &monitors, link)
	{
		if (strcmp(m->name, name) == 0)
			return m;
	}
	return NULL;
}

static void
mon_connect(Monitor *m)
{
	DbConfig   *db = config_find_db(&cf, m->name);
	const char *kw[SERVER_CONNINFO_MAX];
	const char *val[SERVER_CONNINFO_MAX];

	if (db == NULL)
		return;
	server_conninfo(db, pool_check_user(NULL, db), "apiscale-pooler monitor",
					kw, val);
	pgconn_open(&m->pc, kw, val);
}

/* Send sql for job; its results come to mon_result. */
static void
mon_send(Monitor *m, MonJob job, const char *sql)
{
	m->job = job;
	pgconn_send(&m->pc, sql);
}

/* The pools of m's database to apiscale.report_pool(), one statement each. */
static void
start_report(Monitor *m)
{
	struct evbuffer *sql = evbuffer_new();
	Pool			*p;
	int				 n = 0;

	TAILQ_FOREACH(p, &pools, link)
	{
		int	  in_use;
		int	  waiting;
		int	  hosts = __builtin_popcountll(pool_eligible(p));
		int	  size;
		int	  overflow;
		char  label[512];
		char *lit;

		if (strcmp(p->dbname, m->name) != 0)
			continue;
		if (hosts == 0)
			hosts = 1;
		pool_take_peaks(p, PEAK_REPORT, &in_use, &waiting);
		/* what it may have: per eligible host (at least one) */
		size = p->set.pool_size * hosts;
		overflow = p->set.max_overflow < 0 ? -1 : p->set.max_overflow * hosts;
		/* after a RELOAD lowered the size, more may still be in use */
		if (overflow >= 0 && in_use > size + overflow)
			in_use = size + overflow;
		snprintf(label, sizeof(label), "%s/%s", p->dbname, p->user);
		lit = PQescapeLiteral(m->pc.conn, label, strlen(label));
		if (lit == NULL)
			continue;
		evbuffer_add_printf(
			sql,
			"%sSELECT apiscale.report_pool(%s, %d, %d, %d, %d, "
			"%llu)",
			n++ ? "; " : "", lit, size, overflow, in_use, waiting,
			(unsigned long long) p->timeouts);
		PQfreemem(lit);
	}
	evbuffer_add(sql, "", 1);
	if (n > 0)
		mon_send(m, JOB_REPORT, (const char *) evbuffer_pullup(sql, -1));
	evbuffer_free(sql);
}

static void
start_fetch(Monitor *m, bool advice)
{
	char sql[1024];

	m->with_advice = advice;
	m->with_metrics = !m->no_metrics_fn;
	snprintf(sql, sizeof(sql),
			 "SELECT signal, value, threshold, status, action "
			 "FROM apiscale.scaling_signals; "
			 "SELECT coalesce(json_agg(q), '[]') FROM (SELECT queryid::text "
			 "AS queryid, query, calls, total_ms, mean_ms, p95_ms, errors "
			 "FROM apiscale.queries ORDER BY total_ms DESC NULLS LAST "
			 "LIMIT 10) q%s%s",
			 /*
			  * From 1.1 on, index_advice also lists what is not worth it
			  * (its verdict says so); 1.0 has no verdict column.
			  */
			 advice ? "; SELECT coalesce(json_agg(a), '[]') FROM (SELECT "
					  "relation::text AS relation, ddl, est_improvement_pct, "
					  "rows_filtered FROM apiscale.index_advice i WHERE "
					  "coalesce(to_jsonb(i) ->> 'verdict', 'recommended') = "
					  "'recommended' LIMIT 10) a"
					: "",
			 m->with_metrics ? "; SELECT apiscale.metrics()" : "");
	mon_send(m, JOB_FETCH, sql);
}

/* A report failed: say why once, and stop asking if it will never work. */
static void
report_error(Monitor *m, PGresult *res)
{
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorMessage(res);

	code = code ? code : "";
	if (strcmp(code, "3F000") == 0 || strcmp(code, "42883") == 0)
	{
		log_info("database %s has no apiscale extension: pool use is not "
				 "reported there until a RELOAD",
				 m->name);
		m->report_off = true;
	}
	else if (strcmp(code, "42501") == 0)
	{
		log_warning("database %s: the pooler's role may not call "
					"apiscale.report_pool(); GRANT EXECUTE ON FUNCTION "
					"apiscale.report_pool(text, int, int, int, int, bigint) "
					"to it (not reported until a RELOAD)",
					m->name);
		m->report_off = true;
	}
	else
		log_warning("database %s: reporting pool use failed: %s", m->name,
					msg);
}

static char *
value_or_null(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* One result of a fetch: which one is known from the step. */
static void
fetch_result(Monitor *m, PGresult *res, int step)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		bool		metrics_step =
			m->with_metrics && step == (m->with_advice ? 3 : 2);

		code = code ? code : "";
		if (metrics_step && strcmp(code, "42883") == 0)
		{
			log_info("database %s: apiscale.metrics() is missing (extension "
					 "version 1.0?): ALTER EXTENSION apiscale UPDATE adds it",
					 m->name);
			m->no_metrics_fn = true;
		}
		else if (strcmp(code, "3F000") == 0 || strcmp(code, "42P01") == 0 ||
				 strcmp(code, "42883") == 0)
			set_str(&m->error, "extension apiscale is not installed in this "
							   "database");
		else
		{
			char msg[512];

			pgconn_one_line(msg, sizeof(msg), PQresultErrorMessage(res));
			set_str(&m->error, msg);
		}
		return;
	}
	if (step == 0)
	{
		clear_signals(m);
		for (int i = 0; i < PQntuples(res) && i < MAX_SIGNALS; i++)
		{
			SignalRow *s = &m->signals[m->nsignals++];
			char	  *v = value_or_null(res, i, 1);
			char	  *t = value_or_null(res, i, 2);

			s->name = xstrdup(PQgetvalue(res, i, 0));
			s->value = v ? strtod(v, NULL) : NAN;
			s->threshold = t ? strtod(t, NULL) : NAN;
			s->status = xstrdup(PQgetvalue(res, i, 3));
			s->action = xstrdup(PQgetvalue(res, i, 4));
		}
		set_str(&m->error, NULL);
		m->fetched_at = (double) time(NULL);
	}
	else if (PQntuples(res) == 1)
	{
		char **field;

		if (step == 1)
			field = &m->top_json;
		else if (step == 2 && m->with_advice)
			field = &m->advice_json;
		else
			field = &m->metrics_text;
		set_str(field, value_or_null(res, 0, 0));
	}
}

static void
mon_connected(void *arg)
{
	Monitor *m = (Monitor *) arg;

	if (m->down_logged)
		log_info("monitor connection to %s is back", m->name);
	m->down_logged = false;
}

static void
mon_result(void *arg, PGresult *res, int step)
{
	Monitor *m = (Monitor *) arg;

	if (m->job == JOB_REPORT)
	{
		if (PQresultStatus(res) == PGRES_FATAL_ERROR)
			report_error(m, res);
	}
	else
		fetch_result(m, res, step);
}

static void
mon_done(void *arg)
{
}

/* The connection failed or broke: try again RETRY_INTERVAL later. */
static void
mon_failed(void *arg, const char *error)
{
	Monitor *m = (Monitor *) arg;

	if (!m->down_logged)
		log_warning("monitor connection to %s: %s (retrying every %d s)",
					m->name, error, RETRY_INTERVAL);
	m->down_logged = true;
	set_str(&m->error, error);
	m->retry_after = mono_now() + RETRY_INTERVAL;
}

static const PgConnCallbacks mon_callbacks = {
	.connected = mon_connected,
	.result = mon_result,
	.done = mon_done,
	.failed = mon_failed,
};

/* Has name work for a monitor now? */
static bool
mon_needed(const char *name)
{
	Pool *p;

	if (cf.http_listen[0] != '\0' &&
		config_list_has(cf.http_metrics_databases, name))
		return true;
	if (cf.report_interval <= 0)
		return false;
	TAILQ_FOREACH(p, &pools, link)
	{
		if (strcmp(p->dbname, name) == 0)
			return true;
	}
	return false;
}

/* What is due: monitors made and dropped, connections, reports, fetches. */
static void
monitor_tick(evutil_socket_t fd, short what, void *arg)
{
	double	 now = mono_now();
	Monitor *m;
	Monitor *next;

	if (shutting_down)
		return;
	TAILQ_FOREACH(m, &monitors, link)
	m->needed = false;
	for (DbConfig *db = cf.databases; db; db = db->next)
	{
		if (!mon_needed(db->name))
			continue;
		m = mon_find(db->name);
		if (m == NULL)
		{
			m = calloc(1, sizeof(Monitor));
			if (m == NULL)
				fatal("out of memory");
			pgconn_init(&m->pc, &mon_callbacks, m);
			m->name = xstrdup(db->name);
			m->next_report = now + cf.report_interval;
			TAILQ_INSERT_TAIL(&monitors, m, link);
		}
		m->needed = true;
	}
	for (m = TAILQ_FIRST(&monitors); m; m = next)
	{
		bool fetching;

		next = TAILQ_NEXT(m, link);
		if (!m->needed)
		{
			mon_free(m);
			continue;
		}
		fetching = cf.http_listen[0] != '\0' &&
				   config_list_has(cf.http_metrics_databases, m->name);
		if (!fetching && (m->report_off || cf.report_interval <= 0))
		{
			/* nothing left to ask there until a RELOAD: no connection */
			if (m->pc.state == PGC_IDLE)
				mon_disconnect(m);
			if (m->pc.state == PGC_DOWN)
				continue;
		}
		pgconn_check_time(&m->pc, cf.server_connect_timeout, QUERY_TIMEOUT);
		switch (m->pc.state)
		{
			case PGC_DOWN:
				if (now >= m->retry_after)
					mon_connect(m);
				break;
			case PGC_CONNECTING:
			case PGC_BUSY:
				break;
			case PGC_IDLE:
				if (cf.report_interval > 0 && !m->report_off &&
					now >= m->next_report)
				{
					m->next_report = now + cf.report_interval;
					start_report(m);
				}
				else if (fetching && now >= m->next_fetch)
				{
					bool advice = now >= m->next_advice;

					m->next_fetch = now + FETCH_INTERVAL;
					if (advice)
						m->next_advice = now + ADVICE_INTERVAL;
					start_fetch(m, advice);
				}
				break;
		}
	}
}

/* Start the tick (at start-up, once the event loop exists). */
void
monitor_start(void)
{
	struct timeval every = {1, 0};

	if (tick_ev)
		return;
	tick_ev = event_new(ev_base, -1, EV_PERSIST, monitor_tick, NULL);
	event_add(tick_ev, &every);
}

void
monitor_stop(void)
{
	while (!TAILQ_EMPTY(&monitors))
		mon_free(TAILQ_FIRST(&monitors));
	if (tick_ev)
		event_free(tick_ev);
	tick_ev = NULL;
}

/*
 * After a RELOAD: reconnect (the entry may point elsewhere now), and ask
 * again what was found missing.
 */
void
monitor_reload(void)
{
	Monitor *m;

	TAILQ_FOREACH(m, &monitors, link)
	{
		mon_disconnect(m);
		m->report_off = false;
		m->no_metrics_fn = false;
		m->retry_after = 0;
		m->next_fetch = 0;
		m->next_advice = 0;
	}
}

/* ---- what the HTTP endpoint serves ---- */

/*
 * One line of the extension's metrics text with database="name" added to
 * its labels.  Comment lines pass unchanged.
 */
static void
add_labelled_line(struct evbuffer *out, const char *line, size_t len,
				  const char *name)
{
	const char *brace = memchr(line, '{', len);
	const char *space = memchr(line, ' ', len);

	if (len == 0 || line[0] == '#' || space == NULL)
		return;
	if (brace && brace < space)
	{
		evbuffer_add(out, line, (size_t) (brace + 1 - line));
		evbuffer_add(out, "database=\"", 10);
		prom_label_value(out, name);
		evbuffer_add(out, brace[1] == '}' ? "\"" : "\",",
					 brace[1] == '}' ? 1 : 2);
		evbuffer_add(out, brace + 1, len - (size_t) (brace + 1 - line));
	}
	else
	{
		evbuffer_add(out, line, (size_t) (space - line));
		evbuffer_add(out, "{database=\"", 11);
		prom_label_value(out, name);
		evbuffer_add(out, "\"}", 2);
		evbuffer_add(out, space, len - (size_t) (space - line));
	}
	evbuffer_add(out, "\n", 1);
}

/* A family of the extension's metrics text: its lines, by kind. */
typedef struct Family
{
	const char *name;
	size_t		namelen;
	const char *help; /* the "# HELP" line, or NULL */
	const char *type; /* the "# TYPE" line */
	const char *body; /* its samples ... */
	const char *end;  /* ... up to here */
} Family;

/* Does the line at p start with "# word name " for this name? */
static bool
comment_for(const char *p, const char *word, const char *name, size_t nlen)
{
	return strncmp(p, word, 7) == 0 && strncmp(p + 7, name, nlen) == 0 &&
		   p[7 + nlen] == ' ';
}

/*
 * The family after *pos in text (the extension writes HELP, TYPE, then the
 * samples); *pos moves past it.  False at the end.
 */
static bool
next_family(const char **pos, Family *f)
{
	const char *t = strstr(*pos, "# TYPE ");

	while (t && t != *pos && t[-1] != '\n')
		t = strstr(t + 1, "# TYPE ");
	if (t == NULL)
		return false;
	f->type = t;
	f->name = t + 7;
	f->namelen = strcspn(f->name, " \n");
	f->help = NULL;
	if (t - *pos >= 8)
	{
		const char *h = t - 1;

		while (h > *pos && h[-1] != '\n')
			h--;
		if (comment_for(h, "# HELP ", f->name, f->namelen))
			f->help = h;
	}
	f->body = strchr(t, '\n');
	f->body = f->body ? f->body + 1 : t + strlen(t);
	f->end = f->body;
	while (*f->end && f->end[0] != '#')
		f->end += strcspn(f->end, "\n") + (f->end[strcspn(f->end, "\n")] != 0);
	*pos = f->end;
	return true;
}

/* The family called name in text, if it has one. */
static bool
find_family(const char *text, const char *name, size_t nlen, Family *f)
{
	const char *pos = text;

	while (next_family(&pos, f))
	{
		if (f->namelen == nlen && strncmp(f->name, name, nlen) == 0)
			return true;
	}
	return false;
}

/* The monitor's metrics text, if it is recent enough to serve. */
static const char *
fresh_metrics(const Monitor *m, double now)
{
	return m->metrics_text && now - m->fetched_at <= 4 * FETCH_INTERVAL
			   ? m->metrics_text
			   : NULL;
}

/*
 * The extension's metrics of every fetched database, with a database label,
 * each family once: its HELP and TYPE from the first database that has
 * it, then its samples from all of them (Prometheus wants a family's
 * samples together).
 */
void
monitor_append_metrics(struct evbuffer *out)
{
	double	 now = (double) time(NULL);
	Monitor *m;

	TAILQ_FOREACH(m, &monitors, link)
	{
		const char *text = fresh_metrics(m, now);
		const char *pos = text;
		Family		f;

		while (text && next_family(&pos, &f))
		{
			Monitor *o;
			bool	 written = false;
			Family	 g;

			for (o = TAILQ_FIRST(&monitors); o != m && !written;
				 o = TAILQ_NEXT(o, link))
				written =
					fresh_metrics(o, now) &&
					find_family(fresh_metrics(o, now), f.name, f.namelen, &g);
			if (written)
				continue;
			if (f.help)
				evbuffer_add(out, f.help, strcspn(f.help, "\n") + 1);
			evbuffer_add(out, f.type, strcspn(f.type, "\n"));
			evbuffer_add(out, "\n", 1);
			for (o = m; o; o = TAILQ_NEXT(o, link))
			{
				if (!fresh_metrics(o, now) ||
					!find_family(fresh_metrics(o, now), f.name, f.namelen, &g))
					continue;
				for (const char *l = g.body; l < g.end;)
				{
					size_t ll = strcspn(l, "\n");

					add_labelled_line(out, l, ll, o->name);
					l += ll + (l[ll] == '\n');
				}
			}
		}
	}
}

/* The "databases" array of /api/status. */
void
monitor_status_json(struct evbuffer *out)
{
	Monitor *m;
	bool	 first = true;

	evbuffer_add(out, "[", 1);
	TAILQ_FOREACH(m, &monitors, link)
	{
		if (!config_list_has(cf.http_metrics_databases, m->name))
			continue;
		evbuffer_add(out, first ? "{\"database\":" : ",{\"database\":",
					 first ? 12 : 13);
		first = false;
		json_string(out, m->name);
		evbuffer_add(out, ",\"fetched_at\":", 14);
		json_number(out, m->fetched_at, m->fetched_at > 0);
		evbuffer_add(out, ",\"error\":", 9);
		if (m->error)
			json_string(out, m->error);
		else if (m->fetched_at == 0)
			json_string(out, "no data fetched yet");
		else
			evbuffer_add(out, "null", 4);
		evbuffer_add(out, ",\"signals\":[", 12);
		for (int i = 0; i < m->nsignals; i++)
		{
			SignalRow *s = &m->signals[i];

			evbuffer_add(out,
						 i ? ",{\"signal\":" : "{\"signal\":", i ? 11 : 10);
			json_string(out, s->name);
			evbuffer_add(out, ",\"value\":", 9);
			json_number(out, s->value, !isnan(s->value));
			evbuffer_add(out, ",\"threshold\":", 13);
			json_number(out, s->threshold, !isnan(s->threshold));
			evbuffer_add(out, ",\"status\":", 10);
			json_string(out, s->status);
			evbuffer_add(out, ",\"action\":", 10);
			json_string(out, s->action);
			evbuffer_add(out, "}", 1);
		}
		/* PostgreSQL built these two with json_agg: valid JSON already */
		evbuffer_add_printf(out,
							"],\"top_statements\":%s,\"index_advice\":%s}",
							m->top_json ? m->top_json : "[]",
							m->advice_json ? m->advice_json : "[]");
	}
	evbuffer_add(out, "]", 1);
}

/* History sample seq: each fetched database's signal values now. */
void
monitor_history_sample(uint64_t seq)
{
	Monitor *m;
	double	 now = (double) time(NULL);

	TAILQ_FOREACH(m, &monitors, link)
	{
		bool fresh =
			m->fetched_at > 0 && now - m->fetched_at <= 3 * FETCH_INTERVAL;

		if (!config_list_has(cf.http_metrics_databases, m->name))
			continue;
		if (m->hist == NULL)
		{
			m->hist = malloc(sizeof(float) * N_HIST_SIGNALS * HISTORY_LEN);
			if (m->hist == NULL)
				fatal("out of memory");
			m->hist_first = seq;
		}
		for (size_t k = 0; k < N_HIST_SIGNALS; k++)
		{
			float v = NAN;

			for (int i = 0; fresh && i < m->nsignals; i++)
			{
				if (strcmp(m->signals[i].name, hist_signals[k]) == 0)
					v = (float) m->signals[i].value;
			}
			m->hist[k * HISTORY_LEN + seq % HISTORY_LEN] = v;
		}
	}
}

/*
 * The "signals" object of the history: per fetched database, per signal,
 * the values of samples first .. end - 1 (null before the database was
 * watched, or with no data).
 */
void
monitor_history_json(struct evbuffer *out, uint64_t first, uint64_t end)
{
	Monitor *m;
	bool	 firstdb = true;

	evbuffer_add(out, "{", 1);
	TAILQ_FOREACH(m, &monitors, link)
	{
		if (m->hist == NULL)
			continue;
		if (!firstdb)
			evbuffer_add(out, ",", 1);
		firstdb = false;
		json_string(out, m->name);
		evbuffer_add(out, ":{", 2);
		for (size_t k = 0; k < N_HIST_SIGNALS; k++)
		{
			evbuffer_add_printf(out, "%s\"%s\":[", k ? "," : "",
								hist_signals[k]);
			for (uint64_t s = first; s < end; s++)
			{
				float v = s >= m->hist_first
							  ? m->hist[k * HISTORY_LEN + s % HISTORY_LEN]
							  : NAN;

				if (s > first)
					evbuffer_add(out, ",", 1);
				json_number(out, v, !isnan(v));
			}
			evbuffer_add(out, "]", 1);
		}
		evbuffer_add(out, "}", 1);
	}
	evbuffer_add(out, "}", 1);
}
