/*
 * textout.h
 *		Writing the text formats the HTTP endpoint serves: JSON strings
 *		and numbers, Prometheus label values.
 */
#ifndef APS_TEXTOUT_H
#define APS_TEXTOUT_H

#include <stdbool.h>

struct evbuffer;

extern void json_string(struct evbuffer *out, const char *s);
extern void json_number(struct evbuffer *out, double v, bool valid);
extern void prom_label_value(struct evbuffer *out, const char *s);

#endif /* APS_TEXTOUT_H */
