"""CancelRequest through the pooler: the key it issued cancels the query
running on whichever server the client holds, and nothing else."""
import threading
import time

import psycopg
import pytest

from poolerlib import wait_until


def test_cancel_reaches_the_clients_server(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0)
    victim = p.connect()
    bystander = p.connect()
    try:
        # The bystander holds the other server in a long query of its own.
        result = {}

        def run_bystander():
            try:
                result["bystander"] = bystander.execute(
                    "SELECT pg_sleep(1.5), 'done'").fetchone()[1]
            except psycopg.Error as e:  # pragma: no cover - reported below
                result["bystander"] = e

        t = threading.Thread(target=run_bystander)
        t.start()
        wait_until(lambda: any("pg_sleep(1.5)" in (r["query"] or "")
                               for r in pg.backend_rows("appdb")), 5,
                   what="the bystander's query to start")

        timer = threading.Timer(0.3, victim.cancel)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            victim.execute("SELECT pg_sleep(30)")
        assert time.monotonic() - t0 < 10, "the cancel did not reach the server"
        timer.join()

        # The victim's connection goes on; the bystander was not cancelled.
        assert victim.execute("SELECT 7").fetchone()[0] == 7
        t.join(10)
        assert result.get("bystander") == "done", result
    finally:
        victim.close()
        bystander.close()


def test_cancel_of_an_idle_client_cancels_nothing(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0)
    idle = p.connect()
    busy = p.connect()
    try:
        # idle holds no server: its cancel must not hit busy's query, which
        # runs on the pool's only server.
        done = {}

        def run_busy():
            done["v"] = busy.execute("SELECT pg_sleep(1), 'ok'").fetchone()[1]

        t = threading.Thread(target=run_busy)
        t.start()
        time.sleep(0.3)
        idle.cancel()
        t.join(10)
        assert done.get("v") == "ok"
        assert idle.execute("SELECT 1").fetchone()[0] == 1
    finally:
        idle.close()
        busy.close()
