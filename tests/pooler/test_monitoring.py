"""Issue 12: the pooler's HTTP endpoint (/metrics, /health, /api/status, the
dashboard) and its reports to the extension.

/metrics is checked against what really happened (pgbench's own count of
transactions), and, where Debian's promtool is installed, against the
format's own linter.  The reports go to a second cluster that has the
extension preloaded (fixture pg_apiscale).
"""

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import psycopg
import pytest

from poolerlib import HOST, PGBENCH, free_port, wait_until

PROMTOOL = shutil.which("promtool")


def http_get(port, path, method="GET", timeout=5):
    """(status, headers, body) of one request."""
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, labels = head.split("{", 1)
            pairs = []
            for part in labels.rstrip("}").split('",'):
                if part:
                    k, v = part.split("=", 1)
                    pairs.append((k, v.strip('"')))
            out[(name, frozenset(pairs))] = float(value)
        else:
            out[(head, frozenset())] = float(value)
    return out


def value(s, name, **labels):
    return s[(name, frozenset(labels.items()))]


def with_http(pooler, **kw):
    port = free_port()
    p = pooler(http_listen=f"{HOST}:{port}", **kw)
    p.http_port = port
    return p


def pgbench(p, clients, seconds, *extra):
    r = subprocess.run([PGBENCH, "-n", "-S", "-c", str(clients), "-T", str(seconds),
                        "-h", HOST, "-p", str(p.port), "-U", "postgres", *extra, "appdb"],
                       capture_output=True, text=True, timeout=seconds + 60)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        if line.startswith("number of transactions actually processed:"):
            return int(line.split(":")[1].split("/")[0])
    raise AssertionError(r.stdout)


# ---------------------------------------------------------------------------
# /metrics
# ---------------------------------------------------------------------------


@pytest.mark.deadline(120)
def test_metrics_count_what_pgbench_did(pg, pooler, pgbench_tables):
    p = with_http(pooler, pool_size=4, max_overflow=2)
    n = pgbench(p, 8, 3)
    wait_until(lambda: value(samples(http_get(p.http_port, "/metrics")[2]),
                             "apiscale_pooler_clients", database="appdb", user="postgres",
                             state="idle") == 0, 10, what="pgbench's clients gone")
    status, headers, text = http_get(p.http_port, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    s = samples(text)
    pool = dict(database="appdb", user="postgres")
    xacts = value(s, "apiscale_pooler_transactions_total", **pool)
    # pgbench's transactions, plus the few statements each connection runs
    # before its clock starts (at most two per client)
    assert n <= xacts <= n + 16, (n, xacts)
    # every transaction asked for a server once and gave it back once
    assert value(s, "apiscale_pooler_client_wait_seconds_count", **pool) == xacts
    assert value(s, "apiscale_pooler_transaction_duration_seconds_count", **pool) == xacts
    assert value(s, "apiscale_pooler_queries_total", **pool) >= xacts
    assert value(s, "apiscale_pooler_received_bytes_total", **pool) > 0
    assert value(s, "apiscale_pooler_sent_bytes_total", **pool) > 0
    assert value(s, "apiscale_pooler_pool_size", **pool) == 4
    assert value(s, "apiscale_pooler_max_overflow", **pool) == 2
    servers = sum(value(s, "apiscale_pooler_servers", state=st, **pool)
                  for st in ("active", "idle", "login"))
    assert 1 <= servers <= 6
    assert value(s, "apiscale_pooler_pool_utilization_ratio", **pool) == 0
    assert value(s, "process_open_fds") > 3
    assert value(s, "process_resident_memory_bytes") > 1e6
    assert abs(value(s, "process_start_time_seconds") - time.time()) < 600


def check_histogram(s, name, labels):
    edges = sorted((float(dict(k[1])["le"]), v) for k, v in s.items()
                   if k[0] == name + "_bucket" and
                   {kv for kv in k[1] if kv[0] != "le"} == set(labels.items()))
    assert edges and edges[-1][0] == float("inf")
    counts = [v for _, v in edges]
    assert counts == sorted(counts), f"{name} buckets not cumulative: {counts}"
    assert counts[-1] == value(s, name + "_count", **labels)
    les = [le for le, _ in edges]
    for needed in (0.001, 0.01, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30):
        assert needed in les, f"{name} has no bucket edge at {needed}"


@pytest.mark.deadline(90)
def test_histograms_are_cumulative_and_promtool_clean(pg, pooler, pgbench_tables):
    p = with_http(pooler, pool_size=2, max_overflow=0)
    with p.connect(autocommit=True) as a, p.connect(autocommit=True) as b:
        a.execute("BEGIN")
        a.execute("SELECT pg_sleep(0.3)")
        t = threading.Thread(target=lambda: b.execute("SELECT pg_sleep(0.05)"))
        t.start()
        a.execute("COMMIT")
        t.join()
        with pytest.raises(psycopg.errors.DivisionByZero):
            b.execute("SELECT 1/0")
    text = http_get(p.http_port, "/metrics")[2]
    s = samples(text)
    labels = dict(database="appdb", user="postgres")
    check_histogram(s, "apiscale_pooler_client_wait_seconds", labels)
    check_histogram(s, "apiscale_pooler_transaction_duration_seconds", labels)
    # a's transaction held its server 0.3 s or more
    assert value(s, "apiscale_pooler_transaction_duration_seconds_bucket", le="0.25",
                 **labels) < value(s, "apiscale_pooler_transaction_duration_seconds_count",
                                   **labels)
    assert value(s, "apiscale_pooler_client_errors_total", sqlstate_class="22", **labels) == 1
    if PROMTOOL is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_waits_and_timeouts_are_counted(pg, pooler):
    p = with_http(pooler, pool_size=1, max_overflow=0, pool_timeout=0.3)
    with p.connect(autocommit=True) as a, p.connect(autocommit=True) as b:
        a.execute("BEGIN")
        a.execute("SELECT 1")
        with pytest.raises(psycopg.Error) as exc:
            b.execute("SELECT 1")
        assert exc.value.sqlstate == "53300"
        s = samples(http_get(p.http_port, "/metrics")[2])
        labels = dict(database="appdb", user="postgres")
        assert value(s, "apiscale_pooler_pool_timeouts_total", **labels) == 1
        assert value(s, "apiscale_pooler_client_errors_total", sqlstate_class="53",
                     **labels) == 1
        assert value(s, "apiscale_pooler_pool_utilization_ratio", **labels) == 1
        assert value(s, "apiscale_pooler_clients", state="active", **labels) == 1
        a.execute("COMMIT")


# ---------------------------------------------------------------------------
# /health, methods, paths
# ---------------------------------------------------------------------------


def test_health_methods_and_paths(pg, pooler):
    p = with_http(pooler)
    assert http_get(p.http_port, "/health") [:1] == (200,)
    assert http_get(p.http_port, "/health")[2] == "ok\n"
    status, headers, body = http_get(p.http_port, "/health", method="HEAD")
    assert status == 200 and body == ""
    status, headers, body = http_get(p.http_port, "/", method="OPTIONS")
    assert status == 200 and headers["Allow"] == "GET, HEAD, OPTIONS"
    status, headers, _ = http_get(p.http_port, "/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD, OPTIONS"
    assert http_get(p.http_port, "/nope")[0] == 404
    assert http_get(p.http_port, "/metrics/../etc")[0] == 404
    status, headers, body = http_get(p.http_port, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    status, headers, body = http_get(p.http_port, "/api/status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["accepting"] is True and doc["history"]["interval"] == 10


@pytest.mark.deadline(60)
def test_health_is_503_while_draining_and_the_transaction_finishes(pg, pooler):
    p = with_http(pooler, pool_size=2)
    with p.connect() as a:
        a.execute("BEGIN")
        a.execute("SELECT 1")  # a transaction is open: a holds a server
        p.send_signal(signal.SIGTERM)
        wait_until(lambda: http_get(p.http_port, "/health")[0] == 503, 5,
                   what="/health to say 503 once the drain began")
        status, _, body = http_get(p.http_port, "/health")
        assert body == "draining\n"
        assert http_get(p.http_port, "/", method="OPTIONS")[0] == 503
        assert json.loads(http_get(p.http_port, "/api/status")[2])["accepting"] is False
        # new clients are refused, the open transaction goes on and commits
        with pytest.raises(psycopg.OperationalError):
            p.connect().close()
        assert a.execute("SELECT 2").fetchone()[0] == 2
        a.execute("COMMIT")
    assert p.wait_exit(10) == 0


def test_slow_http_clients_do_not_stall_clients(pg, pooler):
    p = with_http(pooler, pool_size=2)
    stalled = []
    try:
        for _ in range(100):
            s = socket.create_connection((HOST, p.http_port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
            stalled.append(s)
        big = socket.create_connection((HOST, p.http_port))
        big.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for _ in range(200):  # pipelined requests it never reads
            big.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        stalled.append(big)
        start = time.monotonic()
        with p.connect(autocommit=True) as c:
            for i in range(50):
                assert c.execute("SELECT %s::int", (i,)).fetchone()[0] == i
        assert http_get(p.http_port, "/health")[0] == 200
        assert time.monotonic() - start < 10
    finally:
        for s in stalled:
            s.close()


def test_http_listen_errors_name_the_key_and_reload_moves_it(pg, pooler, pooler_bin, tmp_path):
    busy = socket.socket()
    busy.bind((HOST, 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    cfg = tmp_path / "p.ini"
    cfg.write_text(f"[databases]\nappdb = host={HOST} port={pg.port}\n[pooler]\n"
                   f"listen_addr = {HOST}\nlisten_port = {free_port()}\nunix_socket_dir =\n"
                   f"http_listen = {HOST}:{port}\n")
    r = subprocess.run([pooler_bin, str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert f"http_listen: could not listen on {HOST}:{port}: Address already in use" in r.stderr
    cfg.write_text(cfg.read_text().replace(f"{HOST}:{port}", "nowhere"))
    r = subprocess.run([pooler_bin, "--check", str(cfg)], capture_output=True, text=True)
    assert r.returncode != 0 and "http_listen: invalid value \"nowhere\"" in r.stderr
    # a reload moves it; a reload to a busy port keeps the old one
    p = with_http(pooler)
    old = p.http_port
    new = free_port()
    p.reload(http_listen=f"{HOST}:{new}")
    wait_until(lambda: http_get(new, "/health")[0] == 200, 5, what="the new port")
    with pytest.raises(OSError):
        http_get(old, "/health", timeout=1)
    p.reload(wait=False, http_listen=f"{HOST}:{port}")
    wait_until(lambda: "http_listen: could not listen" in p.log(), 5, what="the bind error")
    assert http_get(new, "/health")[0] == 200
    assert p.config_value("http_listen") == f"{HOST}:{new}"
    p.reload(http_listen="")
    wait_until(lambda: "HTTP endpoint closed" in p.log(), 5, what="the endpoint closed")
    busy.close()


# ---------------------------------------------------------------------------
# Reports to the extension, and its numbers on /metrics
# ---------------------------------------------------------------------------


def ext_query(cluster, sql):
    with cluster.connect(autocommit=True) as c:
        return c.execute(sql).fetchall()


@pytest.mark.deadline(90)
def test_full_pool_turns_pool_utilization_to_warning(pg_apiscale, pooler):
    ext_query(pg_apiscale, "SELECT apiscale.reset()")
    p = pooler(pool_size=2, max_overflow=0, report_interval=1,
               databases={"appdb": f"host={HOST} port={pg_apiscale.port} dbname=appdb"})
    conns = [p.connect() for _ in range(2)]
    try:
        for c in conns:
            c.execute("BEGIN")
            c.execute("SELECT 1")  # both servers in use
        wait_until(lambda: ext_query(pg_apiscale,
                                     "SELECT status, value FROM apiscale.scaling_signals"
                                     " WHERE signal = 'pool_utilization_pct'")
                   == [("warning", 100.0)], 5, interval=0.2,
                   what="pool_utilization_pct at 100, warning, within two intervals")
        (row,) = ext_query(pg_apiscale, "SELECT size, overflow, in_use FROM apiscale.pool_reports"
                                        " WHERE pool = 'appdb/postgres'")
        assert row == (2, 0, 2)
    finally:
        for c in conns:
            c.close()
    # the pooler's own connection is never a client's
    rows = ext_query(pg_apiscale, "SELECT count(*) FROM pg_stat_activity"
                                  " WHERE application_name = 'apiscale-pooler monitor'")
    assert rows == [(1,)]


@pytest.mark.deadline(60)
def test_database_without_the_extension_is_asked_once(pg, pooler):
    p = pooler(report_interval=0.5)
    with p.connect(autocommit=True) as c:
        c.execute("SELECT 1")
        time.sleep(3)
    assert p.log().count("database appdb has no apiscale extension") == 1
    p.reload(pool_size=3)
    wait_until(lambda: p.log().count("database appdb has no apiscale extension") == 2, 5,
               what="asked again after the RELOAD")


@pytest.mark.deadline(90)
def test_extension_numbers_on_status_and_metrics(pg_apiscale, pooler):
    port = free_port()
    p = pooler(http_listen=f"{HOST}:{port}", http_metrics_databases="appdb", http_show_statements="on",
               databases={"appdb": f"host={HOST} port={pg_apiscale.port} dbname=appdb"})
    with p.connect(autocommit=True) as c:
        for i in range(20):
            c.execute("SELECT count(*) FROM items WHERE id > %s", (i,))

    def fetched():
        # a fetch every 5 s, a history sample every 10 s
        doc = json.loads(http_get(port, "/api/status")[2])
        return (doc["databases"] and doc["databases"][0]["fetched_at"] and
                "appdb" in doc["history"]["signals"] and doc)

    doc = wait_until(fetched, 25, interval=0.5, what="a fetch of the extension's numbers")
    (db,) = doc["databases"]
    assert db["database"] == "appdb" and db["error"] is None
    names = {s["signal"] for s in db["signals"]}
    assert names == {"p95_response_time_ms", "error_rate_pct", "connection_utilization_pct",
                     "pool_utilization_pct", "cache_hit_rate_pct", "cpu_usage_pct",
                     "memory_usage_pct"}
    assert any("items" in q["query"] for q in db["top_statements"]), db["top_statements"]
    assert set(doc["history"]["signals"]["appdb"]) >= {"p95_response_time_ms", "cpu_usage_pct"}
    text = http_get(port, "/metrics")[2]
    if "apiscale.metrics() is missing" in p.log():
        pytest.skip("the installed extension has no apiscale.metrics() yet")
    wait_until(lambda: 'apiscale_scaling_signal_threshold{database="appdb",' in
               http_get(port, "/metrics")[2], 15, what="the extension's families on /metrics")
    text = http_get(port, "/metrics")[2]
    assert text.count("# TYPE apiscale_scaling_signal_threshold ") == 1
    if PROMTOOL:
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
