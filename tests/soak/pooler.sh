#!/usr/bin/env bash
# tests/soak/pooler.sh: the pooler's long runs (make soak, make soak-pooler).
#
# The fault and abuse tests of tests/pooler at a larger scale, against the
# normal build and then the ASan/UBSan one, with the figures they print
# (clients held, memory per client, recovery times) collected at the end:
#
#   SOAK_CLIENTS        concurrent idle clients (18000; the open-files hard
#                       limit must be above it by 500)
#   SOAK_STALLERS       slowloris sockets, start-up packet and HTTP (6000)
#   SOAK_CRASH_ROUNDS   postmaster kill -9 and restart under load (10)
#   SOAK_RELOAD_ROUNDS  rounds of six pool_size reloads under load (10)
#
# Exit status 0 only if every run passed.  Logs: $SOAK_OUT (a temporary
# directory by default), one per run.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=${SOAK_OUT:-$(mktemp -d /tmp/apiscale-soak-pooler.XXXXXX)}
clients=${SOAK_CLIENTS:-18000}
stallers=${SOAK_STALLERS:-6000}
crash_rounds=${SOAK_CRASH_ROUNDS:-10}
reload_rounds=${SOAK_RELOAD_ROUNDS:-10}
mkdir -p "$out"

make -s --no-print-directory -C "$top/pooler" all asan || exit 1

rc=0
run() { # run NAME BINARY TEST...
	local name=$1 binary=$2 log=$out/$1.log
	shift 2
	echo "== soak: $name"
	if env APISCALE_POOLER="$binary" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		APISCALE_SCALE_CLIENTS="$clients" APISCALE_STALLERS="$stallers" \
		APISCALE_CRASH_ROUNDS="$crash_rounds" APISCALE_RELOAD_ROUNDS="$reload_rounds" \
		/usr/bin/python3 -m pytest -q -s -p no:cacheprovider "$@" >"$log" 2>&1; then
		echo "soak $name ... ok"
	else
		echo "soak $name ... FAILED (see $log)"
		tail -n 30 "$log"
		rc=1
	fi
}

for build in normal asan; do
	binary=$top/pooler/apiscale-pooler
	[ $build = asan ] && binary=$top/pooler/apiscale-pooler-asan
	run "scale-$build" "$binary" "$top/tests/pooler/test_scale.py"
	run "abuse-$build" "$binary" "$top/tests/pooler/test_abuse.py"
	run "crash-$build" "$binary" "$top/tests/pooler/test_crash.py"
	run "faults-$build" "$binary" "$top/tests/pooler/test_timeouts.py" \
		"$top/tests/pooler/test_partition.py" "$top/tests/pooler/test_logfile.py"
done

echo "== soak: figures"
grep -h -E "clients logged in|postmaster killed|transactions over|stalled|unfinished HTTP" "$out"/*.log |
	sed 's/^\.*//' | sort | uniq -c | sort -rn
echo "logs in $out"
exit $rc
