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

--
-- Anti-patterns
--
CREATE FUNCTION antipatterns_internal(
    OUT queryid bigint,
    OUT query text,
    OUT kind text,
    OUT detail text,
    OUT calls bigint,
    OUT userid oid
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_antipatterns'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW antipatterns AS
    SELECT queryid, query, kind, detail, calls, userid
      FROM antipatterns_internal()
     ORDER BY kind, calls DESC, queryid;

COMMENT ON VIEW antipatterns IS
    'SELECT *, results without LIMIT, deep OFFSET paging and N+1 loops, per statement';

--
-- Scaling signals
--
CREATE FUNCTION scaling_signals_internal(
    OUT signal text,
    OUT value double precision,
    OUT threshold double precision,
    OUT status text,
    OUT action text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_scaling_signals'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW scaling_signals AS
    SELECT signal, value, threshold, status, action
      FROM scaling_signals_internal();

COMMENT ON VIEW scaling_signals IS
    'Is it time to scale? Seven signals over the last apiscale.signal_window';

CREATE FUNCTION report_pool(pool text, size int, overflow int, in_use int,
                            waiting int, timeouts bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'apiscale_report_pool'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pool_reports_internal(
    OUT pool text,
    OUT size integer,
    OUT overflow integer,
    OUT in_use integer,
    OUT waiting integer,
    OUT timeouts bigint,
    OUT reported_at timestamptz
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_pool_reports'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW pool_reports AS
    SELECT pool, size, overflow, in_use, waiting, timeouts, reported_at
      FROM pool_reports_internal() ORDER BY pool;

COMMENT ON VIEW pool_reports IS 'The latest numbers each pooler reported through report_pool()';

COMMENT ON FUNCTION report_pool(text, int, int, int, int, bigint) IS
    'A pooler reports a pool''s size, overflow (-1: no limit), connections in use, waiting clients and timeouts';

--
-- The report
--

-- Lines of at most width characters from text, each after indent.
CREATE FUNCTION wrap_text(txt text, width int, indent text)
RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    line text := '';
    word text;
BEGIN
    FOREACH word IN ARRAY regexp_split_to_array(btrim(txt), '\s+') LOOP
        IF line <> '' AND length(line) + 1 + length(word) > width - length(indent) THEN
            RETURN NEXT indent || line;
            line := '';
        END IF;
        IF length(word) > width - length(indent) THEN
            word := left(word, width - length(indent) - 3) || '...';
        END IF;
        line := CASE WHEN line = '' THEN word ELSE line || ' ' || word END;
    END LOOP;
    IF line <> '' THEN
        RETURN NEXT indent || line;
    END IF;
END
$$;

CREATE FUNCTION report()
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    n int;
    total double precision;
BEGIN
        RETURN NEXT left(format('apiscale report, %s, database %s, signals over the last %s',
                            to_char(now(), 'YYYY-MM-DD HH24:MI:SS TZ'), current_database(),
                            current_setting('apiscale.signal_window')), 120);

    RETURN NEXT '';
    RETURN NEXT '== Is it time to scale?';
    n := 0;
    FOR r IN SELECT * FROM apiscale.scaling_signals
              ORDER BY status = 'warning' DESC, status = 'ok' DESC, signal LOOP
        IF r.status = 'warning' THEN
            RETURN NEXT format('  WARNING  %s = %s (threshold %s): %s',
                               r.signal, r.value, r.threshold, r.action);
            n := n + 1;
        ELSIF r.status = 'ok' THEN
            RETURN NEXT format('  ok       %s = %s (threshold %s)', r.signal, r.value, r.threshold);
        ELSE
            RETURN NEXT format('  no data  %s', r.signal);
        END IF;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  No signal is in warning.';
    END IF;

    RETURN NEXT '';
    RETURN NEXT '== Slowest statements (top 5 by total time)';
    SELECT sum(q.total_ms) INTO total FROM apiscale.queries q
     WHERE q.dbid = (SELECT oid FROM pg_database WHERE datname = current_database());
    n := 0;
    FOR r IN SELECT q.p95_ms, q.calls, q.total_ms, q.query
               FROM apiscale.queries q
              WHERE q.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND q.query NOT LIKE '%apiscale.%'
              ORDER BY q.total_ms DESC LIMIT 5 LOOP
        IF n = 0 THEN
            RETURN NEXT '     p95 ms      calls  time % | statement';
        END IF;
        RETURN NEXT format('  %9s  %9s  %6s | %s',
                           round(coalesce(r.p95_ms, 0)::numeric, 2), r.calls,
                           CASE WHEN total > 0 THEN round((100 * r.total_ms / total)::numeric, 1) ELSE 0 END,
                           left(regexp_replace(r.query, '\s+', ' ', 'g'), 120 - 33));
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  No statement yet.';
    END IF;

    RETURN NEXT '';
    RETURN NEXT '== Missing indexes (proven by a hypothetical re-plan)';
    n := 0;
    FOR r IN SELECT * FROM apiscale.index_advice LOOP
                -- Wrapped at spaces, never cut: it stays a statement to copy.
        RETURN QUERY SELECT apiscale.wrap_text(r.ddl, 120, '  ');
        RETURN NEXT format('      %s rows read and thrown away in %s scans, estimated cost %s%% lower (%s)',
                           r.rows_filtered, r.scans, r.est_improvement_pct,
                           array_to_string(r.reasons, ', '));
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  No index to add.';
    END IF;

    RETURN NEXT '';
    RETURN NEXT '== Anti-patterns';
    n := 0;
    FOR r IN SELECT * FROM apiscale.antipatterns a
              WHERE a.query NOT LIKE '%apiscale.%' LOOP
        RETURN NEXT format('  %s, seen %s: %s', r.kind,
                           CASE WHEN r.calls = 1 THEN 'once' ELSE r.calls || ' times' END,
                           left(regexp_replace(r.query, '\s+', ' ', 'g'),
                                120 - 20 - length(r.kind) - length(r.calls::text)));
        RETURN QUERY SELECT apiscale.wrap_text(r.detail, 120, '      ');
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  None found.';
    END IF;
END
$$;

COMMENT ON FUNCTION report() IS
    'One text report: signals in warning first, slowest statements, missing indexes, anti-patterns';

-- Statistics are readable by everyone (texts of other users are masked);
-- clearing them is not.
GRANT USAGE ON SCHEMA apiscale TO PUBLIC;
REVOKE ALL ON FUNCTION reset() FROM PUBLIC;
GRANT SELECT ON queries, slow_queries, index_advice, index_candidates,
        antipatterns, scaling_signals, pool_reports TO PUBLIC;
-- Only a trusted pooler (or a role granted this) may report pool numbers.
REVOKE ALL ON FUNCTION report_pool(text, int, int, int, int, bigint) FROM PUBLIC;
