-- GET /admin/dashboard  (a heavy report, the slow endpoint)
SELECT p.name, count(*) AS orders, sum(o.quantity * p.price) AS revenue
  FROM orders o JOIN products p ON p.id = o.product_id
 WHERE o.status = 'paid'
 GROUP BY p.name ORDER BY revenue DESC LIMIT 10;
