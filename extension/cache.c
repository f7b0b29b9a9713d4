/*-------------------------------------------------------------------------
 *
 * cache.c
 *		Caching evidence, the executor side of apiscale.cache_advice: how
 *		often each read statement repeats its parameters, how often its
 *		answer changes, and what it costs.
 *
 * The scaling guide's stage 2 says what to cache for how long depends on
 * how often the data changes.  This file records, for each frequent read
 * statement (a top-level SELECT, or with apiscale.track = all any SELECT,
 * without a data-modifying WITH), the cheap evidence to measure that;
 * cache_advice.c turns it into a category, a TTL and a hit rate when the
 * view is read.
 *
 * What is recorded
 * ----------------
 * A statement gets a slot of its own in a shared array of
 * apiscale.max_cache_queries slots.  Per minute of the last hour (epoch.h):
 * its runs and their execution time, the runs inside a transaction that
 * had written, and:
 *
 * - Repeats.  Each run's parameter set is a 64-bit hash of the statement's
 *	 own text (where the simple protocol puts its constants) and its
 *	 parameter values (the extended protocol's, PREPARE's, a PL/pgSQL
 *	 statement's variables).  A table of up to APS_CACHE_KEYS sets per
 *	 statement keeps each one's latest run; a run of a known set adds the
 *	 time since that run to a histogram whose edges are the TTLs the advice
 *	 chooses from (aps_cache_ttls), with its sum, so that the hit rate a
 *	 cache would have had at each of them is exact (cache_advice.c).  When
 *	 more sets come than the table holds, it becomes a sample: it keeps the
 *	 sets whose hashes are the smallest (a "k minimum values" sketch: a set
 *	 is tracked when its hash is at most threshold; when the table is full,
 *	 the sets not seen for an hour go, and if that is not enough the
 *	 quarter with the greatest hashes, and the threshold falls to the
 *	 greatest hash kept; what the minutes counted is scaled to the sets
 *	 kept), so that every run of a tracked set is seen, the ratios (hits
 *	 per run, runs per set) are estimated on an unbiased sample of sets,
 *	 and their number from the threshold.  Exact when small, as long as
 *	 the sets of an hour fit.
 * - Changes.  On sampled runs (apiscale.cache_sample_rate, a countdown
 *	 drawn from a geometric distribution, so one decrement per run), a
 *	 wrapping DestReceiver hashes the result rows (order-insensitive: the
 *	 sum of the rows' hashes, and their number).  Compared with the set's
 *	 previous hash, a run adds the time since that hash to the exposure,
 *	 and one change if the hash differs: changes per second of exposure is
 *	 the rate at which one set's answer changes.  Runs in a transaction
 *	 that had written (they may see their own uncommitted rows) and runs
 *	 that did not read their result to the end (a cursor, a row limit)
 *	 are not compared.
 * - Once, when the slot is taken: what makes it not cacheable (FOR
 *	 UPDATE/SHARE, a volatile function or one that reads the clock,
 *	 TABLESAMPLE, a temporary table, row-level security that applies, a
 *	 foreign table) and the tables it reads, whose writes per minute
 *	 writes.c counts.
 *
 * Which statements get a slot: any read statement while slots are free;
 * when all are taken, a statement that reaches 8, 16, 32, 64 or a multiple
 * of 128 runs (in apiscale.queries) takes the slot of the statement with
 * the fewest runs in the last two minutes (counting, for a statement that
 * took its slot in that time, its runs before), if that one has fewer
 * runs than it.  A slot is found again through its statement's entry in store.c
 * (cache_slot, a hint checked against the slot's owner).
 *
 * Locking rules
 * -------------
 * - cshared->lock (LWLock) is taken EXCLUSIVE to give slots out and to
 *   reset; the hot path never takes it.
 * - Each slot's mutex (spinlock) protects everything in it.  A run checks
 *   that the slot is still its statement's under the mutex before adding
 *   to it.  Readers copy a slot whole under the mutex.
 * - What makes a statement not cacheable is found (catalog lookups) after
 *   the slot is taken and outside every lock, then written in under the
 *   mutex; until then readers skip the slot.
 *
 * Cost
 * ----
 * Statements that are not reads pay one test.  A read statement with a
 * slot pays, per run: a decrement at ExecutorStart (the sampling
 * countdown), and at ExecutorEnd one hash of its text (a multiply and a
 * rotate per 8 bytes) and of its parameter values, one probe of the
 * slot's table of sets and about twenty additions, under the slot's
 * spinlock: about 250 instructions (tests/bench/instructions.sh).  A
 * sampled run also pays a hash per result row and column.  Nothing is
 * allocated per run but the sampled runs' receiver (in the executor's
 * memory); nothing here raises an error on the hot path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/transam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "common/pg_prng.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "advisor.h"
#include "cache.h"
#include "compat.h"
#include "guc.h"

/* A statement reaching these runs may take the slot of a quieter one. */
#define CACHE_ADMIT_FIRST 8
#define CACHE_ADMIT_EVERY 128

/* A parameter set not seen for this long gives way first. */
#define CACHE_KEY_EXPIRY (3600 * USECS_PER_SEC)

/* Sets a full table keeps when it thins its sample. */
#define APS_CACHE_KEEP (APS_CACHE_KEYS * 3 / 4)

const int aps_cache_ttls[APS_CACHE_NTTLS] = {
	1,	 2,	  5,	10,	  20,	30,	   60,	  120,	300,
	600, 900, 1800, 3600, 7200, 21600, 43200, 86400};

/* One statement's slot. */
typedef struct CacheSlot
{
	slock_t		 mutex; /* protects everything below */
	bool		 used;
	ApsCacheData d;
} CacheSlot;

typedef struct CacheShared
{
	LWLock			*lock;	   /* giving slots out, reset */
	pg_atomic_uint32 nused;	   /* slots used, read without the lock */
	TimestampTz		 reset_at; /* under lock */
} CacheShared;

/* The receiver that hashes a sampled run's result on its way. */
struct ApsCacheDest
{
	DestReceiver  pub;	 /* our callbacks; must be first */
	DestReceiver *inner; /* where the rows go */
	uint64		  sum;	 /* of the rows' hashes */
	uint64		  rows;
	int			  runs;	 /* ExecutorRun calls so far */
	bool		  valid; /* every row hashed, the result read to its end */
};

/* Type length and by-value-ness of the last few parameter types. */
#define TYPE_MEMO 8
typedef struct TypeMemo
{
	Oid	  type;
	int16 len;
	bool  byval;
} TypeMemo;

static CacheShared *cshared = NULL;
static CacheSlot   *slots = NULL;

/* The sampling countdown: runs left before the next hashed one. */
int64  aps_cache_countdown = 0;
double aps_cache_rate_drawn = -1;

static TypeMemo type_memo[TYPE_MEMO];
static int		type_memo_next = 0;

/*
 * Where the constants of the read statement parsed last begin in its text
 * (-1: it has none), for the hash of its parameter set when it runs.
 */
static const char *parsed_source = NULL;
static int		   parsed_location = -1;
static uint64	   parsed_queryid = 0;
static int		   parsed_constants = -1;

/* ---- shared memory --------------------------------------------------- */

static Size
cache_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(CacheShared)),
					mul_size(aps_max_cache_queries, sizeof(CacheSlot)));
}

/* Called from shmem_request_hook. */
void
aps_cache_request(void)
{
	RequestAddinShmemSpace(cache_shmem_size());
	RequestNamedLWLockTranche("apiscale cache", 1);
}

/* Called from shmem_startup_hook with AddinShmemInitLock held. */
void
aps_cache_startup(void)
{
	bool found;

	cshared = ShmemInitStruct("apiscale cache", cache_shmem_size(), &found);
	slots = (CacheSlot *) ((char *) cshared + MAXALIGN(sizeof(CacheShared)));
	if (!found)
	{
		cshared->lock = &(GetNamedLWLockTranche("apiscale cache"))->lock;
		pg_atomic_init_u32(&cshared->nused, 0);
		cshared->reset_at = GetCurrentTimestamp();
		for (int i = 0; i < aps_max_cache_queries; i++)
		{
			SpinLockInit(&slots[i].mutex);
			slots[i].used = false;
		}
	}
}

static inline bool
owner_is(const CacheSlot *s, const ApsKey *key)
{
	return s->used && s->d.owner.queryid == key->queryid &&
		   s->d.owner.userid == key->userid && s->d.owner.dbid == key->dbid;
}

/* ---- hashing --------------------------------------------------------- */

static inline uint64
rotl64(uint64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/*
 * Mix one 64-bit word into h: a multiplication carries each bit of w up to
 * the high bits, the rotation brings them down for the next word, and the
 * final avalanche (finish) mixes them all.
 */
static inline uint64
mix_word(uint64 h, uint64 w)
{
	return rotl64((h ^ w) * UINT64CONST(0x9E3779B97F4A7C15), 29);
}

/*
 * Mix len bytes into h, a word at a time; the last word of a text of 8
 * bytes or more is its last 8 bytes (overlapping the word before).
 */
static uint64
mix_bytes(uint64 h, const char *p, size_t len)
{
	uint64 w = 0;

	h = mix_word(h, len);
	if (len >= 8)
	{
		const char *last = p + len - 8;

		for (; p < last; p += 8)
		{
			memcpy(&w, p, 8);
			h = mix_word(h, w);
		}
		memcpy(&w, last, 8);
	}
	else
		for (int i = 0; i < (int) len; i++)
			w |= (uint64) (unsigned char) p[i] << (8 * i);
	return mix_word(h, w);
}

/* The final avalanche (MurmurHash3's), so that every bit counts. */
static inline uint64
finish(uint64 h)
{
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

/*
 * Mix one value into h: by value, the Datum; a fixed length, its bytes; a
 * varlena, its data bytes (the same whatever its header), or as stored
 * when compressed or toasted (the TOAST pointer names the value: another
 * value gets another pointer).  Values that live only in memory (expanded
 * objects, indirect pointers) cannot be hashed: false.
 */
static inline bool
mix_datum(uint64 *h, Datum value, bool isnull, int16 typlen, bool typbyval)
{
	if (isnull)
		*h = mix_word(*h, UINT64CONST(0x6E756C6C));
	else if (typbyval)
		*h = mix_word(*h, (uint64) value);
	else if (typlen > 0)
		*h = mix_bytes(*h, DatumGetPointer(value), typlen);
	else if (typlen == -1)
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(value);

		if (VARATT_IS_EXTERNAL_ONDISK(v) || VARATT_IS_COMPRESSED(v))
			*h = mix_bytes(*h ^ 1, (const char *) v, VARSIZE_ANY(v));
		else if (VARATT_IS_EXTERNAL(v))
			return false;
		else
			*h = mix_bytes(*h, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
	}
	else
		*h = mix_bytes(*h, DatumGetCString(value),
					   strlen(DatumGetCString(value)));
	return true;
}

/* typlen and typbyval of type, from a small memo (a syscache lookup). */
static void
type_info(Oid type, int16 *len, bool *byval)
{
	TypeMemo *m;

	for (int i = 0; i < TYPE_MEMO; i++)
		if (type_memo[i].type == type)
		{
			*len = type_memo[i].len;
			*byval = type_memo[i].byval;
			return;
		}
	m = &type_memo[type_memo_next];
	type_memo_next = (type_memo_next + 1) % TYPE_MEMO;
	get_typlenbyval(type, &m->len, &m->byval);
	m->type = type;
	*len = m->len;
	*byval = m->byval;
}

/*
 * A read statement was parsed: note where its constants begin (the first
 * the query jumbler recorded), so that hashing its text when it runs can
 * start there, or skip the text if it has none.
 */
void
aps_cache_note_parse(const char *source, int location, uint64 queryid,
					 const JumbleState *jstate)
{
	int first = -1;

	for (int i = 0; i < jstate->clocations_count; i++)
	{
		int loc = jstate->clocations[i].location;

		if (loc >= 0 && (first < 0 || loc < first))
			first = loc;
	}
	parsed_source = source;
	parsed_location = location;
	parsed_queryid = queryid;
	parsed_constants = first;
}

/*
 * The parameter set of a run: its statement's own text (the constants of
 * the simple protocol are in it: from the first one on when the statement
 * was just parsed, or nothing if it has none) and its parameter values.  A
 * parameter a PL/pgSQL statement does not use is not fetched.  False if a
 * value cannot be hashed.
 */
static bool
key_hash(QueryDesc *qd, const char *source, int location, int len, uint64 *out)
{
	uint64		  h = 0;
	ParamListInfo params = qd->params;

	if (source != NULL)
	{
		const char *from;
		const char *end;

		location = Max(location, 0);
		from = source + location;
		end = len > 0 ? from + len : from + strlen(from);
		if (source == parsed_source &&
			qd->plannedstmt->stmt_location == parsed_location &&
			qd->plannedstmt->queryId == parsed_queryid)
		{
			/*
			 * Without constants, its text is the same at every run.  With
			 * them, at least the last 8 bytes: a whole word, the cheapest.
			 */
			if (parsed_constants < 0)
				from = end;
			else if (parsed_constants >= location &&
					 source + parsed_constants < end)
				from = Max(source + location,
						   Min(source + parsed_constants, end - 8));
		}
		if (from < end)
			h = mix_bytes(h, from, end - from);
	}
	if (params != NULL)
	{
		for (int i = 0; i < params->numParams; i++)
		{
			ParamExternData	 workspace;
			ParamExternData *p;
			int16			 typlen;
			bool			 typbyval;

			/* Speculative: no error, no value it would not have used. */
			if (params->paramFetch != NULL)
				p = params->paramFetch(params, i + 1, true, &workspace);
			else
				p = &params->params[i];
			if (p == NULL || !OidIsValid(p->ptype))
				continue;
			type_info(p->ptype, &typlen, &typbyval);
			h = mix_word(h, i);
			if (!mix_datum(&h, p->value, p->isnull, typlen, typbyval))
				return false;
		}
	}
	h = finish(h);
	*out = h != 0 ? h : 1; /* 0 marks a free bucket */
	return true;
}

/* ---- the result-hashing receiver ------------------------------------- */

static bool
dest_receive(TupleTableSlot *slot, DestReceiver *self)
{
	ApsCacheDest *d = (ApsCacheDest *) self;

	if (d->valid)
	{
		TupleDesc desc = slot->tts_tupleDescriptor;
		uint64	  h = 0;

		slot_getallattrs(slot);
		for (int i = 0; i < desc->natts && d->valid; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped)
				continue;
			d->valid = mix_datum(&h, slot->tts_values[i], slot->tts_isnull[i],
								 att->attlen, att->attbyval);
		}
		d->sum += finish(h);
		d->rows++;
	}
	return d->inner->receiveSlot(slot, d->inner);
}

static void
dest_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	ApsCacheDest *d = (ApsCacheDest *) self;

	d->inner->rStartup(d->inner, operation, typeinfo);
}

static void
dest_shutdown(DestReceiver *self)
{
	ApsCacheDest *d = (ApsCacheDest *) self;

	d->inner->rShutdown(d->inner);
}

/* Never called: the portal destroys its own receiver, not ours. */
static void
dest_destroy(DestReceiver *self)
{
}

/*
 * The sampling countdown ran out (or apiscale.cache_sample_rate changed):
 * should this run hash its result?  One run in 1 / cache_sample_rate on
 * average: the countdown is drawn from the geometric distribution.
 */
bool
aps_cache_sample_draw(void)
{
	double rate = aps_cache_sample_rate;

	if (rate != aps_cache_rate_drawn)
	{
		/* A new rate: its first run is sampled, then it takes over. */
		aps_cache_rate_drawn = rate;
		aps_cache_countdown = 0;
	}
	if (rate <= 0.0)
	{
		aps_cache_countdown = PG_INT64_MAX;
		return false;
	}
	if (rate >= 1.0)
		aps_cache_countdown = 1;
	else
	{
		/* Runs until the next success, at least 1. */
		double u = 1.0 - pg_prng_double(&pg_global_prng_state); /* (0, 1] */

		aps_cache_countdown = 1 + (int64) floor(log(u) / log(1.0 - rate));
	}
	return true;
}

/* A receiver for a sampled run, in the current (executor) memory. */
ApsCacheDest *
aps_cache_dest_create(void)
{
	ApsCacheDest *d = palloc0(sizeof(ApsCacheDest));

	d->pub.receiveSlot = dest_receive;
	d->pub.rStartup = dest_startup;
	d->pub.rShutdown = dest_shutdown;
	d->pub.rDestroy = dest_destroy;
	d->valid = true;
	return d;
}

/*
 * Before an ExecutorRun call: put d in front of the run's receiver (true),
 * or, for a second call (a cursor, a portal run in parts), give up.
 */
bool
aps_cache_dest_begin(ApsCacheDest *d, QueryDesc *qd, uint64 count)
{
	if (d->runs++ > 0 || !d->valid || qd->dest == NULL)
	{
		d->valid = false;
		return false;
	}
	d->inner = qd->dest;
	d->pub.mydest = d->inner->mydest;
	qd->dest = &d->pub;
	return true;
}

/*
 * After it, or on its way out with an error: the run's receiver back.  A
 * run stopped by its row count may not have read its whole result.
 */
void
aps_cache_dest_end(ApsCacheDest *d, QueryDesc *qd, uint64 count)
{
	qd->dest = d->inner;
	if (count > 0 && d->rows >= count)
		d->valid = false;
}

/* The hash of the whole result, if it was hashed whole. */
bool
aps_cache_dest_result(ApsCacheDest *d, uint64 *hash)
{
	if (!d->valid || d->runs != 1)
		return false;
	*hash = finish(d->sum ^ mix_word(0, d->rows));
	return true;
}

/* ---- what makes a statement not cacheable ----------------------------- */

/* Does funcid's result change between calls (its volatility, the clock)? */
static bool
func_changes(Oid funcid, void *context)
{
	ApsCacheProps *p = (ApsCacheProps *) context;
	HeapTuple	   tup;
	bool		   changes;

	switch (funcid)
	{
		case F_NOW:
		case F_STATEMENT_TIMESTAMP:
		case F_TRANSACTION_TIMESTAMP:
		case F_AGE_TIMESTAMP:
		case F_AGE_TIMESTAMPTZ:
			changes = true; /* stable, but the clock moves */
			break;
		default:
			tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
			/* A function dropped meanwhile: assume the worst. */
			changes = !HeapTupleIsValid(tup) ||
					  ((Form_pg_proc) GETSTRUCT(tup))->provolatile ==
						  PROVOLATILE_VOLATILE;
			if (HeapTupleIsValid(tup))
				ReleaseSysCache(tup);
			break;
	}
	if (changes)
		p->func = funcid;
	return changes;
}

/* Does an expression call something whose result changes? */
static bool
expr_changes(Node *node, void *context)
{
	ApsCacheProps *p = (ApsCacheProps *) context;

	if (node == NULL)
		return false;
	if (IsA(node, SQLValueFunction))
	{
		SQLValueFunction *svf = (SQLValueFunction *) node;

		switch (svf->op)
		{
			case SVFOP_CURRENT_DATE:
			case SVFOP_CURRENT_TIME:
			case SVFOP_CURRENT_TIME_N:
			case SVFOP_CURRENT_TIMESTAMP:
			case SVFOP_CURRENT_TIMESTAMP_N:
			case SVFOP_LOCALTIME:
			case SVFOP_LOCALTIME_N:
			case SVFOP_LOCALTIMESTAMP:
			case SVFOP_LOCALTIMESTAMP_N:
				p->svf_op = svf->op;
				return true;
			default:
				return false;
		}
	}
	if (IsA(node, NextValueExpr))
	{
		p->nextval = true;
		return true;
	}
	if (check_functions_in_node(node, func_changes, context))
		return true;
	return expression_tree_walker(node, expr_changes, context);
}

/* Does a plan node (and those below it) call such a thing? */
static bool
plan_changes(Plan *plan, void *context)
{
	ApsCacheProps *p = (ApsCacheProps *) context;
	List		  *extra = NIL;

	if (plan == NULL)
		return false;
	if (expr_changes((Node *) plan->targetlist, context) ||
		expr_changes((Node *) plan->qual, context))
		return true;
	switch (nodeTag(plan))
	{
		case T_Result:
			extra = list_make1(((Result *) plan)->resconstantqual);
			break;
		case T_SampleScan:
		{
			TableSampleClause *tsc = ((SampleScan *) plan)->tablesample;

			if (tsc->repeatable == NULL)
			{
				p->sampling = true;
				return true;
			}
			extra = list_make1(tsc);
		}
		break;
		case T_IndexScan:
			extra = list_make2(((IndexScan *) plan)->indexqualorig,
							   ((IndexScan *) plan)->indexorderbyorig);
			break;
		case T_IndexOnlyScan:
			extra = list_make2(((IndexOnlyScan *) plan)->recheckqual,
							   ((IndexOnlyScan *) plan)->indexorderby);
			break;
		case T_BitmapIndexScan:
			extra = list_make1(((BitmapIndexScan *) plan)->indexqualorig);
			break;
		case T_BitmapHeapScan:
			extra = list_make1(((BitmapHeapScan *) plan)->bitmapqualorig);
			break;
		case T_TidScan:
			extra = list_make1(((TidScan *) plan)->tidquals);
			break;
		case T_TidRangeScan:
			extra = list_make1(((TidRangeScan *) plan)->tidrangequals);
			break;
		case T_FunctionScan:
			extra = list_make1(((FunctionScan *) plan)->functions);
			break;
		case T_ValuesScan:
			extra = list_make1(((ValuesScan *) plan)->values_lists);
			break;
		case T_TableFuncScan:
			extra = list_make1(((TableFuncScan *) plan)->tablefunc);
			break;
		case T_ForeignScan:
			extra = list_make1(((ForeignScan *) plan)->fdw_exprs);
			break;
		case T_CustomScan:
			extra = list_make1(((CustomScan *) plan)->custom_exprs);
			break;
		case T_NestLoop:
			extra = list_make1(((Join *) plan)->joinqual);
			break;
		case T_MergeJoin:
			extra = list_make2(((Join *) plan)->joinqual,
							   ((MergeJoin *) plan)->mergeclauses);
			break;
		case T_HashJoin:
			extra = list_make2(((Join *) plan)->joinqual,
							   ((HashJoin *) plan)->hashclauses);
			break;
		case T_Limit:
			extra = list_make2(((Limit *) plan)->limitOffset,
							   ((Limit *) plan)->limitCount);
			break;
		case T_WindowAgg:
			extra = list_make2(((WindowAgg *) plan)->startOffset,
							   ((WindowAgg *) plan)->endOffset);
			break;
		case T_Memoize:
			extra = list_make1(((Memoize *) plan)->param_exprs);
			break;
		default:
			break;
	}
	if (extra != NIL && expr_changes((Node *) extra, context))
		return true;
	return aps_plan_tree_walker(plan, plan_changes, context);
}

/* Remember relid among the tables p reads. */
static void
add_table(ApsCacheProps *p, Oid relid)
{
	for (int i = 0; i < p->ntables; i++)
		if (p->tables[i] == relid)
			return;
	if (p->ntables == APS_CACHE_MAX_TABLES)
	{
		p->more_tables = true;
		return;
	}
	p->partition[p->ntables] = get_rel_relispartition(relid);
	p->tables[p->ntables++] = relid;
}

/*
 * What does not change from run to run of qd's statement: what makes it
 * not cacheable, and the tables it reads.  Catalog lookups, done once per
 * slot; the tables are open and locked by the executor.
 */
static void
find_props(QueryDesc *qd, ApsCacheProps *p)
{
	PlannedStmt *pstmt = qd->plannedstmt;
	ListCell	*lc;

	memset(p, 0, sizeof(*p));
	p->svf_op = -1;

	foreach (lc, pstmt->rowMarks)
	{
		PlanRowMark *rc = lfirst_node(PlanRowMark, lc);

		if (RowMarkRequiresRowShareLock(rc->markType))
			p->flags |= APS_CACHE_LOCKS;
	}

	if (plan_changes(pstmt->planTree, p))
		p->flags |= APS_CACHE_VOLATILE;
	else
		foreach (lc, pstmt->subplans)
			if (plan_changes(lfirst(lc), p))
			{
				p->flags |= APS_CACHE_VOLATILE;
				break;
			}

	foreach (lc, pstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		uint32		   flag = 0;

		if (rte->rtekind != RTE_RELATION || rte->relkind == RELKIND_VIEW ||
			rte->relid < FirstNormalObjectId)
			continue;
		if (get_rel_persistence(rte->relid) == RELPERSISTENCE_TEMP)
			flag = APS_CACHE_TEMP;
		else if (rte->relkind == RELKIND_FOREIGN_TABLE)
			flag = APS_CACHE_FOREIGN;
		else if (check_enable_rls(rte->relid, InvalidOid, true) == RLS_ENABLED)
			flag = APS_CACHE_RLS;
		if (flag != 0 && (p->flags & flag) == 0)
		{
			p->flags |= flag;
			if (!OidIsValid(p->rel))
				p->rel = rte->relid;
		}
		add_table(p, rte->relid);
	}
}

/* ---- slots ------------------------------------------------------------ */

/*
 * Runs of slot i's statement in the last two minutes, counting those
 * before it took the slot if it took it then (caller holds cshared->lock).
 */
static uint64
recent_calls(int i, int64 now)
{
	CacheSlot *s = &slots[i];
	uint64	   calls = 0;

	SpinLockAcquire(&s->mutex);
	for (int64 e = now - 1; e <= now; e++)
	{
		ApsCacheMinute *m = &s->d.minutes[e % APS_EPOCHS];

		if (m->epoch == e)
			calls += m->calls;
	}
	if (aps_epoch_of(s->d.since) >= now - 1)
		calls += s->d.runs_before;
	SpinLockRelease(&s->mutex);
	return calls;
}

/*
 * Give key a slot: its own if it still has one (its entry in store.c was
 * evicted and came back), else a free one, else that of the statement
 * with the fewest runs in the last two minutes if it has fewer than calls.
 * -1 if none.  Then fill in what makes it not cacheable.
 */
static int
take_slot(QueryDesc *qd, const ApsKey *key, int64 calls, TimestampTz now)
{
	int			  found = -1, free_slot = -1, victim = -1;
	uint64		  victim_calls = PG_UINT64_MAX;
	bool		  fresh = true;
	ApsCacheProps props;
	CacheSlot	 *s;

	LWLockAcquire(cshared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < aps_max_cache_queries && found < 0; i++)
	{
		s = &slots[i];
		if (!s->used)
		{
			if (free_slot < 0)
				free_slot = i;
		}
		else if (owner_is(s, key))
			found = i;
	}
	if (found >= 0)
		fresh = false;
	else if (free_slot >= 0)
		found = free_slot;
	else
	{
		int64 epoch = aps_epoch_of(now);

		for (int i = 0; i < aps_max_cache_queries; i++)
		{
			uint64 c = recent_calls(i, epoch);

			if (c < victim_calls)
			{
				victim = i;
				victim_calls = c;
			}
		}
		if (victim >= 0 && victim_calls < (uint64) calls)
			found = victim;
	}
	if (found >= 0 && fresh)
	{
		s = &slots[found];
		SpinLockAcquire(&s->mutex);
		if (!s->used)
			pg_atomic_fetch_add_u32(&cshared->nused, 1);
		/*
		 * A minute is cleared when it is first used, a set when it is
		 * added: only what says they are empty is cleared now, not 27 kB.
		 */
		for (int e = 0; e < APS_EPOCHS; e++)
			s->d.minutes[e].epoch = 0;
		for (int b = 0; b < APS_CACHE_KEY_BUCKETS; b++)
			s->d.keys[b].hash = 0;
		s->d.nkeys = 0;
		s->d.props_ready = false;
		s->d.owner = *key;
		s->d.since = now;
		s->d.runs_before = Max(calls - 1, 0);
		s->d.threshold = PG_UINT64_MAX;
		s->used = true;
		SpinLockRelease(&s->mutex);
	}
	LWLockRelease(cshared->lock);
	if (found < 0)
		return -1;

	if (fresh)
	{
		find_props(qd, &props);
		s = &slots[found];
		SpinLockAcquire(&s->mutex);
		if (owner_is(s, key))
		{
			s->d.props = props;
			s->d.props_ready = true;
		}
		SpinLockRelease(&s->mutex);
	}
	aps_store_set_cache_slot(key, found);
	return found;
}

/*
 * Where the set hash would sit in the table: its low bits (the sample
 * keeps the smallest hashes, whose high bits are zeros).
 */
static inline int
home_bucket(uint64 hash)
{
	return (int) (hash & (APS_CACHE_KEY_BUCKETS - 1));
}

static inline int
next_bucket(int i)
{
	return (i + 1) & (APS_CACHE_KEY_BUCKETS - 1);
}

/* aps_epoch_of, remembering the last minute: no division in it. */
static inline int64
epoch_of(TimestampTz at)
{
	static int64	   epoch = 0;
	static TimestampTz start = 1, end = 0; /* empty */

	if (at < start || at >= end)
	{
		epoch = aps_epoch_of(at);
		start = aps_epoch_start(epoch);
		end = aps_epoch_start(epoch + 1);
	}
	return epoch;
}

/* The k-th smallest (from 0) of the n values v, which it reorders. */
static uint64
kth_smallest(uint64 *v, int n, int k)
{
	int lo = 0, hi = n - 1;

	while (lo < hi)
	{
		uint64 pivot = v[lo + (hi - lo) / 2];
		int	   i = lo, j = hi;

		while (i <= j)
		{
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j)
			{
				uint64 t = v[i];

				v[i++] = v[j];
				v[j--] = t;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			break;
	}
	return v[k];
}

/*
 * Make room in a full table of sets: drop those not seen for an hour, and
 * if more than APS_CACHE_KEEP (three quarters) remain, keep only those
 * whose hashes are the smallest, lowering the threshold to the greatest
 * hash kept: the sample shrinks, and the number of sets, estimated from
 * 96 to 128 of them, is within about 10% (one standard deviation).
 * Rebuilds the table.  Done once per 32 new sets at least, and as the
 * sample shrinks, ever more rarely.
 *
 * The sets dropped from the sample had their first runs counted, and
 * their next runs would not be: what every minute counted of the sample
 * is scaled by the share of sets kept, which the hash chose regardless of
 * how often a set runs, so that the minutes describe the sets kept.
 */
static void
thin_keys(ApsCacheData *d, TimestampTz at)
{
	ApsCacheKey kept[APS_CACHE_KEYS];
	uint64		hashes[APS_CACHE_KEYS];
	int			n = 0;

	for (int j = 0; j < APS_CACHE_KEY_BUCKETS && n < APS_CACHE_KEYS; j++)
		if (d->keys[j].hash != 0 &&
			d->keys[j].last_seen >= at - CACHE_KEY_EXPIRY)
		{
			hashes[n] = d->keys[j].hash;
			kept[n++] = d->keys[j];
		}
	if (n > APS_CACHE_KEEP)
	{
		int	   m = 0;
		double share;

		d->threshold = kth_smallest(hashes, n, APS_CACHE_KEEP - 1);
		for (int j = 0; j < n; j++)
			if (kept[j].hash <= d->threshold)
				kept[m++] = kept[j];
		share = (double) m / n;
		n = m;
		for (int e = 0; e < APS_EPOCHS; e++)
		{
			ApsCacheMinute *min = &d->minutes[e];

			/* Empty, or over an hour old: outside every window. */
			if (min->epoch < epoch_of(at) - (APS_EPOCHS - 1))
				continue;

			min->keyed *= share;
			min->first *= share;
			for (int b = 0; b < APS_CACHE_NREUSE; b++)
			{
				min->reuse_n[b] *= share;
				min->reuse_s[b] *= share;
			}
			min->hashed *= share;
			min->compared *= share;
			min->changed *= share;
			min->exposure_s *= share;
		}
	}
	/* Only the hashes say which buckets are free (cheaper than memset). */
	for (int j = 0; j < APS_CACHE_KEY_BUCKETS; j++)
		d->keys[j].hash = 0;
	for (int j = 0; j < n; j++)
	{
		int i = home_bucket(kept[j].hash);

		while (d->keys[i].hash != 0)
			i = next_bucket(i);
		d->keys[i] = kept[j];
	}
	d->nkeys = n;
}

/*
 * The tracked set hash, added if it is new (*added), or NULL if the sample
 * leaves it out.
 */
static ApsCacheKey *
find_key(ApsCacheData *d, uint64 hash, TimestampTz at, bool *added)
{
	ApsCacheKey *b = d->keys;
	int			 i = home_bucket(hash);

	*added = false;
	if (hash > d->threshold)
		return NULL;
	while (b[i].hash != 0)
	{
		if (b[i].hash == hash)
			return &b[i];
		i = next_bucket(i);
	}
	if (d->nkeys >= APS_CACHE_KEYS)
	{
		thin_keys(d, at);
		if (hash > d->threshold)
			return NULL;
		i = home_bucket(hash);
		while (b[i].hash != 0)
			i = next_bucket(i);
	}
	memset(&b[i], 0, sizeof(b[i]));
	b[i].hash = hash;
	b[i].last_seen = at;
	d->nkeys++;
	*added = true;
	return &b[i];
}

/* The reuse bucket of dt microseconds: below the first TTL above it. */
static inline int
reuse_bucket(int64 dt)
{
	int i = 0;

	while (i < APS_CACHE_NTTLS &&
		   dt >= (int64) aps_cache_ttls[i] * USECS_PER_SEC)
		i++;
	return i;
}

/* Add run to d.  Caller holds the slot's mutex. */
static void
add_run(ApsCacheData *d, const ApsCacheRun *run, bool keyed, uint64 hash)
{
	int64			epoch = epoch_of(run->at);
	ApsCacheMinute *m = &d->minutes[epoch % APS_EPOCHS];
	ApsCacheKey	   *k;
	bool			added;

	if (m->epoch != epoch)
	{
		if (m->epoch > epoch)
			return; /* a run over an hour old */
		memset(m, 0, sizeof(*m));
		m->epoch = epoch;
	}
	m->calls++;
	m->time_ms += run->duration_ms;
	if (run->write_txn)
		m->in_write_txn++;
	if (!keyed || (k = find_key(d, hash, run->at, &added)) == NULL)
		return;

	m->keyed++;
	if (added)
		m->first++;
	else
	{
		int64 dt = Max(run->at - k->last_seen, 0);
		int	  b = reuse_bucket(dt);

		m->reuse_n[b]++;
		m->reuse_s[b] += (double) dt / USECS_PER_SEC;
		k->last_seen = Max(k->last_seen, run->at);
	}
	if (k->runs < PG_UINT32_MAX)
		k->runs++;

	/* What a run sees of its own transaction's writes is not an answer. */
	if (run->hashed && !run->write_txn)
	{
		m->hashed++;
		if (k->hashed_at > 0 && run->at > k->hashed_at)
		{
			m->compared++;
			m->exposure_s += (double) (run->at - k->hashed_at) / USECS_PER_SEC;
			if (k->result != run->result)
				m->changed++;
		}
		if (run->at >= k->hashed_at)
		{
			k->result = run->result;
			k->hashed_at = run->at;
		}
	}
}

/*
 * A finished run of read statement key, which has run calls times and
 * whose entry names slot_hint as its slot (or -1).  Takes a slot for it if
 * it has none and may, then adds the run.  Returns the slot, or -1.
 */
int
aps_cache_record(QueryDesc *qd, const ApsKey *key, int slot_hint, int64 calls,
				 const ApsCacheRun *run, const char *source, int location,
				 int len)
{
	int		   slot = slot_hint;
	CacheSlot *s;
	uint64	   hash = 0;
	bool	   keyed;

	if (slots == NULL || aps_max_cache_queries <= 0)
		return -1;
	if (slot < 0 || slot >= aps_max_cache_queries)
	{
		/* Free slots, or a number of runs that may take one. */
		if (pg_atomic_read_u32(&cshared->nused) >=
				(uint32) aps_max_cache_queries &&
			!(calls == CACHE_ADMIT_FIRST ||
			  (calls > CACHE_ADMIT_FIRST && calls < CACHE_ADMIT_EVERY &&
			   (calls & (calls - 1)) == 0) ||
			  (calls > 0 && calls % CACHE_ADMIT_EVERY == 0)))
			return -1;
		slot = take_slot(qd, key, calls, run->at);
		if (slot < 0)
			return -1;
	}

	keyed = key_hash(qd, source, location, len, &hash);

	s = &slots[slot];
	SpinLockAcquire(&s->mutex);
	if (!owner_is(s, key))
	{
		SpinLockRelease(&s->mutex);
		/* Another statement took it: forget the hint, ask again later. */
		aps_store_set_cache_slot(key, -1);
		return -1;
	}
	add_run(&s->d, run, keyed, hash);
	SpinLockRelease(&s->mutex);
	return slot;
}

/* ---- reading ---------------------------------------------------------- */

/*
 * Call cb with a copy of each slot of database dbid whose properties are
 * known.  Each is copied under its spinlock; cb runs with no lock held.
 */
void
aps_cache_foreach(Oid dbid, ApsCacheCallback cb, void *arg)
{
	ApsCacheData *copy;

	if (slots == NULL)
		return;
	copy = palloc(sizeof(ApsCacheData));
	for (int i = 0; i < aps_max_cache_queries; i++)
	{
		CacheSlot *s = &slots[i];
		bool	   mine;

		SpinLockAcquire(&s->mutex);
		mine = s->used && s->d.props_ready && s->d.owner.dbid == dbid;
		if (mine)
			memcpy(copy, &s->d, sizeof(ApsCacheData));
		SpinLockRelease(&s->mutex);
		if (mine)
			cb(copy, arg);
	}
	pfree(copy);
}

/* When the evidence was last reset (or the server started). */
TimestampTz
aps_cache_since(void)
{
	TimestampTz since;

	if (cshared == NULL)
		return 0;
	LWLockAcquire(cshared->lock, LW_SHARED);
	since = cshared->reset_at;
	LWLockRelease(cshared->lock);
	return since;
}

/* Forget everything. */
void
aps_cache_reset(void)
{
	if (slots == NULL)
		return;
	LWLockAcquire(cshared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < aps_max_cache_queries; i++)
	{
		SpinLockAcquire(&slots[i].mutex);
		slots[i].used = false;
		SpinLockRelease(&slots[i].mutex);
	}
	pg_atomic_write_u32(&cshared->nused, 0);
	cshared->reset_at = GetCurrentTimestamp();
	LWLockRelease(cshared->lock);
}
