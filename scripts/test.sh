#!/usr/bin/env bash
# test.sh: run every test suite apiscale has, on a throwaway PostgreSQL.
#
# Installs missing Debian packages, builds with -Werror, installs the
# extension, then runs the pg_regress suites:
#   main        with shared_preload_libraries = 'apiscale'
#   eviction    the same, restarted with apiscale.max_queries = 100
#               (and max_advice_queries, max_cache_queries = 10)
#   no_preload  restarted without shared_preload_libraries
# with apiscale.metrics() checked by promtool and a parser after the main
# suite, then SQLsmith (tests/sqlsmith), the signals worker's log lines and
# apiscale.capacity against /proc on clusters of their own;
# and ends with one line "N passed, M failed".  Exits non-zero on any
# failure; regression.diffs of a failed suite are printed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

"$top/scripts/deps.sh" || exit 1
build_and_install "$top" || { echo "build failed" >&2; exit 1; }

work=$(mktemp -d /tmp/apiscale-test.XXXXXX)
chmod 755 "$work"
cleanup() {
	cluster_stop
	rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0

# Copy the test files where the cluster's OS user can read and write.
mkdir -p "$work/regress"
cp -r "$top/sql" "$top/expected" "$work/regress/"
[ "$PGUSER_OS" = postgres ] && chown -R postgres: "$work/regress"

PG_REGRESS=$(dirname "$($PG_CONFIG --pgxs)")/../test/regress/pg_regress

# run_suite NAME TEST...: one pg_regress run; counts its tests.
run_suite() {
	local name=$1
	shift
	local out=$work/regress/out-$name
	mkdir -p "$out"
	[ "$PGUSER_OS" = postgres ] && chown postgres: "$out"
	echo "== pg_regress suite '$name': $*"
	as_pg "$PG_REGRESS" --inputdir="$work/regress" --outputdir="$out" \
		--bindir="$PGBIN" --host="$PGHOST" --port="$PGPORT" \
		--dbname=apiscale_regress "$@" >"$out/log" 2>&1
	local rc=$?
	grep -E '^(test |     )?[a-z_]+ +\.\.\. ' "$out/log" || cat "$out/log"
	local ok bad
	ok=$(grep -cE '\.\.\. ok' "$out/log")
	bad=$(grep -cE '\.\.\. FAILED' "$out/log")
	if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1 # pg_regress itself failed
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	if [ -s "$out/regression.diffs" ]; then
		cat "$out/regression.diffs"
	fi
	# Keep the results next to the sources for a look after a failure.
	rm -rf "$top/regress-out/$name"
	mkdir -p "$top/regress-out"
	cp -r "$out" "$top/regress-out/$name"
}

# The C sources must be in the house format (make format fixes them).
echo "== format-check"
if make -s --no-print-directory -C "$top" format-check >/dev/null 2>"$work/format.log"; then
	echo "test format-check               ... ok"
	passed=$((passed + 1))
else
	echo "test format-check               ... FAILED (run 'make format')"
	head -n 20 "$work/format.log"
	failed=$((failed + 1))
fi

# The documents: links resolve, nothing points outside the repository, and
# every config key, admin command and option is documented.
echo "== documents"
if /usr/bin/python3 "$top/tests/docs/check_docs.py" >"$work/docs.log" 2>&1; then
	echo "test docs                       ... ok"
	passed=$((passed + 1))
else
	echo "test docs                       ... FAILED"
	cat "$work/docs.log"
	failed=$((failed + 1))
fi

# The Prometheus alerting rules: valid, and their unit tests pass.
echo "== prometheus alerting rules"
promtool_step() {
	local name=$1
	shift
	if promtool "$@" >"$work/$name.log" 2>&1; then
		printf 'test %-27s ... ok\n' "$name"
		passed=$((passed + 1))
	else
		printf 'test %-27s ... FAILED\n' "$name"
		cat "$work/$name.log"
		failed=$((failed + 1))
	fi
}
promtool_step promtool-check-rules check rules \
	"$top/contrib/prometheus/apiscale-alerts.yml"
promtool_step promtool-test-rules test rules \
	"$top/contrib/prometheus/apiscale-alerts.test.yml"

cluster_init "$work/pg" || exit 1
cluster_conf "shared_preload_libraries = 'apiscale'"
cluster_start || exit 1

run_suite main $(make -s --no-print-directory -C "$top" print-REGRESS)

# run_check NAME COMMAND...: one test of its own, counted as one.
run_check() {
	local name=$1
	shift
	if "$@"; then
		printf 'test %-27s ... ok\n' "$name"
		passed=$((passed + 1))
	else
		printf 'test %-27s ... FAILED\n' "$name"
		failed=$((failed + 1))
	fi
}

echo "== apiscale.metrics() through promtool and a format parser"
run_check metrics-format /usr/bin/python3 "$top/tests/monitoring/metrics.py"

cluster_restart "-c apiscale.max_queries=100 -c apiscale.max_advice_queries=10 -c apiscale.max_cache_queries=10" || exit 1
run_suite eviction eviction advice_eviction cache_eviction

echo "== concurrency (bounded load on a table of 100 entries)"
if SERVER_LOG="$PGHOST/server.log" "$top/tests/concurrency/run.sh"; then
	echo "test concurrency                ... ok"
	passed=$((passed + 1))
else
	echo "test concurrency                ... FAILED"
	failed=$((failed + 1))
fi

cluster_restart "-c shared_preload_libraries=" || exit 1
run_suite no_preload no_preload

cluster_stop

# The library preloaded by path, on a cluster of its own (about 40 s).
echo "== shared_preload_libraries by path"
run_check preload-by-path "$top/tests/preload/run.sh"

# The 1.0-era library, replaced by this one and restarted, in a private
# copy of PostgreSQL (about 15 s).
echo "== restart from the 1.0-era library"
run_check restart-upgrade "$top/tests/upgrade/restart.sh"

# Random SQL (SQLsmith) with every walker of the index advisor on and the
# advice read meanwhile, on a cluster of its own; make soak runs more.
sqlsmith_queries=${SQLSMITH_QUERIES:-3000}
echo "== sqlsmith ($sqlsmith_queries queries)"
run_check sqlsmith "$top/tests/sqlsmith/run.sh" "$sqlsmith_queries"

# The signals worker's log lines, on a cluster of its own (about 50 s).
echo "== signals in the server log (about 50 s)"
run_check signal-log "$top/tests/monitoring/signal_log.sh"

# apiscale.capacity against /proc and pgbench's log under a synthetic
# load, on a cluster of its own (about 45 s).
echo "== capacity against /proc (about 45 s)"
run_check capacity "$top/tests/monitoring/capacity.sh"

# The pooler: C unit tests of its parsers, then pytest against a real
# PostgreSQL and a real pooler per test.
echo "== pooler unit tests"
if make -s --no-print-directory -C "$top/pooler" check; then
	echo "test pooler-unit                ... ok"
	passed=$((passed + 1))
else
	echo "test pooler-unit                ... FAILED"
	failed=$((failed + 1))
fi

# libFuzzer targets of the same parsers, briefly (make fuzz runs them for
# longer).  A crash fails the target; run.sh names the saved input.
fuzz_make() {
	make -s --no-print-directory -C "$top/tests/fuzz" "$@"
}
fuzz_seconds=$(fuzz_make print-FUZZ_CHECK_SECONDS)
echo "== pooler fuzzers ($fuzz_seconds s each)"
if fuzz_make all >"$work/fuzz-build.log" 2>&1; then
	for t in $(fuzz_make print-TARGETS); do
		if "$top/tests/fuzz/run.sh" "$t" "$fuzz_seconds"; then
			printf 'test %-27s ... ok\n' "$t"
			passed=$((passed + 1))
		else
			printf 'test %-27s ... FAILED\n' "$t"
			failed=$((failed + 1))
		fi
	done
else
	cat "$work/fuzz-build.log"
	echo "test fuzz build                 ... FAILED"
	failed=$((failed + 1))
fi

# run_pytest NAME [ENV=VALUE...]: the pooler suite once; counts its tests.
run_pytest() {
	local name=$1 log=$work/pytest-$1.log summary py_passed py_failed
	shift
	echo "== pooler integration tests ($name)"
	env "$@" /usr/bin/python3 -m pytest -q -p no:cacheprovider "$top/tests/pooler" \
		2>&1 | tee "$log"
	summary=$(grep -E '^=* ?[0-9]+ (passed|failed|error|skipped)|no tests ran' "$log" | tail -n 1)
	py_passed=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
	py_failed=$(echo "$summary" | grep -oE '[0-9]+ (failed|errors?)' | awk '{ s += $1 } END { print s + 0 }')
	passed=$((passed + ${py_passed:-0}))
	failed=$((failed + ${py_failed:-0}))
	if [ -z "$summary" ]; then
		echo "pytest printed no summary"
		failed=$((failed + 1))
	fi
}

# The README's first command, briefly: the demo must run and show both
# halves (an index proven by the re-plan, the pooler's reports reaching the
# extension).
echo "== make demo (DEMO_SECONDS=5)"
if DEMO_SECONDS=5 "$top/scripts/demo.sh" >"$work/demo.log" 2>&1 &&
	grep -q "CREATE INDEX" "$work/demo.log" &&
	grep -q "pool_utilization_pct" "$work/demo.log"; then
	echo "test demo                       ... ok"
	passed=$((passed + 1))
else
	tail -n 40 "$work/demo.log"
	echo "test demo                       ... FAILED"
	failed=$((failed + 1))
fi

run_pytest pooler
# The same suite against the ASan/UBSan build: any report aborts the pooler.
if make -s --no-print-directory -C "$top/pooler" asan >/dev/null; then
	run_pytest pooler-asan APISCALE_POOLER="$top/pooler/apiscale-pooler-asan" \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
else
	echo "test pooler-asan build          ... FAILED"
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
