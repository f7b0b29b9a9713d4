-- Many distinct statements (200 tables x 3 shapes) with literals that
-- contain the marker 4242, which must never reach apiscale.queries.
\set n random(1, 200)
\set v random(1, 999)
SELECT count(*) FROM t:n WHERE x = 4242:v OR y = 'lit4242:v';
SELECT x FROM t:n WHERE x IN (4242:v, :v) ORDER BY x LIMIT 4242;
UPDATE t:n SET y = 'u4242:v' WHERE x = -4242:v;
