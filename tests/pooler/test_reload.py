"""SIGHUP reloads pool settings without dropping connected clients; a
config that no longer parses leaves the old settings in force."""

import signal
import time

import psycopg
import pytest

from poolerlib import as_int


def hold(conns):
    pids = set()
    for c in conns:
        c.execute("BEGIN")
        pids.add(c.execute("SELECT pg_backend_pid()").fetchone()[0])
    return pids


def release(conns):
    for c in conns:
        c.execute("COMMIT")


def test_sighup_changes_pool_size_and_keeps_clients(pg, pooler):
    p = pooler(pool_size=2, max_overflow=0, pool_timeout=0.3)
    before = p.connect()
    in_tx = p.connect()
    conns = [p.connect() for _ in range(4)]
    try:
        assert before.execute("SELECT 1").fetchone()[0] == 1
        hold(conns[:2])
        with pytest.raises(psycopg.Error) as exc:
            conns[2].execute("SELECT 1")
        assert exc.value.diag.message_primary == (
            "pool limit of size 2 overflow 0 reached, connection timed out, timeout 0.30")
        release(conns[:2])

        # A transaction open across the reload goes on undisturbed.
        in_tx.execute("BEGIN")
        pid = in_tx.execute("SELECT pg_backend_pid()").fetchone()[0]

        p.reload(pool_size=4, pool_timeout=0.4)

        assert in_tx.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        in_tx.execute("COMMIT")
        assert before.execute("SELECT 2").fetchone()[0] == 2  # connected before, works after
        assert as_int(p.pool()["pool_size"]) == 4

        pids = hold(conns)
        assert len(pids) == 4
        assert pg.backends() == 4
        with pytest.raises(psycopg.Error) as exc:
            before.execute("SELECT 1")
        assert exc.value.sqlstate == "53300"
        assert exc.value.diag.message_primary == (
            "pool limit of size 4 overflow 0 reached, connection timed out, timeout 0.40")
        release(conns)
        assert before.execute("SELECT 3").fetchone()[0] == 3
        assert p.alive()
    finally:
        for c in [before, in_tx] + conns:
            c.close()


def test_sighup_changes_overflow_and_recycle(pg, pooler):
    p = pooler(pool_size=1, max_overflow=0, pool_timeout=0.3, pool_recycle=-1)
    a, b = p.connect(), p.connect()
    try:
        a.execute("SELECT 1")
        p.reload(max_overflow=1)
        pids = hold([a, b])  # one overflow server allowed now
        assert len(pids) == 2
        assert pg.backends() == 2
        release([a, b])
        time.sleep(0.5)
        assert a.execute("SELECT pg_backend_pid()").fetchone()[0] in pids  # no recycling yet
        p.reload(pool_recycle=0.3)
        time.sleep(0.5)
        assert a.execute("SELECT pg_backend_pid()").fetchone()[0] not in pids  # recycled now
    finally:
        a.close()
        b.close()


def test_bad_config_on_reload_keeps_the_old_one(pg, pooler):
    p = pooler(pool_size=3)
    c = p.connect()
    try:
        c.execute("SELECT 1")
        p.write_config(pool_size="not-a-number")
        p.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert p.alive(), "a bad config on reload killed the pooler"
        assert as_int(p.config_value("pool_size")) == 3
        assert c.execute("SELECT 1").fetchone()[0] == 1
        with p.connect() as other:
            assert other.execute("SELECT 1").fetchone()[0] == 1
    finally:
        c.close()
