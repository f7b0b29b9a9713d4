--
-- apiscale.index_review: existing indexes that cost every write and serve
-- no read.  Dropping what it lists changes no plan of the workload.
--
SET max_parallel_workers_per_gather = 0;
SET jit = off;
CREATE SCHEMA rv;
CREATE TABLE rv.orders (
  id int PRIMARY KEY,
  customer_id int NOT NULL,
  status text NOT NULL,
  email text NOT NULL,
  sku text NOT NULL,
  code text NOT NULL,
  created_at timestamptz NOT NULL,
  deleted boolean NOT NULL,
  note text,
  booked tstzrange NOT NULL,
  CONSTRAINT orders_email_key UNIQUE (email),
  CONSTRAINT orders_no_double_booking EXCLUDE USING gist (booked WITH &&)
) WITH (autovacuum_enabled = off);
INSERT INTO rv.orders
SELECT g, g % 2000, (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4],
       'user' || g || '@example.com', 'sku-' || (g % 500), 'c-' || (g % 700),
       timestamptz '2026-01-01 00:00+00' + g * interval '1 minute', g % 2 = 0,
       CASE WHEN g % 3 = 0 THEN 'note ' || g END,
       tstzrange(timestamptz '2026-01-01 00:00+00' + g * interval '1 hour',
                 timestamptz '2026-01-01 00:00+00' + (g + 1) * interval '1 hour')
  FROM generate_series(1, 20000) g;

-- Never reported, used or not: the primary key, the unique and exclusion
-- constraints above, and a unique index, even one whose key starts another.
CREATE UNIQUE INDEX ord_id_sku ON rv.orders (id, sku);
CREATE INDEX ord_email_created ON rv.orders (email, created_at);
-- Unused: not in any plan of the workload (a hash index too).
CREATE INDEX ord_note ON rv.orders (note);
CREATE INDEX ord_status_hash ON rv.orders USING hash (status);
-- The workload's indexes.  (The planner breaks a tie between two indexes
-- in favour of the one created last: each redundant index comes after the
-- index that covers it, so that it is the one in use until it is dropped.)
CREATE INDEX ord_customer_created ON rv.orders (customer_id, created_at);
CREATE INDEX ord_cust_inc ON rv.orders (customer_id) INCLUDE (status);
CREATE INDEX ord_paid_customer_created ON rv.orders (customer_id, created_at)
  WHERE status = 'paid';
CREATE INDEX ord_lower_email_created ON rv.orders (lower(email), created_at);
CREATE INDEX ord_created_id ON rv.orders (created_at, id);
CREATE INDEX ord_code_created ON rv.orders (code, created_at);
CREATE INDEX ord_sku ON rv.orders (sku);
-- Redundant: a leading part of an index above, same predicate (or none).
CREATE INDEX ord_customer ON rv.orders (customer_id);
CREATE INDEX ord_paid_customer ON rv.orders (customer_id) WHERE status = 'paid';
CREATE INDEX ord_lower_email ON rv.orders (lower(email));
CREATE INDEX ord_created_desc ON rv.orders (created_at DESC); -- read backward
-- Duplicate: the same definition as ord_sku.
CREATE INDEX ord_sku_copy ON rv.orders (sku);
-- Near misses, each used by the workload: the same leading column as an
-- index above, but another operator class, collation, predicate or
-- direction, or an INCLUDE column the longer index lacks.
CREATE INDEX ord_sku_pattern ON rv.orders (sku text_pattern_ops);
CREATE INDEX ord_code_c ON rv.orders (code COLLATE "C");
CREATE INDEX ord_live_customer ON rv.orders (customer_id) WHERE NOT deleted;
CREATE INDEX ord_created_desc_nl ON rv.orders (created_at DESC NULLS LAST);
-- (ord_cust_inc above: customer_id INCLUDE status, which ord_customer_created
-- does not hold.)

-- A partitioned table: its indexes are reviewed as one (their partitions'
-- indexes cannot be dropped on their own).
CREATE TABLE rv.events (id int, kind int, payload text, at date) PARTITION BY RANGE (at);
CREATE TABLE rv.events_2025 PARTITION OF rv.events
  FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') WITH (autovacuum_enabled = off);
CREATE TABLE rv.events_2026 PARTITION OF rv.events
  FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') WITH (autovacuum_enabled = off);
CREATE INDEX ev_kind ON rv.events (kind);
CREATE INDEX ev_payload ON rv.events (payload);
INSERT INTO rv.events
SELECT g, g % 100, 'p' || g, date '2025-06-01' + (g % 400) FROM generate_series(1, 10000) g;
VACUUM ANALYZE rv.orders, rv.events;

-- Invalid: a unique index over duplicates, built concurrently, fails and
-- stays behind.
CREATE UNIQUE INDEX CONCURRENTLY ord_sku_unique ON rv.orders (sku);

-- The workload.
CREATE TABLE rv_workload (n int PRIMARY KEY, stmt text NOT NULL);
INSERT INTO rv_workload VALUES
 (1, 'SELECT id FROM rv.orders WHERE customer_id = 42'),
 (2, 'SELECT id, created_at FROM rv.orders WHERE customer_id = 42 ORDER BY created_at DESC LIMIT 5'),
 (3, 'SELECT sku FROM rv.orders WHERE sku > ''sku-98'' ORDER BY sku LIMIT 5'),
 (4, 'SELECT id FROM rv.orders WHERE sku LIKE ''sku-12%'''),
 (5, 'SELECT id FROM rv.orders WHERE lower(email) = ''user42@example.com'''),
 (6, 'SELECT created_at FROM rv.orders WHERE lower(email) = ''user42@example.com'' ORDER BY created_at'),
 (7, 'SELECT id, note FROM rv.orders ORDER BY created_at DESC LIMIT 5'),
 (8, 'SELECT id FROM rv.orders ORDER BY created_at, id LIMIT 5'),
 (9, 'SELECT id FROM rv.orders ORDER BY created_at DESC NULLS LAST LIMIT 5'),
 (10, 'SELECT id FROM rv.orders WHERE code = ''c-7'' ORDER BY created_at LIMIT 5'),
 (11, 'SELECT code FROM rv.orders ORDER BY code COLLATE "C" LIMIT 5'),
 (12, 'SELECT id FROM rv.orders WHERE customer_id = 42 AND NOT deleted'),
 (13, 'SELECT id FROM rv.orders WHERE status = ''paid'' AND customer_id = 43'),
 (14, 'SELECT created_at FROM rv.orders WHERE status = ''paid'' AND customer_id = 43 ORDER BY created_at'),
 (15, 'SELECT status FROM rv.orders WHERE customer_id = 44'),
 (16, 'SELECT count(*) FROM rv.events WHERE kind = 3');

-- Each statement's plan (EXPLAIN, costs off).  An index's name and the
-- direction it is read in are not the plan's shape: with them masked, two
-- plans are the same when the same nodes read the same conditions in the
-- same order.
CREATE FUNCTION rv_plan(stmt text, masked bool) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  plan text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || stmt LOOP
    plan := plan || line || E'\n';
  END LOOP;
  IF masked THEN
    plan := regexp_replace(plan, '(Scan(?: Backward)? using|Index Scan on) \S+',
                           '\1 <index>', 'g');
    plan := replace(plan, ' Backward', '');
  END IF;
  RETURN plan;
END $$;
-- The statements whose plan changes when ddl (the view's DROP INDEX,
-- run here without CONCURRENTLY) is run; the drop is rolled back.
CREATE FUNCTION rv_changed_plans(ddl text) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE
  before text[];
  changed int[] := '{}';
BEGIN
  SELECT array_agg(rv_plan(stmt, true) ORDER BY n) INTO before FROM rv_workload;
  BEGIN
    EXECUTE replace(ddl, ' CONCURRENTLY', '');
    SELECT coalesce(array_agg(n ORDER BY n), '{}') INTO changed
      FROM rv_workload WHERE rv_plan(stmt, true) <> before[n];
    RAISE EXCEPTION 'roll back';
  EXCEPTION WHEN raise_exception THEN
    RETURN changed;
  END;
END $$;

-- Start the statistics from here, run the workload twice, and make sure
-- the statistics are flushed before the view reads them.  Then 10 rows
-- of orders are updated, and one row inserted into each partition of
-- events: the tables' writes.
SELECT pg_stat_force_next_flush();
SELECT pg_stat_reset();
DO $$
DECLARE
  w record;
BEGIN
  FOR i IN 1 .. 2 LOOP
    FOR w IN SELECT stmt FROM rv_workload ORDER BY n LOOP
      EXECUTE w.stmt;
    END LOOP;
  END LOOP;
END $$;
UPDATE rv.orders SET note = 'changed' WHERE id <= 10;
INSERT INTO rv.events VALUES (0, 0, 'x', '2025-12-31'), (0, 0, 'y', '2026-01-01');
SELECT pg_stat_force_next_flush();

-- What each statement uses.
SELECT n, array_to_string(ARRAY(SELECT DISTINCT m[1] FROM
         regexp_matches(rv_plan(stmt, false), '(?:using|Index Scan on) (\S+)', 'g') AS m
         ORDER BY 1), ', ') AS indexes
  FROM rv_workload ORDER BY n;

-- The review.  Sizes differ between builds: only whether there are any.
SELECT relation, index, kind, size > 0 AS sized, scans, table_writes, ddl,
       regexp_replace(detail, '\d{4}-\d\d-\d\d [0-9:+-]+', '<time>') AS detail
  FROM apiscale.index_review
 WHERE relation::text LIKE 'rv.%';

-- Dropping any one of them changes no plan of the workload; nor does
-- dropping them all (each is safe while the others stay, and together).
SELECT index, kind, rv_changed_plans(ddl) AS changed_plans
  FROM apiscale.index_review WHERE relation::text LIKE 'rv.%';
SELECT rv_changed_plans(string_agg(ddl, '; ')) AS changed_plans_all
  FROM apiscale.index_review WHERE relation::text LIKE 'rv.%';
-- The check sees a change when there is one: a used index that is not
-- in the review.
SELECT rv_changed_plans('DROP INDEX rv.ord_customer_created') AS changed_plans_used;

-- The report lists them, with a DDL line that runs as printed.
SELECT line FROM apiscale.report() AS line
 WHERE line LIKE '== Indexes%' OR line LIKE '%DROP INDEX%rv.%';
-- Run the view's DDL for the invalid index: it is gone from the view.
SELECT ddl FROM apiscale.index_review WHERE index = 'rv.ord_sku_unique'::regclass \gexec
SELECT count(*) AS invalid_left FROM apiscale.index_review WHERE kind = 'invalid';

DROP FUNCTION rv_changed_plans(text), rv_plan(text, bool);
DROP TABLE rv_workload;
DROP SCHEMA rv CASCADE;
