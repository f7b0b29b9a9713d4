-- Latency percentiles.
--
-- 1. The histogram against exact percentiles (percentile_disc) on known
--    distributions: every estimate within 5%, and within the documented
--    bound of 1/32 (3.125%).
SELECT setseed(0.42);
CREATE TEMP TABLE dist AS
SELECT 'uniform 0-100ms' AS name, 100 * random() + 0.001 AS ms
  FROM generate_series(1, 20000)
UNION ALL
SELECT 'log-uniform 50us-5s', exp(ln(0.05) + (ln(5000) - ln(0.05)) * random())
  FROM generate_series(1, 20000)
UNION ALL
SELECT 'bimodal 95% ~2ms, 5% ~300ms',
       CASE WHEN random() < 0.95 THEN 1.5 + random() ELSE 250 + 100 * random() END
  FROM generate_series(1, 20000)
UNION ALL
SELECT 'exponential mean 20ms', -20 * ln(1 - random())
  FROM generate_series(1, 20000)
UNION ALL
SELECT 'sub-millisecond', 0.02 + 0.5 * random()
  FROM generate_series(1, 20000);

WITH exact AS (
    SELECT name,
           array_agg(ms) AS vals,
           percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms) AS p
      FROM dist GROUP BY name
), est AS (
    SELECT name, p,
           apiscale.histogram_percentiles(vals, ARRAY[0.5, 0.95, 0.99]) AS e
      FROM exact
)
SELECT name,
       bool_and(abs(e[i] - p[i]) <= 0.05 * p[i]) AS within_5pct,
       bool_and(abs(e[i] - p[i]) <= p[i] / 32 + 0.0005) AS within_bound
  FROM est, generate_series(1, 3) i
 GROUP BY name ORDER BY name;

-- Edge cases: one value, min/max clamping, bad fractions.
SELECT apiscale.histogram_percentiles(ARRAY[7.0], ARRAY[0.5, 0.99]);
SELECT apiscale.histogram_percentiles(ARRAY[1e9, 2e9], ARRAY[1.0]);
SELECT apiscale.histogram_percentiles(ARRAY[]::float8[], ARRAY[0.5]);
SELECT apiscale.histogram_percentiles(ARRAY[1.0], ARRAY[0]);
SELECT apiscale.histogram_percentiles(ARRAY[-1.0], ARRAY[0.5]);

-- 2. End to end: 40 runs of one statement, 38 sleeping 2 ms and 2 (5%)
--    sleeping 50 ms.  Sleeps never end early, so p99 must be >= 50 ms
--    less the error bound, and p50 far below it.
SET apiscale.track = 'all';
SELECT apiscale.reset();
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        PERFORM pg_sleep(CASE WHEN i % 20 = 0 THEN 0.05 ELSE 0.002 END);
    END LOOP;
END
$$;
SELECT calls,
       p50_ms >= 2 * (1 - 1/32.0) AND p50_ms < 25 AS p50_ok,
       p95_ms < 25 AS p95_ok,
       p99_ms >= 50 * (1 - 1/32.0) AS p99_ok,
       p99_ms <= max_ms AS p99_le_max,
       min_ms >= 2 AS min_ok
  FROM apiscale.queries WHERE query LIKE '%pg_sleep%';
RESET apiscale.track;
