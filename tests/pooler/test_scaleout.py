"""Issue 15: scale-out over streaming replicas.

A primary and two standbys made with pg_basebackup, all on loopback.  The
pooler's entries list the three hosts: `app` read-write, `ro` read-only,
`pref` prefer-standby.  Which server a transaction ran on is read from
inet_server_port() and pg_is_in_recovery().
"""

import threading
import time

import psycopg
import pytest

from poolerlib import HOST, PgCluster, wait_until


@pytest.fixture
def cluster3(pg):
    """(primary, standby1, standby2), torn down after the test."""
    primary = PgCluster().init()
    standbys = []
    try:
        standbys = [PgCluster().standby_of(primary) for _ in range(2)]
        with primary.connect(autocommit=True) as c:
            c.execute("CREATE TABLE IF NOT EXISTS hits (id bigserial, at timestamptz DEFAULT now())")
        def replayed(s):
            with s.connect(autocommit=True) as c:
                return c.execute("SELECT to_regclass('hits') IS NOT NULL").fetchone()[0]

        for s in standbys:
            wait_until(lambda s=s: replayed(s), 10, what="the standby to replay the schema")
        yield primary, standbys[0], standbys[1]
    finally:
        for c in standbys + [primary]:
            c.destroy()


def entry(clusters, attrs, **extra):
    hosts = ",".join(HOST for _ in clusters)
    ports = ",".join(str(c.port) for c in clusters)
    more = "".join(f" {k}={v}" for k, v in extra.items())
    return f"host={hosts} port={ports} dbname=appdb target_session_attrs={attrs}{more}"


def scaleout_pooler(pooler, cluster3, **settings):
    primary, s1, s2 = cluster3
    all3 = [primary, s1, s2]
    settings.setdefault("health_check_interval", 0.5)
    settings.setdefault("pool_timeout", 3)
    p = pooler(databases={"app": entry(all3, "read-write"),
                          "ro": entry(all3, "read-only"),
                          "pref": entry(all3, "prefer-standby")},
               **settings)
    wait_until(lambda: all(r["role"] != "unknown" for r in p.admin("SHOW HOSTS")), 10,
               what="every host checked")
    return p


def where(c):
    port, standby = c.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
    return port, standby


def hold(p, dbname, n):
    """n connections each inside a transaction: where each one runs."""
    conns = [p.connect(dbname=dbname, autocommit=True) for _ in range(n)]
    ports = []
    for c in conns:
        c.execute("BEGIN")
        ports.append(where(c))
    return conns, ports


def release(conns):
    for c in conns:
        c.execute("COMMIT")
        c.close()


def test_reads_spread_by_least_connections_writes_stay_on_the_primary(cluster3, pooler):
    primary, s1, s2 = cluster3
    p = scaleout_pooler(pooler, cluster3, pool_size=2, max_overflow=0)
    conns, places = hold(p, "ro", 4)
    try:
        assert all(standby for _, standby in places), places
        ports = sorted(port for port, _ in places)
        assert ports == sorted([s1.port, s1.port, s2.port, s2.port]), places
        # pool_size per host: two standbys, four servers, the fifth waits
        with p.connect(dbname="ro", autocommit=True) as extra:
            with pytest.raises(psycopg.Error) as exc:
                extra.execute("SELECT 1")
            assert exc.value.sqlstate == "53300"
    finally:
        release(conns)
    with p.connect(dbname="app", autocommit=True) as w:
        for _ in range(5):
            assert where(w) == (primary.port, False)
        w.execute("INSERT INTO hits DEFAULT VALUES")
    hosts = {(r["database"], r["port"]): r for r in p.admin("SHOW HOSTS")}
    assert hosts[("app", str(primary.port))]["role"] == "primary"
    assert hosts[("app", str(primary.port))]["eligible"] == "t"
    assert hosts[("app", str(s1.port))]["eligible"] == "f"
    assert hosts[("ro", str(s1.port))]["role"] == "standby"
    assert hosts[("ro", str(primary.port))]["eligible"] == "f"


def test_prefer_standby_falls_back_to_the_primary(cluster3, pooler):
    primary, s1, s2 = cluster3
    p = scaleout_pooler(pooler, cluster3)
    with p.connect(dbname="pref", autocommit=True) as c:
        assert where(c)[1] is True
        p.admin(f"BAN {HOST}:{s1.port}")
        p.admin(f"BAN {HOST}:{s2.port}")
        wait_until(lambda: where(c) == (primary.port, False), 5, what="the primary, standbys banned")
        p.admin(f"UNBAN {HOST}:{s2.port}")
        wait_until(lambda: where(c) == (s2.port, True), 5, what="back to the unbanned standby")
    with pytest.raises(psycopg.Error) as exc:
        p.admin("BAN nowhere:1")
    assert exc.value.sqlstate == "42704" and "nowhere:1" in str(exc.value)


@pytest.mark.deadline(120)
def test_replica_killed_under_load_and_back(cluster3, pooler):
    primary, s1, s2 = cluster3
    p = scaleout_pooler(pooler, cluster3, pool_size=3, max_overflow=0)
    stop = threading.Event()
    results = []  # (monotonic time, port or SQLSTATE)
    lock = threading.Lock()

    def worker():
        c = None
        while not stop.is_set():
            try:
                if c is None:
                    c = p.connect(dbname="ro", autocommit=True)
                port, _ = where(c)
                with lock:
                    results.append((time.monotonic(), port))
            except psycopg.Error as e:
                with lock:
                    results.append((time.monotonic(), e.sqlstate or "closed"))
                if c is not None:
                    c.close()
                c = None
            time.sleep(0.01)
        if c is not None:
            c.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: {r[1] for r in results} >= {s1.port, s2.port}, 10,
                   what="reads on both standbys")
        killed_at = time.monotonic()
        s1.stop("immediate")
        wait_until(lambda: any(r["port"] == str(s1.port) and r["state"] == "down"
                               for r in p.admin("SHOW HOSTS")), 5, what="s1 down")
        time.sleep(1.5)
        with lock:
            after = [r for r in results if r[0] > killed_at + 1.0]
        assert after and all(r[1] == s2.port for r in after), after[-10:]
        s1.start()
        wait_until(lambda: any(r[0] > time.monotonic() - 2 and r[1] == s1.port
                               for r in list(results)), 15, what="s1 used again")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    errors = [r for r in results if not isinstance(r[1], int)]
    # only transactions that were running on s1 when it died may fail
    assert all(r[0] < killed_at + 1.0 for r in errors), errors
    assert len(errors) <= 4, errors


@pytest.mark.deadline(120)
def test_lagging_replica_is_skipped_until_it_catches_up(cluster3, pooler):
    primary, s1, s2 = cluster3
    p = scaleout_pooler(pooler, cluster3, max_replica_lag=1)
    with s1.connect(autocommit=True) as c:
        c.execute("SELECT pg_wal_replay_pause()")
    stop = threading.Event()

    def writes():
        with primary.connect(autocommit=True) as w:
            while not stop.is_set():
                w.execute("INSERT INTO hits DEFAULT VALUES")
                time.sleep(0.05)

    t = threading.Thread(target=writes, daemon=True)
    t.start()
    try:
        def s1_row():
            return next(r for r in p.admin("SHOW HOSTS")
                        if r["database"] == "ro" and r["port"] == str(s1.port))
        wait_until(lambda: s1_row()["eligible"] == "f", 10, what="s1 skipped for its lag")
        row = s1_row()
        # skipped for lag > 1 s, shown to one decimal: 1.04 s reads "1.0"
        assert row["state"] == "up" and float(row["lag_s"]) >= 1, row
        for _ in range(10):
            with p.connect(dbname="ro", autocommit=True) as c:
                assert where(c) == (s2.port, True)
        with s1.connect(autocommit=True) as c:
            c.execute("SELECT pg_wal_replay_resume()")
        wait_until(lambda: s1_row()["eligible"] == "t", 10, what="s1 back once caught up")
    finally:
        stop.set()
        t.join(10)
    assert "replay lag" in p.log() and "over max_replica_lag" in p.log()


@pytest.mark.deadline(120)
def test_primary_killed_and_a_standby_promoted(cluster3, pooler):
    primary, s1, s2 = cluster3
    p = scaleout_pooler(pooler, cluster3, health_check_interval=1, pool_timeout=10)
    with p.connect(dbname="app", autocommit=True) as c:
        assert where(c) == (primary.port, False)
    primary.stop("immediate")
    s1.promote()
    promoted_at = time.monotonic()

    def writes_work():
        try:
            with p.connect(dbname="app", autocommit=True) as c:
                c.execute("INSERT INTO hits DEFAULT VALUES")
                return where(c)
        except psycopg.Error:
            return None

    assert wait_until(writes_work, 15, interval=0.2, what="writes on the new primary") == (s1.port, False)
    assert time.monotonic() - promoted_at < 1 + 5
    assert "is now primary" in p.log()


@pytest.mark.deadline(90)
def test_two_primaries_pause_writes_and_say_so(cluster3, pooler):
    primary, s1, s2 = cluster3
    p = scaleout_pooler(pooler, cluster3, pool_timeout=1)
    s1.promote()
    wait_until(lambda: "hosts say they are the primary: writes wait" in p.log(), 10, what="the loud log line")
    with p.connect(dbname="app", autocommit=True) as c:
        with pytest.raises(psycopg.Error) as exc:
            c.execute("SELECT 1")
        assert exc.value.sqlstate == "53300"
    # reads still work, on the standby left
    with p.connect(dbname="ro", autocommit=True) as c:
        assert where(c) == (s2.port, True)


def test_per_database_and_per_user_settings(pg, pooler):
    p = pooler(databases={"small": f"host={HOST} port={pg.port} dbname=appdb pool_size=1 "
                                   "max_overflow=0 pool_timeout=0.3"},
               sections={"users": {"app": "pool_size=2 max_overflow=0 pool_timeout=0.3"}},
               pool_size=5, max_overflow=5)
    with p.connect(dbname="small", autocommit=True) as a, \
            p.connect(dbname="small", autocommit=True) as b:
        a.execute("BEGIN")
        a.execute("SELECT 1")
        with pytest.raises(psycopg.Error) as exc:
            b.execute("SELECT 1")
        assert exc.value.diag.message_primary == (
            "pool limit of size 1 overflow 0 reached, connection timed out, timeout 0.30")
        a.execute("COMMIT")
    row = p.pool("small", "postgres")
    assert row["pool_size"] in (1, "1") and row["max_overflow"] in (0, "0")
    # [users] over [pooler]: app gets two servers, the third waits
    conns = [p.connect(user="app", autocommit=True) for _ in range(3)]
    try:
        for c in conns[:2]:
            c.execute("BEGIN")
            c.execute("SELECT 1")
        with pytest.raises(psycopg.Error) as exc:
            conns[2].execute("SELECT 1")
        assert exc.value.sqlstate == "53300"
    finally:
        for c in conns:
            c.close()
    assert p.pool("appdb", "app")["pool_size"] in (2, "2")
