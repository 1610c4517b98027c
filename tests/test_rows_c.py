"""The C ndjson row writer (``sniparse._speedups.ndjson_row``) against the Python one.

The C function writes the common case of :func:`sniparse.report._ndjson_fast`: the line of a
handshake's instance dict when it is all ASCII, else None and the Python code decides. Its
contract: for any dict it returns None or exactly the Python function's line, never a
different answer, never a crash; and it answers every ASCII row of the value types a
Handshake holds. Checked on every fixture and corpus handshake and on hypothesis-generated
rows (escapes, non-ASCII, big and negative ints, every kind of float, bytes, mixed tuples,
odd timestamps). The reference is report.py loaded from source with the C path switched
off; the Python function is itself checked against the JSON encoder here and in
tests/test_ndjson_rows.py.

Skipped when the C extension is not built.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, source_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sniparse
from sniparse import report
from sniparse.errors import SniparseError
from sniparse.flows import Handshake

try:
    _speedups: Any = importlib.import_module("sniparse._speedups")
    C_ROW: Callable[[dict[str, Any], tuple[object, ...]], str | None] | None = getattr(
        _speedups, "ndjson_row", None
    )
except ImportError:
    C_ROW = None

pytestmark = pytest.mark.skipif(C_ROW is None, reason="the C extension is not built")


def _reference() -> Any:
    """report.py from source, the C path off: the Python row writer whatever the build.
    (Registered in sys.modules under its own name: dataclasses look their module up.)"""
    mod = source_module("report", as_name="sniparse._reference_report")
    mod._C_NDJSON_ROW = None
    return mod


PY = _reference()
KIT = report._NDJSON_KIT


def _encoded(d: dict[str, Any]) -> str:
    return report._ENCODER.encode(report.handshake_to_dict(_handshake(d))) + "\n"


def _handshake(d: dict[str, Any]) -> Handshake:
    """A Handshake whose instance dict is ``d`` (as the flow table makes them)."""
    h: Handshake = object.__new__(Handshake)
    object.__setattr__(h, "__dict__", d)
    return h


def _common(d: dict[str, Any]) -> bool:
    """Every value is of a type C writes itself (tuples of str, or of int and plain str),
    and ts_ns an int64 (beyond it, a corrupt capture, C leaves the row to Python)."""
    ts = d.get("ts_ns")
    if type(ts) is int and not -(2**63) <= ts < 2**63:
        return False
    for v in d.values():
        if type(v) is tuple and not (
            all(type(x) is str for x in v)
            or all(type(x) is int or (type(x) is str and _plain(x)) for x in v)
        ):
            return False
    return True


def _plain(s: str) -> bool:
    """ASCII text the JSON encoder writes as it is (between quotes)."""
    return s.isascii() and '"' not in s and "\\" not in s and all(c >= " " for c in s)


def check(d: dict[str, Any]) -> str | None:
    """C gives None or the Python line; the Python line (when not None) is the encoder's;
    the dispatching function gives the encoder's text. Returns C's answer."""
    assert C_ROW is not None
    c = C_ROW(d, KIT)
    py = PY._ndjson_fast(d)
    if type(d["ts_ns"]) is not int:
        # Never from a capture; the general path's ISO text wants an int (compiled, a
        # float ts_ns is a TypeError there). Both fast writers leave the row alone.
        assert c is None and py is None
        return None
    if c is not None:
        assert c == py, (c, py)
        assert c.isascii()
    if py is not None:
        assert py == _encoded(d)
        if c is None and py.isascii() and _common(d):
            pytest.fail(f"C declined an ASCII row: {py}")
    assert report._ndjson_row(_handshake(d)) == _encoded(d)
    return c


def _captures(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and (".pcap" in p.name or p.suffix == ".cap")
    )


def _check_file(path: Path) -> int:
    try:
        hs = list(sniparse.iter_handshakes(str(path)))
    except SniparseError:
        return 0
    for h in hs:
        check(h.__dict__)
    return len(hs)


def test_c_rows_match_on_fixtures() -> None:
    total = sum(_check_file(p) for p in _captures(FIXTURES))
    assert total > 50


def test_c_rows_match_on_corpus(corpus_dir: Path) -> None:
    with open(corpus_dir / "MANIFEST.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    total = sum(_check_file(corpus_dir / r["relative_path"]) for r in rows)
    assert total > 100


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    """The instance dict of a fixture handshake with a ClientHello, ALPN and an outcome time."""
    for p in _captures(FIXTURES):
        try:
            for h in sniparse.iter_handshakes(str(p)):
                if h.client_hello is not None and h.alpn and h.outcome_ms is not None:
                    return dict(h.__dict__)
        except SniparseError:
            continue
    pytest.skip("no fixture handshake with ALPN")


def test_the_dispatch_uses_c() -> None:
    # The compiled (or source) report module picks the C writer when it is built, unless
    # SNIPARSE_PURE asks for the Python code.
    pure = os.environ.get("SNIPARSE_PURE", "") not in ("", "0")
    assert (report._C_NDJSON_ROW is None) == pure


@pytest.mark.parametrize(
    "changes",
    [
        {"sni": "caf\u00e9.example"},
        {"sni": "\u4e2d\u6587.example", "alpn": ("\U0001f600",)},
        {"sni": "\udcff-lone-surrogate"},
        {"detail": 'quote " back\\slash \n\t\x00\x1f \x7f'},
        {"alpn": ('q"', "plain"), "versions": ("a\\b",)},
        {"outcome_ms": math.nan},
        {"outcome_ms": math.inf},
        {"outcome_ms": -math.inf},
        {"outcome_ms": -0.0},
        {"outcome_ms": 0.0},
        {"outcome_ms": 1e300},
        {"outcome_ms": 1e-7},
        {"outcome_ms": 0.0001},
        {"outcome_ms": 123456789.125},
        {"outcome_ms": 999999999.999999},
        {"outcome_ms": -2.941},
        {"ts_ns": 0},
        {"ts_ns": -1},
        {"ts_ns": -1_000_000_000},
        {"ts_ns": 999_999_999},
        {"ts_ns": 1_000_000_000},
        {"ts_ns": 2**63 - 1},
        {"ts_ns": 2**63},
        {"ts_ns": -(2**63)},
        {"ts_ns": 2**70},
        {"ts_ns": 253402300800 * 10**9},  # year 10000: no ISO text
        {"ts_ns": 1.5},
        {"ts_ns": True},
        {"ts_ns": None},
        {"client_port": 2**80, "alert": -3, "frame": -(2**63)},
        {"sni_raw": b"", "alpn": ()},
        {"sni_raw": b"\x00\xff" * 3000},
        {"detail": "x" * 10000, "ja3_string": "y" * 5000},
        {"vlan": (10, 20), "alpn": ("h2", 3)},
        {"vlan": (2**70, -1)},
        {"alpn": (b"\x01\x02",)},
        {"alpn": (1, 2.5, None, True)},
        {"alpn": ((1, 2),)},
        {"alpn": (True, None)},
        {"vlan": (1.5,)},
        {"sni": type("S", (str,), {})("subclass")},
        {"client_port": type("I", (int,), {})(5)},
        {"outcome_ms": type("F", (float,), {})(1.5)},
        {"versions": type("T", (tuple,), {})(("x",))},
        {"detail": 3.5, "segments": True, "hrr": None},
    ],
)
def test_c_rows_match_on_odd_values(sample: dict[str, Any], changes: dict[str, object]) -> None:
    d = dict(sample)
    d.update(changes)
    check(d)


def test_key_order_and_extra_keys(sample: dict[str, Any]) -> None:
    line = check(dict(sample))
    assert line is not None
    backwards = dict(reversed(list(sample.items())))
    assert check(backwards) == line
    crowded: dict[str, Any] = {}
    for k, v in sample.items():
        crowded["x" + k] = object()
        crowded[k] = v
    assert C_ROW is not None
    assert C_ROW(crowded, KIT) == line


def test_missing_column_raises_like_python(sample: dict[str, Any]) -> None:
    assert C_ROW is not None
    for name in ("ts_ns", "sni", "server_version"):
        d = dict(sample)
        del d[name]
        with pytest.raises(KeyError):
            PY._ndjson_fast(d)
        with pytest.raises(KeyError):
            C_ROW(d, KIT)


def test_bad_arguments_raise() -> None:
    assert C_ROW is not None
    for args in [(), ({},), ([], KIT), ({}, KIT[:3]), ({}, list(KIT)),
                 ({}, (KIT[0], KIT[1][:-1], KIT[2], KIT[3])),
                 ({}, (KIT[0], tuple(k + "\u00e9" for k in KIT[1]), KIT[2], KIT[3]))]:
        with pytest.raises(TypeError):
            C_ROW(*args)


def test_first_row_in_a_fresh_process() -> None:
    # The cached second starts unset: a first row just before the epoch (its second is -1)
    # must not use it. Run in new processes, C and Python.
    code = (
        "import dataclasses, sniparse\n"
        "from sniparse import report\n"
        "from sniparse.flows import Handshake\n"
        "h = object.__new__(Handshake)\n"
        "d = {f.name: None for f in dataclasses.fields(Handshake)}\n"
        "d.update(ts_ns=-1, versions=(), alpn=(), vlan=())\n"
        "object.__setattr__(h, '__dict__', d)\n"
        "enc = report._ENCODER.encode(report.handshake_to_dict(h)) + '\\n'\n"
        "assert report._ndjson_row(h) == enc, report._ndjson_row(h)\n"
    )
    root = Path(__file__).resolve().parent.parent
    for pure in ("0", "1"):
        env = dict(os.environ, SNIPARSE_PURE=pure, PYTHONPATH=str(root))
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)


# -- hypothesis ---------------------------------------------------------------------------

_texts = st.one_of(
    st.sampled_from(["", "present", "h2", "TLSv1.3", "a\"b", "back\\slash", "\x00", "\x1f\x7f",
                     "caf\u00e9", "\u2028", "\udcff", "x" * 300]),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=40),
)
_ints = st.one_of(st.integers(-(2**64), 2**64), st.integers(-10, 70000),
                  st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**200]))
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**16), 10**16).map(lambda k: k / 1e6),
    st.integers(0, 10**7).map(lambda k: k / 1e3),
    st.sampled_from([0.0, -0.0, 1e300, -1e300, 1e-4, 9.999999999999999e-05, 1e9, 1e16,
                     5e-324, 0.1, 2.675]),
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _texts, st.binary(max_size=40))
_tuples = st.one_of(
    st.lists(_texts, max_size=5).map(tuple),
    st.lists(st.one_of(_texts, _ints), max_size=5).map(tuple),
    st.lists(st.one_of(_scalars, st.tuples(_ints)), max_size=4).map(tuple),
)
_values = st.one_of(_scalars, _tuples)
_ts = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(1_600_000_000 * 10**9, 1_600_000_100 * 10**9),
    st.integers(-2 * 10**9, 2 * 10**9),
    st.sampled_from([0, -1, 999_999_999, 1_000_000_000, 2**63 - 1, 2**63, -(2**63),
                     253402300799 * 10**9, 253402300800 * 10**9]),
    st.floats(), st.none(), st.booleans(),
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_c_rows_match_on_generated_rows(sample: dict[str, Any], data: st.DataObject) -> None:
    d = dict(sample)
    d["ts_ns"] = data.draw(_ts)
    for name in data.draw(st.lists(st.sampled_from(report._REST_COLUMNS), max_size=8)):
        d[name] = data.draw(_values)
    check(d)


@settings(max_examples=3000, deadline=None)
@given(x=_floats)
def test_c_floats_are_repr(sample: dict[str, Any], x: float) -> None:
    d = dict(sample, outcome_ms=x)
    line = check(d)
    if math.isfinite(x):
        assert line is not None
        assert f'"outcome_ms": {x!r},' in line


FIELDS_SAMPLE: dict[str, Any] = {
    f.name: f.default if f.default is not dataclasses.MISSING else None
    for f in dataclasses.fields(Handshake)
} | {"ts_ns": 1_700_000_000_123_456_789, "client_ip": "192.0.2.1", "client_port": 1,
     "server_ip": "192.0.2.2", "server_port": 443, "sni_status": "absent", "sslv2": False,
     "ech": False, "versions": (), "alpn": (), "segments": 1, "hrr": False,
     "outcome": "no_response", "conn_state": "S0", "history": "S"}


def test_dataclass_made_records() -> None:
    # The flow table fills the instance dict in field order; so does the dataclass's own
    # __init__ (here through replace()): C reads both in one pass.
    h = _handshake(dict(FIELDS_SAMPLE))
    assert check(dataclasses.replace(h).__dict__) is not None
