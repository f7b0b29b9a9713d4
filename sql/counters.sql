-- Exact counters for a scripted workload, and normalized query text.
CREATE TABLE items (id int PRIMARY KEY, category text, price numeric);
INSERT INTO items SELECT g, 'c' || (g % 10), g * 1.5
  FROM generate_series(1, 1000) g;
VACUUM ANALYZE items;

SELECT apiscale.reset();
SELECT id FROM items WHERE id = 1;
SELECT id FROM items WHERE id = 2;
SELECT id FROM items WHERE id = -3;
SELECT count(*) FROM items WHERE category = 'c1';
SELECT count(*) FROM items WHERE category = 'c2';
UPDATE items SET price = price + 1 WHERE id <= 5;
SELECT 'multi' AS first \; SELECT 42 AS second;
SELECT id FROM items WHERE id > -5 AND category = 'it''s' /* comment */ LIMIT 2;

-- PREPARE / EXECUTE count at the level of the EXECUTE.
PREPARE by_cat(text) AS SELECT count(*) FROM items WHERE category = $1 AND price > 0;
EXECUTE by_cat('c3');
EXECUTE by_cat('c4');

SELECT query, calls, rows, errors, slow_calls
  FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%'
 ORDER BY query COLLATE "C";

-- Timing columns are consistent with each other.
SELECT query,
       total_ms > 0 AS timed,
       min_ms <= mean_ms AND mean_ms <= max_ms AS mean_in_range,
       abs(total_ms - mean_ms * calls) < 0.001 * total_ms + 0.001 AS total_is_sum,
       min_ms <= p50_ms AND p50_ms <= p95_ms AND p95_ms <= p99_ms
         AND p99_ms <= max_ms AS percentiles_ordered,
       stddev_ms >= 0 AS stddev_ok,
       first_seen <= last_seen AS seen_ordered,
       shared_blks_hit + shared_blks_read > 0 AS touched_buffers
  FROM apiscale.queries
 WHERE query LIKE '%FROM items%' AND query NOT LIKE '%apiscale%'
 ORDER BY query COLLATE "C";

-- One row per (userid, dbid, queryid).
SELECT count(*) = count(DISTINCT (userid, dbid, queryid)) AS unique_keys
  FROM apiscale.queries;

-- reset() forgets everything.
SELECT apiscale.reset();
SELECT count(*) AS left_after_reset
  FROM apiscale.queries WHERE query LIKE '%FROM items%';
SELECT reset_at > now() - interval '1 minute' AS reset_recorded,
       evicted FROM apiscale.info();
