/*
 * http.c
 *		The HTTP endpoint (http_listen): /metrics, /health, /api/status and
 *		the dashboard, on the pooler's own event loop (libevent's evhttp).
 *
 * Handlers serve what the pooler already holds (metrics.c) and never wait
 * on a server.  Requests are small: headers up to 8 kB and no body; a
 * connection idle for HTTP_TIMEOUT seconds is closed.  /health answers 503
 * from the moment a drain begins (SIGTERM, SHUTDOWN), so that a load
 * balancer stops sending clients while the transactions in flight finish;
 * OPTIONS answers the same (HAProxy's default check is "OPTIONS /").
 *
 * The listening socket is made here rather than by evhttp, for errors that
 * say what failed; a RELOAD that moves http_listen binds the new address
 * before it lets go of the old one, and keeps the old one if that fails.
 *
 * Connections are counted and timed here too.  evhttp in libevent 2.1 has
 * no limit on how many it holds (evhttp_set_max_connections is 2.2), and
 * its timeout starts again at every byte: thousands of clients that never
 * end their request, or one that sends it a byte at a time, would hold
 * file descriptors that PostgreSQL clients need.  evhttp asks bev_cb for
 * the bufferevent of each new connection; a moment later, from the loop,
 * adopt_cb finds the evhttp_connection behind it (the bufferevent's
 * callback argument) and asks to be told when it closes.  We hold a
 * reference to each bufferevent, so that it can be looked at whatever
 * evhttp did meanwhile (a freed one has no callbacks left).  At most
 * HTTP_MAX_CONNECTIONS are held: past that, the ones that have waited
 * longest for a complete request are closed first; and one that has not
 * completed a request HTTP_TIMEOUT after it came (or after its last
 * answer) is closed however slowly it trickles in.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"
#include "httproute.h"
#include "log.h"
#include "process.h"
#include "metrics.h"

/* dashboard_html[]: dashboard.html, made into C by the Makefile */
#include "dashboard.inc"

#define HTTP_TIMEOUT		 10	  /* seconds a connection may idle */
#define HTTP_MAX_HEADERS	 8192 /* bytes of request line and headers */
#define HTTP_MAX_CONNECTIONS 100  /* held at once */

/* One connection evhttp holds, as counted here. */
typedef struct HttpConn
{
	TAILQ_ENTRY(HttpConn) link;		 /* oldest first */
	struct bufferevent		 *bev;	 /* ours (bev_cb), referenced */
	struct evhttp_connection *evcon; /* once adopted */
	double					  since; /* came, or its last answer */
} HttpConn;

static TAILQ_HEAD(, HttpConn) conns = TAILQ_HEAD_INITIALIZER(conns);
static int			 n_conns = 0;
static uint64_t		 n_evicted = 0;		  /* closed at the limit */
static double		 evicted_logged = -1; /* mono_now() of the last word */
static struct event *adopt_ev = NULL;	  /* adopt_cb at the next pass */
static struct event *sweep_ev = NULL;	  /* every second */

static struct evhttp			  *http = NULL;
static struct evhttp_bound_socket *bound = NULL;
static char						  *bound_to = NULL; /* its http_listen */

/* A listening socket on spec (host:port), or -1 with err set. */
static int
listen_on(const char *spec, char *err, size_t errlen)
{
	char			 host[256];
	char			 port[16];
	int				 portnum;
	struct addrinfo	 hints;
	struct addrinfo *res;
	int				 fd = -1;
	int				 rc;
	int				 one = 1;

	if (!config_split_hostport(spec, host, sizeof(host), &portnum))
	{
		snprintf(err, errlen, "http_listen: invalid value \"%s\"", spec);
		return -1;
	}
	snprintf(port, sizeof(port), "%d", portnum);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "http_listen: could not resolve \"%s\": %s",
				 host, gai_strerror(rc));
		return -1;
	}
	fd =
		socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			   res->ai_protocol);
	if (fd < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0)
	{
		snprintf(err, errlen, "http_listen: could not listen on %s: %s", spec,
				 strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* ---- counting and timing connections ---- */

/* Forget hc; its bufferevent goes when evhttp has let go of it too. */
static void
conn_drop(HttpConn *hc)
{
	TAILQ_REMOVE(&conns, hc, link);
	n_conns--;
	bufferevent_decref(hc->bev);
	free(hc);
}

/* evhttp is closing hc's connection (any reason, ours included). */
static void
conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	conn_drop((HttpConn *) arg);
}

/*
 * Has evhttp freed hc's connection without telling (or before adopt_cb saw
 * it)?  bufferevent_free clears every callback; while evhttp holds the
 * connection, at least its event callback is set (the read one is not
 * while it writes).
 */
static bool
conn_gone(HttpConn *hc)
{
	bufferevent_data_cb	 readcb = NULL;
	bufferevent_data_cb	 writecb = NULL;
	bufferevent_event_cb eventcb = NULL;

	bufferevent_getcb(hc->bev, &readcb, &writecb, &eventcb, NULL);
	return readcb == NULL && writecb == NULL && eventcb == NULL;
}

/* Close hc's connection now (if evhttp has not already), and forget it. */
static void
conn_close(HttpConn *hc)
{
	struct evhttp_connection *evcon = hc->evcon;
	bool					  gone = conn_gone(hc);

	if (!gone)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	conn_drop(hc);
	if (!gone)
		evhttp_connection_free(evcon);
}

/* evhttp wants a bufferevent for a new connection: count it. */
static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
	struct bufferevent *bev =
		bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	HttpConn *hc;

	if (bev == NULL)
		return NULL;
	hc = calloc(1, sizeof(HttpConn));
	if (hc == NULL)
		fatal("out of memory");
	bufferevent_incref(bev);
	hc->bev = bev;
	hc->since = mono_now();
	TAILQ_INSERT_TAIL(&conns, hc, link);
	n_conns++;
	event_active(adopt_ev, EV_TIMEOUT, 0);
	return bev;
}

/*
 * Adopt the connections evhttp set up since the last pass, then close the
 * ones that waited longest while more than HTTP_MAX_CONNECTIONS are held:
 * a legitimate request takes milliseconds, so the oldest ones waiting are
 * the stalled ones (a flood of them cannot lock out a health check).
 */
static void
adopt_cb(evutil_socket_t fd, short what, void *arg)
{
	HttpConn *hc;
	HttpConn *next;
	void	 *evcon;
	uint64_t  evicted = n_evicted;

	for (hc = TAILQ_FIRST(&conns); hc; hc = next)
	{
		next = TAILQ_NEXT(hc, link);
		if (hc->evcon)
			continue;
		if (conn_gone(hc))
		{
			conn_drop(hc);
			continue;
		}
		bufferevent_getcb(hc->bev, NULL, NULL, NULL, &evcon);
		hc->evcon = (struct evhttp_connection *) evcon;
		evhttp_connection_set_closecb(hc->evcon, conn_closed_cb, hc);
	}
	while (n_conns > HTTP_MAX_CONNECTIONS)
	{
		conn_close(TAILQ_FIRST(&conns));
		n_evicted++;
	}
	if (n_evicted > evicted &&
		(evicted_logged < 0 || mono_now() - evicted_logged >= 60))
	{
		evicted_logged = mono_now();
		log_warning("HTTP endpoint: more than %d connections; closing those "
					"waiting longest for their request (%llu so far)",
					HTTP_MAX_CONNECTIONS, (unsigned long long) n_evicted);
	}
}

/* Every second: close the connections whose request is overdue. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	double	  now = mono_now();
	HttpConn *hc;
	HttpConn *next;

	for (hc = TAILQ_FIRST(&conns); hc; hc = next)
	{
		next = TAILQ_NEXT(hc, link);
		if (hc->evcon == NULL)
			continue; /* adopt_cb has yet to see it */
		if (conn_gone(hc))
			conn_drop(hc);
		else if (now - hc->since >= HTTP_TIMEOUT)
			conn_close(hc); /* overdue, however slowly it trickles in */
	}
}

/* req was answered: its connection's clock starts again. */
static void
conn_answered(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	HttpConn				 *hc;

	TAILQ_FOREACH(hc, &conns, link)
	{
		if (hc->evcon == evcon)
		{
			hc->since = mono_now();
			TAILQ_REMOVE(&conns, hc, link);
			TAILQ_INSERT_TAIL(&conns, hc, link);
			return;
		}
	}
}

static void
reply(struct evhttp_request *req, int code, const char *reason,
	  const char *type, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	conn_answered(req);
	evhttp_send_reply(req, code, reason, body);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	HttpRoute	route = http_route(evhttp_request_get_command(req), path);
	struct evbuffer	 *body = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	bool			  healthy = !shutting_down;

	switch (route)
	{
		case ROUTE_OPTIONS:
			evhttp_add_header(h, "Allow", HTTP_ALLOWED);
			reply(req, healthy ? 200 : 503,
				  healthy ? "OK" : "Service Unavailable",
				  "text/plain; charset=utf-8", body);
			break;
		case ROUTE_METHOD_NOT_ALLOWED:
			evhttp_add_header(h, "Allow", HTTP_ALLOWED);
			evbuffer_add_printf(body, "method not allowed\n");
			reply(req, 405, "Method Not Allowed", "text/plain; charset=utf-8",
				  body);
			break;
		case ROUTE_HEALTH:
			evbuffer_add_printf(body, healthy ? "ok\n" : "draining\n");
			reply(req, healthy ? 200 : 503,
				  healthy ? "OK" : "Service Unavailable",
				  "text/plain; charset=utf-8", body);
			break;
		case ROUTE_METRICS:
			metrics_render(body);
			reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
				  body);
			break;
		case ROUTE_STATUS:
			metrics_status_json(body);
			reply(req, 200, "OK", "application/json", body);
			break;
		case ROUTE_DASHBOARD:
			evbuffer_add_reference(body, dashboard_html,
								   sizeof(dashboard_html), NULL, NULL);
			evhttp_add_header(
				h, "Content-Security-Policy",
				"default-src 'self'; script-src 'unsafe-inline'; "
				"style-src 'unsafe-inline'; img-src 'self' data:");
			reply(req, 200, "OK", "text/html; charset=utf-8", body);
			break;
		case ROUTE_NOT_FOUND:
		case ROUTE_BAD_REQUEST: /* evhttp answers those itself */
		default:
			evbuffer_add_printf(body, "not found\n");
			reply(req, 404, "Not Found", "text/plain; charset=utf-8", body);
			break;
	}
	evbuffer_free(body);
}

static void
http_close(void)
{
	metrics_history_stop();
	if (http)
		evhttp_free(http); /* conn_closed_cb for each connection */
	while (!TAILQ_EMPTY(&conns))
		conn_drop(TAILQ_FIRST(&conns));
	if (adopt_ev)
		event_free(adopt_ev);
	if (sweep_ev)
		event_free(sweep_ev);
	adopt_ev = sweep_ev = NULL;
	http = NULL;
	bound = NULL;
	free(bound_to);
	bound_to = NULL;
}

/*
 * Serve on cf.http_listen, or stop if it is empty; a no-op if that is
 * where it already serves.  On failure, err names the key and what
 * failed, and what served before goes on serving.
 */
bool
http_configure(char *err, size_t errlen)
{
	const char				   *spec = cf.http_listen;
	struct evhttp_bound_socket *sock;
	int							fd;

	if (spec[0] == '\0')
	{
		if (http)
			log_info("HTTP endpoint closed");
		http_close();
		return true;
	}
	if (bound_to && strcmp(bound_to, spec) == 0)
		return true;
	fd = listen_on(spec, err, errlen);
	if (fd < 0)
		return false;
	if (http == NULL)
	{
		http = evhttp_new(ev_base);
		if (http == NULL)
			fatal("out of memory");
		evhttp_set_timeout(http, HTTP_TIMEOUT);
		evhttp_set_max_headers_size(http, HTTP_MAX_HEADERS);
		evhttp_set_max_body_size(http, 1024);
		/* every method reaches request_cb, which answers 405 itself */
		evhttp_set_allowed_methods(
			http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS |
					  EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
					  EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
					  EVHTTP_REQ_PATCH);
		evhttp_set_gencb(http, request_cb, NULL);
		evhttp_set_bevcb(http, bev_cb, NULL);
		adopt_ev = event_new(ev_base, -1, 0, adopt_cb, NULL);
		sweep_ev = event_new(ev_base, -1, EV_PERSIST, sweep_cb, NULL);
		if (adopt_ev == NULL || sweep_ev == NULL)
			fatal("out of memory");
		{
			struct timeval second = {1, 0};

			event_add(sweep_ev, &second);
		}
		metrics_history_start();
	}
	sock = evhttp_accept_socket_with_handle(http, fd);
	if (sock == NULL)
	{
		close(fd);
		snprintf(err, errlen, "http_listen: could not serve on %s", spec);
		return false;
	}
	if (bound)
		evhttp_del_accept_socket(http, bound);
	bound = sock;
	free(bound_to);
	bound_to = xstrdup(spec);
	log_info("HTTP endpoint on %s (/metrics, /health, /api/status, /)", spec);
	return true;
}

/* Where it serves: an http_listen value, or "" if it does not. */
const char *
http_bound(void)
{
	return bound_to ? bound_to : "";
}

void
http_stop(void)
{
	http_close();
}
