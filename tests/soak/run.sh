#!/usr/bin/env bash
# soak/run.sh: the extension under long pressure (make soak).
#
#   1. SOAK_CLIENTS (200) pgbench clients churn 600 distinct statements for
#      SOAK_SECONDS (300) with every detector on (every run sampled, slow
#      and timed, plans kept, every statement tracked, the advisor on small
#      tables) and apiscale.max_queries = 100, max_advice_queries = 10,
#      max_plans = 20: the tables overflow all the time, while a reader
#      resets and reads every view.  Then exact counts with all clients in
#      three protocols.  tests/concurrency/run.sh does it (make test runs
#      it with 4 clients for 6 s); a sampler records the client backends
#      the server held.
#   2. SQLsmith, SOAK_QUERIES (100000) random statements, at apiscale's
#      most aggressive settings, with the advice read meanwhile
#      (tests/sqlsmith/run.sh; make test runs 3,000).
# Both against a private copy of PostgreSQL with this checkout's extension
# (scripts/lib.sh private_pg), not the system's directories.  Fails on
# any error, crash or wrong count; prints the figures.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/scripts/lib.sh"

clients=${SOAK_CLIENTS:-200}
seconds=${SOAK_SECONDS:-300}
queries=${SOAK_QUERIES:-100000}
[ -f "$top/apiscale.so" ] || { echo "build the extension first (make)" >&2; exit 1; }

work=$(mktemp -d /tmp/apiscale-soak.XXXXXX)
chmod 755 "$work"
sampler_pid=
cleanup() {
	[ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
	cluster_stop
	rm -rf "$work"
}
trap cleanup EXIT
fail=0

private_pg "$work/root" || exit 1
private_install "$top" || exit 1
export PGBIN PG_CONFIG

# 1. Many clients, small tables, every detector.
cluster_init "$work/pg" || exit 1
cluster_conf "shared_preload_libraries = 'apiscale'" \
	"max_connections = $((clients + 20))" \
	"apiscale.max_queries = 100" "apiscale.max_advice_queries = 10" \
	"apiscale.max_plans = 20" \
	"apiscale.sample_rate = 1.0" "apiscale.slow_query_ms = 0" \
	"apiscale.plan_timing = on" "apiscale.capture_plans = on" \
	"apiscale.capture_parameters = on" "apiscale.track = all" \
	"apiscale.index_advisor = on" "apiscale.min_table_rows = 0" \
	"apiscale.unbounded_rows = 1" "apiscale.n_plus_one_calls = 2" \
	"apiscale.cache_sample_rate = 1.0"
cluster_start || exit 1

# The sampler: client backends the server holds, every 2 s, read from the
# process titles ("postgres: USER DB [local] ..."), not with a statement:
# the signals' window counts every statement of the server, and the exact
# counts at the end of tests/concurrency/run.sh expect only pgbench's.
postmaster=$(head -n 1 "$PGDATA/postmaster.pid")
(
	while :; do
		ps -o args= --ppid "$postmaster" | grep -c '^postgres: .* \[local\]'
		sleep 2
	done
) >"$work/held" &
sampler_pid=$!

echo "== soak 1: $clients clients for $seconds s, every detector on, max_queries = 100"
t0=$(date +%s)
CONCURRENCY_CLIENTS=$clients CONCURRENCY_SECONDS=$seconds CONCURRENCY_TRANSACTIONS=50 \
	SERVER_LOG="$PGHOST/server.log" "$top/tests/concurrency/run.sh" || fail=1
kill "$sampler_pid" 2>/dev/null
wait "$sampler_pid" 2>/dev/null
sampler_pid=
held=$(sort -n "$work/held" | tail -n 1)
echo "soak 1: $(($(date +%s) - t0)) s, client backends held: up to ${held:-?}"
[ "${held:-0}" -ge "$clients" ] || { echo "soak 1: the server never held $clients clients"; fail=1; }
cluster_stop

# 2. Random SQL at the most aggressive settings.
echo "== soak 2: SQLsmith, $queries queries"
t0=$(date +%s)
"$top/tests/sqlsmith/run.sh" "$queries" || fail=1
echo "soak 2: $(($(date +%s) - t0)) s"

[ "$fail" -eq 0 ] && echo "soak: no error, no crash, exact counts"
exit "$fail"
