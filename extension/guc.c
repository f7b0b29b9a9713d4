/*-------------------------------------------------------------------------
 *
 * guc.c
 *		Definition of apiscale's configuration parameters.
 *
 * All parameters live under the reserved prefix "apiscale.".  Those that
 * size shared memory can only be set at server start; the rest can be
 * changed by a superuser at any time, per session if need be (tests rely on
 * that).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <limits.h>

#include "utils/guc.h"

#include "guc.h"

bool   aps_enabled = true;
int	   aps_max_queries = 5000;
int	   aps_max_query_length = 2048;
int	   aps_max_plans = 200;
int	   aps_slow_query_ms = 500;
bool   aps_capture_plans = true;
bool   aps_plan_timing = false;
int	   aps_track = APS_TRACK_TOP;
double aps_sample_rate = 1.0;
bool   aps_index_advisor = true;
int	   aps_min_table_rows = 1000;
double aps_min_improvement_pct = 30.0;
bool   aps_capture_parameters = true;
int	   aps_max_advice_queries = 1000;
int	   aps_unbounded_rows = 1000;
int	   aps_n_plus_one_calls = 10;
int	   aps_signal_window = 300;
double aps_warn_p95_ms = 500;
double aps_warn_error_rate_pct = 1;
double aps_warn_connection_pct = 80;
double aps_warn_pool_pct = 80;
double aps_warn_cache_hit_pct = 99;
double aps_warn_cpu_pct = 70;
double aps_warn_memory_pct = 85;
int	   aps_metrics_top_queries = 20;
int	   aps_max_cache_queries = 200;
double aps_cache_sample_rate = 0.01;
double aps_cache_staleness_pct = 5;

static const struct config_enum_entry track_options[] = {
	{"top", APS_TRACK_TOP, false},
	{"all", APS_TRACK_ALL, false},
	{NULL, 0, false}};

static void
define_threshold(const char *name, const char *desc, double *var, double def,
				 double max)
{
	DefineCustomRealVariable(name, desc, NULL, var, def, 0.0, max, PGC_SUSET,
							 0, NULL, NULL, NULL);
}

/*
 * Define every apiscale.* parameter.  Called once from _PG_init while
 * shared_preload_libraries is being processed.
 */
void
aps_define_gucs(void)
{
	DefineCustomBoolVariable(
		"apiscale.enabled",
		"Enables the collection of statement statistics by apiscale.",
		"When off, the executor hooks pass every statement through untouched.",
		&aps_enabled, true, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable(
		"apiscale.max_queries",
		"Sets the maximum number of distinct statements tracked by apiscale.",
		"When the table is full, the least-used entries are evicted in batches.",
		&aps_max_queries, 5000, 100, 1000000, PGC_POSTMASTER, 0, NULL, NULL,
		NULL);

	DefineCustomIntVariable(
		"apiscale.max_query_length",
		"Sets the number of bytes of normalized query text kept per statement.",
		"Longer texts are truncated on a character boundary.",
		&aps_max_query_length, 2048, 64, 1048576, PGC_POSTMASTER,
		GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomIntVariable(
		"apiscale.max_plans",
		"Sets the number of slow-run plans kept in shared memory.",
		"When all slots are taken, the oldest captured plan is replaced.",
		&aps_max_plans, 200, 0, 100000, PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable(
		"apiscale.slow_query_ms",
		"Sets the execution time above which a run counts as slow and its plan is kept.",
		"-1 disables slow-run capture; 0 treats every run as slow.",
		&aps_slow_query_ms, 500, -1, INT_MAX, PGC_SUSET, GUC_UNIT_MS, NULL,
		NULL, NULL);

	DefineCustomBoolVariable(
		"apiscale.capture_plans",
		"Keeps the EXPLAIN ANALYZE text of the latest slow run of each statement.",
		"Needs per-node row counting on sampled executions (no clock reads).",
		&aps_capture_plans, true, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable(
		"apiscale.plan_timing", "Adds per-node timing to captured plans.",
		"Per-node timers read the clock twice per row and node: expensive on some platforms.",
		&aps_plan_timing, false, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomEnumVariable(
		"apiscale.track", "Selects which statements apiscale tracks.",
		"\"top\" tracks statements sent by clients; \"all\" also tracks statements run inside functions and procedures.",
		&aps_track, APS_TRACK_TOP, track_options, PGC_SUSET, 0, NULL, NULL,
		NULL);

	DefineCustomRealVariable(
		"apiscale.sample_rate",
		"Sets the share of executions instrumented per plan node.",
		"Unsampled executions are still counted and timed; a slow one keeps an estimated plan without actual row counts.",
		&aps_sample_rate, 1.0, 0.0, 1.0, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable(
		"apiscale.index_advisor",
		"Collects evidence for missing indexes on sampled executions.",
		"Sampled runs whose plan has a sequential scan of a table of at least apiscale.min_table_rows rows count rows per node (no clock reads); the finished plan is walked for filters, join keys and sort keys.",
		&aps_index_advisor, true, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable(
		"apiscale.min_table_rows",
		"Sets the table size in rows below which no index is advised.", NULL,
		&aps_min_table_rows, 1000, 0, INT_MAX, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomRealVariable(
		"apiscale.min_improvement_pct",
		"Sets the planner's estimated improvement, in percent, an index must bring to be advised.",
		"Measured by re-planning the statement with the index as a hypothetical one.",
		&aps_min_improvement_pct, 30.0, 0.0, 100.0, PGC_SUSET, 0, NULL, NULL,
		NULL);

	DefineCustomBoolVariable(
		"apiscale.capture_parameters",
		"Keeps the text and parameter values of one execution per statement for re-planning.",
		"When off, index advice re-plans the normalized text with generic parameters.",
		&aps_capture_parameters, true, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable(
		"apiscale.max_advice_queries",
		"Sets the number of statements whose index evidence is kept.",
		"When the table is full, the statements with the least wasted work are evicted in batches.",
		&aps_max_advice_queries, 1000, 10, 1000000, PGC_POSTMASTER, 0, NULL,
		NULL, NULL);

	DefineCustomIntVariable(
		"apiscale.unbounded_rows",
		"Sets the row count above which a result without LIMIT, or rows skipped by OFFSET, are reported.",
		NULL, &aps_unbounded_rows, 1000, 1, INT_MAX, PGC_SUSET, 0, NULL, NULL,
		NULL);

	DefineCustomIntVariable(
		"apiscale.n_plus_one_calls",
		"Sets how many runs of one statement in one transaction, each returning at most one row, are reported as an N+1 loop.",
		"0 turns the check off.", &aps_n_plus_one_calls, 10, 0, INT_MAX,
		PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable(
		"apiscale.signal_window",
		"Sets the recent window the scaling signals describe.",
		"Kept in 10-second buckets, at most one hour.", &aps_signal_window,
		300, 10, 3600, PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	define_threshold("apiscale.warn_p95_ms",
					 "p95 response time (ms) above which the signal warns.",
					 &aps_warn_p95_ms, 500, 1e9);
	define_threshold(
		"apiscale.warn_error_rate_pct",
		"Share of failed statements (%) above which the signal warns.",
		&aps_warn_error_rate_pct, 1, 100);
	define_threshold(
		"apiscale.warn_connection_pct",
		"Client backends / max_connections (%) above which the signal warns.",
		&aps_warn_connection_pct, 80, 100);
	define_threshold(
		"apiscale.warn_pool_pct",
		"Reported pool utilization (%) above which the signal warns.",
		&aps_warn_pool_pct, 80, 100);
	define_threshold(
		"apiscale.warn_cache_hit_pct",
		"Shared-buffer hit rate (%) below which the signal warns.",
		&aps_warn_cache_hit_pct, 99, 100);
	define_threshold(
		"apiscale.warn_cpu_pct",
		"Mean CPU use of the machine (%) above which the signal warns.",
		&aps_warn_cpu_pct, 70, 100);
	define_threshold(
		"apiscale.warn_memory_pct",
		"Memory use of the machine (%) above which the signal warns.",
		&aps_warn_memory_pct, 85, 100);

	DefineCustomIntVariable(
		"apiscale.metrics_top_queries",
		"Sets how many statements apiscale.metrics() shows series for.",
		"The statements of the current database with the most execution time; 0 shows none.",
		&aps_metrics_top_queries, 20, 0, 1000, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable(
		"apiscale.max_cache_queries",
		"Sets the number of read statements whose caching evidence is kept.",
		"When all are taken, a busier statement takes the place of the one with the fewest runs in the last two minutes; 0 keeps none.",
		&aps_max_cache_queries, 200, 0, 100000, PGC_POSTMASTER, 0, NULL, NULL,
		NULL);

	DefineCustomRealVariable(
		"apiscale.cache_sample_rate",
		"Sets the share of runs of read statements whose result rows are hashed.",
		"A hashed result is compared with the last one of the same parameters, to measure how often answers change; other runs hash nothing per row.",
		&aps_cache_sample_rate, 0.01, 0.0, 1.0, PGC_SUSET, 0, NULL, NULL,
		NULL);

	DefineCustomRealVariable(
		"apiscale.cache_staleness_pct",
		"Sets the share of cached answers, in percent, that may be stale at the advised TTL.",
		"The cache advice shortens a TTL under which more answers would be served after their rows changed.",
		&aps_cache_staleness_pct, 5, 0.0, 100.0, PGC_SUSET, 0, NULL, NULL,
		NULL);

	MarkGUCPrefixReserved("apiscale");
}
