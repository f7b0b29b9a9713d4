"""The pg fixture itself: the throwaway cluster and its helpers work.

Runs without the pooler, so that the harness is known good before the
daemon exists."""

import psycopg
import pytest

from poolerlib import SECURE_PASSWORD, wait_until


def test_cluster_listens_on_loopback_with_appdb(pg):
    with pg.connect() as c:
        assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 100
        assert c.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert int(c.execute("SHOW max_connections").fetchone()[0]) == 300
        assert c.execute("SELECT current_user").fetchone()[0] == "postgres"


def test_backends_counts_connections_but_not_the_monitor(pg):
    pg.settle("appdb")
    assert pg.backends("appdb", "postgres") == 0
    conns = [pg.connect() for _ in range(3)]
    try:
        assert pg.backends("appdb", "postgres") == 3
        assert pg.backends("appdb", "app") == 0
        with pg.connect(user="app") as c:
            assert pg.backends("appdb", "app") == 1
            assert pg.backends("appdb", None) == 4
            c.execute("BEGIN")
            c.execute("SELECT 1")
            assert len(pg.idle_in_transaction("appdb")) == 1
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: pg.backends("appdb", None) == 0, 5, what="connections to go")


def test_server_checks_the_password_of_role_secure(pg):
    with pytest.raises(psycopg.OperationalError):
        pg.connect(user="secure", password="wrong").close()
    with pg.connect(user="secure", password=SECURE_PASSWORD) as c:
        assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 100


def test_restart_stop_start(pg):
    with pg.connect() as c:
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    pg.restart()  # -m immediate
    assert pg.is_running()
    with pg.connect() as c:
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
    pg.stop()
    assert not pg.is_running()
    with pytest.raises(psycopg.OperationalError):
        pg.connect().close()
    pg.start()
    assert pg.backends("appdb", None) == 0  # the monitor reconnects by itself
    with pg.connect() as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
