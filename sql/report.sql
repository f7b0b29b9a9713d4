--
-- apiscale.report(): lines of at most 120 characters, and a CREATE INDEX
-- that runs as printed (wrapped between tokens, never cut).
--
SET apiscale.sample_rate = 1.0;
SET apiscale.min_table_rows = 1000;
SET apiscale.min_improvement_pct = 30;
SET max_parallel_workers_per_gather = 0;
SET jit = off;

-- The lines of the report's first CREATE INDEX: from the section's title
-- to the line that gives its reasons.
CREATE TEMP VIEW report_ddl AS
  WITH r AS (SELECT n, line FROM apiscale.report() WITH ORDINALITY AS r(line, n))
  SELECT n, line FROM r
   WHERE n > (SELECT n FROM r WHERE line LIKE '== Missing indexes%')
     AND n < (SELECT min(n) FROM r WHERE line LIKE '%rows read and thrown away%');

-- 1. Schema and table names of 63 bytes: "schema.table" is one word longer
--    than a line.
CREATE SCHEMA schema_of_the_billing_service_for_european_business_client_prod;
CREATE TABLE schema_of_the_billing_service_for_european_business_client_prod
  .invoice_lines_of_the_monthly_statements_sent_to_business_cus_an
  (id int, customer_id int NOT NULL, amount numeric);
INSERT INTO schema_of_the_billing_service_for_european_business_client_prod
  .invoice_lines_of_the_monthly_statements_sent_to_business_cus_an
  SELECT g, g % 2000, g / 10.0 FROM generate_series(1, 20000) g;
ANALYZE schema_of_the_billing_service_for_european_business_client_prod
  .invoice_lines_of_the_monthly_statements_sent_to_business_cus_an;
SELECT apiscale.reset();
SELECT count(*) FROM schema_of_the_billing_service_for_european_business_client_prod
  .invoice_lines_of_the_monthly_statements_sent_to_business_cus_an
 WHERE customer_id = 42;
SELECT line FROM report_ddl ORDER BY n;
SELECT max(length(line)) <= 120 AS narrow FROM report_ddl;
-- Run what the report printed, as a psql user would paste it.
SELECT string_agg(line, E'\n' ORDER BY n) FROM report_ddl \gexec
SELECT indexdef FROM pg_indexes
 WHERE schemaname = 'schema_of_the_billing_service_for_european_business_client_prod';

-- 2. Quoted names (62 bytes, mixed case) and a column name with two
--    spaces, which the statement must keep as they are.
CREATE SCHEMA "Schema_of_the_Billing_Service_for_European_Business_Client_Pro";
CREATE TABLE "Schema_of_the_Billing_Service_for_European_Business_Client_Pro"
  ."Invoice_Lines_of_the_Monthly_Statements_Sent_to_Business_Cus_a"
  (id int, "Billing  Account" int NOT NULL, amount numeric);
INSERT INTO "Schema_of_the_Billing_Service_for_European_Business_Client_Pro"
  ."Invoice_Lines_of_the_Monthly_Statements_Sent_to_Business_Cus_a"
  SELECT g, g % 2000, g / 10.0 FROM generate_series(1, 20000) g;
ANALYZE "Schema_of_the_Billing_Service_for_European_Business_Client_Pro"
  ."Invoice_Lines_of_the_Monthly_Statements_Sent_to_Business_Cus_a";
SELECT apiscale.reset();
SELECT count(*) FROM "Schema_of_the_Billing_Service_for_European_Business_Client_Pro"
  ."Invoice_Lines_of_the_Monthly_Statements_Sent_to_Business_Cus_a"
 WHERE "Billing  Account" = 42;
SELECT line FROM report_ddl ORDER BY n;
SELECT max(length(line)) <= 120 AS narrow FROM report_ddl;
SELECT string_agg(line, E'\n' ORDER BY n) FROM report_ddl \gexec
SELECT indexdef FROM pg_indexes
 WHERE schemaname = 'Schema_of_the_Billing_Service_for_European_Business_Client_Pro';

-- wrap_sql on its own.  Narrow lines; a dot inside quotes is no place to
-- break; a word longer than a line with no dot to break at stays whole.
SELECT apiscale.wrap_sql('CREATE INDEX ON s.t (a, b DESC NULLS LAST)', 16, '> ');
SELECT apiscale.wrap_sql('SELECT "a.b  ""c"" d".x FROM t', 10, '');
SELECT apiscale.wrap_sql('x abcdefghijklmnop y', 8, '');
-- At every width, the lines joined again are the statement: nothing cut,
-- nothing changed, and no line longer than the width, or than the longest
-- piece when the width is smaller (20, '("Billing  Account",').
SELECT count(*) AS widths,
       count(*) FILTER (WHERE NOT same) AS changed,
       count(*) FILTER (WHERE NOT narrow) AS too_wide
  FROM (SELECT w,
               replace(string_agg(line, ' ' ORDER BY n), ' .', '.') = stmt AS same,
               max(length(line)) <= greatest(w, 20) AS narrow
          FROM (VALUES ('CREATE INDEX CONCURRENTLY ON "My  Schema"."Order.Lines" '
                        '("Billing  Account", created_at DESC NULLS LAST)')) AS s(stmt),
               generate_series(1, 90) AS w,
               apiscale.wrap_sql(stmt, w, '') WITH ORDINALITY AS l(line, n)
         GROUP BY w, stmt) AS per_width;

-- Nothing left to advise; the whole report stays within 120 columns.
SELECT count(*) AS ddl_lines FROM report_ddl;
SELECT max(length(line)) <= 120 AS narrow FROM apiscale.report() AS line;

DROP VIEW report_ddl;
DROP SCHEMA schema_of_the_billing_service_for_european_business_client_prod CASCADE;
DROP SCHEMA "Schema_of_the_Billing_Service_for_European_Business_Client_Pro" CASCADE;
SELECT apiscale.reset();
