"""Peer: the same job written the way a dpkt user would write it.

``python benchmarks/peer_dpkt.py CAPTURE [--count N] > out.ndjson``

dpkt.pcap.Reader (or dpkt.pcapng.Reader) -> dpkt.ethernet.Ethernet (802.1Q tags handled by
dpkt) or dpkt.sll2.SLL2 -> IP/IP6 -> TCP. A payload that starts a handshake record is parsed
with ``dpkt.ssl.tls_multi_factory`` / ``TLSHandshake`` / ``TLSClientHello`` and the SNI read
from its extensions. Like most dpkt scripts, it does no TCP reassembly: a ClientHello split
over two segments cannot be parsed and is reported with ``sni_status`` "unknown" (counted on
stderr as missed); a hello whose second segment arrives first is seen only when its first
segment arrives. dpkt's pcapng reader uses the first interface's link type for every packet.
"""

from __future__ import annotations

import argparse
import sys

import dpkt  # type: ignore[import-untyped]
from _peer import Tracker, ip_text, sni_from_extension

TCP_RST, TCP_FIN = 0x04, 0x01


def client_hello_sni(payload: bytes) -> tuple[str | None, str] | None:
    """(sni, status) when ``payload`` holds a whole ClientHello; status unknown when cut."""
    try:
        records, _ = dpkt.ssl.tls_multi_factory(payload)
    except dpkt.dpkt.UnpackError:
        return None
    if not records:
        return None, "unknown"        # record longer than this segment: needs reassembly
    rec = records[0]
    if rec.type != 22:
        return None
    try:
        hs = dpkt.ssl.TLSHandshake(rec.data)
    except (dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError):
        return None, "unknown"
    if hs.type != 1:
        return None
    ch = hs.data
    for etype, body in getattr(ch, "extensions", []):
        if etype == 0:
            return sni_from_extension(body)
    return None, "absent"


def main() -> int:
    """Read the capture, print one JSON object per handshake."""
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--count", type=int, default=0, help="stop after N packets")
    a = ap.parse_args()
    tr = Tracker(sys.stdout, ip_text)
    with open(a.capture, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        dlt = reader.datalink()
        decode = dpkt.sll2.SLL2 if dlt == 276 else dpkt.ethernet.Ethernet
        n = 0
        for _ts, buf in reader:
            n += 1
            if a.count and n > a.count:
                break
            try:
                ip = decode(buf).data
            except (dpkt.dpkt.UnpackError, dpkt.dpkt.NeedData):
                continue
            if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                continue
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            data = tcp.data
            src, dst, sport, dport = ip.src, ip.dst, tcp.sport, tcp.dport
            if data and data[0] == 0x16 and len(data) > 5 and data[5] == 1:
                r = client_hello_sni(data)
                if r is not None:
                    tr.hello(src, sport, dst, dport, r[0], r[1])
                    continue
            if not tr.is_open(dst, dport, src, sport):
                if tcp.flags & TCP_RST and tr.is_open(src, sport, dst, dport):
                    tr.client_reset(src, sport, dst, dport)
                continue
            # Packet from the server of an undecided connection.
            if tcp.flags & TCP_RST:
                tr.server(src, sport, dst, dport, "server_reset")
            elif data and data[0] == 0x16 and len(data) > 5 and data[5] == 2:
                tr.server(src, sport, dst, dport, "server_hello")
            elif data and data[0] == 0x15 and len(data) >= 7:
                tr.server(src, sport, dst, dport, "alert", data[6])
            elif data:
                tr.server(src, sport, dst, dport, "other")
            elif tcp.flags & TCP_FIN:
                tr.server(src, sport, dst, dport, "server_close")
    tr.finish()
    print(f"peer_dpkt: {n} packets, {tr.handshakes} handshakes, "
          f"{tr.missed_multi_segment} hellos not parsed (multi-segment)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
