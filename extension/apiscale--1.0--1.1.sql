/* extension/apiscale--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION apiscale UPDATE TO '1.1'" to load this file. \quit

--
-- apiscale--1.0.sql is frozen: databases on 1.0 exist.  Everything new or
-- changed in 1.1 is here, and a fresh CREATE EXTENSION runs 1.0 then this
-- script (there is no full 1.1 script), so both paths end in the same
-- objects; sql/upgrade.sql checks it.  Replace objects with CREATE OR
-- REPLACE, which keeps their privileges and comments.
--

--
-- The report
--

-- Lines of at most width characters holding the SQL statement stmt, each
-- after indent, to be copied and run as they are.  Lines break between
-- tokens only: at whitespace outside double quotes, and inside a word
-- longer than a line (a qualified name of two long identifiers) before a
-- '.' outside double quotes, where SQL allows whitespace too.  Nothing is
-- cut and no character changes but the whitespace between words, which
-- becomes one space or a line break: a word part longer than a line gets a
-- line of its own, however long.  (wrap_text, for prose, cuts such words.)
CREATE FUNCTION wrap_sql(stmt text, width int, indent text)
RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    room int := width - length(indent);
    piece text[] := '{}';       -- the words, each cut before its dots
    starts bool[] := '{}';      -- whether piece[i] begins a word
    cur text := '';
    word_start bool := true;
    quoted bool := false;
    c text;
    line text := '';
    n int;
    wlen int;
    split bool := false;
BEGIN
    -- Words and their pieces.  A doubled quote inside a quoted name flips
    -- the state twice: it stays quoted.
    FOREACH c IN ARRAY regexp_split_to_array(stmt || ' ', '') LOOP
        IF NOT quoted AND c ~ '\s' THEN
            IF cur <> '' THEN
                piece := piece || cur;
                starts := starts || word_start;
            END IF;
            cur := '';
            word_start := true;
        ELSIF NOT quoted AND c = '.' AND cur <> '' THEN
            piece := piece || cur;
            starts := starts || word_start;
            cur := c;
            word_start := false;
        ELSE
            IF c = '"' THEN
                quoted := NOT quoted;
            END IF;
            cur := cur || c;
        END IF;
    END LOOP;

    n := coalesce(array_length(piece, 1), 0);
    FOR i IN 1 .. n LOOP
        IF starts[i] THEN
            -- A word that fits on a line is never split.
            wlen := length(piece[i]);
            FOR j IN i + 1 .. n LOOP
                EXIT WHEN starts[j];
                wlen := wlen + length(piece[j]);
            END LOOP;
            split := wlen > room;
            -- What must fit after the line: the whole word, or its first piece.
            IF split THEN
                wlen := length(piece[i]);
            END IF;
            IF line <> '' AND length(line) + 1 + wlen > room THEN
                RETURN NEXT indent || line;
                line := '';
            END IF;
            line := CASE WHEN line = '' THEN piece[i] ELSE line || ' ' || piece[i] END;
        ELSIF split AND length(line) + length(piece[i]) > room THEN
            RETURN NEXT indent || line;
            line := piece[i];
        ELSE
            line := line || piece[i];
        END IF;
    END LOOP;
    IF line <> '' THEN
        RETURN NEXT indent || line;
    END IF;
END
$$;

COMMENT ON FUNCTION wrap_sql(text, int, text) IS
    'A SQL statement as lines of at most width characters that run as printed: broken between tokens, never cut';

-- 1.0 printed the index advice's CREATE INDEX through wrap_text, which cut a
-- word longer than a line (schema.table with names of 62-63 bytes) into
-- left(...) || '...' and squeezed the spaces inside quoted names: copied
-- from the report, the statement did not run.  1.1 prints it through
-- wrap_sql, and adds the capacity (apiscale.capacity), what to cache
-- (apiscale.cache_advice) and the indexes to drop (apiscale.index_review).
-- The views it reads are created further down: a PL/pgSQL body is checked
-- when it runs.
CREATE OR REPLACE FUNCTION report()
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    n int;
    m int;
    total double precision;
BEGIN
        RETURN NEXT left(format('apiscale report, %s, database %s, signals over the last %s',
                            to_char(now(), 'YYYY-MM-DD HH24:MI:SS TZ'), current_database(),
                            current_setting('apiscale.signal_window')), 120);

    RETURN NEXT '';
    RETURN NEXT '== Is it time to scale?';
    n := 0;
    FOR r IN SELECT * FROM apiscale.scaling_signals
              ORDER BY status = 'warning' DESC, status = 'ok' DESC, signal LOOP
        IF r.status = 'warning' THEN
            RETURN NEXT format('  WARNING  %s = %s (threshold %s): %s',
                               r.signal, r.value, r.threshold, r.action);
            n := n + 1;
        ELSIF r.status = 'ok' THEN
            RETURN NEXT format('  ok       %s = %s (threshold %s)', r.signal, r.value, r.threshold);
        ELSE
            RETURN NEXT format('  no data  %s', r.signal);
        END IF;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  No signal is in warning.';
    END IF;

    RETURN NEXT '';
    RETURN NEXT '== Capacity (stage 1: scale up)';
    FOR r IN SELECT * FROM apiscale.capacity LOOP
        RETURN QUERY SELECT apiscale.wrap_text(
            format('%s (%s CPUs, %s GB): %s', r.server_size, r.cores,
                   r.memory_gb, r.suggestion),
            120, '  ');
    END LOOP;

    RETURN NEXT '';
    RETURN NEXT '== Slowest statements (top 5 by total time)';
    SELECT sum(q.total_ms) INTO total FROM apiscale.queries q
     WHERE q.dbid = (SELECT oid FROM pg_database WHERE datname = current_database());
    n := 0;
    FOR r IN SELECT q.p95_ms, q.calls, q.total_ms, q.query
               FROM apiscale.queries q
              WHERE q.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND q.query NOT LIKE '%apiscale.%'
              ORDER BY q.total_ms DESC LIMIT 5 LOOP
        IF n = 0 THEN
            RETURN NEXT '     p95 ms      calls  time % | statement';
        END IF;
        RETURN NEXT format('  %9s  %9s  %6s | %s',
                           round(coalesce(r.p95_ms, 0)::numeric, 2), r.calls,
                           CASE WHEN total > 0 THEN round((100 * r.total_ms / total)::numeric, 1) ELSE 0 END,
                           left(regexp_replace(r.query, '\s+', ' ', 'g'), 120 - 33));
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  No statement yet.';
    END IF;

    RETURN NEXT '';
    RETURN NEXT '== What to cache (stage 2), by the database time it would save';
    n := 0;
    m := 0;
    FOR r IN SELECT c.* FROM apiscale.cache_advice c
              WHERE c.query NOT LIKE '%apiscale.%' LOOP
        IF r.saved_pct IS NULL OR r.saved_pct <= 0 OR n = 5 THEN
            m := m + 1;
            CONTINUE;
        END IF;
        IF n = 0 THEN
            RETURN NEXT format('  %8s  %6s  %-6s  %-13s | %s',
                               'saves %', 'hits %', 'TTL', 'class', 'statement');
        END IF;
        RETURN NEXT format('  %8s  %6s  %-6s  %-13s | %s',
                           round(r.saved_pct::numeric, 1),
                           round((100 * r.hit_rate_est)::numeric),
                           CASE WHEN r.ttl_s % 86400 = 0 THEN r.ttl_s / 86400 || ' d'
                                WHEN r.ttl_s % 3600 = 0 THEN r.ttl_s / 3600 || ' h'
                                WHEN r.ttl_s % 60 = 0 THEN r.ttl_s / 60 || ' min'
                                ELSE r.ttl_s || ' s' END,
                           r.category,
                           left(regexp_replace(r.query, '\s+', ' ', 'g'), 120 - 44));
        RETURN QUERY SELECT apiscale.wrap_text(r.advice, 120, '      ');
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  Nothing worth caching yet.';
    END IF;
    IF m > 0 THEN
        RETURN NEXT format('  %s more read statements, not cacheable or saving less (apiscale.cache_advice says why)', m);
    END IF;

    RETURN NEXT '';
    RETURN NEXT '== Missing indexes (proven by a hypothetical re-plan)';
    n := 0;
    m := 0;
    FOR r IN SELECT * FROM apiscale.index_advice LOOP
        -- The ones the table's writes would pay for are counted, not shown.
        IF r.verdict <> 'recommended' THEN
            m := m + 1;
            CONTINUE;
        END IF;
        -- Wrapped between tokens, never cut: it stays a statement to copy.
        RETURN QUERY SELECT apiscale.wrap_sql(r.ddl, 120, '  ');
        RETURN NEXT format('      %s rows read and thrown away in %s scans, estimated cost %s%% lower (%s)',
                           r.rows_filtered, r.scans, r.est_improvement_pct,
                           array_to_string(r.reasons, ', '));
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  No index to add.';
    END IF;
    IF m > 0 THEN
        RETURN NEXT format('  %s more not worth it: their tables'' writes would cost more than they save (apiscale.index_advice)', m);
    END IF;

    RETURN NEXT '';
    RETURN NEXT '== Indexes that cost every write and serve no read';
    n := 0;
    FOR r IN SELECT * FROM apiscale.index_review LOOP
        RETURN QUERY SELECT apiscale.wrap_sql(r.ddl, 120, '  ');
        RETURN QUERY SELECT apiscale.wrap_text(
            format('%s, %s, %s scans, table writes %s: %s', r.kind,
                   pg_size_pretty(r.size), r.scans, r.table_writes, r.detail),
            120, '      ');
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  No index to drop.';
    END IF;

    RETURN NEXT '';
    RETURN NEXT '== Anti-patterns';
    n := 0;
    FOR r IN SELECT * FROM apiscale.antipatterns a
              WHERE a.query NOT LIKE '%apiscale.%' LOOP
        RETURN NEXT format('  %s, seen %s: %s', r.kind,
                           CASE WHEN r.calls = 1 THEN 'once' ELSE r.calls || ' times' END,
                           left(regexp_replace(r.query, '\s+', ' ', 'g'),
                                120 - 20 - length(r.kind) - length(r.calls::text)));
        RETURN QUERY SELECT apiscale.wrap_text(r.detail, 120, '      ');
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN NEXT '  None found.';
    END IF;
END
$$;

COMMENT ON FUNCTION report() IS
    'One text report: signals in warning first, capacity, slowest statements, what to cache, missing indexes, indexes to drop, anti-patterns';

--
-- Monitoring
--

-- The scaling signals, the window's statements and latency histogram, and
-- the top statements of the current database, as Prometheus text.  No
-- query text: the per-statement series carry the query id only.
CREATE FUNCTION metrics()
RETURNS text
AS 'MODULE_PATHNAME', 'apiscale_metrics'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION metrics() IS
    'Scaling signals, statements of the window and top statements, as Prometheus text (exposition format 0.0.4)';

-- For monitoring roles (and superusers), as PostgreSQL's own statistics.
REVOKE ALL ON FUNCTION metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrics() TO pg_monitor;

--
-- Index advice, second version: candidates beside existing indexes, on
-- expressions, partial and covering ones, and the write cost of each.
--

-- Every candidate with its verdict; the columns of 1.0's function and
-- then those of 1.1 (the C function fills what its caller declares).
CREATE FUNCTION index_candidates_new(
    OUT relation regclass,
    OUT columns text[],
    OUT reasons text[],
    OUT ddl text,
    OUT queries bigint,
    OUT scans bigint,
    OUT rows_read bigint,
    OUT rows_filtered bigint,
    OUT est_cost_before double precision,
    OUT est_cost_after double precision,
    OUT est_improvement_pct double precision,
    OUT example_queryid bigint,
    OUT verdict text,
    OUT detail text,
    OUT include text[],
    OUT predicate text,
    OUT existing_index regclass,
    OUT writes_per_s double precision,
    OUT est_maintenance_per_s double precision,
    OUT est_savings_per_s double precision
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_index_candidates'
-- PARALLEL UNSAFE: the re-plans run in subtransactions, which a parallel
-- query cannot start; a query reading the view is never parallel.
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- The views keep their columns and gain new ones at the end, so that
-- queries (and views) written against 1.0 keep working.
CREATE OR REPLACE VIEW index_candidates AS
    SELECT relation, columns, reasons, ddl, queries, scans, rows_read,
           rows_filtered, est_cost_before, est_cost_after,
           est_improvement_pct, example_queryid, verdict, detail,
           include, predicate, existing_index, writes_per_s,
           est_maintenance_per_s, est_savings_per_s
      FROM index_candidates_new()
     ORDER BY verdict = 'recommended' DESC,
              rows_filtered * coalesce(est_improvement_pct, 0) DESC,
              rows_filtered DESC, relation::text, columns, predicate NULLS FIRST;

-- An index whose upkeep the table's writes would not pay for stays in the
-- advice, saying so, after the recommended ones.
CREATE OR REPLACE VIEW index_advice AS
    SELECT relation, columns, reasons, ddl, queries, scans, rows_filtered,
           est_cost_before, est_cost_after, est_improvement_pct,
           example_queryid, include, predicate, existing_index, writes_per_s,
           est_maintenance_per_s, est_savings_per_s, verdict, detail
      FROM index_candidates_new()
     WHERE verdict IN ('recommended', 'not worth it')
     ORDER BY verdict = 'recommended' DESC,
              rows_filtered * est_improvement_pct DESC, relation::text,
              columns, predicate NULLS FIRST;

-- 1.0's function, now unused, gives its name to the new one.
DROP FUNCTION index_candidates_internal();
ALTER FUNCTION index_candidates_new() RENAME TO index_candidates_internal;

COMMENT ON VIEW index_advice IS
    'Missing indexes, proven by a hypothetical re-plan, ranked by rows filtered x estimated improvement, weighed against the table''s writes';

-- Rows written per table since the last reset, as the index advice weighs
-- them, and the TRUNCATEs that named it.
CREATE FUNCTION table_writes_internal(
    OUT relation regclass,
    OUT inserted bigint,
    OUT updated bigint,
    OUT deleted bigint,
    OUT copied bigint,
    OUT truncated bigint,
    OUT writes_per_s double precision,
    OUT since timestamptz
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_table_writes'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW table_writes AS
    SELECT relation, inserted, updated, deleted, copied, truncated,
           writes_per_s, since
      FROM table_writes_internal()
     ORDER BY writes_per_s DESC, relation::text;

COMMENT ON VIEW table_writes IS
    'Rows written to each table of the current database since apiscale.reset(), by INSERT, UPDATE, DELETE, MERGE and COPY FROM, and the TRUNCATEs that named it';

-- Like the other statistics views: counts per table, readable by everyone.
GRANT SELECT ON table_writes TO PUBLIC;

--
-- Failed statements
--

-- Every statement a client sent that ended in ERROR (parse, analysis,
-- planning, execution, cancel, timeout), by (database, user, SQLSTATE).
CREATE FUNCTION errors_internal(
    OUT sqlstate text,
    OUT userid oid,
    OUT dbid oid,
    OUT count bigint,
    OUT first_seen timestamptz,
    OUT last_seen timestamptz,
    OUT last_message text,
    OUT last_query text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_errors'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW errors AS
    SELECT sqlstate, userid, dbid, count, first_seen, last_seen,
           last_message, last_query
      FROM errors_internal()
     ORDER BY last_seen DESC, sqlstate;

COMMENT ON VIEW errors IS
    'Failed statements by SQLSTATE, parse and plan errors included: count, first and last seen, last message and statement';

--
-- Index review
--

-- Existing indexes that cost every write and serve no read, from the
-- catalogs and the cumulative statistics of the current database, read
-- when the view is: invalid ones (left by a failed CREATE INDEX
-- CONCURRENTLY), duplicates, redundant ones (a leading part of another)
-- and unused ones.  One row per index, the first kind that applies in that
-- order.  Never an index that enforces something: primary keys, unique
-- indexes, exclusion constraints, the unique key of a foreign key.
CREATE VIEW index_review AS
WITH idx AS (
    SELECT i.indexrelid AS oid, i.indrelid AS tbl, c.relname AS name,
           n.nspname AS nsp, c.relkind = 'I' AS partitioned,
           am.amname AS am, i.indisunique AS uniq, i.indisvalid AS valid,
           i.indisready AS ready, i.indnullsnotdistinct AS nnd,
           i.indnkeyatts AS nkeys,
           i.indisprimary OR i.indisexclusion OR
             EXISTS (SELECT FROM pg_catalog.pg_constraint k
                      WHERE k.conindid = i.indexrelid) AS constrained,
           -- the key columns (or expressions) as text, with their operator
           -- classes, collations and options (DESC, NULLS FIRST), from 1
           ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k, false)
                   FROM pg_catalog.generate_series(1, i.indnkeyatts) k) AS keys,
           ARRAY(SELECT i.indclass[k]
                   FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) k) AS classes,
           ARRAY(SELECT i.indcollation[k]
                   FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) k) AS colls,
           ARRAY(SELECT i.indoption[k]
                   FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) k) AS opts,
           -- INCLUDE columns, and every column
           ARRAY(SELECT i.indkey[k]
                   FROM pg_catalog.generate_series(i.indnkeyatts, i.indnatts - 1) k
                  ORDER BY 1) AS incl,
           ARRAY(SELECT i.indkey[k]
                   FROM pg_catalog.generate_series(0, i.indnatts - 1) k) AS cols,
           pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS pred,
           -- a partitioned index: its partitions' indexes, summed
           CASE WHEN c.relkind = 'I'
                THEN (SELECT pg_catalog.sum(pg_catalog.pg_stat_get_numscans(p.relid))
                        FROM pg_catalog.pg_partition_tree(i.indexrelid) p
                       WHERE p.isleaf)
                ELSE pg_catalog.pg_stat_get_numscans(i.indexrelid)
           END::bigint AS scans,
           CASE WHEN c.relkind = 'I'
                THEN (SELECT pg_catalog.sum(pg_catalog.pg_relation_size(p.relid))
                        FROM pg_catalog.pg_partition_tree(i.indexrelid) p
                       WHERE p.isleaf)
                ELSE pg_catalog.pg_relation_size(i.indexrelid)
           END::bigint AS size,
           (SELECT pg_catalog.sum(pg_catalog.pg_stat_get_tuples_inserted(p.relid)
                                  + pg_catalog.pg_stat_get_tuples_updated(p.relid)
                                  + pg_catalog.pg_stat_get_tuples_deleted(p.relid))
              FROM (SELECT i.indrelid AS relid WHERE t.relkind <> 'p'
                    UNION ALL
                    SELECT l.relid FROM pg_catalog.pg_partition_tree(i.indrelid) l
                     WHERE t.relkind = 'p' AND l.isleaf) p)::bigint AS writes
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_am am ON am.oid = c.relam
     WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema'])
       AND n.nspname !~ '^pg_toast'
       AND t.relkind IN ('r', 'm', 'p')
       AND t.relpersistence <> 't'
       -- a partition's index that is part of its parent's is reviewed as
       -- the parent's (it cannot be dropped on its own)
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits h
                        WHERE h.inhrelid = i.indexrelid)
       -- an extension's tables are indexed as the extension needs
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                          AND d.objid = i.indrelid AND d.deptype = 'e')
),
-- b serves every lookup a serves: a's key leads b's, with the same
-- operator classes and collations, in b's order or fully reversed (b read
-- backward), a's INCLUDE columns are columns of b, and both have the same
-- predicate (or none).
covers AS (
    SELECT a.oid AS a, b.oid AS b, a.opts <> b.opts[1:a.nkeys] AS backward
      FROM idx a JOIN idx b ON b.tbl = a.tbl AND b.oid <> a.oid
     WHERE a.am = 'btree' AND b.am = 'btree' AND a.valid AND b.valid
       AND a.nkeys <= b.nkeys
       AND a.keys = b.keys[1:a.nkeys]
       AND a.classes = b.classes[1:a.nkeys]
       AND a.colls = b.colls[1:a.nkeys]
       AND (a.opts = b.opts[1:a.nkeys]
            OR a.opts = ARRAY(SELECT u.o # 3::int2
                                FROM pg_catalog.unnest(b.opts[1:a.nkeys])
                                     WITH ORDINALITY AS u(o, ord)
                               ORDER BY u.ord))
       AND a.incl <@ b.cols
       AND a.pred IS NOT DISTINCT FROM b.pred
),
-- Indexes with the same definition: all but one (the one behind a
-- constraint, else the most scanned, else the oldest) are duplicates.
same AS (
    SELECT oid,
           pg_catalog.first_value(oid) OVER w AS keeper,
           pg_catalog.row_number() OVER w AS rank
      FROM idx
     WHERE valid
    WINDOW w AS (PARTITION BY tbl, am, keys, classes, colls, opts, incl, pred,
                              uniq, nnd
                 ORDER BY constrained DESC, scans DESC, oid)
),
judged AS (
    SELECT x.*, s.keeper, s.rank,
           (SELECT c.b FROM covers c JOIN idx b ON b.oid = c.b
             WHERE c.a = x.oid
               -- b stays: it is used, or enforces something
               AND (b.scans > 0 OR b.uniq OR b.constrained)
               -- not the same definition (that is a duplicate)
               AND NOT (b.keys = x.keys AND b.classes = x.classes
                        AND b.colls = x.colls AND b.opts = x.opts
                        AND b.incl = x.incl AND b.uniq = x.uniq
                        AND b.nnd = x.nnd)
               -- of two that serve each other (one the other reversed),
               -- the less scanned one goes
               AND (NOT EXISTS (SELECT FROM covers r
                                 WHERE r.a = c.b AND r.b = c.a)
                    OR b.scans > x.scans
                    OR (b.scans = x.scans AND b.oid < x.oid))
             ORDER BY b.nkeys DESC, b.scans DESC, b.oid LIMIT 1) AS cover
      FROM idx x LEFT JOIN same s ON s.oid = x.oid
),
kinds AS (
    SELECT j.*,
           CASE
             WHEN NOT j.valid THEN 'invalid'
             WHEN j.uniq OR j.constrained THEN NULL
             WHEN j.rank > 1 THEN 'duplicate'
             WHEN j.cover IS NOT NULL THEN 'redundant'
             WHEN j.scans = 0 THEN 'unused'
           END AS kind
      FROM judged j
     -- An invalid partitioned index waits for its partitions' indexes to
     -- be attached; one CREATE INDEX CONCURRENTLY is building is not left.
     WHERE NOT (NOT j.valid
                AND (j.partitioned
                     OR EXISTS (SELECT FROM pg_catalog.pg_stat_progress_create_index p
                                 WHERE p.index_relid = j.oid)))
)
SELECT k.tbl::pg_catalog.regclass AS relation,
       k.oid::pg_catalog.regclass AS index,
       k.kind, k.size, k.scans, k.writes AS table_writes,
       pg_catalog.format(CASE WHEN k.partitioned THEN 'DROP INDEX %I.%I'
                              ELSE 'DROP INDEX CONCURRENTLY %I.%I' END,
                         k.nsp, k.name) AS ddl,
       CASE k.kind
         WHEN 'invalid' THEN
           'left by a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY: '
           || 'no query uses it'
           || CASE WHEN k.ready
                   THEN ', yet every write updates it'
                        || CASE WHEN k.uniq THEN ' and checks it for duplicates'
                                ELSE '' END
                   ELSE '' END
           || '; drop it, and to have the index, fix the cause and run again: '
           || pg_catalog.regexp_replace(pg_catalog.pg_get_indexdef(k.oid),
                                        '^CREATE (UNIQUE )?INDEX ',
                                        'CREATE \1INDEX CONCURRENTLY ')
         WHEN 'duplicate' THEN
           pg_catalog.format('same definition as %s, which stays',
                             k.keeper::pg_catalog.regclass)
         WHEN 'redundant' THEN
           pg_catalog.format('%s serves the same lookups: its key (%s) starts with this one''s (%s)%s',
                             k.cover::pg_catalog.regclass,
                             (SELECT pg_catalog.array_to_string(b.keys, ', ')
                                FROM idx b WHERE b.oid = k.cover),
                             pg_catalog.array_to_string(k.keys, ', '),
                             CASE WHEN (SELECT c.backward FROM covers c
                                         WHERE c.a = k.oid AND c.b = k.cover)
                                  THEN ' in reverse order (read backward)'
                                  ELSE '' END)
         WHEN 'unused' THEN
           pg_catalog.format('no scans since %s, while the table took %s row writes (inserted, updated, deleted)',
                             coalesce('the statistics were reset at '
                                      || (SELECT pg_catalog.to_char(d.stats_reset,
                                                                    'YYYY-MM-DD HH24:MI:SSOF')
                                            FROM pg_catalog.pg_stat_database d
                                           WHERE d.datname = pg_catalog.current_database()),
                                      'the statistics began (never reset)'),
                             k.writes)
       END
       || CASE WHEN k.partitioned
               THEN ' (a partitioned index: DROP INDEX cannot run concurrently on it and locks every partition)'
               ELSE '' END AS detail
  FROM kinds k
 WHERE k.kind IS NOT NULL
 ORDER BY pg_catalog.array_position(ARRAY['invalid', 'duplicate', 'redundant', 'unused'], k.kind),
          k.size DESC, k.tbl::pg_catalog.regclass::text, k.oid::pg_catalog.regclass::text;

COMMENT ON VIEW index_review IS
    'Existing indexes that cost every write and serve no read: invalid, duplicate, redundant, unused; each with its DROP INDEX';

-- Readable by everyone: texts and messages of other users' failures are
-- masked, and the review reads what the catalogs show anyone.
GRANT SELECT ON errors, index_review TO PUBLIC;

--
-- Caching advice (the guide's stage 2): what to cache and for how long,
-- measured per read statement over the signal window.
--
CREATE FUNCTION cache_advice_internal(
    OUT queryid bigint,
    OUT userid oid,
    OUT query text,
    OUT calls bigint,
    OUT calls_per_s double precision,
    OUT mean_ms double precision,
    OUT time_pct double precision,
    OUT distinct_keys bigint,
    OUT hit_rate_est double precision,
    OUT hit_rate_10s double precision,
    OUT hit_rate_1min double precision,
    OUT hit_rate_5min double precision,
    OUT hit_rate_15min double precision,
    OUT hit_rate_1h double precision,
    OUT result_change_interval_s double precision,
    OUT results_compared bigint,
    OUT tables regclass[],
    OUT writes_per_s double precision,
    OUT category text,
    OUT ttl_s integer,
    OUT saved_pct double precision,
    OUT cache_key text,
    OUT advice text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apiscale_cache_advice'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW cache_advice AS
    SELECT queryid, userid, query, calls, calls_per_s, mean_ms, time_pct,
           distinct_keys, hit_rate_est, hit_rate_10s, hit_rate_1min,
           hit_rate_5min, hit_rate_15min, hit_rate_1h,
           result_change_interval_s, results_compared, tables, writes_per_s,
           category, ttl_s, saved_pct, cache_key, advice
      FROM cache_advice_internal()
     ORDER BY saved_pct DESC, time_pct DESC, queryid, userid;

COMMENT ON VIEW cache_advice IS
    'Read statements of the signal window: repeats, hit rates by TTL, how often answers change, their tables'' writes, the guide''s class, a TTL and the database time a cache would save';

-- Like apiscale.queries: texts of other users' statements are masked.
GRANT SELECT ON cache_advice TO PUBLIC;

--
-- Capacity (the guide's stage 1): the machine, its CPU per statement and
-- the rate it can take, over the signal window.  One row.
--
CREATE FUNCTION capacity_internal(
    OUT cores integer,
    OUT memory_gb double precision,
    OUT cpu_busy_pct double precision,
    OUT memory_used_pct double precision,
    OUT statements_per_s double precision,
    OUT cpu_ms_per_statement double precision,
    OUT capacity_statements_per_s double precision,
    OUT headroom_pct double precision,
    OUT peak_backends integer,
    OUT max_connections integer,
    OUT window_s double precision,
    OUT server_size text,
    OUT suggestion text
)
RETURNS record
AS 'MODULE_PATHNAME', 'apiscale_capacity'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW capacity AS
    SELECT cores, memory_gb, cpu_busy_pct, memory_used_pct, statements_per_s,
           cpu_ms_per_statement, capacity_statements_per_s, headroom_pct,
           peak_backends, max_connections, window_s, server_size, suggestion
      FROM capacity_internal();

COMMENT ON VIEW capacity IS
    'Stage 1 from measurements: CPUs and memory, CPU busy, statements/s, CPU ms per statement, the rate at apiscale.warn_cpu_pct and the headroom, peak backends, and the guide''s next server size';

-- Like apiscale.scaling_signals.
GRANT SELECT ON capacity TO PUBLIC;
