"""COPY through the pooler, on the wire, byte by byte.

COPY is the one exchange where the client sends messages no request
accounts for (CopyData, CopyDone, CopyFail) and the server streams
without a request per message, in both directions and in both protocols.
Each test runs its bytes on PostgreSQL directly first (same_as_server)
where what should happen is not obvious, and requires the pooler to
answer with the same message sequence; then checks that the server went
back to the pool clean (pool_size = 1: the next client gets the very same
backend, outside any transaction) or was closed.
"""

import struct
import uuid

import pytest

from poolerlib import RawClient, as_int, same_as_server, summary, wait_until

R = RawClient


@pytest.fixture
def table(pg):
    """A fresh table (id int PRIMARY KEY, v text) made directly on the
    server; its name.  Dropped after the test."""
    name = "copy_" + uuid.uuid4().hex[:12]
    with pg.connect() as c:
        c.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
        c.execute(f"GRANT ALL ON {name} TO app")
    yield name
    with pg.connect() as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


def truncate(pg, name):
    def run():
        with pg.connect() as c:
            c.execute(f"TRUNCATE {name}")
    return run


def count(pg, name):
    with pg.connect() as c:
        return c.execute(f"SELECT count(*) FROM {name}").fetchone()[0]


def backend_pid(p):
    """The backend pid a new client of pooler p runs on."""
    raw = p.raw()
    try:
        return int(raw.query("SELECT pg_backend_pid()").rows[0][0])
    finally:
        raw.close()


def assert_pool_clean(pg, p, pid=None):
    """The pool's only server is idle (nothing holds it), no backend is
    idle in transaction or still in a COPY, and if pid is given the next
    client runs on that same backend (reused, not replaced)."""
    wait_until(lambda: as_int(p.pool()["sv_active"]) == 0, 3, what="the server to go back to the pool")
    assert not pg.idle_in_transaction("appdb")
    assert not [r for r in pg.backend_rows("appdb", None)
                if r["state"] == "active" and "COPY" in (r["query"] or "").upper()]
    if pid is not None:
        assert backend_pid(p) == pid


def through(c, p):
    """Is RawClient c connected to pooler p (rather than to the server)?"""
    return c.sock.getpeername()[1] == p.port


def rows_text(n, start=1):
    return "".join(f"{i}\tvalue {i}\n" for i in range(start, start + n))


def test_copy_in_simple_protocol(pg, pooler, table):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    pid = backend_pid(p)
    data = rows_text(1000)

    def script(c):
        c.send(R.query_msg(f"COPY {table} FROM STDIN"))
        kind, body = c.read_message()
        # CopyInResponse: text format, two columns, both text
        assert kind == b"G" and body == struct.pack("!bHHH", 0, 2, 0, 0), (kind, body)
        # rows cut anywhere: CopyData boundaries mean nothing
        cut = len(data) // 3
        c.send(R.copy_data(data[:cut]) + R.copy_data(data[cut:cut + 7]))
        c.send(R.copy_data(data[cut + 7:]) + R.copy_done())
        c.collect()
        if through(c, p):  # while the client is still connected
            assert_pool_clean(pg, p, pid)

    direct, pooled = same_as_server(pg, p.port, script, before=truncate(pg, table))
    assert direct == ["C:COPY 1000", "Z:I"]
    assert pooled == direct
    assert count(pg, table) == 1000
    assert_pool_clean(pg, p, pid)


def test_copy_fail(pg, pooler, table):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    pid = backend_pid(p)

    def script(c):
        c.send(R.query_msg(f"COPY {table} FROM STDIN"))
        c.collect(ready=0)
        assert c.read_message()[0] == b"G"
        c.send(R.copy_data(rows_text(10)) + R.copy_fail("the client changed its mind"))
        c.collect()
        if through(c, p):
            assert_pool_clean(pg, p, pid)
        c.send(R.query_msg("SELECT 1"))
        c.collect()

    direct, pooled = same_as_server(pg, p.port, script, before=truncate(pg, table))
    assert direct == ["E:ERROR:57014", "Z:I", "T", "D", "C:SELECT 1", "Z:I"]
    assert pooled == direct
    assert count(pg, table) == 0
    assert_pool_clean(pg, p, pid)


def test_error_after_copy_done(pg, pooler, table):
    # The last row repeats a key: the error comes at CopyDone.  Once
    # outside a transaction, once inside one (ReadyForQuery 'E', then
    # ROLLBACK).
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    pid = backend_pid(p)
    data = rows_text(50) + "7\tagain\n"

    def script(c):
        for in_block in (False, True):
            if in_block:
                c.send(R.query_msg("BEGIN"))
                c.collect()
            c.send(R.query_msg(f"COPY {table} FROM STDIN"))
            c.collect(ready=0)
            assert c.read_message()[0] == b"G"
            c.send(R.copy_data(data) + R.copy_done())
            c.collect()
            if in_block:
                c.send(R.query_msg("SELECT 1"))
                c.collect()
                c.send(R.query_msg("ROLLBACK"))
                c.collect()
            if through(c, p):
                assert_pool_clean(pg, p, pid)

    direct, pooled = same_as_server(pg, p.port, script, before=truncate(pg, table))
    assert direct == ["E:ERROR:23505", "Z:I",
                      "C:BEGIN", "Z:T", "E:ERROR:23505", "Z:E", "E:ERROR:25P02", "Z:E",
                      "C:ROLLBACK", "Z:I"]
    assert pooled == direct
    assert count(pg, table) == 0
    assert_pool_clean(pg, p, pid)


def copy_out_payload(port, sql):
    """(summary, the CopyData payloads joined) of a COPY TO STDOUT."""
    c = RawClient(port, timeout=20).startup("postgres", "appdb")
    try:
        c.send(R.query_msg(sql))
        msgs = c.collect()
        return summary(msgs, c.closed), b"".join(body for kind, body in msgs if kind == b"d")
    finally:
        c.close()


def test_copy_out(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    pid = backend_pid(p)
    small = "COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT"
    direct = copy_out_payload(pg.port, small)
    assert direct[0] == ["H"] + ["d"] * 100 + ["c", "C:COPY 100", "Z:I"]
    assert copy_out_payload(p.port, small) == direct
    # Some megabytes: more than the pooler buffers before it stops reading
    # the server, so flow control has to let it through.
    big = ("COPY (SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 12000) g)"
           " TO STDOUT")
    direct = copy_out_payload(pg.port, big)
    assert len(direct[1]) > 7_000_000
    pooled = copy_out_payload(p.port, big)
    assert pooled[0] == direct[0]
    assert pooled[1] == direct[1]
    assert_pool_clean(pg, p, pid)


def test_copy_in_extended_protocol(pg, pooler, table):
    # Parse/Bind/Execute of COPY FROM STDIN, the data, CopyDone, then Sync.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    pid = backend_pid(p)

    def script(c):
        c.send(R.parse(f"COPY {table} FROM STDIN") + R.bind() + R.execute())
        c.send(R.copy_data(rows_text(20)) + R.copy_done() + R.sync())
        c.collect()
        if through(c, p):
            assert_pool_clean(pg, p, pid)
        c.send(R.query_msg(f"SELECT count(*) FROM {table}"))
        c.collect()

    direct, pooled = same_as_server(pg, p.port, script, before=truncate(pg, table))
    assert direct == ["1", "2", "G", "C:COPY 20", "Z:I", "T", "D", "C:SELECT 1", "Z:I"]
    assert pooled == direct
    assert_pool_clean(pg, p, pid)


def test_copy_fail_extended_protocol(pg, pooler, table):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    pid = backend_pid(p)

    def script(c):
        c.send(R.parse(f"COPY {table} FROM STDIN") + R.bind() + R.execute())
        c.send(R.copy_data(rows_text(20)) + R.copy_fail() + R.sync())
        c.collect()
        if through(c, p):
            assert_pool_clean(pg, p, pid)

    direct, pooled = same_as_server(pg, p.port, script, before=truncate(pg, table))
    assert direct == ["1", "2", "G", "E:ERROR:57014", "Z:I"]
    assert pooled == direct
    assert count(pg, table) == 0
    assert_pool_clean(pg, p, pid)


def test_copy_in_extended_protocol_with_sync_before_the_data(pg, pooler, table):
    # What libpq sends for PQexecParams("COPY ... FROM STDIN"): Parse,
    # Bind, Describe, Execute, Sync, and only then the data, CopyDone and
    # a second Sync (PQputCopyEnd adds it).  The server ignores a Sync that
    # arrives during COPY IN: one ReadyForQuery for two Syncs.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    pid = backend_pid(p)

    def script(c):
        c.send(R.parse(f"COPY {table} FROM STDIN") + R.bind() + R.describe_portal()
               + R.execute() + R.sync())
        c.send(R.copy_data(rows_text(20)) + R.copy_done() + R.sync())
        c.collect()
        assert c.is_quiet(0.3), "a second ReadyForQuery"
        if through(c, p):
            # The transaction is over: the server must be free for others
            # while this client stays connected, and after more work.
            assert_pool_clean(pg, p, pid)
        c.send(R.query_msg(f"SELECT count(*) FROM {table}"))
        c.collect()
        if through(c, p):
            assert_pool_clean(pg, p, pid)

    direct, pooled = same_as_server(pg, p.port, script, before=truncate(pg, table))
    assert direct == ["1", "2", "n", "G", "C:COPY 20", "Z:I", "T", "D", "C:SELECT 1", "Z:I"]
    assert pooled == direct
    assert_pool_clean(pg, p, pid)


def test_copy_in_a_pipeline(pg, pooler, table):
    # Parse/Bind/Execute COPY FROM STDIN followed at once by another
    # statement and Sync, before any CopyData.  PostgreSQL takes the Parse
    # for a protocol violation during COPY IN: ERROR, then FATAL, and it
    # closes the connection.  The pooler must pass that on, may add its own
    # FATAL 08006 for the server that went away, and must not hand the dead
    # server to anyone.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)

    def script(c):
        c.send(R.parse(f"COPY {table} FROM STDIN") + R.bind() + R.execute()
               + R.parse("SELECT 1") + R.bind() + R.execute() + R.sync())
        c.send(R.copy_data(rows_text(3)) + R.copy_done() + R.sync())
        c.collect(ready=2)

    direct, pooled = same_as_server(pg, p.port, script, before=truncate(pg, table))
    assert direct == ["1", "2", "G", "E:ERROR:08P01", "E:FATAL:08P01", "<closed>"]
    assert pooled in (direct, direct[:-1] + ["E:FATAL:08006", "<closed>"]), pooled
    assert count(pg, table) == 0
    assert_pool_clean(pg, p)
    wait_until(lambda: pg.backends() <= 1, 5, what="the broken server's backend to go")


@pytest.mark.parametrize("how", ["terminate", "rst"])
def test_client_gone_in_the_middle_of_copy_in(pg, pooler, table, how):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    c = p.raw()
    c.send(R.query_msg(f"COPY {table} FROM STDIN"))
    assert c.read_message()[0] == b"G"
    c.send(R.copy_data(rows_text(100)))
    wait_until(lambda: [r for r in pg.backend_rows("appdb")
                        if r["state"] == "active" and "COPY" in (r["query"] or "")], 5,
               what="the COPY to run")
    if how == "terminate":
        c.send(R.terminate())
        c.close()
    else:
        c.close(abort=True)
    # The server was in the middle of a COPY: closed, never reused.
    wait_until(lambda: not [r for r in pg.backend_rows("appdb", None)
                            if "COPY" in (r["query"] or "") or
                            (r["state"] or "").startswith("idle in transaction")], 5,
               what="no backend left in the COPY or in its transaction")
    assert count(pg, table) == 0
    other = p.raw()
    try:
        res = other.query(f"SELECT count(*) FROM {table}")
        assert res.rows == [("0",)] and res.status == "I", res.messages
    finally:
        other.close()
    assert_pool_clean(pg, p)


def test_client_gone_in_the_middle_of_copy_out(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    c = p.raw()
    c.send(R.query_msg("COPY (SELECT g, repeat('x', 500) FROM generate_series(1, 200000) g)"
                       " TO STDOUT"))
    assert c.read_message()[0] == b"H"
    assert c.read_message()[0] == b"d"
    c.close(abort=True)
    wait_until(lambda: not [r for r in pg.backend_rows("appdb", None)
                            if "COPY" in (r["query"] or "") and r["state"] != "idle"], 10,
               what="the COPY TO to stop")
    other = p.raw()
    try:
        res = other.query("SELECT 1")
        assert res.rows == [("1",)] and res.status == "I", res.messages
    finally:
        other.close()
    assert_pool_clean(pg, p)


def test_copy_data_after_a_failed_copy_takes_no_server(pg, pooler, table):
    # A bad first row: the server fails the COPY at once (ErrorResponse,
    # ReadyForQuery) while the client, which has not read that yet, goes on
    # sending CopyData and CopyDone.  PostgreSQL ignores them outside COPY
    # and answers nothing.  The transaction is over, so the server must be
    # free for the next client at once, not held by the late CopyData.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=2)
    c = p.raw()
    try:
        c.send(R.query_msg(f"COPY {table} FROM STDIN"))
        assert c.read_message()[0] == b"G"
        c.send(R.copy_data("not-a-number\tx\n"))
        assert summary(c.collect()) == ["E:ERROR:22P02", "Z:I"]
        c.send(R.copy_data(rows_text(10, start=2)) + R.copy_done())
        assert c.is_quiet(0.3)
        other = p.raw()
        try:
            res = other.query("SELECT 1")
            assert res.error is None, f"the late CopyData took the only server: {res.error}"
        finally:
            other.close()
        # and the late client goes on normally
        res = c.query(f"SELECT count(*) FROM {table}")
        assert res.rows == [("0",)] and res.status == "I", res.messages
    finally:
        c.close()
    assert_pool_clean(pg, p)


def test_messages_of_tens_of_megabytes(pg, pooler, table):
    # One CopyData of 24 MB in, one DataRow of 24 MB out: the pooler
    # passes whole messages, so it must hold such a message entire, in
    # either direction, without stalling on its own flow control.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    c = p.raw(timeout=60)
    try:
        c.send(R.query_msg(f"COPY {table} (id, v) FROM STDIN"))
        assert c.read_message()[0] == b"G"
        c.send(R.copy_data(b"1\t" + b"z" * 24_000_000 + b"\n") + R.copy_done())
        assert summary(c.collect()) == ["C:COPY 1", "Z:I"]
        res = c.query(f"SELECT v, length(v) FROM {table}")
        assert res.rows == [("z" * 24_000_000, "24000000")] and res.status == "I"
    finally:
        c.close()
    assert_pool_clean(pg, p)


def test_copy_follows_the_clients_settings_on_a_shared_server(pg, pooler, table):
    # Two clients on one server, in turns: one LATIN1 with German dates in
    # Tokyo time, one UTF8 with the defaults.  COPY's text in and out is
    # converted and formatted for the client that runs it.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    latin = RawClient(p.port).startup("postgres", "appdb", client_encoding="LATIN1",
                                      DateStyle="German, DMY", TimeZone="Asia/Tokyo")
    utf8 = p.raw()
    try:
        for rnd in range(3):
            latin.send(R.query_msg(f"COPY {table} (id, v) FROM STDIN"))
            assert latin.read_message()[0] == b"G"
            latin.send(R.copy_data(f"{rnd * 10 + 1}\tcaf\xe9\n".encode("latin1")) + R.copy_done())
            assert summary(latin.collect()) == ["C:COPY 1", "Z:I"]

            utf8.send(R.query_msg(f"COPY (SELECT v, '2024-03-01 12:00+00'::timestamptz FROM {table}"
                                  f" WHERE id = {rnd * 10 + 1}) TO STDOUT"))
            msgs = utf8.collect()
            assert [b for k, b in msgs if k == b"d"] == ["café\t2024-03-01 12:00:00+00\n".encode()]
            utf8.send(R.query_msg(f"COPY {table} (id, v) FROM STDIN"))
            assert utf8.read_message()[0] == b"G"
            utf8.send(R.copy_data(f"{rnd * 10 + 2}\tna\u00efve\n".encode()) + R.copy_done())
            assert summary(utf8.collect()) == ["C:COPY 1", "Z:I"]

            latin.send(R.query_msg(f"COPY (SELECT v, '2024-03-01 12:00+00'::timestamptz FROM {table}"
                                   f" WHERE id = {rnd * 10 + 2}) TO STDOUT"))
            msgs = latin.collect()
            assert [b for k, b in msgs if k == b"d"] == \
                ["na\u00efve\t01.03.2024 21:00:00 JST\n".encode("latin1")]
    finally:
        latin.close()
        utf8.close()
    with pg.connect() as c:
        assert c.execute(f"SELECT count(*) FROM {table} WHERE v IN ('café', 'naïve')").fetchone()[0] == 6
    assert_pool_clean(pg, p)
