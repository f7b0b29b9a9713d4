/*-------------------------------------------------------------------------
 *
 * store.h
 *		apiscale's shared-memory statement table.
 *
 * See store.c for the locking rules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APS_STORE_H
#define APS_STORE_H

#include "datatype/timestamp.h"
#include "storage/spin.h"

#include "histogram.h"
#include "normalize.h"

/* Hash key: one entry per (user, database, query id). */
typedef struct ApsKey
{
	Oid	   userid;	/* user that ran the statement */
	Oid	   dbid;	/* database it ran in */
	uint64 queryid; /* core query id */
} ApsKey;

/* Counters of one entry; copied out whole under the entry's spinlock. */
typedef struct ApsCounters
{
	int64		calls;			  /* completed executions */
	double		total_ms;		  /* sum of execution times */
	double		min_ms;			  /* fastest completed execution */
	double		max_ms;			  /* slowest completed execution */
	double		mean_ms;		  /* running mean (Welford) */
	double		sum_var_ms;		  /* running sum of squared deviations */
	int64		rows;			  /* rows returned or affected */
	int64		shared_blks_hit;  /* shared buffer hits */
	int64		shared_blks_read; /* shared blocks read */
	int64		slow_calls;		  /* executions over apiscale.slow_query_ms */
	int64		errors;		  /* executions that failed or were cancelled */
	double		last_slow_ms; /* duration of the latest slow execution */
	TimestampTz last_slow_at; /* when it ended; 0 if never */
	TimestampTz first_seen;	  /* when the entry was created */
	TimestampTz last_seen;	  /* start of the latest execution */
	double		usage;		  /* eviction weight: calls, decayed */
	/* anti-patterns (antipattern.c) */
	bool  select_star;		  /* * in a target list of its text */
	int64 unbounded_calls;	  /* runs over unbounded_rows, no LIMIT */
	int64 unbounded_rows_sum; /* rows of those runs */
	int64 unbounded_rows_max; /* most rows of one such run */
	int64 offset_calls;		  /* runs whose OFFSET skipped too many */
	int64 offset_max;		  /* most rows one OFFSET skipped */
	int64 nplus1_txns;		  /* transactions with an N+1 loop of it */
	int64 nplus1_max;		  /* most runs in one such transaction */
} ApsCounters;

/* What one finished execution adds to its entry. */
typedef struct ApsExecution
{
	double		duration_ms;	  /* ExecutorRun + ExecutorFinish time */
	int64		rows;			  /* es_processed */
	int64		shared_blks_hit;  /* shared buffer hits */
	int64		shared_blks_read; /* shared blocks read */
	bool		slow;			  /* over apiscale.slow_query_ms */
	TimestampTz started;		  /* statement start */
	TimestampTz ended;			  /* end of the run; only set when slow */
	bool		unbounded;		  /* a SELECT with no LIMIT on top */
	int64		offset_skipped;	  /* rows its top OFFSET skipped */
	int			nplus1_runs; /* runs of it this transaction, <= 1 row each */
	int			hist_bucket; /* aps_hist_bucket(duration_ms) */
} ApsExecution;

/* What recording an execution tells the caller. */
typedef struct ApsRecorded
{
	double max_ms;	   /* the entry's slowest run, NaN: no entry */
	int64  calls;	   /* its completed executions */
	int	   cache_slot; /* its caching evidence's slot (a hint), or -1 */
} ApsRecorded;

/* One entry as handed to readers (a consistent copy). */
typedef struct ApsEntrySnapshot
{
	ApsKey		 key;
	ApsCounters	 c;
	ApsHistogram hist;
	int			 encoding; /* encoding of query and plan */
	char		*query;	   /* palloc'd, NUL-terminated */
	char		*plan;	   /* palloc'd, or NULL if none kept */
} ApsEntrySnapshot;

typedef void (*ApsSnapshotCallback)(const ApsEntrySnapshot *snap, void *arg);

extern void aps_store_request(void);
extern void aps_store_startup(void);
extern bool aps_store_attached;

/* Is the shared state there (were we preloaded)?  A test: hot path. */
static inline bool
aps_store_ready(void)
{
	return aps_store_attached;
}

extern void aps_store_check_ready(void);

extern bool	 aps_store_known(const ApsKey *key, bool *fast, bool *cached);
extern void	 aps_store_set_fast(const ApsKey *key, bool fast, bool cached);
extern void	 aps_store_ensure(const ApsKey *key, const ApsTextSource *src);
extern void	 aps_store_record(const ApsKey *key, const ApsExecution *exec,
							  const ApsTextSource *src, ApsRecorded *out);
extern void	 aps_store_set_cache_slot(const ApsKey *key, int slot);
extern void	 aps_store_record_error(const ApsKey *key);
extern void	 aps_store_save_plan(const ApsKey *key, const char *plan, int len);
extern void	 aps_store_foreach(bool with_plans, ApsSnapshotCallback cb,
							   void *arg);
extern void	 aps_store_reset(void);
extern char *aps_store_get_query(const ApsKey *key);
extern void	 aps_store_info(int64 *entries, int64 *evicted,
							TimestampTz *reset_at);

#endif /* APS_STORE_H */
