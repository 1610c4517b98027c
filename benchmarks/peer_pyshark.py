"""Peer: the same job with pyshark (tshark underneath, one Python object per packet).

``python benchmarks/peer_pyshark.py CAPTURE [--count N] > out.ndjson``

``pyshark.FileCapture`` with a display filter (ClientHello, ServerHello, alert, RST) and
``keep_packets=False``; tshark reassembles TCP (out-of-order reassembly switched on), pyshark
turns each matching packet's PDML into Python objects. Slow: the harness runs it on a sample.
"""

from __future__ import annotations

import argparse
import sys

import pyshark  # type: ignore[import-untyped]
from _peer import Tracker

FILTER = ("tls.handshake.type==1 || tcp.flags.reset==1 || tls.handshake.type==2"
          " || tls.alert_message")


def _all(layer: object, name: str) -> list[str]:
    """Every value of a (possibly repeated) field, as strings."""
    field = getattr(layer, name, None)
    if field is None:
        return []
    return [str(f.show) for f in field.all_fields]


def main() -> int:
    """Read the capture through pyshark, print one JSON object per handshake."""
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--count", type=int, default=0, help="read only the first N packets")
    a = ap.parse_args()
    tr = Tracker(sys.stdout)
    params = ["-c", str(a.count)] if a.count else None
    cap = pyshark.FileCapture(a.capture, display_filter=FILTER, keep_packets=False,
                              override_prefs={"tcp.reassemble_out_of_order": "TRUE"},
                              custom_parameters=params)
    n = 0
    for pkt in cap:
        n += 1
        ip = getattr(pkt, "ipv6", None) or getattr(pkt, "ip", None)
        tcp = getattr(pkt, "tcp", None)
        if ip is None or tcp is None:
            continue
        src, dst = str(ip.src), str(ip.dst)
        sport, dport = int(tcp.srcport), int(tcp.dstport)
        tls_layers = [layer for layer in pkt.layers if layer.layer_name == "tls"]
        types: list[str] = []
        names: list[str] = []
        alerts: list[str] = []
        for layer in tls_layers:
            types += _all(layer, "handshake_type")
            names += _all(layer, "handshake_extensions_server_name")
            alerts += _all(layer, "alert_message_desc")
        if "1" in types:
            sni = names[0] if names else None
            tr.hello(src, sport, dst, dport, sni, "present" if sni else "absent")
        elif tcp.flags_reset == "1" or tcp.flags_reset == "True":
            if tr.is_open(dst, dport, src, sport):
                tr.server(src, sport, dst, dport, "server_reset")
            elif tr.is_open(src, sport, dst, dport):
                tr.client_reset(src, sport, dst, dport)
        elif "2" in types:
            tr.server(src, sport, dst, dport, "server_hello")
        elif alerts:
            tr.server(src, sport, dst, dport, "alert", int(alerts[0]))
    cap.close()
    tr.finish()
    print(f"peer_pyshark: {n} filtered packets, {tr.handshakes} handshakes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
