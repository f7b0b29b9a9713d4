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


class Load:
    """n clients looping short transactions through the pooler until stop()."""

    def __init__(self, p, n):
        import threading
        self.stopped = threading.Event()
        self.errors = []
        self.done = 0
        self.threads = [threading.Thread(target=self._run, args=(p,), daemon=True)
                        for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, p):
        try:
            with p.connect(autocommit=True) as c:
                while not self.stopped.is_set():
                    c.execute("SELECT pg_sleep(0.002)")
                    self.done += 1
        except Exception as e:  # reported by stop()
            self.errors.append(e)

    def stop(self):
        self.stopped.set()
        for t in self.threads:
            t.join(30)
        return self.errors


def test_lower_pool_size_applies_under_load(pg, pooler):
    """Issue 11: once the transactions in flight end, at most the new
    pool_size + max_overflow servers exist, while the load goes on."""
    from poolerlib import wait_until
    p = pooler(pool_size=10, max_overflow=0, pool_timeout=20)
    load = Load(p, 20)
    try:
        wait_until(lambda: pg.backends() == 10, 10, what="10 servers under load")
        for size, overflow in ((5, 5), (2, 0), (1, 1), (2, 0)):
            p.reload(pool_size=size, max_overflow=overflow)
            before = load.done
            wait_until(lambda: pg.backends() <= size + overflow, 10,
                       what=f"at most {size}+{overflow} servers after the reload")
            wait_until(lambda: load.done > before + 50, 10, what="the load going on")
            assert pg.backends() <= size + overflow
            row = p.pool()
            assert as_int(row["pool_size"]) == size
            assert p.server_count() <= size + overflow
    finally:
        errors = load.stop()
    assert errors == []


def test_lower_pool_size_closes_idle_servers_at_the_reload(pg, pooler):
    p = pooler(pool_size=10, max_overflow=0)
    conns = [p.connect() for _ in range(10)]
    try:
        assert len(hold(conns)) == 10
        release(conns)
        assert pg.backends() == 10
        p.reload(pool_size=3)
        from poolerlib import wait_until
        wait_until(lambda: pg.backends() == 3, 5, what="idle servers beyond pool_size closed")
        assert p.server_count() == 3
        # and no transaction was needed for it; the three left serve
        assert len(hold(conns[:3])) == 3
        release(conns[:3])
    finally:
        for c in conns:
            c.close()
