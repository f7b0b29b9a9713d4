--
-- Index advice: evidence from sampled runs, candidates, hypothetical re-plan
--
SET apiscale.sample_rate = 1.0;
SET apiscale.min_table_rows = 1000;
SET apiscale.min_improvement_pct = 30;
SET max_parallel_workers_per_gather = 0;
SET jit = off;

CREATE SCHEMA adv;
SET search_path = adv, public;

CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, region int NOT NULL);
CREATE UNIQUE INDEX customers_email ON customers (email);
INSERT INTO customers
  SELECT g, 'user' || g || '@example.com', g % 50 FROM generate_series(1, 5000) g;

CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers,
  status text NOT NULL,
  amount numeric NOT NULL,
  created_at timestamptz NOT NULL,
  note text
);
INSERT INTO orders
  SELECT g, 1 + g % 5000,
         (ARRAY['new', 'paid', 'shipped', 'done', 'void', 'held', 'lost', 'back'])[1 + g % 8],
         (g % 1000) / 10.0,
         timestamptz '2026-01-01' + g * interval '1 minute',
         'note ' || g
    FROM generate_series(1, 50000) g;

-- A tiny table: never advised.
CREATE TABLE tiny (id int, code text);
INSERT INTO tiny SELECT g, 'c' || g FROM generate_series(1, 50) g;

ANALYZE customers, orders, tiny;

SELECT apiscale.reset();

-- 1. Single-column WHERE: orders.note = constant
SELECT count(*) FROM orders WHERE note = 'note 42';
SELECT relation, columns, reasons, ddl, queries, scans, rows_filtered,
       est_cost_after < est_cost_before AS cheaper,
       est_improvement_pct >= 30 AS improves
  FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE note = 'note 42'$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE note = 'note 42'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 2. Equality + range -> (eq, range)
SELECT count(*) FROM orders WHERE customer_id = 17 AND created_at >= '2026-01-10';
SELECT relation, columns, reasons, ddl FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE customer_id = 17 AND created_at >= '2026-01-10'$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE customer_id = 17 AND created_at >= '2026-01-10'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 3. WHERE status = $1 ORDER BY created_at DESC LIMIT 20 -> (status, created_at DESC)
--    via a prepared statement with a parameter.  status is not selective
--    (1 in 8), so the index is proven by the ORDER BY ... LIMIT.
PREPARE recent(text) AS
  SELECT id, created_at FROM orders WHERE status = $1 ORDER BY created_at DESC LIMIT 20;
EXECUTE recent('paid');
EXECUTE recent('paid');
EXECUTE recent('void');
SELECT relation, columns, reasons, ddl, queries, scans FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$EXECUTE recent('paid')$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice) / 3) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$EXECUTE recent('paid')$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
DEALLOCATE recent;
SELECT apiscale.reset();

-- 4. Foreign-key join without an index on the referencing column
SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id
 WHERE c.email = 'user77@example.com';
SELECT relation, columns, reasons, ddl FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.email = 'user77@example.com'$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.email = 'user77@example.com'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 5. An existing index: the planner uses it, no evidence, no advice
CREATE INDEX orders_note ON orders (note);
SELECT count(*) FROM orders WHERE note = 'note 42';
SELECT count(*) AS advice FROM apiscale.index_advice;
DROP INDEX orders_note;
SELECT apiscale.reset();

-- 6. Evidence gathered, then an index whose leading columns cover the
--    candidate is created: the candidate is dropped as covered.
SELECT count(*) FROM orders WHERE customer_id = 17;
SELECT relation, columns, verdict FROM apiscale.index_candidates;
CREATE INDEX orders_customer_created ON orders (customer_id, created_at);
SELECT relation, columns, verdict, detail FROM apiscale.index_candidates;
-- ... and after a reset the same statement leaves no evidence at all.
SELECT apiscale.reset();
SELECT count(*) FROM orders WHERE customer_id = 17;
SELECT count(*) AS candidates FROM apiscale.index_candidates;
DROP INDEX orders_customer_created;
SELECT apiscale.reset();

-- 7. A tiny table: no advice
SELECT * FROM tiny WHERE code = 'c7';
SELECT count(*) AS candidates FROM apiscale.index_candidates;
SELECT apiscale.reset();

-- 8. LIKE '%x%': reported as not indexable by btree, never advised
SELECT count(*) FROM orders WHERE note LIKE '%999%';
SELECT relation, columns, ddl, verdict, detail FROM apiscale.index_candidates;
SELECT count(*) AS advice FROM apiscale.index_advice;
SELECT apiscale.reset();

-- 9. A partitioned table: evidence on partitions, advice on the parent
CREATE TABLE events (id int, kind int, at date, payload text) PARTITION BY RANGE (at);
CREATE TABLE events_2026_1 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-05-01');
CREATE TABLE events_2026_2 PARTITION OF events FOR VALUES FROM ('2026-05-01') TO ('2026-09-01');
CREATE TABLE events_2026_3 (payload text, at date, kind int, id int);  -- columns in another order
ALTER TABLE events ATTACH PARTITION events_2026_3 FOR VALUES FROM ('2026-09-01') TO ('2027-01-01');
INSERT INTO events SELECT g, g % 1000, date '2026-01-01' + (g % 365), 'p' || g
  FROM generate_series(1, 30000) g;
ANALYZE events;
SELECT count(*) FROM events WHERE kind = 7;
SELECT relation, columns, reasons, ddl FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM events WHERE kind = 7$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM events WHERE kind = 7$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 10. A CTE and a correlated subquery
WITH big AS MATERIALIZED (SELECT * FROM orders WHERE amount = 12.5)
SELECT count(*) FROM big;
SELECT c.id, (SELECT max(o.amount) FROM orders o WHERE o.customer_id = c.id)
  FROM customers c WHERE c.id < 4 ORDER BY c.id;
SELECT relation, columns, reasons FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$WITH big AS MATERIALIZED (SELECT * FROM orders WHERE amount = 12.5) SELECT count(*) FROM big$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice WHERE columns = '{amount}')) AS before0 \gset
SELECT proof.before($$SELECT c.id, (SELECT max(o.amount) FROM orders o WHERE o.customer_id = c.id) FROM customers c WHERE c.id < 4$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice WHERE columns = '{customer_id}')) AS before1 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$WITH big AS MATERIALIZED (SELECT * FROM orders WHERE amount = 12.5) SELECT count(*) FROM big$$, :'before0');
SELECT * FROM proof.check($$SELECT c.id, (SELECT max(o.amount) FROM orders o WHERE o.customer_id = c.id) FROM customers c WHERE c.id < 4$$, :'before1');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 11. A parallel sequential scan (the leader's counts include the workers')
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT count(*) FROM orders WHERE amount = 7.5;
SELECT count(*) FROM orders WHERE amount = 7.5;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;
SELECT relation, columns, reasons, rows_filtered > 40000 AS workers_counted
  FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE amount = 7.5$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE amount = 7.5$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 12. apiscale.capture_parameters off: re-planned from the normalized text,
--     generically (the PREPARE's declared types, no values).
SET apiscale.capture_parameters = off;
PREPARE by_note(text) AS SELECT id FROM orders WHERE note = $1;
EXECUTE by_note('note 5');
SELECT relation, columns, verdict, detail FROM apiscale.index_candidates;
SELECT count(*) FROM orders WHERE customer_id = 99;
SELECT relation, columns, verdict, detail FROM apiscale.index_candidates
 ORDER BY columns::text;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$EXECUTE by_note('note 5')$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice WHERE columns = '{note}')) AS before0 \gset
SELECT proof.before($$SELECT count(*) FROM orders WHERE customer_id = 99$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice WHERE columns = '{customer_id}')) AS before1 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$EXECUTE by_note('note 5')$$, :'before0');
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE customer_id = 99$$, :'before1');
SELECT proof.drop_new(:'before0') AS dropped;
DEALLOCATE by_note;
RESET apiscale.capture_parameters;
SELECT apiscale.reset();

-- 13. sample_rate 0: nothing is instrumented, nothing collected
SET apiscale.sample_rate = 0;
SELECT count(*) FROM orders WHERE note = 'note 42';
SELECT count(*) AS candidates FROM apiscale.index_candidates;
SET apiscale.sample_rate = 1.0;

-- 14. Identifiers that need quoting
CREATE TABLE "Order Items" ("Item Id" int, "select" int, qty int);
INSERT INTO "Order Items" SELECT g, g % 300, g FROM generate_series(1, 20000) g;
ANALYZE "Order Items";
SELECT count(*) FROM "Order Items" WHERE "select" = 3;
SELECT columns, ddl FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM "Order Items" WHERE "select" = 3$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM "Order Items" WHERE "select" = 3$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 15. One statement, three needs on one table (a filter, a hash join key,
--     a top-N sort): candidates (customer_id, created_at DESC) and
--     (customer_id, amount) both prove themselves; only one is advised.
CREATE TABLE labels (amount numeric PRIMARY KEY, label text);
INSERT INTO labels SELECT g / 10.0, 'l' || g FROM generate_series(0, 199) g;
ANALYZE labels;
SELECT o.id, l.label FROM orders o JOIN labels l ON l.amount = o.amount
 WHERE o.customer_id = 42 ORDER BY o.created_at DESC LIMIT 5;
SELECT count(*) FILTER (WHERE verdict = 'recommended') AS recommended,
       count(*) FILTER (WHERE verdict = 'another candidate serves the same statements better'
                          AND detail LIKE 'in favour of (customer_id, %)') AS superseded,
       count(*) AS candidates
  FROM apiscale.index_candidates;
SELECT count(*) AS advice FROM apiscale.index_advice;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT o.id, l.label FROM orders o JOIN labels l ON l.amount = o.amount WHERE o.customer_id = 42 ORDER BY o.created_at DESC LIMIT 5$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT o.id, l.label FROM orders o JOIN labels l ON l.amount = o.amount WHERE o.customer_id = 42 ORDER BY o.created_at DESC LIMIT 5$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 16. Who sees and who re-plans what.  regress_adv_app runs a statement;
--     a pg_read_all_stats member sees the candidate but does not re-plan
--     another user's statement; a plain user sees nothing; the app sees
--     and re-plans its own; a superuser re-plans everyone's.
CREATE ROLE regress_adv_app;
CREATE ROLE regress_adv_stats IN ROLE pg_read_all_stats;
CREATE ROLE regress_adv_other;
GRANT USAGE ON SCHEMA adv TO regress_adv_app;
GRANT SELECT ON orders TO regress_adv_app;
SET ROLE regress_adv_app;
SELECT count(*) FROM orders WHERE note = 'note 9';
SET ROLE regress_adv_stats;
SELECT relation, columns, verdict FROM apiscale.index_candidates;
SET ROLE regress_adv_other;
SELECT count(*) AS candidates FROM apiscale.index_candidates;
SET ROLE regress_adv_app;
SELECT relation, columns, verdict FROM apiscale.index_candidates;
RESET ROLE;
SELECT relation, columns, verdict FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE note = 'note 9'$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE note = 'note 9'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();
REVOKE ALL ON orders FROM regress_adv_app;
REVOKE ALL ON SCHEMA adv FROM regress_adv_app;
DROP ROLE regress_adv_app, regress_adv_stats, regress_adv_other;

-- 17. A statement run by EXPLAIN ANALYZE (tracked with track = all) is
--     re-planned from the query inside the EXPLAIN.
SET apiscale.track = 'all';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT count(*) FROM orders WHERE note = 'nope';
RESET apiscale.track;
SELECT relation, columns, verdict, detail FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE note = 'nope'$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE note = 'nope'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 18. Literals are read with the session's DateStyle, not the reader's.
SET datestyle = 'SQL, DMY';
SELECT count(*) FROM orders WHERE created_at < '25/01/2026' AND status = 'x';
RESET datestyle;
SELECT relation, columns, verdict, detail FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE created_at < '2026-01-25' AND status = 'x'$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE created_at < '2026-01-25' AND status = 'x'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 19. A statement longer than apiscale.max_query_length is not kept for
--     re-planning, and says so.
\set ECHO none
SELECT format('SELECT count(*) FROM orders WHERE note = %L AND id NOT IN (%s)',
              'note 3', (SELECT string_agg(g::text, ',') FROM generate_series(100001, 100500) g))
\gexec
\set ECHO all
SELECT relation, columns, verdict, detail FROM apiscale.index_candidates;
SELECT apiscale.reset();

-- 20. An index with another operator class does not cover an ORDER BY.
CREATE INDEX orders_note_pattern ON orders (note text_pattern_ops);
SELECT id FROM orders ORDER BY note LIMIT 3;
SELECT relation, columns, reasons, verdict FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT id FROM orders ORDER BY note LIMIT 3$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT id FROM orders ORDER BY note LIMIT 3$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
DROP INDEX orders_note_pattern;
SELECT apiscale.reset();

-- 21. Two range columns: one candidate each; the selective one is advised.
SELECT count(*) FROM orders
 WHERE customer_id > 0 AND created_at < '2026-01-01 00:10+00';
SELECT relation, columns, verdict FROM apiscale.index_candidates
 ORDER BY columns::text;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE customer_id > 0 AND created_at < '2026-01-01 00:10+00'$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE customer_id > 0 AND created_at < '2026-01-01 00:10+00'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 22. An unindexable filter beside an indexable one is not reported; an
--     init plan's value is a constant (where, not join).
SELECT count(*) FROM orders WHERE note = 'note 5' AND id <> 1 AND id <> 2;
SELECT count(*) FROM orders WHERE note = (SELECT 'note ' || 6);
SELECT relation, columns, reasons, verdict, scans FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE note = 'note 5' AND id <> 1 AND id <> 2$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice) / 2) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE note = 'note 5' AND id <> 1 AND id <> 2$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 23. A column dropped after the evidence was gathered: the candidate goes.
CREATE TABLE shrinking (id int, a int, b int);
INSERT INTO shrinking SELECT g, g % 100, g FROM generate_series(1, 5000) g;
ANALYZE shrinking;
SELECT apiscale.reset();  -- the load is not the workload (see index_writes)
SELECT count(*) FROM shrinking WHERE a = 7;
SELECT relation, columns, verdict FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM shrinking WHERE a = 7$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM shrinking WHERE a = 7$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
ALTER TABLE shrinking DROP COLUMN a;
SELECT count(*) AS candidates FROM apiscale.index_candidates;
DROP TABLE shrinking;
SELECT apiscale.reset();

-- 24. One statement that scans the table twice (UNION ALL) needs two
--     indexes: neither replaces the other.
SELECT count(*) FROM (SELECT id FROM orders WHERE note = 'note 5'
                      UNION ALL SELECT id FROM orders WHERE amount = 3.5) s;
SELECT relation, columns, verdict FROM apiscale.index_candidates ORDER BY columns::text;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM (SELECT id FROM orders WHERE note = 'note 5' UNION ALL SELECT id FROM orders WHERE amount = 3.5) s$$,
                    (SELECT sum(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM (SELECT id FROM orders WHERE note = 'note 5' UNION ALL SELECT id FROM orders WHERE amount = 3.5) s$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 25. A range filter and a sort on the same columns are one index.
SELECT count(*) FROM orders WHERE customer_id = 5 AND created_at > '2026-01-10';
SELECT id FROM orders WHERE customer_id = 5 ORDER BY created_at DESC LIMIT 3;
SELECT relation, columns, reasons, queries, verdict FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT id FROM orders WHERE customer_id = 5 ORDER BY created_at DESC LIMIT 3$$,
                    (SELECT 50000 - 3)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT id FROM orders WHERE customer_id = 5 ORDER BY created_at DESC LIMIT 3$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 26. A statement merged into a longer candidate is still judged: the
--     re-plan sums the costs of the statements the candidate serves.
SELECT max(note) FROM orders WHERE status = 'x';
SELECT count(*) FROM orders WHERE status = 'new' AND amount > 1;
SELECT count(*) FROM orders WHERE status = 'new' AND amount > 1;
SELECT relation, columns, queries, verdict FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT max(note) FROM orders WHERE status = 'x'$$,
                    (SELECT 50000)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT max(note) FROM orders WHERE status = 'x'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 27. Parameter values are kept in a form that reads back under the
--     session's DateStyle.
SET datestyle = 'SQL, YMD';
PREPARE by_time(timestamptz) AS SELECT count(*) FROM orders WHERE created_at = $1;
EXECUTE by_time('2026-01-02 10:00+00');
DEALLOCATE by_time;
RESET datestyle;
SELECT relation, columns, verdict, detail FROM apiscale.index_candidates;
-- Proof: the advised index, created for real, is used and the rows read fall.
SELECT proof.before($$SELECT count(*) FROM orders WHERE created_at = '2026-01-02 10:00+00'$$,
                    (SELECT max(rows_filtered) FROM apiscale.index_advice)) AS before0 \gset
SELECT ddl FROM apiscale.index_advice ORDER BY ddl \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM orders WHERE created_at = '2026-01-02 10:00+00'$$, :'before0');
SELECT proof.drop_new(:'before0') AS dropped;
SELECT apiscale.reset();

-- 28. Values too wide for a btree entry: not indexable, and no DDL.
CREATE TABLE wide_t (id int, body text);
ALTER TABLE wide_t ALTER COLUMN body SET STORAGE EXTERNAL;  -- no compression
INSERT INTO wide_t SELECT g, (SELECT string_agg(md5((g * 1000 + i)::text), '')
                               FROM generate_series(1, 40) i)
  FROM generate_series(1, 2000) g;
ANALYZE wide_t;
SELECT count(*) FROM wide_t WHERE body = 'x';
SELECT columns, ddl IS NULL AS no_ddl, verdict, detail FROM apiscale.index_candidates;
DROP TABLE wide_t;
SELECT apiscale.reset();

DROP SCHEMA adv CASCADE;
