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

static const struct config_enum_entry track_options[] = {
	{"top", APS_TRACK_TOP, false},
	{"all", APS_TRACK_ALL, false},
	{NULL, 0, false}};

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

	MarkGUCPrefixReserved("apiscale");
}
