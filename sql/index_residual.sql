--
-- Index advice beside an existing index: Index Scans, Index Only Scans and
-- Bitmap Heap Scans that read rows to throw them away, and lossy bitmaps.
-- Every advised index is created for real (proof.*, see index_proof).
--
SET apiscale.sample_rate = 1.0;
SET apiscale.min_table_rows = 1000;
SET apiscale.min_improvement_pct = 30;
SET max_parallel_workers_per_gather = 0;
SET jit = off;

CREATE SCHEMA resid;
SET search_path = resid, public;

-- 30,000 rows: ANALYZE reads them all, so the statistics, the costs and
-- the verdicts are the same on every run.  1% of the orders are pending.
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id int NOT NULL,
  status text NOT NULL,
  amount numeric NOT NULL,
  created_at timestamptz NOT NULL
);
INSERT INTO orders
  SELECT g, 1 + g % 3000,
         CASE WHEN g % 100 = 0 THEN 'pending'
              ELSE (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4] END,
         (g % 1000) / 10.0,
         timestamptz '2026-01-01' + g * interval '1 minute'
    FROM generate_series(1, 30000) g;
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_customer ON orders (customer_id);
VACUUM ANALYZE orders;
SELECT apiscale.reset();

-- 1. WHERE status = ... ORDER BY created_at DESC LIMIT 5 walks the index on
--    created_at backwards and filters status: (status, created_at DESC),
--    measured against the plan that uses orders_created.
SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at DESC LIMIT 5;
SELECT relation, columns, reasons, existing_index, rows_filtered, verdict, detail
  FROM apiscale.index_candidates WHERE NOT 'index-only' = ANY (reasons);
SELECT proof.before($$SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at DESC LIMIT 5$$,
                    (SELECT rows_filtered FROM apiscale.index_advice
                      WHERE existing_index = 'orders_created'::regclass
                        AND NOT 'index-only' = ANY (reasons))) AS before \gset
SELECT ddl FROM apiscale.index_advice
 WHERE existing_index = 'orders_created'::regclass AND NOT 'index-only' = ANY (reasons) \gexec
SELECT * FROM proof.check($$SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at DESC LIMIT 5$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT apiscale.reset();

-- ... near miss: a filter that removes little (1 row in 4 is paid): the
--     same candidate, which the planner does not take over orders_created.
SELECT id FROM orders WHERE status = 'paid' ORDER BY created_at DESC LIMIT 5;
SELECT relation, columns, rows_filtered, verdict
  FROM apiscale.index_candidates WHERE NOT 'index-only' = ANY (reasons);
SELECT count(*) AS advice FROM apiscale.index_advice;
SELECT apiscale.reset();

-- 2. A Bitmap Heap Scan through orders_customer whose filter removes rows:
--    the filter's equality column first, then the scan's range key.
SELECT count(*) FROM orders WHERE customer_id BETWEEN 100 AND 400 AND status = 'pending';
SELECT relation, columns, reasons, existing_index, rows_filtered, verdict, detail
  FROM apiscale.index_candidates;
SELECT proof.before($$SELECT count(*) FROM orders WHERE customer_id BETWEEN 100 AND 400 AND status = 'pending'$$,
                    (SELECT rows_filtered FROM apiscale.index_advice)) AS before \gset
SELECT ddl FROM apiscale.index_advice \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE customer_id BETWEEN 100 AND 400 AND status = 'pending'$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT apiscale.reset();

-- ... near miss: a filter that removes nothing is no evidence.
SELECT count(*) FROM orders WHERE customer_id BETWEEN 100 AND 400 AND amount >= 0;
SELECT count(*) AS candidates FROM apiscale.index_candidates;
SELECT apiscale.reset();

-- 3. An Index Only Scan filtering on an INCLUDE column (which it cannot
--    search): that column first, then the scan's key.
CREATE INDEX orders_customer_amount ON orders (customer_id) INCLUDE (amount);
SET enable_bitmapscan = off;
SELECT count(*) FROM orders WHERE customer_id > 2000 AND amount = 5;
SELECT relation, columns, reasons, existing_index, rows_filtered, verdict
  FROM apiscale.index_candidates;
SELECT proof.before($$SELECT count(*) FROM orders WHERE customer_id > 2000 AND amount = 5$$,
                    (SELECT rows_filtered FROM apiscale.index_advice)) AS before \gset
SELECT ddl FROM apiscale.index_advice \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE customer_id > 2000 AND amount = 5$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
RESET enable_bitmapscan;
DROP INDEX orders_customer_amount;
SELECT apiscale.reset();

-- 4. A bitmap that outgrew work_mem: its pages went lossy, and the recheck
--    threw rows away.  That is reported as what it is, never as an index.
--    (2,000 pages of wide rows: more than a 64 kB bitmap holds exactly;
--    the filter, which removes nothing, has the run count its rows.)
CREATE TABLE wide (id int, k int, filler text);
INSERT INTO wide SELECT g, g % 1000, repeat('x', 500) FROM generate_series(1, 30000) g;
CREATE INDEX wide_k ON wide (k);
VACUUM ANALYZE wide;
SELECT apiscale.reset();
SET work_mem = '64kB';
SET enable_seqscan = off;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SELECT count(*) FROM wide WHERE k BETWEEN 100 AND 900 AND id > 0;
RESET work_mem;
RESET enable_seqscan;
RESET enable_indexscan;
RESET enable_indexonlyscan;
SELECT relation, columns, ddl, existing_index, rows_filtered > 0 AS rechecked, verdict,
       regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail
  FROM apiscale.index_candidates;
SELECT count(*) AS advice FROM apiscale.index_advice;
SELECT apiscale.reset();

DROP SCHEMA resid CASCADE;
