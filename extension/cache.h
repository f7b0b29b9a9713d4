/*-------------------------------------------------------------------------
 *
 * cache.h
 *		Caching evidence: how often each read statement repeats its
 *		parameters, how often its answer changes, and what it costs.
 *
 * See cache.c for what is recorded and the locking rules, cache_advice.c
 * for what is made of it when apiscale.cache_advice is read.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_CACHE_H
#define APS_CACHE_H

#include "executor/execdesc.h"
#include "tcop/dest.h"

#include "compat.h"
#include "epoch.h"
#include "store.h"

/*
 * The TTLs the advice chooses from, in seconds; they are also the edges of
 * the buckets that keep the time between two runs with the same
 * parameters, so that the hit rate at each of them is exact.
 */
#define APS_CACHE_NTTLS	 17
#define APS_CACHE_NREUSE (APS_CACHE_NTTLS + 1) /* the last: a day or more */
extern const int aps_cache_ttls[APS_CACHE_NTTLS];

/*
 * Parameter sets tracked per statement, in a table of twice as many
 * buckets (a power of two: a set's bucket is the low bits of its hash).
 */
#define APS_CACHE_KEYS		  128
#define APS_CACHE_KEY_BUCKETS 256

/* Tables of a statement whose writes are weighed. */
#define APS_CACHE_MAX_TABLES 16

/* Why a statement's results cannot be cached (ApsCacheProps.flags). */
#define APS_CACHE_LOCKS	   0x01 /* FOR UPDATE / SHARE */
#define APS_CACHE_VOLATILE 0x02 /* a function whose result changes */
#define APS_CACHE_TEMP	   0x04 /* reads a temporary table */
#define APS_CACHE_RLS	   0x08 /* row-level security applies */
#define APS_CACHE_FOREIGN  0x10 /* reads a foreign table (writes unseen) */

/* What does not change from run to run, found when the slot is taken. */
typedef struct ApsCacheProps
{
	uint32 flags;	 /* APS_CACHE_* */
	Oid	   func;	 /* the function behind APS_CACHE_VOLATILE */
	int	   svf_op;	 /* or its SQLValueFunctionOp (CURRENT_DATE...), -1 */
	bool   nextval;	 /* or a sequence's next value (identity, serial) */
	bool   sampling; /* or TABLESAMPLE without REPEATABLE */
	Oid	   rel;		 /* the table behind TEMP, RLS or FOREIGN */
	int	   ntables;
	bool   more_tables; /* it reads more: theirs are not weighed */
	Oid	   tables[APS_CACHE_MAX_TABLES];
	bool   partition[APS_CACHE_MAX_TABLES]; /* counted, not shown */
} ApsCacheProps;

/*
 * One minute of a statement's runs.  What comes from the tracked parameter
 * sets (keyed and after) is scaled down when the sample is (cache.c), so
 * it is counted in floats.
 */
typedef struct ApsCacheMinute
{
	int64  epoch;		 /* the minute held; 0: none */
	uint32 calls;		 /* runs finished */
	uint32 in_write_txn; /* of which in a transaction that had written */
	double time_ms;		 /* their execution time */
	float  keyed;		 /* runs whose parameter set is tracked */
	float  first;		 /* of which the first of their set */
	float  reuse_n[APS_CACHE_NREUSE]; /* the others, by time since the
									   * previous run of their set */
	double reuse_s[APS_CACHE_NREUSE]; /* those times summed, in seconds */
	float  hashed;					  /* runs whose result was hashed */
	float  compared;   /* of which after an earlier hash of their set */
	float  changed;	   /* of which with another result */
	double exposure_s; /* time since those earlier hashes, summed */
} ApsCacheMinute;

/* One tracked parameter set; hash 0 marks a free bucket. */
typedef struct ApsCacheKey
{
	uint64		hash;	   /* of the statement's text and parameters */
	TimestampTz last_seen; /* its latest run */
	TimestampTz hashed_at; /* its latest hashed result; 0: none yet */
	uint64		result;	   /* that hash */
	uint32		runs;	   /* since it was tracked (saturates) */
} ApsCacheKey;

/* A statement's evidence, as kept and as copied out for readers. */
typedef struct ApsCacheData
{
	ApsKey		   owner;
	TimestampTz	   since;		/* when the statement got its slot */
	int64		   runs_before; /* its runs before that (apiscale.queries) */
	bool		   props_ready; /* props were filled in */
	ApsCacheProps  props;
	uint64		   threshold; /* sets hashing above are not tracked */
	int			   nkeys;
	ApsCacheKey	   keys[APS_CACHE_KEY_BUCKETS];
	ApsCacheMinute minutes[APS_EPOCHS];
} ApsCacheData;

/* What one finished run of a read statement adds. */
typedef struct ApsCacheRun
{
	TimestampTz at;			 /* when it ran */
	double		duration_ms; /* its execution time */
	bool		write_txn;	 /* its transaction had written */
	bool		hashed;		 /* result is its result's hash */
	uint64		result;
} ApsCacheRun;

/* The wrapping receiver that hashes a sampled run's result rows. */
typedef struct ApsCacheDest ApsCacheDest;

typedef void (*ApsCacheCallback)(const ApsCacheData *data, void *arg);

#include "guc.h"

extern int64  aps_cache_countdown;
extern double aps_cache_rate_drawn;
extern bool	  aps_cache_sample_draw(void);

/*
 * Should this run of a read statement with a slot hash its result?  A
 * decrement and a comparison until the countdown runs out (cache.c).
 */
static inline bool
aps_cache_sample_run(void)
{
	if (--aps_cache_countdown > 0 &&
		aps_cache_sample_rate == aps_cache_rate_drawn)
		return false;
	return aps_cache_sample_draw();
}

extern void aps_cache_request(void);
extern void aps_cache_startup(void);

/* executor side */
static inline bool
aps_cache_is_read(const PlannedStmt *pstmt)
{
	return pstmt->commandType == CMD_SELECT && !pstmt->hasModifyingCTE &&
		   pstmt->utilityStmt == NULL;
}
extern void			 aps_cache_note_parse(const char *source, int location,
										  uint64 queryid, const JumbleState *jstate);
extern ApsCacheDest *aps_cache_dest_create(void);
extern bool aps_cache_dest_begin(ApsCacheDest *d, QueryDesc *qd, uint64 count);
extern void aps_cache_dest_end(ApsCacheDest *d, QueryDesc *qd, uint64 count);
extern bool aps_cache_dest_result(ApsCacheDest *d, uint64 *hash);
extern int	aps_cache_record(QueryDesc *qd, const ApsKey *key, int slot_hint,
							 int64 calls, const ApsCacheRun *run,
							 const char *source, int location, int len);

/* reading */
extern void		   aps_cache_foreach(Oid dbid, ApsCacheCallback cb, void *arg);
extern TimestampTz aps_cache_since(void);
extern void		   aps_cache_reset(void);

#endif /* APS_CACHE_H */
