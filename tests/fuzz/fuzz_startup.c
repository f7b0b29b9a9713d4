/*
 * fuzz_startup.c
 *		libFuzzer target: the start-up packet parser of pooler/protocol.c.
 *
 * The input is what a new client sends first.  It goes through the two
 * framers of a start-up packet, pkt_peek_bytes and pkt_peek (over an
 * Buf, as client.c reads), which must agree; a whole packet is then
 * copied into an allocation of exactly its length, as client.c does, so
 * that reading one byte past it is an ASan report, and parsed by
 * pkt_parse_startup.  Leaks of a half-parsed packet are LeakSanitizer
 * reports.
 */
#include <string.h>

#include "protocol.h"

#include "fuzz.h"

/* pkt_peek over a Buf must say what pkt_peek_bytes says. */
static void
check_peek_agrees(const uint8_t *data, size_t size, PktStatus st, char type,
				  uint32_t total)
{
	Buf		  buf = {0};
	char	  btype;
	uint32_t  btotal;
	PktStatus bst;

	FUZZ_CHECK(buf_add(&buf, data, size));
	bst = pkt_peek(&buf, true, &btype, &btotal);
	FUZZ_CHECK(bst == st);
	if (st == PKT_READY)
		FUZZ_CHECK(btype == type && btotal == total);
	buf_release(&buf);
}

/* What a successful parse must have produced from pkt (len bytes). */
static void
check_parsed(const StartupPkt *sp, const uint8_t *pkt, size_t len)
{
	switch (sp->code)
	{
		case CODE_CANCEL:
		case CODE_SSL:
		case CODE_GSSENC:
			FUZZ_CHECK(len == (sp->code == CODE_CANCEL ? 16 : 8));
			FUZZ_CHECK(sp->user == NULL && sp->database == NULL &&
					   sp->nsettings == 0 && sp->npq == 0);
			break;
		default:
			/* a v3 packet: pairs, then the terminating empty name */
			FUZZ_CHECK(sp->code >> 16 == 3);
			FUZZ_CHECK(len > 8 && pkt[len - 1] == '\0');
			FUZZ_CHECK(sp->cancel_pid == 0 && sp->cancel_key == 0);
			FUZZ_CHECK(sp->user != NULL && sp->user[0] != '\0');
			FUZZ_CHECK(sp->database != NULL && sp->database[0] != '\0');
			/* every value is one of the packet's strings, whole */
			FUZZ_CHECK(memmem(pkt + 8, len - 8, sp->user,
							  strlen(sp->user) + 1) != NULL);
			FUZZ_CHECK(memmem(pkt + 8, len - 8, sp->database,
							  strlen(sp->database) + 1) != NULL);
			/* settings: named, within bounds; _pq_ options are packet strings */
			FUZZ_CHECK(sp->nsettings >= 0 &&
					   sp->nsettings <= MAX_STARTUP_SETTINGS);
			for (int i = 0; i < sp->nsettings; i++)
				FUZZ_CHECK(sp->names[i][0] != '\0' && sp->values[i] != NULL &&
						   strchr(sp->names[i], '=') == NULL);
			for (int i = 0; i < sp->npq; i++)
				FUZZ_CHECK(strncmp(sp->pq_options[i], "_pq_.", 5) == 0 &&
						   memmem(pkt + 8, len - 8, sp->pq_options[i],
								  strlen(sp->pq_options[i]) + 1) != NULL);
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   type = 'x';
	uint32_t   total = 0;
	char	   ptype;
	uint32_t   ptotal;
	PktStatus  st;
	uint8_t	  *pkt;
	StartupPkt sp;
	char	   err[256];

	st = pkt_peek_bytes(data, size, true, &type, &total);
	check_peek_agrees(data, size, st, type, total);
	if (st == PKT_BAD)
		FUZZ_CHECK(size >= 4);
	if (st != PKT_READY)
		return 0;
	FUZZ_CHECK(type == 0);
	FUZZ_CHECK(total >= 8 && total <= MAX_STARTUP_LEN && total <= size);
	/* one byte less is not a packet yet */
	FUZZ_CHECK(pkt_peek_bytes(data, total - 1, true, &ptype, &ptotal) ==
			   PKT_INCOMPLETE);

	pkt = malloc(total);
	FUZZ_CHECK(pkt != NULL);
	memcpy(pkt, data, total);
	/* an error message must be written whole, terminator included */
	memset(err, 'x', sizeof(err));
	if (pkt_parse_startup(pkt, total, &sp, err, sizeof(err)))
		check_parsed(&sp, pkt, total);
	else
	{
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		FUZZ_CHECK(sp.user == NULL && sp.database == NULL &&
				   sp.nsettings == 0 && sp.npq == 0);
	}
	startup_free(&sp);
	FUZZ_CHECK(sp.user == NULL && sp.database == NULL && sp.nsettings == 0 &&
			   sp.npq == 0);
	free(pkt);
	return 0;
}
