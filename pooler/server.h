/*
 * server.h
 *		One connection to a PostgreSQL server.
 */
#ifndef APS_SERVER_H
#define APS_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <libpq-fe.h>

#include "config.h"
#include "prepared.h"
#include "request.h"
#include "session.h"
#include "stream.h"

struct Pool;
struct Client;

typedef enum ServerState
{
	SV_LOGIN,  /* libpq is logging in */
	SV_IDLE,   /* in the pool, ready */
	SV_ACTIVE, /* attached to a client */
	SV_RESET   /* running DISCARD ALL before going idle */
} ServerState;

typedef struct Server
{
	TAILQ_ENTRY(Server) link; /* in the pool's list for its state */
	uint64_t	   id;
	struct Pool	  *pool;
	struct Host	  *host; /* where it is (one reference) */
	int			   hidx; /* its index in the pool's hosts, -1 if none */
	ServerState	   state;
	PGconn		  *conn;		 /* owns the socket */
	Stream		   st;			 /* after login */
	bool		   has_stream;	 /* st is set up */
	struct event  *login_ev;	 /* socket readiness during login */
	struct event  *login_timer;	 /* server_connect_timeout */
	struct Client *client;		 /* when SV_ACTIVE */
	double		   created;		 /* mono_now() at connect */
	double		   attached_at;	 /* mono_now() when its client got it, or 0 */
	time_t		   connect_time; /* wall clock at connect */
	int			   backend_pid;
	char		   txn_status; /* from the last ReadyForQuery */
	bool		   throttled;  /* reading paused: its client is slow */
	uint32_t	   relay_left; /* bytes of a streamed message still to come */
	RequestQueue   rq;		   /* requests not answered yet */
	StmtCache	   stmts;	   /* statements prepared (transaction mode) */
	Settings	   settings;   /* session settings, as far as known */
	bool		   skipping;   /* after an error: ignores all but Sync */
	uint32_t	   seg; /* Syncs sent: numbers the parts of a pipeline */
	bool		   after_reset;		/* a RESET in the request being answered */
	uint8_t		   unpin_at_commit; /* PIN_* state gone if the transaction
									 * commits */
	bool		   reset_at_commit; /* a RESET: settings gone if it commits */
	bool reset_before_reuse; /* a pinned client ran here: DISCARD ALL before
							  * the next one */
	int	 cancels;			 /* cancel requests in flight */
	bool held;				 /* released during a cancel: kept back */
	/* timeouts.c: when first seen idle / with requests unanswered since the
	 * last ReadyForQuery, which sets both back to 0 */
	double idle_seen;
	double busy_seen;
	char   setup_state[6];	 /* SQLSTATE of a failed setup */
	char   setup_error[256]; /* its message */
} Server;

#define SERVER_CONNINFO_MAX 24

extern const char *server_state_to_str(ServerState state);
extern int		   server_conninfo(const DbConfig *db, const char *user,
								   const char *appname, const char **kw,
								   const char **val);
extern Server	  *server_open(struct Pool *pool, int hidx);
extern void		   server_close(Server *s, const char *reason);
extern void		   server_attach(Server *s, struct Client *c);
extern void		   server_reset(Server *s);
extern void		   server_detach(Server *s);
extern bool		   server_may_go(const Server *s);
extern void		   server_end_transaction(Server *s);
extern double	   server_age(const Server *s);
extern void		   server_cancel(Server *s);
extern void		   server_unthrottle(Server *s);
extern void		   server_answer_synth(Server *s);
extern bool		   server_is_clean(const Server *s);

#endif /* APS_SERVER_H */
