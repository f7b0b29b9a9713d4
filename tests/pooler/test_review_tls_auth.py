"""Review of TLS, authentication and pre-auth resource use (i6-review2).

Each test is one bug found in review, fixed since: it failed for the
reason in its docstring and passes now that the pooler does what
PostgreSQL does.  What the tests send is byte-exact (RawClient and
raw sockets); every wait is bounded, and the memory checks compare growth
against wide margins (tens of MB), never a duration.
"""

import select
import socket
import struct
import threading
import time

import psycopg
import pytest

from poolerlib import HOST, RawClient, wait_until
from test_tls import certs, client_tls, error_fields, ssl_request  # noqa: F401 (certs: fixture)

SSL_REQUEST = ssl_request()
GSSENC_REQUEST = struct.pack("!II", 8, 80877104)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_to_close(sock, timeout):
    """(bytes received, closed): everything the peer sends until it closes
    or resets (closed True), or until nothing came for `timeout` seconds
    (closed False)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        except socket.timeout:
            return data, False
        if not chunk:
            return data, True
        data += chunk


def push(sock, chunk, limit, stall=2.0):
    """Send chunk over and over (non-blocking) until `limit` bytes went out,
    the peer stops taking them for `stall` seconds (back-pressure), or the
    peer closes.  Returns the bytes the peer took."""
    sock.setblocking(False)
    sent = 0
    try:
        while sent < limit:
            _, writable, _ = select.select([], [sock], [], stall)
            if not writable:
                break
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                continue
            except OSError:
                break
    finally:
        sock.setblocking(True)
    return sent


def startup_packet(user="postgres", database="appdb"):
    payload = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", database)):
        payload += k.encode() + b"\0" + v.encode() + b"\0"
    payload += b"\0"
    return struct.pack("!I", len(payload) + 4) + payload


# ---------------------------------------------------------------------------
# Negotiation requests (SSLRequest, GSSENCRequest) without end
# ---------------------------------------------------------------------------


def test_second_negotiation_request_is_refused(pooler, pg):
    """PostgreSQL answers one SSLRequest and one GSSENCRequest per
    connection; a second one is an unsupported protocol version (FATAL
    0A000 "unsupported frontend protocol 1234.5679", then close).  The
    pooler answers 'N' forever, which is what the memory test below
    turns into an amplifier."""
    p = pooler()
    for first, second in ((SSL_REQUEST, SSL_REQUEST), (GSSENC_REQUEST, GSSENC_REQUEST)):
        with socket.create_connection((HOST, p.port), timeout=10) as sock:
            sock.sendall(first)
            assert sock.recv(1) == b"N"
            sock.sendall(second)
            data, closed = read_to_close(sock, 5)
        fields = error_fields(data)
        assert fields is not None, f"no ErrorResponse after a second request, got {data[:20]!r}"
        assert fields.get("V", fields.get("S")) == "FATAL", fields
        assert fields["C"] in ("0A000", "08P01"), fields
        assert closed, "the connection stayed open"


@pytest.mark.deadline(180)
def test_negotiation_flood_does_not_grow_memory(pooler):
    """No start-up packet, no password: 8-byte GSSENCRequests as fast as
    the socket takes them, and never a read.  Each used to be answered with
    an 'N' queued in the client's output (the client does not read), so
    256 MB sent cost the pooler ~32 MB (400 MB cost 48 MB in the review
    run), per connection, before any authentication.  Now the second one
    is FATAL, and a closed client that goes on sending is let go after
    1 MB: the pooler stops taking the flood, which bounds memory in every
    build (ASan keeps freed buffers in quarantine, so reading and dropping
    256 MB would still show as growth there)."""
    p = pooler()
    sock = socket.create_connection((HOST, p.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    before = rss_kb(p.pid)
    sent = push(sock, GSSENC_REQUEST * (1 << 17), 256 << 20)
    # Let the pooler work through what the socket took.
    deadline = time.monotonic() + 90
    last = -1
    while time.monotonic() < deadline:
        now = rss_kb(p.pid)
        if now == last:
            break
        last = now
        time.sleep(1)
    grown = rss_kb(p.pid) - before
    sock.close()
    assert p.alive()
    assert sent < 64 << 20, f"the pooler took {sent >> 20} MB of GSSENCRequests"
    assert grown < 8 * 1024, f"the pooler grew by {grown} kB for {sent >> 20} MB of GSSENCRequests"


# ---------------------------------------------------------------------------
# Pre-auth time limits
# ---------------------------------------------------------------------------


def test_unauthenticated_connections_time_out(pooler, certs):  # noqa: F811
    """PostgreSQL ends a connection that has not authenticated within
    authentication_timeout (60 s); PgBouncer has client_login_timeout
    (60 s).  The pooler has neither: a client in CL_STARTUP or CL_AUTH
    stays forever, and max_client_conn of them lock everybody else out
    (53300) for good.  Asked for here with a one-second limit, under the
    name PgBouncer uses (today the key is unknown and the pooler does not
    start).  tcp_defer_accept = 0: by default a socket that sends nothing
    waits in the kernel, not in the pooler (test_abuse.py), and this is
    about the pooler's own limit."""
    p = pooler(client_login_timeout=1, max_client_conn=3, auth_type="scram-sha-256",
               users={"postgres": "pw-pg", "app": "pw-app"}, tcp_defer_accept=0,
               **client_tls(certs, "prefer"))
    # 1. Connected, nothing sent.
    silent = socket.create_connection((HOST, p.port), timeout=10)
    # 2. SSLRequest answered 'S', then no ClientHello.
    half_tls = socket.create_connection((HOST, p.port), timeout=10)
    half_tls.sendall(SSL_REQUEST)
    assert half_tls.recv(1) == b"S"
    # 3. Start-up sent, AuthenticationSASL received, no SASLInitialResponse.
    mid_auth = RawClient(p.port)
    mid_auth.send(startup_packet("app"))
    kind, body = mid_auth.read_message()
    assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 10, (kind, body)
    try:
        for name, sock in (("silent", silent), ("half TLS handshake", half_tls),
                           ("unfinished SCRAM", mid_auth.sock)):
            _, closed = read_to_close(sock, 15)
            assert closed, f"{name}: still open 15 s after a 1 s client_login_timeout"
        # With them gone, max_client_conn has room again (a SCRAM login:
        # psycopg, since RawClient speaks md5 only).
        def logs_in():
            try:
                with p.connect(user="app", password="pw-app", sslmode="disable") as c:
                    return c.execute("SELECT 1").fetchone() == (1,)
            except psycopg.Error:
                return False

        wait_until(logs_in, 10, what="a SCRAM client to log in")
    finally:
        silent.close()
        half_tls.close()
        mid_auth.sock.close()


# ---------------------------------------------------------------------------
# Back-pressure where the pooler reads or answers on its own
# ---------------------------------------------------------------------------


@pytest.mark.deadline(90)
def test_client_waiting_for_the_first_login_is_throttled(pooler):
    """The first client of a pool waits in CL_LOGIN_WAIT until a server
    has logged in (up to server_connect_timeout).  Meanwhile the pooler
    keeps reading it into memory: in the review run, against a server that
    accepts and never answers, one trust client pushed 3.2 GB in 5 s and
    the pooler grew by 4 GB.  CL_WAITING stops reading at FLOW_HIGH; so
    should CL_LOGIN_WAIT."""
    hole = socket.socket()
    hole.bind((HOST, 0))
    hole.listen(16)
    held = []

    def accept_forever():
        while True:
            try:
                held.append(hole.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_forever, daemon=True).start()
    try:
        p = pooler(databases={"slowdb": f"host={HOST} port={hole.getsockname()[1]} dbname=x"},
                   server_connect_timeout=60)
        sock = socket.create_connection((HOST, p.port), timeout=10)
        sock.sendall(startup_packet(database="slowdb"))
        raw = RawClient.__new__(RawClient)
        raw.sock, raw.buf = sock, b""
        kind, body = raw.read_message()
        assert (kind, body) == (b"R", b"\0\0\0\0"), (kind, body)  # AuthenticationOk, then the wait
        taken = push(sock, RawClient.message(b"Q", b"SELECT 1\0") * (1 << 16), 128 << 20)
        sock.close()
        assert p.alive()
        assert taken < 48 << 20, f"the pooler took {taken >> 20} MB from a client waiting for a login"
    finally:
        hole.close()
        for c in held:
            c.close()


@pytest.mark.deadline(120)
def test_local_answers_to_a_client_that_does_not_read_are_bounded(pooler):
    """max_prepared_statements = 0 in transaction pooling: a named Parse is
    refused by the pooler itself (relay_refuse_named: ErrorResponse, then
    ReadyForQuery at Sync), with no server, so the server-side flow control
    never applies.  A client that sends Parse+Sync in a loop and never reads
    gets ~6 bytes queued per byte sent: 200 MB sent grew the pooler by
    1.17 GB in the review run.  PostgreSQL stops reading a client whose
    socket is full; the pooler should stop reading at FLOW_HIGH of output."""
    p = pooler(max_prepared_statements=0)
    raw = p.raw()
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    before = rss_kb(p.pid)
    batch = (RawClient.parse("SELECT 1", name="s1") + RawClient.sync()) * 20000
    sent = push(raw.sock, batch, 32 << 20)
    deadline = time.monotonic() + 60
    last = -1
    while time.monotonic() < deadline:
        now = rss_kb(p.pid)
        if now == last:
            break
        last = now
        time.sleep(1)
    grown = rss_kb(p.pid) - before
    raw.sock.close()
    assert p.alive()
    assert grown < 32 * 1024, f"the pooler grew by {grown} kB for {sent >> 20} MB the client sent"
