"""Flow table: outcomes, hello status, preludes, Zeek states, skipping, limits.

Segments are built directly; ClientHello bytes come from Python's own TLS stack (``ssl``
with memory BIOs, no network), server replies are written by hand from RFC 8446 §4.1.3/§6.
"""

from __future__ import annotations

import random
import socket
import ssl
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sniparse.errors import Issues
from sniparse.flows import FlowTable, Handshake
from sniparse.tcp import ACK, FIN, PSH, RST, SYN, Segment, flow_key
from sniparse.tls import HRR_RANDOM

MS = 1_000_000
T0 = 1_700_000_000 * 10**9


def client_hello(sni: str | None, *, big: bool = False, tls13_only: bool = False) -> bytes:
    """A real ClientHello from the ssl module (``big``: ~1.5 KB through long ALPN names)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls13_only:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if big:
        ctx.set_alpn_protocols(["h2", "http/1.1"] + ["x" * 200 + str(i) for i in range(6)])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def _record(ct: int, body: bytes) -> bytes:
    return struct.pack("!BHH", ct, 0x0303, len(body)) + body


def server_hello(*, hrr: bool = False) -> bytes:
    """A TLS 1.3 ServerHello (or HelloRetryRequest) record, RFC 8446 §4.1.3."""
    rnd = HRR_RANDOM if hrr else bytes(range(32))
    exts = struct.pack("!HHH", 43, 2, 0x0304)
    exts += struct.pack("!HHH", 51, 2, 0x001D) if hrr else struct.pack("!HHHH", 51, 36, 0x001D, 32) + bytes(32)
    body = struct.pack("!H", 0x0303) + rnd + b"\x00" + struct.pack("!HB", 0x1301, 0)
    body += struct.pack("!H", len(exts)) + exts
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    return _record(22, msg)


def alert(desc: int) -> bytes:
    return _record(21, bytes([2, desc]))


CIP = socket.inet_aton("10.0.0.1")
SIP = socket.inet_aton("10.0.0.2")


class Conv:
    """Builds the segments of one TCP conversation with consistent seq/ack numbers."""

    def __init__(self, sport: int = 40000, dport: int = 443, cisn: int = 1000, sisn: int = 5000,
                 t0: int = T0, frame0: int = 0) -> None:
        self.sport, self.dport = sport, dport
        self.cseq, self.sseq = cisn, sisn
        self.t = t0
        self.frame = frame0
        self.segs: list[Segment] = []

    def _mk(self, client: bool, flags: int, payload: bytes = b"", seq: int | None = None,
            wire: int | None = None, dt: int = MS) -> Segment:
        self.t += dt
        self.frame += 1
        if client:
            src, dst, sp, dp = CIP, SIP, self.sport, self.dport
            s, a = self.cseq, self.sseq
        else:
            src, dst, sp, dp = SIP, CIP, self.dport, self.sport
            s, a = self.sseq, self.cseq
        if seq is not None:
            s = seq
        seg = Segment(self.frame, self.t, 4, src, dst, sp, dp, s & 0xFFFFFFFF, a & 0xFFFFFFFF,
                      flags, 65535, payload, len(payload) if wire is None else wire, b"", None, ())
        self.segs.append(seg)
        return seg

    def handshake(self) -> Conv:
        self.syn()
        self.synack()
        self.ack()
        return self

    def syn(self, payload: bytes = b"") -> Conv:
        self._mk(True, SYN, payload)
        self.cseq += 1 + len(payload)
        return self

    def synack(self) -> Conv:
        self._mk(False, SYN | ACK)
        self.sseq += 1
        return self

    def ack(self) -> Conv:
        self._mk(True, ACK)
        return self

    def sack(self) -> Conv:
        self._mk(False, ACK)
        return self

    def cdata(self, data: bytes, sizes: Iterable[int] | None = None) -> list[Segment]:
        out = []
        sizes = list(sizes) if sizes else [len(data)]
        off = 0
        for n in sizes + [len(data)]:
            if off >= len(data):
                break
            p = data[off : off + n]
            out.append(self._mk(True, ACK | PSH, p, seq=self.cseq + off))
            off += len(p)
        self.cseq += len(data)
        return out

    def sdata(self, data: bytes) -> Conv:
        self._mk(False, ACK | PSH, data)
        self.sseq += len(data)
        return self

    def cfin(self) -> Conv:
        self._mk(True, FIN | ACK)
        self.cseq += 1
        return self

    def sfin(self) -> Conv:
        self._mk(False, FIN | ACK)
        self.sseq += 1
        return self

    def crst(self) -> Conv:
        self._mk(True, RST | ACK)
        return self

    def srst(self, dt: int = MS) -> Conv:
        self._mk(False, RST | ACK, dt=dt)
        return self


def run(segs: Iterable[Segment], *, finish: bool = True, table: FlowTable | None = None,
        skip_decided: bool = False) -> tuple[list[Handshake], FlowTable]:
    t = table if table is not None else FlowTable(Issues())
    out: list[Handshake] = []
    for s in segs:
        key = flow_key(s.src, s.dst, s.sport, s.dport)
        if skip_decided and not (s.flags & (SYN | FIN | RST)) and key in t.decided:
            continue
        out.extend(t.feed(s))
    if finish:
        out.extend(t.finish())
    return out, t


def one(segs: Iterable[Segment], **kw: object) -> Handshake:
    hs, _ = run(segs, **kw)  # type: ignore[arg-type]
    assert len(hs) == 1, hs
    return hs[0]


def same(a: Handshake, b: Handshake) -> None:
    """Equal up to timing of the reaction (packets may arrive in another order)."""
    for f in ("sni", "sni_status", "unknown_reason", "segments", "outcome", "alert", "versions",
              "alpn", "client_ip", "client_port", "server_port", "conn_state", "hrr"):
        assert getattr(a, f) == getattr(b, f), f


HELLO_NOSNI = client_hello(None)
HELLO_SNI = client_hello("api.example.com")
BIG = client_hello("big.example.com", big=True)


# -- outcomes -------------------------------------------------------------------------------

def test_sni_required_server_resets_non_sni_hello() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c.srst(dt=3 * MS)
    h = one(c.segs)
    assert h.sni_status == "absent" and h.without_sni and h.sni is None
    assert h.outcome == "server_reset"
    assert h.outcome_ms == pytest.approx(3.0)
    assert h.conn_state == "RSTR"
    assert h.history == "ShADr"
    assert h.client_ip == "10.0.0.1" and h.server_port == 443 and h.segments == 1
    assert h.versions[0] == "TLSv1.3" and "TLSv1.2" in h.versions


def test_alert_112() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c.sdata(alert(112)).sfin().cfin()
    h = one(c.segs)
    assert (h.outcome, h.alert) == ("alert", 112)
    assert h.outcome_ms == pytest.approx(1.0)
    assert h.conn_state == "SF"


def test_warning_alert_then_server_hello_is_served() -> None:
    # RFC 6066 §3 lets a server warn unrecognized_name and carry on: the answer is the
    # ServerHello that follows, in the same segment or a later one.
    warn = _record(21, bytes([1, 112]))
    for split in (False, True):
        c = Conv().handshake()
        c.cdata(HELLO_NOSNI)
        if split:
            c.sdata(warn)
            c.sdata(server_hello())
        else:
            c.sdata(warn + server_hello())
        c.sfin().cfin()
        h = one(c.segs)
        assert (h.outcome, h.alert) == ("server_hello", None), split


def test_lone_warning_alert_is_the_answer() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c.sdata(_record(21, bytes([1, 112]))).sfin().cfin()
    h = one(c.segs)
    assert (h.outcome, h.alert) == ("alert", 112)


def test_server_hello_with_sni_sf() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.sdata(server_hello()).ack().cfin().sfin().ack()
    h = one(c.segs)
    assert h.sni == "api.example.com" and h.sni_status == "present"
    assert h.outcome == "server_hello" and h.server_version == "TLSv1.3" and not h.hrr
    assert h.conn_state == "SF"
    assert h.history == "ShADdFf"
    assert h.client_hello is not None and h.ts_ns == c.segs[3].ts_ns and h.frame == 4


def test_client_reset_server_close_no_response() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.crst()
    h = one(c.segs)
    assert h.outcome == "client_reset" and h.conn_state == "RSTO"

    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.sfin().cfin()
    h = one(c.segs)
    assert h.outcome == "server_close" and h.conn_state == "SF" and h.outcome_ms is not None

    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.cfin()
    h = one(c.segs)
    assert h.outcome == "no_response" and h.outcome_ms is None and h.conn_state == "S2"

    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    h = one(c.segs)
    assert h.outcome == "no_response" and h.conn_state == "S1"


def test_non_tls_server_bytes_then_fin() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.sdata(b"HTTP/1.1 400 Bad Request\r\n\r\n").sfin().cfin()
    h = one(c.segs)
    assert h.outcome == "server_close" and h.detail and "not TLS" in h.detail


# -- segmentation ---------------------------------------------------------------------------

def _big_conv(order: str) -> list[Segment]:
    c = Conv().handshake()
    segs = c.cdata(BIG, [900])
    c.srst()
    pre, rst = c.segs[:3], c.segs[-1]
    if order == "reversed":
        segs = segs[::-1]
    elif order == "retrans":
        segs = [segs[0], segs[0], segs[1], segs[1]]
    return pre + segs + [rst]


def test_two_segment_hello_any_order() -> None:
    base = one(_big_conv("in_order"))
    assert base.segments == 2 and base.sni == "big.example.com"
    assert len(BIG) > 1400
    for order in ("reversed", "retrans"):
        same(one(_big_conv(order)), base)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=0, max_size=12),
    seed=st.integers(min_value=0, max_value=10**9),
)
def test_every_segmentation_same_record(sizes: list[int], seed: int) -> None:
    c = Conv().handshake()
    segs = c.cdata(BIG, sizes)
    c.sdata(server_hello()).cfin().sfin()
    pre, post = c.segs[:3], c.segs[3 + len(segs) :]
    random.Random(seed).shuffle(segs)
    h = one(pre + segs + post)
    assert h.sni == "big.example.com" and h.sni_status == "present"
    assert h.segments == len(segs)
    assert h.outcome == "server_hello" and h.conn_state == "SF"


def test_byte_at_a_time() -> None:
    c = Conv().handshake()
    segs = c.cdata(HELLO_NOSNI, [1] * len(HELLO_NOSNI))
    c.srst()
    h = one(c.segs)
    assert h.segments == len(segs) == len(HELLO_NOSNI)
    assert h.sni_status == "absent" and h.outcome == "server_reset"


def test_sequence_wrap() -> None:
    c = Conv(cisn=0xFFFFFFFF - 700).handshake()
    c.cdata(BIG, [500, 500])
    c.srst()
    h = one(c.segs)
    assert h.sni == "big.example.com" and h.segments == 3


def test_tcp_fast_open() -> None:
    c = Conv()
    c.syn(payload=HELLO_SNI).synack().ack()
    c.sdata(server_hello()).cfin().sfin()
    h = one(c.segs)
    assert h.sni == "api.example.com" and h.outcome == "server_hello" and h.frame == 1


# -- incomplete hellos: never "absent" ------------------------------------------------------

def test_snaplen_cut_is_unknown_truncated() -> None:
    c = Conv().handshake()
    s = c._mk(True, ACK | PSH, HELLO_NOSNI[:96], wire=len(HELLO_NOSNI))
    c.cseq += len(HELLO_NOSNI)
    c.srst()
    h = one(c.segs)
    assert (h.sni_status, h.unknown_reason) == ("unknown", "truncated")
    assert not h.without_sni and h.outcome == "server_reset" and h.frame == s.frame


def test_missing_segment_is_gap() -> None:
    c = Conv().handshake()
    segs = c.cdata(BIG, [500, 500])
    c.srst()
    h = one([x for x in c.segs if x is not segs[1]])
    assert (h.sni_status, h.unknown_reason) == ("unknown", "gap")


def test_capture_end_mid_hello() -> None:
    c = Conv().handshake()
    segs = c.cdata(BIG, [500])
    h = one(c.segs[:3] + segs[:1])
    assert (h.sni_status, h.unknown_reason) == ("unknown", "capture_end")
    assert h.outcome == "no_response"


def test_few_bytes_then_close_is_unknown() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI[:3])
    c.cseq += 10
    c.cfin()
    h = one(c.segs)
    assert h.sni_status == "unknown"


def test_malformed_hello() -> None:
    bad = bytearray(HELLO_SNI)
    bad[9:11] = b"\x03\x03"  # keep version, break the session id length below
    bad[43] = 200
    c = Conv().handshake()
    c.cdata(bytes(bad))
    c.srst()
    h = one(c.segs)
    assert h.sni_status == "malformed" and h.detail


def test_midstream() -> None:
    # No SYN, first client bytes are the middle of a hello, server answers ServerHello.
    c = Conv()
    c.cseq += 200
    c.cdata(HELLO_SNI[200:])
    c.sdata(server_hello()).cfin().sfin()
    h = one(c.segs)
    assert (h.sni_status, h.unknown_reason) == ("unknown", "midstream")
    assert h.outcome == "server_hello"
    # Bulk data picked up mid-stream: no record, counted.
    c = Conv()
    c.cdata(b"\x17\x03\x03\x00\x10" + bytes(16))
    c.sdata(b"\x17\x03\x03\x00\x10" + bytes(16))
    hs, t = run(c.segs)
    assert hs == [] and t.stats["midstream"] == 1


def test_midstream_hello_start_no_syn() -> None:
    c = Conv()
    c.cdata(HELLO_NOSNI)
    c.srst()
    h = one(c.segs)
    assert h.sni_status == "absent" and h.outcome == "server_reset" and h.conn_state == "RSTRH"


# -- connection lifecycle ----------------------------------------------------------------------

def test_port_reuse_two_records() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c.srst()
    d = Conv(cisn=90000, sisn=70000, t0=c.t + 10 * MS, frame0=c.frame).handshake()
    d.cdata(HELLO_SNI)
    d.sdata(server_hello()).cfin().sfin()
    hs, t = run(c.segs + d.segs)
    assert [h.outcome for h in hs] == ["server_reset", "server_hello"]
    # Same tuple, new ISN, while the first flow never closed.
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    d = Conv(cisn=90000, sisn=70000, t0=c.t + 10 * MS, frame0=c.frame).handshake()
    d.cdata(HELLO_SNI)
    hs, t = run(c.segs + d.segs)
    assert [h.sni for h in hs] == [None, "api.example.com"] and t.stats["port_reuse"] == 1


def test_hrr_and_second_hello() -> None:
    h1 = client_hello("one.example.com", tls13_only=True)
    h2 = client_hello("two.example.com", tls13_only=True)
    c = Conv().handshake()
    c.cdata(h1)
    c.sdata(server_hello(hrr=True))
    c.cdata(_record(20, b"\x01") + h2)
    c.sdata(server_hello()).cfin().sfin()
    issues = Issues()
    hs, _ = run(c.segs, table=FlowTable(issues))
    assert len(hs) == 1
    h = hs[0]
    assert h.hrr and h.outcome == "server_hello" and h.sni == "one.example.com"
    assert any("changed its SNI" in i.detail for i in issues)


def test_zeek_classic_states() -> None:
    c = Conv().syn().srst()
    hs, t = run(c.segs)
    assert hs == [] and t.stats["rejected_syn"] == 1
    c = Conv().syn()
    hs, t = run(c.segs)
    assert t.stats["syn_only"] == 1
    c = Conv().handshake().cfin().sfin()
    hs, t = run(c.segs)
    assert t.stats["no_payload"] == 1
    c = Conv().handshake()
    c.cdata(b"GET / HTTP/1.1\r\n\r\n")
    hs, t = run(c.segs)
    assert hs == [] and t.stats["not_tls"] == 1


def test_zeek_states_on_handshakes() -> None:
    from sniparse.flows import _conn_state, _Flow  # noqa: F401  -- exercised through records

    # REJ and S0 only occur without a hello; check them via the private helper on a flow.
    t = FlowTable(Issues())
    c = Conv().syn().srst()
    for s in c.segs[:1]:
        t.feed(s)
    flow = next(iter(t._live))
    t.feed(c.segs[1])
    assert _conn_state(flow) == "REJ"
    t = FlowTable(Issues())
    c = Conv().syn()
    t.feed(c.segs[0])
    assert _conn_state(next(iter(t._live))) == "S0"


# -- preludes -------------------------------------------------------------------------------

def test_proxy_v1() -> None:
    c = Conv().handshake()
    c.cdata(b"PROXY TCP4 192.0.2.7 10.0.0.2 51234 443\r\n" + HELLO_NOSNI)
    c.srst()
    h = one(c.segs)
    assert h.proxy_client == "192.0.2.7:51234" and h.sni_status == "absent"
    assert h.outcome == "server_reset"


def test_proxy_v2() -> None:
    hdr = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12)
    hdr += socket.inet_aton("198.51.100.9") + SIP + struct.pack("!HH", 40001, 443)
    c = Conv().handshake()
    c.cdata(hdr + HELLO_SNI, [10])
    c.sdata(server_hello())
    h = one(c.segs)
    assert h.proxy_client == "198.51.100.9:40001" and h.sni == "api.example.com"
    assert h.outcome == "server_hello"


def test_http_connect() -> None:
    c = Conv(dport=3128).handshake()
    c.cdata(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n")
    c.sdata(b"HTTP/1.1 200 Connection established\r\n\r\n")
    c.cdata(HELLO_SNI)
    c.sdata(alert(40))
    h = one(c.segs)
    assert h.prelude == "http_connect" and h.sni == "api.example.com"
    assert (h.outcome, h.alert) == ("alert", 40)


def test_smtp_starttls() -> None:
    c = Conv(dport=25).handshake()
    c.sdata(b"220 mail.example.com ESMTP\r\n")
    c.cdata(b"EHLO client\r\n")
    c.sdata(b"250-mail.example.com\r\n250 STARTTLS\r\n")
    c.cdata(b"STARTTLS\r\n")
    c.sdata(b"220 Ready to start TLS\r\n")
    c.cdata(HELLO_SNI)
    c.sdata(server_hello())
    h = one(c.segs)
    assert h.prelude == "starttls_smtp" and h.sni == "api.example.com"
    assert h.outcome == "server_hello"


def test_postgres_sslrequest() -> None:
    c = Conv(dport=5432).handshake()
    c.cdata(bytes.fromhex("0000000804d2162f"))
    c.sdata(b"S")
    c.cdata(HELLO_NOSNI)
    c.sdata(server_hello())
    h = one(c.segs)
    assert h.prelude == "starttls_postgres" and h.outcome == "server_hello"


# -- skipping and limits -----------------------------------------------------------------------

def _busy_conv(i: int) -> list[Segment]:
    c = Conv(sport=30000 + i, t0=T0 + i * 5 * MS, frame0=i * 1000).handshake()
    c.cdata(HELLO_SNI if i % 2 else HELLO_NOSNI)
    if i % 3 == 0:
        c.srst()
        return c.segs
    c.sdata(server_hello()).ack()
    for _ in range(5):
        c.sdata(b"\x17\x03\x03\x00\x20" + bytes(32)).ack()
        c.cdata(b"\x17\x03\x03\x00\x20" + bytes(32))
        c.sack()
    c.cfin().sfin().ack()
    return c.segs


def test_decided_skipping_changes_nothing() -> None:
    segs = sorted((s for i in range(12) for s in _busy_conv(i)), key=lambda s: s.ts_ns)
    full, t1 = run(segs)
    skipped, t2 = run(segs, skip_decided=True)
    assert full == skipped and len(full) == 12
    assert t1.stats == t2.stats
    # Something really was skippable.
    t = FlowTable(Issues())
    n = 0
    for s in segs:
        key = flow_key(s.src, s.dst, s.sport, s.dport)
        if not (s.flags & (SYN | FIN | RST)) and key in t.decided:
            n += 1
            continue
        t.feed(s)
    assert n > 0


def test_flow_table_cap() -> None:
    issues = Issues()
    t = FlowTable(issues, max_flows=3)
    segs: list[Segment] = []
    for i in range(6):
        c = Conv(sport=20000 + i, t0=T0 + i * MS, frame0=i * 100).handshake()
        c.cdata(HELLO_SNI)
        segs += c.segs
    hs, _ = run(segs, table=t, finish=False)
    assert len(t) <= 3
    assert t.stats["flow_table_full"] >= 3
    assert any(i.kind == "limit" for i in issues)
    hs += t.finish()
    assert len(hs) == 6


def test_expire_idle() -> None:
    t = FlowTable(Issues(), idle_timeout_ns=10 * MS)
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    for s in c.segs:
        t.feed(s)
    assert t.expire(c.t + 5 * MS) == []
    hs = t.expire(c.t + 50 * MS)
    assert len(hs) == 1 and hs[0].outcome == "no_response" and len(t) == 0


def test_ipv6_strings() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    v6 = [s._replace(ip_version=6, src=socket.inet_pton(socket.AF_INET6, "2001:db8::1") if s.src == CIP
                     else socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
                     dst=socket.inet_pton(socket.AF_INET6, "2001:db8::2") if s.dst == SIP
                     else socket.inet_pton(socket.AF_INET6, "2001:db8::1")) for s in c.segs]
    h = one(v6)
    assert h.client_ip == "2001:db8::1" and h.server_ip == "2001:db8::2" and h.ip_version == 6


# -- the public corpus: real captures, tshark's and Zeek's view ------------------------------

def _corpus_tls_truth(corpus_dir: Path) -> Iterator[tuple[Path, dict[str, Any], list[dict[str, Any]]]]:
    import json

    for line in (corpus_dir / "MANIFEST.tsv").read_text().splitlines()[1:]:
        rel = line.split("\t", 1)[0]
        tp = corpus_dir / "truth" / (rel[len("files/") :] + ".json")
        if not tp.is_file():
            continue
        truth = json.loads(tp.read_text())
        hellos = [h for h in truth["client_hellos"]
                  if h["proto"] in ("tls", "sslv2") and h["transport"] == "tcp"]
        if hellos:
            yield corpus_dir / rel, truth, hellos


def test_corpus_hellos_and_never_absent_when_sni(corpus_dir) -> None:  # type: ignore[no-untyped-def]
    from sniparse.analyze import analyze

    total = matched = 0
    wrong_absent = []
    for path, truth, hellos in _corpus_tls_truth(corpus_dir):
        rep = analyze(str(path))
        got: dict[tuple[str, int, str, int], list[Handshake]] = {}
        for h in rep.handshakes:
            got.setdefault((h.client_ip, h.client_port, h.server_ip, h.server_port), []).append(h)
        seen = set()
        for th in hellos:
            k = (th["src_ip"], th["src_port"], th["dst_ip"], th["dst_port"])
            if (k, th["stream"]) in seen:  # a second hello (after HRR) in the same connection
                continue
            seen.add((k, th["stream"]))
            total += 1
            hs = got.get(k)
            if not hs:
                continue
            h = hs.pop(0)
            if h.sni == th["sni"] or h.sni_status in ("malformed", "unknown"):
                matched += 1
            if th["sni"] and h.without_sni:
                wrong_absent.append((path.name, th["frame"]))
    assert total > 1500
    assert wrong_absent == []
    # Misses are hellos inside OpenVPN / CAPWAP framing and a crafted overlap test.
    assert matched / total > 0.99, (matched, total)


def test_corpus_zeek_conn_state(corpus_dir) -> None:  # type: ignore[no-untyped-def]
    import json

    from sniparse.analyze import analyze

    agree = total = 0
    for p in sorted((corpus_dir / "baselines" / "normalized" / "zeek").rglob("*.json")):
        d = json.loads(p.read_text())
        by = None
        for b in d["baselines"]:
            for f in b.get("flows", []):
                if "orig" not in f or "conn_state" not in f:
                    continue
                if by is None:
                    rep = analyze(str(corpus_dir / "files" / d["capture"]))
                    by = {(h.client_ip, h.client_port): h for h in rep.handshakes}
                h = by.get(tuple(f["orig"]))
                if h is None:
                    continue
                total += 1
                agree += h.conn_state == f["conn_state"]
    assert total >= 10
    # Known differences: packets after the flow closed (a RST after FIN), a baseline made
    # from part of its trace.
    assert agree / total >= 0.8, (agree, total)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(
    st.booleans(),                                   # from the client side
    st.sampled_from([SYN, SYN | ACK, ACK, ACK | PSH, FIN | ACK, RST, RST | ACK, SYN | FIN]),
    st.integers(min_value=0, max_value=2**32 - 1),   # seq
    st.one_of(st.binary(max_size=64),
              st.sampled_from([HELLO_SNI[:50], HELLO_NOSNI, server_hello(), alert(112),
                               b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", b"EHLO x\r\nSTARTTLS\r\n"])),
    st.integers(min_value=0, max_value=200),         # extra wire bytes (snaplen cut)
), max_size=30))
def test_hostile_segments_only_documented_behaviour(ops) -> None:  # type: ignore[no-untyped-def]
    t = FlowTable(Issues(), max_flows=2, stream_cap=2048)
    ts = T0
    out: list[Handshake] = []
    for i, (from_client, flags, seq, payload, extra) in enumerate(ops):
        ts += MS
        src, dst, sp, dp = (CIP, SIP, 1234, 443) if from_client else (SIP, CIP, 443, 1234)
        seg = Segment(i + 1, ts, 4, src, dst, sp, dp, seq, 0, flags, 0, payload,
                      len(payload) + extra, b"", None, ())
        out.extend(t.feed(seg))
        if i % 7 == 6:
            out.extend(t.expire(ts))
    out.extend(t.finish())
    for h in out:
        assert h.sni_status in ("present", "absent", "empty", "unknown", "malformed")
        assert h.outcome in ("server_hello", "alert", "server_reset", "server_close",
                             "client_reset", "no_response")
        if h.sni_status == "unknown":
            assert h.unknown_reason in ("truncated", "gap", "capture_end", "midstream")
    assert len(t) == 0 and not t.decided


def test_repeated_synack_with_other_isn() -> None:
    # Two SYN-ACKs with different ISNs before any data: the data picks the ISN it fits.
    c = Conv(sisn=5000)
    c.syn()
    c._mk(False, SYN | ACK, seq=777777)
    c.synack()
    c._mk(False, SYN | ACK, seq=777777)
    c.ack()
    c.cdata(HELLO_SNI)
    c.sdata(server_hello()).cfin().sfin()
    h = one(c.segs)
    assert h.outcome == "server_hello" and h.conn_state == "SF"


@pytest.mark.parametrize(
    ("client_lines", "server_lines", "name"),
    [
        ([b"a1 CAPABILITY\r\n", b"a2 STARTTLS\r\n"], [b"* OK ready\r\n", b"a1 OK\r\n",
                                                    b"a2 OK Begin TLS\r\n"], "starttls_imap"),
        ([b"CAPA\r\n", b"STLS\r\n"], [b"+OK pop\r\n", b"+OK caps\r\n", b"+OK go\r\n"],
         "starttls_pop3"),
        ([b"AUTH TLS\r\n"], [b"220 ftp\r\n", b"234 AUTH TLS OK\r\n"], "starttls_ftp"),
        ([b"<?xml version='1.0'?><stream:stream to='x'>",
          b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"],
         [b"<?xml version='1.0'?><stream:stream from='x'><stream:features/>",
          b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"], "starttls_xmpp"),
        ([b"\x05\x01\x00", b"\x05\x01\x00\x01\x0a\x00\x00\x02\x01\xbb"],
         [b"\x05\x00", b"\x05\x00\x00\x01\x0a\x00\x00\x02\x01\xbb"], "socks"),
    ],
)
def test_other_preludes(client_lines: list[bytes], server_lines: list[bytes], name: str) -> None:
    c = Conv(dport=10000).handshake()
    sl = list(server_lines)
    if name in ("starttls_imap", "starttls_pop3", "starttls_ftp"):
        c.sdata(sl.pop(0))  # the server's greeting comes first
    for line in client_lines:
        c.cdata(line)
        if sl:
            c.sdata(sl.pop(0))
    c.cdata(HELLO_NOSNI)
    c.sdata(alert(112))
    h = one(c.segs)
    assert h.prelude == name
    assert h.sni_status == "absent" and (h.outcome, h.alert) == ("alert", 112)


def test_snaplen_cut_server_reaction() -> None:
    sh = server_hello()
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c._mk(False, ACK | PSH, sh[:20], wire=len(sh) + 1000)
    c.sseq += len(sh) + 1000
    c.cfin().sfin()
    h = one(c.segs)
    assert h.sni == "api.example.com" and h.outcome == "server_hello"
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c._mk(False, ACK | PSH, alert(112)[:7], wire=31)
    c.sseq += 31
    c.sfin().cfin()
    h = one(c.segs)
    assert (h.outcome, h.alert) == ("alert", 112)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=len(BIG) - 1),
                       st.integers(min_value=0, max_value=255)), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=1200),
    st.integers(min_value=0, max_value=300),
)
def test_mutated_hello_never_absent_when_unreadable(muts, size, cut_at) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(BIG)
    for pos, val in muts:
        data[pos] = val
    c = Conv().handshake()
    segs = c.cdata(bytes(data), [size])
    if cut_at and len(segs) > 1:
        # the last segment loses its tail to the snaplen
        last = segs[-1]
        segs[-1] = last._replace(payload=last.payload[: max(0, len(last.payload) - cut_at)])
    c.srst()
    hs, t = run(c.segs[:3] + segs + c.segs[3 + len(segs) :])
    if not hs:  # the first bytes no longer start a hello: a non-TLS flow, counted
        assert t.stats["not_tls"] == 1
        return
    (h,) = hs
    assert h.outcome == "server_reset"
    if h.sni_status in ("absent", "empty"):
        # only ever said about a hello that parsed whole
        assert h.client_hello is not None and h.client_hello.sni_status == h.sni_status
    if cut_at and len(segs) > 1 and len(segs[-1].payload) < segs[-1].payload_len:
        assert h.sni_status in ("unknown", "malformed") or h.client_hello is not None


def test_three_bytes_of_hello_then_server_reset() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI[:3])
    c.srst()
    h = one(c.segs)
    assert h.sni_status == "unknown" and h.outcome == "server_reset" and h.outcome_ms is not None


def test_server_only_bulk_is_decided() -> None:
    c = Conv(dport=20).handshake()
    for _ in range(40):
        c.sdata(bytes(1400))
    t = FlowTable(Issues())
    for s in c.segs:
        t.feed(s)
    assert flow_key(SIP, CIP, 20, 40000) in t.decided
    hs = t.finish()
    assert hs == [] and t.stats["not_tls"] == 1


# -- a ServerHello proved by the client's next records --------------------------------------

def _with_extension(hello: bytes, ext_type: int, body: bytes = b"") -> bytes:
    """``hello`` (one record holding one ClientHello) with one more extension appended,
    every enclosing length fixed (RFC 8446 §4.1.2)."""
    p = 5 + 4 + 2 + 32
    p += 1 + hello[p]
    p += 2 + int.from_bytes(hello[p : p + 2], "big")
    p += 1 + hello[p]
    ext_total = int.from_bytes(hello[p : p + 2], "big")
    assert p + 2 + ext_total == len(hello)
    ext = struct.pack("!HH", ext_type, len(body)) + body
    msg = hello[5:] + ext
    msg = msg[:p - 5] + struct.pack("!H", ext_total + len(ext)) + msg[p - 5 + 2 :]
    msg = msg[:1] + (len(msg) - 4).to_bytes(3, "big") + msg[4:]
    return hello[:3] + struct.pack("!H", len(msg)) + msg


CCS = _record(20, b"\x01")
CKE = _record(22, b"\x10\x00\x00\x21\x20" + bytes(32))   # ClientKeyExchange (RFC 5246 §7.4.7)
APPDATA = _record(23, bytes(40))


@pytest.mark.parametrize(("after", "name"), [
    (CCS + APPDATA, "ChangeCipherSpec"),
    (CKE + CCS, "ClientKeyExchange"),
    (APPDATA, "application data"),
])
def test_server_hello_inferred_from_client_records(after: bytes, name: str) -> None:
    issues = Issues()
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c.sack()
    proof = c.cdata(after)[0]
    c.cfin()
    h = one(c.segs, table=FlowTable(issues))
    assert h.outcome == "server_hello"
    assert h.outcome_ms is None and h.server_version is None
    assert h.detail is not None and name in h.detail and f"frame {proof.frame}" in h.detail
    gaps = [i for i in issues if i.kind == "gap" and i.layer == "flow"]
    assert len(gaps) == 1 and "missing" in gaps[0].detail


def test_inferred_server_hello_outranks_server_fin_and_counts_issues() -> None:
    issues = Issues()
    table = FlowTable(issues)
    segs: list[Segment] = []
    for i in range(3):
        c = Conv(sport=41000 + i, t0=T0 + i * 10**9)
        c.handshake()
        c.cdata(HELLO_SNI)
        c.sfin()    # the server's flight itself is missing; its FIN is there
        c.cdata(CKE + CCS)
        c.cfin()
        segs += c.segs
    hs, _ = run(segs, table=table)
    assert [h.outcome for h in hs] == ["server_hello"] * 3
    gaps = [i for i in issues if i.kind == "gap" and i.layer == "flow"]
    assert len(gaps) == 1 and gaps[0].count == 3


def test_early_data_hello_is_not_inferred() -> None:
    # 0-RTT (RFC 8446 §2.3, §D.4): CCS and early application data go out before any
    # ServerHello, so they prove nothing.
    hello = _with_extension(HELLO_NOSNI, 42)
    c = Conv().handshake()
    c.cdata(hello)
    c.cdata(CCS + APPDATA)
    c.cfin()
    h = one(c.segs)
    assert h.client_hello is not None and 42 in h.client_hello.extension_types
    assert h.outcome == "no_response" and h.detail is None
    c = Conv().handshake()
    c.cdata(hello)
    c.cdata(CCS + APPDATA)
    c.sfin().cfin()
    assert one(c.segs).outcome == "server_close"


def test_server_reset_before_client_records_wins() -> None:
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c.srst(dt=2 * MS)
    c.cdata(CCS + APPDATA)
    h = one(c.segs)
    assert h.outcome == "server_reset" and h.outcome_ms == pytest.approx(2.0)


def test_client_records_that_prove_nothing() -> None:
    # A client alert, or a real ServerHello first: nothing is inferred.
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c.cdata(_record(21, bytes([2, 40])) + CCS)
    c.cfin()
    h = one(c.segs)
    assert h.outcome == "no_response" and h.detail is None
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI)
    c.sdata(server_hello())
    c.cdata(CCS + APPDATA)
    h = one(c.segs)
    assert h.outcome == "server_hello" and h.outcome_ms == pytest.approx(1.0) and h.detail is None


def test_fin_then_rst_then_peer_fin_is_sf() -> None:
    # Zeek's rule (TCPSessionAdapter::UpdateStateMachine): FIN then RST from one side, then
    # the peer's FIN, is a normal termination. The flow stays open for that FIN; the
    # outcome is still the first reaction.
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.sdata(server_hello())
    c.cfin().crst().sfin()
    hs, t = run(c.segs, finish=False)
    assert len(hs) == 1 and len(t) == 0
    h = hs[0]
    assert (h.conn_state, h.history, h.outcome) == ("SF", "ShADdFRf", "server_hello")
    # Without the peer's FIN the RST stands (closed at the end of the capture).
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.sdata(server_hello())
    c.cfin().crst()
    hs, t = run(c.segs, finish=False)
    assert hs == [] and len(t) == 1
    h = one(c.segs)
    assert (h.conn_state, h.history) == ("RSTO", "ShADdFR")
    # A RST without a FIN before it still closes at once; so does the peer's RST.
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.crst()
    hs, _ = run(c.segs, finish=False)
    assert [h.outcome for h in hs] == ["client_reset"] and hs[0].conn_state == "RSTO"
    c = Conv().handshake()
    c.cdata(HELLO_SNI)
    c.cfin().crst().srst()
    hs, _ = run(c.segs, finish=False)
    assert len(hs) == 1 and hs[0].conn_state == "RSTR"


def test_inferred_server_hello_after_starttls_prelude() -> None:
    # The server's plaintext replies are there, its TLS flight is not: the client's
    # ClientKeyExchange after the hello still proves the ServerHello.
    c = Conv(dport=25).handshake()
    c.sdata(b"220 mail.example.com ESMTP\r\n")
    c.cdata(b"EHLO client\r\n")
    c.sdata(b"250-mail.example.com\r\n250 STARTTLS\r\n")
    c.cdata(b"STARTTLS\r\n")
    c.sdata(b"220 Ready to start TLS\r\n")
    c.cdata(HELLO_SNI)
    c.cdata(CKE + CCS)
    c.cfin()
    h = one(c.segs)
    assert h.prelude == "starttls_smtp" and h.sni == "api.example.com"
    assert h.outcome == "server_hello" and h.outcome_ms is None
    assert h.detail is not None and "ClientKeyExchange" in h.detail


def test_records_sent_with_the_hello_prove_nothing() -> None:
    # CCS and application data in the hello's own segment left before any ServerHello.
    c = Conv().handshake()
    c.cdata(HELLO_NOSNI + CCS + APPDATA)
    c.cfin()
    h = one(c.segs)
    assert h.outcome == "no_response" and h.detail is None



def test_every_record_has_exactly_the_handshake_fields() -> None:
    # FlowTable._build fills each record's __dict__ directly (no __init__): every field of
    # the dataclass must be there, and nothing else.
    import dataclasses

    import sniparse

    want = {f.name for f in dataclasses.fields(Handshake)}
    scenarios = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
    n = 0
    for path in sorted(scenarios.glob("*.pcap*")):
        for h in sniparse.iter_handshakes(str(path)):
            assert set(vars(h)) == want, path.name
            n += 1
    assert n > 20


@given(st.permutations([(letter, is_a) for letter in "SHADFR" for is_a in (True, False)]),
       st.integers(0, 12), st.booleans())
def test_history_text_spells_the_packed_events_in_order(
    events: list[tuple[str, bool]], n: int, client_is_a: bool
) -> None:
    # FlowTable._packet records each (letter, side) event as 4 bits of one int; every order of
    # up to 12 events (6 letters, 2 sides) must come back as the Zeek history text.
    from sniparse.flows import _HISTORY_LETTERS, _history_text

    packed = 0
    for letter, is_a in events[:n]:
        packed = (packed << 4) | (1 + 2 * _HISTORY_LETTERS.index(letter) + (1 if is_a else 0))
    want = ("" if client_is_a else "^") + "".join(
        letter if is_a == client_is_a else letter.lower() for letter, is_a in events[:n]
    )
    assert _history_text(packed, client_is_a) == want


@given(st.sampled_from([4, 16]), st.integers(0, 65535), st.integers(0, 65535), st.binary(min_size=32, max_size=32))
def test_reverse_key_is_the_peer_flow_key(size: int, sport: int, dport: int, addrs: bytes) -> None:
    # FlowTable.feed builds the peer direction's key by swapping the key's parts.
    from sniparse.flows import _reverse_key

    src, dst = addrs[:size], addrs[16 : 16 + size]
    seg = Segment(1, T0, 4 if size == 4 else 6, src, dst, sport, dport, 0, 0, SYN, 0, b"", 0, b"", None, ())
    assert _reverse_key(flow_key(src, dst, sport, dport), seg) == flow_key(dst, src, dport, sport)


@given(st.lists(st.integers(0, 12), max_size=8), st.integers(0, 0xFFFFFFFF))
def test_isn_bookkeeping_matches_its_definition(picks: list[int], data_seq: int) -> None:
    # _Dir keeps the first ISN+1 in a field and the others in a list made on demand; read
    # together they are the list of distinct values in arrival order, at most 4, and the
    # stream's anchor is the candidate nearest below the data (else the last one).
    from sniparse.flows import _Dir, _note_isn, _seen_isn
    from sniparse.reassembly import seq_offset

    values = [(data_seq - 3000 + 997 * p) & 0xFFFFFFFF for p in picks]
    seg = Segment(1, T0, 4, b"\x01" * 4, b"\x02" * 4, 1, 2, 0, 0, SYN, 0, b"", 0, b"", None, ())
    d = _Dir(seg, b"k")
    want: list[int] = []
    for v in values:
        if v not in want and len(want) < 4:
            want.append(v)
        _note_isn(d, v)
    got = ([d.isn0] if d.isn0 >= 0 else []) + (d.isns or [])
    assert got == want
    assert all(_seen_isn(d, v) for v in want)
    table = FlowTable(Issues())
    best, base = -1, data_seq
    for cand in want:
        off = seq_offset(data_seq, cand)
        if 0 <= off < table.stream_cap and (best < 0 or off < best):
            best, base = off, cand
    if best < 0 and want:
        base = want[-1]
    assert table._anchor(d, data_seq) == base


def test_feed_into_appends_what_feed_returns() -> None:
    # Analysis._feed_batch feeds through feed_into, collecting into one list per batch.
    convs = []
    for i in range(3):
        c = Conv(sport=40000 + i).handshake()
        c.cdata(HELLO_SNI)
        c.sdata(server_hello()).ack().cfin().sfin().ack()
        convs.append(c.segs)
    segs = [s for group in zip(*convs) for s in group]
    want, _ = run(segs, finish=False)
    t = FlowTable(Issues())
    got: list[Any] = ["earlier"]
    for s in segs:
        t.feed_into(s, flow_key(s.src, s.dst, s.sport, s.dport) if s.sport % 2 else None, got)
    assert len(want) == 3 and got == ["earlier", *want]
