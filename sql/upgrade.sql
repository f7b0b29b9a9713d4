--
-- Extension versions: a database created at 1.0 reaches the default
-- version with ALTER EXTENSION apiscale UPDATE, and then holds exactly what
-- a fresh CREATE EXTENSION creates.
--
-- Everything that makes up an installed version: each member object with
-- its definition, privileges, comment and the initial privileges pg_dump
-- relies on; and the schema the extension created, with its privileges.
CREATE FUNCTION ext_snapshot(OUT object text, OUT definition text)
RETURNS SETOF record LANGUAGE sql AS $$
  SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
         concat_ws(' | ',
           CASE d.classid
             WHEN 'pg_proc'::regclass THEN
               (SELECT pg_get_functiondef(p.oid) || ' acl ' || coalesce(p.proacl::text, '-')
                  FROM pg_proc p WHERE p.oid = d.objid)
             WHEN 'pg_class'::regclass THEN
               (SELECT c.relkind::text || ' ' || coalesce(pg_get_viewdef(c.oid), '')
                       || ' acl ' || coalesce(c.relacl::text, '-')
                  FROM pg_class c WHERE c.oid = d.objid)
             ELSE 'kind ' || d.classid::regclass::text
           END,
           'comment ' || obj_description(d.objid, d.classid::regclass::text),
           (SELECT 'initprivs ' || i.initprivs::text FROM pg_init_privs i
             WHERE i.classoid = d.classid AND i.objoid = d.objid
               AND i.objsubid = d.objsubid))
    FROM pg_depend d
   WHERE d.refclassid = 'pg_extension'::regclass
     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'apiscale')
     AND d.deptype = 'e'
  UNION ALL
  SELECT 'extension schema ' || n.nspname, 'acl ' || coalesce(n.nspacl::text, '-')
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'apiscale'
$$;

DROP EXTENSION apiscale;
CREATE EXTENSION apiscale VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'apiscale';
ALTER EXTENSION apiscale UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'apiscale';
CREATE TABLE ext_updated AS SELECT * FROM ext_snapshot();

DROP EXTENSION apiscale;
CREATE EXTENSION apiscale;
SELECT extversion FROM pg_extension WHERE extname = 'apiscale';
CREATE TABLE ext_fresh AS SELECT * FROM ext_snapshot();

-- Something was compared...
SELECT (SELECT count(*) FROM ext_updated) = (SELECT count(*) FROM ext_fresh)
       AS same_count,
       (SELECT count(*) FROM ext_fresh) >= 19 AS has_objects,
       (SELECT count(*) FROM ext_fresh
         WHERE definition LIKE '%initprivs%') > 0 AS has_initprivs;
-- ... and nothing differs.
(SELECT 'only updated' AS install, * FROM ext_updated
 EXCEPT SELECT 'only updated', * FROM ext_fresh)
UNION ALL
(SELECT 'only fresh', * FROM ext_fresh
 EXCEPT SELECT 'only fresh', * FROM ext_updated)
ORDER BY object, install;

DROP TABLE ext_updated, ext_fresh;
DROP FUNCTION ext_snapshot();
