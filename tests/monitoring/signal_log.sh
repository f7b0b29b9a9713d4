#!/usr/bin/env bash
# monitoring/signal_log.sh: the signals worker's WARNING and recovery lines
# in the server log, on a throwaway cluster of its own (the worker's state
# starts with the server), in about 50 seconds.
#
# The worker samples every 10 s; a signal changes state once the new state
# has been read at two consecutive samples.  Only error_rate_pct and
# pool_utilization_pct can warn here (the other thresholds are set out of
# reach, so that a busy machine does not add lines).  Then:
#   - five failing statements and a full pool (in_use = size + overflow)
#     give one WARNING line each, at the second sample that sees them;
#   - a thousand statements that succeed bring the error rate back under
#     1%: one LOG line, at the second sample that sees it; the pool, whose
#     signal is the peak over the 5-minute window, stays in warning;
#   - one more sample later, nothing else was logged: exactly those three
#     lines, with the signal, value, threshold and action.
# Prints what failed and exits non-zero on any failure.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

work=$(mktemp -d /tmp/apiscale-signal-log.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop; rm -rf "$work"' EXIT
fail=0
problem() { echo "signal_log: $*"; fail=1; }

cluster_init "$work/pg" || exit 1
cluster_conf "shared_preload_libraries = 'apiscale'" \
	"apiscale.warn_p95_ms = 1000000000" \
	"apiscale.warn_connection_pct = 100" \
	"apiscale.warn_cache_hit_pct = 0" \
	"apiscale.warn_cpu_pct = 100" \
	"apiscale.warn_memory_pct = 100"
cluster_start || exit 1
LOG=$PGHOST/server.log

psql_q() { "$PGBIN/psql" -X -q -At -d postgres "$@"; }
now_ms() { date +%s%3N; }
# lines LEVEL SIGNAL: the worker's lines of that level for that signal.
lines() { grep -E "\] $1:  apiscale: $2 is " "$LOG"; }
# line_ms LINE: its time (log_line_prefix '%m [%p] '), in ms.
line_ms() { date -d "$(cut -d' ' -f1-3 <<<"$1")" +%s%3N; }
# wait_for LEVEL SIGNAL SECONDS: the first such line, once it is there.
wait_for() {
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -lt "$end" ]; do
		lines "$1" "$2" | head -n 1 | grep . && return 0
		sleep 0.2
	done
	return 1
}

psql_q -c "CREATE EXTENSION apiscale" || exit 1

sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
# A statement this test's statements do not dilute.
unseen() {
	PGOPTIONS="-c apiscale.enabled=off" psql_q -c "$1"
}
# sample_after MS: the first sample at or after MS (they keep a 10 s
# cadence from $anchor, one of them).
sample_after() {
	local d=$(($1 - anchor))
	if [ "$d" -le 0 ]; then
		echo $((anchor - (-d / 10000) * 10000))
	else
		echo $((anchor + (d + 9999) / 10000 * 10000))
	fi
}

# Into warning: five failures among six statements, and a full pool.
t0=$(now_ms)
{
	for _ in 1 2 3 4 5; do
		echo "SELECT 1 / (g - g) FROM generate_series(1, 1) g;"
	done
	echo "SELECT apiscale.report_pool('shop', 8, 2, 10, 4, 0);"
} | psql_q >/dev/null 2>&1

# When is a sample?  The worker's first one measures no CPU use (it has
# nothing to compare with): cpu_usage_pct has data from its second one.
end=$(($(now_ms) + 15000))
until [ "$(unseen "SELECT status FROM apiscale.scaling_signals
                    WHERE signal = 'cpu_usage_pct'")" != "no data" ]; do
	[ "$(now_ms)" -lt "$end" ] || { echo "signal_log: the worker does not sample"; exit 1; }
	sleep 0.05
done
anchor=$(now_ms)

# The first sample that saw the change counts it once; the line comes at
# the next one, when the change has held for a full sample.
if warning=$(wait_for WARNING error_rate_pct 30); then
	held=$(($(line_ms "$warning") - $(sample_after "$t0")))
	[ "$held" -ge 9500 ] ||
		problem "error_rate_pct warned ${held} ms after the first sample that saw it, before the next"
	grep -qE "apiscale: error_rate_pct is [0-9.]+, above its threshold 1: investigate error logs immediately$" <<<"$warning" ||
		problem "unexpected WARNING line: $warning"
else
	problem "no WARNING line for error_rate_pct within 30 s"
fi
pool=$(wait_for WARNING pool_utilization_pct 15) ||
	problem "no WARNING line for pool_utilization_pct"

# And back, for the error rate: a thousand statements that succeed.
t1=$(now_ms)
for _ in $(seq 1000); do echo "SELECT 1;"; done | psql_q >/dev/null
if back=$(wait_for LOG error_rate_pct 30); then
	back_ms=$(line_ms "$back")
	held=$((back_ms - $(sample_after "$t1")))
	[ "$held" -ge 9500 ] ||
		problem "error_rate_pct came back ${held} ms after the first sample that saw it, before the next"
	grep -qE "apiscale: error_rate_pct is back to 0\.[0-9]+ \(threshold 1\)$" <<<"$back" ||
		problem "unexpected LOG line: $back"
else
	problem "no LOG line for error_rate_pct within 30 s"
fi

# One more sample (they keep a 10 s cadence): a state is announced once,
# not at every sample.
left=$((${back_ms:-0} + 10500 - $(now_ms)))
[ "$left" -gt 0 ] && sleep_ms "$left"
grep -E "apiscale: [a-z0-9_]+ is " "$LOG" >"$work/lines"
expected="WARNING error_rate_pct
WARNING pool_utilization_pct
LOG error_rate_pct"
got=$(sed -E 's/.*\] ([A-Z]+):  apiscale: ([a-z0-9_]+) is .*/\1 \2/' "$work/lines" | sort)
[ "$got" = "$(sort <<<"$expected")" ] || {
	problem "expected exactly these lines:"
	echo "$expected"
	echo "got:"
	cat "$work/lines"
}
grep -qE "apiscale: pool_utilization_pct is 100, above its threshold 80: increase pool size or add read replicas$" <<<"${pool:-}" ||
	problem "unexpected pool WARNING line: ${pool:-none}"

[ "$fail" -eq 0 ] && sed 's/^/signal_log: /' "$work/lines"
exit "$fail"
