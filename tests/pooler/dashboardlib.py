"""dashboardlib: load pooler/dashboard.html in headless Chromium and read it.

- chromium_problem() / load(url) / screenshot(url, path): Debian's chromium,
  headless, a fresh profile per run, no network beyond the URL given;
  load() returns the DOM after the page's scripts ran (--dump-dom), parsed
  by parse_dom() into Nodes with select() / select_one() / text.
- StatusServer: a small HTTP server on 127.0.0.1 that serves the page at
  its prefix and api/status from a list of answers given by the test (a
  dict is sent as JSON, an int as that HTTP status, bytes as they are).  It
  stands in for the pooler's HTTP endpoint, and records the paths asked for.
- sample_status(): an /api/status document as the pooler would send it after
  an hour of a busy API (used by the tests and for docs/dashboard.png).

    /usr/bin/python3 tests/pooler/dashboardlib.py screenshot docs/dashboard.png [WxH]

remakes the screenshot in the README (1600x1580 by default).
"""

import html.parser
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "pooler" / "dashboard.html"
CHROMIUM = os.environ.get("APISCALE_CHROMIUM", "/usr/bin/chromium")

# Headless, no sandbox (we run as root), nothing fetched in the background.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
]


def chromium_problem():
    """Why Chromium cannot be used, or None when it can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} not found (Debian package chromium; scripts/deps.sh installs it)"
    return None


def _run_chromium(args, budget_ms, timeout):
    profile = tempfile.mkdtemp(prefix="apiscale-chromium.")
    # The page's clock labels are local time: make them the same everywhere.
    env = dict(os.environ, TZ=os.environ.get("APISCALE_DASHBOARD_TZ", "UTC"))
    try:
        r = subprocess.run([CHROMIUM] + CHROMIUM_FLAGS +
                           [f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"] + args,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=env)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if r.returncode != 0:
        raise AssertionError(f"chromium exited with {r.returncode}:\n"
                             f"{r.stderr.decode(errors='replace')[-3000:]}")
    return r


def load(url, budget_ms=5000, window=(1600, 1200), timeout=90):
    """The rendered DOM of url, parsed (see parse_dom).

    budget_ms is virtual time: timers run fast, and it stands still while
    a fetch is in flight, so a budget of N ms sees the refreshes of N ms."""
    r = _run_chromium([f"--window-size={window[0]},{window[1]}", "--dump-dom", url], budget_ms, timeout)
    out = r.stdout.decode("utf-8", errors="replace")
    if "<html" not in out:
        raise AssertionError(f"chromium dumped no document for {url}:\n"
                             f"{r.stderr.decode(errors='replace')[-3000:]}")
    return parse_dom(out)


def screenshot(url, path, window=(1600, 1200), budget_ms=5000, timeout=90):
    """A PNG of the page's first window-size pixels."""
    path = Path(path).resolve()
    _run_chromium([f"--window-size={window[0]},{window[1]}", f"--screenshot={path}", url],
                  budget_ms, timeout)
    if not path.exists() or path.stat().st_size == 0:
        raise AssertionError(f"chromium wrote no screenshot to {path}")
    return path


# ---------------------------------------------------------------------------
# A DOM good enough for tests: elements, attributes, text, simple selectors
# ---------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children = []      # Nodes and str

    @property
    def classes(self):
        return set((self.attrs.get("class") or "").split())

    @property
    def text(self):
        """The text content, as textContent would give it."""
        parts = []
        for c in self.children:
            parts.append(c if isinstance(c, str) else c.text)
        return "".join(parts)

    def get(self, name, default=None):
        return self.attrs.get(name, default)

    def iter(self):
        """Every element under this one, in document order."""
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.iter()

    def select(self, selector):
        """Elements matching a descendant chain of compound selectors:
        tag, #id, .class, [attr], [attr="value"] (e.g. 'tr.signal[data-signal="x"] td.value')."""
        steps = [_parse_compound(s) for s in _split_selector(selector)]
        found = [self]
        for step in steps:
            seen, nxt = set(), []
            for base in found:
                for n in base.iter():
                    if id(n) not in seen and _matches(n, step):
                        seen.add(id(n))
                        nxt.append(n)
            found = nxt
        return found

    def select_one(self, selector):
        found = self.select(selector)
        assert found, f"no element matches {selector!r}"
        return found[0]

    def __repr__(self):
        return f"<{self.tag} {self.attrs}>"


def _split_selector(selector):
    parts, cur, quote = [], "", None
    for ch in selector.strip():
        if quote:
            cur += ch
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch.isspace():
            if cur:
                parts.append(cur)
                cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


# tag | #id | .class | [attr] or [attr="v"] / [attr='v'] / [attr=v]
_TOKEN = re.compile(r"""([a-zA-Z][\w-]*)|#([\w-]+)|\.([\w-]+)"""
                    r"""|\[([\w-]+)(?:=(?:"([^"]*)"|'([^']*)'|([^\]]*)))?\]""")


def _parse_compound(s):
    step = {"tag": None, "id": None, "classes": [], "attrs": []}
    pos = 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m:
            raise ValueError(f"selector not understood at {s[pos:]!r}")
        tag, ident, cls, attr = m.group(1), m.group(2), m.group(3), m.group(4)
        if tag:
            step["tag"] = tag.lower()
        elif ident:
            step["id"] = ident
        elif cls:
            step["classes"].append(cls)
        else:
            value = next((g for g in m.group(5, 6, 7) if g is not None), None)
            step["attrs"].append((attr, value))
        pos = m.end()
    return step


def _matches(n, step):
    if step["tag"] and n.tag != step["tag"]:
        return False
    if step["id"] and n.attrs.get("id") != step["id"]:
        return False
    if not set(step["classes"]) <= n.classes:
        return False
    for name, value in step["attrs"]:
        if name not in n.attrs or (value is not None and n.attrs[name] != value):
            return False
    return True


class _Builder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v if v is not None else "") for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, {k: (v if v is not None else "") for k, v in attrs}, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse_dom(text):
    b = _Builder()
    b.feed(text)
    b.close()
    return b.root


# ---------------------------------------------------------------------------
# The stand-in for the pooler's HTTP endpoint
# ---------------------------------------------------------------------------

class StatusServer:
    """Serves the page at `prefix` and api/status under it, on 127.0.0.1.

    answers: what successive GET api/status receive; the last one repeats.
    A dict (or list) is sent as JSON, an int as that status with no body,
    bytes as a 200 body of type application/json."""

    def __init__(self, answers, prefix="/", page=PAGE):
        assert prefix.endswith("/")
        self.answers = list(answers)
        self.prefix = prefix
        self.page = Path(page).read_bytes()
        self.paths = []
        self._lock = threading.Lock()
        self._served = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                owner._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}"

    @property
    def status_requests(self):
        return sum(1 for p in self.paths if p.split("?")[0] == self.prefix + "api/status")

    def _next_answer(self):
        with self._lock:
            answer = self.answers[min(self._served, len(self.answers) - 1)]
            self._served += 1
            return answer

    def _handle(self, req):
        with self._lock:
            self.paths.append(req.path)
        path = req.path.split("?")[0]
        if path == self.prefix:
            self._send(req, 200, self.page, "text/html; charset=utf-8")
        elif path == self.prefix + "api/status":
            answer = self._next_answer()
            if isinstance(answer, int):
                self._send(req, answer, b"", "text/plain")
            elif isinstance(answer, bytes):
                self._send(req, 200, answer, "application/json")
            else:
                self._send(req, 200, json.dumps(answer).encode(), "application/json")
        else:
            self._send(req, 404, b"not found\n", "text/plain")

    @staticmethod
    def _send(req, code, body, ctype):
        req.send_response(code)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Cache-Control", "no-store")
        req.end_headers()
        req.wfile.write(body)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# ---------------------------------------------------------------------------
# Sample data: an hour of a busy API whose database starts to hurt
# ---------------------------------------------------------------------------

NOW = 1765000000.5
ACTIONS = {
    "p95_response_time_ms": "profile slow endpoints, add caching",
    "error_rate_pct": "investigate error logs immediately",
    "connection_utilization_pct": "increase pool size or add read replicas",
    "pool_utilization_pct": "increase pool size or add read replicas",
    "cache_hit_rate_pct": "add memory / raise shared_buffers",
    "cpu_usage_pct": "upgrade the server or add servers",
    "memory_usage_pct": "check for memory leaks, add RAM",
}
THRESHOLDS = {
    "p95_response_time_ms": 500, "error_rate_pct": 1, "connection_utilization_pct": 80,
    "pool_utilization_pct": 80, "cache_hit_rate_pct": 99, "cpu_usage_pct": 70,
    "memory_usage_pct": 85,
}


def signal(name, value, status=None):
    """One row of apiscale.scaling_signals, status computed like the extension's."""
    if status is None:
        if value is None:
            status = "no data"
        elif name == "cache_hit_rate_pct":
            status = "warning" if value < THRESHOLDS[name] else "ok"
        else:
            status = "warning" if value > THRESHOLDS[name] else "ok"
    return {"signal": name, "value": value, "threshold": THRESHOLDS[name], "status": status,
            "action": ACTIONS[name]}


def _wave(i, period, amplitude, phase=0.0):
    return amplitude * math.sin(2 * math.pi * i / period + phase)


def sample_status(now=NOW, interval=10):
    """A realistic /api/status: traffic grows over the hour, p95, CPU and the
    app pool climb past their thresholds in the last quarter hour."""
    n = 3600 // interval
    t0 = math.floor(now / interval) * interval - (n - 1) * interval
    times = [t0 + i * interval for i in range(n)]

    def ramp(i):                    # 0 for most of the hour, then up to 1
        x = (i - n * 0.7) / (n * 0.3)
        return max(0.0, min(1.0, x)) ** 1.6

    p95, errors, cpu, mem, pool_sig, cache, conns = [], [], [], [], [], [], []
    app_util, app_wait, rep_util, rep_wait = [], [], [], []
    for i in range(n):
        r = ramp(i)
        p95.append(round(140 + _wave(i, 37, 18) + _wave(i, 9, 9, 1) + 520 * r, 1))
        err = 0.12 + abs(_wave(i, 23, 0.08)) + 0.9 * r + (1.4 if i in (181, 182) else 0)
        errors.append(round(err, 2))
        cpu.append(round(46 + _wave(i, 61, 5) + _wave(i, 7, 2.5, 2) + 30 * r, 1))
        mem.append(round(61 + i * 0.012 + _wave(i, 90, 1.2), 1))
        u = min(1.0, 0.34 + _wave(i, 41, 0.07) + 0.6 * r)
        app_util.append(round(u, 3))
        app_wait.append(max(0, round((u - 0.78) * 50)))
        rep_util.append(round(0.12 + abs(_wave(i, 120, 0.1)), 3) if i >= 60 else None)
        rep_wait.append(0 if i >= 60 else None)
        pool_sig.append(round(u * 100, 1))
        cache.append(round(99.6 - 0.8 * r + _wave(i, 30, 0.1), 2))
        conns.append(round(24 + 30 * r, 1))
    # A restart of the signal worker: a minute with no machine numbers.
    for i in range(100, 106):
        cpu[i] = mem[i] = None

    started = now - (2 * 86400 + 5 * 3600 + 17 * 60)
    return {
        "version": "0.1.0",
        "now": now,
        "started": started,
        "accepting": True,
        "clients": {"connected": 143, "max": 10000},
        "show_statements": True,
        "pools": [
            {"database": "appdb", "user": "app", "pool_mode": "transaction", "pool_size": 20,
             "max_overflow": 30, "clients": {"active": 44, "waiting": 7, "idle": 81},
             "servers": {"active": 44, "idle": 0, "login": 2}, "utilization": app_util[-1],
             "transactions": 2841190, "queries": 6120433, "timeouts": 12, "recycled": 96,
             "login_failures": 0},
            {"database": "appdb", "user": "reporting", "pool_mode": "transaction", "pool_size": 5,
             "max_overflow": -1, "clients": {"active": 1, "waiting": 0, "idle": 3},
             "servers": {"active": 1, "idle": 2, "login": 0}, "utilization": rep_util[-1],
             "transactions": 18342, "queries": 40211, "timeouts": 0, "recycled": 4,
             "login_failures": 0},
            {"database": "billing", "user": "billing", "pool_mode": "transaction", "pool_size": 10,
             "max_overflow": 0, "clients": {"active": 0, "waiting": 0, "idle": 7},
             "servers": {"active": 0, "idle": 3, "login": 0}, "utilization": 0.0,
             "transactions": 99120, "queries": 180004, "timeouts": 0, "recycled": 12,
             "login_failures": 1},
        ],
        "history": {
            "interval": interval,
            "time": times,
            "pools": {
                "appdb/app": {"utilization": app_util, "waiting": app_wait},
                "appdb/reporting": {"utilization": rep_util, "waiting": rep_wait},
            },
            "signals": {
                "appdb": {
                    "p95_response_time_ms": p95, "error_rate_pct": errors, "cpu_usage_pct": cpu,
                    "memory_usage_pct": mem, "pool_utilization_pct": pool_sig,
                    "cache_hit_rate_pct": cache, "connection_utilization_pct": conns,
                },
            },
        },
        "databases": [
            {"database": "appdb", "fetched_at": now - 0.4, "error": None,
             "signals": [
                 signal("p95_response_time_ms", 612.4),
                 signal("error_rate_pct", 0.84),
                 signal("connection_utilization_pct", 18.3),
                 signal("pool_utilization_pct", 100.0),
                 signal("cache_hit_rate_pct", 98.7),
                 signal("cpu_usage_pct", 74.2),
                 signal("memory_usage_pct", 63.5),
             ],
             "top_statements": [
                 {"queryid": "-4011362711852281371",
                  "query": "SELECT id, total, status, created_at FROM orders WHERE user_id = $1 "
                           "ORDER BY created_at DESC LIMIT $2",
                  "calls": 412877, "total_ms": 1884210.5, "mean_ms": 4.56, "p95_ms": 11.8, "errors": 0},
                 {"queryid": "7716510931045515530",
                  "query": "SELECT p.id, p.name, p.price FROM products p JOIN categories c ON "
                           "c.id = p.category_id WHERE c.slug = $1 ORDER BY p.price LIMIT $2 OFFSET $3",
                  "calls": 98120, "total_ms": 402311.0, "mean_ms": 4.1, "p95_ms": 9.7, "errors": 0},
                 {"queryid": "2250098127630512345",
                  "query": "UPDATE carts SET updated_at = now(), items = $1 WHERE id = $2",
                  "calls": 51002, "total_ms": 96012.7, "mean_ms": 1.88, "p95_ms": 6.2, "errors": 311},
                 {"queryid": "-811920012333551002",
                  "query": "SELECT * FROM users WHERE id = $1",
                  "calls": 1203331, "total_ms": 60410.2, "mean_ms": 0.05, "p95_ms": 0.09, "errors": 0},
                 {"queryid": "553001928810002211",
                  "query": "INSERT INTO order_items (order_id, product_id, qty, price) VALUES ($1, $2, $3, $4)",
                  "calls": 88410, "total_ms": 21010.9, "mean_ms": 0.24, "p95_ms": 0.61, "errors": 2},
             ],
             "index_advice": [
                 {"relation": "orders",
                  "ddl": "CREATE INDEX CONCURRENTLY ON public.orders (user_id, created_at DESC)",
                  "est_improvement_pct": 99.4, "rows_filtered": 131190},
                 {"relation": "products",
                  "ddl": "CREATE INDEX CONCURRENTLY ON public.products (category_id, price)",
                  "est_improvement_pct": 87.2, "rows_filtered": 20412},
             ]},
            {"database": "billing", "fetched_at": now - 0.4,
             "error": "extension apiscale is not installed in this database",
             "signals": [], "top_statements": [], "index_advice": []},
        ],
    }


def main(argv):
    if len(argv) >= 2 and argv[0] == "screenshot":
        problem = chromium_problem()
        if problem:
            sys.exit(problem)
        window = (1600, 1580)       # the whole page, as in docs/dashboard.png
        if len(argv) >= 3:
            w, h = argv[2].split("x")
            window = (int(w), int(h))
        with StatusServer([sample_status()]) as srv:
            screenshot(srv.url, argv[1], window=window)
        print(f"wrote {argv[1]} ({window[0]}x{window[1]})")
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
