#!/usr/bin/python3
"""monitoring/metrics.py: apiscale.metrics() as a Prometheus scraper reads it.

Expects a running cluster with apiscale preloaded (PGHOST, PGPORT, PGUSER
from scripts/lib.sh).  In a database of its own, runs fast, slow and
failing statements (two users share one statement), reports a full pool,
then reads apiscale.metrics() as a role that is only a member of
pg_monitor, and checks the text:

  - promtool check metrics (Debian package prometheus) finds nothing;
  - it parses as the text exposition format 0.0.4, read here line by line:
    each family is written whole, HELP then TYPE then its samples, and
    once; label values are escaped; no sample has a "database" label (the
    pooler adds it);
  - the families are the documented ones, with their types, each with
    samples (the workload gives every one something to show);
  - the histogram's buckets are cumulative, end with +Inf, and +Inf is
    _count and the window's statements that finished; the full pool reads
    pool_utilization_pct 100, in warning.

promtool alone would not do: it accepts a family written in two pieces and
buckets that decrease.  Prints what failed and exits non-zero on a failure.
"""
import os
import re
import subprocess
import sys
import tempfile

PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
DB = "apiscale_metrics"
READER = "aps_metrics_reader"

FAMILIES = [
    ("apiscale_scaling_signal_value", "gauge"),
    ("apiscale_scaling_signal_threshold", "gauge"),
    ("apiscale_scaling_signal_warning", "gauge"),
    ("apiscale_signal_window_seconds", "gauge"),
    ("apiscale_window_statements", "gauge"),
    ("apiscale_window_failed_statements", "gauge"),
    ("apiscale_statement_duration_seconds", "histogram"),
    ("apiscale_statement_calls_total", "counter"),
    ("apiscale_statement_errors_total", "counter"),
    ("apiscale_statement_seconds_total", "counter"),
    ("apiscale_statement_p95_seconds", "gauge"),
]

problems = []


def problem(msg):
    problems.append(msg)
    print(f"metrics: {msg}")


def psql(sql, db=DB, user=None, check=True):
    cmd = [f"{PGBIN}/psql", "-X", "-q", "-At", "-d", db, "-c", sql]
    if user:
        cmd[1:1] = ["-U", user]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"psql failed: {sql}\n{r.stderr}")
    return r.stdout


# A sample line: name, optional {labels}, value (no timestamps here).
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_labels(text):
    """Labels of a sample as a dict, or None if they are not well formed."""
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            return None
        value = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), m.group(2))
        labels[m.group(1)] = value
        pos = m.end()
    return labels


def parse_value(text):
    try:
        return float(text)  # accepts +Inf, NaN, 1e-05
    except ValueError:
        return None


def check_text(text):
    """The format, line by line; returns {family: [(name, labels, value)]}."""
    if not text.endswith("\n"):
        problem("the text does not end with a newline")
    families, order = {}, []
    current, want_type = None, False
    for no, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            if name in families:
                problem(f"line {no}: family {name} written twice")
            families[name] = []
            order.append(name)
            current, want_type = name, True
        elif line.startswith("# TYPE "):
            parts = line.split(" ")
            if not want_type or len(parts) != 4 or parts[2] != current:
                problem(f"line {no}: TYPE not right after its HELP: {line}")
            else:
                families[current] = [parts[3]]
            want_type = False
        elif line.startswith("#") or line == "":
            problem(f"line {no}: unexpected line: {line!r}")
        else:
            m = SAMPLE.match(line)
            labels = parse_labels(m.group(2) or "") if m else None
            value = parse_value(m.group(3)) if m else None
            if m is None or labels is None or value is None:
                problem(f"line {no}: not a sample: {line!r}")
                continue
            name = m.group(1)
            suffixes = ("_bucket", "_sum", "_count")
            owner = current
            if current is None or want_type or not (
                name == current
                or (families[current][:1] == ["histogram"]
                    and name in (current + s for s in suffixes))):
                problem(f"line {no}: sample {name} outside its family ({current})")
                continue
            if "database" in labels:
                problem(f"line {no}: a database label: {line}")
            families[owner].append((name, labels, value))
    return families, order


def check_content(families, order):
    want = [name for name, _ in FAMILIES]
    if order != want:
        problem(f"families {order}, expected {want}")
    for name, type_ in FAMILIES:
        entries = families.get(name, [])
        if entries[:1] != [type_]:
            problem(f"{name}: type {entries[:1]}, expected {type_}")
        if len(entries) < 2:
            problem(f"{name}: no sample")

    hist = families.get("apiscale_statement_duration_seconds", [None])[1:]
    buckets = [(l["le"], v) for n, l, v in hist if n.endswith("_bucket")]
    count = [v for n, _, v in hist if n.endswith("_count")]
    les = [float(le) for le, _ in buckets]
    if not buckets or buckets[-1][0] != "+Inf" or les != sorted(les):
        problem(f"histogram edges {[le for le, _ in buckets]}")
    values = [v for _, v in buckets]
    if values != sorted(values):
        problem(f"histogram buckets not cumulative: {values}")
    if not count or not values or values[-1] != count[0]:
        problem(f"+Inf bucket {values[-1:]} is not _count {count}")
    window = {n: v for n in ("apiscale_window_statements", "apiscale_window_failed_statements")
              for _, _, v in families.get(n, [None])[1:]}
    finished = window.get("apiscale_window_statements", 0) - \
        window.get("apiscale_window_failed_statements", 0)
    if not values or values[-1] != finished or finished < 20:
        problem(f"+Inf bucket {values[-1:]}, expected the {finished} statements that finished")

    signals = {}
    for family in ("value", "threshold", "warning"):
        for _, labels, value in families.get(f"apiscale_scaling_signal_{family}", [None])[1:]:
            signals.setdefault(labels.get("signal"), {})[family] = value
    pool = signals.get("pool_utilization_pct", {})
    if pool != {"value": 100, "threshold": 80, "warning": 1}:
        problem(f"a full pool reads {pool}")
    if len(signals) != 7 or any("threshold" not in s or "warning" not in s
                                for s in signals.values()):
        problem(f"signals: {signals}")


def main():
    tmp = tempfile.mkdtemp()
    psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")
    psql(f"DROP ROLE IF EXISTS {READER}", db="postgres")
    psql(f"CREATE DATABASE {DB}", db="postgres")
    try:
        psql("CREATE EXTENSION apiscale")
        psql(f"CREATE ROLE {READER} LOGIN IN ROLE pg_monitor")
        psql("CREATE ROLE aps_metrics_app LOGIN")
        psql("SELECT apiscale.reset()")
        for i in range(20):
            psql(f"SELECT count(*) FROM generate_series(1, {i})")
        psql("SELECT pg_sleep(0.02)")
        psql("SELECT pg_sleep(0.01), 'app'", user="aps_metrics_app")
        psql("SELECT pg_sleep(0.01), 'admin'")
        psql("SELECT 1 / (g - g) FROM generate_series(1, 1) g", check=False)
        psql("SELECT apiscale.report_pool('shop', 8, 2, 10, 3, 0)")

        text = psql("SELECT apiscale.metrics()", user=READER)
        # -At prints the text and one newline more.
        text = text[:-1] if text.endswith("\n\n") else text
        path = os.path.join(tmp, "metrics.txt")
        with open(path, "w") as f:
            f.write(text)

        r = subprocess.run(["promtool", "check", "metrics"], stdin=open(path),
                           capture_output=True, text=True)
        if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
            problem(f"promtool check metrics (exit {r.returncode}): {r.stdout}{r.stderr}")

        families, order = check_text(text)
        check_content(families, order)
        samples = sum(len(v) - 1 for v in families.values())
    finally:
        psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres", check=False)
        psql(f"DROP ROLE IF EXISTS {READER}", db="postgres", check=False)
        psql("DROP ROLE IF EXISTS aps_metrics_app", db="postgres", check=False)
        subprocess.run(["rm", "-rf", tmp])

    if problems:
        return 1
    print(f"metrics: {len(order)} families, {samples} samples, promtool finds nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
