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
