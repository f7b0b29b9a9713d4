#!/usr/bin/env bash
# preload/run.sh: shared_preload_libraries naming apiscale by path.
#
# The signals worker is started by the postmaster from a library name: the
# file the worker loads must be the one that was preloaded (and set up the
# shared memory), or the worker runs a second copy of the code whose state
# was never initialized.  On one throwaway cluster, restarted once per way
# of naming the library:
#   1. 'apiscale', '$libdir/apiscale' and the full path of the installed
#      file: the worker runs and samples (scaling_signals has data);
#   2. a copy outside $libdir (a build directory), with another copy
#      installed in $libdir: the worker runs the preloaded copy (it maps no
#      other), stays up and samples (its WARNING for memory_usage_pct, a
#      threshold of 0, reaches the log); the SQL functions, which name
#      $libdir/apiscale, refuse with a message that says so, and crash
#      nothing;
#   3. the same with a path longer than a worker's library name can hold
#      (95 bytes): the worker still samples.
# In each case the server log must show no crash.  Expects the extension
# installed (make test installs it).  Prints what failed; exits non-zero.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

work=$(mktemp -d /tmp/apiscale-preload.XXXXXX)
chmod 755 "$work"
# A server in a crash loop does not stop fast: give it 10 s, then stop it
# at once.
stop() {
	[ -n "${PGDATA:-}" ] && [ -f "$PGDATA/postmaster.pid" ] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 10 stop >/dev/null 2>&1 ||
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
	return 0
}
trap 'stop; rm -rf "$work"' EXIT
fail=0
problem() { echo "preload: $*"; fail=1; }

pkglib=$("$PG_CONFIG" --pkglibdir)
[ -f "$pkglib/apiscale.so" ] || { echo "preload: $pkglib/apiscale.so is not installed"; exit 1; }

# Copies of the built library outside $libdir: other files (other inodes)
# than the installed one, as a build directory would be.
short=$work/lib/apiscale.so
long=$work/lib/$(printf 'd%.0s' $(seq 1 100))/apiscale.so
mkdir -p "$(dirname "$long")"
cp "$top/apiscale.so" "$short"
cp "$top/apiscale.so" "$long"
chmod -R a+rX "$work/lib"

cluster_init "$work/pg" || exit 1
cluster_conf "apiscale.warn_memory_pct = 0"
LOG=$PGHOST/server.log
psql_q() { "$PGBIN/psql" -X -q -At -d postgres "$@"; }

# worker_pid: the signals worker of the running cluster, if any.
worker_pid() {
	local pm
	pm=$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null) || return 0
	ps -o pid=,args= --ppid "$pm" | awk '/apiscale signals/ { print $1 }'
}

# crashes FROM: crash lines of the server log after line FROM.
crashes() {
	tail -n +"$1" "$LOG" | grep -E 'terminated by signal|PANIC|TRAP:|could not (access|load) file'
}

# start_with NAME: restart the cluster preloading NAME; sets from.
start_with() {
	stop
	cluster_conf "shared_preload_libraries = '$1'"
	from=1
	[ -f "$LOG" ] && from=$(($(wc -l <"$LOG") + 1))
	cluster_start || { problem "'$1': the server did not start"; return 1; }
}

# worker_stays NAME: the worker is up, and the same process 3 s later.
worker_stays() {
	local pid1 pid2
	sleep 1
	pid1=$(worker_pid)
	sleep 3
	pid2=$(worker_pid)
	if [ -z "$pid1" ] || [ "$pid1" != "$pid2" ]; then
		problem "'$1': the signals worker did not stay up (pids '$pid1', '$pid2')"
		return 1
	fi
	worker=$pid2
}

# no_crash NAME: nothing in the log since the start.
no_crash() {
	if crashes "$from" >/dev/null; then
		problem "'$1': the server log shows:"
		crashes "$from" | head -n 5
	fi
}

# 1. Names of the installed file.
for name in apiscale '$libdir/apiscale' "$pkglib/apiscale.so"; do
	start_with "$name" || continue
	worker_stays "$name"
	psql_q -c "SET client_min_messages = warning" \
		-c "CREATE EXTENSION IF NOT EXISTS apiscale" || problem "'$name': CREATE EXTENSION failed"
	status=$(psql_q -c "SELECT status FROM apiscale.scaling_signals
	                     WHERE signal = 'connection_utilization_pct'")
	[ "$status" = "warning" ] || [ "$status" = "ok" ] ||
		problem "'$name': connection_utilization_pct is '$status': the worker did not sample"
	no_crash "$name"
done

# 2, 3. Copies outside $libdir.
for lib in "$short" "$long"; do
	start_with "$lib" || continue
	worker_stays "$lib" || { no_crash "$lib"; continue; }
	# It runs the preloaded copy, whatever it loaded by name besides.
	grep -q " $lib\$" "/proc/$worker/maps" ||
		problem "'$lib': the worker does not map the preloaded file"
	# A path that fits in bgw_library_name is the worker's library: the
	# worker loads no second copy.
	if [ "$lib" = "$short" ] && grep -q " $pkglib/apiscale.so\$" "/proc/$worker/maps"; then
		problem "'$lib': the worker loaded $pkglib/apiscale.so too"
	fi
	# It samples into the preloaded copy's shared memory, with its settings.
	end=$(($(date +%s) + 25))
	until tail -n +"$from" "$LOG" | grep -q 'memory_usage_pct is [0-9.]*, above its threshold 0'; do
		if [ "$(date +%s)" -ge "$end" ]; then
			problem "'$lib': no memory_usage_pct warning from the worker in 25 s"
			break
		fi
		sleep 0.5
	done
	# The SQL functions come from $libdir: a clear refusal, no crash.
	out=$(psql_q -c "SELECT * FROM apiscale.pool_reports" 2>&1)
	echo "$out" | grep -q 'apiscale was preloaded from another file' ||
		problem "'$lib': pool_reports said: $out"
	[ "$(psql_q -c 'SELECT 1')" = 1 ] || problem "'$lib': the server does not answer"
	no_crash "$lib"
done

[ "$fail" -eq 0 ] && echo "preload: by name, \$libdir, full path, a copy outside \$libdir, a long path: no crash"
exit "$fail"
