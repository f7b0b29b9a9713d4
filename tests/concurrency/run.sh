#!/usr/bin/env bash
# concurrency/run.sh: apiscale under concurrent load, bounded in time.
#
# Expects a running cluster (PGHOST, PGPORT, PGUSER from scripts/lib.sh)
# started with apiscale preloaded and a small apiscale.max_queries (and
# max_advice_queries), so that the statement and evidence tables overflow
# all the time.  CONCURRENCY_CLIENTS (4) pgbench clients run 600 distinct
# statements with literals (min_table_rows = 0: every scan is index
# evidence) for CONCURRENCY_SECONDS (6) while another client loops reset()
# and reads of every view of the extension (and metrics(), report()),
# re-planning the advisor's candidates.  Then checks:
#   - pgbench and the reader saw no error, the server is still up and its
#     log has no crash and no ERROR from apiscale;
#   - no literal reached apiscale.queries, even for entries re-created
#     after eviction;
#   - with the table no longer churning, counts are exact under
#     concurrency in the simple, extended and prepared protocols: each
#     client runs CONCURRENCY_TRANSACTIONS (500) statements, and the
#     statement's calls, the signals' window statements and the latency
#     histogram's count all equal what pgbench sent.
# make test runs it briefly; make soak with 200 clients for minutes
# (tests/soak/run.sh).  Prints what failed and exits non-zero on any
# failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
SECS=${CONCURRENCY_SECONDS:-6}
CLIENTS=${CONCURRENCY_CLIENTS:-4}
TRANSACTIONS=${CONCURRENCY_TRANSACTIONS:-500}
THREADS=$((CLIENTS < 4 ? 2 : 4))
DB=apiscale_concurrency
LOG=${SERVER_LOG:?SERVER_LOG must name the server log}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

psql_q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
problem() { echo "concurrency: $*"; fail=1; }

log_start=$(wc -l <"$LOG")

"$PGBIN/createdb" "$DB" || exit 1
psql_q -c "CREATE EXTENSION apiscale" -c "SET client_min_messages = warning" -c "
DO \$\$ BEGIN FOR i IN 1..200 LOOP
  EXECUTE format('CREATE TABLE t%s (x int, y text)', i);
  EXECUTE format('INSERT INTO t%s SELECT g, g::text FROM generate_series(1, 20) g', i);
END LOOP; END \$\$" || exit 1

# Every view of the extension, read whole (views added later too).
read_views=$(psql_q -c "SELECT string_agg(format('SELECT count(*) FROM (SELECT * FROM %s) v;', c.oid::regclass), ' ')
                          FROM pg_class c
                         WHERE c.relnamespace = 'apiscale'::regnamespace AND c.relkind = 'v'")

# The reader: reset and read every view while the table churns.
reader() {
	local end=$(($(date +%s) + SECS)) n=0 errs=0
	while [ "$(date +%s)" -lt "$end" ]; do
		PGOPTIONS="-c apiscale.min_table_rows=0" psql_q -c "SELECT apiscale.reset()" \
			-c "$read_views" \
			-c "SELECT count(*), count(verdict) FROM apiscale.index_candidates" \
			-c "SELECT count(*), count(last_slow_plan) FROM apiscale.slow_queries" \
			-c "SELECT entries <= max_queries FROM apiscale.info()" \
			-c "SELECT length(apiscale.metrics()) > 0" \
			-c "SELECT count(*) FROM apiscale.report()" \
			>/dev/null 2>"$tmp/reader.err" || errs=$((errs + 1))
		n=$((n + 1))
	done
	echo "$n $errs"
}

reader >"$tmp/reader.out" &
reader_pid=$!
PGOPTIONS="-c apiscale.slow_query_ms=0 -c apiscale.min_table_rows=0" \
	"$PGBIN/pgbench" -n -c "$CLIENTS" -j "$THREADS" -T "$SECS" \
	-f "$here/distinct.sql" -d "$DB" >"$tmp/pgbench.out" 2>&1 ||
	problem "pgbench failed: $(tail -n 3 "$tmp/pgbench.out")"
wait "$reader_pid"
read -r iterations reader_errors <"$tmp/reader.out"
[ "${reader_errors:-1}" -eq 0 ] ||
	problem "reader failed $reader_errors of $iterations times: $(cat "$tmp/reader.err")"
grep -q "number of transactions actually processed" "$tmp/pgbench.out" ||
	problem "pgbench did not run: $(cat "$tmp/pgbench.out")"

psql_q -c "SELECT 1" >/dev/null || problem "the server is gone"

leaked=$(psql_q -c "SELECT count(*) FROM apiscale.queries WHERE query LIKE '%4242%'")
[ "$leaked" = 0 ] || {
	problem "$leaked statements show a literal:"
	psql_q -c "SELECT query FROM apiscale.queries WHERE query LIKE '%4242%' LIMIT 5"
}

# Exact counts, once the table holds few statements: the statement's calls,
# and the statements of the signals' window and of its latency histogram
# (those count the reset() too, which ends after it cleared them).
sent=$((CLIENTS * TRANSACTIONS))
for mode in simple extended prepared; do
	psql_q -c "SELECT apiscale.reset()" >/dev/null
	"$PGBIN/pgbench" -n -c "$CLIENTS" -j "$THREADS" -t "$TRANSACTIONS" -M "$mode" \
		-f "$here/exact.sql" -d "$DB" >"$tmp/pgbench.out" 2>&1 ||
		problem "pgbench -M $mode failed: $(tail -n 3 "$tmp/pgbench.out")"
	counts=$(psql_q -c "
	SELECT (SELECT sum(calls) FROM apiscale.queries
	         WHERE query = 'SELECT y FROM t1 WHERE x = \$1'),
	       substring(m FROM '\napiscale_window_statements ([0-9]+)'),
	       substring(m FROM '\napiscale_window_failed_statements ([0-9]+)'),
	       substring(m FROM '\napiscale_statement_duration_seconds_count ([0-9]+)')
	  FROM apiscale.metrics() m")
	[ "$counts" = "$sent|$((sent + 1))|0|$((sent + 1))" ] ||
		problem "-M $mode: calls|window statements|failed|histogram = '$counts', expected $sent|$((sent + 1))|0|$((sent + 1))"
done

crashes=$(tail -n +"$log_start" "$LOG" | grep -cE "terminated by signal|PANIC")
[ "$crashes" -eq 0 ] || problem "server log shows a crash"
# The signals worker warns of a busy machine on purpose: not an error.
signal_line="WARNING:  apiscale: [a-z0-9_]+ is [0-9.]+, (above|below) its threshold"
ext_errors=$(tail -n +"$log_start" "$LOG" | grep -E "ERROR|WARNING" |
	grep -vE "$signal_line" | grep -ci "apiscale")
[ "$ext_errors" -eq 0 ] || {
	problem "server log has apiscale errors:"
	tail -n +"$log_start" "$LOG" | grep -E "ERROR|WARNING" | grep -vE "$signal_line" |
		grep -i apiscale | head -5
}

"$PGBIN/dropdb" "$DB"
[ "$fail" -eq 0 ] && echo "concurrency: $CLIENTS clients for $SECS s, $iterations reader loops, no error, no literal, exact counts ($sent statements per protocol)"
exit "$fail"
