"""Issue 17: a log file that cannot be written (README, "Faults and
abuse"): the pooler goes on serving, says so once on stderr, and says in
the log how many lines were lost once it can write again.

/dev/full fails every write with ENOSPC; a full disk is a small tmpfs
(mounted only where the test may mount: as root, with CAP_SYS_ADMIN)."""

import errno
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from poolerlib import wait_until

FAILED = "could not write to log file"
BACK = "log file writable again"


def stderr_of(p):
    return p.stderr_path.read_text(errors="replace")


def some_work(p, n=20):
    """n logins and queries: each logs lines at debug level."""
    for i in range(n):
        with p.connect() as c:
            assert c.execute("SELECT %s::int", (i,)).fetchone()[0] == i


@pytest.mark.deadline(60)
def test_dev_full_as_logfile(pg, pooler):
    p = pooler(logfile="/dev/full", log_level="debug")
    some_work(p)
    p.reload(pool_size=3)  # a reload logs too, and keeps the file
    some_work(p)
    assert p.alive()
    text = stderr_of(p)
    assert text.count(FAILED) == 1, text
    assert 'log file "/dev/full": No space left on device' in text
    assert BACK not in text


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "logs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path):
    """Write path until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


@pytest.mark.deadline(60)
def test_full_disk_then_space_again(pg, pooler, small_fs):
    log = small_fs / "pooler.log"
    p = pooler(logfile=str(log), log_level="debug")
    some_work(p, 3)
    assert "logged in" in log.read_text()
    fill(small_fs / "filler")
    some_work(p, 100)  # more than the page the log file has started
    assert p.alive()
    text = stderr_of(p)
    assert text.count(FAILED) == 1, text
    assert "No space left on device" in text
    size = log.stat().st_size

    (small_fs / "filler").unlink()
    marker = f"MARKER{time.time_ns()}"
    with pytest.raises(psycopg.Error):
        p.admin(f"SHOW {marker}")  # logged, as every admin command
    wait_until(lambda: marker in log.read_text(), 5, what="log lines again")
    tail = log.read_text()[size:]
    lost = [line for line in tail.splitlines() if BACK in line]
    assert len(lost) == 1, tail[:2000]
    assert int(lost[0].split("again: ")[1].split()[0]) > 20, lost
    # said once on stderr each way; every line of the log is whole, but
    # for one that the disk cut short, which the next line says
    text = stderr_of(p)
    assert text.count(FAILED) == 1 and text.count(BACK) == 1, text
    lines = log.read_text().splitlines()
    for i, line in enumerate(lines):
        whole = line[:2] == "20" and ": " in line
        assert whole or "the line above was cut short" in lines[i + 1], line

    # A second episode is said again.
    fill(small_fs / "filler")
    some_work(p, 100)
    assert stderr_of(p).count(FAILED) == 2
    assert p.alive()
