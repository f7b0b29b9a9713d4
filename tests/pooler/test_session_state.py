"""Settings that follow clients, and session state that pins them (issue 6).

In transaction pooling a client's transactions run on whichever server is
free.  Its reported parameters and start-up settings must follow it; state
that outlives a transaction (LISTEN, temp tables, ...) keeps it on its
server (session_state = pin) or ends it with 0A000 (session_state = error).
"""


import psycopg
import pytest

from poolerlib import RawClient, wait_until


def backend(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_timezone_and_datestyle_follow_each_client(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    with p.connect(autocommit=True, options="-c TimeZone=Asia/Tokyo -c DateStyle=German") as a, \
            p.connect(autocommit=True) as b:
        b.execute("SET TimeZone = 'UTC'")
        for _ in range(3):
            # one server: every statement of a and b ran on it, in turn
            assert a.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"
            assert b.execute("SHOW TimeZone").fetchone()[0] == "UTC"
            assert a.execute("SHOW DateStyle").fetchone()[0] == "German, DMY"
            assert b.execute("SHOW DateStyle").fetchone()[0].startswith("ISO")
            ts_a = a.execute("SELECT '2026-01-02 03:04:05+00'::timestamptz::text").fetchone()[0]
            ts_b = b.execute("SELECT '2026-01-02 03:04:05+00'::timestamptz::text").fetchone()[0]
            assert ts_a == "02.01.2026 12:04:05 JST", ts_a
            assert ts_b == "2026-01-02 03:04:05+00", ts_b
        assert backend(a) == backend(b)
        # what the driver was told follows its own SET too
        assert a.info.parameter_status("TimeZone") == "Asia/Tokyo"
        assert b.info.parameter_status("TimeZone") == "UTC"
        # a SET rolled back is undone for the client as well
        with b.transaction():
            b.execute("SET TimeZone = 'Europe/Paris'")
        assert b.execute("SHOW TimeZone").fetchone()[0] == "Europe/Paris"
        try:
            with b.transaction():
                b.execute("SET TimeZone = 'America/New_York'")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert b.execute("SHOW TimeZone").fetchone()[0] == "Europe/Paris"
        assert a.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"


def test_application_name_and_startup_settings_follow(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    with p.connect(autocommit=True, application_name="orders-api",
                   options="-c search_path=public,pg_catalog -c work_mem=7MB") as a, \
            p.connect(autocommit=True) as b:
        for _ in range(2):
            assert a.execute("SHOW work_mem").fetchone()[0] == "7MB"
            assert a.execute("SHOW search_path").fetchone()[0] == "public,pg_catalog"
            assert a.execute("SELECT current_setting('application_name')").fetchone()[0] == \
                "orders-api"
            # b never asked for them: the server's defaults, not a's
            assert b.execute("SHOW work_mem").fetchone()[0] == "4MB"
            assert b.execute("SHOW search_path").fetchone()[0] == '"$user", public'
            assert b.execute("SELECT current_setting('application_name')").fetchone()[0] == ""
        # pg_stat_activity shows the client's name while it runs
        with a.transaction():
            pid = backend(a)
            rows = pg.query("SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,))
            assert rows and list(rows[0].values())[0] == "orders-api", rows


def test_statement_timeout_from_options(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0)
    with p.connect(autocommit=True, options="-c statement_timeout=100") as c:
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(2)")
        assert c.execute("SELECT 1").fetchone()[0] == 1


def test_invalid_startup_setting_is_a_clear_error(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    with p.connect(autocommit=True, options="-c TimeZone=Mars/Olympus") as c:
        with pytest.raises(psycopg.OperationalError) as exc:
            c.execute("SELECT 1")
    assert "Mars/Olympus" in str(exc.value)
    # the server went back clean: others are served
    with p.connect(autocommit=True) as c:
        assert c.execute("SELECT 2").fetchone()[0] == 2
    raw = RawClient(p.port)
    with pytest.raises(Exception) as exc:
        raw.startup("postgres", "appdb", options="-d 5")
    assert "unsupported option" in str(exc.value)
    raw.close()


def test_negotiate_protocol_version(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    raw = RawClient(p.port).startup("postgres", "appdb", version=(3 << 16) | 2,
                                    **{"_pq_.compression": "on"})
    try:
        assert raw.negotiated == (0, ["_pq_.compression"])
        assert raw.query("SELECT 1").rows == [("1",)]
    finally:
        raw.close()
    raw = RawClient(p.port).startup("postgres", "appdb")
    assert raw.negotiated is None
    raw.close()


def pinned_case(pg, pooler, setup_sql, check_sql, expect):
    """a runs setup_sql, then b works on the pool's only other server... the
    state stays visible to a in later transactions, never to b."""
    p = pooler(pool_size=2, max_overflow=0)
    with p.connect(autocommit=True) as a, p.connect(autocommit=True) as b:
        pid = backend(a)
        a.execute(setup_sql)
        for _ in range(5):
            assert b.execute("SELECT 1").fetchone()[0] == 1
            assert backend(a) == pid
            assert a.execute(check_sql).fetchone()[0] == expect
    return p


def test_temp_table_pins(pg, pooler):
    p = pinned_case(pg, pooler, "CREATE TEMP TABLE scratch AS SELECT 41 + 1 AS v",
                    "SELECT v FROM scratch", 42)
    # once a left, its server was reset (DISCARD ALL, which the pooler sends
    # after a's connection is gone: wait for it), and nobody sees the table
    wait_until(lambda: pg.query("SELECT count(*) AS n FROM pg_class WHERE relname = 'scratch' "
                                "AND relpersistence = 't'")[0]["n"] == 0, 5,
               what="a's temporary table to be dropped")
    with p.connect(autocommit=True) as c:
        for _ in range(3):
            assert c.execute("SELECT to_regclass('pg_temp.scratch')").fetchone()[0] is None


def test_untracked_set_pins(pg, pooler):
    pinned_case(pg, pooler, "SET work_mem = '9MB'", "SHOW work_mem", "9MB")


def test_sql_prepare_pins(pg, pooler):
    pinned_case(pg, pooler, "PREPARE two AS SELECT 2", "EXECUTE two", 2)


def test_hold_cursor_pins(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0)
    with p.connect(autocommit=True) as a, p.connect(autocommit=True) as b:
        a.execute("DECLARE c CURSOR WITH HOLD FOR SELECT generate_series(1, 5)")
        for i in range(1, 4):
            assert b.execute("SELECT 1").fetchone()[0] == 1
            assert a.execute("FETCH c").fetchone()[0] == i
        a.execute("CLOSE ALL")
        # unpinned: a's next transactions may run anywhere, and do run
        for _ in range(3):
            assert a.execute("SELECT 1").fetchone()[0] == 1


def test_advisory_lock_pins_until_unlock_all(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0)
    with p.connect(autocommit=True) as a, p.connect(autocommit=True) as b:
        pid = backend(a)
        a.execute("SELECT pg_advisory_lock(4242)")
        for _ in range(3):
            assert backend(a) == pid
            assert b.execute("SELECT pg_try_advisory_lock(4242)").fetchone()[0] is False
        a.execute("SELECT pg_advisory_unlock_all()")
        assert b.execute("SELECT pg_try_advisory_lock(4242)").fetchone()[0] is True
        b.execute("SELECT pg_advisory_unlock_all()")


def test_listen_pins_and_notifications_arrive(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0)
    with p.connect(autocommit=True) as a, p.connect(autocommit=True) as b:
        got = []
        a.add_notify_handler(lambda n: got.append(n.payload))
        a.execute("LISTEN jobs")
        for i in range(3):
            b.execute(f"NOTIFY jobs, 'job {i}'")
        # delivered to a's server, passed on while a is idle: psycopg sees
        # them with its next statement
        wait_until(lambda: a.execute("SELECT 1") and len(got) == 3, 5, what="notifications")
        assert got == ["job 0", "job 1", "job 2"]
        a.execute("UNLISTEN *")
        # nothing else pins a: it is released after each transaction
        wait_until(lambda: p.pool()["sv_active"] in (0, "0"), 5, what="a's server released")


def test_pinned_client_leaving_resets_its_server(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    with p.connect(autocommit=True) as a:
        a.execute("LISTEN leftover")
        a.execute("SET work_mem = '11MB'")
    with p.connect(autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0] == 0
        assert c.execute("SHOW work_mem").fetchone()[0] == "4MB"


def test_session_state_error_mode(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, session_state="error")
    with p.connect(autocommit=True) as a:
        with pytest.raises(psycopg.OperationalError) as exc:
            a.execute("LISTEN nope")
    assert "session_state" in str(exc.value) and "LISTEN" in str(exc.value)
    assert "0A000" in p.log() or "LISTEN" in p.log()
    # the server with the state was closed, not handed on
    with p.connect(autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0] == 0
    # SET LOCAL and tracked parameters are not session state
    with p.connect(autocommit=True) as c:
        with c.transaction():
            c.execute("SET LOCAL work_mem = '5MB'")
        c.execute("SET TimeZone = 'UTC'")
        c.execute("SET application_name = 'x'")
        assert c.execute("SELECT 1").fetchone()[0] == 1


def test_discard_all_unpins(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0)
    with p.connect(autocommit=True) as a:
        a.execute("CREATE TEMP TABLE t1 (x int)")
        a.execute("LISTEN l")
        wait_until(lambda: str(p.pool()["sv_active"]) == "1", 5, what="pinned server active")
        a.execute("DISCARD ALL")
        wait_until(lambda: str(p.pool()["sv_active"]) == "0", 5, what="unpinned by DISCARD ALL")
