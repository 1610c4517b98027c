"""How records and handshakes are put together cheaply, against the plain way.

* ``_speedups.new_record`` builds each record's ``__dict__`` from a private copy of the
  previous record of its kind, storing only the values that changed: every record must
  still be exactly what the class constructor builds, whatever came before it, whatever is
  done to earlier records, and when building one runs code that builds another;
* ``flows._make_handshake`` (C when built, else Python) against ``Handshake(*values)``;
* ``flows._format_ip`` against ``socket.inet_ntop``;
* ``fingerprint.fingerprints``'s table, looked up by part of a hello and checked on the
  rest: same answers as ``ja3`` / ``ja4`` / ``ja4_r`` for hellos that share a slot, and
  bounded.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import random
import socket
from typing import Any

import pytest
from conftest import FIXTURES, module_from_path

import sniparse
from sniparse import fingerprint, flows, tls
from sniparse.flows import Handshake

try:
    _speedups: Any = importlib.import_module("sniparse._speedups")
except ImportError:
    _speedups = None

NEW = getattr(_speedups, "new_record", None)
needs_c = pytest.mark.skipif(NEW is None, reason="the C extension is not built")
B = module_from_path("build_hellos", FIXTURES / "hellos" / "build_hellos.py")


@dataclasses.dataclass(frozen=True)
class Rec:
    a: object
    b: object
    c: object = None


NAMES = ("a", "b", "c")


def _same(got: Any, want: Any) -> None:
    assert type(got) is type(want) and got == want
    assert list(got.__dict__.items()) == list(want.__dict__.items())
    for name in NAMES:
        assert got.__dict__[name] is want.__dict__[name]
    assert repr(got) == repr(want) and hash(got) == hash(want)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.a = 0  # type: ignore[misc]


@needs_c
def test_records_in_a_row_are_each_what_the_constructor_builds() -> None:
    rng = random.Random(7)
    pool: list[object] = [None, False, True, 0, 1, 443, "x", "", (), (1, 2), b"", b"ab", 1.5]
    made: list[tuple[Any, Rec]] = []
    for _ in range(500):
        values = tuple(rng.choice(pool) if rng.random() < 0.7 else object() for _ in NAMES)
        got = NEW(Rec, NAMES, values)
        want = Rec(*values)
        _same(got, want)
        made.append((got, want))
    # Later records never change earlier ones: each has a dict of its own.
    for got, want in made:
        _same(got, want)
    assert len({id(g.__dict__) for g, _ in made}) == len(made)


@needs_c
def test_changing_a_record_does_not_leak_into_the_next() -> None:
    first = NEW(Rec, NAMES, (1, 2, 3))
    object.__setattr__(first, "a", "changed")
    first.__dict__["b"] = "changed too"
    _same(NEW(Rec, NAMES, (1, 2, 3)), Rec(1, 2, 3))
    assert first.__dict__ == {"a": "changed", "b": "changed too", "c": 3}


@needs_c
def test_values_are_released_once_no_record_holds_them() -> None:
    class Value:
        pass

    v = Value()
    alive = [True]

    import weakref

    ref = weakref.ref(v, lambda _: alive.__setitem__(0, False))
    rec = NEW(Rec, NAMES, (v, 1, 2))
    del v
    assert alive[0]
    del rec
    # The kind keeps its last record's values until the next record of the kind.
    NEW(Rec, NAMES, (0, 1, 2))
    assert not alive[0] and ref() is None


@needs_c
def test_records_built_while_one_of_their_kind_is_being_built() -> None:
    """Releasing a replaced value, or a garbage collection during the build, can run code
    that builds another record of the same kind: both come out right."""
    built: list[tuple[Any, Rec]] = []

    class Builds:
        def __init__(self, n: int) -> None:
            self.n = n
            self.me = self  # a cycle: freed by the collector, in the middle of anything

        def __del__(self) -> None:
            values = (self.n, "inner", None)
            built.append((NEW(Rec, NAMES, values), Rec(*values)))

    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        for i in range(300):
            values = (Builds(i), i, "outer")
            got = NEW(Rec, NAMES, values)
            _same(got, Rec(*values))
            del values, got
    finally:
        gc.set_threshold(*old)
    gc.collect()
    assert built
    for got, want in built:
        _same(got, want)


@needs_c
def test_many_kinds_in_turn() -> None:
    # More kinds than the C code remembers, interleaved: each record right every time.
    classes = [dataclasses.make_dataclass(f"K{i}", [("a", object), ("b", object)], frozen=True)
               for i in range(20)]
    rng = random.Random(3)
    for _ in range(400):
        cls = rng.choice(classes)
        values = (rng.randrange(3), rng.choice(["p", "q", None]))
        got = NEW(cls, ("a", "b"), values)
        assert type(got) is cls and got == cls(*values)
        assert list(got.__dict__.items()) == list(zip(("a", "b"), values))


def _scenario_handshakes() -> list[Handshake]:
    hs: list[Handshake] = []
    for path in sorted((FIXTURES / "scenarios").glob("*.pcap*")):
        hs.extend(sniparse.iter_handshakes(str(path)))
    assert len(hs) > 20
    return hs


def test_make_handshake_is_the_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways of _make_handshake (C when built, the Python fallback) on every scenario
    handshake, against ``Handshake(*values)``; and every record of the flow table has the
    fields in declaration order."""
    hs = _scenario_handshakes()
    assert flows._HS_FIELDS == tuple(f.name for f in dataclasses.fields(Handshake))
    ways = [flows._C_NEW_RECORD, None] if flows._C_NEW_RECORD is not None else [None]
    for way in ways:
        monkeypatch.setattr(flows, "_C_NEW_RECORD", way)
        for h in hs:
            assert tuple(vars(h)) == flows._HS_FIELDS
            values = tuple(vars(h)[n] for n in flows._HS_FIELDS)
            got = flows._make_handshake(values)
            want = Handshake(*values)
            assert type(got) is Handshake and got == want
            assert list(vars(got).items()) == list(vars(want).items())
            assert repr(got) == repr(want) and got.client_hello is h.client_hello
            with pytest.raises(dataclasses.FrozenInstanceError):
                got.sni = "x"  # type: ignore[misc]


def test_ipv4_text_is_inet_ntop() -> None:
    rng = random.Random(5)
    cases = [bytes(4), b"\xff" * 4, b"\x7f\x00\x00\x01", b"\x0a\x00\x00\x0a"]
    cases += [bytes(rng.randrange(256) for _ in range(4)) for _ in range(2000)]
    for packed in cases:
        assert flows._format_ip(packed) == socket.inet_ntop(socket.AF_INET, packed)
    v6 = bytes.fromhex("20010db8000000000000000000000001")
    assert flows._format_ip(v6) == "2001:db8::1"
    assert flows._ip_text(b"\xc0\x00\x02\x01") == "192.0.2.1"


def _hello(suites: list[int], groups: list[int], formats: list[int], sigs: list[int],
           alpn: bytes | None = b"h2") -> tls.ClientHello:
    exts = [B.sni_ext(b"www.example.com"), B.u16_list_ext(10, groups),
            (11, bytes([len(formats), *formats])), B.u16_list_ext(13, sigs),
            B.u16_list_ext(43, [0x0304, 0x0303], len_bytes=1)]
    if alpn is not None:
        exts.append(B.alpn_ext(alpn))
    return tls.parse_client_hello(B.records(B.client_hello_message(suites, exts)))


def _check(h: tls.ClientHello, transport: str = "t") -> None:
    fp = fingerprint.fingerprints(h, transport)
    assert (fp.ja3_string, fp.ja3) == fingerprint.ja3(h)
    assert fp.ja4 == fingerprint.ja4(h, transport) and fp.ja4_r == fingerprint.ja4_r(h, transport)


def test_fingerprint_slots_answer_only_equal_hellos() -> None:
    """Hellos that share a slot of the table (same short fields, same cipher count and
    end values) but differ in a compared list each get their own fingerprints, in any
    order and repeated."""
    fingerprint._FP_CACHE.clear()
    base = ([0x1301, 0x1302, 0x1303], [29, 23], [0], [0x0403, 0x0804])
    variants = [
        base,
        ([0x1301, 0xC02F, 0x1303], *base[1:]),            # middle cipher
        (base[0], [29, 24], *base[2:]),                     # groups
        (base[0], base[1], [0, 1], base[3]),                # point formats
        (*base[:3], [0x0403, 0x0805]),                      # signature algorithms
        (*base[:3], [0x0804, 0x0403]),                      # their order
        (*base[:3], []),
    ]
    hellos = [_hello(*v) for v in variants] + [_hello(*base, alpn=None),
                                                _hello(*base, alpn=b"http/1.1")]
    rng = random.Random(11)
    for _ in range(6):
        for h in rng.sample(hellos, len(hellos)):
            _check(h)
            _check(h, "q")
    ja3s = {fingerprint.fingerprints(h).ja3 for h in hellos[:5]}
    assert len(ja3s) == 4  # groups, formats and the middle cipher change JA3; sigs do not
    assert len({fingerprint.fingerprints(h).ja4_r for h in hellos}) == len(hellos) - 2


def test_fingerprint_table_is_bounded() -> None:
    fingerprint._FP_CACHE.clear()
    for i in range(fingerprint._FP_CACHE_MAX + 50):
        h = _hello([0x1301, 0x1000 + i], [29], [0], [0x0403])
        fingerprint.fingerprints(h)
        assert len(fingerprint._FP_CACHE) <= fingerprint._FP_CACHE_MAX
    _check(h)


def test_hellos_of_the_fixtures_fingerprint_as_the_single_functions() -> None:
    fingerprint._FP_CACHE.clear()
    hellos = [h.client_hello for h in _scenario_handshakes() if h.client_hello is not None]
    for path in sorted((FIXTURES / "hellos").glob("*.bin")):
        if not path.name.startswith("server_"):
            hellos.append(tls.parse_client_hello(path.read_bytes()))
    for _ in range(2):
        for h in hellos:
            try:
                _check(h)
            except sniparse.SniparseError:
                continue

