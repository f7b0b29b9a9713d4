"""Issue 15: several apiscale-pooler instances behind one address.

so_reuseport lets them share a TCP port; peer_id and [peers] send a cancel
request to the instance whose key it carries; HAProxy in front of two
instances stops sending clients to one that drains (/health 503), and
nothing but that instance's idle connections notices.
"""

import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import psycopg
import pytest

from poolerlib import HOST, RawClient, free_port, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def cancel(port, pid, key):
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
        s.settimeout(5)
        try:
            s.recv(1)
        except OSError:
            pass


def sleeping_client(port):
    """A raw client running pg_sleep(30); its BackendKeyData."""
    raw = RawClient(port, timeout=15).startup("postgres", "appdb")
    raw.send(RawClient.message(b"Q", b"SELECT pg_sleep(30)\0"))
    return raw


def two_peers(pooler, shared_port=None, **kw):
    """Instances 1 and 2, each listed in the other's [peers]."""
    ports = [shared_port or free_port(), shared_port or free_port()]
    peers = {"1": f"host={HOST} port={ports[0]}", "2": f"host={HOST} port={ports[1]}"}
    extra = {"so_reuseport": "on"} if shared_port else {}
    a = pooler(listen_port=ports[0], peer_id=1, sections={"peers": peers}, **extra, **kw)
    b = pooler(listen_port=ports[1], peer_id=2, sections={"peers": peers}, **extra, **kw)
    return a, b


def test_cancel_sent_to_the_other_instance_is_forwarded(pg, pooler):
    a, b = two_peers(pooler)
    raw = sleeping_client(a.port)
    try:
        pid, key = raw.backend_key
        assert pid >> 16 == 1  # instance 1's id in the key
        wait_until(lambda: any("pg_sleep(30)" in (r["query"] or "") and r["state"] == "active"
                               for r in pg.backend_rows("appdb")), 5, what="the query running")
        start = time.monotonic()
        cancel(b.port, pid, key)  # to the wrong instance
        res = raw.read_until_ready()
        assert [e.sqlstate for e in res.errors] == ["57014"], res.messages
        assert time.monotonic() - start < 5
        assert "cancel request forwarded to peer 1" in b.log()
        # the right instance's own cancels work as before
        raw.send(RawClient.message(b"Q", b"SELECT pg_sleep(30)\0"))
        time.sleep(0.3)
        cancel(a.port, pid, key)
        assert [e.sqlstate for e in raw.read_until_ready().errors] == ["57014"]
    finally:
        raw.close()
    # a wrong key forwarded cancels nothing
    raw = sleeping_client(a.port)
    try:
        pid, key = raw.backend_key
        time.sleep(0.3)
        cancel(b.port, pid, key ^ 1)
        raw.sock.settimeout(1.5)
        with pytest.raises(OSError):
            raw.read_message()
    finally:
        raw.close()


@pytest.mark.deadline(90)
def test_two_instances_share_a_port_and_cancels_cross(pg, pooler):
    port = free_port()
    a, b = two_peers(pooler, shared_port=port)
    seen = set()
    crossed = 0
    for _ in range(40):
        raw = sleeping_client(port)
        try:
            pid, key = raw.backend_key
            seen.add(pid >> 16)
            time.sleep(0.1)
            cancel(port, pid, key)  # lands on either instance
            res = raw.read_until_ready()
            assert [e.sqlstate for e in res.errors] == ["57014"], res.messages
        finally:
            raw.close()
        crossed = a.log().count("forwarded to peer 2") + b.log().count("forwarded to peer 1")
        if seen == {1, 2} and crossed >= 2:
            break
    assert seen == {1, 2}, "the kernel gave every client to one instance"
    assert crossed >= 2, "no cancel crossed instances in 40 tries"


@pytest.mark.deadline(120)
def test_haproxy_in_front_of_two_instances_drains_one(pg, pooler, tmp_path):
    if not shutil.which(HAPROXY):
        pytest.skip("haproxy (Debian package haproxy) is not installed")
    http = [free_port(), free_port()]
    a = pooler(http_listen=f"{HOST}:{http[0]}", pool_size=4)
    b = pooler(http_listen=f"{HOST}:{http[1]}", pool_size=4)
    front = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""
global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
listen postgres
    bind {HOST}:{front}
    balance leastconn
    retries 3
    option redispatch
    option httpchk GET /health
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
    server a {HOST}:{a.port} check port {http[0]}
    server b {HOST}:{b.port} check port {http[1]}
""")
    ha = subprocess.Popen([HAPROXY, "-f", str(cfg), "-db"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    stop = threading.Event()
    errors = []
    done = []
    lock = threading.Lock()

    def client(i):
        conn = None
        while not stop.is_set():
            step = "connect"
            try:
                if conn is None:
                    conn = psycopg.connect(host=HOST, port=front, dbname="appdb", user="postgres",
                                           autocommit=True, connect_timeout=5)
                step = "BEGIN"
                conn.execute("BEGIN")
                step = "in a transaction"
                conn.execute("SELECT pg_sleep(0.02)")
                conn.execute("COMMIT")
                with lock:
                    done.append(time.monotonic())
            except psycopg.Error as e:
                # A draining instance closes its idle clients (FATAL 57P01;
                # libpq may only say the connection closed): the first
                # statement after that fails, and the client reconnects.
                # Anything else is a failure.
                if step != "BEGIN":
                    with lock:
                        errors.append(f"{step}: {e}")
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.01)
        if conn is not None:
            conn.close()

    def reachable():
        try:
            psycopg.connect(host=HOST, port=front, dbname="appdb", user="postgres",
                            connect_timeout=2).close()
            return True
        except psycopg.Error:
            return False

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(6)]
    try:
        wait_until(reachable, 10, what="haproxy up")
        for t in threads:
            t.start()
        wait_until(lambda: len(done) > 50, 15, what="traffic through haproxy")
        wait_until(lambda: a.pool() is not None and b.pool() is not None, 10,
                   what="both instances used")
        a.send_signal(signal.SIGTERM)
        drained_at = time.monotonic()
        assert a.wait_exit(15) == 0
        n = len(done)
        wait_until(lambda: len(done) > n + 50, 15, what="traffic going on through b alone")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        ha.terminate()
        ha.wait(10)
    assert errors == [], errors[:5]
    assert max(done) > drained_at
