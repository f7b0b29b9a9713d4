/*
 * monitor.h
 *		The pooler's own connections to its databases: pool use reported
 *		to the extension, the extension's numbers fetched for /metrics and
 *		the dashboard.
 */
#ifndef APS_MONITOR_H
#define APS_MONITOR_H

#include <stdint.h>

struct evbuffer;

extern void monitor_start(void);
extern void monitor_stop(void);
extern void monitor_reload(void);
extern void monitor_append_metrics(struct evbuffer *out);
extern void monitor_status_json(struct evbuffer *out);
extern void monitor_history_sample(uint64_t seq);
extern void monitor_history_json(struct evbuffer *out, uint64_t first,
								 uint64_t end);

#endif /* APS_MONITOR_H */
