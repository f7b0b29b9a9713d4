--
-- The write side of an index: apiscale.table_writes counts the rows each
-- statement kind writes per table, and an advised index whose upkeep the
-- table's writes would not pay for stays in the advice as "not worth it".
--
SET apiscale.sample_rate = 1.0;
SET apiscale.min_table_rows = 1000;
SET apiscale.min_improvement_pct = 30;
SET max_parallel_workers_per_gather = 0;
SET jit = off;

CREATE SCHEMA wr;
SET search_path = wr, public;

-- Rates depend on the clock; the counts and the verdicts do not.
CREATE VIEW writes AS
  SELECT relation, inserted, updated, deleted, copied, truncated,
         writes_per_s > 0 AS rated
    FROM apiscale.table_writes WHERE relation::text NOT LIKE 'pg_%';

CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE w (id int PRIMARY KEY, v int, parent int REFERENCES parent ON DELETE CASCADE);
CREATE TABLE src (id int, v int);
CREATE TABLE parts (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
CREATE FUNCTION add_two() RETURNS void LANGUAGE sql
  AS $$ INSERT INTO w VALUES (1001, 0, NULL), (1002, 0, NULL) $$;
INSERT INTO parent SELECT g FROM generate_series(1, 10) g;
SELECT apiscale.reset();

-- 1. Exact counts, by statement kind.
INSERT INTO w SELECT g, g, 1 + g % 10 FROM generate_series(1, 100) g;   -- 100 inserted
UPDATE w SET v = v + 1 WHERE id <= 30;                                    -- 30 updated
DELETE FROM w WHERE id > 90;                                              -- 10 deleted
INSERT INTO src SELECT g, -g FROM generate_series(81, 95) g;
MERGE INTO w USING src ON w.id = src.id
  WHEN MATCHED AND src.id <= 85 THEN DELETE                               -- 5 deleted
  WHEN MATCHED THEN UPDATE SET v = src.v                                  -- 5 updated
  WHEN NOT MATCHED THEN INSERT VALUES (src.id, src.v, NULL);              -- 5 inserted
COPY w FROM stdin;
2001	1	\N
2002	2	\N
2003	3	\N
\.
INSERT INTO w VALUES (1, 0, NULL) ON CONFLICT (id) DO UPDATE SET v = 7;   -- 1 (an upsert)
SELECT add_two();                                                         -- 2, from a function
DELETE FROM parent WHERE id = 1;                                          -- and its cascade
INSERT INTO parts SELECT g, date '2026-01-01' + g FROM generate_series(1, 300) g;  -- the root
INSERT INTO w VALUES (1, 0, NULL);                                        -- fails: not counted
WITH moved AS (DELETE FROM src RETURNING *) SELECT count(*) FROM moved;   -- a writable CTE: not counted
TRUNCATE src, parts;                                                      -- once each, no rows
SELECT * FROM writes ORDER BY relation::text;
SELECT apiscale.reset();
SELECT count(*) AS after_reset FROM writes;

-- 2. A write-heavy table: one read would be served by an index on k, but
--    20,000 rows updated since cost the index more than the read saves.
CREATE TABLE hot (id int PRIMARY KEY, k int, v int);
INSERT INTO hot SELECT g, g % 500, 0 FROM generate_series(1, 20000) g;
ANALYZE hot;
CREATE TABLE calm (id int PRIMARY KEY, k int, v int);
INSERT INTO calm SELECT g, g % 500, 0 FROM generate_series(1, 20000) g;
ANALYZE calm;
SELECT apiscale.reset();
SELECT count(*) FROM hot WHERE k = 5;
UPDATE hot SET v = v + 1;
SELECT count(*) FROM calm WHERE k = 5;
SELECT relation, columns, verdict, writes_per_s > 0 AS written,
       est_maintenance_per_s > est_savings_per_s AS costs_more,
       regexp_replace(detail, '[0-9.]+', 'N', 'g') AS detail
  FROM apiscale.index_advice ORDER BY relation::text;
SELECT line FROM apiscale.report() AS line WHERE line LIKE '%not worth it%';
-- The calm table's index, for real.
SELECT proof.before($$SELECT count(*) FROM calm WHERE k = 5$$,
                    (SELECT rows_filtered FROM apiscale.index_advice
                      WHERE relation = 'calm'::regclass)) AS before \gset
SELECT ddl FROM apiscale.index_advice WHERE verdict = 'recommended' \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM calm WHERE k = 5$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;

-- 3. More reads change the balance: 200 reads of the hot table save more
--    than its updates cost.
--    (Always k = 5, the partial variant comes too, and it costs the
--    updates that much less.)
\set ECHO none
\o /dev/null
SELECT 'SELECT count(*) FROM hot WHERE k = 5' FROM generate_series(1, 200) \gexec
\o
\set ECHO all
SELECT relation, columns, predicate, verdict FROM apiscale.index_advice
 WHERE relation = 'hot'::regclass ORDER BY predicate NULLS FIRST;
SELECT apiscale.reset();

DROP SCHEMA wr CASCADE;
