--
-- Covering indexes: an Index Scan whose heap fetches dominate, for a few
-- narrow columns the index lacks, gets the same index with INCLUDE (...),
-- for an index-only scan; the table's all-visible share decides whether
-- that pays.
--
SET apiscale.sample_rate = 1.0;
SET apiscale.min_table_rows = 1000;
SET apiscale.min_improvement_pct = 30;
SET max_parallel_workers_per_gather = 0;
SET jit = off;
-- Index scans, not bitmaps: the case a covering index is about.
SET enable_bitmapscan = off;
-- VACUUM marks a page all-visible only once its rows' commits are flushed
-- (the test cluster runs with synchronous_commit = off).
SET synchronous_commit = on;

CREATE SCHEMA cover;
SET search_path = cover, public;

-- Accounts scattered over the table: each account's rows are on as many
-- pages as it has rows.
CREATE TABLE items (
  id int PRIMARY KEY,
  account int NOT NULL,
  price int NOT NULL,
  qty int NOT NULL,
  sku text NOT NULL,
  title text NOT NULL,
  added date NOT NULL
);
INSERT INTO items
  SELECT g, (g * 7919) % 1000, g % 500, g % 7, 'sku-' || g % 300,
         repeat('t', 200) || g, date '2026-01-01' + g % 90
    FROM generate_series(1, 30000) g;
CREATE INDEX items_account ON items (account);
VACUUM ANALYZE items;
SELECT apiscale.reset();

-- 1. Two narrow columns beyond the key: (account) INCLUDE (price, qty);
--    the heap fetches it would save, measured.
SELECT sum(price * qty) FROM items WHERE account BETWEEN 10 AND 14;
SELECT relation, columns, include, reasons, existing_index, rows_filtered, verdict, detail
  FROM apiscale.index_candidates;
SELECT proof.before($$SELECT sum(price * qty) FROM items WHERE account BETWEEN 10 AND 14$$,
                    (SELECT rows_filtered FROM apiscale.index_advice), 'heap_fetches') AS before \gset
SELECT ddl FROM apiscale.index_advice \gexec
SELECT * FROM proof.check($$SELECT sum(price * qty) FROM items WHERE account BETWEEN 10 AND 14$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT apiscale.reset();

-- 2. Near miss: a wide column (title, over 200 bytes) is not worth copying
--    into every index entry.
SELECT count(DISTINCT title) FROM items WHERE account BETWEEN 10 AND 14;
SELECT columns, include, verdict, detail FROM apiscale.index_candidates;
SELECT apiscale.reset();

-- 3. Near miss: more than three columns beyond the key: no candidate.
SELECT sum(price * qty), max(sku), max(added) FROM items WHERE account BETWEEN 10 AND 14;
SELECT count(*) AS candidates FROM apiscale.index_candidates;
SELECT apiscale.reset();

-- 4. The all-visible share: a table never vacuumed has none, so an
--    index-only scan would visit the heap anyway and the planner does not
--    take it; once VACUUM has run, it does.
CREATE TABLE fresh (LIKE items);
INSERT INTO fresh SELECT * FROM items;
CREATE INDEX fresh_account ON fresh (account);
ANALYZE fresh;
SELECT apiscale.reset();
SELECT sum(price * qty) FROM fresh WHERE account BETWEEN 10 AND 14;
SELECT columns, include, verdict, detail FROM apiscale.index_candidates;
VACUUM fresh;
SELECT columns, include, verdict, detail FROM apiscale.index_candidates;
SELECT apiscale.reset();

DROP SCHEMA cover CASCADE;
