/*-------------------------------------------------------------------------
 *
 * sqlfuncs.c
 *		SQL-callable functions behind apiscale's views.
 *
 * Query texts and plans are shown to superusers, to members of
 * pg_read_all_stats and to the user who ran the statement; everyone else
 * sees "<insufficient privilege>" in their place, as with
 * pg_stat_statements.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "common/string.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "guc.h"
#include "histogram.h"
#include "evidence.h"
#include "errors.h"
#include "signals.h"
#include "sqlfuncs.h"
#include "store.h"
#include "writes.h"

PG_FUNCTION_INFO_V1(apiscale_queries);
PG_FUNCTION_INFO_V1(apiscale_reset);
PG_FUNCTION_INFO_V1(apiscale_info);
PG_FUNCTION_INFO_V1(apiscale_histogram_percentiles);
PG_FUNCTION_INFO_V1(apiscale_antipatterns);

#define QUERIES_COLS 23

/* State shared by the per-entry callback of apiscale_queries. */
typedef struct QueriesState
{
	ReturnSetInfo *rsinfo;
	Oid			   reader;	/* user reading the view */
	bool		   see_all; /* reader may see every text */
} QueriesState;

const char *const aps_no_privilege = "<insufficient privilege>";

/*
 * Text datum, in the reader's database encoding, of a string stored in the
 * encoding of the database that ran the statement.  Characters that cannot
 * be converted (or a source in SQL_ASCII, whose bytes mean nothing in
 * particular) show as '?'; reading the view never fails over encodings.
 */
static Datum
text_for_reader(const char *str, int src_encoding)
{
	int	  db_encoding = GetDatabaseEncoding();
	int	  len = strlen(str);
	char *masked;

	if (src_encoding == db_encoding || db_encoding == PG_SQL_ASCII ||
		pg_is_ascii(str))
		return CStringGetTextDatum(str);

	if (src_encoding != PG_SQL_ASCII)
	{
		Oid proc = FindDefaultConversionProc(src_encoding, db_encoding);

		if (OidIsValid(proc))
		{
			int			   destlen = len * MAX_CONVERSION_GROWTH + 1;
			unsigned char *dest = palloc(destlen);
			int			   done;

			done = pg_do_encoding_conversion_buf(
				proc, src_encoding, db_encoding, (unsigned char *) str, len,
				dest, destlen, true);
			if (done == len)
				return CStringGetTextDatum((char *) dest);
			pfree(dest);
		}
	}

	masked = pstrdup(str);
	for (char *p = masked; *p; p++)
	{
		if (IS_HIGHBIT_SET(*p))
			*p = '?';
	}
	return CStringGetTextDatum(masked);
}

/* text_for_reader, for the views of other files. */
Datum
aps_text_for_reader(const char *str, int src_encoding)
{
	return text_for_reader(str, src_encoding);
}

static Datum
ms_or_null(double ms, bool *isnull)
{
	*isnull = isnan(ms);
	return Float8GetDatum(ms);
}

static Datum
timestamp_or_null(TimestampTz ts, bool *isnull)
{
	*isnull = (ts == 0);
	return TimestampTzGetDatum(ts);
}

static void
queries_row(const ApsEntrySnapshot *snap, void *arg)
{
	QueriesState	  *st = (QueriesState *) arg;
	const ApsCounters *c = &snap->c;
	Datum			   values[QUERIES_COLS];
	bool			   nulls[QUERIES_COLS];
	bool			   visible = st->see_all || snap->key.userid == st->reader;
	bool			   timed = c->calls > 0;
	int				   i = 0;

	memset(nulls, 0, sizeof(nulls));

	values[i++] = Int64GetDatum((int64) snap->key.queryid);
	values[i++] = ObjectIdGetDatum(snap->key.userid);
	values[i++] = ObjectIdGetDatum(snap->key.dbid);
	values[i++] = visible ? text_for_reader(snap->query, snap->encoding)
						  : CStringGetTextDatum(aps_no_privilege);
	values[i++] = Int64GetDatum(c->calls);
	values[i++] = Float8GetDatum(c->total_ms);
	values[i] = ms_or_null(timed ? c->mean_ms : get_float8_nan(), &nulls[i]);
	i++;
	values[i] = ms_or_null(timed ? c->min_ms : get_float8_nan(), &nulls[i]);
	i++;
	values[i] = ms_or_null(timed ? c->max_ms : get_float8_nan(), &nulls[i]);
	i++;
	values[i] = ms_or_null(
		timed ? sqrt(c->sum_var_ms / c->calls) : get_float8_nan(), &nulls[i]);
	i++;
	values[i] = ms_or_null(
		aps_hist_percentile(&snap->hist, 0.50, c->min_ms, c->max_ms),
		&nulls[i]);
	i++;
	values[i] = ms_or_null(
		aps_hist_percentile(&snap->hist, 0.95, c->min_ms, c->max_ms),
		&nulls[i]);
	i++;
	values[i] = ms_or_null(
		aps_hist_percentile(&snap->hist, 0.99, c->min_ms, c->max_ms),
		&nulls[i]);
	i++;
	values[i++] = Int64GetDatum(c->rows);
	values[i++] = Int64GetDatum(c->shared_blks_hit);
	values[i++] = Int64GetDatum(c->shared_blks_read);
	values[i++] = Int64GetDatum(c->slow_calls);
	values[i++] = Int64GetDatum(c->errors);
	values[i] = timestamp_or_null(c->first_seen, &nulls[i]);
	i++;
	values[i] = timestamp_or_null(c->last_seen, &nulls[i]);
	i++;
	values[i] = ms_or_null(
		c->slow_calls > 0 ? c->last_slow_ms : get_float8_nan(), &nulls[i]);
	i++;
	values[i] = timestamp_or_null(c->last_slow_at, &nulls[i]);
	i++;
	if (snap->plan == NULL)
		nulls[i] = true;
	else
		values[i] = visible ? text_for_reader(snap->plan, snap->encoding)
							: CStringGetTextDatum(aps_no_privilege);
	i++;
	Assert(i == QUERIES_COLS);

	tuplestore_putvalues(st->rsinfo->setResult, st->rsinfo->setDesc, values,
						 nulls);
}

/*
 * apiscale.queries_internal(with_plans boolean): one row per tracked
 * statement.  Plans are copied only when asked for.
 */
Datum
apiscale_queries(PG_FUNCTION_ARGS)
{
	bool		 with_plans = PG_GETARG_BOOL(0);
	QueriesState st;

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);

	st.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (st.rsinfo->setDesc->natts != QUERIES_COLS)
		ereport(
			ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg(
				 "apiscale.queries_internal returns %d columns, the function definition expects %d",
				 QUERIES_COLS, st.rsinfo->setDesc->natts),
			 errhint("Run ALTER EXTENSION apiscale UPDATE.")));
	st.reader = GetUserId();
	st.see_all = has_privs_of_role(st.reader, ROLE_PG_READ_ALL_STATS);

	aps_store_foreach(with_plans, queries_row, &st);
	return (Datum) 0;
}

/* One anti-pattern row. */
static void
antipattern_row(const ApsEntrySnapshot *snap, QueriesState *st,
				const char *kind, int64 calls, char *detail)
{
	Datum values[6];
	bool  nulls[6] = {false, false, false, false, false, false};
	bool  visible = st->see_all || snap->key.userid == st->reader;

	values[0] = Int64GetDatum((int64) snap->key.queryid);
	values[1] = visible ? text_for_reader(snap->query, snap->encoding)
						: CStringGetTextDatum(aps_no_privilege);
	values[2] = CStringGetTextDatum(kind);
	values[3] = CStringGetTextDatum(detail);
	values[4] = Int64GetDatum(calls);
	values[5] = ObjectIdGetDatum(snap->key.userid);
	tuplestore_putvalues(st->rsinfo->setResult, st->rsinfo->setDesc, values,
						 nulls);
}

static void
antipatterns_of(const ApsEntrySnapshot *snap, void *arg)
{
	QueriesState	  *st = (QueriesState *) arg;
	const ApsCounters *c = &snap->c;

	if (snap->key.dbid != MyDatabaseId)
		return;
	if (c->select_star)
		antipattern_row(
			snap, st, "select_star", c->calls,
			pstrdup("SELECT * reads and sends every column, including ones "
					"added later: name the columns the endpoint needs"));
	if (c->unbounded_calls > 0)
		antipattern_row(
			snap, st, "unbounded_result", c->unbounded_calls,
			psprintf("returned up to " INT64_FORMAT
					 " rows (typically " INT64_FORMAT
					 ") with no LIMIT: paginate (ORDER BY a key, LIMIT n, "
					 "and WHERE key > the last one seen)",
					 c->unbounded_rows_max,
					 c->unbounded_rows_sum / c->unbounded_calls));
	if (c->offset_calls > 0)
		antipattern_row(
			snap, st, "large_offset", c->offset_calls,
			psprintf("OFFSET skipped up to " INT64_FORMAT
					 " rows, each read and thrown away: use keyset pagination "
					 "(WHERE key > the last one seen ORDER BY key LIMIT n)",
					 c->offset_max));
	if (c->nplus1_txns > 0)
		antipattern_row(
			snap, st, "n_plus_one", c->nplus1_txns,
			psprintf("ran up to " INT64_FORMAT " times in one transaction, at "
					 "most one row each: fetch the rows in one statement with "
					 "a join or WHERE id = ANY($1)",
					 c->nplus1_max));
}

/*
 * apiscale.antipatterns_internal(): the anti-patterns of the current
 * database's statements, one row per (statement, kind).
 */
Datum
apiscale_antipatterns(PG_FUNCTION_ARGS)
{
	QueriesState st;

	aps_store_check_ready();
	InitMaterializedSRF(fcinfo, 0);
	st.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	st.reader = GetUserId();
	st.see_all = has_privs_of_role(st.reader, ROLE_PG_READ_ALL_STATS);
	aps_store_foreach(false, antipatterns_of, &st);
	return (Datum) 0;
}

/*
 * apiscale.reset(): forget every statement and plan.
 */
Datum
apiscale_reset(PG_FUNCTION_ARGS)
{
	aps_store_check_ready();
	aps_store_reset();
	aps_evidence_reset();
	aps_signals_reset();
	aps_writes_reset();
	aps_errors_reset();
	aps_cache_reset();
	PG_RETURN_VOID();
}

/*
 * apiscale.info(): the state of the statement table.
 */
Datum
apiscale_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int64		nentries;
	int64		evicted;
	TimestampTz reset_at;

	aps_store_check_ready();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	aps_store_info(&nentries, &evicted, &reset_at);
	values[0] = Int64GetDatum(nentries);
	values[1] = Int32GetDatum(aps_max_queries);
	values[2] = Int64GetDatum(evicted);
	values[3] = TimestampTzGetDatum(reset_at);

	PG_RETURN_DATUM(
		HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * apiscale.histogram_percentiles(durations_ms float8[], fractions float8[])
 *
 * Feeds the given durations through the same histogram the statement table
 * uses and returns the estimated percentiles.  Needs no shared memory: it
 * exists so that the error bound documented in histogram.h can be checked
 * against exact percentiles on any distribution.
 */
Datum
apiscale_histogram_percentiles(PG_FUNCTION_ARGS)
{
	ArrayType	 *durations = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType	 *fractions = PG_GETARG_ARRAYTYPE_P(1);
	Datum		 *dvals;
	bool		 *dnulls;
	int			  nd;
	Datum		 *fvals;
	bool		 *fnulls;
	int			  nf;
	ApsHistogram *hist = palloc0(sizeof(ApsHistogram));
	double		  min_ms = get_float8_infinity();
	double		  max_ms = -get_float8_infinity();
	Datum		 *result;

	deconstruct_array(durations, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &dvals, &dnulls, &nd);
	deconstruct_array(fractions, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &fvals, &fnulls, &nf);

	for (int i = 0; i < nd; i++)
	{
		double ms;

		if (dnulls[i])
			continue;
		ms = DatumGetFloat8(dvals[i]);
		if (isnan(ms) || ms < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("durations must be non-negative numbers")));
		aps_hist_add(hist, ms);
		min_ms = Min(min_ms, ms);
		max_ms = Max(max_ms, ms);
	}

	result = palloc(nf * sizeof(Datum));
	for (int i = 0; i < nf; i++)
	{
		double f = fnulls[i] ? get_float8_nan() : DatumGetFloat8(fvals[i]);

		if (!(f > 0.0 && f <= 1.0))
			ereport(
				ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("percentile fraction %g is not between 0 and 1", f),
				 errdetail(
					 "Fractions must be greater than 0 and at most 1.")));
		result[i] =
			Float8GetDatum(aps_hist_percentile(hist, f, min_ms, max_ms));
	}

	PG_RETURN_ARRAYTYPE_P(construct_array(result, nf, FLOAT8OID,
										  sizeof(float8), FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}
