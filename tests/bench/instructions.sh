#!/usr/bin/env bash
# instructions.sh: CPU instructions per statement, counted by valgrind.
#
# TPS on a small shared VM moves by 10-20% between identical runs, far more
# than the few percent an extension costs.  Instruction counts do not: a
# single-user backend (postgres --single, same parser, planner, executor
# and hooks as a normal backend, no network) runs N statements under
# callgrind, once with N = 0 and once with N > 0; the difference divided by
# N is the user-space instructions one statement costs, identical from run
# to run.  Kernel work (socket I/O) is not counted, so the relative cost
# here is an upper bound of what a client-server workload sees.
#
# Usage: instructions.sh DBDIR DBNAME  (a stopped cluster with pgbench
# tables at scale >= 1 and the extensions created); prints a table.
#
# Workloads: select (by primary key), join (+ aggregate, 100 rows), the
# index advisor's walkers, rows (a 100-row result, for the cache advice's
# result hashing), and scan (run.sh's scan tables, when they exist).
#
# APISCALE_LIB (apiscale) is the library the apiscale rows preload;
# APISCALE_BASELINE_LIB, if set (an absolute path to another build's
# apiscale.so, e.g. of the main branch), adds rows for that build, so that
# a change is measured against what it changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/scripts/lib.sh"

PGDATA=$1
DB=$2
out=$PGDATA/../callgrind
as_pg mkdir -p "$out"

command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 0; }

# statements WORKLOAD N: N statements with varying constants, one per line.
statements() {
	/usr/bin/python3 - "$1" "$2" <<'PY'
import random, sys
random.seed(42)
w, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    aid = random.randint(1, 99000)
    if w == "select":
        print("SELECT abalance FROM pgbench_accounts WHERE aid = %d;" % aid)
    elif w == "rows":
        # 100 result rows: what hashing a sampled run's result costs
        print("SELECT aid, bid, abalance FROM pgbench_accounts "
              "WHERE aid BETWEEN %d AND %d;" % (aid, aid + 99))
    elif w == "walkers":
        # walk_orders: the index advisor's scans beside an index
        k = aid % 4
        c = 1 + aid % 2900
        if k == 0:    # Index Scan Backward, a filter removing most rows
            print("SELECT id FROM walk_orders WHERE status = %d "
                  "ORDER BY created_at DESC LIMIT 20;" % (aid % 100))
        elif k == 1:  # Bitmap Heap Scan, a filter
            print("SELECT count(*) FROM walk_orders WHERE customer_id "
                  "BETWEEN %d AND %d AND status = 3;" % (c, c + 40))
        elif k == 2:  # Index Scan fetching heap rows (covering evidence)
            print("SELECT customer_id, amount FROM walk_orders WHERE "
                  "customer_id BETWEEN %d AND %d ORDER BY customer_id LIMIT 50;"
                  % (c, c + 4))
        else:         # Seq Scan filtering an expression
            print("SELECT id FROM walk_small WHERE lower(note) = 'n%d';" % c)
    elif w == "scan":
        # run.sh's scan_orders: 50,000 rows, no index but the primary key
        if aid % 2:
            print("SELECT id, amount FROM scan_orders WHERE code = %d;"
                  % (1 + aid % 5000))
        else:
            print("SELECT id, created_at, amount FROM scan_orders "
                  "WHERE status = %d ORDER BY created_at DESC LIMIT 20;" % (aid % 10))
    else:
        print("SELECT b.bid, count(*), sum(a.abalance), max(b.bbalance) "
              "FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid "
              "WHERE a.aid BETWEEN %d AND %d GROUP BY b.bid;" % (aid, aid + 99))
PY
}

# instructions CONFIG OPTIONS WORKLOAD N: total instructions of one run.
instructions() {
	local f=$out/$1.$3.$4
	statements "$3" "$4" >"$f.sql"
	chmod 644 "$f.sql"
	as_pg valgrind --tool=callgrind --callgrind-out-file="$f.cg" \
		"$PGBIN/postgres" --single -D "$PGDATA" $2 "$DB" <"$f.sql" >/dev/null 2>"$f.err" ||
		{ tail -n 5 "$f.err" >&2; return 1; }
	awk '/^(summary|totals):/ { print $2; exit }' "$f.cg"
}

# header: the table's first lines (a blank line first unless it is the first)
header() {
	[ "${1:-}" = first ] || echo
	printf '%-8s | %-20s | %14s | %8s | %8s\n' workload config "instr/stmt" "vs none" "vs pgss"
	echo "---------+----------------------+----------------+----------+---------"
}

# table_rows WORKLOAD N OPTS CONFIG...: a row per CONFIG (its options in the
# associative array named OPTS, which has none and pg_stat_statements):
# the instructions one of N statements costs, and how that compares.
table_rows() {
	local w=$1 n=$2 c base total
	local -n o=$3
	local -A per=()
	shift 3
	for c in "$@"; do
		base=$(instructions "$c" "${o[$c]}" "$w" 0)
		total=$(instructions "$c" "${o[$c]}" "$w" "$n")
		per[$c]=$(((total - base) / n))
	done
	for c in "$@"; do
		awk -v w="$w" -v c="$c" -v v="${per[$c]}" -v n="${per[none]}" \
			-v p="${per[pg_stat_statements]}" \
			'BEGIN { printf "%-8s | %-20s | %14d | %8.3f | %8.3f\n", w, c, v, v / n, v / p }'
	done
}

lib=${APISCALE_LIB:-apiscale}
baseline=${APISCALE_BASELINE_LIB:-}
configs=(none pg_stat_statements)
declare -A opts=(
	[none]="-c shared_preload_libraries="
	[pg_stat_statements]="-c shared_preload_libraries=pg_stat_statements"
	[apiscale]="-c shared_preload_libraries=$lib"
	[apiscale_no_plans]="-c shared_preload_libraries=$lib -c apiscale.capture_plans=off"
	[baseline]="-c shared_preload_libraries=$baseline"
	[baseline_no_plans]="-c shared_preload_libraries=$baseline -c apiscale.capture_plans=off"
)
[ -n "$baseline" ] && configs+=(baseline)
configs+=(apiscale)
[ -n "$baseline" ] && configs+=(baseline_no_plans)
configs+=(apiscale_no_plans)
declare -A count=([select]=2000 [join]=300 [walkers]=400 [rows]=500)

header first
for w in select join; do
	table_rows "$w" "${count[$w]}" opts "${configs[@]}"
done

# The index advisor's walkers of scans beside an index (Index Scans and
# Bitmap Heap Scans with filters, an Index Scan fetching heap rows, a Seq
# Scan filtering an expression) on tables made here if missing.  Plans are
# not captured (slow_query_ms = -1: under valgrind everything is slow), so
# the apiscale rows differ from the baseline by the new walkers only.
if [ "$(as_pg "$PGBIN/postgres" --single -D "$PGDATA" "$DB" <<<"SELECT to_regclass('walk_orders') IS NOT NULL;" 2>/dev/null |
	grep -c '= "t"')" -eq 0 ]; then
	as_pg "$PGBIN/postgres" --single -D "$PGDATA" "$DB" >/dev/null 2>&1 <<'SQL'
CREATE TABLE walk_orders (id int PRIMARY KEY, customer_id int NOT NULL, status int NOT NULL, created_at timestamptz NOT NULL, amount numeric(10, 2) NOT NULL)
INSERT INTO walk_orders SELECT g, 1 + (g * 7907) % 3000, g % 100, timestamptz '2026-01-01 00:00+00' + g * interval '1 minute', (g % 10000) / 100.0 FROM generate_series(1, 50000) g
CREATE INDEX walk_orders_created ON walk_orders (created_at)
CREATE INDEX walk_orders_customer ON walk_orders (customer_id)
CREATE TABLE walk_small (id int PRIMARY KEY, note text NOT NULL)
INSERT INTO walk_small SELECT g, 'N' || g FROM generate_series(1, 3000) g
VACUUM ANALYZE walk_orders
VACUUM ANALYZE walk_small
SQL
	# Again, in a backend of its own: with synchronous_commit = off the rows
	# could not get their hint bits until the commits were flushed, and the
	# first measured configuration would pay for setting them.
	as_pg "$PGBIN/postgres" --single -D "$PGDATA" "$DB" >/dev/null 2>&1 <<'SQL'
VACUUM walk_orders
VACUUM walk_small
SQL
fi
walk_configs=(none pg_stat_statements)
[ -n "$baseline" ] && walk_configs+=(baseline)
walk_configs+=(apiscale)
declare -A walk_opts=(
	[none]="-c shared_preload_libraries="
	[pg_stat_statements]="-c shared_preload_libraries=pg_stat_statements"
	[baseline]="-c shared_preload_libraries=$baseline -c apiscale.slow_query_ms=-1"
	[apiscale]="-c shared_preload_libraries=$lib -c apiscale.slow_query_ms=-1"
)
header
table_rows walkers "${count[walkers]}" walk_opts "${walk_configs[@]}"

# The cache advice's evidence (cache.c): every read statement's parameter
# set and minute counters, and on sampled runs a hash of each result row.
# A 100-row result, with the default apiscale.cache_sample_rate (0.01) and
# with every run's result hashed (1.0).  Plans are not captured, as for the
# walkers.
rows_configs=(none pg_stat_statements)
[ -n "$baseline" ] && rows_configs+=(baseline)
rows_configs+=(apiscale hash_every_run)
declare -A rows_opts=(
	[none]="-c shared_preload_libraries="
	[pg_stat_statements]="-c shared_preload_libraries=pg_stat_statements"
	[baseline]="-c shared_preload_libraries=$baseline -c apiscale.slow_query_ms=-1"
	[apiscale]="-c shared_preload_libraries=$lib -c apiscale.slow_query_ms=-1"
	[hash_every_run]="-c shared_preload_libraries=$lib -c apiscale.slow_query_ms=-1 -c apiscale.cache_sample_rate=1.0"
)
header
table_rows rows "${count[rows]}" rows_opts "${rows_configs[@]}"

# The index advisor on a scan-heavy workload (the tables of run.sh's
# "index advisor cost" section).  slow_query_ms = -1 everywhere: under
# valgrind every scan is "slow", which would make apiscale count rows per
# node for its plan capture even with the advisor off.
if [ "$(as_pg "$PGBIN/postgres" --single -D "$PGDATA" "$DB" <<<"SELECT to_regclass('scan_orders') IS NOT NULL;" 2>/dev/null |
	grep -c '= "t"')" -eq 0 ]; then
	echo "(no scan_orders table: the index advisor rows are left out)"
	exit 0
fi
scan_configs=(none advisor_off rate_1.0 rate_0.1)
declare -A scan_opts=(
	[none]="-c shared_preload_libraries="
	[advisor_off]="-c shared_preload_libraries=$lib -c apiscale.slow_query_ms=-1 -c apiscale.index_advisor=off"
	[rate_1.0]="-c shared_preload_libraries=$lib -c apiscale.slow_query_ms=-1 -c apiscale.sample_rate=1.0"
	[rate_0.1]="-c shared_preload_libraries=$lib -c apiscale.slow_query_ms=-1 -c apiscale.sample_rate=0.1"
)
n=40
echo
printf '%-8s | %-20s | %14s | %8s | %12s\n' workload config "instr/stmt" "vs none" "vs advisor off"
echo "---------+----------------------+----------------+----------+---------------"
declare -A sper=()
for c in "${scan_configs[@]}"; do
	base=$(instructions "$c" "${scan_opts[$c]}" scan 0)
	total=$(instructions "$c" "${scan_opts[$c]}" scan "$n")
	sper[$c]=$(((total - base) / n))
done
for c in "${scan_configs[@]}"; do
	awk -v c="$c" -v v="${sper[$c]}" -v n="${sper[none]}" -v a="${sper[advisor_off]}" \
		'BEGIN { printf "%-8s | %-20s | %14d | %8.4f | %12.4f\n", "scan", c, v, v / n, v / a }'
done
