--
-- Every statement a client sends that ends in ERROR is a failed statement,
-- whatever the stage it failed in: counted once in apiscale.errors (by
-- SQLSTATE) and once in the window of error_rate_pct, never twice.
--
CREATE EXTENSION dblink;
CREATE TABLE fs_t (id int PRIMARY KEY, v int);
INSERT INTO fs_t VALUES (1, 0);

-- The window's counts, as apiscale.metrics() exports them (the reading
-- statement counts after it has read).
CREATE FUNCTION fs_window(OUT statements bigint, OUT failed bigint)
LANGUAGE sql AS $$
  SELECT (regexp_match(m, '\napiscale_window_statements (\d+)'))[1]::bigint,
         (regexp_match(m, '\napiscale_window_failed_statements (\d+)'))[1]::bigint
    FROM apiscale.metrics() AS m
$$;
-- This database's rows, timestamps masked.
CREATE VIEW fs_errors AS
  SELECT sqlstate, count, first_seen <= last_seen AS seen_in_order,
         last_seen > now() - interval '1 hour' AS recent, last_message, last_query
    FROM apiscale.errors
   WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   ORDER BY sqlstate;
-- Wait until a backend sleeps in pg_sleep().
CREATE FUNCTION fs_wait_sleeping(p int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. 3000 LOOP
    PERFORM pg_stat_clear_snapshot();
    IF EXISTS (SELECT FROM pg_stat_activity WHERE pid = p AND wait_event = 'PgSleep') THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN false;
END $$;

-- 1. One failure per stage, each counted once: reset() (1 statement), then
--    a syntax error, an unknown column (analysis), 1/0 folded by the
--    planner, 1/v at execution, a statement_timeout: 6 statements, 5 failed.
--    SET and RESET are utility statements that succeed: not counted.
SELECT apiscale.reset();
SELEC 1;
SELECT nocol FROM fs_t WHERE id = 42;
SELECT 1/0;
SELECT 10 / v FROM fs_t;
SET statement_timeout = '100ms';
SELECT pg_sleep(5);
RESET statement_timeout;
SELECT * FROM fs_window();
SELECT * FROM fs_errors;

-- 2. A cancel from another session (the dblink connection's backend runs
--    the statement, this one cancels it).  9 statements finish: reset(),
--    this session's 7 (five dblink calls, the wait, the cancel) and the
--    other backend's pg_backend_pid(); 1 fails: the other backend's
--    pg_sleep().
SELECT apiscale.reset();
SELECT dblink_connect('fs_other',
         format('host=%s port=%s dbname=%s',
                split_part(current_setting('unix_socket_directories'), ',', 1),
                current_setting('port'), current_database()));
SELECT pid AS other_pid FROM dblink('fs_other', 'SELECT pg_backend_pid()') AS t(pid int) \gset
SELECT dblink_send_query('fs_other', 'SELECT pg_sleep(60)');
SELECT fs_wait_sleeping(:other_pid);
SELECT pg_cancel_backend(:other_pid);
SET client_min_messages = warning;
SELECT * FROM dblink_get_result('fs_other', false) AS t(x text);
RESET client_min_messages;
SELECT dblink_disconnect('fs_other');
SELECT * FROM fs_window();
SELECT sqlstate, count, last_message, last_query FROM fs_errors;

-- 3. A multi-statement Query stops at its first error: one failure, the
--    statements before it finished, those after it never ran.  A syntax
--    error anywhere fails the whole string before anything runs.
--    reset() + 1 + failure, then a failure: 4 statements, 2 failed.
SELECT apiscale.reset();
SELECT 1 AS before \; SELECT 10 / v FROM fs_t \; SELECT 2 AS never;
SELECT 1 AS never \; SELEC 2;
SELECT * FROM fs_window();
SELECT sqlstate, count, last_query FROM fs_errors;

-- 4. In a failed transaction block every statement until ROLLBACK fails
--    (25P02), and is counted; BEGIN and ROLLBACK succeed.
SELECT apiscale.reset();
BEGIN;
SELECT 10 / v FROM fs_t;
SELECT 1;
SELECT 2;
ROLLBACK;
SELECT * FROM fs_window();
SELECT sqlstate, count, last_query FROM fs_errors;

-- 5. An error a function catches is not a failed statement; one it does
--    not catch fails the client's statement once, also when apiscale
--    tracks the function's own statements (track = all counts the inner
--    failure in apiscale.queries, not in the window).
CREATE FUNCTION fs_caught() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT 10 / v FROM fs_t);
EXCEPTION WHEN division_by_zero THEN
  RETURN -1;
END $$;
CREATE FUNCTION fs_uncaught() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT 10 / v FROM fs_t);
END $$;
SET apiscale.track = 'all';
SELECT apiscale.reset();
SELECT fs_caught();
SELECT fs_uncaught();
SELECT * FROM fs_window();
SELECT sqlstate, count, last_query FROM fs_errors;
SELECT query, calls, errors FROM apiscale.queries
 WHERE query LIKE '%fs_t%' OR query LIKE '%fs_%caught%' ORDER BY query COLLATE "C";
RESET apiscale.track;

-- 6. Independent of log_min_messages (with panic, no ERROR reaches the
--    server log, nor emit_log_hook): reset(), two failures.
SELECT apiscale.reset();
SET log_min_messages = panic;
SELEC 2;
SELECT 10 / v FROM fs_t;
RESET log_min_messages;
SELECT * FROM fs_window();
SELECT sqlstate, count FROM fs_errors;

-- 7. The extended protocol (pgbench -M extended / prepared): a Parse error,
--    a Bind error (a parameter that is no integer), an Execute error, and
--    a pipeline whose first statement fails (the server skips the rest up
--    to Sync): reset() and four failures.
\setenv PGDATABASE :DBNAME
SELECT apiscale.reset();
\! echo 'SELEC 3;' | pgbench -n -t 1 -M extended -f - >/dev/null 2>&1
\! echo 'SELECT :x::int AS bad_param;' | pgbench -n -t 1 -M extended -D x=abc -f - >/dev/null 2>&1
\! echo 'SELECT 10 / v AS prepared_exec FROM fs_t;' | pgbench -n -t 1 -M prepared -f - >/dev/null 2>&1
\! printf '\\startpipeline\nSELECT 10 / v AS piped FROM fs_t WHERE id = 1;\nSELECT 1 AS skipped;\n\\endpipeline\n' | pgbench -n -t 1 -M extended -f - >/dev/null 2>&1
SELECT * FROM fs_window();
SELECT sqlstate, count, last_message, last_query FROM fs_errors;
-- Each execution that failed is in its statement's errors; nothing ran
-- the statement that was skipped.
SELECT query, calls, errors FROM apiscale.queries
 WHERE query LIKE '%fs_t%' OR query LIKE '%skipped%' ORDER BY query COLLATE "C";

-- 8. The text kept is the failing statement's, normalized: constants are
--    $n, in a multi-statement string only the failing statement (once its
--    position is known), and no literal is shown.
SELECT apiscale.reset();
SELECT 'secret-1' AS a \; SELECT nocol FROM fs_t WHERE v = 'secret-2';
SELECT 'secret-3' AS a \; SELECT 'secret-4' || 10 / v FROM fs_t;
SELECT sqlstate, last_query FROM fs_errors;
SELECT count(*) AS literals FROM apiscale.errors WHERE last_query LIKE '%secret%';

-- 9. With apiscale.enabled = off nothing is counted.
SELECT apiscale.reset();
SET apiscale.enabled = off;
SELEC 4;
SELECT 10 / v FROM fs_t;
RESET apiscale.enabled;
SELECT * FROM fs_window();
SELECT count(*) FROM fs_errors;

DROP VIEW fs_errors;
DROP FUNCTION fs_window(), fs_wait_sleeping(int), fs_caught(), fs_uncaught();
DROP TABLE fs_t;
DROP EXTENSION dblink;
SELECT apiscale.reset();
