--
-- Proof for real: helpers that the index advice tests use to run the advised
-- CREATE INDEX and check that the planner uses the new index and that the
-- statement reads fewer rows and touches fewer buffers, as the advice
-- claimed.  Tested here on a case they must refuse.
--
CREATE SCHEMA proof;

-- What a plan read: rows_read, the rows its scans read (returned or
-- removed by a filter or a recheck, times loops; an index-only scan's index
-- rows included); heap_fetches, the rows it fetched from the heap (an
-- index-only scan's heap fetches only); buffers, the shared buffers it
-- touched; indexes, the indexes it used.
CREATE FUNCTION proof.measure(stmt text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
    rows_read numeric := 0;
    heap_fetches numeric := 0;
    scanned numeric;
    indexes text[] := '{}';
    n jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) ' || stmt INTO plan;
    FOR n IN SELECT jsonb_path_query(plan -> 0 -> 'Plan', 'strict $.** ? (exists (@."Node Type"))') LOOP
        IF n ->> 'Node Type' IN ('Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan') THEN
            scanned := (coalesce((n ->> 'Actual Rows')::numeric, 0)
                        + coalesce((n ->> 'Rows Removed by Filter')::numeric, 0)
                        + coalesce((n ->> 'Rows Removed by Index Recheck')::numeric, 0))
                       * coalesce((n ->> 'Actual Loops')::numeric, 1);
            rows_read := rows_read + scanned;
            heap_fetches := heap_fetches +
                CASE WHEN n ->> 'Node Type' = 'Index Only Scan'
                     THEN coalesce((n ->> 'Heap Fetches')::numeric, 0)
                     ELSE scanned END;
        END IF;
        IF n ? 'Index Name' THEN
            indexes := indexes || (n ->> 'Index Name');
        END IF;
    END LOOP;
    RETURN jsonb_build_object(
        'rows_read', round(rows_read),
        'heap_fetches', round(heap_fetches),
        'buffers', (plan -> 0 -> 'Plan' ->> 'Shared Hit Blocks')::numeric
                   + (plan -> 0 -> 'Plan' ->> 'Shared Read Blocks')::numeric,
        'indexes', to_jsonb(indexes));
END
$$;

-- Before the advised index exists: the statement's measure, the indexes
-- there are, and the waste the advice claims one run of it has: rows read
-- and thrown away, or (a covering index) heap rows fetched.
CREATE FUNCTION proof.before(stmt text, claimed_waste numeric,
                             measured text DEFAULT 'rows_read') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT proof.measure(stmt)
           || jsonb_build_object(
                'claimed_waste', claimed_waste,
                'measured', measured,
                'existing', (SELECT coalesce(jsonb_agg(indexrelid::regclass::text), '[]')
                               FROM pg_index))
$$;

-- After it was created: does the plan use an index that did not exist,
-- do the rows read (or heap rows fetched) fall by at least 90% of the
-- claimed waste, and do the buffers fall?
CREATE FUNCTION proof.check(stmt text, before jsonb,
                            OUT uses_new_index bool, OUT rows_fall bool,
                            OUT buffers_fall bool)
LANGUAGE plpgsql AS $$
DECLARE
    after jsonb := proof.measure(stmt);
BEGIN
    uses_new_index := EXISTS (
        SELECT FROM jsonb_array_elements_text(after -> 'indexes') i
         WHERE NOT (before -> 'existing') ? i);
    rows_fall := (after ->> (before ->> 'measured'))::numeric
                 <= (before ->> (before ->> 'measured'))::numeric
                    - 0.9 * (before ->> 'claimed_waste')::numeric
                 AND (before ->> 'claimed_waste')::numeric > 0;
    buffers_fall := (after ->> 'buffers')::numeric < (before ->> 'buffers')::numeric;
END
$$;

-- Drop the indexes that did not exist before (a partitioned table's,
-- which takes its partitions' along).
CREATE FUNCTION proof.drop_new(before jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    i regclass;
    n int := 0;
BEGIN
    FOR i IN SELECT x.indexrelid::regclass
               FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
              WHERE NOT (before -> 'existing') ? x.indexrelid::regclass::text
                AND NOT c.relispartition LOOP
        EXECUTE format('DROP INDEX %s', i);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- The helpers refuse what is no proof: an index that the plan does not use
-- and a claim the rows read do not bear out.
CREATE TABLE proof.t (id int, a int, b text);
INSERT INTO proof.t SELECT g, g % 100, 'b' || g FROM generate_series(1, 5000) g;
ANALYZE proof.t;
SELECT proof.before($$SELECT count(*) FROM proof.t WHERE b = 'b42'$$, 4999) AS before \gset
SELECT (:'before'::jsonb) ->> 'rows_read' AS rows_read;
-- an index the plan does not use
CREATE INDEX t_a ON proof.t (a);
SELECT * FROM proof.check($$SELECT count(*) FROM proof.t WHERE b = 'b42'$$, :'before');
-- the right one
CREATE INDEX t_b ON proof.t (b);
SELECT * FROM proof.check($$SELECT count(*) FROM proof.t WHERE b = 'b42'$$, :'before');
-- a claim larger than what fell is refused
SELECT * FROM proof.check($$SELECT count(*) FROM proof.t WHERE b = 'b42'$$,
                          jsonb_set(:'before', '{claimed_waste}', '100000'));
SELECT proof.drop_new(:'before');
DROP TABLE proof.t;
