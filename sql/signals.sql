--
-- Scaling signals: no data when there is nothing to measure, ok, warning
--
-- With apiscale off nothing this session runs is counted: after a reset
-- every statement-based signal has no data.
SET apiscale.enabled = off;
SELECT apiscale.reset();
SELECT signal, value, status FROM apiscale.scaling_signals
 WHERE signal IN ('p95_response_time_ms', 'error_rate_pct', 'pool_utilization_pct',
                  'cache_hit_rate_pct')
 ORDER BY signal;
-- The machine's signals come from the background worker: whatever they
-- say, it is one of the three statuses, with a value exactly when measured.
SELECT signal, status IN ('ok', 'warning', 'no data') AS known,
       (value IS NOT NULL) = (status <> 'no data') AS value_iff_data,
       threshold, action
  FROM apiscale.scaling_signals ORDER BY signal;
RESET apiscale.enabled;

-- p95: fast statements are ok, slow ones (over a lowered threshold) warn.
SET apiscale.warn_p95_ms = 50;
SELECT apiscale.reset();
SELECT count(*) FROM generate_series(1, 10);
SELECT signal, status FROM apiscale.scaling_signals WHERE signal = 'p95_response_time_ms';
SELECT pg_sleep(0.08) FROM generate_series(1, 3) \g /dev/null
SELECT pg_sleep(0.08) \g /dev/null
SELECT pg_sleep(0.08) \g /dev/null
SELECT pg_sleep(0.08) \g /dev/null
SELECT signal, value >= 50 AS over, status FROM apiscale.scaling_signals
 WHERE signal = 'p95_response_time_ms';
RESET apiscale.warn_p95_ms;

-- error rate: a few failing statements among a few dozen
SELECT apiscale.reset();
SELECT count(*) FROM generate_series(1, 10);
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'error_rate_pct';
SELECT 1 / (g - g) FROM generate_series(1, 3) g;
SELECT 1 / (g - g) FROM generate_series(1, 3) g;
SELECT signal, value > 1 AS over, status FROM apiscale.scaling_signals
 WHERE signal = 'error_rate_pct';

-- An error a function catches is not a failed statement, and a statement
-- failing inside a function counts once (apiscale.track = all).
SET apiscale.track = 'all';
CREATE FUNCTION sig_catch() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  BEGIN PERFORM 1 / 0; EXCEPTION WHEN division_by_zero THEN NULL; END;
  RETURN 1;
END $$;
SELECT apiscale.reset();
SELECT sig_catch();
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'error_rate_pct';
DROP FUNCTION sig_catch();
RESET apiscale.track;

-- A statement a function started is not a client's, even when it ends with
-- the client's statement: the inner SELECT of a lazily evaluated SQL
-- function stopped early by a LIMIT, a cursor a PL/pgSQL function opened
-- and COMMIT closes.  The error rate reads the same with track = top and
-- track = all: 1 failure in 4 statements (reset(), the two calls, 1 / 0).
CREATE FUNCTION sig_lazy() RETURNS SETOF int LANGUAGE sql AS $$
  SELECT g FROM generate_series(1, 10) g
$$;
CREATE FUNCTION sig_cursor() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  c refcursor;
  r int;
BEGIN
  OPEN c FOR SELECT g FROM generate_series(1, 10) g;
  FETCH c INTO r;
  RETURN r;
END $$;
SET apiscale.track = top;
SELECT apiscale.reset();
SELECT sig_lazy() LIMIT 2;
BEGIN;
SELECT sig_cursor();
COMMIT;
SELECT 1 / (g - g) FROM generate_series(1, 1) g;
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'error_rate_pct';
SET apiscale.track = 'all';
SELECT apiscale.reset();
SELECT sig_lazy() LIMIT 2;
BEGIN;
SELECT sig_cursor();
COMMIT;
SELECT 1 / (g - g) FROM generate_series(1, 1) g;
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'error_rate_pct';
-- track = all did track the inner statements (one query id, run twice).
SELECT query, calls FROM apiscale.queries
 WHERE query LIKE '%FROM generate_series($1, $2) g%' ORDER BY query COLLATE "C";
DROP FUNCTION sig_lazy();
DROP FUNCTION sig_cursor();
RESET apiscale.track;

-- A statement refused as its execution starts (permission denied, raised
-- by ExecutorStart) is a failed statement; when a function's statement is
-- refused (track = all), the client's statement fails once: reset() and
-- two failures, 66.67.
CREATE ROLE regress_signals_reader;
CREATE TABLE sig_secret (v int);
CREATE FUNCTION sig_secret_count() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT count(*) FROM sig_secret);
END $$;
SET apiscale.track = 'all';
SELECT apiscale.reset();
SET ROLE regress_signals_reader;
SELECT v FROM sig_secret;
SELECT sig_secret_count();
RESET ROLE;
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'error_rate_pct';
RESET apiscale.track;
DROP FUNCTION sig_secret_count();
DROP TABLE sig_secret;
DROP ROLE regress_signals_reader;

-- A function's statement that fails while ExecutorStart prunes partitions
-- fails inside the client's statement, which then fails once: reset() and
-- one failure, 50.
CREATE TABLE sig_k (k int);
INSERT INTO sig_k VALUES (1);
CREATE TABLE sig_parted (k int) PARTITION BY LIST (k);
CREATE TABLE sig_parted_1 PARTITION OF sig_parted FOR VALUES IN (1);
CREATE TABLE sig_parted_2 PARTITION OF sig_parted FOR VALUES IN (2);
CREATE FUNCTION sig_current_k() RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT 1 / k FROM sig_k);
END $$;
SET plan_cache_mode = force_generic_plan;
PREPARE sig_parted_count AS SELECT count(*) FROM sig_parted WHERE k = sig_current_k();
EXECUTE sig_parted_count;
UPDATE sig_k SET k = 0;
SELECT apiscale.reset();
EXECUTE sig_parted_count;
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'error_rate_pct';
RESET plan_cache_mode;
DEALLOCATE sig_parted_count;
DROP TABLE sig_parted, sig_k;
DROP FUNCTION sig_current_k();

-- cache hit rate: reads from shared buffers
SELECT apiscale.reset();
SELECT count(*) > 0 AS read FROM pg_class;
SELECT signal, value IS NOT NULL AS measured, status <> 'no data' AS has_data
  FROM apiscale.scaling_signals WHERE signal = 'cache_hit_rate_pct';

-- pool utilization: no data until a pooler reports; 9 of 10 in use warns.
SELECT apiscale.reset();
SELECT signal, status FROM apiscale.scaling_signals WHERE signal = 'pool_utilization_pct';
SELECT apiscale.report_pool('shop', 8, 2, 3, 0, 0);
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'pool_utilization_pct';
SELECT apiscale.report_pool('shop', 8, 2, 9, 4, 1);
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'pool_utilization_pct';
-- The signal is the peak in the window: a quieter report does not hide it.
SELECT apiscale.report_pool('shop', 8, 2, 2, 0, 1);
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'pool_utilization_pct';
-- Several pools: the busiest counts.  overflow -1 means no limit.
SELECT apiscale.report_pool('reports', 5, -1, 1, 0, 0);
SELECT signal, value, status FROM apiscale.scaling_signals WHERE signal = 'pool_utilization_pct';
-- Each pool's latest report.
SELECT pool, size, overflow, in_use, waiting, timeouts, reported_at <= now() AS reported
  FROM apiscale.pool_reports;
-- Bad numbers are refused.
SELECT apiscale.report_pool('shop', -1, 0, 0, 0, 0);
SELECT apiscale.report_pool('shop', 8, 2, 11, 0, 0);
SELECT apiscale.report_pool('', 1, 0, 0, 0, 0);
-- Only trusted roles may report.
CREATE ROLE regress_signals_user;
SET ROLE regress_signals_user;
SELECT apiscale.report_pool('shop', 1, 0, 1, 0, 0);
SELECT count(*) AS signals FROM apiscale.scaling_signals;
RESET ROLE;
DROP ROLE regress_signals_user;

-- The report: its sections, and no line wider than 120 columns.
SELECT count(*) FILTER (WHERE line LIKE '== %') AS sections,
       max(length(line)) <= 120 AS narrow,
       bool_or(line LIKE '%WARNING  pool_utilization_pct%') AS pool_warning_first
  FROM apiscale.report() AS line;
SELECT line FROM apiscale.report() AS line WHERE line LIKE '== %';
SELECT apiscale.reset();
