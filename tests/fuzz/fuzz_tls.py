"""Fuzz target: the TLS wire parsers on arbitrary bytes.

Contract checked (h11's rule: any exception other than ours is a bug):

* ``parse_client_hello(data)`` returns a ClientHello or raises a SniparseError;
* ``read_client_hello(data, start)`` returns None, ``(hello, end)`` with
  ``start < end <= len(data)``, or raises a SniparseError; and the same bytes fed one prefix
  longer never turn a complete hello back into "need more";
* ``read_server_reaction(data, start)`` (also with ``past_warnings=True``) returns None or a
  ServerReaction, or raises a SniparseError.

Run: ``python tests/fuzz/fuzz_tls.py -max_total_time=600`` (see README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import instrumented, run, seed_files

with instrumented():
    from sniparse.errors import SniparseError
    from sniparse.tls import (
        parse_client_hello,
        read_client_hello,
        read_server_reaction,
    )


def target(data: bytes) -> None:
    """One fuzz input: the first byte picks a start offset, the rest is the stream."""
    if not data:
        return
    start = data[0] % 8
    buf = data[1:]
    try:
        parse_client_hello(buf)
    except SniparseError:
        pass
    try:
        r = read_client_hello(buf, start)
    except SniparseError:
        r = None
    else:
        if r is not None:
            end = r[1]
            assert start < end <= len(buf), (start, end, len(buf))
            # More bytes after a complete hello must not change the answer.
            r2 = read_client_hello(buf + b"\x17\x03\x03\x00\x01\x00", start)
            assert r2 is not None and r2[1] == end and r2[0] == r[0]
    try:
        s = read_server_reaction(buf, start)
    except SniparseError:
        s = None
    if s is not None:
        assert s.kind in ("server_hello", "alert", "other_tls", "not_tls"), s.kind
        assert start < s.end <= len(buf) or s.kind == "not_tls", (s.kind, s.end)
    try:
        read_server_reaction(bytearray(buf), 0)
    except SniparseError:
        pass
    try:
        w = read_server_reaction(buf, start, past_warnings=True)
    except SniparseError:
        w = None
    if w is not None:
        assert w.kind in ("server_hello", "alert", "other_tls", "not_tls"), w.kind


def main() -> None:
    run("tls", target, seed_files(["hellos/*.bin"]), prefix=b"\x00")


if __name__ == "__main__":
    main()
