-- The extension installs into its own schema, and starts empty.
CREATE EXTENSION apiscale;
SELECT extname, extversion, nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'apiscale';
SELECT apiscale.reset();
SELECT count(*) AS rows_after_reset
  FROM apiscale.queries WHERE query NOT LIKE '%apiscale%';
-- The table holds what was run since the reset: reset() itself, the count
-- above, and this statement, which has an entry from its start.
SELECT entries, max_queries, evicted FROM apiscale.info();
-- Parameters, with their defaults.
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'apiscale.%' ORDER BY name;
-- The prefix is reserved: a typo is an error, not a silent placeholder.
SET apiscale.slow_querry_ms = 10;
