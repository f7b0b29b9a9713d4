"""Fixtures for the apiscale-pooler integration tests.

Run from the repository root:  /usr/bin/python3 -m pytest tests/pooler -q
(APISCALE_POOLER=/path/to/binary tests another build, e.g. an ASan one.)
Needs the Debian packages postgresql-15, python3-pytest, python3-psycopg;
python3-asyncpg and python3-sqlalchemy for two client tests, libfaketime
for the pool_recycle = -1 test (skipped without them).

pg      (session) a throwaway PostgreSQL 15 cluster on a free 127.0.0.1 port;
        see poolerlib.PgCluster for its helpers (connect, backends, restart,
        stop, start, ...).
pooler  (function) a factory: pooler(pool_size=2, max_overflow=0, ...) writes
        a config whose [databases] has appdb on the pg cluster, starts the
        binary on a free port and returns a poolerlib.Pooler once the port
        accepts.  Keyword arguments are [pooler] keys; `databases={name:
        connstr}` adds databases, `users={user: password}` writes auth_file,
        `args=[...]` adds command-line arguments, `sections={"users": {...}}`
        more sections ([users], [peers]), `env={...}` environment
        variables (poolerlib.FakeClock.env()).  Every pooler is killed at
        the end of the test, and its log is attached to a failing report.
pooler_bin  the path of the binary, for tests that run it themselves.
figure  figure("...") records a measured figure (clients held, memory per
        client, recovery time); they are printed at the end of the run, so
        that make test's log carries them (docs/testing.md quotes them).

Tests that use `pooler` or `pooler_bin` are skipped when the binary has not
been built.  A watchdog kills a test's poolers when the test runs past its
deadline (60 s, or @pytest.mark.deadline(seconds)), so that a pooler that
stops answering fails the test instead of hanging the suite.
"""

import resource
import subprocess
import threading

import pytest

from pathlib import Path

from poolerlib import PGBENCH, PGBIN, BINARY, PgCluster, Pooler, binary_problem


def pytest_configure(config):
    config.addinivalue_line("markers", "deadline(seconds): kill the test's poolers after this long")
    # Many clients at once (test_load): the test process and the pooler it
    # starts both need file descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def pytest_collection_modifyitems(config, items):
    problem = binary_problem()
    if problem is None:
        return
    skip = pytest.mark.skip(reason=f"apiscale-pooler not available: {problem}")
    for item in items:
        if {"pooler", "pooler_bin"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


_figures = []


@pytest.fixture
def figure(request):
    def record(text):
        _figures.append(f"{request.node.name}: {text}")
    return record


def pytest_terminal_summary(terminalreporter):
    if _figures:
        terminalreporter.section("figures")
        for line in _figures:
            terminalreporter.write_line(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for p in getattr(item, "_apiscale_poolers", ()):
            text = p.log()
            if len(text) > 20000:
                text = "[...]\n" + text[-20000:]
            rep.sections.append((f"apiscale-pooler log (port {p.port}, {rep.when}, {p.status()})",
                                 text or "(empty)"))
        if getattr(item, "_apiscale_watchdog_fired", False):
            rep.sections.append(("watchdog", "the test ran past its deadline: its poolers were killed"))


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster().init()
    try:
        yield cluster
    finally:
        cluster.destroy()


def extension_problem():
    """Why the apiscale extension cannot be used here, or None."""
    share = subprocess.run([str(PGBIN / "pg_config"), "--sharedir"], capture_output=True,
                           text=True)
    if share.returncode != 0:
        return "pg_config failed"
    if not (Path(share.stdout.strip()) / "extension" / "apiscale.control").exists():
        return "the apiscale extension is not installed (make install)"
    return None


@pytest.fixture(scope="session")
def pg_apiscale():
    """A second cluster with the apiscale extension preloaded and created in
    appdb (for the pooler's reports to it and its numbers on /metrics)."""
    problem = extension_problem()
    if problem:
        pytest.skip(problem)
    cluster = PgCluster(extra_conf="shared_preload_libraries = 'apiscale'").init()
    try:
        with cluster.connect(autocommit=True) as c:
            c.execute("CREATE EXTENSION apiscale")
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pooler_bin():
    return str(BINARY)


@pytest.fixture
def pooler(pg, tmp_path, request):
    started = []
    request.node._apiscale_poolers = started

    def fire():
        request.node._apiscale_watchdog_fired = True
        for p in list(started):
            try:
                p.proc.kill()
            except Exception:
                pass

    marker = request.node.get_closest_marker("deadline")
    deadline = marker.args[0] if marker else 60
    watchdog = threading.Timer(deadline, fire)
    watchdog.daemon = True
    watchdog.start()

    def factory(databases=None, users=None, args=(), env=None, sections=None, **settings):
        if not started:
            pg.settle("appdb")
        p = Pooler(pg, tmp_path / f"pooler{len(started)}", settings=settings,
                   databases=databases, users=users, args=args, env=env, sections=sections)
        started.append(p)
        p.start()
        return p

    try:
        yield factory
    finally:
        watchdog.cancel()
        for p in started:
            p.kill()
        # Leave no pooler-made backend for the next test.
        try:
            pg.settle("appdb")
        except Exception:
            pass


@pytest.fixture(scope="session")
def pgbench_tables(pg):
    """pgbench's tables (scale 1) in appdb, made directly on the server."""
    r = subprocess.run([PGBENCH, "-i", "-q", "-s", "1", "-h", pg.host, "-p", str(pg.port),
                        "-U", "postgres", "appdb"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return True
