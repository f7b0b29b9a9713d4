#!/usr/bin/env bash
# valgrind/run.sh: the pg_regress suites with every server process under
# valgrind memcheck (make valgrind-check).
#
# A private copy of PostgreSQL 15 (scripts/lib.sh private_pg) gets the
# extension built in this checkout; its postmaster runs under valgrind
# with --trace-children=yes, so every backend, the signals worker and the
# other children it forks are checked too, each writing its own log.  The
# suites run as make test runs them: main (apiscale preloaded), eviction
# (restarted with small tables), no_preload (restarted without it).
#
# PostgreSQL writes structs with padding bytes to files (the relation
# cache's init file, WAL records): memcheck reports the uninitialised
# padding where it reaches write(2).  tests/valgrind/postgres.supp
# suppresses those reports of PostgreSQL's own code and nothing that can
# come from apiscale (which writes no file); each entry says why.  Debian
# builds PostgreSQL without USE_VALGRIND, so memcheck does not know
# palloc's chunks: it finds uninitialised reads and bad frees, not a
# read past the end of a palloc'd chunk inside its block, nor leaks.
#
# Fails on any memcheck error left after the suppressions, and on any
# failed test but those that measure time (VALGRIND_TIMED_TESTS: metrics
# expects a statement to finish within 0.5 ms), whose differences are
# shown; keeps the logs in valgrind-out/.  Slow: about 15 minutes on two
# cores.  VALGRIND_SUPP=none runs without the suppressions;
# VALGRIND_TESTS="a b" runs only those tests of the main suite.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/scripts/lib.sh"

command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ -f "$top/apiscale.so" ] || { echo "build the extension first (make)" >&2; exit 1; }

work=$(mktemp -d /tmp/apiscale-valgrind.XXXXXX)
chmod 755 "$work"
cleanup() {
	cluster_stop
	rm -rf "$work"
}
trap cleanup EXIT
started=$(date +%s)

private_pg "$work/root" || exit 1
private_install "$top" || exit 1
cluster_init "$work/pg" || exit 1
# Under valgrind everything is 20 to 50 times slower: fewer processes, and
# no autovacuum, which would now reach the tests' tables while they run
# and change their plans (the visibility map decides index-only scans).
cluster_conf "max_connections = 20" "max_worker_processes = 8" \
	"autovacuum = off" "log_min_messages = warning" "log_line_prefix = '%m [%p] '"
timed_tests=${VALGRIND_TIMED_TESTS:-metrics}

mkdir -p "$work/vg" "$work/regress"
cp -r "$top/sql" "$top/expected" "$work/regress/"
[ "$PGUSER_OS" = postgres ] && chown -R postgres: "$work/vg" "$work/regress"

supp=()
[ "${VALGRIND_SUPP:-}" = none ] || supp=(--suppressions="$here/postgres.supp")
VALGRIND=(valgrind --tool=memcheck --trace-children=yes --track-origins=yes
	--num-callers=40 --leak-check=no --gen-suppressions=all
	--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
	"${supp[@]}" --log-file="$work/vg/%p.log")

# vg_start [postgres options...]: the postmaster under valgrind.
vg_start() {
	as_pg sh -c 'exec "$@" >>"$0" 2>&1 &' "$PGHOST/server.log" \
		"${VALGRIND[@]}" "$PGBIN/postgres" -D "$PGDATA" "$@"
	for _ in $(seq 1 300); do
		"$PGBIN/pg_isready" -q -h "$PGHOST" -p "$PGPORT" && return 0
		sleep 1
	done
	echo "the server did not start under valgrind" >&2
	tail -n 20 "$PGHOST/server.log" >&2
	return 1
}

# vg_stop: stop the server, and wait for valgrind to write the
# postmaster's summary (after the server removed its pid file).
vg_stop() {
	local pid
	pid=$(head -n 1 "$PGDATA/postmaster.pid")
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 600 stop >/dev/null
	while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
}

PG_REGRESS=$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress
tests_failed=0
# suite NAME TEST...: one pg_regress run against the server; counts the
# failed tests, but for those in timed_tests.
suite() {
	local name=$1 out=$work/regress/out-$1 t0=$SECONDS bad t
	shift
	mkdir -p "$out"
	[ "$PGUSER_OS" = postgres ] && chown postgres: "$out"
	echo "== pg_regress suite '$name' under valgrind: $*"
	as_pg "$PG_REGRESS" --inputdir="$work/regress" --outputdir="$out" \
		--bindir="$PGBIN" --host="$PGHOST" --port="$PGPORT" \
		--dbname=apiscale_regress "$@" >"$out/log" 2>&1
	grep -E '\.\.\. ' "$out/log" || { cat "$out/log"; tests_failed=$((tests_failed + 1)); }
	[ -s "$out/regression.diffs" ] && head -n 100 "$out/regression.diffs"
	for t in $(sed -n 's/^\(test \)\{0,1\} *\([a-z_]*\) *\.\.\. FAILED.*/\2/p' "$out/log"); do
		if [[ " $timed_tests " == *" $t "* ]]; then
			echo "   ($t measures time: its difference under valgrind is not counted)"
		else
			tests_failed=$((tests_failed + 1))
		fi
	done
	echo "   ($((SECONDS - t0)) s)"
}

vg_start -c shared_preload_libraries=apiscale || exit 1
suite main ${VALGRIND_TESTS:-$(make -s --no-print-directory -C "$top" print-REGRESS)}
vg_stop
vg_start -c shared_preload_libraries=apiscale -c apiscale.max_queries=100 \
	-c apiscale.max_advice_queries=10 || exit 1
suite eviction eviction advice_eviction
vg_stop
vg_start -c shared_preload_libraries= || exit 1
suite no_preload no_preload
vg_stop

# What memcheck found, process by process.
logs=$(ls "$work"/vg/*.log | wc -l)
errors=$(cat "$work"/vg/*.log | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
suppressed=$(cat "$work"/vg/*.log | sed -n 's/.*(suppressed: \([0-9]*\) from.*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
summaries=$(cat "$work"/vg/*.log | grep -c 'ERROR SUMMARY')
echo "valgrind: $logs processes, $errors errors, $suppressed suppressed (postgres.supp), $((($(date +%s) - started) / 60)) min"
fail=0
if [ "$summaries" -lt "$logs" ]; then
	echo "valgrind: $((logs - summaries)) processes did not finish their log (crashed under valgrind?)"
	fail=1
fi
if [ "$errors" -gt 0 ]; then
	fail=1
	# A frame of apiscale: in apiscale.so, or one of its functions (with
	# their source line, as the library has its debugging information).
	in_apiscale=$(cat "$work"/vg/*.log | sed -n '/VALGRINDERROR-BEGIN/,/VALGRINDERROR-END/p' |
		awk '/VALGRINDERROR-BEGIN/ { e = 0 }
		     /(at|by) 0x[0-9A-F]+: (aps_|apiscale_|_PG_init)|apiscale\.so/ { e = 1 }
		     /VALGRINDERROR-END/ { n += e } END { print n + 0 }')
	echo "valgrind: $in_apiscale error reports have apiscale in their stack; the first ones:"
	cat "$work"/vg/*.log | sed -n '/VALGRINDERROR-BEGIN/,/VALGRINDERROR-END/p' | head -n 150
fi
[ "$tests_failed" -eq 0 ] || { echo "valgrind: $tests_failed tests failed"; fail=1; }

rm -rf "$top/valgrind-out"
mkdir -p "$top/valgrind-out"
cp -r "$work/vg" "$work/regress" "$PGHOST/server.log" "$top/valgrind-out/" 2>/dev/null
[ "$fail" -eq 0 ] && echo "valgrind: clean"
exit "$fail"
