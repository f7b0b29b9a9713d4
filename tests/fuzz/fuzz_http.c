/*
 * fuzz_http.c
 *		libFuzzer target: the part of the HTTP request path that is the
 *		pooler's, pooler/httproute.c.
 *
 * evhttp parses the request line and the headers; what the pooler does
 * with them is route the request by its method and the path of its target.
 * The input's first byte picks the method (any of evhttp's, or one it does
 * not know), the rest is the target, parsed as evhttp parses it
 * (evhttp_uri_parse_with_flags, EVHTTP_URI_NONCONFORMANT).  The route must
 * follow from the path alone: exactly one of the four paths (matched as
 * sent: not decoded) answers, with GET and HEAD, OPTIONS and 405 for the
 * others, and 404 for every other path whatever the method.
 */
#include <stdbool.h>
#include <string.h>

#include <event2/http.h>

#include "httproute.h"

#include "fuzz.h"

static const int methods[] = {
	EVHTTP_REQ_GET,	   EVHTTP_REQ_POST,
	EVHTTP_REQ_HEAD,   EVHTTP_REQ_PUT,
	EVHTTP_REQ_DELETE, EVHTTP_REQ_OPTIONS,
	EVHTTP_REQ_TRACE,  EVHTTP_REQ_CONNECT,
	EVHTTP_REQ_PATCH,  0 /* none evhttp knows */
};

/* The route a known path must get with GET (or HEAD); -1 for others. */
static int
route_of_path(const char *path)
{
	if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0)
		return ROUTE_DASHBOARD;
	if (strcmp(path, "/health") == 0)
		return ROUTE_HEALTH;
	if (strcmp(path, "/metrics") == 0)
		return ROUTE_METRICS;
	if (strcmp(path, "/api/status") == 0)
		return ROUTE_STATUS;
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int				   method;
	char			  *target;
	struct evhttp_uri *uri;
	HttpRoute		   route;
	int				   want;

	if (size < 1)
		return 0;
	method = methods[data[0] % lengthof(methods)];
	/* the target as evhttp has it: a string, up to its first NUL */
	target = malloc(size);
	FUZZ_CHECK(target != NULL);
	memcpy(target, data + 1, size - 1);
	target[size - 1] = '\0';

	route = http_route_target(method, target);
	FUZZ_CHECK(route >= ROUTE_BAD_REQUEST && route <= ROUTE_DASHBOARD);
	FUZZ_CHECK(strcmp(http_route_to_str(route), "unknown") != 0);
	FUZZ_CHECK(http_route_target(method, target) == route); /* no state */

	uri = evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
	if (uri == NULL)
		FUZZ_CHECK(route == ROUTE_BAD_REQUEST);
	else
	{
		const char *path = evhttp_uri_get_path(uri);

		want = route_of_path(path);
		if (want < 0)
			FUZZ_CHECK(route == ROUTE_NOT_FOUND);
		else if (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD)
			FUZZ_CHECK((int) route == want);
		else if (method == EVHTTP_REQ_OPTIONS)
			FUZZ_CHECK(route == ROUTE_OPTIONS);
		else
			FUZZ_CHECK(route == ROUTE_METHOD_NOT_ALLOWED);
		/* the same path given directly routes the same */
		FUZZ_CHECK(http_route(method, path) == route);
		evhttp_uri_free(uri);
	}
	free(target);
	return 0;
}
