"""TLS towards clients (client_tls_*) and towards servers (server_tls_*).

Certificates come from the openssl command, made once per module in a
temporary directory: a test CA, a server certificate for localhost and
127.0.0.1 (used by the pooler and by the TLS-only PostgreSQL cluster),
client certificates for the users postgres and app, and a second CA with a
client certificate nobody trusts.

The server-side tests use their own cluster (ssl_pg) whose pg_hba.conf
accepts TCP connections only through TLS (hostssl ... trust, hostnossl ...
reject), so a query that works through the pooler proves that the pooler's
server link is encrypted; pg_stat_ssl says so too.
"""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time

import psycopg
import pytest

from poolerlib import (HOST, PGBENCH, PSQL, PgCluster, RawClient, as_int, login, wait_until)


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}:\n{r.stderr}"


def make_key_and_csr(d, name, cn):
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    os.chmod(d / f"{name}.key", 0o600)


def make_ca(d, name):
    openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "3",
            "-subj", f"/CN=apiscale {name}", cwd=d)


def sign(d, name, ca, extensions=None):
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "3"]
    if extensions:
        (d / f"{name}.ext").write_text(extensions + "\n")
        args += ["-extfile", f"{name}.ext"]
    openssl(*args, cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    make_ca(d, "ca")
    make_key_and_csr(d, "server", "localhost")
    sign(d, "server", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    # A second server certificate, for the reload test.
    make_key_and_csr(d, "server2", "localhost")
    sign(d, "server2", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    make_key_and_csr(d, "client", "postgres")
    sign(d, "client", "ca")
    make_key_and_csr(d, "client_app", "app")
    sign(d, "client_app", "ca")
    make_ca(d, "rogue_ca")
    make_key_and_csr(d, "rogue", "postgres")
    sign(d, "rogue", "rogue_ca")
    # libpq refuses client keys that others may read.
    for key in d.glob("*.key"):
        os.chmod(key, 0o600)
    return d


def client_tls(certs, mode="require", **more):
    """pooler() settings for client TLS in `mode`."""
    settings = dict(client_tls_sslmode=mode,
                    client_tls_key_file=str(certs / "server.key"),
                    client_tls_cert_file=str(certs / "server.crt"))
    if mode in ("verify-ca", "verify-full"):
        settings["client_tls_ca_file"] = str(certs / "ca.crt")
    settings.update(more)
    return settings


@pytest.fixture(scope="module")
def ssl_pg(certs):
    """A cluster that takes TCP connections through TLS only."""
    cluster = PgCluster().init()
    try:
        for name in ("server.crt", "server.key"):
            shutil.copy(certs / name, cluster.data / name)
            if cluster.as_root:
                shutil.chown(cluster.data / name, "postgres", "postgres")
            os.chmod(cluster.data / name, 0o600)
        with open(cluster.data / "postgresql.conf", "a") as f:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        (cluster.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"hostssl all all {HOST}/32 trust\n"
            f"hostnossl all all {HOST}/32 reject\n")
        cluster.restart("fast")
        yield cluster
    finally:
        cluster.destroy()


def ssl_db(ssl_pg):
    return {"ssldb": f"host={HOST} port={ssl_pg.port} dbname=appdb"}


def tls_of_clients(p, database="appdb"):
    return [r["tls"] for r in p.admin("SHOW CLIENTS") if r["database"] == database]


def ssl_request():
    return struct.pack("!II", 8, 80877103)


def startup_packet(user="postgres", database="appdb"):
    payload = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", database)):
        payload += k.encode() + b"\0" + v.encode() + b"\0"
    payload += b"\0"
    return struct.pack("!I", len(payload) + 4) + payload


def recv_all(sock, timeout=10):
    """Everything the peer sends until it closes (or resets)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def error_fields(data):
    """The fields of the first ErrorResponse in data, or None."""
    pos = 0
    while pos + 5 <= len(data):
        kind = data[pos:pos + 1]
        (length,) = struct.unpack("!I", data[pos + 1:pos + 5])
        body = data[pos + 5:pos + 1 + length]
        if kind == b"E":
            return {chr(part[0]): part[1:].decode() for part in body.split(b"\0") if part}
        pos += 1 + length
    return None


def tls_socket(port, ctx=None):
    """A TLS connection to the pooler the way libpq makes one."""
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.sendall(ssl_request())
    assert sock.recv(1) == b"S"
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock, server_hostname="localhost")


def handshake_then_raw(port):
    """A plain socket on which a TLS handshake with the pooler is done: the
    test can then send bytes that are not TLS records."""
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.sendall(ssl_request())
    assert sock.recv(1) == b"S"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            data = sock.recv(65536)
            assert data, "the pooler closed during the handshake"
            incoming.write(data)
    sock.sendall(outgoing.read())
    return sock


def pooler_alive(p):
    assert p.alive(), p.log()[-3000:]
    with p.connect(sslmode="prefer") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


def test_require_and_verify_full(pooler, certs):
    p = pooler(**client_tls(certs, "require"))
    with p.connect(sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
        tls = tls_of_clients(p)
        assert len(tls) == 1 and tls[0].startswith("TLSv1."), tls
    # The certificate names 127.0.0.1 and localhost: libpq checks both.
    for host in (HOST, "localhost"):
        with p.connect(host=host, sslmode="verify-full",
                       sslrootcert=str(certs / "ca.crt")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    r = subprocess.run([PSQL, "-X", "-At", "-c", "SELECT 'via psql'",
                        f"host=localhost port={p.port} dbname=appdb user=postgres "
                        f"sslmode=verify-full sslrootcert={certs / 'ca.crt'}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "via psql", r.stderr
    # The admin console goes through TLS too, and SHOW CLIENTS says so.
    rows = [r for r in p.admin("SHOW CLIENTS") if r["database"] == "apiscale"]
    assert rows and rows[0]["tls"].startswith("TLSv1."), rows
    cols = p.admin("SHOW CLIENTS").columns
    assert cols[:6] == ["type", "user", "database", "state", "addr", "port"]
    assert cols[16] == "tls" and cols[-3:] == ["id", "server_pid", "admin"]


def test_plain_text_refused_when_required(pooler, certs):
    p = pooler(**client_tls(certs, "require"))
    with pytest.raises(psycopg.OperationalError) as e:
        p.connect(sslmode="disable")
    assert "SSL connection is required" in str(e.value)
    raw, failure = login(p.port)
    assert raw is None and failure[0] == "28000", failure
    # A cancel request comes in plain text (libpq never encrypts it).
    with p.connect(sslmode="require") as conn:
        cur = conn.cursor()
        started = time.monotonic()

        def cancel_soon():
            time.sleep(0.5)
            conn.cancel()

        t = threading.Thread(target=cancel_soon)
        t.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            cur.execute("SELECT pg_sleep(20)")
        t.join()
        assert time.monotonic() - started < 15
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_prefer_takes_both(pooler, certs):
    p = pooler(**client_tls(certs, "prefer"))
    with p.connect(sslmode="disable") as plain, p.connect(sslmode="require") as tls:
        assert not plain.pgconn.ssl_in_use and tls.pgconn.ssl_in_use
        assert plain.execute("SELECT 1").fetchone() == tls.execute("SELECT 1").fetchone()
        shown = sorted(tls_of_clients(p))
        assert shown[0] == "" and shown[1].startswith("TLSv1."), shown


def test_disable_answers_no(pooler):
    p = pooler()
    with pytest.raises(psycopg.OperationalError) as e:
        p.connect(sslmode="require")
    assert "does not support SSL" in str(e.value)
    with p.connect(sslmode="prefer") as conn:
        assert not conn.pgconn.ssl_in_use
    # GSSENCRequest is answered N whatever the TLS settings.
    with socket.create_connection((HOST, p.port), timeout=10) as sock:
        sock.sendall(struct.pack("!II", 8, 80877104))
        assert sock.recv(1) == b"N"


def test_verify_ca_needs_a_client_certificate(pooler, certs):
    p = pooler(**client_tls(certs, "verify-ca"))
    with pytest.raises(psycopg.OperationalError):
        p.connect(sslmode="require")
    with pytest.raises(psycopg.OperationalError):
        p.connect(sslmode="require", sslcert=str(certs / "rogue.crt"),
                  sslkey=str(certs / "rogue.key"))
    with p.connect(sslmode="verify-full", sslrootcert=str(certs / "ca.crt"),
                   sslcert=str(certs / "client_app.crt"),
                   sslkey=str(certs / "client_app.key")) as conn:
        # verify-ca checks the chain only, not the name.
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pooler_alive_with_cert(p, certs)
    assert "TLS handshake failed" in p.log()


def pooler_alive_with_cert(p, certs):
    assert p.alive(), p.log()[-3000:]
    with p.connect(sslmode="require", sslcert=str(certs / "client.crt"),
                   sslkey=str(certs / "client.key")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_verify_full_matches_common_name_and_user(pooler, certs):
    p = pooler(**client_tls(certs, "verify-full"))
    cert = dict(sslmode="require", sslcert=str(certs / "client_app.crt"),
                sslkey=str(certs / "client_app.key"))
    with p.connect(user="app", **cert) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app",)
    with pytest.raises(psycopg.OperationalError) as e:
        p.connect(user="postgres", **cert)
    assert "common name is \"app\"" in str(e.value)
    pooler_alive_with_cert(p, certs)


def test_garbage_after_s_does_not_hurt(pooler, certs):
    p = pooler(**client_tls(certs, "require"))
    # Plain text start-up after 'S': not a TLS record, the handshake fails.
    with socket.create_connection((HOST, p.port), timeout=10) as sock:
        sock.sendall(ssl_request())
        assert sock.recv(1) == b"S"
        sock.sendall(startup_packet())
        assert recv_all(sock) == b""
    # A TLS record header with junk, then random bytes.
    with socket.create_connection((HOST, p.port), timeout=10) as sock:
        sock.sendall(ssl_request())
        assert sock.recv(1) == b"S"
        sock.sendall(b"\x16\x03\x01\x00\x20" + os.urandom(32) + os.urandom(4000))
        recv_all(sock)
    # Gone in the middle of the handshake.
    with socket.create_connection((HOST, p.port), timeout=10) as sock:
        sock.sendall(ssl_request())
        assert sock.recv(1) == b"S"
        sock.sendall(b"\x16\x03\x01")
    # A handshake that completes, then a record that does not decrypt.
    sock = handshake_then_raw(p.port)
    sock.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))
    assert len(recv_all(sock)) < 100  # at most an (encrypted) alert
    sock.close()
    # A start-up packet through TLS, then a reset.
    s = tls_socket(p.port)
    s.sendall(startup_packet())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    pooler_alive(p)
    wait_until(lambda: len(p.admin("SHOW CLIENTS")) == 1, 5,
               what="only the admin connection left")
    assert "TLS handshake failed" in p.log()


def test_bytes_after_ssl_request_are_refused(pooler, certs):
    """CVE-2021-23214: a start-up packet sent with the SSLRequest, before
    the handshake, must not be taken as plain text."""
    p = pooler(**client_tls(certs, "require"))
    with socket.create_connection((HOST, p.port), timeout=10) as sock:
        sock.sendall(ssl_request() + startup_packet())
        data = recv_all(sock)
    assert not data.startswith(b"S"), data[:40]
    fields = error_fields(data)
    assert fields and fields["C"] == "08P01", data[:200]
    assert b"R\x00\x00\x00\x08\x00\x00\x00\x00" not in data  # no AuthenticationOk
    pooler_alive(p)


def test_fatal_error_reaches_a_tls_client(pooler, certs):
    """A FATAL sent just before closing (linger: flush, close_notify, FIN)
    arrives through TLS."""
    p = pooler(**client_tls(certs, "require"))
    with pytest.raises(psycopg.OperationalError) as e:
        p.connect(dbname="nosuchdb", sslmode="require")
    assert "does not exist" in str(e.value)
    # The raw view: the ErrorResponse, then close_notify (a clean TLS end).
    s = tls_socket(p.port)
    s.sendall(startup_packet(database="nosuchdb"))
    data = b""
    s.settimeout(10)
    while True:
        try:
            chunk = s.recv(65536)
        except ssl.SSLEOFError:
            pytest.fail("the pooler closed without close_notify")
        if not chunk:
            break
        data += chunk
    s.close()
    assert error_fields(data)["C"] == "3D000"


def test_tls_unix_socket_stays_plain(pooler, certs, tmp_path):
    sockdir = tmp_path / "sock"
    sockdir.mkdir()
    p = pooler(unix_socket_dir=str(sockdir), **client_tls(certs, "require"))
    with psycopg.connect(host=str(sockdir), port=p.port, dbname="appdb", user="postgres",
                         autocommit=True, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def check(pooler_bin, tmp_path, lines):
    path = tmp_path / "tls.ini"
    path.write_text("\n".join(["[databases]", f"appdb = host={HOST} dbname=appdb", "[pooler]",
                               "listen_port = 1", "unix_socket_dir ="] + lines) + "\n")
    r = subprocess.run([pooler_bin, "--check", str(path)], capture_output=True, text=True,
                       timeout=10)
    return r, path


@pytest.mark.parametrize("lines,line,key,text", [
    (["client_tls_sslmode = require"], 6, "client_tls_sslmode", "needs client_tls_key_file"),
    (["client_tls_sslmode = verify-ca", "client_tls_key_file = {d}/server.key",
      "client_tls_cert_file = {d}/server.crt"], 6, "client_tls_sslmode", "needs client_tls_ca_file"),
    (["client_tls_sslmode = require", "client_tls_key_file = {d}/client.key",
      "client_tls_cert_file = {d}/server.crt"], 7, "client_tls_key_file", "does not match"),
    (["client_tls_sslmode = require", "client_tls_key_file = {d}/server.key",
      "client_tls_cert_file = {d}/nosuch.crt"], 8, "client_tls_cert_file", "could not read"),
    (["client_tls_sslmode = require", "client_tls_key_file = {d}/server.key",
      "client_tls_cert_file = {d}/server.key"], 8, "client_tls_cert_file", "could not load certificate"),
    (["client_tls_sslmode = verify-full", "client_tls_key_file = {d}/server.key",
      "client_tls_cert_file = {d}/server.crt", "client_tls_ca_file = {d}/ca.key"], 9,
     "client_tls_ca_file", "could not load CA file"),
    (["client_tls_sslmode = sometimes"], 6, "client_tls_sslmode", "invalid value"),
    (["server_tls_sslmode = verify"], 6, "server_tls_sslmode", "invalid value"),
    (["server_tls_key_file = {d}/client.key"], 6, "server_tls_key_file", "go together"),
    (["server_tls_key_file = {d}/client.key", "server_tls_cert_file = {d}/server.crt"], 6,
     "server_tls_key_file", "does not match"),
    (["server_tls_ca_file = {d}/nosuch.crt"], 6, "server_tls_ca_file", "could not read"),
    (["server_tls_key_file = {d}/open.key", "server_tls_cert_file = {d}/client.crt"], 6,
     "server_tls_key_file", "group or world access"),
])
def test_check_finds_tls_mistakes(pooler_bin, tmp_path, certs, lines, line, key, text):
    shutil.copy(certs / "client.key", certs / "open.key")
    os.chmod(certs / "open.key", 0o644)
    r, path = check(pooler_bin, tmp_path, [x.format(d=certs) for x in lines])
    assert r.returncode == 1, r.stdout
    assert f"{path}:{line}: {key}: " in r.stderr and text in r.stderr, r.stderr


def test_check_accepts_tls(pooler_bin, tmp_path, certs):
    r, _ = check(pooler_bin, tmp_path, [
        "client_tls_sslmode = verify-full", f"client_tls_key_file = {certs}/server.key",
        f"client_tls_cert_file = {certs}/server.crt", f"client_tls_ca_file = {certs}/ca.crt",
        "server_tls_sslmode = verify-ca", f"server_tls_ca_file = {certs}/ca.crt",
        f"server_tls_key_file = {certs}/client.key", f"server_tls_cert_file = {certs}/client.crt"])
    assert r.returncode == 0, r.stderr


def peer_cert(port):
    s = tls_socket(port)
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def cert_der(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def test_reload_swaps_the_certificate_and_keeps_it_on_failure(pooler, certs):
    p = pooler(**client_tls(certs, "require"))
    assert peer_cert(p.port) == cert_der(certs / "server.crt")
    with p.connect(sslmode="require") as kept:
        p.reload(client_tls_key_file=str(certs / "server2.key"),
                 client_tls_cert_file=str(certs / "server2.crt"))
        assert peer_cert(p.port) == cert_der(certs / "server2.crt")
        # A key that does not match: the reload fails, the old context stays.
        p.reload(wait=False, client_tls_key_file=str(certs / "client.key"))
        wait_until(lambda: "does not match" in p.log(), 5, what="the reload error")
        assert peer_cert(p.port) == cert_der(certs / "server2.crt")
        assert p.config_value("client_tls_key_file") == str(certs / "server2.key")
        # Connections made before the reloads carry on.
        assert kept.execute("SELECT 1").fetchone() == (1,)
        # disable: new SSLRequests get N.
        p.reload(client_tls_sslmode="disable", client_tls_key_file=str(certs / "server2.key"))
        with pytest.raises(psycopg.OperationalError):
            p.connect(sslmode="require")
        assert kept.execute("SELECT 2").fetchone() == (2,)
    config = {r["key"]: r for r in p.admin("SHOW CONFIG")}
    for key in ("client_tls_sslmode", "client_tls_key_file", "client_tls_cert_file",
                "client_tls_ca_file", "server_tls_sslmode", "server_tls_ca_file",
                "server_tls_key_file", "server_tls_cert_file"):
        assert key in config, key
    assert config["server_tls_sslmode"]["value"] == "prefer"


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


def pooler_backends_ssl(ssl_pg):
    # the pooler's backends: application_name follows its clients, so they
    # are told apart by their client address and by not being ours
    return [r["ssl"] for r in ssl_pg.query(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
        " WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL"
        " AND a.datname = 'appdb' AND a.pid <> pg_backend_pid()"
        " AND a.application_name NOT IN ('apiscale-pooler health',"
        " 'apiscale-pooler monitor')")]


def test_server_link_is_tls(pooler, ssl_pg, certs):
    p = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="require", pool_size=2)
    with p.connect(dbname="ssldb", sslmode="disable") as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (100,)
        conn.execute("BEGIN")
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone() == (True,)
        conn.execute("COMMIT")
    assert pooler_backends_ssl(ssl_pg) and all(pooler_backends_ssl(ssl_pg))
    servers = [r for r in p.admin("SHOW SERVERS") if r["database"] == "ssldb"]
    assert servers and all(r["tls"].startswith("TLSv1.") for r in servers), servers
    # Servers closed by the pooler (PQfinish through TLS) leave no error behind.
    p.stop()
    wait_until(lambda: not pooler_backends_ssl(ssl_pg), 10, what="the pooler's backends to end")


def test_server_verify_full_and_a_wrong_ca(pooler, ssl_pg, certs):
    p = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="verify-full",
               server_tls_ca_file=str(certs / "ca.crt"),
               server_tls_key_file=str(certs / "client.key"),
               server_tls_cert_file=str(certs / "client.crt"))
    with p.connect(dbname="ssldb") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    p2 = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="verify-ca",
                server_tls_ca_file=str(certs / "rogue_ca.crt"))
    raw, failure = login(p2.port, dbname="ssldb")
    if raw is not None:
        res = raw.query("SELECT 1")
        raw.close()
        failure = (res.error.sqlstate, res.error.message) if res.error else ("ok", None)
    assert failure[0] in ("08001", "08006"), failure
    assert "certificate verify failed" in p2.log()


def test_server_plain_text_is_refused_by_the_tls_only_cluster(pooler, ssl_pg):
    """The control: without TLS the cluster refuses the pooler."""
    p = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="disable")
    raw, failure = login(p.port, dbname="ssldb")
    if raw is not None:
        res = raw.query("SELECT 1")
        raw.close()
        failure = (res.error.sqlstate, res.error.message) if res.error else ("ok", None)
    assert failure[0] in ("08001", "08006"), failure


@pytest.mark.deadline(120)
def test_big_result_and_copy_through_tls_on_both_sides(pooler, ssl_pg, certs):
    p = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="require",
               **client_tls(certs, "require"))
    with p.connect(dbname="ssldb", sslmode="require") as conn:
        # 50 MB in one result.
        total = 0
        with conn.cursor() as cur:
            cur.execute("SELECT repeat('x', 1000) || g FROM generate_series(1, 50000) g")
            for (value,) in cur:
                total += len(value)
        assert total == 50000 * 1000 + sum(len(str(g)) for g in range(1, 50001))
        # A big COPY in: the pooler must throttle the client while the server reads.
        conn.execute("CREATE TABLE IF NOT EXISTS bulk (id int, pad text)")
        conn.execute("TRUNCATE bulk")
        line = "y" * 1000
        with conn.cursor() as cur:
            with cur.copy("COPY bulk FROM STDIN") as copy:
                for i in range(50000):
                    copy.write(f"{i}\t{line}\n")
        assert conn.execute("SELECT count(*), sum(length(pad)) FROM bulk").fetchone() == (
            50000, 50000 * 1000)
        # A big COPY out read slowly at first: the server is throttled.
        got = 0
        with conn.cursor() as cur:
            with cur.copy("COPY bulk TO STDOUT") as copy:
                for i, block in enumerate(copy):
                    if i < 20:
                        time.sleep(0.05)
                    got += len(block)
        assert got > 50000 * 1000
        conn.execute("DROP TABLE bulk")
    assert p.alive()


@pytest.mark.deadline(120)
def test_pgbench_through_tls_on_both_sides(pooler, ssl_pg, certs):
    env = dict(os.environ, PGSSLMODE="require")
    r = subprocess.run([PGBENCH, "-i", "-q", "-s", "1", "-h", HOST, "-p", str(ssl_pg.port),
                        "-U", "postgres", "appdb"], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr
    p = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="require", pool_size=4,
               max_overflow=0, **client_tls(certs, "require"))
    for mode in ("simple", "extended"):
        r = subprocess.run([PGBENCH, "-S", "-n", "-T", "3", "-c", "8", "-j", "2", "-M", mode,
                            "-h", HOST, "-p", str(p.port), "-U", "postgres", "ssldb"],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "number of failed transactions: 0" in r.stdout, r.stdout
        processed = int(next(line.split(":")[1].split("/")[0] for line in r.stdout.splitlines()
                             if "number of transactions actually processed" in line))
        assert processed > 0
    assert all(pooler_backends_ssl(ssl_pg))
    stats = p.pool("ssldb", "postgres")
    assert as_int(stats["sv_active"]) + as_int(stats["sv_idle"]) <= 4


def test_servers_closed_through_tls_end_cleanly(pooler, ssl_pg):
    """A server the pooler closes (here for pool_recycle) is ended by
    PQfinish through the TLS session the Stream used: Terminate and
    close_notify arrive, and the server logs no SSL error or EOF."""
    before = len(ssl_pg.server_log())
    p = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="require", pool_recycle=0.2)
    with p.connect(dbname="ssldb") as conn:
        for _ in range(3):
            conn.execute("SELECT pg_sleep(0.3)")
    wait_until(lambda: not pooler_backends_ssl(ssl_pg), 10, what="the recycled backends to end")
    assert as_int(p.pool("ssldb", "postgres")["recycled"]) >= 2
    new = ssl_pg.server_log()[before:]
    assert "SSL error" not in new and "could not receive" not in new and "EOF" not in new, new


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.deadline(120)
def test_slow_tls_client_makes_the_tls_server_wait(pooler, ssl_pg, certs):
    """A 100 MB result for a TLS client that does not read: the pooler stops
    reading the TLS server (flow control) instead of buffering the result,
    and everything arrives once the client reads."""
    p = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="require",
               **client_tls(certs, "require"))
    s = tls_socket(p.port)
    s.settimeout(30)
    s.sendall(startup_packet(database="ssldb"))
    data = b""
    while b"Z\x00\x00\x00\x05I" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    before = rss_kb(p.pid)
    sql = b"SELECT repeat('x', 1000) FROM generate_series(1, 100000)\0"
    s.sendall(b"Q" + struct.pack("!I", len(sql) + 4) + sql)
    time.sleep(2)
    grown = rss_kb(p.pid) - before
    assert grown < 20 * 1024, f"the pooler grew by {grown} kB while its client did not read"
    total = 0
    tail = b""
    while not tail.endswith(b"Z\x00\x00\x00\x05I"):
        chunk = s.recv(1 << 20)
        assert chunk, "the pooler closed in the middle of the result"
        total += len(chunk)
        tail = (tail + chunk)[-6:]
    s.close()
    # 100,000 DataRows of 1,000 bytes (+ 11 bytes of framing each), and the rest.
    assert total > 100000 * 1011


def test_cancel_reaches_a_tls_server(pooler, ssl_pg, certs):
    p = pooler(databases=ssl_db(ssl_pg), server_tls_sslmode="require",
               **client_tls(certs, "require"))
    with p.connect(dbname="ssldb", sslmode="require") as conn:
        t = threading.Timer(0.5, conn.cancel)
        t.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(20)")
        t.join()
        assert time.monotonic() - started < 15
        assert conn.execute("SELECT 1").fetchone() == (1,)
