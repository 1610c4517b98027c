"""TCP header fields and flag constants.  (skeleton: being implemented)"""

from __future__ import annotations

from typing import NamedTuple

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80


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
