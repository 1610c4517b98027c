"""Generate large, realistic TLS captures for the benchmarks, with a ground-truth sidecar.

Usage::

    python benchmarks/gen_capture.py OUT.pcap --packets 200000 --mix bulk --link ether
    python benchmarks/gen_capture.py OUT.pcap --size 2GB --seed 7 --mix handshake --link mixed

What it writes:

* ``OUT`` -- classic pcap (microsecond, little-endian) for ``--link ether`` (LINKTYPE_ETHERNET,
  some flows 802.1Q-tagged) and ``--link sll2`` (LINKTYPE_LINUX_SLL2, what ``tcpdump -i any``
  writes); pcapng with two interfaces (Ethernet and SLL2) for ``--link mixed``.
* ``OUT.truth.ndjson`` (``OUT`` with ``.pcap``/``.pcapng`` replaced) -- one JSON object per TCP
  connection that carried a ClientHello: ``client_ip``, ``client_port``, ``server_ip``,
  ``server_port``, ``sni`` (or null), ``sni_status``, ``outcome``, ``alert``, ``segments``,
  ``out_of_order``, ``retransmitted``, ``ip_version``, ``vlan``, ``frame`` (1-based frame of
  the hello's first segment in file order), ``outcome_frame`` (frame of the server's
  reaction).

The traffic: thousands of clients (IPv4 and IPv6) talk to a few dozen server endpoints.
Every connection opens with a three-way handshake and a real ClientHello made by this
machine's OpenSSL through Python's ``ssl`` MemoryBIO (random and session id patched per
connection). About 10 % of hellos carry no ``server_name`` and the server resets them (the
SNI-required ingress symptom); about 4 % of SNI hellos name an unknown host and get a fatal
``unrecognized_name`` (112) alert; the rest get a real ServerHello and then, in the ``bulk``
mix, a long server-to-client data transfer (~93 % of all packets are its data segments,
  acknowledged every 16 segments), in the ``handshake`` mix a
short exchange. About 30 % of hellos are inflated to ~1.8 KB (as post-quantum key shares make
today's browser hellos) and sent in two segments, a fifth of those out of order; ~3 % of
hellos are retransmitted. Connections close with FIN.

Speed: packets are assembled with ``struct`` from per-direction header templates into one
buffer written in large chunks; memory is constant (only the open flows are held). TCP
checksums are left zero (tshark and dpkt do not verify them by default); IPv4 header
checksums are correct. Client-to-server Ethernet frames shorter than 60 bytes carry the
padding a NIC adds.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import re
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

# ---------------------------------------------------------------------------------------------
# TLS templates: real bytes from OpenSSL, made once per run (a few milliseconds).

SNI_NAMES = [
    "api.example.com", "www.example.com", "login.example.net", "cdn.example.org",
    "shop.example.com", "mail.example.net", "auth.internal.example", "grpc.example.com",
    "static.example.org", "payments.example.com", "img.example.net", "ws.example.com",
    "metrics.example.org", "eu.api.example.com", "us.api.example.com", "app.example.io",
]
UNKNOWN_NAMES = ["old.example.com", "staging.example.invalid"]  # answered with alert 112

ALERT_UNRECOGNIZED_NAME = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112])  # RFC 8446 §6


def _client_hello(server_hostname: str | None, alpn: list[str]) -> bytes:
    """One ClientHello record as OpenSSL sends it (RFC 8446 §4.1.2)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def _inflate(hello: bytes, target: int) -> bytes:
    """Grow a ClientHello to ``target`` bytes by enlarging its padding extension (RFC 7685).

    Walks the hello to the extensions block, grows (or appends) extension 21 and rewrites the
    three enclosing lengths (record, handshake, extensions), so the result is a well-formed
    hello of the size of today's post-quantum browser hellos.
    """
    body = hello[5:]
    p = 4 + 2 + 32
    p += 1 + body[p]                                   # session_id
    p += 2 + int.from_bytes(body[p:p + 2], "big")      # cipher_suites
    p += 1 + body[p]                                   # compression_methods
    ext_start = p + 2
    exts_len = int.from_bytes(body[p:p + 2], "big")
    exts = body[ext_start:ext_start + exts_len]
    out = bytearray()
    q = 0
    grow = target - len(hello)
    found = False
    while q + 4 <= len(exts):
        etype, elen = struct.unpack_from("!HH", exts, q)
        ebody = exts[q + 4:q + 4 + elen]
        if etype == 21 and not found:
            ebody = ebody + bytes(grow)
            found = True
        out += struct.pack("!HH", etype, len(ebody)) + ebody
        q += 4 + elen
    if not found:
        out += struct.pack("!HH", 21, grow - 4) + bytes(grow - 4)
    hs_body = body[4:p] + struct.pack("!H", len(out)) + bytes(out)
    hs = bytes([1]) + len(hs_body).to_bytes(3, "big") + hs_body
    return hello[:3] + struct.pack("!H", len(hs)) + hs


def _server_hello() -> bytes:
    """A real ServerHello record: the first record of an OpenSSL server's first flight."""
    with tempfile.TemporaryDirectory() as td:
        key, crt = os.path.join(td, "k.pem"), os.path.join(td, "c.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
             "-subj", "/CN=api.example.com", "-days", "2"],
            check=True, capture_output=True,
        )
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(crt, key)
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
        ci, co, si, so = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        cli = cctx.wrap_bio(ci, co, server_hostname="api.example.com")
        srv = sctx.wrap_bio(si, so, server_side=True)
        try:
            cli.do_handshake()
        except ssl.SSLWantReadError:
            pass
        si.write(co.read())
        try:
            srv.do_handshake()
        except ssl.SSLWantReadError:
            pass
        flight = so.read()
    n = int.from_bytes(flight[3:5], "big")
    if flight[0] != 0x16 or flight[5] != 2:
        raise RuntimeError("unexpected server flight")
    return flight[:5 + n]


class Templates:
    """The TLS byte templates one generator run uses."""

    def __init__(self) -> None:
        alpns = [["h2", "http/1.1"], ["http/1.1"], []]
        self.sni: dict[str, list[bytes]] = {}
        for i, name in enumerate(SNI_NAMES + UNKNOWN_NAMES):
            base = _client_hello(name, alpns[i % 3])
            self.sni[name] = [base, _inflate(base, 1790 + (i * 7) % 40)]
        base = _client_hello(None, ["http/1.1"])
        self.nosni = [base, _inflate(base, 1800)]
        self.server_hello = _server_hello()
        # Server application data: a long run of TLS 1.3 application_data records (RFC 8446
        # §5.2) from which bulk segments are sliced at their stream offsets.
        rng = random.Random(1)
        chunks = []
        for _ in range(16):
            body = rng.randbytes(16401)
            chunks.append(b"\x17\x03\x03" + struct.pack("!H", len(body)) + body)
        self.app_stream = b"".join(chunks)
        body = rng.randbytes(280)
        self.client_request = b"\x17\x03\x03" + struct.pack("!H", len(body)) + body


# ---------------------------------------------------------------------------------------------
# Writers

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL2 = 276
SNAPLEN = 262144


class PcapWriter:
    """Classic pcap (magic a1b2c3d4 little-endian, microseconds)."""

    def __init__(self, f: BinaryIO, linktype: int) -> None:
        self.f = f
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype))

    def header(self, ts_ns: int, iface: int, length: int) -> bytes:
        """The per-record header for a frame of ``length`` bytes."""
        us = ts_ns // 1000
        return struct.pack("<IIII", us // 1_000_000, us % 1_000_000, length, length)

    trailer_pad = staticmethod(lambda length: b"")


class PcapngWriter:
    """pcapng: one section, interface 0 Ethernet and interface 1 SLL2, nanosecond resolution."""

    def __init__(self, f: BinaryIO, linktypes: list[int]) -> None:
        self.f = f
        shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        f.write(struct.pack("<II", 0x0A0D0D0A, 12 + len(shb_body)) + shb_body
                + struct.pack("<I", 12 + len(shb_body)))
        for lt in linktypes:
            # if_tsresol (option 9) = 9: nanoseconds; then opt_endofopt.
            opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
            body = struct.pack("<HHI", lt, 0, SNAPLEN) + opts
            f.write(struct.pack("<II", 1, 12 + len(body)) + body + struct.pack("<I", 12 + len(body)))

    def header(self, ts_ns: int, iface: int, length: int) -> bytes:
        """The EPB header (block type, length, interface, timestamp, lengths)."""
        pad = (-length) & 3
        total = 32 + length + pad
        return struct.pack("<IIIIIII", 6, total, iface, ts_ns >> 32, ts_ns & 0xFFFFFFFF,
                           length, length)

    @staticmethod
    def trailer_pad(length: int) -> bytes:
        """Padding to 32 bits plus the trailing block length."""
        pad = (-length) & 3
        return bytes(pad) + struct.pack("<I", 32 + length + pad)


# ---------------------------------------------------------------------------------------------
# Flows

C2S, S2C = 0, 1
HELLO, REACTION = 1, 2   # marks on the packets whose frame numbers the truth records
MSS = 1448

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_SYN_OPTS = bytes.fromhex("020405b4 0402 080a 00000000 00000000 01 030307".replace(" ", ""))


def _ip4_partial(src: bytes, dst: bytes) -> int:
    """Ones-complement sum of the IPv4 header words that do not change per packet."""
    s = 0x4500 + 0x4000 + (64 << 8 | 6)
    for b in (src, dst):
        s += (b[0] << 8 | b[1]) + (b[2] << 8 | b[3])
    return s


class Flow:
    """One TCP connection: addresses, link headers, plan (filled in by ``new_flow``)."""

    __slots__ = (
        "alert",
        "cip",
        "client_ip",
        "cport",
        "frame",
        "hello",
        "iface",
        "ipid",
        "link_c2s",
        "link_s2c",
        "n_data",
        "ooo",
        "outcome",
        "outcome_frame",
        "part_c2s",
        "part_s2c",
        "retrans",
        "server_ip",
        "sip",
        "sni",
        "sport",
        "status",
        "two_seg",
        "v6",
        "vlan",
    )
    cip: bytes
    sip: bytes
    cport: int
    sport: int
    v6: bool
    iface: int
    link_c2s: bytes
    link_s2c: bytes
    part_c2s: int
    part_s2c: int
    ipid: int
    sni: str | None
    status: str
    outcome: str
    alert: int | None
    hello: bytes
    two_seg: bool
    ooo: bool
    retrans: bool
    n_data: int
    vlan: int
    frame: int
    outcome_frame: int
    client_ip: str
    server_ip: str


class Generator:
    """Streams a capture of interleaved flows to ``out`` and the truth to ``truth``."""

    def __init__(self, out: BinaryIO, truth_f: TextIO, *, seed: int, mix: str, link: str,
                 max_packets: int | None, max_bytes: int | None) -> None:
        self.rng = random.Random(seed)
        self.t = Templates()
        self.mix = mix
        self.link = link
        self.truth_f = truth_f
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        if link == "mixed":
            self.w: PcapWriter | PcapngWriter = PcapngWriter(out, [LINKTYPE_ETHERNET,
                                                                    LINKTYPE_LINUX_SLL2])
        else:
            self.w = PcapWriter(out, LINKTYPE_LINUX_SLL2 if link == "sll2" else LINKTYPE_ETHERNET)
        self.out = out
        self.buf = bytearray()
        self.packets = 0
        self.bytes = out.tell()
        self.connections = 0
        self.ts = 1_767_225_600_000_000_000 + seed * 1_000_000_000  # 2026-01-01 UTC
        self.winding_down = False
        rng = self.rng
        self.clients4 = [bytes([10, rng.randrange(1, 250), rng.randrange(256), rng.randrange(1, 255)])
                         for _ in range(4000)]
        self.clients6 = [bytes.fromhex("fd00000000000001") + rng.randbytes(8) for _ in range(1500)]
        self.servers4 = [(bytes([192, 0, 2, 10 + i]), p) for i in range(12) for p in (443, 8443)]
        self.servers6 = [(bytes.fromhex("20010db80000000000000000000000") + bytes([i]), 443)
                         for i in range(1, 7)]
        self.next_port: dict[bytes, int] = {}
        self.macs = [bytes([2, 0, 0x5E, 0, 0, i]) for i in range(1, 9)]

    # -- link headers -------------------------------------------------------------------------

    def _link(self, flow: Flow, direction: int) -> bytes:
        ethertype = 0x86DD if flow.v6 else 0x0800
        if flow.iface == 0 and self.link != "sll2":
            a, b = self.macs[0], self.macs[1 + flow.cip[-1] % 7]
            dst, src = (a, b) if direction == C2S else (b, a)
            if flow.vlan:
                return dst + src + struct.pack("!HHH", 0x8100, flow.vlan, ethertype)
            return dst + src + struct.pack("!H", ethertype)
        # LINUX_SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, addr len, addr.
        ptype = 0 if direction == C2S else 4   # PACKET_HOST in, PACKET_OUTGOING out
        mac = self.macs[1] if direction == C2S else self.macs[0]
        return struct.pack("!HHIHBB", ethertype, 0, 2, 1, ptype, 6) + mac + b"\0\0"

    # -- connection plan ----------------------------------------------------------------------

    def new_flow(self) -> Flow:
        """Pick endpoints and the plan of one connection."""
        rng = self.rng
        f = Flow()
        f.v6 = rng.random() < 0.25
        if f.v6:
            f.cip = rng.choice(self.clients6)
            f.sip, f.sport = rng.choice(self.servers6)
        else:
            f.cip = rng.choice(self.clients4)
            f.sip, f.sport = rng.choice(self.servers4)
        port = self.next_port.get(f.cip, 32768 + rng.randrange(20000))
        port = 32768 if port >= 61000 else port + 1 + rng.randrange(3)
        self.next_port[f.cip] = port
        f.cport = port
        f.iface = (1 if rng.random() < 0.5 else 0) if self.link == "mixed" else 0
        f.vlan = rng.choice((100, 200, 300)) if (self.link != "sll2" and f.iface == 0
                                                  and rng.random() < 0.2) else 0
        f.link_c2s, f.link_s2c = self._link(f, C2S), self._link(f, S2C)
        if not f.v6:
            f.part_c2s, f.part_s2c = _ip4_partial(f.cip, f.sip), _ip4_partial(f.sip, f.cip)
        f.ipid = rng.randrange(65536)
        big = rng.random() < 0.3
        r = rng.random()
        if r < 0.10:
            f.sni, f.status, f.outcome, f.alert = None, "absent", "server_reset", None
            tmpl = self.t.nosni[big]
        elif r < 0.14:
            f.sni = rng.choice(UNKNOWN_NAMES)
            f.status, f.outcome, f.alert = "present", "alert", 112
            tmpl = self.t.sni[f.sni][big]
        else:
            f.sni = rng.choice(SNI_NAMES)
            f.status, f.outcome, f.alert = "present", "server_hello", None
            tmpl = self.t.sni[f.sni][big]
        # Fresh random and session id per connection (RFC 8446 §4.1.2 offsets 11 and 44).
        f.hello = tmpl[:11] + rng.randbytes(32) + tmpl[43:44] + rng.randbytes(32) + tmpl[76:]
        f.two_seg = len(f.hello) > MSS
        f.ooo = f.two_seg and rng.random() < 0.2
        f.retrans = rng.random() < 0.03
        if self.mix == "bulk":
            f.n_data = rng.randrange(300, 1500)
        else:
            f.n_data = rng.randrange(0, 3)
        f.frame = 0
        f.outcome_frame = 0
        f.client_ip = str(ipaddress.ip_address(f.cip))
        f.server_ip = str(ipaddress.ip_address(f.sip))
        return f

    def truth(self, f: Flow) -> None:
        """Append the connection's expected answer to the sidecar."""
        self.truth_f.write(json.dumps({
            "client_ip": f.client_ip, "client_port": f.cport,
            "server_ip": f.server_ip, "server_port": f.sport,
            "sni": f.sni, "sni_status": f.status, "outcome": f.outcome, "alert": f.alert,
            "segments": 2 if f.two_seg else 1, "out_of_order": f.ooo,
            "retransmitted": f.retrans, "ip_version": 6 if f.v6 else 4,
            "vlan": f.vlan or None, "frame": f.frame, "outcome_frame": f.outcome_frame,
        }) + "\n")

    def script(self, f: Flow) -> Iterator[tuple[int, int, int, int, bytes, int]]:
        """The flow's packets in order: (direction, flags, seq, ack, payload, mark)."""
        rng = self.rng
        c = rng.getrandbits(32)
        s = rng.getrandbits(32)
        M = 0xFFFFFFFF
        yield C2S, 0x02, c, 0, b"", 0                     # SYN
        c = (c + 1) & M
        yield S2C, 0x12, s, c, b"", 0                     # SYN-ACK
        s = (s + 1) & M
        yield C2S, 0x10, c, s, b"", 0                     # ACK
        h = f.hello
        if f.two_seg:
            cut = rng.randrange(1200, MSS + 1)
            a, b = h[:cut], h[cut:]
            if f.ooo:
                yield C2S, 0x18, (c + cut) & M, s, b, 0
                yield C2S, 0x10, c, s, a, HELLO
            else:
                yield C2S, 0x10, c, s, a, HELLO
                yield C2S, 0x18, (c + cut) & M, s, b, 0
            if f.retrans:
                yield C2S, 0x10, c, s, a, 0
        else:
            yield C2S, 0x18, c, s, h, HELLO
            if f.retrans:
                yield C2S, 0x18, c, s, h, 0
        c = (c + len(h)) & M
        if f.outcome == "server_reset":
            # The SNI-required ingress: no certificate for a nameless hello, so it resets.
            yield S2C, 0x14, s, c, b"", REACTION
            return
        if f.outcome == "alert":
            a = ALERT_UNRECOGNIZED_NAME
            yield S2C, 0x18, s, c, a, REACTION
            s = (s + len(a)) & M
            yield S2C, 0x11, s, c, b"", 0
            s = (s + 1) & M
            yield C2S, 0x11, c, s, b"", 0
            yield S2C, 0x10, s, (c + 1) & M, b"", 0
            return
        sh = self.t.server_hello
        yield S2C, 0x18, s, c, sh, REACTION
        s = (s + len(sh)) & M
        req = self.t.client_request
        yield C2S, 0x18, c, s, req, 0
        c = (c + len(req)) & M
        app = self.t.app_stream
        span = len(app) - MSS
        off = 0
        for i in range(f.n_data):
            if self.winding_down and i > 2:
                break
            o = off % span
            seg = app[o:o + MSS]
            yield S2C, 0x10, s, c, seg, 0
            s = (s + MSS) & M
            off += MSS
            if i & 15 == 15:   # delayed ACKs, stretched by receive offload
                yield C2S, 0x10, c, s, b"", 0
        yield C2S, 0x11, c, s, b"", 0                     # client closes
        c = (c + 1) & M
        yield S2C, 0x11, s, c, b"", 0
        s = (s + 1) & M
        yield C2S, 0x10, c, s, b"", 0

    # -- emission -----------------------------------------------------------------------------

    def emit(self, f: Flow, d: int, flags: int, seq: int, ack: int, payload: bytes) -> None:
        """Append one frame to the output buffer."""
        if d == C2S:
            link, src, dst, sp, dp = f.link_c2s, f.cip, f.sip, f.cport, f.sport
        else:
            link, src, dst, sp, dp = f.link_s2c, f.sip, f.cip, f.sport, f.cport
        if flags & 0x02:
            tcp = _TCP.pack(sp, dp, seq, ack, 0xA0, flags, 64240, 0, 0) + _SYN_OPTS
        else:
            tcp = _TCP.pack(sp, dp, seq, ack, 0x50, flags, 502, 0, 0)
        tl = len(tcp) + len(payload)
        if f.v6:
            ip = _IPV6.pack(0x60000000, tl, 6, 64, src, dst)
        else:
            f.ipid = (f.ipid + 1) & 0xFFFF
            tot = 20 + tl
            x = (f.part_c2s if d == C2S else f.part_s2c) + tot + f.ipid
            x = (x & 0xFFFF) + (x >> 16)
            x = (x & 0xFFFF) + (x >> 16)
            ip = _IPV4.pack(0x45, 0, tot, f.ipid, 0x4000, 64, 6, ~x & 0xFFFF, src, dst)
        n = len(link) + len(ip) + tl
        # Frames received from the wire are padded to Ethernet's 60-byte minimum (IEEE 802.3
        # §3.2.8); the IP total length, not the frame length, bounds the packet.
        pad = 60 - n if (d == C2S and n < 60 and self.link != "sll2" and f.iface == 0) else 0
        n += pad
        self.ts += 2000 + int(self.rng.random() * 36000)
        buf = self.buf
        buf += self.w.header(self.ts, f.iface, n)
        buf += link
        buf += ip
        buf += tcp
        buf += payload
        if pad:
            buf += bytes(pad)
        if self.link == "mixed":
            buf += self.w.trailer_pad(n)
        self.packets += 1
        if len(buf) >= 1 << 22:
            self.flush()

    def flush(self) -> None:
        """Write the buffered frames."""
        self.out.write(self.buf)
        self.bytes += len(self.buf)
        self.buf.clear()

    def _budget_left(self) -> bool:
        if self.max_packets is not None and self.packets >= self.max_packets:
            return False
        return self.max_bytes is None or self.bytes + len(self.buf) < self.max_bytes

    def run(self) -> None:
        """Interleave flows until the budget is spent, then let open flows finish."""
        rng = self.rng
        width = 48 if self.mix == "bulk" else 256
        active: list[tuple[Flow, Iterator[tuple[int, int, int, int, bytes, int]]]] = []
        for _ in range(width):
            f = self.new_flow()
            active.append((f, self.script(f)))
        while active:
            i = int(rng.random() * len(active))
            f, it = active[i]
            try:
                d, flags, seq, ack, payload, mark = next(it)
            except StopIteration:
                self.truth(f)
                self.connections += 1
                if not self.winding_down and self._budget_left():
                    nf = self.new_flow()
                    active[i] = (nf, self.script(nf))
                else:
                    active[i] = active[-1]
                    active.pop()
                continue
            if mark == HELLO:
                f.frame = self.packets + 1
            elif mark == REACTION:
                f.outcome_frame = self.packets + 1
            self.emit(f, d, flags, seq, ack, payload)
            if not self.winding_down and not self._budget_left():
                self.winding_down = True
        self.flush()


def parse_size(text: str) -> int:
    """``2GB``, ``500MB``, ``10k``, ``123`` -> bytes (powers of 1000)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    base = 1024 if m.group(3).startswith("i") else 1000
    mult = {"": 1, "k": base, "m": base**2, "g": base**3, "t": base**4}[m.group(2)]
    return int(float(m.group(1)) * mult)


def truth_path(out: Path) -> Path:
    """Where the ground-truth sidecar of capture ``out`` lives."""
    name = out.name
    for ext in (".pcapng", ".pcap"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return out.with_name(name + ".truth.ndjson")


def generate(out: Path, *, packets: int | None = None, size: int | None = None, seed: int = 1,
             mix: str = "bulk", link: str = "ether") -> dict[str, float]:
    """Write a capture and its truth sidecar; return counts and timing."""
    if packets is None and size is None:
        packets = 100_000
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    ttmp = truth_path(out).with_name(truth_path(out).name + ".part")
    with open(tmp, "wb", buffering=0) as f, open(ttmp, "w", encoding="utf-8") as tf:
        g = Generator(f, tf, seed=seed, mix=mix, link=link, max_packets=packets, max_bytes=size)
        g.run()
    os.replace(ttmp, truth_path(out))
    os.replace(tmp, out)
    return {"packets": g.packets, "bytes": out.stat().st_size, "connections": g.connections,
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--packets", type=int, help="stop opening flows after about N packets")
    g.add_argument("--size", type=parse_size, help="stop opening flows after about SIZE bytes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mix", choices=("bulk", "handshake"), default="bulk")
    ap.add_argument("--link", choices=("ether", "sll2", "mixed"), default="ether")
    a = ap.parse_args(argv)
    if a.link == "mixed" and a.out.suffix == ".pcap":
        print("note: --link mixed writes pcapng", file=sys.stderr)
    r = generate(a.out, packets=a.packets, size=a.size, seed=a.seed, mix=a.mix, link=a.link)
    print(f"{a.out}: {r['packets']:.0f} packets, {r['bytes'] / 1e6:.1f} MB, "
          f"{r['connections']:.0f} connections in {r['seconds']:.1f} s "
          f"({r['packets'] / max(r['seconds'], 1e-9):.0f} packets/s); truth: {truth_path(a.out)}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
