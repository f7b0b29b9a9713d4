"""SIGTERM waits for the transactions in flight, then exits; SIGINT exits
at once (PostgreSQL then rolls back what was open)."""

import signal
import time
import uuid

from poolerlib import wait_until


def count_tag(pg, tag):
    with pg.connect() as c:
        return c.execute("SELECT count(*) FROM events WHERE tag = %s", (tag,)).fetchone()[0]


def test_sigterm_waits_for_the_transaction_in_flight(pg, pooler):
    p = pooler()
    tag = uuid.uuid4().hex
    c = p.connect()
    idle = p.connect()
    idle.execute("SELECT 1")
    try:
        c.execute("BEGIN")
        c.execute("INSERT INTO events (tag) VALUES (%s)", (tag,))
        p.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert p.alive(), "SIGTERM did not wait for the open transaction"
        c.execute("INSERT INTO events (tag) VALUES (%s)", (tag,))
        c.execute("COMMIT")
        # An idle client does not hold the shutdown back.
        rc = p.wait_exit(5)
        assert rc is not None, "still running 5 s after the last transaction ended"
        assert rc == 0
    finally:
        c.close()
        idle.close()
    assert count_tag(pg, tag) == 2
    wait_until(lambda: pg.backends() == 0, 5, what="servers closed after SIGTERM")


def test_sigint_exits_at_once(pg, pooler):
    p = pooler()
    tag = uuid.uuid4().hex
    c = p.connect()
    try:
        c.execute("BEGIN")
        c.execute("INSERT INTO events (tag) VALUES (%s)", (tag,))
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        assert p.wait_exit(2) is not None, "SIGINT did not stop the pooler at once"
        assert time.monotonic() - t0 < 2
    finally:
        c.close()
    wait_until(lambda: pg.backends() == 0, 5, what="servers gone after SIGINT")
    assert count_tag(pg, tag) == 0
    assert not pg.idle_in_transaction("appdb")
