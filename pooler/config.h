/*
 * config.h
 *		The INI configuration: [databases] and [pooler].
 */
#ifndef APS_CONFIG_H
#define APS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

typedef enum PoolMode
{
	POOL_TRANSACTION, /* server attached per transaction */
	POOL_SESSION	  /* server attached per client connection */
} PoolMode;

typedef enum AuthType
{
	AUTH_TRUST,		   /* no password */
	AUTH_MD5,		   /* md5 against auth_file (SCRAM for a SCRAM secret) */
	AUTH_SCRAM_SHA_256 /* SCRAM-SHA-256 against auth_file */
} AuthType;

/* Session state in transaction pooling (LISTEN, temp tables, ...). */
typedef enum SessionStateMode
{
	SESSION_STATE_PIN,	/* keep the client on its server while it lasts */
	SESSION_STATE_ERROR /* close the client with an error */
} SessionStateMode;

/* libpq's sslmode names, in order of strictness (comparisons rely on it). */
typedef enum SslMode
{
	SSLMODE_DISABLE,	/* no TLS */
	SSLMODE_ALLOW,		/* TLS if the other side insists */
	SSLMODE_PREFER,		/* TLS if the other side offers it */
	SSLMODE_REQUIRE,	/* TLS or no connection */
	SSLMODE_VERIFY_CA,	/* and the peer's certificate is checked */
	SSLMODE_VERIFY_FULL /* and its name too */
} SslMode;

/* Keys whose line in the file is remembered, for errors found after parsing. */
#define CONFIG_MAX_KEYS 64
/* Hosts of one [databases] entry (pool.c keeps them in a 64-bit mask). */
#define CONFIG_MAX_HOSTS 64

/* libpq's target_session_attrs: which hosts of an entry a server may be on. */
typedef enum TargetAttrs
{
	TSA_ANY,		   /* any host that is up */
	TSA_READ_WRITE,	   /* accepts writes: primary, not read-only by default */
	TSA_READ_ONLY,	   /* the opposite */
	TSA_PRIMARY,	   /* not in recovery */
	TSA_STANDBY,	   /* in recovery */
	TSA_PREFER_STANDBY /* a standby if one is usable, else the primary */
} TargetAttrs;

/* load_balance_hosts: which eligible host gets the next server. */
typedef enum LoadBalance
{
	LB_LEAST_CONNECTIONS, /* fewest servers in use */
	LB_ROUND_ROBIN,		  /* in turn */
	LB_DISABLE			  /* the first in the entry's order */
} LoadBalance;

/*
 * QueuePool settings a [databases] entry or a [users] line may set for its
 * pools; the OVR_ bits say which are set.  config_pool_settings resolves
 * them: user over database over [pooler].
 */
#define OVR_POOL_SIZE	 0x01
#define OVR_MAX_OVERFLOW 0x02
#define OVR_POOL_TIMEOUT 0x04
#define OVR_POOL_RECYCLE 0x08
#define OVR_POOL_MODE	 0x10

typedef struct PoolSettings
{
	int		 pool_size;
	int		 max_overflow; /* -1 = no limit */
	double	 pool_timeout;
	double	 pool_recycle; /* -1 = none */
	PoolMode pool_mode;
	unsigned set; /* OVR_* given (in an override) */
} PoolSettings;

/* One [databases] entry: how to reach a server database. */
typedef struct DbConfig
{
	char			*name;	 /* name clients connect to */
	char			*host;	 /* as written: host, or host1,host2,... */
	char			*port;	 /* as written: one port, or one per host */
	int				 nhosts; /* hosts[] and ports[], split */
	char		   **hosts;
	char		   **ports;
	char			*dbname;   /* server database name */
	char			*user;	   /* forced server user, or NULL */
	char			*password; /* server password, or NULL */
	TargetAttrs		 target;   /* target_session_attrs */
	PoolSettings	 ovr;	   /* its own pool settings (ovr.set says which) */
	bool			 split_reported; /* run time: two primaries were logged */
	struct DbConfig *next;
} DbConfig;

/* One [users] line: pool settings for that user's pools. */
typedef struct UserConfig
{
	char			  *name;
	PoolSettings	   ovr;
	struct UserConfig *next;
} UserConfig;

/* One [peers] line: another instance, for cancel requests it issued. */
typedef struct PeerConfig
{
	int				   id;
	char			  *host;
	char			  *port;
	struct PeerConfig *next;
} PeerConfig;

typedef struct Config
{
	char	*listen_addr;	  /* TCP address, empty = no TCP */
	int		 listen_port;	  /* TCP port, also names the Unix socket */
	char	*unix_socket_dir; /* empty = no Unix socket */
	AuthType auth_type;
	char	*auth_file;	  /* "user" "password" lines */
	char	*admin_users; /* comma-separated */
	PoolMode pool_mode;
	int		 pool_size;			   /* QueuePool pool_size */
	int		 max_overflow;		   /* QueuePool max_overflow, -1 = no cap */
	double	 pool_timeout;		   /* seconds a client may wait for a server */
	double	 pool_recycle;		   /* server age limit in seconds, -1 = none */
	bool	 pool_use_lifo;		   /* hand out the idle server released last */
	int		 max_client_conn;	   /* client connections accepted */
	int		 max_pools;			   /* (database, user) pools at once */
	int		 max_packet_size;	   /* longest client message held whole */
	double	 client_login_timeout; /* seconds to log in, 0 = no limit */
	int		 max_prepared_statements;		 /* per server; 0 = refuse them */
	SessionStateMode session_state;			 /* transaction mode */
	double			 server_connect_timeout; /* seconds to log into a server */
	char			*http_listen; /* host:port of /metrics etc., empty = off */
	LoadBalance		 load_balance_hosts;
	double			 health_check_interval; /* seconds between checks */
	double			 health_check_timeout;	/* seconds a check may take */
	int				 health_check_rise; /* good checks before a host is up */
	double			 max_replica_lag;	/* seconds, 0 = no limit */
	bool			 so_reuseport;		/* several instances on one port */
	int				 peer_id;			/* this instance's, 0 = none */
	double		report_interval; /* seconds between report_pool(), 0 off */
	double		stats_period;	 /* seconds SHOW STATS averages are over */
	char	   *http_metrics_databases; /* comma-separated [databases] names */
	LogLevel	log_level;
	char	   *logfile; /* empty = stderr */
	char	   *pidfile; /* empty = none */
	SslMode		client_tls_sslmode;
	char	   *client_tls_key_file;  /* our private key for clients */
	char	   *client_tls_cert_file; /* our certificate (chain) for clients */
	char	   *client_tls_ca_file;	  /* CAs that sign client certificates */
	SslMode		server_tls_sslmode;	  /* libpq sslmode */
	char	   *server_tls_ca_file;	  /* libpq sslrootcert, empty = default */
	char	   *server_tls_key_file;  /* libpq sslkey, empty = default */
	char	   *server_tls_cert_file; /* libpq sslcert, empty = default */
	DbConfig   *databases;
	UserConfig *users;
	PeerConfig *peers;
	char	   *path;					   /* the file read */
	int			key_line[CONFIG_MAX_KEYS]; /* line of each key, 0 = default */

	/* Faults and abuse (timeouts.c; TCP options: client.c, server.c) */
	double idle_transaction_timeout; /* seconds idle in a transaction, 0 off */
	double query_timeout; /* seconds a request may go unanswered, 0 off */
	double client_idle_timeout; /* seconds a client may idle, 0 off */
	bool   tcp_keepalive;		/* SO_KEEPALIVE on client and server sockets */
	int	   tcp_keepidle;	 /* seconds idle before the first probe, 0: OS */
	int	   tcp_keepintvl;	 /* seconds between probes, 0: OS */
	int	   tcp_keepcnt;		 /* probes unanswered before giving up, 0: OS */
	int	   tcp_user_timeout; /* ms data may go unacknowledged, 0: OS */
	int	   tcp_defer_accept; /* s a connection waits for its first bytes */

	/* Security (admin.c, monitor.c) */
	char *stats_users;			/* comma-separated: SHOW commands only */
	bool  http_show_statements; /* statement texts on /api/status */
} Config;

extern bool config_load(const char *path, Config *cfg, char *err,
						size_t errlen) __attribute__((warn_unused_result));
extern bool config_load_stream(FILE *f, const char *path, Config *cfg,
							   char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern void			config_free(Config *cfg);
extern DbConfig	   *config_find_db(const Config *cfg, const char *name);
extern void			config_free_db(DbConfig *db);
extern PoolSettings config_pool_settings(const Config *cfg, const DbConfig *db,
										 const char *user);
extern const char  *target_attrs_to_str(TargetAttrs t);
extern const char  *load_balance_to_str(LoadBalance lb);
extern bool			config_is_admin(const Config *cfg, const char *user);
extern bool			config_is_stats_user(const Config *cfg, const char *user);
extern bool			config_list_has(const char *list, const char *name);
extern bool config_split_hostport(const char *s, char *host, size_t hostlen,
								  int *port);
extern const char *pool_mode_to_str(PoolMode mode);
extern const char *auth_type_to_str(AuthType type);
extern const char *sslmode_to_str(SslMode mode);
/* "PATH:LINE: KEY: message" for a key found wrong after parsing. */
extern void config_key_error(const Config *cfg, const char *key, char *err,
							 size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Key/value pairs for SHOW CONFIG: call with i = 0, 1, ... until false. */
extern bool		   config_describe(const Config *cfg, int i, const char **key,
								   char *value, size_t valuelen, bool *reloadable);
extern const char *config_key_default(int i);

#endif /* APS_CONFIG_H */
