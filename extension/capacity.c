/*-------------------------------------------------------------------------
 *
 * capacity.c
 *		apiscale.capacity: the guide's stage 1 (scale up) from
 *		measurements.
 *
 * One row, over the last apiscale.signal_window, from what the signals
 * already keep (signals.c) and the machine (machine.c):
 *
 *	cores, memory_gb		the machine's CPUs and memory (/proc), read now
 *	cpu_busy_pct			busy CPU ticks over all CPU ticks of the worker's
 *							samples in the window (every 10 s)
 *	memory_used_pct			the samples' mean used share (MemAvailable)
 *	statements_per_s		the clients' statements that finished or failed
 *							in the window, per second of it
 *	cpu_ms_per_statement	busy CPU time of the machine over the statements
 *							that started in the same seconds: each sample
 *							is kept with the 10 s it measured, so both count
 *							the same seconds
 *	capacity_statements_per_s  statements per second at apiscale.warn_cpu_pct
 *							(70%) of all CPUs, if each one keeps costing
 *							cpu_ms_per_statement
 *	headroom_pct			how much more traffic that is than today's
 *	peak_backends			the most client backends of the samples, against
 *							max_connections
 *	server_size, suggestion	the guide's server sizes: the machine's row, the
 *							next one up, and what to do
 *
 * The CPU is the machine's: anything else running on it (the application,
 * another database, a benchmark client) counts as the statements' cost, so
 * the capacity is a lower bound where the database shares its machine.
 * Nothing here is on the statement path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"

#include "guc.h"
#include "machine.h"
#include "signals.h"
#include "store.h"

PG_FUNCTION_INFO_V1(apiscale_capacity);

#define CAPACITY_COLS 13

/* The guide's server sizes (stage 1), smallest first. */
typedef struct ServerSize
{
	int			cores;		/* vCPUs */
	int			memory_gb;	/* GB of memory */
	const char *name;		/* as the guide writes it */
	const char *concurrent; /* its typical capacity */
} ServerSize;

static const ServerSize sizes[] = {
	{2, 4, "2 vCPU / 4 GB", "about 200 concurrent requests"},
	{4, 8, "4 vCPU / 8 GB", "about 1,000 concurrent requests"},
	{8, 32, "8 vCPU / 32 GB", "about 5,000 concurrent requests"},
	{16, 64, "16+ vCPU / 64+ GB", "about 10,000 concurrent requests or more"},
};

/*
 * The guide's row of a machine of cores CPUs: the largest it reaches, -1
 * below the smallest.
 */
static int
size_of(int cores)
{
	int row = -1;

	for (int i = 0; i < lengthof(sizes); i++)
		if (cores >= sizes[i].cores)
			row = i;
	return row;
}

/* A rate for a sentence: "120", "3.5", "0.25". */
static char *
rate_words(double v)
{
	if (v >= 100)
		return psprintf("%.0f", v);
	if (v >= 10)
		return psprintf("%.1f", v);
	return psprintf("%.2f", v);
}

/* Datum of a double rounded to digits decimals; NULL when unknown. */
static Datum
rounded(double v, int digits, bool known, bool *isnull)
{
	double scale = pow(10, digits);

	*isnull = !known || isnan(v) || isinf(v);
	return Float8GetDatum(*isnull ? 0 : round(v * scale) / scale);
}

/*
 * apiscale.capacity_internal(): one row.
 */
Datum
apiscale_capacity(PG_FUNCTION_ARGS)
{
	TupleDesc		  tupdesc;
	Datum			  values[CAPACITY_COLS];
	bool			  nulls[CAPACITY_COLS];
	ApsCapacityWindow cw;
	int				  cores = aps_machine_cpus();
	int64			  mem_total_kb = 0, mem_avail_kb = 0;
	bool   has_mem = aps_machine_memory(&mem_total_kb, &mem_avail_kb);
	bool   has_cpu, has_cost, has_rate;
	double busy_pct = 0, cpu_ms = 0, rate = 0, capacity = 0;
	double limit = aps_warn_cpu_pct;
	int	   row = size_of(cores);
	bool   largest = row == lengthof(sizes) - 1;
	const ServerSize *next = &sizes[largest ? row : row + 1];
	char			 *size_name = row >= 0 ? pstrdup(sizes[row].name)
										   : psprintf("smaller than %s", sizes[0].name);
	StringInfoData	  s;
	int				  i = 0;

	aps_store_check_ready();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (tupdesc->natts != CAPACITY_COLS)
		ereport(
			ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg(
				 "apiscale.capacity_internal returns %d columns, the function definition expects %d",
				 CAPACITY_COLS, tupdesc->natts),
			 errhint("Run ALTER EXTENSION apiscale UPDATE.")));

	aps_signals_capacity(&cw);
	has_cpu = cw.cpu_total_ticks > 0;
	if (has_cpu)
		busy_pct = 100.0 * cw.cpu_busy_ticks / cw.cpu_total_ticks;
	has_rate = cw.covered_s >= 1.0;
	if (has_rate)
		rate = cw.statements / cw.covered_s;
	has_cost = has_cpu && cw.cpu_statements > 0 && cores > 0;
	if (has_cost)
	{
		cpu_ms = cw.cpu_busy_ticks / aps_machine_ticks_per_second() * 1000.0 /
				 cw.cpu_statements;
		capacity = cpu_ms > 0 ? limit / 100.0 * cores * 1000.0 / cpu_ms : 0;
	}

	/* The suggestion, in the guide's terms. */
	initStringInfo(&s);
	if (!has_cpu)
		appendStringInfoString(
			&s, "No CPU figure yet: the apiscale signals worker samples the "
				"machine every 10 s (Linux /proc).");
	else if (busy_pct > limit && largest)
		appendStringInfo(&s,
						 "CPU is %.0f%% busy, over %g%%, on the guide's "
						 "largest size (%s): cache what apiscale.cache_advice "
						 "ranks first (stage 2) and scale out (stage 4).",
						 busy_pct, limit, size_name);
	else if (busy_pct > limit)
		appendStringInfo(&s,
						 "CPU is %.0f%% busy, over %g%%: scale up now to %s "
						 "(%s), or cache what apiscale.cache_advice ranks "
						 "first (stage 2).",
						 busy_pct, limit, next->name, next->concurrent);
	else if (!has_cost || cw.statements == 0 || capacity <= 0)
		appendStringInfo(&s,
						 "CPU is %.0f%% busy with no statements to weigh it "
						 "against in the window.",
						 busy_pct);
	else
	{
		appendStringInfo(
			&s,
			"At %s statements/s the CPU is %.0f%% busy: you reach "
			"%g%% at about %s statements/s (%.1fx today's rate); ",
			rate_words(rate), busy_pct, limit, rate_words(capacity),
			rate > 0 ? capacity / rate : 0.0);
		if (largest)
			appendStringInfo(&s,
							 "this is the guide's largest size (%s): beyond "
							 "it, cache (stage 2) and scale out (stage 4).",
							 size_name);
		else
			appendStringInfo(&s, "the next size up: %s, %s.", next->name,
							 next->concurrent);
	}
	if (cw.has_memory && cw.memory_used_pct > aps_warn_memory_pct)
		appendStringInfo(&s, " Memory is %.0f%% used, over %g%%: add RAM.",
						 cw.memory_used_pct, aps_warn_memory_pct);
	if (cw.has_backends && MaxConnections > 0 &&
		100.0 * cw.backends_max / MaxConnections > aps_warn_connection_pct)
		appendStringInfo(&s,
						 " Peak %d of %d connections: pool them "
						 "(apiscale-pooler) or raise max_connections.",
						 cw.backends_max, MaxConnections);

	memset(nulls, 0, sizeof(nulls));
	values[i] = Int32GetDatum(cores);
	nulls[i++] = cores <= 0;
	values[i] = rounded(mem_total_kb / 1048576.0, 1, has_mem, &nulls[i]);
	i++;
	values[i] = rounded(busy_pct, 2, has_cpu, &nulls[i]);
	i++;
	values[i] = rounded(cw.memory_used_pct, 2, cw.has_memory, &nulls[i]);
	i++;
	values[i] = rounded(rate, 2, has_rate, &nulls[i]);
	i++;
	values[i] = rounded(cpu_ms, 3, has_cost, &nulls[i]);
	i++;
	values[i] = rounded(capacity, 2, has_cost && capacity > 0, &nulls[i]);
	i++;
	values[i] =
		rounded(100.0 * (capacity - rate) / rate, 1,
				has_cost && capacity > 0 && has_rate && rate > 0, &nulls[i]);
	i++;
	values[i] = Int32GetDatum(cw.backends_max);
	nulls[i++] = !cw.has_backends;
	values[i++] = Int32GetDatum(MaxConnections);
	values[i] = rounded(cw.covered_s, 2, true, &nulls[i]);
	i++;
	values[i++] = CStringGetTextDatum(size_name);
	values[i++] = CStringGetTextDatum(s.data);
	Assert(i == CAPACITY_COLS);

	PG_RETURN_DATUM(
		HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
