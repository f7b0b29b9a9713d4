-- Runs on a server started with apiscale.max_cache_queries = 10: a read
-- statement beyond the tenth takes the slot of the quietest one (the
-- fewest runs in the last two minutes, counting those before it took its
-- slot), if it is busier, when its runs reach 8, 16, 32, 64 or a multiple
-- of 128.  A statement's runs count from the one that took its slot.
CREATE EXTENSION apiscale;
SHOW apiscale.max_cache_queries;
CREATE TABLE ce (id int PRIMARY KEY, v int);
INSERT INTO ce SELECT g, g FROM generate_series(1, 10) g;
SET apiscale.cache_sample_rate = 1.0;
SELECT apiscale.reset();

-- Twelve statements, told apart by their number of columns.
CREATE VIEW slots AS
  SELECT array_length(string_to_array(split_part(query, ' FROM', 1), ','), 1)
           AS columns, calls
    FROM apiscale.cache_advice WHERE query LIKE '% FROM ce WHERE id = $1'
   ORDER BY 1;

-- reset() and the generating SELECT below take two slots; the twelve
-- run 20 times each, one after the other: the first eight take the free
-- slots, the next two those of reset() and the generator (one run each)
-- at their 8th run, the last two find every slot as busy as they are.
\set ECHO none
\o /dev/null
SELECT format('SELECT %s FROM ce WHERE id = %s', repeat('v, ', k - 1) || 'v', 1 + r % 10)
  FROM generate_series(1, 12) k, generate_series(1, 20) r ORDER BY k, r \gexec
\o
\set ECHO all
SELECT * FROM slots;

-- A busy statement takes the slot of a quiet one (at its 32nd run: the
-- others have 20), and counts its runs from then on.
\set ECHO none
\o /dev/null
SELECT format('SELECT %s FROM ce WHERE id = %s', repeat('v, ', 11) || 'v', 1 + r % 10)
  FROM generate_series(1, 100) r \gexec
\o
\set ECHO all
SELECT count(*) AS slots FROM apiscale.cache_advice;
SELECT * FROM slots;
DROP VIEW slots;
DROP TABLE ce;
SELECT apiscale.reset();
DROP EXTENSION apiscale;
