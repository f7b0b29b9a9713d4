"""The dashboard (pooler/dashboard.html), rendered by headless Chromium.

The page is read as Chromium leaves it once its scripts ran (--dump-dom),
so what is checked is what a browser shows, not what the file says.

Two ways to serve it:
- the real pooler, which serves it at GET / of http_listen with its own
  /api/status (the tests at the end; skipped while the pooler does not know
  http_listen);
- dashboardlib.StatusServer, which serves the same file with /api/status
  documents written here: warnings, nulls, missing sections, hostile texts,
  an endpoint that goes away.  A live pooler cannot easily be made to show
  those.

Skipped when Chromium (Debian package chromium) is not installed.
"""

import copy
import json
import re
import signal
import urllib.request

import pytest

from dashboardlib import PAGE, StatusServer, chromium_problem, load, sample_status
from poolerlib import free_port, port_accepts, wait_until

HOSTILE = "<img src=x onerror=alert(1)>"
# Would mark the page if any text reached it as markup.
HOSTILE_MARK = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
HOSTILE_SCRIPT = "</td><script>document.body.setAttribute('data-pwned','2')</script>"

PLOTS = ["p95_response_time_ms", "error_rate_pct", "cpu_usage_pct", "memory_usage_pct",
         "pool_utilization", "pool_waiting"]


@pytest.fixture(autouse=True)
def _chromium():
    problem = chromium_problem()
    if problem:
        pytest.skip(f"cannot render the dashboard: {problem}")


def render(answers, budget_ms=5000, prefix="/", window=(1600, 1200)):
    """The page served with these /api/status answers, as Chromium renders it;
    returns (dom, server)."""
    with StatusServer(answers, prefix=prefix) as srv:
        dom = load(srv.url, budget_ms=budget_ms, window=window)
    return dom, srv


def state(dom):
    node = dom.select_one("#state")
    return node.text, node.classes


def only(dom, selector):
    found = dom.select(selector)
    assert len(found) == 1, f"{selector!r}: {len(found)} elements, expected one"
    return found[0]


def no_render_errors(dom):
    errors = [n.text for n in dom.select(".render-error")]
    assert not errors, f"a section failed to render: {errors}"


def signal_row(dom, database, name):
    return only(dom, f'div.database[data-database="{database}"] tr.signal[data-signal="{name}"]')


# ---------------------------------------------------------------------------
# Served by StatusServer
# ---------------------------------------------------------------------------

def test_every_section_of_a_busy_hour():
    status = sample_status()
    status["pools"][0]["utilization"] = 0.861
    dom, srv = render([status])
    no_render_errors(dom)

    assert state(dom) == ("accepting", {"accepting"})
    assert dom.select_one("#version").text == "0.1.0"
    assert dom.select_one("#uptime").text == "2 d 5 h"
    assert dom.select_one("#clients").text == "143 / 10,000"
    assert dom.select_one("#message").get("hidden") is not None
    verdict = dom.select_one("#verdict")
    assert "4 signals in warning" in verdict.text and "warning" in verdict.classes

    # The guide's table, as the extension sent it, with units.
    expected = {
        "p95_response_time_ms": ("612 ms", "> 500 ms", "warning"),
        "error_rate_pct": ("0.84%", "> 1%", "ok"),
        "connection_utilization_pct": ("18.3%", "> 80%", "ok"),
        "pool_utilization_pct": ("100%", "> 80%", "warning"),
        "cache_hit_rate_pct": ("98.7%", "< 99%", "warning"),      # warns below
        "cpu_usage_pct": ("74.2%", "> 70%", "warning"),
        "memory_usage_pct": ("63.5%", "> 85%", "ok"),
    }
    rows = dom.select('div.database[data-database="appdb"] tr.signal')
    assert [r.get("data-signal") for r in rows] == [s["signal"] for s in status["databases"][0]["signals"]]
    for s in status["databases"][0]["signals"]:
        row = signal_row(dom, "appdb", s["signal"])
        value, threshold, st = expected[s["signal"]]
        assert row.select_one("td.value").text == value, s["signal"]
        assert row.select_one("td.threshold").text == threshold, s["signal"]
        cell = row.select_one("td.status")
        assert cell.text == st and st in cell.classes and st in row.classes, s["signal"]
        assert row.select_one("td.action").text == s["action"]

    billing = only(dom, 'div.database[data-database="billing"]')
    assert billing.select_one("p.db-error").text == "extension apiscale is not installed in this database"
    assert not billing.select("tr.signal")

    # The hour: one chart each, a line per database or pool, gaps where null.
    for name in PLOTS:
        svg = only(dom, f'svg[data-plot="{name}"]')
        assert svg.get("data-empty") is None, name
    series = only(dom, 'svg[data-plot="p95_response_time_ms"] path.series[data-series="appdb"]')
    assert series.get("data-points") == "360"
    assert series.get("d").count("M") == 1
    cpu = only(dom, 'svg[data-plot="cpu_usage_pct"] path.series[data-series="appdb"]')
    assert cpu.get("data-points") == "354"               # six samples without data
    assert cpu.get("d").count("M") == 2                   # ...drawn as a gap
    reporting = only(dom, 'svg[data-plot="pool_utilization"] path.series[data-series="appdb/reporting"]')
    assert reporting.get("data-points") == "300"          # the pool is 50 minutes old
    assert dom.select('svg[data-plot="pool_waiting"] path.series[data-series="appdb/app"]')
    thresholds = {"p95_response_time_ms": "500", "error_rate_pct": "1", "cpu_usage_pct": "70",
                  "memory_usage_pct": "85", "pool_utilization": "80"}
    for name in PLOTS:
        lines = dom.select(f'svg[data-plot="{name}"] line.threshold')
        assert [ln.get("data-value") for ln in lines] == ([thresholds[name]] if name in thresholds else []), name
    # Axes carry labels: clock times below, values at the left.
    labels = [t.text for t in dom.select('svg[data-plot="cpu_usage_pct"] text')]
    assert "100%" in labels and "0%" in labels and "05:40" in labels, labels

    # Pools, live.
    pools = dom.select("table#pools tbody tr.pool")
    assert [p.get("data-pool") for p in pools] == ["appdb/app", "appdb/reporting", "billing/billing"]
    app = only(dom, 'table#pools tr.pool[data-pool="appdb/app"]')
    assert app.select_one("td.clients-waiting").text == "7"
    assert "warn" in app.select_one("td.clients-waiting").classes
    assert app.select_one("td.utilization").text == "86.1%"
    assert "warn" in app.select_one("td.utilization").classes
    assert app.select_one("td.transactions").text == "2,841,190"
    assert only(dom, 'tr.pool[data-pool="appdb/reporting"] td.max-overflow').text == "no limit"
    assert "warn" not in only(dom, 'tr.pool[data-pool="appdb/reporting"] td.utilization').classes

    # Top statements and index advice of the databases that have them.
    statements = dom.select("table#top-statements tbody tr.statement")
    assert len(statements) == 5
    first = status["databases"][0]["top_statements"][0]
    assert statements[0].select_one("td.query").text == first["query"]
    assert statements[0].select_one("td.calls").text == "412,877"
    assert statements[0].select_one("td.p95-ms").text == "11.8"
    assert statements[2].select_one("td.errors").text == "311"
    assert "warn" in statements[2].select_one("td.errors").classes
    advice = dom.select("table#index-advice tbody tr.advice")
    assert len(advice) == 2
    assert advice[0].select_one("td.ddl").text == status["databases"][0]["index_advice"][0]["ddl"]
    assert advice[0].select_one("td.est-improvement").text == "99.4%"
    assert advice[0].select_one("td.rows-filtered").text == "131,190"

    # Nothing but the page and its JSON was asked for (no CDN, no font, no favicon).
    assert set(srv.paths) <= {"/", "/api/status"}, srv.paths


def test_page_is_one_self_contained_file():
    text = PAGE.read_text()
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    for bad in ("<script src", "<link rel=\"stylesheet\"", "@import", "url(", "@font-face"):
        assert bad not in text, bad
    # Data reaches the DOM as text only: the script has no HTML sink.
    scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
    assert len(scripts) == 1
    code = re.sub(r"/\*.*?\*/", "", scripts[0], flags=re.S)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "Function(", "DOMParser", "createContextualFragment"):
        assert sink not in code, sink


def test_no_database_configured():
    status = sample_status()
    status["databases"] = []
    status["history"]["signals"] = {}
    status["pools"] = []
    status["history"]["pools"] = {}
    dom, _ = render([status])
    no_render_errors(dom)
    assert state(dom)[0] == "accepting"
    assert "http_metrics_databases" in dom.select_one("#signals p.note").text
    assert not dom.select("tr.signal")
    assert dom.select_one("#verdict").text == "No scaling signals"
    for name in PLOTS:
        svg = only(dom, f'svg[data-plot="{name}"]')
        assert svg.get("data-empty") == "true", name
        assert svg.select_one("text.no-data").text == "no data"
        assert not svg.select("path.series")
    for table in ("pools", "top-statements", "index-advice"):
        rows = dom.select(f"table#{table} tbody tr")
        assert len(rows) == 1 and "empty" in rows[0].classes, table
    assert "http_metrics_databases" in dom.select_one("table#top-statements tr.empty").text
    assert "http_metrics_databases" in dom.select_one("table#index-advice tr.empty").text


@pytest.mark.parametrize("document", [
    {},
    {"version": {"x": 1}, "now": "soon", "clients": 5, "pools": "many", "history": [1, 2],
     "databases": {"appdb": 1}},
    {"pools": [None, 3, {"database": None}], "databases": [None, {"signals": [None, 7]}],
     "history": {"time": "x", "pools": {"a/b": None}, "signals": {"appdb": [1]}}},
], ids=["empty", "wrong-types", "wrong-items"])
def test_missing_and_malformed_fields(document):
    dom, _ = render([document])
    no_render_errors(dom)
    assert state(dom)[0] == "accepting"
    for name in PLOTS:
        assert only(dom, f'svg[data-plot="{name}"]').get("data-empty") == "true", name
    for table in ("pools", "top-statements", "index-advice"):
        only(dom, f"table#{table}")


def test_warning_no_data_and_nulls():
    status = sample_status()
    n = len(status["history"]["time"])
    db = status["databases"][0]
    db["signals"] = [
        {"signal": "p95_response_time_ms", "value": None, "threshold": 500, "status": "no data",
         "action": "profile slow endpoints, add caching"},
        {"signal": "error_rate_pct", "value": 4.25, "threshold": 1, "status": "warning",
         "action": "investigate error logs immediately"},
        {"signal": "cache_hit_rate_pct", "value": 42.0, "threshold": None, "status": None, "action": None},
        {"signal": "queue_depth", "value": 3, "threshold": 2, "status": "warning", "action": "new"},
    ]
    db["top_statements"] = [{"queryid": None, "query": None, "calls": None, "total_ms": None,
                             "mean_ms": "1", "p95_ms": None, "errors": None}]
    db["index_advice"] = [{"relation": None, "ddl": None, "est_improvement_pct": None, "rows_filtered": None}]
    status["pools"][0] = {"database": "appdb", "user": "app", "utilization": None}
    sig = status["history"]["signals"]["appdb"]
    sig["p95_response_time_ms"] = [None] * n                 # no data at all
    sig["error_rate_pct"] = [None] * (n - 1) + [2.0]          # one lone point
    sig["cpu_usage_pct"] = sig["cpu_usage_pct"][: n // 2]     # shorter than time
    dom, _ = render([status])
    no_render_errors(dom)

    p95 = signal_row(dom, "appdb", "p95_response_time_ms")
    assert p95.select_one("td.value").text == "—"
    assert p95.select_one("td.status").text == "no data"
    assert "nodata" in p95.select_one("td.status").classes
    err = signal_row(dom, "appdb", "error_rate_pct")
    assert err.select_one("td.value").text == "4.25%"
    assert "warning" in err.select_one("td.status").classes
    cache = signal_row(dom, "appdb", "cache_hit_rate_pct")
    assert cache.select_one("td.threshold").text == "—"
    assert cache.select_one("td.status").text == "no data"
    assert cache.select_one("td.action").text == ""
    unknown = signal_row(dom, "appdb", "queue_depth")
    assert unknown.select_one("td.value").text == "3"
    assert unknown.select_one("td.threshold").text == "> 2"
    assert "2 signals in warning" in dom.select_one("#verdict").text

    # The p95 chart of appdb has nothing to draw; the error rate one a dot.
    assert only(dom, 'svg[data-plot="p95_response_time_ms"]').get("data-empty") == "true"
    lone = only(dom, 'svg[data-plot="error_rate_pct"] path.series[data-series="appdb"]')
    assert lone.get("data-points") == "1"
    assert len(dom.select('svg[data-plot="error_rate_pct"] circle.point')) == 1
    cpu = only(dom, 'svg[data-plot="cpu_usage_pct"] path.series[data-series="appdb"]')
    assert int(cpu.get("data-points")) < n // 2

    row = only(dom, 'table#pools tr.pool[data-pool="appdb/app"]')
    assert row.select_one("td.utilization").text == "—"
    assert row.select_one("td.clients-waiting").text == "—"
    statement = dom.select_one("table#top-statements tr.statement")
    assert [c.text for c in statement.select("td")] == ["appdb", "", "—", "—", "—", "—", "—"]
    advice = dom.select_one("table#index-advice tr.advice")
    assert [c.text for c in advice.select("td")] == ["appdb", "—", "", "—", "—"]


def test_hostile_text_is_shown_as_text():
    status = sample_status()
    db = status["databases"][0]
    db["database"] = HOSTILE
    db["top_statements"][0]["query"] = "SELECT 1 /* " + HOSTILE + " */"
    db["top_statements"][1]["query"] = HOSTILE_MARK
    db["top_statements"][2]["query"] = HOSTILE_SCRIPT
    db["signals"][0]["action"] = HOSTILE_MARK
    db["signals"][1]["signal"] = HOSTILE_MARK
    db["index_advice"][0]["relation"] = HOSTILE_MARK
    db["index_advice"][0]["ddl"] = HOSTILE_SCRIPT
    status["databases"][1]["error"] = HOSTILE_MARK
    status["version"] = HOSTILE_MARK
    status["pools"][0]["user"] = HOSTILE_MARK
    status["pools"][0]["pool_mode"] = HOSTILE_SCRIPT
    status["history"]["pools"][HOSTILE_MARK] = status["history"]["pools"].pop("appdb/app")
    status["history"]["signals"][HOSTILE] = status["history"]["signals"].pop("appdb")
    dom, _ = render([status])
    no_render_errors(dom)

    # Nothing became markup, nothing ran.
    assert not dom.select("img")
    assert len(dom.select("script")) == 1               # the page's own
    body = dom.select_one("body")
    assert body.get("data-pwned") is None
    # ...and every text is there to read, as text.
    queries = [q.text for q in dom.select("table#top-statements td.query")]
    assert queries[:3] == ["SELECT 1 /* " + HOSTILE + " */", HOSTILE_MARK, HOSTILE_SCRIPT]
    assert {c.text for c in dom.select("table#top-statements td.database")} == {HOSTILE}
    boxes = dom.select("div.database")
    assert boxes[0].get("data-database") == HOSTILE
    assert boxes[0].select_one("h3").text.startswith(HOSTILE)
    assert boxes[1].select_one("p.db-error").text == HOSTILE_MARK
    assert dom.select("tr.signal td.action")[0].text == HOSTILE_MARK
    assert dom.select("tr.signal")[1].get("data-signal") == HOSTILE_MARK
    assert dom.select_one("table#index-advice td.relation").text == HOSTILE_MARK
    assert dom.select_one("table#index-advice td.ddl").text == HOSTILE_SCRIPT
    assert dom.select_one("#version").text == HOSTILE_MARK
    assert dom.select("table#pools tr.pool")[0].get("data-pool") == "appdb/" + HOSTILE_MARK
    assert dom.select("table#pools td.mode")[0].text == HOSTILE_SCRIPT
    only(dom, 'svg[data-plot="pool_utilization"] path.series[data-series="appdb/reporting"]')
    names = [p.get("data-series") for p in dom.select('svg[data-plot="pool_utilization"] path.series')]
    assert HOSTILE_MARK in names
    assert [p.get("data-series") for p in dom.select('svg[data-plot="cpu_usage_pct"] path.series')] == [HOSTILE]
    assert HOSTILE in dom.select_one('#charts figure.chart figcaption').text


def test_draining():
    status = sample_status()
    status["accepting"] = False
    dom, _ = render([status])
    assert state(dom) == ("draining", {"draining"})
    assert dom.select("tr.signal")                      # the rest still shows


@pytest.mark.parametrize("answer", [503, 404, b"{not json", b"[1, 2]", b"null"],
                         ids=["503", "404", "not-json", "array", "null"])
def test_unreachable_without_data(answer):
    dom, srv = render([answer])
    assert state(dom) == ("unreachable", {"unreachable"})
    message = dom.select_one("#message")
    assert message.get("hidden") is None
    assert message.text.startswith("pooler unreachable") and "no data yet" in message.text
    assert "stale" not in dom.select_one("body").classes
    assert not dom.select("tr.signal")
    assert srv.status_requests >= 1


def test_unreachable_keeps_the_last_data_greyed():
    status = sample_status()
    dom, srv = render([status, 503], budget_ms=7000)
    assert srv.status_requests >= 2, "the page did not ask again after 5 s"
    assert state(dom)[0] == "unreachable"
    assert "stale" in dom.select_one("body").classes
    message = dom.select_one("#message")
    assert message.get("hidden") is None
    assert "pooler unreachable (HTTP 503)" in message.text and "greyed out" in message.text
    # The last data stays.
    assert signal_row(dom, "appdb", "p95_response_time_ms").select_one("td.value").text == "612 ms"
    assert len(dom.select("table#pools tr.pool")) == 3
    assert only(dom, 'svg[data-plot="p95_response_time_ms"]').get("data-empty") is None


def test_refresh_renders_the_new_answer():
    first = sample_status()
    second = copy.deepcopy(first)
    second["version"] = "0.1.1"
    second["accepting"] = False
    second["pools"] = second["pools"][:1]
    second["databases"][0]["signals"][0] = {"signal": "p95_response_time_ms", "value": 80.5,
                                            "threshold": 500, "status": "ok", "action": "x"}
    dom, srv = render([first, second], budget_ms=7000)
    assert srv.status_requests >= 2
    assert state(dom)[0] == "draining"
    assert dom.select_one("#version").text == "0.1.1"
    assert len(dom.select("table#pools tr.pool")) == 1
    assert signal_row(dom, "appdb", "p95_response_time_ms").select_one("td.status").text == "ok"


def test_recovers_after_a_failure():
    dom, srv = render([503, sample_status()], budget_ms=7000)
    assert srv.status_requests >= 2
    assert state(dom)[0] == "accepting"
    assert dom.select_one("#message").get("hidden") is not None
    assert "stale" not in dom.select_one("body").classes
    assert dom.select("tr.signal")


def test_relative_url_behind_a_prefix():
    dom, srv = render([sample_status()], prefix="/ops/pooler/")
    assert state(dom)[0] == "accepting"
    assert "/ops/pooler/api/status" in srv.paths
    assert set(srv.paths) <= {"/ops/pooler/", "/ops/pooler/api/status"}, srv.paths


def test_usable_at_1280_wide():
    # Charts are drawn at the width they get: two side by side at 1280.
    dom, _ = render([sample_status()], window=(1280, 900))
    no_render_errors(dom)
    widths = [int(s.get("width")) for s in dom.select("svg[data-plot]")]
    assert len(widths) == 6 and all(380 <= w <= 640 for w in widths), widths


# ---------------------------------------------------------------------------
# Served by the pooler itself (http_listen)
# ---------------------------------------------------------------------------

def http_base_url(p):
    """The base URL of pooler p's HTTP endpoint (its http_listen)."""
    return f"http://{p.settings['http_listen']}/"


def start_http_pooler(pooler, **settings):
    """A pooler with http_listen on a free port, once the port accepts.

    Skips the test when the binary does not know http_listen yet."""
    try:
        p = pooler(http_listen=f"127.0.0.1:{free_port()}", **settings)
    except RuntimeError as e:
        if "http_listen" in str(e):
            pytest.skip("this apiscale-pooler has no HTTP endpoint (http_listen) yet")
        raise
    port = int(p.settings["http_listen"].rsplit(":", 1)[1])
    wait_until(lambda: port_accepts(port), 5, what="the HTTP port to accept")
    return p


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def api_status(p):
    code, ctype, body = get(http_base_url(p) + "api/status")
    assert code == 200 and "json" in ctype, (code, ctype)
    return json.loads(body)


def test_pooler_serves_the_dashboard(pooler):
    p = start_http_pooler(pooler)
    c = p.connect()
    try:
        c.execute("SELECT 1")
        code, ctype, body = get(http_base_url(p))
        assert code == 200 and ctype.startswith("text/html"), (code, ctype)
        assert body == PAGE.read_bytes(), "the pooler serves another page than pooler/dashboard.html (rebuild?)"
        status = api_status(p)

        dom = load(http_base_url(p))
        no_render_errors(dom)
        assert state(dom)[0] == "accepting"
        assert dom.select_one("#version").text == status["version"]
        row = only(dom, 'table#pools tr.pool[data-pool="appdb/postgres"]')
        assert row.select_one("td.mode").text == "transaction"
        for name in PLOTS:
            only(dom, f'svg[data-plot="{name}"]')
        # No http_metrics_databases: the page says where the signals come from.
        assert "http_metrics_databases" in dom.select_one("#signals p.note").text
    finally:
        c.close()


def test_pooler_dashboard_shows_draining(pooler):
    p = start_http_pooler(pooler)
    c = p.connect()
    try:
        c.execute("BEGIN")
        c.execute("SELECT 1")
        p.send_signal(signal.SIGTERM)
        wait_until(lambda: api_status(p).get("accepting") is False, 5, what="accepting: false")
        dom = load(http_base_url(p))
        assert state(dom)[0] == "draining"
        c.execute("COMMIT")
    finally:
        c.close()


def test_pooler_dashboard_shows_a_database_without_the_extension(pooler):
    # The test cluster has no apiscale extension: the page shows the reason.
    p = start_http_pooler(pooler, http_metrics_databases="appdb")

    def appdb_read():
        dbs = api_status(p).get("databases") or []
        # before the first fetch the error reads "no data fetched yet"
        return (dbs and dbs[0].get("fetched_at") is not None or
                dbs and dbs[0].get("error") not in (None, "no data fetched yet")) and dbs[0]

    db = wait_until(appdb_read, 10, interval=0.5, what="appdb read by the pooler")
    dom = load(http_base_url(p))
    no_render_errors(dom)
    box = only(dom, 'div.database[data-database="appdb"]')
    if db.get("error"):
        assert box.select_one("p.db-error").text == db["error"]
    else:
        assert box.select("tr.signal")
