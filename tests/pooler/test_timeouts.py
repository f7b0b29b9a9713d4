"""Issue 17: idle_transaction_timeout, query_timeout, client_idle_timeout
(PgBouncer's meanings; README, "Timeouts").

Each timeout fires between its value and its value plus a tenth of it (the
janitor's period), so the windows below allow for that and for a loaded
machine, but never for "it did not fire at all"."""

import socket
import time

import pytest

from poolerlib import RawClient, as_int, wait_until


def fatal_of(raw, timeout=10):
    """The ErrorResponse the pooler sends before closing raw: (severity,
    sqlstate, message); fails if raw gets anything else first."""
    got = raw.collect(ready=1, timeout=timeout)
    assert raw.closed, f"the connection is still open; got {got}"
    errors = [body for kind, body in got if kind == b"E"]
    assert len(errors) == 1, got
    fields = {part[:1].decode(): part[1:].decode() for part in errors[0].split(b"\0") if part}
    return fields.get("V"), fields.get("C"), fields.get("M")


def in_transaction(p, tag):
    """A raw client inside a transaction that wrote a row tagged tag;
    returns (client, backend pid)."""
    raw = p.raw()
    assert raw.query("BEGIN").status == "T"
    assert raw.query(f"INSERT INTO events (tag) VALUES ('{tag}')").error is None
    pid = int(raw.query("SELECT pg_backend_pid()").rows[0][0])
    return raw, pid


def rows_tagged(pg, tag):
    with pg.connect() as c:
        return c.execute("SELECT count(*) FROM events WHERE tag = %s", (tag,)).fetchone()[0]


@pytest.mark.deadline(60)
def test_idle_transactions_give_their_servers_back(pg, pooler):
    """A pool of 2 held by two idle transactions: a third client gets a
    server once they time out, and they get FATAL 25P03."""
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=20, idle_transaction_timeout=1)
    tag = f"idle-tx-{time.time()}"
    held = [in_transaction(p, tag) for _ in range(2)]
    third = p.raw(timeout=20)
    try:
        t0 = time.monotonic()
        third.send(RawClient.query_msg("SELECT 42"))
        res = third.read_until_ready()
        waited = time.monotonic() - t0
        assert res.rows == [("42",)] and res.errors == [], res.messages
        # The two idle transactions started before t0: within 1 s + a tenth
        # of it after they went idle, plus slack for a busy machine.
        assert waited < 3, f"the third client waited {waited:.1f} s"
        for raw, pid in held:
            severity, code, message = fatal_of(raw)
            assert (severity, code) == ("FATAL", "25P03"), message
            assert "idle_transaction_timeout = 1 s" in message
            wait_until(lambda: pid not in pg.pids(), 10, what=f"backend {pid} closed")
        # Rolled back, not committed, not handed on.
        assert rows_tagged(pg, tag) == 0
        assert not pg.idle_in_transaction("appdb")
        assert "idle_transaction_timeout" in p.log()
    finally:
        third.close()
        for raw, _ in held:
            raw.close()


@pytest.mark.deadline(60)
def test_busy_and_autocommit_clients_are_not_idle_in_a_transaction(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0, idle_transaction_timeout=1)
    working, pid = in_transaction(p, "working")
    idle_outside = p.raw()
    try:
        assert idle_outside.query("SELECT 1").status == "I"
        # A transaction that keeps sending is never idle for 1 s.
        for i in range(10):
            res = working.query(f"SELECT {i}")
            assert res.rows == [(str(i),)] and res.status == "T", res.messages
            time.sleep(0.3)
        # A query that runs longer than the timeout is not idleness either.
        res = working.query("SELECT pg_sleep(1.5), 7")
        assert res.rows[0][1] == "7" and res.status == "T", res.messages
        assert working.query("COMMIT").status == "I"
        # Outside a transaction, idling is not this timeout's business.
        time.sleep(1.5)
        assert idle_outside.query("SELECT 2").rows == [("2",)]
        assert working.query("SELECT 3").rows == [("3",)]
    finally:
        working.close()
        idle_outside.close()


@pytest.mark.deadline(60)
def test_failed_transaction_left_idle_times_out_too(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, idle_transaction_timeout=0.5)
    raw = p.raw()
    try:
        assert raw.query("BEGIN").status == "T"
        assert raw.query("SELECT 1/0").status == "E"
        severity, code, _ = fatal_of(raw)
        assert (severity, code) == ("FATAL", "25P03")
    finally:
        raw.close()
    with p.connect() as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.deadline(60)
def test_query_timeout_closes_a_server_that_does_not_answer(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=10, query_timeout=1)
    raw = p.raw(timeout=15)
    other = p.raw(timeout=15)
    try:
        assert raw.query("BEGIN").status == "T"
        time.sleep(1.5)  # idle in the transaction: no query outstanding
        assert raw.query("SELECT 'slow but in time'").status == "T"
        pid = int(raw.query("SELECT pg_backend_pid()").rows[0][0])
        t0 = time.monotonic()
        raw.send(RawClient.query_msg("SELECT pg_sleep(30)"))
        severity, code, message = fatal_of(raw, timeout=15)
        took = time.monotonic() - t0
        assert (severity, code) == ("FATAL", "57014"), message
        assert "query_timeout (1 s)" in message
        assert 1 <= took < 3, took
        # The slot is free at once for the next client, on another server.
        res = other.query("SELECT pg_backend_pid()")
        assert res.errors == [] and int(res.rows[0][0]) != pid, res.messages
    finally:
        raw.close()
        other.close()
    pg.terminate("appdb")  # the abandoned pg_sleep


@pytest.mark.deadline(60)
def test_client_idle_timeout_transaction_mode(pg, pooler):
    p = pooler(pool_size=2, client_idle_timeout=1)
    idle = p.raw()
    busy = p.raw()
    admin = RawClient(p.port).startup("postgres", "apiscale")
    try:
        assert idle.query("SELECT 1").status == "I"
        t0 = time.monotonic()
        # Short transactions every 0.3 s keep a client from being idle.
        while time.monotonic() - t0 < 2.0:
            assert busy.query("SELECT 1").rows == [("1",)]
            admin_rows = admin.query("SHOW VERSION")
            assert admin_rows.errors == []
            time.sleep(0.3)
        severity, code, message = fatal_of(idle)
        assert (severity, code) == ("FATAL", "57P05"), message
        assert "client_idle_timeout = 1 s" in message
        assert busy.query("SELECT 2").rows == [("2",)]
        # An idle admin console is closed as well.
        assert fatal_of(admin)[1] == "57P05"
        # And a client that only logged in.
        late = p.raw()
        assert fatal_of(late)[1] == "57P05"
    finally:
        for raw in (idle, busy, admin):
            raw.close()


@pytest.mark.deadline(60)
def test_client_idle_timeout_session_mode_gives_the_server_back(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_mode="session", pool_timeout=10,
               client_idle_timeout=1)
    first = p.raw(timeout=15)
    second = p.raw(timeout=15)
    try:
        pid = int(first.query("SELECT pg_backend_pid()").rows[0][0])
        # second waits for the only server, which first holds while idle
        second.send(RawClient.query_msg("SELECT pg_backend_pid()"))
        assert fatal_of(first)[1] == "57P05"
        res = second.read_until_ready()
        assert res.errors == [] and int(res.rows[0][0]) == pid, res.messages  # reset, reused
    finally:
        first.close()
        second.close()


@pytest.mark.deadline(60)
def test_timeouts_follow_a_reload(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    raw, pid = in_transaction(p, "reload")
    try:
        time.sleep(1.2)
        assert raw.query("SELECT 1").status == "T"  # no timeout set yet
        p.reload(idle_transaction_timeout=0.5)
        severity, code, _ = fatal_of(raw)
        assert code == "25P03"
        wait_until(lambda: pid not in pg.pids(), 10, what="the backend closed")
        p.reload(idle_transaction_timeout=0)
        again, _ = in_transaction(p, "reload")
        time.sleep(1.0)
        assert again.query("SELECT 1").status == "T"
        again.close()
    finally:
        raw.close()
    assert as_int(p.config_value("idle_transaction_timeout")) == 0
