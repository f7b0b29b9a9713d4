"""The client matrix of issue 6: real drivers through the pooler in
transaction mode, each used the way applications use it.

psql (variables, scripts with transactions, \\copy both ways, \\gset,
ON_ERROR_STOP), psycopg 3 (server-side prepared statements over a small
pool, pipeline mode with an error in the middle, COPY of tens of MB in text
and binary, executemany), asyncpg (prepared statements, executemany, COPY,
cursors, cancellation, statement_timeout as a start-up setting,
command_timeout) and SQLAlchemy (an API-like workload over its own
QueuePool, asyncio flavour).  pgbench is in test_prepared.py and test_clients.py.

Every test checks what the database holds afterwards, not only that the
driver raised nothing, and that no server is left in a transaction.
"""

import asyncio
import hashlib
import random
import subprocess
import threading
import uuid

import psycopg
import pytest

from poolerlib import HOST, PSQL, as_int, wait_until


@pytest.fixture
def table(pg):
    """A fresh table made directly on the server, dropped afterwards:
    (id int PRIMARY KEY, v text, n bigint, b bytea)."""
    name = "mx_" + uuid.uuid4().hex[:12]
    with pg.connect() as c:
        c.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text, n bigint, b bytea)")
    yield name
    with pg.connect() as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


def count(pg, name, where="true"):
    with pg.connect() as c:
        return c.execute(f"SELECT count(*) FROM {name} WHERE {where}").fetchone()[0]


def pool_settles(pg, p):
    """Every server back in the pool (no client holds one) and no backend
    idle in transaction; the pool within its limits."""
    wait_until(lambda: as_int(p.pool()["sv_active"]) == 0, 5, what="every server back in the pool")
    assert not pg.idle_in_transaction("appdb")
    row = p.pool()
    assert as_int(row["cl_waiting"]) == 0
    assert as_int(row["sv_idle"]) + as_int(row["sv_active"]) <= \
        as_int(row["pool_size"]) + as_int(row["max_overflow"])


# ---------------------------------------------------------------------------
# psql
# ---------------------------------------------------------------------------


def run_psql(port, script_path, *args, timeout=60):
    return subprocess.run([PSQL, "-X", "-q", "-h", HOST, "-p", str(port), "-U", "postgres",
                           "-d", "appdb", "-f", str(script_path), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_psql_script(pg, pooler, table, tmp_path):
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=10)
    tag = uuid.uuid4().hex
    rows_in = tmp_path / "in.tsv"
    rows_in.write_text("".join(f"{i}\tline {i}\t{i * i}\t\\\\x{i:04x}\n" for i in range(1, 20001)))
    rows_out = tmp_path / "out.tsv"
    script = tmp_path / "script.sql"
    script.write_text(f"""
\\set ON_ERROR_STOP 1
\\set tag '{tag}'
\\set first 1
BEGIN;
INSERT INTO events (tag, who) VALUES (:'tag', :first);
INSERT INTO events (tag, who) VALUES (:'tag', :first + 1);
COMMIT;
BEGIN;
INSERT INTO events (tag, who) VALUES (:'tag', 100);
ROLLBACK;
SELECT count(*) AS n, max(who) AS top FROM events WHERE tag = :'tag' \\gset
\\echo counted :n top :top
\\copy {table} FROM '{rows_in}'
\\copy (SELECT * FROM {table} ORDER BY id) TO '{rows_out}'
SELECT count(*) AS copied, sum(n) AS total FROM {table} \\gset
\\echo copied :copied total :total
SELECT 1 / (:n - 2) AS boom;
\\echo not reached
INSERT INTO events (tag, who) VALUES (:'tag', 999);
""")
    r = run_psql(p.port, script)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)  # 3: the script stopped on an error
    assert "counted 2 top 2" in r.stdout, r.stdout
    assert f"copied 20000 total {sum(i * i for i in range(1, 20001))}" in r.stdout, r.stdout
    assert "not reached" not in r.stdout
    assert "division by zero" in r.stderr, r.stderr
    assert rows_out.read_text() == rows_in.read_text()
    assert count(pg, "events", f"tag = '{tag}'") == 2
    assert count(pg, table) == 20000
    pool_settles(pg, p)


def test_psql_error_inside_a_transaction_with_on_error_stop(pg, pooler, tmp_path):
    # psql stops in the middle of an open (failed) transaction and leaves:
    # nothing of it may be committed, and the server may not stay in it.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=10)
    tag = uuid.uuid4().hex
    script = tmp_path / "script.sql"
    script.write_text(f"""
\\set ON_ERROR_STOP on
BEGIN;
INSERT INTO events (tag, who) VALUES ('{tag}', 1);
SELECT no_such_column FROM events;
INSERT INTO events (tag, who) VALUES ('{tag}', 2);
COMMIT;
""")
    r = run_psql(p.port, script)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "no_such_column" in r.stderr
    assert count(pg, "events", f"tag = '{tag}'") == 0
    pool_settles(pg, p)
    # the next client gets a clean server
    with p.connect() as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


# ---------------------------------------------------------------------------
# psycopg 3
# ---------------------------------------------------------------------------


def run_threads(n, target, timeout=60):
    """Run target(i) in n threads; returns the exceptions they raised."""
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "threads still running"
    return errors


def server_prepared_statements(p, n_servers):
    """pg_prepared_statements of each of the pool's n_servers servers, read
    by n_servers clients that each hold one server in a transaction."""
    conns = [p.connect() for _ in range(n_servers)]
    try:
        out = {}
        for c in conns:
            c.execute("BEGIN")
            pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
            out[pid] = c.execute("SELECT name, statement FROM pg_prepared_statements").fetchall()
        for c in conns:
            c.execute("COMMIT")
        return out
    finally:
        for c in conns:
            c.close()


@pytest.mark.deadline(120)
def test_psycopg_prepared_statements_many_connections_pool_of_2(pg, pooler, table):
    # Twelve connections, every statement prepared server-side on first use
    # (prepare_threshold=0).  psycopg names its statements _pg3_0, _pg3_1,
    # ... per connection, in the order it first meets them: each
    # connection here meets the same four statements in its own order, so
    # the same name means different statements on different connections.
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=30)
    statements = [
        ("SELECT name FROM items WHERE id = %s", lambda i, k: (k % 100 + 1,),
         lambda i, k, r: r == [(f"item {k % 100 + 1}",)]),
        (f"INSERT INTO {table} (id, v, n) VALUES (%s, %s, %s) RETURNING id",
         lambda i, k: (i * 1000 + k, f"c{i}", k), lambda i, k, r: r == [(i * 1000 + k,)]),
        (f"UPDATE {table} SET n = n + %s WHERE id = %s RETURNING n",
         lambda i, k: (1, i * 1000 + k), lambda i, k, r: r == [(k + 1,)]),
        ("SELECT %s::int * %s::int", lambda i, k: (i, k), lambda i, k, r: r == [(i * k,)]),
    ]

    def client(i):
        order = list(range(len(statements)))
        random.Random(i).shuffle(order)
        a, b = order.index(1), order.index(2)
        if b < a:  # the UPDATE needs the INSERT's row
            order[a], order[b] = order[b], order[a]
        with p.connect(prepare_threshold=0) as c:
            for k in range(40):
                for s in order:
                    text, args, check = statements[s]
                    rows = c.execute(text, args(i, k)).fetchall()
                    assert check(i, k, rows), (i, k, text, rows)

    errors = run_threads(12, client, timeout=100)
    assert not errors, errors[:3]
    assert count(pg, table) == 12 * 40
    # One server-side statement per statement text and server, whatever the
    # clients called it; the pooler's names only.
    texts = set()
    for pid, rows in server_prepared_statements(p, 2).items():
        names = [r[0] for r in rows]
        assert all(n.startswith("_aps_") for n in names), rows
        assert len(rows) <= len(statements), rows
        assert len({r[1] for r in rows}) == len(rows), rows
        texts |= {r[1] for r in rows}
    assert len(texts) == len(statements), texts  # psycopg did prepare them all
    pool_settles(pg, p)


@pytest.mark.deadline(120)
def test_psycopg_pipeline_with_an_error_in_the_middle(pg, pooler, table):
    # Six connections on a pool of two, each sending pipelines of 50
    # statements.  A pipeline with a failing statement in the middle: the
    # error comes out, the statements after it are not run (psycopg:
    # "the rest of the pipeline is aborted"), and with no Sync before it
    # nothing of the pipeline is committed.  A clean pipeline commits all
    # 50.  The connections go on, and every server goes back clean.
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=30)

    def client(i):
        with p.connect(autocommit=True) as c:
            for rnd in range(4):
                fail = rnd % 2 == 0
                base = (i * 10 + rnd) * 100
                cursors = []
                with pytest.raises(psycopg.errors.DivisionByZero) if fail else nullcontext():
                    with c.pipeline():
                        for k in range(50):
                            cur = c.cursor()
                            if fail and k == 25:
                                cur.execute(f"INSERT INTO {table} (id, n) VALUES (%s, 1 / (%s - %s))",
                                            (base + k, k, k))
                            else:
                                cur.execute(f"INSERT INTO {table} (id, n) VALUES (%s, %s) RETURNING n",
                                            (base + k, k))
                            cursors.append(cur)
                assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                if fail:
                    # results up to the failure arrived, in order
                    assert [cur.fetchone()[0] for cur in cursors[:25]] == list(range(25))
                    # and none after it
                    assert all(cur.description is None for cur in cursors[26:])
                    assert count(pg, table, f"id BETWEEN {base} AND {base + 99}") == 0
                else:
                    assert [cur.fetchone()[0] for cur in cursors] == list(range(50))
                    assert count(pg, table, f"id BETWEEN {base} AND {base + 99}") == 50
                assert c.execute("SELECT 'usable'").fetchone()[0] == "usable"
        # and in a transaction block: the transaction is failed, then rolled back
        with p.connect(autocommit=False) as c:
            with pytest.raises(psycopg.errors.DivisionByZero):
                with c.pipeline():
                    for k in range(20):
                        c.execute(f"INSERT INTO {table} (id, n) VALUES (%s, 1 / (10 - %s))",
                                  (900000 + i * 100 + k, k))
            assert c.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
            c.rollback()
            assert c.execute("SELECT 'usable'").fetchone()[0] == "usable"
            c.rollback()

    errors = run_threads(6, client, timeout=100)
    assert not errors, errors[:3]
    assert count(pg, table) == 6 * 2 * 50
    pool_settles(pg, p)


def pipelines_with_prepared_statements(port, table, base):
    """Pipelines of prepared statements (prepare_threshold=0), every other
    one failing halfway; then the same statements outside a pipeline.
    What it saw, as a list to compare."""
    out = []
    with psycopg.connect(host=HOST, port=port, dbname="appdb", user="postgres", autocommit=True,
                         prepare_threshold=0, connect_timeout=5) as c:
        for rnd in range(6):
            first = base + rnd * 100
            try:
                with c.pipeline():
                    for k in range(30):
                        if k == 15 and rnd % 2 == 0:
                            c.execute("SELECT 1 / (%s - %s)", (k, k))
                        elif k % 3 == 0:
                            c.execute(f"INSERT INTO {table} (id, n) VALUES (%s, %s)", (first + k, k))
                        elif k % 3 == 1:
                            c.execute(f"SELECT n FROM {table} WHERE id = %s", (first + k - 1,))
                        else:
                            c.execute("SELECT %s::int + 1", (k,))
                out.append("ok")
            except psycopg.Error as e:
                out.append(e.sqlstate)
            out.append(c.execute(f"SELECT count(*) FROM {table} WHERE id >= %s AND id < %s",
                                 (base, base + 1000)).fetchone()[0])
        for k in range(10):
            c.execute(f"INSERT INTO {table} (id, n) VALUES (%s, %s)", (base + 900 + k, k))
            out.append(c.execute(f"SELECT n FROM {table} WHERE id = %s", (base + 900 + k,)).fetchone()[0])
            out.append(c.execute("SELECT %s::int + 1", (k,)).fetchone()[0])
    return out


@pytest.mark.deadline(90)
def test_psycopg_prepared_statements_in_failing_pipelines(pg, pooler, table):
    # Named Parses inside pipelines that fail halfway: the server skips
    # the rest, statements psycopg meant to prepare there are not
    # prepared, and psycopg and the pooler must agree on that afterwards.
    # Four such clients share two servers; each must see what a direct
    # connection sees.
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=30)
    direct = pipelines_with_prepared_statements(pg.port, table, 0)
    assert direct[:12] == ["22012", 0, "ok", 10, "22012", 10, "ok", 20, "22012", 20, "ok", 30]
    results = {}

    def client(i):
        results[i] = pipelines_with_prepared_statements(p.port, table, (i + 1) * 10000)

    errors = run_threads(4, client, timeout=80)
    assert not errors, errors[:3]
    assert all(results[i] == direct for i in range(4)), (direct, results)
    pool_settles(pg, p)


class nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.deadline(120)
def test_psycopg_copy_tens_of_megabytes(pg, pooler, table):
    # Text COPY in and out of ~30 MB, binary COPY in and out of ~15 MB:
    # much more than the pooler buffers, so flow control works both ways.
    # A second client keeps using the other server meanwhile.
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=30)
    stop = threading.Event()
    side = {"n": 0}

    def bystander():
        with p.connect() as c:
            while not stop.is_set():
                assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 100
                side["n"] += 1

    t = threading.Thread(target=bystander)
    t.start()
    try:
        lines = [f"{i}\t{'v' * 150}{i}\t{i * 7}\n".encode() for i in range(1, 180001)]
        text = b"".join(lines)
        assert len(text) > 28_000_000
        with p.connect() as c:
            with c.cursor().copy(f"COPY {table} (id, v, n) FROM STDIN") as copy:
                for start in range(0, len(text), 1 << 20):
                    copy.write(text[start:start + (1 << 20)])
            out = bytearray()
            with c.cursor().copy(f"COPY (SELECT id, v, n FROM {table} ORDER BY id) TO STDOUT") as copy:
                for chunk in copy:
                    out += chunk
            assert hashlib.sha256(out).hexdigest() == hashlib.sha256(text).hexdigest()
            assert c.execute(f"SELECT count(*), sum(n) FROM {table}").fetchone() == \
                (180000, 7 * 180000 * 180001 // 2)
            c.execute(f"TRUNCATE {table}")

            # binary
            blob = bytes(range(256)) * 4
            with c.cursor().copy(f"COPY {table} (id, v, n, b) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "text", "int8", "bytea"])
                for i in range(15000):
                    copy.write_row((i, f"row {i}", i * (1 << 40), blob[i % 256:] + blob[:i % 256]))
            seen = 0
            with c.cursor().copy(f"COPY (SELECT id, v, n, b FROM {table} ORDER BY id)"
                                 " TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "text", "int8", "bytea"])
                for row in copy.rows():
                    i = seen
                    assert row == (i, f"row {i}", i * (1 << 40), blob[i % 256:] + blob[:i % 256]), i
                    seen += 1
            assert seen == 15000
    finally:
        stop.set()
        t.join(30)
    assert side["n"] > 0
    assert count(pg, table) == 15000
    pool_settles(pg, p)


def test_psycopg_executemany(pg, pooler, table):
    # executemany, plain and with RETURNING, prepared and not; then one
    # with a duplicate key in the middle: it must end as it does on the
    # server directly.
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=10)
    with p.connect(prepare_threshold=0) as c:
        cur = c.cursor()
        cur.executemany(f"INSERT INTO {table} (id, v) VALUES (%s, %s)",
                        [(i, f"m{i}") for i in range(1000)])
        assert cur.rowcount == 1000
        cur.executemany(f"UPDATE {table} SET n = %s WHERE id = %s RETURNING id, n",
                        [(i * 2, i) for i in range(0, 1000, 10)], returning=True)
        got = []
        while True:
            got.extend(cur.fetchall())
            if not cur.nextset():
                break
        assert got == [(i, i * 2) for i in range(0, 1000, 10)]
    assert count(pg, table) == 1000
    assert count(pg, table, "n IS NOT NULL") == 100

    def with_duplicate(port, first_id):
        rows = [(first_id + i, "dup") for i in range(20)] + [(first_id, "again")] + \
               [(first_id + 100 + i, "after") for i in range(20)]
        with psycopg.connect(host=HOST, port=port, dbname="appdb", user="postgres",
                             autocommit=True, prepare_threshold=None) as c:
            with pytest.raises(psycopg.errors.UniqueViolation):
                c.cursor().executemany(f"INSERT INTO {table} (id, v) VALUES (%s, %s)", rows)
            assert c.execute("SELECT 1").fetchone()[0] == 1
        return (count(pg, table, f"id BETWEEN {first_id} AND {first_id + 99}"),
                count(pg, table, f"id BETWEEN {first_id + 100} AND {first_id + 199}"))

    assert with_duplicate(p.port, 20000) == with_duplicate(pg.port, 10000)
    pool_settles(pg, p)


# ---------------------------------------------------------------------------
# asyncpg
# ---------------------------------------------------------------------------


def arun(coro, timeout=60):
    """Run coro with a bound on its time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def aconnect(p, **kw):
    import asyncpg
    return await asyncio.wait_for(asyncpg.connect(host=HOST, port=p.port, user="postgres",
                                                  database="appdb", **kw), 10)


@pytest.mark.deadline(120)
def test_asyncpg_prepared_executemany_copy_and_cursors(pg, pooler, table):
    asyncpg = pytest.importorskip("asyncpg")
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=30)

    async def client(i):
        conn = await aconnect(p)
        try:
            base = i * 100000
            by_id = await conn.prepare("SELECT name FROM items WHERE id = $1")
            for k in range(1, 31):
                assert await by_id.fetchval(k) == f"item {k}"
            assert [r["name"] for r in await by_id.fetch(5)] == ["item 5"]
            await conn.executemany(f"INSERT INTO {table} (id, v, n) VALUES ($1, $2, $3)",
                                   [(base + k, f"em{k}", k) for k in range(500)])
            # executemany is all or nothing: a duplicate in the middle
            with pytest.raises(asyncpg.exceptions.UniqueViolationError):
                await conn.executemany(f"INSERT INTO {table} (id, v, n) VALUES ($1, $2, $3)",
                                       [(base + 600 + k, "dup", k) for k in range(50)]
                                       + [(base, "dup", 0)]
                                       + [(base + 700 + k, "dup", k) for k in range(50)])
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE v = 'dup'") == 0
            await conn.copy_records_to_table(
                table, records=[(base + 1000 + k, f"cp{k}", k, bytes([k % 256]) * 100)
                                for k in range(20000)],
                columns=["id", "v", "n", "b"])
            buf = bytearray()

            async def sink(chunk):
                buf.extend(chunk)

            await conn.copy_from_query(
                f"SELECT id, n FROM {table} WHERE id >= $1 AND id < $2 ORDER BY id",
                base, base + 100000, output=sink)
            lines = bytes(buf).decode().splitlines()
            assert len(lines) == 20500
            assert lines[0] == f"{base}\t0" and lines[-1] == f"{base + 20999}\t19999"
            # cursors live in a transaction
            async with conn.transaction():
                seen = 0
                async for r in conn.cursor(f"SELECT id FROM {table} WHERE id >= $1 AND id < $2"
                                           " ORDER BY id", base, base + 100000, prefetch=300):
                    seen += 1
                assert seen == 20500
                cur = await conn.cursor(f"SELECT id FROM {table} WHERE id >= $1 ORDER BY id", base)
                first = await cur.fetch(10)
                await cur.forward(90)
                assert [r["id"] for r in first] == list(range(base, base + 10))
                assert (await cur.fetchrow())["id"] == base + 100
            # the prepared statement outlives the transactions, on any server
            assert await by_id.fetchval(99) == "item 99"
            return i
        finally:
            await conn.close()

    async def main():
        return await asyncio.gather(*(client(i) for i in range(5)))

    assert arun(main(), 100) == list(range(5))
    assert count(pg, table) == 5 * 20500
    pool_settles(pg, p)


def test_asyncpg_cancel_by_timeout(pg, pooler):
    # asyncio.wait_for gives up after 0.5 s: asyncpg sends a CancelRequest
    # with the key the pooler gave it, and the connection goes on.
    pytest.importorskip("asyncpg")
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=10)

    async def main():
        conn = await aconnect(p)
        try:
            pids = {await conn.fetchval("SELECT pg_backend_pid()")}
            for _ in range(3):
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(conn.fetch("SELECT pg_sleep(10)"), 0.5)
                assert await asyncio.wait_for(conn.fetchval("SELECT 'usable'"), 5) == "usable"
                async with conn.transaction():
                    assert await conn.fetchval("SELECT $1::int + 1", 1) == 2
                    pids.add(await conn.fetchval("SELECT pg_backend_pid()"))
            return pids
        finally:
            await conn.close()

    pids = arun(main(), 40)
    # the one server was cancelled, not closed and replaced
    assert len(pids) == 1, pids
    assert not [r for r in pg.backend_rows("appdb", None) if "pg_sleep(10)" in (r["query"] or "")
                and r["state"] == "active"]
    pool_settles(pg, p)


def test_asyncpg_statement_timeout_at_connect_follows_the_client(pg, pooler):
    # statement_timeout given at connect time is a start-up setting: it
    # must apply on every server the client's transactions run on, and
    # never to another client.
    asyncpg = pytest.importorskip("asyncpg")
    # FIFO (pool_use_lifo off) makes the two clients swap servers each round
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=10, pool_use_lifo="off")

    async def main():
        timed = await aconnect(p, server_settings={"statement_timeout": "200"})
        plain = await aconnect(p)
        try:
            timed_pids, plain_pids = set(), set()
            for attempt in range(6):
                # plain holds one server (the one timed used last time, as
                # it was given back first); timed runs on the other
                async with plain.transaction():
                    held = await plain.fetchval("SELECT pg_backend_pid()")
                    assert await plain.fetchval("SHOW statement_timeout") == "0"
                    assert await plain.fetchval("SELECT pg_sleep(0.3)::text") == ""
                    pid = await timed.fetchval("SELECT pg_backend_pid()")
                    assert pid != held
                    assert await timed.fetchval("SHOW statement_timeout") == "200ms"
                    with pytest.raises(asyncpg.exceptions.QueryCanceledError):
                        await timed.fetch("SELECT pg_sleep(1)")
                    timed_pids.add(pid)
                    plain_pids.add(held)
            # both ran on both servers
            assert len(timed_pids) == 2 and timed_pids == plain_pids, (timed_pids, plain_pids)
        finally:
            await timed.close()
            await plain.close()

    arun(main(), 60)
    pool_settles(pg, p)


def test_asyncpg_command_timeout(pg, pooler):
    pytest.importorskip("asyncpg")
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=10)

    async def main():
        conn = await aconnect(p, command_timeout=0.5)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetch("SELECT pg_sleep(10)")
            assert await conn.fetchval("SELECT pg_sleep(0.1)::text || 'ok'") == "ok"
            with pytest.raises(asyncio.TimeoutError):
                await conn.execute("SELECT pg_sleep(10)")
            assert await conn.fetchval("SELECT 2") == 2
        finally:
            await conn.close()

    arun(main(), 30)
    pool_settles(pg, p)


# ---------------------------------------------------------------------------
# SQLAlchemy
# ---------------------------------------------------------------------------


@pytest.fixture
def api_tables(pg):
    """An API's tables: items (200 rows) and an audit log, per test."""
    suffix = uuid.uuid4().hex[:10]
    items, audit = f"api_items_{suffix}", f"api_audit_{suffix}"
    with pg.connect() as c:
        c.execute(f"CREATE TABLE {items} (id serial PRIMARY KEY, title text NOT NULL,"
                  " counter int NOT NULL DEFAULT 0)")
        c.execute(f"INSERT INTO {items} (title) SELECT 'item-' || g FROM generate_series(1, 200) g")
        c.execute(f"CREATE TABLE {audit} (id bigserial PRIMARY KEY, item_id int NOT NULL,"
                  " action text NOT NULL)")
    yield items, audit
    with pg.connect() as c:
        c.execute(f"DROP TABLE IF EXISTS {items}, {audit}")


@pytest.mark.deadline(150)
def test_sqlalchemy_api_workload(pg, pooler, api_tables):
    # SQLAlchemy 1.4 (Debian 12) has no psycopg 3 dialect, and psycopg2 is
    # not installed: the asyncio engine over asyncpg, whose pool is
    # QueuePool's asyncio twin, with the settings of the issue.  40
    # concurrent request handlers (tasks, as in an async web framework) on
    # a pooler with 5 servers.
    pytest.importorskip("asyncpg")
    pytest.importorskip("sqlalchemy")
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    items, audit = api_tables
    p = pooler(pool_size=5, max_overflow=0, pool_timeout=30)
    handlers, requests = 40, 50
    samples = []

    async def handler(engine, i, tally):
        rnd = random.Random(i)
        for k in range(requests):
            what = rnd.choices(["get", "list", "create", "update", "rollback"], [40, 20, 15, 20, 5])[0]
            if what == "get":
                item_id = rnd.randint(1, 200)
                async with engine.connect() as conn:
                    row = (await conn.execute(text(f"SELECT id, title FROM {items} WHERE id = :id"),
                                              {"id": item_id})).one()
                assert row.title == f"item-{item_id}"
            elif what == "list":
                offset = rnd.randint(0, 180)
                async with engine.connect() as conn:
                    ids = (await conn.execute(text(f"SELECT id FROM {items} WHERE id <= 200"
                                                   " ORDER BY id LIMIT 20 OFFSET :o"),
                                              {"o": offset})).scalars().all()
                assert ids == list(range(offset + 1, offset + 21))
            elif what == "create":
                async with engine.begin() as conn:
                    new_id = (await conn.execute(
                        text(f"INSERT INTO {items} (title) VALUES (:t) RETURNING id"),
                        {"t": f"new-{i}-{k}"})).scalar_one()
                    await conn.execute(text(f"INSERT INTO {audit} (item_id, action) VALUES (:id, 'create')"),
                                       {"id": new_id})
                tally["created"] += 1
            elif what == "update":
                async with engine.begin() as conn:
                    res = await conn.execute(text(f"UPDATE {items} SET counter = counter + 1 WHERE id = :id"),
                                             {"id": rnd.randint(1, 200)})
                    assert res.rowcount == 1
                tally["updated"] += 1
            else:
                async with engine.connect() as conn:
                    trans = await conn.begin()
                    new_id = (await conn.execute(
                        text(f"INSERT INTO {items} (title) VALUES ('rolled back') RETURNING id"))).scalar_one()
                    await conn.execute(text(f"INSERT INTO {audit} (item_id, action) VALUES (:id, 'x')"),
                                       {"id": new_id})
                    await trans.rollback()
                tally["rolled_back"] += 1

    async def sample_pools(stop):
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            row = await loop.run_in_executor(None, p.pool)
            if row is not None:
                samples.append(row)
            await asyncio.sleep(0.05)

    async def main():
        engine = create_async_engine(f"postgresql+asyncpg://postgres@{HOST}:{p.port}/appdb",
                                     poolclass=AsyncAdaptedQueuePool, pool_size=20, max_overflow=30,
                                     pool_timeout=30, pool_recycle=1800)
        tally = {"created": 0, "updated": 0, "rolled_back": 0}
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_pools(stop))
        try:
            await asyncio.gather(*(handler(engine, i, tally) for i in range(handlers)))
            # All handlers started at once: SQLAlchemy opened 40
            # connections and keeps pool_size = 20 of them.
            stop.set()
            await sampler
            tally["kept"] = await asyncio.get_running_loop().run_in_executor(None, lambda: wait_until(
                lambda: (lambda row: row if as_int(row["cl_active"]) == 20 else None)(p.pool()),
                5, what="SHOW POOLS to show the 20 connections SQLAlchemy keeps"))
        finally:
            stop.set()
            await sampler
            await engine.dispose()
        return tally

    tally = arun(main(), 140)
    assert tally["created"] and tally["updated"] and tally["rolled_back"], tally
    with pg.connect() as c:
        assert c.execute(f"SELECT count(*) FROM {items}").fetchone()[0] == 200 + tally["created"]
        assert c.execute(f"SELECT sum(counter) FROM {items}").fetchone()[0] == tally["updated"]
        assert c.execute(f"SELECT count(*) FROM {audit}").fetchone()[0] == tally["created"]
        assert c.execute(f"SELECT count(*) FROM {items} WHERE title = 'rolled back'").fetchone()[0] == 0
    # SHOW POOLS while it ran: never more servers than the pool has, never
    # more clients than SQLAlchemy's pool opens.
    assert samples
    for row in samples:
        servers = sum(as_int(row[k]) for k in ("sv_active", "sv_idle", "sv_used", "sv_login"))
        assert servers <= 5, row
        assert as_int(row["cl_active"]) + as_int(row["cl_waiting"]) <= 50, row
        assert 0.0 <= float(row["utilization_pct"]) <= 100.0, row
    kept = tally["kept"]
    assert as_int(kept["cl_active"]) == 20 and as_int(kept["cl_waiting"]) == 0, kept
    assert as_int(kept["sv_active"]) == 0 and 1 <= as_int(kept["sv_idle"]) <= 5, kept
    assert as_int(kept["timeouts"]) == 0, kept
    # engine.dispose() closed them all
    wait_until(lambda: as_int(p.pool()["cl_active"]) == 0, 5, what="SQLAlchemy's connections to close")
    pool_settles(pg, p)
    assert pg.backends() <= 5


@pytest.mark.deadline(150)
def test_sqlalchemy_queuepool_threads(pg, pooler, api_tables):
    # The issue's own setting, word for word: SQLAlchemy's QueuePool(pool_size=20,
    # max_overflow=30, pool_timeout=30, pool_recycle=1800) over psycopg2, 40
    # threads as in a threaded web server, on a pooler with 5 servers.
    pytest.importorskip("psycopg2")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy import text
    from sqlalchemy.pool import QueuePool

    items, audit = api_tables
    p = pooler(pool_size=5, max_overflow=0, pool_timeout=30)
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@{HOST}:{p.port}/appdb",
                                      poolclass=QueuePool, pool_size=20, max_overflow=30,
                                      pool_timeout=30, pool_recycle=1800)
    assert isinstance(engine.pool, QueuePool) and engine.pool.size() == 20
    lock = threading.Lock()
    tally = {"created": 0, "updated": 0, "rolled_back": 0}
    errors = []

    def handler(i):
        rnd = random.Random(1000 + i)
        try:
            for k in range(40):
                what = rnd.choices(["get", "create", "update", "rollback"], [50, 20, 25, 5])[0]
                if what == "get":
                    item_id = rnd.randint(1, 200)
                    with engine.connect() as conn:
                        title = conn.execute(text(f"SELECT title FROM {items} WHERE id = :id"),
                                             {"id": item_id}).scalar_one()
                    assert title == f"item-{item_id}", title
                elif what == "create":
                    with engine.begin() as conn:
                        new_id = conn.execute(text(f"INSERT INTO {items} (title) VALUES (:t) "
                                                   "RETURNING id"), {"t": f"t-{i}-{k}"}).scalar_one()
                        conn.execute(text(f"INSERT INTO {audit} (item_id, action) VALUES (:id, 'c')"),
                                     {"id": new_id})
                    with lock:
                        tally["created"] += 1
                elif what == "update":
                    with engine.begin() as conn:
                        conn.execute(text(f"UPDATE {items} SET counter = counter + 1 WHERE id = :id"),
                                     {"id": rnd.randint(1, 200)})
                    with lock:
                        tally["updated"] += 1
                else:
                    with engine.connect() as conn:
                        trans = conn.begin()
                        conn.execute(text(f"INSERT INTO {items} (title) VALUES ('rolled back')"))
                        trans.rollback()
                    with lock:
                        tally["rolled_back"] += 1
        except Exception as e:  # reported below, with the thread's number
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=handler, args=(i,), daemon=True) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert engine.pool.checkedout() == 0
    kept = wait_until(lambda: (lambda row: row if as_int(row["cl_active"]) == engine.pool.checkedin()
                               else None)(p.pool()), 5, what="SHOW POOLS to show SQLAlchemy's connections")
    assert as_int(kept["timeouts"]) == 0 and as_int(kept["cl_waiting"]) == 0, kept
    engine.dispose()
    with pg.connect() as c:
        assert c.execute(f"SELECT count(*) FROM {items}").fetchone()[0] == 200 + tally["created"]
        assert c.execute(f"SELECT sum(counter) FROM {items}").fetchone()[0] == tally["updated"]
        assert c.execute(f"SELECT count(*) FROM {audit}").fetchone()[0] == tally["created"]
    assert pg.idle_in_transaction() == []
    pool_settles(pg, p)
    assert pg.backends() <= 5


# ---------------------------------------------------------------------------
# A COPY that fails early, with real drivers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_copy_failing_early_leaves_no_server_held(pg, pooler, table, driver):
    # Row 10 of 200000 breaks a constraint: the server fails the COPY at
    # once while the driver is still streaming rows, which then arrive
    # after the transaction is over.  The driver's connection then sits
    # idle, as in an application's connection pool; the pooler's only
    # server must be free for the next client.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=2)
    rows = [(i, None if i == 10 else "x" * 100) for i in range(200000)]
    with pg.connect() as c:
        c.execute(f"ALTER TABLE {table} ALTER v SET NOT NULL")

    def next_client():
        with p.connect() as other:
            return other.execute("SELECT 'served'").fetchone()[0]

    if driver == "psycopg":
        with p.connect() as c:
            with pytest.raises(psycopg.errors.NotNullViolation):
                with c.cursor().copy(f"COPY {table} (id, v) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            assert next_client() == "served"
            assert c.execute("SELECT 1").fetchone()[0] == 1
    else:
        asyncpg = pytest.importorskip("asyncpg")

        async def main():
            conn = await aconnect(p)
            try:
                with pytest.raises(asyncpg.exceptions.NotNullViolationError):
                    await conn.copy_records_to_table(table, records=rows, columns=["id", "v"])
                loop = asyncio.get_running_loop()
                assert await loop.run_in_executor(None, next_client) == "served"
                assert await conn.fetchval("SELECT 1") == 1
            finally:
                await conn.close()

        arun(main(), 30)
    assert count(pg, table) == 0
    pool_settles(pg, p)
