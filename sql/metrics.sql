--
-- apiscale.metrics(): the signals, the window and the top statements as
-- Prometheus text (tests/metrics/promtool.sh also runs promtool on it)
--
\set regress_db :DBNAME

-- The text's sample lines: each with the family opened last before it.
CREATE FUNCTION metric_samples(OUT n bigint, OUT family text, OUT name text,
                               OUT labels text, OUT value double precision)
RETURNS SETOF record LANGUAGE sql AS $$
  WITH lines AS (
    SELECT n, line
      FROM regexp_split_to_table(apiscale.metrics(), E'\n') WITH ORDINALITY AS l(line, n)),
  opened AS (
    SELECT n, line,
           substring(max(lpad(n::text, 8, '0') || split_part(line, ' ', 3))
                       FILTER (WHERE line LIKE '# HELP %') OVER (ORDER BY n)
                     FROM 9) AS family
      FROM lines)
  SELECT n, family, m[1], coalesce(m[2], ''), m[3]::double precision
    FROM opened, regexp_match(line, '^([a-z0-9_]+)(?:\{(.*)\})? (\S+)$') AS m
   WHERE line NOT LIKE '#%'
$$;
-- The value of one label of a sample with one label.
CREATE FUNCTION label_of(labels text, label text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT substring(labels FROM '^' || label || '="(.*)"$')
$$;

-- Only monitoring roles (and superusers) may read it.
CREATE ROLE regress_metrics_plain;
CREATE ROLE regress_metrics_monitor IN ROLE pg_monitor;
SET ROLE regress_metrics_plain;
SELECT apiscale.metrics();
SET ROLE regress_metrics_monitor;
SELECT apiscale.metrics() LIKE '# HELP %' AS read_by_pg_monitor;
RESET ROLE;

-- The shape: each family once, as HELP, TYPE, then its samples (histogram
-- samples end in _bucket, _sum, _count); no other line, and a newline
-- after the last one.
WITH lines AS (
  SELECT n, line, lag(line) OVER (ORDER BY n) AS prev
    FROM regexp_split_to_table(apiscale.metrics(), E'\n') WITH ORDINALITY AS l(line, n))
SELECT n, split_part(line, ' ', 3) AS family, split_part(line, ' ', 4) AS type,
       prev LIKE '# HELP ' || split_part(line, ' ', 3) || ' %' AS after_its_help
  FROM lines WHERE line LIKE '# TYPE %' ORDER BY n;
WITH lines AS (
  SELECT line FROM regexp_split_to_table(apiscale.metrics(), E'\n') AS line)
SELECT count(*) FILTER (WHERE line LIKE '# HELP %') AS helps,
       count(DISTINCT split_part(line, ' ', 3)) FILTER (WHERE line LIKE '# HELP %')
         AS distinct_families,
       count(*) FILTER (WHERE line <> '' AND line NOT LIKE '# HELP %'
                          AND line NOT LIKE '# TYPE %'
                          AND line !~ '^[a-z0-9_]+(\{[a-z]+="[^"]*"\})? \S+$')
         AS other_lines,
       right(apiscale.metrics(), 1) = E'\n' AS ends_with_newline
  FROM lines;
SELECT count(*) AS samples_outside_their_family,
       count(*) FILTER (WHERE labels LIKE '%database%') AS with_database_label
  FROM metric_samples()
 WHERE name <> family
   AND NOT (family = 'apiscale_statement_duration_seconds'
            AND name IN (family || '_bucket', family || '_sum', family || '_count'));

-- A fresh window: apiscale.enabled = off keeps this session's reads out of
-- it.  Then one statement of ~60 ms, a fast one and a failure.
SET apiscale.enabled = off;
SELECT apiscale.reset();
RESET apiscale.enabled;
SELECT pg_sleep(0.06);
SELECT count(*) FROM generate_series(1, 10);
SELECT 1 / (g - g) FROM generate_series(1, 1) g;
SET apiscale.enabled = off;

-- Statement signals as scaling_signals shows them: a value only with data,
-- the threshold always, warning 1 exactly in warning.  (The machine's
-- signals change with each sample of the worker: only the rules.)
SELECT s.signal, s.status,
       v.value IS NOT DISTINCT FROM s.value AS same_value,
       t.value = s.threshold AS same_threshold,
       w.value AS warning
  FROM apiscale.scaling_signals s
  LEFT JOIN metric_samples() v
    ON v.name = 'apiscale_scaling_signal_value' AND label_of(v.labels, 'signal') = s.signal
  LEFT JOIN metric_samples() t
    ON t.name = 'apiscale_scaling_signal_threshold' AND label_of(t.labels, 'signal') = s.signal
  LEFT JOIN metric_samples() w
    ON w.name = 'apiscale_scaling_signal_warning' AND label_of(w.labels, 'signal') = s.signal
 WHERE s.signal IN ('p95_response_time_ms', 'error_rate_pct', 'pool_utilization_pct',
                    'cache_hit_rate_pct')
 ORDER BY s.signal;
WITH m AS (SELECT * FROM metric_samples())
SELECT label_of(t.labels, 'signal') AS signal,
       w.value IN (0, 1) AS warning_0_or_1,
       v.value IS NOT NULL OR w.value = 0 AS no_data_no_warning,
       w.value = 0 OR (v.value > t.value) OR
         (label_of(t.labels, 'signal') = 'cache_hit_rate_pct' AND v.value < t.value)
         AS warns_past_threshold
  FROM m t
  JOIN m w ON w.name = 'apiscale_scaling_signal_warning' AND w.labels = t.labels
  LEFT JOIN m v ON v.name = 'apiscale_scaling_signal_value' AND v.labels = t.labels
 WHERE t.name = 'apiscale_scaling_signal_threshold'
 ORDER BY t.n;

-- The window: 3 statements, 1 failed; the two that finished in the
-- histogram, the fast one by 0.5 ms, the 60 ms one between 0.05 and 0.1 s.
SELECT name, value FROM metric_samples()
 WHERE name IN ('apiscale_signal_window_seconds', 'apiscale_window_statements',
                'apiscale_window_failed_statements')
 ORDER BY n;
SELECT label_of(labels, 'le') AS le, value FROM metric_samples()
 WHERE name = 'apiscale_statement_duration_seconds_bucket' ORDER BY n;
SELECT value BETWEEN 0.06 AND 0.075 AS sum_about_60_ms FROM metric_samples()
 WHERE name = 'apiscale_statement_duration_seconds_sum';
SELECT value FROM metric_samples() WHERE name = 'apiscale_statement_duration_seconds_count';

-- Cumulative, whatever the durations: with many more statements, the
-- buckets never decrease and +Inf is the count.
RESET apiscale.enabled;
SELECT pg_sleep(0.001 * (g % 7)) FROM generate_series(1, 20) g \g /dev/null
SELECT count(*) FROM generate_series(1, 10) \g /dev/null
SELECT count(*) FROM generate_series(1, 10) \g /dev/null
SET apiscale.enabled = off;
WITH b AS (
  SELECT n, value, lag(value) OVER (ORDER BY n) AS prev, label_of(labels, 'le') AS le
    FROM metric_samples() WHERE name = 'apiscale_statement_duration_seconds_bucket')
SELECT bool_and(prev IS NULL OR value >= prev) AS cumulative,
       (SELECT value FROM b WHERE le = '+Inf') =
         (SELECT value FROM metric_samples()
           WHERE name = 'apiscale_statement_duration_seconds_count') AS inf_is_count,
       (SELECT value FROM b WHERE le = '+Inf') =
         (SELECT s.value - f.value FROM metric_samples() s, metric_samples() f
           WHERE s.name = 'apiscale_window_statements'
             AND f.name = 'apiscale_window_failed_statements') AS count_is_finished,
       (SELECT value FROM b WHERE le = '+Inf') > 3 AS counted_more
  FROM b;

-- A full pool (in_use = size + overflow) is a pool_utilization_pct warning.
SELECT apiscale.report_pool('shop', 8, 2, 10, 5, 1);
SELECT name, value FROM metric_samples()
 WHERE label_of(labels, 'signal') = 'pool_utilization_pct' ORDER BY n;

-- The top statements of this database by execution time, each query id
-- summed over its users.  A statement of another database is not shown,
-- although it took the most time.  (Times far apart: the ranking by time
-- must not turn on a busy machine stretching a 15 ms sleep.)
SET apiscale.enabled = off;
SELECT apiscale.reset();
CREATE ROLE regress_metrics_user;
\c postgres
SELECT pg_sleep(0.3), 'another database';
\c :regress_db
SELECT pg_sleep(0.15);
SELECT pg_sleep(0.015), 2;
SET ROLE regress_metrics_user;
SELECT pg_sleep(0.015), 2;
RESET ROLE;
SELECT pg_sleep(0.002), 3, 3;
SELECT 1 / (g - g) FROM generate_series(1, 1) g;
SET apiscale.enabled = off;
CREATE TABLE metric_ids AS
  SELECT queryid, query,
         sum(calls) AS calls, sum(errors) AS errors, sum(total_ms) AS total_ms
    FROM apiscale.queries
   WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   GROUP BY queryid, query;
-- (The statement run twice has an entry per user; the other database's
-- statement has one of its own.)
SELECT dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AS this_database,
       query, count(*) AS entries
  FROM apiscale.queries WHERE query LIKE 'SELECT pg_sleep%'
 GROUP BY 1, 2 ORDER BY 1, 2;
SET apiscale.metrics_top_queries = 2;
SELECT name, q.query, m.value AS calls_or_errors
  FROM metric_samples() m JOIN metric_ids q ON q.queryid::text = label_of(m.labels, 'queryid')
 WHERE name IN ('apiscale_statement_calls_total', 'apiscale_statement_errors_total')
 ORDER BY m.n;
-- Seconds and p95 agree with apiscale.queries; the slowest comes first.
-- (The p95 lies between the mean and the slowest run, which is at most the
-- total, give or take a histogram bucket (6.25%): a run slowed down by a
-- busy machine moves it within those bounds, a unit error does not.)
SELECT name, q.query,
       CASE name WHEN 'apiscale_statement_seconds_total'
                 THEN abs(m.value * 1000 - q.total_ms) < 0.001
                 ELSE m.value * 1000 BETWEEN q.total_ms / q.calls * 0.9
                                         AND q.total_ms * 1.07 END AS agrees
  FROM metric_samples() m JOIN metric_ids q ON q.queryid::text = label_of(m.labels, 'queryid')
 WHERE name IN ('apiscale_statement_seconds_total', 'apiscale_statement_p95_seconds')
 ORDER BY m.n;
SELECT count(*) AS statement_samples_with_unknown_ids
  FROM metric_samples() m
 WHERE name LIKE 'apiscale_statement_%' AND labels LIKE 'queryid=%'
   AND NOT EXISTS (SELECT FROM metric_ids q WHERE q.queryid::text = label_of(m.labels, 'queryid'));
-- The failure has no time: with room for all, it comes last, with no p95.
SET apiscale.metrics_top_queries = 1000;
WITH m AS (SELECT * FROM metric_samples())
SELECT q.query, count(*) FILTER (WHERE name = 'apiscale_statement_p95_seconds') AS p95_samples,
       max(m.value) FILTER (WHERE name = 'apiscale_statement_errors_total') AS errors,
       max(m.n) FILTER (WHERE name = 'apiscale_statement_calls_total') =
         (SELECT max(n) FROM m WHERE name = 'apiscale_statement_calls_total') AS last
  FROM m JOIN metric_ids q ON q.queryid::text = label_of(m.labels, 'queryid')
 WHERE q.query LIKE '%1 / (g - g)%'
 GROUP BY q.query;
SELECT count(DISTINCT labels) = count(*) AS one_sample_per_id,
       count(*) = (SELECT count(*) FROM metric_ids) AS every_statement
  FROM metric_samples() WHERE name = 'apiscale_statement_calls_total';
-- 0: the families, without a sample.
SET apiscale.metrics_top_queries = 0;
SELECT count(*) AS statement_samples FROM metric_samples()
 WHERE name LIKE 'apiscale_statement_%' AND name NOT LIKE 'apiscale_statement_duration%';
SELECT count(*) AS statement_families
  FROM regexp_split_to_table(apiscale.metrics(), E'\n') AS line
 WHERE line ~ '^# TYPE apiscale_statement_(calls|errors|seconds|p95)';
RESET apiscale.metrics_top_queries;

RESET apiscale.enabled;
DROP TABLE metric_ids;
DROP FUNCTION metric_samples();
DROP FUNCTION label_of(text, text);
DROP ROLE regress_metrics_plain, regress_metrics_monitor, regress_metrics_user;
SELECT apiscale.reset();
