"""Issue 17, security (pooler side; README, "Security"): stats_users on the
admin console, what the HTTP endpoint shows, the auth_file's mode, and
secrets that must never reach the log."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import psycopg
import pytest

from poolerlib import (HOST, SECURE_PASSWORD, PgError, RawClient, as_int, free_port, md5_secret,
                       wait_until)

# Commands that change something: admin_users only.
WRITE_COMMANDS = ["RELOAD", "PAUSE", "RESUME", "SHUTDOWN", "BAN 127.0.0.1:1", "UNBAN 127.0.0.1:1"]
SHOW_COMMANDS = ["SHOW POOLS", "SHOW STATS", "SHOW STATS_TOTALS", "SHOW STATS_AVERAGES",
                 "SHOW CLIENTS", "SHOW SERVERS", "SHOW DATABASES", "SHOW LISTS", "SHOW USERS",
                 "SHOW CONFIG", "SHOW MEM", "SHOW HOSTS", "SHOW VERSION"]


def console(p, user, dbname="apiscale"):
    return RawClient(p.port).startup(user, dbname)


# The console answers as "apiscale" and as "pgbouncer" (PgBouncer's tools,
# which monitoring agents log into as a stats user): the same rights.
@pytest.mark.parametrize("dbname", ["apiscale", "pgbouncer"])
def test_stats_users_may_show_but_not_change(pg, pooler, dbname):
    p = pooler(admin_users="postgres", stats_users="app, reporting")
    with p.connect() as c:
        c.execute("SELECT 1")
    stats = console(p, "app", dbname)
    try:
        for cmd in SHOW_COMMANDS:
            res = stats.query(cmd)
            assert res.errors == [] and res.tags and res.tags[0].startswith("SHOW"), (cmd, res.messages)
        for cmd in WRITE_COMMANDS:
            res = stats.query(cmd)
            assert [e.sqlstate for e in res.errors] == ["42501"], (cmd, res.messages)
            verb = cmd.split()[0]
            assert res.errors[0].message == (
                f'permission denied: {verb} needs a user in admin_users; user "app" is in '
                "stats_users, which may run SHOW commands only")
            assert res.status == "I"
        # Nothing of it happened: not paused, not shut down.
        assert p.alive()
        with p.connect() as c:
            assert c.execute("SELECT 2").fetchone()[0] == 2
        # An admin may.
        admin = console(p, "postgres", dbname)
        for cmd in ("PAUSE", "RESUME", "RELOAD"):
            res = admin.query(cmd)
            assert res.errors == [] and res.tags == [cmd], res.messages
        admin.close()

        # Taken out of stats_users by a reload: its open console says so.
        p.reload(stats_users="reporting")
        res = stats.query("SHOW POOLS")
        assert [e.sqlstate for e in res.errors] == ["42501"], res.messages
        assert "no longer in admin_users or stats_users" in res.errors[0].message
    finally:
        stats.close()
    with pytest.raises(PgError) as exc:
        console(p, "app", dbname)
    assert exc.value.sqlstate == "28000"
    assert "(admin_users, stats_users)" in exc.value.message


@pytest.mark.parametrize("dbname", ["apiscale", "pgbouncer"])
def test_neither_list_is_refused_at_login(pg, pooler, dbname):
    p = pooler(admin_users="postgres", stats_users="")
    with pytest.raises(PgError) as exc:
        console(p, "app", dbname)
    assert exc.value.sqlstate == "28000"
    assert as_int(p.config_value("pool_size")) == 20
    assert p.config_value("stats_users") == ""


# ---------------------------------------------------------------------------
# The HTTP endpoint
# ---------------------------------------------------------------------------


def http_body(port, path):
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as r:
            return r.read().decode()
    except urllib.error.HTTPError as e:
        return e.read().decode()


def fetched_status(port):
    doc = json.loads(http_body(port, "/api/status"))
    dbs = doc["databases"]
    return dbs and dbs[0]["fetched_at"] and dbs[0]["top_statements"] and doc


@pytest.mark.deadline(90)
def test_http_shows_statement_texts_only_when_told(pg_apiscale, pooler):
    port = free_port()
    p = pooler(http_listen=f"{HOST}:{port}", http_metrics_databases="appdb",
               databases={"appdb": f"host={HOST} port={pg_apiscale.port} dbname=appdb"})
    marker = f"marker_{int(time.time())}"
    # among the ten with the most time, whatever other tests ran there
    with pg_apiscale.connect() as c:
        c.execute("SELECT apiscale.reset()")
    with p.connect() as c:
        for i in range(5):
            c.execute(f"SELECT count(*) AS {marker}, pg_sleep(0.1) FROM items WHERE id > %s", (i,))
    doc = wait_until(lambda: fetched_status(port), 25, interval=0.5, what="a fetch")
    assert doc["show_statements"] is False
    statements = doc["databases"][0]["top_statements"]
    assert all(q["query"] is None and q["queryid"] and q["calls"] for q in statements), statements
    assert marker not in json.dumps(doc)
    assert marker not in http_body(port, "/metrics")

    p.reload(http_show_statements="on")
    wait_until(lambda: marker in http_body(port, "/api/status"), 25, interval=0.5,
               what="statement texts once http_show_statements = on")
    # Turned off again: gone at once, not at the next fetch.
    p.reload(http_show_statements="off")
    doc = json.loads(http_body(port, "/api/status"))
    assert marker not in json.dumps(doc) and doc["show_statements"] is False


SECRETS = ["pw-Zq8x-client", "pw-Kd3v-server", "md5" + "0123456789abcdef" * 2]


def test_http_and_console_show_no_secret(pg, pooler):
    port = free_port()
    p = pooler(http_listen=f"{HOST}:{port}", auth_type="md5", http_show_statements="on",
               users={"postgres": SECRETS[0], "app": SECRETS[2]},
               databases={"appdb": f"host={HOST} port={pg.port} dbname=appdb password={SECRETS[1]}"})
    with p.connect(password=SECRETS[0]) as c:
        c.execute("SELECT 1")
    seen = []
    for path in ("/metrics", "/api/status", "/", "/health", "/nothing"):
        seen.append(http_body(port, path))
    for cmd in SHOW_COMMANDS:
        rows = p.admin(cmd, password=SECRETS[0])
        seen.append(json.dumps([list(map(str, r.values())) for r in rows]))
    text = "\n".join(seen)
    assert "appdb" in text and "postgres" in text  # the pages were read
    for secret in SECRETS:
        assert secret not in text, secret


# ---------------------------------------------------------------------------
# auth_file and the log
# ---------------------------------------------------------------------------

MODE_WARNING = "can be read by other users"


def reload_and_wait(p, **settings):
    """p.reload for a pooler whose console wants a password: rewrite, SIGHUP,
    and wait for the log to say it reloaded."""
    before = p.log().count("configuration reloaded")
    p.write_config(**settings)
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: p.log().count("configuration reloaded") > before, 5, what="the reload")


def test_auth_file_readable_by_others_warns(pg, pooler, pooler_bin, tmp_path):
    old = os.umask(0o022)  # users.txt is written 0644, as by a careless admin
    try:
        p = pooler(auth_type="md5", users={"postgres": "pw"})
    finally:
        os.umask(old)
    # at start
    wait_until(lambda: f'auth_file "{p.users_path}" {MODE_WARNING} (mode 0644)' in p.log(), 5,
               what="the warning at start")
    assert "chmod 600" in p.log()
    # each reload looks again
    os.chmod(p.users_path, 0o600)
    reload_and_wait(p, pool_size=3)
    assert p.log().count(MODE_WARNING) == 1
    os.chmod(p.users_path, 0o640)
    reload_and_wait(p, pool_size=4)
    assert p.log().count(MODE_WARNING) == 2
    # --check says so too, and still passes
    for mode, warns in ((0o604, True), (0o600, False)):
        os.chmod(p.users_path, mode)
        r = subprocess.run([pooler_bin, "--check", str(p.config_path)], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        assert (MODE_WARNING in r.stderr) == warns, r.stderr


def scram_parts(secret):
    """The secret and each of its parts (salt, StoredKey, ServerKey)."""
    head, keys = secret.split("$", 1)[1].split("$")
    salt = head.split(":")[1]
    stored, server = keys.split(":")
    return [secret, salt, stored, server]


@pytest.mark.deadline(90)
def test_no_password_or_secret_reaches_the_log(pg, pooler, tmp_path):
    """Logins with md5, SCRAM from a plain password and from a SCRAM secret,
    wrong passwords, server logins with a password, a reload that changes
    the auth file: the log, at debug level, holds none of the secrets."""
    (secure_secret,) = [r["rolpassword"] for r in
                        pg.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'secure'")]
    p1, p2, p3 = "Pw1-k2Jd93-plain", "Pw2-Hs83n1-md5", "Pw3-Lq02vz-reloaded"
    md5_app = md5_secret("app", p2)
    logfile = tmp_path / "debug.log"
    p = pooler(auth_type="md5", log_level="debug", logfile=str(logfile),
               users={"postgres": p1, "app": md5_app, "secure": secure_secret},
               databases={"securedb": f"host={HOST} port={pg.port} dbname=appdb user=secure "
                                      f"password={SECURE_PASSWORD}"})
    # md5 from a plain password and from a hash; SCRAM from a secret (under md5)
    for user, password, db in (("postgres", p1, "appdb"), ("app", p2, "appdb"),
                               ("secure", SECURE_PASSWORD, "securedb")):
        with p.connect(user=user, password=password, dbname=db) as c:
            assert c.execute("SELECT current_user").fetchone()[0] == user
    for user, db in (("postgres", "appdb"), ("secure", "securedb"), ("nobody", "appdb")):
        with pytest.raises(psycopg.OperationalError):
            p.connect(user=user, password="wrong-" + p1, dbname=db)

    # A reload: new password, SCRAM for everyone.
    p.users["postgres"] = p3
    reload_and_wait(p, auth_type="scram-sha-256")
    with p.connect(user="postgres", password=p3) as c:
        c.execute("SELECT 1")
    with p.connect(user="secure", password=SECURE_PASSWORD, dbname="securedb") as c:
        c.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        p.connect(user="app", password=p2)  # an md5 hash cannot do SCRAM
    with pytest.raises(psycopg.OperationalError):
        p.connect(user="postgres", password=p1)  # the old one

    text = logfile.read_text() + p.stderr_path.read_text()
    assert "DEBUG:" in text and "logged in" in text and "configuration reloaded" in text
    assert "md5 hash for the user" in text  # why app failed, said without the hash
    secrets = [p1, p2, p3, SECURE_PASSWORD, md5_app, md5_secret("postgres", p1),
               md5_secret("postgres", p3)] + scram_parts(secure_secret)
    for secret in secrets:
        assert secret not in text, f"{secret!r} is in the log"
