#!/usr/bin/env bash
# run.sh QUERIES: SQLsmith against a throwaway cluster with apiscale
# preloaded at its most aggressive settings (every run sampled and slow,
# its plan kept with per-node timing, every statement tracked, every
# advisor and detector on), while another session reads the advice
# (re-planning what SQLsmith made) and every view every couple of
# seconds.  Fails if the server or a backend crashed, or if apiscale
# stopped answering.  Prints what SQLsmith ran and how it ended.  Uses
# the PostgreSQL of PGBIN (scripts/lib.sh), as make soak sets it.
#
#   make test    runs a few thousand queries (SQLSMITH_QUERIES)
#   make soak    runs more (SOAK_QUERIES, default 100,000)
#
# Needs the Debian package sqlsmith (scripts/deps.sh installs it).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/scripts/lib.sh"

queries=${1:-3000}
seed=${SQLSMITH_SEED:-$RANDOM}
command -v sqlsmith >/dev/null || { echo "sqlsmith not installed" >&2; exit 1; }

work=$(mktemp -d /tmp/apiscale-sqlsmith.XXXXXX)
chmod 755 "$work"
reader_pid=
fail=1
cleanup() {
	[ -n "$reader_pid" ] && kill "$reader_pid" 2>/dev/null
	cluster_stop
	# A failed run keeps its server log and SQLsmith's.
	if [ "$fail" -eq 0 ]; then
		rm -rf "$work"
	else
		echo "kept: $work (server log: $work/pg/server.log)"
	fi
}
trap cleanup EXIT

cluster_init "$work/pg" || exit 1
# Everything sampled and tracked, small tables included, every plan kept
# with per-node timing, every result hashed: every walker runs on every
# statement, and every detector looks at it.
cluster_conf "shared_preload_libraries = 'apiscale'" \
	"apiscale.sample_rate = 1.0" "apiscale.track = all" \
	"apiscale.cache_sample_rate = 1.0" \
	"apiscale.min_table_rows = 10" "apiscale.slow_query_ms = 0" \
	"apiscale.plan_timing = on" "apiscale.capture_plans = on" \
	"apiscale.capture_parameters = on" "apiscale.index_advisor = on" \
	"apiscale.unbounded_rows = 1" "apiscale.n_plus_one_calls = 2" \
	"apiscale.max_advice_queries = 200" "apiscale.max_queries = 2000"
cluster_start || exit 1
postmaster=$(head -n 1 "$PGDATA/postmaster.pid")
pg_psql -d postgres -c "CREATE DATABASE fuzz" >/dev/null || exit 1
pg_psql -d fuzz -f "$here/schema.sql" >"$work/schema.log" 2>&1 ||
	{ cat "$work/schema.log"; exit 1; }

read_views=$(pg_psql -d fuzz -At -c "
	SELECT string_agg(format('SELECT count(*) FROM (SELECT * FROM %s) v;', c.oid::regclass), ' ')
	  FROM pg_class c
	 WHERE c.relnamespace = 'apiscale'::regnamespace AND c.relkind = 'v'")

# The reader: the advice, the report and the counters, as a superuser
# (who re-plans every user's statements), now and then a reset.
(
	i=0
	while :; do
		i=$((i + 1))
		PGOPTIONS="-c statement_timeout=20s" "$PGBIN/psql" -X -q -d fuzz \
			-c "SELECT count(*) FROM apiscale.index_candidates" \
			-c "SELECT count(*) FROM apiscale.index_advice" \
			-c "SELECT count(*) FROM apiscale.table_writes" \
			-c "SELECT count(*) FROM apiscale.cache_advice" \
			-c "SELECT count(*) FROM apiscale.capacity" \
			>>"$work/reader.log" 2>&1
		# Every view, now and then (views added later too).
		[ $((i % 3)) -eq 0 ] && PGOPTIONS="-c statement_timeout=20s" "$PGBIN/psql" -X -q -d fuzz \
			-c "$read_views" >>"$work/reader.log" 2>&1
		[ $((i % 5)) -eq 0 ] && "$PGBIN/psql" -X -q -d fuzz \
			-c "SELECT count(*) FROM apiscale.report()" >>"$work/reader.log" 2>&1
		[ $((i % 20)) -eq 0 ] && "$PGBIN/psql" -X -q -d fuzz \
			-c "SELECT apiscale.reset()" >>"$work/reader.log" 2>&1
		sleep 2
	done
) &
reader_pid=$!

fail=0
start=$(date +%s)
# Our tables only (--exclude-catalog): the catalogs are the core's.
sqlsmith --target="host=$PGHOST port=$PGPORT dbname=fuzz user=smith" \
	--seed="$seed" --max-queries="$queries" --exclude-catalog --verbose \
	>"$work/sqlsmith.log" 2>&1
smith_rc=$?
secs=$(($(date +%s) - start))
kill "$reader_pid" 2>/dev/null
wait "$reader_pid" 2>/dev/null
reader_pid=

echo "sqlsmith: $queries queries (seed $seed) in ${secs}s, exit $smith_rc"
# Its last report: error rate and the most common errors (the statement
# timeout among them).
grep -E '^error rate' "$work/sqlsmith.log" | tail -n 1
# (SQLsmith reports its counts again and again: the last, largest, stands.)
tr '\r' '\n' <"$work/sqlsmith.log" | grep -aE '^[0-9]+'$'\t' |
	awk -F'\t' '$1 > n[$2] { n[$2] = $1 } END { for (m in n) print n[m] "\t" m }' |
	sort -rn | head -n 5 | cut -c 1-100 | sed 's/^/  /'

if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 ||
	[ "$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null)" != "$postmaster" ]; then
	echo "the server is gone"
	fail=1
fi
crashes=$(grep -cE 'terminated by signal|was terminated by exception|PANIC|TRAP:|server process .* exited with exit code [^0]' \
	"$PGHOST/server.log")
if [ "$crashes" -gt 0 ]; then
	echo "server log: $crashes crash line(s):"
	grep -E 'terminated by signal|was terminated by exception|PANIC|TRAP:|exited with exit code [^0]' \
		"$PGHOST/server.log" | head -n 20
	grep -B2 -E 'terminated by signal' "$PGHOST/server.log" | grep -E 'DETAIL|STATEMENT' | head -n 5
	fail=1
fi
# apiscale still answers, and saw the run.
if ! pg_psql -d fuzz -At -c "SELECT count(*) > 0 FROM apiscale.queries" | grep -q t; then
	echo "apiscale.queries is empty or does not answer"
	fail=1
fi
pg_psql -d fuzz -At -c "SELECT 'advice read back: ' || count(*) || ' candidates' FROM apiscale.index_candidates" ||
	fail=1
echo "reader: $(grep -cE '^ *[0-9]+$' "$work/reader.log" 2>/dev/null) answers, $(grep -c ERROR "$work/reader.log" 2>/dev/null) errors"
grep ERROR "$work/reader.log" | grep -v 'statement timeout' | sort | uniq -c | head -n 5
[ "$fail" -eq 0 ] && echo "no crash"
exit $fail
