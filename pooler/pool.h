/*
 * pool.h
 *		Pools per (database, user) with SQLAlchemy QueuePool semantics.
 */
#ifndef APS_POOL_H
#define APS_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "client.h"
#include "config.h"
#include "server.h"
#include "stats.h"

TAILQ_HEAD(ServerList, Server);

/* Who reads a pool's peaks, each resetting its own (pool_take_peaks). */
typedef enum PeakReader
{
	PEAK_REPORT,  /* report_pool() to the extension */
	PEAK_HISTORY, /* the dashboard's history */
	PEAK_READERS
} PeakReader;

/* One host of a pool's entry, and the pool's servers there. */
typedef struct PoolHost
{
	struct Host		 *host;
	struct ServerList idle; /* its SV_IDLE servers */
	int				  n_login;
	int				  n_idle;
	int				  n_active;
} PoolHost;

typedef struct Pool
{
	TAILQ_ENTRY(Pool) link;
	TAILQ_ENTRY(Pool) handoff_link; /* in the hand-off list */
	bool			  handoff;		/* idle servers wait for its waiters */
	char			 *dbname;		/* database name clients use */
	char			 *user;			/* client user */
	DbConfig		  db;  /* own copy of the [databases] entry (no hosts) */
	PoolSettings	  set; /* its pool_size, max_overflow, ... */
	int				  nhosts; /* the entry's hosts, in its order */
	PoolHost		 *hosts;
	int				  rr;			 /* round-robin: the last host used */
	bool			  reconfiguring; /* set_hosts is moving servers */
	struct ServerList login;		 /* SV_LOGIN */
	struct ServerList active;		 /* SV_ACTIVE and SV_RESET */
	int				  n_login;		 /* totals over the hosts */
	int				  n_idle;
	int				  n_active;
	struct ClientList waiting; /* FIFO of clients waiting for a server */
	int				  n_waiting;
	struct ClientList login_wait;	/* clients waiting for parameters */
	int				  n_clients;	/* clients logged into this pool */
	int				  nparams;		/* ParameterStatus of the server */
	const char		**param_names;	/* interned (intern.h) */
	const char		**param_values; /* interned */
	double			  empty_since;	/* mono_now() it was last seen unused */
	double			  retry_after;	/* no new logins before (mono_now) */
	struct event	 *retry_timer;	/* opens servers again after that */
	/* statistics */
	uint64_t	 xact_count;
	uint64_t	 query_count;
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
	uint64_t	 timeouts;		 /* 53300 sent */
	uint64_t	 recycled;		 /* servers closed for pool_recycle */
	double		 total_wait;	 /* seconds clients spent waiting */
	uint64_t	 login_failures; /* failed server logins */
	Histogram	 wait_hist;		 /* needing a server -> getting one */
	Histogram	 xact_hist;		 /* server attached -> released */
	ErrorClasses errors;		 /* errors sent to its clients */
	/* the most servers in use / clients waiting since a reader looked */
	int					peak_active[PEAK_READERS];
	int					peak_waiting[PEAK_READERS];
	struct PoolHistory *history; /* the dashboard's last hour, or NULL */
} Pool;

TAILQ_HEAD(PoolList, Pool);

/* Told of a pool about to be freed, with its counters still there. */
typedef void (*PoolFreeFn)(const Pool *p);

extern struct PoolList pools;
extern bool			   pool_paused;

extern Pool		  *pool_get(const char *dbname, const char *user,
							const DbConfig *db);
extern int		   pool_count(void);
extern double	   pool_utilization(const Pool *p);
extern double	   pool_utilization_of(const Pool *p, int in_use);
extern void		   pool_take_peaks(Pool *p, PeakReader who, int *active,
								   int *waiting);
extern void		   pool_check_unused(Pool *p);
extern void		   pool_end_of_pass(void);
extern int		   pool_total(const Pool *p);
extern int		   pool_host_total(const PoolHost *ph);
extern int		   pool_host_capacity(const Pool *p);
extern uint64_t	   pool_eligible(const Pool *p);
extern uint64_t	   pool_hosts_eligible(TargetAttrs		   target,
									   struct Host *const *list, int n);
extern void		   pool_server_added(Server *s);
extern void		   pool_host_changed(struct Host *h);
extern const char *pool_check_user(const struct Host *h, const DbConfig *db);
extern bool		   pool_request(Pool *p, Client *c)
	__attribute__((warn_unused_result));
extern void pool_leave_queue(Client *c);
extern void pool_want_params(Pool *p, Client *c);
extern void pool_release(Server *s);
extern void pool_server_ready(Server *s, const char *const *names,
							  const char *const *values, int n);
extern void pool_login_failed(Server *s, const char *error);
extern void pool_server_gone(Server *s);
extern void pool_set_state(Server *s, ServerState state);
extern void pool_resume_all(void);
extern void pool_refresh_config(void);
extern void pool_set_free_callback(PoolFreeFn fn);

#endif /* APS_POOL_H */
