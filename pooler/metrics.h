/*
 * metrics.h
 *		What the pooler knows, as Prometheus text (/metrics) and as JSON
 *		for the dashboard (/api/status), with the last hour's history.
 */
#ifndef APS_METRICS_H
#define APS_METRICS_H

#include <stdint.h>

/* The dashboard's history: one sample every HISTORY_INTERVAL s, an hour. */
#define HISTORY_INTERVAL 10
#define HISTORY_LEN		 360

struct evbuffer;

extern void metrics_render(struct evbuffer *out);
extern void metrics_status_json(struct evbuffer *out);
extern void metrics_history_start(void);
extern void metrics_history_stop(void);

#endif /* APS_METRICS_H */
