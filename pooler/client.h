/*
 * client.h
 *		One application connection to the pooler.
 */
#ifndef APS_CLIENT_H
#define APS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "prepared.h"
#include "session.h"
#include "scram.h"
#include "stream.h"

struct Pool;
struct Server;

/* Named portals whose statement's keywords are remembered (session.c). */
#define MAX_NAMED_PORTALS 16

typedef enum ClientState
{
	CL_STARTUP,	   /* reading the start-up packet */
	CL_AUTH,	   /* waiting for the password */
	CL_LOGIN_WAIT, /* waiting for the server's parameters */
	CL_IDLE,	   /* logged in, no server */
	CL_WAITING,	   /* queued for a server */
	CL_ACTIVE	   /* has a server */
} ClientState;

typedef struct Client
{
	/* Pointers and 8-byte fields first, then 4-byte ones, then bytes: no
	 * padding holes (an idle client is mostly this struct). */
	TAILQ_ENTRY(Client) link; /* pool's waiting or login list */
	TAILQ_ENTRY(Client) all;  /* all_clients; closed: client.c's ended list */
	Stream		   st;		  /* the socket */
	struct Pool	  *pool;
	struct Server *server;
	const char	  *user;		 /* interned (intern.h) */
	const char	  *dbname;		 /* interned */
	ScramState	  *scram;		 /* SCRAM exchange in progress, or NULL */
	struct event  *linger_timer; /* frees c after a while */
	struct event  *login_timer;	 /* client_login_timeout */
	struct NamedPortal
	{
		char	*name;
		uint32_t keywords;
	} * portals;	/* named portals' keywords, MAX_NAMED_PORTALS of them, made
				 * on first need */
	StmtMap	 stmts; /* its prepared statements (transaction mode) */
	Settings want;	/* settings that follow it between servers */
	Settings startup;	 /* the settings it gave at start-up */
	double	 wait_start; /* mono_now() when queued */
	double	 idle_seen;	 /* timeouts.c: first seen idle, 0 = not yet */
	time_t	 connect_time;
	size_t	 linger_discarded; /* bytes read and dropped while lingering */

	uint32_t	id; /* also the BackendKeyData pid */
	uint32_t	cancel_key;
	ClientState state;
	int			port;
	int			pool_mode;		  /* PoolMode when it logged in */
	int			nportals;		  /* entries used in portals */
	uint32_t	unnamed_keywords; /* of the last unnamed Parse */
	uint32_t
		portal_keywords; /* of the statement bound to the unnamed portal */
	uint32_t relay_left; /* bytes of a streamed CopyData still to come */

	char	addr[INET6_ADDRSTRLEN]; /* its address, or "unix" */
	uint8_t salt[4];				/* md5 challenge */
	uint8_t pins;					/* PIN_*: session state keeps its server */
	bool	admin;					/* connected to the admin console */
	bool	queued;					/* in a pool list (link in use) */
	bool	skip_to_sync;			/* discarding after an error we raised */
	bool	throttled;				/* reading paused: its server is slow */
	bool	dead;					/* closed: lingering until freed */
	bool	ssl_done;				/* an SSLRequest was answered */
	bool	gss_done;				/* a GSSENCRequest was answered */
	bool	rewrite;				/* its named statements are rewritten */
	bool	unnamed_dealloc; /* unnamed statement: a DEALLOCATE of ours */
	bool	portal_dealloc;	 /* unnamed portal: the same */
	bool	relay_discard;	 /* relay_left bytes are dropped, not passed on */
} Client;

TAILQ_HEAD(ClientList, Client);

/* What a client of the admin console gets (admin.c gives them). */
typedef struct ConsoleHandlers
{
	void (*welcome)(Client *c);							/* after login */
	bool (*handle)(Client *c, char type, uint32_t len); /* false: c gone */
} ConsoleHandlers;

/*
 * Every client not closed yet.  A walk that may close clients must not
 * follow a closed client's link: it may then be on client.c's list of
 * clients to free (collect first, as timeouts.c does, or take the next
 * client before closing).
 */
extern struct ClientList all_clients;
extern int				 n_clients;

extern const char *client_state_to_str(ClientState state);
extern void		   client_set_console(const ConsoleHandlers *handlers);
extern void		   client_accept(int fd, struct sockaddr *addr, int socklen);
extern void		   client_attached(Client *c);
extern void		   client_wait_failed(Client *c, const char *sqlstate,
									  const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
extern void client_welcome(Client *c);
extern void client_close(Client *c, const char *sqlstate, const char *reason);
extern void client_end_of_pass(void);
extern void client_server_message_done(Client *c);
extern void client_resume(Client *c);
extern void client_unthrottle(Client *c);

#endif /* APS_CLIENT_H */
