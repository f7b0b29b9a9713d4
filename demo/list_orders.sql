-- GET /users/:id/orders  (orders.user_id has no index)
\set uid random(1, 20000)
SELECT o.id, p.name, o.quantity, o.status, o.created_at
  FROM orders o JOIN products p ON p.id = o.product_id
 WHERE o.user_id = :uid
 ORDER BY o.created_at DESC LIMIT 20;
