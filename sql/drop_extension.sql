DROP EXTENSION apiscale;
SELECT count(*) FROM pg_namespace WHERE nspname = 'apiscale';
