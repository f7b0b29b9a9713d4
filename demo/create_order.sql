-- POST /orders
\set uid random(1, 20000)
\set pid random(1, 500)
BEGIN;
SELECT price FROM products WHERE id = :pid;
INSERT INTO orders (user_id, product_id, status, quantity, created_at)
VALUES (:uid, :pid, 'new', 1, now());
COMMIT;
