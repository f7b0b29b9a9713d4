"""Type=notify: the pooler tells systemd (NOTIFY_SOCKET, sd_notify's
protocol) when it is ready, reloading and stopping.  A datagram socket of
the test's own stands in for systemd."""

import os
import signal
import socket

import pytest


def listen(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    return s


def received(sock):
    return sock.recv(4096).decode()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_reloading_stopping(pooler, tmp_path, abstract):
    name = f"apiscale-notify-{os.getpid()}-{abstract}"
    if abstract:
        sock, env = listen("\0" + name), "@" + name
    else:
        sock = listen(str(tmp_path / "notify.sock"))
        env = str(tmp_path / "notify.sock")
    with sock:
        p = pooler(env={"NOTIFY_SOCKET": env})
        assert received(sock) == "READY=1"
        p.send_signal(signal.SIGHUP)
        assert received(sock) == "RELOADING=1"
        assert received(sock) == "READY=1"
        assert p.stop() == 0
        assert received(sock) == "STOPPING=1"


def test_no_socket_no_harm(pooler, tmp_path):
    """A NOTIFY_SOCKET nobody listens on: logged, and the pooler runs."""
    p = pooler(env={"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    with p.connect() as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    assert "could not tell systemd \"READY=1\"" in p.log()
