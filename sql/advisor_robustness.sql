-- advisor_robustness.sql: the index advisor under a varied workload.
-- A few hundred statements of every shape the executor runs (joins of all
-- kinds, windows, set operations, CTEs, subqueries, cursors, DML with
-- RETURNING, MERGE, functions, triggers, prepared statements, parallel
-- plans, partitions, errors) go through the hooks and the plan walk with
-- every run sampled.  Nothing here checks the advice itself: the output is
-- the echoed input, the intended errors, and a few stable checks at the
-- end that the backend survived and apiscale kept counting.
SET client_min_messages = warning;
SET apiscale.sample_rate = 1.0;
SET apiscale.min_table_rows = 100;
SET apiscale.track = top;
SELECT pg_backend_pid() AS start_pid \gset
\o /dev/null
SELECT apiscale.reset();

CREATE SCHEMA advrob;
SET search_path = advrob, public;

-- Tables: an FK pair without an index on the referencing column, a third
-- table cascading from the second, a partitioned table, a jsonb table, a
-- table with a dropped column and quoted names, a tiny one, an empty one.
CREATE TYPE prio AS ENUM ('low', 'mid', 'high');
CREATE TABLE customers (
    id int PRIMARY KEY,
    legacy int,
    name text NOT NULL,
    region int NOT NULL,
    email text,
    created_at timestamptz NOT NULL
);
INSERT INTO customers
SELECT g, g, 'customer ' || g, g % 20,
       CASE WHEN g % 7 <> 0 THEN 'c' || g || '@example.com' END,
       timestamptz '2026-01-01 00:00+00' + g * interval '1 hour'
  FROM generate_series(1, 5000) g;
ALTER TABLE customers DROP COLUMN legacy;   -- leaves a hole in attnums
CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers
        DEFERRABLE INITIALLY DEFERRED,
    status int NOT NULL,
    prio prio NOT NULL,
    amount numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL,
    note text
);
INSERT INTO orders
SELECT g, 1 + (g * 7907) % 5000, g % 10, (ARRAY['low', 'mid', 'high'])[1 + g % 3]::prio,
       (g % 10000) / 100.0,
       timestamptz '2026-01-01 00:00+00' + g * interval '7 minutes',
       CASE WHEN g % 5 = 0 THEN 'note ' || g END
  FROM generate_series(1, 20000) g;
CREATE TABLE items (
    id int PRIMARY KEY,
    order_id int NOT NULL REFERENCES orders ON DELETE CASCADE,
    line int NOT NULL,
    sku text NOT NULL,
    qty int NOT NULL
);
INSERT INTO items
SELECT g, 1 + g % 10000, g / 10000, 'sku-' || (g % 700), 1 + g % 4
  FROM generate_series(0, 19999) g;
CREATE TABLE events (
    id bigint NOT NULL,
    kind int NOT NULL,
    customer_id int NOT NULL,
    created_at timestamptz NOT NULL,
    payload text
) PARTITION BY RANGE (created_at);
CREATE TABLE events_1 PARTITION OF events
    FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2026-02-01 00:00+00');
CREATE TABLE events_2 PARTITION OF events
    FOR VALUES FROM ('2026-02-01 00:00+00') TO ('2026-03-01 00:00+00');
CREATE TABLE events_3 PARTITION OF events
    FOR VALUES FROM ('2026-03-01 00:00+00') TO ('2026-04-01 00:00+00');
INSERT INTO events
SELECT g, g % 12, 1 + g % 5000,
       timestamptz '2026-01-01 00:00+00' + g * interval '10 minutes',
       repeat('x', g % 50)
  FROM generate_series(1, 12000) g;
CREATE INDEX ON events (created_at);
CREATE TABLE docs (
    id int PRIMARY KEY,
    body jsonb NOT NULL,
    tags text[] NOT NULL
);
INSERT INTO docs
SELECT g, jsonb_build_object('n', g % 50, 'tag', 't' || (g % 30),
                             'items', jsonb_build_array(
                                 jsonb_build_object('sku', 'sku-' || (g % 700), 'q', g % 3),
                                 jsonb_build_object('sku', 'sku-' || (g % 11), 'q', 1))),
       ARRAY['a' || (g % 5), 'b' || (g % 13)]
  FROM generate_series(1, 3000) g;
CREATE INDEX ON docs USING gin (body jsonb_path_ops);
CREATE TABLE "Mixed Case" ("Weird Col" int, "select" text, id int);
INSERT INTO "Mixed Case" SELECT g % 97, 'v' || g, g FROM generate_series(1, 2000) g;
CREATE TABLE tiny (id int, v text);
INSERT INTO tiny SELECT g, 'v' || g FROM generate_series(1, 50) g;
CREATE TABLE empty_t (id int, v text);
CREATE TABLE logs (id int, msg text);
CREATE TABLE logs_a () INHERITS (logs);
INSERT INTO logs SELECT g, 'm' || g FROM generate_series(1, 1000) g;
INSERT INTO logs_a SELECT g, 'a' || g FROM generate_series(1, 2000) g;
CREATE TABLE order_totals (customer_id int PRIMARY KEY, total numeric, n int);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 50;
CREATE MATERIALIZED VIEW region_totals AS
SELECT c.region, count(*) AS n, sum(o.amount) AS total
  FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region;
ANALYZE;

-- Functions and triggers that run queries.
CREATE FUNCTION orders_of(c int) RETURNS SETOF orders
LANGUAGE sql STABLE AS 'SELECT * FROM orders WHERE customer_id = $1';
CREATE FUNCTION order_count(s int) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT count(*) FROM orders WHERE status = s AND amount > 1;
$$;
CREATE FUNCTION customer_total(c int) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    t numeric;
BEGIN
    SELECT sum(amount) INTO t FROM orders WHERE customer_id = c;
    RETURN coalesce(t, 0);
END
$$;
CREATE FUNCTION latest_of_status(s int, n int) RETURNS TABLE (id int, amount numeric)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT o.id, o.amount FROM orders o
                  WHERE o.status = s ORDER BY o.created_at DESC LIMIT n;
    RETURN QUERY EXECUTE
        'SELECT o.id, o.amount FROM orders o WHERE o.prio = $1::prio ORDER BY o.amount LIMIT $2'
        USING 'high', n;
END
$$;
CREATE FUNCTION walk_cursor(r int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    cur CURSOR (rg int) FOR SELECT id FROM customers WHERE region = rg ORDER BY email;
    rec record;
    n int := 0;
BEGIN
    OPEN cur(r);
    LOOP
        FETCH cur INTO rec;
        EXIT WHEN NOT FOUND OR n >= 30;
        n := n + 1;
    END LOOP;
    CLOSE cur;
    FOR rec IN SELECT o.id FROM orders o WHERE o.customer_id = r LOOP
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
CREATE FUNCTION open_refcursor(s int) RETURNS refcursor
LANGUAGE plpgsql AS $$
DECLARE
    c refcursor := 'advrob_refcur';
BEGIN
    OPEN c FOR SELECT id, amount FROM orders WHERE status = s ORDER BY amount DESC;
    RETURN c;
END
$$;
CREATE FUNCTION orders_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM orders WHERE customer_id = NEW.customer_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER orders_audit BEFORE INSERT OR UPDATE OF customer_id ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_audit();
CREATE FUNCTION orders_batch_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM new_rows n JOIN customers c ON c.id = n.customer_id
      WHERE c.region = 3;
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_batch_check AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orders_batch_check();
CREATE PROCEDURE touch_statuses(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        UPDATE orders SET amount = amount WHERE status = i AND customer_id < 50;
        COMMIT;
    END LOOP;
END
$$;

-- Generated statements: templates x values, run by EXECUTE in DO blocks,
-- first with nested statements tracked (the advisor sees them), then not.
CREATE TABLE templates (id int PRIMARY KEY, sql text NOT NULL);
INSERT INTO templates VALUES
 (1, 'SELECT id, amount FROM orders WHERE status = %1$s'),
 (2, 'SELECT id, amount FROM orders WHERE customer_id = %1$s * 37 ORDER BY created_at DESC LIMIT 20'),
 (3, 'SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.region = %1$s'),
 (4, 'SELECT count(*) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id AND o.status = %1$s WHERE o.id IS NULL'),
 (5, 'SELECT count(*) FROM customers c FULL JOIN orders o ON o.customer_id = c.id AND o.status = %1$s AND c.region = 2'),
 (6, 'SELECT count(*) FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = %1$s)'),
 (7, 'SELECT count(*) FROM customers c WHERE c.region = %1$s AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.amount > 90)'),
 (8, 'SELECT c.id, l.amount FROM customers c CROSS JOIN LATERAL (SELECT amount FROM orders o WHERE o.customer_id = c.id ORDER BY amount DESC LIMIT 2) l WHERE c.id BETWEEN %1$s * 10 AND %1$s * 10 + 3'),
 (9, 'SELECT customer_id, amount, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC), sum(amount) OVER (ORDER BY created_at ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) FROM orders WHERE status = %1$s'),
 (10, 'SELECT customer_id FROM orders WHERE status = %1$s UNION SELECT id FROM customers WHERE region = %1$s'),
 (11, 'SELECT customer_id FROM orders WHERE status = %1$s INTERSECT SELECT id FROM customers WHERE region = %1$s'),
 (12, 'SELECT id FROM customers WHERE region = %1$s EXCEPT ALL SELECT customer_id FROM orders WHERE amount < 5'),
 (13, 'WITH m AS MATERIALIZED (SELECT * FROM orders WHERE status = %1$s) SELECT count(*) FROM m WHERE amount > 10'),
 (14, 'WITH RECURSIVE r(n) AS (SELECT %1$s UNION ALL SELECT n + 7 FROM r WHERE n < 300) SELECT count(*) FROM r JOIN orders o ON o.customer_id = r.n'),
 (15, 'SELECT id FROM orders WHERE amount > (SELECT avg(amount) FROM orders WHERE status = %1$s) ORDER BY id LIMIT 5'),
 (16, 'SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) FROM customers c WHERE c.id <= %1$s + 3'),
 (17, 'SELECT count(*) FROM events WHERE kind = %1$s AND payload LIKE ''%%x%%'''),
 (18, 'SELECT count(*) FROM docs WHERE body->>''tag'' = ''t%1$s'''),
 (19, 'SELECT count(*) FROM docs WHERE body @> ''{"n": %1$s}'' AND tags && ARRAY[''a1'']'),
 (20, 'SELECT DISTINCT ON (customer_id) customer_id, amount FROM orders WHERE status = %1$s ORDER BY customer_id, created_at DESC'),
 (21, 'SELECT status, prio, count(*) FROM orders WHERE customer_id < %1$s * 100 GROUP BY status, prio HAVING count(*) > 1 ORDER BY 3 DESC'),
 (22, 'SELECT count(*) FROM customers WHERE name LIKE ''%%%1$s%%'''),
 (23, 'SELECT id FROM orders WHERE status = %1$s ORDER BY amount, id LIMIT 10 OFFSET 100'),
 (24, 'SELECT o.id FROM orders o WHERE o.customer_id IN (SELECT id FROM customers WHERE region = %1$s) AND o.note IS NOT NULL'),
 (25, 'SELECT v.x, count(o.id) FROM (VALUES (%1$s), (%1$s + 1), (%1$s + 2)) v(x) LEFT JOIN orders o ON o.status = v.x GROUP BY v.x'),
 (26, 'SELECT g, o.amount FROM generate_series(1, %1$s * 3) g JOIN orders o ON o.id = g * 11'),
 (27, 'SELECT count(*) FROM "Mixed Case" WHERE "Weird Col" = %1$s AND "select" <> ''v1'''),
 (28, 'SELECT count(*) FROM logs WHERE msg = ''a%1$s'''),
 (29, 'SELECT i.sku, sum(i.qty) FROM items i JOIN orders o ON o.id = i.order_id WHERE o.status = %1$s GROUP BY ROLLUP (i.sku) ORDER BY 2 DESC LIMIT 5'),
 (30, 'SELECT count(*) FROM tiny t JOIN empty_t e ON e.id = t.id WHERE t.id = %1$s'),
 (31, 'SELECT id FROM orders WHERE (status, prio) = (%1$s, ''mid'') AND lower(note) LIKE ''note 1%%'''),
 (32, 'SELECT count(*) FROM orders WHERE status = ANY (ARRAY[%1$s, %1$s + 1]) OR amount BETWEEN %1$s AND %1$s + 1');

DO $$
DECLARE
    t record;
    v int;
BEGIN
    FOR t IN SELECT sql FROM templates ORDER BY id LOOP
        FOR v IN 0..8 LOOP
            EXECUTE format(t.sql, v);
        END LOOP;
    END LOOP;
END
$$;
SET apiscale.track = 'all';
DO $$
DECLARE
    t record;
    v int;
BEGIN
    FOR t IN SELECT sql FROM templates ORDER BY id LOOP
        FOR v IN 1..9 LOOP
            EXECUTE format(t.sql, v);
        END LOOP;
    END LOOP;
END
$$;
-- Errors half-way through a scan, caught: the run never reaches
-- ExecutorEnd.
DO $$
DECLARE
    v int;
    n int := 0;
BEGIN
    FOR v IN 0..9 LOOP
        BEGIN
            EXECUTE format('SELECT count(*) FROM orders WHERE 100 / (status - %s) > 0', v);
        EXCEPTION WHEN division_by_zero THEN
            n := n + 1;
        END;
        BEGIN
            EXECUTE format('SELECT id FROM orders WHERE status = %s ORDER BY 1 / (amount::int - %s)', v, v);
        EXCEPTION WHEN division_by_zero THEN
            n := n + 1;
        END;
    END LOOP;
    IF n = 0 THEN
        RAISE EXCEPTION 'no error was raised';
    END IF;
END
$$;

-- Functions and procedures, nested statements tracked.
SELECT count(*) FROM orders_of(42);
SELECT order_count(3), order_count(4);
SELECT customer_total(id) FROM customers WHERE id <= 20;
SELECT * FROM latest_of_status(5, 7);
SELECT walk_cursor(3), walk_cursor(7);
SELECT sum(customer_total(c.id)) FROM customers c WHERE c.region = 4 AND c.id < 300;
CALL touch_statuses(3);
BEGIN;
SELECT open_refcursor(6);
FETCH 5 FROM advrob_refcur;
MOVE FORWARD 100 IN advrob_refcur;
FETCH 2 FROM advrob_refcur;
CLOSE advrob_refcur;
COMMIT;
-- Row and statement triggers, FK checks (deferred to COMMIT) and an FK
-- cascade that scans items without an index on order_id.
BEGIN;
INSERT INTO orders VALUES (20001, 17, 1, 'low', 10, '2026-03-01', 'new'),
                          (20002, 18, 2, 'high', 20, '2026-03-02', NULL);
UPDATE orders SET customer_id = customer_id + 1 WHERE id IN (20001, 20002);
COMMIT;
DELETE FROM orders WHERE id BETWEEN 9980 AND 9999 RETURNING id;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT count(*) FROM orders WHERE note LIKE '%99%';
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT id FROM orders WHERE status = 2 ORDER BY created_at DESC LIMIT 3;
REFRESH MATERIALIZED VIEW region_totals;
CREATE TABLE high_orders AS SELECT * FROM orders WHERE prio = 'high' AND amount > 50;
SELECT id, amount INTO TEMP TABLE tmp_orders FROM orders WHERE status = 7;
SELECT count(*) FROM tmp_orders t JOIN orders o ON o.amount = t.amount WHERE t.id < 500;
COPY (SELECT id, amount FROM orders WHERE status = 8 ORDER BY amount LIMIT 10) TO STDOUT;
DO $$
BEGIN
    PERFORM count(*) FROM customers WHERE email LIKE '%7%';
    PERFORM * FROM events WHERE kind = 5 ORDER BY payload LIMIT 3;
END
$$;
SET apiscale.track = top;

-- Plain statements at the top level.
SELECT * FROM orders WHERE customer_id = 77;
SELECT * FROM orders WHERE customer_id = 78 ORDER BY created_at DESC LIMIT 5;
SELECT id FROM orders WHERE status = 4 ORDER BY created_at DESC LIMIT 20 OFFSET 40;
SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id
 WHERE c.email IS NULL AND o.amount > 20;
SELECT count(*) FROM orders o LEFT JOIN items i ON i.order_id = o.id WHERE i.order_id IS NULL;
SELECT count(*) FROM customers c FULL JOIN order_totals t ON t.customer_id = c.id;
SELECT count(*) FROM orders o RIGHT JOIN customers c ON c.id = o.customer_id AND o.status = 1;
SELECT count(*) FROM customers c
 WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.prio = 'high');
SELECT count(*) FROM customers c
 WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id);
SELECT count(*) FROM orders WHERE customer_id NOT IN (SELECT id FROM customers WHERE region = 1);
SELECT c.id, top.id FROM customers c,
       LATERAL (SELECT o.id FROM orders o WHERE o.customer_id = c.id
                 ORDER BY o.amount DESC LIMIT 1) top
 WHERE c.id < 6;
SELECT c.id, x.n FROM customers c
  LEFT JOIN LATERAL (SELECT count(*) AS n FROM orders o WHERE o.customer_id = c.id) x ON true
 WHERE c.region = 9 AND c.id < 200;
SELECT customer_id, row_number() OVER w, lag(amount) OVER w, lead(amount, 2) OVER w,
       ntile(4) OVER (ORDER BY amount)
  FROM orders WHERE status = 3 WINDOW w AS (PARTITION BY customer_id ORDER BY created_at);
SELECT * FROM (SELECT id, rank() OVER (PARTITION BY status ORDER BY amount DESC) r FROM orders) s
 WHERE r <= 2;
SELECT id FROM orders WHERE status = 1 UNION ALL SELECT id FROM orders WHERE status = 2
 ORDER BY id DESC LIMIT 10;
SELECT customer_id FROM orders INTERSECT ALL SELECT id FROM customers WHERE region = 5;
SELECT id FROM customers EXCEPT SELECT customer_id FROM orders;
WITH recent AS (SELECT * FROM orders WHERE created_at > '2026-03-01')
SELECT r.status, count(*) FROM recent r JOIN customers c ON c.id = r.customer_id GROUP BY 1;
WITH m AS MATERIALIZED (SELECT customer_id, sum(amount) s FROM orders GROUP BY 1)
SELECT count(*) FROM m a JOIN m b ON a.customer_id = b.customer_id + 1 WHERE a.s > b.s;
WITH f AS NOT MATERIALIZED (SELECT * FROM orders WHERE prio = 'low')
SELECT count(*) FROM f WHERE status = 3;
WITH RECURSIVE chain(id, depth) AS (
    SELECT id, 0 FROM customers WHERE id = 1
    UNION ALL
    SELECT c.id, ch.depth + 1 FROM chain ch JOIN customers c ON c.id = ch.id * 2
     WHERE ch.depth < 10
) SEARCH DEPTH FIRST BY id SET ord
SELECT * FROM chain ORDER BY ord;
WITH moved AS (DELETE FROM order_totals WHERE total < 0 RETURNING *)
INSERT INTO order_totals SELECT * FROM moved ON CONFLICT DO NOTHING;
SELECT id, (SELECT max(amount) FROM orders o WHERE o.customer_id = c.id) FROM customers c
 WHERE id BETWEEN 100 AND 105;
SELECT id FROM orders WHERE amount = (SELECT max(amount) FROM orders WHERE status = 9);
SELECT id FROM orders WHERE customer_id = ANY (ARRAY(SELECT id FROM customers WHERE region = 7 AND id < 100));
SELECT count(*) FROM orders WHERE note LIKE '%12%';
SELECT count(*) FROM orders WHERE note ILIKE '%NOTE 3%' OR note ~ '5$';
SELECT count(*) FROM customers WHERE lower(name) = 'customer 17';
SELECT count(*) FROM customers WHERE name COLLATE "C" > 'customer 9';
SELECT status, prio, count(*), sum(amount) FILTER (WHERE amount > 50),
       string_agg(DISTINCT prio::text, ',' ORDER BY prio::text)
  FROM orders GROUP BY status, prio HAVING sum(amount) > 100 ORDER BY 1, 2;
SELECT status, prio, count(*) FROM orders GROUP BY GROUPING SETS ((status), (prio), ());
SELECT status, prio, count(*) FROM orders GROUP BY CUBE (status, prio);
SELECT DISTINCT ON (status) status, id, amount FROM orders ORDER BY status, amount DESC;
SELECT DISTINCT customer_id FROM orders WHERE amount > 99;
SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) v(x, y) JOIN orders o ON o.status = v.x
 WHERE o.customer_id < 30;
SELECT count(*) FROM orders WHERE (status, prio) IN (VALUES (1, 'low'::prio), (2, 'mid'));
SELECT g, (SELECT count(*) FROM orders WHERE status = g) FROM generate_series(0, 3) g;
SELECT generate_series(1, status), id FROM orders WHERE id < 30;
SELECT count(*) FROM orders TABLESAMPLE SYSTEM (20) REPEATABLE (1) WHERE status = 2;
SELECT count(*) FROM orders TABLESAMPLE BERNOULLI (10) REPEATABLE (7) WHERE amount > 30;
SELECT * FROM orders WHERE ctid = '(0,1)';
SELECT count(*) FROM orders WHERE ctid > '(100,0)' AND status = 1;
SELECT count(*) FROM orders o WHERE o IS NOT NULL AND o.xmin <> '0'::xid;
SELECT * FROM big_orders WHERE customer_id = 5;
SELECT * FROM region_totals WHERE region = 3;
SELECT count(*) FROM events WHERE created_at >= '2026-02-10' AND kind = 4;
SELECT count(*) FROM events WHERE customer_id = 99;
SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind;
SELECT * FROM events ORDER BY created_at DESC LIMIT 5;
SELECT * FROM events WHERE created_at = (SELECT max(created_at) FROM events_1);
SELECT count(*) FROM events e JOIN customers c ON c.id = e.customer_id WHERE c.region = 4;
SELECT d.id, e->>'sku' FROM docs d, jsonb_array_elements(d.body->'items') e
 WHERE e->>'sku' = 'sku-5';
SELECT count(*) FROM docs, jsonb_to_recordset(body->'items') AS r(sku text, q int) WHERE r.q = 2;
SELECT count(*) FROM docs WHERE (body->>'n')::int = 7;
SELECT count(*) FROM docs WHERE body ? 'tag' AND 'a1' = ANY (tags);
SELECT count(*) FROM docs WHERE tags @> ARRAY['b3'];
SELECT count(*) FROM docs WHERE body @@ '$.n == 3';
SELECT count(*) FROM ONLY logs WHERE msg LIKE 'm1%';
SELECT count(*) FROM logs WHERE id = 500;
SELECT count(*) FROM "Mixed Case" m JOIN tiny t ON t.id = m."Weird Col";
SELECT * FROM tiny WHERE v = 'v7';
SELECT * FROM empty_t WHERE id = 1 ORDER BY v;
SELECT count(*) FROM pg_class WHERE relname LIKE 'adv%' OR relnamespace = 'advrob'::regnamespace;
SELECT count(*) FROM information_schema.columns WHERE table_schema = 'advrob';
SELECT id FROM orders WHERE status = 5 LIMIT 0;
TABLE tiny ORDER BY id DESC LIMIT 3;
SELECT 1 / 0;
SELECT count(*) FROM orders WHERE 10 / (status - 3) > 0;
SELECT id FROM orders WHERE status = 2 ORDER BY 5 / (amount::int - 7);

-- Forced join methods: nested loops over scans, merge joins over sorts.
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id AND c.region = 11
 WHERE o.status = 4;
SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id < 40;
-- Run-time partition pruning on every rescan of the inner side.
SELECT count(*) FROM customers c
  JOIN events e ON e.created_at = c.created_at + interval '10 minutes' WHERE c.id < 20;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM customers c
  JOIN events e ON e.created_at = c.created_at + interval '10 minutes'
 WHERE c.id BETWEEN 700 AND 705 AND e.kind > 2;
RESET enable_indexscan;
RESET enable_bitmapscan;
SET enable_mergejoin = on;
SET enable_nestloop = off;
SELECT count(*) FROM orders o JOIN items i ON i.order_id = o.id WHERE o.prio = 'mid';
SELECT count(*) FROM customers c FULL JOIN orders o ON o.customer_id = c.id;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_nestloop;

-- Parallel plans: workers are skipped by the hooks, the leader accounts.
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET min_parallel_index_scan_size = 0;
SELECT count(*) FROM orders WHERE status = 6;
SELECT id FROM orders WHERE note LIKE '%77%' ORDER BY created_at DESC LIMIT 10;
SELECT status, sum(amount) FROM orders GROUP BY status ORDER BY status;
SELECT count(*) FROM orders o JOIN items i ON i.order_id = o.id WHERE i.sku = 'sku-12';
SELECT count(*) FROM events WHERE payload LIKE '%xxxx%';
SET apiscale.track = 'all';
SELECT order_count(8);
SET apiscale.track = top;
SET force_parallel_mode = on;
SELECT count(*) FROM customers WHERE region = 12;
SELECT * FROM orders WHERE customer_id = 321 ORDER BY amount;
RESET force_parallel_mode;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET min_parallel_index_scan_size;

-- Prepared statements: custom plans, then generic plans (parameters in
-- filters, run-time partition pruning).
PREPARE by_customer(int) AS SELECT id, amount FROM orders WHERE customer_id = $1;
EXECUTE by_customer(1);
EXECUTE by_customer(2);
EXECUTE by_customer(3);
EXECUTE by_customer(4);
EXECUTE by_customer(5);
EXECUTE by_customer(6);
EXECUTE by_customer(7);
EXECUTE by_customer(NULL);
PREPARE page(int, prio, int, int) AS
SELECT id, created_at FROM orders WHERE status = $1 AND prio = $2
 ORDER BY created_at DESC LIMIT $3 OFFSET $4;
EXECUTE page(1, 'low', 20, 0);
EXECUTE page(2, 'mid', 20, 20);
PREPARE search(text, int[]) AS
SELECT count(*) FROM customers WHERE name LIKE $1 AND region = ANY ($2);
EXECUTE search('%12%', '{1,2,3}');
EXECUTE search('customer 4%', '{}');
PREPARE in_window(timestamptz, int) AS
SELECT count(*) FROM events WHERE created_at >= $1 AND kind = $2;
SET plan_cache_mode = force_generic_plan;
EXECUTE in_window('2026-03-05', 3);
EXECUTE in_window('2026-01-15', 4);
EXECUTE by_customer(8);
EXECUTE page(3, 'high', 5, 100);
PREPARE join_pruned(int) AS
SELECT count(*) FROM customers c JOIN events e ON e.customer_id = c.id
   AND e.created_at = c.created_at + interval '10 minutes'
 WHERE c.id < $1;
EXECUTE join_pruned(50);
PREPARE upd(numeric, int) AS
UPDATE orders SET amount = amount + $1 WHERE customer_id = $2 RETURNING id, amount;
EXECUTE upd(0.5, 9);
EXECUTE upd(-0.5, 9);
SET plan_cache_mode = force_custom_plan;
EXECUTE in_window('2026-02-05', 5);
RESET plan_cache_mode;
DEALLOCATE ALL;

-- Cursors.
BEGIN;
DECLARE c1 SCROLL CURSOR FOR
SELECT id, amount FROM orders WHERE status = 7 ORDER BY amount DESC, id;
FETCH 10 FROM c1;
FETCH BACKWARD 3 FROM c1;
MOVE LAST IN c1;
FETCH ABSOLUTE 5 FROM c1;
FETCH RELATIVE -2 FROM c1;
CLOSE c1;
DECLARE c2 CURSOR FOR
SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.region = 6;
FETCH 5 FROM c2;
-- left open: closed by COMMIT
COMMIT;
BEGIN;
DECLARE h CURSOR WITH HOLD FOR
SELECT id, created_at FROM orders WHERE prio = 'high' ORDER BY created_at DESC;
FETCH 20 FROM h;
COMMIT;
FETCH 20 FROM h;
MOVE FORWARD ALL IN h;
FETCH 1 FROM h;
CLOSE h;
BEGIN;
DECLARE bad CURSOR FOR SELECT id, 10 / (status - 3) FROM orders WHERE customer_id < 500;
FETCH 1000 FROM bad;
ROLLBACK;
-- Switching the parameters while a cursor is open.
BEGIN;
DECLARE s1 CURSOR FOR SELECT id FROM orders WHERE status = 1 ORDER BY amount;
FETCH 5 FROM s1;
SET LOCAL apiscale.index_advisor = off;
SET LOCAL apiscale.sample_rate = 0;
FETCH 5 FROM s1;
DECLARE s2 CURSOR FOR SELECT id FROM orders WHERE status = 2 ORDER BY amount;
FETCH 5 FROM s2;
SET LOCAL apiscale.index_advisor = on;
SET LOCAL apiscale.sample_rate = 1;
FETCH 5 FROM s2;
SET LOCAL apiscale.enabled = off;
FETCH 5 FROM s1;
CLOSE s1;
CLOSE s2;
COMMIT;

-- DML with RETURNING, upserts, MERGE, row locks, savepoints.
INSERT INTO order_totals
SELECT customer_id, sum(amount), count(*) FROM orders WHERE status = 1 GROUP BY customer_id
RETURNING customer_id, total;
INSERT INTO order_totals
SELECT customer_id, sum(amount), count(*) FROM orders WHERE status = 2 GROUP BY customer_id
ON CONFLICT (customer_id) DO UPDATE SET total = order_totals.total + excluded.total,
                                        n = order_totals.n + excluded.n
RETURNING customer_id, total;
INSERT INTO order_totals VALUES (1, 0, 0) ON CONFLICT DO NOTHING RETURNING *;
UPDATE orders o SET note = 'vip' FROM customers c
 WHERE c.id = o.customer_id AND c.region = 13 AND o.status = 3 RETURNING o.id;
UPDATE orders SET amount = amount WHERE note LIKE '%vip%' AND prio = 'low';
DELETE FROM items i USING orders o
 WHERE o.id = i.order_id AND o.status = 9 AND o.customer_id < 100 RETURNING i.id, i.order_id;
DELETE FROM order_totals WHERE customer_id IN (SELECT id FROM customers WHERE region = 19)
RETURNING customer_id;
MERGE INTO order_totals t
USING (SELECT customer_id, sum(amount) AS s, count(*) AS n FROM orders
        WHERE status = 4 GROUP BY customer_id) src
   ON t.customer_id = src.customer_id
 WHEN MATCHED AND src.n > 3 THEN DELETE
 WHEN MATCHED THEN UPDATE SET total = src.s, n = src.n
 WHEN NOT MATCHED THEN INSERT VALUES (src.customer_id, src.s, src.n);
MERGE INTO order_totals t
USING customers c ON t.customer_id = c.id AND c.region = 0
 WHEN MATCHED THEN UPDATE SET n = t.n + 1
 WHEN NOT MATCHED AND c.region = 0 AND c.id % 97 = 0 THEN INSERT VALUES (c.id, 0, 0);
BEGIN;
SELECT id FROM orders WHERE status = 5 ORDER BY id LIMIT 5 FOR UPDATE;
SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id
 WHERE c.region = 8 ORDER BY o.id LIMIT 5 FOR NO KEY UPDATE OF o SKIP LOCKED;
SELECT id FROM customers WHERE email LIKE '%99%' FOR SHARE NOWAIT;
SAVEPOINT sp;
UPDATE orders SET status = 10 / (status - 5) WHERE customer_id < 1000;
ROLLBACK TO SAVEPOINT sp;
SELECT id FROM orders WHERE status = 5 AND customer_id < 300 FOR KEY SHARE;
RELEASE SAVEPOINT sp;
COMMIT;
DO $$
BEGIN
    UPDATE orders SET amount = amount / (status - 6) WHERE customer_id < 2000;
EXCEPTION WHEN division_by_zero THEN
    PERFORM count(*) FROM orders WHERE status = 6;
END
$$;

-- Again with nested statements tracked and parameters not captured.
SET apiscale.track = 'all';
SET apiscale.capture_parameters = off;
SELECT customer_total(id) FROM customers WHERE id BETWEEN 21 AND 30;
SELECT * FROM latest_of_status(2, 3);
PREPARE by_status(int) AS SELECT count(*) FROM orders WHERE status = $1 AND amount > 1;
EXECUTE by_status(1);
EXECUTE by_status(2);
DEALLOCATE by_status;
RESET apiscale.capture_parameters;
SET apiscale.index_advisor = off;
SELECT count(*) FROM orders WHERE status = 3;
SELECT order_count(5);
RESET apiscale.index_advisor;
SELECT order_count(6);
RESET apiscale.track;

-- The walkers of index scans, bitmaps, expressions, constants and covering
-- indexes, on odd shapes: indexes beside filters, INCLUDE and expression
-- indexes, index-only scans whose filters read index columns, bitmap
-- AND/OR, lossy bitmaps, ordering operators (KNN), parameters bound and
-- generic, constants of every length and NULL, whole-row and system
-- column references, functions dropped after their expressions were kept.
CREATE INDEX orders_created_idx ON orders (created_at);
CREATE INDEX orders_cust_incl ON orders (customer_id) INCLUDE (amount, prio);
CREATE INDEX orders_lower_note ON orders (lower(note));
CREATE INDEX customers_region_idx ON customers (region, created_at DESC);
CREATE TABLE pts (id int, p point, label text);
INSERT INTO pts SELECT g, point(g % 97, g % 89), 'l' || g FROM generate_series(1, 3000) g;
CREATE INDEX pts_p ON pts USING gist (p);
CREATE INDEX docs_tags ON docs USING gin (tags);
CREATE FUNCTION fold(t text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT lower(t)';
VACUUM ANALYZE orders, customers, pts, docs;
SELECT id FROM orders WHERE status = 3 ORDER BY created_at DESC LIMIT 7;
SELECT id FROM orders WHERE status = 3 AND prio = 'high' ORDER BY created_at LIMIT 7;
SELECT id FROM orders WHERE created_at > '2026-02-01' AND note LIKE '%7%' LIMIT 5;
SELECT count(*) FROM orders WHERE customer_id BETWEEN 10 AND 900 AND amount = 3;
SELECT count(*) FROM orders WHERE customer_id < 300 AND prio = 'mid';
SELECT sum(amount) FROM orders WHERE customer_id = 77;
SELECT customer_id, amount, prio, status FROM orders WHERE customer_id BETWEEN 5 AND 9;
SELECT o FROM orders o WHERE customer_id BETWEEN 5 AND 9;
SELECT ctid, amount FROM orders WHERE customer_id BETWEEN 5 AND 9;
SELECT count(*) FROM orders WHERE lower(note) = 'note 100';
SELECT count(*) FROM orders WHERE lower(note) = 'note 100' AND status = 1;
SELECT count(*) FROM orders WHERE upper(coalesce(note, '')) = 'NOTE 5' AND amount > 10;
SELECT count(*) FROM orders WHERE fold(note) = 'note 5';
SELECT count(*) FROM orders WHERE (amount * 2)::int = 10;
SELECT count(*) FROM orders WHERE (created_at::date) = '2026-01-05';
SELECT count(*) FROM orders WHERE amount + random() < 0;
SELECT count(*) FROM orders WHERE note = repeat('long value ', 20);
SELECT count(*) FROM orders WHERE note = '' AND status = 0;
SELECT count(*) FROM orders WHERE note IS NULL AND status = 0;
SELECT count(*) FROM orders WHERE prio = 'low' AND status = 1 AND amount > 50;
SELECT count(*) FROM orders WHERE customer_id = ANY ('{1,2,3}') AND status = 2;
SELECT count(*) FROM orders o
 WHERE o.id < 40 AND o.amount > (SELECT avg(amount) FROM orders WHERE status = o.status);
SELECT c.id, o.id FROM customers c JOIN LATERAL (
    SELECT id FROM orders WHERE customer_id = c.id AND status = 4 ORDER BY created_at DESC LIMIT 1) o ON true
 WHERE c.region = 3;
SELECT count(*) FROM customers WHERE region = 4 AND email LIKE 'c1%' ORDER BY 1;
SELECT id FROM customers WHERE region = 5 ORDER BY created_at DESC LIMIT 3;
SELECT id FROM pts ORDER BY p <-> point(10, 10) LIMIT 5;
SELECT id FROM pts WHERE p <@ box(point(0, 0), point(20, 20)) AND label = 'l7';
SELECT count(*) FROM docs WHERE tags @> ARRAY['a1'] AND (body->>'n')::int = 3;
SELECT count(*) FROM docs WHERE body @> '{"tag": "t3"}' AND body->>'tag' = 't3';
SELECT count(*) FROM docs WHERE body->>'tag' = 't4' OR id = 5;
SELECT count(*) FROM events WHERE lower(payload) = 'xx' AND kind = 3;
SELECT count(*) FROM events WHERE created_at > '2026-02-10' AND kind = 3;
SELECT count(*) FROM "Mixed Case" WHERE lower("select") = 'v5';
SET enable_seqscan = off;
SET enable_indexscan = off;
SET work_mem = '64kB';
SELECT count(*) FROM orders WHERE customer_id BETWEEN 1 AND 4000 AND status >= 0;
SELECT count(*) FROM orders WHERE (customer_id < 100 OR created_at < '2026-01-05') AND amount > 5;
SELECT count(*) FROM orders WHERE customer_id < 2000 AND created_at > '2026-01-10' AND status = 1;
RESET work_mem;
RESET enable_indexscan;
RESET enable_seqscan;
SET enable_bitmapscan = off;
SELECT sum(amount) FROM orders WHERE customer_id BETWEEN 1 AND 400 AND prio = 'high';
SELECT count(*) FROM orders WHERE customer_id > 4000 AND amount = 7;
RESET enable_bitmapscan;
PREPARE by_cust(int, text) AS
    SELECT count(*) FROM orders WHERE customer_id = $1 AND lower(note) = $2 AND status = 2;
EXECUTE by_cust(5, 'note 5');
EXECUTE by_cust(5, 'note 5');
EXECUTE by_cust(5, 'note 5');
SET plan_cache_mode = force_generic_plan;
EXECUTE by_cust(6, NULL);
EXECUTE by_cust(7, 'x');
RESET plan_cache_mode;
DEALLOCATE by_cust;
PREPARE by_prio(prio, numeric) AS SELECT count(*) FROM orders WHERE prio = $1 AND amount > $2;
EXECUTE by_prio('high', 10);
EXECUTE by_prio('high', 10);
EXECUTE by_prio('high', 10);
DEALLOCATE by_prio;
DO $$
DECLARE
    n bigint;
BEGIN
    FOR i IN 1 .. 3 LOOP
        SELECT count(*) INTO n FROM orders WHERE lower(note) = 'note ' || i AND status = i;
    END LOOP;
END
$$;
SET apiscale.track = 'all';
SELECT count(*) FROM orders_of(5);
SELECT order_count(1);
RESET apiscale.track;

\o
-- The new kinds of evidence were seen, and their candidates are judged.
SELECT count(*) FILTER (WHERE existing_index IS NOT NULL
                          AND NOT 'index-only' = ANY (reasons)) > 0 AS beside_an_index,
       count(*) FILTER (WHERE 'index-only' = ANY (reasons)) > 0 AS covering,
       count(*) FILTER (WHERE columns::text LIKE '%(%') > 0 AS expressions,
       count(*) FILTER (WHERE predicate IS NOT NULL) > 0 AS partial,
       count(*) FILTER (WHERE verdict IS NULL) = 0 AS all_judged
  FROM apiscale.index_candidates;
-- A function an expression used is dropped: its candidates are left out.
DROP FUNCTION fold(text);
SELECT count(*) FILTER (WHERE columns::text LIKE '%fold%') AS with_dropped_function,
       count(*) FILTER (WHERE verdict IS NULL) = 0 AS all_judged
  FROM apiscale.index_candidates;
\o /dev/null

\o
-- The backend survived, and apiscale kept counting.
SELECT pg_backend_pid() = :start_pid AS same_backend;
SELECT count(*) > 0 AS tracked FROM apiscale.queries;
SELECT count(*) > 0 AS has_errors FROM apiscale.queries WHERE errors > 0;
SELECT count(*) > 0 AS has_nested FROM apiscale.queries WHERE query LIKE '%status = s AND amount > %';
-- Reading the advice re-plans every kind of statement collected above (a
-- failed re-plan is a verdict, not an error), also inside a query that
-- would otherwise be parallel, and after tables and columns are gone.
-- (Advice: recommended or, with the writes this workload makes, not
-- worth it.)
SELECT count(*) > 0 AS has_candidates,
       count(*) FILTER (WHERE verdict IN ('recommended', 'not worth it')) > 0 AS has_advice,
       count(*) FILTER (WHERE verdict IS NULL) = 0 AS all_judged
  FROM apiscale.index_candidates;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
-- Beside a scan that would be parallel, the re-plans give the advice they
-- give alone under the same settings (a re-plan that failed there would
-- read 're-plan failed', not advice).
-- (Failures are compared, not verdicts: an autovacuum's ANALYZE between
-- the two reads may move a candidate's costs.)
SELECT count(*) FILTER (WHERE verdict IN ('recommended', 'not worth it')) AS advice_alone,
       count(*) FILTER (WHERE verdict = 're-plan failed') AS failed_alone
  FROM apiscale.index_candidates \gset
SELECT :advice_alone > 0 AS has_advice,
       count(*) FILTER (WHERE verdict = 're-plan failed') = :failed_alone
         AS same_failures_beside_a_big_scan,
       min(o.count) > 0 AS orders_counted
  FROM apiscale.index_candidates a, (SELECT count(*) FROM orders) o;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT count(*) > 0 AS customers_has_candidates
  FROM apiscale.index_candidates WHERE relation = 'customers'::regclass;
ALTER TABLE orders RENAME COLUMN status TO state;
DROP TABLE customers CASCADE;
-- The dropped table's candidates are left out; the renamed column shows its
-- new name, and the statements naming the old one fail to re-plan, as
-- verdicts.
SELECT count(*) FILTER (WHERE verdict IS NULL) = 0 AS all_judged,
       count(*) FILTER (WHERE relation::text ~ '^[0-9]+$') AS of_dropped_tables,
       count(*) FILTER (WHERE 'status' = ANY (columns)) AS with_old_name,
       count(*) FILTER (WHERE 'state' = ANY (columns)) > 0 AS with_new_name,
       count(*) FILTER (WHERE verdict = 're-plan failed'
                          AND detail LIKE '%column "status" does not exist%') > 0
         AS replan_failed_on_old_name
  FROM apiscale.index_candidates;
DROP SCHEMA advrob CASCADE;
SELECT count(*) AS candidates_left FROM apiscale.index_candidates
 WHERE relation IS NULL OR relation::text LIKE 'advrob.%';
RESET search_path;
RESET apiscale.min_table_rows;
RESET apiscale.sample_rate;
RESET client_min_messages;
SELECT 1 AS alive;
