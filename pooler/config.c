/*
 * config.c
 *		Reading and checking the INI configuration (inih does the lexing).
 *
 * Every [pooler] key is described once in the table below: its name, how to
 * parse it, where it goes, its default, and whether RELOAD / SIGHUP applies
 * it.  Errors name the file, the line and the key.  inih does not tell the
 * handler which line it is on, so the file is fed to it through a reader
 * that counts lines; each key's line is kept in the Config, for the checks
 * that can only run once the whole file is read (a TLS mode that needs a
 * certificate, a key that does not match it: see tls.c).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ini.h>

#include "config.h"

typedef enum KeyType
{
	KEY_STRING,
	KEY_INT,
	KEY_SECONDS,
	KEY_POOL_MODE,
	KEY_AUTH_TYPE,
	KEY_LOG_LEVEL,
	KEY_SESSION_STATE,
	KEY_SSLMODE,
	KEY_BOOL,
	KEY_LOAD_BALANCE
} KeyType;

typedef struct KeyDef
{
	const char *name;
	KeyType		type;
	size_t		offset;		/* in Config */
	const char *def;		/* default, as written in the file */
	bool		reloadable; /* applied by RELOAD / SIGHUP */
	double		min;		/* for numbers */
	double		max;
} KeyDef;

#define OFF(f) offsetof(Config, f)

static const KeyDef keys[] = {
	{"listen_addr", KEY_STRING, OFF(listen_addr), "127.0.0.1", false},
	{"listen_port", KEY_INT, OFF(listen_port), "6432", false, 1, 65535},
	{"unix_socket_dir", KEY_STRING, OFF(unix_socket_dir), "/tmp", false},
	{"auth_type", KEY_AUTH_TYPE, OFF(auth_type), "trust", true},
	{"auth_file", KEY_STRING, OFF(auth_file), "", true},
	{"admin_users", KEY_STRING, OFF(admin_users), "", true},
	{"stats_users", KEY_STRING, OFF(stats_users), "", true},
	{"pool_mode", KEY_POOL_MODE, OFF(pool_mode), "transaction", true},
	{"pool_size", KEY_INT, OFF(pool_size), "20", true, 1, 100000},
	{"max_overflow", KEY_INT, OFF(max_overflow), "30", true, -1, 100000},
	{"pool_timeout", KEY_SECONDS, OFF(pool_timeout), "30", true, 0.001, 86400},
	{"pool_recycle", KEY_SECONDS, OFF(pool_recycle), "1800", true, -1, 1e9},
	{"pool_use_lifo", KEY_BOOL, OFF(pool_use_lifo), "on", true},
	{"client_login_timeout", KEY_SECONDS, OFF(client_login_timeout), "60",
	 true, 0, 86400},
	{"max_prepared_statements", KEY_INT, OFF(max_prepared_statements), "100",
	 true, 0, 100000},
	{"session_state", KEY_SESSION_STATE, OFF(session_state), "pin", true},
	{"max_client_conn", KEY_INT, OFF(max_client_conn), "10000", false, 1,
	 1000000},
	{"max_pools", KEY_INT, OFF(max_pools), "1000", true, 1, 1000000},
	{"max_packet_size", KEY_INT, OFF(max_packet_size), "268435456", true,
	 65536, 1073741824},
	{"server_connect_timeout", KEY_SECONDS, OFF(server_connect_timeout), "5",
	 true, 0.1, 3600},
	/* PgBouncer's timeouts, 0 = off; a reload applies them to everyone */
	{"idle_transaction_timeout", KEY_SECONDS, OFF(idle_transaction_timeout),
	 "0", true, 0, 86400 * 365},
	{"query_timeout", KEY_SECONDS, OFF(query_timeout), "0", true, 0,
	 86400 * 365},
	{"client_idle_timeout", KEY_SECONDS, OFF(client_idle_timeout), "0", true,
	 0, 86400 * 365},
	/* TCP options of the client and server sockets made after a reload */
	{"tcp_keepalive", KEY_BOOL, OFF(tcp_keepalive), "on", true},
	{"tcp_keepidle", KEY_INT, OFF(tcp_keepidle), "0", true, 0, 32767},
	{"tcp_keepintvl", KEY_INT, OFF(tcp_keepintvl), "0", true, 0, 32767},
	{"tcp_keepcnt", KEY_INT, OFF(tcp_keepcnt), "0", true, 0, 127},
	{"tcp_user_timeout", KEY_INT, OFF(tcp_user_timeout), "0", true, 0,
	 INT_MAX},
	/* the listening TCP socket's TCP_DEFER_ACCEPT (main.c), 0 = off */
	{"tcp_defer_accept", KEY_INT, OFF(tcp_defer_accept), "45", true, 0, 3600},
	{"load_balance_hosts", KEY_LOAD_BALANCE, OFF(load_balance_hosts),
	 "least-connections", true},
	{"health_check_interval", KEY_SECONDS, OFF(health_check_interval), "5",
	 true, 0.1, 3600},
	{"health_check_timeout", KEY_SECONDS, OFF(health_check_timeout), "3", true,
	 0.1, 3600},
	{"health_check_rise", KEY_INT, OFF(health_check_rise), "2", true, 1, 100},
	{"max_replica_lag", KEY_SECONDS, OFF(max_replica_lag), "0", true, 0,
	 86400},
	{"so_reuseport", KEY_BOOL, OFF(so_reuseport), "off", false},
	{"peer_id", KEY_INT, OFF(peer_id), "0", false, 0, 16383},
	{"http_listen", KEY_STRING, OFF(http_listen), "", true},
	{"report_interval", KEY_SECONDS, OFF(report_interval), "10", true, 0,
	 86400},
	{"stats_period", KEY_SECONDS, OFF(stats_period), "60", true, 1, 86400},
	{"http_metrics_databases", KEY_STRING, OFF(http_metrics_databases), "",
	 true},
	{"http_show_statements", KEY_BOOL, OFF(http_show_statements), "off", true},
	{"log_level", KEY_LOG_LEVEL, OFF(log_level), "info", true},
	{"logfile", KEY_STRING, OFF(logfile), "", true},
	{"pidfile", KEY_STRING, OFF(pidfile), "", false},
	/* TLS settings apply to connections made after a reload. */
	{"client_tls_sslmode", KEY_SSLMODE, OFF(client_tls_sslmode), "disable",
	 true},
	{"client_tls_key_file", KEY_STRING, OFF(client_tls_key_file), "", true},
	{"client_tls_cert_file", KEY_STRING, OFF(client_tls_cert_file), "", true},
	{"client_tls_ca_file", KEY_STRING, OFF(client_tls_ca_file), "", true},
	{"server_tls_sslmode", KEY_SSLMODE, OFF(server_tls_sslmode), "prefer",
	 true},
	{"server_tls_ca_file", KEY_STRING, OFF(server_tls_ca_file), "", true},
	{"server_tls_key_file", KEY_STRING, OFF(server_tls_key_file), "", true},
	{"server_tls_cert_file", KEY_STRING, OFF(server_tls_cert_file), "", true},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

_Static_assert(NKEYS <= CONFIG_MAX_KEYS, "CONFIG_MAX_KEYS is too small");

static const char *const sslmode_names[] = {
	[SSLMODE_DISABLE] = "disable",	   [SSLMODE_ALLOW] = "allow",
	[SSLMODE_PREFER] = "prefer",	   [SSLMODE_REQUIRE] = "require",
	[SSLMODE_VERIFY_CA] = "verify-ca", [SSLMODE_VERIFY_FULL] = "verify-full",
};

/* State of one config_load. */
typedef struct LoadState
{
	Config *cfg;
	char   *err; /* first error, "KEY: message" */
	size_t	errlen;
	bool	failed;
	FILE   *file;
	int		line;	  /* line of the text last handed to inih */
	int		too_long; /* a line longer than inih takes: its length limit */
} LoadState;

static bool
parse_number(const KeyDef *k, const char *value, double *out)
{
	char  *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (errno != 0 || end == value || *end != '\0' || isnan(v))
		return false;
	if (k->type == KEY_INT && v != floor(v))
		return false;
	/* -1 means "none" for pool_recycle and max_overflow */
	if (v == -1 && k->min == -1)
	{
		*out = v;
		return true;
	}
	if (v < k->min || v > k->max)
		return false;
	*out = v;
	return true;
}

/* Store value for key k into cfg; false with a message if it is invalid. */
static bool
set_key(Config *cfg, const KeyDef *k, const char *value, char *msg,
		size_t msglen)
{
	void  *field = (char *) cfg + k->offset;
	double num;

	switch (k->type)
	{
		case KEY_STRING:
			free(*(char **) field);
			*(char **) field = xstrdup(value);
			return true;
		case KEY_INT:
		case KEY_SECONDS:
			if (!parse_number(k, value, &num))
			{
				snprintf(msg, msglen,
						 "invalid value \"%s\" (expected %s from %g to %g%s)",
						 value, k->type == KEY_INT ? "an integer" : "seconds",
						 k->min == -1 ? 0 : k->min, k->max,
						 k->min == -1 ? ", or -1" : "");
				return false;
			}
			if (k->type == KEY_INT)
				*(int *) field = (int) num;
			else
				*(double *) field = num;
			return true;
		case KEY_POOL_MODE:
			if (strcasecmp(value, "transaction") == 0)
				*(PoolMode *) field = POOL_TRANSACTION;
			else if (strcasecmp(value, "session") == 0)
				*(PoolMode *) field = POOL_SESSION;
			else
			{
				snprintf(
					msg, msglen,
					"invalid value \"%s\" (expected transaction or session)",
					value);
				return false;
			}
			return true;
		case KEY_AUTH_TYPE:
			if (strcasecmp(value, "trust") == 0)
				*(AuthType *) field = AUTH_TRUST;
			else if (strcasecmp(value, "md5") == 0)
				*(AuthType *) field = AUTH_MD5;
			else if (strcasecmp(value, "scram-sha-256") == 0)
				*(AuthType *) field = AUTH_SCRAM_SHA_256;
			else
			{
				snprintf(msg, msglen,
						 "invalid value \"%s\" (expected trust, md5 or "
						 "scram-sha-256)",
						 value);
				return false;
			}
			return true;
		case KEY_LOG_LEVEL:
			if (!log_level_parse(value, (LogLevel *) field))
			{
				snprintf(
					msg, msglen,
					"invalid value \"%s\" (expected error, warning, info or debug)",
					value);
				return false;
			}
			return true;
		case KEY_SESSION_STATE:
			if (strcasecmp(value, "pin") == 0)
				*(SessionStateMode *) field = SESSION_STATE_PIN;
			else if (strcasecmp(value, "error") == 0)
				*(SessionStateMode *) field = SESSION_STATE_ERROR;
			else
			{
				snprintf(msg, msglen,
						 "invalid value \"%s\" (expected pin or error)",
						 value);
				return false;
			}
			return true;
		case KEY_BOOL:
			if (strcasecmp(value, "on") == 0 ||
				strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
				strcasecmp(value, "yes") == 0)
				*(bool *) field = true;
			else if (strcasecmp(value, "off") == 0 ||
					 strcasecmp(value, "false") == 0 ||
					 strcmp(value, "0") == 0 || strcasecmp(value, "no") == 0)
				*(bool *) field = false;
			else
			{
				snprintf(msg, msglen,
						 "invalid value \"%s\" (expected on or off)", value);
				return false;
			}
			return true;
		case KEY_LOAD_BALANCE:
			if (strcasecmp(value, "least-connections") == 0)
				*(LoadBalance *) field = LB_LEAST_CONNECTIONS;
			else if (strcasecmp(value, "round-robin") == 0)
				*(LoadBalance *) field = LB_ROUND_ROBIN;
			else if (strcasecmp(value, "disable") == 0)
				*(LoadBalance *) field = LB_DISABLE;
			else
			{
				snprintf(msg, msglen,
						 "invalid value \"%s\" (expected least-connections, "
						 "round-robin or disable)",
						 value);
				return false;
			}
			return true;
		case KEY_SSLMODE:
			for (size_t i = 0; i < sizeof(sslmode_names) / sizeof(char *); i++)
			{
				if (strcasecmp(value, sslmode_names[i]) == 0)
				{
					*(SslMode *) field = (SslMode) i;
					return true;
				}
			}
			snprintf(msg, msglen,
					 "invalid value \"%s\" (expected disable, allow, prefer, "
					 "require, verify-ca or verify-full)",
					 value);
			return false;
		default:
			snprintf(msg, msglen, "internal error: key type %d", k->type);
			return false;
	}
}

static const char *const target_names[] = {
	[TSA_ANY] = "any",
	[TSA_READ_WRITE] = "read-write",
	[TSA_READ_ONLY] = "read-only",
	[TSA_PRIMARY] = "primary",
	[TSA_STANDBY] = "standby",
	[TSA_PREFER_STANDBY] = "prefer-standby",
};

const char *
target_attrs_to_str(TargetAttrs t)
{
	return t <= TSA_PREFER_STANDBY ? target_names[t] : "unknown";
}

const char *
load_balance_to_str(LoadBalance lb)
{
	switch (lb)
	{
		case LB_LEAST_CONNECTIONS:
			return "least-connections";
		case LB_ROUND_ROBIN:
			return "round-robin";
		case LB_DISABLE:
			return "disable";
	}
	return "unknown";
}

static const KeyDef *
find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
	{
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

/*
 * key=value of a pool setting in a [databases] or [users] line, parsed as
 * the [pooler] key of that name is.  False (msg set) if key is one but its
 * value is wrong; *known tells whether key is one at all.
 */
static bool
parse_override(PoolSettings *ovr, const char *key, const char *value,
			   bool *known, char *msg, size_t msglen)
{
	static const struct
	{
		const char *name;
		unsigned	bit;
	} settings[] = {
		{"pool_size", OVR_POOL_SIZE},		{"max_overflow", OVR_MAX_OVERFLOW},
		{"pool_timeout", OVR_POOL_TIMEOUT}, {"pool_recycle", OVR_POOL_RECYCLE},
		{"pool_mode", OVR_POOL_MODE},
	};
	Config tmp;

	*known = false;
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
	{
		const KeyDef *k;

		if (strcmp(key, settings[i].name) != 0)
			continue;
		*known = true;
		k = find_key(key);
		memset(&tmp, 0, sizeof(tmp));
		if (!set_key(&tmp, k, value, msg, msglen))
			return false;
		switch (settings[i].bit)
		{
			case OVR_POOL_SIZE:
				ovr->pool_size = tmp.pool_size;
				break;
			case OVR_MAX_OVERFLOW:
				ovr->max_overflow = tmp.max_overflow;
				break;
			case OVR_POOL_TIMEOUT:
				ovr->pool_timeout = tmp.pool_timeout;
				break;
			case OVR_POOL_RECYCLE:
				ovr->pool_recycle = tmp.pool_recycle;
				break;
			case OVR_POOL_MODE:
				ovr->pool_mode = tmp.pool_mode;
				break;
		}
		ovr->set |= settings[i].bit;
		return true;
	}
	return true;
}

/*
 * The next key=value of a line of "key=value key='quoted value' ...", or
 * false at its end; false with msg set if it is malformed.
 */
static bool
next_pair(const char **pp, char *key, size_t keylen, char *val, size_t vallen,
		  char *msg, size_t msglen)
{
	const char *p = *pp;
	size_t		kl = 0;
	size_t		vl = 0;

	msg[0] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return false;
	while (*p && *p != '=' && *p != ' ' && kl < keylen - 1)
		key[kl++] = *p++;
	key[kl] = '\0';
	if (*p != '=')
	{
		snprintf(msg, msglen, "expected key=value, found \"%s\"", key);
		return false;
	}
	p++;
	if (*p == '\'')
	{
		p++;
		while (*p && *p != '\'' && vl < vallen - 1)
			val[vl++] = *p++;
		if (*p != '\'')
		{
			snprintf(msg, msglen, "unterminated quoted value for %s", key);
			return false;
		}
		p++;
	}
	else
	{
		while (*p && *p != ' ' && *p != '\t' && vl < vallen - 1)
			val[vl++] = *p++;
	}
	val[vl] = '\0';
	*pp = p;
	return true;
}

/* Split a comma-separated list into a malloc'd array; returns its length. */
static int
split_list(const char *s, char ***out)
{
	int			n = 1;
	const char *p;
	char	  **v;
	int			i = 0;

	for (p = s; *p; p++)
		n += *p == ',';
	v = calloc((size_t) n, sizeof(char *));
	if (v == NULL)
		fatal("out of memory");
	for (p = s;; p++)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		char	   *item = malloc(len + 1);

		if (item == NULL)
			fatal("out of memory");
		memcpy(item, p, len);
		item[len] = '\0';
		v[i++] = item;
		if (end == NULL)
			break;
		p = end;
	}
	*out = v;
	return n;
}

static void
free_list(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * Parse "host=... port=... dbname=... target_session_attrs=... pool_size=..."
 * into db.  Values may be single-quoted.  host and port take libpq's lists:
 * host=a,b,c with one port or one per host.
 */
static bool
parse_db(DbConfig *db, const char *spec, char *msg, size_t msglen)
{
	const char *p = spec;
	char		key[64];
	char		val[1024];
	char	  **ports = NULL;
	int			nports;

	while (next_pair(&p, key, sizeof(key), val, sizeof(val), msg, msglen))
	{
		char **field = NULL;
		bool   known;

		if (strcmp(key, "host") == 0)
			field = &db->host;
		else if (strcmp(key, "port") == 0)
			field = &db->port;
		else if (strcmp(key, "dbname") == 0)
			field = &db->dbname;
		else if (strcmp(key, "user") == 0)
			field = &db->user;
		else if (strcmp(key, "password") == 0)
			field = &db->password;
		else if (strcmp(key, "target_session_attrs") == 0)
		{
			size_t i;

			for (i = 0; i < sizeof(target_names) / sizeof(char *); i++)
			{
				if (strcmp(val, target_names[i]) == 0)
					break;
			}
			if (i == sizeof(target_names) / sizeof(char *))
			{
				snprintf(msg, msglen,
						 "target_session_attrs: invalid value \"%.64s\" "
						 "(expected any, read-write, read-only, primary, "
						 "standby or prefer-standby)",
						 val);
				return false;
			}
			db->target = (TargetAttrs) i;
			continue;
		}
		else
		{
			char omsg[256];

			if (!parse_override(&db->ovr, key, val, &known, omsg,
								sizeof(omsg)))
			{
				snprintf(msg, msglen, "%s: %s", key, omsg);
				return false;
			}
			if (known)
				continue;
			snprintf(
				msg, msglen,
				"unknown connection key \"%s\" (expected host, port, "
				"dbname, user, password, target_session_attrs, pool_size, "
				"max_overflow, pool_timeout, pool_recycle or pool_mode)",
				key);
			return false;
		}
		free(*field);
		*field = xstrdup(val);
	}
	if (msg[0] != '\0')
		return false;
	if (db->dbname == NULL)
		db->dbname = xstrdup(db->name);
	if (db->host == NULL)
		db->host = xstrdup("127.0.0.1");
	if (db->port == NULL)
		db->port = xstrdup("5432");
	db->nhosts = split_list(db->host, &db->hosts);
	nports = split_list(db->port, &ports);
	for (int i = 0; i < db->nhosts; i++)
	{
		if (db->hosts[i][0] == '\0')
		{
			snprintf(msg, msglen, "host: an empty name in \"%s\"", db->host);
			free_list(ports, nports);
			return false;
		}
	}
	if (db->nhosts > CONFIG_MAX_HOSTS)
	{
		/* the pool keeps its hosts' eligibility in a 64-bit mask */
		snprintf(msg, msglen, "host: %d hosts, at most %d in one entry",
				 db->nhosts, CONFIG_MAX_HOSTS);
		free_list(ports, nports);
		return false;
	}
	if (nports != 1 && nports != db->nhosts)
	{
		snprintf(msg, msglen,
				 "port: %d ports for %d hosts (give one port, or one per "
				 "host)",
				 nports, db->nhosts);
		free_list(ports, nports);
		return false;
	}
	db->ports = calloc((size_t) db->nhosts, sizeof(char *));
	if (db->ports == NULL)
		fatal("out of memory");
	for (int i = 0; i < db->nhosts; i++)
		db->ports[i] = xstrdup(ports[nports == 1 ? 0 : i]);
	free_list(ports, nports);
	return true;
}

/* A [users] line: pool settings only. */
static bool
parse_user(UserConfig *u, const char *spec, char *msg, size_t msglen)
{
	const char *p = spec;
	char		key[64];
	char		val[256];

	while (next_pair(&p, key, sizeof(key), val, sizeof(val), msg, msglen))
	{
		bool known;
		char omsg[256];

		if (!parse_override(&u->ovr, key, val, &known, omsg, sizeof(omsg)))
		{
			snprintf(msg, msglen, "%s: %s", key, omsg);
			return false;
		}
		if (!known)
		{
			snprintf(msg, msglen,
					 "unknown key \"%s\" (expected pool_size, max_overflow, "
					 "pool_timeout, pool_recycle or pool_mode)",
					 key);
			return false;
		}
	}
	return msg[0] == '\0';
}

/* A [peers] line: "ID = host=... port=...". */
static bool
parse_peer(PeerConfig *peer, const char *id, const char *spec, char *msg,
		   size_t msglen)
{
	const char *p = spec;
	char		key[64];
	char		val[256];
	char	   *end;
	long		n;

	n = strtol(id, &end, 10);
	if (*id == '\0' || *end != '\0' || n < 1 || n > 16383)
	{
		snprintf(msg, msglen, "a peer is named by its peer_id (1 to 16383)");
		return false;
	}
	peer->id = (int) n;
	while (next_pair(&p, key, sizeof(key), val, sizeof(val), msg, msglen))
	{
		char **field;

		if (strcmp(key, "host") == 0)
			field = &peer->host;
		else if (strcmp(key, "port") == 0)
			field = &peer->port;
		else
		{
			snprintf(msg, msglen, "unknown key \"%s\" (expected host or port)",
					 key);
			return false;
		}
		free(*field);
		*field = xstrdup(val);
	}
	if (msg[0] != '\0')
		return false;
	if (peer->host == NULL || peer->port == NULL)
	{
		snprintf(msg, msglen, "a peer needs host and port");
		return false;
	}
	return true;
}

/*
 * The pool settings for user's pools of db: the [users] line's, else the
 * [databases] entry's, else [pooler]'s, setting by setting.
 */
PoolSettings
config_pool_settings(const Config *cfg, const DbConfig *db, const char *user)
{
	PoolSettings s = {cfg->pool_size,	 cfg->max_overflow, cfg->pool_timeout,
					  cfg->pool_recycle, cfg->pool_mode,	0};
	const PoolSettings *layers[2] = {db ? &db->ovr : NULL, NULL};

	for (const UserConfig *u = cfg->users; u; u = u->next)
	{
		if (user && strcmp(u->name, user) == 0)
			layers[1] = &u->ovr;
	}
	for (int i = 0; i < 2; i++)
	{
		const PoolSettings *o = layers[i];

		if (o == NULL)
			continue;
		if (o->set & OVR_POOL_SIZE)
			s.pool_size = o->pool_size;
		if (o->set & OVR_MAX_OVERFLOW)
			s.max_overflow = o->max_overflow;
		if (o->set & OVR_POOL_TIMEOUT)
			s.pool_timeout = o->pool_timeout;
		if (o->set & OVR_POOL_RECYCLE)
			s.pool_recycle = o->pool_recycle;
		if (o->set & OVR_POOL_MODE)
			s.pool_mode = o->pool_mode;
	}
	return s;
}

static int
config_ini_line(void *user, const char *section, const char *name,
				const char *value)
{
	LoadState *st = (LoadState *) user;
	char	   msg[512];

	if (st->failed)
		return 1; /* report the first error only */

	if (strcmp(section, "pooler") == 0)
	{
		for (size_t i = 0; i < NKEYS; i++)
		{
			if (strcmp(keys[i].name, name) == 0)
			{
				st->cfg->key_line[i] = st->line;
				if (set_key(st->cfg, &keys[i], value, msg, sizeof(msg)))
					return 1;
				snprintf(st->err, st->errlen, "%s: %s", name, msg);
				st->failed = true;
				return 0;
			}
		}
		snprintf(st->err, st->errlen, "%s: unknown key in [pooler]", name);
	}
	else if (strcmp(section, "databases") == 0)
	{
		DbConfig *db = calloc(1, sizeof(DbConfig));

		if (db == NULL)
			fatal("out of memory");
		db->name = xstrdup(name);
		if (config_find_db(st->cfg, name) != NULL)
			snprintf(st->err, st->errlen, "%s: database defined twice", name);
		else if (!parse_db(db, value, msg, sizeof(msg)))
			snprintf(st->err, st->errlen, "%s: %s", name, msg);
		else
		{
			db->next = st->cfg->databases;
			st->cfg->databases = db;
			return 1;
		}
		config_free_db(db);
	}
	else if (strcmp(section, "users") == 0)
	{
		UserConfig *u = calloc(1, sizeof(UserConfig));

		if (u == NULL)
			fatal("out of memory");
		u->name = xstrdup(name);
		if (!parse_user(u, value, msg, sizeof(msg)))
			snprintf(st->err, st->errlen, "%s: %s", name, msg);
		else
		{
			u->next = st->cfg->users;
			st->cfg->users = u;
			return 1;
		}
		free(u->name);
		free(u);
	}
	else if (strcmp(section, "peers") == 0)
	{
		PeerConfig *peer = calloc(1, sizeof(PeerConfig));

		if (peer == NULL)
			fatal("out of memory");
		if (!parse_peer(peer, name, value, msg, sizeof(msg)))
			snprintf(st->err, st->errlen, "[peers] %s: %s", name, msg);
		else
		{
			peer->next = st->cfg->peers;
			st->cfg->peers = peer;
			return 1;
		}
		free(peer->host);
		free(peer->port);
		free(peer);
	}
	else
		snprintf(st->err, st->errlen,
				 "%s: key in unknown section [%s] (expected [databases], "
				 "[users], [peers] or [pooler])",
				 name, section);
	st->failed = true;
	return 0;
}

/* Free one [databases] entry. */
void
config_free_db(DbConfig *db)
{
	free(db->name);
	free(db->host);
	free(db->port);
	if (db->hosts)
		free_list(db->hosts, db->nhosts);
	if (db->ports)
		free_list(db->ports, db->nhosts);
	free(db->dbname);
	free(db->user);
	free(db->password);
	free(db);
}

void
config_free(Config *cfg)
{
	DbConfig   *db = cfg->databases;
	UserConfig *u = cfg->users;
	PeerConfig *peer = cfg->peers;

	for (size_t i = 0; i < NKEYS; i++)
	{
		if (keys[i].type == KEY_STRING)
			free(*(char **) ((char *) cfg + keys[i].offset));
	}
	free(cfg->path);
	while (db)
	{
		DbConfig *next = db->next;

		config_free_db(db);
		db = next;
	}
	while (u)
	{
		UserConfig *next = u->next;

		free(u->name);
		free(u);
		u = next;
	}
	while (peer)
	{
		PeerConfig *next = peer->next;

		free(peer->host);
		free(peer->port);
		free(peer);
		peer = next;
	}
	memset(cfg, 0, sizeof(*cfg));
}

/*
 * fgets for inih, counting the lines it reads.  inih takes lines of at most
 * num - 1 characters and would read the rest of a longer one as a line of
 * its own (a [databases] entry cut in two: a confusing error, or a key
 * made of its tail), so such a line stops the parse with an error of its
 * own.
 *
 * Leading blanks are dropped here.  inih reads a line that begins with one
 * as the continuation of the key above: an indented "pool_size = 5" after
 * "unix_socket_dir = /tmp" would set unix_socket_dir to "pool_size = 5",
 * silently, and a continued value skips inih's inline-comment rule, so
 * SHOW CONFIG could show a value that does not load again as itself (the
 * config fuzzer found "t  ;c" that way).  Without them an indented line
 * is the line it looks like, as in postgresql.conf and pgbouncer.ini.
 */
static char *
read_counting_lines(char *str, int num, void *stream)
{
	LoadState *st = (LoadState *) stream;
	char	  *s = fgets(str, num, st->file);
	size_t	   blanks;

	if (s == NULL)
		return NULL;
	st->line++;
	if (strchr(s, '\n') == NULL && strlen(s) == (size_t) num - 1)
	{
		int c = fgetc(st->file);

		if (c != EOF && c != '\n')
		{
			st->too_long = num - 1;
			return NULL; /* the end of the file, as far as inih knows */
		}
	}
	blanks = strspn(s, " \t");
	if (blanks > 0)
		memmove(s, s + blanks, strlen(s + blanks) + 1);
	return s;
}

void
config_key_error(const Config *cfg, const char *key, char *err, size_t errlen,
				 const char *fmt, ...)
{
	char	msg[512];
	int		line = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < NKEYS; i++)
	{
		if (strcmp(keys[i].name, key) == 0)
			line = cfg->key_line[i];
	}
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s: %s", cfg->path, line, key, msg);
	else
		snprintf(err, errlen, "%s: %s: %s", cfg->path, key, msg);
}

/* Can we read the file named by key, if one is named? */
static bool
check_readable(const Config *cfg, const char *key, const char *file, char *err,
			   size_t errlen)
{
	FILE *f;

	if (file[0] == '\0')
		return true;
	f = fopen(file, "r");
	if (f == NULL)
	{
		config_key_error(cfg, key, err, errlen, "could not read \"%s\": %s",
						 file, strerror(errno));
		return false;
	}
	fclose(f);
	return true;
}

/*
 * The TLS checks that need no OpenSSL: the files a mode needs are named and
 * readable.  tls.c then loads them (and finds a key that does not match).
 */
static bool
check_tls(const Config *cfg, char *err, size_t errlen)
{
	SslMode		mode = cfg->client_tls_sslmode;
	struct stat sb;

	if (mode != SSLMODE_DISABLE && (cfg->client_tls_key_file[0] == '\0' ||
									cfg->client_tls_cert_file[0] == '\0'))
	{
		config_key_error(cfg, "client_tls_sslmode", err, errlen,
						 "%s needs client_tls_key_file and "
						 "client_tls_cert_file",
						 sslmode_to_str(mode));
		return false;
	}
	if (mode >= SSLMODE_VERIFY_CA && cfg->client_tls_ca_file[0] == '\0')
	{
		config_key_error(cfg, "client_tls_sslmode", err, errlen,
						 "%s needs client_tls_ca_file (the CA that signs "
						 "client certificates)",
						 sslmode_to_str(mode));
		return false;
	}
	if ((cfg->server_tls_key_file[0] == '\0') !=
		(cfg->server_tls_cert_file[0] == '\0'))
	{
		const char *key = cfg->server_tls_key_file[0] ? "server_tls_key_file"
													  : "server_tls_cert_file";

		config_key_error(cfg, key, err, errlen,
						 "server_tls_key_file and server_tls_cert_file go "
						 "together");
		return false;
	}
	if (!check_readable(cfg, "client_tls_key_file", cfg->client_tls_key_file,
						err, errlen) ||
		!check_readable(cfg, "client_tls_cert_file", cfg->client_tls_cert_file,
						err, errlen) ||
		!check_readable(cfg, "client_tls_ca_file", cfg->client_tls_ca_file,
						err, errlen) ||
		!check_readable(cfg, "server_tls_ca_file", cfg->server_tls_ca_file,
						err, errlen) ||
		!check_readable(cfg, "server_tls_key_file", cfg->server_tls_key_file,
						err, errlen) ||
		!check_readable(cfg, "server_tls_cert_file", cfg->server_tls_cert_file,
						err, errlen))
		return false;

	/*
	 * libpq refuses a private key that others may read (0600 at most, or
	 * 0640 if root owns it): say so now rather than at every login.
	 */
	if (cfg->server_tls_key_file[0] != '\0' &&
		stat(cfg->server_tls_key_file, &sb) == 0 &&
		((sb.st_uid == 0 && (sb.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))) ||
		 (sb.st_uid != 0 && (sb.st_mode & (S_IRWXG | S_IRWXO)))))
	{
		config_key_error(cfg, "server_tls_key_file", err, errlen,
						 "\"%s\" has group or world access, which libpq "
						 "refuses (use mode 0600, or 0640 if root owns it)",
						 cfg->server_tls_key_file);
		return false;
	}
	return true;
}

/*
 * "host:port", "[v6 address]:port" or ":port" (every address) into host
 * (empty for every address) and port.  False if it is none of those.
 */
bool
config_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon;
	size_t		hl;
	char	   *end;
	long		p;

	if (s[0] == '[')
	{
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return false;
		hl = (size_t) (close - s - 1);
		s++;
		colon = close + 1;
	}
	else
	{
		colon = strrchr(s, ':');
		if (colon == NULL)
			return false;
		hl = (size_t) (colon - s);
		if (memchr(s, ':', hl) != NULL)
			return false; /* a bare IPv6 address: needs brackets */
	}
	if (hl >= hostlen)
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
		return false;
	*port = (int) p;
	return true;
}

/*
 * http_listen is host:port, and every database http_metrics_databases names
 * is a [databases] entry.
 */
static bool
check_http(const Config *cfg, char *err, size_t errlen)
{
	char		host[256];
	int			port;
	const char *p = cfg->http_metrics_databases;

	if (cfg->http_listen[0] != '\0' &&
		!config_split_hostport(cfg->http_listen, host, sizeof(host), &port))
	{
		config_key_error(cfg, "http_listen", err, errlen,
						 "invalid value \"%s\" (expected host:port, "
						 "[IPv6 address]:port or *:port)",
						 cfg->http_listen);
		return false;
	}
	while (*p)
	{
		char   name[256];
		size_t n = 0;

		while (*p == ' ' || *p == ',')
			p++;
		while (*p && *p != ',' && *p != ' ' && n < sizeof(name) - 1)
			name[n++] = *p++;
		name[n] = '\0';
		if (n > 0 && config_find_db(cfg, name) == NULL)
		{
			config_key_error(cfg, "http_metrics_databases", err, errlen,
							 "\"%s\" is not in [databases]", name);
			return false;
		}
	}
	return true;
}

/* Is name in the comma-separated list? */
bool
config_list_has(const char *list, const char *name)
{
	size_t len = strlen(name);

	while (*list)
	{
		const char *end;

		while (*list == ' ' || *list == ',')
			list++;
		end = list;
		while (*end && *end != ',' && *end != ' ')
			end++;
		if ((size_t) (end - list) == len && strncmp(list, name, len) == 0)
			return true;
		list = end;
	}
	return false;
}

/*
 * Read path into cfg (defaults first).  On failure, err holds
 * "PATH:LINE: KEY: message" and cfg is left empty.
 */
bool
config_load(const char *path, Config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	bool  ok;

	if (f == NULL)
	{
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: could not open: %s", path, strerror(errno));
		return false;
	}
	ok = config_load_stream(f, path, cfg, err, errlen);
	fclose(f);
	return ok;
}

/*
 * config_load of what f holds (path names it in errors); f stays open.
 * The fuzzer (tests/fuzz/fuzz_config.c) reads from memory through this.
 */
bool
config_load_stream(FILE *f, const char *path, Config *cfg, char *err,
				   size_t errlen)
{
	LoadState st;
	char	  msg[600] = "";
	int		  line;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
	{
		if (!set_key(cfg, &keys[i], keys[i].def, msg, sizeof(msg)))
			fatal("bad default for %s: %s", keys[i].name, msg);
	}
	cfg->path = xstrdup(path);

	st.cfg = cfg;
	st.err = msg;
	st.errlen = sizeof(msg);
	st.failed = false;
	st.line = 0;
	st.too_long = 0;
	st.file = f;
	line = ini_parse_stream(read_counting_lines, &st, config_ini_line, &st);
	if (line == 0 && st.too_long)
	{
		line = st.line;
		st.failed = true;
		snprintf(msg, sizeof(msg),
				 "line longer than %d characters, the most the "
				 "configuration parser (inih) takes",
				 st.too_long);
	}
	if (line != 0)
	{
		if (!st.failed)
			snprintf(msg, sizeof(msg), "syntax error");
		snprintf(err, errlen, "%s:%d: %s", path, line, msg);
		config_free(cfg);
		return false;
	}
	if (cfg->auth_type != AUTH_TRUST && cfg->auth_file[0] == '\0')
	{
		snprintf(err, errlen, "%s: auth_file: needed for auth_type = %s", path,
				 auth_type_to_str(cfg->auth_type));
		config_free(cfg);
		return false;
	}
	if (cfg->listen_addr[0] == '\0' && cfg->unix_socket_dir[0] == '\0')
	{
		snprintf(
			err, errlen,
			"%s: listen_addr: neither listen_addr nor unix_socket_dir is set",
			path);
		config_free(cfg);
		return false;
	}
	if (!check_tls(cfg, err, errlen) || !check_http(cfg, err, errlen))
	{
		config_free(cfg);
		return false;
	}
	return true;
}

DbConfig *
config_find_db(const Config *cfg, const char *name)
{
	for (DbConfig *db = cfg->databases; db; db = db->next)
	{
		if (strcmp(db->name, name) == 0)
			return db;
	}
	return NULL;
}

/* Is user listed in admin_users? */
bool
config_is_admin(const Config *cfg, const char *user)
{
	return config_list_has(cfg->admin_users, user);
}

/* Is user listed in stats_users (read-only SHOW commands)? */
bool
config_is_stats_user(const Config *cfg, const char *user)
{
	return config_list_has(cfg->stats_users, user);
}

const char *
pool_mode_to_str(PoolMode mode)
{
	return mode == POOL_SESSION ? "session" : "transaction";
}

const char *
auth_type_to_str(AuthType type)
{
	switch (type)
	{
		case AUTH_TRUST:
			return "trust";
		case AUTH_MD5:
			return "md5";
		case AUTH_SCRAM_SHA_256:
			return "scram-sha-256";
	}
	return "unknown";
}

const char *
sslmode_to_str(SslMode mode)
{
	if ((size_t) mode >= sizeof(sslmode_names) / sizeof(char *))
		return "unknown";
	return sslmode_names[mode];
}

/* The default of the i-th key of config_describe, as written in a file. */
const char *
config_key_default(int i)
{
	if (i < 0 || (size_t) i >= NKEYS)
		return NULL;
	return keys[i].def;
}

bool
config_describe(const Config *cfg, int i, const char **key, char *value,
				size_t valuelen, bool *reloadable)
{
	const KeyDef *k;
	const void	 *field;

	if (i < 0 || (size_t) i >= NKEYS)
		return false;
	k = &keys[i];
	field = (const char *) cfg + k->offset;
	*key = k->name;
	*reloadable = k->reloadable;
	switch (k->type)
	{
		case KEY_STRING:
			snprintf(value, valuelen, "%s", *(char *const *) field);
			break;
		case KEY_INT:
			snprintf(value, valuelen, "%d", *(const int *) field);
			break;
		case KEY_SECONDS:
			snprintf(value, valuelen, "%g", *(const double *) field);
			break;
		case KEY_POOL_MODE:
			snprintf(value, valuelen, "%s",
					 pool_mode_to_str(*(const PoolMode *) field));
			break;
		case KEY_AUTH_TYPE:
			snprintf(value, valuelen, "%s",
					 auth_type_to_str(*(const AuthType *) field));
			break;
		case KEY_LOG_LEVEL:
			snprintf(value, valuelen, "%s",
					 log_level_to_str(*(const LogLevel *) field));
			break;
		case KEY_SESSION_STATE:
			snprintf(value, valuelen, "%s",
					 *(const SessionStateMode *) field == SESSION_STATE_PIN
						 ? "pin"
						 : "error");
			break;
		case KEY_SSLMODE:
			snprintf(value, valuelen, "%s",
					 sslmode_to_str(*(const SslMode *) field));
			break;
		case KEY_BOOL:
			snprintf(value, valuelen, "%s",
					 *(const bool *) field ? "on" : "off");
			break;
		case KEY_LOAD_BALANCE:
			snprintf(value, valuelen, "%s",
					 load_balance_to_str(*(const LoadBalance *) field));
			break;
	}
	return true;
}
