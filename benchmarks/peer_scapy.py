"""Peer: the same job with scapy (PcapReader and its TLS layer).

``python benchmarks/peer_scapy.py CAPTURE [--count N] > out.ndjson``

``PcapReader`` (pcap and pcapng) dissects every packet; ``load_layer("tls")`` gives the TLS
dissector, applied to any TCP payload that begins a handshake or alert record (scapy binds
TLS to port 443 only, so the script calls ``TLS(payload)`` itself). There is no TCP
reassembly: a ClientHello that does not fit one segment dissects as a partial record and is
reported with ``sni_status`` "unknown". scapy is slow, so the harness runs it on a sample.
"""

from __future__ import annotations

import argparse
import sys
import warnings

warnings.filterwarnings("ignore")

from _peer import Tracker
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.main import load_layer
from scapy.utils import PcapReader

load_layer("tls")
from scapy.layers.tls.extensions import TLS_Ext_ServerName
from scapy.layers.tls.handshake import TLSClientHello, TLSServerHello
from scapy.layers.tls.record import TLS, TLSAlert


def hello_sni(payload: bytes) -> tuple[str | None, str] | None:
    """(sni, status) of a ClientHello in ``payload``; None when it is not one."""
    if len(payload) < 5 + int.from_bytes(payload[3:5], "big"):
        return None, "unknown"       # the record continues in the next segment
    rec = TLS(payload)  # type: ignore[no-untyped-call]
    ch = rec.getlayer(TLSClientHello)
    if ch is None:
        return None
    for ext in ch.ext or []:
        if isinstance(ext, TLS_Ext_ServerName):
            for sn in ext.servernames or []:
                name = sn.servername
                if sn.nametype == 0 and name:
                    return name.decode("ascii", "replace"), "present"
            return None, "empty"
    return None, "absent"


def main() -> int:
    """Read the capture, print one JSON object per handshake."""
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--count", type=int, default=0, help="stop after N packets")
    a = ap.parse_args()
    tr = Tracker(sys.stdout)
    n = 0
    for pkt in PcapReader(a.capture):
        n += 1
        if a.count and n > a.count:
            break
        if TCP not in pkt:
            continue
        ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
        if ip is None:
            continue
        tcp = pkt[TCP]
        src, dst, sport, dport = ip.src, ip.dst, tcp.sport, tcp.dport
        flags = int(tcp.flags)
        if tr.is_open(dst, dport, src, sport):
            if flags & 0x04:
                tr.server(src, sport, dst, dport, "server_reset")
                continue
            payload = bytes(tcp.payload)
            if payload[:1] == b"\x16":
                rec = TLS(payload)  # type: ignore[no-untyped-call]
                if rec.getlayer(TLSServerHello) is not None:
                    tr.server(src, sport, dst, dport, "server_hello")
                    continue
            elif payload[:1] == b"\x15":
                al = TLS(payload).getlayer(TLSAlert)  # type: ignore[no-untyped-call]
                tr.server(src, sport, dst, dport, "alert",
                          int(al.descr) if al is not None else None)
                continue
            if flags & 0x01:
                tr.server(src, sport, dst, dport, "server_close")
            continue
        if flags & 0x04 and tr.is_open(src, sport, dst, dport):
            tr.client_reset(src, sport, dst, dport)
            continue
        payload = bytes(tcp.payload)
        if payload[:1] == b"\x16" and len(payload) > 5 and payload[5] == 1:
            r = hello_sni(payload)
            if r is not None:
                tr.hello(src, sport, dst, dport, r[0], r[1])
    tr.finish()
    print(f"peer_scapy: {min(n, a.count or n)} packets, {tr.handshakes} handshakes, "
          f"{tr.missed_multi_segment} hellos not parsed (multi-segment)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
