#!/usr/bin/env python3
"""Microbenchmark of the TLS layer: µs per ClientHello parse, with and without fingerprints.

Hellos: a typical ~500-byte one (Python's ssl, ``fixtures/hellos/python_sni.bin``) and a
~1.7 KB Chrome-like post-quantum one (``chrome_like_pq_sni.bin``), plus the same Chrome-like
hello split over three records (the reassembly path). ``parse`` is :func:`read_client_hello`
as installed (the C ClientHello parser when ``sniparse._speedups`` is built), ``(py)`` the
same with the C parser switched off (the Python parser, mypyc-compiled when built). ``+all
fp`` is parse + :func:`sniparse.fingerprint.fingerprints` with its memo emptied before every
call (cold); ``(warm)`` lets it remember, as it does for the many hellos of one client
program in a capture.

    python benchmarks/bench_tls.py [--repeat N]     (from a checkout: PYTHONPATH=.)

Last measured (2 shared cores under load ~4, CPython 3.11 without PGO, mypyc build with the C
extension; CPU µs per call):

    case                          bytes    parse    (py)     +ja3  +ja3+ja4  +all fp  (warm)   ja4_r
    python ssl hello                517     2.5µ    7.1µ     6.9µ     13.2µ    13.0µ    3.6µ    3.8µ
    chrome-like PQ hello           1725     2.8µ    8.3µ     7.1µ     12.1µ    12.4µ    3.9µ    3.5µ
    chrome-like PQ, 3 records      1735     3.8µ   10.7µ     8.0µ     13.2µ    14.0µ    5.0µ    3.5µ
    dpkt: python ssl hello          517    22.5µ   (dpkt's parse alone, no SNI/ALPN decoding)
"""

from __future__ import annotations

import argparse
import time
import timeit
from pathlib import Path

from sniparse import tls
from sniparse.fingerprint import _FP_CACHE, fingerprints, ja3, ja4, ja4_r
from sniparse.tls import looks_like_tls_hello, read_client_hello, read_server_reaction

HELLOS = Path(__file__).resolve().parent.parent / "fixtures" / "hellos"


def _three_records(data: bytes) -> bytes:
    msg = data[5:]
    a, b = len(msg) // 3, 2 * len(msg) // 3
    out = b""
    for frag in (msg[:a], msg[a:b], msg[b:]):
        out += b"\x16\x03\x01" + len(frag).to_bytes(2, "big") + frag
    return out


def bench(fn: object, number: int, repeat: int) -> float:
    """Best-of-``repeat`` µs per call."""
    # CPU time of this process: the benchmark host is shared, wall time would count waits.
    t = timeit.Timer(fn, timer=time.process_time)  # type: ignore[arg-type]
    return min(t.repeat(repeat=repeat, number=number)) / number * 1e6


def bench_python_parser(fn: object, number: int, repeat: int) -> float:
    """:func:`bench` with the C ClientHello parser switched off (the Python parser, compiled
    by mypyc when the build has it)."""
    saved = getattr(tls, "_C_CLIENT_HELLO", None)
    tls._C_CLIENT_HELLO = None  # type: ignore[attr-defined,unused-ignore]
    try:
        return bench(fn, number, repeat)
    finally:
        tls._C_CLIENT_HELLO = saved  # type: ignore[attr-defined,unused-ignore]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--number", type=int, default=20_000)
    args = ap.parse_args()

    cases = {
        "python ssl hello": (HELLOS / "python_sni.bin").read_bytes(),
        "chrome-like PQ hello": (HELLOS / "chrome_like_pq_sni.bin").read_bytes(),
    }
    cases["chrome-like PQ, 3 records"] = _three_records(cases["chrome-like PQ hello"])
    server = (HELLOS / "server_tls13_hello.bin").read_bytes()

    have_c = getattr(tls, "_C_CLIENT_HELLO", None) is not None
    print(f"ClientHello parser: {'C (sniparse._speedups)' if have_c else 'Python only'}; "
          f"{tls.__file__}")
    print(f"{'case':28} {'bytes':>6} {'parse':>8} {'(py)':>7} {'+ja3':>8} {'+ja3+ja4':>9} "
          f"{'+all fp':>8} {'(warm)':>7} {'ja4_r':>7}")
    for name, data in cases.items():
        n, r = args.number, args.repeat
        parse = bench(lambda d=data: read_client_hello(d), n, r)
        parse_py = bench_python_parser(lambda d=data: read_client_hello(d), n, r)
        h = read_client_hello(data)
        assert h is not None
        hello = h[0]
        with_ja3 = bench(lambda d=data: ja3(read_client_hello(d)[0]), n, r)  # type: ignore[index]

        def both(d: bytes = data) -> None:
            ch = read_client_hello(d)[0]  # type: ignore[index]
            ja3(ch)
            ja4(ch)

        with_both = bench(both, n, r)
        # ja3 string + md5, ja4 and ja4_r together, as the flow layer needs them; the
        # remembered results are dropped before each call to time the cold path.
        def cold(d: bytes = data) -> None:
            _FP_CACHE.clear()
            fingerprints(read_client_hello(d)[0])  # type: ignore[index]

        with_all = bench(cold, n, r)
        warm = bench(lambda d=data: fingerprints(read_client_hello(d)[0]), n, r)  # type: ignore[index]
        raw = bench(lambda ch=hello: ja4_r(ch), n, r)
        print(f"{name:28} {len(data):6d} {parse:7.1f}µ {parse_py:6.1f}µ {with_ja3:7.1f}µ "
              f"{with_both:8.1f}µ "
              f"{with_all:7.1f}µ {warm:6.1f}µ {raw:6.1f}µ")
    try:
        import dpkt  # type: ignore[import-untyped]
    except ImportError:
        dpkt = None
    if dpkt is not None:
        # Yardstick: dpkt's ClientHello parse (extensions split, no SNI/ALPN decoding).
        for name, data in list(cases.items())[:2]:
            def dp(d: bytes = data) -> object:
                return dpkt.ssl.TLSHandshake(dpkt.ssl.TLSRecord(d).data).data

            print(f"{'dpkt: ' + name:28} {len(data):6d} "
                  f"{bench(dp, args.number, args.repeat):7.1f}µ")
    print(f"{'looks_like_tls_hello':28} {'':6} "
          f"{bench(lambda: looks_like_tls_hello(cases['python ssl hello']), 200_000, 5):7.2f}µ")
    print(f"{'read_server_reaction':28} {len(server):6d} "
          f"{bench(lambda: read_server_reaction(server), args.number, 5):7.1f}µ")


if __name__ == "__main__":
    main()
