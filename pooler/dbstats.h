/*
 * dbstats.h
 *		Per-database totals and averages, as PgBouncer's SHOW STATS,
 *		STATS_TOTALS and STATS_AVERAGES give them.
 */
#ifndef APS_DBSTATS_H
#define APS_DBSTATS_H

#include <stdint.h>

/* What the pools of one database did, added up. */
typedef struct DbCounters
{
	uint64_t xact_count;  /* transactions */
	uint64_t query_count; /* Query messages */
	uint64_t bytes_in;	  /* received from clients */
	uint64_t bytes_out;	  /* sent to clients */
	double	 xact_time;	  /* seconds servers were attached to clients */
	double	 wait_time;	  /* seconds clients waited for a server */
	uint64_t timeouts;	  /* 53300 sent for pool_timeout */
	uint64_t recycled;	  /* servers closed for pool_recycle */
} DbCounters;

/* One database's row: totals since start, and rates over the last period. */
typedef struct DbStats
{
	char	  *name;
	DbCounters total;
	/* over the last stats_period (0 until one has passed) */
	double avg_xact_count;	/* transactions per second */
	double avg_query_count; /* queries per second */
	double avg_recv;		/* bytes per second */
	double avg_sent;		/* bytes per second */
	double avg_xact_time;	/* microseconds per transaction */
	double avg_query_time;	/* microseconds per query */
	double avg_wait_time;	/* microseconds waited per transaction */
} DbStats;

extern void dbstats_start(void);
extern void dbstats_stop(void);
/* Every database's row, in [databases] order, then any other: free with
 * dbstats_free. */
extern int	dbstats_collect(DbStats **out);
extern void dbstats_free(DbStats *rows, int n);

#endif /* APS_DBSTATS_H */
