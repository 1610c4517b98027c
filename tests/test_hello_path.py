"""The ClientHello path's reuse of repeated field values.

The C parser (``sniparse._speedups.client_hello_fields``) hands out the very same tuple,
bytes or str object for a field whose bytes equal those of a recently parsed hello (a small
direct-mapped cache, compared in full). Checked here: a repeated hello gets the same
objects; values stay exactly the Python parser's however the slots collide and are
replaced; and the fingerprints of hellos sharing such objects match the ones computed
from scratch.

Skipped when the C extension is not built.
"""

from __future__ import annotations

import dataclasses
import importlib
import random
from dataclasses import fields
from typing import Any

import pytest
from conftest import FIXTURES, source_module

from sniparse import fingerprint, tls

try:
    _speedups: Any = importlib.import_module("sniparse._speedups")
    C_FIELDS: Any = getattr(_speedups, "client_hello_fields", None)
except ImportError:
    C_FIELDS = None

pytestmark = pytest.mark.skipif(C_FIELDS is None, reason="the C extension is not built")

NAMES = tuple(f.name for f in fields(tls.ClientHello))
PY: Any = source_module("tls", as_name="sniparse._hello_path_reference_tls")
PY._C_CLIENT_HELLO = None

# Fields whose values come from the cache when their bytes repeat.
SHARED = ("cipher_suites", "compression_methods", "sni", "sni_raw", "server_names", "alpn",
          "alpn_raw", "supported_versions", "supported_groups", "ec_point_formats",
          "signature_algorithms", "key_share_groups")


def _message(name: str) -> bytes:
    """The ClientHello handshake message of a golden hello (one record)."""
    data = (FIXTURES / "hellos" / name).read_bytes()
    assert data[0] == 22 and data[5] == 1
    n = int.from_bytes(data[6:9], "big")
    return data[5 : 9 + n]


def _typed(v: object) -> object:
    if type(v) is tuple:
        return ("tuple", tuple(_typed(x) for x in v))
    return (type(v).__name__, v)


def _c(m: bytes | bytearray) -> tuple[object, ...]:
    values = C_FIELDS(m, 0, len(m), 0x0301, len(m) + 5, 1, tls._is_ip_literal)
    assert values is not None
    return tuple(values)


def _same_as_python(m: bytes, values: tuple[object, ...]) -> None:
    h = PY._parse_ch_message(m, 0, len(m), 0x0301, len(m) + 5, 1)
    for name, a in zip(NAMES, values, strict=True):
        assert _typed(a) == _typed(h.__dict__[name]), name


def test_repeated_hello_shares_objects() -> None:
    m = _message("chrome_like_pq_sni.bin")
    first, again = _c(m), _c(bytearray(m))
    _same_as_python(m, again)
    for name in SHARED:
        i = NAMES.index(name)
        assert first[i] is again[i] or first[i] == () or first[i] is None, name
    exts = NAMES.index("extensions")
    pairs: dict[int, object] = {p[0]: p for p in first[exts]}  # type: ignore[attr-defined]
    for p in again[exts]:  # type: ignore[attr-defined]
        if p[0] not in (21, 41, 51, 0xFE0D):  # bodies that differ per hello: never shared
            assert pairs[p[0]] is p, p[0]


def _cipher_offset(m: bytes | bytearray) -> int:
    sid_len = m[4 + 34]
    return 4 + 35 + sid_len + 2


def test_values_exact_when_slots_collide() -> None:
    """Thousands of hellos differing in a few cipher suites (their lists far
    outnumber the cache's slots), interleaved with repeats: every answer is the Python
    parser's."""
    rng = random.Random(7)
    bases = [_message(n) for n in ("chrome_like_pq_sni.bin", "curl_sni.bin",
                                   "openssl_sni.bin", "python_sni.bin")]
    seen: list[bytes] = []
    for _ in range(3000):
        if seen and rng.random() < 0.3:
            m = rng.choice(seen)
        else:
            b = bytearray(rng.choice(bases))
            cs = _cipher_offset(b)
            n = (b[cs - 2] << 8) | b[cs - 1]
            for _ in range(rng.randint(1, 3)):
                k = cs + 2 * rng.randrange(n // 2)
                b[k : k + 2] = rng.randrange(0x10000).to_bytes(2, "big")
            m = bytes(b)
            seen.append(m)
        _same_as_python(m, _c(m))


def test_fingerprints_of_shared_values() -> None:
    """fingerprints() answers hellos sharing cached objects as it answers fresh ones."""
    for name in ("chrome_like_pq_sni.bin", "curl_sni.bin", "openssl_sni.bin"):
        m = _message(name)
        for _ in range(2):
            ch = tls._parse_ch_message(m, 0, len(m), 0x0301, len(m) + 5, 1)
            py = PY._parse_ch_message(m, 0, len(m), 0x0301, len(m) + 5, 1)
            ref = tls._client_hello_of(tuple(py.__dict__[n] for n in NAMES))
            fp = fingerprint.fingerprints(ch)
            s, md5 = fingerprint.ja3(ref)
            assert (fp.ja3_string, fp.ja3) == (s, md5)
            assert fp.ja4 == fingerprint.ja4(ref)
            assert fp.ja4_r == fingerprint.ja4_r(ref)


def test_fingerprints_of_hellos_sharing_a_list() -> None:
    """Hellos sharing their cipher suite tuple (compared by identity first) but differing
    in another field the fingerprints read get their own answers."""
    m = _message("chrome_like_pq_sni.bin")
    ch = tls._parse_ch_message(m, 0, len(m), 0x0301, len(m) + 5, 1)
    variants = [
        ch,
        dataclasses.replace(ch, signature_algorithms=(0x0403,)),
        dataclasses.replace(ch, supported_groups=(29,)),
        dataclasses.replace(ch, ec_point_formats=(0, 1)),
        dataclasses.replace(ch, supported_versions=(0x0303,)),
        dataclasses.replace(ch, alpn_raw=(b"h2c",), alpn=("h2c",)),
        dataclasses.replace(ch, legacy_version=0x0302),
        dataclasses.replace(ch, extensions=ch.extensions[:-1]),
    ]
    for _ in range(2):
        for h in variants:
            assert h.cipher_suites is ch.cipher_suites
            for transport in ("t", "q"):
                fp = fingerprint.fingerprints(h, transport)
                assert (fp.ja3_string, fp.ja3) == fingerprint.ja3(h)
                assert fp.ja4 == fingerprint.ja4(h, transport)
                assert fp.ja4_r == fingerprint.ja4_r(h, transport)


def test_record_built_in_c_is_the_python_parsers() -> None:
    """Given the class and its field names, the C parser returns the ClientHello itself:
    equal to the Python parser's, field by field and type by type, and to the record
    built from its values."""
    for p in sorted((FIXTURES / "hellos").glob("*.bin")):
        if p.name.startswith("server_"):
            continue
        data = p.read_bytes()
        if data[0] != 22 or data[5] != 1:
            continue
        m = data[5 : 9 + int.from_bytes(data[6:9], "big")]
        if len(m) > int.from_bytes(data[3:5], "big"):
            continue  # spread over records
        h = C_FIELDS(m, 0, len(m), 0x0301, len(m) + 5, 1, tls._is_ip_literal,
                     tls.ClientHello, tls._CH_FIELDS)
        if h is None:
            continue
        assert type(h) is tls.ClientHello
        assert h == tls._client_hello_of(_c(m))
        _same_as_python(m, tuple(h.__dict__[n] for n in NAMES))
        assert list(h.__dict__) == list(NAMES)
    with pytest.raises(TypeError):
        C_FIELDS(b"", 0, 0, 0, 0, 1, tls._is_ip_literal, tls.ClientHello, ("a",))
