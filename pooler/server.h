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
	ServerState	   state;
	PGconn		  *conn;		 /* owns the socket */
	Stream		   st;			 /* after login */
	bool		   has_stream;	 /* st is set up */
	struct event  *login_ev;	 /* socket readiness during login */
	struct event  *login_timer;	 /* server_connect_timeout */
	struct Client *client;		 /* when SV_ACTIVE */
	double		   created;		 /* mono_now() at connect */
	time_t		   connect_time; /* wall clock at connect */
	int			   backend_pid;
	char		   txn_status;	/* from the last ReadyForQuery */
	int			   outstanding; /* queries/syncs not yet answered */
	bool		   throttled;	/* reading paused: its client is slow */
} Server;

extern const char *server_state_to_str(ServerState state);
extern Server	  *server_open(struct Pool *pool);
extern void		   server_close(Server *s, const char *reason);
extern void		   server_attach(Server *s, struct Client *c);
extern void		   server_reset(Server *s);
extern double	   server_age(const Server *s);
extern void		   server_cancel(Server *s);
extern void		   server_unthrottle(Server *s);

#endif /* APS_SERVER_H */
