/*
 * hosts.h
 *		The PostgreSQL hosts behind the [databases] entries: their role
 *		(primary or standby), replay lag and health, from checks of their own.
 */
#ifndef APS_HOSTS_H
#define APS_HOSTS_H

#include <stdbool.h>
#include <sys/queue.h>

#include "config.h"
#include "pgconn.h"

typedef enum HostRole
{
	HOST_ROLE_UNKNOWN, /* not checked yet */
	HOST_ROLE_PRIMARY, /* pg_is_in_recovery() = false */
	HOST_ROLE_STANDBY  /* in recovery */
} HostRole;

typedef struct Host
{
	TAILQ_ENTRY(Host) link;
	char	*host;
	char	*port;
	char	*name;		 /* "host:port", for logs, SHOW HOSTS, metrics */
	int		 refs;		 /* pools that list it, servers on it */
	bool	 up;		 /* not known to be down */
	bool	 banned;	 /* BAN: treated as down until UNBAN */
	HostRole role;		 /* from the last good check */
	bool	 read_only;	 /* default_transaction_read_only is on */
	double	 lag;		 /* seconds of replay lag (standby) */
	double	 lag_bytes;	 /* received but not replayed */
	int		 good;		 /* good checks in a row while down */
	double	 last_check; /* wall clock of the last answer, 0: none */
	char	*last_error; /* why it went down, or NULL */
	double	 down_since; /* wall clock, 0 while up */
	double	 next_check; /* mono_now() of the next check */
	bool	 changed;	 /* to be told to the layer above */
	PgConn	 pc;		 /* the check's own connection */
} Host;

TAILQ_HEAD(HostList, Host);
extern struct HostList hosts;

/*
 * What the layer above hands the hosts: who logs in for a check, and who
 * is told that a host changed (up, down, role, lag past max_replica_lag).
 */
typedef struct HostCallbacks
{
	const char *(*check_user)(const Host *h, const DbConfig *db);
	void (*changed)(Host *h);
} HostCallbacks;

extern void		   hosts_start(const HostCallbacks *cb);
extern void		   hosts_stop(void);
extern Host		  *host_get(const char *host, const char *port);
extern void		   host_unref(Host *h);
extern bool		   host_usable(const Host *h);
extern bool		   host_lag_ok(const Host *h);
extern void		   host_failed(Host *h, const char *why);
extern void		   host_check_soon(Host *h);
extern Host		  *host_find(const char *spec);
extern Host		  *host_find_exact(const char *host, const char *port);
extern void		   host_ban(Host *h, bool ban);
extern void		   hosts_configure(const Config *cfg);
extern const char *host_role_to_str(HostRole role);
extern const char *host_state_to_str(const Host *h);

#endif /* APS_HOSTS_H */
