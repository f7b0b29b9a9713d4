/*-------------------------------------------------------------------------
 *
 * evidence.c
 *		Shared-memory table of index evidence, one entry per statement.
 *
 * One hash table entry per (userid, dbid, queryid) holds up to APS_EV_MAX_ITEMS
 * evidence items (relation, columns, kind, scans, rows read, rows filtered),
 * up to APS_EV_MAX_EXPRS expressions the items' columns refer to, and the
 * statement's representative execution: its own text with the literals, its
 * parameter values as text and its search_path, so that the statement can
 * be re-planned later.  The representative is the sampled run that threw
 * away the most rows; it is replaced when a run wastes at least twice as
 * much.  An item keeps, for up to two of its equality columns, the one
 * value runs compared them with, or that they varied.
 *
 * Locking rules (the same as store.c's)
 * -------------------------------------
 * - ev_shared->lock protects the table's structure, the samples and the
 *   expressions.  Adding counts to an existing entry needs it in SHARED mode
 *   plus the entry's spinlock; creating, evicting, resetting, writing a
 *   sample and adding an expression take it in EXCLUSIVE mode (so that the
 *   expressions can be read under the SHARED lock alone).
 * - ev_shared->generation changes whenever entries are evicted or reset:
 *   backends that remember which statements they recorded (advisor.c)
 *   forget them then.
 * - A full table evicts the 5% (at least 10, at most half) entries with the
 *   least wasted work, in one batch.
 * - Nothing is allocated or raised while a spinlock is held.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "evidence.h"
#include "guc.h"

#define EV_EVICT_PERCENT 5
#define EV_EVICT_MIN	 10
#define EV_WASTE_DECAY	 0.99

typedef struct EvKey
{
	uint64 queryid;
	Oid	   userid;
	Oid	   dbid;
} EvKey;

typedef struct EvEntry
{
	EvKey	  key; /* hash key, must be first */
	slock_t	  mutex;
	int		  nitems;
	ApsEvItem items[APS_EV_MAX_ITEMS];
	double	  waste;		/* rows filtered, decayed: eviction weight */
	double	  sample_waste; /* rows filtered by the representative run */
	ApsSample sample;		/* sample.text unused: text lives in text[] */
	int		  nexprs;		/* expressions in exprs[] */
	uint64	  expr_hash[APS_EV_MAX_EXPRS];
	uint16	  expr_off[APS_EV_MAX_EXPRS];
	uint16	  expr_used; /* bytes of exprs[] used, NULs included */
	char	  exprs[APS_EV_EXPR_AREA];
	char	  text[FLEXIBLE_ARRAY_MEMBER];
} EvEntry;

typedef struct EvShared
{
	LWLock			*lock;
	pg_atomic_uint32 generation; /* bumped by eviction and reset */
} EvShared;

static EvShared *ev_shared = NULL;
static HTAB		*ev_entries = NULL;

static Size
ev_entry_size(void)
{
	return add_size(offsetof(EvEntry, text), aps_max_query_length);
}

void
aps_evidence_request(void)
{
	Size size = MAXALIGN(sizeof(EvShared));

	size = add_size(
		size, hash_estimate_size(aps_max_advice_queries, ev_entry_size()));
	RequestAddinShmemSpace(size);
	RequestNamedLWLockTranche("apiscale advisor", 1);
}

/* Called from shmem_startup_hook with AddinShmemInitLock held. */
void
aps_evidence_startup(void)
{
	bool	found;
	HASHCTL info;

	ev_shared = ShmemInitStruct("apiscale advisor", sizeof(EvShared), &found);
	if (!found)
	{
		ev_shared->lock = &(GetNamedLWLockTranche("apiscale advisor"))->lock;
		pg_atomic_init_u32(&ev_shared->generation, 0);
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(EvKey);
	info.entrysize = ev_entry_size();
	ev_entries =
		ShmemInitHash("apiscale advisor statements", aps_max_advice_queries,
					  aps_max_advice_queries, &info, HASH_ELEM | HASH_BLOBS);
}

static inline void
make_key(EvKey *key, Oid userid, Oid dbid, uint64 queryid)
{
	memset(key, 0, sizeof(*key)); /* hashed as bytes */
	key->queryid = queryid;
	key->userid = userid;
	key->dbid = dbid;
}

static bool
items_match(const ApsEvItem *a, const ApsEvItem *b)
{
	return a->relid == b->relid && a->kind == b->kind &&
		   a->ncols == b->ncols && a->opno == b->opno &&
		   a->funcid == b->funcid && a->indexid == b->indexid &&
		   memcmp(a->attnum, b->attnum, sizeof(int16) * a->ncols) == 0 &&
		   memcmp(a->flags, b->flags, a->ncols) == 0;
}

static bool
same_value(const ApsEvConst *a, const ApsEvConst *b)
{
	return a->type == b->type && a->opno == b->opno &&
		   a->collid == b->collid && a->byval == b->byval &&
		   a->len == b->len && memcmp(a->value, b->value, a->len) == 0;
}

/*
 * A column of old keeps its value only if the new run compared it with the
 * same one.
 */
static void
merge_consts(ApsEvItem *old, const ApsEvItem *new)
{
	for (int k = 0; k < APS_EV_MAX_CONSTS; k++)
	{
		ApsEvConst *o = &old->consts[k];
		bool		same = false;

		if (o->col < 0 || o->varies)
			continue;
		for (int j = 0; j < APS_EV_MAX_CONSTS; j++)
			if (new->consts[j].col == o->col && !new->consts[j].varies &&
				same_value(o, &new->consts[j]))
				same = true;
		if (!same)
			o->varies = true;
	}
}

/*
 * The entry's slot of the expression of hash, or -1.  Caller holds the lock
 * (the expressions only change under it in exclusive mode).
 */
static int
entry_expr(EvEntry *entry, uint64 hash)
{
	for (int i = 0; i < entry->nexprs; i++)
		if (entry->expr_hash[i] == hash)
			return i;
	return -1;
}

/*
 * Copy items to out[] with their expression columns turned from slots of
 * exprs (the caller's) into slots of entry.  With add (lock held
 * exclusively, every text made), missing expressions are added to the
 * entry, and items whose expressions do not fit are left out; without,
 * returns false when an expression is missing.  *nout: items in out[].
 */
static bool
map_items(EvEntry *entry, const ApsEvItem *items, int nitems,
		  const ApsEvExprs *exprs, bool add, ApsEvItem *out, int *nout)
{
	int map[APS_EV_MAX_EXPRS];
	int nexprs = exprs != NULL ? Min(exprs->n, APS_EV_MAX_EXPRS) : 0;

	for (int e = 0; e < nexprs; e++)
	{
		map[e] = entry_expr(entry, exprs->hash[e]);
		if (map[e] < 0 && add && exprs->text[e] != NULL &&
			exprs->text[e][0] != '\0')
		{
			Size len = strlen(exprs->text[e]) + 1;

			if (entry->nexprs < APS_EV_MAX_EXPRS &&
				entry->expr_used + len <= APS_EV_EXPR_AREA)
			{
				memcpy(entry->exprs + entry->expr_used, exprs->text[e], len);
				entry->expr_hash[entry->nexprs] = exprs->hash[e];
				entry->expr_off[entry->nexprs] = entry->expr_used;
				entry->expr_used += len;
				map[e] = entry->nexprs++;
			}
		}
	}
	*nout = 0;
	for (int i = 0; i < nitems; i++)
	{
		ApsEvItem *it = &out[*nout];
		bool	   ok = true;

		*it = items[i];
		for (int c = 0; c < it->ncols && ok; c++)
		{
			int slot = -1 - it->attnum[c];

			if (it->attnum[c] >= 0)
				continue;
			if (slot >= nexprs || map[slot] < 0)
			{
				if (!add)
					return false;
				ok = false;
			}
			else
				it->attnum[c] = (int16) (-1 - map[slot]);
		}
		if (ok)
			(*nout)++;
	}
	return true;
}

/* Add items to entry.  Caller holds the entry's spinlock. */
static void
add_items(EvEntry *entry, const ApsEvItem *items, int nitems, double waste)
{
	for (int i = 0; i < nitems; i++)
	{
		ApsEvItem *it = NULL;

		for (int j = 0; j < entry->nitems; j++)
		{
			if (items_match(&entry->items[j], &items[i]))
			{
				it = &entry->items[j];
				break;
			}
		}
		if (it == NULL)
		{
			if (entry->nitems >= APS_EV_MAX_ITEMS)
				continue; /* documented limit: the first 8 shapes */
			it = &entry->items[entry->nitems++];
			*it = items[i];
			continue;
		}
		it->runs += items[i].runs;
		it->scans += items[i].scans;
		it->rows_read += items[i].rows_read;
		it->rows_filtered += items[i].rows_filtered;
		it->lossy_pages += items[i].lossy_pages;
		it->exact_pages += items[i].exact_pages;
		merge_consts(it, &items[i]);
	}
	entry->waste += waste;
}

static int
cmp_waste(const void *a, const void *b)
{
	double wa = (*(EvEntry *const *) a)->waste;
	double wb = (*(EvEntry *const *) b)->waste;

	return (wa > wb) - (wa < wb);
}

/* Evict the least wasteful batch.  Caller holds the lock exclusively. */
static void
evict_batch(void)
{
	HASH_SEQ_STATUS scan;
	EvEntry		  **all;
	EvEntry		   *entry;
	long			n = hash_get_num_entries(ev_entries);
	long			i = 0;
	long			nvict;

	all = palloc(n * sizeof(EvEntry *));
	hash_seq_init(&scan, ev_entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		entry->waste *= EV_WASTE_DECAY;
		all[i++] = entry;
	}
	qsort(all, n, sizeof(EvEntry *), cmp_waste);
	/* 5%, at least 10, but never more than half of a small table. */
	nvict = Max(EV_EVICT_MIN,
				(long) aps_max_advice_queries * EV_EVICT_PERCENT / 100);
	nvict = Max(1, Min(nvict, n / 2));
	for (i = 0; i < nvict; i++)
		hash_search(ev_entries, &all[i]->key, HASH_REMOVE, NULL);
	pfree(all);
	pg_atomic_fetch_add_u32(&ev_shared->generation, 1);
}

static void
write_sample(EvEntry *entry, const ApsSample *sample, double waste)
{
	entry->sample = *sample;
	entry->sample.text = NULL;
	if (sample->text != NULL && sample->text_len >= 0 &&
		sample->text_len < aps_max_query_length)
	{
		memcpy(entry->text, sample->text, sample->text_len);
		entry->text[sample->text_len] = '\0';
	}
	else
		entry->sample.text_len = -1;
	entry->sample_waste = waste;
}

/*
 * Would a run that threw away waste rows become entry's representative?
 * Caller holds the entry's spinlock (or the lock exclusively).
 */
static bool
wants_sample(EvEntry *entry, double waste, bool params_known)
{
	return entry->sample.userid == InvalidOid ||
		   (waste >= 2.0 * entry->sample_waste + 1.0 &&
			/* a run with readable values is not replaced by one without
			 * (PL/pgSQL variables): it could not re-plan */
			(params_known || entry->sample.nparams < 0));
}

/*
 * Add one sampled run's evidence to (dbid, queryid).  A known statement
 * whose expressions the entry has takes the lock in shared mode only.
 * Without a sample, returns APS_EV_WANTS_SAMPLE when this run would become
 * the representative one (or create the entry), and APS_EV_WANTS_TEXTS
 * when an expression is new to the entry and its text was not made: the
 * caller makes what is wanted (outside any lock) and calls again.  Items
 * whose expressions find no room are left out.
 */
ApsEvRecorded
aps_evidence_record(Oid userid, Oid dbid, uint64 queryid,
					const ApsEvItem *items, int nitems,
					const ApsEvExprs *exprs, double waste, bool params_known,
					const ApsSample *sample)
{
	EvKey	  key;
	EvEntry	 *entry;
	bool	  found;
	ApsEvItem mapped[APS_EV_MAX_ITEMS];
	int		  nmapped;

	if (ev_entries == NULL || nitems <= 0)
		return APS_EV_RECORDED;
	nitems = Min(nitems, APS_EV_MAX_ITEMS);
	make_key(&key, userid, dbid, queryid);

	if (sample == NULL)
	{
		ApsEvRecorded result = APS_EV_RECORDED;

		LWLockAcquire(ev_shared->lock, LW_SHARED);
		entry = hash_search(ev_entries, &key, HASH_FIND, NULL);
		if (entry == NULL)
			result = APS_EV_WANTS_SAMPLE;
		else if (!map_items(entry, items, nitems, exprs, false, mapped,
							&nmapped))
			result = APS_EV_WANTS_TEXTS;
		else
		{
			SpinLockAcquire(&entry->mutex);
			if (wants_sample(entry, waste, params_known))
				result = APS_EV_WANTS_SAMPLE;
			else
				add_items(entry, mapped, nmapped, waste);
			SpinLockRelease(&entry->mutex);
		}
		LWLockRelease(ev_shared->lock);
		if (result != APS_EV_WANTS_TEXTS)
			return result;
	}

	/* The exclusive path writes expressions: every text must be there. */
	for (int e = 0; exprs != NULL && e < exprs->n; e++)
		if (exprs->text[e] == NULL)
			return APS_EV_WANTS_TEXTS;

	LWLockAcquire(ev_shared->lock, LW_EXCLUSIVE);
	entry = hash_search(ev_entries, &key, HASH_FIND, NULL);
	if (entry == NULL)
	{
		if (hash_get_num_entries(ev_entries) >= aps_max_advice_queries)
			evict_batch();
		entry = hash_search(ev_entries, &key, HASH_ENTER_NULL, &found);
		if (entry == NULL)
		{
			LWLockRelease(ev_shared->lock);
			return APS_EV_RECORDED;
		}
		SpinLockInit(&entry->mutex);
		entry->nitems = 0;
		entry->waste = 0.0;
		entry->sample_waste = 0.0;
		memset(&entry->sample, 0, sizeof(entry->sample));
		entry->sample.text_len = -1;
		entry->sample.nparams = -1;
		entry->nexprs = 0;
		entry->expr_used = 0;
		entry->text[0] = '\0';
	}
	/* Exclusive lock: nobody else touches the entry. */
	if (sample == NULL && wants_sample(entry, waste, params_known))
	{
		/* Became wanted meanwhile (a reset): nothing yet. */
		LWLockRelease(ev_shared->lock);
		return APS_EV_WANTS_SAMPLE;
	}
	map_items(entry, items, nitems, exprs, true, mapped, &nmapped);
	add_items(entry, mapped, nmapped, waste);
	if (sample != NULL)
		write_sample(entry, sample, waste);
	LWLockRelease(ev_shared->lock);
	return APS_EV_RECORDED;
}

/*
 * Copies of the entries of database dbid, as a List of palloc'd
 * ApsEvSnapshot.
 */
List *
aps_evidence_snapshot(Oid dbid)
{
	HASH_SEQ_STATUS scan;
	EvEntry		   *entry;
	List		   *result = NIL;
	char		   *buf = palloc(aps_max_query_length);

	LWLockAcquire(ev_shared->lock, LW_SHARED);
	hash_seq_init(&scan, ev_entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		ApsEvSnapshot *snap;
		int			   len;

		if (entry->key.dbid != dbid)
			continue;
		snap = palloc(sizeof(ApsEvSnapshot));
		SpinLockAcquire(&entry->mutex);
		snap->dbid = entry->key.dbid;
		snap->userid = entry->key.userid;
		snap->queryid = entry->key.queryid;
		snap->nitems = entry->nitems;
		memcpy(snap->items, entry->items, sizeof(entry->items));
		snap->sample = entry->sample;
		SpinLockRelease(&entry->mutex);

		/* Text and expressions only change under the exclusive lock. */
		snap->nexprs = entry->nexprs;
		for (int i = 0; i < entry->nexprs; i++)
			snap->exprs[i] = pstrdup(entry->exprs + entry->expr_off[i]);
		len = snap->sample.text_len;
		if (len >= 0)
		{
			memcpy(buf, entry->text, len);
			snap->sample.text = pnstrdup(buf, len);
		}
		else
			snap->sample.text = NULL;
		result = lappend(result, snap);
	}
	LWLockRelease(ev_shared->lock);
	pfree(buf);
	return result;
}

/* Forget all evidence. */
void
aps_evidence_reset(void)
{
	HASH_SEQ_STATUS scan;
	EvEntry		   *entry;

	if (ev_entries == NULL)
		return;
	LWLockAcquire(ev_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&scan, ev_entries);
	while ((entry = hash_seq_search(&scan)) != NULL)
		hash_search(ev_entries, &entry->key, HASH_REMOVE, NULL);
	pg_atomic_fetch_add_u32(&ev_shared->generation, 1);
	LWLockRelease(ev_shared->lock);
}

/*
 * Changes whenever evidence is evicted or reset: what a backend remembers
 * having recorded may be gone.
 */
uint32
aps_evidence_generation(void)
{
	return ev_shared != NULL ? pg_atomic_read_u32(&ev_shared->generation) : 0;
}
