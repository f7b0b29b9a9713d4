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


def main():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for kind, seeds in SEEDS.items():
        os.makedirs(os.path.join(top, kind), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(top, kind, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
