-- Statements from databases with other encodings read correctly, or with
-- '?' for what cannot be converted; reading never fails.
CREATE DATABASE aps_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'
  TEMPLATE template0;
SELECT apiscale.reset();
SELECT 1 AS "emoji😀";
\c aps_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION apiscale;
SELECT 1 AS "café";
SELECT query FROM apiscale.queries WHERE query LIKE '%AS "%' ORDER BY query COLLATE "C";
\c apiscale_regress
SELECT query FROM apiscale.queries WHERE query LIKE '%AS "%' ORDER BY query COLLATE "C";
DROP DATABASE aps_latin1;
