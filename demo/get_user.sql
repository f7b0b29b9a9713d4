-- GET /users/:id  (the ORM asks for every column: SELECT *)
\set uid random(1, 20000)
SELECT * FROM users WHERE id = :uid;
