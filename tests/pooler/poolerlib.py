"""poolerlib: helpers for the apiscale-pooler integration tests.

A throwaway PostgreSQL cluster (PgCluster), a running pooler with its
config file (Pooler), a minimal wire-protocol client that shows exactly
what the pooler sends (RawClient), and small waiting helpers.  conftest.py
turns them into the fixtures `pg` and `pooler`; test modules import the
helpers directly (pytest puts this directory on sys.path).

Everything listens on 127.0.0.1 only, every wait is bounded, and every
process started here is stopped by the fixtures that started it.
"""

import glob
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("APISCALE_POOLER", REPO / "pooler" / "apiscale-pooler"))
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
PSQL = str(PGBIN / "psql")
PGBENCH = str(PGBIN / "pgbench")
HOST = "127.0.0.1"

# The password of the role "secure", which the server itself checks
# (scram-sha-256 in pg_hba.conf), unlike every other role (trust).
SECURE_PASSWORD = "s3cret"

# SQLSTATEs a client may get when the database goes away (contract).
DOWN_SQLSTATES = {"08006", "08001", "57P01"}


def binary_problem():
    """Why the pooler binary cannot be used, or None when it can."""
    if not BINARY.exists():
        return f"{BINARY} does not exist yet (build it with 'make -C pooler')"
    if not os.access(BINARY, os.X_OK):
        return f"{BINARY} is not executable"
    return None


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_accepts(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a true value; return that value.

    Raises AssertionError naming `what` (and the last value seen) when
    `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def as_int(value):
    """An admin-console value as an int (the console may send text)."""
    if value is None or value == "":
        return 0
    return int(float(value))


def as_float(value):
    if value is None or value == "":
        return 0.0
    return float(value)


def libfaketime():
    """The path of libfaketime's multi-threaded library (Debian package
    libfaketime), or None."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


class FakeClock:
    """A clock to move the processes started with env() through time.

    libfaketime (LD_PRELOAD) adds the offset written to a file to every
    clock the process reads, CLOCK_MONOTONIC included, and reads the file
    again at each call: set("+2h") makes the process two hours older from
    its next clock_gettime on.  The file is replaced atomically, so that a
    read never sees it half written."""

    def __init__(self, path, library):
        self.path = Path(path)
        self.library = library
        self.set("+0")

    def set(self, offset):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(offset + "\n")
        os.replace(tmp, self.path)

    def env(self):
        # An ASan build wants its runtime first among the loaded libraries;
        # libfaketime before it is harmless, so let it start.
        asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0") if x)
        return {"LD_PRELOAD": self.library, "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_NO_CACHE": "1", "ASAN_OPTIONS": asan}


def md5_secret(user, password):
    """The auth_file form of a password: md5 + md5(password + user)."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


# ---------------------------------------------------------------------------
# PostgreSQL cluster
# ---------------------------------------------------------------------------


class PgCluster:
    """A private PostgreSQL 15 cluster on a free 127.0.0.1 port.

    Runs as the OS user "postgres" when we are root (PostgreSQL refuses to
    run as root).  Roles: postgres (superuser), app (plain login role, used
    as the non-admin user), secure (the server asks it for a password).
    Database appdb holds tables items (100 rows) and events (append-only
    log the tests write to)."""

    def __init__(self, base=None, extra_conf=""):
        self.extra_conf = extra_conf  # more postgresql.conf lines
        self.base = Path(base or tempfile.mkdtemp(prefix="apiscale-pooler-pg."))
        self.data = self.base / "data"
        self.logfile = self.base / "server.log"
        self.port = free_port()
        self.host = HOST
        self.as_root = os.geteuid() == 0
        self._monitor = None
        self._lock = threading.RLock()

    # -- process control ---------------------------------------------------

    def _cmd(self, args):
        if self.as_root:
            return ["runuser", "-u", "postgres", "--"] + [str(a) for a in args]
        return [str(a) for a in args]

    def _run(self, args, timeout=120):
        out = self.base / "cmd.log"
        with open(out, "wb") as f:
            r = subprocess.run(self._cmd(args), stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout)
        return r.returncode, out.read_text(errors="replace")

    def init(self):
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
        rc, out = self._run([PGBIN / "initdb", "-D", self.data, "-U", "postgres",
                             "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"])
        if rc != 0:
            raise RuntimeError(f"initdb failed:\n{out}")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"""
listen_addresses = '{HOST}'
port = {self.port}
unix_socket_directories = '{self.base}'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
""" + self.extra_conf + "\n")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all secure {HOST}/32 scram-sha-256\n"
            f"host all all {HOST}/32 trust\n"
            f"host replication all {HOST}/32 trust\n")
        self.start()
        with self.connect(dbname="postgres") as c:
            c.execute("CREATE ROLE app LOGIN")
            c.execute(f"CREATE ROLE secure LOGIN PASSWORD '{SECURE_PASSWORD}'")
            c.execute("CREATE DATABASE appdb")
        with self.connect(dbname="appdb") as c:
            c.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
            c.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")
            c.execute("CREATE TABLE events (id bigserial PRIMARY KEY, tag text, who int,"
                      " at timestamptz DEFAULT clock_timestamp())")
            c.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO app, secure")
            c.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app, secure")
        # synchronous_commit = off leaves the commits above in shared memory
        # for up to wal_writer_delay: a test that kills the server right away
        # (test_crash.py) would find appdb without its tables after recovery.
        with self.connect(dbname="postgres") as c:
            c.execute("CHECKPOINT")
        return self

    def standby_of(self, primary):
        """Make this cluster a streaming standby of primary (pg_basebackup
        -R), on its own port, and start it."""
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
        rc, out = self._run([PGBIN / "pg_basebackup", "-D", self.data, "-R", "-X", "stream", "-c", "fast",
                             "-h", primary.host, "-p", str(primary.port), "-U", "postgres"])
        if rc != 0:
            raise RuntimeError(f"pg_basebackup failed:\n{out}")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"\nport = {self.port}\nunix_socket_directories = '{self.base}'\n"
                    "hot_standby_feedback = on\n")
        self.start()
        return self

    def promote(self):
        rc, out = self._run([PGBIN / "pg_ctl", "-D", self.data, "-w", "-t", "60", "promote"])
        if rc != 0:
            raise RuntimeError(f"pg_ctl promote failed:\n{out}")

    def start(self):
        rc, out = self._run([PGBIN / "pg_ctl", "-D", self.data, "-l", self.logfile,
                             "-w", "-t", "60", "start"])
        if rc != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{out}\n{self.server_log()[-3000:]}")

    def stop(self, mode="fast"):
        """Stop the server (mode: smart, fast or immediate); no-op if down."""
        self._drop_monitor()
        if not self.is_running():
            return
        rc, out = self._run([PGBIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"])
        if rc != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{out}")

    def restart(self, mode="immediate"):
        self.stop(mode)
        self.start()

    def is_running(self):
        rc, _ = self._run([PGBIN / "pg_ctl", "-D", self.data, "status"], timeout=30)
        return rc == 0

    def ensure_running(self):
        if not self.is_running():
            self.start()

    def destroy(self):
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def server_log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    # -- connections -------------------------------------------------------

    def dsn(self, dbname="appdb", user="postgres"):
        return f"host={self.host} port={self.port} dbname={dbname} user={user}"

    def connect(self, dbname="appdb", user="postgres", **kw):
        """A direct psycopg connection (autocommit unless told otherwise)."""
        params = dict(host=self.host, port=self.port, dbname=dbname, user=user,
                      autocommit=True, connect_timeout=5)
        params.update(kw)
        return psycopg.connect(**params)

    def _drop_monitor(self):
        with self._lock:
            if self._monitor is not None:
                try:
                    self._monitor.close()
                except Exception:
                    pass
                self._monitor = None

    def query(self, sql, params=None):
        """Rows (as dicts) of a query on the monitoring connection.

        The monitoring connection goes to database postgres and reconnects
        by itself after a restart."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._monitor is None or self._monitor.closed:
                        self._monitor = self.connect(dbname="postgres",
                                                     row_factory=dict_row,
                                                     application_name="pooler-tests-monitor")
                    return self._monitor.execute(sql, params).fetchall()
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    self._drop_monitor()
                    if attempt == 2:
                        raise

    def backend_rows(self, dbname, user=None):
        """pg_stat_activity rows of client backends of dbname (and user),
        without the test's monitoring connection and apiscale-pooler's own
        (report_interval, health checks), which are no servers of any pool."""
        sql = ("SELECT pid, usename, datname, state, backend_start, xact_start, query"
               " FROM pg_stat_activity"
               " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
               " AND application_name IS DISTINCT FROM 'apiscale-pooler monitor'"
               " AND application_name IS DISTINCT FROM 'apiscale-pooler health'"
               " AND datname = %s")
        params = [dbname]
        if user is not None:
            sql += " AND usename = %s"
            params.append(user)
        return self.query(sql + " ORDER BY pid", params)

    def backends(self, dbname="appdb", user="postgres"):
        """How many client backends dbname/user has (user None: any)."""
        return len(self.backend_rows(dbname, user))

    def pids(self, dbname="appdb", user="postgres"):
        return {r["pid"] for r in self.backend_rows(dbname, user)}

    def idle_in_transaction(self, dbname="appdb"):
        return [r for r in self.backend_rows(dbname) if (r["state"] or "").startswith("idle in transaction")]

    def terminate(self, dbname, user=None):
        sql = ("SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
               " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = %s")
        params = [dbname]
        if user is not None:
            sql += " AND usename = %s"
            params.append(user)
        return self.query(sql, params)[0]["n"]

    def settle(self, dbname="appdb", timeout=3.0):
        """Make sure no client backend of dbname is left over from an
        earlier test: wait for them to go, then terminate the rest."""
        self.ensure_running()
        deadline = time.monotonic() + timeout
        while self.backends(dbname, None) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.backends(dbname, None):
            self.terminate(dbname)
            wait_until(lambda: self.backends(dbname, None) == 0, 5, what=f"no backend left on {dbname}")


# ---------------------------------------------------------------------------
# The pooler under test
# ---------------------------------------------------------------------------

# [pooler] keys in the order the contract lists them, with the defaults the
# tests use (short timeouts so that a test never waits long by accident).
DEFAULT_SETTINGS = {
    "listen_addr": HOST,
    "listen_port": None,  # filled with a free port
    "unix_socket_dir": "",
    "auth_type": "trust",
    "auth_file": None,  # written when users are given
    "admin_users": "postgres",
    "pool_mode": "transaction",
    "pool_size": 20,
    "max_overflow": 30,
    "pool_timeout": 10,
    "pool_recycle": 1800,
    "max_client_conn": 10000,
    "log_level": "info",
    "logfile": "",
    "pidfile": "",
}


def render_config(databases, settings):
    """The config file's lines (no trailing newlines).

    Settings whose value is None are left out."""
    lines = ["; written by tests/pooler", "[databases]"]
    for name, conn in databases.items():
        lines.append(f"{name} = {conn}")
    lines.append("")
    lines.append("[pooler]")
    for key, value in settings.items():
        if value is None:
            continue
        lines.append(f"{key} = {value}")
    return lines


class Pooler:
    """One apiscale-pooler process with its config in `workdir`.

    The process runs in the foreground (no -d) in its own session; its
    stdout and stderr go to workdir/pooler.log."""

    def __init__(self, pg, workdir, settings=None, databases=None, users=None, args=(), env=None,
                 sections=None):
        self.pg = pg
        self.sections = dict(sections or {})  # {"users": {name: line}, "peers": {...}}
        self.env = dict(env or {})  # added to the environment of the process
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "pooler.ini"
        self.stderr_path = self.workdir / "pooler.log"
        self.users_path = self.workdir / "users.txt"
        self.args = list(args)
        self.databases = {"appdb": f"host={HOST} port={pg.port} dbname=appdb"}
        self.databases.update(databases or {})
        self.users = dict(users or {})
        self.settings = dict(DEFAULT_SETTINGS)
        self.settings["listen_port"] = free_port()
        self.settings.update(settings or {})
        self.proc = None
        self._log_handle = None

    # -- config ------------------------------------------------------------

    @property
    def port(self):
        return int(self.settings["listen_port"])

    def config_lines(self):
        settings = dict(self.settings)
        if self.users and settings.get("auth_file") is None:
            settings["auth_file"] = str(self.users_path)
        lines = render_config(self.databases, settings)
        for section, entries in self.sections.items():
            lines += ["", f"[{section}]"] + [f"{k} = {v}" for k, v in entries.items()]
        return lines

    def write_config(self, **new_settings):
        """Rewrite the config file (and users.txt) without signalling."""
        self.settings.update(new_settings)
        if self.users:
            self.users_path.write_text("".join(f'"{u}" "{p}"\n' for u, p in self.users.items()))
        self.config_path.write_text("\n".join(self.config_lines()) + "\n")

    # -- process -----------------------------------------------------------

    def start(self, timeout=10):
        self.write_config()
        self._log_handle = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([str(BINARY)] + self.args + [str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._log_handle,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(os.environ, **self.env) if self.env else None)
        deadline = time.monotonic() + timeout
        while not port_accepts(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"apiscale-pooler exited with {self.proc.returncode} at start:\n"
                                   f"{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"apiscale-pooler does not accept on port {self.port} "
                                   f"after {timeout}s:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """The exit code, or None if still running after timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Send sig and wait for the exit; returns the exit code."""
        self.send_signal(sig)
        rc = self.wait_exit(timeout)
        if rc is None:
            raise AssertionError(f"apiscale-pooler still running {timeout}s after signal {sig!r}")
        return rc

    def kill(self):
        """Ends the process whatever its state: SIGINT, then SIGKILL."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.send_signal(signal.SIGINT)
            if self.wait_exit(3) is None:
                self.proc.kill()
                self.proc.wait(10)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def status(self):
        """'running', or how the process ended (exit code or signal)."""
        if self.proc is None:
            return "not started"
        rc = self.proc.poll()
        if rc is None:
            return "running"
        if rc < 0:
            return f"killed by signal {signal.Signals(-rc).name}"
        return f"exited with code {rc}"

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def log(self):
        """Everything the pooler logged: its stderr, plus `logfile` if set."""
        text = ""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            pass
        logfile = self.settings.get("logfile")
        if logfile and Path(logfile).is_file():  # not /dev/full (endless zeros)
            try:
                text += Path(logfile).read_text(errors="replace")
            except OSError:
                pass
        return text

    # -- clients -----------------------------------------------------------

    def conninfo(self, dbname="appdb", user="postgres", **kw):
        params = dict(host=HOST, port=self.port, dbname=dbname, user=user,
                      connect_timeout=5, autocommit=True, prepare_threshold=None)
        params.update(kw)
        return params

    def connect(self, dbname="appdb", user="postgres", **kw):
        """A psycopg connection through the pooler: autocommit (tests send
        BEGIN/COMMIT themselves) and no named prepared statements."""
        return psycopg.connect(**self.conninfo(dbname, user, **kw))

    async def aconnect(self, dbname="appdb", user="postgres", **kw):
        return await psycopg.AsyncConnection.connect(**self.conninfo(dbname, user, **kw))

    def raw(self, user="postgres", dbname="appdb", password=None, timeout=10):
        """A RawClient logged in through the pooler."""
        return RawClient(self.port, timeout=timeout).startup(user, dbname, password)

    def admin(self, sql, user="postgres", password=None):
        """Run one admin-console command (simple query protocol).

        Returns an AdminResult: a list of dicts (one per row, keys in column
        order) with .columns; empty for commands without rows."""
        kw = {}
        if password is not None:
            kw["password"] = password
        with psycopg.connect(**self.conninfo("apiscale", user, **kw)) as conn:
            cur = conn.execute(sql)
            if cur.description is None:
                return AdminResult([], [])
            columns = [d.name for d in cur.description]
            return AdminResult(columns, [dict(zip(columns, row)) for row in cur.fetchall()])

    def pool(self, dbname="appdb", user="postgres"):
        """The SHOW POOLS row of dbname/user, or None."""
        for row in self.admin("SHOW POOLS"):
            if row["database"] == dbname and row["user"] == user:
                return row
        return None

    def server_count(self, dbname="appdb", user="postgres"):
        """Server connections of the pool as SHOW POOLS counts them."""
        row = self.pool(dbname, user)
        if row is None:
            return 0
        return sum(as_int(row[k]) for k in ("sv_active", "sv_idle", "sv_used", "sv_login"))

    def config_value(self, key):
        for row in self.admin("SHOW CONFIG"):
            if row["key"] == key:
                return row["value"]
        return None

    def reload(self, wait=True, **new_settings):
        """Rewrite the config with new_settings and send SIGHUP.

        With wait, returns once SHOW CONFIG shows every new value (fails
        after 5 s)."""
        self.write_config(**new_settings)
        self.send_signal(signal.SIGHUP)
        if wait:
            self.wait_config(new_settings)

    def wait_config(self, expected, timeout=5):
        def matches():
            for key, value in expected.items():
                shown = self.config_value(key)
                if shown is None or not same_setting(shown, value):
                    return False
            return True
        wait_until(matches, timeout, interval=0.1, what=f"SHOW CONFIG to show {expected}")


def same_setting(shown, wanted):
    try:
        return abs(float(shown) - float(wanted)) < 1e-9
    except (TypeError, ValueError):
        return str(shown).strip() == str(wanted).strip()


class AdminResult(list):
    def __init__(self, columns, rows):
        super().__init__(rows)
        self.columns = columns


# ---------------------------------------------------------------------------
# A minimal protocol-3 client
# ---------------------------------------------------------------------------


class PgError(Exception):
    """An ErrorResponse, with its fields by code (C = SQLSTATE, M = message)."""

    def __init__(self, fields):
        self.fields = fields
        self.sqlstate = fields.get("C")
        self.message = fields.get("M")
        self.severity = fields.get("V") or fields.get("S")
        super().__init__(f"{self.severity} {self.sqlstate}: {self.message}")


class ConnectionClosed(ConnectionError):
    """The pooler closed the connection; .result holds what came before
    (an ErrorResponse sent before closing is in .result.errors)."""

    def __init__(self, result):
        self.result = result
        err = result.error
        super().__init__("connection closed by the pooler"
                         + (f" after {err.severity} {err.sqlstate}: {err.message}" if err else
                            " without an ErrorResponse"))

    @property
    def sqlstate(self):
        return self.result.error.sqlstate if self.result.error else None


class Result:
    def __init__(self):
        self.columns = []
        self.rows = []
        self.tags = []
        self.errors = []
        self.status = None  # transaction status of the ReadyForQuery
        self.messages = []  # (type, body) in arrival order

    @property
    def error(self):
        return self.errors[0] if self.errors else None


def _parse_fields(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


class RawClient:
    """Speaks the wire protocol directly, so a test sees each message the
    pooler sends (an ErrorResponse followed or not by ReadyForQuery) and can
    drop the connection however it likes (abort=True sends a RST)."""

    def __init__(self, port, host=HOST, timeout=10, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=source)
        self.buf = b""
        self.params = {}
        self.status = None
        self.negotiated = None
        self.backend_key = None  # (pid, key) of BackendKeyData
        self.closed = False  # the peer closed the connection (seen by collect)

    @staticmethod
    def message(kind, payload=b""):
        return kind + struct.pack("!I", len(payload) + 4) + payload

    def send(self, data):
        self.sock.sendall(data)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the pooler")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_message(self):
        """One message as (type byte, body); ConnectionError on EOF/RST."""
        kind = self._read(1)
        (length,) = struct.unpack("!I", self._read(4))
        return kind, self._read(length - 4)

    def startup(self, user, database, password=None, version=196608, **params):
        payload = struct.pack("!I", version)
        for k, v in dict(user=user, database=database, **params).items():
            payload += k.encode() + b"\0" + str(v).encode() + b"\0"
        payload += b"\0"
        self.send(struct.pack("!I", len(payload) + 4) + payload)
        while True:
            kind, body = self.read_message()
            if kind == b"R":
                (code,) = struct.unpack("!I", body[:4])
                if code == 0:
                    continue
                if password is None:
                    raise PgError({"C": "(none)", "M": f"the pooler asks for a password (auth {code})"})
                if code == 3:
                    self.send(self.message(b"p", password.encode() + b"\0"))
                elif code == 5:
                    salt = body[4:8]
                    inner = hashlib.md5((password + user).encode()).hexdigest().encode()
                    outer = "md5" + hashlib.md5(inner + salt).hexdigest()
                    self.send(self.message(b"p", outer.encode() + b"\0"))
                else:
                    raise PgError({"C": "(none)", "M": f"authentication request {code} not supported here"})
            elif kind == b"S":
                k, v, _ = body.split(b"\0", 2)
                self.params[k.decode()] = v.decode()
            elif kind == b"E":
                raise PgError(_parse_fields(body))
            elif kind == b"Z":
                self.status = body[:1].decode()
                return self
            elif kind == b"v":
                minor, n = struct.unpack("!II", body[:8])
                names = body[8:].split(b"\0")[:n]
                self.negotiated = (minor, [x.decode() for x in names])
            elif kind == b"K":
                self.backend_key = struct.unpack("!II", body[:8])
            # N (notice): nothing to do

    def read_until_ready(self):
        """Messages up to ReadyForQuery as a Result; raises ConnectionClosed
        (with the messages received so far) if the pooler closes first."""
        res = Result()
        while True:
            try:
                kind, body = self.read_message()
            except ConnectionError:
                raise ConnectionClosed(res) from None
            res.messages.append((kind, body))
            if kind == b"T":
                (n,) = struct.unpack("!H", body[:2])
                pos = 2
                for _ in range(n):
                    end = body.index(b"\0", pos)
                    res.columns.append(body[pos:end].decode())
                    pos = end + 1 + 18
            elif kind == b"D":
                (n,) = struct.unpack("!H", body[:2])
                pos = 2
                row = []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", body[pos:pos + 4])
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(body[pos:pos + ln].decode())
                        pos += ln
                res.rows.append(tuple(row))
            elif kind == b"C":
                res.tags.append(body.rstrip(b"\0").decode())
            elif kind == b"E":
                res.errors.append(PgError(_parse_fields(body)))
            elif kind == b"Z":
                res.status = self.status = body[:1].decode()
                return res

    def query(self, sql):
        """Simple query; returns the Result up to ReadyForQuery."""
        try:
            self.send(self.message(b"Q", sql.encode() + b"\0"))
        except ConnectionError:
            pass  # already closed: read what the pooler sent before that
        return self.read_until_ready()

    # Extended-protocol messages, to be sent together with send().
    @classmethod
    def parse(cls, sql, name=""):
        return cls.message(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0))

    @classmethod
    def bind(cls, name="", params=()):
        payload = b"\0" + name.encode() + b"\0" + struct.pack("!H", 0) + struct.pack("!H", len(params))
        for p in params:
            if p is None:
                payload += struct.pack("!i", -1)
            else:
                data = str(p).encode()
                payload += struct.pack("!i", len(data)) + data
        return cls.message(b"B", payload + struct.pack("!H", 0))

    @classmethod
    def describe_portal(cls):
        return cls.message(b"D", b"P\0")

    @classmethod
    def describe_statement(cls, name=""):
        return cls.message(b"D", b"S" + name.encode() + b"\0")

    @classmethod
    def close_statement(cls, name=""):
        return cls.message(b"C", b"S" + name.encode() + b"\0")

    @classmethod
    def flush(cls):
        return cls.message(b"H")

    def read_kinds(self, n):
        """The type bytes of the next n messages, as one string ("12CZ")."""
        return "".join(self.read_message()[0].decode() for _ in range(n))

    @classmethod
    def execute(cls, portal="", max_rows=0):
        return cls.message(b"E", portal.encode() + b"\0" + struct.pack("!i", max_rows))

    @classmethod
    def sync(cls):
        return cls.message(b"S")

    # Messages to compose batches with (several in one send()).
    @classmethod
    def query_msg(cls, sql):
        return cls.message(b"Q", sql.encode() + b"\0")

    @classmethod
    def copy_data(cls, data):
        return cls.message(b"d", data if isinstance(data, bytes) else data.encode())

    @classmethod
    def copy_done(cls):
        return cls.message(b"c")

    @classmethod
    def copy_fail(cls, reason="client gave up"):
        return cls.message(b"f", reason.encode() + b"\0")

    @classmethod
    def function_call(cls, oid, args=()):
        """FunctionCall of the function with this OID; args as text (None
        for NULL), result as text."""
        payload = struct.pack("!IHH", oid, 1, 0) + struct.pack("!H", len(args))
        for a in args:
            if a is None:
                payload += struct.pack("!i", -1)
            else:
                data = str(a).encode()
                payload += struct.pack("!i", len(data)) + data
        return cls.message(b"F", payload + struct.pack("!H", 0))

    @classmethod
    def terminate(cls):
        return cls.message(b"X")

    def collect(self, ready=1, timeout=None):
        """Read messages until `ready` ReadyForQuery have arrived, or the
        peer closes (self.closed is set then).  Returns the messages as
        (type, body) pairs.  socket.timeout if neither happens in time."""
        got = []
        old = self.sock.gettimeout()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while ready > 0:
                try:
                    kind, body = self.read_message()
                except ConnectionError:
                    self.closed = True
                    break
                got.append((kind, body))
                if kind == b"Z":
                    self.status = body[:1].decode()
                    ready -= 1
        finally:
            self.sock.settimeout(old)
        return got

    def is_quiet(self, seconds=0.3):
        """True if nothing arrives (and the peer does not close) within
        `seconds`: a check that the peer sends no answer (it can only
        fail, never make a test pass by waiting)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(seconds)
        try:
            if self.buf:
                return False
            chunk = self.sock.recv(65536)
            self.buf += chunk
            return False
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(old)

    def close(self, abort=False):
        """abort=False: Terminate then close.  abort=True: no Terminate and
        a RST (SO_LINGER 0), like a client that crashed."""
        try:
            if abort:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.send(self.message(b"X"))
        except OSError:
            pass
        self.sock.close()


def login(port, dbname="appdb", user="postgres", password=None, timeout=10):
    """Log in through the pooler: (RawClient, None), or (None, (what,
    detail)) with what a SQLSTATE, "closed-without-error" or "timeout"."""
    raw = None
    try:
        raw = RawClient(port, timeout=timeout)
        return raw.startup(user, dbname, password), None
    except PgError as e:
        failure = (e.sqlstate, e.message)
    except ConnectionError as e:  # refused, reset or closed before any error
        failure = ("closed-without-error", str(e))
    except socket.timeout:
        failure = ("timeout", "")
    if raw is not None:
        raw.close()
    return None, failure


def outcome(port, sqls, dbname="appdb", user="postgres", password=None, timeout=10, client=None):
    """Log in (unless client is given) and run sqls one by one with the
    simple protocol, stopping at the first error.

    Returns (what, detail): ("ok", rows of the last statement), (SQLSTATE,
    message) for an ErrorResponse at login or on a statement, or
    ("closed-without-error", "") / ("timeout", "") when the pooler closed
    the connection with no ErrorResponse or did not answer in time."""
    raw = client
    if raw is None:
        raw, failure = login(port, dbname, user, password, timeout)
        if raw is None:
            return failure
    try:
        rows = None
        for sql in sqls:
            res = raw.query(sql)
            if res.error is not None:
                return res.error.sqlstate, res.error.message
            rows = res.rows
        return "ok", rows
    except ConnectionClosed as e:
        if e.result.error is not None:
            return e.result.error.sqlstate, e.result.error.message
        return "closed-without-error", ""
    except ConnectionError as e:
        return "closed-without-error", str(e)
    except socket.timeout:
        return "timeout", ""
    finally:
        if client is None:
            raw.close()


def wait_ok(port, sqls=("SELECT 1",), timeout=10, what="a query to work", **kw):
    """Poll outcome(port, sqls) until it is "ok"; on timeout the error names
    the last outcome seen."""
    deadline = time.monotonic() + timeout
    while True:
        last = outcome(port, list(sqls), **kw)
        if last[0] == "ok":
            return last[1]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last outcome: {last!r}")
        time.sleep(0.2)


# ---------------------------------------------------------------------------
# The same bytes, to the server and to the pooler
# ---------------------------------------------------------------------------


def summary(messages, closed=False):
    """A message sequence as comparable tokens: the type letter, with the
    severity and SQLSTATE of an ErrorResponse ("E:ERROR:42601"), the tag of
    a CommandComplete ("C:COPY 3") and the status of a ReadyForQuery
    ("Z:I"); "<closed>" last if the peer closed.  ParameterStatus is left
    out: the pooler may report settings when it changes servers, and they
    are not answers to anything."""
    out = []
    for kind, body in messages:
        k = kind.decode()
        if k == "S":
            continue
        if k in ("E", "N"):
            f = _parse_fields(body)
            out.append(f"{k}:{f.get('V') or f.get('S')}:{f.get('C')}")
        elif k == "C":
            out.append("C:" + body.rstrip(b"\0").decode())
        elif k == "Z":
            out.append("Z:" + body[:1].decode())
        else:
            out.append(k)
    if closed:
        out.append("<closed>")
    return out


def run_script(port, script, user="postgres", dbname="appdb", timeout=10):
    """Log in on port (the server's or the pooler's) and run
    script(client), which sends messages and reads them with
    client.collect(); returns summary() of everything it read."""
    c = RawClient(port, timeout=timeout).startup(user, dbname)
    seen = []
    real_collect = c.collect

    def collect(*a, **kw):
        got = real_collect(*a, **kw)
        seen.extend(got)
        return got

    c.collect = collect
    try:
        script(c)
        return summary(seen, c.closed)
    finally:
        c.close()


def same_as_server(pg, pooler_port, script, before=None, **kw):
    """Run script on PostgreSQL directly and through the pooler; returns
    (server's summary, pooler's summary) for the caller to compare.
    before(), if given, runs before each of the two (to reset a table)."""
    out = []
    for port in (pg.port, pooler_port):
        if before is not None:
            before()
        out.append(run_script(port, script, **kw))
    return tuple(out)


def cancel_request(port, pid, key, timeout=5):
    """Send a CancelRequest for (pid, key) and wait until the peer closes
    the connection (both PostgreSQL and the pooler close it once the
    request is dealt with, without a word).  Returns the bytes received.
    That they are none says nothing about what the cancel did: a test
    checks that on the queries it should or should not have stopped."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk
