#!/usr/bin/env bash
# error_cost.sh: what counting failed statements costs, in instructions.
#
# errors.c reads every message a client backend sends (it wraps the
# protocol layer's putmessage) and counts the error responses.  A
# single-user backend (instructions.sh) sends no protocol messages, so this
# runs a real server under callgrind (every process traced), sends it 500
# syntax errors, 500 execution errors and 500 statements that succeed
# through psql, and reads the client backend's profile:
#   - per message: the wrapper's own instructions, averaged over every
#     message the backend sent;
#   - per failed statement: count_error_response(), callees included;
#     the error response itself then goes its usual way;
#   - for scale: EmitErrorReport() per error (the server's own report).
# The library is the one just built, loaded from a private directory
# (dynamic_library_path): nothing is installed.
#
# Usage: tests/bench/error_cost.sh (after make); prints four lines.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/scripts/lib.sh"

command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 0; }
[ -f "$top/apiscale.so" ] || { echo "build first (make)"; exit 1; }

work=$(mktemp -d /tmp/apiscale-error-cost.XXXXXX)
chmod 755 "$work"
[ "$PGUSER_OS" = postgres ] && chown postgres: "$work"
trap 'as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1; rm -rf "$work"' EXIT

install -m 755 "$top/apiscale.so" "$work/apiscale.so"
cluster_init "$work/pg" >/dev/null
cluster_conf "shared_preload_libraries = 'apiscale'" \
	"dynamic_library_path = '$work:\$libdir'" "autovacuum = off"

as_pg valgrind --tool=callgrind --trace-children=yes \
	--callgrind-out-file="$work/cg.%p" "$PGBIN/postgres" -D "$PGDATA" \
	>"$work/valgrind.log" 2>&1 &
for _ in $(seq 120); do
	"$PGBIN/psql" -X -q -d postgres -c "SELECT 1" >/dev/null 2>&1 && break
	sleep 1
done

"$PGBIN/psql" -X -q -d postgres -c "CREATE TABLE cost_t (id int PRIMARY KEY, v int)" \
	-c "INSERT INTO cost_t SELECT g, 0 FROM generate_series(1, 5) g"
/usr/bin/python3 - "$work/statements.sql" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(500):
        f.write("SELEC %d;\n" % i)
        f.write("SELECT 10 / v FROM cost_t WHERE id = %d;\n" % (i % 5 + 1))
        f.write("SELECT v FROM cost_t WHERE id = %d;\n" % (i % 5 + 1))
PY
chmod 644 "$work/statements.sql"
"$PGBIN/psql" -X -At -d postgres -c "SELECT pg_backend_pid()" -f "$work/statements.sql" \
	>"$work/out.txt" 2>/dev/null || true
pid=$(head -n 1 "$work/out.txt")
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 300 stop >/dev/null

profile=$work/cg.$pid
[ -s "$profile" ] || { echo "no profile for backend $pid"; exit 1; }

# The wrapper's own lines (the error path is a function of its own): their
# instructions, and the number of messages it passed on (the call to the
# socket layer's putmessage, an address without a symbol).
read -r wrapper messages < <(callgrind_annotate --auto=yes --show-percs=no \
	--threshold=100 "$profile" "$top/extension/errors.c" 2>/dev/null | awk '
	/^ *[0-9,.]+ +aps_putmessage\(char msgtype/ { on = 1; next }
	!on || done { next }
	/=>/ {
		if ($0 ~ /putmessage_error/) next
		match($0, /\(([0-9,]+)x\)/)
		n = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", n); msgs = n
		next
	}
	/^ *[0-9,]+ / { v = $1; gsub(",", "", v); self += v }
	/^ *[0-9,.]+ +}/ { print self, msgs; done = 1 }')
inclusive() {
	callgrind_annotate --inclusive=yes --show-percs=no --threshold=100 "$profile" 2>/dev/null |
		awk -v f="$1" '!done && index($0, f) { v = $1; gsub(",", "", v); print v; done = 1 }'
}
counting=$(inclusive ':count_error_response ')
report=$(inclusive ':EmitErrorReport ')

# The 1000 error responses go on through putmessage_error().
messages=$((messages + 1000))
awk -v w="$wrapper" -v m="$messages" -v c="$counting" -v r="$report" 'BEGIN {
	printf "messages sent: %d; failed statements: 1000\n", m
	printf "wrapper, per message:                 %6.1f instructions\n", w / m
	printf "counting, per failed statement:       %6.1f instructions\n", c / 1000
	printf "EmitErrorReport, per failed statement: %6.1f instructions (for scale)\n", r / 1000
}'
