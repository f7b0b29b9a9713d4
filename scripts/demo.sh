#!/usr/bin/env bash
# demo.sh: apiscale on a throwaway PostgreSQL under an API-like workload.
#
# Starts a private PostgreSQL 15 with the extension preloaded, loads a small
# shop schema, runs four "endpoints" with pgbench for DEMO_SECONDS (default
# 15) plus a few failing requests, then prints what apiscale saw.  Nothing
# outside a temporary directory is touched; the server is stopped at the end.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

"$top/scripts/deps.sh"
echo "== building and installing apiscale"
build_and_install "$top"

work=$(mktemp -d /tmp/apiscale-demo.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop; rm -rf "$work"' EXIT

echo "== starting a throwaway PostgreSQL in $work"
cluster_init "$work/pg"
cluster_conf "shared_preload_libraries = 'apiscale'" \
	"apiscale.slow_query_ms = 50" \
	"shared_buffers = 128MB"
cluster_start

pg_psql -d postgres -c "CREATE DATABASE shop"
echo "== loading the shop schema (20k users, 300k orders)"
pg_psql -d shop -f "$top/demo/schema.sql"
pg_psql -d shop -c "CREATE EXTENSION apiscale" -c "SELECT apiscale.reset()" >/dev/null

secs=${DEMO_SECONDS:-15}
echo "== API traffic for ${secs}s: 4 clients, 7 endpoints"
"$PGBIN/pgbench" -n -c 4 -j 2 -T "$secs" \
	-f "$top/demo/get_user.sql@50" \
	-f "$top/demo/list_orders.sql@20" \
	-f "$top/demo/create_order.sql@12" \
	-f "$top/demo/cart.sql@10" \
	-f "$top/demo/browse_orders.sql@6" \
	-f "$top/demo/export_users.sql@1" \
	-f "$top/demo/dashboard.sql@1" shop | grep -E "^(number of transactions|latency average|tps)"

echo "== a few failing requests (duplicate e-mail, timeout)"
pg_psql -d shop -c "INSERT INTO users VALUES (20001, 'user1@example.com', 'Dup', now())" 2>&1 | head -1 || true
pg_psql -d shop -c "SET statement_timeout = '20ms'" \
	-c "SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id WHERE u.name LIKE '%9%'" 2>&1 | head -1 || true

cat <<'SQL' >"$work/report.sql"
\pset footer off
\echo
\echo '== apiscale.queries: where the time goes (top 8 by total time)'
SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 58) AS query,
       calls, round(total_ms::numeric, 0) AS total_ms,
       round(p50_ms::numeric, 2) AS p50_ms, round(p95_ms::numeric, 2) AS p95_ms,
       round(p99_ms::numeric, 2) AS p99_ms, slow_calls, errors
  FROM apiscale.queries
 WHERE query NOT LIKE '%apiscale%'
 ORDER BY total_ms DESC LIMIT 8;
\echo '== apiscale.slow_queries: runs over apiscale.slow_query_ms (50 ms here)'
SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 58) AS query,
       calls, slow_calls, round(p95_ms::numeric, 1) AS p95_ms,
       round(last_slow_ms::numeric, 1) AS last_slow_ms
  FROM apiscale.slow_queries ORDER BY slow_calls DESC LIMIT 5;
\echo '== the plan of the latest slow run of the slowest endpoint'
SELECT last_slow_plan AS plan FROM apiscale.slow_queries
 ORDER BY p95_ms DESC LIMIT 1;
\echo '== apiscale.index_advice: missing indexes, proven by a hypothetical re-plan'
SELECT ddl, reasons, queries, rows_filtered,
       round(est_improvement_pct::numeric, 1) AS est_improvement_pct
  FROM apiscale.index_advice;
\echo '== apiscale.index_candidates: what was considered and left out'
SELECT relation, columns, verdict, left(detail, 60) AS detail
  FROM apiscale.index_candidates WHERE verdict <> 'recommended';
\echo '== apiscale.report(): everything above in one text, for a psql user'
\pset tuples_only on
\pset format unaligned
SELECT * FROM apiscale.report();
SQL
pg_psql -d shop -f "$work/report.sql"
