-- Runs on a server without shared_preload_libraries = 'apiscale'.
CREATE EXTENSION apiscale;
SELECT * FROM apiscale.queries;
SELECT * FROM apiscale.slow_queries;
SELECT apiscale.reset();
SELECT * FROM apiscale.info();
-- A scraper reads why, not an empty text.
SELECT apiscale.metrics();
SELECT * FROM apiscale.errors;
SELECT * FROM apiscale.cache_advice;
SELECT * FROM apiscale.capacity;
-- Needs no shared memory.
SELECT apiscale.histogram_percentiles(ARRAY[1.0, 2.0, 3.0], ARRAY[0.5]);
-- Reads the catalogs only.
SELECT count(*) >= 0 AS readable FROM apiscale.index_review;
DROP EXTENSION apiscale;
