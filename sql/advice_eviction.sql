-- Runs on a server started with apiscale.max_advice_queries = 10: a full
-- evidence table evicts the statements that wasted the least, in batches,
-- keeps the most wasteful one, and never raises an error.
CREATE EXTENSION apiscale;
SHOW apiscale.max_advice_queries;
SET apiscale.min_table_rows = 100;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE wide (id int, a int, b int, c int);
INSERT INTO wide SELECT g, g % 100, g % 37, g % 11 FROM generate_series(1, 20000) g;
ANALYZE wide;
SELECT apiscale.reset();

-- One wasteful statement, run often: 20000 rows read for a handful.
\set ECHO none
\o /dev/null
SELECT 'SELECT count(*) FROM wide WHERE a = 5 AND b = 7' FROM generate_series(1, 20) \gexec
-- 60 distinct statements (different column sets and shapes), run once.
SELECT format('SELECT count(*) FROM wide WHERE id %s %s AND c = 3', op, k)
  FROM generate_series(1, 20) k, unnest(ARRAY['<', '>', '<=']) op \gexec
\o
\set ECHO all

SELECT count(*) <= 10 AS within_limit FROM
  (SELECT DISTINCT example_queryid FROM apiscale.index_candidates) s;
SELECT relation, columns, reasons, verdict, scans FROM apiscale.index_candidates
 WHERE columns = '{a,b}';
DROP TABLE wide;
DROP EXTENSION apiscale;
