--
-- Extension versions: a database created at 1.0 reaches the default
-- version with ALTER EXTENSION apiscale UPDATE, and then holds exactly what
-- a fresh CREATE EXTENSION creates.  Before the update, the 1.0 objects
-- work with the current library.
--
-- Everything that makes up an installed version, one row per thing:
-- - each member object with its definition, owner, privileges, options
--   (reloptions: security_barrier, security_invoker), comment and the
--   initial privileges pg_dump relies on (pg_init_privs);
-- - each column of a member view or table: type, privileges, comment,
--   initial privileges;
-- - every function, relation and type in the extension's schema, member
--   or not (an object a script left behind);
-- - the schema: owner, privileges, comment, initial privileges;
-- - the extension: relocatable, owner, configuration tables.
CREATE FUNCTION ext_snapshot(OUT object text, OUT definition text)
RETURNS SETOF record LANGUAGE sql AS $$
  WITH ext AS (
    SELECT e.oid, e.extnamespace AS nsp FROM pg_extension e
     WHERE e.extname = 'apiscale'
  ),
  member AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
       AND d.deptype = 'e'
  ),
  -- what the schema holds, and what the extension holds elsewhere
  obj AS (
    SELECT 'pg_proc'::regclass AS classid, p.oid AS objid FROM pg_proc p, ext
     WHERE p.pronamespace = ext.nsp
    UNION
    SELECT 'pg_class'::regclass, c.oid FROM pg_class c, ext
     WHERE c.relnamespace = ext.nsp
    UNION
    -- types of their own (not a relation's row type, not an array)
    SELECT 'pg_type'::regclass, t.oid FROM pg_type t, ext
     WHERE t.typnamespace = ext.nsp AND t.typrelid = 0
       AND NOT EXISTS (SELECT FROM pg_type e WHERE e.typarray = t.oid)
    UNION
    SELECT classid, objid FROM member
  )
  SELECT pg_describe_object(o.classid, o.objid, 0),
         concat_ws(' | ',
           CASE WHEN (o.classid, o.objid) IN (SELECT * FROM member)
                THEN 'member' ELSE 'NOT A MEMBER' END,
           CASE o.classid
             WHEN 'pg_proc'::regclass THEN
               (SELECT pg_get_functiondef(p.oid) || ' owner ' || p.proowner::regrole
                       || ' acl ' || coalesce(p.proacl::text, '-')
                  FROM pg_proc p WHERE p.oid = o.objid)
             WHEN 'pg_class'::regclass THEN
               (SELECT c.relkind::text || ' ' || coalesce(pg_get_viewdef(c.oid), '')
                       || ' owner ' || c.relowner::regrole
                       || ' options ' || coalesce(c.reloptions::text, '-')
                       || ' acl ' || coalesce(c.relacl::text, '-')
                  FROM pg_class c WHERE c.oid = o.objid)
             WHEN 'pg_type'::regclass THEN
               (SELECT t.typtype::text || ' owner ' || t.typowner::regrole
                       || ' acl ' || coalesce(t.typacl::text, '-')
                  FROM pg_type t WHERE t.oid = o.objid)
             ELSE 'kind ' || o.classid::regclass::text
           END,
           'comment ' || obj_description(o.objid, o.classid::regclass::text),
           (SELECT 'initprivs ' || i.initprivs::text FROM pg_init_privs i
             WHERE i.classoid = o.classid AND i.objoid = o.objid
               AND i.objsubid = 0))
    FROM obj o
  UNION ALL
  SELECT 'column ' || c.oid::regclass || '.' || quote_ident(a.attname),
         concat_ws(' | ', a.attnum || ' ' || format_type(a.atttypid, a.atttypmod),
                   'acl ' || coalesce(a.attacl::text, '-'),
                   'comment ' || col_description(c.oid, a.attnum),
                   (SELECT 'initprivs ' || i.initprivs::text FROM pg_init_privs i
                     WHERE i.classoid = 'pg_class'::regclass AND i.objoid = c.oid
                       AND i.objsubid = a.attnum))
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid, ext
   WHERE c.relnamespace = ext.nsp AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'extension schema ' || n.nspname,
         concat_ws(' | ', 'owner ' || n.nspowner::regrole,
                   'acl ' || coalesce(n.nspacl::text, '-'),
                   'comment ' || obj_description(n.oid, 'pg_namespace'),
                   (SELECT 'initprivs ' || i.initprivs::text FROM pg_init_privs i
                     WHERE i.classoid = 'pg_namespace'::regclass
                       AND i.objoid = n.oid))
    FROM pg_namespace n, ext WHERE n.oid = ext.nsp
  UNION ALL
  SELECT 'extension apiscale',
         concat_ws(' | ', 'relocatable ' || e.extrelocatable,
                   'owner ' || e.extowner::regrole,
                   'config ' || coalesce(e.extconfig::regclass[]::text, '-'),
                   'conditions ' || coalesce(e.extcondition::text, '-'))
    FROM pg_extension e WHERE e.extname = 'apiscale'
$$;

-- What a role with no grants of its own may not do: the functions it
-- cannot execute and the relations it cannot read.
CREATE ROLE aps_nobody;
CREATE FUNCTION ext_refused(OUT object text)
RETURNS SETOF text LANGUAGE sql AS $$
  SELECT p.oid::regprocedure::text FROM pg_proc p
   WHERE p.pronamespace = 'apiscale'::regnamespace
     AND NOT has_function_privilege('aps_nobody', p.oid, 'EXECUTE')
  UNION ALL
  SELECT c.oid::regclass::text FROM pg_class c
   WHERE c.relnamespace = 'apiscale'::regnamespace
     AND NOT has_table_privilege('aps_nobody', c.oid, 'SELECT')
  ORDER BY 1
$$;

-- Every view and every function without arguments, read; one row each,
-- 'ok' or the error it raised.
CREATE FUNCTION ext_read_all(OUT object text, OUT result text)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT c.oid::regclass::text AS name, 'SELECT count(*) FROM ' || c.oid::regclass AS q
             FROM pg_class c
            WHERE c.relnamespace = 'apiscale'::regnamespace AND c.relkind = 'v'
           UNION ALL
           SELECT p.oid::regprocedure::text, 'SELECT count(*) FROM ' || p.oid::regproc || '()'
             FROM pg_proc p
            WHERE p.pronamespace = 'apiscale'::regnamespace AND p.pronargs = 0
           ORDER BY 1 LOOP
    object := r.name;
    BEGIN
      EXECUTE r.q;
      result := 'ok';
    EXCEPTION WHEN OTHERS THEN
      result := SQLERRM;
    END;
    RETURN NEXT;
  END LOOP;
END
$$;

-- Each install starts from nothing: the schema, which DROP EXTENSION
-- leaves, goes too (and must be empty by then).
DROP EXTENSION apiscale;
DROP SCHEMA apiscale;
CREATE EXTENSION apiscale VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'apiscale';
-- A database still at 1.0 after a restart with the new library: its
-- objects call the new library's functions.
SELECT * FROM ext_read_all();
SELECT * FROM ext_refused();
ALTER EXTENSION apiscale UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'apiscale';
CREATE TABLE ext_updated AS SELECT * FROM ext_snapshot();
SELECT * FROM ext_read_all();
SELECT * FROM ext_refused();
-- As a role without grants: reading is open, reset() and report_pool()
-- are not.
SET ROLE aps_nobody;
SELECT count(*) >= 0 AS reads FROM apiscale.queries;
SELECT apiscale.reset();
SELECT apiscale.report_pool('shop', 8, 2, 1, 0, 0);
RESET ROLE;

DROP EXTENSION apiscale;
DROP SCHEMA apiscale;
CREATE EXTENSION apiscale;
SELECT extversion FROM pg_extension WHERE extname = 'apiscale';
CREATE TABLE ext_fresh AS SELECT * FROM ext_snapshot();
SELECT * FROM ext_refused();

-- Something was compared...
SELECT (SELECT count(*) FROM ext_updated) = (SELECT count(*) FROM ext_fresh)
       AS same_count,
       (SELECT count(*) FROM ext_fresh WHERE object LIKE 'column %') > 100
       AS has_columns,
       (SELECT count(*) FROM ext_fresh WHERE definition LIKE 'member%') >= 20
       AS has_members,
       (SELECT count(*) FROM ext_fresh
         WHERE definition LIKE '%initprivs%') > 0 AS has_initprivs;
-- ... and nothing differs.
(SELECT 'only updated' AS install, * FROM ext_updated
 EXCEPT SELECT 'only updated', * FROM ext_fresh)
UNION ALL
(SELECT 'only fresh', * FROM ext_fresh
 EXCEPT SELECT 'only fresh', * FROM ext_updated)
ORDER BY object, install;

-- The comparison sees each kind of difference: every change below, made
-- to the fresh install and undone, makes the snapshots differ.
CREATE FUNCTION ext_sees(change text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  BEGIN
    EXECUTE change;
    SELECT count(*) INTO n
      FROM ((SELECT * FROM ext_snapshot() EXCEPT SELECT * FROM ext_fresh)
            UNION ALL
            (SELECT * FROM ext_fresh EXCEPT SELECT * FROM ext_snapshot())) d;
    RAISE EXCEPTION USING ERRCODE = 'AP001';
  EXCEPTION WHEN SQLSTATE 'AP001' THEN
    NULL;                       -- undone; n keeps its value
  END;
  RETURN n;
END
$$;
SELECT change, ext_sees(change) AS rows_differ FROM (VALUES
  ('GRANT EXECUTE ON FUNCTION apiscale.reset() TO aps_nobody'),
  ('REVOKE SELECT ON apiscale.queries FROM PUBLIC'),
  ('GRANT SELECT (calls) ON apiscale.queries TO aps_nobody'),
  ('COMMENT ON FUNCTION apiscale.info() IS ''changed'''),
  ('COMMENT ON COLUMN apiscale.queries.calls IS ''changed'''),
  ('COMMENT ON SCHEMA apiscale IS ''changed'''),
  ('ALTER VIEW apiscale.queries SET (security_barrier)'),
  ('ALTER FUNCTION apiscale.info() OWNER TO aps_nobody'),
  ('ALTER SCHEMA apiscale OWNER TO aps_nobody'),
  ('GRANT CREATE ON SCHEMA apiscale TO aps_nobody'),
  ('DELETE FROM pg_init_privs WHERE objoid = ''apiscale.reset()''::regprocedure'),
  ('DELETE FROM pg_init_privs WHERE objoid = ''apiscale''::regnamespace'),
  ('CREATE OR REPLACE FUNCTION apiscale.wrap_text(txt text, width int, indent text) RETURNS SETOF text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS ''SELECT txt'''),
  ('ALTER FUNCTION apiscale.report() VOLATILE SECURITY DEFINER'),
  ('CREATE FUNCTION apiscale.left_behind() RETURNS int LANGUAGE sql AS ''SELECT 1'''),
  ('ALTER EXTENSION apiscale DROP VIEW apiscale.pool_reports'),
  ('CREATE TYPE apiscale.left_behind AS ENUM (''a'')')
) AS t(change);

-- The same on the fresh install.
SET ROLE aps_nobody;
SELECT count(*) >= 0 AS reads FROM apiscale.queries;
SELECT apiscale.reset();
SELECT apiscale.report_pool('shop', 8, 2, 1, 0, 0);
RESET ROLE;

DROP TABLE ext_updated, ext_fresh;
DROP FUNCTION ext_snapshot(), ext_refused(), ext_read_all(), ext_sees(text);
DROP ROLE aps_nobody;
