/*-------------------------------------------------------------------------
 *
 * writes.c
 *		Rows written per table, counted by the executor hooks.
 *
 * The index advice weighs what an index saves the reads of a table against
 * what it costs the table's writes; this file counts the writes.  At
 * ExecutorEnd of every INSERT, UPDATE, DELETE and MERGE (at any nesting
 * level, whatever apiscale.track says: foreign-key cascades and the writes
 * of functions and triggers maintain indexes too), the rows the statement
 * reports as processed go to its target table (the partitioned root when
 * it names one); MERGE is split into inserts, updates and deletes by its
 * own counters.  COPY FROM counts the rows it loaded, and TRUNCATE (a
 * utility command, counted when it returns) counts once per table it
 * names.  Writes inside a writable CTE are not counted: only the
 * statement's own target is.
 *
 * Besides the totals since the last reset (which the index advice weighs),
 * each table keeps its writes per minute over the last hour (epoch.h), a
 * TRUNCATE counting as one: the cache advice asks whether the tables a
 * statement reads were written in the window, and how fast.  A minute's
 * count and its epoch share one 64-bit word, updated with a
 * compare-and-swap, so the minute that a counter holds and its count never
 * disagree.
 *
 * Locking rules
 * -------------
 * - wr_shared->lock protects the table's structure.  Adding to an existing
 *   entry takes it in SHARED mode and adds with atomic operations, so the
 *   writes of a known table take no exclusive lock.  Creating an entry,
 *   evicting and resetting take it in EXCLUSIVE mode.
 * - A full table evicts the 5% (at least 10) least-written entries in one
 *   batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "catalog/namespace.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "epoch.h"
#include "store.h"
#include "writes.h"

#define WR_MAX_TABLES	 4096
#define WR_EVICT_PERCENT 5
#define WR_EVICT_MIN	 10

typedef struct WrKey
{
	Oid dbid;
	Oid relid;
} WrKey;

typedef struct WrEntry
{
	WrKey			 key; /* hash key, must be first */
	pg_atomic_uint64 inserted;
	pg_atomic_uint64 updated;
	pg_atomic_uint64 deleted;
	pg_atomic_uint64 copied;
	pg_atomic_uint64 truncated;
	/* writes per minute: (epoch & 0xffffffff) << 32 | count, see above */
	pg_atomic_uint64 minutes[APS_EPOCHS];
} WrEntry;

typedef struct WrShared
{
	LWLock	   *lock;
	TimestampTz reset_at; /* under lock; last reset or start-up */
} WrShared;

static WrShared *wr_shared = NULL;
static HTAB		*wr_entries = NULL;

void
aps_writes_request(void)
{
	RequestAddinShmemSpace(
		add_size(MAXALIGN(sizeof(WrShared)),
				 hash_estimate_size(WR_MAX_TABLES, sizeof(WrEntry))));
	RequestNamedLWLockTranche("apiscale writes", 1);
}

/* Called from shmem_startup_hook with AddinShmemInitLock held. */
void
aps_writes_startup(void)
{
	bool	found;
	HASHCTL info;

	wr_shared = ShmemInitStruct("apiscale writes", sizeof(WrShared), &found);
	if (!found)
	{
		wr_shared->lock = &(GetNamedLWLockTranche("apiscale writes"))->lock;
		wr_shared->reset_at = GetCurrentTimestamp();
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(WrKey);
	info.entrysize = sizeof(WrEntry);
	wr_entries = ShmemInitHash("apiscale writes per table", WR_MAX_TABLES,
							   WR_MAX_TABLES, &info, HASH_ELEM | HASH_BLOBS);
}

static uint64
entry_total(WrEntry *e)
{
	return pg_atomic_read_u64(&e->inserted) + pg_atomic_read_u64(&e->updated) +
		   pg_atomic_read_u64(&e->deleted) + pg_atomic_read_u64(&e->copied) +
		   pg_atomic_read_u64(&e->truncated);
}

static int
cmp_total(const void *a, const void *b)
{
	uint64 ta = entry_total(*(WrEntry *const *) a);
	uint64 tb = entry_total(*(WrEntry *const *) b);

	return (ta > tb) - (ta < tb);
}

/* Evict the least-written batch.  Caller holds the lock exclusively. */
static void
evict_batch(void)
{
	HASH_SEQ_STATUS scan;
	WrEntry		  **all;
	WrEntry		   *entry;
	long			n = hash_get_num_entries(wr_entries);
	long			i = 0;
	long			nvict;

	all = palloc(Max(n, 1) * sizeof(WrEntry *));
	hash_seq_init(&scan, wr_entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
		all[i++] = entry;
	qsort(all, n, sizeof(WrEntry *), cmp_total);
	nvict = Max(WR_EVICT_MIN, (long) WR_MAX_TABLES * WR_EVICT_PERCENT / 100);
	nvict = Min(nvict, n);
	for (i = 0; i < nvict; i++)
		hash_search(wr_entries, &all[i]->key, HASH_REMOVE, NULL);
	pfree(all);
}

/*
 * Add n writes to the minute of epoch.  A counter that holds a later
 * minute means ours is over an hour old, outside every window: dropped.
 */
static void
add_minute(WrEntry *entry, int64 epoch, uint64 n)
{
	pg_atomic_uint64 *m = &entry->minutes[epoch % APS_EPOCHS];
	uint32			  ep = (uint32) epoch;
	uint64			  old = pg_atomic_read_u64(m);

	for (;;)
	{
		uint32 held = (uint32) (old >> 32);
		uint64 count = held == ep ? (old & PG_UINT32_MAX) : 0;

		if (held != ep && held > ep)
			return;
		count = Min(count + n, (uint64) PG_UINT32_MAX);
		if (pg_atomic_compare_exchange_u64(m, &old,
										   ((uint64) ep << 32) | count))
			return;
	}
}

/*
 * Add rows to relid's counters in the current database, written at time
 * at; which counter is which of kind (CMD_INSERT, CMD_UPDATE, CMD_DELETE,
 * CMD_UTILITY for COPY, CMD_NOTHING for TRUNCATE, whose rows are 1).
 */
static void
add_rows(Oid relid, CmdType kind, uint64 rows, TimestampTz at)
{
	WrKey	 key;
	WrEntry *entry;
	bool	 found;

	if (wr_entries == NULL || rows == 0 || !OidIsValid(relid))
		return;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.relid = relid;

	LWLockAcquire(wr_shared->lock, LW_SHARED);
	entry = hash_search(wr_entries, &key, HASH_FIND, NULL);
	if (entry == NULL)
	{
		LWLockRelease(wr_shared->lock);
		LWLockAcquire(wr_shared->lock, LW_EXCLUSIVE);
		entry = hash_search(wr_entries, &key, HASH_FIND, NULL);
		if (entry == NULL)
		{
			if (hash_get_num_entries(wr_entries) >= WR_MAX_TABLES)
				evict_batch();
			entry = hash_search(wr_entries, &key, HASH_ENTER_NULL, &found);
			if (entry == NULL)
			{
				LWLockRelease(wr_shared->lock);
				return;
			}
			pg_atomic_init_u64(&entry->inserted, 0);
			pg_atomic_init_u64(&entry->updated, 0);
			pg_atomic_init_u64(&entry->deleted, 0);
			pg_atomic_init_u64(&entry->copied, 0);
			pg_atomic_init_u64(&entry->truncated, 0);
			for (int i = 0; i < APS_EPOCHS; i++)
				pg_atomic_init_u64(&entry->minutes[i], 0);
		}
	}
	switch (kind)
	{
		case CMD_INSERT:
			pg_atomic_fetch_add_u64(&entry->inserted, rows);
			break;
		case CMD_UPDATE:
			pg_atomic_fetch_add_u64(&entry->updated, rows);
			break;
		case CMD_DELETE:
			pg_atomic_fetch_add_u64(&entry->deleted, rows);
			break;
		case CMD_NOTHING:
			pg_atomic_fetch_add_u64(&entry->truncated, rows);
			break;
		default:
			pg_atomic_fetch_add_u64(&entry->copied, rows);
			break;
	}
	add_minute(entry, aps_epoch_of(at), rows);
	LWLockRelease(wr_shared->lock);
}

/*
 * Count the rows a finished INSERT, UPDATE, DELETE or MERGE wrote (rows: what
 * it processed over all its runs), at time at.  Cheap for everything else:
 * one test.
 */
void
aps_writes_count_execution(QueryDesc *qd, uint64 rows, TimestampTz at)
{
	PlannedStmt		 *pstmt = qd->plannedstmt;
	ModifyTable		 *mt;
	ModifyTableState *mts;
	Index			  rti;
	Oid				  relid;

	if (pstmt->commandType == CMD_SELECT ||
		pstmt->commandType == CMD_UTILITY || pstmt->planTree == NULL ||
		!IsA(pstmt->planTree, ModifyTable) || qd->planstate == NULL ||
		!IsA(qd->planstate, ModifyTableState) || IsParallelWorker())
		return;
	mt = (ModifyTable *) pstmt->planTree;
	mts = (ModifyTableState *) qd->planstate;
	rti = mt->rootRelation > 0 ? mt->rootRelation : mt->nominalRelation;
	if (rti < 1 || rti > (Index) list_length(pstmt->rtable))
		return;
	relid = rt_fetch(rti, pstmt->rtable)->relid;

	if (mt->operation == CMD_MERGE)
	{
		add_rows(relid, CMD_INSERT, (uint64) mts->mt_merge_inserted, at);
		add_rows(relid, CMD_UPDATE, (uint64) mts->mt_merge_updated, at);
		add_rows(relid, CMD_DELETE, (uint64) mts->mt_merge_deleted, at);
	}
	else if (mt->operation == CMD_INSERT || mt->operation == CMD_UPDATE ||
			 mt->operation == CMD_DELETE)
		add_rows(relid, mt->operation, rows, at);
}

/* Count the rows COPY FROM loaded into its table, at time at. */
void
aps_writes_count_copy(CopyStmt *stmt, uint64 rows, TimestampTz at)
{
	Oid relid;

	if (!stmt->is_from || stmt->relation == NULL || rows == 0 ||
		IsParallelWorker())
		return;
	/* The table COPY just opened: no lock needed, no error if it is gone. */
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	add_rows(relid, CMD_UTILITY, rows, at);
}

/*
 * Count a TRUNCATE that succeeded, once for each table it names (not the
 * tables CASCADE adds, nor a partitioned table's partitions), at time at.
 */
void
aps_writes_count_truncate(TruncateStmt *stmt, TimestampTz at)
{
	ListCell *lc;

	if (IsParallelWorker())
		return;
	foreach (lc, stmt->relations)
	{
		/* Tables TRUNCATE just locked: no lock needed, none gone. */
		Oid relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);

		add_rows(relid, CMD_NOTHING, 1, at);
	}
}

/*
 * Writes to the tables relids[0..n-1] of database dbid in the minutes
 * first to last (a TRUNCATE counts as one).
 */
uint64
aps_writes_in_minutes(Oid dbid, const Oid *relids, int n, int64 first,
					  int64 last)
{
	uint64 sum = 0;

	if (wr_entries == NULL || n <= 0)
		return 0;
	first = Max(first, last - (APS_EPOCHS - 1));
	LWLockAcquire(wr_shared->lock, LW_SHARED);
	for (int i = 0; i < n; i++)
	{
		WrKey	 key;
		WrEntry *entry;

		memset(&key, 0, sizeof(key));
		key.dbid = dbid;
		key.relid = relids[i];
		entry = hash_search(wr_entries, &key, HASH_FIND, NULL);
		if (entry == NULL)
			continue;
		for (int64 e = first; e <= last; e++)
		{
			uint64 v = pg_atomic_read_u64(&entry->minutes[e % APS_EPOCHS]);

			if ((uint32) (v >> 32) == (uint32) e)
				sum += v & PG_UINT32_MAX;
		}
	}
	LWLockRelease(wr_shared->lock);
	return sum;
}

/* When the counters were last reset (or the server started). */
TimestampTz
aps_writes_since(void)
{
	TimestampTz since;

	LWLockAcquire(wr_shared->lock, LW_SHARED);
	since = wr_shared->reset_at;
	LWLockRelease(wr_shared->lock);
	return since;
}

/*
 * Copies of the counters of database dbid (a List of palloc'd
 * ApsTableWrites), and the time they count since.
 */
List *
aps_writes_snapshot(Oid dbid, TimestampTz *since)
{
	HASH_SEQ_STATUS scan;
	WrEntry		   *entry;
	List		   *result = NIL;

	LWLockAcquire(wr_shared->lock, LW_SHARED);
	*since = wr_shared->reset_at;
	hash_seq_init(&scan, wr_entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		ApsTableWrites *w;

		if (entry->key.dbid != dbid)
			continue;
		w = palloc(sizeof(ApsTableWrites));
		w->dbid = entry->key.dbid;
		w->relid = entry->key.relid;
		w->inserted = (int64) pg_atomic_read_u64(&entry->inserted);
		w->updated = (int64) pg_atomic_read_u64(&entry->updated);
		w->deleted = (int64) pg_atomic_read_u64(&entry->deleted);
		w->copied = (int64) pg_atomic_read_u64(&entry->copied);
		w->truncated = (int64) pg_atomic_read_u64(&entry->truncated);
		result = lappend(result, w);
	}
	LWLockRelease(wr_shared->lock);
	return result;
}

/* Forget all counts. */
void
aps_writes_reset(void)
{
	HASH_SEQ_STATUS scan;
	WrEntry		   *entry;

	if (wr_entries == NULL)
		return;
	LWLockAcquire(wr_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&scan, wr_entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
		hash_search(wr_entries, &entry->key, HASH_REMOVE, NULL);
	wr_shared->reset_at = GetCurrentTimestamp();
	LWLockRelease(wr_shared->lock);
}

PG_FUNCTION_INFO_V1(apiscale_table_writes);

/*
 * apiscale.table_writes: the counters of the current database's tables that
 * still exist, with their rate since the last reset.
 */
Datum
apiscale_table_writes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz	   since;
	List		  *writes;
	ListCell	  *lc;
	double		   seconds;

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);
	writes = aps_writes_snapshot(MyDatabaseId, &since);
	seconds = Max(1.0, (double) (GetCurrentTimestamp() - since) / 1000000.0);
	foreach (lc, writes)
	{
		ApsTableWrites *w = lfirst(lc);
		Datum			values[8];
		bool			nulls[8] = {false};

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(w->relid)))
			continue;
		values[0] = ObjectIdGetDatum(w->relid);
		values[1] = Int64GetDatum(w->inserted);
		values[2] = Int64GetDatum(w->updated);
		values[3] = Int64GetDatum(w->deleted);
		values[4] = Int64GetDatum(w->copied);
		values[5] = Int64GetDatum(w->truncated);
		values[6] = Float8GetDatum(
			(w->inserted + w->updated + w->deleted + w->copied) / seconds);
		values[7] = TimestampTzGetDatum(since);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
