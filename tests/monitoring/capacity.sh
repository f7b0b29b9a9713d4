#!/usr/bin/env bash
# monitoring/capacity.sh: apiscale.capacity's figures against /proc and
# pgbench's own log under a synthetic load, on a throwaway cluster of its
# own, in about 45 seconds.
#
# The load: one pgbench client running a statement that burns a few ms of
# CPU, logging every transaction.  The signals worker samples the machine
# on the 10-second grid and keeps each sample with the 10 s it measured;
# this test reads /proc/stat itself at three boundaries of that grid apart
# (B0 and B3, just after the worker's samples) and compares, within a few
# points:
#   - cores and memory_gb with /proc/stat's cpuN lines and MemTotal;
#   - cpu_busy_pct with the busy share of /proc/stat's ticks from B0 to B3;
#   - cpu_ms_per_statement with those busy ticks over the statements
#     pgbench started from B0 to B3 (its log: completion time - latency);
#   - statements_per_s * window_s with the statements pgbench started
#     between the reset (just after B0) and the read;
#   - memory_used_pct with /proc/meminfo as it is read.
# The machine may be busy with other work: both sides measure the same
# machine over the same seconds.  Prints what failed and exits non-zero.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

work=$(mktemp -d /tmp/apiscale-capacity.XXXXXX)
chmod 755 "$work"
load_pid=
cleanup() {
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
	cluster_stop
	rm -rf "$work"
}
trap cleanup EXIT
fail=0
problem() { echo "capacity: $*"; fail=1; }

cluster_init "$work/pg" || exit 1
cluster_conf "shared_preload_libraries = 'apiscale'"
cluster_start || exit 1

# This test's own statements are not counted (apiscale.enabled = off).
psql_q() { PGOPTIONS="-c apiscale.enabled=off" "$PGBIN/psql" -X -q -At -d postgres "$@"; }
psql_q -c "CREATE EXTENSION apiscale" || exit 1

now_ms() { date +%s%3N; }
sleep_until() { # MS
	local d=$(($1 - $(now_ms)))
	[ "$d" -gt 0 ] && sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
}
# /proc/stat's busy and total ticks (as machine.c counts them).
proc_ticks() {
	awk '/^cpu / { t = $2+$3+$4+$5+$6+$7+$8+$9; print t - $5 - $6, t; exit }' /proc/stat
}

# B0: a boundary of the 10-second grid at least 3 s away (the load runs
# before it), then three whole buckets of load to B3.
start=$(now_ms)
b0=$(((start + 3000) / 10000 * 10000 + 10000))
b3=$((b0 + 30000))

mkdir -p "$work/load"
echo "SELECT count(*) FROM generate_series(1, 30000);" >"$work/load/burn.sql"
chown -R "$PGUSER_OS:" "$work/load"
duration=$(((b3 + 2000 - start) / 1000 + 1))
(cd "$work/load" && as_pg "$PGBIN/pgbench" -n -f burn.sql -c 1 -T "$duration" -l \
	--log-prefix="$work/load/tx" -h "$PGHOST" -p "$PGPORT" postgres >"$work/load/out" 2>&1) &
load_pid=$!

sleep_until $((b0 + 50))
read -r busy0 total0 < <(proc_ticks)
reset_ms=$(now_ms)
psql_q -c "SELECT apiscale.reset()" >/dev/null || exit 1
sleep_until $((b3 + 50))
read -r busy3 total3 < <(proc_ticks)
sleep_until $((b3 + 400))
read_ms=$(now_ms)
row=$(psql_q -F ' ' -c "SELECT cores, memory_gb, cpu_busy_pct, memory_used_pct,
                               cpu_ms_per_statement, round((statements_per_s * window_s)::numeric, 1),
                               capacity_statements_per_s
                          FROM apiscale.capacity") || exit 1
read -r cores memory_gb busy_pct mem_pct cpu_ms counted capacity <<<"$row"
mem_now=$(awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 }
               END { printf "%.2f", 100 * (t - a) / t }' /proc/meminfo)
wait "$load_pid"
load_pid=

# Statements pgbench started in [from, to) ms, from its log (one
# statement per transaction): completion time minus latency.
started() {
	cat "$work"/load/tx.* | awk -v from="$1" -v to="$2" '
		{ s = ($5 * 1000000 + $6 - $3) / 1000; if (s >= from && s < to) n++ }
		END { print n + 0 }'
}
stmts_b=$(started "$b0" "$b3")
stmts_w=$(started "$reset_ms" "$read_ms")
hz=$(getconf CLK_TCK)

# close ACTUAL EXPECTED TOLERANCE WHAT: |actual - expected| <= tolerance.
close() {
	if awk -v a="$1" -v e="$2" -v t="$3" 'BEGIN { d = a - e; if (d < 0) d = -d; exit !(a != "" && d <= t) }'; then
		printf 'capacity: %-22s %12s, expected %12s (within %s)\n' "$4" "$1" "$2" "$3"
	else
		problem "$4 is $1, expected $2 within $3"
	fi
}
exp_busy=$(awk -v b="$((busy3 - busy0))" -v t="$((total3 - total0))" 'BEGIN { printf "%.2f", 100 * b / t }')
exp_ms=$(awk -v b="$((busy3 - busy0))" -v hz="$hz" -v n="$stmts_b" 'BEGIN { printf "%.3f", n ? b * 1000 / hz / n : -1 }')
exp_cores=$(grep -c '^cpu[0-9]' /proc/stat)
exp_mem=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)

[ "$stmts_b" -gt 100 ] || problem "the load ran only $stmts_b statements from B0 to B3"
close "$cores" "$exp_cores" 0 cores
close "$memory_gb" "$exp_mem" 0.1 memory_gb
close "$busy_pct" "$exp_busy" 3 cpu_busy_pct
close "$cpu_ms" "$exp_ms" "$(awk -v e="$exp_ms" 'BEGIN { print 0.05 * e }')" cpu_ms_per_statement
close "$counted" "$stmts_w" "$(awk -v e="$stmts_w" 'BEGIN { print 3 + 0.02 * e }')" statements
close "$mem_pct" "$mem_now" 3 memory_used_pct
close "$capacity" "$(awk -v c="$cores" -v m="$cpu_ms" 'BEGIN { printf "%.2f", 0.7 * c * 1000 / m }')" \
	"$(awk -v c="$capacity" 'BEGIN { print 0.01 + 0.001 * c }')" capacity_statements_per_s

exit "$fail"
