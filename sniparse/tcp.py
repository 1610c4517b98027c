"""TCP header fields and flag constants.

The per-packet TCP header read lives in :mod:`sniparse.decode` (it is a handful of lines
inside the hot loop); this module holds the shapes shared with the flow table, the
direction key, flag names and :func:`parse_tcp_options` for the rarer callers that want the
options decoded (RFC 9293 §3.2).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

__all__ = [
    "ACK",
    "CWR",
    "ECE",
    "FIN",
    "FLAG_NAMES",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "Segment",
    "flag_text",
    "flow_key",
    "parse_tcp_options",
]

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
URG: Final = 0x20
ECE: Final = 0x40
CWR: Final = 0x80

#: Flag bit -> the letter tcpdump prints for it, lowest bit first.
FLAG_NAMES: dict[int, str] = {
    FIN: "F",
    SYN: "S",
    RST: "R",
    PSH: "P",
    ACK: ".",
    URG: "U",
    ECE: "E",
    CWR: "W",
}


class Segment(NamedTuple):
    """One decoded TCP segment (inner packet when tunnelled).

    Addresses are packed bytes (4 for IPv4, 16 for IPv6). ``payload`` is the TCP payload as
    captured; ``payload_len`` is its length on the wire (from the IP length): when the
    snaplen cut the frame, ``len(payload) < payload_len``. ``options`` holds the raw TCP
    option bytes. ``outer`` is ``(outer_src, outer_dst)`` packed addresses of the outermost
    IP header when the segment was decapsulated from a tunnel, else None. ``vlan`` lists
    802.1Q/802.1ad VLAN ids outermost first.
    """

    frame: int
    ts_ns: int
    ip_version: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes
    payload_len: int
    options: bytes
    outer: tuple[bytes, bytes] | None
    vlan: tuple[int, ...]


def flow_key(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    """The direction key of a segment: ``src + dst + sport(2) + dport(2)``.

    For Ethernet + IPv4 without options this is exactly ``frame[26:38]``, which is what
    lets the fast path look flows up without decoding a packet.
    """
    return src + dst + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")


def flag_text(flags: int) -> str:
    """The flags as tcpdump letters, e.g. ``"S."`` for SYN+ACK, ``"none"`` for none."""
    out = "".join(name for bit, name in FLAG_NAMES.items() if flags & bit)
    return out or "none"


# Option kinds (IANA "TCP Option Kind Numbers").
_OPT_EOL: Final = 0
_OPT_NOP: Final = 1
_OPT_MSS: Final = 2  # RFC 9293 §3.2
_OPT_WSCALE: Final = 3  # RFC 7323 §2
_OPT_SACK_PERM: Final = 4  # RFC 2018 §2
_OPT_SACK: Final = 5  # RFC 2018 §3
_OPT_TIMESTAMPS: Final = 8  # RFC 7323 §3
_OPT_MPTCP: Final = 30  # RFC 8684
_OPT_TFO: Final = 34  # RFC 7413 §4.1.1
_OPT_EXP: Final = 254  # RFC 6994 experimental; 0xF989 is the pre-IANA TFO magic


def parse_tcp_options(options: bytes) -> dict[str, Any]:
    """Decode raw TCP option bytes (``Segment.options``) into a dict.

    Keys present only when the option is: ``mss`` (int), ``wscale`` (int),
    ``sack_permitted`` (True), ``sack`` (list of ``(left, right)`` edges), ``timestamps``
    (``(tsval, tsecr)``), ``tfo_cookie`` (bytes; empty for a cookie request, RFC 7413 §4.1.1,
    kind 34 or the experimental kind 254 with magic 0xF989), ``mptcp`` (True), ``unknown``
    (list of kinds not listed here, wire order), ``malformed`` (a sentence, when an option
    length is impossible; parsing stops there). Never raises; the work is bounded by the
    40 bytes an option area can hold (longer input is read the same way).
    """
    out: dict[str, Any] = {}
    n = len(options)
    p = 0
    while p < n:
        kind = options[p]
        if kind == _OPT_EOL:
            break
        if kind == _OPT_NOP:
            p += 1
            continue
        if p + 2 > n:
            out["malformed"] = f"option kind {kind} at byte {p} has no length byte"
            break
        olen = options[p + 1]
        if olen < 2 or p + olen > n:
            out["malformed"] = f"option kind {kind} at byte {p} has length {olen}"
            break
        body = options[p + 2 : p + olen]
        blen = olen - 2
        if kind == _OPT_MSS and blen == 2:
            out["mss"] = int.from_bytes(body, "big")
        elif kind == _OPT_WSCALE and blen == 1:
            out["wscale"] = body[0]
        elif kind == _OPT_SACK_PERM and blen == 0:
            out["sack_permitted"] = True
        elif kind == _OPT_SACK and blen % 8 == 0:
            out["sack"] = [
                (int.from_bytes(body[i : i + 4], "big"), int.from_bytes(body[i + 4 : i + 8], "big"))
                for i in range(0, blen, 8)
            ]
        elif kind == _OPT_TIMESTAMPS and blen == 8:
            out["timestamps"] = (int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big"))
        elif kind == _OPT_TFO:
            out["tfo_cookie"] = bytes(body)
        elif kind == _OPT_EXP and blen >= 2 and body[:2] == b"\xf9\x89":
            out["tfo_cookie"] = bytes(body[2:])
        elif kind == _OPT_MPTCP:
            out["mptcp"] = True
        else:
            out.setdefault("unknown", []).append(kind)
        p += olen
    return out
