/*
 * protocol.c
 *		PostgreSQL wire protocol v3: framing, start-up packets, messages.
 *
 * Parsing functions work on plain byte arrays and never trust a length:
 * they are what the unit tests (tests/unit/test_protocol.c) and a fuzzer
 * exercise.  Builders append whole messages to a Buf.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "protocol.h"

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static bool
add_setting(StartupPkt *out, const char *name, size_t namelen,
			const char *value, char *err, size_t errlen)
{
	char *n;

	if (out->nsettings >= MAX_STARTUP_SETTINGS)
	{
		snprintf(err, errlen, "too many settings in the start-up packet");
		return false;
	}
	/* a setting's name is an identifier, maybe qualified (my.setting) */
	for (size_t i = 0; i < namelen; i++)
	{
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'))
		{
			snprintf(err, errlen,
					 "invalid configuration parameter name in the start-up "
					 "packet");
			return false;
		}
	}
	n = malloc(namelen + 1);
	if (n == NULL)
		fatal("out of memory");
	memcpy(n, name, namelen);
	n[namelen] = '\0';
	out->names[out->nsettings] = n;
	out->values[out->nsettings] = xstrdup(value);
	out->nsettings++;
	return true;
}

/*
 * The "options" start-up parameter, as PostgreSQL reads it: words split at
 * white space (a backslash takes the next character literally), each
 * "-c name=value", "-cname=value" or "--name=value".  Dashes in names are
 * underscores.  Other switches are refused: they are not settings.
 */
static bool
parse_options(StartupPkt *out, const char *opts, char *err, size_t errlen)
{
	size_t		len = strlen(opts);
	char	   *word = malloc(len + 1);
	const char *p = opts;
	bool		want_c = false;
	bool		ok = true;

	if (word == NULL)
		fatal("out of memory");
	while (ok)
	{
		size_t		n = 0;
		const char *setting;
		const char *eq;

		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0')
			break;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
		{
			if (*p == '\\' && p[1])
				p++;
			word[n++] = *p++;
		}
		word[n] = '\0';

		if (want_c)
			setting = word, want_c = false;
		else if (strcmp(word, "-c") == 0)
		{
			want_c = true;
			continue;
		}
		else if (strncmp(word, "-c", 2) == 0)
			setting = word + 2;
		else if (strncmp(word, "--", 2) == 0)
			setting = word + 2;
		else
		{
			snprintf(err, errlen,
					 "unsupported option \"%s\" in the start-up packet: "
					 "only -c name=value is passed on",
					 word);
			ok = false;
			break;
		}
		eq = strchr(setting, '=');
		if (eq == NULL || eq == setting)
		{
			snprintf(err, errlen, "option \"%s\" requires a value", setting);
			ok = false;
			break;
		}
		for (char *d = (char *) setting; d < eq; d++)
			if (*d == '-')
				*d = '_';
		ok = add_setting(out, setting, (size_t) (eq - setting), eq + 1, err,
						 errlen);
	}
	if (ok && want_c)
	{
		snprintf(err, errlen, "option -c requires a value");
		ok = false;
	}
	free(word);
	return ok;
}

/*
 * Parse a whole start-up packet (length word included).  For version 3.x,
 * the parameters must be NUL-terminated pairs ending with an empty name.
 * user and database are kept apart; "options" is split into settings; every
 * other parameter is a setting too (PostgreSQL treats them as such).
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
		bool		ok = true;

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
		else if (strcmp(name, "options") == 0)
			ok = parse_options(out, value, err, errlen);
		else if (strncmp(name, "_pq_.", 5) == 0)
		{
			if (out->npq < MAX_STARTUP_SETTINGS)
				out->pq_options[out->npq++] = xstrdup(name);
		}
		else if (strcmp(name, "replication") == 0)
		{
			snprintf(err, errlen,
					 "replication connections are not supported by the "
					 "pooler");
			ok = false;
		}
		else
			ok = add_setting(out, name, nl, value, err, errlen);
		if (!ok)
		{
			startup_free(out);
			return false;
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
	s->user = s->database = NULL;
	for (int i = 0; i < s->nsettings; i++)
	{
		free(s->names[i]);
		free(s->values[i]);
	}
	s->nsettings = 0;
	for (int i = 0; i < s->npq; i++)
		free(s->pq_options[i]);
	s->npq = 0;
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

/* A NUL-terminated string at *off inside body (blen bytes); NULL if none. */
static const char *
take_string(const uint8_t *body, size_t blen, size_t *off)
{
	const char *str = (const char *) body + *off;
	size_t		n;

	if (*off >= blen)
		return NULL;
	n = strnlen(str, blen - *off);
	if (*off + n >= blen)
		return NULL;
	*off += n + 1;
	return str;
}

/*
 * Parse ('P'): statement name, query text, parameter count and types.  The
 * body (everything after the name) is what identifies a statement: the same
 * text with the same types is the same statement, whatever it is called.
 */
bool
pkt_parse_parse(const uint8_t *msg, size_t len, ParseMsg *out)
{
	const uint8_t *body = msg + 5;
	size_t		   blen = len - 5;
	size_t		   off = 0;
	uint16_t	   nparams;

	if (len < 5)
		return false;
	out->name = take_string(body, blen, &off);
	out->body = body + off;
	out->query = take_string(body, blen, &off);
	if (out->name == NULL || out->query == NULL || blen - off < 2)
		return false;
	memcpy(&nparams, body + off, 2);
	nparams = ntohs(nparams);
	if (blen - off != 2 + 4 * (size_t) nparams)
		return false;
	out->bodylen = blen - (size_t) (out->body - body);
	return true;
}

/* Bind ('B'): portal and statement names; the rest is passed on as is. */
bool
pkt_parse_bind(const uint8_t *msg, size_t len, BindMsg *out)
{
	const uint8_t *body = msg + 5;
	size_t		   blen = len - 5;
	size_t		   off = 0;

	if (len < 5)
		return false;
	out->portal = take_string(body, blen, &off);
	out->statement = out->portal ? take_string(body, blen, &off) : NULL;
	if (out->statement == NULL)
		return false;
	out->rest = body + off;
	out->restlen = blen - off;
	return true;
}

/* Describe ('D') or Close ('C'): 'S'tatement or 'P'ortal, and its name. */
bool
pkt_parse_target(const uint8_t *msg, size_t len, char *kind, const char **name)
{
	size_t off = 1;

	if (len < 7 || (msg[5] != 'S' && msg[5] != 'P'))
		return false;
	*kind = (char) msg[5];
	*name = take_string(msg + 5, len - 5, &off);
	return *name != NULL && off == len - 5;
}

/*
 * A message whose body is one string (Query, CommandComplete): the string,
 * or NULL if it is not terminated inside the message.
 */
const char *
pkt_string_body(const uint8_t *msg, size_t len)
{
	size_t off = 0;

	if (len < 6)
		return NULL;
	return take_string(msg + 5, len - 5, &off);
}

/* ParameterStatus ('S' from a server): name and value. */
bool
pkt_parse_param_status(const uint8_t *msg, size_t len, const char **name,
					   const char **value)
{
	size_t off = 0;

	if (len < 7)
		return false;
	*name = take_string(msg + 5, len - 5, &off);
	*value = *name ? take_string(msg + 5, len - 5, &off) : NULL;
	return *value != NULL;
}

/*
 * One field of an ErrorResponse or NoticeResponse ('C' for the SQLSTATE,
 * 'M' for the message), or NULL.
 */
const char *
pkt_error_field(const uint8_t *msg, size_t len, char field)
{
	const uint8_t *body = msg + 5;
	size_t		   blen = len < 5 ? 0 : len - 5;
	size_t		   off = 0;

	while (off < blen && body[off] != '\0')
	{
		char		code = (char) body[off++];
		const char *value = take_string(body, blen, &off);

		if (value == NULL)
			return NULL;
		if (code == field)
			return value;
	}
	return NULL;
}

/* A message under construction. */
typedef struct Msg
{
	Buf	  *out;
	size_t start; /* where it begins, counted from buf_data(out) */
} Msg;

/*
 * The builders append to the output buffer directly.  If it cannot grow,
 * what is missing is dropped and out->oom set: the stream then fails the
 * connection instead of sending the rest.
 */
static inline void
msg_put(Msg *m, const void *p, size_t n)
{
	(void) buf_add(m->out, p, n);
}

static void
msg_begin(Msg *m, Buf *out, char type)
{
	static const uint8_t zero[4] = {0, 0, 0, 0};

	m->out = out;
	m->start = buf_len(out);
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

/* Fill in the length word. */
static void
msg_end(Msg *m)
{
	uint32_t len;

	if (m->out->oom || buf_len(m->out) < m->start + 5)
		return;
	len = htonl((uint32_t) (buf_len(m->out) - m->start - 1));
	memcpy(buf_data(m->out) + m->start + 1, &len, 4);
}

void
pkt_add_error(Buf *out, const char *severity, const char *sqlstate,
			  const char *fmt, ...)
{
	Msg		m;
	char	text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	msg_begin(&m, out, 'E');
	msg_put(&m, "S", 1);
	msg_str(&m, severity);
	msg_put(&m, "V", 1);
	msg_str(&m, severity);
	msg_put(&m, "C", 1);
	msg_str(&m, sqlstate);
	msg_put(&m, "M", 1);
	msg_str(&m, text);
	msg_put(&m, "", 1);
	msg_end(&m);
}

void
pkt_add_ready(Buf *out, char status)
{
	Msg m;

	msg_begin(&m, out, 'Z');
	msg_put(&m, &status, 1);
	msg_end(&m);
}

void
pkt_add_auth(Buf *out, uint32_t code, const uint8_t *extra, size_t extralen)
{
	Msg m;

	msg_begin(&m, out, 'R');
	msg_u32(&m, code);
	if (extralen)
		msg_put(&m, extra, extralen);
	msg_end(&m);
}

void
pkt_add_param(Buf *out, const char *name, const char *value)
{
	Msg m;

	msg_begin(&m, out, 'S');
	msg_str(&m, name);
	msg_str(&m, value);
	msg_end(&m);
}

void
pkt_add_backend_key(Buf *out, uint32_t pid, uint32_t key)
{
	Msg m;

	msg_begin(&m, out, 'K');
	msg_u32(&m, pid);
	msg_u32(&m, key);
	msg_end(&m);
}

/* RowDescription with every column of type text. */
void
pkt_add_row_description(Buf *out, int ncols, const char *const *names)
{
	pkt_add_row_description_typed(out, ncols, names, NULL);
}

/* The same with each column's type OID (NULL: all text); text format all the same. */
void
pkt_add_row_description_typed(Buf *out, int ncols, const char *const *names,
							  const uint32_t *types)
{
	Msg m;

	msg_begin(&m, out, 'T');
	msg_u16(&m, (uint16_t) ncols);
	for (int i = 0; i < ncols; i++)
	{
		msg_str(&m, names[i]);
		msg_u32(&m, 0); /* table oid */
		msg_u16(&m, 0); /* column number */
		msg_u32(&m, types ? types[i] : 25);
		msg_u16(&m, (uint16_t) -1);
		msg_u32(&m, (uint32_t) -1);
		msg_u16(&m, 0); /* text format */
	}
	msg_end(&m);
}

void
pkt_add_data_row(Buf *out, int ncols, const char *const *values)
{
	Msg m;

	msg_begin(&m, out, 'D');
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
	msg_end(&m);
}

void
pkt_add_command_complete(Buf *out, const char *tag)
{
	Msg m;

	msg_begin(&m, out, 'C');
	msg_str(&m, tag);
	msg_end(&m);
}

void
pkt_add_parse(Buf *out, const char *name, const uint8_t *body, size_t bodylen)
{
	Msg m;

	msg_begin(&m, out, 'P');
	msg_str(&m, name);
	msg_put(&m, body, bodylen);
	msg_end(&m);
}

void
pkt_add_bind(Buf *out, const char *portal, const char *statement,
			 const uint8_t *rest, size_t restlen)
{
	Msg m;

	msg_begin(&m, out, 'B');
	msg_str(&m, portal);
	msg_str(&m, statement);
	msg_put(&m, rest, restlen);
	msg_end(&m);
}

/* Describe or Close (type 'D' or 'C') of a statement or portal (kind). */
void
pkt_add_target(Buf *out, char type, char kind, const char *name)
{
	Msg m;

	msg_begin(&m, out, type);
	msg_put(&m, &kind, 1);
	msg_str(&m, name);
	msg_end(&m);
}

void
pkt_add_query(Buf *out, const char *sql)
{
	Msg m;

	msg_begin(&m, out, 'Q');
	msg_str(&m, sql);
	msg_end(&m);
}

/* A message without a body: Sync, ParseComplete, CloseComplete, ... */
void
pkt_add_empty(Buf *out, char type)
{
	Msg m;

	msg_begin(&m, out, type);
	msg_end(&m);
}

/*
 * NegotiateProtocolVersion: the newest minor version of protocol 3 we
 * speak, and the protocol options we do not support.
 */
void
pkt_add_negotiate(Buf *out, uint32_t minor, char *const *options, int n)
{
	Msg m;

	msg_begin(&m, out, 'v');
	msg_u32(&m, minor);
	msg_u32(&m, (uint32_t) n);
	for (int i = 0; i < n; i++)
		msg_str(&m, options[i]);
	msg_end(&m);
}
