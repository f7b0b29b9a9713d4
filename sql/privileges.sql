-- Texts and plans of other users are masked; reset() is for superusers.
CREATE ROLE aps_app LOGIN;
CREATE ROLE aps_other LOGIN;
GRANT SELECT ON items TO aps_app;
SELECT apiscale.reset();

SET ROLE aps_app;
SELECT count(*) FROM items WHERE id < 100;
SELECT query, calls FROM apiscale.queries WHERE query LIKE '%id < $1%';
SELECT apiscale.reset();

SET ROLE aps_other;
SELECT query, calls FROM apiscale.queries
 WHERE userid = 'aps_app'::regrole ORDER BY query, calls;
RESET ROLE;

-- pg_read_all_stats sees everything.
GRANT pg_read_all_stats TO aps_other;
SET ROLE aps_other;
SELECT query, calls FROM apiscale.queries
 WHERE userid = 'aps_app'::regrole ORDER BY query;
RESET ROLE;

REVOKE SELECT ON items FROM aps_app;
DROP ROLE aps_app;
DROP ROLE aps_other;
