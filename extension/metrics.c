/*-------------------------------------------------------------------------
 *
 * metrics.c
 *		apiscale.metrics(): the scaling signals and the top statements as
 *		Prometheus text.
 *
 * The text follows the exposition format 0.0.4: each family is written
 * whole, as its "# HELP" line, its "# TYPE" line and its samples, and no
 * family appears twice.  Label values are escaped (backslash, double quote,
 * newline).  No sample carries a "database" label: apiscale-pooler adds
 * one to every sample line when it appends this text to its own /metrics.
 *
 * Families:
 *	 apiscale_scaling_signal_value{signal}		gauge, unit of its name;
 *												absent with no data
 *	 apiscale_scaling_signal_threshold{signal}	gauge, the warn_* setting
 *	 apiscale_scaling_signal_warning{signal}	gauge, 1 in warning, else 0
 *	 apiscale_signal_window_seconds				gauge, apiscale.signal_window
 *	 apiscale_window_statements					gauge, in the window
 *	 apiscale_window_failed_statements			gauge, in the window
 *	 apiscale_statement_duration_seconds		histogram of the window
 *	 apiscale_statement_calls_total{queryid}	counter  \
 *	 apiscale_statement_errors_total{queryid}	counter   | top statements
 *	 apiscale_statement_seconds_total{queryid}	counter   | of this database
 *	 apiscale_statement_p95_seconds{queryid}	gauge	 /
 *
 * The signal and window families describe the server (every database);
 * the statement families the current database's statements, each query id
 * summed over the users that ran it, for the apiscale.metrics_top_queries
 * statements with the most execution time.  They carry no query text: a
 * label that long, and that may change for one query id (docs/extension.md,
 * "Normalization"), would make a new series for each text; the query id
 * is the key of apiscale.queries.
 *
 * The histogram's buckets are the signal buckets' log-linear histogram
 * (histogram.h) folded into fixed edges: a bucket counts into le="x" only
 * when every duration it can hold is at most x, so no count under le="x"
 * is longer than x, and a duration less than one bucket (at most 6.25%)
 * below an edge may count under the next one.  Its _sum is estimated from the same buckets (each
 * duration at its bucket's middle, within 3.125%): the signal buckets keep
 * no sum, and keeping one would cost an atomic addition per statement.
 *
 * Everything is computed here, when the function is called: nothing is
 * added to the statement path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "guc.h"
#include "histogram.h"
#include "signals.h"
#include "store.h"

PG_FUNCTION_INFO_V1(apiscale_metrics);

/* Edges of apiscale_statement_duration_seconds, in seconds. */
static const struct
{
	const char *le; /* as written in the label */
	double		us; /* the same, in microseconds */
} duration_edges[] = {
	{"0.0005", 500},  {"0.001", 1000},	{"0.0025", 2500}, {"0.005", 5000},
	{"0.01", 10000},  {"0.025", 25000}, {"0.05", 50000},  {"0.1", 100000},
	{"0.25", 250000}, {"0.5", 500000},	{"1", 1000000},	  {"2.5", 2500000},
	{"5", 5000000},	  {"10", 10000000}, {"30", 30000000},
};

/* One statement of the current database, summed over its users. */
typedef struct MetricsStatement
{
	uint64		  queryid;
	int64		  calls;	/* completed executions */
	int64		  errors;	/* failed executions */
	double		  total_ms; /* time of the completed executions */
	double		  min_ms;	/* over the users with calls */
	double		  max_ms;
	ApsHistogram *hist; /* the top ones only; NULL before the 2nd pass */
} MetricsStatement;

typedef struct MetricsCollect
{
	MetricsStatement *items;
	int				  n;
	int				  size;
} MetricsCollect;

/* ---- writing the text ---------------------------------------------- */

/* A label value, escaped as the format requires. */
static void
append_label_value(StringInfo buf, const char *value)
{
	for (const char *p = value; *p; p++)
	{
		if (*p == '\\')
			appendStringInfoString(buf, "\\\\");
		else if (*p == '"')
			appendStringInfoString(buf, "\\\"");
		else if (*p == '\n')
			appendStringInfoString(buf, "\\n");
		else
			appendStringInfoChar(buf, *p);
	}
}

/* A sample value: the shortest decimal that reads back exactly. */
static void
append_value(StringInfo buf, double value)
{
	char num[DOUBLE_SHORTEST_DECIMAL_LEN];

	if (isnan(value))
		appendStringInfoString(buf, "NaN");
	else if (isinf(value))
		appendStringInfoString(buf, value > 0 ? "+Inf" : "-Inf");
	else
	{
		double_to_shortest_decimal_buf(value, num);
		appendStringInfoString(buf, num);
	}
}

/* The two lines that open a family.  help has no backslash or newline. */
static void
begin_family(StringInfo buf, const char *name, const char *type,
			 const char *help)
{
	appendStringInfo(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
					 type);
}

/* One sample line; label may be NULL for none. */
static void
append_sample(StringInfo buf, const char *name, const char *label,
			  const char *label_value, double value)
{
	appendStringInfoString(buf, name);
	if (label != NULL)
	{
		appendStringInfo(buf, "{%s=\"", label);
		append_label_value(buf, label_value);
		appendStringInfoString(buf, "\"}");
	}
	appendStringInfoChar(buf, ' ');
	append_value(buf, value);
	appendStringInfoChar(buf, '\n');
}

/* The same, for a count: written as an integer, exactly. */
static void
append_count(StringInfo buf, const char *name, const char *label,
			 const char *label_value, uint64 count)
{
	appendStringInfoString(buf, name);
	if (label != NULL)
	{
		appendStringInfo(buf, "{%s=\"", label);
		append_label_value(buf, label_value);
		appendStringInfoString(buf, "\"}");
	}
	appendStringInfo(buf, " " UINT64_FORMAT "\n", count);
}

/* ---- the signals and the window ------------------------------------ */

static void
append_signals(StringInfo buf)
{
	ApsSignal		signals[APS_NSIGNALS];
	ApsSignalWindow window;
	const char	   *name;

	aps_signals_read(signals, &window);

	name = "apiscale_scaling_signal_value";
	begin_family(
		buf, name, "gauge",
		"Scaling signal over the last apiscale.signal_window, in the unit "
		"its name ends with (ms or pct); no sample while it has no data.");
	for (int i = 0; i < APS_NSIGNALS; i++)
		if (signals[i].has_data)
			append_sample(buf, name, "signal", signals[i].name,
						  round(signals[i].value * 100.0) / 100.0);

	name = "apiscale_scaling_signal_threshold";
	begin_family(buf, name, "gauge",
				 "Threshold past which the scaling signal warns "
				 "(apiscale.warn_* setting).");
	for (int i = 0; i < APS_NSIGNALS; i++)
		append_sample(buf, name, "signal", signals[i].name,
					  signals[i].threshold);

	name = "apiscale_scaling_signal_warning";
	begin_family(buf, name, "gauge",
				 "1 when the scaling signal is in warning, else 0 "
				 "(also with no data).");
	for (int i = 0; i < APS_NSIGNALS; i++)
		append_count(buf, name, "signal", signals[i].name,
					 signals[i].warning ? 1 : 0);

	name = "apiscale_signal_window_seconds";
	begin_family(buf, name, "gauge",
				 "Length of the window the signals and window families "
				 "describe (apiscale.signal_window).");
	append_count(buf, name, NULL, NULL, (uint64) window.seconds);

	name = "apiscale_window_statements";
	begin_family(buf, name, "gauge",
				 "Statements clients sent that finished or failed in the "
				 "window, all databases.");
	append_count(buf, name, NULL, NULL, window.statements);

	name = "apiscale_window_failed_statements";
	begin_family(buf, name, "gauge",
				 "Statements clients sent that failed in the window, all "
				 "databases.");
	append_count(buf, name, NULL, NULL, window.errors);

	/*
	 * The histogram: walk the log-linear buckets in order (their upper
	 * bounds grow) and close each edge once the next bucket could hold a
	 * longer duration.
	 */
	{
		uint64 cumulative = 0;
		double sum_us = 0;
		int	   idx = 0;

		name = "apiscale_statement_duration_seconds";
		begin_family(buf, name, "histogram",
					 "Execution time of the statements clients sent that "
					 "finished in the window, all databases.");
		for (int e = 0; e < lengthof(duration_edges); e++)
		{
			while (idx < APS_HIST_BUCKETS &&
				   aps_hist_bucket_upper_us(idx) <= duration_edges[e].us)
				cumulative += window.hist.counts[idx++];
			append_count(buf, "apiscale_statement_duration_seconds_bucket",
						 "le", duration_edges[e].le, cumulative);
		}
		for (; idx < APS_HIST_BUCKETS; idx++)
			cumulative += window.hist.counts[idx];
		append_count(buf, "apiscale_statement_duration_seconds_bucket", "le",
					 "+Inf", cumulative);
		for (int i = 0; i < APS_HIST_BUCKETS; i++)
			sum_us += window.hist.counts[i] * aps_hist_bucket_middle_us(i);
		append_sample(buf, "apiscale_statement_duration_seconds_sum", NULL,
					  NULL, sum_us / 1e6);
		append_count(buf, "apiscale_statement_duration_seconds_count", NULL,
					 NULL, cumulative);
	}
}

/* ---- the top statements -------------------------------------------- */

/* First pass: every statement of this database, one item per entry. */
static void
collect_statement(const ApsEntrySnapshot *snap, void *arg)
{
	MetricsCollect	 *st = (MetricsCollect *) arg;
	MetricsStatement *item;

	if (snap->key.dbid != MyDatabaseId)
		return;
	if (st->n == st->size)
	{
		st->size *= 2;
		st->items =
			repalloc_huge(st->items, sizeof(MetricsStatement) * st->size);
	}
	item = &st->items[st->n++];
	item->queryid = snap->key.queryid;
	item->calls = snap->c.calls;
	item->errors = snap->c.errors;
	item->total_ms = snap->c.total_ms;
	item->min_ms = snap->c.calls > 0 ? snap->c.min_ms : get_float8_infinity();
	item->max_ms = snap->c.calls > 0 ? snap->c.max_ms : 0;
	item->hist = NULL;
}

static int
compare_queryid(const void *a, const void *b)
{
	uint64 qa = ((const MetricsStatement *) a)->queryid;
	uint64 qb = ((const MetricsStatement *) b)->queryid;

	return qa < qb ? -1 : qa > qb ? 1 : 0;
}

/* Most time first; then most calls; then by query id, to be stable. */
static int
compare_rank(const void *a, const void *b)
{
	const MetricsStatement *sa = (const MetricsStatement *) a;
	const MetricsStatement *sb = (const MetricsStatement *) b;

	if (sa->total_ms != sb->total_ms)
		return sa->total_ms > sb->total_ms ? -1 : 1;
	if (sa->calls != sb->calls)
		return sa->calls > sb->calls ? -1 : 1;
	return compare_queryid(a, b);
}

/* Second pass: add each entry's histogram to its top statement's. */
static void
add_statement_histogram(const ApsEntrySnapshot *snap, void *arg)
{
	MetricsCollect	 *top = (MetricsCollect *) arg; /* sorted by query id */
	MetricsStatement  key;
	MetricsStatement *item;

	if (snap->key.dbid != MyDatabaseId)
		return;
	key.queryid = snap->key.queryid;
	item = bsearch(&key, top->items, top->n, sizeof(MetricsStatement),
				   compare_queryid);
	if (item == NULL)
		return;
	for (int i = 0; i < APS_HIST_BUCKETS; i++)
	{
		uint64 sum = (uint64) item->hist->counts[i] + snap->hist.counts[i];

		item->hist->counts[i] = (uint32) Min(sum, (uint64) PG_UINT32_MAX);
	}
}

/*
 * The top statements of this database, most time first, each summed over
 * its users, with its histogram.  Two passes over the statement table: the
 * histograms (1.8 kB each) are copied only for the ones shown.  An entry
 * evicted between the passes leaves its statement's p95 out.
 */
static MetricsStatement *
top_statements(int limit, int *count)
{
	MetricsCollect	  all;
	MetricsCollect	  top;
	MetricsStatement *ranked;
	int				  n = 0;

	all.size = 64;
	all.n = 0;
	all.items = palloc(sizeof(MetricsStatement) * all.size);
	aps_store_foreach(false, collect_statement, &all);

	/* One item per query id. */
	if (all.n > 0)
	{
		qsort(all.items, all.n, sizeof(MetricsStatement), compare_queryid);
		for (int i = 1; i < all.n; i++)
		{
			MetricsStatement *cur = &all.items[n];
			MetricsStatement *next = &all.items[i];

			if (next->queryid != cur->queryid)
			{
				all.items[++n] = *next;
				continue;
			}
			cur->calls += next->calls;
			cur->errors += next->errors;
			cur->total_ms += next->total_ms;
			cur->min_ms = Min(cur->min_ms, next->min_ms);
			cur->max_ms = Max(cur->max_ms, next->max_ms);
		}
		n++;
	}

	qsort(all.items, n, sizeof(MetricsStatement), compare_rank);
	n = Min(n, limit);
	ranked = all.items;
	for (int i = 0; i < n; i++)
		ranked[i].hist = palloc0(sizeof(ApsHistogram));

	/* The second pass finds them by query id, in a sorted copy. */
	top.n = top.size = n;
	top.items = palloc(sizeof(MetricsStatement) * Max(n, 1));
	memcpy(top.items, ranked, sizeof(MetricsStatement) * n);
	qsort(top.items, n, sizeof(MetricsStatement), compare_queryid);
	if (n > 0)
		aps_store_foreach(false, add_statement_histogram, &top);

	*count = n;
	return ranked;
}

static void
append_statements(StringInfo buf)
{
	int				  n;
	MetricsStatement *top = top_statements(aps_metrics_top_queries, &n);
	char			**ids = palloc(sizeof(char *) * Max(n, 1));
	const char		 *name;

	/* Signed, as apiscale.queries shows it. */
	for (int i = 0; i < n; i++)
		ids[i] = psprintf(INT64_FORMAT, (int64) top[i].queryid);

	name = "apiscale_statement_calls_total";
	begin_family(buf, name, "counter",
				 "Completed executions of one of the top statements of this "
				 "database by execution time (apiscale.metrics_top_queries).");
	for (int i = 0; i < n; i++)
		append_count(buf, name, "queryid", ids[i], (uint64) top[i].calls);

	name = "apiscale_statement_errors_total";
	begin_family(buf, name, "counter",
				 "Failed executions of one of the top statements of this "
				 "database.");
	for (int i = 0; i < n; i++)
		append_count(buf, name, "queryid", ids[i], (uint64) top[i].errors);

	name = "apiscale_statement_seconds_total";
	begin_family(buf, name, "counter",
				 "Execution time of the completed executions of one of the "
				 "top statements of this database.");
	for (int i = 0; i < n; i++)
		append_sample(buf, name, "queryid", ids[i], top[i].total_ms / 1000.0);

	name = "apiscale_statement_p95_seconds";
	begin_family(buf, name, "gauge",
				 "95th percentile of the execution time of one of the top "
				 "statements of this database, since its entry was created.");
	for (int i = 0; i < n; i++)
	{
		double p95;

		if (top[i].calls == 0)
			continue;
		p95 = aps_hist_percentile(top[i].hist, 0.95, top[i].min_ms,
								  top[i].max_ms);
		if (!isnan(p95))
			append_sample(buf, name, "queryid", ids[i], p95 / 1000.0);
	}
}

/*
 * apiscale.metrics(): the text.
 */
Datum
apiscale_metrics(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	aps_store_check_ready();
	initStringInfo(&buf);
	append_signals(&buf);
	append_statements(&buf);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
