/*
 * protocol.h
 *		PostgreSQL wire protocol v3: framing, start-up packets, messages.
 */
#ifndef APS_PROTOCOL_H
#define APS_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

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

/* What a start-up packet said. */
typedef struct StartupPkt
{
	uint32_t code; /* protocol version or request code */
	char	*user;
	char	*database;
	char	*application_name;
	uint32_t cancel_pid; /* CancelRequest only */
	uint32_t cancel_key;
} StartupPkt;

extern PktStatus pkt_peek_bytes(const uint8_t *p, size_t avail, bool startup,
								char *type, uint32_t *total);
extern PktStatus pkt_peek(struct evbuffer *buf, bool startup, char *type,
						  uint32_t *total);
extern PktStatus pkt_peek_at(struct evbuffer *buf, size_t off, char *type,
							 uint32_t *total, char *first);
extern bool pkt_parse_startup(const uint8_t *pkt, size_t len, StartupPkt *out,
							  char *err, size_t errlen)
	__attribute__((warn_unused_result));
extern void		   startup_free(StartupPkt *s);
extern const char *pkt_statement_name(char type, const uint8_t *msg,
									  size_t len);

extern void pkt_add_error(struct evbuffer *out, const char *severity,
						  const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
extern void pkt_add_ready(struct evbuffer *out, char status);
extern void pkt_add_auth(struct evbuffer *out, uint32_t code,
						 const uint8_t *extra, size_t extralen);
extern void pkt_add_param(struct evbuffer *out, const char *name,
						  const char *value);
extern void pkt_add_backend_key(struct evbuffer *out, uint32_t pid,
								uint32_t key);
extern void pkt_add_row_description(struct evbuffer *out, int ncols,
									const char *const *names);
extern void pkt_add_data_row(struct evbuffer *out, int ncols,
							 const char *const *values);
extern void pkt_add_command_complete(struct evbuffer *out, const char *tag);

#endif /* APS_PROTOCOL_H */
