#!/usr/bin/python3
"""gen_corpus.py: write the seed corpus of the fuzz targets.

corpus/startup/ holds start-up packets (what a new client sends first),
corpus/message/ streams of messages in the protocol v3 framing, from a
client and from a server.  Run it (make corpus) after changing a seed here;
the files are checked in so that a fuzz run needs no Python.
"""

import os
import struct

PROTO_V3 = 196608
CODE_CANCEL = 80877102
CODE_SSL = 80877103
CODE_GSSENC = 80877104


def cstr(s):
    return s.encode() + b"\0"


def startup(code, body=b""):
    """A start-up packet: length word (itself included), code, body."""
    return struct.pack("!II", 8 + len(body), code) + body


def params(**kv):
    """v3 start-up parameters: name/value pairs, then an empty name."""
    return b"".join(cstr(k) + cstr(v) for k, v in kv.items()) + b"\0"


def msg(type_, body=b""):
    """A message: type byte, length word (itself included), body."""
    return type_.encode() + struct.pack("!I", 4 + len(body)) + body


def parse(name, query, oids=()):
    return msg("P", cstr(name) + cstr(query) +
               struct.pack("!H", len(oids)) +
               b"".join(struct.pack("!I", o) for o in oids))


def bind(portal, stmt, values):
    """Bind with text parameters (one format code: text), text results."""
    body = cstr(portal) + cstr(stmt) + struct.pack("!HH", 1, 0)
    body += struct.pack("!H", len(values))
    for v in values:
        if v is None:
            body += struct.pack("!i", -1)
        else:
            body += struct.pack("!I", len(v)) + v.encode()
    return msg("B", body + struct.pack("!HH", 1, 0))


def describe(kind, name):
    return msg("D", kind.encode() + cstr(name))


def close(kind, name):
    return msg("C", kind.encode() + cstr(name))


def execute(portal, max_rows=0):
    return msg("E", cstr(portal) + struct.pack("!I", max_rows))


def sync():
    return msg("S")


def query(sql):
    return msg("Q", cstr(sql))


def row_description(names):
    body = struct.pack("!H", len(names))
    for n in names:
        body += cstr(n) + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0)
    return msg("T", body)


def data_row(values):
    body = struct.pack("!H", len(values))
    for v in values:
        body += struct.pack("!I", len(v)) + v.encode()
    return msg("D", body)


def error_response(fields):
    return msg("E", b"".join(k.encode() + cstr(v) for k, v in fields) + b"\0")


SEEDS = {
    "startup": {
        "v3_user_database_options": startup(PROTO_V3, params(
            user="alice", database="shop", application_name="api",
            options="-c search_path=shop -c statement_timeout=5s")),
        "v3_user_only": startup(PROTO_V3, params(user="bob")),
        "ssl_request": startup(CODE_SSL),
        "gssenc_request": startup(CODE_GSSENC),
        "cancel_request": startup(CODE_CANCEL, struct.pack("!II", 4242,
                                                           0xDEADBEEF)),
    },
    "message": {
        # what a driver sends for one prepared statement, then its reuse
        "extended_pipeline": (
            parse("s1", "SELECT * FROM orders WHERE user_id = $1", (23,)) +
            bind("", "s1", ["42"]) + describe("P", "") + execute("") +
            sync() +
            bind("p1", "s1", [None]) + describe("S", "s1") +
            execute("p1", 100) + close("S", "s1") + sync()),
        "extended_unnamed": (
            parse("", "SELECT 1") + bind("", "", []) + describe("S", "") +
            execute("") + sync()),
        "simple_query": query("BEGIN; SELECT now(); COMMIT"),
        # what a server answers; 'C', 'D', 'E', 'S' mean other things here
        "server_response": (
            msg("1") + msg("2") + row_description(["id", "email"]) +
            data_row(["1", "a@example.com"]) + msg("C", cstr("SELECT 1")) +
            msg("S", cstr("TimeZone") + cstr("UTC")) +
            error_response([("S", "ERROR"), ("V", "ERROR"), ("C", "42P01"),
                            ("M", 'relation "x" does not exist')]) +
            msg("Z", b"I")),
        # a ReadyForQuery without its status byte, then a whole one: the
        # first once read as status 'Z' (pkt_peek_at, fixed)
        "server_bodiless_ready": msg("Z") + msg("Z", b"I"),
    },
}


def http_target(method, target):
    """fuzz_http's input: a method selector byte, then the target."""
    return bytes([method]) + target.encode()


# fuzz_http's method selector (its methods[]): GET, ..., OPTIONS, ...
GET, POST, HEAD, OPTIONS = 0, 1, 2, 5

SEEDS["http"] = {
    "dashboard": http_target(GET, "/"),
    "metrics": http_target(GET, "/metrics"),
    "health_head": http_target(HEAD, "/health"),
    "status_query": http_target(GET, "/api/status?since=10#top"),
    "options": http_target(OPTIONS, "/health"),
    "post": http_target(POST, "/metrics"),
    "absolute": http_target(GET, "http://pooler.example:9127/metrics?x=1"),
    "encoded": http_target(GET, "/%6Detrics/../metrics"),
    "authority_only": http_target(GET, "//metrics"),
    "unknown": http_target(GET, "/api/status/../../etc/passwd"),
}

# fuzz_config's inputs: configuration files.
SEEDS["config"] = {
    "sample": open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "pooler", "apiscale-pooler.ini"),
                   "rb").read(),
    "scale_out": b"""[databases]
app = host=10.0.0.1,10.0.0.2 port=5432,5433 dbname=app target_session_attrs=read-write
app_ro = host=10.0.0.1,10.0.0.2 port=5432 target_session_attrs=prefer-standby pool_size=30
forced = host=db user=svc password="a b;c" pool_mode=session max_overflow=-1

[users]
report = pool_size=2 max_overflow=0 pool_timeout=60

[peers]
1 = host=127.0.0.1 port=6432
2 = host=127.0.0.1 port=6433

[pooler]
listen_port = 6432
unix_socket_dir =
pool_recycle = -1
pool_timeout = 0.25
idle_transaction_timeout = 30
query_timeout = 120.5
client_idle_timeout = 3600
tcp_keepalive = off
tcp_keepidle = 60
tcp_user_timeout = 30000
http_listen = [::1]:9127
http_metrics_databases = app, app_ro
http_show_statements = on
stats_users = grafana,prom
so_reuseport = on
peer_id = 1
""",
    # found by fuzz_config: a value that begins with ';' (no space before
    # it, so not a comment) must be written back so that it stays a value
    "semicolon_value": b"[pooler]\nhttp_listen=;*:1\n",
    "errors": b"""; one of each kind of mistake, the first wins
[pooler]
pool_size = 0x10
max_overflow = -2
[databases]
x = host= port=1,2,3
[mystery]
k = v
""",
}


def main():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for kind, seeds in SEEDS.items():
        os.makedirs(os.path.join(top, kind), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(top, kind, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
