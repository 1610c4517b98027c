"""The C ClientHello parser (``sniparse._speedups.client_hello_fields``) against the Python one.

The C function parses the common case of :func:`sniparse.tls._parse_ch_message` and returns
every ClientHello field value, or None to leave the hello to the Python parser. Its contract:
for any input it returns None or exactly the values the Python parser gives (same values,
same types), never a different answer, never a crash. Checked here on every golden hello,
every ClientHello of every fixture and corpus capture, every prefix of them, single-byte
mutations, odd buffers and hypothesis-generated hellos. The reference is the Python parser
loaded from source with the C path switched off.

Skipped when the C extension is not built.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pickle
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
    C_FIELDS: Callable[..., tuple[object, ...] | None] | None = getattr(
        _speedups, "client_hello_fields", None
    )
except ImportError:
    C_FIELDS = None

pytestmark = pytest.mark.skipif(C_FIELDS is None, reason="the C extension is not built")

HELLOS = FIXTURES / "hellos"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".xz", ".zst", ".bz2")
NAMES = tuple(f.name for f in fields(tls.ClientHello))

# A hello message to parse: (message bytes, record_version, wire_len, records).
Msg = tuple[bytes, int, int, int]


B = module_from_path("build_hellos", HELLOS / "build_hellos.py")


def _reference() -> ModuleType:
    """tls.py from source, the C path off: the Python parser whatever the installed build.
    (Registered in sys.modules under its own name: dataclasses look their module up.)"""
    mod = source_module("tls", as_name="sniparse._reference_tls")
    mod._C_CLIENT_HELLO = None
    return mod


PY = _reference()


def typed(v: object) -> object:
    """``v`` with the type of every value in it, tuples walked: ``True`` and ``1`` differ."""
    if type(v) is tuple:
        return ("tuple", tuple(typed(x) for x in v))
    return (type(v).__name__, v)


def py_values(d: Any, msg: int, end: int, rv: int, wl: int, rec: int) -> tuple[object, ...] | None:
    """The Python parser's field values, or None when it raises (a documented error)."""
    try:
        h = PY._parse_ch_message(d, msg, end, rv, wl, rec)
    except SniparseError:
        return None
    except IndexError:
        # ``end`` beyond the buffer: not a call the framers make; C must decline it.
        return None
    return tuple(h.__dict__[n] for n in NAMES)


def check(d: Any, msg: int, end: int, rv: int = 0x0301, wl: int = 0, rec: int = 1) -> bool:
    """C gives None or exactly the Python parser's values; True when C answered."""
    assert C_FIELDS is not None
    c = C_FIELDS(d, msg, end, rv, wl, rec, tls._is_ip_literal)
    if c is None:
        return False
    py = py_values(d, msg, end, rv, wl, rec)
    assert py is not None, f"C parsed what Python refuses: {bytes(d[msg:end]).hex()}"
    assert len(c) == len(NAMES)
    for name, a, b in zip(NAMES, c, py, strict=True):
        assert typed(a) == typed(b), (name, a, b, bytes(d[msg:end]).hex())
    return True


def messages_of(stream: bytes) -> list[Msg]:
    """The ClientHello messages the Python framer hands to its parser for ``stream``."""
    got: list[Msg] = []
    orig = PY._parse_ch_message

    def record(d: Any, msg: int, end: int, rv: int, wl: int, rec: int) -> Any:
        got.append((bytes(d[msg:end]), rv, wl, rec))
        return orig(d, msg, end, rv, wl, rec)

    PY._parse_ch_message = record
    try:
        PY.read_client_hello(stream)
    except SniparseError:
        pass
    finally:
        PY._parse_ch_message = orig
    return got


def golden() -> list[tuple[str, Msg]]:
    out = []
    for p in sorted(HELLOS.glob("*.bin")):
        if p.name.startswith("server_"):
            continue
        for m in messages_of(p.read_bytes()):
            out.append((p.name, m))
    return out


GOLDEN = golden()
COMMON = ["chrome_like_pq_sni.bin", "chrome_like_pq_nosni.bin", "python_sni.bin",
          "openssl_sni.bin", "openssl_tls12_sni.bin", "curl_sni.bin", "gnutls_sni.bin",
          "sni_trailing_dot.bin", "sni_ip_literal.bin", "three_records_sni.bin",
          "no_extensions_tls10_nosni.bin", "sni_empty_body.bin"]


def test_golden_hellos_found() -> None:
    names = {n for n, _ in GOLDEN}
    assert "sslv2_nosni.bin" not in names  # no handshake message: never reaches the parser
    assert len(names) >= 20


@pytest.mark.parametrize(("name", "m"), GOLDEN, ids=[n for n, _ in GOLDEN])
def test_golden_hello(name: str, m: Msg) -> None:
    data, rv, wl, rec = m
    answered = check(data, 0, len(data), rv, wl, rec)
    if name in COMMON:
        assert answered, f"C declined the ordinary hello {name}"
    # The same message at an offset, between other bytes, in every buffer type.
    padded = b"\x16\x03\x01" + data + b"\xff" * 7
    for buf in (padded, bytearray(padded), memoryview(padded)):
        assert check(buf, 3, 3 + len(data), rv, wl, rec) == answered


@pytest.mark.parametrize(("name", "m"), GOLDEN, ids=[n for n, _ in GOLDEN])
def test_golden_prefixes(name: str, m: Msg) -> None:
    """Every prefix as a complete message (``end`` moved), and as a short buffer."""
    data = m[0]
    assert C_FIELDS is not None
    for cut in range(len(data)):
        check(data, 0, cut)
        # ``end`` beyond the buffer (no framer calls it so): C declines.
        assert C_FIELDS(data[:cut], 0, len(data), 0, 0, 1, tls._is_ip_literal) is None


@pytest.mark.parametrize(("name", "m"), GOLDEN, ids=[n for n, _ in GOLDEN])
def test_golden_single_byte_mutations(name: str, m: Msg) -> None:
    data = m[0]
    rng = random.Random(len(data))
    buf = bytearray(data)
    for i in range(len(data)):
        v = data[i]
        for nv in {v ^ 0xFF, (v + 1) & 0xFF, (v - 1) & 0xFF, 0, 0x80, rng.randrange(256)}:
            if nv == v:
                continue
            buf[i] = nv
            check(bytes(buf), 0, len(buf))
        buf[i] = v


def test_public_entry_points_agree() -> None:
    """The compiled parser (C path when built) and the reference give the same hellos."""
    for p in sorted(HELLOS.glob("*.bin")):
        if p.name.startswith("server_"):
            continue
        data = p.read_bytes()
        a = tls.read_client_hello(data)
        b = PY.read_client_hello(data)
        assert a is not None and b is not None
        assert typed(tuple(a[0].__dict__[n] for n in NAMES)) == typed(
            tuple(b[0].__dict__[n] for n in NAMES))
        assert a[1] == b[1]
        assert type(a[0]) is tls.ClientHello and a[0] == sniparse.parse_client_hello(data)


def test_odd_arguments_decline() -> None:
    assert C_FIELDS is not None
    data = (HELLOS / "python_sni.bin").read_bytes()[5:]
    ip = tls._is_ip_literal
    assert C_FIELDS(data, 0, len(data), 0, 0, 1, ip) is not None
    for d, msg, end in [(data, -1, len(data)), (data, 0, len(data) + 1), (data, 5, 4),
                        (data, 2**70, 3), (data, 0, 2**70), (data, 0, 1.5),
                        ("text", 0, 4), (memoryview(data).cast("H"), 0, 10),
                        (memoryview(data)[::2], 0, 10)]:
        assert C_FIELDS(d, msg, end, 0, 0, 1, ip) is None
    with pytest.raises(TypeError):
        C_FIELDS(data, 0, len(data))
    # A failing is_ip callable makes C decline (the Python parser would raise the same).
    lit = B.client_hello_message([0x1301], [B.sni_ext(b"192.0.2.1")])

    def boom(name: str) -> bool:
        raise RuntimeError(name)

    assert C_FIELDS(lit, 0, len(lit), 0, 0, 1, boom) is None
    assert C_FIELDS(lit, 0, len(lit), 0, 0, 1, lambda s: 1) is None  # not a bool


def test_c_path_selected() -> None:
    """Used by the compiled/installed tls module unless SNIPARSE_PURE is set."""
    if os.environ.get("SNIPARSE_PURE", "") in ("", "0"):
        assert tls._C_CLIENT_HELLO is C_FIELDS
    code = "import sniparse.tls as t; print(t._C_CLIENT_HELLO is None)"
    env = dict(os.environ, SNIPARSE_PURE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=Path(sniparse.__file__).parent.parent)
    assert out.stdout.strip() == "True"


# -- the hellos of captures ------------------------------------------------------------------


def _captures(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
    )


def capture_messages(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> list[Msg]:
    """Every ClientHello message sniparse parses in these captures (deduplicated).

    The parser looks up its C function in the module namespace on every call (compiled or
    not), so a recorder put there sees every hello of the whole pipeline."""
    seen: dict[Msg, None] = {}
    real = tls._C_CLIENT_HELLO

    def record(d: Any, msg: int, end: int, rv: int, wl: int, rec: int, ip: Any, *kit: Any) -> Any:
        seen[(bytes(d[msg:end]), rv, wl, rec)] = None
        return real(d, msg, end, rv, wl, rec, ip, *kit) if real is not None else None

    monkeypatch.setattr(tls, "_C_CLIENT_HELLO", record)
    for p in paths:
        try:
            for _ in sniparse.iter_handshakes(str(p)):
                pass
        except SniparseError:
            pass
    monkeypatch.undo()
    return list(seen)


def _check_messages(msgs: list[Msg], mutate: int) -> int:
    answered = 0
    rng = random.Random(5)
    for data, rv, wl, rec in msgs:
        answered += check(data, 0, len(data), rv, wl, rec)
        check(bytearray(data), 0, len(data), rv, wl, rec)
        for _ in range(mutate):
            buf = bytearray(data)
            buf[rng.randrange(len(buf))] = rng.randrange(256)
            check(bytes(buf), 0, len(buf), rv, wl, rec)
            cut = rng.randrange(len(data))
            check(data, 0, cut, rv, wl, rec)
    return answered


def test_fixture_capture_hellos(monkeypatch: pytest.MonkeyPatch) -> None:
    msgs = capture_messages(_captures(FIXTURES), monkeypatch)
    assert len(msgs) > 20
    answered = _check_messages(msgs, mutate=40)
    assert answered > len(msgs) // 2


@pytest.mark.corpus
def test_corpus_capture_hellos(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    msgs = capture_messages(_captures(corpus_dir / "files"), monkeypatch)
    assert len(msgs) > 100
    answered = _check_messages(msgs, mutate=10)
    assert answered > len(msgs) // 2


# -- generated hellos ------------------------------------------------------------------------

_NAME_CHARS = st.sampled_from(list(b"abcxyz019.-:[]_") + [0x00, 0x7F, 0x80, 0xC3, 0xBC, 0xFF])
_names = st.lists(_NAME_CHARS, max_size=24).map(bytes)
_u16 = st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0x0A0A, 0x1301, 29, 0x0304, 0x11EC]))


@st.composite
def extension(draw: st.DrawFn) -> tuple[int, bytes]:
    kind = draw(st.integers(0, 12))
    if kind == 0:
        names = draw(st.lists(_names, min_size=1, max_size=3))
        return B.sni_ext(*names, name_type=draw(st.sampled_from([0, 0, 0, 1, 255])))
    if kind == 1:
        return B.alpn_ext(*draw(st.lists(_names, max_size=4)))
    if kind in (2, 3):
        return B.u16_list_ext(draw(st.sampled_from([10, 13])), draw(st.lists(_u16, max_size=8)))
    if kind == 4:
        return B.u16_list_ext(43, draw(st.lists(_u16, max_size=6)), len_bytes=1)
    if kind == 5:
        shares = draw(st.lists(st.tuples(_u16, st.integers(0, 40)), max_size=4))
        return B.key_share_ext(shares, random.Random(1))
    if kind == 6:
        return (11, B.vec8(draw(st.binary(max_size=4))))
    if kind == 7:
        return (21, bytes(draw(st.integers(0, 300))))
    # raw bodies, for decoded types too (often malformed), and flags
    t = draw(st.sampled_from([0, 10, 11, 13, 16, 21, 41, 42, 43, 51, 0xFE0D, 0xFFCE, 0x0A0A,
                              23, 65281, 0xFFFF]))
    return (t, draw(st.binary(max_size=12)))


@st.composite
def hello(draw: st.DrawFn) -> bytes:
    exts = draw(st.none() | st.lists(extension(), max_size=10))
    msg: bytes = B.client_hello_message(
        draw(st.lists(_u16, max_size=20)),
        exts,
        version=draw(st.sampled_from([0x0303, 0x0301, 0x0300, 0x0304, 0x0203])),
        session_id=draw(st.binary(max_size=33)),
        compression=draw(st.binary(max_size=3)),
        rng=random.Random(draw(st.integers(0, 9))),
    )
    return msg


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hello(), st.integers(0, 3000), st.integers(0, 255))
def test_generated_hellos(msg: bytes, pos: int, val: int) -> None:
    check(msg, 0, len(msg))
    buf = bytearray(msg)
    buf[pos % len(buf)] = val
    check(bytes(buf), 0, len(buf))
    check(msg, 0, pos % (len(msg) + 1))


def test_generated_hellos_mostly_answered() -> None:
    """Well-formed generated hellos with ASCII names and no duplicates go through C."""
    rng = random.Random(11)
    answered = 0
    for i in range(300):
        names = [b"host%d.example" % i, b"10.0.0.%d" % (i % 256), b"[::%x]" % i, b"a.b."]
        exts = [B.sni_ext(rng.choice(names)), B.alpn_ext(b"h2", b"http/1.1"),
                B.u16_list_ext(10, [29, 23]), B.u16_list_ext(13, [0x0403]),
                B.u16_list_ext(43, [0x0304], len_bytes=1), (11, b"\x01\x00"),
                B.key_share_ext([(29, 32)], rng), (21, bytes(rng.randrange(50))),
                (41, b"\x00"), (42, b""), (0xFE0D, b"\x00"), (0xFFCE, b"x")]
        rng.shuffle(exts)
        msg = B.client_hello_message([0x1301, 0xC02F], exts[: rng.randrange(len(exts) + 1)])
        answered += check(msg, 0, len(msg))
    assert answered == 300



# -- the record constructor ------------------------------------------------------------------


def test_new_record_builds_what_the_dataclass_builds() -> None:
    new = getattr(_speedups, "new_record", None)
    assert new is not None
    data = (HELLOS / "chrome_like_pq_sni.bin").read_bytes()
    ref = PY.parse_client_hello(data)
    values = tuple(ref.__dict__[n] for n in NAMES)
    want = tls.ClientHello(*values)  # the generated __init__
    got = new(tls.ClientHello, NAMES, values)
    assert type(got) is tls.ClientHello and got == want
    assert list(got.__dict__.items()) == list(want.__dict__.items())
    assert repr(got) == repr(want) and hash(got) == hash(want)
    assert pickle.loads(pickle.dumps(got)) == want
    assert dataclasses.replace(got, sni="x").sni == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.sni = "y"  # type: ignore[misc]
    if os.environ.get("SNIPARSE_PURE", "") in ("", "0"):
        assert tls._C_NEW_RECORD is new
        assert list(tls._new_client_hello(*values).__dict__.items()) == list(
            want.__dict__.items())
    for bad in [(tls.ClientHello, NAMES, values[:-1]), (tls.ClientHello, list(NAMES), values),
                ("ClientHello", NAMES, values), (tls.ClientHello, (1,), (2,)),
                (tls.ClientHello, NAMES)]:
        with pytest.raises(TypeError):
            new(*bad)
    # object.__setattr__'s own checks still apply: a read-only attribute stays read-only.
    with pytest.raises(AttributeError):
        new(tls.ClientHello, ("extension_types",), ((),))


def _same_record(got: Any, want: Any) -> None:
    """``got`` (made by the C path) is indistinguishable from ``want`` (the constructor's)."""
    assert type(got) is type(want) and got == want and want == got
    assert list(got.__dict__.items()) == list(want.__dict__.items())
    for f in fields(want):
        assert getattr(got, f.name) is getattr(want, f.name) or \
            getattr(got, f.name) == getattr(want, f.name)
    assert repr(got) == repr(want) and hash(got) == hash(want)
    assert dataclasses.asdict(got) == dataclasses.asdict(want)
    assert dataclasses.astuple(got) == dataclasses.astuple(want)
    if "<locals>" not in type(want).__qualname__:  # pickle finds classes by name
        back = pickle.loads(pickle.dumps(got))
        assert back == want and list(back.__dict__.items()) == list(want.__dict__.items())
    first = fields(want)[0].name
    assert dataclasses.replace(got, **{first: getattr(want, first)}) == want
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(got, first, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(got, first)
    assert got.__dict__ is not want.__dict__


def test_new_record_objects_match_constructed_ones() -> None:
    """Every record class the C code builds, against the class constructor: the C path
    fills the instance ``__dict__`` directly instead of one ``object.__setattr__`` per field."""
    new = _speedups.new_record
    for path in sorted(HELLOS.glob("*.bin"))[:20]:
        try:
            ref = PY.parse_client_hello(path.read_bytes())
        except SniparseError:
            continue
        values = tuple(ref.__dict__[n] for n in NAMES)
        want = tls.ClientHello(*values)
        _same_record(new(tls.ClientHello, NAMES, values), want)
        # An equal tuple of the same names (compiled callers may build one per call).
        _same_record(new(tls.ClientHello, tuple(n for n in NAMES), values), want)
        assert want.max_version == new(tls.ClientHello, NAMES, values).max_version
    sh_values = (0x0303, 0x0303, bytes(32), b"\x01" * 32, 0x1301, 0, ((43, b"\x03\x04"),),
                 0x0304, False, False)
    sh = tls.ServerHello(*sh_values)
    _same_record(new(tls.ServerHello, tls._SH_FIELDS, sh_values), sh)
    al = tls.Alert(2, 112)
    _same_record(new(tls.Alert, tls._AL_FIELDS, (2, 112)), al)
    sr_values = ("server_hello", 99, sh, None, 22, ())
    _same_record(new(tls.ServerReaction, tls._SR_FIELDS, sr_values),
                 tls.ServerReaction(*sr_values))
    # The records server_reaction builds in C, against the constructor's.
    body = (b"\x03\x03" + bytes(32) + b"\x20" + b"\x01" * 32 + b"\x13\x01\x00"
            + b"\x00\x06" + b"\x00\x2b\x00\x02\x03\x04")
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    rec = b"\x16\x03\x03" + len(msg).to_bytes(2, "big") + msg
    got = _speedups.server_reaction(rec, 0, tls._SR_KIT)
    assert got is not None
    _same_record(got.server_hello, tls.ServerHello(0x0303, 0x0303, bytes(32), b"\x01" * 32,
                                                   0x1301, 0, ((43, b"\x03\x04"),), 0x0304,
                                                   False, False))
    _same_record(got, tls.ServerReaction("server_hello", len(rec), got.server_hello, None,
                                         22, ()))
    got = _speedups.server_reaction(b"\x15\x03\x03\x00\x02\x02\x28", 0, tls._SR_KIT)
    _same_record(got.alert, tls.Alert(2, 40))
    _same_record(got, tls.ServerReaction("alert", 7, None, tls.Alert(2, 40), 21, ()))


def test_new_record_falls_back_where_a_dict_would_differ() -> None:
    """Classes whose instances cannot simply take a filled ``__dict__`` (slots, a data
    descriptor named like a field, a class changed after its first record) get the
    ``object.__setattr__`` calls, with their effects and errors."""
    new = _speedups.new_record

    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int
        b: str = "x"

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        a: int
        b: str

    for _ in range(3):  # the first call checks the class, later ones reuse the answer
        _same_record(new(Plain, ("a", "b"), (1, "y")), Plain(1, "y"))
        got = new(Slotted, ("a", "b"), (1, "y"))
        assert got == Slotted(1, "y") and not hasattr(got, "__dict__")
    # A repeated name: first position, last value, as the attribute stores leave it.
    assert new(Plain, ("a", "b", "a"), (1, "y", 2)).__dict__ == {"a": 2, "b": "y"}
    # The class changes after records were made: a data descriptor now owns "b".
    seen: list[object] = []
    Plain.b = property(lambda self: "prop", lambda self, v: seen.append(v))  # type: ignore
    got = new(Plain, ("a", "b"), (1, "z"))
    assert seen == ["z"] and got.__dict__ == {"a": 1} and got.b == "prop"
    del Plain.b
    assert new(Plain, ("a", "b"), (3, "w")).__dict__ == {"a": 3, "b": "w"}
    # Many classes (more than the C code remembers) stay right.
    for i in range(40):
        cls = dataclasses.make_dataclass(f"R{i}", [("v", int)], frozen=True)
        got = new(cls, ("v",), (i,))
        assert got == cls(i) and got.__dict__ == {"v": i}
