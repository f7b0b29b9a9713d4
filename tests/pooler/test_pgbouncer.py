"""PgBouncer's admin console: the pooler answers as database `pgbouncer`,
and each SHOW that PgBouncer 1.18 has starts with PgBouncer's columns, in
its order and with its type OIDs, apiscale's own columns after them.

The reference is the real PgBouncer (Debian package pgbouncer), started in
the same run on a free port in front of the same test cluster, so that a
change on either side shows here."""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from poolerlib import (HOST, FakeClock, as_int, free_port, libfaketime, port_accepts,
                       wait_until)

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"

SHOWS = ["POOLS", "STATS", "STATS_TOTALS", "STATS_AVERAGES", "DATABASES", "CLIENTS",
         "SERVERS", "LISTS", "USERS", "CONFIG", "MEM", "VERSION"]

# PostgreSQL type OIDs
INT4, INT8, TEXT, NUMERIC = 23, 20, 25, 1700


@pytest.fixture
def pgbouncer(pg):
    """The real PgBouncer on a free port, appdb on the test cluster.

    PgBouncer refuses to run as root: as root it runs as postgres, in a
    directory of its own that user can reach (pytest's tmp_path is not)."""
    if not Path(PGBOUNCER).exists():
        pytest.fail(f"{PGBOUNCER} is missing: install the Debian package pgbouncer "
                    "(scripts/deps.sh does)")
    work = Path(tempfile.mkdtemp(prefix="apiscale-pgbouncer."))
    port = free_port()
    (work / "users.txt").write_text('"postgres" ""\n')
    (work / "pgbouncer.ini").write_text(f"""[databases]
appdb = host={HOST} port={pg.port} dbname=appdb

[pgbouncer]
listen_addr = {HOST}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {work}/users.txt
admin_users = postgres
pool_mode = transaction
logfile = {work}/pgbouncer.log
pidfile = {work}/pgbouncer.pid
""")
    cmd = [PGBOUNCER, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:
        os.chmod(work, 0o755)
        shutil.chown(work, "postgres", "postgres")
        for f in work.iterdir():
            shutil.chown(f, "postgres", "postgres")
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    out = open(work / "stderr.log", "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: port_accepts(port) or proc.poll() is not None, 10,
                   what="pgbouncer to listen")
        assert proc.poll() is None, (work / "stderr.log").read_text(errors="replace")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        out.close()
        shutil.rmtree(work, ignore_errors=True)


def admin_conn(port, dbname="pgbouncer"):
    return psycopg.connect(host=HOST, port=port, dbname=dbname, user="postgres",
                           autocommit=True, prepare_threshold=None, connect_timeout=5)


def describe(conn, show):
    """(name, type OID) of each column of SHOW show, and its rows."""
    cur = conn.execute(f"SHOW {show}")
    return [(d.name, d.type_code) for d in cur.description], cur.fetchall()


def busy(port):
    """Two clients of appdb, one inside a transaction, so that every SHOW
    has rows (clients, servers, pools, stats)."""
    a = psycopg.connect(host=HOST, port=port, dbname="appdb", user="postgres",
                        autocommit=True, prepare_threshold=None, connect_timeout=5)
    b = psycopg.connect(host=HOST, port=port, dbname="appdb", user="postgres",
                        autocommit=True, prepare_threshold=None, connect_timeout=5)
    a.execute("SELECT 1")
    b.execute("BEGIN")
    b.execute("SELECT 1")
    return a, b


@pytest.mark.deadline(90)
def test_columns_and_types_match_pgbouncer(pg, pooler, pgbouncer):
    p = pooler()
    conns = busy(pgbouncer) + busy(p.port)
    try:
        with admin_conn(pgbouncer) as theirs, admin_conn(p.port) as ours:
            for show in SHOWS:
                want, their_rows = describe(theirs, show)
                got, our_rows = describe(ours, show)
                assert want, f"PgBouncer's SHOW {show} has no columns"
                assert got[:len(want)] == want, (
                    f"SHOW {show}: PgBouncer's columns first\n"
                    f" PgBouncer: {want}\n apiscale:  {got[:len(want)]}")
                # apiscale's own columns come after, under other names
                extra = [n for n, _ in got[len(want):]]
                assert not set(extra) & {n for n, _ in want}, (show, extra)
                if show in ("POOLS", "STATS", "DATABASES", "CLIENTS", "SERVERS", "LISTS",
                            "CONFIG", "MEM", "VERSION"):
                    assert our_rows, f"SHOW {show}: no rows"
    finally:
        for c in conns:
            c.close()


def test_list_and_cache_names_match_pgbouncer(pg, pooler, pgbouncer):
    p = pooler()
    with admin_conn(pgbouncer) as theirs, admin_conn(p.port) as ours:
        for show in ("LISTS", "MEM"):
            want = [r[0] for r in theirs.execute(f"SHOW {show}")]
            got = [r[0] for r in ours.execute(f"SHOW {show}")]
            assert got[:len(want)] == want, show
        # every PgBouncer key we carry (same name) appears in SHOW CONFIG too
        keys = {r[0] for r in ours.execute("SHOW CONFIG")}
        assert {"listen_addr", "listen_port", "auth_type", "pool_mode", "admin_users",
                "stats_period", "max_client_conn"} <= keys
        version = ours.execute("SHOW VERSION").fetchone()[0]
        assert version.startswith("apiscale-pooler ") and "PgBouncer 1.18.0" in version


def test_the_console_answers_as_pgbouncer_and_apiscale(pg, pooler):
    p = pooler(admin_users="postgres")
    for dbname in ("pgbouncer", "apiscale"):
        with admin_conn(p.port, dbname) as c:
            row = c.execute("SHOW LISTS").fetchone()
            assert row == ("databases", 1), row
    # and still only for admin_users
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(host=HOST, port=p.port, dbname="pgbouncer", user="app",
                        connect_timeout=5)
    assert "admin console" in str(e.value)


def test_values_are_typed(pg, pooler):
    """psycopg reads ints as ints and PgBouncer's numeric counters as
    numbers: what an exporter does with them."""
    p = pooler(pool_size=3, max_overflow=1)
    with p.connect() as c:
        for _ in range(4):
            c.execute("SELECT 1")
        with admin_conn(p.port) as a:
            cur = a.execute("SHOW POOLS")
            names = [d.name for d in cur.description]
            row = dict(zip(names, [r for r in cur.fetchall() if r[0] == "appdb"][0]))
            assert row["cl_active"] == 1 and isinstance(row["cl_active"], int)
            assert row["pool_size"] == 3 and row["max_overflow"] == 1
            assert isinstance(row["utilization_pct"], float)
            cur = a.execute("SHOW DATABASES")
            names = [d.name for d in cur.description]
            db = dict(zip(names, [r for r in cur.fetchall() if r[0] == "appdb"][0]))
            assert db["port"] == p.pg.port and db["pool_size"] == 3
            assert db["paused"] == 0 and db["max_overflow"] == 1
            cur = a.execute("SHOW CLIENTS")
            names = [d.name for d in cur.description]
            mine = [dict(zip(names, r)) for r in cur.fetchall() if r[2] == "appdb"]
            assert len(mine) == 1 and mine[0]["type"] == "C"
            assert mine[0]["local_port"] == p.port and mine[0]["admin"] is False


def stats_row(port, show, dbname="appdb"):
    with admin_conn(port) as a:
        cur = a.execute(f"SHOW {show}")
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall() if r[0] == dbname]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.deadline(60)
def test_stats_are_per_database_and_averaged_per_period(pg, pooler):
    p = pooler(stats_period=1, pool_size=2)
    pg_users = ["postgres", "app"]
    for user in pg_users:
        with p.connect(user=user) as c:
            for _ in range(5):
                c.execute("SELECT 1")
    # one row for appdb, whatever the users: PgBouncer's shape
    totals = stats_row(p.port, "STATS_TOTALS")
    assert totals["xact_count"] == 10 and totals["query_count"] == 10, totals
    assert totals["bytes_received"] > 0 and totals["bytes_sent"] > 0
    stats = stats_row(p.port, "STATS")
    assert stats["total_xact_count"] == 10
    assert stats["total_xact_time"] > 0
    # the averages of a period with traffic, then of one without
    with p.connect() as c:
        for _ in range(20):
            c.execute("SELECT 1")
    avg = wait_until(lambda: (r := stats_row(p.port, "STATS_AVERAGES"))["xact_count"] > 0 and r,
                     5, what="STATS_AVERAGES to count the last period")
    assert avg["xact_time"] > 0
    wait_until(lambda: stats_row(p.port, "STATS_AVERAGES")["xact_count"] == 0, 5,
               what="the averages of an idle period")
    assert as_int(stats_row(p.port, "STATS_TOTALS")["xact_count"]) == 30


@pytest.mark.deadline(60)
def test_totals_survive_a_freed_pool(pg, pooler, tmp_path):
    """A pool unused for a while is freed (pool.c); PgBouncer's totals only
    grow, so what it counted stays in its database's row.  The pool's
    minute of grace passes on a fake clock (libfaketime)."""
    library = libfaketime()
    if library is None:
        pytest.fail("libfaketime is not installed (scripts/deps.sh installs it)")
    clock = FakeClock(tmp_path / "faketime", library)
    p = pooler(stats_period=1, env=clock.env())
    with p.connect(user="app") as c:
        for _ in range(3):
            c.execute("SELECT 1")
    assert stats_row(p.port, "STATS_TOTALS")["xact_count"] == 3
    # no client left; its server goes too, then a jump past the grace
    pg.terminate("appdb", "app")
    wait_until(lambda: p.server_count("appdb", "app") == 0, 10, what="the server to go")
    # every admin query wakes the loop: a sweep then finds the pool unused,
    # and after the next jump, unused for longer than its grace
    clock.set("+5m")
    p.admin("SHOW POOLS")
    time.sleep(0.5)
    clock.set("+10m")
    wait_until(lambda: p.pool("appdb", "app") is None, 20, interval=0.5,
               what="the unused pool to be freed")
    assert "pool appdb/app freed" in p.log()
    assert stats_row(p.port, "STATS_TOTALS")["xact_count"] == 3
    assert stats_row(p.port, "STATS")["total_xact_count"] == 3
