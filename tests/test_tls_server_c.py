"""The C server reaction (``sniparse._speedups.server_reaction``) against the Python one.

The C function reads the common case of :func:`sniparse.tls._server_reaction` (an alert
record, or a handshake record holding a whole well-formed ServerHello) and returns the
ServerReaction the Python code builds, or None to leave the bytes to the Python code. Its
contract: for any input it returns None or exactly what the Python code returns (same field
values, same types, same classes, fields set in the same order), never a different answer,
never a crash. Checked here on the golden server records, the server streams of every
fixture and corpus capture, every prefix of them, single-byte mutations, odd buffers and
hypothesis-generated records. The reference is tls.py loaded from source with the C path
switched off.

Skipped when the C extension is not built.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import FIXTURES, module_from_path, source_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sniparse
from sniparse import tls
from sniparse.errors import SniparseError

try:
    _speedups: Any = importlib.import_module("sniparse._speedups")
    C_REACTION: Callable[..., Any] | None = getattr(_speedups, "server_reaction", None)
except ImportError:
    C_REACTION = None

pytestmark = pytest.mark.skipif(C_REACTION is None, reason="the C extension is not built")

HELLOS = FIXTURES / "hellos"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".xz", ".zst", ".bz2")
SR_NAMES = tuple(f.name for f in fields(tls.ServerReaction))
SH_NAMES = tuple(f.name for f in fields(tls.ServerHello))
AL_NAMES = tuple(f.name for f in fields(tls.Alert))
SERVER_FILES = ("server_tls13_hello.bin", "server_tls12_hello.bin", "server_hrr.bin",
                "server_alert_unrecognized_name.bin")


B = module_from_path("build_hellos", HELLOS / "build_hellos.py")


def _reference() -> ModuleType:
    """tls.py from source, the C paths off: the Python code whatever the installed build.
    (Registered in sys.modules under its own name: dataclasses look their module up.)"""
    mod = source_module("tls", as_name="sniparse._reference_tls_server")
    mod._C_SERVER_REACTION = None
    mod._C_CLIENT_HELLO = None
    return mod


PY = _reference()


def typed(v: object) -> object:
    """``v`` with the type of every value in it, tuples and records walked: ``True`` and
    ``1`` differ, and so do the record classes."""
    if type(v) is tuple:
        return ("tuple", tuple(typed(x) for x in v))
    if hasattr(v, "__dataclass_fields__"):
        return (type(v).__name__, tuple((k, typed(x)) for k, x in v.__dict__.items()))
    return (type(v).__name__, v)


def py_reaction(buf: Any, start: int) -> Any:
    """The Python code's reaction, or None when it raises (a documented error)."""
    try:
        return PY._server_reaction(buf, start)
    except SniparseError:
        return None


def check(buf: Any, start: int = 0) -> bool:
    """C gives None or exactly the Python code's reaction; True when C answered."""
    assert C_REACTION is not None
    c = C_REACTION(buf, start, tls._SR_KIT)
    if c is None:
        return False
    py = py_reaction(buf, start)
    assert py is not None, f"C answered where Python does not: {bytes(buf[start:]).hex()}"
    assert type(c) is tls.ServerReaction
    assert tuple(c.__dict__) == SR_NAMES
    if c.server_hello is not None:
        assert type(c.server_hello) is tls.ServerHello
        assert tuple(c.server_hello.__dict__) == SH_NAMES
    if c.alert is not None:
        assert type(c.alert) is tls.Alert and tuple(c.alert.__dict__) == AL_NAMES
    assert typed(c) == typed(py), bytes(buf[start:]).hex()
    return True


def fx(name: str) -> bytes:
    return (HELLOS / name).read_bytes()


def server_hello_message(
    version: int = 0x0303,
    random_: bytes = bytes(range(32)),
    session_id: bytes | None = b"\x07" * 32,
    suite: int = 0x1301,
    comp: int = 0,
    exts: list[tuple[int, bytes]] | None = None,
) -> bytes:
    """A ServerHello message (RFC 8446 §4.1.3); ``session_id`` None for the draft form
    (no session id, no compression method)."""
    body = version.to_bytes(2, "big") + random_
    if session_id is not None:
        body += B.vec8(session_id)
    body += suite.to_bytes(2, "big")
    if session_id is not None:
        body += bytes([comp])
    if exts is not None:
        body += B.vec16(b"".join(t.to_bytes(2, "big") + B.vec16(b) for t, b in exts))
    return b"\x02" + len(body).to_bytes(3, "big") + body


# -- golden records ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVER_FILES)
def test_golden_answered(name: str) -> None:
    data = fx(name)
    assert check(data), f"C declined the ordinary record {name}"
    assert check(bytearray(data))
    # at an offset, with the server's next records after it
    padded = b"\xff" * 9 + data + b"\x16\x03\x03\x00\x05\x0b\x00\x00\x01"
    assert check(padded, 9) and check(bytearray(padded), 9)
    # memoryviews and other buffers are left to Python
    assert C_REACTION is not None
    assert C_REACTION(memoryview(data), 0, tls._SR_KIT) is None


@pytest.mark.parametrize("name", SERVER_FILES)
def test_golden_prefixes(name: str) -> None:
    data = fx(name)
    assert C_REACTION is not None
    for cut in range(len(data)):
        # Python needs more bytes for every prefix (or, for the alert, has them all at 7)
        answered = check(data[:cut])
        assert answered == (cut >= 7 and data[0] == 21)


@pytest.mark.parametrize("name", SERVER_FILES)
def test_golden_single_byte_mutations(name: str) -> None:
    data = fx(name)
    rng = random.Random(len(data))
    buf = bytearray(data)
    for i in range(len(data)):
        v = data[i]
        for nv in {v ^ 0xFF, (v + 1) & 0xFF, (v - 1) & 0xFF, 0, 0x80, 0x7F, rng.randrange(256)}:
            if nv == v:
                continue
            buf[i] = nv
            check(bytes(buf))
            check(buf)
        buf[i] = v


def test_public_entry_point_agrees() -> None:
    """read_server_reaction (C path when built) and the reference agree, warnings too."""
    warn = b"\x15\x03\x03\x00\x02\x01\x70"
    for name in SERVER_FILES:
        data = fx(name)
        for buf in (data, warn + data, warn + warn + data, data + warn):
            for flag in (False, True):
                a = tls.read_server_reaction(bytearray(buf), past_warnings=flag)
                b = PY.read_server_reaction(bytearray(buf), past_warnings=flag)
                assert typed(a) == typed(b)
                assert a == tls.read_server_reaction(buf, past_warnings=flag)


def test_odd_arguments() -> None:
    assert C_REACTION is not None
    data = fx("server_tls13_hello.bin")
    kit = tls._SR_KIT
    assert C_REACTION(data, 0, kit) is not None
    for start in (-1, len(data), len(data) + 5, 2**70, -(2**70), 1.0, None, True):
        assert C_REACTION(data, start, kit) is None
    for buf in ("text", memoryview(data), memoryview(bytearray(data)), array_of(data), 5):
        assert C_REACTION(buf, 0, kit) is None
    bad_kits: list[Any] = [
        None, kit[:5], list(kit), (kit[0], list(kit[1]), *kit[2:]),
        (kit[0], kit[1][:-1], *kit[2:]), ("ServerReaction", *kit[1:]),
        (*kit[:5], (b"level", b"description")),
    ]
    for bad in bad_kits:
        with pytest.raises(TypeError):
            C_REACTION(data, 0, bad)
    with pytest.raises(TypeError):
        C_REACTION(data, 0)
    # object.__setattr__'s own checks still apply: a read-only attribute stays read-only.
    ro = (*kit[:5], ("level", "name"))
    with pytest.raises(AttributeError):
        C_REACTION(fx("server_alert_unrecognized_name.bin"), 0, ro)
    ro = (*kit[:2], kit[2], (*kit[3][:-1], "version"), *kit[4:])
    with pytest.raises(AttributeError):
        C_REACTION(data, 0, ro)


def array_of(data: bytes) -> object:
    import array

    return array.array("B", data)


def test_c_path_selected() -> None:
    """Used by the compiled/installed tls module unless SNIPARSE_PURE is set."""
    if os.environ.get("SNIPARSE_PURE", "") in ("", "0"):
        assert tls._C_SERVER_REACTION is C_REACTION
    code = "import sniparse.tls as t; print(t._C_SERVER_REACTION is None)"
    env = dict(os.environ, SNIPARSE_PURE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=Path(sniparse.__file__).parent.parent)
    assert out.stdout.strip() == "True"


# -- hand-made records -------------------------------------------------------------------------


def test_server_hello_shapes() -> None:
    """The shapes the C code distinguishes, each checked against Python."""
    sv = (43, b"\x03\x04")
    cases: list[tuple[bytes, bool]] = [
        # (message, answered by C)
        (server_hello_message(exts=[sv, (51, b"\x00\x1d" + B.vec16(bytes(32)))]), True),
        (server_hello_message(exts=None), True),                 # no extensions block
        (server_hello_message(exts=[]), True),                   # an empty one
        (server_hello_message(session_id=b""), True),
        (server_hello_message(exts=[sv, (43, b"\x7f\x1c")]), True),  # twice: the last wins
        (server_hello_message(exts=[(43, b"\x03\x04\x00")]), False),  # not 2 bytes
        (server_hello_message(session_id=bytes(33)), False),
        (server_hello_message(random_=tls.HRR_RANDOM, exts=[sv]), True),
        (server_hello_message(version=0x7F12, session_id=None, exts=[sv]), True),
        (server_hello_message(version=0x0304, session_id=None, exts=None), True),
        (server_hello_message(version=0x7F16, session_id=b"", exts=[sv]), True),
        (server_hello_message(comp=1, suite=0xC02F), True),
        (server_hello_message(exts=[(0xFFFF, bytes(300)), (0, b"")]), True),
    ]
    for msg, answered in cases:
        for version in (0x0303, 0x0301, 0x0300, 0x03FF):
            assert check(B.records(msg, version=version)) == answered, msg.hex()
            assert check(bytearray(B.records(msg, version=version))) == answered
        # over two records: always Python's
        assert not check(B.records(msg, [10, len(msg) - 10], version=0x0303))
        # the message ends inside its record: parsed without waiting for the rest
        rec = b"\x16\x03\x03" + (len(msg) + 40).to_bytes(2, "big") + msg
        assert check(rec + bytes(40)) == answered
        assert check(rec) == answered
    # a message with a stray byte or a short extensions length: Python raises, C declines
    msg = server_hello_message(exts=[sv])
    for bad in (msg[:-1], msg + b"\x00"):
        fixed = b"\x02" + (len(bad) - 4).to_bytes(3, "big") + bad[4:]
        assert not check(B.records(fixed, version=0x0303))


def test_alert_shapes() -> None:
    for level in (1, 2, 0, 255):
        for desc in (0, 40, 90, 112, 255):
            body = bytes([level, desc])
            assert check(b"\x15\x03\x03\x00\x02" + body)
            assert check(bytearray(b"\x15\x03\x01\x00\x04" + body + body))
    for rec in (b"\x15\x03\x03\x00\x01\x02\x28", b"\x15\x03\x03\x00\x00\x02\x28",
                b"\x15\x02\x03\x00\x02\x02\x28", b"\x15\x03\x03\x00\x02\x02",
                b"\x15\x03\x03\x48\x01\x02\x28", b"\x17\x03\x03\x00\x02\x02\x28"):
        assert not check(rec)


# -- the server streams of captures -------------------------------------------------------------


def _captures(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
    )


def capture_streams(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, int]]:
    """Every (server stream, start) the pipeline asks about in these captures (deduplicated).

    The Python code looks its C function up in the module namespace on every call (compiled
    or not), so a recorder put there sees every call of the whole pipeline."""
    seen: dict[tuple[bytes, int], None] = {}
    real = tls._C_SERVER_REACTION

    def record(buf: Any, start: int, kit: Any) -> Any:
        seen[(bytes(buf), start)] = None
        return real(buf, start, kit) if real is not None else None

    monkeypatch.setattr(tls, "_C_SERVER_REACTION", record)
    for p in paths:
        try:
            for _ in sniparse.iter_handshakes(str(p)):
                pass
        except SniparseError:
            pass
    monkeypatch.undo()
    return list(seen)


def _check_streams(streams: list[tuple[bytes, int]], mutate: int) -> int:
    answered = 0
    rng = random.Random(5)
    for data, start in streams:
        answered += check(data, start)
        check(bytearray(data), start)
        for _ in range(mutate):
            if len(data) <= start:
                break
            buf = bytearray(data)
            buf[start + rng.randrange(min(len(buf) - start, 200))] = rng.randrange(256)
            check(buf, start)
            check(data[: start + rng.randrange(len(data) - start)], start)
    return answered


def test_fixture_capture_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    streams = capture_streams(_captures(FIXTURES), monkeypatch)
    assert len(streams) > 20
    answered = _check_streams(streams, mutate=40)
    assert answered > len(streams) // 2


@pytest.mark.corpus
def test_corpus_capture_streams(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    streams = capture_streams(_captures(corpus_dir / "files"), monkeypatch)
    assert len(streams) > 50
    answered = _check_streams(streams, mutate=10)
    assert answered > len(streams) // 2


# -- generated records -------------------------------------------------------------------------

_u16 = st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0x0303, 0x0304, 0x7F12, 0x7F1C, 43]))


@st.composite
def server_record(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 5)) == 0:
        body = draw(st.binary(min_size=0, max_size=6))
        return b"\x15" + draw(st.sampled_from([b"\x03\x03", b"\x03\x01", b"\x02\x00"])) + (
            draw(st.sampled_from([len(body), 2, 1, 0]))).to_bytes(2, "big") + body
    exts = draw(st.none() | st.lists(
        st.tuples(st.sampled_from([43, 51, 0, 16, 0xFF01, 0x0A0A]), st.binary(max_size=6))
        | st.tuples(st.just(43), _u16.map(lambda v: v.to_bytes(2, "big"))),
        max_size=5))
    draft = draw(st.booleans())
    msg = server_hello_message(
        version=draw(st.sampled_from([0x0303, 0x0304, 0x7F12, 0x7F16, 0x0301, 0x7E12])),
        random_=draw(st.sampled_from([bytes(32), tls.HRR_RANDOM])),
        session_id=None if draft else draw(st.binary(max_size=33)),
        suite=draw(_u16),
        comp=draw(st.integers(0, 255)),
        exts=exts,
    )
    sizes = draw(st.none() | st.lists(st.integers(1, 80), min_size=1, max_size=3))
    return bytes(B.records(msg, sizes, version=draw(st.sampled_from([0x0303, 0x0301, 0x0304]))))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server_record(), st.integers(0, 3000), st.integers(0, 255), st.binary(max_size=8))
def test_generated_records(rec: bytes, pos: int, val: int, tail: bytes) -> None:
    check(rec)
    check(bytearray(rec + tail))
    buf = bytearray(rec)
    buf[pos % len(buf)] = val
    check(bytes(buf))
    check(rec[: pos % (len(rec) + 1)])


def test_generated_records_mostly_answered() -> None:
    """Well-formed single-record ServerHellos go through C."""
    rng = random.Random(3)
    for i in range(300):
        exts = [(43, b"\x03\x04"), (51, bytes(rng.randrange(40))), (0xFF01, b"\x00")]
        rng.shuffle(exts)
        msg = server_hello_message(session_id=bytes(rng.choice([0, 8, 32])), suite=i,
                                   exts=exts[: rng.randrange(len(exts) + 1)])
        assert check(B.records(msg, version=0x0303))
