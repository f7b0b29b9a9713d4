"""The command line and the config file: --help, --version, --check with
its `FILE:LINE: KEY: message` errors, -d with pidfile, logfile."""

import os
import re
import signal
import subprocess
import time

import psycopg
import pytest

from poolerlib import DEFAULT_SETTINGS, HOST, free_port, port_accepts, render_config, wait_until


def run(binary, *args, timeout=10):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def good_lines(tmp_path, **settings):
    values = dict(DEFAULT_SETTINGS)
    values["listen_port"] = free_port()
    values.update(settings)
    return render_config({"appdb": f"host={HOST} port=5432 dbname=appdb"}, values)


def port_of(lines):
    return int(next(line.split("=")[1] for line in lines if line.startswith("listen_port")))


def write(tmp_path, lines, name="pooler.ini"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_located_error(result, path, line, key):
    assert result.returncode == 1, (result.returncode, result.stderr)
    pattern = rf"(^|/){re.escape(path.name)}:{line}: {re.escape(key)}: \S"
    assert re.search(pattern, result.stderr, re.M), (
        f"expected '{path}:{line}: {key}: message' on stderr, got:\n{result.stderr}")


def test_help(pooler_bin):
    r = run(pooler_bin, "--help")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert re.search("usage", out, re.I), out
    assert "--check" in out


def test_version(pooler_bin):
    r = run(pooler_bin, "--version")
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+\.\d+", r.stdout + r.stderr), r.stdout


def test_check_good_config(pooler_bin, tmp_path):
    lines = good_lines(tmp_path)
    lines.insert(1, "# a comment")
    lines.insert(2, "; another comment")
    path = write(tmp_path, lines)
    r = run(pooler_bin, "--check", str(path))
    assert r.returncode == 0, r.stderr
    # --check validates and exits: it does not listen.
    assert not port_accepts(port_of(lines))


@pytest.mark.parametrize("settings", [
    {"pool_timeout": 0.5, "pool_recycle": 0.25},
    {"max_overflow": -1, "pool_recycle": -1},
    {"pool_mode": "session", "log_level": "debug"},
    {"log_level": "error", "auth_type": "md5"},
])
def test_check_accepts_documented_values(pooler_bin, tmp_path, settings):
    if settings.get("auth_type") == "md5":
        users = tmp_path / "users.txt"
        users.write_text('"postgres" "secret"\n')
        settings = dict(settings, auth_file=str(users))
    path = write(tmp_path, good_lines(tmp_path, **settings))
    r = run(pooler_bin, "--check", str(path))
    assert r.returncode == 0, r.stderr


def test_check_unknown_key(pooler_bin, tmp_path):
    lines = good_lines(tmp_path)
    lines.append("pool_sizee = 3")
    path = write(tmp_path, lines)
    assert_located_error(run(pooler_bin, "--check", str(path)), path, len(lines), "pool_sizee")


@pytest.mark.parametrize("key,value", [
    ("pool_size", "abc"),
    ("pool_size", "-3"),
    ("max_overflow", "lots"),
    ("pool_timeout", "soon"),
    ("pool_recycle", "1e"),
    ("pool_mode", "statementish"),
    ("auth_type", "bogus"),
    ("listen_port", "70000"),
    ("log_level", "loud"),
    ("max_client_conn", "x"),
])
def test_check_bad_value(pooler_bin, tmp_path, key, value):
    lines = good_lines(tmp_path)
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{key} ="))
    lines[index] = f"{key} = {value}"
    path = write(tmp_path, lines)
    assert_located_error(run(pooler_bin, "--check", str(path)), path, index + 1, key)


def test_check_missing_file(pooler_bin, tmp_path):
    path = tmp_path / "no-such.ini"
    r = run(pooler_bin, "--check", str(path))
    assert r.returncode == 1, r.stderr
    assert "no-such.ini" in r.stderr


def test_start_with_a_bad_config_fails(pooler_bin, tmp_path):
    lines = good_lines(tmp_path)
    port = port_of(lines)
    lines.append("no_such_key = 1")
    path = write(tmp_path, lines)
    r = run(pooler_bin, str(path), timeout=10)
    assert r.returncode != 0
    assert "no_such_key" in r.stderr
    assert not port_accepts(port)


def test_daemon_mode_with_pidfile_and_logfile(pg, pooler_bin, tmp_path):
    pidfile = tmp_path / "pooler.pid"
    logfile = tmp_path / "pooler.log"
    port = free_port()
    lines = render_config({"appdb": f"host={HOST} port={pg.port} dbname=appdb"},
                          dict(DEFAULT_SETTINGS, listen_port=port, pidfile=str(pidfile),
                               logfile=str(logfile), log_level="debug"))
    path = write(tmp_path, lines)
    out = tmp_path / "daemon.out"
    with open(out, "w") as f:
        # Files, not pipes: a daemon that kept our pipes open would block run().
        proc = subprocess.Popen([pooler_bin, "-d", str(path)], stdin=subprocess.DEVNULL,
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    pid = None
    try:
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError("apiscale-pooler -d did not return within 10 s")
        assert rc == 0, out.read_text()
        pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5,
                             what="the pidfile"))
        os.kill(pid, 0)  # running
        wait_until(lambda: port_accepts(port), 5, what="the daemon to listen")
        with psycopg.connect(host=HOST, port=port, dbname="appdb", user="postgres",
                             autocommit=True, prepare_threshold=None, connect_timeout=5) as c:
            assert c.execute("SELECT 1").fetchone()[0] == 1
        wait_until(lambda: logfile.exists() and logfile.stat().st_size > 0, 3,
                   what="the daemon to write its logfile")
    finally:
        # The daemon by its pidfile, or else by its unique config path.
        for victim in ({pid} if pid is not None else processes_with_arg(str(path))):
            stop_pid(victim)
    assert not port_accepts(port)


def processes_with_arg(arg):
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if arg.encode() in f.read().split(b"\0"):
                        found.add(int(entry))
            except OSError:
                pass
    return found


def stop_pid(pid):
    try:
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return  # exited; its parent has not reaped it yet
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, FileNotFoundError):
        pass


def test_foreground_writes_pidfile_and_logfile(pg, pooler, tmp_path):
    pidfile = tmp_path / "fg.pid"
    logfile = tmp_path / "fg.log"
    p = pooler(pidfile=str(pidfile), logfile=str(logfile), log_level="debug")
    assert int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 3,
                          what="the pidfile")) == p.pid
    with p.connect() as c:
        c.execute("SELECT 1")
    wait_until(lambda: logfile.exists() and logfile.stat().st_size > 0, 3, what="the logfile")


def test_log_level_changes_verbosity(pg, pooler):
    logs = {}
    for level in ("error", "debug"):
        p = pooler(log_level=level)
        for _ in range(3):
            with p.connect() as c:
                c.execute("SELECT 1")
        time.sleep(0.3)
        p.stop(signal.SIGINT)
        logs[level] = p.log()
    assert len(logs["debug"]) > len(logs["error"]), logs
