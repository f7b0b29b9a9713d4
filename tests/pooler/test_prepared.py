"""Named prepared statements in transaction pooling (issue 6).

A client's statements follow it from server to server: the pooler prepares
them under its own names where they are missing and answers ParseComplete /
CloseComplete itself where the server already has them.  These tests pin
the wire behaviour byte by byte with RawClient, then run real drivers.
"""

import asyncio
import subprocess
import threading

import pytest

from poolerlib import HOST, PGBENCH, RawClient, wait_until


def hold_server(p):
    """A client that holds one server in an open transaction (so the next
    client gets another one); returns (conn, backend pid)."""
    conn = p.connect(autocommit=True)
    conn.execute("BEGIN")
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    return conn, pid


def kinds(res):
    return "".join(k.decode() for k, _ in res.messages)


def test_named_statement_follows_the_client_to_another_server(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0)
    raw = RawClient(p.port).startup("postgres", "appdb")
    try:
        raw.send(RawClient.parse("SELECT $1::int * 2, pg_backend_pid()", name="dbl")
                 + RawClient.sync())
        res = raw.read_until_ready()
        assert kinds(res) == "1Z" and res.status == "I", res.messages
        first = raw.query("SELECT pg_backend_pid()").rows[0][0]

        # Hold the server the statement was prepared on: the next
        # transaction must run on the other one.
        holder = None
        for _ in range(20):
            holder, pid = hold_server(p)
            if str(pid) == first:
                break
            holder.close()
        else:
            pytest.fail("could not get hold of the first server")
        raw.send(RawClient.bind("dbl", params=[21]) + RawClient.execute() + RawClient.sync())
        res = raw.read_until_ready()
        assert res.error is None, res.error
        assert kinds(res) == "2DCZ", res.messages
        assert res.rows[0][0] == "42" and res.rows[0][1] != first
        holder.close()
        # Several more times: prepared once per server, not every time.
        for i in range(5):
            raw.send(RawClient.bind("dbl", params=[i]) + RawClient.execute() + RawClient.sync())
            res = raw.read_until_ready()
            assert res.error is None and res.rows[0][0] == str(2 * i)
        assert pg.backends() <= 2
    finally:
        raw.close()


def test_statement_prepared_once_per_server(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    with p.connect(prepare_threshold=0, autocommit=True) as a, \
            p.connect(prepare_threshold=0, autocommit=True) as b:
        for _ in range(3):
            assert a.execute("SELECT %s::int + 1", (1,)).fetchone()[0] == 2
            assert b.execute("SELECT %s::int + 1", (2,)).fetchone()[0] == 3
        # Both clients' statement is one statement on the one server.
        with a.transaction():
            rows = a.execute("SELECT name, statement FROM pg_prepared_statements "
                             "WHERE statement LIKE 'SELECT $1::int + 1%%'").fetchall()
        assert len(rows) == 1, rows
        assert rows[0][0].startswith("_aps_")


def test_parse_of_a_name_in_use_is_refused(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    raw = RawClient(p.port).startup("postgres", "appdb")
    try:
        raw.send(RawClient.parse("SELECT 1", name="s") + RawClient.sync())
        assert kinds(raw.read_until_ready()) == "1Z"
        # outside a transaction block: error, then ReadyForQuery 'I'
        raw.send(RawClient.parse("SELECT 2", name="s") + RawClient.bind("s")
                 + RawClient.execute() + RawClient.sync())
        res = raw.read_until_ready()
        assert kinds(res) == "EZ" and res.error.sqlstate == "42P05", res.messages
        assert res.error.message == 'prepared statement "s" already exists'
        assert res.status == "I"
        # inside one: the transaction is aborted, as PostgreSQL would
        assert raw.query("BEGIN").status == "T"
        raw.send(RawClient.parse("SELECT 3", name="s") + RawClient.sync())
        res = raw.read_until_ready()
        assert kinds(res) == "EZ" and res.status == "E", res.messages
        res = raw.query("COMMIT")
        assert res.tags == ["ROLLBACK"], res.messages
        # the first statement is still there
        raw.send(RawClient.bind("s") + RawClient.execute() + RawClient.sync())
        assert raw.read_until_ready().rows == [("1",)]
    finally:
        raw.close()


def test_close_then_bind_is_an_error(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    raw = RawClient(p.port).startup("postgres", "appdb")
    try:
        raw.send(RawClient.parse("SELECT 1", name="gone") + RawClient.close_statement("gone")
                 + RawClient.sync())
        assert kinds(raw.read_until_ready()) == "13Z"
        raw.send(RawClient.bind("gone") + RawClient.execute() + RawClient.sync())
        res = raw.read_until_ready()
        assert res.error.sqlstate == "26000" and kinds(res) == "EZ", res.messages
        assert '"gone"' in res.error.message
        # closing a name that does not exist is not an error (as in PostgreSQL)
        raw.send(RawClient.close_statement("never") + RawClient.sync())
        assert kinds(raw.read_until_ready()) == "3Z"
        # and the name can be used again
        raw.send(RawClient.parse("SELECT 2", name="gone") + RawClient.bind("gone")
                 + RawClient.execute() + RawClient.sync())
        res = raw.read_until_ready()
        assert kinds(res) == "12DCZ" and res.rows == [("2",)], res.messages
    finally:
        raw.close()


def test_error_in_a_pipeline_skips_to_sync(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    raw = RawClient(p.port).startup("postgres", "appdb")
    try:
        # good, bad, then statements the server skips; a second batch works
        raw.send(RawClient.parse("SELECT 1", name="good")
                 + RawClient.parse("SELECT nonsense(", name="bad")
                 + RawClient.parse("SELECT 3", name="skipped")
                 + RawClient.bind("good") + RawClient.execute() + RawClient.sync()
                 + RawClient.parse("SELECT 4", name="after") + RawClient.bind("after")
                 + RawClient.execute() + RawClient.sync())
        res = raw.read_until_ready()
        assert kinds(res) == "1EZ" and res.error.sqlstate == "42601", res.messages
        res = raw.read_until_ready()
        assert kinds(res) == "12DCZ" and res.rows == [("4",)], res.messages
        # "bad" and "skipped" do not exist; "good" does
        for name in ("bad", "skipped"):
            raw.send(RawClient.bind(name) + RawClient.execute() + RawClient.sync())
            res = raw.read_until_ready()
            assert res.error is not None and res.error.sqlstate == "26000", (name, res.messages)
        raw.send(RawClient.bind("good") + RawClient.execute() + RawClient.sync())
        assert raw.read_until_ready().rows == [("1",)]
        # "skipped" can now be parsed: the server never had it
        raw.send(RawClient.parse("SELECT 3", name="skipped") + RawClient.sync())
        assert kinds(raw.read_until_ready()) == "1Z"
    finally:
        raw.close()


def test_describe_and_flush_without_sync(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    raw = RawClient(p.port).startup("postgres", "appdb")
    other = None
    try:
        raw.send(RawClient.parse("SELECT $1::text AS t", name="d") + RawClient.describe_statement("d")
                 + RawClient.flush())
        # ParseComplete, ParameterDescription, RowDescription; no ReadyForQuery
        assert raw.read_kinds(3) == "1tT"
        # The server stays with this client until Sync: another client waits.
        done = threading.Event()

        def other_client():
            with p.connect() as o:
                o.execute("SELECT 1")
            done.set()

        other = threading.Thread(target=other_client, daemon=True)
        other.start()
        raw.send(RawClient.bind("d", params=["x"]) + RawClient.execute() + RawClient.flush())
        assert raw.read_kinds(3) == "2DC"
        wait_until(lambda: str(p.pool()["cl_waiting"]) == "1", 5, what="the other client waiting")
        assert not done.is_set()
        raw.send(RawClient.sync())
        res = raw.read_until_ready()
        assert kinds(res) == "Z" and res.status == "I"
        other.join(10)
        assert done.is_set()
        # Once described on one server, the statement describes on any.
        raw.send(RawClient.describe_statement("d") + RawClient.sync())
        assert kinds(raw.read_until_ready()) == "tTZ"
    finally:
        raw.close()


def test_lru_bound_per_server(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, max_prepared_statements=3)
    raw = RawClient(p.port).startup("postgres", "appdb")
    try:
        for i in range(8):
            raw.send(RawClient.parse(f"SELECT {i}", name=f"s{i}") + RawClient.sync())
            assert kinds(raw.read_until_ready()) == "1Z"
        # every name still works, in any order, on the one server
        for i in [0, 7, 3, 0, 5, 1, 6, 2, 4]:
            raw.send(RawClient.bind(f"s{i}") + RawClient.execute() + RawClient.sync())
            res = raw.read_until_ready()
            assert res.rows == [(str(i),)], res.messages
        res = raw.query("SELECT count(*) FROM pg_prepared_statements")
        assert int(res.rows[0][0]) <= 3, res.rows
    finally:
        raw.close()


def test_sql_deallocate_of_protocol_statements(pg, pooler):
    # psycopg deallocates with "DEALLOCATE name" when its cache is full.
    p = pooler(pool_size=2, max_overflow=0)
    with p.connect(prepare_threshold=0, autocommit=True) as c:
        c.prepared_max = 3
        for rnd in range(3):
            for i in range(8):
                assert c.execute(f"SELECT %s::int + {i}", (rnd,)).fetchone()[0] == rnd + i
        # DEALLOCATE of a name the client prepared in SQL is the server's
        c.execute("BEGIN")
        c.execute("PREPARE mine AS SELECT 1")
        c.execute("DEALLOCATE mine")
        c.execute("COMMIT")
    raw = RawClient(p.port).startup("postgres", "appdb")
    try:
        raw.send(RawClient.parse("SELECT 7", name="p7") + RawClient.sync())
        raw.read_until_ready()
        res = raw.query("DEALLOCATE p7")
        assert res.tags == ["DEALLOCATE"] and res.status == "I", res.messages
        raw.send(RawClient.bind("p7") + RawClient.execute() + RawClient.sync())
        assert raw.read_until_ready().error.sqlstate == "26000"
        # DEALLOCATE ALL and DISCARD ALL forget every name
        raw.send(RawClient.parse("SELECT 8", name="p8") + RawClient.sync())
        raw.read_until_ready()
        assert raw.query("DEALLOCATE ALL").tags == ["DEALLOCATE ALL"]
        raw.send(RawClient.bind("p8") + RawClient.execute() + RawClient.sync())
        assert raw.read_until_ready().error.sqlstate == "26000"
        raw.send(RawClient.parse("SELECT 9", name="p8") + RawClient.bind("p8")
                 + RawClient.execute() + RawClient.sync())
        assert raw.read_until_ready().rows == [("9",)]
        assert raw.query("DISCARD ALL").tags == ["DISCARD ALL"]
        raw.send(RawClient.bind("p8") + RawClient.execute() + RawClient.sync())
        assert raw.read_until_ready().error.sqlstate == "26000"
    finally:
        raw.close()


@pytest.mark.deadline(120)
def test_pgbench_prepared_50_clients_pool_5(pg, pooler, pgbench_tables):
    p = pooler(pool_size=5, max_overflow=0)
    for mode in ("prepared", "extended", "simple"):
        r = subprocess.run([PGBENCH, "-n", "-S", "-M", mode, "-c", "50", "-j", "2", "-t", "100",
                            "-h", HOST, "-p", str(p.port), "-U", "postgres", "appdb"],
                           capture_output=True, text=True, timeout=100)
        assert r.returncode == 0, (mode, r.stderr[-2000:])
        assert "number of transactions actually processed: 5000/5000" in r.stdout, r.stdout
        assert "number of failed transactions: 0" in r.stdout or "failed" not in r.stdout
    # The TPC-B-like script too (BEGIN ... END with updates), prepared.  One
    # thread per client: pgbench prepares with a blocking PQprepare, so a
    # thread serving several clients deadlocks against any pool limit when
    # the clients holding the servers are the ones it does not serve.
    r = subprocess.run([PGBENCH, "-n", "-M", "prepared", "-c", "20", "-j", "20", "-t", "50",
                        "-h", HOST, "-p", str(p.port), "-U", "postgres", "appdb"],
                       capture_output=True, text=True, timeout=100)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "number of transactions actually processed: 1000/1000" in r.stdout
    assert pg.backends() <= 5


def test_asyncpg_statements_across_servers(pg, pooler):
    asyncpg = pytest.importorskip("asyncpg")
    p = pooler(pool_size=2, max_overflow=0)

    async def worker(n):
        conn = await asyncpg.connect(host=HOST, port=p.port, user="postgres", database="appdb")
        try:
            stmt = await conn.prepare("SELECT $1::int * $2::int")
            total = 0
            for i in range(30):
                total += await stmt.fetchval(i, n)
                total += await conn.fetchval("SELECT $1::int + 0", i)
                async with conn.transaction():
                    await conn.execute("SELECT $1::text", "x")
            return total
        finally:
            await conn.close()

    async def run():
        return await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(1, 7))), 60)

    results = asyncio.run(run())
    assert results == [sum(i * n + i for i in range(30)) for n in range(1, 7)]
