"""Pool semantics (SQLAlchemy QueuePool), observed from outside.

Each setting is checked by what PostgreSQL itself shows (backends in
pg_stat_activity, backend pids) while clients hold transactions open:
lazy opening, pool_size + max_overflow, pool_timeout with its exact
error, FIFO hand-over to waiters, overflow given back, pool_recycle, and
session mode."""

import threading
import time
import uuid

import psycopg
import pytest

from faultlib import StallProxy
from poolerlib import HOST, FakeClock, RawClient, as_int, libfaketime, wait_until


def begin(conn):
    """Start a transaction that holds a server: BEGIN, then a statement."""
    conn.execute("BEGIN")
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def close_all(conns):
    for c in conns:
        try:
            c.close()
        except Exception:
            pass


def test_no_server_before_a_client_needs_one(pg, pooler):
    p = pooler(pool_size=5, max_overflow=5)
    time.sleep(0.3)
    assert pg.backends("appdb", None) == 0, "the pooler opened a server with no client at all"

    c1 = p.connect()
    try:
        time.sleep(0.3)
        # At the first login the pooler may open ONE server to learn the
        # server's ParameterStatus values; nothing more.
        assert pg.backends() <= 1
        assert c1.execute("SELECT 1").fetchone()[0] == 1
        assert pg.backends() == 1

        # Clients that run one transaction after the other share one idle
        # server: none is opened while an idle one exists.
        others = [p.connect() for _ in range(4)]
        try:
            assert pg.backends() == 1, "logging in must not open servers"
            pids = set()
            for c in [c1] + others:
                pids.add(begin(c))
                c.execute("COMMIT")
            assert len(pids) == 1, f"sequential transactions used several servers: {pids}"
            assert pg.backends() == 1
        finally:
            close_all(others)
    finally:
        c1.close()


def test_pool_size_plus_overflow_then_timeout_error(pg, pooler):
    p = pooler(pool_size=2, max_overflow=3, pool_timeout=0.5)
    holders = [p.connect() for _ in range(5)]
    sixth = p.connect()
    try:
        pids = {begin(c) for c in holders}
        assert len(pids) == 5
        assert pg.backends() == 5
        assert pg.pids() == pids

        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as exc:
            sixth.execute("SELECT 1")
        waited = time.monotonic() - t0
        err = exc.value
        assert err.sqlstate == "53300", f"{err.sqlstate}: {err}"
        assert err.diag.message_primary == (
            "pool limit of size 2 overflow 3 reached, connection timed out, timeout 0.50")
        assert err.diag.severity_nonlocalized in (None, "ERROR")
        assert 0.45 <= waited < 3, f"the error came after {waited:.2f}s, pool_timeout is 0.5"
        assert pg.backends() == 5, "a 6th server was opened past pool_size + max_overflow"

        # The connection stays usable: ReadyForQuery came after the error.
        assert not sixth.closed
        assert sixth.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        holders[0].execute("COMMIT")
        assert sixth.execute("SELECT 1").fetchone()[0] == 1

        # The burst ends: the overflow servers are given back.
        for c in holders[1:]:
            c.execute("COMMIT")
        wait_until(lambda: pg.backends() <= 2, 3, what="backends back to <= pool_size (2)")
        time.sleep(0.2)
        assert 1 <= pg.backends() <= 2
        # The clients are still connected and work with the remaining servers.
        for c in holders + [sixth]:
            assert c.execute("SELECT 2").fetchone()[0] == 2
        assert pg.backends() <= 2
    finally:
        close_all(holders + [sixth])


def test_timeout_error_is_followed_by_ready_for_query(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=0.3)
    holder = p.connect()
    raw = RawClient(p.port).startup("postgres", "appdb")
    try:
        begin(holder)
        res = raw.query("SELECT 1")
        assert res.error is not None and res.error.sqlstate == "53300", res.messages
        assert res.error.message == "pool limit of size 1 overflow 0 reached, connection timed out, timeout 0.30"
        assert res.error.severity == "ERROR"
        assert res.status == "I"
        holder.execute("COMMIT")
        res = raw.query("SELECT 41 + 1")
        assert res.error is None and res.rows == [("42",)], res.messages
    finally:
        raw.close()
        holder.close()


def test_unlimited_overflow(pg, pooler):
    """max_overflow = -1: no cap.  Each of 60 clients holding a transaction
    gets a server of its own (PostgreSQL allows 300 here); more than the
    default max_overflow of 30, so a pooler that read -1 as the default, or
    capped it anywhere below 59, fails with 53300 after pool_timeout.  Once
    released, the overflow goes back down to pool_size."""
    n = 60
    p = pooler(pool_size=1, max_overflow=-1, pool_timeout=5)
    conns = []
    try:
        for _ in range(n):
            conns.append(p.connect())
        pids = set()
        for i, c in enumerate(conns):
            try:
                pids.add(begin(c))
            except psycopg.Error as e:
                raise AssertionError(f"client {i + 1} of {n} got no server with max_overflow -1:"
                                     f" {e.sqlstate} {e}") from None
        assert len(pids) == n
        assert pg.backends() == n
        assert as_int(p.pool()["sv_overflow"]) == n - 1
        for c in conns:
            c.execute("COMMIT")
        wait_until(lambda: pg.backends() <= 1, 10, what="overflow servers closed (pool_size 1)")
    finally:
        close_all(conns)


def test_released_server_goes_to_the_waiter(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    holder, waiter = p.connect(), p.connect()
    got = {}
    try:
        pid = begin(holder)

        def wait():
            t0 = time.monotonic()
            got["pid"] = waiter.execute("SELECT pg_backend_pid()").fetchone()[0]
            got["at"] = time.monotonic()
            got["waited"] = got["at"] - t0

        t = threading.Thread(target=wait, daemon=True)
        t.start()
        time.sleep(0.4)
        assert "pid" not in got, "the waiter was served while the only server was in a transaction"
        committed = time.monotonic()
        holder.execute("COMMIT")
        t.join(5)
        assert not t.is_alive(), "the waiter was not served after the holder committed"
        assert got["pid"] == pid
        assert got["at"] - committed < 1.0
        assert pg.backends() == 1
    finally:
        close_all([holder, waiter])


@pytest.mark.deadline(60)
def test_one_login_at_a_time_per_host(pg, pooler):
    """Waiting clients get new servers one login after another on a host,
    as PgBouncer opens them (a backend's start is the server's CPU; logins
    started together all finish late together).  A stalled path to the
    server holds the one login in progress: no second one starts beside it,
    and once the path is back every waiter is served."""
    px = StallProxy(pg.port)
    holder = None
    raws = []
    try:
        p = pooler(databases={"appdb": f"host={HOST} port={px.port} dbname=appdb"},
                   pool_size=5, max_overflow=0, pool_timeout=30, server_connect_timeout=30,
                   health_check_interval=60)
        holder = p.connect()
        begin(holder)  # the pool's one server, held
        raws = [p.raw(timeout=20) for _ in range(4)]
        px.stall()
        for r in raws:
            r.send(RawClient.query_msg("SELECT 1"))

        def pool():
            return next(r for r in p.admin("SHOW POOLS") if r["database"] == "appdb")

        wait_until(lambda: as_int(pool()["cl_waiting"]) == 4, 5, what="4 clients waiting")
        wait_until(lambda: as_int(pool()["sv_login"]) >= 1, 5, what="a login started")
        time.sleep(0.5)  # time enough for more logins to start, if they would
        row = pool()
        assert as_int(row["sv_login"]) == 1, row
        assert as_int(row["cl_waiting"]) == 4, row

        px.resume()
        for r in raws:
            got = r.collect(ready=1, timeout=15)
            assert [k for k, _ in got if k == b"E"] == [], got
            assert (b"D", b"\x00\x01\x00\x00\x00\x011") in got, got
        assert as_int(pool()["cl_waiting"]) == 0
    finally:
        close_all(raws + ([holder] if holder else []))
        px.close()


@pytest.mark.deadline(60)
@pytest.mark.parametrize("policy", ["disable", "least-connections"])
def test_one_login_at_a_time_and_the_hosts_policy(pg, pooler, policy):
    """Two hosts (two proxies to the same server), the first's one login
    held at its stalled proxy.  With load_balance_hosts = disable the
    waiters wait for that login (the first host with room is the only
    choice); with least-connections the second host logs in beside it and
    serves them."""
    first, second = StallProxy(pg.port), StallProxy(pg.port)
    holder = None
    raws = []
    try:
        p = pooler(databases={"appdb": f"host={HOST},{HOST} port={first.port},{second.port} dbname=appdb"},
                   pool_size=5, max_overflow=0, pool_timeout=30, server_connect_timeout=30,
                   health_check_interval=60, load_balance_hosts=policy)
        holder = p.connect()
        begin(holder)  # on the first host: both are empty, it comes first

        def logins():
            return {r["port"]: as_int(r["sv_login"]) for r in p.admin("SHOW HOSTS")
                    if r["database"] == "appdb"}

        assert as_int(next(r for r in p.admin("SHOW HOSTS") if r["port"] == str(first.port))["sv_active"]) == 1
        raws = [p.raw(timeout=20) for _ in range(4)]
        first.stall()
        for r in raws:
            r.send(RawClient.query_msg("SELECT 1"))
        if policy == "disable":
            wait_until(lambda: logins()[str(first.port)] == 1, 5, what="a login on the first host")
            time.sleep(0.5)
            assert logins() == {str(first.port): 1, str(second.port): 0}
            assert all(r.is_quiet(0.05) for r in raws), "a waiter was served beside the first host"
            first.resume()
        for r in raws:
            got = r.collect(ready=1, timeout=15)
            assert [k for k, _ in got if k == b"E"] == [], got
        if policy != "disable":
            assert logins()[str(first.port)] == 1, "the first host's login should still hang"
    finally:
        close_all(raws + ([holder] if holder else []))
        first.close()
        second.close()


def test_waiters_are_served_first_in_first_out(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=10)
    holder = p.connect()
    waiters = [p.connect() for _ in range(3)]
    tag = uuid.uuid4().hex
    errors = []
    try:
        begin(holder)

        def run(i):
            try:
                # The single server runs these one after the other, so the
                # order of the ids is the order the waiters were served in.
                waiters[i].execute("INSERT INTO events (tag, who) VALUES (%s, %s)", (tag, i))
            except Exception as e:  # reported below
                errors.append(e)

        threads = []
        for i in range(3):
            t = threading.Thread(target=run, args=(i,), daemon=True)
            t.start()
            threads.append(t)
            time.sleep(0.2)
        holder.execute("COMMIT")
        for t in threads:
            t.join(10)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads)
        with pg.connect() as c:
            order = [r[0] for r in c.execute("SELECT who FROM events WHERE tag = %s ORDER BY id", (tag,))]
        assert order == [0, 1, 2]
    finally:
        close_all([holder] + waiters)


def test_pool_use_lifo_picks_the_server_released_last(pg, pooler):
    """pool_use_lifo = on (the default) hands out the idle server released
    last, so one client's transactions keep one backend; off (reloaded)
    hands out the one idle longest, QueuePool's FIFO, so they go round all
    three."""
    p = pooler(pool_size=3, max_overflow=0, pool_timeout=10)
    conns = [p.connect() for _ in range(3)]

    def three_servers():
        """Release three servers in a known order: pids[0] first."""
        pids = [begin(c) for c in conns]
        assert len(set(pids)) == 3
        for c in conns:
            c.execute("COMMIT")
        return pids

    def next_three():
        return [conns[0].execute("SELECT pg_backend_pid()").fetchone()[0] for _ in range(3)]

    try:
        pids = three_servers()
        assert next_three() == [pids[2]] * 3
        p.reload(pool_use_lifo="off")
        pids = three_servers()
        assert next_three() == pids
    finally:
        close_all(conns)


def test_idle_clients_hold_no_server(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=10)
    conns = [p.connect() for _ in range(20)]
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], pg.backends())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    errors = []

    def work(c):
        try:
            for _ in range(10):
                c.execute("BEGIN")
                c.execute("SELECT count(*) FROM items")
                c.execute("COMMIT")
        except Exception as e:
            errors.append(e)

    try:
        threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in conns]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors[:3]
        stop.set()
        sampler.join(5)
        assert 1 <= peak[0] <= 2, f"{peak[0]} backends for 20 clients with pool_size 2, max_overflow 0"
        assert all(not c.closed for c in conns)
    finally:
        stop.set()
        close_all(conns)


def test_recycle_replaces_old_servers_between_transactions(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0, pool_recycle=1)
    c = p.connect()
    try:
        pid1 = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] == pid1
        time.sleep(1.3)
        pid2 = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert pid2 != pid1, "a server older than pool_recycle was handed out again"
        wait_until(lambda: pid1 not in pg.pids(), 3, what=f"recycled backend {pid1} to be closed")
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] == pid2
    finally:
        c.close()


def test_recycle_never_closes_a_server_mid_transaction(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0, pool_recycle=0.5)
    c = p.connect()
    try:
        pid1 = begin(c)
        time.sleep(1.2)
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] == pid1
        assert pid1 in pg.pids()
        c.execute("COMMIT")
        # Released older than pool_recycle: closed, never reused.
        pid2 = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert pid2 != pid1
        wait_until(lambda: pid1 not in pg.pids(), 3, what=f"recycled backend {pid1} to be closed")
    finally:
        c.close()


def _pid(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_recycle_minus_one_never_recycles(pg, pooler, tmp_path):
    """pool_recycle = -1 means never (apiscale-pooler.ini, as QueuePool's
    -1).  "Never" cannot be waited for, so two poolers run under a fake
    clock (libfaketime, CLOCK_MONOTONIC included) that jumps two hours on
    between two transactions: the one with pool_recycle = 3600 closes its
    server then (which shows that the jump reached the pooler), the one with
    -1 keeps its server and counts nothing recycled.  A pooler that read
    -1 as the default 1800, or as any age under two hours, fails."""
    library = libfaketime()
    if library is None:
        pytest.skip("libfaketime is not installed (scripts/deps.sh installs it)")
    clock = FakeClock(tmp_path / "faketime", library)
    # A health check in flight when the clock jumps would time out and take
    # the host down: the jump waits for each pooler's first check, and the
    # next one is an hour away.
    hour = pooler(pool_size=1, max_overflow=0, pool_recycle=3600, env=clock.env(),
                  health_check_interval=3600)
    never = pooler(pool_size=1, max_overflow=0, pool_recycle=-1, env=clock.env(),
                   health_check_interval=3600)
    for p in (hour, never):
        wait_until(lambda: all(r["last_check"] and r["state"] == "up"
                               for r in p.admin("SHOW HOSTS")), 10,
                   what="the first health check done")
    with hour.connect() as ch, never.connect() as cn:
        old_h, old_n = _pid(ch), _pid(cn)
        assert (_pid(ch), _pid(cn)) == (old_h, old_n), "a young server was not reused"
        clock.set("+2h")
        assert _pid(ch) != old_h, \
            "the fake clock did not move: pool_recycle = 3600 reused a server two hours old"
        assert _pid(cn) == old_n, "pool_recycle = -1 recycled a server two hours old"
        assert as_int(hour.pool()["recycled"]) == 1
        assert as_int(never.pool()["recycled"]) == 0
    wait_until(lambda: old_h not in pg.pids(), 10, what=f"recycled backend {old_h} to be closed")
    assert old_n in pg.pids(), "pool_recycle = -1 closed its idle server"


def test_session_mode_keeps_one_server_per_client(pg, pooler):
    p = pooler(pool_mode="session", pool_size=1, max_overflow=0, pool_timeout=0.5)
    c1, c2 = p.connect(), p.connect()
    try:
        pid = c1.execute("SELECT pg_backend_pid()").fetchone()[0]
        for _ in range(3):
            assert begin(c1) == pid
            c1.execute("COMMIT")
            assert c1.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        # Session state survives between transactions, as on a direct connection.
        c1.execute("SET application_name = 'session-mode-test'")
        assert c1.execute("SHOW application_name").fetchone()[0] == "session-mode-test"

        # c1 is idle but keeps its server: c2 waits and times out.
        with pytest.raises(psycopg.Error) as exc:
            c2.execute("SELECT 1")
        assert exc.value.sqlstate == "53300"
        c1.close()
        pid2 = wait_until(lambda: _try_pid(c2), 5, what="c2 to get the server c1 gave back")
        assert pid2 == pid, "c1's server was not handed on to c2"
        assert pg.backends() == 1
    finally:
        close_all([c1, c2])


# What a session leaves behind, as the next user of its backend would see
# it: one row, so that the before and after compare as a whole.
SESSION_VIEW = """
SELECT pg_backend_pid() AS pid,
       current_user AS role,
       current_setting('work_mem') AS work_mem,
       coalesce(current_setting('myapp.tenant', true), '') AS tenant,
       (SELECT count(*) FROM pg_prepared_statements) AS prepared,
       (SELECT count(*) FROM pg_cursors) AS cursors,
       (SELECT count(*) FROM pg_class
         WHERE relnamespace = pg_my_temp_schema()) AS temp_relations,
       (SELECT count(*) FROM pg_listening_channels()) AS listening,
       (SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks
"""


def _session_view(conn):
    cur = conn.execute(SESSION_VIEW)
    return dict(zip([d.name for d in cur.description], cur.fetchone()))


def test_session_mode_resets_the_server_before_the_next_client(pg, pooler):
    """docs/pooler.md, "Never a dirty server": in session mode a clean server is
    reset with DISCARD ALL before reuse.  The next client of the server
    gets the same backend (it is reused, not closed) and sees none of the
    previous client's settings, role, prepared statements, cursors,
    temporary tables, LISTENs or advisory locks."""
    p = pooler(pool_mode="session", pool_size=1, max_overflow=0, pool_timeout=5)
    with pg.connect() as direct:
        fresh = _session_view(direct)
    a = p.connect()
    try:
        for sql in ("SET work_mem = '9MB'",
                    "SET myapp.tenant = 'a'",
                    "PREPARE a_stmt AS SELECT 1",
                    "CREATE TEMP TABLE a_scratch (x int)",
                    "LISTEN a_channel",
                    "SELECT pg_advisory_lock(4711)",
                    "BEGIN",
                    "DECLARE a_cursor CURSOR WITH HOLD FOR SELECT 1",
                    "COMMIT",
                    "SET ROLE app"):
            a.execute(sql)
        left = _session_view(a)
    finally:
        a.close()
    # The state is really there, so that its absence below means something.
    assert left == dict(pid=left["pid"], role="app", work_mem="9MB", tenant="a", prepared=1,
                        cursors=1, temp_relations=1, listening=1, advisory_locks=1), left

    with p.connect() as b:
        after = _session_view(b)
    assert after["pid"] == left["pid"], "the server was closed instead of reset and reused"
    assert after == dict(fresh, pid=left["pid"], tenant=""), \
        f"the next client of the server sees the previous session's state: {after}"


def _try_pid(conn):
    try:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    except psycopg.Error as e:
        if e.sqlstate == "53300":
            return None
        raise


def test_pools_are_per_database_and_user(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=0.3,
               databases={"alias": f"host=127.0.0.1 port={pg.port} dbname=appdb"})
    a, b, c = p.connect(), p.connect(user="app"), p.connect(dbname="alias")
    try:
        pid_a = begin(a)
        # Another user, or another [databases] entry, has a pool of its own:
        # each gets a server while a holds its pool's only one.
        pid_b = begin(b)
        assert b.execute("SELECT current_user").fetchone()[0] == "app"
        pid_c = begin(c)
        assert c.execute("SELECT current_database()").fetchone()[0] == "appdb"
        assert len({pid_a, pid_b, pid_c}) == 3
        assert pg.backends("appdb", "postgres") == 2
        assert pg.backends("appdb", "app") == 1
        pools = {(r["database"], r["user"]) for r in p.admin("SHOW POOLS")}
        assert {("appdb", "postgres"), ("appdb", "app"), ("alias", "postgres")} <= pools
        # ...and its own limit: a second postgres client on appdb waits.
        with p.connect() as d:
            with pytest.raises(psycopg.Error) as exc:
                d.execute("SELECT 1")
            assert exc.value.sqlstate == "53300"
    finally:
        close_all([a, b, c])
