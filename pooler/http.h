/*
 * http.h
 *		The HTTP endpoint: /metrics, /health, /api/status, the dashboard.
 */
#ifndef APS_HTTP_H
#define APS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

extern bool http_configure(char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern const char *http_bound(void);
extern void		   http_stop(void);

#endif /* APS_HTTP_H */
