--
-- Anti-patterns: each found in a case built for it, not in its near miss
--
SET apiscale.unbounded_rows = 100;
SET apiscale.n_plus_one_calls = 5;
CREATE TABLE ap_items (id int PRIMARY KEY, owner int, name text);
INSERT INTO ap_items SELECT g, g % 10, 'item ' || g FROM generate_series(1, 1000) g;
ANALYZE ap_items;
SELECT apiscale.reset();

\o /dev/null
-- select_star: * and t.* in target lists, RETURNING *
SELECT * FROM ap_items WHERE id = 1;
SELECT i.* FROM ap_items i WHERE i.id = 2;
WITH c AS (SELECT * FROM ap_items WHERE owner = 3) SELECT count(id) FROM c;
UPDATE ap_items SET name = name WHERE id = 4 RETURNING *;
-- (i.* has the query id of the statement above: one entry, two calls)
-- near misses: count(*), EXISTS (SELECT * ...), named columns
SELECT count(*) FROM ap_items;
SELECT id FROM ap_items i WHERE EXISTS (SELECT * FROM ap_items j WHERE j.id = i.id + 1) AND i.id < 3;
SELECT id, name FROM ap_items WHERE id = 5;

-- unbounded_result: 1000 rows with no LIMIT; near misses: LIMITed, small
SELECT id, name FROM ap_items;
SELECT id, name FROM ap_items;
SELECT id, name FROM ap_items ORDER BY id LIMIT 500;
SELECT id FROM ap_items WHERE owner = 1 AND id < 200;
SELECT id FROM ap_items FETCH FIRST 300 ROWS ONLY;

-- large_offset: skipped 500 rows; near miss: a small OFFSET
SELECT id FROM ap_items ORDER BY id LIMIT 10 OFFSET 500;
SELECT id FROM ap_items ORDER BY id LIMIT 10 OFFSET 20;

-- n_plus_one: 7 single-row runs in one transaction
BEGIN;
SELECT name FROM ap_items WHERE id = 11;
SELECT name FROM ap_items WHERE id = 12;
SELECT name FROM ap_items WHERE id = 13;
SELECT name FROM ap_items WHERE id = 14;
SELECT name FROM ap_items WHERE id = 15;
SELECT name FROM ap_items WHERE id = 16;
SELECT name FROM ap_items WHERE id = 17;
COMMIT;
-- near misses: 4 runs (fewer than n_plus_one_calls); the same runs spread
-- over transactions; runs returning several rows; different statements
BEGIN;
SELECT owner FROM ap_items WHERE id = 1;
SELECT owner FROM ap_items WHERE id = 2;
SELECT owner FROM ap_items WHERE id = 3;
SELECT owner FROM ap_items WHERE id = 4;
COMMIT;
SELECT id FROM ap_items WHERE name = 'item 1';
SELECT id FROM ap_items WHERE name = 'item 2';
SELECT id FROM ap_items WHERE name = 'item 3';
SELECT id FROM ap_items WHERE name = 'item 4';
SELECT id FROM ap_items WHERE name = 'item 5';
SELECT id FROM ap_items WHERE name = 'item 6';
BEGIN;
SELECT id FROM ap_items WHERE owner = 1 AND id < 30;
SELECT id FROM ap_items WHERE owner = 2 AND id < 30;
SELECT id FROM ap_items WHERE owner = 3 AND id < 30;
SELECT id FROM ap_items WHERE owner = 4 AND id < 30;
SELECT id FROM ap_items WHERE owner = 5 AND id < 30;
SELECT id FROM ap_items WHERE owner = 6 AND id < 30;
COMMIT;
BEGIN;
SELECT id FROM ap_items WHERE id = 1;
SELECT owner FROM ap_items WHERE id = 1;
SELECT id, owner FROM ap_items WHERE id = 1;
SELECT owner, name FROM ap_items WHERE id = 1;
SELECT id, name FROM ap_items WHERE id = 1;
SELECT name, owner, id FROM ap_items WHERE id = 1;
COMMIT;
\o

SELECT kind, query, calls FROM apiscale.antipatterns
 WHERE query LIKE '%ap_items%' ORDER BY kind, query;
SELECT kind, detail FROM apiscale.antipatterns
 WHERE query LIKE '%ap_items%' AND kind <> 'select_star' ORDER BY kind;

-- Review cases: SELECT * behind PREPARE; a loop of single-row INSERTs is
-- not an N+1 read; OFFSET without LIMIT bounds nothing; an OFFSET past the
-- end skips what there is; a truncated identifier's NOTICE shows once.
SELECT apiscale.reset();
\o /dev/null
PREPARE star_p(int) AS SELECT * FROM ap_items WHERE owner = $1 AND id < 20;
EXECUTE star_p(1);
DEALLOCATE star_p;
BEGIN;
INSERT INTO ap_items VALUES (2001, 1, 'x');
INSERT INTO ap_items VALUES (2002, 1, 'x');
INSERT INTO ap_items VALUES (2003, 1, 'x');
INSERT INTO ap_items VALUES (2004, 1, 'x');
INSERT INTO ap_items VALUES (2005, 1, 'x');
INSERT INTO ap_items VALUES (2006, 1, 'x');
COMMIT;
SELECT id FROM ap_items OFFSET 5;
SELECT id FROM ap_items ORDER BY id LIMIT 10 OFFSET 6000;
\o
SELECT 1 AS aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;
SELECT kind, query, calls, detail FROM apiscale.antipatterns
 WHERE query LIKE '%ap_items%' ORDER BY kind, query;

-- The limits are settings: with n_plus_one_calls = 0 the check is off.
SET apiscale.n_plus_one_calls = 0;
SELECT apiscale.reset();
\o /dev/null
BEGIN;
SELECT name FROM ap_items WHERE id = 11;
SELECT name FROM ap_items WHERE id = 12;
SELECT name FROM ap_items WHERE id = 13;
SELECT name FROM ap_items WHERE id = 14;
SELECT name FROM ap_items WHERE id = 15;
SELECT name FROM ap_items WHERE id = 16;
COMMIT;
\o
SELECT count(*) AS n_plus_one FROM apiscale.antipatterns WHERE kind = 'n_plus_one';
RESET apiscale.n_plus_one_calls;
RESET apiscale.unbounded_rows;
DROP TABLE ap_items;
SELECT apiscale.reset();
