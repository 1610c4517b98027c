"""Peer: tshark does the dissection; this script only turns its field output into ndjson.

``python benchmarks/peer_tshark.py CAPTURE [--count N] > out.ndjson``

Runs::

    tshark -r CAPTURE -n -o tcp.reassemble_out_of_order:TRUE
           -Y "tls.handshake.type==1 || tcp.flags.reset==1 || tls.handshake.type==2 || tls.alert_message"
           -T fields -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst -e tcp.srcport -e tcp.dstport
           -e tcp.flags.reset -e tls.handshake.type -e tls.handshake.extensions_server_name
           -e tls.alert_message.desc

tshark reassembles TCP (out-of-order reassembly is switched on, it is off by default) and
dissects every packet of the file. Its own time and memory dominate; the script's are small.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from _peer import Tracker

FILTER = ("tls.handshake.type==1 || tcp.flags.reset==1 || tls.handshake.type==2"
          " || tls.alert_message")
FIELDS = ["ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "tcp.flags.reset", "tls.handshake.type", "tls.handshake.extensions_server_name",
          "tls.alert_message.desc"]


def command(capture: str, count: int = 0) -> list[str]:
    """The tshark command line."""
    cmd = ["tshark", "-r", capture, "-n", "-o", "tcp.reassemble_out_of_order:TRUE",
           "-Y", FILTER, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]
    for f in FIELDS:
        cmd += ["-e", f]
    if count:
        cmd += ["-c", str(count)]
    return cmd


def main() -> int:
    """Run tshark, print one JSON object per handshake."""
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--count", type=int, default=0, help="read only the first N packets")
    a = ap.parse_args()
    tr = Tracker(sys.stdout)
    proc = subprocess.Popen(command(a.capture, a.count), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        c = line.rstrip("\n").split("\t")
        if len(c) < len(FIELDS):
            continue
        src = c[0] or c[1]
        dst = c[2] or c[3]
        if not c[4] or not c[5]:
            continue
        # Tunnelled or multi-valued fields: the innermost (last) value is the one we want.
        src, dst = src.split(",")[-1], dst.split(",")[-1]
        sport, dport = int(c[4].split(",")[-1]), int(c[5].split(",")[-1])
        types = c[7].split(",") if c[7] else []
        if "1" in types:
            sni = c[8].split(",")[0] if c[8] else None
            tr.hello(src, sport, dst, dport, sni, "present" if sni else "absent")
        elif c[6] in ("1", "True"):
            if tr.is_open(dst, dport, src, sport):
                tr.server(src, sport, dst, dport, "server_reset")
            elif tr.is_open(src, sport, dst, dport):
                tr.client_reset(src, sport, dst, dport)
        elif "2" in types:
            tr.server(src, sport, dst, dport, "server_hello")
        elif c[9]:
            tr.server(src, sport, dst, dport, "alert", int(c[9].split(",")[0]))
    proc.wait()
    tr.finish()
    print(f"peer_tshark: {tr.handshakes} handshakes (tshark exit {proc.returncode})",
          file=sys.stderr)
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
