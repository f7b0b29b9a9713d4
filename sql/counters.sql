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

-- A statement whose entry disappeared comes back through a cached plan,
-- without a new parse: its text is still normalized, never a literal.
PREPARE not_this(int) AS SELECT count(*) FROM items WHERE id <> 99999 AND id > $1;
EXECUTE not_this(0);
SELECT apiscale.reset();
EXECUTE not_this(0);
SELECT query, calls FROM apiscale.queries WHERE query LIKE '%<>%';
DEALLOCATE not_this;

-- The scanner settings may change between parsing and normalizing (a SET
-- earlier in the same query string): no error, no literal.
SELECT apiscale.reset();
SET backslash_quote = off \; SELECT E'a\'b' AS bq, 1 AS one;
RESET backslash_quote;
SET standard_conforming_strings = off \; SELECT 'a\', 5, 'zsecret' AS y;
RESET standard_conforming_strings;
SELECT query FROM apiscale.queries
 WHERE query LIKE '%AS bq%' OR query LIKE '%AS y%' ORDER BY query COLLATE "C";
SELECT count(*) AS leaked FROM apiscale.queries
 WHERE query LIKE '%zsecret%' OR query LIKE '%a\\''b%';

-- rows adds up every run of a portal: a PL/pgSQL FOR loop fetches its
-- query in batches of 10.
SET apiscale.track = 'all';
SELECT apiscale.reset();
DO $$
DECLARE r record; n int := 0;
BEGIN
    FOR r IN SELECT id FROM items WHERE id <= 35 LOOP n := n + 1; END LOOP;
END
$$;
SELECT query, calls, rows FROM apiscale.queries WHERE query LIKE '%id <= $1%';
RESET apiscale.track;
