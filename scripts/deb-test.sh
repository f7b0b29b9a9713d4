#!/usr/bin/env bash
# deb-test.sh: build the Debian packages, install them on this machine, and
# try what they installed:
#
#   - systemd-analyze verify accepts both units (the instance unit as
#     apiscale-pooler@1);
#   - the system user apiscale exists, the sample configuration passes
#     --check as that user;
#   - CREATE EXTENSION apiscale works on a throwaway cluster with
#     shared_preload_libraries = 'apiscale', and apiscale.report() answers;
#   - the installed daemon, run as apiscale with the packaged configuration
#     (the way the unit runs it, Type=notify included), says READY=1,
#     passes a client through to that cluster, answers SHOW VERSION as
#     database pgbouncer, and stops cleanly on SIGTERM.
#
# The packaged configuration points at 127.0.0.1:5432 and listens on 6432;
# when either port is taken on this machine, a copy with free ports is used
# instead (and said so).  Installing replaces a source install of the
# extension (make install) in PostgreSQL 15's directories; the packages
# are purged at the end unless KEEP=1.  Needs root.  About 2 minutes
# (DEB_TEST_NO_BUILD=1 skips the build and tests build/deb/ as it is).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "deb-test.sh: needs root (it installs the packages)" >&2
	exit 1
fi

passed=0
failed=0
step() {
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

# DEB_TEST_NO_BUILD=1: test what make deb left in build/deb/.
if [ "${DEB_TEST_NO_BUILD:-}" != 1 ]; then
	"$top/scripts/deb.sh" || exit 1
fi
out=$top/build/deb
debs=("$out"/postgresql-15-apiscale_*.deb "$out"/apiscale-pooler_*.deb)
for d in "${debs[@]}"; do
	[ -f "$d" ] || { echo "deb-test.sh: $d is missing: run make deb" >&2; exit 1; }
done

work=$(mktemp -d /tmp/apiscale-deb-test.XXXXXX)
chmod 755 "$work"
pooler_pid=
cleanup() {
	[ -n "$pooler_pid" ] && kill "$pooler_pid" 2>/dev/null
	cluster_stop
	if [ "${KEEP:-}" != 1 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq \
			postgresql-15-apiscale apiscale-pooler >/dev/null 2>&1
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "== installing ${debs[*]##*/}"
# apt resolves the dependencies (postgresql-15, adduser); no service is
# started: the unit is installed disabled, and policy-rc.d stops others.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d; cleanup' EXIT
fi
apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${debs[@]}" >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; return 1; }
}
step install apt_install
[ "$failed" -eq 0 ] || exit 1

verify_units() {
	cp /lib/systemd/system/apiscale-pooler@.service "$work/apiscale-pooler@1.service"
	systemd-analyze verify /lib/systemd/system/apiscale-pooler.service \
		"$work/apiscale-pooler@1.service" 2>&1 | tee "$work/verify.log"
	# verify prints what it finds wrong and may still exit 0
	[ "${PIPESTATUS[0]}" -eq 0 ] && ! [ -s "$work/verify.log" ]
}
step systemd-analyze-verify verify_units

step system-user getent passwd apiscale
step packaged-files test -x /usr/bin/apiscale-pooler -a \
	-f /usr/share/postgresql/15/extension/apiscale.control -a \
	-f /usr/lib/postgresql/15/lib/apiscale.so -a \
	-f /etc/logrotate.d/apiscale-pooler -a \
	-f /usr/share/man/man5/apiscale-pooler.ini.5.gz
step man-pages sh -c 'man -l /usr/share/man/man1/apiscale-pooler.1.gz | grep -q from-pgbouncer'

config=/etc/apiscale/apiscale-pooler.ini
step check-sample-config runuser -u apiscale -- /usr/bin/apiscale-pooler --check "$config"

# A cluster where the sample configuration looks for it, if free.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
cluster_init "$work/pg" || exit 1
pg_port=5432
pooler_port=6432
if ! port_free 5432 || ! port_free 6432; then
	pg_port=$PGPORT
	pooler_port=$(free_port)
	echo "(5432 or 6432 is taken here: the configuration is a copy with" \
		"ports $pg_port and $pooler_port)"
	sed -e "s/port=5432/port=$pg_port/" -e "s/^listen_port = .*/listen_port = $pooler_port/" \
		"$config" >"$work/pooler.ini"
	chmod 644 "$work/pooler.ini"
	config=$work/pooler.ini
fi
sed -i "s/^port = .*/port = $pg_port/" "$PGDATA/postgresql.conf"
PGPORT=$pg_port
cluster_conf "shared_preload_libraries = 'apiscale'" "listen_addresses = '127.0.0.1'"
cluster_start || exit 1
pg_psql -d postgres -c "CREATE DATABASE appdb" || exit 1

step create-extension pg_psql -d appdb -c "CREATE EXTENSION apiscale" \
	-c "SELECT count(*) FROM apiscale.report()"

# The daemon as the unit runs it: user apiscale, its runtime directory,
# NOTIFY_SOCKET for Type=notify.
install -d -o apiscale -g apiscale /run/apiscale-pooler
notify=$work/notify.sock
/usr/bin/python3 - "$notify" >"$work/notify.log" 2>&1 <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.settimeout(30)
print(s.recv(4096).decode(), flush=True)
PY
listener=$!
for _ in $(seq 50); do [ -S "$notify" ] && break; sleep 0.1; done
# setpriv execs (runuser would stay as the parent and take the signals)
NOTIFY_SOCKET="$notify" setpriv --reuid=apiscale --regid=apiscale --init-groups \
	/usr/bin/apiscale-pooler "$config" >"$work/pooler.log" 2>&1 &
pooler_pid=$!
wait "$listener"
step notify-ready grep -qx 'READY=1' "$work/notify.log"

through() {
	local got
	got=$("$PGBIN/psql" -X -At -h 127.0.0.1 -p "$pooler_port" -U "$PGUSER" -d appdb \
		-c "SELECT extname FROM pg_extension WHERE extname = 'apiscale'") &&
		[ "$got" = apiscale ]
}
step client-through-pooler through
admin_version() {
	"$PGBIN/psql" -X -At -h 127.0.0.1 -p "$pooler_port" -U postgres -d pgbouncer \
		-c "SHOW VERSION" | grep -q '^apiscale-pooler '
}
step admin-console admin_version
stop_daemon() {
	kill -TERM "$pooler_pid" && wait "$pooler_pid"
	local rc=$?
	pooler_pid=
	return $rc
}
step sigterm-exit-0 stop_daemon
if [ "$failed" -ne 0 ]; then
	echo "-- pooler log"
	cat "$work/pooler.log"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
