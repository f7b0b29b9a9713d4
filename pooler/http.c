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
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"
#include "log.h"
#include "process.h"
#include "metrics.h"

/* dashboard_html[]: dashboard.html, made into C by the Makefile */
#include "dashboard.inc"

#define HTTP_TIMEOUT	 10	  /* seconds a connection may idle */
#define HTTP_MAX_HEADERS 8192 /* bytes of request line and headers */
#define ALLOWED			 "GET, HEAD, OPTIONS"

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

static void
reply(struct evhttp_request *req, int code, const char *reason,
	  const char *type, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_send_reply(req, code, reason, body);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evbuffer	 *body = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	bool			  healthy = !shutting_down;

	if (path == NULL || path[0] == '\0')
		path = "/";
	if (strcmp(path, "/") != 0 && strcmp(path, "/metrics") != 0 &&
		strcmp(path, "/health") != 0 && strcmp(path, "/api/status") != 0)
	{
		evbuffer_add_printf(body, "not found\n");
		reply(req, 404, "Not Found", "text/plain; charset=utf-8", body);
	}
	else if (cmd == EVHTTP_REQ_OPTIONS)
	{
		evhttp_add_header(h, "Allow", ALLOWED);
		reply(req, healthy ? 200 : 503, healthy ? "OK" : "Service Unavailable",
			  "text/plain; charset=utf-8", body);
	}
	else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
	{
		evhttp_add_header(h, "Allow", ALLOWED);
		evbuffer_add_printf(body, "method not allowed\n");
		reply(req, 405, "Method Not Allowed", "text/plain; charset=utf-8",
			  body);
	}
	else if (strcmp(path, "/health") == 0)
	{
		evbuffer_add_printf(body, healthy ? "ok\n" : "draining\n");
		reply(req, healthy ? 200 : 503, healthy ? "OK" : "Service Unavailable",
			  "text/plain; charset=utf-8", body);
	}
	else if (strcmp(path, "/metrics") == 0)
	{
		metrics_render(body);
		reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
			  body);
	}
	else if (strcmp(path, "/api/status") == 0)
	{
		metrics_status_json(body);
		reply(req, 200, "OK", "application/json", body);
	}
	else
	{
		evbuffer_add_reference(body, dashboard_html, sizeof(dashboard_html),
							   NULL, NULL);
		evhttp_add_header(h, "Content-Security-Policy",
						  "default-src 'self'; script-src 'unsafe-inline'; "
						  "style-src 'unsafe-inline'; img-src 'self' data:");
		reply(req, 200, "OK", "text/html; charset=utf-8", body);
	}
	evbuffer_free(body);
}

static void
http_close(void)
{
	metrics_history_stop();
	if (http)
		evhttp_free(http);
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
