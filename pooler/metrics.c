/*
 * metrics.c
 *		What the pooler knows, as Prometheus text and as the dashboard's
 *		JSON, with the last hour's history.
 *
 * Everything here reads what the pooler already holds (pools, clients,
 * the monitor's last fetch) and writes text: no I/O but /proc, never a
 * wait.  Families are labelled by database and user only, never by client
 * or statement (the extension's own top statements come through the
 * monitor).  Names and units follow Prometheus' conventions: base units
 * (seconds, bytes, ratios), counters end in _total.
 *
 * The history is a ring of HISTORY_LEN samples, one every
 * HISTORY_INTERVAL seconds while http_listen is set: per pool the most
 * servers in use (as a utilization) and clients waiting since the last
 * sample, per monitored database the signals' values.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "client.h"
#include "hosts.h"
#include "log.h"
#include "process.h"
#include "metrics.h"
#include "monitor.h"
#include "pool.h"
#include "textout.h"

/* A pool's share of the history: per mille of capacity, clients waiting. */
typedef struct PoolHistory
{
	uint64_t first; /* the first sample it has */
	uint16_t util[HISTORY_LEN];
	uint16_t waiting[HISTORY_LEN];
} PoolHistory;

static uint64_t		 history_seq = 0; /* samples taken */
static double		 history_time[HISTORY_LEN];
static struct event *history_ev = NULL;

/* ---- Prometheus text ---- */

static void
family(struct evbuffer *out, const char *name, const char *type,
	   const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
						type);
}

/* name{database="..",user=".."[,extra]} */
static void
pool_series(struct evbuffer *out, const char *name, const Pool *p,
			const char *extra)
{
	evbuffer_add_printf(out, "%s{database=\"", name);
	prom_label_value(out, p->dbname);
	evbuffer_add(out, "\",user=\"", 8);
	prom_label_value(out, p->user);
	evbuffer_add_printf(out, "\"%s%s} ", extra ? "," : "", extra ? extra : "");
}

/* Clients of p by state: with a server, queued, neither. */
static void
client_counts(const Pool *p, int *active, int *waiting, int *idle)
{
	const Server *s;
	const Client *c;
	int			  login_wait = 0;

	*active = 0;
	TAILQ_FOREACH(s, &p->active, link)
	{
		if (s->client)
			(*active)++;
	}
	TAILQ_FOREACH(c, &p->login_wait, link)
	login_wait++;
	*waiting = p->n_waiting + login_wait;
	*idle = p->n_clients - *active - *waiting;
	if (*idle < 0)
		*idle = 0;
}

typedef enum PoolCounter
{
	PC_XACT,
	PC_QUERY,
	PC_TIMEOUTS,
	PC_RECYCLED,
	PC_LOGIN_FAILURES,
	PC_BYTES_IN,
	PC_BYTES_OUT
} PoolCounter;

static uint64_t
pool_counter(const Pool *p, PoolCounter which)
{
	switch (which)
	{
		case PC_XACT:
			return p->xact_count;
		case PC_QUERY:
			return p->query_count;
		case PC_TIMEOUTS:
			return p->timeouts;
		case PC_RECYCLED:
			return p->recycled;
		case PC_LOGIN_FAILURES:
			return p->login_failures;
		case PC_BYTES_IN:
			return p->bytes_in;
		case PC_BYTES_OUT:
			return p->bytes_out;
	}
	return 0;
}

static void
counter_family(struct evbuffer *out, const char *name, const char *help,
			   PoolCounter which)
{
	Pool *p;

	family(out, name, "counter", help);
	TAILQ_FOREACH(p, &pools, link)
	{
		pool_series(out, name, p, NULL);
		evbuffer_add_printf(out, "%llu\n",
							(unsigned long long) pool_counter(p, which));
	}
}

static void
histogram_family(struct evbuffer *out, const char *name, const char *help,
				 size_t offset)
{
	Pool *p;
	char  series[128];

	family(out, name, "histogram", help);
	TAILQ_FOREACH(p, &pools, link)
	{
		const Histogram *h = (const Histogram *) ((const char *) p + offset);
		uint64_t		 cum = 0;

		snprintf(series, sizeof(series), "%s_bucket", name);
		for (int i = 0; i <= HIST_EDGES; i++)
		{
			char le[40];

			cum += h->count[i];
			if (i < HIST_EDGES)
				snprintf(le, sizeof(le), "le=\"%g\"", hist_edges[i]);
			else
				snprintf(le, sizeof(le), "le=\"+Inf\"");
			pool_series(out, series, p, le);
			evbuffer_add_printf(out, "%llu\n", (unsigned long long) cum);
		}
		snprintf(series, sizeof(series), "%s_sum", name);
		pool_series(out, series, p, NULL);
		evbuffer_add_printf(out, "%.9g\n", h->sum);
		snprintf(series, sizeof(series), "%s_count", name);
		pool_series(out, series, p, NULL);
		evbuffer_add_printf(out, "%llu\n", (unsigned long long) cum);
	}
}

/* The standard process_* families, from /proc and getrusage. */
static void
process_families(struct evbuffer *out)
{
	struct rusage ru;
	struct rlimit rl;
	DIR			 *d;
	long		  fds = 0;
	long		  pages = 0;
	FILE		 *f;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
	{
		family(out, "process_cpu_seconds_total", "counter",
			   "Total user and system CPU time spent in seconds.");
		evbuffer_add_printf(
			out, "process_cpu_seconds_total %.6f\n",
			(double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
				(double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	if ((d = opendir("/proc/self/fd")) != NULL)
	{
		struct dirent *e;

		while ((e = readdir(d)) != NULL)
		{
			if (e->d_name[0] != '.')
				fds++;
		}
		closedir(d);
		family(out, "process_open_fds", "gauge",
			   "Number of open file descriptors.");
		evbuffer_add_printf(out, "process_open_fds %ld\n", fds - 1);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
	{
		family(out, "process_max_fds", "gauge",
			   "Maximum number of open file descriptors.");
		evbuffer_add_printf(out, "process_max_fds %llu\n",
							(unsigned long long) rl.rlim_cur);
	}
	if ((f = fopen("/proc/self/statm", "r")) != NULL)
	{
		long size = 0;

		if (fscanf(f, "%ld %ld", &size, &pages) == 2)
		{
			long page = sysconf(_SC_PAGESIZE);

			family(out, "process_resident_memory_bytes", "gauge",
				   "Resident memory size in bytes.");
			evbuffer_add_printf(out, "process_resident_memory_bytes %lld\n",
								(long long) pages * page);
			family(out, "process_virtual_memory_bytes", "gauge",
				   "Virtual memory size in bytes.");
			evbuffer_add_printf(out, "process_virtual_memory_bytes %lld\n",
								(long long) size * page);
		}
		fclose(f);
	}
	family(out, "process_start_time_seconds", "gauge",
		   "Start time of the process since unix epoch in seconds.");
	evbuffer_add_printf(out, "process_start_time_seconds %.3f\n",
						pooler_started);
}

/* name{host="h"} */
static void
host_series(struct evbuffer *out, const char *name, const Host *h)
{
	evbuffer_add_printf(out, "%s{host=\"", name);
	prom_label_value(out, h->name);
	evbuffer_add(out, "\"} ", 3);
}

/* Per host: health, role, lag; per pool and host: servers. */
static void
host_families(struct evbuffer *out)
{
	Host *h;
	Pool *p;

	family(out, "apiscale_pooler_host_up", "gauge",
		   "1 while the host is up and not banned, as its health checks say.");
	TAILQ_FOREACH(h, &hosts, link)
	{
		host_series(out, "apiscale_pooler_host_up", h);
		evbuffer_add_printf(out, "%d\n", host_usable(h) ? 1 : 0);
	}
	family(out, "apiscale_pooler_host_primary", "gauge",
		   "1 for a primary, 0 for a standby (none before the first check).");
	TAILQ_FOREACH(h, &hosts, link)
	{
		if (h->role == HOST_ROLE_UNKNOWN)
			continue;
		host_series(out, "apiscale_pooler_host_primary", h);
		evbuffer_add_printf(out, "%d\n", h->role == HOST_ROLE_PRIMARY);
	}
	family(out, "apiscale_pooler_host_replica_lag_seconds", "gauge",
		   "A standby's replay lag: 0 once replay has caught up with what it "
		   "received.");
	TAILQ_FOREACH(h, &hosts, link)
	{
		if (h->role != HOST_ROLE_STANDBY)
			continue;
		host_series(out, "apiscale_pooler_host_replica_lag_seconds", h);
		evbuffer_add_printf(out, "%.3f\n", h->lag);
	}
	family(out, "apiscale_pooler_host_servers", "gauge",
		   "A pool's servers on one host, by state: active, idle, login.");
	TAILQ_FOREACH(p, &pools, link)
	{
		for (int i = 0; i < p->nhosts; i++)
		{
			PoolHost   *ph = &p->hosts[i];
			const char *st[3] = {"active", "idle", "login"};
			int			n[3] = {ph->n_active, ph->n_idle, ph->n_login};

			for (int k = 0; k < 3; k++)
			{
				evbuffer_add(out, "apiscale_pooler_host_servers{database=\"",
							 39);
				prom_label_value(out, p->dbname);
				evbuffer_add(out, "\",user=\"", 8);
				prom_label_value(out, p->user);
				evbuffer_add(out, "\",host=\"", 8);
				prom_label_value(out, ph->host->name);
				evbuffer_add_printf(out, "\",state=\"%s\"} %d\n", st[k], n[k]);
			}
		}
	}
}

/* GET /metrics: Prometheus text format 0.0.4. */
void
metrics_render(struct evbuffer *out)
{
	Pool *p;

	family(out, "apiscale_pooler_info", "gauge",
		   "apiscale-pooler's version, as a label; always 1.");
	evbuffer_add(
		out, "apiscale_pooler_info{version=\"" APS_VERSION "\"} 1\n",
		sizeof("apiscale_pooler_info{version=\"" APS_VERSION "\"} 1\n") - 1);
	family(out, "apiscale_pooler_accepting", "gauge",
		   "1 while the pooler accepts clients, 0 once a shutdown drains "
		   "them.");
	evbuffer_add_printf(out, "apiscale_pooler_accepting %d\n",
						shutting_down ? 0 : 1);
	family(out, "apiscale_pooler_client_connections", "gauge",
		   "Client connections open, logged in or not.");
	evbuffer_add_printf(out, "apiscale_pooler_client_connections %d\n",
						n_clients);
	family(out, "apiscale_pooler_max_client_connections", "gauge",
		   "max_client_conn: client connections the pooler accepts.");
	evbuffer_add_printf(out, "apiscale_pooler_max_client_connections %d\n",
						cf.max_client_conn);

	family(out, "apiscale_pooler_clients", "gauge",
		   "Logged-in clients by state: active (has a server), waiting (for "
		   "one), idle.");
	TAILQ_FOREACH(p, &pools, link)
	{
		int active;
		int waiting;
		int idle;

		client_counts(p, &active, &waiting, &idle);
		pool_series(out, "apiscale_pooler_clients", p, "state=\"active\"");
		evbuffer_add_printf(out, "%d\n", active);
		pool_series(out, "apiscale_pooler_clients", p, "state=\"waiting\"");
		evbuffer_add_printf(out, "%d\n", waiting);
		pool_series(out, "apiscale_pooler_clients", p, "state=\"idle\"");
		evbuffer_add_printf(out, "%d\n", idle);
	}
	family(out, "apiscale_pooler_servers", "gauge",
		   "Server connections by state: active (attached or being reset), "
		   "idle, login.");
	TAILQ_FOREACH(p, &pools, link)
	{
		pool_series(out, "apiscale_pooler_servers", p, "state=\"active\"");
		evbuffer_add_printf(out, "%d\n", p->n_active);
		pool_series(out, "apiscale_pooler_servers", p, "state=\"idle\"");
		evbuffer_add_printf(out, "%d\n", p->n_idle);
		pool_series(out, "apiscale_pooler_servers", p, "state=\"login\"");
		evbuffer_add_printf(out, "%d\n", p->n_login);
	}
	family(out, "apiscale_pooler_pool_size", "gauge",
		   "QueuePool pool_size: servers kept open.");
	TAILQ_FOREACH(p, &pools, link)
	{
		pool_series(out, "apiscale_pooler_pool_size", p, NULL);
		evbuffer_add_printf(out, "%d\n", p->set.pool_size);
	}
	family(out, "apiscale_pooler_max_overflow", "gauge",
		   "QueuePool max_overflow: servers allowed beyond pool_size; -1 "
		   "means no limit.");
	TAILQ_FOREACH(p, &pools, link)
	{
		pool_series(out, "apiscale_pooler_max_overflow", p, NULL);
		evbuffer_add_printf(out, "%d\n", p->set.max_overflow);
	}
	family(out, "apiscale_pooler_pool_utilization_ratio", "gauge",
		   "Servers in use over pool_size + max_overflow (over pool_size "
		   "with no overflow limit), as SHOW POOLS and report_pool() use "
		   "it.");
	TAILQ_FOREACH(p, &pools, link)
	{
		pool_series(out, "apiscale_pooler_pool_utilization_ratio", p, NULL);
		evbuffer_add_printf(out, "%.6g\n", pool_utilization(p));
	}
	counter_family(out, "apiscale_pooler_transactions_total",
				   "Transactions (server attached then released) finished.",
				   PC_XACT);
	counter_family(out, "apiscale_pooler_queries_total",
				   "Simple-protocol queries relayed.", PC_QUERY);
	counter_family(out, "apiscale_pooler_pool_timeouts_total",
				   "Clients that waited pool_timeout in vain (ERROR 53300).",
				   PC_TIMEOUTS);
	counter_family(out, "apiscale_pooler_servers_recycled_total",
				   "Servers closed for being older than pool_recycle.",
				   PC_RECYCLED);
	counter_family(out, "apiscale_pooler_server_login_failures_total",
				   "Failed logins into the server.", PC_LOGIN_FAILURES);
	counter_family(out, "apiscale_pooler_received_bytes_total",
				   "Bytes received from clients and passed to servers.",
				   PC_BYTES_IN);
	counter_family(out, "apiscale_pooler_sent_bytes_total",
				   "Bytes received from servers and passed to clients.",
				   PC_BYTES_OUT);
	family(out, "apiscale_pooler_client_errors_total", "counter",
		   "Errors sent to clients (the server's and the pooler's own), by "
		   "SQLSTATE class.");
	TAILQ_FOREACH(p, &pools, link)
	{
		for (int i = 0; i < ERROR_CLASSES; i++)
		{
			char label[64];

			if (p->errors.n[i] == 0)
				continue;
			snprintf(label, sizeof(label), "sqlstate_class=\"%s\"",
					 i == ERROR_CLASSES - 1 ? "other" : p->errors.cls[i]);
			pool_series(out, "apiscale_pooler_client_errors_total", p, label);
			evbuffer_add_printf(out, "%llu\n",
								(unsigned long long) p->errors.n[i]);
		}
	}
	host_families(out);
	histogram_family(out, "apiscale_pooler_client_wait_seconds",
					 "Time from a client needing a server to getting one.",
					 offsetof(Pool, wait_hist));
	histogram_family(out, "apiscale_pooler_transaction_duration_seconds",
					 "Time a client held a server: attached to released.",
					 offsetof(Pool, xact_hist));
	process_families(out);
	monitor_append_metrics(out);
}

/* ---- the dashboard's JSON ---- */

static void
json_pool(struct evbuffer *out, const Pool *p)
{
	int active;
	int waiting;
	int idle;

	client_counts(p, &active, &waiting, &idle);
	evbuffer_add(out, "{\"database\":", 12);
	json_string(out, p->dbname);
	evbuffer_add(out, ",\"user\":", 8);
	json_string(out, p->user);
	evbuffer_add_printf(
		out,
		",\"pool_mode\":\"%s\",\"pool_size\":%d,\"max_overflow\":%d,"
		"\"clients\":{\"active\":%d,\"waiting\":%d,\"idle\":%d},"
		"\"servers\":{\"active\":%d,\"idle\":%d,\"login\":%d},"
		"\"utilization\":%.4f,\"transactions\":%llu,\"queries\":%llu,"
		"\"timeouts\":%llu,\"recycled\":%llu,\"login_failures\":%llu}",
		pool_mode_to_str(p->set.pool_mode), p->set.pool_size,
		p->set.max_overflow, active, waiting, idle, p->n_active, p->n_idle,
		p->n_login, pool_utilization(p), (unsigned long long) p->xact_count,
		(unsigned long long) p->query_count, (unsigned long long) p->timeouts,
		(unsigned long long) p->recycled,
		(unsigned long long) p->login_failures);
}

/*
 * Samples from .. end - 1 of a pool's ring, each divided by scale, as a
 * JSON array: null for samples taken before the pool had a history.
 */
static void
json_ring(struct evbuffer *out, const uint16_t *ring, double scale,
		  uint64_t since, uint64_t from, uint64_t end)
{
	evbuffer_add(out, "[", 1);
	for (uint64_t s = from; s < end; s++)
	{
		if (s > from)
			evbuffer_add(out, ",", 1);
		if (s < since)
			evbuffer_add(out, "null", 4);
		else
			evbuffer_add_printf(out, "%.6g", ring[s % HISTORY_LEN] / scale);
	}
	evbuffer_add(out, "]", 1);
}

static void
json_history(struct evbuffer *out)
{
	uint64_t first = history_seq > HISTORY_LEN ? history_seq - HISTORY_LEN : 0;
	Pool	*p;
	bool	 any = false;

	evbuffer_add_printf(out, "{\"interval\":%d,\"time\":[", HISTORY_INTERVAL);
	for (uint64_t s = first; s < history_seq; s++)
		evbuffer_add_printf(out, "%s%.0f", s > first ? "," : "",
							history_time[s % HISTORY_LEN]);
	evbuffer_add(out, "],\"pools\":{", 11);
	TAILQ_FOREACH(p, &pools, link)
	{
		const PoolHistory *h = p->history;
		char			   key[600];

		if (h == NULL)
			continue;
		snprintf(key, sizeof(key), "%s/%s", p->dbname, p->user);
		if (any)
			evbuffer_add(out, ",", 1);
		any = true;
		json_string(out, key);
		evbuffer_add(out, ":{\"utilization\":", 16);
		json_ring(out, h->util, 1000.0, h->first, first, history_seq);
		evbuffer_add(out, ",\"waiting\":", 11);
		json_ring(out, h->waiting, 1.0, h->first, first, history_seq);
		evbuffer_add(out, "}", 1);
	}
	evbuffer_add(out, "},\"signals\":", 12);
	monitor_history_json(out, first, history_seq);
	evbuffer_add(out, "}", 1);
}

/* GET /api/status: the dashboard's data (docs/monitoring.md). */
void
metrics_status_json(struct evbuffer *out)
{
	struct timespec ts;
	Pool		   *p;
	bool			first = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	evbuffer_add_printf(
		out,
		"{\"version\":\"" APS_VERSION "\",\"now\":%.3f,\"started\":%.3f,"
		"\"accepting\":%s,\"clients\":{\"connected\":%d,\"max\":%d},"
		"\"pools\":[",
		(double) ts.tv_sec + ts.tv_nsec / 1e9, pooler_started,
		shutting_down ? "false" : "true", n_clients, cf.max_client_conn);
	TAILQ_FOREACH(p, &pools, link)
	{
		if (!first)
			evbuffer_add(out, ",", 1);
		first = false;
		json_pool(out, p);
	}
	evbuffer_add(out, "],\"history\":", 12);
	json_history(out);
	evbuffer_add(out, ",\"databases\":", 13);
	monitor_status_json(out);
	evbuffer_add(out, "}\n", 2);
}

/* ---- history ---- */

static void
history_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t seq = history_seq;
	Pool	*p;

	history_time[seq % HISTORY_LEN] = (double) time(NULL);
	TAILQ_FOREACH(p, &pools, link)
	{
		int	   active;
		int	   waiting;
		double util;

		if (p->history == NULL)
		{
			p->history = calloc(1, sizeof(PoolHistory));
			if (p->history == NULL)
				fatal("out of memory");
			p->history->first = seq;
		}
		pool_take_peaks(p, PEAK_HISTORY, &active, &waiting);
		util = 1000.0 * pool_utilization_of(p, active);
		p->history->util[seq % HISTORY_LEN] =
			(uint16_t) (util > 65535 ? 65535 : util + 0.5);
		p->history->waiting[seq % HISTORY_LEN] =
			(uint16_t) (waiting > 65535 ? 65535 : waiting);
	}
	monitor_history_sample(seq);
	history_seq++;
}

/* Sample the history while the HTTP endpoint is on (first sample now). */
void
metrics_history_start(void)
{
	struct timeval every = {HISTORY_INTERVAL, 0};

	if (history_ev)
		return;
	history_ev = event_new(ev_base, -1, EV_PERSIST, history_cb, NULL);
	event_add(history_ev, &every);
	history_cb(-1, 0, NULL);
}

void
metrics_history_stop(void)
{
	if (history_ev)
		event_free(history_ev);
	history_ev = NULL;
}
