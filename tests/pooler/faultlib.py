"""faultlib: network faults for the pooler tests (issue 17).

StallProxy sits between the pooler and PostgreSQL and can stop forwarding
without closing anything (a partition, as far as the pooler's reads and
writes can tell), make its connections vanish without a FIN or a RST (a
peer whose host went down: the kernel forgets them, as TCP_REPAIR lets a
root process do), and resume.

socket_options() reads the TCP options of another process's socket (the
pooler's), by duplicating it with pidfd_getfd(2) (root, Linux 5.6).
"""

import ctypes
import os
import selectors
import socket
import threading

from poolerlib import HOST

TCP_REPAIR = 19  # linux/tcp.h
SYS_PIDFD_GETFD = 438  # the same number on every architecture


class StallProxy:
    """A TCP proxy from 127.0.0.1:<port> to (host, target_port), on a thread
    of its own.  rcvbuf: the receive buffer of the sockets it accepts (a
    small one makes a stalled proxy's window close quickly)."""

    def __init__(self, target_port, host=HOST, rcvbuf=None):
        self.target = (host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            # set before listen(), so that accepted sockets inherit it
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind((host, 0))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.pairs = []  # [front, back] socket pairs
        self.pending = {}  # socket -> bytes not yet written to it
        self.stalled = False
        self.accepted = 0
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self.sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._stop = False
        self._todo = []  # functions the thread runs at its next turn
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # -- control, from the test's thread ------------------------------------

    def _call(self, fn):
        done = threading.Event()
        with self._lock:
            self._todo.append((fn, done))
        self._wake_w.send(b"x")
        if not done.wait(5):
            raise AssertionError("the stall proxy does not answer")

    def stall(self):
        """Stop forwarding: read nothing, write nothing, close nothing."""
        self._call(lambda: setattr(self, "stalled", True))

    def resume(self):
        self._call(lambda: setattr(self, "stalled", False))

    def vanish(self):
        """Forget every connection to the pooler without telling it (no FIN,
        no RST: TCP_REPAIR), and close the ones to the server."""
        def fn():
            for front, back in self.pairs:
                for s in (front, back):
                    self._unregister(s)
                front.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
                front.close()
                back.close()
            self.pairs = []
            self.pending = {}
        self._call(fn)

    def connections(self):
        return len(self.pairs)

    def close(self):
        self._stop = True
        self._wake_w.send(b"x")
        self.thread.join(5)
        for front, back in self.pairs:
            front.close()
            back.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the thread -------------------------------------------------------

    def _unregister(self, s):
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass

    def _peer(self, s):
        for front, back in self.pairs:
            if s is front:
                return back
            if s is back:
                return front
        return None

    def _drop(self, s):
        for pair in list(self.pairs):
            if s in pair:
                for x in pair:
                    self._unregister(x)
                    self.pending.pop(x, None)
                    x.close()
                self.pairs.remove(pair)

    def _interest(self):
        """Register each socket for what it may do now."""
        for pair in self.pairs:
            for s in pair:
                events = 0
                if not self.stalled:
                    events |= selectors.EVENT_READ
                    if self.pending.get(s):
                        events |= selectors.EVENT_WRITE
                try:
                    key = self.sel.get_key(s)
                    if events == 0:
                        self.sel.unregister(s)
                    elif key.events != events:
                        self.sel.modify(s, events, "conn")
                except KeyError:
                    if events:
                        self.sel.register(s, events, "conn")

    def _run(self):
        while not self._stop:
            for key, mask in self.sel.select(0.5):
                if key.data == "wake":
                    key.fileobj.recv(4096)
                    with self._lock:
                        todo, self._todo = self._todo, []
                    for fn, done in todo:
                        fn()
                        done.set()
                elif key.data is None:
                    self._accept()
                elif not self.stalled:
                    self._pump(key.fileobj, mask)
            self._interest()

    def _accept(self):
        try:
            front, _ = self.listener.accept()
        except BlockingIOError:
            return
        try:
            back = socket.create_connection(self.target, timeout=5)
        except OSError:
            front.close()
            return
        front.setblocking(False)
        back.setblocking(False)
        self.pairs.append([front, back])
        self.accepted += 1

    def _pump(self, s, mask):
        peer = self._peer(s)
        if peer is None:
            return
        if mask & selectors.EVENT_READ:
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._drop(s)
                return
            if data:
                self.pending[peer] = self.pending.get(peer, b"") + data
        for target in (peer, s):
            buf = self.pending.get(target)
            if buf:
                try:
                    n = target.send(buf)
                    self.pending[target] = buf[n:]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self._drop(target)
                    return


# ---------------------------------------------------------------------------
# The options of another process's sockets
# ---------------------------------------------------------------------------


def _inode_ports():
    """{socket inode: (local port, remote port)} of every TCP socket."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, remote, inode = parts[1], parts[2], int(parts[9])
                    out[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return out


def process_sockets(pid):
    """[(fd, local port, remote port)] of the TCP sockets of process pid."""
    ports = _inode_ports()
    found = []
    base = f"/proc/{pid}/fd"
    for name in os.listdir(base):
        try:
            target = os.readlink(f"{base}/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inode = int(target[8:-1])
            if inode in ports:
                found.append((int(name), *ports[inode]))
    return found


def _process_socket(pid, fd):
    """A duplicate of socket fd of process pid (pidfd_getfd), to close."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if dup < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd failed")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=dup)


def socket_options(pid, fd):
    """SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and
    TCP_USER_TIMEOUT of socket fd of process pid, as a dict."""
    with _process_socket(pid, fd) as s:
        return {
            "keepalive": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "keepidle": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "keepintvl": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "keepcnt": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "user_timeout": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }


def listener_defer_accept(pid, port):
    """TCP_DEFER_ACCEPT of the socket of process pid listening on port (the
    kernel answers in whole SYN-ACK retransmission periods, so 45 reads
    back as more)."""
    for fd, local, remote in process_sockets(pid):
        if local == port and remote == 0:
            with _process_socket(pid, fd) as s:
                return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)
    raise LookupError(f"process {pid} has no socket listening on port {port}")


def pidfd_getfd_problem():
    """Why socket_options cannot work here, or None."""
    if not hasattr(os, "pidfd_open"):
        return "os.pidfd_open needs Python 3.9"
    if os.geteuid() != 0:
        return "pidfd_getfd of another process needs root here"
    return None


def tcp_repair_problem():
    """Why StallProxy.vanish cannot work here (TCP_REPAIR needs
    CAP_NET_ADMIN), or None."""
    a = socket.socket()
    try:
        a.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
        return None
    except OSError as e:
        return f"TCP_REPAIR: {e}"
    finally:
        a.close()
