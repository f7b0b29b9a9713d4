"""CancelRequest races through the pooler, on the wire.

A cancel carries the key the pooler gave its client (BackendKeyData), and
must act on that client's transaction only: on its server while it holds
one, and on nothing once the server has moved on to somebody else, even
when the cancel and the end of the transaction cross.  PostgreSQL ignores
a cancel that finds its backend idle; the danger is a cancel that reaches
a backend after it has started the next client's query.
"""

import random
import socket
import threading
import time

import pytest

from poolerlib import RawClient, as_int, cancel_request, summary, wait_until

R = RawClient


def running(pg, text):
    return [r for r in pg.backend_rows("appdb", None)
            if r["state"] == "active" and text in (r["query"] or "")]


def waiting(p):
    return as_int(p.pool()["cl_waiting"])


def test_cancel_stops_the_clients_transaction(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=5)
    a = p.raw()
    try:
        assert a.backend_key is not None
        assert a.query("BEGIN").status == "T"
        a.send(R.query_msg("SELECT pg_sleep(30)"))
        wait_until(lambda: running(pg, "pg_sleep(30)"), 5, what="the query to run")
        cancel_request(p.port, *a.backend_key)
        res = a.read_until_ready()
        # RowDescription comes before pg_sleep runs
        assert summary(res.messages) == ["T", "E:ERROR:57014", "Z:E"], res.messages
        assert a.query("ROLLBACK").status == "I"
        assert a.query("SELECT 1").rows == [("1",)]
    finally:
        a.close()
    wait_until(lambda: as_int(p.pool()["sv_active"]) == 0, 3, what="the server to go back")
    assert not pg.idle_in_transaction("appdb")


@pytest.mark.deadline(90)
def test_cancel_after_the_transaction_never_hits_the_next_client(pg, pooler):
    # One server.  A runs short queries and sends its cancel right after
    # each (some right after sending it, some after the answer, some in
    # between); B runs pg_sleep(0.05) on the same server, 100 times.  B
    # must never be cancelled; A may be, but only with 57014.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=20)
    a = p.raw(timeout=20)
    b = p.raw(timeout=20)
    b_done = threading.Event()
    b_results = []
    a_results = []
    failures = []

    def run_b():
        try:
            for _ in range(100):
                b_results.append(summary(b.query("SELECT pg_sleep(0.05)").messages))
        except Exception as e:  # reported below
            failures.append(f"B: {e!r}")
        finally:
            b_done.set()

    def run_a():
        rnd = random.Random(7)
        try:
            for i in range(1000):
                if b_done.is_set():
                    break
                a.send(R.query_msg("SELECT pg_sleep(0.002)"))
                mode = i % 3
                if mode == 0:
                    cancel_request(p.port, *a.backend_key)
                elif mode == 1:
                    time.sleep(rnd.uniform(0, 0.06))
                    cancel_request(p.port, *a.backend_key)
                res = a.read_until_ready()
                if mode == 2:
                    cancel_request(p.port, *a.backend_key)
                a_results.append(summary(res.messages))
        except Exception as e:
            failures.append(f"A: {e!r}")

    tb = threading.Thread(target=run_b)
    ta = threading.Thread(target=run_a)
    tb.start()
    ta.start()
    tb.join(80)
    ta.join(10)
    try:
        assert not failures, failures
        assert len(b_results) == 100
        bad = [r for r in b_results if r != ["T", "D", "C:SELECT 1", "Z:I"]]
        assert not bad, f"B was hit {len(bad)} times: {bad[:3]}"
        assert a_results, "A never ran"
        odd = [r for r in a_results
               if r not in (["T", "D", "C:SELECT 1", "Z:I"], ["T", "E:ERROR:57014", "Z:I"])]
        assert not odd, odd
    finally:
        a.close()
        b.close()
    assert p.alive()


@pytest.mark.deadline(90)
def test_cancel_crossing_the_end_of_a_transaction_never_hits_the_next_client(pg, pooler):
    # The tightest race: B already waits for the only server when A ends
    # its transaction and sends its cancel at the same moment.  The server
    # goes to B as soon as A's COMMIT is answered, and B's query starts at
    # once: unless the pooler keeps the server back until A's cancel has
    # reached PostgreSQL, the cancel lands on B's query.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=20)
    a = p.raw(timeout=20)
    b = p.raw(timeout=20)
    hits = []
    try:
        for i in range(40):
            assert a.query("BEGIN").status == "T"
            assert a.query("SELECT 1").status == "T"
            b.send(R.query_msg("SELECT pg_sleep(0.05)"))
            wait_until(lambda: waiting(p) == 1, 5, what="B to wait for the server")
            if i % 2 == 0:
                a.send(R.query_msg("COMMIT"))
                cancel_request(p.port, *a.backend_key)
            else:
                cancel_request(p.port, *a.backend_key)
                a.send(R.query_msg("COMMIT"))
            res_a = a.read_until_ready()
            if res_a.status != "I":  # the cancel may stop A's COMMIT: fine
                assert res_a.error.sqlstate == "57014", res_a.messages
                assert a.query("ROLLBACK").status == "I"
            res_b = b.read_until_ready()
            if res_b.error is not None:
                hits.append((i, res_b.error.sqlstate))
        assert not hits, f"B's query was cancelled by A's cancel in rounds {hits}"
    finally:
        a.close()
        b.close()
    assert not pg.idle_in_transaction("appdb")


def test_cancel_with_a_wrong_key_or_an_unknown_pid_does_nothing(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=5)
    a = p.raw()
    other = p.raw()
    try:
        pid, key = a.backend_key
        a.send(R.query_msg("SELECT pg_sleep(0.5), 'finished'"))
        wait_until(lambda: running(pg, "pg_sleep(0.5)"), 5, what="the query to run")
        server_pid = int(running(pg, "pg_sleep(0.5)")[0]["pid"])
        bogus = [(pid, key ^ 1), (pid, 0), (pid + 1000, key), (0, 0),
                 (other.backend_key[0], key), (pid, other.backend_key[1]),
                 (server_pid, key), (0xFFFFFFFF, 0xFFFFFFFF)]
        for bpid, bkey in bogus:
            cancel_request(p.port, bpid, bkey)
        # a cancel packet of the wrong length, then one cut short
        for raw_bytes in (b"\x00\x00\x00\x14\x04\xd2\x16\x2e" + bytes(12),
                          b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00"):
            with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
                s.sendall(raw_bytes)
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass
        res = a.read_until_ready()
        assert res.error is None and res.rows[0][1] == "finished", res.messages
        assert a.query("SELECT 2").rows == [("2",)]
    finally:
        a.close()
        other.close()
    assert p.alive()
    b = p.raw()
    assert b.query("SELECT 3").rows == [("3",)]
    b.close()


def test_cancel_of_a_client_waiting_for_a_server(pg, pooler):
    # W waits in the queue, holding no server.  Its key maps to the server
    # it uses at that moment (docs/pooler.md, "Cancel"): none, so the cancel does
    # nothing.  It must not reach the server H holds (H's query is not
    # cancelled), and W's query runs once H is done.
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=10)
    h = p.raw()
    w = p.raw()
    try:
        assert h.query("BEGIN").status == "T"
        h.send(R.query_msg("SELECT pg_sleep(0.5), 'h done'"))
        wait_until(lambda: running(pg, "pg_sleep(0.5)"), 5, what="H's query to run")
        w.send(R.query_msg("SELECT 'w done'"))
        wait_until(lambda: waiting(p) == 1, 5, what="W to wait for the server")
        cancel_request(p.port, *w.backend_key)
        res = h.read_until_ready()
        assert res.error is None and res.rows[0][1] == "h done", res.messages
        assert h.query("COMMIT").status == "I"
        res = w.read_until_ready()
        assert summary(res.messages) == ["T", "D", "C:SELECT 1", "Z:I"], res.messages
        assert w.query("SELECT 'again'").rows == [("again",)]
    finally:
        h.close()
        w.close()
    wait_until(lambda: as_int(p.pool()["sv_active"]) == 0, 3, what="the server to go back")
    assert not pg.idle_in_transaction("appdb")
