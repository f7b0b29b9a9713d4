--
-- apiscale.cache_advice: scripted workloads whose tables are written at
-- known rates, and what the advice makes of them.  Every run's result is
-- hashed (apiscale.cache_sample_rate = 1); rates and times depend on the
-- clock, so they are shown as ranges.
--
SET apiscale.cache_sample_rate = 1.0;
SET apiscale.cache_staleness_pct = 5;
SET max_parallel_workers_per_gather = 0;
SET jit = off;
CREATE SCHEMA ca;
SET search_path = ca, public;

-- One statement's advice, by the start of its text.
CREATE FUNCTION advice(prefix text) RETURNS SETOF apiscale.cache_advice
LANGUAGE sql AS $$
  SELECT * FROM apiscale.cache_advice WHERE query LIKE prefix || '%'
$$;

-- 1. A lookup table nobody writes: 300 reads over its 20 rows.  Static,
--    cached for a day, and a cache keyed by the parameter would have
--    answered all but the first read of each row (1 - 20/300 = 0.933,
--    less a little: the rows repeat within milliseconds, not at once).
CREATE TABLE countries (id int PRIMARY KEY, name text);
INSERT INTO countries SELECT g, 'country ' || g FROM generate_series(1, 20) g;
SELECT apiscale.reset();
\set ECHO none
\o /dev/null
SELECT format('SELECT name FROM countries WHERE id = %s', 1 + g % 20)
  FROM generate_series(1, 300) g \gexec
\o
\set ECHO all
SELECT query, calls, distinct_keys, category, ttl_s, tables, writes_per_s,
       result_change_interval_s, results_compared > 250 AS compared,
       hit_rate_est BETWEEN 0.92 AND 0.934 AS hit_rate_near_1,
       hit_rate_10s <= hit_rate_1min AND hit_rate_1min <= hit_rate_5min
         AND hit_rate_5min <= hit_rate_15min AND hit_rate_15min <= hit_rate_1h
         AND hit_rate_1h = hit_rate_est AS longer_ttl_hits_more,
       saved_pct > 0 AND saved_pct <= time_pct AS saves, cache_key,
       regexp_replace(advice, '[0-9.]+% of the database', 'N% of the database') AS advice
  FROM advice('SELECT name FROM countries');

-- 2. Rows rewritten several times a second, each read after its write:
--    the answer for one key changes more often than once a minute.
--    Real-time, and too fast for even a 1 s TTL at the 5% staleness budget.
CREATE TABLE quotes (id int PRIMARY KEY, price int);
INSERT INTO quotes SELECT g, 100 FROM generate_series(1, 5) g;
SELECT apiscale.reset();
\set ECHO none
\o /dev/null
SELECT s FROM generate_series(1, 20) r,
  LATERAL (VALUES (format('UPDATE quotes SET price = price + 1 WHERE id = %s', 1 + r % 5)),
                  (format('SELECT price FROM quotes WHERE id = %s', 1 + r % 5)),
                  ('SELECT pg_sleep(0.04)')) AS q(s) \gexec
\o
\set ECHO all
SELECT query, calls, category, ttl_s, hit_rate_est, saved_pct,
       result_change_interval_s < 1 AS changes_in_under_1s,
       results_compared >= 10 AS compared, writes_per_s > 1 AS written,
       regexp_replace(advice, 'every [0-9.]+ s', 'every N s') AS advice
  FROM advice('SELECT price FROM quotes');

-- 3. A large table written every second (rows nobody reads here) and its
--    frequently read rows, which do not change: the table is written, the
--    answers are not.  Semi-dynamic, a TTL in minutes.
CREATE TABLE products (id int PRIMARY KEY, name text, stock int);
INSERT INTO products SELECT g, 'product ' || g, 10 FROM generate_series(1, 10000) g;
SELECT apiscale.reset();
\set ECHO none
\o /dev/null
SELECT s FROM generate_series(1, 4) r,
  LATERAL (SELECT format('SELECT name, stock FROM products WHERE id = %s', 1 + k % 10)
             FROM generate_series(1, 50) k
           UNION ALL SELECT format('UPDATE products SET stock = stock - 1 WHERE id = %s', 5000 + r)
           UNION ALL SELECT 'SELECT pg_sleep(1)') AS q(s) \gexec
\o
\set ECHO all
SELECT query, calls, distinct_keys, category, ttl_s, result_change_interval_s,
       results_compared > 150 AS compared,
       writes_per_s BETWEEN 0.5 AND 1.5 AS written_about_every_second,
       hit_rate_est > 0.9 AS hits, advice ~ '^Cache for 15 min keyed by \$1: its tables were written, but no answer for one key was seen to change\.' AS advice
  FROM advice('SELECT name, stock FROM products');

-- 4. Prices read every second and changing every minute or two: 60 rows,
--    read once a second for 6 seconds (360 seconds of answers), 4 of them
--    changed, so one row's answer changes every 90 s.  Not real-time, but
--    a 15-minute TTL would serve stale answers: at 5% stale the TTL is
--    about a tenth of 90 s, rounded down to 5 s.  On a busy machine the
--    rounds take longer than a second, the interval measured grows and the
--    TTL with it (10 s from 98 s on), so the TTL is checked against the
--    budget computed here from the interval the view measured: the largest
--    TTL under the class's 15 minutes whose stale share,
--    1 - (C/T)(1 - e^(-T/C)), is within the budget.
CREATE FUNCTION budget_ttl(c float8, pct float8) RETURNS int
LANGUAGE sql AS $$
  SELECT max(t) FROM unnest(ARRAY[1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900]) t
   WHERE 1 - (c / t) * (1 - exp(-t / c)) <= pct / 100
$$;
CREATE TABLE prices (id int PRIMARY KEY, price int);
INSERT INTO prices SELECT g, 100 FROM generate_series(1, 60) g;
SELECT apiscale.reset();
\set ECHO none
\o /dev/null
SELECT s FROM generate_series(1, 7) r,
  LATERAL (SELECT format('SELECT price FROM prices WHERE id = %s', k)
             FROM generate_series(1, 60) k
           UNION ALL SELECT format('UPDATE prices SET price = price + 1 WHERE id = %s', r * 10)
            WHERE r BETWEEN 2 AND 5
           UNION ALL SELECT 'SELECT pg_sleep(1)') AS q(s) \gexec
\o
\set ECHO all
-- Each key is read again 1 to 1.5 s after its last read: at a TTL of T a
-- cache answers 360 (1 - r/T) of the 420 reads.
SELECT query, calls, distinct_keys, category,
       result_change_interval_s BETWEEN 60 AND 180 AS changes_every_minute_or_two,
       ttl_s = budget_ttl(result_change_interval_s, 5) AS ttl_in_budget,
       ttl_s BETWEEN 1 AND 30 AS ttl_of_seconds,
       hit_rate_est BETWEEN 360 * (1 - 1.5 / ttl_s) / 420
                        AND 360 * (1 - 1.0 / ttl_s) / 420 + 0.005 AS hit_rate,
       regexp_replace(regexp_replace(advice, '(every|for) [0-9.]+ (s|min)', '\1 N s', 'g'),
                      '[0-9.]+% of (420 calls|the database)', 'N% of \1', 'g') AS advice
  FROM advice('SELECT price FROM prices');
SELECT ttl_s AS ttl_5 FROM advice('SELECT price FROM prices') \gset
-- The staleness budget decides: 20% stale allows more (30 s at 90 s), 1%
-- less (1 s), 100% leaves the class's 15 minutes.
SET apiscale.cache_staleness_pct = 20;
SELECT category, ttl_s = budget_ttl(result_change_interval_s, 20) AS ttl_in_budget,
       ttl_s > :ttl_5 AS longer
  FROM advice('SELECT price FROM prices');
SET apiscale.cache_staleness_pct = 1;
SELECT category, ttl_s = budget_ttl(result_change_interval_s, 1) AS ttl_in_budget,
       ttl_s < :ttl_5 AS shorter
  FROM advice('SELECT price FROM prices');
SET apiscale.cache_staleness_pct = 100;
SELECT category, ttl_s, advice LIKE '%Shortened%' AS shortened
  FROM advice('SELECT price FROM prices');
RESET apiscale.cache_staleness_pct;

-- 5. A lookup by user over thousands of users: 3,000 lookups of 2,500
--    users, most of them once, while the table is written.  User-specific,
--    with a low hit rate.  128 users are tracked, a sample of them by hash:
--    the number of users is an estimate.
CREATE TABLE users (id int PRIMARY KEY, name text, seen_at timestamptz);
INSERT INTO users SELECT g, 'user ' || g, NULL FROM generate_series(1, 5000) g;
SELECT apiscale.reset();
\set ECHO none
\o /dev/null
SELECT format('SELECT name FROM users WHERE id = %s', 1 + (g * 7919) % 2500)
  FROM generate_series(1, 3000) g \gexec
UPDATE users SET seen_at = now() WHERE id <= 10;
\o
\set ECHO all
SELECT query, calls, category, ttl_s,
       distinct_keys BETWEEN 2000 AND 3200 AS about_2500_keys,
       hit_rate_est < 0.3 AS low_hit_rate,
       regexp_replace(advice, '[0-9.]+%', 'N%', 'g') AS advice
  FROM advice('SELECT name FROM users');

-- 6. Not cacheable, with the reasons.
CREATE TEMP TABLE session_cart (id int, item int);
INSERT INTO session_cart VALUES (1, 1);
CREATE TABLE notes (id int PRIMARY KEY, owner name, body text);
INSERT INTO notes VALUES (1, 'ca_reader', 'mine'), (2, 'someone', 'theirs');
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON notes USING (owner = current_user);
CREATE ROLE ca_reader;
GRANT USAGE ON SCHEMA ca TO ca_reader;
GRANT SELECT ON notes TO ca_reader;
SELECT apiscale.reset();
\set ECHO none
\o /dev/null
SELECT s FROM generate_series(1, 3) r,
  LATERAL (VALUES ('SELECT name FROM countries WHERE id = 1 FOR UPDATE'),
                  ('SELECT count(*) FROM countries WHERE now() > ''2000-01-01'''),
                  ('SELECT name FROM countries ORDER BY random() LIMIT 1'),
                  ('SELECT id FROM countries WHERE CURRENT_DATE > ''2000-01-01'' LIMIT 1'),
                  ('SELECT item FROM session_cart WHERE id = 1'),
                  ('BEGIN'),
                  ('UPDATE quotes SET price = price WHERE id = 1'),
                  ('SELECT price FROM quotes WHERE id = 2'),
                  ('COMMIT'),
                  ('SET ROLE ca_reader'),
                  ('SELECT body FROM notes WHERE id = 1'),
                  ('RESET ROLE')) AS q(s) \gexec
\o
\set ECHO all
SELECT query, category, ttl_s, hit_rate_est, saved_pct, advice
  FROM apiscale.cache_advice
 WHERE category = 'not cacheable' AND query NOT LIKE '%apiscale%'
   AND query NOT LIKE 'SELECT pg_sleep%'
 ORDER BY query;
-- A statement with no reason of its own is classed by its measurements:
-- once most of its runs are outside a transaction that wrote, quotes are
-- written data like any other.
SELECT price FROM quotes WHERE id = 2 \g /dev/null
SELECT price FROM quotes WHERE id = 2 \g /dev/null
SELECT price FROM quotes WHERE id = 2 \g /dev/null
SELECT price FROM quotes WHERE id = 2 \g /dev/null
SELECT query, category FROM advice('SELECT price FROM quotes');

-- 7. Ranked by the time a cache would save; texts of other users'
--    statements are masked, as in apiscale.queries.
SELECT count(*) > 0 AS rows,
       bool_and(saved_pct >= 0) AS saved_not_negative,
       array_agg(saved_pct ORDER BY saved_pct DESC) = array_agg(saved_pct) AS ranked
  FROM (SELECT saved_pct FROM apiscale.cache_advice) a;
SET ROLE ca_reader;
SELECT userid = 'ca_reader'::regrole AS own, query, cache_key, count(*) > 0 AS rows
  FROM apiscale.cache_advice
 GROUP BY 1, 2, 3 ORDER BY 1, 2;
RESET ROLE;

-- 8. Without result hashing (apiscale.cache_sample_rate = 0) nothing is
--    compared: the rewritten quotes can no longer be told apart from
--    answers that did not change.
SET apiscale.cache_sample_rate = 0;
SELECT apiscale.reset();
\set ECHO none
\o /dev/null
SELECT s FROM generate_series(1, 10) r,
  LATERAL (VALUES (format('UPDATE quotes SET price = price + 1 WHERE id = %s', 1 + r % 5)),
                  (format('SELECT price FROM quotes WHERE id = %s', 1 + r % 5))) AS q(s) \gexec
\o
\set ECHO all
SELECT query, category, results_compared, result_change_interval_s,
       advice LIKE '%no answer was compared yet (apiscale.cache_sample_rate)%' AS says_why
  FROM advice('SELECT price FROM quotes');
RESET apiscale.cache_sample_rate;

-- 9. A section of the report: the statements worth caching first.
SET apiscale.cache_sample_rate = 1.0;
SELECT apiscale.reset();
\set ECHO none
\o /dev/null
SELECT format('SELECT name FROM countries WHERE id = %s', 1 + g % 20)
  FROM generate_series(1, 100) g \gexec
\o
\set ECHO all
SELECT regexp_replace(line, '[0-9]+(\.[0-9]+)?', 'N', 'g') AS line
  FROM apiscale.report() WITH ORDINALITY AS r(line, n)
 WHERE n > (SELECT n FROM apiscale.report() WITH ORDINALITY AS r2(line, n)
             WHERE line LIKE '== What to cache%')
   AND n < (SELECT n FROM apiscale.report() WITH ORDINALITY AS r2(line, n)
             WHERE line LIKE '== Missing indexes%') - 1;
SELECT max(length(line)) <= 120 AS narrow FROM apiscale.report() AS line;

DROP SCHEMA ca CASCADE;
DROP OWNED BY ca_reader;
DROP ROLE ca_reader;
SELECT apiscale.reset();
