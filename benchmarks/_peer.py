"""What every peer script shares: the per-connection bookkeeping and the ndjson output.

Each peer decodes packets its own way (dpkt, scapy, pyshark, tshark) and reports three kinds
of event to a :class:`Tracker`: a ClientHello (with its SNI), and the server's first
reaction (ServerHello, alert, RST, FIN). The tracker's work per event is a dictionary lookup,
negligible next to any of the decoders, so the timings compare the decoders.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Hashable
from typing import IO, Any


def ip_text(addr: bytes) -> str:
    """Packed IPv4/IPv6 address -> text (``ipaddress`` canonical form)."""
    return str(ipaddress.ip_address(addr))


class Tracker:
    """Connections that carried a ClientHello, until the server's first reaction.

    Keys are ``(client_ip, client_port, server_ip, server_port)`` in whatever address form
    the peer has at hand; ``fmt`` turns an address into text for the output.
    """

    def __init__(self, out: IO[str], fmt: Callable[[Any], str] = str) -> None:
        self.out = out
        self.fmt = fmt
        self.open: dict[tuple[Hashable, int, Hashable, int], dict[str, Any]] = {}
        self.seen: set[tuple[Hashable, int, Hashable, int]] = set()
        self.handshakes = 0
        self.missed_multi_segment = 0

    def hello(self, cip: Hashable, cport: int, sip: Hashable, sport: int,
              sni: str | None, status: str) -> None:
        """A ClientHello (``status`` present/absent/empty/unknown) from the client side."""
        key = (cip, cport, sip, sport)
        if key in self.seen:          # a retransmission, or a later hello on the same flow
            return
        self.seen.add(key)
        if status == "unknown":
            self.missed_multi_segment += 1
        self.open[key] = {
            "client_ip": self.fmt(cip), "client_port": cport,
            "server_ip": self.fmt(sip), "server_port": sport,
            "sni": sni, "sni_status": status, "outcome": "no_response", "alert": None,
        }

    def server(self, sip: Hashable, sport: int, cip: Hashable, cport: int, outcome: str,
               alert: int | None = None) -> None:
        """The server side of a connection did something: the first such event decides."""
        rec = self.open.pop((cip, cport, sip, sport), None)
        if rec is not None:
            rec["outcome"] = outcome
            rec["alert"] = alert
            self._write(rec)

    def client_reset(self, cip: Hashable, cport: int, sip: Hashable, sport: int) -> None:
        """The client reset the connection before the server reacted."""
        self.server(sip, sport, cip, cport, "client_reset")

    def is_open(self, cip: Hashable, cport: int, sip: Hashable, sport: int) -> bool:
        """True while the connection's outcome is still undecided."""
        return (cip, cport, sip, sport) in self.open

    def _write(self, rec: dict[str, Any]) -> None:
        self.handshakes += 1
        self.out.write(json.dumps(rec) + "\n")

    def finish(self) -> None:
        """End of capture: whatever is still open got no response."""
        for rec in self.open.values():
            self._write(rec)
        self.open.clear()
        self.out.flush()


def sni_from_extension(body: bytes) -> tuple[str | None, str]:
    """(sni, status) from a server_name extension body (RFC 6066 §3)."""
    if len(body) < 2:
        return None, "empty"
    end = min(len(body), 2 + int.from_bytes(body[:2], "big"))
    p = 2
    while p + 3 <= end:
        ntype = body[p]
        n = int.from_bytes(body[p + 1:p + 3], "big")
        name = body[p + 3:p + 3 + n]
        if ntype == 0 and name:
            return name.decode("ascii", "replace"), "present"
        p += 3 + n
    return None, "empty"
