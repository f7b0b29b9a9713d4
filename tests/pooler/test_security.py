"""Issue 17, security (pooler side; README, "Security"): stats_users on the
admin console, what the HTTP endpoint shows, the auth_file's mode, and
secrets that must never reach the log."""

import pytest

from poolerlib import PgError, RawClient, as_int

# Commands that change something: admin_users only.
WRITE_COMMANDS = ["RELOAD", "PAUSE", "RESUME", "SHUTDOWN", "BAN 127.0.0.1:1", "UNBAN 127.0.0.1:1"]
SHOW_COMMANDS = ["SHOW POOLS", "SHOW STATS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW DATABASES",
                 "SHOW CONFIG", "SHOW HOSTS", "SHOW VERSION"]


def console(p, user):
    return RawClient(p.port).startup(user, "apiscale")


def test_stats_users_may_show_but_not_change(pg, pooler):
    p = pooler(admin_users="postgres", stats_users="app, reporting")
    with p.connect() as c:
        c.execute("SELECT 1")
    stats = console(p, "app")
    try:
        for cmd in SHOW_COMMANDS:
            res = stats.query(cmd)
            assert res.errors == [] and res.tags and res.tags[0].startswith("SHOW"), (cmd, res.messages)
        for cmd in WRITE_COMMANDS:
            res = stats.query(cmd)
            assert [e.sqlstate for e in res.errors] == ["42501"], (cmd, res.messages)
            verb = cmd.split()[0]
            assert res.errors[0].message == (
                f'permission denied: {verb} needs a user in admin_users; user "app" is in '
                "stats_users, which may run SHOW commands only")
            assert res.status == "I"
        # Nothing of it happened: not paused, not shut down.
        assert p.alive()
        with p.connect() as c:
            assert c.execute("SELECT 2").fetchone()[0] == 2
        # An admin may.
        admin = console(p, "postgres")
        for cmd in ("PAUSE", "RESUME", "RELOAD"):
            res = admin.query(cmd)
            assert res.errors == [] and res.tags == [cmd], res.messages
        admin.close()

        # Taken out of stats_users by a reload: its open console says so.
        p.reload(stats_users="reporting")
        res = stats.query("SHOW POOLS")
        assert [e.sqlstate for e in res.errors] == ["42501"], res.messages
        assert "no longer in admin_users or stats_users" in res.errors[0].message
    finally:
        stats.close()
    with pytest.raises(PgError) as exc:
        console(p, "app")
    assert exc.value.sqlstate == "28000"
    assert "(admin_users, stats_users)" in exc.value.message


def test_neither_list_is_refused_at_login(pg, pooler):
    p = pooler(admin_users="postgres", stats_users="")
    with pytest.raises(PgError) as exc:
        console(p, "app")
    assert exc.value.sqlstate == "28000"
    assert as_int(p.config_value("pool_size")) == 20
    assert p.config_value("stats_users") == ""
