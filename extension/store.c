/*-------------------------------------------------------------------------
 *
 * store.c
 *		apiscale's shared-memory statement table.
 *
 * One hash table entry per (userid, dbid, queryid) holds the counters, the
 * latency histogram and the normalized text of a statement.  A separate,
 * smaller array of plan slots keeps the EXPLAIN ANALYZE text of the latest
 * slow run of some statements; a slot names its owner, so an entry's slot
 * number is only a hint that is checked before use.
 *
 * Locking rules
 * -------------
 * - shared->lock (LWLock) protects the hash table's structure.  Looking up
 *   an entry and updating its counters needs it in SHARED mode only; the
 *   entry's own spinlock then protects its counters and histogram.  Creating,
 *   evicting and resetting entries take it in EXCLUSIVE mode.  Nobody keeps
 *   an entry pointer after releasing the lock.
 * - shared->plan_lock (LWLock) protects the plan slots.  It is always taken
 *   after shared->lock (in any mode), never before, and never waited for
 *   while holding an entry spinlock.
 * - Eviction happens in batches (5% of max_queries, at least 10 entries) of
 *   the least-used entries, so that a full table costs one exclusive lock
 *   per batch of new statements, not one per statement.  "Usage" is the
 *   number of calls, decayed by 1% at every eviction round.
 * - shared->generation is bumped whenever entries disappear (eviction,
 *   reset).  Each backend keeps a small cache of keys it has seen in the
 *   table; the cache is valid only while the generation is unchanged, which
 *   lets the hot path skip the "does this entry exist yet?" lookup.
 * - An entry's cache_slot names the slot of its caching evidence (cache.c)
 *   when it has one: a hint, which cache.c checks against the slot's owner
 *   under the slot's own spinlock.
 *
 * Nothing here raises an error while holding a spinlock, and the error
 * path (aps_store_record_error) allocates nothing and creates nothing, so
 * it is safe to call from a PG_CATCH block.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "antipattern.h"
#include "guc.h"
#include "library.h"
#include "store.h"

#define APS_PLAN_TEXT_LEN 16384 /* bytes of EXPLAIN text kept per plan */
#define APS_USAGE_INIT	  1.0
#define APS_USAGE_DECAY	  0.99
#define APS_EVICT_PERCENT 5
#define APS_EVICT_MIN	  10
#define APS_KNOWN_SLOTS	  256 /* backend-local cache, power of two */

/* One statement in the shared hash table. */
typedef struct ApsEntry
{
	ApsKey		 key;	/* hash key, must be first */
	slock_t		 mutex; /* protects everything below */
	ApsCounters	 c;
	int			 plan_slot;	 /* index into the plan slots, or -1 */
	int			 cache_slot; /* its caching evidence (cache.c), or -1 */
	int			 query_len;	 /* bytes used in query[] */
	int			 encoding;	 /* encoding of query[] */
	ApsHistogram hist;
	char		 query[FLEXIBLE_ARRAY_MEMBER]; /* normalized text */
} ApsEntry;

/* The EXPLAIN text of one statement's latest slow run. */
typedef struct ApsPlanSlot
{
	bool		used;	  /* holds a plan */
	ApsKey		owner;	  /* statement the plan belongs to */
	TimestampTz saved_at; /* when it was captured */
	int			len;	  /* bytes used in text[] */
	char		text[APS_PLAN_TEXT_LEN];
} ApsPlanSlot;

/* Global state in shared memory. */
typedef struct ApsShared
{
	LWLock			*lock;		 /* hash table structure, see above */
	LWLock			*plan_lock;	 /* plan slots */
	pg_atomic_uint64 generation; /* bumped when entries disappear */
	slock_t			 mutex;		 /* protects the two fields below */
	int64			 evicted;	 /* entries evicted since the last reset */
	TimestampTz		 reset_at;	 /* last reset (or start-up) */
} ApsShared;

/* Local state */
static ApsShared   *shared = NULL;
static HTAB		   *entries = NULL;
static ApsPlanSlot *plan_slots = NULL;

/*
 * Keys this backend has seen in the table, valid for known_generation, and
 * whether each has so far run fast (see aps_store_set_fast).
 */
static ApsKey known_keys[APS_KNOWN_SLOTS];
static bool	  known_valid[APS_KNOWN_SLOTS];
static bool	  known_fast[APS_KNOWN_SLOTS];
static bool	  known_cached[APS_KNOWN_SLOTS];
static uint64 known_generation = 0;

static Size
entry_size(void)
{
	return add_size(offsetof(ApsEntry, query), aps_max_query_length);
}

static Size
store_shmem_size(void)
{
	Size size = MAXALIGN(sizeof(ApsShared));

	size = add_size(size, hash_estimate_size(aps_max_queries, entry_size()));
	size = add_size(size, mul_size(aps_max_plans, sizeof(ApsPlanSlot)));
	return size;
}

/*
 * Ask for our shared memory and locks.  Called from shmem_request_hook.
 */
void
aps_store_request(void)
{
	RequestAddinShmemSpace(store_shmem_size());
	RequestNamedLWLockTranche("apiscale", 2);
}

/*
 * Attach to (and, in the postmaster, create) the shared state.  Called from
 * shmem_startup_hook; the caller holds AddinShmemInitLock.
 */
void
aps_store_startup(void)
{
	bool	found;
	bool	found_plans;
	HASHCTL info;

	shared = ShmemInitStruct("apiscale", sizeof(ApsShared), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("apiscale");

		shared->lock = &locks[0].lock;
		shared->plan_lock = &locks[1].lock;
		pg_atomic_init_u64(&shared->generation, 1);
		SpinLockInit(&shared->mutex);
		shared->evicted = 0;
		shared->reset_at = GetCurrentTimestamp();
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ApsKey);
	info.entrysize = entry_size();
	entries = ShmemInitHash("apiscale statements", aps_max_queries,
							aps_max_queries, &info, HASH_ELEM | HASH_BLOBS);

	plan_slots = ShmemInitStruct("apiscale plans",
								 mul_size(aps_max_plans, sizeof(ApsPlanSlot)),
								 &found_plans);
	if (!found_plans)
	{
		for (int i = 0; i < aps_max_plans; i++)
			plan_slots[i].used = false;
	}
	aps_store_attached = shared != NULL && entries != NULL;
}

/* The shared state is there (we were preloaded): see aps_store_ready. */
bool aps_store_attached = false;

/*
 * Raise the "not preloaded" error if the shared state is missing.  Every
 * SQL-callable entry point calls this first.
 */
void
aps_store_check_ready(void)
{
	const ApsLibrary *lib;

	if (aps_store_ready())
		return;
	/* Preloaded, but from another file than this copy's. */
	lib = aps_library_preloaded();
	if (lib != NULL)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("apiscale was preloaded from another file than the one "
					"its functions were loaded from"),
			 errdetail("shared_preload_libraries loaded \"%s\"; the "
					   "functions come from \"%s\".",
					   lib->path,
					   aps_library_path() ? aps_library_path() : "?"),
			 errhint("Preload the installed library: "
					 "shared_preload_libraries = 'apiscale'.")));
	ereport(
		ERROR,
		(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		 errmsg("apiscale must be loaded via \"shared_preload_libraries\""),
		 errhint(
			 "Add apiscale to shared_preload_libraries in postgresql.conf and restart the server.")));
}

static inline bool
keys_equal(const ApsKey *a, const ApsKey *b)
{
	return a->queryid == b->queryid && a->userid == b->userid &&
		   a->dbid == b->dbid;
}

static inline int
known_slot(const ApsKey *key)
{
	uint64 h = key->queryid ^ ((uint64) key->userid << 32) ^ key->dbid;

	return (int) ((h ^ (h >> 29)) & (APS_KNOWN_SLOTS - 1));
}

/* Drop the local cache if entries have disappeared since it was filled. */
static inline void
known_refresh(void)
{
	uint64 gen = pg_atomic_read_u64(&shared->generation);

	if (gen != known_generation)
	{
		memset(known_valid, 0, sizeof(known_valid));
		known_generation = gen;
	}
}

static inline void
known_remember(const ApsKey *key, uint64 generation)
{
	int slot = known_slot(key);

	if (generation != known_generation)
		return; /* cache was refreshed in between */
	known_keys[slot] = *key;
	known_valid[slot] = true;
	known_fast[slot] = false;
	known_cached[slot] = false;
}

/*
 * Does the table (as far as this backend knows without locking) hold key?
 * A "false" only means "look it up".  If fast (cached) is not NULL, it is
 * set to what aps_store_set_fast last said of key: whether it ran fast (has
 * a slot of caching evidence); false if unknown.
 */
bool
aps_store_known(const ApsKey *key, bool *fast, bool *cached)
{
	int	 slot = known_slot(key);
	bool known;

	known_refresh();
	known = known_valid[slot] && keys_equal(&known_keys[slot], key);
	if (fast)
		*fast = known && known_fast[slot];
	if (cached)
		*cached = known && known_cached[slot];
	return known;
}

/*
 * Remember in this backend that key exists, whether it has so far run
 * fast, i.e. far from apiscale.slow_query_ms, and whether it has a slot of
 * caching evidence (the caller decides both).
 */
void
aps_store_set_fast(const ApsKey *key, bool fast, bool cached)
{
	int slot = known_slot(key);

	known_refresh();
	known_keys[slot] = *key;
	known_valid[slot] = true;
	known_fast[slot] = fast;
	known_cached[slot] = cached;
}

static int
cmp_usage(const void *a, const void *b)
{
	double ua = (*(ApsEntry *const *) a)->c.usage;
	double ub = (*(ApsEntry *const *) b)->c.usage;

	return (ua > ub) - (ua < ub);
}

/*
 * Evict the least-used batch of entries and decay everyone's usage.
 * Caller holds shared->lock exclusively, so no counter changes under us.
 */
static void
evict_batch(void)
{
	HASH_SEQ_STATUS scan;
	ApsEntry	  **all;
	ApsEntry	   *entry;
	long			n = hash_get_num_entries(entries);
	long			i = 0;
	long			nvict;

	all = palloc(n * sizeof(ApsEntry *));
	hash_seq_init(&scan, entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		entry->c.usage *= APS_USAGE_DECAY;
		all[i++] = entry;
	}

	qsort(all, n, sizeof(ApsEntry *), cmp_usage);
	nvict =
		Max(APS_EVICT_MIN, (long) aps_max_queries * APS_EVICT_PERCENT / 100);
	nvict = Min(nvict, n);

	LWLockAcquire(shared->plan_lock, LW_EXCLUSIVE);
	for (i = 0; i < nvict; i++)
	{
		int slot = all[i]->plan_slot;

		if (slot >= 0 && slot < aps_max_plans &&
			keys_equal(&plan_slots[slot].owner, &all[i]->key))
			plan_slots[slot].used = false;
		hash_search(entries, &all[i]->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(shared->plan_lock);

	pg_atomic_fetch_add_u64(&shared->generation, 1);
	SpinLockAcquire(&shared->mutex);
	shared->evicted += nvict;
	SpinLockRelease(&shared->mutex);

	pfree(all);
}

/*
 * Find key's entry, creating it if it is missing.  Called with shared->lock
 * held in SHARED mode; returns with it held in SHARED or EXCLUSIVE mode.
 * The normalized text is made only for a missing entry, and outside the
 * lock.  Returns NULL only if the entry could not be created.
 */
static ApsEntry *
find_or_create(const ApsKey *key, const ApsTextSource *src)
{
	ApsEntry *entry;
	bool	  found;
	char	 *text;
	int		  len;
	int		  encoding = GetDatabaseEncoding();
	bool	  select_star;

	entry = hash_search(entries, key, HASH_FIND, NULL);
	if (entry)
		return entry;

	LWLockRelease(shared->lock);
	text = aps_normalize_query(src, &len);
	select_star = aps_uses_select_star(src);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);

	entry = hash_search(entries, key, HASH_FIND, NULL);
	if (entry == NULL)
	{
		if (hash_get_num_entries(entries) >= aps_max_queries)
			evict_batch();
		entry = hash_search(entries, key, HASH_ENTER_NULL, &found);
		if (entry != NULL && !found)
		{
			len = pg_encoding_mbcliplen(encoding, text, len,
										aps_max_query_length - 1);
			SpinLockInit(&entry->mutex);
			memset(&entry->c, 0, sizeof(entry->c));
			memset(&entry->hist, 0, sizeof(entry->hist));
			entry->c.usage = APS_USAGE_INIT;
			entry->c.select_star = select_star;
			entry->c.first_seen = GetCurrentStatementStartTimestamp();
			entry->plan_slot = -1;
			entry->cache_slot = -1;
			entry->encoding = encoding;
			entry->query_len = len;
			memcpy(entry->query, text, len);
			entry->query[len] = '\0';
		}
	}
	pfree(text);
	return entry;
}

/*
 * Make sure key has an entry, creating it with the text of src.  Cheap when
 * the local cache already knows it.
 */
void
aps_store_ensure(const ApsKey *key, const ApsTextSource *src)
{
	uint64 generation;

	if (aps_store_known(key, NULL, NULL))
		return;

	generation = known_generation;
	LWLockAcquire(shared->lock, LW_SHARED);
	if (find_or_create(key, src) != NULL)
		known_remember(key, generation);
	LWLockRelease(shared->lock);
}

/*
 * Add one completed execution to key's entry (created from src if needed).
 * Fills *out with the entry's max_ms and calls after the update and its
 * cache slot (max_ms NaN, calls 0, slot -1 if there is no entry).
 */
void
aps_store_record(const ApsKey *key, const ApsExecution *exec,
				 const ApsTextSource *src, ApsRecorded *out)
{
	ApsEntry *entry;

	out->max_ms = get_float8_nan();
	out->calls = 0;
	out->cache_slot = -1;

	LWLockAcquire(shared->lock, LW_SHARED);
	entry = find_or_create(key, src);
	if (entry != NULL)
	{
		ApsCounters *c = &entry->c;
		double		 x = exec->duration_ms;

		SpinLockAcquire(&entry->mutex);
		c->calls++;
		c->total_ms += x;
		if (c->calls == 1)
		{
			c->min_ms = c->max_ms = c->mean_ms = x;
			c->sum_var_ms = 0.0;
		}
		else
		{
			double old_mean = c->mean_ms;

			c->min_ms = Min(c->min_ms, x);
			c->max_ms = Max(c->max_ms, x);
			c->mean_ms += (x - old_mean) / c->calls;
			c->sum_var_ms += (x - old_mean) * (x - c->mean_ms);
		}
		c->rows += exec->rows;
		c->shared_blks_hit += exec->shared_blks_hit;
		c->shared_blks_read += exec->shared_blks_read;
		if (exec->slow)
		{
			c->slow_calls++;
			c->last_slow_ms = x;
			c->last_slow_at = exec->ended;
		}
		c->last_seen = exec->started;
		c->usage += 1.0;
		if (exec->unbounded && exec->rows > aps_unbounded_rows)
		{
			c->unbounded_calls++;
			c->unbounded_rows_sum += exec->rows;
			c->unbounded_rows_max = Max(c->unbounded_rows_max, exec->rows);
		}
		if (exec->offset_skipped > aps_unbounded_rows)
		{
			c->offset_calls++;
			c->offset_max = Max(c->offset_max, exec->offset_skipped);
		}
		if (aps_n_plus_one_calls > 0 &&
			exec->nplus1_runs >= aps_n_plus_one_calls)
		{
			if (exec->nplus1_runs == aps_n_plus_one_calls)
				c->nplus1_txns++;
			c->nplus1_max = Max(c->nplus1_max, exec->nplus1_runs);
		}
		aps_hist_add_at(&entry->hist, exec->hist_bucket);
		out->max_ms = c->max_ms;
		out->calls = c->calls;
		out->cache_slot = entry->cache_slot;
		SpinLockRelease(&entry->mutex);
	}
	LWLockRelease(shared->lock);
}

/* Name slot (-1: none) as where key's caching evidence is kept. */
void
aps_store_set_cache_slot(const ApsKey *key, int slot)
{
	ApsEntry *entry;

	LWLockAcquire(shared->lock, LW_SHARED);
	entry = hash_search(entries, key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		SpinLockAcquire(&entry->mutex);
		entry->cache_slot = slot;
		SpinLockRelease(&entry->mutex);
	}
	LWLockRelease(shared->lock);
}

/*
 * Count one failed or cancelled execution.  Safe in PG_CATCH: finds only,
 * never creates, never allocates.  An entry evicted since the execution
 * started loses the error.
 */
void
aps_store_record_error(const ApsKey *key)
{
	ApsEntry *entry;

	LWLockAcquire(shared->lock, LW_SHARED);
	entry = hash_search(entries, key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		SpinLockAcquire(&entry->mutex);
		entry->c.errors++;
		entry->c.usage += 1.0;
		SpinLockRelease(&entry->mutex);
	}
	LWLockRelease(shared->lock);
}

/*
 * Keep plan as the latest slow plan of key, in the slot it already owns or
 * else a free one or else the oldest one.
 */
void
aps_store_save_plan(const ApsKey *key, const char *plan, int len)
{
	ApsEntry *entry;
	int		  slot;

	if (aps_max_plans <= 0)
		return;

	LWLockAcquire(shared->lock, LW_SHARED);
	entry = hash_search(entries, key, HASH_FIND, NULL);
	if (entry == NULL)
	{
		LWLockRelease(shared->lock);
		return;
	}
	/* Read the entry's slot under plan_lock: concurrent savers serialize. */
	LWLockAcquire(shared->plan_lock, LW_EXCLUSIVE);
	SpinLockAcquire(&entry->mutex);
	slot = entry->plan_slot;
	SpinLockRelease(&entry->mutex);

	if (slot < 0 || slot >= aps_max_plans || !plan_slots[slot].used ||
		!keys_equal(&plan_slots[slot].owner, key))
	{
		slot = 0;
		for (int i = 0; i < aps_max_plans; i++)
		{
			if (!plan_slots[i].used)
			{
				slot = i;
				break;
			}
			if (plan_slots[i].saved_at < plan_slots[slot].saved_at)
				slot = i;
		}
		plan_slots[slot].used = true;
		plan_slots[slot].owner = *key;
	}
	len = pg_mbcliplen(plan, len, APS_PLAN_TEXT_LEN - 1);
	memcpy(plan_slots[slot].text, plan, len);
	plan_slots[slot].text[len] = '\0';
	plan_slots[slot].len = len;
	plan_slots[slot].saved_at = GetCurrentTimestamp();

	SpinLockAcquire(&entry->mutex);
	entry->plan_slot = slot;
	SpinLockRelease(&entry->mutex);
	LWLockRelease(shared->plan_lock);
	LWLockRelease(shared->lock);
}

/*
 * Call cb once per entry with a consistent copy of it.  Entries that were
 * only parsed (no execution finished or failed yet) are skipped.  Runs
 * under shared->lock in SHARED mode: new statements wait meanwhile, known
 * ones do not.
 */
void
aps_store_foreach(bool with_plans, ApsSnapshotCallback cb, void *arg)
{
	HASH_SEQ_STATUS	  scan;
	ApsEntry		 *entry;
	ApsEntrySnapshot *snap = palloc(sizeof(ApsEntrySnapshot));

	LWLockAcquire(shared->lock, LW_SHARED);
	if (with_plans)
		LWLockAcquire(shared->plan_lock, LW_SHARED);

	hash_seq_init(&scan, entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		int slot;

		SpinLockAcquire(&entry->mutex);
		snap->c = entry->c;
		snap->hist = entry->hist;
		slot = entry->plan_slot;
		SpinLockRelease(&entry->mutex);

		if (snap->c.calls == 0 && snap->c.errors == 0)
			continue;

		snap->key = entry->key;
		snap->encoding = entry->encoding;
		/* query[] never changes once the entry exists */
		snap->query = pnstrdup(entry->query, entry->query_len);
		snap->plan = NULL;
		if (with_plans && slot >= 0 && slot < aps_max_plans &&
			plan_slots[slot].used &&
			keys_equal(&plan_slots[slot].owner, &entry->key))
			snap->plan = pnstrdup(plan_slots[slot].text, plan_slots[slot].len);

		cb(snap, arg);

		pfree(snap->query);
		if (snap->plan)
			pfree(snap->plan);
	}

	if (with_plans)
		LWLockRelease(shared->plan_lock);
	LWLockRelease(shared->lock);
	pfree(snap);
}

/*
 * Forget everything collected so far.
 */
void
aps_store_reset(void)
{
	HASH_SEQ_STATUS scan;
	ApsEntry	   *entry;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&scan, entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
		hash_search(entries, &entry->key, HASH_REMOVE, NULL);

	LWLockAcquire(shared->plan_lock, LW_EXCLUSIVE);
	for (int i = 0; i < aps_max_plans; i++)
		plan_slots[i].used = false;
	LWLockRelease(shared->plan_lock);

	pg_atomic_fetch_add_u64(&shared->generation, 1);
	SpinLockAcquire(&shared->mutex);
	shared->evicted = 0;
	shared->reset_at = GetCurrentTimestamp();
	SpinLockRelease(&shared->mutex);
	LWLockRelease(shared->lock);
}

/*
 * Table-wide numbers for apiscale.info.
 */
void
aps_store_info(int64 *nentries, int64 *evicted, TimestampTz *reset_at)
{
	LWLockAcquire(shared->lock, LW_SHARED);
	*nentries = hash_get_num_entries(entries);
	LWLockRelease(shared->lock);

	SpinLockAcquire(&shared->mutex);
	*evicted = shared->evicted;
	*reset_at = shared->reset_at;
	SpinLockRelease(&shared->mutex);
}

/*
 * A palloc'd copy of key's normalized text, or NULL if there is no entry.
 */
char *
aps_store_get_query(const ApsKey *key)
{
	ApsEntry *entry;
	char	 *text = NULL;

	LWLockAcquire(shared->lock, LW_SHARED);
	entry = hash_search(entries, key, HASH_FIND, NULL);
	if (entry != NULL)
		text = pnstrdup(entry->query, entry->query_len);
	LWLockRelease(shared->lock);
	return text;
}
