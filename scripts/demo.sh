#!/usr/bin/env bash
# demo.sh: apiscale on a throwaway PostgreSQL under an API-like workload.
#
# Starts a private PostgreSQL 15 with the extension preloaded and
# apiscale-pooler in front of it (the scaling guide's QueuePool settings,
# scaled down: more API clients than pool_size + max_overflow, so waits and
# overflow show), loads a small shop schema, sends seven "endpoints" through
# the pooler with pgbench for DEMO_SECONDS (default 15) plus a few failing
# requests, then prints what both halves saw and the dashboard's address.
# Nothing outside a temporary directory is touched; everything is stopped at
# the end, or on Ctrl-C with DEMO_KEEP=1, which keeps it all running (with a
# trickle of traffic) for a look at the dashboard in a browser.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

"$top/scripts/deps.sh"
echo "== building and installing apiscale"
build_and_install "$top"

work=$(mktemp -d /tmp/apiscale-demo.XXXXXX)
chmod 755 "$work"
pooler_pid=""
trickle_pid=""
stop_all() {
	[ -n "$trickle_pid" ] && kill "$trickle_pid" 2>/dev/null
	[ -n "$pooler_pid" ] && kill "$pooler_pid" 2>/dev/null && wait "$pooler_pid" 2>/dev/null
	cluster_stop
	rm -rf "$work"
}
trap stop_all EXIT

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

pooler_port=$(free_port)
http_port=$(free_port)
cat >"$work/pooler.ini" <<INI
[databases]
shop = host=$PGHOST port=$PGPORT dbname=shop

[pooler]
listen_addr = 127.0.0.1
listen_port = $pooler_port
unix_socket_dir =
admin_users = $PGUSER_OS
; the guide's QueuePool(pool_size=20, max_overflow=30, pool_timeout=30),
; scaled down to this demo's 12 clients
pool_size = 4
max_overflow = 2
pool_timeout = 10
pool_recycle = 1800
report_interval = 2
http_listen = 127.0.0.1:$http_port
http_metrics_databases = shop
log_level = warning
INI
echo "== starting apiscale-pooler on 127.0.0.1:$pooler_port (pool_size 4, max_overflow 2)"
"$top/pooler/apiscale-pooler" "$work/pooler.ini" 2>"$work/pooler.log" &
pooler_pid=$!
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$pooler_port") 2>/dev/null && break
	sleep 0.1
done

endpoints=(-f "$top/demo/get_user.sql@50"
	-f "$top/demo/list_orders.sql@20"
	-f "$top/demo/create_order.sql@12"
	-f "$top/demo/cart.sql@10"
	-f "$top/demo/browse_orders.sql@6"
	-f "$top/demo/export_users.sql@1"
	-f "$top/demo/dashboard.sql@1")
secs=${DEMO_SECONDS:-15}
echo "== API traffic through the pooler for ${secs}s: 12 clients, 7 endpoints"
"$PGBIN/pgbench" -n -c 12 -j 2 -T "$secs" -h 127.0.0.1 -p "$pooler_port" \
	"${endpoints[@]}" shop >"$work/pgbench.out" 2>&1 &
bench_pid=$!
sleep $((secs / 2))
echo "== apiscale-pooler under that load: SHOW POOLS (12 clients on 4 + 2 servers)"
"$PGBIN/psql" -X -h 127.0.0.1 -p "$pooler_port" -d apiscale -c "SHOW POOLS"
wait "$bench_pid" || { cat "$work/pgbench.out"; exit 1; }
grep -E "^(number of transactions|latency average|tps)" "$work/pgbench.out"

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
       round(est_improvement_pct::numeric, 1) AS est_improvement_pct, verdict
  FROM apiscale.index_advice;
\echo '== apiscale.index_candidates: what was considered and left out'
SELECT relation, columns, verdict, left(detail, 60) AS detail
  FROM apiscale.index_candidates WHERE verdict NOT IN ('recommended', 'not worth it');
\echo '== apiscale.report(): everything above in one text, for a psql user'
\pset tuples_only on
\pset format unaligned
SELECT * FROM apiscale.report();
SQL
pg_psql -d shop -f "$work/report.sql"

echo
echo "== the pool as the extension sees it (apiscale-pooler reports every 2 s)"
pg_psql -d shop -X -c "SELECT pool, size, overflow, in_use, waiting, timeouts
  FROM apiscale.pool_reports" \
	-c "SELECT signal, round(value::numeric, 1) AS value, threshold, status, action
  FROM apiscale.scaling_signals WHERE signal = 'pool_utilization_pct'"
echo "== dashboard: http://127.0.0.1:$http_port/   (also /metrics, /health, /api/status)"

if [ "${DEMO_KEEP:-}" = 1 ]; then
	echo "== DEMO_KEEP=1: everything keeps running, with a trickle of traffic; Ctrl-C stops it"
	"$PGBIN/pgbench" -n -c 8 -j 2 -T 86400 -R 50 -h 127.0.0.1 -p "$pooler_port" \
		"${endpoints[@]}" shop >/dev/null 2>&1 &
	trickle_pid=$!
	wait "$trickle_pid" || true
fi
