"""Issue 17: PostgreSQL killed (kill -9 of the postmaster) and restarted
under load; RELOAD under load (README, "Faults and abuse").

The crash runs on a cluster of its own: the session's cluster stays up for
the other tests."""

import os
import signal
import threading
import time
from collections import Counter

import pytest

from poolerlib import DOWN_SQLSTATES, PgCluster, RawClient, login, outcome, wait_until


@pytest.fixture
def own_pg():
    cluster = PgCluster().init()
    try:
        yield cluster
    finally:
        cluster.destroy()


class Load:
    """n workers looping short write transactions through the pooler, each
    on its own raw connection, reconnecting when it is lost.  Every call is
    recorded: (worker, start, end, outcome), outcome "ok" or a SQLSTATE or
    "closed-without-error" / "timeout"."""

    def __init__(self, port, n, tag):
        self.port = port
        self.tag = tag
        self.events = []
        self.committed = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def _record(self, i, t0, what):
        with self.lock:
            self.events.append((i, t0, time.monotonic(), what))

    def _run(self, i):
        raw = None
        n = 0
        while not self.stop_ev.is_set():
            t0 = time.monotonic()
            if raw is None:
                raw, failure = login(self.port, timeout=15)
                if raw is None:
                    self._record(i, t0, failure[0])
                    time.sleep(0.05)
                    continue
            n += 1
            what, _ = outcome(self.port, ["BEGIN", f"INSERT INTO events (tag, who) VALUES ('{self.tag}', {i})",
                                          "COMMIT"], client=raw)
            self._record(i, t0, what)
            if what == "ok":
                with self.lock:
                    self.committed += 1
                continue
            if raw.status in ("T", "E") and what not in ("closed-without-error", "timeout"):
                if outcome(self.port, ["ROLLBACK"], client=raw)[0] == "ok":
                    continue
            raw.close()
            raw = None
            time.sleep(0.05)
        if raw is not None:
            raw.close()

    def ok_after(self, t):
        with self.lock:
            return {e[0] for e in self.events if e[3] == "ok" and e[1] > t}

    def outcomes_after(self, t):
        """How many calls started after t ended in each outcome."""
        with self.lock:
            return dict(Counter(e[3] for e in self.events if e[1] > t))

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a client is stuck"
        return list(self.events)


def postmaster_pid(cluster):
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def start_when_possible(cluster, timeout=30):
    """pg_ctl start, again while the killed postmaster's backends still hold
    its shared memory (they leave when they notice it is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster.start()
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# make soak (tests/soak/pooler.sh) runs more rounds.
CRASH_ROUNDS = int(os.environ.get("APISCALE_CRASH_ROUNDS", "1"))
RELOAD_ROUNDS = int(os.environ.get("APISCALE_RELOAD_ROUNDS", "1"))


@pytest.mark.deadline(60 + 30 * CRASH_ROUNDS)
def test_postmaster_killed_and_restarted_under_load(own_pg, pooler, figure):
    p = pooler(pool_size=4, max_overflow=0, pool_timeout=5,
               databases={"appdb": f"host={own_pg.host} port={own_pg.port} dbname=appdb"})
    workers = 8
    load = Load(p.port, workers, "crash")
    rounds = []  # (killed_at, up_at)
    try:
        wait_until(lambda: len(load.ok_after(0)) == workers, 10, what="every worker to commit")
        for _ in range(CRASH_ROUNDS):
            killed_at = time.monotonic()
            os.kill(postmaster_pid(own_pg), signal.SIGKILL)
            time.sleep(2)  # down for a while, under load
            start_when_possible(own_pg)
            up_at = time.monotonic()
            try:
                wait_until(lambda: len(load.ok_after(up_at)) == workers, 15, interval=0.1,
                           what="every worker to commit again after the restart")
            except AssertionError as e:
                raise AssertionError(f"{e}; outcomes since the restart: {load.outcomes_after(up_at)}") from None
            rounds.append((killed_at, up_at))
            time.sleep(1)
    finally:
        events = load.stop()
    for killed_at, up_at in rounds:
        first_ok = min(e[2] for e in events if e[3] == "ok" and e[1] > up_at)
        all_ok = max(min(e[2] for e in events if e[0] == w and e[3] == "ok" and e[1] > up_at)
                     for w in range(workers))
        figure(f"postmaster killed; restarted {up_at - killed_at:.1f} s later; first transaction "
              f"through the pooler {first_ok - up_at:.2f} s after the restart, every worker "
              f"{all_ok - up_at:.2f} s after")
    # Errors only while it was down, each with a SQLSTATE saying so.
    bad = [e for e in events if e[3] != "ok" and e[3] not in DOWN_SQLSTATES]
    assert not bad, f"errors without a down SQLSTATE: {bad[:5]}"
    down = [(k, u + 2) for k, u in rounds]
    late = [e for e in events if e[3] != "ok" and not any(k <= e[2] and e[1] <= u for k, u in down)]
    assert not late, f"errors while the database was up: {late[:5]}"
    # No call hangs: a call ends within pool_timeout and a bit.
    slow = [e for e in events if e[2] - e[1] > 8]
    assert not slow, f"calls that took over 8 s: {slow[:5]}"
    # The pool refilled by itself, and counts right.
    wait_until(lambda: 1 <= p.server_count() == own_pg.backends() <= 4, 10,
               what="the pool refilled: SHOW POOLS == pg_stat_activity")


@pytest.mark.deadline(90 + 60 * RELOAD_ROUNDS)
def test_reload_under_load_loses_nothing(pg, pooler, figure):
    """100 clients in short write transactions while RELOAD raises and lowers
    pool_size and changes the auth file: no client error, every committed
    transaction is in the table, new logins follow the new file."""
    users = {"postgres": "pw-load", "app": "pw-app-1"}
    p = pooler(pool_size=10, max_overflow=0, pool_timeout=30, auth_type="md5", users=users)
    tag = f"reload-{time.time_ns()}"
    load = PasswordLoad(p.port, 100, tag, "pw-load")
    reloads = 0
    try:
        wait_until(lambda: load.committed >= 500, 30, what="the load going")
        for size, overflow in ((20, 0), (2, 0), (30, 5), (5, 0), (1, 1), (10, 0)) * RELOAD_ROUNDS:
            before = load.committed
            p.write_config(pool_size=size, max_overflow=overflow)
            p.send_signal(signal.SIGHUP)
            reloads += 1
            wait_until(lambda: p.log().count("configuration reloaded") == reloads, 5, what="the reload")
            wait_until(lambda: load.committed > before + 1000, 30, what="the load going on")
            # and the new limit holds once the transactions in flight end
            wait_until(lambda: pg.backends() <= size + overflow, 10,
                       what=f"at most {size}+{overflow} servers")
        # The auth file changes under the load: a new password for app.
        p.users["app"] = "pw-app-2"
        p.write_config()
        p.send_signal(signal.SIGHUP)
        reloads += 1
        wait_until(lambda: p.log().count("configuration reloaded") == reloads, 5, what="the reload")
        assert RawClient(p.port).startup("app", "appdb", password="pw-app-2").query("SELECT 1").rows
        with pytest.raises(Exception):
            RawClient(p.port).startup("app", "appdb", password="pw-app-1")
        before = load.committed
        wait_until(lambda: load.committed > before + 1000, 30, what="the load going on")
    finally:
        events = load.stop()
    errors = [e for e in events if e[3] != "ok"]
    assert not errors, f"{len(errors)} client errors, e.g. {errors[:5]}"
    with pg.connect() as c:
        rows = c.execute("SELECT count(*) FROM events WHERE tag = %s", (tag,)).fetchone()[0]
    assert rows == load.committed, f"{load.committed} committed, {rows} in the table"
    figure(f"{load.committed} transactions over {reloads} reloads, none lost, no error")


class PasswordLoad(Load):
    """Load whose clients log in with a password and log in again now and
    then (every 50 transactions), so that logins run across the reloads."""

    def __init__(self, port, n, tag, password):
        self.password = password
        super().__init__(port, n, tag)

    def _run(self, i):
        raw = None
        n = 0
        while not self.stop_ev.is_set():
            t0 = time.monotonic()
            if raw is None:
                try:
                    raw = RawClient(self.port, timeout=40).startup("postgres", "appdb", self.password)
                except Exception as e:  # recorded as an error
                    self._record(i, t0, f"login: {e}")
                    time.sleep(0.1)
                    continue
            n += 1
            what, detail = outcome(self.port, ["BEGIN", f"INSERT INTO events (tag, who) VALUES ('{self.tag}', {i})",
                                               "COMMIT"], client=raw)
            self._record(i, t0, what if what == "ok" else f"{what}: {detail}")
            if what == "ok":
                with self.lock:
                    self.committed += 1
            if what != "ok" or n % 50 == 0:
                raw.close()
                raw = None
        if raw is not None:
            raw.close()
