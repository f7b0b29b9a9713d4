/*
 * protocol.h
 *		PostgreSQL wire protocol v3: framing, start-up packets, messages.
 */
#ifndef APS_PROTOCOL_H
#define APS_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROTO_V3		196608 /* 3.0 */
#define CODE_CANCEL		80877102
#define CODE_SSL		80877103
#define CODE_GSSENC		80877104
#define MAX_STARTUP_LEN 10000
#define MAX_MESSAGE_LEN (1U << 30)

typedef enum PktStatus
{
	PKT_INCOMPLETE, /* need more bytes */
	PKT_READY,		/* a whole message is there */
	PKT_BAD			/* malformed length */
} PktStatus;

#define MAX_STARTUP_SETTINGS 64

/* What a start-up packet said. */
typedef struct StartupPkt
{
	uint32_t code; /* protocol version or request code */
	char	*user;
	char	*database;
	uint32_t cancel_pid; /* CancelRequest only */
	uint32_t cancel_key;
	/* settings: start-up parameters and "options" -c name=value, in order */
	int	  nsettings;
	char *names[MAX_STARTUP_SETTINGS];
	char *values[MAX_STARTUP_SETTINGS];
	/* protocol options (_pq_.*) the client asked for: we support none */
	int	  npq;
	char *pq_options[MAX_STARTUP_SETTINGS];
} StartupPkt;

/* Fields of a Parse message: the statement is everything after the name. */
typedef struct ParseMsg
{
	const char	  *name;
	const char	  *query;
	const uint8_t *body; /* query text, parameter count and types */
	size_t		   bodylen;
} ParseMsg;

/* Fields of a Bind message. */
typedef struct BindMsg
{
	const char	  *portal;
	const char	  *statement;
	const uint8_t *rest; /* formats, parameters, result formats */
	size_t		   restlen;
} BindMsg;

/* A big-endian 32-bit word at p. */
static inline uint32_t
pkt_u32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
		   (uint32_t) p[2] << 8 | (uint32_t) p[3];
}

/*
 * Is there a whole message at p (avail bytes)?  Start-up packets have no
 * type byte (type is set to 0).  total is the whole message length,
 * including the type byte.  (Inline, as the two below: they run for every
 * message relayed.)
 */
static inline PktStatus
pkt_peek_bytes(const uint8_t *p, size_t avail, bool startup, char *type,
			   uint32_t *total)
{
	uint32_t len;

	if (startup)
	{
		if (avail < 4)
			return PKT_INCOMPLETE;
		len = pkt_u32(p);
		if (len < 8 || len > MAX_STARTUP_LEN)
			return PKT_BAD;
		*type = 0;
		*total = len;
	}
	else
	{
		if (avail < 5)
			return PKT_INCOMPLETE;
		len = pkt_u32(p + 1);
		if (len < 4 || len > MAX_MESSAGE_LEN)
			return PKT_BAD;
		*type = (char) p[0];
		*total = len + 1;
	}
	return avail >= *total ? PKT_READY : PKT_INCOMPLETE;
}

static inline PktStatus
pkt_peek(const Buf *buf, bool startup, char *type, uint32_t *total)
{
	return pkt_peek_bytes(buf_data(buf), buf_len(buf), startup, type, total);
}

/*
 * Like pkt_peek for a (non-start-up) message that begins off bytes into
 * buf; *first is its first body byte (the status of a ReadyForQuery), or 0.
 * The server's answers are read with it, in place.
 */
static inline PktStatus
pkt_peek_at(const Buf *buf, size_t off, char *type, uint32_t *total,
			char *first)
{
	size_t		   avail = buf_len(buf);
	const uint8_t *h;
	PktStatus	   st;

	if (avail < off + 5)
		return PKT_INCOMPLETE;
	h = buf_data(buf) + off;
	st = pkt_peek_bytes(h, avail - off, false, type, total);
	if (st == PKT_BAD)
		return PKT_BAD;
	*first = *total > 5 && avail - off > 5 ? (char) h[5] : 0;
	return st;
}

extern bool pkt_parse_startup(const uint8_t *pkt, size_t len, StartupPkt *out,
							  char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern void		   startup_free(StartupPkt *s);
extern const char *pkt_statement_name(char type, const uint8_t *msg,
									  size_t len);
extern bool pkt_parse_parse(const uint8_t *msg, size_t len, ParseMsg *out)
	__attribute__((warn_unused_result));
extern bool pkt_parse_bind(const uint8_t *msg, size_t len, BindMsg *out)
	__attribute__((warn_unused_result));
extern bool pkt_parse_target(const uint8_t *msg, size_t len, char *kind,
							 const char **name)
	__attribute__((warn_unused_result));
extern const char *pkt_string_body(const uint8_t *msg, size_t len);
extern bool		   pkt_parse_param_status(const uint8_t *msg, size_t len,
										  const char **name, const char **value)
	__attribute__((warn_unused_result));
extern const char *pkt_error_field(const uint8_t *msg, size_t len, char field);

extern void pkt_add_parse(Buf *out, const char *name, const uint8_t *body,
						  size_t bodylen);
extern void pkt_add_bind(Buf *out, const char *portal, const char *statement,
						 const uint8_t *rest, size_t restlen);
extern void pkt_add_target(Buf *out, char type, char kind, const char *name);
extern void pkt_add_query(Buf *out, const char *sql);
extern void pkt_add_empty(Buf *out, char type);
extern void pkt_add_negotiate(Buf *out, uint32_t minor, char *const *options,
							  int n);

extern void pkt_add_error(Buf *out, const char *severity, const char *sqlstate,
						  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
extern void pkt_add_ready(Buf *out, char status);
extern void pkt_add_auth(Buf *out, uint32_t code, const uint8_t *extra,
						 size_t extralen);
extern void pkt_add_param(Buf *out, const char *name, const char *value);
extern void pkt_add_backend_key(Buf *out, uint32_t pid, uint32_t key);
extern void pkt_add_row_description(Buf *out, int ncols,
									const char *const *names);
extern void pkt_add_row_description_typed(Buf *out, int ncols,
										  const char *const *names,
										  const uint32_t	*types);
extern void pkt_add_data_row(Buf *out, int ncols, const char *const *values);
extern void pkt_add_command_complete(Buf *out, const char *tag);

#endif /* APS_PROTOCOL_H */
