/*
 * httproute.h
 *		Which answer an HTTP request gets, from its method and path.
 */
#ifndef APS_HTTPROUTE_H
#define APS_HTTPROUTE_H

typedef enum HttpRoute
{
	ROUTE_BAD_REQUEST,		  /* a target evhttp cannot parse: its 400 */
	ROUTE_NOT_FOUND,		  /* 404, whatever the method */
	ROUTE_OPTIONS,			  /* OPTIONS of a known path: 200 or 503 */
	ROUTE_METHOD_NOT_ALLOWED, /* 405 */
	ROUTE_HEALTH,			  /* GET or HEAD /health */
	ROUTE_METRICS,			  /* /metrics */
	ROUTE_STATUS,			  /* /api/status */
	ROUTE_DASHBOARD			  /* / (or no path) */
} HttpRoute;

/* The methods every known path answers (OPTIONS tells them). */
#define HTTP_ALLOWED "GET, HEAD, OPTIONS"

/* method: libevent's enum evhttp_cmd_type; path as evhttp gives it. */
extern HttpRoute   http_route(int method, const char *path);
extern HttpRoute   http_route_target(int method, const char *target);
extern const char *http_route_to_str(HttpRoute route);

#endif /* APS_HTTPROUTE_H */
