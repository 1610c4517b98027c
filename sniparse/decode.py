"""From a captured frame to its TCP segment: the one per-packet entry point.

:func:`decode_segment` walks link -> IP -> (tunnels -> IP)* -> TCP with plain functions
over ``(bytes, offset)`` (:mod:`sniparse.link`, :mod:`sniparse.ip`) and builds exactly one
object, the final :class:`~sniparse.tcp.Segment`. Tunnels opened on the way: IP-in-IP,
IPv6-in-IP, GRE (with ERSPAN I/II/III, transparent bridging, PPTP's PPP, MPLS), VXLAN,
Geneve, GTP-U and CAPWAP data; ``outer`` keeps the outermost IP addresses. Frames that carry no TCP come back as
``None`` after one named counter is bumped in the caller's ``counters`` dict:

=====================  =====================================================================
counter                meaning
=====================  =====================================================================
unsupported_linktype   the interface's link type has no decoder (also one loud Issue per
                       interface)
truncated_header       a link, IP, tunnel or TCP header is cut short by the snaplen
                       (counted Issue, kind ``truncated``)
not_ip                 the link carries something else (other Ethertype, LLC, PPP control,
                       unknown address family, a tunnel carrying non-IP)
arp                    ARP / RARP
bad_ip                 an IP header contradicts the format (version, IHL, total length,
                       IPv6 extension chain) (counted Issue, kind ``malformed``)
ip_fragment            an IPv4 / IPv6 fragment: counted and skipped, not reassembled
                       (counted Issue, kind ``unsupported``)
icmp                   ICMP or ICMPv6
udp                    UDP that is not a tunnel we open (QUIC included)
other_ip_proto         any other IP protocol (SCTP, ESP, OSPF...)
bad_tunnel             a tunnel header contradicts its format (counted Issue)
tunnel_depth           more than ``MAX_DEPTH`` nested encapsulations (counted Issue)
bad_tcp                TCP data offset below 5 or header beyond the IP length (counted Issue)
=====================  =====================================================================

Two counters are informational, bumped besides the outcome: ``ip_length_exceeds_frame`` (an
IP length claims more bytes than its container -- the frame on the wire, a PPPoE session,
an outer IP packet -- holds; the length is clipped to the container and a counted Issue is
kept) and ``decapsulated`` (the segment came out of a tunnel).

Nothing here raises on any input: every read is bounds-checked before it happens (a
hypothesis test feeds random bytes under every link type).

:func:`fast_key` is the pipeline's shortcut for bulk data: for the commonest link types it
finds the direction key and TCP flags with a few index operations and no allocation beyond
the key; when it returns a value, :func:`decode_segment` would have produced the same one.

The inlined common case also exists in C (``sniparse._speedups.segment``, used when built
and ``SNIPARSE_PURE`` is not set; ``tests/test_fastpath.py`` checks it gives the Python
code's Segment, or None exactly where the Python code falls through, on every fixture and
corpus frame and on mutated frames): about 4x faster per segment on this machine.

Measured for the Python code (Python 3.11, one busy shared core, best of three; ``pytest
tests/test_decode.py -k speed`` prints it): Ethernet/IPv4/TCP about 0.8 M segments/s through the inlined common
case and 0.2-0.37 M through the general path; VXLAN-wrapped about 0.2 M; :func:`fast_key`
about 1.9 M frames/s.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from typing import Final, cast

from ._compiled import speedups
from ._fastpath import key_at
from .capture import Record
from .errors import Issues
from .ip import (
    IP_BAD,
    IP_FRAGMENT,
    IP_NOT_IP,
    IP_TRUNCATED,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_IPIP,
    PROTO_IPV6,
    PROTO_TCP,
    PROTO_UDP,
    UDP_PLAIN,
    gre,
    ipv4,
    ipv6,
    udp_tunnel,
)
from .link import (
    ETH_ARP,
    ETH_IPV4,
    ETH_IPV6,
    ETH_RARP,
    ETH_TEB,
    IP_BY_VERSION,
    LINK_DECODERS,
    LINK_TRUNCATED,
    ether,
    linktype_name,
)
from .tcp import Segment

__all__ = ["COUNTERS", "MAX_DEPTH", "decode_segment", "decode_segment_key", "fast_key"]

#: Most IP headers walked for one frame (outer + nested tunnels): bounded work.
MAX_DEPTH: Final = 8

#: Every counter name :func:`decode_segment` may bump, with its meaning.
COUNTERS: dict[str, str] = {
    "unsupported_linktype": "frames on interfaces whose link type is not supported",
    "truncated_header": "frames whose link/IP/tunnel/TCP header was cut short by the snaplen",
    "not_ip": "frames that do not carry IP",
    "arp": "ARP / RARP frames",
    "bad_ip": "frames with a malformed IP header",
    "ip_fragment": "IP fragments (not reassembled)",
    "icmp": "ICMP / ICMPv6 packets",
    "udp": "UDP packets (not a decapsulated tunnel)",
    "other_ip_proto": "packets of other IP protocols",
    "bad_tunnel": "frames with a malformed tunnel header",
    "tunnel_depth": "frames nested deeper than the tunnel limit",
    "bad_tcp": "frames with a malformed TCP header",
    "ip_length_exceeds_frame": "IP packets whose length exceeds the frame or container (clipped)",
    "decapsulated": "TCP segments taken out of a tunnel",
}

# Issue (kind, layer, detail) per counted cause; the counter name is the Issue key.
_ISSUES: dict[str, tuple[str, str, str]] = {
    "truncated_header": (
        "truncated",
        "ip",
        "packet headers cut short by the capture's snaplen; those packets cannot be decoded",
    ),
    "bad_ip": (
        "malformed",
        "ip",
        "IP header contradicts the format (version, length or extension header chain)",
    ),
    "ip_fragment": (
        "unsupported",
        "ip",
        "IP fragments are not reassembled; a ClientHello sent in fragments is not seen",
    ),
    "bad_tunnel": ("malformed", "ip", "tunnel header (GRE, VXLAN, Geneve, GTP-U) is malformed"),
    "tunnel_depth": ("limit", "ip", f"more than {MAX_DEPTH} nested IP headers; frame skipped"),
    "bad_tcp": ("malformed", "tcp", "TCP header has a data offset below 5 or beyond the IP length"),
    "ip_length_exceeds_frame": (
        "malformed",
        "ip",
        (
            "IP length field claims more bytes than its container (the frame on the wire, a "
            "PPPoE session, an outer packet) holds; length clipped to the container"
        ),
    ),
}


def _count(
    rec: Record, issues: Issues, counters: dict[str, int], name: str, where: str = ""
) -> None:
    counters[name] = counters.get(name, 0) + 1
    spec = _ISSUES.get(name)
    if spec is not None:
        kind, layer, detail = spec
        issues.add(kind, layer, detail + where, frame=rec.frame, key=("decode", name))


_TCP_HDR = Struct("!HHIIBBH")  # ports, seq, ack, data offset byte, flags, window


_C_SEGMENT = cast("Callable[[type[Segment], Record], Segment | None] | None", speedups("segment"))
"""``sniparse._speedups.segment`` (the inlined common case below, in C), unless it is not
built or ``SNIPARSE_PURE`` is set."""
_C_SEGMENT_KEY = cast(
    "Callable[[type[Segment], Record], tuple[Segment, bytes] | None] | None",
    None if _C_SEGMENT is None else speedups("segment_key"),
)


def decode_segment(rec: Record, issues: Issues, counters: dict[str, int]) -> Segment | None:
    """Decode ``rec`` to its innermost TCP segment, or return None and count why.

    ``counters`` maps a counter name (see :data:`COUNTERS`) to a count; missing names are
    created. Malformed and truncated headers also become Issues counted per cause; an
    unsupported link type is one Issue per interface. Never raises.
    """
    if _C_SEGMENT is not None:
        seg = _C_SEGMENT(Segment, rec)
        return seg if seg is not None else _decode(rec, issues, counters)
    return _decode_inline(rec, issues, counters)


def decode_segment_key(
    rec: Record, issues: Issues, counters: dict[str, int]
) -> tuple[Segment | None, bytes | None]:
    """:func:`decode_segment`, plus the segment's :func:`~sniparse.tcp.flow_key` when it
    comes for free (the C common case), else None (the caller computes it if needed)."""
    if _C_SEGMENT_KEY is not None:
        r = _C_SEGMENT_KEY(Segment, rec)
        if r is not None:
            return r
        return _decode(rec, issues, counters), None
    return _decode_inline(rec, issues, counters), None


def _decode_inline(rec: Record, issues: Issues, counters: dict[str, int]) -> Segment | None:
    """:func:`decode_segment` in Python: the common cases inlined, then :func:`_decode`."""
    data = rec.data
    # The common cases inlined: Ethernet (untagged or one 802.1Q tag), LINUX_SLL2,
    # LINUX_SLL, raw IP, each carrying IPv4 without options or fragmentation (or IPv6
    # without extension headers) and a whole TCP header -- two to four times the speed of
    # the general path. Any doubt falls through to the general path, and tests check both
    # give the same Segment on every fixture, every corpus frame and mutated frames.
    lt = rec.linktype
    n = len(data)
    o = o6 = -1
    vl: tuple[int, ...] = ()
    if lt == 1:
        if n >= 54 and data[13] == 0x00 and data[12] == 0x08:
            o = 14
        elif n >= 74 and data[12] == 0x86 and data[13] == 0xDD:
            o6 = 14
        elif n >= 58 and data[12] == 0x81 and data[13] == 0x00:
            et = (data[16] << 8) | data[17]
            if et == ETH_IPV4:
                o = 18
                vl = (((data[14] & 0x0F) << 8) | data[15],)
            elif et == ETH_IPV6:
                o6 = 18
                vl = (((data[14] & 0x0F) << 8) | data[15],)
    elif lt == 276:
        # ARPHRD_NETLINK (0x0338) frames are never IP, whatever their protocol says.
        if n >= 60 and (data[8], data[9]) != (3, 0x38):
            if data[0] == 0x08 and data[1] == 0x00:
                o = 20
            elif data[0] == 0x86 and data[1] == 0xDD:
                o6 = 20
    elif lt == 113:
        if n >= 56 and (data[2], data[3]) != (3, 0x38):
            if data[14] == 0x08 and data[15] == 0x00:
                o = 16
            elif data[14] == 0x86 and data[15] == 0xDD:
                o6 = 16
    elif lt == 101 or lt == 228:
        o = 0
    if o6 >= 0 and n >= o6 + 60 and data[o6] >> 4 == 6 and data[o6 + 6] == PROTO_TCP:
        t = o6 + 40
        plen = (data[o6 + 4] << 8) | data[o6 + 5]
        wend = t + plen
        sport, dport, seq, ack, doffb, flags, window = _TCP_HDR.unpack_from(data, t)
        hend = t + ((doffb >> 4) << 2)
        if plen and t + 20 <= hend <= wend and hend <= n and (wend <= n or wend <= rec.origlen):
            return Segment(
                rec.frame,
                rec.ts_ns,
                6,
                data[o6 + 8 : o6 + 24],
                data[o6 + 24 : t],
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
                data[hend:wend],
                wend - hend,
                data[t + 20 : hend],
                None,
                vl,
            )
    if (
        o >= 0
        and n >= o + 40
        and data[o] == 0x45
        and data[o + 9] == PROTO_TCP
        and not (data[o + 6] & 0x3F or data[o + 7])
    ):
        t = o + 20
        wend = o + ((data[o + 2] << 8) | data[o + 3])
        sport, dport, seq, ack, doffb, flags, window = _TCP_HDR.unpack_from(data, t)
        hend = t + ((doffb >> 4) << 2)
        if t + 20 <= hend <= wend and hend <= n and (wend <= n or wend <= rec.origlen):
            return Segment(
                rec.frame,
                rec.ts_ns,
                4,
                data[o + 12 : o + 16],
                data[o + 16 : t],
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
                data[hend:wend],
                wend - hend,
                data[t + 20 : hend],
                None,
                vl,
            )
    return _decode(rec, issues, counters)


def _decode(rec: Record, issues: Issues, counters: dict[str, int]) -> Segment | None:
    """The general path of :func:`decode_segment`: every link type and encapsulation."""
    data = rec.data
    fn = LINK_DECODERS.get(rec.linktype)
    if fn is None:
        counters["unsupported_linktype"] = counters.get("unsupported_linktype", 0) + 1
        lt = rec.linktype
        issues.add(
            "unsupported",
            "link",
            f"link type {lt} ({linktype_name(lt)}) on interface {rec.iface} is not supported; "
            "its packets are not analysed",
            frame=rec.frame,
            key=("linktype", rec.iface),
        )
        return None
    proto, off, vlans, lim = fn(data, 0)
    n = len(data)
    # Where the current packet must end on the wire: the frame, then each container's own
    # length (PPPoE, an outer IP packet). An IP length beyond it is clipped and counted.
    limit = max(n, rec.origlen)
    if 0 <= lim < limit:
        limit = lim
    outer: tuple[bytes, bytes] | None = None
    for _depth in range(MAX_DEPTH):
        # --- network layer -------------------------------------------------------------
        if proto == IP_BY_VERSION:
            if off >= n:
                _count(rec, issues, counters, "truncated_header")
                return None
            v = data[off] >> 4
            if v == 4:
                proto = ETH_IPV4
            elif v == 6:
                proto = ETH_IPV6
            else:
                _count(rec, issues, counters, "bad_ip")
                return None
        if proto == ETH_IPV4:
            ipproto, poff, wend = ipv4(data, off)
            if ipproto >= 0:
                src = data[off + 12 : off + 16]
                dst = data[off + 16 : off + 20]
                ver = 4
        elif proto == ETH_IPV6:
            ipproto, poff, wend = ipv6(data, off)
            if ipproto >= 0:
                src = data[off + 8 : off + 24]
                dst = data[off + 24 : off + 40]
                ver = 6
        elif proto == ETH_TEB:
            proto, off, inner_vlans, lim = ether(data, off)
            if inner_vlans:
                vlans = vlans + inner_vlans
            if 0 <= lim < limit:
                limit = lim
            continue
        elif proto == LINK_TRUNCATED or proto == IP_TRUNCATED:
            _count(rec, issues, counters, "truncated_header")
            return None
        elif proto == ETH_ARP or proto == ETH_RARP:
            counters["arp"] = counters.get("arp", 0) + 1
            return None
        elif proto == IP_BAD:
            _count(rec, issues, counters, "bad_tunnel")
            return None
        else:
            counters["not_ip"] = counters.get("not_ip", 0) + 1
            return None
        if ipproto < 0:
            if ipproto == IP_TRUNCATED:
                _count(rec, issues, counters, "truncated_header")
            elif ipproto == IP_FRAGMENT:
                _count(rec, issues, counters, "ip_fragment")
            else:
                _count(rec, issues, counters, "bad_ip")
            return None
        if wend > limit:
            # The IP length claims more than its container (the frame on the wire, PPPoE,
            # the outer packet) holds: not a snaplen cut but a lie. Trust the container.
            _count(rec, issues, counters, "ip_length_exceeds_frame")
            wend = limit

        # --- transport / tunnels -------------------------------------------------------
        if ipproto == PROTO_TCP:
            return _tcp(rec, issues, counters, data, poff, wend, ver, src, dst, outer, vlans)
        if ipproto == PROTO_UDP:
            proto, off = udp_tunnel(data, poff)
            if proto == UDP_PLAIN:
                counters["udp"] = counters.get("udp", 0) + 1
                return None
            if proto == IP_NOT_IP:
                counters["not_ip"] = counters.get("not_ip", 0) + 1
                return None
        elif ipproto == PROTO_IPIP:
            proto, off = ETH_IPV4, poff
        elif ipproto == PROTO_IPV6:
            proto, off = ETH_IPV6, poff
        elif ipproto == PROTO_GRE:
            proto, off = gre(data, poff)
            if proto == IP_NOT_IP:
                counters["not_ip"] = counters.get("not_ip", 0) + 1
                return None
        elif ipproto == PROTO_ICMP or ipproto == PROTO_ICMPV6:
            counters["icmp"] = counters.get("icmp", 0) + 1
            return None
        else:
            counters["other_ip_proto"] = counters.get("other_ip_proto", 0) + 1
            return None
        if outer is None:
            outer = (src, dst)
        limit = wend
    _count(rec, issues, counters, "tunnel_depth")
    return None


def _tcp(
    rec: Record,
    issues: Issues,
    counters: dict[str, int],
    data: bytes,
    off: int,
    wend: int,
    ver: int,
    src: bytes,
    dst: bytes,
    outer: tuple[bytes, bytes] | None,
    vlans: tuple[int, ...],
) -> Segment | None:
    """The TCP header at ``off`` (RFC 9293 §3.1) inside an IP packet ending at ``wend``."""
    n = len(data)
    if off + 20 > wend:
        _count(rec, issues, counters, "bad_tcp")
        return None
    if off + 20 > n:
        _count(rec, issues, counters, "truncated_header")
        return None
    sport = (data[off] << 8) | data[off + 1]
    dport = (data[off + 2] << 8) | data[off + 3]
    seq = int.from_bytes(data[off + 4 : off + 8], "big")
    ack = int.from_bytes(data[off + 8 : off + 12], "big")
    doff = (data[off + 12] >> 4) << 2
    flags = data[off + 13]
    window = (data[off + 14] << 8) | data[off + 15]
    hend = off + doff
    if doff < 20 or hend > wend:
        _count(rec, issues, counters, "bad_tcp")
        return None
    if hend > n:
        _count(rec, issues, counters, "truncated_header")
        return None
    if outer is not None:
        counters["decapsulated"] = counters.get("decapsulated", 0) + 1
    return Segment(
        rec.frame,
        rec.ts_ns,
        ver,
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        flags,
        window,
        data[hend : min(n, wend)],
        wend - hend,
        data[off + 20 : hend],
        outer,
        vlans,
    )


def fast_key(linktype: int, data: bytes) -> tuple[bytes, int] | None:
    """The direction key and TCP flags byte of a frame, cheaply, or None.

    Handles Ethernet with up to two 802.1Q / 802.1ad tags (1), LINUX_SLL2 (276), LINUX_SLL
    (113) and raw IP (101, 228, 229) carrying plain IPv4 (IHL 5, not fragmented) or IPv6
    (no extension headers) with TCP. The key is exactly ``flow_key(src, dst, sport, dport)``
    of the segment :func:`decode_segment` would return -- for Ethernet/IPv4 it is
    ``data[26:38]``. None means "not a simple case", never "not TCP": the caller then uses
    :func:`decode_segment`. Never raises. (One implementation with the framers' skipping
    scan: :func:`sniparse._fastpath.key_at`.)
    """
    return key_at(linktype, data, 0, len(data))
