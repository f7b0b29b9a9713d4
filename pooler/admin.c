/*
 * admin.c
 *		The admin console: SHOW POOLS | STATS | STATS_TOTALS |
 *		STATS_AVERAGES | CLIENTS | SERVERS | DATABASES | LISTS | USERS |
 *		HOSTS | CONFIG | MEM | VERSION, RELOAD, PAUSE, RESUME, BAN, UNBAN,
 *		SHUTDOWN.
 *
 * Simple query protocol only.  The console answers as database "apiscale"
 * and as "pgbouncer", so that PgBouncer's exporters and checks work: every
 * SHOW that PgBouncer 1.18 has starts with PgBouncer's columns, in its
 * order and with its types, and adds apiscale's after them.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "admin.h"
#include "client.h"
#include "dbstats.h"
#include "log.h"
#include "process.h"
#include "hosts.h"
#include "pool.h"
#include "protocol.h"
#include "server.h"
#include "tls.h"

#define MAXCOLS 32

/* Type OIDs of the columns, as PostgreSQL (and PgBouncer) number them. */
#define T_BOOL	  16
#define T_INT8	  20
#define T_INT4	  23
#define T_TEXT	  25
#define T_FLOAT8  701
#define T_NUMERIC 1700

/* A column: its name and type. */
typedef struct Col
{
	const char *name;
	uint32_t	type;
} Col;

/* A result being built: column names and types, then rows of text. */
typedef struct Result
{
	Buf		   *out;
	int			ncols;
	int			nrows;
	char		cells[MAXCOLS][512];
	const char *vals[MAXCOLS];
	int			col;
} Result;

static void
res_begin(Result *r, Buf *out, int ncols, const Col *cols)
{
	const char *names[MAXCOLS];
	uint32_t	types[MAXCOLS];

	if (ncols > MAXCOLS)
		fatal("internal error: %d admin columns", ncols);
	for (int i = 0; i < ncols; i++)
	{
		names[i] = cols[i].name;
		types[i] = cols[i].type;
	}
	r->out = out;
	r->ncols = ncols;
	r->nrows = 0;
	r->col = 0;
	pkt_add_row_description_typed(out, ncols, names, types);
}

#define NCOLS(cols) ((int) (sizeof(cols) / sizeof(cols[0])))

static void
res_str(Result *r, const char *s)
{
	if (s == NULL)
		r->vals[r->col] = NULL;
	else
	{
		snprintf(r->cells[r->col], sizeof(r->cells[0]), "%s", s);
		r->vals[r->col] = r->cells[r->col];
	}
	r->col++;
}

static void res_fmt(Result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
res_fmt(Result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->cells[r->col], sizeof(r->cells[0]), fmt, ap);
	va_end(ap);
	r->vals[r->col] = r->cells[r->col];
	r->col++;
}

static void
res_int(Result *r, long long v)
{
	res_fmt(r, "%lld", v);
}

static void
res_u64(Result *r, uint64_t v)
{
	res_fmt(r, "%llu", (unsigned long long) v);
}

static void
res_bool(Result *r, bool v)
{
	res_str(r, v ? "t" : "f");
}

/* A wall-clock time as PgBouncer writes it (text), NULL for none. */
static void
res_time(Result *r, time_t t)
{
	struct tm tm;

	if (t == 0)
	{
		res_str(r, NULL);
		return;
	}
	localtime_r(&t, &tm);
	strftime(r->cells[r->col], sizeof(r->cells[0]), "%Y-%m-%d %H:%M:%S %Z",
			 &tm);
	r->vals[r->col] = r->cells[r->col];
	r->col++;
}

static void
res_row(Result *r)
{
	if (r->col != r->ncols)
		fatal("internal error: admin row of %d values for %d columns", r->col,
			  r->ncols);
	pkt_add_data_row(r->out, r->ncols, r->vals);
	r->nrows++;
	r->col = 0;
}

static void
res_end(Result *r)
{
	char tag[32];

	snprintf(tag, sizeof(tag), "SHOW %d", r->nrows);
	pkt_add_command_complete(r->out, tag);
}

/* The local end of socket fd: "unix" for a Unix socket, as PgBouncer. */
static void
local_end(int fd, char *addr, size_t addrlen, int *port)
{
	struct sockaddr_storage ss;
	socklen_t				len = sizeof(ss);

	addr[0] = '\0';
	*port = 0;
	if (fd < 0 || getsockname(fd, (struct sockaddr *) &ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET)
	{
		struct sockaddr_in *in = (struct sockaddr_in *) &ss;

		inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t) addrlen);
		*port = ntohs(in->sin_port);
	}
	else if (ss.ss_family == AF_INET6)
	{
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t) addrlen);
		*port = ntohs(in6->sin6_port);
	}
	else if (ss.ss_family == AF_UNIX)
	{
		snprintf(addr, addrlen, "unix");
		*port = cf.listen_port;
	}
}

/*
 * SHOW POOLS: PgBouncer 1.18's sixteen columns, then the QueuePool view.
 * Cancels are not counted per pool (they run in threads of their own):
 * the cancel columns are 0.
 */
static void
show_pools(Buf *out)
{
	static const Col cols[] = {
		{"database", T_TEXT},
		{"user", T_TEXT},
		{"cl_active", T_INT4},
		{"cl_waiting", T_INT4},
		{"cl_active_cancel_req", T_INT4},
		{"cl_waiting_cancel_req", T_INT4},
		{"sv_active", T_INT4},
		{"sv_active_cancel", T_INT4},
		{"sv_being_canceled", T_INT4},
		{"sv_idle", T_INT4},
		{"sv_used", T_INT4},
		{"sv_tested", T_INT4},
		{"sv_login", T_INT4},
		{"maxwait", T_INT4},
		{"maxwait_us", T_INT4},
		{"pool_mode", T_TEXT},
		/* apiscale's */
		{"pool_size", T_INT4},
		{"max_overflow", T_INT4},
		{"sv_overflow", T_INT4},
		{"utilization_pct", T_FLOAT8},
		{"timeouts", T_INT8},
		{"recycled", T_INT8},
	};
	Result r;
	Pool  *p;

	res_begin(&r, out, NCOLS(cols), cols);
	TAILQ_FOREACH(p, &pools, link)
	{
		Client *first = TAILQ_FIRST(&p->waiting);
		double	wait = first ? mono_now() - first->wait_start : 0;
		int		overflow = pool_total(p) - p->set.pool_size;

		res_str(&r, p->dbname);
		res_str(&r, p->user);
		res_int(&r, p->n_clients - p->n_waiting);
		res_int(&r, p->n_waiting);
		res_int(&r, 0);
		res_int(&r, 0);
		res_int(&r, p->n_active);
		res_int(&r, 0);
		res_int(&r, 0);
		res_int(&r, p->n_idle);
		res_int(&r, 0);
		res_int(&r, 0);
		res_int(&r, p->n_login);
		res_int(&r, (int) wait);
		res_int(&r, (int) ((wait - (int) wait) * 1e6));
		res_str(&r, pool_mode_to_str(p->set.pool_mode));
		res_int(&r, p->set.pool_size);
		res_int(&r, p->set.max_overflow);
		res_int(&r, overflow > 0 ? overflow : 0);
		res_fmt(&r, "%.1f", 100.0 * pool_utilization(p));
		res_u64(&r, p->timeouts);
		res_u64(&r, p->recycled);
		res_row(&r);
	}
	res_end(&r);
}

/*
 * SHOW STATS: one row per database, PgBouncer's totals and averages
 * (dbstats.c), then apiscale's counters.  Times are in microseconds.
 */
static void
show_stats(Buf *out)
{
	static const Col cols[] = {
		{"database", T_TEXT},
		{"total_xact_count", T_NUMERIC},
		{"total_query_count", T_NUMERIC},
		{"total_received", T_NUMERIC},
		{"total_sent", T_NUMERIC},
		{"total_xact_time", T_NUMERIC},
		{"total_query_time", T_NUMERIC},
		{"total_wait_time", T_NUMERIC},
		{"avg_xact_count", T_NUMERIC},
		{"avg_query_count", T_NUMERIC},
		{"avg_recv", T_NUMERIC},
		{"avg_sent", T_NUMERIC},
		{"avg_xact_time", T_NUMERIC},
		{"avg_query_time", T_NUMERIC},
		{"avg_wait_time", T_NUMERIC},
		/* apiscale's */
		{"total_wait_time_us", T_INT8},
		{"timeouts", T_INT8},
		{"recycled", T_INT8},
	};
	Result	 r;
	DbStats *rows;
	int		 n = dbstats_collect(&rows);

	res_begin(&r, out, NCOLS(cols), cols);
	for (int i = 0; i < n; i++)
	{
		const DbStats *d = &rows[i];

		res_str(&r, d->name);
		res_u64(&r, d->total.xact_count);
		res_u64(&r, d->total.query_count);
		res_u64(&r, d->total.bytes_in);
		res_u64(&r, d->total.bytes_out);
		res_fmt(&r, "%.0f", d->total.xact_time * 1e6);
		res_fmt(&r, "%.0f", d->total.xact_time * 1e6);
		res_fmt(&r, "%.0f", d->total.wait_time * 1e6);
		res_fmt(&r, "%.0f", d->avg_xact_count);
		res_fmt(&r, "%.0f", d->avg_query_count);
		res_fmt(&r, "%.0f", d->avg_recv);
		res_fmt(&r, "%.0f", d->avg_sent);
		res_fmt(&r, "%.0f", d->avg_xact_time);
		res_fmt(&r, "%.0f", d->avg_query_time);
		res_fmt(&r, "%.0f", d->avg_wait_time);
		res_fmt(&r, "%.0f", d->total.wait_time * 1e6);
		res_u64(&r, d->total.timeouts);
		res_u64(&r, d->total.recycled);
		res_row(&r);
	}
	dbstats_free(rows, n);
	res_end(&r);
}

/* SHOW STATS_TOTALS and STATS_AVERAGES: PgBouncer's columns only. */
static void
show_stats_part(Buf *out, bool averages)
{
	static const Col cols[] = {
		{"database", T_TEXT},		{"xact_count", T_NUMERIC},
		{"query_count", T_NUMERIC}, {"bytes_received", T_NUMERIC},
		{"bytes_sent", T_NUMERIC},	{"xact_time", T_NUMERIC},
		{"query_time", T_NUMERIC},	{"wait_time", T_NUMERIC},
	};
	Result	 r;
	DbStats *rows;
	int		 n = dbstats_collect(&rows);

	res_begin(&r, out, NCOLS(cols), cols);
	for (int i = 0; i < n; i++)
	{
		const DbStats *d = &rows[i];

		res_str(&r, d->name);
		if (averages)
		{
			res_fmt(&r, "%.0f", d->avg_xact_count);
			res_fmt(&r, "%.0f", d->avg_query_count);
			res_fmt(&r, "%.0f", d->avg_recv);
			res_fmt(&r, "%.0f", d->avg_sent);
			res_fmt(&r, "%.0f", d->avg_xact_time);
			res_fmt(&r, "%.0f", d->avg_query_time);
			res_fmt(&r, "%.0f", d->avg_wait_time);
		}
		else
		{
			res_u64(&r, d->total.xact_count);
			res_u64(&r, d->total.query_count);
			res_u64(&r, d->total.bytes_in);
			res_u64(&r, d->total.bytes_out);
			res_fmt(&r, "%.0f", d->total.xact_time * 1e6);
			res_fmt(&r, "%.0f", d->total.xact_time * 1e6);
			res_fmt(&r, "%.0f", d->total.wait_time * 1e6);
		}
		res_row(&r);
	}
	dbstats_free(rows, n);
	res_end(&r);
}

/* PgBouncer's eighteen columns of SHOW CLIENTS and SHOW SERVERS. */
#define CONN_COLS                                                             \
	{"type", T_TEXT}, {"user", T_TEXT}, {"database", T_TEXT},                 \
		{"state", T_TEXT}, {"addr", T_TEXT}, {"port", T_INT4},                \
		{"local_addr", T_TEXT}, {"local_port", T_INT4},                       \
		{"connect_time", T_TEXT}, {"request_time", T_TEXT}, {"wait", T_INT4}, \
		{"wait_us", T_INT4}, {"close_needed", T_INT4}, {"ptr", T_TEXT},       \
		{"link", T_TEXT}, {"remote_pid", T_INT4}, {"tls", T_TEXT},            \
		{"application_name", T_TEXT},

/*
 * SHOW CLIENTS: PgBouncer's columns (request_time is not kept: NULL; ptr
 * and link name the client and its server as SHOW SERVERS does), then the
 * client's id, its server's backend pid and whether it is an admin.
 */
static void
show_clients(Buf *out)
{
	static const Col cols[] = {
		CONN_COLS
		/* apiscale's */
		{"id", T_INT8},
		{"server_pid", T_INT4},
		{"admin", T_BOOL},
	};
	Result	r;
	Client *c;
	char	tls[128];
	char	laddr[64];
	int		lport;

	res_begin(&r, out, NCOLS(cols), cols);
	TAILQ_FOREACH(c, &all_clients, all)
	{
		double wait =
			c->state == CL_WAITING ? mono_now() - c->wait_start : 0.0;
		const char *app = settings_get(&c->want, "application_name");

		res_str(&r, "C");
		res_str(&r, c->user);
		res_str(&r, c->dbname);
		res_str(&r, client_state_to_str(c->state));
		res_str(&r, c->addr);
		res_int(&r, c->port);
		local_end(c->st.fd, laddr, sizeof(laddr), &lport);
		res_str(&r, laddr);
		res_int(&r, lport);
		res_time(&r, c->connect_time);
		res_str(&r, NULL);
		res_int(&r, (int) wait);
		res_int(&r, (int) ((wait - (int) wait) * 1e6));
		res_int(&r, 0);
		res_fmt(&r, "%p", (void *) c);
		if (c->server)
			res_fmt(&r, "%p", (void *) c->server);
		else
			res_str(&r, "");
		res_int(&r, 0);
		tls_describe(stream_ssl(&c->st), tls, sizeof(tls));
		res_str(&r, tls);
		res_str(&r, app ? app : "");
		res_int(&r, c->id);
		if (c->server)
			res_int(&r, c->server->backend_pid);
		else
			res_str(&r, NULL);
		res_bool(&r, c->admin);
		res_row(&r);
	}
	res_end(&r);
}

static void
show_server_list(Result *r, Pool *p, struct ServerList *list)
{
	Server *s;
	char	tls[128];
	char	laddr[64];
	int		lport;

	TAILQ_FOREACH(s, list, link)
	{
		int fd = s->has_stream ? s->st.fd : (s->conn ? PQsocket(s->conn) : -1);
		const char *app =
			s->client ? settings_get(&s->client->want, "application_name")
					  : NULL;

		res_str(r, "S");
		res_str(r, p->user);
		res_str(r, p->dbname);
		res_str(r, server_state_to_str(s->state));
		res_str(r, s->host ? s->host->host : NULL);
		res_int(r, s->host ? atoi(s->host->port) : 0);
		local_end(fd, laddr, sizeof(laddr), &lport);
		res_str(r, laddr);
		res_int(r, lport);
		res_time(r, s->connect_time);
		res_str(r, NULL);
		res_int(r, 0);
		res_int(r, 0);
		res_int(r, 0);
		res_fmt(r, "%p", (void *) s);
		if (s->client)
			res_fmt(r, "%p", (void *) s->client);
		else
			res_str(r, "");
		res_int(r, s->backend_pid);
		tls_describe(s->has_stream ? stream_ssl(&s->st) : NULL, tls,
					 sizeof(tls));
		res_str(r, tls);
		res_str(r, app ? app : "");
		res_u64(r, s->id);
		res_fmt(r, "%.1f", server_age(s));
		if (s->backend_pid)
			res_int(r, s->backend_pid);
		else
			res_str(r, NULL);
		if (s->client)
			res_int(r, s->client->id);
		else
			res_str(r, NULL);
		res_row(r);
	}
}

/* SHOW SERVERS: PgBouncer's columns, then id, age, backend pid, client. */
static void
show_servers(Buf *out)
{
	static const Col cols[] = {
		CONN_COLS
		/* apiscale's */
		{"id", T_INT8},
		{"age_s", T_FLOAT8},
		{"backend_pid", T_INT4},
		{"client_id", T_INT8},
	};
	Result r;
	Pool  *p;

	res_begin(&r, out, NCOLS(cols), cols);
	TAILQ_FOREACH(p, &pools, link)
	{
		show_server_list(&r, p, &p->login);
		for (int i = 0; i < p->nhosts; i++)
			show_server_list(&r, p, &p->hosts[i].idle);
		show_server_list(&r, p, &p->active);
	}
	res_end(&r);
}

/*
 * SHOW DATABASES: PgBouncer's columns (port: the first of the entry's;
 * reserve_pool and max_connections: 0, apiscale has neither; pool_mode:
 * the entry's own, NULL if it has none), then the rest of the QueuePool
 * settings and the entry as written.
 */
static void
show_databases(Buf *out)
{
	static const Col cols[] = {
		{"name", T_TEXT},
		{"host", T_TEXT},
		{"port", T_INT4},
		{"database", T_TEXT},
		{"force_user", T_TEXT},
		{"pool_size", T_INT4},
		{"min_pool_size", T_INT4},
		{"reserve_pool", T_INT4},
		{"pool_mode", T_TEXT},
		{"max_connections", T_INT4},
		{"current_connections", T_INT4},
		{"paused", T_INT4},
		{"disabled", T_INT4},
		/* apiscale's */
		{"max_overflow", T_INT4},
		{"pool_timeout", T_FLOAT8},
		{"pool_recycle", T_FLOAT8},
		{"ports", T_TEXT},
		{"target_session_attrs", T_TEXT},
	};
	Result r;

	res_begin(&r, out, NCOLS(cols), cols);
	for (DbConfig *db = cf.databases; db; db = db->next)
	{
		int			 conns = 0;
		Pool		*p;
		PoolSettings set = config_pool_settings(&cf, db, NULL);

		TAILQ_FOREACH(p, &pools, link)
		{
			if (strcmp(p->dbname, db->name) == 0)
				conns += pool_total(p);
		}
		res_str(&r, db->name);
		res_str(&r, db->host);
		res_int(&r, db->nhosts > 0 ? atoi(db->ports[0]) : 0);
		res_str(&r, db->dbname);
		res_str(&r, db->user);
		res_int(&r, set.pool_size);
		res_int(&r, 0);
		res_int(&r, 0);
		res_str(&r, (db->ovr.set & OVR_POOL_MODE)
						? pool_mode_to_str(db->ovr.pool_mode)
						: NULL);
		res_int(&r, 0);
		res_int(&r, conns);
		res_int(&r, pool_paused ? 1 : 0);
		res_int(&r, 0);
		res_int(&r, set.max_overflow);
		res_fmt(&r, "%g", set.pool_timeout);
		res_fmt(&r, "%g", set.pool_recycle);
		res_str(&r, db->port);
		res_str(&r, target_attrs_to_str(db->target));
		res_row(&r);
	}
	res_end(&r);
}

/*
 * SHOW HOSTS: every host of the [databases] entries, once per entry that
 * lists it, with what its checks said and the entry's servers there.
 */
static void
show_hosts(Buf *out)
{
	static const Col cols[] = {
		{"database", T_TEXT},	{"host", T_TEXT},		{"port", T_TEXT},
		{"role", T_TEXT},		{"state", T_TEXT},		{"eligible", T_TEXT},
		{"lag_s", T_TEXT},		{"lag_bytes", T_TEXT},	{"sv_active", T_TEXT},
		{"sv_idle", T_TEXT},	{"sv_login", T_TEXT},	{"last_check", T_TEXT},
		{"last_error", T_TEXT}, {"down_since", T_TEXT},
	};
	Result r;

	res_begin(&r, out, NCOLS(cols), cols);
	for (DbConfig *db = cf.databases; db; db = db->next)
	{
		Host	*hs[64];
		int		 n = db->nhosts < 64 ? db->nhosts : 64;
		uint64_t mask;
		bool	 known = true;

		for (int i = 0; i < n; i++)
			known &=
				(hs[i] = host_find_exact(db->hosts[i], db->ports[i])) != NULL;
		if (!known)
			continue;
		mask = pool_hosts_eligible(db->target, hs, n);
		for (int i = 0; i < n; i++)
		{
			Host *h = hs[i];
			int	  active = 0;
			int	  idle = 0;
			int	  login = 0;
			bool  eligible = (mask >> i) & 1;
			Pool *p;

			TAILQ_FOREACH(p, &pools, link)
			{
				if (strcmp(p->dbname, db->name) != 0)
					continue;
				for (int k = 0; k < p->nhosts; k++)
				{
					if (p->hosts[k].host != h)
						continue;
					active += p->hosts[k].n_active;
					idle += p->hosts[k].n_idle;
					login += p->hosts[k].n_login;
				}
			}
			res_str(&r, db->name);
			res_str(&r, h->host);
			res_str(&r, h->port);
			res_str(&r, host_role_to_str(h->role));
			res_str(&r, host_state_to_str(h));
			res_str(&r, eligible ? "t" : "f");
			res_fmt(&r, "%.1f", h->lag);
			res_fmt(&r, "%.0f", h->lag_bytes);
			res_fmt(&r, "%d", active);
			res_fmt(&r, "%d", idle);
			res_fmt(&r, "%d", login);
			res_time(&r, (time_t) h->last_check);
			res_str(&r, h->last_error);
			res_time(&r, (time_t) h->down_since);
			res_row(&r);
		}
	}
	res_end(&r);
}

/* BAN host[:port] / UNBAN host[:port] (spec as the user typed it). */
static void
ban_host(Buf *out, const char *spec, bool ban)
{
	char   name[300];
	size_t n = 0;
	Host  *h;

	while (*spec == ' ' || *spec == '\'')
		spec++;
	while (*spec && *spec != '\'' && *spec != ';' && n + 1 < sizeof(name))
		name[n++] = *spec++;
	while (n > 0 && name[n - 1] == ' ')
		n--;
	name[n] = '\0';
	h = host_find(name);
	if (h == NULL)
	{
		pkt_add_error(out, "ERROR", "42704",
					  "no host \"%s\" in [databases] (give host:port, as "
					  "SHOW HOSTS shows it)",
					  name);
		return;
	}
	host_ban(h, ban);
	pkt_add_command_complete(out, ban ? "BAN" : "UNBAN");
}

/* SHOW CONFIG: PgBouncer's key, value, default, changeable. */
static void
show_config(Buf *out)
{
	static const Col cols[] = {
		{"key", T_TEXT},
		{"value", T_TEXT},
		{"default", T_TEXT},
		{"changeable", T_TEXT},
	};
	Result		r;
	const char *key;
	char		value[256];
	bool		reloadable;

	res_begin(&r, out, NCOLS(cols), cols);
	for (int i = 0;
		 config_describe(&cf, i, &key, value, sizeof(value), &reloadable); i++)
	{
		res_str(&r, key);
		res_str(&r, value);
		res_str(&r, config_key_default(i));
		res_str(&r, reloadable ? "yes" : "no");
		res_row(&r);
	}
	res_end(&r);
}

/*
 * The users SHOW USERS lists: [users] lines, then the users of pools, each
 * once.  Calls fn for each; returns how many.
 */
static int
each_user(void (*fn)(const char *name, const UserConfig *u, void *arg),
		  void *arg)
{
	int	  n = 0;
	Pool *p;

	for (const UserConfig *u = cf.users; u; u = u->next)
	{
		if (fn)
			fn(u->name, u, arg);
		n++;
	}
	TAILQ_FOREACH(p, &pools, link)
	{
		bool  seen = false;
		Pool *q;

		for (const UserConfig *u = cf.users; u && !seen; u = u->next)
			seen = strcmp(u->name, p->user) == 0;
		TAILQ_FOREACH(q, &pools, link)
		{
			if (q == p || seen)
				break;
			seen = strcmp(q->user, p->user) == 0;
		}
		if (seen)
			continue;
		if (fn)
			fn(p->user, NULL, arg);
		n++;
	}
	return n;
}

static void
user_row(const char *name, const UserConfig *u, void *arg)
{
	Result	*r = (Result *) arg;
	unsigned set = u ? u->ovr.set : 0;

	res_str(r, name);
	res_str(r,
			(set & OVR_POOL_MODE) ? pool_mode_to_str(u->ovr.pool_mode) : NULL);
	if (set & OVR_POOL_SIZE)
		res_int(r, u->ovr.pool_size);
	else
		res_str(r, NULL);
	if (set & OVR_MAX_OVERFLOW)
		res_int(r, u->ovr.max_overflow);
	else
		res_str(r, NULL);
	if (set & OVR_POOL_TIMEOUT)
		res_fmt(r, "%g", u->ovr.pool_timeout);
	else
		res_str(r, NULL);
	if (set & OVR_POOL_RECYCLE)
		res_fmt(r, "%g", u->ovr.pool_recycle);
	else
		res_str(r, NULL);
	res_row(r);
}

/* SHOW USERS: name and pool_mode, then the user's own QueuePool settings. */
static void
show_users(Buf *out)
{
	static const Col cols[] = {
		{"name", T_TEXT},
		{"pool_mode", T_TEXT},
		/* apiscale's */
		{"pool_size", T_INT4},
		{"max_overflow", T_INT4},
		{"pool_timeout", T_FLOAT8},
		{"pool_recycle", T_FLOAT8},
	};
	Result r;

	res_begin(&r, out, NCOLS(cols), cols);
	each_user(user_row, &r);
	res_end(&r);
}

/* SHOW LISTS: PgBouncer's list names; no DNS cache and no free lists. */
static void
show_lists(Buf *out)
{
	static const Col cols[] = {{"list", T_TEXT}, {"items", T_INT4}};
	Result			 r;
	int				 ndb = 0;
	int				 login = 0;
	int				 servers = 0;
	Client			*c;
	Pool			*p;

	for (DbConfig *db = cf.databases; db; db = db->next)
		ndb++;
	TAILQ_FOREACH(c, &all_clients, all)
	{
		if (c->state == CL_STARTUP || c->state == CL_AUTH ||
			c->state == CL_LOGIN_WAIT)
			login++;
	}
	TAILQ_FOREACH(p, &pools, link)
	servers += pool_total(p);

	{
		/* PgBouncer's lists, in its order */
		const struct
		{
			const char *name;
			int			items;
		} lists[] = {
			{"databases", ndb},
			{"users", each_user(NULL, NULL)},
			{"pools", pool_count()},
			{"free_clients", 0},
			{"used_clients", n_clients},
			{"login_clients", login},
			{"free_servers", 0},
			{"used_servers", servers},
			{"dns_names", 0},
			{"dns_zones", 0},
			{"dns_queries", 0},
			{"dns_pending", 0},
		};

		res_begin(&r, out, NCOLS(cols), cols);
		for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		{
			res_str(&r, lists[i].name);
			res_int(&r, lists[i].items);
			res_row(&r);
		}
	}
	res_end(&r);
}

/*
 * SHOW MEM: PgBouncer's caches by name, each the structures apiscale has
 * for the same thing (size of one, how many); iobuf_cache counts the bytes
 * the clients' and servers' buffers hold.
 */
static void
show_mem(Buf *out)
{
	static const Col cols[] = {
		{"name", T_TEXT}, {"size", T_INT4},		{"used", T_INT4},
		{"free", T_INT4}, {"memtotal", T_INT4},
	};
	Result	r;
	int		ndb = 0;
	int		nusers = 0;
	int		nservers = 0;
	size_t	iobuf = 0;
	Client *c;
	Pool   *p;

	for (DbConfig *db = cf.databases; db; db = db->next)
		ndb++;
	for (UserConfig *u = cf.users; u; u = u->next)
		nusers++;
	TAILQ_FOREACH(p, &pools, link)
	nservers += pool_total(p);
	TAILQ_FOREACH(c, &all_clients, all)
	{
		iobuf += buf_len(&c->st.in) + buf_len(&c->st.out);
		if (c->server && c->server->has_stream)
			iobuf += buf_len(&c->server->st.in) + buf_len(&c->server->st.out);
	}

	res_begin(&r, out, NCOLS(cols), cols);
#define MEM_ROW(name, size, used)                                             \
	do                                                                        \
	{                                                                         \
		res_str(&r, name);                                                    \
		res_int(&r, (long long) (size));                                      \
		res_int(&r, (long long) (used));                                      \
		res_int(&r, 0);                                                       \
		res_int(&r, (long long) (size) * (long long) (used));                 \
		res_row(&r);                                                          \
	} while (0)
	MEM_ROW("user_cache", sizeof(UserConfig), nusers);
	MEM_ROW("db_cache", sizeof(DbConfig), ndb);
	MEM_ROW("pool_cache", sizeof(Pool), pool_count());
	MEM_ROW("server_cache", sizeof(Server), nservers);
	MEM_ROW("client_cache", sizeof(Client), n_clients);
	MEM_ROW("iobuf_cache", 1, iobuf);
#undef MEM_ROW
	res_end(&r);
}

/*
 * SHOW VERSION: says which PgBouncer's admin console this one answers as,
 * in the form PgBouncer's tools look for ("PgBouncer X.Y.Z").
 */
static void
show_version(Buf *out)
{
	static const Col cols[] = {{"version", T_TEXT}};
	Result			 r;

	res_begin(&r, out, NCOLS(cols), cols);
	res_str(&r, "apiscale-pooler " APS_VERSION
				" (admin console of PgBouncer 1.18.0)");
	res_row(&r);
	res_end(&r);
}

void
admin_welcome(Client *c)
{
	Buf *out = &c->st.out;

	pkt_add_param(out, "server_version",
				  "15.0 (apiscale-pooler " APS_VERSION ")");
	pkt_add_param(out, "client_encoding", "UTF8");
	pkt_add_param(out, "server_encoding", "UTF8");
	pkt_add_param(out, "DateStyle", "ISO, MDY");
	pkt_add_param(out, "integer_datetimes", "on");
	pkt_add_param(out, "standard_conforming_strings", "on");
	pkt_add_backend_key(out, c->id, c->cancel_key);
	pkt_add_ready(out, 'I');
}

/* Normalize a command: upper-case words separated by one space. */
static void
normalize(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	bool   space = false;

	while (*in && isspace((unsigned char) *in))
		in++;
	for (; *in && n + 1 < outlen; in++)
	{
		if (*in == ';')
			break;
		if (isspace((unsigned char) *in))
		{
			space = true;
			continue;
		}
		if (space && n > 0)
			out[n++] = ' ';
		space = false;
		out[n++] = (char) toupper((unsigned char) *in);
	}
	out[n] = '\0';
}

/* One message from an admin client.  False if c is gone. */
bool
admin_handle(Client *c, char type, uint32_t len)
{
	Buf	 *in = &c->st.in;
	Buf	 *out = &c->st.out;
	char *msg;
	char  cmd[128];
	char  err[256];

	if (type != 'Q')
	{
		buf_drain(in, len);
		pkt_add_error(
			out, "ERROR", "08P01",
			"the admin console supports the simple query protocol only");
		if (type == 'S')
			pkt_add_ready(out, 'I');
		return true;
	}
	msg = malloc(len + 1);
	if (msg == NULL)
		fatal("out of memory");
	buf_remove(in, msg, len);
	msg[len] = '\0';
	normalize(msg + 5, cmd, sizeof(cmd));
	log_info("C-%u: admin %s: %s", c->id, c->user, cmd);
	if (strncmp(cmd, "BAN ", 4) == 0 || strncmp(cmd, "UNBAN ", 6) == 0)
	{
		/* the host as typed, not upper-cased */
		const char *arg = msg + 5;

		while (isspace((unsigned char) *arg))
			arg++;
		arg += cmd[0] == 'B' ? 3 : 5;
		ban_host(out, arg, cmd[0] == 'B');
		free(msg);
		pkt_add_ready(out, 'I');
		return true;
	}
	free(msg);

	if (strcmp(cmd, "SHOW POOLS") == 0)
		show_pools(out);
	else if (strcmp(cmd, "SHOW STATS") == 0)
		show_stats(out);
	else if (strcmp(cmd, "SHOW STATS_TOTALS") == 0)
		show_stats_part(out, false);
	else if (strcmp(cmd, "SHOW STATS_AVERAGES") == 0)
		show_stats_part(out, true);
	else if (strcmp(cmd, "SHOW LISTS") == 0)
		show_lists(out);
	else if (strcmp(cmd, "SHOW USERS") == 0)
		show_users(out);
	else if (strcmp(cmd, "SHOW MEM") == 0)
		show_mem(out);
	else if (strcmp(cmd, "SHOW CLIENTS") == 0)
		show_clients(out);
	else if (strcmp(cmd, "SHOW SERVERS") == 0)
		show_servers(out);
	else if (strcmp(cmd, "SHOW DATABASES") == 0)
		show_databases(out);
	else if (strcmp(cmd, "SHOW CONFIG") == 0)
		show_config(out);
	else if (strcmp(cmd, "SHOW HOSTS") == 0)
		show_hosts(out);
	else if (strcmp(cmd, "SHOW VERSION") == 0)
		show_version(out);
	else if (strcmp(cmd, "RELOAD") == 0)
	{
		if (process_reload(err, sizeof(err)))
			pkt_add_command_complete(out, "RELOAD");
		else
			pkt_add_error(out, "ERROR", "F0000", "%s", err);
	}
	else if (strcmp(cmd, "PAUSE") == 0)
	{
		pool_paused = true;
		pkt_add_command_complete(out, "PAUSE");
	}
	else if (strcmp(cmd, "RESUME") == 0)
	{
		pool_resume_all();
		pkt_add_command_complete(out, "RESUME");
	}
	else if (strcmp(cmd, "SHUTDOWN") == 0)
	{
		pkt_add_command_complete(out, "SHUTDOWN");
		pkt_add_ready(out, 'I');
		process_shutdown(false);
		return false;
	}
	else if (cmd[0] == '\0')
		pkt_add_command_complete(out, "");
	else
		pkt_add_error(
			out, "ERROR", "42601",
			"unknown admin command \"%s\" (expected SHOW POOLS|STATS|"
			"STATS_TOTALS|STATS_AVERAGES|CLIENTS|SERVERS|DATABASES|LISTS|"
			"USERS|HOSTS|CONFIG|MEM|VERSION, RELOAD, PAUSE, RESUME, BAN host, "
			"UNBAN host or SHUTDOWN)",
			cmd);
	pkt_add_ready(out, 'I');
	return true;
}
