--
-- Expression indexes: quals on an immutable expression of one table's
-- columns give CREATE INDEX ... ((expression)), proven by a re-plan and
-- then for real; an expression that is not immutable is not indexable.
--
SET apiscale.sample_rate = 1.0;
SET apiscale.min_table_rows = 1000;
SET apiscale.min_improvement_pct = 30;
SET max_parallel_workers_per_gather = 0;
SET jit = off;

CREATE SCHEMA expr;
SET search_path = expr, public;

CREATE TABLE users (
  id int PRIMARY KEY,
  email text NOT NULL,
  payload jsonb NOT NULL,
  seen timestamp NOT NULL,
  created_at timestamptz NOT NULL
);
INSERT INTO users
  SELECT g, 'User' || g || '@Example.com', jsonb_build_object('id', g::text, 'k', g % 7),
         timestamp '2026-01-01' + g * interval '7 minutes',
         timestamptz '2026-01-01' + g * interval '7 minutes'
    FROM generate_series(1, 30000) g;
ANALYZE users;
SELECT apiscale.reset();

-- 1. lower(email) = ...
SELECT id FROM users WHERE lower(email) = 'user77@example.com';
SELECT relation, columns, reasons, ddl, verdict FROM apiscale.index_candidates;
SELECT proof.before($$SELECT id FROM users WHERE lower(email) = 'user77@example.com'$$,
                    (SELECT rows_filtered FROM apiscale.index_advice)) AS before \gset
SELECT ddl FROM apiscale.index_advice \gexec
SELECT * FROM proof.check($$SELECT id FROM users WHERE lower(email) = 'user77@example.com'$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT apiscale.reset();

-- 2. payload->>'id' = ... (an operator expression), through a prepared
--    statement's parameter
PREPARE by_key(text) AS SELECT id FROM users WHERE payload->>'id' = $1;
EXECUTE by_key('77');
SELECT relation, columns, reasons, ddl, verdict FROM apiscale.index_candidates;
SELECT proof.before($$EXECUTE by_key('77')$$,
                    (SELECT rows_filtered FROM apiscale.index_advice)) AS before \gset
SELECT ddl FROM apiscale.index_advice \gexec
SELECT * FROM proof.check($$EXECUTE by_key('77')$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
DEALLOCATE by_key;
SELECT apiscale.reset();

-- 3. date_trunc('day', timestamp) as a range
SELECT count(*) FROM users
 WHERE date_trunc('day', seen) >= '2026-01-05' AND date_trunc('day', seen) < '2026-01-06';
SELECT relation, columns, reasons, ddl, verdict FROM apiscale.index_candidates;
SELECT proof.before($$SELECT count(*) FROM users WHERE date_trunc('day', seen) >= '2026-01-05' AND date_trunc('day', seen) < '2026-01-06'$$,
                    (SELECT rows_filtered FROM apiscale.index_advice)) AS before \gset
SELECT ddl FROM apiscale.index_advice \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM users WHERE date_trunc('day', seen) >= '2026-01-05' AND date_trunc('day', seen) < '2026-01-06'$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT apiscale.reset();

-- 4. Near misses: date_trunc on a timestamptz depends on TimeZone (stable),
--    random() is volatile: not indexable, with the function that says why.
SELECT count(*) FROM users WHERE date_trunc('day', created_at) = '2026-01-05';
SELECT count(*) FROM users WHERE id + random() * 0 < 0;
SELECT relation, columns, ddl, verdict, detail FROM apiscale.index_candidates
 ORDER BY columns::text;
SELECT count(*) AS advice FROM apiscale.index_advice;
SELECT apiscale.reset();

-- 5. An existing expression index covers the same expression.
SELECT id FROM users WHERE lower(email) = 'user78@example.com';
CREATE INDEX users_lower_email ON users (lower(email));
SELECT relation, columns, verdict, detail FROM apiscale.index_candidates;
DROP INDEX users_lower_email;
SELECT apiscale.reset();

-- 6. An expression over a partitioned table whose partitions number their
--    columns apart: the index goes on the root, its columns named.
CREATE TABLE events (id int, kind int, at date, payload text) PARTITION BY RANGE (at);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE events_2 (payload text, at date, kind int, id int);
ALTER TABLE events ATTACH PARTITION events_2 FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
INSERT INTO events SELECT g, g % 100, date '2026-01-01' + (g % 365), 'P' || g
  FROM generate_series(1, 20000) g;
ANALYZE events;
SELECT apiscale.reset();
SELECT count(*) FROM events WHERE lower(payload) = 'p77';
SELECT relation, columns, ddl, verdict FROM apiscale.index_candidates;
SELECT proof.before($$SELECT count(*) FROM events WHERE lower(payload) = 'p77'$$,
                    (SELECT rows_filtered FROM apiscale.index_advice)) AS before \gset
SELECT ddl FROM apiscale.index_advice \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM events WHERE lower(payload) = 'p77'$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT apiscale.reset();

DROP SCHEMA expr CASCADE;
