-- apiscale.track: top-level statements only, or nested ones too.
CREATE FUNCTION item_price(i int) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT price FROM items WHERE id = i);
END
$$;
CREATE PROCEDURE touch_item(i int) LANGUAGE plpgsql AS $$
BEGIN
    UPDATE items SET price = price WHERE id = i;
END
$$;

SET apiscale.track = top;
SELECT apiscale.reset();
SELECT item_price(1);
SELECT item_price(2);
CALL touch_item(1);
DO $$ BEGIN PERFORM count(*) FROM items WHERE category = 'c5'; END $$;
SELECT query, calls, rows FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";

SET apiscale.track = 'all';
SELECT apiscale.reset();
SELECT item_price(3);
SELECT item_price(4);
CALL touch_item(2);
DO $$ BEGIN PERFORM count(*) FROM items WHERE category = 'c5'; END $$;
SELECT query, calls, rows FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";

-- enabled = off: nothing is recorded at all.
SET apiscale.enabled = off;
SELECT apiscale.reset();
SELECT item_price(5);
SET apiscale.enabled = on;
SELECT count(*) AS recorded_while_off FROM apiscale.queries
 WHERE query LIKE '%item_price%' OR query LIKE '%FROM items WHERE id = i%';
RESET apiscale.track;

-- A statement run by a utility (EXPLAIN, COPY) shares the query string:
-- its text is its own utility statement, not the whole string, and the
-- literals of the statements around it never show.
SET apiscale.track = 'all';
SELECT apiscale.reset();
\o /dev/null
SELECT 'before-secret' AS a \; EXPLAIN (ANALYZE, COSTS OFF) SELECT 1 WHERE 5 = 5 \; SELECT 'after-secret', 123456;
COPY (SELECT id FROM items WHERE id < 4) TO STDOUT;
\o
SELECT query, calls FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";
SELECT count(*) AS leaked FROM apiscale.queries
 WHERE query LIKE '%secret%' OR query LIKE '%123456%';
RESET apiscale.track;

-- A function the planner runs (a STABLE function folded for an estimate)
-- or ExecutorStart runs (initial partition pruning) is nested in the
-- client's statement too: with track = top its statements are not
-- tracked.  The EXECUTE of a generic plan is not planned again: only its
-- start runs the function.
CREATE TABLE parted (k int, v int) PARTITION BY LIST (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES IN (2);
CREATE FUNCTION current_k() RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT min(id) FROM items);
END
$$;
PREPARE parted_count AS SELECT count(*) FROM parted WHERE k = current_k();
SET plan_cache_mode = force_generic_plan;
EXECUTE parted_count;
SET apiscale.track = top;
SELECT apiscale.reset();
SELECT v FROM parted WHERE k = current_k();
EXECUTE parted_count;
EXECUTE parted_count;
SELECT query, calls FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";
RESET apiscale.track;
RESET plan_cache_mode;
DEALLOCATE parted_count;
DROP TABLE parted;
DROP FUNCTION current_k();

-- A cursor a SECURITY DEFINER function opened runs as the function's owner
-- and is counted for it, even when COMMIT closes it as the session's user.
CREATE ROLE regress_nesting_owner;
CREATE TABLE owned_items AS SELECT id FROM items WHERE id <= 10;
ALTER TABLE owned_items OWNER TO regress_nesting_owner;
CREATE FUNCTION owner_cursor() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    c refcursor;
    r int;
BEGIN
    OPEN c FOR SELECT id FROM owned_items ORDER BY id;
    FETCH c INTO r;
    RETURN r;
END
$$;
ALTER FUNCTION owner_cursor() OWNER TO regress_nesting_owner;
SET apiscale.track = 'all';
SELECT apiscale.reset();
BEGIN;
SELECT owner_cursor();
COMMIT;
SELECT userid::regrole AS user, query, calls FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%' ORDER BY query COLLATE "C";
RESET apiscale.track;
DROP FUNCTION owner_cursor();
DROP TABLE owned_items;
DROP ROLE regress_nesting_owner;
