/*
 * stats.h
 *		Counters the pooler keeps per pool for /metrics: cumulative
 *		histograms with fixed bucket edges, errors by SQLSTATE class.
 */
#ifndef APS_STATS_H
#define APS_STATS_H

#include <stdint.h>

/*
 * Bucket edges in seconds, chosen to resolve the scaling guide's
 * thresholds (1 ms ... 100 ms, 500 ms, 30 s); the last bucket is +Inf.
 */
#define HIST_EDGES 16
extern const double hist_edges[HIST_EDGES];

typedef struct Histogram
{
	uint64_t
		   count[HIST_EDGES + 1]; /* per bucket, not cumulative; last: +Inf */
	double sum;					  /* seconds */
} Histogram;

/* Errors sent to clients, by the first two characters of the SQLSTATE. */
#define ERROR_CLASSES 24

typedef struct ErrorClasses
{
	char	 cls[ERROR_CLASSES][3]; /* "08", "57", ...; "" = free slot */
	uint64_t n[ERROR_CLASSES];		/* the last slot: every other class */
} ErrorClasses;

extern void stats_observe(Histogram *h, double seconds);
extern void stats_count_error(ErrorClasses *e, const char *sqlstate);

#endif /* APS_STATS_H */
