/*
 * pgbconv.c
 *		apiscale-pooler --from-pgbouncer: a pgbouncer.ini as apiscale's
 *		configuration.
 *
 * The file is read with inih (as config.c reads ours), every line kept in
 * order.  Then each section is written out in apiscale's terms:
 *
 *	[pgbouncer]  keys PgBouncer and apiscale share keep their name; four
 *				 are renamed (default_pool_size -> pool_size,
 *				 reserve_pool_size -> max_overflow, query_wait_timeout ->
 *				 pool_timeout, server_lifetime -> pool_recycle); a few are
 *				 translated (listen_addr, auth_type, pool_mode, verbose).
 *				 Where the two defaults differ, PgBouncer's is written out,
 *				 so that the converted pooler behaves as the PgBouncer did.
 *	[databases]	 connection keys as they are, pool_size, reserve_pool (as
 *				 max_overflow) and pool_mode per database.
 *	[users]		 pool_mode and pool_size per user.
 *	[peers]		 as they are (the same scheme).
 *
 * Every other key is named in a warning, with the reason where apiscale does
 * the thing differently.  The conversion fails only where carrying on would
 * change who may log in (a password auth_type without an auth_file).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "log.h"
#include "pgbconv.h"

/* One key = value of the file, in order. */
typedef struct Line
{
	char		*section;
	char		*name;
	char		*value;
	int			 line;
	struct Line *next;
} Line;

/* One key of apiscale's [pooler] to write, with a comment above it. */
typedef struct OutKey
{
	const char *name;
	char		value[1024];
	char		comment[600];
	bool		set;
} OutKey;

/* State of one conversion. */
typedef struct Conv
{
	const char *path;
	FILE	   *warn;
	Line	   *lines;
	Line	  **tail;
	FILE	   *file;
	int			line;		/* of the text last handed to inih */
	bool		line_ended; /* and that text ended it */
	int			warnings;
	OutKey		out[48];
	int			nout;
} Conv;

/*
 * [pgbouncer] keys apiscale has under the same name or another one, with
 * PgBouncer's default (NULL: the same as apiscale's, or none).
 */
static const struct
{
	const char *pgb;
	const char *aps;
	const char *pgb_default;
} carried[] = {
	{"listen_port", "listen_port", NULL},
	{"unix_socket_dir", "unix_socket_dir", NULL},
	{"auth_file", "auth_file", NULL},
	{"admin_users", "admin_users", NULL},
	{"default_pool_size", "pool_size", "20"},
	{"query_wait_timeout", "pool_timeout", "120"},
	{"server_lifetime", "pool_recycle", "3600"},
	{"client_login_timeout", "client_login_timeout", NULL},
	{"max_client_conn", "max_client_conn", "100"},
	{"server_connect_timeout", "server_connect_timeout", "15"},
	{"stats_period", "stats_period", NULL},
	{"so_reuseport", "so_reuseport", NULL},
	{"peer_id", "peer_id", NULL},
	{"logfile", "logfile", NULL},
	{"pidfile", "pidfile", NULL},
	{"client_tls_sslmode", "client_tls_sslmode", NULL},
	{"client_tls_key_file", "client_tls_key_file", NULL},
	{"client_tls_cert_file", "client_tls_cert_file", NULL},
	{"client_tls_ca_file", "client_tls_ca_file", NULL},
	{"server_tls_sslmode", "server_tls_sslmode", NULL},
	{"server_tls_ca_file", "server_tls_ca_file", NULL},
	{"server_tls_key_file", "server_tls_key_file", NULL},
	{"server_tls_cert_file", "server_tls_cert_file", NULL},
	{"stats_users", "stats_users", NULL},
	{"idle_transaction_timeout", "idle_transaction_timeout", NULL},
	{"query_timeout", "query_timeout", NULL},
	{"client_idle_timeout", "client_idle_timeout", NULL},
	{"tcp_keepalive", "tcp_keepalive", NULL},
	{"tcp_keepidle", "tcp_keepidle", NULL},
	{"tcp_keepintvl", "tcp_keepintvl", NULL},
	{"tcp_keepcnt", "tcp_keepcnt", NULL},
	{"tcp_user_timeout", "tcp_user_timeout", NULL},
};

/* Why some [pgbouncer] keys are not carried (others: no such setting). */
static const struct
{
	const char *pgb;
	const char *why;
} reasons[] = {
	{"min_pool_size",
	 "servers open when clients need them (QueuePool): no minimum is kept"},
	{"reserve_pool_timeout",
	 "max_overflow servers open at once when pool_size are busy, not after "
	 "a wait"},
	{"server_reset_query", "session pooling resets with DISCARD ALL; "
						   "transaction pooling needs no reset"},
	{"server_reset_query_always", "see server_reset_query"},
	{"server_check_query",
	 "hosts are checked on a timer of their own (health_check_interval)"},
	{"server_check_delay",
	 "hosts are checked on a timer of their own (health_check_interval)"},
	{"server_idle_timeout", "idle servers are kept until pool_recycle"},
	{"server_login_retry",
	 "a refused login is retried after 0.5 s, and waiting clients get "
	 "08001 at once"},
	{"auth_query", "users and passwords come from auth_file only"},
	{"auth_user", "users and passwords come from auth_file only"},
	{"auth_dbname", "users and passwords come from auth_file only"},
	{"auth_hba_file", "no hba file: auth_type applies to every client"},
	{"max_db_connections",
	 "limits are per pool: pool_size + max_overflow per host"},
	{"max_user_connections",
	 "limits are per pool: pool_size + max_overflow per host"},
	{"ignore_startup_parameters",
	 "not needed: every start-up parameter follows its client"},
	{"syslog", "logs go to logfile, or stderr (the journal under systemd)"},
	{"syslog_ident",
	 "logs go to logfile, or stderr (the journal under systemd)"},
	{"syslog_facility",
	 "logs go to logfile, or stderr (the journal under systemd)"},
	{"log_connections", "log_level decides what is logged"},
	{"log_disconnections", "log_level decides what is logged"},
	{"log_pooler_errors", "log_level decides what is logged"},
	{"log_stats",
	 "the figures are on /metrics (http_listen) and in SHOW STATS"},
	{"max_prepared_statements",
	 "PgBouncer's 0 lets named statements through untracked; apiscale "
	 "tracks them (default 100), and its 0 refuses them"},
	{"user", "run it as a user of its own (the systemd unit does)"},
};

/* Per-database keys carried as they are. */
static const char *const db_same[] = {"host", "port",	  "dbname",
									  "user", "password", "pool_size"};

static void cv_warn(Conv *cv, const Line *l, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A warning on cv->warn: "FILE:LINE: [section] key: message". */
static void
cv_warn(Conv *cv, const Line *l, const char *fmt, ...)
{
	va_list ap;

	if (l)
		fprintf(cv->warn, "%s:%d: [%s] %s: ", cv->path, l->line, l->section,
				l->name);
	else
		fprintf(cv->warn, "%s: ", cv->path);
	va_start(ap, fmt);
	vfprintf(cv->warn, fmt, ap);
	va_end(ap);
	fputc('\n', cv->warn);
	cv->warnings++;
}

static int
cv_ini_line(void *user, const char *section, const char *name,
			const char *value)
{
	Conv *cv = (Conv *) user;
	Line *l = calloc(1, sizeof(Line));

	if (l == NULL)
		fatal("out of memory");
	l->section = xstrdup(section);
	l->name = xstrdup(name);
	l->value = xstrdup(value);
	l->line = cv->line;
	*cv->tail = l;
	cv->tail = &l->next;
	return 1;
}

/*
 * fgets for inih, counting lines, and dropping the blanks that start one
 * (as config.c does): PgBouncer ignores them, where inih would read the
 * line as a continuation of the key above.
 */
static char *
cv_read(char *str, int num, void *stream)
{
	Conv *cv = (Conv *) stream;
	char *s = fgets(str, num, cv->file);

	if (s == NULL)
		return NULL;
	if (cv->line_ended)
	{
		size_t blanks = strspn(s, " \t");

		cv->line++;
		if (blanks > 0)
			memmove(s, s + blanks, strlen(s + blanks) + 1);
	}
	cv->line_ended = strchr(s, '\n') != NULL;
	/* PgBouncer's %include: inih would read it as a key without value */
	if (strncmp(s, "%include", 8) == 0)
	{
		fprintf(cv->warn,
				"%s:%d: %%include not followed: convert that file "
				"too and add its lines\n",
				cv->path, cv->line);
		cv->warnings++;
		s[0] = ';';
	}
	return s;
}

/* The last value of key in section, or NULL. */
static const Line *
cv_get(const Conv *cv, const char *section, const char *name)
{
	const Line *found = NULL;

	for (const Line *l = cv->lines; l; l = l->next)
	{
		if (strcasecmp(l->section, section) == 0 && strcmp(l->name, name) == 0)
			found = l;
	}
	return found;
}

/* Set [pooler] key name to value, with an optional comment. */
static void cv_set(Conv *cv, const char *name, const char *value,
				   const char *comment_fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
cv_set(Conv *cv, const char *name, const char *value, const char *comment_fmt,
	   ...)
{
	OutKey *k = NULL;

	for (int i = 0; i < cv->nout; i++)
	{
		if (strcmp(cv->out[i].name, name) == 0)
			k = &cv->out[i];
	}
	if (k == NULL)
	{
		if (cv->nout == (int) (sizeof(cv->out) / sizeof(cv->out[0])))
			fatal("internal error: too many converted keys");
		k = &cv->out[cv->nout++];
		k->name = name;
		k->comment[0] = '\0';
	}
	snprintf(k->value, sizeof(k->value), "%s", value);
	k->set = true;
	if (comment_fmt)
	{
		va_list ap;

		va_start(ap, comment_fmt);
		vsnprintf(k->comment, sizeof(k->comment), comment_fmt, ap);
		va_end(ap);
	}
}

static bool
is_number(const char *s)
{
	char *end;

	errno = 0;
	(void) strtod(s, &end);
	return errno == 0 && end != s && *end == '\0';
}

/* listen_addr: one numeric address; PgBouncer's takes a list and names. */
static void
conv_listen_addr(Conv *cv, const Line *l)
{
	char		  first[256];
	const char	 *v = l ? l->value : "";
	size_t		  n = strcspn(v, ",");
	unsigned char buf[16];

	if (n >= sizeof(first))
		n = sizeof(first) - 1;
	memcpy(first, v, n);
	first[n] = '\0';
	while (n > 0 && first[n - 1] == ' ')
		first[--n] = '\0';
	if (v[strcspn(v, ",")] == ',')
		cv_warn(cv, l,
				"apiscale listens on one address: \"%s\" only (run another "
				"instance for the others)",
				first);
	if (strcmp(first, "*") == 0)
	{
		cv_warn(cv, l, "\"*\" written as 0.0.0.0: every IPv4 address");
		cv_set(cv, "listen_addr", "0.0.0.0", NULL);
	}
	else if (strcasecmp(first, "localhost") == 0)
	{
		cv_warn(cv, l, "\"localhost\" written as 127.0.0.1 (IPv4 only)");
		cv_set(cv, "listen_addr", "127.0.0.1", NULL);
	}
	else
	{
		if (first[0] != '\0' && inet_pton(AF_INET, first, buf) != 1 &&
			inet_pton(AF_INET6, first, buf) != 1)
			cv_warn(cv, l,
					"\"%s\" is not a numeric address, which apiscale needs: "
					"change it",
					first);
		cv_set(cv, "listen_addr", first,
			   first[0] ? NULL : "no TCP (as PgBouncer without listen_addr)");
	}
}

/*
 * auth_type: PgBouncer's default is md5 (apiscale's trust).  Methods
 * apiscale lacks become the closest one that still asks for what
 * PgBouncer asked.  False if the result needs an auth_file there is none
 * of.
 */
static bool
conv_auth(Conv *cv)
{
	const Line *l = cv_get(cv, "pgbouncer", "auth_type");
	const Line *file = cv_get(cv, "pgbouncer", "auth_file");
	const char *t = l ? l->value : "md5";
	const char *aps = t;

	if (strcmp(t, "trust") == 0 || strcmp(t, "md5") == 0 ||
		strcmp(t, "scram-sha-256") == 0)
		cv_set(cv, "auth_type", t,
			   l ? NULL : "auth_type: PgBouncer's default");
	else if (strcmp(t, "plain") == 0 || strcmp(t, "hba") == 0 ||
			 strcmp(t, "pam") == 0)
	{
		aps = "md5";
		cv_warn(cv, l,
				"\"%s\" written as md5 (passwords from auth_file; a SCRAM "
				"secret there makes it SCRAM)",
				t);
		cv_set(cv, "auth_type", aps, "was %s in PgBouncer", t);
	}
	else if (strcmp(t, "any") == 0)
	{
		aps = "trust";
		cv_warn(cv, l,
				"\"any\" written as trust (apiscale keeps the user "
				"name the client gives)");
		cv_set(cv, "auth_type", aps, "was any in PgBouncer");
	}
	else if (strcmp(t, "cert") == 0)
	{
		/* the certificate's common name must be the user: verify-full */
		aps = "trust";
		cv_set(cv, "auth_type", aps,
			   "was cert in PgBouncer: client_tls_sslmode = verify-full "
			   "checks the certificate and that its common name is the "
			   "user name");
		cv_set(cv, "client_tls_sslmode", "verify-full", NULL);
	}
	else
	{
		cv_warn(cv, l, "unknown auth_type \"%s\"", t);
		return false;
	}
	if (strcmp(aps, "trust") != 0 && (file == NULL || file->value[0] == '\0'))
	{
		fprintf(cv->warn,
				"%s: error: auth_type %s needs an auth_file, and this file "
				"names none (apiscale has no auth_query): write the users "
				"and passwords into a file in PgBouncer's userlist.txt "
				"format and name it in auth_file\n",
				cv->path, aps);
		return false;
	}
	return true;
}

/* The [pgbouncer] section into cv->out; false if it cannot be carried. */
static bool
conv_pooler(Conv *cv)
{
	const Line *l;
	char		buf[64];

	conv_listen_addr(cv, cv_get(cv, "pgbouncer", "listen_addr"));
	if (!conv_auth(cv))
		return false;

	for (size_t i = 0; i < sizeof(carried) / sizeof(carried[0]); i++)
	{
		l = cv_get(cv, "pgbouncer", carried[i].pgb);
		if (l == NULL && carried[i].pgb_default == NULL)
			continue;
		if (strcmp(carried[i].pgb, "client_tls_sslmode") == 0 &&
			cv_get(cv, "pgbouncer", "auth_type") &&
			strcmp(cv_get(cv, "pgbouncer", "auth_type")->value, "cert") == 0)
			continue; /* conv_auth set it */
		if (l == NULL)
		{
			cv_set(cv, carried[i].aps, carried[i].pgb_default,
				   "%s: PgBouncer's default", carried[i].pgb);
			continue;
		}
		if (strcmp(carried[i].pgb, "query_wait_timeout") == 0 &&
			is_number(l->value) && strtod(l->value, NULL) == 0)
		{
			cv_warn(cv, l,
					"0 (wait for ever) written as pool_timeout = 86400, "
					"apiscale's longest");
			cv_set(cv, "pool_timeout", "86400", "query_wait_timeout = 0");
			continue;
		}
		cv_set(cv, carried[i].aps, l->value,
			   strcmp(carried[i].pgb, carried[i].aps) != 0 ? "PgBouncer's %s"
														   : NULL,
			   carried[i].pgb);
	}

	/* reserve_pool_size -> max_overflow, with how they differ */
	l = cv_get(cv, "pgbouncer", "reserve_pool_size");
	{
		const Line *rt = cv_get(cv, "pgbouncer", "reserve_pool_timeout");

		cv_set(cv, "max_overflow", l ? l->value : "0",
			   "PgBouncer's reserve_pool_size%s.  Not the same thing: "
			   "PgBouncer opens its reserve only for a client that waited "
			   "reserve_pool_timeout (%s s), and keeps those servers like "
			   "the others; apiscale opens up to max_overflow more servers "
			   "at once when all pool_size are busy, and closes each as it "
			   "is released while pool_size are idle (SQLAlchemy's "
			   "QueuePool)",
			   l ? "" : " (default 0)", rt ? rt->value : "5");
	}

	/* pool_mode: PgBouncer's default is session */
	l = cv_get(cv, "pgbouncer", "pool_mode");
	if (l && strcmp(l->value, "statement") == 0)
	{
		cv_warn(cv, l,
				"statement pooling written as transaction (apiscale has no "
				"statement mode)");
		cv_set(cv, "pool_mode", "transaction", "was statement in PgBouncer");
	}
	else
		cv_set(cv, "pool_mode", l ? l->value : "session",
			   l ? NULL : "pool_mode: PgBouncer's default");

	l = cv_get(cv, "pgbouncer", "verbose");
	if (l && is_number(l->value) && strtod(l->value, NULL) > 0)
		cv_set(cv, "log_level", "debug", "PgBouncer's verbose = %s", l->value);

	l = cv_get(cv, "pgbouncer", "max_packet_size");
	if (l && is_number(l->value))
	{
		double v = strtod(l->value, NULL);

		if (v > 1073741824)
			v = 1073741824; /* PostgreSQL's own limit */
		if (v < 65536)
			v = 65536;
		snprintf(buf, sizeof(buf), "%.0f", v);
		cv_set(cv, "max_packet_size", buf, NULL);
	}

	/* PgBouncer hands out the server released last unless this is set */
	l = cv_get(cv, "pgbouncer", "server_round_robin");
	if (l && is_number(l->value) && strtod(l->value, NULL) != 0)
		cv_set(cv, "pool_use_lifo", "off",
			   "PgBouncer's server_round_robin = %s", l->value);

	/* a boolean in PgBouncer (on: 45 s, apiscale's default), seconds here */
	l = cv_get(cv, "pgbouncer", "tcp_defer_accept");
	if (l && is_number(l->value) && strtod(l->value, NULL) == 0)
		cv_set(cv, "tcp_defer_accept", "0",
			   "PgBouncer's tcp_defer_accept = 0");

	/* the rest: named, with the reason where there is one */
	for (l = cv->lines; l; l = l->next)
	{
		const char *why = "apiscale-pooler has no such setting";
		bool		done = false;

		if (strcasecmp(l->section, "pgbouncer") != 0)
			continue;
		for (size_t i = 0; i < sizeof(carried) / sizeof(carried[0]); i++)
			done |= strcmp(l->name, carried[i].pgb) == 0;
		if (done || strcmp(l->name, "listen_addr") == 0 ||
			strcmp(l->name, "auth_type") == 0 ||
			strcmp(l->name, "reserve_pool_size") == 0 ||
			strcmp(l->name, "pool_mode") == 0 ||
			strcmp(l->name, "verbose") == 0 ||
			strcmp(l->name, "server_round_robin") == 0 ||
			strcmp(l->name, "tcp_defer_accept") == 0 ||
			strcmp(l->name, "max_packet_size") == 0)
			continue;
		for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		{
			if (strcmp(l->name, reasons[i].pgb) == 0)
				why = reasons[i].why;
		}
		cv_warn(cv, l, "not carried: %s", why);
	}
	return true;
}

/*
 * The next key=value of a connection string; false at its end.  Values
 * may be single-quoted, with '' or \' for a quote inside.
 */
static bool
next_pair(const char **pp, char *key, size_t keylen, char *val, size_t vallen)
{
	const char *p = *pp;
	size_t		kl = 0;
	size_t		vl = 0;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '\0')
		return false;
	while (*p && *p != '=' && !isspace((unsigned char) *p) && kl + 1 < keylen)
		key[kl++] = *p++;
	key[kl] = '\0';
	while (isspace((unsigned char) *p))
		p++;
	if (*p == '=')
		p++;
	while (isspace((unsigned char) *p))
		p++;
	if (*p == '\'')
	{
		p++;
		while (*p && vl + 1 < vallen)
		{
			if ((p[0] == '\'' && p[1] == '\'') || (p[0] == '\\' && p[1]))
				p++;
			else if (*p == '\'')
				break;
			val[vl++] = *p++;
		}
		if (*p == '\'')
			p++;
	}
	else
	{
		while (*p && !isspace((unsigned char) *p) && vl + 1 < vallen)
			val[vl++] = *p++;
	}
	val[vl] = '\0';
	*pp = p;
	return true;
}

/* key=value for apiscale's config: quoted if it has to be. */
static void
put_pair(FILE *out, const char *key, const char *val, bool *first)
{
	if (!*first)
		fputc(' ', out);
	*first = false;
	if (val[0] == '\0' || strpbrk(val, " \t") != NULL)
		fprintf(out, "%s='%s'", key, val);
	else
		fprintf(out, "%s=%s", key, val);
}

/* One [databases] or [users] line in apiscale's terms. */
static void
conv_entry(Conv *cv, FILE *out, const Line *l, bool is_db)
{
	const char *p = l->value;
	char		key[64];
	char		val[1024];
	bool		first = true;
	bool		has_host = false;

	fprintf(out, "%s = ", l->name);
	while (next_pair(&p, key, sizeof(key), val, sizeof(val)))
	{
		bool same = false;

		for (size_t i = 0; is_db && i < sizeof(db_same) / sizeof(db_same[0]);
			 i++)
			same |= strcmp(key, db_same[i]) == 0;
		has_host |= strcmp(key, "host") == 0;
		if (same || (!is_db && strcmp(key, "pool_size") == 0))
			put_pair(out, key, val, &first);
		else if (is_db && strcmp(key, "reserve_pool") == 0)
			put_pair(out, "max_overflow", val, &first);
		else if (strcmp(key, "pool_mode") == 0)
		{
			if (strcmp(val, "statement") == 0)
			{
				cv_warn(cv, l,
						"pool_mode=statement written as transaction "
						"(apiscale has no statement mode)");
				put_pair(out, key, "transaction", &first);
			}
			else
				put_pair(out, key, val, &first);
		}
		else
			cv_warn(cv, l, "%s=%s not carried: %s", key, val,
					strcmp(key, "max_db_connections") == 0 ||
							strcmp(key, "max_user_connections") == 0
						? "limits are per pool: pool_size + max_overflow"
					: strcmp(key, "min_pool_size") == 0
						? "servers open when clients need them"
					: strcmp(key, "auth_user") == 0
						? "users and passwords come from auth_file only"
					: strcmp(key, "client_encoding") == 0 ||
							strcmp(key, "datestyle") == 0 ||
							strcmp(key, "timezone") == 0 ||
							strcmp(key, "application_name") == 0
						? "settings come from each client (or set them "
						  "on the role: ALTER ROLE ... SET)"
						: "apiscale has no such key here");
	}
	fputc('\n', out);
	if (is_db && !has_host)
		cv_warn(cv, l,
				"no host: PgBouncer then uses the Unix socket, apiscale "
				"127.0.0.1 (add host=/var/run/postgresql for the socket)");
}

/* text as "; " comment lines of at most 78 columns. */
static void
put_comment(FILE *out, const char *text)
{
	const char *p = text;

	while (*p)
	{
		size_t n = strlen(p);

		if (n > 76)
		{
			n = 76;
			while (n > 0 && p[n] != ' ')
				n--;
			if (n == 0)
				n = strcspn(p, " ");
		}
		fprintf(out, "; %.*s\n", (int) n, p);
		p += n;
		while (*p == ' ')
			p++;
	}
}

bool
pgbconv_convert(const char *path, FILE *out, FILE *warn)
{
	Conv		cv;
	int			rc;
	bool		ok;
	const char *sections[] = {"databases", "users", "peers"};

	memset(&cv, 0, sizeof(cv));
	cv.path = path;
	cv.warn = warn;
	cv.tail = &cv.lines;
	cv.line_ended = true;
	cv.file = fopen(path, "r");
	if (cv.file == NULL)
	{
		fprintf(warn, "%s: could not open: %s\n", path, strerror(errno));
		return false;
	}
	rc = ini_parse_stream(cv_read, &cv, cv_ini_line, &cv);
	fclose(cv.file);
	if (rc != 0)
	{
		fprintf(warn, "%s:%d: syntax error\n", path, rc);
		ok = false;
		goto done;
	}
	for (const Line *l = cv.lines; l; l = l->next)
	{
		if (strcasecmp(l->section, "pgbouncer") != 0 &&
			strcasecmp(l->section, "databases") != 0 &&
			strcasecmp(l->section, "users") != 0 &&
			strcasecmp(l->section, "peers") != 0)
			cv_warn(&cv, l, "section not carried");
	}
	ok = conv_pooler(&cv);
	if (!ok)
		goto done;

	fprintf(out,
			"; apiscale-pooler configuration, converted from %s\n"
			"; by apiscale-pooler --from-pgbouncer " APS_VERSION
			".  Check it with: apiscale-pooler --check FILE\n",
			path);
	for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++)
	{
		bool any = false;

		for (const Line *l = cv.lines; l; l = l->next)
		{
			if (strcasecmp(l->section, sections[s]) != 0)
				continue;
			if (!any)
				fprintf(out, "\n[%s]\n", sections[s]);
			any = true;
			if (s == 0 && strcmp(l->name, "*") == 0)
			{
				cv_warn(&cv, l,
						"the fallback database is not carried: name each "
						"database");
				continue;
			}
			if (s == 2)
				fprintf(out, "%s = %s\n", l->name, l->value);
			else
				conv_entry(&cv, out, l, s == 0);
		}
	}
	fprintf(out, "\n[pooler]\n");
	for (int i = 0; i < cv.nout; i++)
	{
		put_comment(out, cv.out[i].comment);
		fprintf(out, "%s = %s\n", cv.out[i].name, cv.out[i].value);
	}
	if (cv.warnings > 0)
		fprintf(warn, "%s: %d key%s not carried or changed (see above)\n",
				path, cv.warnings, cv.warnings == 1 ? "" : "s");

done:
	while (cv.lines)
	{
		Line *next = cv.lines->next;

		free(cv.lines->section);
		free(cv.lines->name);
		free(cv.lines->value);
		free(cv.lines);
		cv.lines = next;
	}
	return ok;
}
