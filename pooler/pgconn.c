/*
 * pgconn.c
 *		A libpq connection of the pooler's own, never given to a client:
 *		the monitor's reports and fetches, the hosts' health checks.
 *
 * Opened with PQconnectStartParams and polled on libevent events like a
 * server login; then non-blocking, one query at a time (PQsendQuery, the
 * results read as they come).  Nothing here waits.  The owner's callbacks
 * say what happened; after "failed" the connection is closed and may be
 * opened again.  pgconn_check_time, called from the owner's timer, fails a
 * login or a query that takes too long.
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "process.h"
#include "pgconn.h"

static void pgconn_event_cb(evutil_socket_t fd, short what, void *arg);

/* libpq's message on one line: "...failed: Connection refused Is the ..." */
void
pgconn_one_line(char *buf, size_t len, const char *msg)
{
	size_t n = 0;

	if (msg == NULL || msg[0] == '\0')
		msg = "unknown error";
	for (const char *p = msg; *p && n + 1 < len; p++)
	{
		if (*p == '\n' || *p == '\t')
		{
			if (n > 0 && buf[n - 1] != ' ')
				buf[n++] = ' ';
		}
		else
			buf[n++] = *p;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
}

/*
 * Did the server itself refuse a login (libpq's message carries its FATAL:
 * authentication, an unknown role or database, too many connections)?
 * Then the server is alive and the host is fine; not so when it is
 * starting up, shutting down or recovering, or when nothing answered.
 */
bool
pgconn_server_answered(const char *error)
{
	return strstr(error, "FATAL:") != NULL &&
		   strstr(error, "the database system is") == NULL;
}

void
pgconn_init(PgConn *pc, const PgConnCallbacks *cb, void *arg)
{
	memset(pc, 0, sizeof(*pc));
	pc->cb = cb;
	pc->arg = arg;
	pc->state = PGC_DOWN;
}

static void
set_state(PgConn *pc, PgConnState state)
{
	pc->state = state;
	pc->since = mono_now();
}

/* Close the connection, if any, without telling the owner. */
void
pgconn_close(PgConn *pc)
{
	if (pc->ev)
		event_free(pc->ev);
	pc->ev = NULL;
	if (pc->conn)
		PQfinish(pc->conn);
	pc->conn = NULL;
	set_state(pc, PGC_DOWN);
}

/* The connection failed: close it and tell the owner why. */
void
pgconn_fail(PgConn *pc, const char *why)
{
	char msg[512];

	pgconn_one_line(msg, sizeof(msg), why);
	pgconn_close(pc);
	pc->cb->failed(pc->arg, msg);
}

/* Wait for the socket to be readable, or writable too if want_write. */
static void
wait_socket(PgConn *pc, bool want_write)
{
	if (pc->ev)
		event_free(pc->ev);
	pc->ev = event_new(ev_base, PQsocket(pc->conn),
					   EV_READ | (want_write ? EV_WRITE : 0) | EV_PERSIST,
					   pgconn_event_cb, pc);
	event_add(pc->ev, NULL);
}

static void
connect_poll(PgConn *pc)
{
	switch (PQconnectPoll(pc->conn))
	{
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(pc->conn, 1) != 0)
			{
				pgconn_fail(pc, PQerrorMessage(pc->conn));
				return;
			}
			set_state(pc, PGC_IDLE);
			wait_socket(pc, false);
			if (pc->cb->connected)
				pc->cb->connected(pc->arg);
			return;
		case PGRES_POLLING_FAILED:
			pgconn_fail(pc, PQerrorMessage(pc->conn));
			return;
		case PGRES_POLLING_READING:
			wait_socket(pc, false);
			return;
		case PGRES_POLLING_WRITING:
			wait_socket(pc, true);
			return;
		default:
			pgconn_fail(pc, "unexpected libpq polling state");
			return;
	}
}

/* Start logging in (the connection must be down). */
void
pgconn_open(PgConn *pc, const char *const *kw, const char *const *val)
{
	pgconn_close(pc);
	pc->conn = PQconnectStartParams(kw, val, 0);
	if (pc->conn == NULL)
		fatal("out of memory");
	set_state(pc, PGC_CONNECTING);
	if (PQstatus(pc->conn) == CONNECTION_BAD)
	{
		pgconn_fail(pc, PQerrorMessage(pc->conn));
		return;
	}
	connect_poll(pc);
}

/*
 * Send sql (one or more statements) on an idle connection; its results
 * come to the owner's callbacks.  False if it could not go (the owner was
 * told through "failed").
 */
bool
pgconn_send(PgConn *pc, const char *sql)
{
	int rc;

	if (pc->state != PGC_IDLE)
		return false;
	if (!PQsendQuery(pc->conn, sql))
	{
		pgconn_fail(pc, PQerrorMessage(pc->conn));
		return false;
	}
	pc->step = 0;
	set_state(pc, PGC_BUSY);
	rc = PQflush(pc->conn);
	if (rc < 0)
	{
		pgconn_fail(pc, PQerrorMessage(pc->conn));
		return false;
	}
	wait_socket(pc, rc == 1);
	return true;
}

/* The socket is ready: log in, write what is left, read results. */
static void
pgconn_event_cb(evutil_socket_t fd, short what, void *arg)
{
	PgConn *pc = (PgConn *) arg;

	if (pc->state == PGC_CONNECTING)
	{
		connect_poll(pc);
		return;
	}
	if (what & EV_WRITE)
	{
		int rc = PQflush(pc->conn);

		if (rc < 0)
		{
			pgconn_fail(pc, PQerrorMessage(pc->conn));
			return;
		}
		if (rc == 0)
			wait_socket(pc, false);
	}
	if (!(what & EV_READ))
		return;
	if (!PQconsumeInput(pc->conn))
	{
		pgconn_fail(pc, PQerrorMessage(pc->conn));
		return;
	}
	while (pc->state == PGC_BUSY && !PQisBusy(pc->conn))
	{
		PGresult *res = PQgetResult(pc->conn);

		if (res == NULL)
		{
			set_state(pc, PGC_IDLE);
			pc->cb->done(pc->arg);
			break;
		}
		pc->cb->result(pc->arg, res, pc->step++);
		PQclear(res);
	}
	/* anything else (a notice, the server going away) was consumed */
	if (pc->conn && PQstatus(pc->conn) == CONNECTION_BAD)
		pgconn_fail(pc, PQerrorMessage(pc->conn));
}

/* Fail a login or a query that has taken longer than allowed. */
void
pgconn_check_time(PgConn *pc, double connect_timeout, double query_timeout)
{
	double age = mono_now() - pc->since;

	if (pc->state == PGC_CONNECTING && age > connect_timeout)
		pgconn_fail(pc, "timeout while logging in");
	else if (pc->state == PGC_BUSY && age > query_timeout)
		pgconn_fail(pc, "no answer to a query in time");
}
