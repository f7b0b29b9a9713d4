"""Extended-protocol pipelining on the wire, beyond test_prepared.py:
several Syncs in one write, Flush without Sync, a simple Query in the
middle of an unsynced batch, portals run a few rows at a time,
FunctionCall.

What PostgreSQL answers is the reference: each script runs on the server
directly and through the pooler (same_as_server), and the two message
sequences must be equal.  pool_size = 1 throughout, so that a server kept
by mistake shows as the next client waiting.
"""

import threading
import uuid

import pytest

from poolerlib import RawClient, as_int, same_as_server, summary, wait_until

R = RawClient

PG_BACKEND_PID = 2026  # pg_catalog.pg_backend_pid()
INT4ABS = 1394  # pg_catalog.int4abs(integer)


@pytest.fixture
def log_table(pg):
    name = "pipe_" + uuid.uuid4().hex[:12]
    with pg.connect() as c:
        c.execute(f"CREATE TABLE {name} (n int)")
    yield name
    with pg.connect() as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


def emptied(pg, name):
    def run():
        with pg.connect() as c:
            c.execute(f"TRUNCATE {name}")
    return run


def rows_of(pg, name):
    with pg.connect() as c:
        return [r[0] for r in c.execute(f"SELECT n FROM {name} ORDER BY n").fetchall()]


def through(c, p):
    return c.sock.getpeername()[1] == p.port


def server_free(pg, p):
    """The pool's server is back (nobody holds it) and no backend is idle
    in a transaction."""
    wait_until(lambda: as_int(p.pool()["sv_active"]) == 0, 3, what="the server to go back to the pool")
    assert not pg.idle_in_transaction("appdb")


def batch(sql, params=()):
    return R.parse(sql) + R.bind(params=params) + R.execute() + R.sync()


def test_several_syncs_in_one_write_middle_batch_fails(pg, pooler, log_table):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)

    def script(c):
        # outside a transaction block: each batch is its own transaction;
        # the middle ones fail at Execute and at Bind (1 / 0 is folded
        # when the unnamed statement is planned)
        c.send(batch(f"INSERT INTO {log_table} VALUES (1)")
               + batch(f"INSERT INTO {log_table} SELECT 1 / (g - 2) FROM generate_series(1, 2) g")
               + batch(f"INSERT INTO {log_table} VALUES (1 / 0)")
               + batch(f"INSERT INTO {log_table} VALUES (3)"))
        c.collect(ready=4)
        if through(c, p):
            server_free(pg, p)
        # inside one: the failure aborts it, later batches fail too
        c.send(R.query_msg("BEGIN"))
        c.collect()
        c.send(batch(f"INSERT INTO {log_table} VALUES (10)")
               + batch("SELECT nonsense(")
               + batch(f"INSERT INTO {log_table} VALUES (30)"))
        c.collect(ready=3)
        c.send(R.query_msg("COMMIT"))
        c.collect()
        if through(c, p):
            server_free(pg, p)

    direct, pooled = same_as_server(pg, p.port, script, before=emptied(pg, log_table))
    assert direct == ["1", "2", "C:INSERT 0 1", "Z:I",
                      "1", "2", "E:ERROR:22012", "Z:I",
                      "1", "E:ERROR:22012", "Z:I",
                      "1", "2", "C:INSERT 0 1", "Z:I",
                      "C:BEGIN", "Z:T",
                      "1", "2", "C:INSERT 0 1", "Z:T",
                      "E:ERROR:42601", "Z:E",
                      "E:ERROR:25P02", "Z:E",
                      "C:ROLLBACK", "Z:I"]
    assert pooled == direct
    assert rows_of(pg, log_table) == [1, 3]


def test_flush_without_sync_then_sync_later(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    waited = {}

    def script(c):
        c.send(R.parse("SELECT $1::int * 2") + R.bind(params=[21]) + R.execute() + R.flush())
        got = c.collect(ready=0)
        while len(got) < 4:
            got.append(c.read_message())
        assert summary(got) == ["1", "2", "D", "C:SELECT 1"]
        assert c.is_quiet(0.3), "no ReadyForQuery before Sync"
        if through(c, p):
            # the batch is not over: another client waits for the server
            other = threading.Thread(target=lambda: waited.setdefault(
                "res", p.raw().query("SELECT 'other'")))
            other.start()
            wait_until(lambda: as_int(p.pool()["cl_waiting"]) == 1, 3, what="the other client to wait")
        # one more statement in the same batch, then Sync
        c.send(R.parse("SELECT 'second'") + R.bind() + R.execute() + R.flush())
        c.collect(ready=0)
        got = [c.read_message() for _ in range(4)]
        assert summary(got) == ["1", "2", "D", "C:SELECT 1"]
        assert c.is_quiet(0.3), "no ReadyForQuery before Sync"
        c.send(R.sync())
        c.collect()
        if through(c, p):
            other.join(5)
            assert waited["res"].rows == [("other",)]
            server_free(pg, p)

    direct, pooled = same_as_server(pg, p.port, script)
    assert direct == ["Z:I"]  # after the messages read and checked by hand
    assert pooled == direct


def test_query_in_an_unsynced_batch_after_an_error_is_ignored(pg, pooler, log_table):
    # After an error PostgreSQL discards every message up to Sync, a simple
    # Query included: it must not run, through the pooler either.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)

    def script(c):
        # in the same write as the failing batch
        c.send(R.parse("SELECT nonsense(") + R.bind() + R.execute()
               + R.query_msg(f"INSERT INTO {log_table} VALUES (1)"))
        got = c.collect(ready=0)
        got.append(c.read_message())
        assert summary(got) == ["E:ERROR:42601"]
        assert c.is_quiet(0.3)
        # after the client read the error, before its Sync
        c.send(R.query_msg(f"INSERT INTO {log_table} VALUES (2)") + R.flush())
        assert c.is_quiet(0.3)
        c.send(R.sync())
        c.collect()
        c.send(R.query_msg(f"INSERT INTO {log_table} VALUES (3)"))
        c.collect()
        if through(c, p):
            server_free(pg, p)

    direct, pooled = same_as_server(pg, p.port, script, before=emptied(pg, log_table))
    assert direct == ["Z:I", "C:INSERT 0 1", "Z:I"]
    assert pooled == direct
    assert rows_of(pg, log_table) == [3]


def test_query_in_the_middle_of_an_unsynced_batch(pg, pooler, log_table):
    # No error: the Query runs, with its own ReadyForQuery, between the
    # batch's results and the Sync's ReadyForQuery.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)

    def script(c):
        c.send(R.parse(f"INSERT INTO {log_table} VALUES (1)") + R.bind() + R.execute()
               + R.query_msg(f"INSERT INTO {log_table} VALUES (2)")
               + R.parse(f"INSERT INTO {log_table} VALUES (3)") + R.bind() + R.execute()
               + R.sync())
        c.collect(ready=2)
        if through(c, p):
            server_free(pg, p)

    direct, pooled = same_as_server(pg, p.port, script, before=emptied(pg, log_table))
    assert direct == ["1", "2", "C:INSERT 0 1", "C:INSERT 0 1", "Z:I",
                      "1", "2", "C:INSERT 0 1", "Z:I"]
    assert pooled == direct
    assert rows_of(pg, log_table) == [1, 2, 3]


def test_portal_run_a_few_rows_at_a_time(pg, pooler):
    # Execute with a row limit: PortalSuspended, then more of the portal.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)

    def script(c):
        c.send(R.parse("SELECT g FROM generate_series(1, 5) g") + R.bind()
               + R.execute(max_rows=2) + R.execute(max_rows=2) + R.flush())
        got = c.collect(ready=0)
        while len(got) < 8:
            got.append(c.read_message())
        assert summary(got) == ["1", "2", "D", "D", "s", "D", "D", "s"]
        c.send(R.execute() + R.sync())
        c.collect()
        if through(c, p):
            server_free(pg, p)
        # a named portal in a transaction block, left suspended at Sync
        c.send(R.query_msg("BEGIN"))
        c.collect()
        c.send(R.parse("SELECT g FROM generate_series(1, 3) g")
               + R.message(b"B", b"cur\0\0" + b"\0\0" + b"\0\0" + b"\0\0")
               + R.execute("cur", 1) + R.sync())
        c.collect()
        c.send(R.execute("cur", 0) + R.sync())
        c.collect()
        c.send(R.query_msg("COMMIT"))
        c.collect()
        if through(c, p):
            server_free(pg, p)

    direct, pooled = same_as_server(pg, p.port, script)
    assert direct == ["D", "C:SELECT 1", "Z:I",
                      "C:BEGIN", "Z:T", "1", "2", "D", "s", "Z:T",
                      "D", "D", "C:SELECT 2", "Z:T", "C:COMMIT", "Z:I"]
    assert pooled == direct


def test_function_call(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)

    def script(c):
        c.send(R.function_call(PG_BACKEND_PID))
        got = c.collect()
        if through(c, p):
            # it ran on the pool's (only) server
            other = p.raw()
            try:
                assert dict(got)[b"V"][4:].decode() == other.query("SELECT pg_backend_pid()").rows[0][0]
            finally:
                other.close()
        c.send(R.function_call(INT4ABS, ["-42"]))
        got = c.collect()
        assert dict(got)[b"V"][4:] == b"42"
        c.send(R.function_call(INT4ABS, ["forty-two"]))
        c.collect()
        c.send(R.function_call(INT4ABS, [None]))  # strict: NULL, length -1
        got = c.collect()
        assert dict(got)[b"V"] == b"\xff\xff\xff\xff"
        if through(c, p):
            server_free(pg, p)
        # inside a transaction block, and after an error in it
        c.send(R.query_msg("BEGIN"))
        c.collect()
        c.send(R.function_call(INT4ABS, ["-1"]))
        c.collect()
        c.send(R.function_call(INT4ABS, ["x"]))
        c.collect()
        c.send(R.function_call(INT4ABS, ["-1"]))
        c.collect()
        c.send(R.query_msg("ROLLBACK"))
        c.collect()
        if through(c, p):
            server_free(pg, p)

    direct, pooled = same_as_server(pg, p.port, script)
    assert direct == ["V", "Z:I", "V", "Z:I", "E:ERROR:22P02", "Z:I", "V", "Z:I",
                      "C:BEGIN", "Z:T", "V", "Z:T", "E:ERROR:22P02", "Z:E",
                      "E:ERROR:25P02", "Z:E", "C:ROLLBACK", "Z:I"]
    assert pooled == direct


def test_sync_alone(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)

    def script(c):
        c.send(R.sync())
        c.collect()
        c.send(R.sync() + R.sync())
        c.collect(ready=2)
        if through(c, p):
            server_free(pg, p)

    direct, pooled = same_as_server(pg, p.port, script)
    assert direct == ["Z:I", "Z:I", "Z:I"]
    assert pooled == direct


def test_flush_alone_takes_no_server(pg, pooler):
    # A Flush with nothing before it asks for nothing: PostgreSQL answers
    # nothing, and no transaction starts, so the pooler must not lend the
    # client a server (which nothing would ever give back).
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=2)
    # An idle server with the clients' settings already (else the pooler's
    # own query to set them would end with a ReadyForQuery that hides the
    # problem).
    warm = p.raw()
    assert warm.query("SELECT 1").status == "I"
    warm.close()

    def script(c):
        c.send(R.flush())
        assert c.is_quiet(0.3)
        if through(c, p):
            other = p.raw()
            try:
                res = other.query("SELECT 1")
                assert res.error is None, f"the Flush took the only server: {res.error}"
            finally:
                other.close()
        c.send(R.query_msg("SELECT 1"))
        c.collect()

    direct, pooled = same_as_server(pg, p.port, script)
    assert direct == ["T", "D", "C:SELECT 1", "Z:I"]
    assert pooled == direct
