"""apiscale-pooler --from-pgbouncer: a pgbouncer.ini in, the equivalent
configuration out (stdout), a warning per key not carried (stderr), and
--check accepts what it wrote.  The converted configuration then runs,
and the admin console shows the settings PgBouncer had."""

import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from poolerlib import HOST, BINARY, free_port, md5_secret

DEBIAN_INI = Path("/etc/pgbouncer/pgbouncer.ini")


def convert(ini):
    return subprocess.run([str(BINARY), "--from-pgbouncer", str(ini)], capture_output=True,
                          text=True, timeout=20)


def check(path):
    return subprocess.run([str(BINARY), "--check", str(path)], capture_output=True, text=True,
                          timeout=20)


def converted(tmp_path, text, name="pgbouncer.ini"):
    """Convert text; returns (path of the output, stderr)."""
    ini = tmp_path / name
    ini.write_text(text)
    r = convert(ini)
    assert r.returncode == 0, r.stderr
    out = tmp_path / (name + ".apiscale.ini")
    out.write_text(r.stdout)
    c = check(out)
    assert c.returncode == 0, f"--check refused the output:\n{c.stdout}{c.stderr}\n{r.stdout}"
    return out, r.stderr


def pooler_keys(text):
    """The [pooler] keys of a converted file."""
    keys, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith(";") and section == "pooler":
            k, _, v = line.partition("=")
            keys[k.strip()] = v.strip()
    return keys


def test_debian_default_file(pooler_bin, tmp_path):
    """The pgbouncer.ini the Debian package installs."""
    if not DEBIAN_INI.exists():
        pytest.fail(f"{DEBIAN_INI} is missing: install the Debian package pgbouncer")
    out, warnings = converted(tmp_path, DEBIAN_INI.read_text())
    keys = pooler_keys(out.read_text())
    # PgBouncer's defaults where apiscale's differ are written out
    assert keys["auth_type"] == "md5" and keys["pool_mode"] == "session"
    assert keys["pool_size"] == "20" and keys["max_overflow"] == "0"
    assert keys["pool_timeout"] == "120" and keys["pool_recycle"] == "3600"
    assert keys["max_client_conn"] == "100"
    assert keys["listen_addr"] == "127.0.0.1" and "localhost" in warnings


PRODUCTION = """\
;; a production-like pgbouncer.ini
[databases]
orders = host=10.1.2.3 port=5433 dbname=orders_prod pool_size=40 reserve_pool=10
reports = host=10.1.2.4 dbname=reports user=report_reader password='s3 cret' pool_mode=session connect_query='SELECT 1' max_db_connections=50
legacy = host=10.1.2.5 dbname=legacy pool_mode=statement
* = host=10.1.2.9

[users]
batch = pool_mode=session max_user_connections=5

[peers]
1 = host=10.1.2.10 port=6432
2 = host=10.1.2.11 port=6432

[pgbouncer]
listen_addr = *
listen_port = 6543
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {auth_file}
auth_hba_file = /etc/pgbouncer/hba.conf
admin_users = postgres, ops
stats_users = monitor
pool_mode = transaction
default_pool_size = 25
min_pool_size = 5
reserve_pool_size = 5
reserve_pool_timeout = 3
query_wait_timeout = 30
server_lifetime = 600
server_idle_timeout = 300
server_reset_query = DISCARD ALL
server_check_query = select 1
ignore_startup_parameters = extra_float_digits
max_client_conn = 5000
client_tls_sslmode = require
client_tls_key_file = {key}
client_tls_cert_file = {cert}
client_tls_protocols = secure
server_tls_sslmode = verify-ca
server_tls_ca_file = {cert}
so_reuseport = 1
peer_id = 1
stats_period = 30
server_round_robin = 1
log_connections = 0
verbose = 1
tcp_keepalive = 1
tcp_keepidle = 60
tcp_keepintvl = 10
tcp_keepcnt = 5
tcp_user_timeout = 30000
tcp_defer_accept = 0
idle_transaction_timeout = 20
query_timeout = 300
client_idle_timeout = 3600
%include /etc/pgbouncer/pgbouncer-other.ini
"""


@pytest.fixture
def tls_files(tmp_path):
    key, cert = tmp_path / "server.key", tmp_path / "server.crt"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    key.chmod(0o600)
    return key, cert


def test_production_file(pooler_bin, tmp_path, tls_files):
    key, cert = tls_files
    auth = tmp_path / "userlist.txt"
    auth.write_text('"postgres" "pw"\n"ops" "pw2"\n')
    out, warnings = converted(tmp_path, PRODUCTION.format(auth_file=auth, key=key, cert=cert))
    text = out.read_text()
    keys = pooler_keys(text)
    assert keys["pool_size"] == "25" and keys["max_overflow"] == "5"
    assert keys["pool_timeout"] == "30" and keys["pool_recycle"] == "600"
    assert keys["auth_type"] == "scram-sha-256" and keys["auth_file"] == str(auth)
    assert keys["listen_addr"] == "0.0.0.0" and keys["listen_port"] == "6543"
    assert keys["unix_socket_dir"] == ""
    assert keys["client_tls_sslmode"] == "require" and keys["server_tls_sslmode"] == "verify-ca"
    assert keys["so_reuseport"] == "1" and keys["peer_id"] == "1"
    assert keys["stats_period"] == "30" and keys["log_level"] == "debug"
    assert keys["max_client_conn"] == "5000" and keys["pool_mode"] == "transaction"
    # the comment on how reserve_pool_size and max_overflow differ
    assert "reserve_pool_timeout (3 s)" in text and "QueuePool" in text
    # per-database and per-user settings, and the peers
    assert "orders = host=10.1.2.3 port=5433 dbname=orders_prod pool_size=40 max_overflow=10" in text
    assert ("reports = host=10.1.2.4 dbname=reports user=report_reader password='s3 cret' "
            "pool_mode=session") in text
    assert "legacy = host=10.1.2.5 dbname=legacy pool_mode=transaction" in text
    assert "batch = pool_mode=session" in text
    assert "1 = host=10.1.2.10 port=6432" in text and "2 = host=10.1.2.11 port=6432" in text
    # a warning names every key that was not carried
    for key in ("auth_hba_file", "min_pool_size", "reserve_pool_timeout",
                "server_idle_timeout", "server_reset_query", "server_check_query",
                "ignore_startup_parameters", "client_tls_protocols", "log_connections",
                "connect_query", "max_db_connections",
                "max_user_connections", "%include", "fallback database", "statement"):
        assert key in warnings, f"no warning about {key}:\n{warnings}"
    # PgBouncer's names and meanings (issue 17): carried as they are
    assert keys["stats_users"] == "monitor" and keys["tcp_keepalive"] == "1"
    assert keys["idle_transaction_timeout"] == "20" and keys["query_timeout"] == "300"
    assert keys["client_idle_timeout"] == "3600" and keys["tcp_keepidle"] == "60"
    assert keys["tcp_keepintvl"] == "10" and keys["tcp_keepcnt"] == "5"
    assert keys["tcp_user_timeout"] == "30000"
    assert keys["tcp_defer_accept"] == "0"  # PgBouncer's boolean, off
    assert keys["pool_use_lifo"] == "off"  # server_round_robin = 1
    for carried in ("default_pool_size", "server_lifetime", "query_wait_timeout",
                    "so_reuseport", "client_tls_key_file", "stats_users",
                    "idle_transaction_timeout", "query_timeout", "client_idle_timeout",
                    "tcp_keepalive", "tcp_keepidle", "tcp_keepintvl", "tcp_keepcnt",
                    "tcp_user_timeout", "server_round_robin", "tcp_defer_accept"):
        assert f"] {carried}:" not in warnings, f"{carried} carried but warned:\n{warnings}"


def test_converted_file_runs_with_pgbouncers_settings(pg, pooler_bin, tmp_path):
    """The output of a conversion, started: clients get through, and the
    admin console shows PgBouncer's settings, per database and per user."""
    port = free_port()
    auth = tmp_path / "userlist.txt"
    auth.write_text(f'"postgres" "{md5_secret("postgres", "pw")}"\n')
    out, _ = converted(tmp_path, f"""\
[databases]
appdb = host={HOST} port={pg.port} dbname=appdb pool_size=3 reserve_pool=1
[users]
postgres = pool_mode=transaction
[pgbouncer]
listen_addr = {HOST}
listen_port = {port}
unix_socket_dir =
auth_type = md5
auth_file = {auth}
admin_users = postgres
pool_mode = session
default_pool_size = 7
query_wait_timeout = 12
server_lifetime = 900
""")
    log = open(tmp_path / "pooler.log", "wb")
    proc = subprocess.Popen([pooler_bin, str(out)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        kw = dict(host=HOST, port=port, user="postgres", password="pw", autocommit=True,
                  prepare_threshold=None, connect_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = psycopg.connect(dbname="appdb", **kw)
                break
            except psycopg.OperationalError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    (tmp_path / "pooler.log").read_text()
                time.sleep(0.1)
        with conn:
            assert conn.execute("SELECT count(*) FROM items").fetchone() == (100,)
        with psycopg.connect(dbname="pgbouncer", **kw) as admin:
            config = {r[0]: r[1] for r in admin.execute("SHOW CONFIG")}
            assert config["pool_size"] == "7" and config["pool_mode"] == "session"
            assert config["pool_timeout"] == "12" and config["pool_recycle"] == "900"
            assert config["max_overflow"] == "0" and config["auth_type"] == "md5"
            pools = admin.execute("SHOW POOLS")
            names = [d.name for d in pools.description]
            row = dict(zip(names, [r for r in pools.fetchall() if r[0] == "appdb"][0]))
            # database over [pooler], user over database
            assert (row["pool_size"], row["max_overflow"], row["pool_mode"]) == \
                (3, 1, "transaction")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_what_cannot_be_carried_safely_fails(pooler_bin, tmp_path):
    """auth_query without auth_file: writing trust would let anyone in."""
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text("[databases]\nappdb = host=127.0.0.1\n[pgbouncer]\nlisten_port = 6432\n"
                   "auth_type = md5\nauth_query = SELECT usename, passwd FROM pg_shadow "
                   "WHERE usename=$1\nauth_user = pgbouncer\n")
    r = convert(ini)
    assert r.returncode == 1 and r.stdout == ""
    assert "needs an auth_file" in r.stderr
    missing = convert(tmp_path / "nope.ini")
    assert missing.returncode == 1 and "could not open" in missing.stderr


def test_indented_lines_are_lines(pooler_bin, tmp_path):
    """PgBouncer ignores the blanks that start a line; inih alone reads such
    a line as a new value of the key above: listen_port became
    "default_pool_size = 11", then "auth_type = trust", and the conversion
    failed for want of an auth_file (auth_type left at md5)."""
    out, warnings = converted(tmp_path, "[databases]\n  appdb = host=10.0.0.9 dbname=app\n"
                                        "[pgbouncer]\n  listen_port = 6544\n"
                                        "\tdefault_pool_size = 11\n  auth_type = trust\n")
    text = out.read_text()
    keys = pooler_keys(text)
    assert keys["listen_port"] == "6544" and keys["pool_size"] == "11", text
    assert "appdb = host=10.0.0.9 dbname=app" in text, text
