"""Issue 17: a server the network lost, and TCP keepalives on both sides
(tcp_keepalive, tcp_keepidle, tcp_keepintvl, tcp_keepcnt, tcp_user_timeout;
README, "Faults and abuse").

A StallProxy (faultlib) stands between the pooler and PostgreSQL:
- stalled, it forwards nothing and closes nothing, as a partition looks to
  the pooler; a request in flight is then ended by query_timeout, and a
  request too big for the stalled window by tcp_user_timeout;
- vanished, its connections are forgotten without a FIN or a RST (as when
  the server's host goes down and comes back): the pooler's idle server
  connections are only found out by keepalive probes, which draw a RST.
(A peer that answers nothing at all, keepalive probes included, takes a
packet filter to imitate; the options that handle it are checked on the
pooler's sockets themselves.)"""

import time

import pytest

from faultlib import StallProxy, pidfd_getfd_problem, process_sockets, socket_options, tcp_repair_problem
from poolerlib import HOST, RawClient, as_int, wait_until


@pytest.fixture
def proxy(pg):
    made = []

    def factory(**kw):
        px = StallProxy(pg.port, **kw)
        made.append(px)
        return px

    yield factory
    for px in made:
        px.close()


def through(px, pooler, **settings):
    """A pooler whose appdb goes through the proxy; health checks go there
    too, but seldom (they must not be what finds the fault)."""
    settings.setdefault("health_check_interval", 60)
    return pooler(databases={"appdb": f"host={HOST} port={px.port} dbname=appdb"}, **settings)


def fatal_code(raw, timeout):
    got = raw.collect(ready=1, timeout=timeout)
    assert raw.closed, got
    codes = [dict((p[:1], p[1:]) for p in body.split(b"\0") if p).get(b"C") for kind, body in got
             if kind == b"E"]
    return codes[0].decode() if codes else None


def server_ids(p):
    return {r["id"] for r in p.admin("SHOW SERVERS") if r["database"] == "appdb"}


@pytest.mark.deadline(60)
def test_query_in_flight_through_a_partition_ends_with_query_timeout(pg, pooler, proxy):
    px = proxy()
    p = through(px, pooler, pool_size=1, max_overflow=0, query_timeout=1, pool_timeout=10)
    raw = p.raw(timeout=20)
    try:
        assert raw.query("SELECT 1").rows == [("1",)]
        px.stall()
        t0 = time.monotonic()
        raw.send(RawClient.query_msg("SELECT 2"))
        assert fatal_code(raw, 15) == "57014"
        assert time.monotonic() - t0 < 3
        # The network comes back: the pool serves again, on a new server.
        px.resume()
        with p.connect() as c:
            assert c.execute("SELECT 3").fetchone()[0] == 3
    finally:
        raw.close()


@pytest.mark.deadline(60)
@pytest.mark.parametrize("user_timeout", [1000, 0])
def test_tcp_user_timeout_ends_a_write_into_a_partition(pg, pooler, proxy, user_timeout):
    """A request bigger than what the stalled path can take in: with
    tcp_user_timeout the pooler's socket gives up (ETIMEDOUT) and the client
    gets FATAL 08006 at once; without it, the request hangs (no
    query_timeout here)."""
    px = proxy(rcvbuf=4096)
    p = through(px, pooler, pool_size=1, max_overflow=0, tcp_user_timeout=user_timeout)
    raw = p.raw(timeout=20)
    try:
        assert raw.query("SELECT 1").rows == [("1",)]
        px.stall()
        big = "SELECT length('" + "x" * (12 * 1024 * 1024) + "')"
        t0 = time.monotonic()
        raw.send(RawClient.query_msg(big))
        if user_timeout:
            assert fatal_code(raw, 15) == "08006"
            assert time.monotonic() - t0 < 6
            assert "Connection timed out" in p.log()
        else:
            assert raw.is_quiet(4), "an answer came through a stalled proxy"
    finally:
        raw.close()
        px.resume()


@pytest.mark.deadline(60)
@pytest.mark.parametrize("keepalive", ["on", "off"])
def test_keepalive_finds_a_vanished_idle_server(pg, pooler, proxy, keepalive):
    problem = tcp_repair_problem()
    if problem:
        pytest.skip(problem)
    px = proxy()
    p = through(px, pooler, pool_size=2, max_overflow=0, tcp_keepalive=keepalive,
                tcp_keepidle=1, tcp_keepintvl=1, tcp_keepcnt=2)
    with p.connect() as c:
        c.execute("SELECT 1")
    before = server_ids(p)
    assert len(before) == 1
    time.sleep(0.5)  # no ACK still on its way: it would draw the RST instead
    px.vanish()
    if keepalive == "on":
        # The first probe, after 1 s of quiet, draws a RST: on the server's
        # own socket, or first on the health check's connection (through the
        # same proxy, with the same keepalives, and idle a little longer),
        # which takes the host down and with it the idle server.  Either is
        # a keepalive's finding: health checks run every 60 s here, and
        # without keepalives nothing finds it (below).
        wait_until(lambda: not (server_ids(p) & before), 5, what="the vanished server closed")
        log = p.log()
        assert ("Connection reset by peer" in log or
                "is down: server closed the connection unexpectedly" in log), log
    else:
        time.sleep(3)
        assert server_ids(p) == before, "found out without keepalives?"
    # Either way the next transactions work (a dead idle server is never
    # handed out: the first write fails, the client gets 08006 at worst).
    wait_until(lambda: _works(p), 10, what="a transaction to work again")


def _works(p):
    try:
        with p.connect() as c:
            return c.execute("SELECT 1").fetchone()[0] == 1
    except Exception:
        return False


def pooler_sockets(p, pg, raw):
    """The pooler's socket to raw and its socket to raw's current server
    (found by the client_port PostgreSQL shows for the backend)."""
    res = raw.query("SELECT pg_backend_pid()")
    backend = int(res.rows[0][0])
    (row,) = pg.query("SELECT client_port FROM pg_stat_activity WHERE pid = %s", (backend,))
    mine = raw.sock.getsockname()[1]
    socks = process_sockets(p.pid)
    client_side = [fd for fd, local, remote in socks if remote == mine]
    server_side = [fd for fd, local, remote in socks if local == row["client_port"]]
    assert len(client_side) == 1 and len(server_side) == 1, socks
    return client_side[0], server_side[0]


@pytest.mark.deadline(60)
def test_keepalive_options_reach_both_sockets(pg, pooler):
    problem = pidfd_getfd_problem()
    if problem:
        pytest.skip(problem)
    p = pooler(pool_size=1, max_overflow=0, tcp_keepidle=7, tcp_keepintvl=3, tcp_keepcnt=4,
               tcp_user_timeout=5000)
    want = {"keepalive": 1, "keepidle": 7, "keepintvl": 3, "keepcnt": 4, "user_timeout": 5000}
    raw = p.raw()
    try:
        assert raw.query("BEGIN").status == "T"
        for fd in pooler_sockets(p, pg, raw):
            assert socket_options(p.pid, fd) == want, fd
    finally:
        raw.close()

    # Off, after a reload: for the sockets made from then on.
    p.reload(tcp_keepalive="off", tcp_user_timeout=0)
    # the pool's server only: a health check cut off would take the host down
    for pid in pg.pids("appdb"):
        pg.query("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: as_int(p.pool()["sv_idle"]) == 0, 5, what="the old server gone")
    raw = p.raw()
    try:
        assert raw.query("BEGIN").status == "T"
        for fd in pooler_sockets(p, pg, raw):
            got = socket_options(p.pid, fd)
            assert got["keepalive"] == 0 and got["user_timeout"] == 0, got
    finally:
        raw.close()


def test_keepalive_is_on_by_default(pg, pooler):
    problem = pidfd_getfd_problem()
    if problem:
        pytest.skip(problem)
    p = pooler()
    raw = p.raw()
    try:
        assert raw.query("BEGIN").status == "T"
        for fd in pooler_sockets(p, pg, raw):
            assert socket_options(p.pid, fd)["keepalive"] == 1
    finally:
        raw.close()
