--
-- Partial indexes: a statement that always filters a column on the same
-- rare value (pg_stats: at most 5% of the rows) gets the partial variant
-- beside the full index, both re-planned; a prepared statement's generic
-- plan cannot use it, and the advice says so.
--
SET apiscale.sample_rate = 1.0;
SET apiscale.min_table_rows = 1000;
SET apiscale.min_improvement_pct = 30;
SET max_parallel_workers_per_gather = 0;
SET jit = off;

CREATE SCHEMA part;
SET search_path = part, public;

-- 1% pending, 24% new, 75% done.
CREATE TABLE tasks (
  id int PRIMARY KEY,
  status text NOT NULL,
  created_at timestamptz NOT NULL
);
INSERT INTO tasks
  SELECT g, CASE WHEN g % 100 = 0 THEN 'pending' WHEN g % 4 = 1 THEN 'new' ELSE 'done' END,
         timestamptz '2026-01-01' + g * interval '1 minute'
    FROM generate_series(1, 30000) g;
ANALYZE tasks;
SELECT apiscale.reset();

-- 1. Always 'pending' (three runs): the full index and the partial one.
SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10';
SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10';
SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10';
SELECT columns, predicate, ddl, verdict, detail FROM apiscale.index_advice ORDER BY ddl;
-- Proof, each index alone: the partial one, then the full one.
SELECT proof.before($$SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10'$$,
                    (SELECT max(rows_filtered) / 3 FROM apiscale.index_advice)) AS before \gset
SELECT ddl FROM apiscale.index_advice WHERE predicate IS NOT NULL \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10'$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT ddl FROM apiscale.index_advice WHERE predicate IS NULL \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10'$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT apiscale.reset();

-- 2. The same through a prepared statement's parameter: custom plans use
--    the partial index, the generic plan cannot, and the advice says so.
PREPARE pending_since(text) AS
  SELECT count(*) FROM tasks WHERE status = $1 AND created_at > '2026-01-10';
EXECUTE pending_since('pending');
EXECUTE pending_since('pending');
EXECUTE pending_since('pending');
SELECT columns, predicate, verdict, detail FROM apiscale.index_advice
 WHERE predicate IS NOT NULL;
SELECT ddl FROM apiscale.index_advice WHERE predicate IS NOT NULL \gexec
EXPLAIN (COSTS OFF) EXECUTE pending_since('pending');
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE pending_since('pending');
RESET plan_cache_mode;
DROP INDEX tasks_created_at_idx;
DEALLOCATE pending_since;
SELECT apiscale.reset();

-- 3. Near miss: a common value (24% of the rows): the full index, and a
--    row that says why there is no partial one.
SELECT count(*) FROM tasks WHERE status = 'new' AND created_at > '2026-01-20';
SELECT count(*) FROM tasks WHERE status = 'new' AND created_at > '2026-01-20';
SELECT count(*) FROM tasks WHERE status = 'new' AND created_at > '2026-01-20';
SELECT columns, predicate, verdict, detail FROM apiscale.index_candidates
 ORDER BY predicate NULLS FIRST, columns::text;
SELECT count(*) AS partial_advice FROM apiscale.index_advice WHERE predicate IS NOT NULL;
SELECT apiscale.reset();

-- 4. Near miss: the value changes between runs: no partial index.
SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10';
SELECT count(*) FROM tasks WHERE status = 'new' AND created_at > '2026-01-10';
SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10';
SELECT columns, predicate, verdict FROM apiscale.index_candidates;
SELECT apiscale.reset();

-- 5. Near miss: one run is not "always".
SELECT count(*) FROM tasks WHERE status = 'pending' AND created_at > '2026-01-10';
SELECT count(*) AS partial FROM apiscale.index_candidates WHERE predicate IS NOT NULL;
SELECT apiscale.reset();

-- 6. An enum column (its operator is polymorphic): the same partial index.
CREATE TYPE state AS ENUM ('new', 'pending', 'done');
CREATE TABLE jobs (id int PRIMARY KEY, state state NOT NULL, size int NOT NULL);
INSERT INTO jobs
  SELECT g, CASE WHEN g % 100 = 0 THEN 'pending' WHEN g % 2 = 0 THEN 'new' ELSE 'done' END::state,
         g % 1000
    FROM generate_series(1, 30000) g;
ANALYZE jobs;
SELECT apiscale.reset();
SELECT count(*) FROM jobs WHERE state = 'pending' AND size > 500;
SELECT count(*) FROM jobs WHERE state = 'pending' AND size > 500;
SELECT count(*) FROM jobs WHERE state = 'pending' AND size > 500;
SELECT columns, predicate, ddl, verdict FROM apiscale.index_advice ORDER BY ddl;
SELECT proof.before($$SELECT count(*) FROM jobs WHERE state = 'pending' AND size > 500$$,
                    (SELECT max(rows_filtered) / 3 FROM apiscale.index_advice)) AS before \gset
SELECT ddl FROM apiscale.index_advice WHERE predicate IS NOT NULL \gexec
SELECT * FROM proof.check($$SELECT count(*) FROM jobs WHERE state = 'pending' AND size > 500$$, :'before');
SELECT proof.drop_new(:'before') AS dropped;
SELECT apiscale.reset();

DROP SCHEMA part CASCADE;
