-- schema.sql: what SQLsmith plays with.  Tables of every shape the index
-- advisor walks (indexes beside filters, INCLUDE, expression, partial and
-- GIN/GiST indexes, a partitioned table, an inheritance tree, a
-- materialized view, jsonb, arrays, enums, a table too wide for a 64 kB
-- bitmap), owned by the unprivileged role sqlsmith connects as.
CREATE EXTENSION apiscale;
CREATE ROLE smith LOGIN;
-- A statement SQLsmith made too heavy is cut short, not waited for.
ALTER ROLE smith SET statement_timeout = '2s';
ALTER ROLE smith SET work_mem = '64kB';
CREATE SCHEMA smith AUTHORIZATION smith;
SET ROLE smith;
SET search_path = smith;

CREATE TYPE prio AS ENUM ('low', 'mid', 'high');
CREATE TABLE customers (
    id int PRIMARY KEY,
    name text NOT NULL,
    region int NOT NULL,
    email text,
    created_at timestamptz NOT NULL
);
INSERT INTO customers
SELECT g, 'customer ' || g, g % 20,
       CASE WHEN g % 7 <> 0 THEN 'C' || g || '@Example.com' END,
       timestamptz '2026-01-01 00:00+00' + g * interval '1 hour'
  FROM generate_series(1, 3000) g;
CREATE INDEX customers_lower_email ON customers (lower(email));
CREATE INDEX customers_region ON customers (region, created_at DESC);
CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE,
    status text NOT NULL,
    prio prio NOT NULL,
    amount numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL,
    day timestamp NOT NULL,
    note text,
    payload jsonb,
    tags text[]
);
INSERT INTO orders
SELECT g, 1 + (g * 7907) % 3000,
       CASE WHEN g % 100 = 0 THEN 'pending' ELSE (ARRAY['new', 'paid', 'done'])[1 + g % 3] END,
       (ARRAY['low', 'mid', 'high'])[1 + g % 3]::prio, (g % 10000) / 100.0,
       timestamptz '2026-01-01 00:00+00' + g * interval '7 minutes',
       timestamp '2026-01-01' + g * interval '7 minutes',
       CASE WHEN g % 5 = 0 THEN 'note ' || g END,
       jsonb_build_object('id', g::text, 'k', g % 13),
       ARRAY['t' || g % 5, 'u' || g % 11]
  FROM generate_series(1, 20000) g;
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_customer ON orders (customer_id) INCLUDE (amount);
CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'pending';
CREATE INDEX orders_payload ON orders USING gin (payload jsonb_path_ops);
CREATE INDEX orders_tags ON orders USING gin (tags);
CREATE TABLE events (
    id bigint NOT NULL,
    kind int NOT NULL,
    at date NOT NULL,
    payload text
) PARTITION BY RANGE (at);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE events_2 (payload text, at date NOT NULL, kind int NOT NULL, id bigint NOT NULL);
ALTER TABLE events ATTACH PARTITION events_2 FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
INSERT INTO events SELECT g, g % 50, date '2026-01-01' + g % 365, 'p' || g
  FROM generate_series(1, 10000) g;
CREATE INDEX ON events (at);
CREATE TABLE pts (id int, p point, label text);
INSERT INTO pts SELECT g, point(g % 97, g % 89), 'l' || g FROM generate_series(1, 2000) g;
CREATE INDEX pts_p ON pts USING gist (p);
CREATE TABLE wide (id int, k int, filler text);
INSERT INTO wide SELECT g, g % 1000, repeat('x', 500) FROM generate_series(1, 20000) g;
CREATE INDEX wide_k ON wide (k);
CREATE TABLE logs (id int, msg text);
CREATE TABLE logs_a () INHERITS (logs);
INSERT INTO logs SELECT g, 'm' || g FROM generate_series(1, 1000) g;
INSERT INTO logs_a SELECT g, 'a' || g FROM generate_series(1, 2000) g;
CREATE MATERIALIZED VIEW region_totals AS
SELECT c.region, count(*) AS n, sum(o.amount) AS total
  FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 50;
RESET ROLE;
VACUUM ANALYZE;
