"""Bounded load on loopback: 1,000 concurrent clients over 10 servers, and
connection churn that must not leak file descriptors, clients or servers."""

import asyncio
import threading
import time

import psycopg
import pytest

from poolerlib import as_int, wait_until

CLIENTS = 1000


class PeakBackends:
    """Samples pg.backends() in a thread; .peak is the largest count seen."""

    def __init__(self, pg):
        self.pg = pg
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.pg.backends())
            self.samples += 1
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


@pytest.mark.deadline(120)
def test_thousand_concurrent_clients_over_ten_servers(pg, pooler):
    p = pooler(pool_size=10, max_overflow=0, pool_timeout=60, max_client_conn=2000)

    async def main():
        gate = asyncio.Semaphore(100)  # logins in flight at once

        async def login():
            async with gate:
                return await p.aconnect()

        conns = await asyncio.gather(*(login() for _ in range(CLIENTS)))
        try:
            # All of them are connected at once (the console is a client too).
            clients = [r for r in p.admin("SHOW CLIENTS") if r["database"] == "appdb"]
            assert len(clients) == CLIENTS
            start = asyncio.Event()

            async def one(conn):
                await start.wait()
                await conn.execute("BEGIN")
                cur = await conn.execute("SELECT 1")
                value = (await cur.fetchone())[0]
                await conn.execute("COMMIT")
                return value

            tasks = [asyncio.ensure_future(one(c)) for c in conns]
            start.set()
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

    t0 = time.monotonic()
    with PeakBackends(pg) as sampler:
        results = asyncio.run(asyncio.wait_for(main(), 75))
    elapsed = time.monotonic() - t0
    failures = [r for r in results if r != 1]
    assert not failures, f"{len(failures)} of {CLIENTS} clients failed, e.g. {failures[:3]!r}"
    assert len(results) == CLIENTS
    assert sampler.samples > 0
    assert 1 <= sampler.peak <= 10, f"{sampler.peak} backends with pool_size 10, max_overflow 0"
    assert pg.backends() <= 10
    assert elapsed < 75


@pytest.mark.deadline(60)
def test_connection_churn_leaks_nothing(pg, pooler):
    p = pooler(pool_size=4, max_overflow=2, pool_timeout=10)
    # Warm up, then count the pooler's file descriptors.
    with p.connect() as c:
        c.execute("SELECT 1")
    time.sleep(0.2)
    fds_before = p.fd_count()
    errors = []
    done = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + 3

    def churn(i):
        while time.monotonic() < stop_at:
            try:
                with p.connect() as c:
                    c.execute("BEGIN")
                    c.execute("SELECT count(*) FROM items WHERE id <= %s", (i,))
                    c.execute("COMMIT")
                    if i % 3 == 0:
                        c.execute("BEGIN")  # left open: closed with the client
                        c.execute("SELECT 1")
                with lock:
                    done[0] += 1
            except psycopg.Error as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=churn, args=(i,), daemon=True) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:3]
    assert done[0] > 50, f"only {done[0]} connections in 3 s"

    wait_until(lambda: not pg.idle_in_transaction("appdb"), 5, what="no idle in transaction")
    wait_until(lambda: p.server_count() == pg.backends() <= 4, 5,
               what="servers back to pool_size and counted right")
    row = p.pool()
    assert as_int(row["cl_active"]) == 0 and as_int(row["cl_waiting"]) == 0, row
    wait_until(lambda: p.fd_count() <= fds_before + 5, 5,
               what=f"the pooler's file descriptors back near {fds_before}")
