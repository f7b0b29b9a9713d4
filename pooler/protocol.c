/*
 * protocol.c
 *		PostgreSQL wire protocol v3: framing, start-up packets, messages.
 *
 * Parsing functions work on plain byte arrays and never trust a length:
 * they are what the unit tests (tests/unit/test_protocol.c) and a fuzzer
 * exercise.  Builders append whole messages to an evbuffer.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "protocol.h"

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

/*
 * Is there a whole message at p (avail bytes)?  Start-up packets have no
 * type byte (type is set to 0).  total is the whole message length,
 * including the type byte.
 */
PktStatus
pkt_peek_bytes(const uint8_t *p, size_t avail, bool startup, char *type,
			   uint32_t *total)
{
	uint32_t len;

	if (startup)
	{
		if (avail < 4)
			return PKT_INCOMPLETE;
		len = get_u32(p);
		if (len < 8 || len > MAX_STARTUP_LEN)
			return PKT_BAD;
		*type = 0;
		*total = len;
	}
	else
	{
		if (avail < 5)
			return PKT_INCOMPLETE;
		len = get_u32(p + 1);
		if (len < 4 || len > MAX_MESSAGE_LEN)
			return PKT_BAD;
		*type = (char) p[0];
		*total = len + 1;
	}
	return avail >= *total ? PKT_READY : PKT_INCOMPLETE;
}

PktStatus
pkt_peek(struct evbuffer *buf, bool startup, char *type, uint32_t *total)
{
	size_t		   avail = evbuffer_get_length(buf);
	size_t		   need = startup ? 4 : 5;
	const uint8_t *p;
	PktStatus	   st;

	if (avail < need)
		return PKT_INCOMPLETE;
	p = evbuffer_pullup(buf, (ssize_t) need);
	st = pkt_peek_bytes(p, need, startup, type, total);
	if (st == PKT_BAD)
		return PKT_BAD;
	return avail >= *total ? PKT_READY : PKT_INCOMPLETE;
}

/*
 * Like pkt_peek for a (non-start-up) message that begins off bytes into
 * buf, without moving anything; *first is its first body byte (the status
 * of a ReadyForQuery), or 0.
 */
PktStatus
pkt_peek_at(struct evbuffer *buf, size_t off, char *type, uint32_t *total,
			char *first)
{
	size_t				avail = evbuffer_get_length(buf);
	uint8_t				hdr[6] = {0};
	size_t				n;
	struct evbuffer_ptr pos;
	PktStatus			st;

	if (avail < off + 5)
		return PKT_INCOMPLETE;
	n = avail - off >= 6 ? 6 : 5;
	if (evbuffer_ptr_set(buf, &pos, off, EVBUFFER_PTR_SET) != 0 ||
		evbuffer_copyout_from(buf, &pos, hdr, n) != (ssize_t) n)
		return PKT_BAD;
	st = pkt_peek_bytes(hdr, n, false, type, total);
	if (st == PKT_BAD)
		return PKT_BAD;
	/* with no body, hdr[5] is the next message's type byte */
	*first = *total > 5 ? (char) hdr[5] : 0;
	return avail - off >= *total ? PKT_READY : PKT_INCOMPLETE;
}

/*
 * Parse a whole start-up packet (length word included).  For version 3.0,
 * the parameters must be NUL-terminated pairs ending with an empty name.
 */
bool
pkt_parse_startup(const uint8_t *pkt, size_t len, StartupPkt *out, char *err,
				  size_t errlen)
{
	const char *p;
	const char *end;

	memset(out, 0, sizeof(*out));
	if (len < 8 || get_u32(pkt) != len)
	{
		snprintf(err, errlen, "invalid start-up packet length");
		return false;
	}
	out->code = get_u32(pkt + 4);
	if (out->code == CODE_CANCEL)
	{
		if (len != 16)
		{
			snprintf(err, errlen, "invalid cancel request length");
			return false;
		}
		out->cancel_pid = get_u32(pkt + 8);
		out->cancel_key = get_u32(pkt + 12);
		return true;
	}
	if (out->code == CODE_SSL || out->code == CODE_GSSENC)
		return len == 8 ||
			   (snprintf(err, errlen, "invalid request length"), false);
	if (out->code >> 16 != 3)
	{
		snprintf(err, errlen, "unsupported frontend protocol %u.%u",
				 out->code >> 16, out->code & 0xffff);
		return false;
	}

	p = (const char *) pkt + 8;
	end = (const char *) pkt + len;
	while (p < end && *p != '\0')
	{
		const char *name = p;
		const char *value;
		size_t		nl = strnlen(name, end - name);

		if (name + nl >= end)
			break;
		value = name + nl + 1;
		if (value >= end || value + strnlen(value, end - value) >= end)
			break;
		if (strcmp(name, "user") == 0)
		{
			free(out->user);
			out->user = xstrdup(value);
		}
		else if (strcmp(name, "database") == 0)
		{
			free(out->database);
			out->database = xstrdup(value);
		}
		else if (strcmp(name, "application_name") == 0)
		{
			free(out->application_name);
			out->application_name = xstrdup(value);
		}
		p = value + strlen(value) + 1;
	}
	if (p >= end || *p != '\0' || p + 1 != end)
	{
		snprintf(err, errlen, "invalid start-up packet layout");
		startup_free(out);
		return false;
	}
	if (out->user == NULL || out->user[0] == '\0')
	{
		snprintf(err, errlen,
				 "no PostgreSQL user name specified in startup packet");
		startup_free(out);
		return false;
	}
	if (out->database == NULL || out->database[0] == '\0')
	{
		free(out->database);
		out->database = xstrdup(out->user);
	}
	return true;
}

void
startup_free(StartupPkt *s)
{
	free(s->user);
	free(s->database);
	free(s->application_name);
	s->user = s->database = s->application_name = NULL;
}

/*
 * The prepared-statement name a message refers to: Parse (its name), Bind
 * (the source statement), Describe/Close of a statement ('S').  NULL if the
 * message names no statement or is malformed; "" for the unnamed one.
 */
const char *
pkt_statement_name(char type, const uint8_t *msg, size_t len)
{
	const char *body = (const char *) msg + 5;
	size_t		blen = len - 5;
	size_t		n;

	if (len < 6)
		return NULL;
	switch (type)
	{
		case 'P':
			n = strnlen(body, blen);
			return n < blen ? body : NULL;
		case 'B':
			n = strnlen(body, blen); /* portal name */
			if (n + 1 >= blen)
				return NULL;
			body += n + 1;
			blen -= n + 1;
			n = strnlen(body, blen);
			return n < blen ? body : NULL;
		case 'D':
		case 'C':
			if (body[0] != 'S' || blen < 2)
				return NULL;
			n = strnlen(body + 1, blen - 1);
			return n < blen - 1 ? body + 1 : NULL;
		default:
			return NULL;
	}
}

/* A message under construction. */
typedef struct Msg
{
	uint8_t *data;
	size_t	 len;
	size_t	 cap;
} Msg;

static void
msg_put(Msg *m, const void *p, size_t n)
{
	if (m->len + n > m->cap)
	{
		size_t cap = m->cap ? m->cap * 2 : 256;

		while (cap < m->len + n)
			cap *= 2;
		m->data = realloc(m->data, cap);
		if (m->data == NULL)
			fatal("out of memory");
		m->cap = cap;
	}
	memcpy(m->data + m->len, p, n);
	m->len += n;
}

static void
msg_begin(Msg *m, char type)
{
	static const uint8_t zero[4] = {0, 0, 0, 0};

	m->data = NULL;
	m->len = m->cap = 0;
	msg_put(m, &type, 1);
	msg_put(m, zero, 4);
}

static void
msg_u32(Msg *m, uint32_t v)
{
	v = htonl(v);
	msg_put(m, &v, 4);
}

static void
msg_u16(Msg *m, uint16_t v)
{
	v = htons(v);
	msg_put(m, &v, 2);
}

static void
msg_str(Msg *m, const char *s)
{
	msg_put(m, s, strlen(s) + 1);
}

static void
msg_end(Msg *m, struct evbuffer *out)
{
	uint32_t len = htonl((uint32_t) (m->len - 1));

	memcpy(m->data + 1, &len, 4);
	evbuffer_add(out, m->data, m->len);
	free(m->data);
}

void
pkt_add_error(struct evbuffer *out, const char *severity, const char *sqlstate,
			  const char *fmt, ...)
{
	Msg		m;
	char	text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	msg_begin(&m, 'E');
	msg_put(&m, "S", 1);
	msg_str(&m, severity);
	msg_put(&m, "V", 1);
	msg_str(&m, severity);
	msg_put(&m, "C", 1);
	msg_str(&m, sqlstate);
	msg_put(&m, "M", 1);
	msg_str(&m, text);
	msg_put(&m, "", 1);
	msg_end(&m, out);
}

void
pkt_add_ready(struct evbuffer *out, char status)
{
	Msg m;

	msg_begin(&m, 'Z');
	msg_put(&m, &status, 1);
	msg_end(&m, out);
}

void
pkt_add_auth(struct evbuffer *out, uint32_t code, const uint8_t *extra,
			 size_t extralen)
{
	Msg m;

	msg_begin(&m, 'R');
	msg_u32(&m, code);
	if (extralen)
		msg_put(&m, extra, extralen);
	msg_end(&m, out);
}

void
pkt_add_param(struct evbuffer *out, const char *name, const char *value)
{
	Msg m;

	msg_begin(&m, 'S');
	msg_str(&m, name);
	msg_str(&m, value);
	msg_end(&m, out);
}

void
pkt_add_backend_key(struct evbuffer *out, uint32_t pid, uint32_t key)
{
	Msg m;

	msg_begin(&m, 'K');
	msg_u32(&m, pid);
	msg_u32(&m, key);
	msg_end(&m, out);
}

/* RowDescription with every column of type text. */
void
pkt_add_row_description(struct evbuffer *out, int ncols,
						const char *const *names)
{
	Msg m;

	msg_begin(&m, 'T');
	msg_u16(&m, (uint16_t) ncols);
	for (int i = 0; i < ncols; i++)
	{
		msg_str(&m, names[i]);
		msg_u32(&m, 0);	 /* table oid */
		msg_u16(&m, 0);	 /* column number */
		msg_u32(&m, 25); /* text */
		msg_u16(&m, (uint16_t) -1);
		msg_u32(&m, (uint32_t) -1);
		msg_u16(&m, 0); /* text format */
	}
	msg_end(&m, out);
}

void
pkt_add_data_row(struct evbuffer *out, int ncols, const char *const *values)
{
	Msg m;

	msg_begin(&m, 'D');
	msg_u16(&m, (uint16_t) ncols);
	for (int i = 0; i < ncols; i++)
	{
		if (values[i] == NULL)
			msg_u32(&m, (uint32_t) -1);
		else
		{
			msg_u32(&m, (uint32_t) strlen(values[i]));
			msg_put(&m, values[i], strlen(values[i]));
		}
	}
	msg_end(&m, out);
}

void
pkt_add_command_complete(struct evbuffer *out, const char *tag)
{
	Msg m;

	msg_begin(&m, 'C');
	msg_str(&m, tag);
	msg_end(&m, out);
}
