#!/usr/bin/env bash
# run.sh: overhead of the apiscale extension, measured with pgbench.
#
# One throwaway PostgreSQL 15 cluster (pgbench scale 10), restarted into
# three configurations that differ only in shared_preload_libraries:
#   none                ''
#   pg_stat_statements  'pg_stat_statements'
#   apiscale            'apiscale' (extension defaults)
# and two workloads: the built-in select-only script (pgbench -S) and the
# join-heavy tests/bench/join.sql.  Runs are interleaved: every round runs
# each workload under each configuration, in an order rotated per round to
# cancel drift; each run follows a restart, a prewarm and a discarded
# warm-up.  Prints the median TPS per workload and configuration, the
# ratios, every run, and a verdict per workload on the targets:
#   apiscale >= 0.97 x none
#   apiscale >= pg_stat_statements - 0.01 x none
# A missed target is reported, not an error: exit status is 0 unless
# something broke.
#
# Environment: BENCH_SECONDS (8) per measured run, BENCH_ROUNDS (5),
# BENCH_WARMUP (2) seconds of discarded warm-up, BENCH_SCALE (10).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/scripts/lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-5}
WARMUP=${BENCH_WARMUP:-2}
SCALE=${BENCH_SCALE:-10}
CLIENTS=2
THREADS=2
DB=apiscale_bench
PGBENCH=$PGBIN/pgbench

CONFIGS=(none pg_stat_statements apiscale)
WORKLOADS=(select_only join)

"$top/scripts/deps.sh"
build_and_install "$top"

work=$(mktemp -d /tmp/apiscale-bench.XXXXXX)
chmod 755 "$work"
results=$work/results

# server_log_problems: what the server logged that points to a problem.
server_log_problems() {
	local log=${PGHOST:-}/server.log
	[ -f "$log" ] || return 0
	local n
	n=$(grep -cE 'terminated by signal|PANIC|ERROR|FATAL|server process .* was terminated' "$log" || true)
	if [ "$n" -gt 0 ]; then
		echo "server log: $n line(s) with ERROR/FATAL/PANIC/crash (first 20):"
		grep -E 'terminated by signal|PANIC|ERROR|FATAL|server process .* was terminated' "$log" |
			head -n 20 | sed 's/^/  /'
	else
		echo "server log: no ERROR, FATAL, PANIC or crash"
	fi
}

cleanup() {
	local rc=$?
	if [ $rc -ne 0 ]; then
		echo "run.sh: failed (exit $rc)" >&2
		server_log_problems >&2 || true
		[ -f "${PGHOST:-}/server.log" ] && tail -n 20 "$PGHOST/server.log" >&2
	fi
	cluster_stop
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT

# Files the cluster reads are in the repository; pgbench runs as us.
cluster_init "$work/pg"
cluster_conf "shared_buffers = 256MB" "max_connections = 100"
cluster_start "-c shared_preload_libraries="

"$PGBIN/createdb" "$DB"
echo "== pgbench -i -s $SCALE"
"$PGBENCH" -i -q -s "$SCALE" "$DB" >"$work/init.log" 2>&1 ||
	{ cat "$work/init.log" >&2; exit 1; }
pg_psql -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm"

# switch_to CONFIG: restart into CONFIG, create its extension, prewarm.
switch_to() {
	local libs
	case $1 in
	none) libs= ;;
	pg_stat_statements) libs=pg_stat_statements ;;
	apiscale) libs=apiscale ;;
	esac
	cluster_restart "-c shared_preload_libraries=$libs"
	if [ -n "$libs" ]; then
		pg_psql -d "$DB" -c "SET client_min_messages = warning" \
			-c "CREATE EXTENSION IF NOT EXISTS $libs"
	fi
	pg_psql -d "$DB" -o /dev/null -c "SELECT pg_prewarm(c)
		FROM unnest(ARRAY['pgbench_accounts', 'pgbench_accounts_pkey',
			'pgbench_branches', 'pgbench_branches_pkey',
			'pgbench_tellers', 'pgbench_tellers_pkey']::regclass[]) c"
}

# bench WORKLOAD SECONDS: one pgbench run; prints its TPS.
bench() {
	local script out tps
	case $1 in
	select_only) script=(-S) ;;
	join) script=(-f "$here/join.sql" -s "$SCALE") ;;
	esac
	if ! out=$("$PGBENCH" -n "${script[@]}" -c "$CLIENTS" -j "$THREADS" \
		-T "$2" "$DB" 2>&1); then
		echo "pgbench ($1) failed:" >&2
		echo "$out" >&2
		return 1
	fi
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p')
	if [ -z "$tps" ]; then
		echo "no TPS in pgbench ($1) output:" >&2
		echo "$out" >&2
		return 1
	fi
	echo "$tps"
}

echo "== $ROUNDS rounds x ${#WORKLOADS[@]} workloads x ${#CONFIGS[@]} configs," \
	"${SECONDS_PER_RUN}s each (+${WARMUP}s warm-up), -c $CLIENTS -j $THREADS"
: >"$results"
n=${#CONFIGS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for w in "${WORKLOADS[@]}"; do
		for ((k = 0; k < n; k++)); do
			c=${CONFIGS[$(((k + r - 1) % n))]}
			switch_to "$c"
			bench "$w" "$WARMUP" >/dev/null
			tps=$(bench "$w" "$SECONDS_PER_RUN")
			printf 'round %d  %-12s %-20s %12.1f tps\n' "$r" "$w" "$c" "$tps"
			echo "$w $c $r $tps" >>"$results"
		done
	done
done

echo
/usr/bin/python3 - "$results" <<'PY'
import statistics
import sys

configs = ["none", "pg_stat_statements", "apiscale"]
workloads = []
runs = {}
for line in open(sys.argv[1]):
    w, c, r, tps = line.split()
    if w not in workloads:
        workloads.append(w)
    runs.setdefault((w, c), []).append(float(tps))

med = {k: statistics.median(v) for k, v in runs.items()}

hdr = "%-12s | %-18s | %12s | %13s | %23s"
print(hdr % ("workload", "config", "median TPS", "ratio vs none",
             "ratio vs pg_stat_stmts"))
print("-" * 12 + "-+-" + "-" * 18 + "-+-" + "-" * 12 + "-+-" + "-" * 13
      + "-+-" + "-" * 23)
for w in workloads:
    for c in configs:
        m = med[(w, c)]
        print("%-12s | %-18s | %12.1f | %13.3f | %23.3f"
              % (w, c, m, m / med[(w, "none")],
                 m / med[(w, "pg_stat_statements")]))

print()
print("individual runs (TPS, in round order):")
for w in workloads:
    for c in configs:
        print("  %-12s %-18s %s" % (w, c,
              " ".join("%.1f" % t for t in runs[(w, c)])))

print()
for w in workloads:
    none = med[(w, "none")]
    pgss = med[(w, "pg_stat_statements")]
    aps = med[(w, "apiscale")]
    t1 = aps >= 0.97 * none
    t2 = aps >= pgss - 0.01 * none
    print("verdict %-12s: apiscale/none = %.3f (target >= 0.970: %s); "
          "apiscale cost %.1f%% vs pg_stat_statements cost %.1f%% "
          "(target <= pgss + 1 point: %s) => %s"
          % (w, aps / none, "ok" if t1 else "MISSED",
             100 * (1 - aps / none), 100 * (1 - pgss / none),
             "ok" if t2 else "MISSED",
             "TARGETS HOLD" if t1 and t2 else "TARGETS MISSED"))
PY

echo
server_log_problems
