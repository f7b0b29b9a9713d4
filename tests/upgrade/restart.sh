#!/usr/bin/env bash
# upgrade/restart.sh: a server running the 1.0-era library, given the
# current one as a package upgrade would, then restarted.
#
# The 1.0-era library is built from git (the parent of the commit that
# made 1.1 the default version) and installed, with its SQL files, into a
# private copy of PostgreSQL (scripts/lib.sh private_pg), where a cluster
# preloads it and a database creates the extension at 1.0 and records
# statements.  Then, as a package upgrade does, the current files replace
# it while the server runs:
#   - the running server keeps the old library: its views answer, and
#     ALTER EXTENSION apiscale UPDATE fails (the old library lacks the new
#     functions) and leaves the database at 1.0;
# then the server restarts with the new library, whose shared memory
# differs in layout:
#   - no crash, the signals worker samples, apiscale left no file in the
#     data directory (nothing of it survives a restart, so nothing needs a
#     version: the statistics start empty);
#   - the database still at 1.0 reads every view and function;
#   - ALTER EXTENSION apiscale UPDATE reaches 1.1, and its views answer.
# About 30 s, most of it building the old library.  Prints what failed;
# exits non-zero on any failure.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

git -C "$top" rev-parse --git-dir >/dev/null 2>&1 || {
	echo "restart: not a git checkout: no 1.0-era library to build; skipped"
	exit 0
}

work=$(mktemp -d /tmp/apiscale-restart.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop; rm -rf "$work"' EXIT
fail=0
problem() { echo "restart: $*"; fail=1; }

# The 1.0-era sources: the parent of the commit that made 1.1 the default.
made_11=$(git -C "$top" log -1 --format=%H -S"default_version = '1.1'" -- apiscale.control)
if [ -z "$made_11" ] && [ "$(git -C "$top" rev-parse --is-shallow-repository)" = true ]; then
	echo "restart: a shallow clone has no 1.0-era history; skipped"
	exit 0
fi
[ -n "$made_11" ] || { echo "restart: no commit made 1.1 the default"; exit 1; }
mkdir -p "$work/old"
git -C "$top" archive "$made_11^" | tar -x -C "$work/old" || exit 1
grep -q "default_version = '1.0'" "$work/old/apiscale.control" || exit 1
make -C "$work/old" -s apiscale.so >"$work/old-build.log" 2>&1 ||
	{ cat "$work/old-build.log"; exit 1; }
[ -f "$top/apiscale.so" ] || { echo "restart: build the extension first"; exit 1; }

private_pg "$work/root" || exit 1
private_install "$work/old" || exit 1

cluster_init "$work/pg" || exit 1
cluster_conf "shared_preload_libraries = 'apiscale'"
cluster_start || exit 1
LOG=$PGHOST/server.log
psql_q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
# Output is captured before it is searched: with pipefail, "producer | grep
# -q" fails when grep exits at its match before the producer has written
# everything (the producer dies of SIGPIPE), which made the metrics() check
# below fail about one run in eight, and could hide a crash in the log.
worker_up() {
	local procs
	procs=$(ps -o args= --ppid "$(head -n 1 "$PGDATA/postmaster.pid")")
	grep -q 'apiscale signals' <<<"$procs"
}
shmem() {
	psql_q -c "SELECT string_agg(name || ' ' || size, ', ' ORDER BY name)
	             FROM pg_shmem_allocations WHERE name LIKE 'apiscale%'"
}
# read_all: every view and argument-less function of the extension, read;
# prints the ones that failed, with their error.
read_all() {
	psql_q -c "
	DO \$\$
	DECLARE r record;
	BEGIN
	  FOR r IN SELECT 'SELECT count(*) FROM ' || c.oid::regclass AS q
	             FROM pg_class c
	            WHERE c.relnamespace = 'apiscale'::regnamespace AND c.relkind = 'v'
	           UNION ALL
	           SELECT 'SELECT count(*) FROM ' || p.oid::regproc || '()'
	             FROM pg_proc p
	            WHERE p.pronamespace = 'apiscale'::regnamespace AND p.pronargs = 0
	              AND p.proname <> 'reset' LOOP
	    BEGIN
	      EXECUTE r.q;
	    EXCEPTION WHEN OTHERS THEN
	      RAISE WARNING '%: %', r.q, SQLERRM;
	    END;
	  END LOOP;
	END \$\$" 2>&1 | grep WARNING
}
version() { psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'apiscale'"; }

# The 1.0-era server, with statements recorded.
psql_q -c "CREATE EXTENSION apiscale" \
	-c "CREATE TABLE restart_marker AS SELECT g AS x FROM generate_series(1, 100) g" ||
	exit 1
for _ in 1 2 3; do psql_q -c "SELECT count(*) FROM restart_marker WHERE x < 7" >/dev/null; done
psql_q -c "SELECT apiscale.report_pool('shop', 8, 2, 3, 0, 0)" >/dev/null
[ "$(version)" = 1.0 ] || problem "the old library's extension is at '$(version)', not 1.0"
[ "$(psql_q -c "SELECT calls FROM apiscale.queries WHERE query LIKE '%restart_marker WHERE x <%'")" = 3 ] ||
	problem "the old library did not count the statements"
old_shmem=$(shmem)

# The upgrade installs the new files under the running server.
private_install "$top" || exit 1
failed=$(read_all)
[ -z "$failed" ] || problem "with the old library still running, reads failed: $failed"
if out=$(psql_q -c "ALTER EXTENSION apiscale UPDATE" 2>&1); then
	problem "ALTER EXTENSION UPDATE succeeded against the old library"
else
	echo "$out" | grep -q 'could not find function' ||
		problem "ALTER EXTENSION UPDATE before the restart said: $out"
fi
[ "$(version)" = 1.0 ] || problem "a failed update left the extension at '$(version)'"

# The restart: the new library and its shared-memory layout.
from=$(($(wc -l <"$LOG") + 1))
cluster_restart || exit 1
sleep 2
worker_up || problem "no signals worker after the restart"
new_shmem=$(shmem)
echo "restart: shared memory of the 1.0-era library: $old_shmem"
echo "restart: shared memory of the current library: $new_shmem"
[ "$old_shmem" != "$new_shmem" ] || echo "restart: (the layouts are the same)"
[ "$(psql_q -c "SELECT count(*) FROM apiscale.queries WHERE query LIKE '%restart_marker%'")" = 0 ] ||
	problem "statistics survived the restart"
[ "$(psql_q -c "SELECT count(*) FROM apiscale.pool_reports")" = 0 ] ||
	problem "pool reports survived the restart"
[ "$(psql_q -c "SELECT status FROM apiscale.scaling_signals WHERE signal = 'connection_utilization_pct'")" != "no data" ] ||
	problem "the signals worker did not sample after the restart"
failed=$(read_all)
[ -z "$failed" ] || problem "at 1.0 with the new library, reads failed: $failed"
for _ in 1 2; do psql_q -c "SELECT count(*) FROM restart_marker WHERE x < 7" >/dev/null; done
[ "$(psql_q -c "SELECT calls FROM apiscale.queries WHERE query LIKE '%restart_marker WHERE x <%'")" = 2 ] ||
	problem "at 1.0 with the new library, statements are not counted"

psql_q -c "ALTER EXTENSION apiscale UPDATE" || problem "ALTER EXTENSION UPDATE failed after the restart"
[ "$(version)" = 1.1 ] || problem "after the update the extension is at '$(version)'"
failed=$(read_all)
[ -z "$failed" ] || problem "at 1.1, reads failed: $failed"
metrics=$(psql_q -c "SELECT apiscale.metrics()")
grep -q '^apiscale_statement_calls_total' <<<"$metrics" ||
	problem "metrics() shows no statement after the update"

cluster_stop
# Nothing of apiscale's is kept on disk: if that changes, the file needs a
# version (a new library may read an old file after such a restart).
files=$(find "$PGDATA" -iname '*apiscale*')
[ -z "$files" ] || problem "apiscale left files in the data directory: $files"
crashes=$(tail -n +"$from" "$LOG" | grep -E 'terminated by signal|PANIC|TRAP:')
if [ -n "$crashes" ]; then
	problem "the server log shows a crash:"
	head -n 5 <<<"$crashes"
fi

[ "$fail" -eq 0 ] && echo "restart: 1.0-era library, upgraded files, restart, update to 1.1: no crash, nothing persisted"
exit "$fail"
