-- Texts and plans of other users are masked; reset() is for superusers.
CREATE ROLE aps_app LOGIN;
CREATE ROLE aps_other LOGIN;
GRANT SELECT ON items TO aps_app;
SELECT apiscale.reset();

SET ROLE aps_app;
SELECT count(*) FROM items WHERE id < 100;
SELECT query, calls FROM apiscale.queries WHERE query LIKE '%id < $1%';
SELECT apiscale.reset();
-- A failed statement whose message quotes a value.
SELECT count(*) FROM items WHERE id = 'not-a-number-42';

SET ROLE aps_other;
SELECT query, calls FROM apiscale.queries
 WHERE userid = 'aps_app'::regrole ORDER BY query, calls;
-- apiscale.errors: everyone sees the counts; the last message and
-- statement of another user's failures are masked (a message can quote a
-- value), one's own are not.
SELEC 'mine';
SELECT sqlstate, userid::regrole AS user, count, last_message, last_query
  FROM apiscale.errors
 WHERE userid IN ('aps_app'::regrole, 'aps_other'::regrole) ORDER BY sqlstate;
RESET ROLE;

-- pg_read_all_stats sees everything.
GRANT pg_read_all_stats TO aps_other;
SET ROLE aps_other;
SELECT query, calls FROM apiscale.queries
 WHERE userid = 'aps_app'::regrole ORDER BY query;
SELECT sqlstate, userid::regrole AS user, count, last_message, last_query
  FROM apiscale.errors
 WHERE userid IN ('aps_app'::regrole, 'aps_other'::regrole) ORDER BY sqlstate;
RESET ROLE;

REVOKE SELECT ON items FROM aps_app;
DROP ROLE aps_app;
DROP ROLE aps_other;
