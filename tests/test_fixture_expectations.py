"""The scenario captures in fixtures/scenarios/ against their expectations in fixtures/expected/.

Two kinds of test:

* ``test_analyze_matches_expectation``: ``sniparse.analyze(capture)`` must produce exactly the
  expected handshake records (in time order) and flow counts. Only the keys an expectation
  lists are compared, so a record may say nothing about a field it cannot decide.
* ``test_independent_hello_count`` / ``test_independent_sni``: without sniparse, dpkt reads
  each capture and counts the segments that start a ClientHello record; the count and the SNI
  of single-segment hellos must agree with the expectation. This checks the fixtures
  themselves (and the tshark-derived expectations) against a second reader.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

import sniparse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXPECTED = sorted((FIXTURES / "expected").glob("*.json"))

dpkt = pytest.importorskip("dpkt")


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _norm(value: Any) -> Any:
    """Tuples (dataclass fields) compare equal to JSON lists."""
    if isinstance(value, tuple):
        return [_norm(v) for v in value]
    return value


def _approx_ms(rec: dict[str, Any]) -> dict[str, Any]:
    """``outcome_ms`` compared to the microsecond (pcap time resolution), the rest exactly."""
    out = dict(rec)
    if out.get("outcome_ms") is not None:
        out["outcome_ms"] = pytest.approx(out["outcome_ms"], abs=0.0015)
    return out


@pytest.fixture(params=EXPECTED, ids=[p.stem for p in EXPECTED])
def expectation(request: pytest.FixtureRequest) -> dict[str, Any]:
    doc = _load(request.param)
    doc["_path"] = FIXTURES / doc["capture"]
    return doc


def test_every_scenario_capture_has_an_expectation() -> None:
    captures = {p.stem for p in (FIXTURES / "scenarios").glob("*.pcap")}
    expected = {p.stem for p in EXPECTED}
    assert captures == expected
    assert len(expected) >= 19


def test_expectations_use_the_spec_vocabulary() -> None:
    statuses = {"present", "absent", "empty", "unknown", "malformed"}
    reasons = {None, "truncated", "gap", "capture_end", "midstream"}
    outcomes = {"server_hello", "alert", "server_reset", "server_close", "client_reset",
                "no_response"}
    for path in EXPECTED:
        doc = _load(path)
        assert doc["notes"], path
        for rec in doc["handshakes"]:
            assert rec["sni_status"] in statuses, path
            assert rec["unknown_reason"] in reasons, path
            assert (rec["unknown_reason"] is None) == (rec["sni_status"] != "unknown"), path
            assert (rec["sni"] is not None) == (rec["sni_status"] == "present"), path
            assert rec["outcome"] in outcomes, path
            assert (rec["alert"] is not None) == (rec["outcome"] == "alert"), path


def test_analyze_matches_expectation(expectation: dict[str, Any]) -> None:
    if not hasattr(sniparse, "analyze"):
        pytest.skip("sniparse.analyze is not available yet (pipeline not built)")
    report = sniparse.analyze(str(expectation["_path"]))
    got = sorted(report.handshakes, key=lambda h: (h.ts_ns, h.client_port))
    want = expectation["handshakes"]
    summary = [(h.client_port, h.sni_status, h.outcome) for h in got]
    assert len(got) == len(want), summary
    for i, (h, rec) in enumerate(zip(got, want)):
        actual = {k: _norm(getattr(h, k)) for k in rec}
        assert _approx_ms(actual) == _approx_ms(rec), f"handshake {i} (port {rec['client_port']})"
    flows = getattr(getattr(report, "stats", None), "flows", None)
    if expectation.get("stats") and flows is not None:
        for kind, count in expectation["stats"].items():
            assert flows.get(kind, 0) == count, f"stats[{kind!r}]: {dict(flows)}"


def test_without_sni_never_counts_unknown(expectation: dict[str, Any]) -> None:
    if not hasattr(sniparse, "analyze"):
        pytest.skip("sniparse.analyze is not available yet (pipeline not built)")
    report = sniparse.analyze(str(expectation["_path"]))
    want_without = sum(1 for r in expectation["handshakes"]
                       if r["sni_status"] in ("absent", "empty"))
    assert sum(1 for h in report.handshakes if h.without_sni) == want_without


# --- independent reader: dpkt, no sniparse ---------------------------------------------------

PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def _tcp_segments(path: Path) -> list[tuple[tuple[Any, ...], int, bytes]]:
    """(flow 4-tuple, seq, payload) of every TCP segment with payload, via dpkt."""
    out = []
    with path.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        dlt = reader.datalink()
        for _ts, buf in reader:
            if dlt == dpkt.pcap.DLT_EN10MB:
                l2: Any = dpkt.ethernet.Ethernet(buf)
            elif dlt == 276:
                l2 = dpkt.sll2.SLL2(buf)
            else:
                pytest.fail(f"unexpected link type {dlt} in {path.name}")
            ip = l2.data
            # dpkt leaves an 802.1ad outer tag's inner 802.1Q payload undecoded in some
            # versions; skip one more tag by hand when it did.
            if isinstance(ip, bytes) and len(ip) > 4 and ip[2:4] in (b"\x08\x00", b"\x86\xdd"):
                ip = (dpkt.ip.IP if ip[2:4] == b"\x08\x00" else dpkt.ip6.IP6)(ip[4:])
            if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                continue
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
                continue
            key = (bytes(ip.src), tcp.sport, bytes(ip.dst), tcp.dport)
            out.append((key, tcp.seq, bytes(tcp.data)))
    return out


def _hello_start(payload: bytes) -> bytes | None:
    """The payload from a ClientHello record start (RFC 8446 §5.1), skipping a PROXY v2
    header; None when the segment does not start a hello."""
    if payload.startswith(PROXY_V2_SIG) and len(payload) >= 16:
        payload = payload[16 + struct.unpack("!H", payload[14:16])[0]:]
    if len(payload) >= 6 and payload[0] == 0x16 and payload[1] == 3 and payload[5] == 1:
        return payload
    # SSLv2-format CLIENT-HELLO (RFC 5246 E.2): 2-byte length with the top bit set, type 1.
    if len(payload) >= 3 and payload[0] & 0x80 and payload[2] == 1:
        return payload
    return None


def _sni(payload: bytes) -> tuple[str, str | None] | None:
    """(status, name) of a whole single-record hello via dpkt; None when it is not whole."""
    if payload[0] & 0x80:
        return "absent", None  # SSLv2 format: no extensions
    body = b""
    try:
        # A hello may span several handshake records (RFC 8446 §5.1): join their bodies.
        while payload and payload[0] == 0x16:
            rec = dpkt.ssl.TLSRecord(payload)
            body += rec.data
            payload = payload[5 + len(rec.data):]
        hs = dpkt.ssl.TLSHandshake(body)
    except (dpkt.NeedData, dpkt.UnpackError):
        return None
    ch = hs.data
    if not isinstance(ch, dpkt.ssl.TLSClientHello):
        return None
    for etype, data in getattr(ch, "extensions", []):
        if etype == 0:
            # server_name_list (RFC 6066 §3): the first host_name (type 0) with a name.
            q = 2
            while q + 3 <= len(data):
                n = struct.unpack("!H", data[q + 1:q + 3])[0]
                if data[q] == 0 and n:
                    return "present", data[q + 3:q + 3 + n].decode("ascii")
                q += 3 + n
            return "empty", None
    return "absent", None


def _hello_starts(path: Path) -> list[tuple[tuple[Any, ...], bytes]]:
    """Segments starting a ClientHello, one per (flow, seq): retransmissions count once."""
    seen: dict[tuple[Any, ...], bytes] = {}
    for key, seq, payload in _tcp_segments(path):
        start = _hello_start(payload)
        if start is not None:
            seen.setdefault((key, seq), start)
    return [(k[0], v) for k, v in seen.items()]


def test_independent_hello_count(expectation: dict[str, Any]) -> None:
    starts = _hello_starts(expectation["_path"])
    # One per connection: a HelloRetryRequest's second hello follows a ChangeCipherSpec in
    # the same segment, so it does not start a segment here. Hellos whose start was never
    # captured (midstream) are not counted.
    want = sum(1 for r in expectation["handshakes"] if r["unknown_reason"] != "midstream")
    assert len(starts) == want


def test_independent_sni(expectation: dict[str, Any]) -> None:
    by_port: dict[int, list[tuple[str, str | None]]] = {}
    for key, payload in _hello_starts(expectation["_path"]):
        parsed = _sni(payload)
        if parsed is not None:
            by_port.setdefault(key[1], []).append(parsed)
    checked = 0
    for rec in expectation["handshakes"]:
        if rec.get("segments") != 1 or rec["sni_status"] == "unknown":
            continue
        got = by_port.get(rec["client_port"])
        assert got, f"no whole hello from port {rec['client_port']}"
        # Port reuse puts two connections on one port: the expectation must be one of them.
        assert (rec["sni_status"], rec["sni"]) in got
        checked += 1
    if expectation["_path"].name == "snaplen96.pcap":
        assert checked == 0 and not by_port  # nothing whole survives a 96-byte snaplen


# --- tshark cross-check (skipped without tshark) ---------------------------------------------

def _tshark_view(path: Path) -> list[dict[str, Any]]:
    import importlib.util
    import shutil

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    spec = importlib.util.spec_from_file_location("tshark_view", FIXTURES / "tools/tshark_view.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result: list[dict[str, Any]] = module.view(str(path))
    return result


@pytest.mark.slow
def test_tshark_agrees(expectation: dict[str, Any]) -> None:
    """Every hello tshark decodes is in the expectation with the same SNI and reaction."""
    seen = _tshark_view(expectation["_path"])
    want = list(expectation["handshakes"])
    for t in seen:
        match = [r for r in want if r["client_port"] == t["client_port"]]
        assert match, f"tshark sees a hello from port {t['client_port']} not expected"
        rec = match[0]
        want.remove(rec)  # port reuse: the connections come in time order
        keys = ["sni", "sni_status", "unknown_reason", "outcome", "alert", "hrr", "outcome_ms"]
        if rec["sni_status"] == "unknown":
            keys = ["sni_status", "unknown_reason"]
        keys = [k for k in keys if k in rec]
        assert _approx_ms({k: t[k] for k in keys}) == _approx_ms({k: rec[k] for k in keys}), t
    # What tshark cannot decode must be a hello that is not whole, or one after a
    # PROXY v2 header in the same segment (tshark does not look behind it).
    for rec in want:
        assert rec["sni_status"] == "unknown" or rec.get("proxy_client"), rec
