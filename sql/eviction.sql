-- Runs on a server started with apiscale.max_queries = 100: a full table
-- evicts the least-used entries in batches, keeps the busiest ones, and
-- never raises an error.
CREATE EXTENSION apiscale;
SHOW apiscale.max_queries;
CREATE TABLE ev1 (id int); CREATE TABLE ev2 (id int); CREATE TABLE ev3 (id int);
CREATE TABLE ev4 (id int); CREATE TABLE ev5 (id int);
SELECT apiscale.reset();

-- Five busy statements, 50 runs each.
\set ECHO none
\o /dev/null
SELECT format('SELECT count(*) FROM ev%s', t)
  FROM generate_series(1, 50) r, generate_series(1, 5) t \gexec
-- 400 distinct one-off statements (IN lists of different lengths).
SELECT format('SELECT count(*) FROM ev1 WHERE id IN (%s)',
              (SELECT string_agg(i::text, ',') FROM generate_series(1, k) i))
  FROM generate_series(1, 400) k \gexec
\o
\set ECHO all

SELECT entries <= max_queries AS within_limit, evicted >= 300 AS evicted_many
  FROM apiscale.info();
SELECT query, calls, errors FROM apiscale.queries
 WHERE query ~ '^SELECT count\(\*\) FROM ev[0-9]$' ORDER BY query;
SELECT count(*) <= 100 AS view_within_limit FROM apiscale.queries;
DROP EXTENSION apiscale;
