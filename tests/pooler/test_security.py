"""Issue 17, security (pooler side; README, "Security"): stats_users on the
admin console, what the HTTP endpoint shows, the auth_file's mode, and
secrets that must never reach the log."""

import json
import time
import urllib.error
import urllib.request

import pytest

from poolerlib import HOST, PgError, RawClient, as_int, free_port, wait_until

# Commands that change something: admin_users only.
WRITE_COMMANDS = ["RELOAD", "PAUSE", "RESUME", "SHUTDOWN", "BAN 127.0.0.1:1", "UNBAN 127.0.0.1:1"]
SHOW_COMMANDS = ["SHOW POOLS", "SHOW STATS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW DATABASES",
                 "SHOW CONFIG", "SHOW HOSTS", "SHOW VERSION"]


def console(p, user):
    return RawClient(p.port).startup(user, "apiscale")


def test_stats_users_may_show_but_not_change(pg, pooler):
    p = pooler(admin_users="postgres", stats_users="app, reporting")
    with p.connect() as c:
        c.execute("SELECT 1")
    stats = console(p, "app")
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
        admin = console(p, "postgres")
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
        console(p, "app")
    assert exc.value.sqlstate == "28000"
    assert "(admin_users, stats_users)" in exc.value.message


def test_neither_list_is_refused_at_login(pg, pooler):
    p = pooler(admin_users="postgres", stats_users="")
    with pytest.raises(PgError) as exc:
        console(p, "app")
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
    with p.connect() as c:
        for i in range(5):
            c.execute(f"SELECT count(*) AS {marker} FROM items WHERE id > %s", (i,))
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
