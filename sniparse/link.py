"""Link layers: a dispatch table from LINKTYPE_* number to a small decoder.

Every decoder is a plain function ``f(data, off) -> (proto, offset, vlans, limit)``:

* ``proto`` is an Ethertype (``0x0800`` IPv4, ``0x86dd`` IPv6, ``0x0806`` ARP, ...), or
  :data:`IP_BY_VERSION` when the link only says "IP" and the version nibble of the first
  byte decides (raw IP, MPLS, GTP-U), or one of the negative codes :data:`LINK_TRUNCATED`
  (the link header itself is cut short) and :data:`LINK_NOT_IP` (a valid frame that carries
  something other than IP, such as an unknown address family or PPP control protocol).
* ``offset`` is where that protocol's header starts in ``data``.
* ``vlans`` is the tuple of 802.1Q / 802.1ad VLAN ids, outermost first (usually ``()``).
* ``limit`` is the end of the network-layer packet when the link says so (PPPoE's length
  field), else -1; the IP length is clipped to it.

The functions never raise on short or hostile input: every index is checked against
``len(data)`` first (``struct.unpack_from`` is only called after the check), and every loop
is bounded. They return ints and tuples only, because they run once per packet.

Link-type numbers and names follow the tcpdump.org LINKTYPE registry
(https://www.tcpdump.org/linktypes.html); :data:`LINKTYPE_NAMES` holds names for reports.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import unpack_from
from typing import Final

__all__ = [
    "ETH_ARP",
    "ETH_IPV4",
    "ETH_IPV6",
    "ETH_MPLS",
    "ETH_TEB",
    "IP_BY_VERSION",
    "LINKTYPE_NAMES",
    "LINK_DECODERS",
    "LINK_NOT_IP",
    "LINK_TRUNCATED",
    "LinkDecoder",
    "ether",
    "ether_walk",
    "ieee80211",
    "linktype_name",
    "mpls",
    "ppp_proto",
]

#: ``proto`` value meaning "IP, version taken from the first nibble".
IP_BY_VERSION: Final = 0x10000
#: The link header is cut short (snaplen, or a runt frame).
LINK_TRUNCATED = -1
#: The frame is well formed but does not carry IP.
LINK_NOT_IP = -2

ETH_IPV4: Final = 0x0800
ETH_IPV6: Final = 0x86DD
ETH_ARP: Final = 0x0806
ETH_RARP: Final = 0x8035
ETH_VLAN: Final = 0x8100  # IEEE 802.1Q
ETH_QINQ: Final = 0x88A8  # IEEE 802.1ad service tag
ETH_QINQ_OLD: Final = 0x9100  # pre-standard QinQ, still common on switches
ETH_QINQ_OLD2: Final = 0x9200
ETH_PPPOE_SESSION: Final = 0x8864  # RFC 2516 §4 (discovery 0x8863 carries no IP)
ETH_CISCO_META: Final = 0x8909  # Cisco MetaData (SGT) header
ETH_MPLS: Final = 0x8847  # RFC 3032
ETH_MPLS_MC: Final = 0x8848
ETH_TEB: Final = 0x6558  # transparent Ethernet bridging (GRE, Geneve)

LinkDecoder = Callable[[bytes, int], "tuple[int, int, tuple[int, ...], int]"]

LINKTYPE_NAMES: dict[int, str] = {
    0: "NULL",
    1: "ETHERNET",
    3: "AX25",
    6: "IEEE802_5",
    7: "ARCNET_BSD",
    8: "SLIP",
    9: "PPP",
    10: "FDDI",
    12: "RAW (OpenBSD DLT 12)",
    14: "RAW (BSD DLT 14)",
    50: "PPP_HDLC",
    51: "PPP_ETHER",
    100: "ATM_RFC1483",
    101: "RAW",
    104: "C_HDLC",
    105: "IEEE802_11",
    107: "FRELAY",
    108: "LOOP",
    113: "LINUX_SLL",
    114: "LTALK",
    117: "PFLOG",
    119: "IEEE802_11_PRISM",
    122: "IP_OVER_FC",
    123: "SUNATM",
    127: "IEEE802_11_RADIOTAP",
    129: "ARCNET_LINUX",
    138: "APPLE_IP_OVER_IEEE1394",
    139: "MTP2_WITH_PHDR",
    140: "MTP2",
    141: "MTP3",
    142: "SCCP",
    143: "DOCSIS",
    144: "LINUX_IRDA",
    147: "USER0",
    163: "IEEE802_11_AVS",
    165: "BACNET_MS_TP",
    166: "PPP_PPPD",
    169: "GPRS_LLC",
    177: "LINUX_LAPD",
    187: "BLUETOOTH_HCI_H4",
    189: "USB_LINUX",
    192: "PPI",
    195: "IEEE802_15_4_WITHFCS",
    196: "SITA",
    197: "ERF",
    201: "BLUETOOTH_HCI_H4_WITH_PHDR",
    202: "AX25_KISS",
    203: "LAPD",
    204: "PPP_WITH_DIR",
    205: "C_HDLC_WITH_DIR",
    206: "FRELAY_WITH_DIR",
    209: "IPMB_LINUX",
    215: "IEEE802_15_4_NONASK_PHY",
    220: "USB_LINUX_MMAPPED",
    224: "FC_2",
    225: "FC_2_WITH_FRAME_DELIMS",
    226: "IPNET",
    227: "CAN_SOCKETCAN",
    228: "IPV4",
    229: "IPV6",
    230: "IEEE802_15_4_NOFCS",
    231: "DBUS",
    235: "DVB_CI",
    236: "MUX27010",
    237: "STANAG_5066_D_PDU",
    239: "NFLOG",
    240: "NETANALYZER",
    241: "NETANALYZER_TRANSPARENT",
    242: "IPOIB",
    243: "MPEG_2_TS",
    244: "NG40",
    245: "NFC_LLCP",
    247: "INFINIBAND",
    248: "SCTP",
    249: "USBPCAP",
    250: "RTAC_SERIAL",
    251: "BLUETOOTH_LE_LL",
    253: "NETLINK",
    254: "BLUETOOTH_LINUX_MONITOR",
    255: "BLUETOOTH_BREDR_BB",
    256: "BLUETOOTH_LE_LL_WITH_PHDR",
    257: "PROFIBUS_DL",
    258: "PKTAP",
    259: "EPON",
    260: "IPMI_HPM_2",
    261: "ZWAVE_R1_R2",
    262: "ZWAVE_R3",
    263: "WATTSTOPPER_DLM",
    264: "ISO_14443",
    265: "RDS",
    266: "USB_DARWIN",
    268: "SDLC",
    270: "LORATAP",
    271: "VSOCK",
    272: "NORDIC_BLE",
    273: "DOCSIS31_XRA31",
    274: "ETHERNET_MPACKET",
    275: "DISPLAYPORT_AUX",
    276: "LINUX_SLL2",
    278: "OPENVIZSLA",
    279: "EBHSCR",
    280: "VPP_DISPATCH",
    281: "DSA_TAG_BRCM",
    282: "DSA_TAG_BRCM_PREPEND",
    283: "IEEE802_15_4_TAP",
    284: "DSA_TAG_DSA",
    285: "DSA_TAG_EDSA",
    286: "ELEE",
    287: "Z_WAVE_SERIAL",
    288: "USB_2_0",
    289: "ATSC_ALP",
    290: "ETW",
    292: "ZBOSS_NCP",
    293: "USB_2_0_LOW_SPEED",
    294: "USB_2_0_FULL_SPEED",
    295: "USB_2_0_HIGH_SPEED",
    296: "AUERSWALD_LOG",
    297: "ZWAVE_TAP",
    298: "SILABS_DEBUG_CHANNEL",
    299: "FIRA_UCI",
    300: "MDB",
    301: "DECT_NR",
}


def linktype_name(linktype: int) -> str:
    """The registry name of a link type, or ``"LINKTYPE_<n>"`` when it has none here."""
    return LINKTYPE_NAMES.get(linktype, f"LINKTYPE_{linktype}")


_NO_VLAN: tuple[int, ...] = ()
_MAX_TAGS: Final = 8  # VLAN tags / MPLS labels / CMD headers walked per frame (bounded work)


# --- Ethernet -----------------------------------------------------------------------------


def ether(data: bytes, off: int = 0) -> tuple[int, int, tuple[int, ...], int]:
    """Ethernet II (LINKTYPE_ETHERNET, 1), also used for frames inside tunnels.

    Walks 802.1Q / 802.1ad / 0x9100 tags (collecting VLAN ids), Cisco MetaData headers and
    PPPoE session headers (RFC 2516 §4, PPP protocol mapped to an Ethertype). 802.3 frames
    with a length instead of a type are not IP as far as we are concerned.
    """
    p = off + 12
    if p + 2 > len(data):
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    etype = (data[p] << 8) | data[p + 1]
    if etype == ETH_IPV4 or etype == ETH_IPV6:
        return etype, p + 2, _NO_VLAN, -1
    return ether_walk(data, etype, p + 2)


def ether_walk(data: bytes, etype: int, p: int) -> tuple[int, int, tuple[int, ...], int]:
    """Continue an Ethernet header at ``p``, whose type field said ``etype``: walk the
    tags and shims that can sit between the MAC header and IP (bounded)."""
    n = len(data)
    vlans: list[int] = []
    for _ in range(_MAX_TAGS):
        if (
            etype == ETH_VLAN
            or etype == ETH_QINQ
            or etype == ETH_QINQ_OLD
            or etype == ETH_QINQ_OLD2
        ):
            # Tag control information: PCP(3) DEI(1) VID(12), then the next type.
            if p + 4 > n:
                return LINK_TRUNCATED, p, tuple(vlans), -1
            tci, etype = unpack_from("!HH", data, p)
            vlans.append(tci & 0x0FFF)
            p += 4
        elif etype == ETH_CISCO_META:
            # Cisco MetaData: version(1) length(1) then `length` 4-byte options (the SGT
            # option is type(2)+value(2)), then the next Ethertype.
            if p + 2 > n:
                return LINK_TRUNCATED, p, tuple(vlans), -1
            hlen = 2 + 4 * data[p + 1]
            if p + hlen + 2 > n:
                return LINK_TRUNCATED, p, tuple(vlans), -1
            (etype,) = unpack_from("!H", data, p + hlen)
            p += hlen + 2
        elif etype == ETH_PPPOE_SESSION:
            # RFC 2516 §4: ver/type(1) code(1) session(2) length(2), then a PPP protocol.
            if p + 8 > n:
                return LINK_TRUNCATED, p, tuple(vlans), -1
            if data[p] != 0x11 or data[p + 1] != 0:
                return LINK_NOT_IP, p, tuple(vlans), -1
            # The PPPoE length bounds the PPP frame: Ethernet padding after it must not be
            # read as IP payload even when the IP length claims it (seen in the wild).
            (plen,) = unpack_from("!H", data, p + 4)
            limit = p + 6 + plen
            etype, p = ppp_proto(data, p + 6)
            return etype, p, tuple(vlans), limit
        elif etype == ETH_MPLS or etype == ETH_MPLS_MC:
            etype, p = mpls(data, p)
            return etype, p, tuple(vlans), -1
        else:
            return etype, p, tuple(vlans), -1
    return LINK_NOT_IP, p, tuple(vlans), -1


def mpls(data: bytes, off: int) -> tuple[int, int]:
    """RFC 3032 label stack: skip 4-byte entries to the one with bottom-of-stack set.

    MPLS says nothing about the payload; as every practical decoder does, the first nibble
    decides (4, 6), and anything else (pseudowire control word, Ethernet) is not IP to us.
    """
    n = len(data)
    p = off
    for _ in range(_MAX_TAGS):
        if p + 4 > n:
            return LINK_TRUNCATED, p
        bos = data[p + 2] & 0x01
        p += 4
        if bos:
            if p >= n:
                return LINK_TRUNCATED, p
            v = data[p] >> 4
            if v == 4 or v == 6:
                return IP_BY_VERSION, p
            return LINK_NOT_IP, p
    return LINK_NOT_IP, p


# --- PPP ----------------------------------------------------------------------------------


def ppp_proto(data: bytes, off: int) -> tuple[int, int]:
    """A PPP protocol field at ``off`` (RFC 1661 §2), mapped to an Ethertype.

    The field may be compressed to one byte (protocol-field compression: an odd first
    byte), RFC 1661 §6.5.
    """
    n = len(data)
    if off >= n:
        return LINK_TRUNCATED, off
    b = data[off]
    if b & 1:
        proto = b
        off += 1
    else:
        if off + 2 > n:
            return LINK_TRUNCATED, off
        proto = (b << 8) | data[off + 1]
        off += 2
    if proto == 0x0021:
        return ETH_IPV4, off
    if proto == 0x0057:
        return ETH_IPV6, off
    if proto == 0x0281 or proto == 0x0283:
        r = mpls(data, off)
        return r
    return LINK_NOT_IP, off


def _ppp(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_PPP (9): PPP, optionally with the HDLC-like ff 03 address/control bytes."""
    if off + 2 <= len(data) and data[off] == 0xFF and data[off + 1] == 0x03:
        off += 2
    p, o = ppp_proto(data, off)
    return p, o, _NO_VLAN, -1


def _ppp_hdlc(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_PPP_HDLC (50) / PPP_WITH_DIR: ff 03 + PPP protocol (RFC 1662), or, as
    libpcap also stores there, Cisco HDLC (address 0x0f/0x8f, control 0, Ethertype)."""
    n = len(data)
    if off + 2 > n:
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    a = data[off]
    if a == 0x0F or a == 0x8F:
        return _chdlc(data, off)
    if a == 0xFF and data[off + 1] == 0x03:
        off += 2
    p, o = ppp_proto(data, off)
    return p, o, _NO_VLAN, -1


def _chdlc(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_C_HDLC (104): address(1) control(1) Ethertype(2)."""
    if off + 4 > len(data):
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    (etype,) = unpack_from("!H", data, off + 2)
    return etype, off + 4, _NO_VLAN, -1


def _ppp_with_dir(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_PPP_WITH_DIR (204): one direction byte, then PPP in HDLC framing."""
    if off + 1 > len(data):
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    return _ppp_hdlc(data, off + 1)


# --- Raw IP, NULL / LOOP ------------------------------------------------------------------


def _raw(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_RAW (101, and the platform DLT values 12 and 14): the version nibble
    decides."""
    if off >= len(data):
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    return IP_BY_VERSION, off, _NO_VLAN, -1


def _ipv4(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_IPV4 (228)."""
    return ETH_IPV4, off, _NO_VLAN, -1


def _ipv6(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_IPV6 (229)."""
    return ETH_IPV6, off, _NO_VLAN, -1


# BSD address families: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD/BSD/OS),
# 28 (FreeBSD), 30 (macOS/Darwin), 10 (Linux, seen in some LOOP captures).
_AF_TO_PROTO = {2: ETH_IPV4, 10: ETH_IPV6, 24: ETH_IPV6, 28: ETH_IPV6, 30: ETH_IPV6}


def _null(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_NULL (0, host byte order) and LINKTYPE_LOOP (108, network byte order).

    The 4-byte family is read in both orders, because captures move between machines and
    some writers get the order wrong: a real family is small, so whichever reading is
    small wins.
    """
    if off + 4 > len(data):
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    (af,) = unpack_from("<I", data, off)
    if af > 0xFFFF:
        (af,) = unpack_from(">I", data, off)
    proto = _AF_TO_PROTO.get(af, LINK_NOT_IP)
    return proto, off + 4, _NO_VLAN, -1


# --- Linux cooked capture, NFLOG ----------------------------------------------------------

_ARPHRD_IPGRE: Final = 778
_ARPHRD_NETLINK: Final = 824


def _sll(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_LINUX_SLL (113): 16-byte header, protocol at bytes 14-15.

    For ARPHRD_IPGRE the protocol field holds a GRE protocol type, which for IP is the
    Ethertype anyway; Netlink frames carry no IP.
    """
    if off + 16 > len(data):
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    hatype, proto = unpack_from("!H10xH", data, off + 2)
    if hatype == _ARPHRD_NETLINK:
        return LINK_NOT_IP, off + 16, _NO_VLAN, -1
    return _sll_proto(data, proto, off + 16)


def _sll2(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_LINUX_SLL2 (276): 20-byte header, protocol at bytes 0-1."""
    if off + 20 > len(data):
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    (proto,) = unpack_from("!H", data, off)
    (hatype,) = unpack_from("!H", data, off + 8)
    if hatype == _ARPHRD_NETLINK:
        return LINK_NOT_IP, off + 20, _NO_VLAN, -1
    return _sll_proto(data, proto, off + 20)


def _sll_proto(data: bytes, proto: int, off: int) -> tuple[int, int, tuple[int, ...], int]:
    if proto == ETH_IPV4 or proto == ETH_IPV6:
        return proto, off, _NO_VLAN, -1
    if (
        proto == ETH_VLAN
        or proto == ETH_QINQ
        or proto == ETH_QINQ_OLD
        or proto == ETH_PPPOE_SESSION
        or proto == ETH_MPLS
        or proto == ETH_CISCO_META
    ):
        # `-i any` on a VLAN parent without tag offload leaves the tag in the payload; the
        # other shims are walked the same way as after an Ethernet header.
        return ether_walk(data, proto, off)
    if proto == ETH_TEB:
        # ARPHRD_IPGRE devices (gretap) put the GRE protocol type here: an Ethernet frame.
        return ETH_TEB, off, _NO_VLAN, -1
    if proto == 0x0004 or proto == 0x0001:
        return LINK_NOT_IP, off, _NO_VLAN, -1  # 802.2 LLC / 802.3 frames
    return proto, off, _NO_VLAN, -1


_NFULA_PAYLOAD: Final = 9
_MAX_NFLOG_TLVS: Final = 64


def _nflog(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_NFLOG (239): family(1) version(1) resource id(2), then TLVs.

    Each TLV is length(2) type(2) value, padded to 4 bytes; length and type are in the
    capturing host's byte order (https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html),
    so the order is chosen by which reading of the first TLV length fits. The payload TLV
    (type 9) holds the IP packet; the family says which version.
    """
    n = len(data)
    if off + 4 > n:
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    family = data[off]
    if family == 2:
        proto = ETH_IPV4
    elif family == 10:
        proto = ETH_IPV6
    else:
        return LINK_NOT_IP, off, _NO_VLAN, -1
    p = off + 4
    fmt = "<HH"
    if p + 4 <= n:
        (tl,) = unpack_from("<H", data, p)
        if tl < 4 or p + tl > n:
            fmt = ">HH"
    for _ in range(_MAX_NFLOG_TLVS):
        if p + 4 > n:
            return LINK_TRUNCATED, p, _NO_VLAN, -1
        tlen, ttype = unpack_from(fmt, data, p)
        if tlen < 4:
            return LINK_NOT_IP, p, _NO_VLAN, -1
        # Netlink attribute type has the top two bits as flags (NLA_F_NESTED, ...).
        if ttype & 0x3FFF == _NFULA_PAYLOAD:
            return proto, p + 4, _NO_VLAN, -1
        p += (tlen + 3) & ~3
    return LINK_NOT_IP, p, _NO_VLAN, -1


# --- IEEE 802.11 ---------------------------------------------------------------------------


def ieee80211(data: bytes, off: int, swapped: bool = False) -> tuple[int, int]:
    """An 802.11 data frame at ``off`` (IEEE 802.11-2020 §9.3.2.1) with an LLC/SNAP header
    (RFC 1042) -> ``(ethertype, offset)``.

    ``swapped``: the two frame-control bytes are in the wrong order, as Cisco access points
    send them inside CAPWAP. Management, control, null-data and protected (encrypted)
    frames are not IP to us.
    """
    n = len(data)
    if off + 24 > n:
        return LINK_TRUNCATED, off
    if swapped:
        fc1 = data[off]
        fc0 = data[off + 1]
    else:
        fc0 = data[off]
        fc1 = data[off + 1]
    if (fc0 >> 2) & 0x03 != 2 or fc1 & 0x40:
        return LINK_NOT_IP, off
    subtype = fc0 >> 4
    if subtype & 0x04:  # null / CF data without a body
        return LINK_NOT_IP, off
    p = off + 24
    if fc1 & 0x03 == 0x03:  # to-DS and from-DS: a fourth address
        p += 6
    if subtype & 0x08:  # QoS data: QoS control, then HT control when +HTC/order is set
        p += 2
        if fc1 & 0x80:
            p += 4
    if p + 8 > n:
        return LINK_TRUNCATED, p
    if data[p] != 0xAA or data[p + 1] != 0xAA or data[p + 2] != 0x03:
        return LINK_NOT_IP, p
    (etype,) = unpack_from("!H", data, p + 6)
    return etype, p + 8


def _ieee80211(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_IEEE802_11 (105): the 802.11 header without radio information."""
    p, o = ieee80211(data, off)
    return p, o, _NO_VLAN, -1


def _radiotap(data: bytes, off: int) -> tuple[int, int, tuple[int, ...], int]:
    """LINKTYPE_IEEE802_11_RADIOTAP (127): version(1) pad(1) length(2, little-endian), then
    802.11. A trailing FCS, when the radiotap flags say so, only adds bytes after the IP
    packet, which its own length already excludes."""
    if off + 4 > len(data):
        return LINK_TRUNCATED, off, _NO_VLAN, -1
    (rlen,) = unpack_from("<H", data, off + 2)
    if rlen < 8:
        return LINK_NOT_IP, off, _NO_VLAN, -1
    p, o = ieee80211(data, off + rlen)
    return p, o, _NO_VLAN, -1


LINK_DECODERS: dict[int, LinkDecoder] = {
    0: _null,
    1: ether,
    9: _ppp,
    12: _raw,
    14: _raw,
    50: _ppp_hdlc,
    101: _raw,
    104: _chdlc,
    105: _ieee80211,
    108: _null,
    113: _sll,
    127: _radiotap,
    204: _ppp_with_dir,
    228: _ipv4,
    229: _ipv6,
    239: _nflog,
    276: _sll2,
}
"""LINKTYPE number -> decoder ``f(data, off) -> (proto, offset, vlans, limit)``."""
