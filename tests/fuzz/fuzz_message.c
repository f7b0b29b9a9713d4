/*
 * fuzz_message.c
 *		libFuzzer target: the framing of a stream of messages, and every
 *		parser of pooler/protocol.c that reads a message body.
 *
 * The input is a stream of (non-start-up) messages, as a client or a server
 * sends them.  Three framers must agree on where each message ends:
 * pkt_peek_bytes, pkt_peek over a Buf drained message by message (as
 * client.c reads) and pkt_peek_at over a Buf walked by offset (as
 * server.c reads).  Each whole message is then copied into an allocation of
 * exactly its length, so that a parser reading one byte past it is an ASan
 * report, and handed to every parser that accepts its type byte: see
 * message_parsers.  A new parser is a check function (what it must return)
 * and one line in that table.
 */
#include <stdbool.h>
#include <string.h>

#include "prepared.h"
#include "protocol.h"
#include "session.h"

#include "fuzz.h"

/* Is type one of the type bytes in types (NULL: any type)? */
static bool
type_in(const char *types, char type)
{
	return types == NULL || (type != '\0' && strchr(types, type) != NULL);
}

/* Does s point into the len bytes at start, and end with a NUL there? */
static bool
is_string_in(const char *s, const uint8_t *start, size_t len)
{
	uintptr_t p = (uintptr_t) s;
	uintptr_t b = (uintptr_t) start;

	return p >= b && p < b + len && memchr(s, '\0', b + len - p) != NULL;
}

/*
 * Checks of the parsers: each runs one parser on one whole message msg (len
 * bytes: type byte, length word, body) and aborts if what it returns breaks
 * an invariant.  ASan and UBSan check the rest.
 */

static void
check_statement_name(char type, const uint8_t *msg, size_t len)
{
	const char *name = pkt_statement_name(type, msg, len);
	const char *body = (const char *) msg + 5;

	if (name == NULL)
		return;
	FUZZ_CHECK(is_string_in(name, msg + 5, len - 5));
	switch (type)
	{
		case 'P': /* the statement's name comes first */
			FUZZ_CHECK(name == body);
			break;
		case 'B': /* after the portal's name */
			FUZZ_CHECK(name == body + strlen(body) + 1);
			break;
		case 'D': /* Describe or Close of a statement, not a portal */
		case 'C':
			FUZZ_CHECK(body[0] == 'S' && name == body + 1);
			break;
		default:
			FUZZ_CHECK(!"no other message names a statement");
	}
}

static void
check_parse(char type, const uint8_t *msg, size_t len)
{
	ParseMsg pm;

	if (!pkt_parse_parse(msg, len, &pm))
		return;
	FUZZ_CHECK(is_string_in(pm.name, msg + 5, len - 5));
	FUZZ_CHECK(is_string_in(pm.query, msg + 5, len - 5));
	/* the body is the query text, its NUL, the types: up to the end */
	FUZZ_CHECK(pm.body == (const uint8_t *) pm.query);
	FUZZ_CHECK(pm.body + pm.bodylen == msg + len);
	FUZZ_CHECK(pm.bodylen >= strlen(pm.query) + 3);
	/* the SQL scanners run on every query text the pooler sees */
	(void) session_keywords(pm.query, false);
	(void) session_keywords(pm.query, true);
	{
		char name[64];

		if (stmt_parse_deallocate(pm.query, name, sizeof(name)))
			FUZZ_CHECK(strlen(name) > 0 && strlen(name) < sizeof(name));
	}
}

static void
check_bind(char type, const uint8_t *msg, size_t len)
{
	BindMsg bm;

	if (!pkt_parse_bind(msg, len, &bm))
		return;
	FUZZ_CHECK(is_string_in(bm.portal, msg + 5, len - 5));
	FUZZ_CHECK(is_string_in(bm.statement, msg + 5, len - 5));
	FUZZ_CHECK(bm.rest + bm.restlen == msg + len);
}

static void
check_target(char type, const uint8_t *msg, size_t len)
{
	char		kind;
	const char *name;

	if (!pkt_parse_target(msg, len, &kind, &name))
		return;
	FUZZ_CHECK(kind == 'S' || kind == 'P');
	FUZZ_CHECK(is_string_in(name, msg + 5, len - 5));
	FUZZ_CHECK(name + strlen(name) + 1 == (const char *) msg + len);
}

static void
check_string_body(char type, const uint8_t *msg, size_t len)
{
	const char *s = pkt_string_body(msg, len);

	if (s == NULL)
		return;
	FUZZ_CHECK(s == (const char *) msg + 5 && is_string_in(s, msg, len));
	{
		uint32_t kw[8];
		uint32_t full[8];

		/* the short loop for plain statements must agree with the full one */
		for (int esc = 0; esc < 2; esc++)
		{
			int n = session_statement_keywords(s, esc, kw, 8);

			FUZZ_CHECK(n == session_statement_keywords_full(s, esc, full, 8));
			FUZZ_CHECK(memcmp(kw, full, sizeof(uint32_t) * (size_t) n) == 0);
		}
	}
}

static void
check_param_status(char type, const uint8_t *msg, size_t len)
{
	const char *name;
	const char *value;

	if (!pkt_parse_param_status(msg, len, &name, &value))
		return;
	FUZZ_CHECK(is_string_in(name, msg + 5, len - 5));
	FUZZ_CHECK(is_string_in(value, msg + 5, len - 5));
	FUZZ_CHECK(value == name + strlen(name) + 1);
}

static void
check_error_field(char type, const uint8_t *msg, size_t len)
{
	static const char fields[] = "SVCMDHPpqWstcdnFLR";

	for (const char *f = fields; *f; f++)
	{
		const char *v = pkt_error_field(msg, len, *f);

		if (v)
			FUZZ_CHECK(is_string_in(v, msg + 5, len - 5) && v[-1] == *f);
	}
}

typedef void (*ParserCheck)(char type, const uint8_t *msg, size_t len);

/*
 * Every parser of a message body, with the type bytes it accepts; a parser
 * that is given any type and must refuse the others says NULL.  Direction
 * is not modelled: 'C' is Close from a client and CommandComplete from a
 * server, and a parser of either gets every 'C' message, since each must be
 * safe on any bytes.
 */
static const struct
{
	const char *types; /* type bytes it accepts; NULL: any */
	ParserCheck check;
} message_parsers[] = {
	{NULL, check_statement_name},
	{"P", check_parse},
	{"B", check_bind},
	{"DC", check_target},
	{"QC", check_string_body},
	{"S", check_param_status},
	{"EN", check_error_field},
};

/* pkt_peek and pkt_peek_at must say what pkt_peek_bytes says at off. */
static void
check_framers_agree(Buf *rest, Buf *whole, const uint8_t *data, size_t off,
					PktStatus st, char type, uint32_t total)
{
	char	  t;
	char	  first;
	uint32_t  n;
	PktStatus s;

	s = pkt_peek(rest, false, &t, &n);
	FUZZ_CHECK(s == st);
	if (st == PKT_READY)
		FUZZ_CHECK(t == type && n == total);

	s = pkt_peek_at(whole, off, &t, &n, &first);
	FUZZ_CHECK(s == st);
	if (st == PKT_READY)
	{
		FUZZ_CHECK(t == type && n == total);
		/* the first body byte (a ReadyForQuery's status), or 0 */
		FUZZ_CHECK(first == (total > 5 ? (char) data[off + 5] : 0));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Buf	   rest = {0};
	Buf	   whole = {0};
	size_t off = 0;

	FUZZ_CHECK(buf_add(&rest, data, size));
	FUZZ_CHECK(buf_add(&whole, data, size));
	for (;;)
	{
		size_t	  avail = size - off;
		char	  type = 'x';
		uint32_t  total = 0;
		char	  ptype;
		uint32_t  ptotal;
		PktStatus st;
		uint8_t	 *msg;

		st = pkt_peek_bytes(data + off, avail, false, &type, &total);
		check_framers_agree(&rest, &whole, data, off, st, type, total);
		if (st == PKT_BAD)
			FUZZ_CHECK(avail >= 5);
		if (st != PKT_READY)
			break;
		FUZZ_CHECK(type == (char) data[off]);
		FUZZ_CHECK(total >= 5 && total <= avail);
		/* one byte less is not a message yet */
		FUZZ_CHECK(pkt_peek_bytes(data + off, total - 1, false, &ptype,
								  &ptotal) == PKT_INCOMPLETE);

		msg = malloc(total);
		FUZZ_CHECK(msg != NULL);
		memcpy(msg, data + off, total);
		for (size_t i = 0; i < lengthof(message_parsers); i++)
			if (type_in(message_parsers[i].types, type))
				message_parsers[i].check(type, msg, total);
		free(msg);

		buf_drain(&rest, total);
		FUZZ_CHECK(buf_len(&rest) == size - off - total);
		off += total;
	}
	buf_release(&rest);
	buf_release(&whole);
	return 0;
}
