/*-------------------------------------------------------------------------
 *
 * errors.c
 *		Every statement a client sent that ended in ERROR, by SQLSTATE.
 *
 * What counts
 * -----------
 * One failed statement per ErrorResponse of severity ERROR that a client
 * backend sends to its client, whatever raised it: the raw parser (syntax),
 * parse analysis (an unknown column, a missing table), the rewriter, the
 * planner (1/0 folded while planning), ExecutorStart (permission denied),
 * execution, a cancel, statement_timeout, a failed COMMIT, a Bind whose
 * parameter does not convert.  That is one per failed statement as the
 * client sees it: a multi-statement simple Query stops at its first error;
 * in the extended protocol the server skips every message up to Sync after
 * an error; in a failed transaction block each statement up to ROLLBACK is
 * refused with an error of its own (25P02), and counted.  An error a
 * function catches (PL/pgSQL EXCEPTION) never reaches the client and is
 * not counted; FATAL ends a session, not a statement, and is not counted
 * either.
 *
 * Each one counts in the scaling signals' window (error_rate_pct: one
 * statement, one failure) and in a small shared table keyed by (database,
 * user, SQLSTATE): count, first and last seen, the last message, and the
 * text of the last statement that failed, normalized when the view is
 * read.  The user is the client's (after SET ROLE, not a SECURITY DEFINER
 * function's owner).
 *
 * Where it is seen
 * ----------------
 * The ErrorResponse goes through PqCommMethods->putmessage, which we wrap
 * at preload, so in every process the postmaster starts (parallel workers
 * replace it with their message queue; only client backends count).
 * emit_log_hook would be the obvious place, but EmitErrorReport calls it
 * only for messages bound for the server log: with log_min_messages at
 * log, fatal or panic no ERROR reaches it.  Every ERROR goes to the client
 * (client_min_messages stops at error), so the protocol layer sees each
 * failure exactly once, however the server logs.  It sees the message as
 * the client does: localized, in the client's encoding.
 *
 * The failing statement's text: debug_query_string is the client's query
 * string while the error is reported.  hooks.c tells us where the client's
 * statement being processed lies in it (from its parse analysis at the top
 * level until it ends), tied to the query string and the statement start
 * time, as the string's memory is reused from one message to the next.
 * When no statement is being processed (a syntax error, an error in parse
 * analysis of a later statement of the string), the whole string is kept
 * with the error's position, and the view cuts out the statement around
 * that position.
 *
 * Rules inside the wrapper
 * ------------------------
 * It runs inside EmitErrorReport: it must never raise an error (that would
 * recurse into error reporting), and it allocates nothing.  It takes no
 * LWLock (acquiring one can itself fail, "too many LWLocks taken", and the
 * failing code may hold locks until the transaction aborts), only
 * spinlocks, each held for a bounded copy or scan.
 *
 * Cost: every message a backend sends pays one indirect call, a test of
 * its type byte and a tail call (7 instructions).  A failed statement
 * whose key is in the table costs a walk over the message's fields, a hash
 * of 12 bytes, typically one probe, one clock read, a slot spinlock taken
 * twice (find, then update) and copies of the message (at most 512 bytes)
 * and of the statement's text (at most apiscale.max_query_length bytes,
 * and 8 kB); plus the signals' two atomic additions.  A key not yet in the
 * table also takes the table's spinlock once, to claim a slot (the least
 * recently seen of the 256 when all are taken).  About 790 instructions
 * in all, against about 20,900 for the server's own error report
 * (tests/bench/error_cost.sh).
 *
 * Literal values stay in shared memory, as captured parameters do
 * (apiscale.capture_parameters = off keeps no text); the view shows the
 * text normalized, and shows texts and messages only to the statement's
 * user, superusers and members of pg_read_all_stats.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/libpq.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/scansup.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "errors.h"
#include "guc.h"
#include "normalize.h"
#include "signals.h"
#include "sqlfuncs.h"
#include "store.h"

#define ERR_SLOTS		256	 /* keys kept; a power of two */
#define ERR_MESSAGE_LEN 512	 /* bytes of the last message kept */
#define ERR_QUERY_MAX	8192 /* at most this many bytes of statement */

/* Bytes of statement text a slot holds, terminator included. */
#define err_query_len() Min(aps_max_query_length, ERR_QUERY_MAX)

/* One table entry's key. */
typedef struct ErrKey
{
	Oid dbid;	  /* database */
	Oid userid;	  /* the client's user (GetOuterUserId) */
	int sqlstate; /* MAKE_SQLSTATE code */
} ErrKey;

/*
 * One (database, user, SQLSTATE).  tag and seen are read without the
 * spinlock, to find a key and to choose a slot to reuse; everything else
 * is read and written under it.
 */
typedef struct ErrSlot
{
	pg_atomic_uint32 tag;  /* hash of key, never 0; 0: never used */
	pg_atomic_uint64 seen; /* last_seen, as a hint for reuse */
	slock_t			 mutex;
	ErrKey			 key;
	int64			 count;			   /* failed statements */
	TimestampTz		 first_seen;	   /* the first of them */
	TimestampTz		 last_seen;		   /* the last of them */
	int				 message_encoding; /* the client's encoding */
	int				 message_len;	   /* bytes in message[] */
	int				 query_encoding;   /* the database's encoding */
	int				 query_len;		   /* bytes in query[]; -1: none kept */
	int	 query_position; /* error position in query[], characters from 1;
						  * 0: none (query[] is the failing statement) */
	char message[ERR_MESSAGE_LEN];
	char query[FLEXIBLE_ARRAY_MEMBER]; /* raw text, literals and all */
} ErrSlot;

/* The shared table: this header, then ERR_SLOTS slots of slot_size. */
typedef struct ErrShared
{
	slock_t claim; /* held to give a key a slot, and to reset */
} ErrShared;

/* What the wrapper reads from an ErrorResponse (pointers into it). */
typedef struct ErrResponse
{
	const char *severity; /* not localized: "ERROR", "FATAL", ... */
	const char *sqlstate; /* five characters */
	const char *message;  /* primary message */
	int			message_len;
	int			position; /* characters from 1 in the query string; 0 */
} ErrResponse;

/* Local state */
static ErrShared		   *errs = NULL;
static Size					slot_size = 0;
static const PQcommMethods *prev_comm = NULL;
static PQcommMethods		aps_comm;

/*
 * The client's statement being processed: its bounds in source, which was
 * debug_query_string at the statement start time stamp.
 */
static const char *stmt_source = NULL;
static int		   stmt_location = -1;
static int		   stmt_len = 0;
static TimestampTz stmt_stamp = 0;

PG_FUNCTION_INFO_V1(apiscale_errors);

static int aps_putmessage(char msgtype, const char *s, size_t len);

/* ---- shared memory ------------------------------------------------- */

static Size
errors_shmem_size(void)
{
	slot_size =
		MAXALIGN(add_size(offsetof(ErrSlot, query), (Size) err_query_len()));
	return add_size(MAXALIGN(sizeof(ErrShared)),
					mul_size(ERR_SLOTS, slot_size));
}

static inline ErrSlot *
slot_at(int i)
{
	return (ErrSlot *) ((char *) errs + MAXALIGN(sizeof(ErrShared)) +
						(Size) i * slot_size);
}

/* Called from shmem_request_hook. */
void
aps_errors_request(void)
{
	RequestAddinShmemSpace(errors_shmem_size());
}

/* Called from shmem_startup_hook, under AddinShmemInitLock. */
void
aps_errors_startup(void)
{
	bool found;

	errs = ShmemInitStruct("apiscale errors", errors_shmem_size(), &found);
	if (!found)
	{
		SpinLockInit(&errs->claim);
		for (int i = 0; i < ERR_SLOTS; i++)
		{
			ErrSlot *slot = slot_at(i);

			pg_atomic_init_u32(&slot->tag, 0);
			pg_atomic_init_u64(&slot->seen, 0);
			SpinLockInit(&slot->mutex);
			memset(&slot->key, 0, sizeof(slot->key));
			slot->count = 0;
		}
	}
}

/*
 * Wrap the protocol layer's putmessage.  Called once from _PG_init, in the
 * postmaster: the processes it starts inherit the wrapper.
 */
void
aps_errors_install(void)
{
	prev_comm = PqCommMethods;
	aps_comm = *prev_comm;
	aps_comm.putmessage = aps_putmessage;
	PqCommMethods = &aps_comm;
}

/* ---- the client's statement (called by hooks.c) ------------------- */

/*
 * A top-level statement of the client's query string is being processed:
 * source (the string as parse analysis saw it), location and len (0: to
 * the end) as in Query.  Strings other than the client's are ignored.
 */
void
aps_errors_statement(const char *source, int location, int len)
{
	if (source == NULL || source != debug_query_string || location < 0)
		return;
	stmt_source = source;
	stmt_location = location;
	stmt_len = Max(len, 0);
	stmt_stamp = GetCurrentStatementStartTimestamp();
}

/* The client's top-level statement is over. */
void
aps_errors_statement_done(void)
{
	stmt_source = NULL;
}

/*
 * Will this backend's failed top-level statements be counted here, on the
 * way to the client?  If not (no client: a background worker running
 * statements, single-user mode), hooks.c counts their failed executions
 * in the signals itself.
 */
bool
aps_errors_reach_client(void)
{
	return errs != NULL && PqCommMethods == &aps_comm &&
		   AmRegularBackendProcess() && whereToSendOutput == DestRemote;
}

/* ---- the wrapper --------------------------------------------------- */

/*
 * The fields we need of an ErrorResponse's body: a sequence of (type byte,
 * NUL-terminated string), ended by a zero byte.  False if it is malformed
 * or lacks one of them.  Reads only within [s, s + len).
 */
static bool
parse_response(const char *s, size_t len, ErrResponse *r)
{
	const char *p = s;
	const char *end = s + len;

	memset(r, 0, sizeof(*r));
	while (p < end && *p != '\0')
	{
		char		field = *p++;
		const char *nul = memchr(p, '\0', end - p);

		if (nul == NULL)
			return false;
		switch (field)
		{
			case PG_DIAG_SEVERITY_NONLOCALIZED:
				r->severity = p;
				break;
			case PG_DIAG_SQLSTATE:
				r->sqlstate = p;
				break;
			case PG_DIAG_MESSAGE_PRIMARY:
				r->message = p;
				r->message_len = (int) Min(nul - p, (ptrdiff_t) PG_INT32_MAX);
				break;
			case PG_DIAG_STATEMENT_POSITION:
				r->position = 0;
				for (const char *d = p; d < nul && *d >= '0' && *d <= '9'; d++)
				{
					if (r->position > PG_INT32_MAX / 10 - 1)
						break;
					r->position = r->position * 10 + (*d - '0');
				}
				break;
			default:
				break;
		}
		p = nul + 1;
	}
	return r->severity != NULL && r->sqlstate != NULL && r->message != NULL &&
		   strlen(r->sqlstate) == 5;
}

static inline bool
keys_equal(const ErrKey *a, const ErrKey *b)
{
	return a->dbid == b->dbid && a->userid == b->userid &&
		   a->sqlstate == b->sqlstate;
}

/*
 * key's slot, or NULL.  Probes from the key's home slot up to the first
 * slot never used: slots are emptied only all at once (reset), and a key
 * takes the first never-used slot of its probe sequence, so it cannot lie
 * beyond one.
 */
static ErrSlot *
find_slot(const ErrKey *key, uint32 tag)
{
	for (int i = 0; i < ERR_SLOTS; i++)
	{
		ErrSlot *slot = slot_at((tag + i) & (ERR_SLOTS - 1));
		uint32	 t = pg_atomic_read_u32(&slot->tag);
		bool	 same;

		if (t == 0)
			return NULL;
		if (t != tag)
			continue;
		SpinLockAcquire(&slot->mutex);
		same = keys_equal(&slot->key, key);
		SpinLockRelease(&slot->mutex);
		if (same)
			return slot;
	}
	return NULL;
}

/*
 * Give key a slot: the first never-used one of its probe sequence, else
 * the least recently seen of all.  Caller holds errs->claim.
 */
static ErrSlot *
claim_slot(const ErrKey *key, uint32 tag, TimestampTz now)
{
	ErrSlot *victim = NULL;
	uint64	 oldest = PG_UINT64_MAX;

	for (int i = 0; i < ERR_SLOTS; i++)
	{
		ErrSlot *slot = slot_at((tag + i) & (ERR_SLOTS - 1));
		uint64	 seen;

		if (pg_atomic_read_u32(&slot->tag) == 0)
		{
			victim = slot;
			break;
		}
		seen = pg_atomic_read_u64(&slot->seen);
		if (seen < oldest)
		{
			oldest = seen;
			victim = slot;
		}
	}

	SpinLockAcquire(&victim->mutex);
	victim->key = *key;
	victim->count = 0;
	victim->first_seen = victim->last_seen = 0;
	victim->message_len = 0;
	victim->query_len = -1;
	victim->query_position = 0;
	pg_atomic_write_u64(&victim->seen, (uint64) now);
	pg_atomic_write_u32(&victim->tag, tag);
	SpinLockRelease(&victim->mutex);
	return victim;
}

/*
 * The text to keep of the failing statement, within debug_query_string:
 * the statement being processed if hooks.c said which, else the whole
 * string with the error's position.  *len = -1: keep no text.
 */
static void
statement_text(const ErrResponse *r, const char **text, int *len,
			   int *position)
{
	const char *src = debug_query_string;
	int			limit = err_query_len() - 1;

	*text = NULL;
	*len = -1;
	*position = 0;
	if (src == NULL || !aps_capture_parameters)
		return;

	if (src == stmt_source &&
		stmt_stamp == GetCurrentStatementStartTimestamp())
	{
		*text = src + stmt_location;
		*len = stmt_len > 0 ? stmt_len : (int) strnlen(*text, limit + 1);
	}
	else
	{
		*text = src;
		*len = (int) strnlen(src, limit + 1);
		*position = r->position;
	}
	if (*len > limit)
		*len =
			pg_encoding_mbcliplen(GetDatabaseEncoding(), *text, *len, limit);
}

/*
 * Count one failed statement of key in its slot (already found or
 * claimed).  A slot given to another key in between loses the count.
 */
static void
record(ErrSlot *slot, const ErrKey *key, const ErrResponse *r, TimestampTz now)
{
	int			client_encoding = pg_get_client_encoding();
	int			message_len = r->message_len;
	const char *text;
	int			text_len;
	int			position;

	if (message_len >= ERR_MESSAGE_LEN)
		message_len = pg_encoding_mbcliplen(client_encoding, r->message,
											message_len, ERR_MESSAGE_LEN - 1);
	statement_text(r, &text, &text_len, &position);

	SpinLockAcquire(&slot->mutex);
	if (keys_equal(&slot->key, key))
	{
		if (slot->count++ == 0)
			slot->first_seen = now;
		slot->last_seen = now;
		slot->message_encoding = client_encoding;
		slot->message_len = message_len;
		memcpy(slot->message, r->message, message_len);
		slot->query_encoding = GetDatabaseEncoding();
		slot->query_len = text_len;
		slot->query_position = position;
		if (text_len > 0)
			memcpy(slot->query, text, text_len);
		pg_atomic_write_u64(&slot->seen, (uint64) now);
	}
	SpinLockRelease(&slot->mutex);
}

/*
 * One ErrorResponse on its way to the client.  Must not raise an error nor
 * allocate (see the file header).  Not inlined, so that profiles show what
 * counting costs (tests/bench/error_cost.sh).
 */
static pg_noinline void
count_error_response(const char *s, size_t len)
{
	ErrResponse r;
	ErrKey		key;
	uint32		tag;
	ErrSlot	   *slot;
	TimestampTz now;

	if (errs == NULL || !aps_enabled || !AmRegularBackendProcess() ||
		IsParallelWorker())
		return;
	if (!parse_response(s, len, &r) || strcmp(r.severity, "ERROR") != 0)
		return;

	aps_signals_add_error();

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.userid = GetOuterUserId();
	key.sqlstate = MAKE_SQLSTATE(r.sqlstate[0], r.sqlstate[1], r.sqlstate[2],
								 r.sqlstate[3], r.sqlstate[4]);
	tag = hash_bytes((const unsigned char *) &key, sizeof(key));
	if (tag == 0)
		tag = 1;
	now = GetCurrentTimestamp();

	slot = find_slot(&key, tag);
	if (slot == NULL)
	{
		SpinLockAcquire(&errs->claim);
		slot = find_slot(&key, tag);
		if (slot == NULL)
			slot = claim_slot(&key, tag, now);
		SpinLockRelease(&errs->claim);
	}
	record(slot, &key, &r, now);

	/* The statement failed: it is over. */
	stmt_source = NULL;
}

/* An ErrorResponse: count it, then send it. */
static pg_noinline int
putmessage_error(const char *s, size_t len)
{
	count_error_response(s, len);
	return prev_comm->putmessage('E', s, len);
}

/*
 * Every message the backend sends.  The common path is a test and a tail
 * call: no frame, nothing saved.
 */
static int
aps_putmessage(char msgtype, const char *s, size_t len)
{
	if (likely(msgtype != 'E'))
		return prev_comm->putmessage(msgtype, s, len);
	return putmessage_error(s, len);
}

/* ---- reset and reading --------------------------------------------- */

/* Forget every failed statement.  Concurrent counts may be lost. */
void
aps_errors_reset(void)
{
	if (errs == NULL)
		return;
	SpinLockAcquire(&errs->claim);
	for (int i = 0; i < ERR_SLOTS; i++)
	{
		ErrSlot *slot = slot_at(i);

		SpinLockAcquire(&slot->mutex);
		pg_atomic_write_u32(&slot->tag, 0);
		pg_atomic_write_u64(&slot->seen, 0);
		memset(&slot->key, 0, sizeof(slot->key));
		slot->count = 0;
		SpinLockRelease(&slot->mutex);
	}
	SpinLockRelease(&errs->claim);
}

/* Byte offset of character chars (from 0) of text, or -1 past its end. */
static int
byte_offset(const char *text, int len, int chars, int encoding)
{
	int off = 0;

	while (chars-- > 0 && off < len)
		off += pg_encoding_mblen(encoding, text + off);
	return off <= len ? off : -1;
}

/*
 * The normalized text of the failing statement kept in query (NUL
 * terminated): when the whole query string was kept, the statement around
 * the error's position if there is one, else the string without its
 * trailing semicolons (the statement texts parse analysis gives have
 * none).
 */
static char *
normalized_statement(const char *query, int len, int position, int encoding)
{
	ApsTextSource src;
	int			  location = -1;
	int			  stmt = 0;
	int			  out_len;

	if (position > 0)
	{
		int offset = byte_offset(query, len, position - 1, encoding);

		if (offset < 0 || !aps_statement_at(query, offset, &location, &stmt))
			location = -1;
	}
	if (location < 0)
	{
		location = 0;
		stmt = len;
		while (stmt > 0 &&
			   (query[stmt - 1] == ';' || scanner_isspace(query[stmt - 1])))
			stmt--;
	}
	src.source = query;
	src.location = location;
	src.len = stmt;
	src.jstate = NULL;
	return aps_normalize_query(&src, &out_len);
}

/*
 * apiscale.errors_internal(): one row per (database, user, SQLSTATE).
 */
Datum
apiscale_errors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			   reader = GetUserId();
	bool		   see_all = has_privs_of_role(reader, ROLE_PG_READ_ALL_STATS);
	char		  *query = palloc(err_query_len() + 1);
	char		   message[ERR_MESSAGE_LEN + 1];

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < ERR_SLOTS; i++)
	{
		ErrSlot	   *slot = slot_at(i);
		ErrKey		key;
		int64		count;
		TimestampTz first_seen, last_seen;
		int			message_encoding, query_encoding, query_len, position;
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false,
								false, false, false, false};
		bool		visible;

		if (pg_atomic_read_u32(&slot->tag) == 0)
			continue;
		SpinLockAcquire(&slot->mutex);
		key = slot->key;
		count = slot->count;
		first_seen = slot->first_seen;
		last_seen = slot->last_seen;
		message_encoding = slot->message_encoding;
		memcpy(message, slot->message, slot->message_len);
		message[slot->message_len] = '\0';
		query_encoding = slot->query_encoding;
		query_len = slot->query_len;
		position = slot->query_position;
		if (query_len > 0)
			memcpy(query, slot->query, query_len);
		SpinLockRelease(&slot->mutex);

		if (count == 0)
			continue;
		query[Max(query_len, 0)] = '\0';
		visible = see_all || key.userid == reader;

		values[0] = CStringGetTextDatum(unpack_sql_state(key.sqlstate));
		values[1] = ObjectIdGetDatum(key.userid);
		values[2] = ObjectIdGetDatum(key.dbid);
		values[3] = Int64GetDatum(count);
		values[4] = TimestampTzGetDatum(first_seen);
		values[5] = TimestampTzGetDatum(last_seen);
		values[6] = visible ? aps_text_for_reader(message, message_encoding)
							: CStringGetTextDatum(aps_no_privilege);
		if (query_len < 0)
			nulls[7] = true;
		else if (!visible)
			values[7] = CStringGetTextDatum(aps_no_privilege);
		else
			values[7] = aps_text_for_reader(
				normalized_statement(query, query_len, position,
									 query_encoding),
				query_encoding);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	pfree(query);
	return (Datum) 0;
}
