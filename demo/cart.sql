-- GET /users/:id/cart  (an N+1 loop: the cart lines, then one query per
-- product, in one transaction)
\set uid random(1, 20000)
BEGIN;
SELECT id, email FROM users WHERE id = :uid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
\set pid random(1, 500)
SELECT name, price FROM products WHERE id = :pid;
COMMIT;
