"""Real clients through the pooler: psql, pgbench (simple and extended
protocol), psycopg 3, asyncpg, SQLAlchemy; logins (trust, md5, unknown
database, a server that asks for a password), the Unix socket and
max_client_conn; named prepared statements refused cleanly (0A000) in
transaction mode; a Terminate closes the client's socket at once."""

import asyncio
import os
import re
import struct
import subprocess
import uuid

import psycopg
import pytest

from poolerlib import (HOST, PGBENCH, PSQL, SECURE_PASSWORD, PgError, RawClient, md5_secret,
                       wait_until)


def psql(port, *args, dbname="appdb", host=HOST, timeout=20):
    return subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port),
                           "-U", "postgres", "-d", dbname, *args],
                          capture_output=True, text=True, timeout=timeout)


def test_psql_select_1(pg, pooler):
    p = pooler()
    r = psql(p.port, "-c", "select 1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def test_psql_transaction_in_one_query_string(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    tag = uuid.uuid4().hex
    r = psql(p.port, "-c", f"BEGIN; INSERT INTO events (tag) VALUES ('{tag}'); "
                           f"INSERT INTO events (tag) VALUES ('{tag}'); COMMIT;")
    assert r.returncode == 0, r.stderr
    r = psql(p.port, "-c", f"BEGIN; INSERT INTO events (tag) VALUES ('{tag}'); ROLLBACK;")
    assert r.returncode == 0, r.stderr
    with pg.connect() as c:
        assert c.execute("SELECT count(*) FROM events WHERE tag = %s", (tag,)).fetchone()[0] == 2
    assert not pg.idle_in_transaction("appdb")


@pytest.mark.deadline(150)
@pytest.mark.parametrize("mode,script", [("simple", "-S"), ("extended", "-S"), ("extended", "tpcb")])
def test_pgbench(pg, pooler, pgbench_tables, mode, script):
    p = pooler(pool_size=5, max_overflow=0, pool_timeout=30)
    args = [PGBENCH, "-n", "-c", "20", "-j", "2", "-t", "50" if script == "-S" else "10",
            "-M", mode, "-h", HOST, "-p", str(p.port), "-U", "postgres"]
    if script == "-S":
        args.append("-S")
    r = subprocess.run(args + ["appdb"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    expected = 20 * (50 if script == "-S" else 10)
    assert f"number of transactions actually processed: {expected}/{expected}" in r.stdout, r.stdout
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    assert failed is None or failed.group(1) == "0", r.stdout
    assert pg.backends() <= 5
    assert not pg.idle_in_transaction("appdb")


def test_psycopg_extended_protocol_unnamed(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0)
    with p.connect() as c:
        assert c.execute("SELECT %s::int + %s::int", (40, 2)).fetchone()[0] == 42
        assert c.execute("SELECT %b::text || 'x'", ("bin",), binary=True).fetchone()[0] == "binx"
        rows = c.execute("SELECT id, name FROM items WHERE id <= %s ORDER BY id", (100,)).fetchall()
        assert len(rows) == 100 and rows[-1] == (100, "item 100")
        big = c.execute("SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g").fetchall()
        assert len(big) == 20000
        with c.transaction():
            c.execute("INSERT INTO events (tag, who) VALUES (%s, %s)", ("extended", 1))
            assert c.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_psycopg_non_autocommit_connection(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    tag = uuid.uuid4().hex
    with p.connect(autocommit=False) as c:
        c.execute("INSERT INTO events (tag) VALUES (%s)", (tag,))
        c.commit()
        c.execute("INSERT INTO events (tag) VALUES (%s)", (tag,))
        c.rollback()
    with pg.connect() as c:
        assert c.execute("SELECT count(*) FROM events WHERE tag = %s", (tag,)).fetchone()[0] == 1


def test_error_inside_a_transaction(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=2)
    with p.connect() as c:
        c.execute("BEGIN")
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute("SELECT 1 / 0")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.execute("ROLLBACK")
        assert c.execute("SELECT 1").fetchone()[0] == 1
        # Outside a transaction an error releases the server too.
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM no_such_table")
        with p.connect() as other:  # the only server is free again
            assert other.execute("SELECT 1").fetchone()[0] == 1
    assert not pg.idle_in_transaction("appdb")


def test_named_prepared_statement_is_refused_cleanly(pg, pooler):
    # max_prepared_statements = 0 turns the rewriting off: refused cleanly.
    p = pooler(pool_size=1, max_overflow=0, max_prepared_statements=0)
    with p.connect(prepare_threshold=0) as c:
        with pytest.raises(psycopg.Error) as exc:
            c.execute("SELECT %s::int", (1,), prepare=True)
        assert exc.value.sqlstate == "0A000", f"{exc.value.sqlstate}: {exc.value}"
        assert "max_prepared_statements" in exc.value.diag.message_primary
        # The connection stays usable without preparing.
        assert c.execute("SELECT %s::int", (2,), prepare=False).fetchone()[0] == 2
        assert c.execute("SELECT 3", prepare=False).fetchone()[0] == 3


def test_named_parse_refused_on_the_wire(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, max_prepared_statements=0)
    raw = RawClient(p.port).startup("postgres", "appdb")
    try:
        raw.send(RawClient.parse("SELECT 1", name="stmt1") + RawClient.sync())
        res = raw.read_until_ready()
        assert res.error is not None and res.error.sqlstate == "0A000", res.messages
        assert res.status == "I"
        # Unnamed statements work on the same connection.
        raw.send(RawClient.parse("SELECT $1::int * 2") + RawClient.bind(params=[21])
                 + RawClient.describe_portal() + RawClient.execute() + RawClient.sync())
        res = raw.read_until_ready()
        assert res.error is None and res.rows == [("42",)], res.messages
        assert raw.query("SELECT 'ok'").rows == [("ok",)]
    finally:
        raw.close()
    assert pg.backends() <= 1


def test_asyncpg_prepared_statements_in_transaction_mode(pg, pooler):
    asyncpg = pytest.importorskip("asyncpg")
    p = pooler(pool_size=1, max_overflow=0)

    async def run():
        conn = await asyncio.wait_for(asyncpg.connect(host=HOST, port=p.port, user="postgres",
                                                      database="appdb"), 10)
        try:
            return await asyncio.wait_for(conn.fetchval("SELECT $1::int", 5), 10)
        finally:
            await asyncio.wait_for(conn.close(), 10)

    assert asyncio.run(run()) == 5


def test_asyncpg_and_sqlalchemy_in_session_mode(pg, pooler):
    asyncpg = pytest.importorskip("asyncpg")
    p = pooler(pool_mode="session", pool_size=2, max_overflow=0)

    async def with_asyncpg():
        conn = await asyncio.wait_for(asyncpg.connect(host=HOST, port=p.port, user="postgres",
                                                      database="appdb"), 10)
        try:
            assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
            stmt = await conn.prepare("SELECT name FROM items WHERE id = $1")
            assert await stmt.fetchval(7) == "item 7"
            async with conn.transaction():
                await conn.execute("INSERT INTO events (tag) VALUES ($1)", "asyncpg")
        finally:
            await conn.close()

    asyncio.run(asyncio.wait_for(with_asyncpg(), 30))

    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.ext.asyncio import create_async_engine

    async def with_sqlalchemy():
        engine = create_async_engine(f"postgresql+asyncpg://postgres@{HOST}:{p.port}/appdb",
                                     pool_size=2, max_overflow=0)
        try:
            async with engine.begin() as conn:
                n = await conn.scalar(sqlalchemy.text("SELECT count(*) FROM items WHERE id < :n"), {"n": 10})
                assert n == 9
                await conn.execute(sqlalchemy.text("INSERT INTO events (tag) VALUES (:t)"), {"t": "sqlalchemy"})
        finally:
            await engine.dispose()

    asyncio.run(asyncio.wait_for(with_sqlalchemy(), 30))


def test_unknown_database(pg, pooler):
    p = pooler()
    with pytest.raises(PgError) as exc:
        RawClient(p.port).startup("postgres", "no_such_db")
    assert exc.value.sqlstate == "3D000", exc.value
    with pytest.raises(psycopg.OperationalError):
        p.connect(dbname="no_such_db").close()


def test_md5_auth_file(pg, pooler):
    p = pooler(auth_type="md5", users={"postgres": "pw-postgres", "app": md5_secret("app", "pw-app")})
    with p.connect(password="pw-postgres") as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "postgres"
    with p.connect(user="app", password="pw-app") as c:  # md5 form in auth_file
        assert c.execute("SELECT current_user").fetchone()[0] == "app"
    for user in ("postgres", "app"):
        with pytest.raises(PgError) as exc:
            RawClient(p.port).startup(user, "appdb", password="wrong")
        assert exc.value.sqlstate == "28P01", exc.value
    with pytest.raises(psycopg.OperationalError):
        p.connect(password="wrong").close()
    # A user missing from auth_file gets no session either.
    with pytest.raises(PgError):
        RawClient(p.port).startup("secure", "appdb", password="anything")
    # Raw md5 login works (the pooler sends AuthenticationMD5Password).
    raw = RawClient(p.port).startup("postgres", "appdb", password="pw-postgres")
    assert raw.query("SELECT 1").rows == [("1",)]
    raw.close()


def test_server_that_asks_for_a_password(pg, pooler):
    # The server wants scram-sha-256 from "secure"; the pooler logs in with
    # the password from auth_file.
    p = pooler(auth_type="md5", users={"secure": SECURE_PASSWORD})
    with p.connect(user="secure", password=SECURE_PASSWORD) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "secure"
        assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 100
    assert pg.backends("appdb", "secure") >= 1


def test_unix_socket(pg, pooler, tmp_path):
    sockdir = tmp_path / "sock"
    sockdir.mkdir()
    p = pooler(unix_socket_dir=str(sockdir))
    wait_until(lambda: (sockdir / f".s.PGSQL.{p.port}").exists(), 3, what="the Unix socket file")
    with psycopg.connect(host=str(sockdir), port=p.port, dbname="appdb", user="postgres",
                         autocommit=True, prepare_threshold=None, connect_timeout=5) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
    r = psql(p.port, "-c", "select 2", host=str(sockdir))
    assert r.returncode == 0 and r.stdout.strip() == "2", r.stderr


def test_no_unix_socket_when_empty(pg, pooler):
    p = pooler(unix_socket_dir="")
    assert not os.path.exists(f"/tmp/.s.PGSQL.{p.port}")


def test_max_client_conn(pg, pooler):
    p = pooler(max_client_conn=3)
    conns = [p.connect() for _ in range(3)]
    try:
        with pytest.raises(PgError) as exc:
            RawClient(p.port).startup("postgres", "appdb")
        assert exc.value.sqlstate == "53300", exc.value
        conns.pop().close()

        def login():
            try:
                c = p.connect()
            except psycopg.OperationalError:
                return None
            conns.append(c)
            return True
        wait_until(login, 3, interval=0.1, what="a login once a client left")
        assert all(c.execute("SELECT 1").fetchone()[0] == 1 for c in conns)
    finally:
        for c in conns:
            c.close()


def test_no_pool_before_authentication(pg, pooler):
    # Failed logins under made-up names must not leave pools behind (SHOW
    # POOLS would list every name a scanner tried).
    p = pooler(auth_type="md5", users={"postgres": "pw-postgres"}, admin_users="postgres")
    for name in ("mallory", "eve"):
        with pytest.raises(PgError) as exc:
            RawClient(p.port).startup(name, "appdb", password="guess")
        assert exc.value.sqlstate == "28P01"
    pools = p.admin("SHOW POOLS", password="pw-postgres")
    assert [r["user"] for r in pools if r["user"] in ("mallory", "eve")] == []
    with p.connect(password="pw-postgres") as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
    pools = p.admin("SHOW POOLS", password="pw-postgres")
    assert [r["user"] for r in pools if r["database"] == "appdb"] == ["postgres"]


def test_oversized_password_message_is_refused(pg, pooler):
    # A client not logged in may not make the pooler buffer a huge message.
    p = pooler(auth_type="md5", users={"postgres": "pw-postgres"})
    raw = RawClient(p.port)
    params = b"user\0postgres\0database\0appdb\0\0"
    raw.send(struct.pack("!II", 8 + len(params), 196608) + params)
    kind, body = raw.read_message()
    assert kind == b"R"
    raw.send(b"p" + struct.pack("!I", 100_000_000))  # announces 100 MB
    kind, body = raw.read_message()
    assert kind == b"E" and b"authentication message too long" in body
    assert b"08P01" in body
    raw.close()
    with p.connect(password="pw-postgres") as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


def _socket_inodes(pid):
    """The socket inodes a process holds descriptors for."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def _tcp_inode(local_port, remote_port):
    """The inode of the IPv4 TCP socket local_port -> remote_port (0: none)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if (int(fields[1].split(":")[1], 16) == local_port and
                    int(fields[2].split(":")[1], 16) == remote_port):
                return int(fields[9])
    return 0


def test_terminated_clients_are_closed_at_once(pg, pooler):
    """A Terminate closes the client's socket at once, not after the linger
    kept for FATAL last words (up to 2 s, or until the client closes): the
    pooler holds no descriptor for a client that said goodbye but keeps its
    own end open."""
    p = pooler(pool_size=2, max_overflow=0)
    clients, inodes = [], []
    for i in range(30):
        c = RawClient(p.port)
        c.startup("postgres", "appdb")
        c.send(RawClient.query_msg(f"SELECT {i} AS n"))
        got = c.collect()
        assert [k for k, _ in got] == [b"T", b"D", b"C", b"Z"]
        clients.append(c)
        inodes.append(_tcp_inode(p.port, c.sock.getsockname()[1]))
    assert all(inodes) and set(inodes) <= _socket_inodes(p.pid)
    for c in clients:
        c.send(RawClient.terminate())
    for c in clients:
        assert c.collect(timeout=10) == [] and c.closed, "no end of file after the Terminate"
    # the client sockets are still open here: nothing made the pooler let go
    # but the Terminate itself
    wait_until(lambda: not set(inodes) & _socket_inodes(p.pid), 1.0,
               what="the pooler to close the terminated clients' sockets")
    # (a pooler that died would hold no sockets either)
    assert p.alive()
    for c in clients:
        c.sock.close()
    c = RawClient(p.port)
    c.startup("postgres", "appdb")
    c.send(RawClient.query_msg("SELECT 1"))
    assert [k for k, _ in c.collect()] == [b"T", b"D", b"C", b"Z"]
    c.close()
