-- GET /admin/users/export  (every recent user in one response: no LIMIT)
SELECT id, email, name FROM users WHERE created_at > now() - interval '30 days';
