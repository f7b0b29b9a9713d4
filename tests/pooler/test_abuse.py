"""Issue 17: clients that abuse the pooler (README, "Faults and abuse").

Slowloris: thousands of sockets that send part of a start-up packet (or of
an HTTP request) and stall.  New clients must still log in promptly, and
the stallers must be closed after client_login_timeout (HTTP: after the
endpoint's 10 s), however slowly they trickle bytes in."""

import os
import resource
import selectors
import socket
import struct
import time

import pytest

from faultlib import listener_defer_accept, pidfd_getfd_problem
from poolerlib import HOST, RawClient, free_port, wait_until

STALLERS = int(os.environ.get("APISCALE_STALLERS", "2000"))  # more in make soak


@pytest.fixture(autouse=True)
def _files():
    # the stallers, and the pooler's file descriptors counted from /proc
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 3 * STALLERS)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def open_many(port, n, first_bytes):
    """n sockets to port, each having sent first_bytes."""
    socks = []
    for _ in range(n):
        s = socket.create_connection((HOST, port), timeout=10)
        s.sendall(first_bytes)
        socks.append(s)
    return socks


def wait_closed(socks, timeout):
    """Seconds until the peer closed every socket (EOF or RST); fails with
    how many are left if that takes longer than timeout."""
    t0 = time.monotonic()
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    left = len(socks)
    try:
        while left:
            remaining = timeout - (time.monotonic() - t0)
            assert remaining > 0, f"{left} of {len(socks)} sockets still open after {timeout} s"
            for key, _ in sel.select(min(remaining, 1.0)):
                try:
                    data = key.fileobj.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if data == b"":
                    sel.unregister(key.fileobj)
                    left -= 1
        return time.monotonic() - t0
    finally:
        sel.close()
        for s in socks:
            s.close()


def timed_logins(p, n=10):
    """The slowest of n logins and queries, in seconds.  Raw clients: with
    thousands of sockets open here, psycopg's select() cannot wait on a
    descriptor above 1024."""
    worst = 0
    for i in range(n):
        t0 = time.monotonic()
        raw = RawClient(p.port).startup("postgres", "appdb")
        try:
            assert raw.query(f"SELECT {i}").rows == [(str(i),)]
        finally:
            raw.close()
        worst = max(worst, time.monotonic() - t0)
    return worst


def client_count(p):
    admin = RawClient(p.port).startup("postgres", "apiscale")
    try:
        return len(admin.query("SHOW CLIENTS").rows)
    finally:
        admin.close()


@pytest.mark.deadline(90)
def test_slowloris_on_the_startup_packet(pg, pooler, figure):
    p = pooler(client_login_timeout=3, pool_size=2)
    timed_logins(p, 1)
    fds_before = p.fd_count()
    # half of a start-up packet: its length says 200 bytes, 20 come
    packet = struct.pack("!II", 200, 196608) + b"user\0post"
    stallers = open_many(p.port, STALLERS, packet[:20])
    opened = time.monotonic()
    # and a few that trickle a byte every half second: the deadline is
    # counted from the accept, not from the last byte
    drips = open_many(p.port, 20, packet[:4])
    try:
        # they are all held (the kernel hands each over once its bytes
        # came: tcp_defer_accept), the last ones maybe a moment later
        wait_until(lambda: p.fd_count() >= fds_before + STALLERS, 2,
                   what="every staller accepted")
        worst = timed_logins(p)
        assert worst < 1, f"a login took {worst:.2f} s beside {STALLERS} stalled sockets"
        assert client_count(p) >= STALLERS
        for i in range(4, 10):
            time.sleep(0.5)
            for s in drips:
                s.send(packet[i:i + 1])
    except Exception:
        for s in stallers + drips:
            s.close()
        raise
    took = wait_closed(stallers + drips, 3 + 10)
    closed_after = time.monotonic() - opened
    assert closed_after >= 2.5, "closed before client_login_timeout"
    assert took < 10
    figure(f"{STALLERS} + 20 stalled start-up packets held; worst login beside them "
           f"{worst:.2f} s; all closed {closed_after:.1f} s after they came "
           f"(client_login_timeout = 3)")
    # all gone, and the pooler serves as before
    wait_until(lambda: p.fd_count() <= fds_before + 5, 5, what="the stallers' descriptors freed")
    assert client_count(p) == 1  # the console asking
    assert timed_logins(p) < 1
    assert "no start-up packet within client_login_timeout" in p.log()


def clients_in_startup(p):
    admin = RawClient(p.port).startup("postgres", "apiscale")
    try:
        res = admin.query("SHOW CLIENTS")
        state = res.columns.index("state")
        return sum(1 for r in res.rows if r[state] == "startup")
    finally:
        admin.close()


@pytest.mark.deadline(60)
def test_silent_sockets_wait_in_the_kernel(pg, pooler):
    """tcp_defer_accept (on by default): a TCP connection that has sent
    nothing is held by the kernel, so it costs the pooler nothing and does
    not count towards max_client_conn; one that speaks is served.  With
    tcp_defer_accept = 0 (a reload) the pooler takes silent sockets in."""
    p = pooler(max_client_conn=5, client_login_timeout=30)
    fds_before = p.fd_count()
    silent = [RawClient(p.port) for _ in range(20)]
    try:
        time.sleep(0.5)
        assert p.fd_count() <= fds_before + 2
        assert clients_in_startup(p) == 0
        # more silent sockets than max_client_conn, and a client still
        # gets in: one of them, once it speaks
        raw = silent.pop().startup("postgres", "appdb")
        assert raw.query("SELECT 1").rows == [("1",)]
        raw.close()
        problem = pidfd_getfd_problem()
        if not problem:
            assert listener_defer_accept(p.pid, p.port) >= 45
        # closing sends a FIN, which the kernel hands over (and the pooler
        # reads as an end): let those pass before counting again
        for s in silent:
            s.close()
        silent = []
        wait_until(lambda: p.fd_count() <= fds_before + 2, 5, what="closed sockets gone")

        p.reload(tcp_defer_accept=0)
        if not problem:
            assert listener_defer_accept(p.pid, p.port) == 0
        silent = [RawClient(p.port) for _ in range(3)]
        wait_until(lambda: clients_in_startup(p) == 3, 5,
                   what="silent sockets taken in once tcp_defer_accept = 0")
    finally:
        for s in silent:
            s.close()


def http_get_time(port, path="/health"):
    t0 = time.monotonic()
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    return time.monotonic() - t0


@pytest.mark.deadline(90)
def test_slowloris_on_the_http_endpoint(pg, pooler, figure):
    port = free_port()
    p = pooler(http_listen=f"{HOST}:{port}", pool_size=2)
    http_get_time(port)
    fds_before = p.fd_count()
    stallers = []
    try:
        # requests that never end their headers, opened faster than the
        # pooler would time them out
        for i in range(STALLERS):
            s = socket.create_connection((HOST, port), timeout=10)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            stallers.append(s)
            if i % 200 == 199:
                # a health check and a PostgreSQL client get through
                assert http_get_time(port) < 1
                assert timed_logins(p, 1) < 1
        # the pooler holds at most 100 of them (and their listen backlog)
        held = p.fd_count() - fds_before
        assert held <= 100 + 5, f"the pooler holds {held} descriptors for HTTP"
        health = http_get_time(port)
        metrics = http_get_time(port, "/metrics")
        assert health < 1 and metrics < 1
        assert timed_logins(p) < 1
        # one that trickles a byte every half second, after the flood:
        # only the endpoint's own deadline closes it (evhttp's timeout
        # starts again at every byte)
        took = trickle_until_closed(port, every=0.5, limit=15)
        assert took is not None and 9 <= took <= 12, took
        figure(f"{STALLERS} unfinished HTTP requests: {held} descriptors held; /health "
               f"{health * 1000:.0f} ms, /metrics {metrics * 1000:.0f} ms meanwhile; a "
               f"trickled request closed after {took:.1f} s")
    except Exception:
        for s in stallers:
            s.close()
        raise
    # every staller is closed: most at once, the last 100 after 10 s
    wait_closed(stallers, 15)
    wait_until(lambda: p.fd_count() <= fds_before + 5, 5, what="HTTP descriptors freed")
    assert "HTTP endpoint: more than 100 connections" in p.log()
    assert http_get_time(port) < 1


def trickle_until_closed(port, every, limit):
    """Send an HTTP request header a byte at a time, never ending it;
    seconds until the peer closes, or None after limit."""
    data = b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 1000
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.setblocking(False)
        t0 = time.monotonic()
        for i in range(len(data)):
            try:
                if s.recv(1) == b"":
                    return time.monotonic() - t0
            except BlockingIOError:
                pass
            except ConnectionResetError:
                return time.monotonic() - t0
            try:
                s.send(data[i:i + 1])
            except OSError:
                return time.monotonic() - t0
            if time.monotonic() - t0 > limit:
                return None
            time.sleep(every)
    return None
