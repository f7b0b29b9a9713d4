"""SCRAM-SHA-256 between clients and the pooler: auth_type = scram-sha-256,
and auth_type = md5 with a SCRAM secret in auth_file.

Real clients (psycopg/libpq, psql, asyncpg, each with its own SCRAM code)
log in with right and wrong passwords; auth_file holds plain passwords,
SCRAM secrets made by the test server, or md5 hashes; unknown users must
look like wrong passwords; the admin console uses the same logins.  A
SCRAM client written here with hashlib (ScramClient) shows each message,
checks the server signature, and sends malformed messages."""

import asyncio
import base64
import hashlib
import hmac
import secrets
import signal
import struct
import subprocess

import psycopg
import pytest
from psycopg import sql

from poolerlib import (DEFAULT_SETTINGS, HOST, PSQL, SECURE_PASSWORD, PgError, RawClient, _parse_fields,
                       free_port, md5_secret, render_config, wait_until)

SCRAM = "scram-sha-256"

# Roles the server gives SCRAM passwords; their pg_authid secrets go into
# auth_file.  The second needs SASLprep: libpq turns the ligature "ﬁ" into
# "fi" before hashing, and so did the server when it made the secret.
SERVER_ROLES = {"scram_kat": "pencil", "scram_utf8": "pässwörd ﬁ"}


@pytest.fixture(scope="module")
def server_secrets(pg):
    """{role: rolpassword} for SERVER_ROLES and "secure", made by the server."""
    with pg.connect(dbname="postgres") as c:
        c.execute("SET password_encryption = 'scram-sha-256'")
        for role, password in SERVER_ROLES.items():
            if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            c.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                                  sql.Literal(password)))
        rows = c.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
                         (list(SERVER_ROLES) + ["secure"],)).fetchall()
    found = dict(rows)
    for role, secret in found.items():
        assert secret.startswith("SCRAM-SHA-256$4096:"), (role, secret)
    assert len(found) == len(SERVER_ROLES) + 1, found
    return found


# ---------------------------------------------------------------------------
# A SCRAM client, message by message
# ---------------------------------------------------------------------------


def startup_packet(user, dbname):
    payload = struct.pack("!I", 196608)
    for key, value in (("user", user), ("database", dbname)):
        payload += key.encode() + b"\0" + value.encode() + b"\0"
    payload += b"\0"
    return struct.pack("!I", len(payload) + 4) + payload


def read_auth(raw):
    """The next AuthenticationRequest as (code, data); raises PgError for an
    ErrorResponse, ConnectionError if the pooler hung up without one."""
    kind, body = raw.read_message()
    if kind == b"E":
        raise PgError(_parse_fields(body))
    assert kind == b"R", (kind, body)
    return struct.unpack("!I", body[:4])[0], body[4:]


def sasl_initial(mechanism, data):
    """SASLInitialResponse; data None sends length -1 (no initial response)."""
    payload = mechanism.encode() + b"\0"
    payload += struct.pack("!i", -1) if data is None else struct.pack("!i", len(data)) + data
    return RawClient.message(b"p", payload)


def sasl_response(data):
    return RawClient.message(b"p", data)


def b64(data):
    return base64.b64encode(data).decode()


class ScramClient:
    """One SCRAM login through the pooler, a step per method, so that a test
    sees every message and can break any of them."""

    def __init__(self, port, user, dbname="appdb"):
        self.user = user
        self.raw = RawClient(port)
        self.raw.send(startup_packet(user, dbname))
        self.nonce = b64(secrets.token_bytes(18))
        self.gs2 = "n,,"

    def mechanisms(self):
        code, data = read_auth(self.raw)
        assert code == 10, f"expected AuthenticationSASL, got code {code}"
        assert data.endswith(b"\0\0"), data
        return [m.decode() for m in data[:-2].split(b"\0")]

    def first(self, gs2="n,,", bare=None, initial=True):
        """Send client-first-message (in SASLInitialResponse, or after an
        empty one when initial is False); returns server-first's attributes."""
        self.gs2 = gs2
        self.bare = bare if bare is not None else f"n=,r={self.nonce}"
        message = (gs2 + self.bare).encode()
        if initial:
            self.raw.send(sasl_initial("SCRAM-SHA-256", message))
        else:
            self.raw.send(sasl_initial("SCRAM-SHA-256", None))
            code, data = read_auth(self.raw)
            assert (code, data) == (11, b""), (code, data)
            self.raw.send(sasl_response(message))
        code, data = read_auth(self.raw)
        assert code == 11, f"expected AuthenticationSASLContinue, got code {code}"
        self.server_first = data.decode()
        attrs = dict(part.split("=", 1) for part in self.server_first.split(","))
        assert list(attrs) == ["r", "s", "i"], self.server_first
        self.combined = attrs["r"]
        self.salt = base64.b64decode(attrs["s"], validate=True)
        self.iterations = int(attrs["i"])
        return attrs

    def final(self, password, cbind=None, nonce=None, proof=None):
        """Send client-final-message; check the server signature and read up
        to ReadyForQuery.  Returns the RawClient, logged in."""
        if cbind is None:
            cbind = b64(self.gs2.encode())
        without_proof = f"c={cbind},r={self.combined if nonce is None else nonce}"
        auth_message = f"{self.bare},{self.server_first},{without_proof}".encode()
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, self.iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        if proof is None:
            proof = b64(bytes(a ^ b for a, b in zip(client_key, signature)))
        self.raw.send(sasl_response(f"{without_proof},p={proof}".encode()))
        code, data = read_auth(self.raw)
        assert code == 12, f"expected AuthenticationSASLFinal, got code {code}"
        # The pooler proves that it knows ServerKey.
        expect = b64(hmac.new(server_key, auth_message, "sha256").digest())
        assert data.decode() == f"v={expect}"
        code, _ = read_auth(self.raw)
        assert code == 0, f"expected AuthenticationOk, got code {code}"
        self.raw.read_until_ready()
        return self.raw

    def close(self):
        self.raw.close()


def scram_login(port, user, password, dbname="appdb", gs2="n,,"):
    client = ScramClient(port, user, dbname)
    assert client.mechanisms() == ["SCRAM-SHA-256"]
    client.first(gs2)
    return client.final(password)


def salt_shown(port, user):
    """The salt the pooler shows user (then hang up)."""
    client = ScramClient(port, user)
    client.mechanisms()
    client.first()
    client.close()
    return client.salt


def psql(port, user, password, *args):
    env = {"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5", "PATH": "/usr/bin:/bin"}
    return subprocess.run([PSQL, "-X", "-At", "-w", "-h", HOST, "-p", str(port), "-U", user,
                           "-d", "appdb", *args], capture_output=True, text=True, timeout=20,
                          env=env, stdin=subprocess.DEVNULL)


def failed_for(user):
    return f'password authentication failed for user "{user}"'


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_plain_password_with_psycopg_psql_and_on_the_wire(pg, pooler):
    p = pooler(auth_type=SCRAM, users={"postgres": "pw-postgres", "app": "pw-app"})
    with p.connect(user="app", password="pw-app") as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "app"
    with pytest.raises(psycopg.OperationalError, match=failed_for("app")):
        p.connect(user="app", password="pw-wrong").close()

    r = psql(p.port, "app", "pw-app", "-c", "SELECT current_user")
    assert r.returncode == 0 and r.stdout.strip() == "app", r.stderr
    r = psql(p.port, "app", "pw-wrong", "-c", "SELECT current_user")
    assert r.returncode != 0 and failed_for("app") in r.stderr, (r.returncode, r.stderr)

    # On the wire: SCRAM-SHA-256 only (no -PLUS), PostgreSQL's defaults for
    # a derived secret, our nonce extended by the pooler's.
    client = ScramClient(p.port, "app")
    assert client.mechanisms() == ["SCRAM-SHA-256"]
    attrs = client.first()
    assert attrs["i"] == "4096" and len(client.salt) == 16
    assert client.combined.startswith(client.nonce) and len(client.combined) >= len(client.nonce) + 16
    raw = client.final("pw-app")
    assert raw.query("SELECT current_user").rows == [("app",)]
    raw.close()
    # A client that could bind channels but thinks we cannot ("y").
    raw = scram_login(p.port, "app", "pw-app", gs2="y,,")
    assert raw.query("SELECT 1").rows == [("1",)]
    raw.close()
    # The keys derived from the plain password are kept: same salt.
    assert salt_shown(p.port, "app") == client.salt

    client = ScramClient(p.port, "app")
    client.mechanisms()
    client.first()
    with pytest.raises(PgError) as exc:
        client.final("pw-wrong")
    assert (exc.value.sqlstate, exc.value.message) == ("28P01", failed_for("app"))
    client.close()
    wait_until(lambda: "SCRAM authentication failed: wrong password" in p.log(), 5,
               what="the reason of the failure in the log")


def test_no_initial_response(pg, pooler):
    # SASLInitialResponse without data: the pooler answers an empty
    # SASLContinue and takes client-first-message from the next message.
    p = pooler(auth_type=SCRAM, users={"app": "pw-app"})
    client = ScramClient(p.port, "app")
    client.mechanisms()
    client.first(initial=False)
    raw = client.final("pw-app")
    assert raw.query("SELECT current_user").rows == [("app",)]
    raw.close()


def test_secret_made_by_the_server(pg, pooler, server_secrets):
    p = pooler(auth_type=SCRAM, users={role: server_secrets[role] for role in SERVER_ROLES})
    with p.connect(user="scram_kat", password="pencil") as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "scram_kat"
    with pytest.raises(psycopg.OperationalError, match=failed_for("scram_kat")):
        p.connect(user="scram_kat", password="pencil!").close()
    r = psql(p.port, "scram_kat", "pencil", "-c", "SELECT current_user")
    assert r.returncode == 0 and r.stdout.strip() == "scram_kat", r.stderr
    r = psql(p.port, "scram_kat", "Pencil", "-c", "SELECT 1")
    assert r.returncode != 0 and failed_for("scram_kat") in r.stderr, r.stderr

    # The pooler shows the secret's own salt and iteration count.
    _, params, _ = server_secrets["scram_kat"].split("$")
    iterations, salt = params.split(":")
    client = ScramClient(p.port, "scram_kat")
    client.mechanisms()
    attrs = client.first()
    assert (attrs["i"], attrs["s"]) == (iterations, salt)
    client.final("pencil").close()

    # A password that SASLprep changes: libpq prepares it as the server did.
    with p.connect(user="scram_utf8", password=SERVER_ROLES["scram_utf8"]) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "scram_utf8"
    with pytest.raises(psycopg.OperationalError, match=failed_for("scram_utf8")):
        p.connect(user="scram_utf8", password="pässwörd").close()


def test_non_ascii_plain_password_is_used_as_given(pg, pooler):
    # No SASLprep of auth_file passwords: one that normalization leaves
    # alone works, with a warning in the log.
    p = pooler(auth_type=SCRAM, users={"app": "pässwörd"})
    with p.connect(user="app", password="pässwörd") as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "app"
    wait_until(lambda: 'password of user "app" is not ASCII' in p.log(), 5,
               what="the SASLprep warning in the log")


def test_asyncpg(pg, pooler, server_secrets):
    asyncpg = pytest.importorskip("asyncpg")
    p = pooler(auth_type=SCRAM, pool_mode="session",
               users={"app": "pw-app", "scram_utf8": server_secrets["scram_utf8"]})

    async def current_user(user, password):
        conn = await asyncio.wait_for(asyncpg.connect(host=HOST, port=p.port, user=user,
                                                      password=password, database="appdb"), 10)
        try:
            return await asyncio.wait_for(conn.fetchval("SELECT current_user"), 10)
        finally:
            await asyncio.wait_for(conn.close(), 10)

    assert asyncio.run(current_user("app", "pw-app")) == "app"
    assert asyncio.run(current_user("scram_utf8", SERVER_ROLES["scram_utf8"])) == "scram_utf8"
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(current_user("app", "pw-wrong"))


def test_md5_hash_cannot_log_in_with_scram(pg, pooler):
    p = pooler(auth_type=SCRAM, users={"app": md5_secret("app", "pw-app")})
    # Even the right password: the md5 hash cannot check a SCRAM proof.
    with pytest.raises(psycopg.OperationalError, match=failed_for("app")):
        p.connect(user="app", password="pw-app").close()
    client = ScramClient(p.port, "app")
    assert client.mechanisms() == ["SCRAM-SHA-256"]
    client.first()
    with pytest.raises(PgError) as exc:
        client.final("pw-app")
    assert (exc.value.sqlstate, exc.value.message) == ("28P01", failed_for("app"))
    client.close()
    # The log says why, for whoever runs the pooler.
    wait_until(lambda: "holds an md5 hash for the user, which SCRAM cannot use" in p.log(), 5,
               what="the reason in the log")


def test_unknown_user_looks_like_a_wrong_password(pg, pooler):
    p = pooler(auth_type=SCRAM, users={"app": "pw-app"})
    seen = {}
    for user, password in (("app", "pw-wrong"), ("ghost", "pw-any")):
        client = ScramClient(p.port, user)
        assert client.mechanisms() == ["SCRAM-SHA-256"]
        attrs = client.first()
        assert attrs["i"] == "4096" and len(client.salt) == 16
        with pytest.raises(PgError) as exc:
            client.final(password)
        client.close()
        seen[user] = (exc.value.sqlstate, exc.value.message.replace(f'"{user}"', '"?"'))
    assert seen["app"] == seen["ghost"] == ("28P01", failed_for("?"))
    # An unknown user's salt stays put, like a real one, and is its own.
    assert salt_shown(p.port, "ghost") == salt_shown(p.port, "ghost")
    assert salt_shown(p.port, "ghost") != salt_shown(p.port, "ghoul")
    with pytest.raises(psycopg.OperationalError, match=failed_for("ghost")):
        p.connect(user="ghost", password="pw-any").close()
    wait_until(lambda: "the user is not in auth_file" in p.log(), 5, what="the reason in the log")


def test_admin_console(pg, pooler, server_secrets):
    p = pooler(auth_type=SCRAM, admin_users="postgres,scram_kat",
               users={"postgres": "pw-admin", "scram_kat": server_secrets["scram_kat"]})
    rows = p.admin("SHOW CONFIG", password="pw-admin")
    assert {r["key"]: r["value"] for r in rows}["auth_type"] == "scram-sha-256"
    assert p.admin("SHOW VERSION", user="scram_kat", password="pencil")
    with pytest.raises(psycopg.OperationalError, match=failed_for("postgres")):
        p.admin("SHOW VERSION", password="pw-wrong")
    with pytest.raises(psycopg.OperationalError, match=failed_for("scram_kat")):
        p.admin("SHOW VERSION", user="scram_kat", password="pw-wrong")


def test_md5_auth_type_switches_to_scram_for_a_scram_secret(pg, pooler, server_secrets):
    # As PostgreSQL does: an md5 method with a SCRAM secret means SCRAM.
    p = pooler(auth_type="md5", users={"scram_kat": server_secrets["scram_kat"],
                                       "app": md5_secret("app", "pw-app")})
    client = ScramClient(p.port, "scram_kat")
    assert client.mechanisms() == ["SCRAM-SHA-256"]
    client.first()
    client.final("pencil").close()
    with p.connect(user="scram_kat", password="pencil") as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "scram_kat"
    with pytest.raises(psycopg.OperationalError, match=failed_for("scram_kat")):
        p.connect(user="scram_kat", password="pw-wrong").close()
    # Other users still get md5 (RawClient answers code 5 only).
    raw = RawClient(p.port).startup("app", "appdb", password="pw-app")
    assert raw.query("SELECT current_user").rows == [("app",)]
    raw.close()


def test_scram_secret_is_no_server_password(pg, pooler, server_secrets):
    # "secure" must give the server its password.  A SCRAM secret in
    # auth_file cannot be that password: it is not passed on...
    users = {"secure": server_secrets["secure"]}
    p = pooler(auth_type=SCRAM, users=users)
    with pytest.raises(psycopg.Error):
        with p.connect(user="secure", password=SECURE_PASSWORD) as c:
            c.execute("SELECT 1")
    wait_until(lambda: "no password supplied" in p.log(), 5,
               what="libpq's complaint that it had no password for the server")
    assert "password authentication failed for user \"secure\"" not in p.log()
    # ...and password= in [databases] is the way.
    p = pooler(auth_type=SCRAM, users=users, databases={
        "appdb": f"host={HOST} port={pg.port} dbname=appdb password={SECURE_PASSWORD}"})
    with p.connect(user="secure", password=SECURE_PASSWORD) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "secure"
    assert pg.backends("appdb", "secure") >= 1


def test_reload_forgets_derived_keys(pg, pooler):
    p = pooler(auth_type=SCRAM, users={"app": "pw-old"})
    with p.connect(user="app", password="pw-old") as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
    p.users["app"] = "pw-new"
    p.write_config()
    p.send_signal(signal.SIGHUP)

    def new_password_works():
        try:
            p.connect(user="app", password="pw-new").close()
            return True
        except psycopg.OperationalError:
            return False

    wait_until(new_password_works, 5, what="the new password to work after SIGHUP")
    with pytest.raises(psycopg.OperationalError, match=failed_for("app")):
        p.connect(user="app", password="pw-old").close()


def test_malformed_exchanges_get_08P01_and_the_pooler_survives(pg, pooler):
    p = pooler(auth_type=SCRAM, users={"app": "pw-app"})

    def refused(what, send_first=None, mechanism="SCRAM-SHA-256", final=None):
        """Run an exchange broken at one point; expect FATAL 08P01 naming what."""
        client = ScramClient(p.port, "app")
        client.mechanisms()
        try:
            with pytest.raises(PgError) as exc:
                if send_first is not None or mechanism != "SCRAM-SHA-256":
                    client.raw.send(send_first if isinstance(send_first, bytes) else
                                    sasl_initial(mechanism, (send_first or "n,,n=,r=abc").encode()))
                    read_auth(client.raw)
                else:
                    client.first()
                    final(client)
            assert exc.value.sqlstate == "08P01", exc.value
            assert what in exc.value.message, exc.value
            assert exc.value.severity == "FATAL"
        finally:
            client.close()

    refused("invalid SASL authentication mechanism", mechanism="SCRAM-SHA-256-PLUS")
    refused("invalid SASL authentication mechanism", mechanism="PLAIN")
    refused("channel binding", send_first="p=tls-server-end-point,,n=,r=abc")
    refused("channel-binding flag", send_first="garbage")
    refused("authorization identities", send_first="n,a=app,n=,r=abc")
    refused("nonce", send_first="n,,n=,r=")
    refused("NUL", send_first="n,,n=\0,r=abc")
    # SASLInitialResponse whose data length overshoots the message
    refused("data length", send_first=RawClient.message(
        b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", 50) + b"n,,n=,r=abc"))
    refused("expected a password message", send_first=RawClient.message(b"Q", b"SELECT 1\0"))
    refused("channel-binding attribute", final=lambda c: c.final("pw-app", cbind="eSws"))
    refused("nonce does not match", final=lambda c: c.final("pw-app", nonce=c.combined + "x"))
    refused("proof", final=lambda c: c.final("pw-app", proof="not-base64!"))
    refused("proof", final=lambda c: c.final("pw-app", proof=b64(b"short")))
    refused("expected attribute \"c\"", final=lambda c: (
        c.raw.send(sasl_response(f"r={c.combined},p=xxxx".encode())), read_auth(c.raw)))

    # Still serving, and the log says why each one was closed.
    assert p.alive()
    raw = scram_login(p.port, "app", "pw-app")
    assert raw.query("SELECT current_user").rows == [("app",)]
    raw.close()
    assert "closing: malformed SCRAM message" in p.log()


def write_config(tmp_path, users_text, **settings):
    users = tmp_path / "users.txt"
    users.write_text(users_text)
    values = dict(DEFAULT_SETTINGS, listen_port=free_port(), auth_file=str(users))
    values.update(settings)
    path = tmp_path / "pooler.ini"
    path.write_text("\n".join(render_config({"appdb": f"host={HOST} port=5432 dbname=appdb"},
                                            values)) + "\n")
    return path


def test_check_accepts_scram_and_locates_a_malformed_secret(pooler_bin, tmp_path, server_secrets):
    good = server_secrets["scram_kat"]
    path = write_config(tmp_path, f'"app" "pw"\n"kat" "{good}"\n', auth_type=SCRAM)
    r = subprocess.run([pooler_bin, "--check", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr

    # A secret with its ServerKey cut short is an error, not a password.
    bad = good[:-8] + "="
    path = write_config(tmp_path, f'"app" "pw"\n"kat" "{bad}"\n', auth_type=SCRAM)
    r = subprocess.run([pooler_bin, "--check", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r.stderr
    assert 'users.txt:2: malformed SCRAM secret for user "kat"' in r.stderr, r.stderr

    # auth_type = scram-sha-256 needs an auth_file.
    path = write_config(tmp_path, "", auth_type=SCRAM, auth_file="")
    r = subprocess.run([pooler_bin, "--check", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "auth_file: needed for auth_type = scram-sha-256" in r.stderr, r.stderr
