"""Failures at either end: clients that vanish mid-transaction, servers
that die, a database that restarts or is down.

The pooler must leave no `idle in transaction` backend behind, give its
clients a clean error with a SQLSTATE (08006, 08001, 57P01) quickly rather
than a hang or a silent close, and recover by itself.

SQLSTATEs are read on the wire (poolerlib.RawClient / outcome): libpq, and
so psycopg, drops the SQLSTATE of a FATAL error that is followed by the
connection closing, which is how PostgreSQL itself reports a backend
terminated under a client.  psycopg would show such an error with
sqlstate None, indistinguishable from a silent close."""

import socket
import subprocess
import threading
import time

import pytest

from poolerlib import (DOWN_SQLSTATES, HOST, PSQL, RawClient, as_int, free_port, login, outcome, wait_ok,
                       wait_until)


def _backend_gone(pg, pid):
    """True once backend pid has left pg_stat_activity.

    docs/pooler.md, "Never a dirty server": a client that leaves inside a
    transaction or in the middle of a result takes its server with it; the
    server is closed (its backend rolls back), not handed on.  A pooler that
    rolled the transaction back and kept the server would leave the backend
    idle, which is not enough."""
    return pid not in pg.pids("appdb", None)


def _row_lock_is_free(pg):
    with pg.connect() as c:
        c.execute("SET lock_timeout = '3s'")
        c.execute("UPDATE items SET name = name WHERE id = 1")
    return True


@pytest.mark.parametrize("how", ["rst", "fin"])
def test_client_gone_mid_transaction_leaves_no_open_transaction(pg, pooler, how):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    gone, next_one = f"gone-{how}-{time.time()}", f"next-{how}-{time.time()}"
    raw = RawClient(p.port).startup("postgres", "appdb")
    assert raw.query("BEGIN").status == "T"
    assert raw.query("UPDATE items SET name = name WHERE id = 1").error is None
    assert raw.query(f"INSERT INTO events (tag) VALUES ('{gone}')").error is None
    res = raw.query("SELECT pg_backend_pid()")
    assert res.status == "T"
    pid = int(res.rows[0][0])
    if how == "rst":
        raw.close(abort=True)  # no Terminate, RST
    else:
        raw.sock.shutdown(socket.SHUT_RDWR)  # no Terminate, FIN
        raw.sock.close()
    wait_until(lambda: _backend_gone(pg, pid), 10,
               what=f"backend {pid} of the client that left mid-transaction to be closed ({how})")
    assert not pg.idle_in_transaction("appdb")
    assert _row_lock_is_free(pg)
    # The only server slot is free again for the next client, on a new
    # server, and clean: its autocommit statement commits (it would not
    # inside the old transaction), and the gone client's work was rolled
    # back.
    with p.connect() as c:
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
        c.execute("INSERT INTO events (tag) VALUES (%s)", (next_one,))
        c.execute("BEGIN")
        c.execute("UPDATE items SET name = name WHERE id = 1")
        c.execute("COMMIT")
    with pg.connect() as c:
        counts = c.execute("SELECT count(*) FILTER (WHERE tag = %s), count(*) FILTER (WHERE tag = %s)"
                           " FROM events", (gone, next_one)).fetchone()
    assert counts == (0, 1)


def test_psql_killed_during_a_query_in_a_transaction(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=8)
    proc = subprocess.Popen([PSQL, "-X", "-q", "-h", HOST, "-p", str(p.port), "-U", "postgres",
                             "-d", "appdb", "-v", "ON_ERROR_STOP=1"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.stdin.write(b"BEGIN;\nUPDATE items SET name = name WHERE id = 1;\n"
                         b"SELECT pg_sleep(1.5) /* killme */;\n")
        proc.stdin.flush()

        def sleeping():
            for r in pg.backend_rows("appdb"):
                if "killme" in (r["query"] or "") and r["state"] == "active":
                    return r["pid"]
            return None

        pid = wait_until(sleeping, 5, what="psql's pg_sleep to run")
        proc.kill()
        proc.wait(5)
        # The pooler closes the server at once; its backend notices when
        # pg_sleep ends (1.5 s) and exits, rolling the transaction back.
        wait_until(lambda: _backend_gone(pg, pid), 10,
                   what=f"backend {pid} of the killed psql to be closed")
        assert not pg.idle_in_transaction("appdb")
        assert _row_lock_is_free(pg)
        with p.connect() as c:
            assert c.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_server_killed_mid_transaction(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    raw = p.raw()
    try:
        assert raw.query("BEGIN").status == "T"
        pid = int(raw.query("SELECT pg_backend_pid()").rows[0][0])
        pg.query("SELECT pg_terminate_backend(%s)", (pid,))
        t0 = time.monotonic()
        what, detail = outcome(p.port, ["SELECT 1"], client=raw)
        assert time.monotonic() - t0 < 3
        assert what in DOWN_SQLSTATES, (what, detail)
    finally:
        raw.close()
    # The dead server's slot is free: a new client gets a new server.
    with p.connect() as c2:
        pid2 = c2.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert pid2 != pid
    assert pg.backends() == 1


def test_idle_server_killed_is_not_handed_out(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    with p.connect() as c:
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        pg.query("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(lambda: pid not in pg.pids(), 3, what="the backend to exit")
        time.sleep(0.3)
        # A dead server must not reach a client: the next transaction gets
        # a live one.
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_postgres_restart_gives_clean_errors_and_recovers(pg, pooler):
    p = pooler(pool_size=4, max_overflow=0, pool_timeout=5)
    stop = threading.Event()
    lock = threading.Lock()
    events = []  # (worker, t_start, t_end, "ok" / SQLSTATE / marker, detail, at login)

    def record(i, t0, what, detail="", login=False):
        with lock:
            events.append((i, t0, time.monotonic(), what, detail, login))

    def worker(i):
        raw = None
        while not stop.is_set():
            t0 = time.monotonic()
            if raw is None:
                raw, failure = login(p.port, timeout=15)
                if raw is None:
                    record(i, t0, *failure, login=True)
                    time.sleep(0.05)
                    continue
            what, detail = outcome(p.port, ["BEGIN", "SELECT pg_sleep(0.02)", "COMMIT"], client=raw)
            record(i, t0, what, detail)
            if what != "ok":
                if raw.status in ("T", "E") and what not in ("closed-without-error", "timeout"):
                    if outcome(p.port, ["ROLLBACK"], client=raw)[0] == "ok":
                        continue
                # 08006 and 57P01 come as FATAL: the connection is gone even
                # if the last ReadyForQuery said idle (the server died under
                # BEGIN).
                if (what in ("closed-without-error", "timeout", "08006", "57P01")
                        or raw.status != "I"):
                    raw.close()
                    raw = None
                time.sleep(0.05)
        if raw is not None:
            raw.close()

    long_result = {}

    def long_transaction():
        raw = p.raw(timeout=20)
        try:
            long_result["outcome"] = outcome(p.port, ["BEGIN", "SELECT pg_sleep(30)"], client=raw)
            long_result["at"] = time.monotonic()
        finally:
            raw.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(3)]
    threads.append(threading.Thread(target=long_transaction, daemon=True))
    for t in threads:
        t.start()
    try:
        wait_until(lambda: sum(1 for e in events if e[3] == "ok") >= 6, 5, what="transactions before the restart")
        wait_until(lambda: any("pg_sleep(30)" in (r["query"] or "") for r in pg.backend_rows("appdb")), 5,
                   what="the long transaction to run")
        restart_at = time.monotonic()
        pg.restart(mode="immediate")
        restarted_at = time.monotonic()

        # The long transaction lost its server: a prompt error, no hang.
        threads[-1].join(10)
        assert not threads[-1].is_alive(), "the client in pg_sleep(30) hangs after the restart"
        assert long_result["outcome"][0] in DOWN_SQLSTATES, long_result
        assert long_result["at"] - restart_at < 5, "the error came late"

        # New connections through the same pooler work again soon.
        wait_ok(p.port, timeout=10, what="a new client to work after the restart")

        # So do the clients that were running.
        def all_recovered():
            with lock:
                return all(any(e[0] == i and e[3] == "ok" and e[1] > restarted_at for e in events)
                           for i in range(3))
        wait_until(all_recovered, 10, interval=0.2, what="every worker to succeed after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not any(t.is_alive() for t in threads), "a client is stuck"
    bad = [e for e in events if e[3] != "ok" and e[3] not in DOWN_SQLSTATES]
    assert not bad, f"errors without an expected SQLSTATE: {bad[:5]}"
    late = [e for e in events if e[3] != "ok" and e[1] > restarted_at + 2]
    assert not late, f"errors after the database was back: {late[:5]}"
    slow = [e for e in events if e[2] - e[1] > 8]
    assert not slow, f"calls that took over 8 s: {slow[:5]}"

    # Pool accounting recovered too.
    wait_until(lambda: p.server_count() == pg.backends(), 5,
               what="SHOW POOLS server count == pg_stat_activity after the restart")


def _login_failure_answer(res):
    """The pooler's answer to a client whose server could not be had
    because logging in failed (docs/pooler.md, "Failures"): one ERROR 08001 (not
    FATAL), then ReadyForQuery: the connection stays open and usable."""
    assert [(e.severity, e.sqlstate) for e in res.errors] == [("ERROR", "08001")], res.messages
    assert res.errors[0].message.startswith("could not connect to server: "), res.messages
    assert res.status == "I", res.messages


def _until_ok(raw, timeout):
    """Run SELECT 1 on raw until it succeeds; every failure on the way must
    be the login-failure answer, on the same connection."""
    deadline = time.monotonic() + timeout
    while True:
        res = raw.query("SELECT 1")
        if res.error is None:
            assert res.rows == [("1",)], res.messages
            return
        _login_failure_answer(res)
        assert time.monotonic() < deadline, f"still failing after {timeout}s: {res.messages}"
        time.sleep(0.2)


def test_clients_waiting_on_a_database_that_goes_down_fail_fast(pg, pooler):
    """docs/pooler.md, "Failures": when a pool has no live server and logging in
    fails, every waiting client gets ERROR 08001 at once (not after
    pool_timeout), and its connection stays usable: once the database is
    back, the same connection runs queries again.  A client that comes
    while the database is down gets the same."""
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=60)
    holder = p.raw()
    # The socket timeout is far below pool_timeout: an answer that waits for
    # pool_timeout shows up as socket.timeout.
    waiter = p.raw(timeout=20)
    newcomer = None
    try:
        assert outcome(p.port, ["BEGIN", "SELECT 1"], client=holder)[0] == "ok"
        waiter.send(RawClient.query_msg("SELECT 1"))
        wait_until(lambda: as_int(p.pool()["cl_waiting"]) == 1, 5, what="the waiter to queue")
        pg.stop(mode="immediate")
        # The holder's server died, the login for the waiter fails, and no
        # other server is left to serve it.
        try:
            res = waiter.read_until_ready()
        except socket.timeout:
            raise AssertionError("no answer for 20 s: the waiter was left waiting for"
                                 " pool_timeout (60 s) although the login failed") from None
        _login_failure_answer(res)

        # While the database is down, a client that logs in and sends a
        # query gets the same answer.
        newcomer = RawClient(p.port, timeout=20).startup("postgres", "appdb")
        _login_failure_answer(newcomer.query("SELECT 1"))

        pg.start()
        # Logins are retried: both connections work again, never closed.
        _until_ok(waiter, 15)
        _until_ok(newcomer, 15)
    finally:
        pg.ensure_running()
        for raw in (holder, waiter, newcomer):
            if raw is not None:
                raw.close()


def test_unreachable_database_fails_fast(pg, pooler):
    dead_port = free_port()
    p = pooler(pool_timeout=10, databases={"deaddb": f"host={HOST} port={dead_port} dbname=appdb"})
    t0 = time.monotonic()
    what, detail = outcome(p.port, ["SELECT 1"], dbname="deaddb")
    elapsed = time.monotonic() - t0
    # A failed login is 08001 (docs/pooler.md, "Failures").  This client has not
    # logged in yet, so it cannot go on: the error ends the connection.
    assert what == "08001", (what, detail)
    assert elapsed < 5, f"error after {elapsed:.1f}s, not quickly (pool_timeout 10)"
    # The pooler is still fine for the database that is up.
    with p.connect() as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
