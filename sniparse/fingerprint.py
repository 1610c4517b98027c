"""TLS client and server fingerprints: JA3, JA3S, JA4, JA4_r.

Pure functions of a parsed :class:`~sniparse.tls.ClientHello` / :class:`~sniparse.tls.ServerHello`.

JA3 (salesforce/ja3): ``SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats``
with each list's values in decimal, wire order, joined by ``-``; GREASE values (RFC 8701) are
left out of the cipher, extension and group lists; the fingerprint is the MD5 of that string.
The legacy ``client_version`` is used, not supported_versions.

SSLv2-format hellos: salesforce/ja3 only looks at records that start with content type 22, and
tshark computes no ``tls.handshake.ja3`` for them either, so neither gives a JA3 for an
SSLv2-format hello. :func:`ja3` still returns one (built from the cipher specs whose first byte
is 0, i.e. the TLS cipher suites, RFC 5246 Appendix E.2, and empty extension lists) so such a
client can be grouped; callers that must match those tools can skip ``ch.sslv2`` hellos.

JA4 (FoxIO, technical_details/JA4.md): ``a_b_c`` where

* a = transport (``t``/``q``/``d``) + version (highest non-GREASE supported_versions value, else
  legacy_version: ``13 12 11 10 s3 s2``, DTLS ``d1 d2 d3``, unknown ``00``) + ``d`` when the
  server_name extension is present else ``i`` + 2-digit cipher count + 2-digit extension count
  (GREASE excluded, capped at 99) + first and last character of the first ALPN value (``00``
  when none or empty; when its first or last byte is not ASCII alphanumeric, the first and last
  characters of its hex form);
* b = first 12 hex digits of SHA-256 over the sorted 4-hex-digit cipher list, comma separated;
* c = first 12 hex digits of SHA-256 over the sorted extension list without SNI (0) and ALPN
  (16), then, when there are signature algorithms, ``_`` and the signature algorithms in wire
  order;
* b or c is ``000000000000`` when its list is empty.

JA4_r is the same with the lists in clear instead of hashed.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import md5, sha256
from struct import Struct
from typing import NamedTuple

from .tls import ClientHello, ServerHello, is_grease

__all__ = [
    "Fingerprints",
    "fingerprints",
    "ja3",
    "ja3_string",
    "ja3s",
    "ja4",
    "ja4_alpn",
    "ja4_r",
    "ja4_version",
]

_JA4_VERSIONS: dict[int, str] = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}

_EMPTY_HASH = "000000000000"
_TWO_DIGITS = tuple(f"{i:02d}" for i in range(100))

# RFC 8701 §2: the sixteen GREASE values 0x0a0a, 0x1a1a, ... 0xfafa. A set lookup is cheaper
# than the bit test of :func:`~sniparse.tls.is_grease` on lists walked for every hello.
_GREASE = frozenset((x << 8) | x for x in range(0x0A, 0x100, 0x10))


class _DecimalCache(dict[int, str]):
    """``str(v)`` for 16-bit wire values, remembered (at most 65,536 entries)."""

    def __missing__(self, key: int) -> str:
        v = self[key] = str(key)
        return v


_DEC = _DecimalCache()
_dec = _DEC.__getitem__
_PACKERS: dict[int, Callable[..., bytes]] = {}


def _hex4(values: list[int]) -> str:
    """``"002f,0035,..."``: 4-hex-digit values, comma separated, in one C call per list."""
    n = len(values)
    pack = _PACKERS.get(n)
    if pack is None:
        pack = _PACKERS[n] = Struct(f">{n}H").pack
    return pack(*values).hex(",", 2)


def _nogrease(values: tuple[int, ...]) -> list[int]:
    g = _GREASE
    return [v for v in values if v not in g]


def ja3_string(ch: ClientHello) -> str:
    """The JA3 text of a ClientHello (before hashing), as salesforce/ja3 builds it."""
    g = _GREASE
    return ",".join(
        (
            _dec(ch.legacy_version),
            "-".join(map(_dec, _nogrease(ch.cipher_suites))),
            "-".join([_dec(t) for t, _ in ch.extensions if t not in g]),
            "-".join(map(_dec, _nogrease(ch.supported_groups))),
            "-".join(map(_dec, ch.ec_point_formats)),
        )
    )


def ja3(ch: ClientHello) -> tuple[str, str]:
    """``(ja3_string, md5_hex)`` of a ClientHello, exactly as salesforce/ja3 computes them."""
    s = ja3_string(ch)
    return s, md5(s.encode("ascii"), usedforsecurity=False).hexdigest()


def ja3s(sh: ServerHello) -> tuple[str, str]:
    """``(ja3s_string, md5_hex)`` of a ServerHello: ``SSLVersion,Cipher,SSLExtension``
    (salesforce/ja3's JA3S; GREASE extension types left out)."""
    s = ",".join(
        (
            str(sh.legacy_version),
            str(sh.cipher_suite),
            "-".join([str(t) for t, _ in sh.extensions if not is_grease(t)]),
        )
    )
    return s, md5(s.encode("ascii"), usedforsecurity=False).hexdigest()


def ja4_version(ch: ClientHello) -> str:
    """JA4's two-character version: highest non-GREASE supported_versions value, else the
    legacy version; ``00`` when unknown."""
    sv = _nogrease(ch.supported_versions)
    v = max(sv) if sv else ch.legacy_version
    return _JA4_VERSIONS.get(v, "00")


def _alnum(b: int) -> bool:
    return 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A


def ja4_alpn(ch: ClientHello) -> str:
    """JA4's ALPN characters: first and last of the first ALPN value (``00`` when none)."""
    if not ch.alpn_raw:
        return "00"
    first = ch.alpn_raw[0]
    if not first:
        return "00"
    if _alnum(first[0]) and _alnum(first[-1]):
        return chr(first[0]) + chr(first[-1])
    h = first.hex()
    return h[0] + h[-1]


def _ja4_parts(ch: ClientHello, transport: str) -> tuple[str, str, str]:
    g = _GREASE
    return _ja4_from(ch, transport, [c for c in ch.cipher_suites if c not in g],
                     [t for t, _ in ch.extensions if t not in g])


def _ja4_from(
    ch: ClientHello, transport: str, ciphers: list[int], exts: list[int]
) -> tuple[str, str, str]:
    """JA4 parts a, b (clear) and c (clear) from GREASE-free cipher and extension lists
    (``ciphers`` is sorted in place)."""
    g = _GREASE
    sni = "d" if 0 in exts else "i"
    a = "".join((transport, ja4_version(ch), sni, _TWO_DIGITS[min(len(ciphers), 99)],
                 _TWO_DIGITS[min(len(exts), 99)], ja4_alpn(ch)))
    ciphers.sort()
    b = _hex4(ciphers) if ciphers else ""
    rest = [t for t in exts if t != 0 and t != 16]
    if not rest:
        return a, b, ""
    rest.sort()
    c = _hex4(rest)
    sigs = [v for v in ch.signature_algorithms if v not in g]
    if sigs:
        c += "_" + _hex4(sigs)
    return a, b, c


def ja4(ch: ClientHello, transport: str = "t") -> str:
    """The JA4 fingerprint of a ClientHello (``transport``: ``t`` TCP, ``q`` QUIC, ``d`` DTLS)."""
    a, b, c = _ja4_parts(ch, transport)
    hb = sha256(b.encode("ascii")).hexdigest()[:12] if b else _EMPTY_HASH
    hc = sha256(c.encode("ascii")).hexdigest()[:12] if c else _EMPTY_HASH
    return f"{a}_{hb}_{hc}"


def ja4_r(ch: ClientHello, transport: str = "t") -> str:
    """JA4_r: the JA4 with its cipher and extension / signature-algorithm lists in clear."""
    a, b, c = _ja4_parts(ch, transport)
    return f"{a}_{b}_{c}"


class Fingerprints(NamedTuple):
    """Every client fingerprint of one hello, computed together."""

    ja3_string: str
    ja3: str
    ja4: str
    ja4_r: str


#: Remembered fingerprints: see :func:`fingerprints`. Key: the hello's short fields and the
#: lengths and ends of its long lists; value: those lists in full, and the answer.
_FP_CACHE: dict[
    tuple[object, ...],
    tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], Fingerprints],
] = {}
_FP_CACHE_MAX = 4096


def fingerprints(ch: ClientHello, transport: str = "t") -> Fingerprints:
    """JA3 (string and MD5), JA4 and JA4_r of a ClientHello in one call.

    A capture holds many hellos from few client programs, so results are remembered by the
    exact hello fields they depend on (at most 4,096 entries; the table is emptied when
    full). The answer is the same as :func:`ja3`, :func:`ja4` and :func:`ja4_r` give.

    The table is looked up by the short fields (versions, extension types, first ALPN
    value, transport) and the lengths and first and last values of the cipher list, then
    the cipher, group, point format and signature algorithm lists are compared in full: an
    entry answers only a hello equal in every field the fingerprints read. Measured with
    callgrind on the handshake benchmark: hashing a key holding all those lists cost ~4,000
    instructions a hello (~65 values), comparing them with a remembered entry a few hundred
    (mostly the same int objects). Two hellos that differ only in the compared lists share
    a slot: the later one replaces the earlier, so each costs a computation, never a wrong
    answer.

    The key's fields are read from the hello's instance dict: ClientHello is an ordinary
    (non-native) class, and a dict lookup is cheaper than the attribute lookup through its
    type, once per connection.
    """
    d = ch.__dict__
    alpn_raw: tuple[bytes, ...] = d["alpn_raw"]
    alpn0 = alpn_raw[0] if alpn_raw else None
    # The types stay objects (typed as ints, each would be unboxed and boxed again).
    extensions: tuple[tuple[object, bytes], ...] = d["extensions"]
    types = tuple([t for t, _ in extensions])
    suites: tuple[int, ...] = d["cipher_suites"]
    groups: tuple[int, ...] = d["supported_groups"]
    formats: tuple[int, ...] = d["ec_point_formats"]
    sig_algs: tuple[int, ...] = d["signature_algorithms"]
    n = len(suites)
    key = (d["legacy_version"], types, d["supported_versions"], alpn0, transport,
           n, suites[0] if n else None, suites[-1] if n else None)
    hit = _FP_CACHE.get(key)
    # The C parser hands out the very same tuple for a list whose bytes repeat, so most
    # hits are identical objects: ``is`` first spares walking them (~1,000 instructions a
    # hello, callgrind on the handshake benchmark).
    if (hit is not None and (hit[0] is suites or hit[0] == suites)
            and (hit[1] is groups or hit[1] == groups)
            and (hit[2] is formats or hit[2] == formats)
            and (hit[3] is sig_algs or hit[3] == sig_algs)):
        return hit[4]
    g = _GREASE
    ciphers = [c for c in ch.cipher_suites if c not in g]
    exts = [t for t, _ in ch.extensions if t not in g]
    s3 = ",".join(
        (
            _dec(ch.legacy_version),
            "-".join(map(_dec, ciphers)),
            "-".join(map(_dec, exts)),
            "-".join(map(_dec, _nogrease(ch.supported_groups))),
            "-".join(map(_dec, ch.ec_point_formats)),
        )
    )
    a, b, c = _ja4_from(ch, transport, ciphers, exts)
    hb = sha256(b.encode("ascii")).hexdigest()[:12] if b else _EMPTY_HASH
    hc = sha256(c.encode("ascii")).hexdigest()[:12] if c else _EMPTY_HASH
    fp = Fingerprints(
        s3,
        md5(s3.encode("ascii"), usedforsecurity=False).hexdigest(),
        f"{a}_{hb}_{hc}",
        f"{a}_{b}_{c}",
    )
    if len(_FP_CACHE) >= _FP_CACHE_MAX:
        _FP_CACHE.clear()
    _FP_CACHE[key] = (suites, groups, formats, sig_algs, fp)
    return fp
