/*
 * textout.c
 *		Writing the text formats the HTTP endpoint serves.
 *
 * Names of databases and users, query texts and error messages come from
 * configuration and from servers: everything written here is escaped for
 * the format it goes into, whatever bytes it holds.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "textout.h"

/* s as a JSON string, quoted; control characters as \u00XX. */
void
json_string(struct evbuffer *out, const char *s)
{
	const char *run = s;

	evbuffer_add(out, "\"", 1);
	for (const char *p = s;; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c != '\0' && c >= 0x20 && c != '"' && c != '\\')
			continue;
		evbuffer_add(out, run, (size_t) (p - run));
		if (c == '\0')
			break;
		if (c == '"' || c == '\\')
			evbuffer_add_printf(out, "\\%c", c);
		else if (c == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add_printf(out, "\\u%04x", c);
		run = p + 1;
	}
	evbuffer_add(out, "\"", 1);
}

/* v as a JSON number, or null if not valid (or not finite). */
void
json_number(struct evbuffer *out, double v, bool valid)
{
	if (!valid || !isfinite(v))
		evbuffer_add(out, "null", 4);
	else if (v == floor(v) && fabs(v) < 1e15)
		evbuffer_add_printf(out, "%.0f", v);
	else
		evbuffer_add_printf(out, "%.6g", v);
}

/* s as the inside of a Prometheus label value: \\, \" and \n escaped. */
void
prom_label_value(struct evbuffer *out, const char *s)
{
	const char *run = s;

	for (const char *p = s;; p++)
	{
		if (*p != '\0' && *p != '\\' && *p != '"' && *p != '\n')
			continue;
		evbuffer_add(out, run, (size_t) (p - run));
		if (*p == '\0')
			break;
		evbuffer_add(out, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n", 2);
		run = p + 1;
	}
}
