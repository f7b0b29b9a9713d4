-- Slow runs keep their EXPLAIN ANALYZE text; fast runs keep nothing.
SELECT apiscale.reset();
SET apiscale.slow_query_ms = 100;

-- Below the threshold.
SELECT count(*) FROM items WHERE price > 10;
-- Above it.
SELECT count(*) FROM items i JOIN items j ON i.id = j.id, pg_sleep(0.15)
 WHERE i.price > 0;

SELECT query, calls, slow_calls, last_slow_ms >= 150 AS took_long,
       last_slow_at IS NOT NULL AS has_time,
       last_slow_plan LIKE '%actual rows=%' AS has_actual_rows,
       last_slow_plan LIKE '%actual time=%' AS has_node_timing
  FROM apiscale.slow_queries ORDER BY query COLLATE "C";

-- The plan itself (costs and memory masked).
SELECT regexp_replace(regexp_replace(last_slow_plan,
         'cost=[0-9.]+ rows=[0-9]+ width=[0-9]+', 'cost=...', 'g'),
         'Memory Usage: [0-9]+kB', 'Memory Usage: NkB', 'g') AS plan
  FROM apiscale.slow_queries WHERE query LIKE '%pg_sleep%';

-- The fast statement is tracked but not slow.
SELECT query, calls, slow_calls FROM apiscale.queries
 WHERE query LIKE '%price > $1' ORDER BY query COLLATE "C";

-- plan_timing adds per-node timers to the plan of the next slow run.
SET apiscale.plan_timing = on;
SELECT count(*) FROM items i JOIN items j ON i.id = j.id, pg_sleep(0.15)
 WHERE i.price > 0;
SELECT slow_calls, last_slow_plan LIKE '%actual time=%' AS has_node_timing
  FROM apiscale.slow_queries WHERE query LIKE '%pg_sleep%';
RESET apiscale.plan_timing;

-- An unsampled slow run keeps an estimated plan, marked as such.
SET apiscale.sample_rate = 0;
SELECT count(*) FROM items, pg_sleep(0.12) WHERE id < 3;
SELECT last_slow_plan LIKE '%actual rows=%' AS has_actual_rows,
       last_slow_plan LIKE '%estimates only%' AS marked_estimated
  FROM apiscale.slow_queries WHERE query LIKE '%id < $2';
RESET apiscale.sample_rate;

-- capture_plans = off: slow runs are counted, no plan is kept.
SET apiscale.capture_plans = off;
SELECT count(*) FROM items, pg_sleep(0.12) WHERE id < 4 AND price > 0;
SELECT slow_calls, last_slow_plan IS NULL AS no_plan
  FROM apiscale.slow_queries WHERE query LIKE '%AND price > $%';
RESET apiscale.capture_plans;

-- slow_query_ms = -1 turns slow-run capture off.
SET apiscale.slow_query_ms = -1;
SELECT count(*) FROM items, pg_sleep(0.12) WHERE id < 5 AND price >= 0;
SELECT calls, slow_calls FROM apiscale.queries
 WHERE query LIKE '%price >= $%';
RESET apiscale.slow_query_ms;

-- Statements run by a top-level DO are sampled with it, whatever the
-- previous statement decided.
SET apiscale.track = 'all';
SELECT apiscale.reset();
SET apiscale.slow_query_ms = 0;
SET apiscale.sample_rate = 0;
SELECT 1 AS unsampled;
RESET apiscale.sample_rate;
DO $$ BEGIN PERFORM count(*) FROM items WHERE id = 3; END $$;
SELECT last_slow_plan LIKE '%actual rows=%' AS has_actual_rows
  FROM apiscale.slow_queries WHERE query LIKE '%FROM items WHERE id = $1';
RESET apiscale.slow_query_ms;
RESET apiscale.track;

-- A plan that cannot be explained (the statement dropped its own function)
-- costs the plan, never the statement.
CREATE FUNCTION selfdrop() RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
    DROP FUNCTION selfdrop();
    RETURN true;
END
$$;
SET apiscale.slow_query_ms = 0;
SELECT 1 AS one WHERE selfdrop();
RESET apiscale.slow_query_ms;
SELECT count(*) AS selfdrop_left FROM pg_proc WHERE proname = 'selfdrop';

-- A statement that has always run in under half of slow_query_ms does not
-- count rows per node; its first slow run keeps an estimated plan, marked
-- as such, and the runs after it are counted again.
SELECT apiscale.reset();
SET apiscale.slow_query_ms = 100;
SELECT count(*) FROM items, pg_sleep(0.0) WHERE id < 6;
SELECT count(*) FROM items, pg_sleep(0.0) WHERE id < 6;
SELECT count(*) FROM items, pg_sleep(0.12) WHERE id < 6;
SELECT slow_calls, last_slow_plan LIKE '%actual rows=%' AS has_actual_rows,
       last_slow_plan LIKE '%first slow run%' AS marked_first
  FROM apiscale.slow_queries WHERE query LIKE '%WHERE id < $2';
SELECT count(*) FROM items, pg_sleep(0.12) WHERE id < 6;
SELECT slow_calls, last_slow_plan LIKE '%actual rows=%' AS has_actual_rows
  FROM apiscale.slow_queries WHERE query LIKE '%WHERE id < $2';
RESET apiscale.slow_query_ms;
