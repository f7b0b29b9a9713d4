-- GET /users/:id
\set uid random(1, 20000)
SELECT id, email, name, created_at FROM users WHERE id = :uid;
