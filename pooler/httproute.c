/*
 * httproute.c
 *		Which answer an HTTP request gets, from its method and path: the
 *		part of the HTTP request path that is ours (evhttp parses the
 *		request line, the headers and the URI).
 *
 * Paths are matched exactly as evhttp gives them: not decoded (a %2F or
 * %6D is not a '/' or an 'm'), without the query and the fragment, so
 * "/metrics?x=1" is /metrics and "/%6Detrics" is nothing.  An unknown path
 * is 404 whatever the method; a known one answers GET and HEAD, OPTIONS
 * with what it allows, and 405 to anything else.  Kept apart from http.c
 * (which needs the whole pooler) so that a fuzzer can drive it alone.
 */
#include <stddef.h>
#include <string.h>

#include <event2/http.h>

#include "httproute.h"

HttpRoute
http_route(int method, const char *path)
{
	HttpRoute known;

	if (path == NULL || path[0] == '\0')
		path = "/";
	if (strcmp(path, "/") == 0)
		known = ROUTE_DASHBOARD;
	else if (strcmp(path, "/health") == 0)
		known = ROUTE_HEALTH;
	else if (strcmp(path, "/metrics") == 0)
		known = ROUTE_METRICS;
	else if (strcmp(path, "/api/status") == 0)
		known = ROUTE_STATUS;
	else
		return ROUTE_NOT_FOUND;
	if (method == EVHTTP_REQ_OPTIONS)
		return ROUTE_OPTIONS;
	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD)
		return ROUTE_METHOD_NOT_ALLOWED;
	return known;
}

/*
 * The route of a request line's target (origin form, "/path?query", or
 * absolute form), parsed as evhttp parses it.
 */
HttpRoute
http_route_target(int method, const char *target)
{
	struct evhttp_uri *uri =
		evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
	HttpRoute route;

	if (uri == NULL)
		return ROUTE_BAD_REQUEST;
	route = http_route(method, evhttp_uri_get_path(uri));
	evhttp_uri_free(uri);
	return route;
}

const char *
http_route_to_str(HttpRoute route)
{
	switch (route)
	{
		case ROUTE_BAD_REQUEST:
			return "bad request";
		case ROUTE_NOT_FOUND:
			return "not found";
		case ROUTE_OPTIONS:
			return "options";
		case ROUTE_METHOD_NOT_ALLOWED:
			return "method not allowed";
		case ROUTE_HEALTH:
			return "health";
		case ROUTE_METRICS:
			return "metrics";
		case ROUTE_STATUS:
			return "status";
		case ROUTE_DASHBOARD:
			return "dashboard";
	}
	return "unknown";
}
