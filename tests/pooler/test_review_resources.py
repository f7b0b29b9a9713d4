"""Issue 11: what one client can make the pooler hold.

Pools: every distinct user name that logs in under auth_type = trust makes a
pool; pools that nobody uses are freed, and there are never more than
max_pools.  Messages: a long CopyData (client to server) or DataRow (server
to client) is streamed, never held whole; any other message is held whole
only up to max_packet_size.  Memory is read from /proc (VmHWM, the peak
resident size), so each test starts its own pooler.
"""

import os
import struct
import time

import psycopg
import pytest

from poolerlib import PgError, RawClient, wait_until

P = RawClient
MB = 1024 * 1024


def small_quarantine():
    """Under ASan, freed memory waits in a quarantine (256 MB by default),
    which a streamed 500 MB would fill: keep it small so that RSS still
    shows what the pooler holds."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": ":".join(x for x in (asan, "quarantine_size_mb=4") if x)}


def peak_rss(p):
    """The pooler's peak resident memory so far, in bytes."""
    with open(f"/proc/{p.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def pool_names(p):
    return {(r["database"], r["user"]) for r in p.admin("SHOW POOLS")}


# ---------------------------------------------------------------------------
# 3. Pools are freed, and bounded
# ---------------------------------------------------------------------------


@pytest.mark.deadline(120)
def test_pools_of_unknown_users_are_freed(pg, pooler):
    p = pooler(pool_size=2)
    with p.connect(autocommit=True) as c:
        c.execute("SELECT 1")
    for i in range(300):
        with pytest.raises(psycopg.OperationalError) as exc:
            with p.connect(user=f"nobody_{i}") as c:
                c.execute("SELECT 1")
        assert f'role "nobody_{i}" does not exist' in str(exc.value)
    # the real pool stays; none of the made-up names keeps one
    wait_until(lambda: pool_names(p) == {("appdb", "postgres")}, 10,
               what="the 300 pools of unknown users freed")
    assert "pool appdb/nobody_0 freed" in p.log()


def test_max_pools_refuses_a_new_pool_with_53300(pg, pooler):
    p = pooler(pool_size=1, max_pools=2)
    a = p.connect(autocommit=True)
    b = p.connect(autocommit=True, user="app")
    try:
        a.execute("SELECT 1")
        b.execute("SELECT 1")
        with pytest.raises(PgError) as exc:
            RawClient(p.port).startup("secure", "appdb")
        assert exc.value.sqlstate == "53300" and exc.value.severity == "FATAL"
        assert exc.value.message == \
            "too many pools: max_pools (2) database/user pairs are in use"
        # the pools in use carry on
        assert a.execute("SELECT 2").fetchone()[0] == 2
    finally:
        a.close()
    # a's pool has no client now, but keeps its idle server: still in use
    with pytest.raises(PgError) as exc:
        RawClient(p.port).startup("nobody_else", "appdb")
    assert exc.value.sqlstate == "53300"
    # once that server is gone too, the pool is unused and makes room
    pg.terminate("appdb", "postgres")
    wait_until(lambda: ("appdb", "postgres") not in pool_names(p) or
               p.pool()["sv_idle"] in (0, "0"), 10, what="a's server gone")
    with pytest.raises(psycopg.OperationalError) as exc:
        with p.connect(user="nobody_else") as c:
            c.execute("SELECT 1")
    assert 'role "nobody_else" does not exist' in str(exc.value)
    b.close()


# ---------------------------------------------------------------------------
# 4. Long messages are streamed or refused, never held whole
# ---------------------------------------------------------------------------


def copy_data_header(n):
    return b"d" + struct.pack("!I", n + 4)


@pytest.mark.deadline(180)
def test_500_mb_copydata_is_streamed_not_buffered(pg, pooler):
    """A 500 MB CopyData inside a transaction (the server ignores CopyData
    outside a COPY, so nothing is written) passes through the pooler
    without the pooler ever holding it."""
    p = pooler(pool_size=1, max_overflow=0, env=small_quarantine())
    raw = p.raw(timeout=120)
    try:
        assert raw.query("BEGIN").status == "T"
        base = peak_rss(p)
        size = 500 * MB
        chunk = b"x" * MB
        raw.send(copy_data_header(size))
        for _ in range(size // MB):
            raw.send(chunk)
        res = raw.query("SELECT 42")
        assert res.rows == [("42",)] and res.status == "T", res.messages
        assert raw.query("COMMIT").status == "I"
        grown = peak_rss(p) - base
        assert grown < 64 * MB, f"the pooler's peak RSS grew by {grown // MB} MB"
        row = p.pool()
        assert int(row["sv_active"]) + int(row["sv_idle"]) >= 1
    finally:
        raw.close()


@pytest.mark.deadline(120)
def test_message_over_max_packet_size_is_refused_at_its_header(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, env=small_quarantine())
    raw = p.raw()
    base = peak_rss(p)
    # a 500 MB Query: refused as soon as its length is read
    raw.send(b"Q" + struct.pack("!I", 500 * MB + 4) + b"SELECT '" + b"x" * MB)
    kind, body = raw.read_message()
    assert kind == b"E"
    assert b"C08P01" in body and b"max_packet_size (268435456)" in body, body
    with pytest.raises((ConnectionError, OSError)):
        for _ in range(100):
            raw.send(b"x" * MB)
        raw.read_message()
    raw.close()
    assert peak_rss(p) - base < 64 * MB
    # others are served
    with p.connect(autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


def test_max_packet_size_setting(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, max_packet_size=100000)
    with p.connect(autocommit=True) as c:
        assert c.execute("SELECT length(%s)", ("y" * 90000,)).fetchone()[0] == 90000
    with p.connect(autocommit=True) as c:
        with pytest.raises(psycopg.OperationalError) as exc:
            c.execute("SELECT length(%s)", ("y" * 110000,))
        assert "longer than max_packet_size (100000)" in str(exc.value)


@pytest.mark.deadline(180)
def test_300_mb_row_is_streamed_to_the_client(pg, pooler):
    """A 300 MB DataRow from the server reaches the client whole while the
    pooler holds only pieces of it."""
    p = pooler(pool_size=1, max_overflow=0, env=small_quarantine())
    raw = p.raw(timeout=120)
    try:
        base = peak_rss(p)
        size = 300 * MB
        raw.send(P.message(b"Q", f"SELECT repeat('z', {size})".encode() + b"\0"))
        # read it without keeping it: count the bytes of the DataRow
        sock = raw.sock
        seen = {}

        def read_exact(n):
            buf = b""
            while len(buf) < n:
                part = sock.recv(n - len(buf))
                if not part:
                    raise ConnectionError("closed")
                buf += part
            return buf

        pending = raw.buf
        raw.buf = b""
        assert pending == b""
        while True:
            kind = read_exact(1)
            (length,) = struct.unpack("!I", read_exact(4))
            left = length - 4
            if kind == b"D":
                zs = 0
                while left:
                    part = sock.recv(min(left, MB))
                    assert part
                    zs += part.count(b"z")
                    left -= len(part)
                seen["D"] = (length, zs)
            else:
                read_exact(left)
            if kind == b"Z":
                break
        assert seen["D"][1] == size
        grown = peak_rss(p) - base
        assert grown < 64 * MB, f"the pooler's peak RSS grew by {grown // MB} MB"
        assert raw.query("SELECT 7").rows == [("7",)]
    finally:
        raw.close()


@pytest.mark.deadline(120)
def test_client_leaving_in_the_middle_of_a_streamed_message(pg, pooler):
    """Half a CopyData reached the server: it cannot be handed on."""
    p = pooler(pool_size=1, max_overflow=0, pool_mode="session")
    raw = p.raw()
    pid = int(raw.query("SELECT pg_backend_pid()").rows[0][0])
    raw.send(copy_data_header(10 * MB) + b"x" * (2 * MB))
    raw.close()
    wait_until(lambda: pid not in pg.pids(), 10, what="the half-fed server closed")
    with p.connect(autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.deadline(60)
def test_server_freed_mid_stream_waits_for_the_rest(pg, pooler):
    """A COPY that fails while the client is half-way through streaming a
    long CopyData ends the transaction (ErrorResponse, ReadyForQuery 'I')
    before the rest of that message reached the server.  The server must
    get the rest (and drop it) before another client's bytes: it stays with
    the first client until the message is complete."""
    with pg.connect(autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS streamed (n int NOT NULL)")
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=10)
    a = p.raw()
    b = p.raw()
    try:
        a.send(P.message(b"Q", b"COPY streamed FROM STDIN\0"))
        kind, _ = a.read_message()
        assert kind == b"G"
        size = 1 * MB
        # a bad row (the COPY fails), then half of a long CopyData, in one
        # write: the pooler starts streaming it before the server answers
        a.send(copy_data_header(4) + b"xx\n\n" + copy_data_header(size) + b"1\n" * (size // 4))
        res = a.read_until_ready()
        assert [e.sqlstate for e in res.errors] == ["22P02"], res.messages
        # b needs the only server; it must not get it with half a message
        b.send(P.message(b"Q", b"SELECT 4242\0"))
        time.sleep(0.5)
        a.send(b"1\n" * (size // 4))  # the rest, which the server drops
        res = b.read_until_ready()
        assert res.rows == [("4242",)] and res.errors == [], res.messages
        assert a.query("SELECT 7").rows == [("7",)]
    finally:
        a.close()
        b.close()
