/* extension/apiscale--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION apiscale" to load this file. \quit

--
-- Statement statistics
--
CREATE FUNCTION queries_internal(
    IN with_plans boolean,
    OUT queryid bigint,
    OUT userid oid,
    OUT dbid oid,
    OUT query text,
    OUT calls bigint,
    OUT total_ms double precision,
    OUT mean_ms double precision,
    OUT min_ms double precision,
    OUT max_ms double precision,
    OUT stddev_ms double precision,
    OUT p50_ms double precision,
    OUT p95_ms double precision,
    OUT p99_ms double precision,
    OUT rows bigint,
    OUT shared_blks_hit bigint,
    OUT shared_blks_read bigint,
    OUT slow_calls bigint,
    OUT errors bigint,
    OUT first_seen timestamptz,
    OUT last_seen timestamptz,
    OUT last_slow_ms double precision,
    OUT last_slow_at timestamptz,
    OUT last_slow_plan text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_queries'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW queries AS
    SELECT queryid, userid, dbid, query, calls,
           total_ms, mean_ms, min_ms, max_ms, stddev_ms,
           p50_ms, p95_ms, p99_ms,
           rows, shared_blks_hit, shared_blks_read,
           slow_calls, errors, first_seen, last_seen
      FROM queries_internal(false);

CREATE VIEW slow_queries AS
    SELECT queryid, userid, dbid, query, calls, slow_calls,
           p95_ms, max_ms, last_slow_ms, last_slow_at, last_slow_plan
      FROM queries_internal(true)
     WHERE slow_calls > 0;

COMMENT ON VIEW queries IS
    'One row per (userid, dbid, queryid): counters, timing and latency percentiles';
COMMENT ON VIEW slow_queries IS
    'Statements with runs over apiscale.slow_query_ms, with the plan of the latest one';

CREATE FUNCTION reset()
RETURNS void
AS 'MODULE_PATHNAME', 'apiscale_reset'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION reset() IS 'Clears everything apiscale collected';

CREATE FUNCTION info(
    OUT entries bigint,
    OUT max_queries integer,
    OUT evicted bigint,
    OUT reset_at timestamptz
)
AS 'MODULE_PATHNAME', 'apiscale_info'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION info() IS
    'Fill level of the statement table and entries evicted since the last reset';

CREATE FUNCTION histogram_percentiles(durations_ms double precision[],
                                      fractions double precision[])
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'apiscale_histogram_percentiles'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION histogram_percentiles(double precision[], double precision[]) IS
    'Percentiles of the given durations as apiscale''s latency histogram estimates them';

--
-- Index advice
--
CREATE FUNCTION index_candidates_internal(
    OUT relation regclass,
    OUT columns text[],
    OUT reasons text[],
    OUT ddl text,
    OUT queries bigint,
    OUT scans bigint,
    OUT rows_read bigint,
    OUT rows_filtered bigint,
    OUT est_cost_before double precision,
    OUT est_cost_after double precision,
    OUT est_improvement_pct double precision,
    OUT example_queryid bigint,
    OUT verdict text,
    OUT detail text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_index_candidates'
-- PARALLEL UNSAFE: the re-plans run in subtransactions, which a parallel
-- query cannot start; a query reading the view is never parallel.
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE VIEW index_candidates AS
    SELECT relation, columns, reasons, ddl, queries, scans, rows_read,
           rows_filtered, est_cost_before, est_cost_after,
           est_improvement_pct, example_queryid, verdict, detail
      FROM index_candidates_internal()
     ORDER BY verdict = 'recommended' DESC,
              rows_filtered * coalesce(est_improvement_pct, 0) DESC,
              rows_filtered DESC, relation::text, columns;

CREATE VIEW index_advice AS
    SELECT relation, columns, reasons, ddl, queries, scans, rows_filtered,
           est_cost_before, est_cost_after, est_improvement_pct,
           example_queryid
      FROM index_candidates_internal()
     WHERE verdict = 'recommended'
     ORDER BY rows_filtered * est_improvement_pct DESC, relation::text, columns;

COMMENT ON VIEW index_advice IS
    'Missing indexes, proven by a hypothetical re-plan and ranked by rows filtered x estimated improvement';
COMMENT ON VIEW index_candidates IS
    'Every index candidate apiscale considered, with its verdict';

-- Statistics are readable by everyone (texts of other users are masked);
-- clearing them is not.
GRANT USAGE ON SCHEMA apiscale TO PUBLIC;
REVOKE ALL ON FUNCTION reset() FROM PUBLIC;
GRANT SELECT ON queries, slow_queries, index_advice, index_candidates TO PUBLIC;
