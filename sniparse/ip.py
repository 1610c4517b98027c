"""IPv4, IPv6 and the tunnels that wrap them: plain functions over ``(data, offset)``.

Each header function returns a small tuple of ints: a protocol (or a negative status code
below), the offset of what follows, and, for IP, the *wire* end of the packet taken from
its length field. The wire end may lie beyond ``len(data)`` when the snaplen cut the frame;
the caller bounds captured bytes by ``min(wire_end, len(data))``, which is also what trims
Ethernet padding (a 60-byte minimum frame carrying a 40-byte IPv4 packet).

Status codes (negative, never valid protocol numbers):

* :data:`IP_TRUNCATED` -- the header is cut short in the captured bytes.
* :data:`IP_BAD`       -- the header contradicts the format (version, IHL, lengths).
* :data:`IP_FRAGMENT`  -- a fragment; fragments are counted, not reassembled, so a
  fragmented ClientHello shows up as an Issue rather than a wrong answer.
* :data:`IP_NOT_IP`    -- a tunnel that carries something other than IP / Ethernet.

Tunnels: :func:`gre` (RFC 2784/2890, PPTP's enhanced GRE, ERSPAN I/II/III), :func:`udp_tunnel`
(VXLAN RFC 7348, Geneve RFC 8926, GTP-U 3GPP TS 29.281). IP-in-IP (protocol 4, RFC 2003) and
IPv6-in-IP (41, RFC 4213) need no header of their own.
"""

from __future__ import annotations

from struct import unpack_from
from typing import Final

from .link import (
    ETH_IPV4,
    ETH_IPV6,
    ETH_MPLS,
    ETH_TEB,
    IP_BY_VERSION,
    LINK_NOT_IP,
    LINK_TRUNCATED,
    ieee80211,
    mpls,
    ppp_proto,
)

__all__ = [
    "CAPWAP_DATA_PORT",
    "GENEVE_PORT",
    "GTPU_PORT",
    "IP_BAD",
    "IP_FRAGMENT",
    "IP_NOT_IP",
    "IP_TRUNCATED",
    "PROTO_GRE",
    "PROTO_ICMP",
    "PROTO_ICMPV6",
    "PROTO_IPIP",
    "PROTO_IPV6",
    "PROTO_TCP",
    "PROTO_UDP",
    "UDP_PLAIN",
    "VXLAN_PORT",
    "gre",
    "ipv4",
    "ipv6",
    "udp_tunnel",
]

IP_TRUNCATED = LINK_TRUNCATED
IP_NOT_IP = LINK_NOT_IP
IP_BAD = -3
IP_FRAGMENT = -4
#: :func:`udp_tunnel` result for a UDP datagram that is not a tunnel we decapsulate.
UDP_PLAIN = -5

PROTO_ICMP: Final = 1
PROTO_IPIP: Final = 4
PROTO_TCP: Final = 6
PROTO_UDP: Final = 17
PROTO_IPV6: Final = 41
PROTO_GRE: Final = 47
PROTO_ICMPV6: Final = 58

VXLAN_PORT: Final = 4789
CAPWAP_DATA_PORT: Final = 5247
GENEVE_PORT: Final = 6081
GTPU_PORT: Final = 2152

# IPv6 extension headers walked on the way to the upper layer (RFC 8200 §4, RFC 4302 AH).
_EXT_HOPOPTS: Final = 0
_EXT_ROUTING: Final = 43
_EXT_FRAGMENT: Final = 44
_EXT_AH: Final = 51
_EXT_DSTOPTS: Final = 60
_EXT_MOBILITY: Final = 135
_EXT_HIP: Final = 139
_EXT_SHIM6: Final = 140
_MAX_EXT: Final = 16


def ipv4(data: bytes, off: int) -> tuple[int, int, int]:
    """An IPv4 header at ``off`` (RFC 791 §3.1) -> ``(protocol, payload_off, wire_end)``.

    ``protocol`` is a status code on failure. Options are skipped by IHL, and one AH header
    is stepped over. A total length of
    0 is how TCP segmentation offload frames look in captures taken on the sending host;
    then the captured frame decides the end, as Wireshark does.
    """
    n = len(data)
    if off + 20 > n:
        return IP_TRUNCATED, off, off
    b0 = data[off]
    ihl = (b0 & 0x0F) << 2
    if b0 >> 4 != 4 or ihl < 20:
        return IP_BAD, off, off
    tot, frag, proto = unpack_from("!H2xHxB", data, off + 2)
    if tot == 0:
        tot = n - off
    if tot < ihl:
        return IP_BAD, off, off
    if off + ihl > n:
        return IP_TRUNCATED, off, off
    # RFC 791: fragment offset (13 bits) or More Fragments set -> part of a larger datagram.
    if frag & 0x3FFF:
        return IP_FRAGMENT, off + ihl, off + tot
    if proto == _EXT_AH:
        # AH (RFC 4302 §2.2) authenticates without encrypting: the upper layer follows in
        # the clear after (payload length + 2) 4-byte words.
        p = off + ihl
        if p + 2 > n:
            return IP_TRUNCATED, p, off + tot
        nh = data[p]
        p += (data[p + 1] + 2) << 2
        if p > off + tot:
            return IP_BAD, p, off + tot
        return nh, p, off + tot
    return proto, off + ihl, off + tot


def ipv6(data: bytes, off: int) -> tuple[int, int, int]:
    """An IPv6 header at ``off`` (RFC 8200 §3) and its extension headers ->
    ``(upper_protocol, upper_off, wire_end)``.

    Walks hop-by-hop, routing, destination options, mobility, HIP, shim6 (length in 8-byte
    units, RFC 8200 §4.3-4.6) and AH (4-byte units, RFC 4302 §2.2). A fragment header with a
    non-zero offset or the M flag means a real fragment (:data:`IP_FRAGMENT`); an atomic
    fragment (RFC 6946) is stepped over. Payload length 0 (jumbogram or offload) lets the
    captured frame decide the end.
    """
    n = len(data)
    if off + 40 > n:
        return IP_TRUNCATED, off, off
    if data[off] >> 4 != 6:
        return IP_BAD, off, off
    plen, nh = unpack_from("!HB", data, off + 4)
    end = off + 40 + plen if plen else n
    p = off + 40
    for _ in range(_MAX_EXT):
        if (
            nh == _EXT_HOPOPTS
            or nh == _EXT_ROUTING
            or nh == _EXT_DSTOPTS
            or nh == _EXT_MOBILITY
            or nh == _EXT_HIP
            or nh == _EXT_SHIM6
        ):
            if p + 2 > n:
                return IP_TRUNCATED, p, end
            hl = (data[p + 1] + 1) << 3
        elif nh == _EXT_AH:
            if p + 2 > n:
                return IP_TRUNCATED, p, end
            hl = (data[p + 1] + 2) << 2
        elif nh == _EXT_FRAGMENT:
            if p + 8 > n:
                return IP_TRUNCATED, p, end
            (fo,) = unpack_from("!H", data, p + 2)
            if fo & 0xFFF9:
                return IP_FRAGMENT, p + 8, end
            hl = 8
        else:
            return nh, p, end
        nh = data[p]
        p += hl
        if p > end:
            return IP_BAD, p, end
    return IP_BAD, p, end


def gre(data: bytes, off: int) -> tuple[int, int]:
    """A GRE header at ``off`` -> ``(ethertype, inner_off)``.

    Version 0 (RFC 2784 §2, keys and sequence numbers RFC 2890): checksum, key and sequence
    fields are present per their flag bits. Version 1 is PPTP's enhanced GRE (RFC 2637 §4.1)
    carrying PPP. Returns :data:`~sniparse.link.ETH_TEB` when an Ethernet frame follows
    (transparent bridging 0x6558, ERSPAN 0x88be / 0x22eb), ``IP_BY_VERSION`` or an
    Ethertype otherwise.
    """
    n = len(data)
    if off + 4 > n:
        return IP_TRUNCATED, off
    flags, proto = unpack_from("!HH", data, off)
    ver = flags & 0x0007
    p = off + 4
    if ver == 0:
        if flags & 0x4000:
            # Source routing (RFC 1701) is deprecated and variable-length; not followed.
            return IP_NOT_IP, p
        if flags & 0x8000:
            p += 4
        if flags & 0x2000:
            p += 4
        if flags & 0x1000:
            p += 4
    elif ver == 1:
        p += 4  # key (payload length + call id) is always present
        if flags & 0x1000:
            p += 4
        if flags & 0x0080:
            p += 4
        if proto != 0x880B:
            return IP_NOT_IP, p
        if p >= n:
            return IP_TRUNCATED, p
        if p + 2 <= n and data[p] == 0xFF and data[p + 1] == 0x03:
            p += 2
        return ppp_proto(data, p)
    else:
        return IP_BAD, p
    if p > n:
        return IP_TRUNCATED, p
    if proto == ETH_IPV4 or proto == ETH_IPV6:
        return proto, p
    if proto == ETH_TEB:
        return ETH_TEB, p
    if proto == 0x88BE:
        # ERSPAN type II carries an 8-byte header and always sets the sequence bit; type I
        # has neither (https://datatracker.ietf.org/doc/draft-foschiano-erspan/ §4.1-4.2).
        if flags & 0x1000:
            p += 8
        return ETH_TEB, p
    if proto == 0x22EB:
        # ERSPAN type III: 12-byte header, plus an 8-byte platform sub-header when the O
        # flag (lowest bit of byte 11) is set (draft-foschiano-erspan §4.3).
        if p + 12 > n:
            return IP_TRUNCATED, p
        o = data[p + 11] & 0x01
        return ETH_TEB, p + 12 + (8 if o else 0)
    if proto == ETH_MPLS:
        return mpls(data, p)
    return IP_NOT_IP, p


def udp_tunnel(data: bytes, off: int) -> tuple[int, int]:
    """A UDP header at ``off``: when either port is a tunnel port, decapsulate ->
    ``(ethertype, inner_off)``; else ``(UDP_PLAIN, off)``.

    VXLAN (RFC 7348 §5, port 4789): 8-byte header, then Ethernet. Geneve (RFC 8926 §3.4,
    port 6081): 8 bytes plus options, protocol type says what follows. GTP-U (3GPP TS
    29.281 §5, port 2152): G-PDU messages only; optional fields and the extension header
    chain are walked, then the IP version nibble decides.
    """
    n = len(data)
    if off + 8 > n:
        return IP_TRUNCATED, off
    sport, dport = unpack_from("!HH", data, off)
    p = off + 8
    if dport == VXLAN_PORT or sport == VXLAN_PORT:
        if p + 8 > n:
            return IP_TRUNCATED, p
        if not data[p] & 0x08:  # the I flag: a valid VNI follows (RFC 7348 §5)
            return IP_NOT_IP, p
        return ETH_TEB, p + 8
    if dport == GENEVE_PORT or sport == GENEVE_PORT:
        if p + 8 > n:
            return IP_TRUNCATED, p
        if data[p] >> 6 != 0:
            return IP_NOT_IP, p
        optlen = (data[p] & 0x3F) << 2
        (proto,) = unpack_from("!H", data, p + 2)
        p += 8 + optlen
        if p > n:
            return IP_TRUNCATED, p
        if proto == ETH_TEB or proto == ETH_IPV4 or proto == ETH_IPV6:
            return proto, p
        return IP_NOT_IP, p
    if dport == GTPU_PORT or sport == GTPU_PORT:
        if p + 8 > n:
            return IP_TRUNCATED, p
        flags = data[p]
        mtype = data[p + 1]
        # Version 1, protocol type GTP (PT=1); message type 255 is a G-PDU (user data).
        if flags >> 5 != 1 or not flags & 0x10 or mtype != 0xFF:
            return IP_NOT_IP, p
        p += 8
        if flags & 0x07:
            # Sequence number(2), N-PDU number(1), next extension header type(1).
            if p + 4 > n:
                return IP_TRUNCATED, p
            nxt = data[p + 3]
            p += 4
            for _ in range(16):
                if nxt == 0:
                    break
                if p + 1 > n:
                    return IP_TRUNCATED, p
                elen = data[p] << 2  # length in 4-byte units, TS 29.281 §5.2.1
                if elen == 0:
                    return IP_BAD, p
                if p + elen > n:
                    return IP_TRUNCATED, p
                nxt = data[p + elen - 1]
                p += elen
            else:
                return IP_BAD, p
        if p >= n:
            return IP_TRUNCATED, p
        v = data[p] >> 4
        if v == 4 or v == 6:
            return IP_BY_VERSION, p
        return IP_NOT_IP, p
    if dport == CAPWAP_DATA_PORT or sport == CAPWAP_DATA_PORT:
        return _capwap(data, p)
    return UDP_PLAIN, off


def _capwap(data: bytes, p: int) -> tuple[int, int]:
    """CAPWAP data channel (RFC 5415 §4.3): preamble, HLEN in 4-byte words, WBID and the T
    bit say whether the payload is an 802.3 frame (T=0) or native 802.11 (T=1, WBID 1).
    Fragments (F) and DTLS-protected data (preamble type 1) are not followed."""
    n = len(data)
    if p + 8 > n:
        return IP_TRUNCATED, p
    if data[p] != 0:
        return IP_NOT_IP, p
    hlen = (data[p + 1] >> 3) << 2
    b2 = data[p + 2]
    if hlen < 8 or data[p + 3] & 0x80:
        return IP_NOT_IP, p
    q = p + hlen
    if b2 & 0x01 == 0:
        return ETH_TEB, q
    if (b2 >> 1) & 0x1F != 1:
        return IP_NOT_IP, q
    if q + 2 > n:
        return IP_TRUNCATED, q
    # Cisco access points put the 802.11 frame-control field byte-swapped (Wireshark's
    # "Swap Frame Control" CAPWAP preference, on by default): when only the second byte
    # reads as a data frame, take it that way.
    swapped = (data[q] >> 2) & 0x03 != 2 and (data[q + 1] >> 2) & 0x03 == 2
    return ieee80211(data, q, swapped)
