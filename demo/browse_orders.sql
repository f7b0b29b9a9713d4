-- GET /orders?page=N  (page N of 20, found with OFFSET: deep pages read and
-- throw away every row before them)
\set page random(50, 2500)
SELECT id, status, created_at FROM orders ORDER BY id LIMIT 20 OFFSET (:page - 1) * 20;
