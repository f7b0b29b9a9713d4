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
# Then "index advisor cost": the scan-heavy tests/bench/scan.sql (Seq Scans
# with filters over 50,000 rows, a top-N Sort, a hash join) with apiscale
# preloaded, interleaved the same way over these settings, set per run for
# pgbench's backends through PGOPTIONS (no restart):
#   off        apiscale.enabled = off (the baseline)
#   rate_1.0   apiscale.sample_rate = 1.0
#   rate_0.1   apiscale.sample_rate = 0.1
#   no_advisor apiscale.index_advisor = off, sample_rate 1.0 (only when the
#              server has that parameter)
# and prints median TPS and server CPU per transaction with the ratios to
# off.
#
# Environment: BENCH_SECONDS (8) per measured run, BENCH_ROUNDS (5),
# BENCH_WARMUP (2) seconds of discarded warm-up, BENCH_SCALE (10),
# BENCH_CLIENTS (1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/scripts/lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-5}
WARMUP=${BENCH_WARMUP:-2}
SCALE=${BENCH_SCALE:-10}
CLIENTS=${BENCH_CLIENTS:-1}
THREADS=$CLIENTS
# On two or more cores, the server gets core 1 and pgbench core 0: one
# client and no core sharing make the runs far less noisy than letting the
# scheduler mix four processes on two cores.
PGBENCH_PIN=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	export PG_CPUS=1
	PGBENCH_PIN=(taskset -c 0)
fi
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
		# awk, not head: head leaving early would end the script (pipefail)
		grep -E 'terminated by signal|PANIC|ERROR|FATAL|server process .* was terminated' "$log" |
			awk 'NR <= 20' | sed 's/^/  /'
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

# server_cpu_ticks: CPU time (clock ticks) the server has used so far: the
# postmaster, its live children, and its exited children (cutime/cstime).
server_cpu_ticks() {
	local pm total=0 pid f
	pm=$(head -n 1 "$PGDATA/postmaster.pid")
	for pid in "$pm" $(pgrep -P "$pm"); do
		f=$(cut -d' ' -f14-17 "/proc/$pid/stat" 2>/dev/null) || continue
		set -- $f
		total=$((total + $1 + $2))
		[ "$pid" = "$pm" ] && total=$((total + $3 + $4))
	done
	echo "$total"
}

# bench WORKLOAD SECONDS [OPTIONS]: one pgbench run, its backends started
# with the server OPTIONS (PGOPTIONS); prints its TPS and the server's CPU
# microseconds per transaction.
bench() {
	local script out tps txns cpu0 cpu1
	case $1 in
	select_only) script=(-S) ;;
	join) script=(-f "$here/join.sql" -s "$SCALE") ;;
	scan) script=(-f "$here/scan.sql") ;;
	esac
	cpu0=$(server_cpu_ticks)
	if ! out=$(PGOPTIONS="${PGOPTIONS:-}${3:+ $3}" "${PGBENCH_PIN[@]}" "$PGBENCH" -n \
		"${script[@]}" -c "$CLIENTS" -j "$THREADS" -T "$2" "$DB" 2>&1); then
		echo "pgbench ($1) failed:" >&2
		echo "$out" >&2
		return 1
	fi
	sleep 0.3 # let the postmaster reap the pgbench backend
	cpu1=$(server_cpu_ticks)
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p')
	txns=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	if [ -z "$tps" ] || [ -z "$txns" ] || [ "$txns" -eq 0 ]; then
		echo "no TPS in pgbench ($1) output:" >&2
		echo "$out" >&2
		return 1
	fi
	awk -v tps="$tps" -v a="$cpu0" -v b="$cpu1" -v t="$TICKS" -v n="$txns" \
		'BEGIN { printf "%s %.2f\n", tps, (b - a) * 1e6 / t / n }'
}
TICKS=$(getconf CLK_TCK)

echo "== $ROUNDS rounds x ${#WORKLOADS[@]} workloads x ${#CONFIGS[@]} configs," \
	"${SECONDS_PER_RUN}s each (+${WARMUP}s warm-up), -c $CLIENTS -j $THREADS" \
	"${PG_CPUS:+(server on CPU $PG_CPUS, pgbench on CPU 0)}"
: >"$results"
n=${#CONFIGS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for w in "${WORKLOADS[@]}"; do
		for ((k = 0; k < n; k++)); do
			c=${CONFIGS[$(((k + r - 1) % n))]}
			switch_to "$c"
			bench "$w" "$WARMUP" >/dev/null
			read -r tps cpu < <(bench "$w" "$SECONDS_PER_RUN")
			[ -n "${cpu:-}" ] || exit 1
			printf 'round %d  %-12s %-20s %12.1f tps %8.2f us CPU/tx\n' \
				"$r" "$w" "$c" "$tps" "$cpu"
			echo "$w $c $r $tps $cpu" >>"$results"
		done
	done
done

echo
/usr/bin/python3 - "$results" <<'PY'
import statistics
import sys

configs = ["none", "pg_stat_statements", "apiscale"]
workloads = []
tps = {}
cpu = {}
for line in open(sys.argv[1]):
    w, c, r, t, u = line.split()
    if w not in workloads:
        workloads.append(w)
    tps.setdefault((w, c), []).append(float(t))
    cpu.setdefault((w, c), []).append(float(u))

mt = {k: statistics.median(v) for k, v in tps.items()}
mc = {k: statistics.median(v) for k, v in cpu.items()}

print("TPS (higher is better) and server CPU per transaction (lower is "
      "better), medians:")
hdr = "%-12s | %-18s | %10s | %8s | %8s | %10s | %8s | %8s"
print(hdr % ("workload", "config", "TPS", "vs none", "vs pgss",
             "CPU us/tx", "vs none", "vs pgss"))
print("-" * 100)
for w in workloads:
    for c in configs:
        print("%-12s | %-18s | %10.1f | %8.3f | %8.3f | %10.2f | %8.3f | %8.3f"
              % (w, c, mt[(w, c)], mt[(w, c)] / mt[(w, "none")],
                 mt[(w, c)] / mt[(w, "pg_stat_statements")],
                 mc[(w, c)], mc[(w, c)] / mc[(w, "none")],
                 mc[(w, c)] / mc[(w, "pg_stat_statements")]))

print()
print("individual runs (TPS / CPU us per tx, in round order):")
for w in workloads:
    for c in configs:
        print("  %-12s %-18s %s" % (w, c, "  ".join(
            "%.0f/%.1f" % (t, u) for t, u in zip(tps[(w, c)], cpu[(w, c)]))))

# The verdict uses CPU per transaction: on a shared 2-core VM, TPS of
# back-to-back runs varies by 10-20% with the host's load, while the CPU
# the server spends per transaction does not count stolen time.
print()
for w in workloads:
    none = mc[(w, "none")]
    pgss = mc[(w, "pg_stat_statements")]
    aps = mc[(w, "apiscale")]
    cost_aps = aps / none - 1
    cost_pgss = pgss / none - 1
    t1 = cost_aps <= 0.03
    t2 = cost_aps <= cost_pgss + 0.01
    print("verdict %-12s: apiscale costs %+.1f%% CPU/tx vs none (target <= 3%%: "
          "%s), pg_stat_statements %+.1f%% (target: apiscale <= pgss + 1 "
          "point: %s); TPS ratio vs none %.3f => %s"
          % (w, 100 * cost_aps, "ok" if t1 else "MISSED", 100 * cost_pgss,
             "ok" if t2 else "MISSED", mt[(w, "apiscale")] / mt[(w, "none")],
             "TARGETS HOLD" if t1 and t2 else "TARGETS MISSED"))
PY

# --- index advisor cost ----------------------------------------------------
# The extension stays loaded; each run's settings reach only pgbench's
# backends, through PGOPTIONS.  The parameters are PGC_SUSET: the bench
# connects as the cluster's superuser, so a client may set them.
ADVISOR_CONFIGS=(off rate_1.0 rate_0.1)
declare -A advisor_opts=(
	[off]="-c apiscale.enabled=off"
	[rate_1.0]="-c apiscale.sample_rate=1.0"
	[rate_0.1]="-c apiscale.sample_rate=0.1"
	[no_advisor]="-c apiscale.sample_rate=1.0 -c apiscale.index_advisor=off"
)

echo
echo "== index advisor cost: tests/bench/scan.sql with apiscale preloaded"
# Deterministic data; no index but the primary keys.  code: 5,000 values
# (10 rows each), status: 10 values, 2,000 customers in 20 regions.
pg_psql -d "$DB" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS scan_orders, scan_customers;
CREATE TABLE scan_customers (
	id int PRIMARY KEY,
	name text NOT NULL,
	region int NOT NULL
);
INSERT INTO scan_customers
SELECT g, 'customer ' || g, g % 20 FROM generate_series(1, 2000) g;
CREATE TABLE scan_orders (
	id int PRIMARY KEY,
	customer_id int NOT NULL REFERENCES scan_customers,
	code int NOT NULL,
	status int NOT NULL,
	created_at timestamptz NOT NULL,
	amount numeric(10, 2) NOT NULL,
	note text NOT NULL
);
INSERT INTO scan_orders
SELECT g, 1 + (g * 7907) % 2000, 1 + (g * 7919) % 5000, g % 10,
	timestamptz '2026-01-01 00:00+00' + g * interval '1 minute',
	(g % 10000) / 100.0, md5(g::text)
  FROM generate_series(1, 50000) g;
VACUUM ANALYZE scan_customers;
VACUUM ANALYZE scan_orders;
SQL
switch_to apiscale
pg_psql -d "$DB" -o /dev/null -c "SELECT pg_prewarm(c)
	FROM unnest(ARRAY['scan_orders', 'scan_orders_pkey',
		'scan_customers', 'scan_customers_pkey']::regclass[]) c"
if [ "$(pg_psql -d "$DB" -At -c "SELECT count(*) FROM pg_settings
		WHERE name = 'apiscale.index_advisor'")" = 1 ]; then
	ADVISOR_CONFIGS+=(no_advisor)
else
	echo "(no apiscale.index_advisor parameter in this build: no_advisor left out)"
fi

# The workload must plan what the advisor looks at: three Seq Scans of
# scan_orders, and Sorts.
plans=$(pg_psql -d "$DB" -At \
	-c "EXPLAIN (COSTS OFF) SELECT id, amount FROM scan_orders WHERE code = 1" \
	-c "EXPLAIN (COSTS OFF) SELECT id, created_at, amount FROM scan_orders
		WHERE status = 1 ORDER BY created_at DESC LIMIT 20" \
	-c "EXPLAIN (COSTS OFF) SELECT c.name, count(*), sum(o.amount)
		FROM scan_orders o JOIN scan_customers c ON c.id = o.customer_id
		WHERE c.region = 1 AND o.status = 1 GROUP BY c.name
		ORDER BY sum(o.amount) DESC LIMIT 10")
if [ "$(grep -c 'Seq Scan on scan_orders' <<<"$plans")" -ne 3 ] ||
	! grep -q 'Sort' <<<"$plans"; then
	echo "WARNING: scan.sql no longer plans three Seq Scans and a Sort:"
	awk '{ print "  " $0 }' <<<"$plans"
fi

# tracked_calls: calls apiscale recorded for the scan statements.
tracked_calls() {
	pg_psql -d "$DB" -At -c "SELECT coalesce(sum(calls), 0)
		FROM apiscale.queries WHERE query LIKE '%scan_orders%'"
}

echo "== $ROUNDS rounds x ${#ADVISOR_CONFIGS[@]} settings," \
	"${SECONDS_PER_RUN}s each (+${WARMUP}s warm-up), -c $CLIENTS -j $THREADS"
advisor_results=$work/advisor
: >"$advisor_results"
n=${#ADVISOR_CONFIGS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for ((k = 0; k < n; k++)); do
		c=${ADVISOR_CONFIGS[$(((k + r - 1) % n))]}
		pg_psql -d "$DB" -o /dev/null -c "SELECT apiscale.reset()"
		bench scan "$WARMUP" "${advisor_opts[$c]}" >/dev/null
		read -r tps cpu < <(bench scan "$SECONDS_PER_RUN" "${advisor_opts[$c]}")
		[ -n "${cpu:-}" ] || exit 1
		# A setting that did not reach the backends shows here.
		calls=$(tracked_calls)
		if { [ "$c" = off ] && [ "$calls" -ne 0 ]; } ||
			{ [ "$c" != off ] && [ "$calls" -eq 0 ]; }; then
			echo "run $c: apiscale recorded $calls calls of the scan statements" >&2
			exit 1
		fi
		printf 'round %d  %-12s %-20s %12.1f tps %8.2f us CPU/tx\n' \
			"$r" scan "$c" "$tps" "$cpu"
		echo "$c $r $tps $cpu" >>"$advisor_results"
	done
done

echo
/usr/bin/python3 - "$advisor_results" <<'PY'
import statistics
import sys

configs = []
tps = {}
cpu = {}
for line in open(sys.argv[1]):
    c, r, t, u = line.split()
    if c not in configs:
        configs.append(c)
    tps.setdefault(c, []).append(float(t))
    cpu.setdefault(c, []).append(float(u))
order = ["off", "rate_1.0", "rate_0.1", "no_advisor"]
configs.sort(key=order.index)

mt = {c: statistics.median(v) for c, v in tps.items()}
mc = {c: statistics.median(v) for c, v in cpu.items()}

print("index advisor cost, scan.sql: TPS and server CPU per transaction, "
      "medians:")
hdr = "%-10s | %-32s | %10s | %8s | %10s | %8s"
print(hdr % ("setting", "PGOPTIONS", "TPS", "vs off", "CPU us/tx", "vs off"))
print("-" * 93)
opts = {
    "off": "apiscale.enabled=off",
    "rate_1.0": "apiscale.sample_rate=1.0",
    "rate_0.1": "apiscale.sample_rate=0.1",
    "no_advisor": "apiscale.index_advisor=off",
}
for c in configs:
    print("%-10s | %-32s | %10.1f | %8.3f | %10.2f | %8.3f"
          % (c, opts[c], mt[c], mt[c] / mt["off"], mc[c], mc[c] / mc["off"]))

print()
print("individual runs (TPS / CPU us per tx, in round order):")
for c in configs:
    print("  %-10s %s" % (c, "  ".join(
        "%.0f/%.1f" % (t, u) for t, u in zip(tps[c], cpu[c]))))

print()
for c in configs[1:]:
    print("%-10s costs %+.1f%% CPU/tx and %+.1f%% TPS vs off"
          % (c, 100 * (mc[c] / mc["off"] - 1), 100 * (mt[c] / mt["off"] - 1)))
if "no_advisor" in mc:
    print("the advisor alone (rate_1.0 vs no_advisor): %+.1f%% CPU/tx"
          % (100 * (mc["rate_1.0"] / mc["no_advisor"] - 1)))
PY

echo
server_log_problems

echo
echo "== user-space instructions per statement (valgrind; deterministic)"
cluster_stop
"$here/instructions.sh" "$PGDATA" "$DB"
