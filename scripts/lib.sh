# lib.sh: helpers shared by test.sh, demo.sh and the benchmarks.
#
# A throwaway PostgreSQL 15 cluster in a private directory, listening on a
# Unix socket in that directory (and nowhere else unless asked).  When the
# scripts run as root, the cluster runs as the "postgres" user, since
# PostgreSQL refuses to run as root.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PGBIN/pg_config}

if [ "$(id -u)" -eq 0 ]; then
	PGUSER_OS=postgres
	SUDO=""
	as_pg() { runuser -u postgres -- "$@"; }
else
	PGUSER_OS=$(id -un)
	SUDO="sudo"
	as_pg() { "$@"; }
fi
export PGUSER=$PGUSER_OS

# A free TCP port on 127.0.0.1 (also used to name the Unix socket).
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# cluster_init DIR: initdb into DIR/data; sets PGDATA, PGHOST, PGPORT.
cluster_init() {
	local dir=$1
	mkdir -p "$dir"
	[ "$PGUSER_OS" = postgres ] && chown postgres: "$dir"
	PGDATA=$dir/data
	PGHOST=$dir
	PGPORT=$(free_port)
	export PGDATA PGHOST PGPORT
	as_pg "$PGBIN/initdb" -D "$PGDATA" -U "$PGUSER_OS" -A trust -E UTF8 \
		--locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; return 1; }
	cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $PGPORT
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
CONF
}

# cluster_conf LINE...: append settings to postgresql.conf.
cluster_conf() {
	printf '%s\n' "$@" >>"$PGDATA/postgresql.conf"
}

# cluster_start [extra postgres options]; PG_CPUS=LIST pins the server
# (postmaster and every backend) to those CPUs, for benchmarks.
cluster_start() {
	local pin=()
	[ -n "${PG_CPUS:-}" ] && pin=(taskset -c "$PG_CPUS")
	as_pg "${pin[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGHOST/server.log" -w -t 60 \
		-o "${1:-}" start >/dev/null ||
		{ tail -n 30 "$PGHOST/server.log" >&2; return 1; }
}

cluster_stop() {
	[ -n "${PGDATA:-}" ] && [ -f "$PGDATA/postmaster.pid" ] &&
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
	return 0
}

cluster_restart() {
	cluster_stop
	cluster_start "${1:-}"
}

# psql against the cluster, quiet and failing on the first error.
pg_psql() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# Build and install the extension (and the pooler).  A normal user needs
# sudo, or write access to PostgreSQL's directories.
build_and_install() {
	local top=$1
	local sudo=$SUDO
	make -C "$top" -s all >/dev/null || return 1
	if [ -n "$sudo" ] && [ -w "$("$PG_CONFIG" --pkglibdir)" ] &&
		[ -w "$("$PG_CONFIG" --sharedir)/extension" ]; then
		sudo=""
	fi
	if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
		echo "installing the extension into $("$PG_CONFIG" --pkglibdir) needs root or sudo" >&2
		return 1
	fi
	$sudo make -C "$top" -s install >/dev/null
}

# private_pg ROOT: a private copy of PostgreSQL 15 under ROOT (its bin,
# lib and share directories at their usual paths below ROOT: PostgreSQL
# finds its files relative to its binaries), without apiscale; sets PGBIN
# and PG_CONFIG to it.  Long runs and other versions of the library are
# installed there (private_install), not into the system's directories
# that other checkouts install into.
private_pg() {
	local root=$1 dir
	for dir in "$("$PG_CONFIG" --bindir)" "$("$PG_CONFIG" --pkglibdir)" \
		"$("$PG_CONFIG" --sharedir)"; do
		mkdir -p "$root$dir"
		cp -a "$dir/." "$root$dir/" || return 1
	done
	rm -f "$root$("$PG_CONFIG" --pkglibdir)/apiscale.so" \
		"$root$("$PG_CONFIG" --sharedir)"/extension/apiscale[.-]*
	PGBIN=$root$("$PG_CONFIG" --bindir)
	PG_CONFIG=$PGBIN/pg_config
	chmod -R a+rX "$root"
}

# private_install SRC: install the extension built in the source tree SRC
# (apiscale.so, the control file, the SQL scripts) into the private copy
# of private_pg.  Replaces the files: running processes keep the library
# they loaded.
private_install() {
	local src=$1
	install -m 755 "$src/apiscale.so" "$("$PG_CONFIG" --pkglibdir)/" &&
		install -m 644 "$src/apiscale.control" "$src"/extension/apiscale--*.sql \
			"$("$PG_CONFIG" --sharedir)/extension/"
}
