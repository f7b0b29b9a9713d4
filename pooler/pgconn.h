/*
 * pgconn.h
 *		A libpq connection of the pooler's own (reports, health checks),
 *		opened and queried without blocking, driven by libevent.
 */
#ifndef APS_PGCONN_H
#define APS_PGCONN_H

#include <stdbool.h>

#include <libpq-fe.h>

typedef enum PgConnState
{
	PGC_DOWN,		/* no connection */
	PGC_CONNECTING, /* libpq is logging in */
	PGC_IDLE,		/* connected, nothing running */
	PGC_BUSY		/* a query is running */
} PgConnState;

/*
 * What the owner is told: each result of the query in flight (step counts
 * them from 0; res is freed after the call), the query's end, and a
 * failure of the connection (it is closed by then; error is one line).
 */
typedef struct PgConnCallbacks
{
	void (*connected)(void *arg);
	void (*result)(void *arg, PGresult *res, int step);
	void (*done)(void *arg);
	void (*failed)(void *arg, const char *error);
} PgConnCallbacks;

typedef struct PgConn
{
	PGconn				  *conn;
	struct event		  *ev;
	PgConnState			   state;
	double				   since; /* mono_now() the state began */
	int					   step;
	const PgConnCallbacks *cb;
	void				  *arg;
} PgConn;

extern void pgconn_init(PgConn *pc, const PgConnCallbacks *cb, void *arg);
extern void pgconn_open(PgConn *pc, const char *const *kw,
						const char *const *val);
extern bool pgconn_send(PgConn *pc, const char *sql);
extern void pgconn_close(PgConn *pc);
extern void pgconn_fail(PgConn *pc, const char *why);
extern void pgconn_check_time(PgConn *pc, double connect_timeout,
							  double query_timeout);
extern void pgconn_one_line(char *buf, size_t len, const char *msg);
extern bool pgconn_server_answered(const char *error);

#endif /* APS_PGCONN_H */
