-- scan.sql: a scan-heavy pgbench script for the "index advisor cost"
-- section of tests/bench/run.sh (tables created by that script).
-- scan_orders has 50,000 rows and no index but its primary key, so every
-- statement plans a Seq Scan with a filter, and two of them a Sort: the
-- plans the index advisor instruments and walks.
\set code random(1, 5000)
\set status random(0, 9)
\set region random(0, 19)
-- Equality filter, about 10 of 50,000 rows pass.
SELECT id, amount FROM scan_orders WHERE code = :code;
-- Filter then top-N sort: the "latest orders with this status" page.
SELECT id, created_at, amount
  FROM scan_orders
 WHERE status = :status
 ORDER BY created_at DESC
 LIMIT 20;
-- A hash join of two filtered scans, aggregated and sorted.
SELECT c.name, count(*), sum(o.amount)
  FROM scan_orders o
  JOIN scan_customers c ON c.id = o.customer_id
 WHERE c.region = :region AND o.status = :status
 GROUP BY c.name
 ORDER BY sum(o.amount) DESC
 LIMIT 10;
