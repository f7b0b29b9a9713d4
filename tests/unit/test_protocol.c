/*
 * test_protocol.c
 *		Unit tests of the packet parser (pooler/protocol.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#include "check.h"

static size_t
put_u32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
	return 4;
}

/* A start-up packet from NUL-separated pairs (ending with "\0\0"). */
static size_t
startup(uint8_t *buf, uint32_t code, const char *pairs, size_t pairs_len)
{
	size_t len = 8 + pairs_len;

	put_u32(buf, (uint32_t) len);
	put_u32(buf + 4, code);
	memcpy(buf + 8, pairs, pairs_len);
	return len;
}

static void
test_peek(void)
{
	uint8_t	 msg[16] = {'Q', 0, 0, 0, 9, 's', 'e', 'l', '\0'};
	char	 type;
	uint32_t total;

	CHECK(pkt_peek_bytes(msg, 4, false, &type, &total) == PKT_INCOMPLETE);
	CHECK(pkt_peek_bytes(msg, 9, false, &type, &total) == PKT_INCOMPLETE);
	CHECK(pkt_peek_bytes(msg, 10, false, &type, &total) == PKT_READY);
	CHECK(type == 'Q' && total == 10);
	/* length below 4 is malformed */
	put_u32(msg + 1, 3);
	CHECK(pkt_peek_bytes(msg, 10, false, &type, &total) == PKT_BAD);
	/* absurd length */
	put_u32(msg + 1, 0x7fffffff);
	CHECK(pkt_peek_bytes(msg, 10, false, &type, &total) == PKT_BAD);
	/* start-up: too short, too long */
	put_u32(msg, 7);
	CHECK(pkt_peek_bytes(msg, 8, true, &type, &total) == PKT_BAD);
	put_u32(msg, MAX_STARTUP_LEN + 1);
	CHECK(pkt_peek_bytes(msg, 8, true, &type, &total) == PKT_BAD);
	put_u32(msg, 8);
	CHECK(pkt_peek_bytes(msg, 8, true, &type, &total) == PKT_READY);
	CHECK(type == 0 && total == 8);
}

static void
test_peek_buf(void)
{
	Buf		 buf = {0};
	char	 type;
	uint32_t total;

	/* a message that arrives in two parts */
	CHECK(pkt_peek(&buf, false, &type, &total) == PKT_INCOMPLETE);
	buf_add(&buf, "Q\0\0", 3);
	CHECK(pkt_peek(&buf, false, &type, &total) == PKT_INCOMPLETE);
	buf_add(&buf,
			"\0\x06"
			"xy",
			4);
	CHECK(pkt_peek(&buf, false, &type, &total) == PKT_READY);
	CHECK(type == 'Q' && total == 7);
	buf_release(&buf);
}

static void
test_peek_at(void)
{
	Buf		 buf = {0};
	char	 type;
	char	 first;
	uint32_t total;

	/* CommandComplete, then ReadyForQuery 'I' in two parts */
	buf_add(&buf,
			"C\0\0\0\x0b"
			"SELECT 1\0",
			12);
	buf_add(&buf, "Z\0\0", 3);
	CHECK(pkt_peek_at(&buf, 0, &type, &total, &first) == PKT_READY);
	CHECK(type == 'C' && total == 12);
	CHECK(pkt_peek_at(&buf, 12, &type, &total, &first) == PKT_INCOMPLETE);
	buf_add(&buf,
			"\0\x05"
			"I",
			3);
	CHECK(pkt_peek_at(&buf, 12, &type, &total, &first) == PKT_READY);
	CHECK(type == 'Z' && total == 6 && first == 'I');
	CHECK(pkt_peek_at(&buf, 18, &type, &total, &first) == PKT_INCOMPLETE);
	/* a bad length further on */
	buf_add(&buf, "D\0\0\0\x01", 5);
	CHECK(pkt_peek_at(&buf, 18, &type, &total, &first) == PKT_BAD);
	/* a header without its first body byte yet */
	buf_drain(&buf, 18);
	buf_drain(&buf, 5);
	CHECK(buf_len(&buf) == 0 && buf.data == NULL);
	buf_add(&buf, "Z\0\0\0\x05", 5);
	CHECK(pkt_peek_at(&buf, 0, &type, &total, &first) == PKT_INCOMPLETE);
	CHECK(type == 'Z' && total == 6 && first == 0);
	buf_release(&buf);
}

/* The buffers themselves: growth, moving bytes to the front, handing over. */
static void
test_buf(void)
{
	Buf		 a = {0};
	Buf		 b = {0};
	uint8_t	 big[3 * BUF_BLOCK];
	uint8_t	 out[16];
	uint8_t *p;
	size_t	 avail = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t) (i * 7);

	/* an empty buffer holds no memory; a drained one gives it back */
	CHECK(a.data == NULL && buf_data(&a) == NULL);
	CHECK(buf_add(&a, "abc", 3) && a.cap == BUF_BLOCK);
	buf_drain(&a, 3);
	CHECK(a.data == NULL && a.cap == 0);

	/* a message longer than a block grows the buffer, in one piece */
	CHECK(buf_add(&a, big, 10));
	CHECK(buf_add(&a, big + 10, sizeof(big) - 10));
	CHECK(buf_len(&a) == sizeof(big) &&
		  memcmp(buf_data(&a), big, sizeof(big)) == 0);
	CHECK(a.cap >= sizeof(big));
	CHECK(buf_remove(&a, out, 5) == 5 && memcmp(out, big, 5) == 0);
	CHECK(buf_len(&a) == sizeof(big) - 5 && buf_data(&a)[0] == big[5]);
	buf_release(&a);

	/* the bytes move to the front when the tail is too short for a read */
	CHECK(buf_add(&a, big, BUF_BLOCK - 100));
	buf_drain(&a, BUF_BLOCK - 200); /* 100 bytes left, 100 free at the end */
	p = buf_reserve(&a, BUF_BLOCK, &avail);
	CHECK(p != NULL && a.off == 0 && a.cap == BUF_BLOCK);
	CHECK(avail == BUF_BLOCK - 100 && p == a.data + 100);
	CHECK(memcmp(buf_data(&a), big + BUF_BLOCK - 200, 100) == 0);
	memcpy(p, "xyz", 3);
	buf_commit(&a, 3);
	CHECK(buf_len(&a) == 103 && memcmp(buf_data(&a) + 100, "xyz", 3) == 0);

	/* moving everything into an empty buffer hands the memory over */
	p = a.data;
	CHECK(buf_move(&a, &b, 1000));
	CHECK(b.data == p && buf_len(&b) == 103 && a.data == NULL);
	/* moving part of it copies */
	CHECK(buf_move(&b, &a, 3));
	CHECK(buf_len(&a) == 3 && buf_len(&b) == 100);
	CHECK(memcmp(buf_data(&a), big + BUF_BLOCK - 200, 3) == 0);
	/* into a buffer that has bytes: appended after them */
	CHECK(buf_move(&b, &a, 100));
	CHECK(buf_len(&a) == 103 && b.data == NULL);
	CHECK(memcmp(buf_data(&a) + 100, "xyz", 3) == 0);
	buf_release(&a);
	buf_release(&b);
	CHECK(!a.oom && !b.oom);
}

static void
test_startup(void)
{
	uint8_t			  buf[256];
	StartupPkt		  sp;
	char			  err[128];
	size_t			  len;
	static const char ok[] =
		"user\0alice\0database\0shop\0application_name\0api\0";
	static const char nodb[] = "user\0bob\0";
	static const char nouser[] = "database\0x\0";
	static const char unterminated[] = "user\0alice";

	len = startup(buf, PROTO_V3, ok, sizeof(ok));
	CHECK(pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	CHECK(sp.code == PROTO_V3 && strcmp(sp.user, "alice") == 0 &&
		  strcmp(sp.database, "shop") == 0 && sp.nsettings == 1 &&
		  strcmp(sp.names[0], "application_name") == 0 &&
		  strcmp(sp.values[0], "api") == 0);
	startup_free(&sp);

	/* database defaults to the user */
	len = startup(buf, PROTO_V3, nodb, sizeof(nodb));
	CHECK(pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	CHECK(strcmp(sp.database, "bob") == 0);
	startup_free(&sp);

	len = startup(buf, PROTO_V3, nouser, sizeof(nouser));
	CHECK(!pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	CHECK(strstr(err, "no PostgreSQL user name") != NULL);

	/* missing terminators */
	len = startup(buf, PROTO_V3, unterminated, sizeof(unterminated) - 1);
	CHECK(!pkt_parse_startup(buf, len, &sp, err, sizeof(err)));

	/* protocol 2 is refused */
	len = startup(buf, 2 << 16, ok, sizeof(ok));
	CHECK(!pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	CHECK(strstr(err, "unsupported frontend protocol 2.0") != NULL);

	/* length word that disagrees with the packet */
	len = startup(buf, PROTO_V3, ok, sizeof(ok));
	CHECK(!pkt_parse_startup(buf, len - 1, &sp, err, sizeof(err)));

	/* SSLRequest and CancelRequest */
	len = startup(buf, CODE_SSL, "", 0);
	CHECK(pkt_parse_startup(buf, len, &sp, err, sizeof(err)) &&
		  sp.code == CODE_SSL);
	put_u32(buf, 16);
	put_u32(buf + 4, CODE_CANCEL);
	put_u32(buf + 8, 42);
	put_u32(buf + 12, 0xdeadbeef);
	CHECK(pkt_parse_startup(buf, 16, &sp, err, sizeof(err)));
	CHECK(sp.code == CODE_CANCEL && sp.cancel_pid == 42 &&
		  sp.cancel_key == 0xdeadbeef);
	put_u32(buf, 12);
	CHECK(!pkt_parse_startup(buf, 12, &sp, err, sizeof(err)));
}

/* options=-c ..., _pq_ options, minor versions, replication refused */
static void
test_startup_options(void)
{
	uint8_t			  buf[512];
	StartupPkt		  sp;
	char			  err[256];
	size_t			  len;
	static const char opts[] =
		"user\0u\0options\0-c search_path=a,\\ b --work-mem=64MB "
		"-cstatement_timeout=5s\0_pq_.foo\0x\0TimeZone\0UTC\0";
	static const char bad[] = "user\0u\0options\0-d 5\0";
	static const char novalue[] = "user\0u\0options\0-c\0";
	static const char repl[] = "user\0u\0replication\0true\0";
	static const char badname[] = "user\0u\0a=b\0x\0";

	len = startup(buf, PROTO_V3 + 2, opts, sizeof(opts));
	CHECK(pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	CHECK((sp.code & 0xffff) == 2 && sp.npq == 1 &&
		  strcmp(sp.pq_options[0], "_pq_.foo") == 0);
	CHECK(sp.nsettings == 4);
	CHECK(strcmp(sp.names[0], "search_path") == 0 &&
		  strcmp(sp.values[0], "a, b") == 0);
	CHECK(strcmp(sp.names[1], "work_mem") == 0 &&
		  strcmp(sp.values[1], "64MB") == 0);
	CHECK(strcmp(sp.names[2], "statement_timeout") == 0 &&
		  strcmp(sp.values[2], "5s") == 0);
	CHECK(strcmp(sp.names[3], "TimeZone") == 0);
	startup_free(&sp);

	len = startup(buf, PROTO_V3, bad, sizeof(bad));
	CHECK(!pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	CHECK(strstr(err, "unsupported option \"-d\"") != NULL);
	len = startup(buf, PROTO_V3, novalue, sizeof(novalue));
	CHECK(!pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	len = startup(buf, PROTO_V3, repl, sizeof(repl));
	CHECK(!pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	CHECK(strstr(err, "replication") != NULL);
	len = startup(buf, PROTO_V3, badname, sizeof(badname));
	CHECK(!pkt_parse_startup(buf, len, &sp, err, sizeof(err)));
	CHECK(strstr(err, "invalid configuration parameter name") != NULL);
}

/* Field parsers of Parse, Bind, Describe/Close, ParameterStatus, Error */
static void
test_fields(void)
{
	static const uint8_t parse[] =
		"P\0\0\0\x17st\0select $1\0\0\x01\0\0\0\x17";
	static const uint8_t parse_badcount[] =
		"P\0\0\0\x17st\0select $1\0\0\x02\0\0\0\x17";
	static const uint8_t bind[] = "B\0\0\0\x0fp\0st\0\0\0\0\0\0\0";
	static const uint8_t desc[] = "D\0\0\0\x08Sst\0";
	static const uint8_t desc_bad[] = "D\0\0\0\x08Xst\0";
	static const uint8_t status[] = "S\0\0\0\x11TimeZone\0UTC\0";
	static const uint8_t error[] = "E\0\0\0\x18SERROR\0C42P05\0Mdup\0\0";
	ParseMsg			 pm;
	BindMsg				 bm;
	char				 kind;
	const char			*name;
	const char			*value;

	CHECK(pkt_parse_parse(parse, sizeof(parse) - 1, &pm));
	CHECK(strcmp(pm.name, "st") == 0 && strcmp(pm.query, "select $1") == 0);
	CHECK(pm.bodylen == sizeof(parse) - 1 - 5 - 3);
	CHECK(!pkt_parse_parse(parse_badcount, sizeof(parse_badcount) - 1, &pm));
	CHECK(!pkt_parse_parse(parse, 12, &pm));
	CHECK(pkt_parse_bind(bind, sizeof(bind) - 1, &bm));
	CHECK(strcmp(bm.portal, "p") == 0 && strcmp(bm.statement, "st") == 0 &&
		  bm.restlen == 6);
	CHECK(!pkt_parse_bind(bind, 8, &bm));
	/* rewritten under the server's name: the same message but for it */
	{
		Buf		out = {0};
		BindMsg bm2;

		buf_add(&out, "x", 1); /* after other output */
		pkt_add_bind(&out, bm.portal, "_aps_12", bm.rest, bm.restlen);
		CHECK(buf_len(&out) == 1 + sizeof(bind) - 1 + 5);
		CHECK(buf_data(&out)[1] == 'B' &&
			  pkt_u32(buf_data(&out) + 2) == buf_len(&out) - 2);
		CHECK(pkt_parse_bind(buf_data(&out) + 1, buf_len(&out) - 1, &bm2));
		CHECK(strcmp(bm2.portal, "p") == 0 &&
			  strcmp(bm2.statement, "_aps_12") == 0 && bm2.restlen == 6 &&
			  memcmp(bm2.rest, bm.rest, 6) == 0);
		buf_release(&out);
	}
	CHECK(pkt_parse_target(desc, sizeof(desc) - 1, &kind, &name));
	CHECK(kind == 'S' && strcmp(name, "st") == 0);
	CHECK(!pkt_parse_target(desc_bad, sizeof(desc_bad) - 1, &kind, &name));
	CHECK(pkt_parse_param_status(status, sizeof(status) - 1, &name, &value));
	CHECK(strcmp(name, "TimeZone") == 0 && strcmp(value, "UTC") == 0);
	CHECK(strcmp(pkt_error_field(error, sizeof(error) - 1, 'C'), "42P05") ==
		  0);
	CHECK(pkt_error_field(error, sizeof(error) - 1, 'D') == NULL);
	CHECK(pkt_error_field(error, 12, 'M') == NULL);
}

static void
test_statement_name(void)
{
	static const uint8_t parse_named[] = "P\0\0\0\x11stmt1\0select 1\0";
	static const uint8_t parse_unnamed[] = "P\0\0\0\x0c"
										   "\0select 1\0";
	static const uint8_t bind_named[] = "B\0\0\0\x0d"
										"\0stmt2\0\0\0";
	static const uint8_t describe_portal[] = "D\0\0\0\x06"
											 "Pp\0";
	static const uint8_t close_stmt[] = "C\0\0\0\x08"
										"Ss1\0";
	static const uint8_t truncated[] = "P\0\0\0\x08"
									   "abc";
	const char			*n;

	n = pkt_statement_name('P', parse_named, sizeof(parse_named) - 1);
	CHECK(n && strcmp(n, "stmt1") == 0);
	n = pkt_statement_name('P', parse_unnamed, sizeof(parse_unnamed) - 1);
	CHECK(n && n[0] == '\0');
	n = pkt_statement_name('B', bind_named, sizeof(bind_named) - 1);
	CHECK(n && strcmp(n, "stmt2") == 0);
	CHECK(pkt_statement_name('D', describe_portal,
							 sizeof(describe_portal) - 1) == NULL);
	n = pkt_statement_name('C', close_stmt, sizeof(close_stmt) - 1);
	CHECK(n && strcmp(n, "s1") == 0);
	CHECK(pkt_statement_name('P', truncated, sizeof(truncated) - 1) == NULL);
}

static void
test_builders(void)
{
	Buf			bufv = {0};
	Buf		   *buf = &bufv;
	const char *vals[2] = {"x", NULL};
	uint8_t		tmp[256];
	size_t		n;
	char		type;
	uint32_t	total;

	pkt_add_error(buf, "ERROR", "53300", "pool limit of size %d", 5);
	n = buf_len(buf);
	CHECK(pkt_peek(buf, false, &type, &total) == PKT_READY);
	CHECK(type == 'E' && total == n);
	buf_remove(buf, tmp, n);
	CHECK(memmem(tmp, n, "C53300", 7) != NULL);
	CHECK(memmem(tmp, n, "Mpool limit of size 5", 22) != NULL);

	pkt_add_data_row(buf, 2, vals);
	n = buf_len(buf);
	buf_remove(buf, tmp, n);
	/* D, len 4, ncols 2, len 1, 'x', len -1 */
	CHECK(n == 1 + 4 + 2 + 4 + 1 + 4);
	CHECK(tmp[n - 1] == 0xff && tmp[n - 4] == 0xff);

	pkt_add_ready(buf, 'T');
	CHECK(buf_len(buf) == 6);
	CHECK(memcmp(buf_data(buf), "Z\0\0\0\x05T", 6) == 0);
	/* a message built after others: its own length, not the buffer's */
	pkt_add_command_complete(buf, "SELECT 1");
	CHECK(buf_len(buf) == 6 + 1 + 4 + 9);
	CHECK(memcmp(buf_data(buf) + 6, "C\0\0\0\x0dSELECT 1", 14) == 0);
	buf_release(buf);
}

int
main(void)
{
	test_peek();
	test_peek_buf();
	test_buf();
	test_peek_at();
	test_startup();
	test_statement_name();
	test_startup_options();
	test_fields();
	test_builders();
	printf("test_protocol: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
