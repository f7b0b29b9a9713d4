"""Issue 11: one client's identity, settings and shared statements must never
reach another client of the same server.

Every test here runs a pool of one server (pool_size = 1, max_overflow = 0):
the next client can only get the server the previous one used.  A client
whose session state is still on that server keeps it (pinned), so the next
client waits for pool_timeout instead: that wait, and what the next client
sees once the first has left, are what the tests pin down.
"""

import psycopg
import pytest

from poolerlib import RawClient

P = RawClient

POOL_TIMEOUT = 1.0


def one_server_pool(pooler, **kw):
    return pooler(pool_size=1, max_overflow=0, pool_timeout=POOL_TIMEOUT, **kw)


def direct(pg, sql):
    with pg.connect(autocommit=True) as c:
        c.execute(sql)


def ensure_role(pg, name):
    direct(pg, f"""DO $$ BEGIN
                     IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
                       CREATE ROLE {name} LOGIN;
                     END IF;
                   END $$""")


def next_client_sees(p, sql):
    """What a new client gets for sql: its one value, or the SQLSTATE of the
    error it got (53300 when the pool's only server is still taken)."""
    with p.connect(autocommit=True) as b:
        try:
            return b.execute(sql).fetchone()[0]
        except psycopg.Error as e:
            return e.sqlstate


# ---------------------------------------------------------------------------
# 1. Un-pinning follows the state, not a command tag
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("become, reset", [
    ("SET ROLE alice", "RESET ALL"),
    ("SET SESSION AUTHORIZATION alice", "RESET ALL"),
    ("SET role = 'alice'", "RESET ALL"),
    ("SET ROLE alice", "RESET work_mem"),
    ("SET SESSION AUTHORIZATION alice", "RESET ROLE"),
])
def test_reset_all_keeps_the_identity_and_the_pin(pg, pooler, become, reset):
    """RESET ALL does not reset role or session_authorization: the client
    stays alice and stays on its server; nobody else runs as alice."""
    ensure_role(pg, "alice")
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        a.execute(become)
        a.execute(reset)
        assert a.execute("SELECT current_user").fetchone()[0] == "alice"
        assert next_client_sees(p, "SELECT current_user") == "53300"
        assert a.execute("SELECT current_user").fetchone()[0] == "alice"
    # a left: its server was reset before anyone else got it
    assert next_client_sees(p, "SELECT current_user") == "postgres"
    assert next_client_sees(p, "SELECT session_user") == "postgres"


@pytest.mark.parametrize("become, back", [
    ("SET ROLE alice", "RESET ROLE"),
    ("SET ROLE alice", "SET ROLE NONE"),
    ("SET SESSION AUTHORIZATION alice", "RESET SESSION AUTHORIZATION"),
    ("SET SESSION AUTHORIZATION alice", "SET SESSION AUTHORIZATION DEFAULT"),
])
def test_identity_given_back_unpins(pg, pooler, become, back):
    ensure_role(pg, "alice")
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        a.execute(become)
        a.execute(back)
        assert a.execute("SELECT current_user").fetchone()[0] == "postgres"
        # released: the next client gets the server while a is still here
        assert next_client_sees(p, "SELECT current_user") == "postgres"


def test_set_local_role_does_not_pin(pg, pooler):
    ensure_role(pg, "alice")
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        with a.transaction():
            a.execute("SET LOCAL ROLE alice")
            assert a.execute("SELECT current_user").fetchone()[0] == "alice"
        assert next_client_sees(p, "SELECT current_user") == "postgres"


def test_reset_all_rolled_back_keeps_the_setting_and_the_pin(pg, pooler):
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        a.execute("SET work_mem = '77kB'")
        a.execute("BEGIN")
        a.execute("RESET ALL")
        a.execute("ROLLBACK")
        assert a.execute("SHOW work_mem").fetchone()[0] == "77kB"
        assert next_client_sees(p, "SHOW work_mem") == "53300"
    assert next_client_sees(p, "SHOW work_mem") == "4MB"


def test_reset_all_in_a_failed_transaction_keeps_the_pin(pg, pooler):
    """An error aborts the transaction: its RESET ALL never happened."""
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        a.execute("SET work_mem = '78kB'")
        with pytest.raises(psycopg.errors.DivisionByZero):
            a.execute("RESET ALL; SELECT 1/0")  # one implicit transaction
        assert a.execute("SHOW work_mem").fetchone()[0] == "78kB"
        assert next_client_sees(p, "SHOW work_mem") == "53300"


def test_reset_all_rolled_back_to_a_savepoint_keeps_the_pin(pg, pooler):
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        a.execute("SET work_mem = '79kB'")
        a.execute("BEGIN; SAVEPOINT s; RESET ALL; ROLLBACK TO SAVEPOINT s; COMMIT")
        assert a.execute("SHOW work_mem").fetchone()[0] == "79kB"
        assert next_client_sees(p, "SHOW work_mem") == "53300"


def test_reset_all_committed_unpins(pg, pooler):
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        a.execute("SET work_mem = '80kB'")
        a.execute("BEGIN")
        a.execute("RESET ALL")
        a.execute("COMMIT")
        assert a.execute("SHOW work_mem").fetchone()[0] == "4MB"
        assert next_client_sees(p, "SHOW work_mem") == "4MB"


def test_set_after_reset_all_in_one_transaction_keeps_the_pin(pg, pooler):
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        a.execute("SET work_mem = '81kB'")
        a.execute("BEGIN; RESET ALL; SET work_mem = '82kB'; COMMIT")
        assert a.execute("SHOW work_mem").fetchone()[0] == "82kB"
        assert next_client_sees(p, "SHOW work_mem") == "53300"


def test_unlisten_rolled_back_keeps_listening_and_the_pin(pg, pooler):
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        got = []
        a.add_notify_handler(lambda n: got.append(n.payload))
        a.execute("LISTEN chan")
        a.execute("BEGIN")
        a.execute("UNLISTEN *")
        a.execute("ROLLBACK")
        assert next_client_sees(p, "SELECT count(*) FROM pg_listening_channels()") == "53300"
        direct(pg, "NOTIFY chan, 'still-a'")
        assert a.execute("SELECT pg_listening_channels()").fetchone()[0] == "chan"
        assert got == ["still-a"]
    assert next_client_sees(p, "SELECT count(*) FROM pg_listening_channels()") == 0


def test_unpinned_server_is_reset_before_the_next_client(pg, pooler):
    """State the pooler cannot see (set_config in a function) goes with the
    DISCARD ALL that a once-pinned server gets before it is handed on."""
    p = one_server_pool(pooler)
    with p.connect(autocommit=True) as a:
        a.execute("LISTEN chan")
        a.execute("SELECT set_config('work_mem', '83kB', false)")
        a.execute("UNLISTEN *")
        assert next_client_sees(p, "SHOW work_mem") == "4MB"


# ---------------------------------------------------------------------------
# 2. No client text reaches the pooler's shared _aps_ statements
# ---------------------------------------------------------------------------


def prepared_name(raw, sql):
    (name,), = raw.query("SELECT name FROM pg_prepared_statements"
                         f" WHERE statement = '{sql}'").rows
    assert name.startswith("_aps_"), name
    return name


def run_named(raw, name):
    raw.send(P.bind(name) + P.execute() + P.sync())
    return raw.read_until_ready()


@pytest.mark.parametrize("form", [
    "/* x */ DEALLOCATE {name}",
    "SELECT 1; DEALLOCATE {name}",
    "deallocate prepare {upper}",
    'DEALLOCATE "{name}"',
    "-- comment\nDEALLOCATE\n\t{name} ;",
    "SELECT E'\\''; DEALLOCATE {name}; -- '",
    "/* /* nested */ ' */ DEALLOCATE {name}; -- '",
    'DEALLOCATE U&"\\005f{rest}"',
])
def test_deallocate_of_a_pooler_statement_is_refused(pg, pooler, form):
    p = one_server_pool(pooler)
    a = p.raw()
    b = p.raw()
    try:
        a.send(P.parse("SELECT 99", name="n99") + P.bind("n99") + P.execute() + P.sync())
        assert a.read_until_ready().rows == [("99",)]
        name = prepared_name(b, "SELECT 99")
        sql = form.format(name=name, upper=name.upper(), rest=name[1:])
        res = b.query(sql)
        assert [e.sqlstate for e in res.errors] == ["26000"], res.messages
        assert res.status == "I"
        assert prepared_name(b, "SELECT 99") == name
        res = run_named(a, "n99")
        assert res.errors == [] and res.rows == [("99",)], res.messages
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("named", [False, True])
def test_deallocate_parsed_by_the_extended_protocol_is_refused(pg, pooler, named):
    p = one_server_pool(pooler)
    a = p.raw()
    b = p.raw()
    try:
        a.send(P.parse("SELECT 98", name="n98") + P.bind("n98") + P.execute() + P.sync())
        assert a.read_until_ready().rows == [("98",)]
        name = prepared_name(b, "SELECT 98")
        stmt = "evil" if named else ""
        b.send(P.parse(f"DEALLOCATE {name}", name=stmt) + P.bind(stmt) + P.execute() + P.sync())
        res = b.read_until_ready()
        assert [e.sqlstate for e in res.errors] == ["26000"], res.messages
        res = run_named(a, "n98")
        assert res.errors == [] and res.rows == [("98",)], res.messages
    finally:
        a.close()
        b.close()


def test_prepare_of_a_pooler_name_is_refused(pg, pooler):
    p = one_server_pool(pooler)
    b = p.raw()
    try:
        res = b.query("PREPARE _aps_1 AS SELECT 1")
        assert [e.sqlstate for e in res.errors] == ["42939"], res.messages
        # not pinned by a PREPARE that did not happen
        assert next_client_sees(p, "SELECT 1") == 1
    finally:
        b.close()


def test_pooler_statement_dropped_behind_its_back_is_prepared_again(pg, pooler):
    """A DEALLOCATE the pooler cannot see (inside a function) costs at most
    one error, for one client; every later use prepares it again."""
    p = one_server_pool(pooler)
    a = p.raw()
    b = p.raw()
    try:
        a.send(P.parse("SELECT 97", name="n97") + P.bind("n97") + P.execute() + P.sync())
        assert a.read_until_ready().rows == [("97",)]
        name = prepared_name(b, "SELECT 97")
        res = b.query(f"DO $$ BEGIN EXECUTE 'DEALLOCATE {name}'; END $$")
        assert res.errors == [], res.messages
        first = run_named(a, "n97")
        assert first.rows == [("97",)] or \
            [e.sqlstate for e in first.errors] == ["26000"], first.messages
        for _ in range(3):
            res = run_named(a, "n97")
            assert res.errors == [] and res.rows == [("97",)], res.messages
        c = p.raw()
        try:
            c.send(P.parse("SELECT 97", name="mine") + P.bind("mine") + P.execute() + P.sync())
            res = c.read_until_ready()
            assert res.errors == [] and res.rows == [("97",)], res.messages
        finally:
            c.close()
    finally:
        a.close()
        b.close()
