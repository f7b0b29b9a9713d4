"""Flow control in plain text: how much the pooler holds for a slow peer.

docs/pooler.md, "Flow control": reading from a server stops while more than 512 kB
wait for its client, and the other way round, so that slow clients do not
make the pooler buffer results.

What the pooler holds is counted in bytes, not guessed from its memory:
the kernel keeps, for each of the pooler's two TCP sockets, the bytes it
received and the bytes the peer acknowledged, and the bytes still queued
(`ss -ti`).  Between two moments, what the pooler read from one socket
minus what it wrote to the other is what it holds in its own buffers.  The
test stalls one side, waits until nothing moves any more, and requires
that amount to be the bound: more than FLOW_HIGH (reading stops only past
it), and at most FLOW_HIGH plus one read (READ_SIZE, 16 kB) plus one
message not yet complete.
"""

import select
import subprocess
import time

import pytest

from poolerlib import RawClient, wait_until

R = RawClient

FLOW_HIGH = 512 * 1024  # docs/pooler.md: "more than 512 kB"
READ_SIZE = 16 * 1024  # pooler/stream.c: what one read takes


class TcpSide:
    """The kernel's counters of one established TCP socket on 127.0.0.1,
    named by its local and peer ports."""

    def __init__(self, local_port, peer_port):
        self.local_port = local_port
        self.peer_port = peer_port

    def read(self):
        r = subprocess.run(["ss", "-tinH", "state", "established",
                            f"( sport = :{self.local_port} and dport = :{self.peer_port} )"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        words = r.stdout.split()
        assert words, f"no socket {self.local_port} -> {self.peer_port}"
        counters = {"recv_q": int(words[0]), "send_q": int(words[1])}
        for w in words:
            key, _, value = w.partition(":")
            if key in ("bytes_received", "bytes_acked") and value.isdigit():
                counters[key] = int(value)
        counters.setdefault("bytes_received", 0)
        counters.setdefault("bytes_acked", 0)
        return counters

    def taken_in(self):
        """Bytes the owner of the socket has read from it so far."""
        c = self.read()
        return c["bytes_received"] - c["recv_q"]

    def given_out(self):
        """Bytes the owner of the socket has written to it so far (the
        peer acknowledged them, or they are queued)."""
        c = self.read()
        return c["bytes_acked"] + c["send_q"]


def backend_port(pg, pid):
    """The pooler's local port of its connection to backend pid."""
    rows = pg.query("SELECT client_port FROM pg_stat_activity WHERE pid = %s", (pid,))
    assert rows, f"backend {pid} is gone"
    return rows[0]["client_port"]


def settled(measure, quiet=0.5, timeout=30):
    """measure() once two readings `quiet` seconds apart agree."""
    deadline = time.monotonic() + timeout
    last = measure()
    while True:
        time.sleep(quiet)
        now = measure()
        if now == last:
            return now
        assert time.monotonic() < deadline, f"still moving after {timeout}s: {last} -> {now}"
        last = now


def wait_event(pg, pid):
    rows = pg.query("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,))
    return rows[0]["wait_event"] if rows else None


@pytest.mark.deadline(120)
def test_a_client_that_does_not_read_makes_the_pooler_stop_reading_its_server(pg, pooler):
    """60 MB of result for a client that does not read: the pooler holds
    just over 512 kB of it and leaves the rest to the server, which waits
    in ClientWrite; once the client reads, every byte arrives."""
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=30)
    c = p.raw(timeout=60)
    try:
        pid = int(c.query("SELECT pg_backend_pid()").rows[0][0])
        to_client = TcpSide(p.port, c.sock.getsockname()[1])
        from_server = TcpSide(backend_port(pg, pid), pg.port)

        def held():
            return from_server.taken_in() - to_client.given_out()

        before = held()
        rows, width = 60000, 1000
        c.send(R.query_msg(f"SELECT repeat('x', {width}) FROM generate_series(1, {rows})"))
        wait_until(lambda: wait_event(pg, pid) == "ClientWrite", 30,
                   what="the server to wait for the pooler to read")
        holding = settled(held) - before
        assert FLOW_HIGH < holding <= FLOW_HIGH + READ_SIZE + width + 11, \
            f"the pooler holds {holding} bytes for a client that does not read"

        # Every byte arrives once the client reads: RowDescription (32),
        # the DataRows (11 + width each), CommandComplete (18) and
        # ReadyForQuery (6).
        expected = 32 + rows * (11 + width) + 18 + 6
        got = len(c.buf)
        c.buf = b""
        tail = b""
        while got < expected:
            chunk = c.sock.recv(1 << 20)
            assert chunk, f"the pooler closed after {got} of {expected} bytes"
            got += len(chunk)
            tail = (tail + chunk)[-6:]
        assert got == expected and tail == b"Z\0\0\0\x05I"
        assert c.query("SELECT pg_backend_pid()").rows == [(str(pid),)]
    finally:
        c.close()


@pytest.mark.deadline(120)
def test_a_server_that_does_not_read_makes_the_pooler_stop_reading_its_client(pg, pooler):
    """A client pipelines megabytes of queries behind a pg_sleep: the
    server reads nothing meanwhile, and the pooler takes just over 512 kB
    more than it could pass on, then stops reading the client.  Once the
    sleep is cancelled, every query is answered."""
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=30)
    c = p.raw(timeout=60)
    try:
        pid = int(c.query("SELECT pg_backend_pid()").rows[0][0])
        from_client = TcpSide(p.port, c.sock.getsockname()[1])
        to_server = TcpSide(backend_port(pg, pid), pg.port)

        def held():
            return from_client.taken_in() - to_server.given_out()

        before = held()
        c.send(R.query_msg("SELECT pg_sleep(60) /* stalled */"))
        wait_until(lambda: wait_event(pg, pid) == "PgSleep", 30, what="the server to sleep")
        size = 8192
        one = R.query_msg("SELECT 1 /*" + "y" * (size - 20) + "*/")
        assert len(one) == size - 20 + 19
        n = 4000  # 32 MB: far more than the buffers on the way hold
        data = one * n
        c.sock.setblocking(False)
        sent = 0
        try:
            while sent < len(data):
                _, writable, _ = select.select([], [c.sock], [], 2)
                if not writable:
                    break  # nothing taken for 2 s: back-pressure
                try:
                    sent += c.sock.send(data[sent:sent + (1 << 20)])
                except BlockingIOError:
                    continue
        finally:
            c.sock.setblocking(True)
        assert sent < len(data), "all 32 MB went through to a server that reads nothing"
        holding = settled(held) - before
        assert FLOW_HIGH < holding <= FLOW_HIGH + READ_SIZE + len(one), \
            f"the pooler holds {holding} bytes for a server that does not read"

        # Cancel the sleep: the rest goes through, and every query is
        # answered, in order.
        pg.query("SELECT pg_cancel_backend(%s)", (pid,))
        c.send(data[sent:])
        res = c.read_until_ready()
        assert [e.sqlstate for e in res.errors] == ["57014"], res.messages
        for i in range(n):
            res = c.read_until_ready()
            assert res.error is None and res.rows == [("1",)], (i, res.messages)
        assert c.query("SELECT pg_backend_pid()").rows == [(str(pid),)]
    finally:
        c.close()
