"""The admin console: virtual database `apiscale`, for admin_users only.

Columns of SHOW POOLS are checked exactly (exporters depend on them); the
values are checked against what PostgreSQL shows in pg_stat_activity."""

import subprocess
import threading
import time

import psycopg
import pytest

from poolerlib import HOST, PSQL, PgError, RawClient, as_float, as_int, wait_until

# PgBouncer 1.18's columns (test_pgbouncer.py compares them with the real
# one), then apiscale's.
POOLS_COLUMNS = [
    "database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
    "cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle",
    "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode", "pool_size",
    "max_overflow", "sv_overflow", "utilization_pct", "timeouts", "recycled",
]


def begin(conn):
    conn.execute("BEGIN")
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_show_pools_columns(pg, pooler):
    p = pooler()
    with p.connect() as c:
        c.execute("SELECT 1")
        result = p.admin("SHOW POOLS")
    assert result.columns == POOLS_COLUMNS
    rows = [r for r in result if r["database"] == "appdb" and r["user"] == "postgres"]
    assert len(rows) == 1, list(result)


def test_show_pools_values_follow_the_pool(pg, pooler):
    p = pooler(pool_size=3, max_overflow=2, pool_timeout=5)
    a = p.connect()
    b = None
    try:
        begin(a)
        row = p.pool()
        assert as_int(row["cl_active"]) == 1
        assert as_int(row["cl_waiting"]) == 0
        assert as_int(row["sv_active"]) == 1
        assert row["pool_mode"] == "transaction"
        assert as_int(row["pool_size"]) == 3
        assert as_int(row["max_overflow"]) == 2
        assert as_int(row["sv_overflow"]) == 0
        assert 0 < as_float(row["utilization_pct"]) <= 100
        assert p.server_count() == pg.backends()

        b = p.connect()
        begin(b)
        row = p.pool()
        assert as_int(row["cl_active"]) == 2
        assert as_int(row["sv_active"]) == 2
        assert p.server_count() == pg.backends() == 2

        a.execute("COMMIT")
        b.execute("COMMIT")
        row = p.pool()
        assert as_int(row["sv_active"]) == 0
        assert as_int(row["cl_waiting"]) == 0
        assert as_int(row["sv_idle"]) + as_int(row["sv_used"]) == 2
        assert p.server_count() == pg.backends() == 2
    finally:
        a.close()
        if b is not None:
            b.close()


def test_overflow_waiting_and_timeouts_are_counted(pg, pooler):
    p = pooler(pool_size=1, max_overflow=1, pool_timeout=1.5)
    conns = [p.connect() for _ in range(3)]
    done = {}
    try:
        begin(conns[0])
        begin(conns[1])
        row = p.pool()
        assert as_int(row["sv_active"]) == 2
        assert as_int(row["sv_overflow"]) == 1
        assert p.server_count() == pg.backends() == 2

        def wait():
            try:
                conns[2].execute("SELECT 1")
                done["outcome"] = "ok"
            except psycopg.Error as e:
                done["outcome"] = e.sqlstate

        t = threading.Thread(target=wait, daemon=True)
        t.start()
        wait_until(lambda: as_int(p.pool()["cl_waiting"]) == 1, 1, what="cl_waiting == 1")
        time.sleep(1.1)
        row = p.pool()
        assert as_int(row["cl_waiting"]) == 1
        assert as_int(row["maxwait"]) >= 1, row
        t.join(3)
        assert done.get("outcome") == "53300"
        row = p.pool()
        assert as_int(row["timeouts"]) == 1
        assert as_int(row["cl_waiting"]) == 0
    finally:
        for c in conns:
            c.close()


def test_recycled_is_counted(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_recycle=0.3)
    with p.connect() as c:
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        time.sleep(0.6)
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
    assert as_int(p.pool()["recycled"]) >= 1


def test_show_servers_and_clients(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    active, waiting, idle = p.connect(), p.connect(), p.connect()
    try:
        pid = begin(active)
        t = threading.Thread(target=lambda: waiting.execute("SELECT 1"), daemon=True)
        t.start()

        def states():
            rows = [r for r in p.admin("SHOW CLIENTS") if r["database"] == "appdb"]
            return sorted(r["state"] for r in rows) == ["active", "idle", "waiting"] and rows
        rows = wait_until(states, 2, what="SHOW CLIENTS: one active, one waiting, one idle")
        assert {"database", "user", "state"} <= set(rows[0])
        assert all(r["user"] == "postgres" for r in rows)

        servers = p.admin("SHOW SERVERS")
        assert {"database", "user", "state", "backend_pid"} <= set(servers.columns)
        mine = [r for r in servers if r["database"] == "appdb"]
        assert {as_int(r["backend_pid"]) for r in mine} == pg.pids()
        assert [r["state"] for r in mine if as_int(r["backend_pid"]) == pid] == ["active"]

        active.execute("COMMIT")
        t.join(5)
        assert not t.is_alive()
    finally:
        for c in (active, waiting, idle):
            c.close()


def test_show_clients_addr_and_port(pg, pooler):
    """The address and port of each client, as inet_ntop writes them (the
    pooler formats IPv4 itself): octets of one, two and three digits, from
    source addresses anywhere in 127.0.0.0/8, which Linux routes to lo."""
    p = pooler()
    sources = ["127.0.0.1", "127.9.10.99", "127.100.255.0", "127.255.255.254", "127.0.99.100"]
    clients = []
    try:
        for a in sources:
            clients.append(RawClient(p.port, source=(a, 0)).startup("postgres", "appdb"))
        want = {c.sock.getsockname()[:2] for c in clients}
        seen = {(r["addr"], as_int(r["port"])) for r in p.admin("SHOW CLIENTS")
                if r["database"] == "appdb"}
        assert want <= seen, (want, seen)
        assert {a for a, _ in want} == set(sources)
    finally:
        for c in clients:
            c.close()


def test_server_counts_match_pg_stat_activity(pg, pooler):
    p = pooler(pool_size=2, max_overflow=2, pool_timeout=5)
    conns = [p.connect() for _ in range(4)]
    try:
        for c in conns:
            begin(c)
        assert p.server_count() == pg.backends() == 4
        conns[0].execute("COMMIT")
        conns[1].execute("COMMIT")
        wait_until(lambda: p.server_count() == pg.backends(), 3, what="SHOW POOLS == pg_stat_activity")
        for c in conns[2:]:
            c.execute("COMMIT")
        wait_until(lambda: p.server_count() == pg.backends() <= 2, 3,
                   what="SHOW POOLS == pg_stat_activity <= pool_size")
    finally:
        for c in conns:
            c.close()


def test_show_config_databases_stats_version(pg, pooler, pooler_bin):
    p = pooler(pool_size=7, max_overflow=4, pool_timeout=0.5)
    config = p.admin("SHOW CONFIG")
    assert config.columns[:2] == ["key", "value"]
    values = {r["key"]: r["value"] for r in config}
    assert as_int(values["pool_size"]) == 7
    assert as_int(values["max_overflow"]) == 4
    assert as_float(values["pool_timeout"]) == 0.5
    assert values["pool_mode"] == "transaction"

    databases = p.admin("SHOW DATABASES")
    assert any("appdb" in map(str, r.values()) for r in databases), list(databases)

    with p.connect() as c:
        for _ in range(5):
            c.execute("SELECT 1")
    stats = p.admin("SHOW STATS")
    assert "database" in stats.columns
    assert any(r["database"] == "appdb" for r in stats), list(stats)

    version = p.admin("SHOW VERSION")
    assert len(version) == 1
    text = " ".join(str(v) for v in version[0].values())
    assert text.strip()
    out = subprocess.run([pooler_bin, "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0


def test_psql_on_the_admin_console(pg, pooler):
    p = pooler()
    r = subprocess.run([PSQL, "-X", "-h", HOST, "-p", str(p.port), "-U", "postgres", "-d", "apiscale",
                        "-c", "SHOW POOLS"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "cl_waiting" in r.stdout


def test_admin_console_refused_to_non_admin_user(pg, pooler):
    p = pooler(admin_users="postgres")
    with pytest.raises(PgError):
        RawClient(p.port).startup("app", "apiscale").close()
    with pytest.raises(psycopg.OperationalError):
        p.admin("SHOW POOLS", user="app")
    # app is a normal client of appdb all the same.
    with p.connect(user="app") as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "app"


def test_pause_and_resume(pg, pooler):
    p = pooler(pool_timeout=10)
    c = p.connect()
    c.execute("SELECT 1")
    done = threading.Event()
    try:
        p.admin("PAUSE")

        def run():
            c.execute("SELECT 1")
            done.set()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        assert not done.wait(0.7), "a transaction ran while the pooler was paused"
        p.admin("RESUME")
        assert done.wait(3), "the transaction did not run after RESUME"
    finally:
        try:
            p.admin("RESUME")
        except psycopg.Error:
            pass
        c.close()


def test_reload_command(pg, pooler):
    p = pooler(pool_size=2)
    p.write_config(pool_size=5)
    p.admin("RELOAD")
    p.wait_config({"pool_size": 5}, timeout=3)


def test_shutdown_command(pg, pooler):
    p = pooler()
    with p.connect() as c:
        c.execute("SELECT 1")
    try:
        p.admin("SHUTDOWN")
    except psycopg.Error:
        pass  # the console may close before it answers
    assert p.wait_exit(5) is not None, "the pooler still runs after SHUTDOWN"
    wait_until(lambda: pg.backends() == 0, 5, what="servers closed after SHUTDOWN")
