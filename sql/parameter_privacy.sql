--
-- Literal and parameter values of one user's statements never reach
-- another user: not through any view, nor any function that user may
-- call.  Superusers (and pg_read_all_stats) see them: the values are there
-- to be hidden.
--
-- A user runs statements whose value is the marker 'pv-4711': as a
-- literal, as a parameter of a prepared statement (a custom plan makes it
-- a constant of the plan), in a failing statement whose message quotes it,
-- every run slow (slow_query_ms = 0: plans kept), sampled for the index
-- advisor (which keeps the value it saw for a partial index).  Then
-- readers read every view of the extension and every function they may
-- call without arguments (and queries_internal(true), which has the
-- plans), and count the rows that show the marker.
--
CREATE ROLE aps_writer;
CREATE ROLE aps_snoop;
CREATE ROLE aps_stats IN ROLE pg_read_all_stats;
CREATE TABLE pv_t (id int, note text);
INSERT INTO pv_t SELECT g, 'note ' || g FROM generate_series(1, 5000) g;
INSERT INTO pv_t VALUES (0, 'pv-4711');
ANALYZE pv_t;
GRANT SELECT ON pv_t TO aps_writer;

-- The objects a reader may read, and how many of their rows show needle.
-- Reads are not recorded (apiscale.enabled = off is set by the caller).
CREATE FUNCTION pv_shows(needle text, OUT object text, OUT rows_showing bigint)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT c.oid::regclass::text AS name,
                  format('SELECT count(*) FROM %s v WHERE v::text LIKE $1', c.oid::regclass) AS q
             FROM pg_class c
            WHERE c.relnamespace = 'apiscale'::regnamespace AND c.relkind = 'v'
              AND has_table_privilege(c.oid, 'SELECT')
           UNION ALL
           SELECT p.oid::regprocedure::text,
                  format('SELECT count(*) FROM %s(%s) v WHERE v::text LIKE $1', p.oid::regproc,
                         CASE WHEN p.pronargs = 1 THEN 'true' ELSE '' END)
             FROM pg_proc p
            WHERE p.pronamespace = 'apiscale'::regnamespace
              AND (p.pronargs = 0 OR p.oid = 'apiscale.queries_internal(boolean)'::regprocedure)
              AND p.proname <> 'reset'
              AND has_function_privilege(p.oid, 'EXECUTE')
           ORDER BY 1 LOOP
    object := r.name;
    EXECUTE r.q INTO rows_showing USING '%' || needle || '%';
    RETURN NEXT;
  END LOOP;
END
$$;

SELECT apiscale.reset();
SET apiscale.slow_query_ms = 0;
SET apiscale.sample_rate = 1;
SET apiscale.min_table_rows = 0;
SET plan_cache_mode = force_custom_plan;
SET ROLE aps_writer;
SELECT id FROM pv_t WHERE note = 'pv-4711';
SELECT id FROM pv_t WHERE note = 'pv-4711';
SELECT id FROM pv_t WHERE note = 'pv-4711';
PREPARE pv_p(text) AS SELECT count(*) FROM pv_t WHERE note = $1 AND id >= 0;
EXECUTE pv_p('pv-4711');
EXECUTE pv_p('pv-4711');
EXECUTE pv_p('pv-4711');
SELECT count(*) FROM pv_t WHERE id = 'pv-4711';
DEALLOCATE pv_p;
RESET ROLE;
RESET plan_cache_mode;
SET apiscale.enabled = off;

-- Another user: nothing shows the value, in all it can read.
SET ROLE aps_snoop;
SELECT count(*) AS objects_read, count(*) FILTER (WHERE rows_showing > 0) AS showing
  FROM pv_shows('pv-4711');
SELECT * FROM pv_shows('pv-4711') WHERE rows_showing > 0;
RESET ROLE;

-- A superuser sees the value (where a view shows statements' values), and
-- so does a member of pg_read_all_stats.
SELECT object FROM pv_shows('pv-4711') WHERE rows_showing > 0 ORDER BY object;
SET ROLE aps_stats;
SELECT object FROM pv_shows('pv-4711') WHERE rows_showing > 0 ORDER BY object;
RESET ROLE;

RESET apiscale.enabled;
RESET apiscale.slow_query_ms;
RESET apiscale.sample_rate;
RESET apiscale.min_table_rows;
DROP FUNCTION pv_shows(text);
DROP TABLE pv_t;
DROP ROLE aps_writer, aps_snoop, aps_stats;
