/*
 * admin.c
 *		The admin console: SHOW POOLS | STATS | CLIENTS | SERVERS |
 *		DATABASES | CONFIG | VERSION, RELOAD, PAUSE, RESUME, SHUTDOWN.
 *
 * Simple query protocol only.  SHOW POOLS starts with PgBouncer's columns
 * so that existing exporters work, then adds the QueuePool view.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "admin.h"
#include "client.h"
#include "log.h"
#include "main.h"
#include "hosts.h"
#include "pool.h"
#include "protocol.h"
#include "server.h"
#include "tls.h"

#define MAXCOLS 24

/* A result being built: column names, then rows of text. */
typedef struct Result
{
	struct evbuffer *out;
	int				 ncols;
	int				 nrows;
	char			 cells[MAXCOLS][512];
	const char		*vals[MAXCOLS];
	int				 col;
} Result;

static void
res_begin(Result *r, struct evbuffer *out, int ncols, const char *const *names)
{
	r->out = out;
	r->ncols = ncols;
	r->nrows = 0;
	r->col = 0;
	pkt_add_row_description(out, ncols, names);
}

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

static void
show_pools(struct evbuffer *out)
{
	static const char *const cols[] = {
		"database",	 "user",		 "cl_active",	"cl_waiting",
		"sv_active", "sv_idle",		 "sv_used",		"sv_tested",
		"sv_login",	 "maxwait",		 "maxwait_us",	"pool_mode",
		"pool_size", "max_overflow", "sv_overflow", "utilization_pct",
		"timeouts",	 "recycled"};
	Result r;
	Pool  *p;

	res_begin(&r, out, 18, cols);
	TAILQ_FOREACH(p, &pools, link)
	{
		Client *first = TAILQ_FIRST(&p->waiting);
		double	wait = first ? mono_now() - first->wait_start : 0;
		int		overflow = pool_total(p) - p->set.pool_size;

		res_str(&r, p->dbname);
		res_str(&r, p->user);
		res_fmt(&r, "%d", p->n_clients - p->n_waiting);
		res_fmt(&r, "%d", p->n_waiting);
		res_fmt(&r, "%d", p->n_active);
		res_fmt(&r, "%d", p->n_idle);
		res_str(&r, "0");
		res_str(&r, "0");
		res_fmt(&r, "%d", p->n_login);
		res_fmt(&r, "%d", (int) wait);
		res_fmt(&r, "%d", (int) ((wait - (int) wait) * 1e6));
		res_str(&r, pool_mode_to_str(p->set.pool_mode));
		res_fmt(&r, "%d", p->set.pool_size);
		res_fmt(&r, "%d", p->set.max_overflow);
		res_fmt(&r, "%d", overflow > 0 ? overflow : 0);
		res_fmt(&r, "%.1f", 100.0 * pool_utilization(p));
		res_fmt(&r, "%llu", (unsigned long long) p->timeouts);
		res_fmt(&r, "%llu", (unsigned long long) p->recycled);
		res_row(&r);
	}
	res_end(&r);
}

static void
show_stats(struct evbuffer *out)
{
	static const char *const cols[] = {
		"database",			  "user",			"total_xact_count",
		"total_query_count",  "total_received", "total_sent",
		"total_wait_time_us", "timeouts",		"recycled"};
	Result r;
	Pool  *p;

	res_begin(&r, out, 9, cols);
	TAILQ_FOREACH(p, &pools, link)
	{
		res_str(&r, p->dbname);
		res_str(&r, p->user);
		res_fmt(&r, "%llu", (unsigned long long) p->xact_count);
		res_fmt(&r, "%llu", (unsigned long long) p->query_count);
		res_fmt(&r, "%llu", (unsigned long long) p->bytes_in);
		res_fmt(&r, "%llu", (unsigned long long) p->bytes_out);
		res_fmt(&r, "%.0f", p->total_wait * 1e6);
		res_fmt(&r, "%llu", (unsigned long long) p->timeouts);
		res_fmt(&r, "%llu", (unsigned long long) p->recycled);
		res_row(&r);
	}
	res_end(&r);
}

static void
show_clients(struct evbuffer *out)
{
	static const char *const cols[] = {
		"id",			"database", "user",		  "state", "addr", "port",
		"connect_time", "wait_us",	"server_pid", "admin", "tls"};
	Result	r;
	Client *c;
	char	tls[128];

	res_begin(&r, out, 11, cols);
	TAILQ_FOREACH(c, &all_clients, all)
	{
		res_fmt(&r, "%u", c->id);
		res_str(&r, c->dbname);
		res_str(&r, c->user);
		res_str(&r, client_state_to_str(c->state));
		res_str(&r, c->addr);
		res_fmt(&r, "%d", c->port);
		res_time(&r, c->connect_time);
		res_fmt(&r, "%.0f",
				c->state == CL_WAITING ? (mono_now() - c->wait_start) * 1e6
									   : 0.0);
		if (c->server)
			res_fmt(&r, "%d", c->server->backend_pid);
		else
			res_str(&r, NULL);
		res_str(&r, c->admin ? "t" : "f");
		tls_describe(stream_ssl(&c->st), tls, sizeof(tls));
		res_str(&r, tls);
		res_row(&r);
	}
	res_end(&r);
}

static void
show_server_list(Result *r, Pool *p, struct ServerList *list)
{
	Server *s;
	char	tls[128];

	TAILQ_FOREACH(s, list, link)
	{
		res_fmt(r, "%llu", (unsigned long long) s->id);
		res_str(r, p->dbname);
		res_str(r, p->user);
		res_str(r, server_state_to_str(s->state));
		res_str(r, s->host ? s->host->host : NULL);
		res_str(r, s->host ? s->host->port : NULL);
		res_time(r, s->connect_time);
		res_fmt(r, "%.1f", server_age(s));
		if (s->backend_pid)
			res_fmt(r, "%d", s->backend_pid);
		else
			res_str(r, NULL);
		if (s->client)
			res_fmt(r, "%u", s->client->id);
		else
			res_str(r, NULL);
		tls_describe(s->has_stream ? stream_ssl(&s->st) : NULL, tls,
					 sizeof(tls));
		res_str(r, tls);
		res_row(r);
	}
}

static void
show_servers(struct evbuffer *out)
{
	static const char *const cols[] = {
		"id",			"database", "user",		   "state",		"addr", "port",
		"connect_time", "age_s",	"backend_pid", "client_id", "tls"};
	Result r;
	Pool  *p;

	res_begin(&r, out, 11, cols);
	TAILQ_FOREACH(p, &pools, link)
	{
		show_server_list(&r, p, &p->login);
		for (int i = 0; i < p->nhosts; i++)
			show_server_list(&r, p, &p->hosts[i].idle);
		show_server_list(&r, p, &p->active);
	}
	res_end(&r);
}

static void
show_databases(struct evbuffer *out)
{
	static const char *const cols[] = {
		"name",		  "host",	   "port",		   "database",
		"force_user", "pool_size", "max_overflow", "current_connections",
		"paused"};
	Result r;

	res_begin(&r, out, 9, cols);
	for (DbConfig *db = cf.databases; db; db = db->next)
	{
		int	  conns = 0;
		Pool *p;

		TAILQ_FOREACH(p, &pools, link)
		{
			if (strcmp(p->dbname, db->name) == 0)
				conns += pool_total(p);
		}
		PoolSettings set = config_pool_settings(&cf, db, NULL);

		res_str(&r, db->name);
		res_str(&r, db->host);
		res_str(&r, db->port);
		res_str(&r, db->dbname);
		res_str(&r, db->user);
		res_fmt(&r, "%d", set.pool_size);
		res_fmt(&r, "%d", set.max_overflow);
		res_fmt(&r, "%d", conns);
		res_str(&r, pool_paused ? "t" : "f");
		res_row(&r);
	}
	res_end(&r);
}

/*
 * SHOW HOSTS: every host of the [databases] entries, once per entry that
 * lists it, with what its checks said and the entry's servers there.
 */
static void
show_hosts(struct evbuffer *out)
{
	static const char *const cols[] = {
		"database", "host",		  "port",		"role",		 "state",
		"eligible", "lag_s",	  "lag_bytes",	"sv_active", "sv_idle",
		"sv_login", "last_check", "last_error", "down_since"};
	Result r;

	res_begin(&r, out, 14, cols);
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
ban_host(struct evbuffer *out, const char *spec, bool ban)
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

static void
show_config(struct evbuffer *out)
{
	static const char *const cols[] = {"key", "value", "changeable"};
	Result					 r;
	const char				*key;
	char					 value[256];
	bool					 reloadable;

	res_begin(&r, out, 3, cols);
	for (int i = 0;
		 config_describe(&cf, i, &key, value, sizeof(value), &reloadable); i++)
	{
		res_str(&r, key);
		res_str(&r, value);
		res_str(&r, reloadable ? "yes" : "no");
		res_row(&r);
	}
	res_end(&r);
}

static void
show_version(struct evbuffer *out)
{
	static const char *const cols[] = {"version"};
	Result					 r;

	res_begin(&r, out, 1, cols);
	res_str(&r, "apiscale-pooler " APS_VERSION);
	res_row(&r);
	res_end(&r);
}

void
admin_welcome(Client *c)
{
	struct evbuffer *out = c->st.out;

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

/*
 * May c run cmd (normalized)?  SHOW commands are for admin_users and
 * stats_users, everything else for admin_users only, as the lists are now
 * (a RELOAD that takes a user out applies to its open console too).  If
 * not, the error is in out.
 */
static bool
admin_may_run(Client *c, const char *cmd, struct evbuffer *out)
{
	char verb[32];

	if (config_is_admin(&cf, c->user))
		return true;
	if (!config_is_stats_user(&cf, c->user))
	{
		pkt_add_error(out, "ERROR", "42501",
					  "permission denied: user \"%s\" is no longer in "
					  "admin_users or stats_users",
					  c->user);
		return false;
	}
	if (strncmp(cmd, "SHOW ", 5) == 0 || cmd[0] == '\0')
		return true;
	snprintf(verb, sizeof(verb), "%.*s", (int) strcspn(cmd, " "), cmd);
	pkt_add_error(out, "ERROR", "42501",
				  "permission denied: %s needs a user in admin_users; user "
				  "\"%s\" is in stats_users, which may run SHOW commands only",
				  verb, c->user);
	return false;
}

/* One message from an admin client.  False if c is gone. */
bool
admin_handle(Client *c, char type, uint32_t len)
{
	struct evbuffer *in = c->st.in;
	struct evbuffer *out = c->st.out;
	char			*msg;
	char			 cmd[128];
	char			 err[256];

	if (type != 'Q')
	{
		evbuffer_drain(in, len);
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
	evbuffer_remove(in, msg, len);
	msg[len] = '\0';
	normalize(msg + 5, cmd, sizeof(cmd));
	log_info("C-%u: admin %s: %s", c->id, c->user, cmd);
	if (!admin_may_run(c, cmd, out))
	{
		free(msg);
		pkt_add_ready(out, 'I');
		return true;
	}
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
		if (pooler_reload(err, sizeof(err)))
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
		pooler_shutdown(false);
		return false;
	}
	else if (cmd[0] == '\0')
		pkt_add_command_complete(out, "");
	else
		pkt_add_error(
			out, "ERROR", "42601",
			"unknown admin command \"%s\" (expected SHOW POOLS|STATS|"
			"CLIENTS|SERVERS|DATABASES|HOSTS|CONFIG|VERSION, RELOAD, PAUSE, "
			"RESUME, BAN host, UNBAN host or SHUTDOWN)",
			cmd);
	pkt_add_ready(out, 'I');
	return true;
}
