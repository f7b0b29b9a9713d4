-- Failed and cancelled executions are counted in "errors".
CREATE TABLE divisors (d int);
INSERT INTO divisors VALUES (0);
SELECT apiscale.reset();

SELECT 10 / d FROM divisors;
SELECT 20 / d FROM divisors;
-- The same statement succeeds once it can.
UPDATE divisors SET d = 5;
SELECT 30 / d FROM divisors;

-- statement_timeout cancels a running statement.
SET statement_timeout = '100ms';
SELECT pg_sleep(5);
RESET statement_timeout;

SELECT query, calls, errors FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' AND query NOT LIKE 'UPDATE%'
 ORDER BY query COLLATE "C";

-- A nested error caught by an exception block counts for the nested
-- statement only; the outer statement succeeded.
SET apiscale.track = 'all';
SELECT apiscale.reset();
CREATE FUNCTION safe_div(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int;
BEGIN
    BEGIN
        SELECT n / (d - 5) INTO r FROM divisors;
    EXCEPTION WHEN division_by_zero THEN
        r := -1;
    END;
    RETURN r;
END
$$;
SELECT safe_div(1);
SELECT query, calls, errors FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";
RESET apiscale.track;

-- A statement refused as its execution starts (permission denied, raised
-- by ExecutorStart) failed: it counts in errors, once, and not in calls;
-- so does a prepared one, each time it is refused.
CREATE ROLE regress_errors_user;
CREATE TABLE secret (v int);
CREATE FUNCTION secret_count() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT count(*) FROM secret);
END
$$;
SELECT apiscale.reset();
SET ROLE regress_errors_user;
SELECT v FROM secret;
PREPARE secret_next AS SELECT v + 1 FROM secret;
EXECUTE secret_next;
EXECUTE secret_next;
RESET ROLE;
SELECT userid::regrole AS user, query, calls, errors FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";

-- With track = all, a function's statement refused at its start counts
-- for itself, and the client's statement that failed with it for itself.
SET apiscale.track = 'all';
SELECT apiscale.reset();
SET ROLE regress_errors_user;
SELECT secret_count();
RESET ROLE;
SELECT userid::regrole AS user, query, calls, errors FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";
RESET apiscale.track;
DEALLOCATE secret_next;
DROP FUNCTION secret_count();
DROP TABLE secret;
DROP ROLE regress_errors_user;

-- A statement that fails inside a SECURITY DEFINER function is counted
-- for the user who ran it: the error unwinds before the function's owner
-- is switched back.
CREATE ROLE regress_errors_owner;
CREATE TABLE owned (v int);
INSERT INTO owned VALUES (1);
ALTER TABLE owned OWNER TO regress_errors_owner;
CREATE FUNCTION owner_div() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    RETURN (SELECT v / (v - 1) FROM owned);
END
$$;
ALTER FUNCTION owner_div() OWNER TO regress_errors_owner;
SELECT apiscale.reset();
SELECT owner_div();
SELECT userid::regrole AS user, query, calls, errors FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";
DROP FUNCTION owner_div();
DROP TABLE owned;
DROP ROLE regress_errors_owner;
