"""The benchmark harness is correct on a tiny capture (no timing assertions).

Generates a few hundred packets with ``benchmarks/gen_capture.py``, checks the capture with
dpkt against the truth sidecar, then runs ``benchmarks/run.py``'s machinery with the dpkt
peer (and sniparse, when its CLI is ready) and checks the agreement it computes.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

dpkt = pytest.importorskip("dpkt")

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import gen_capture
import run


def _truth(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _dpkt_hellos(path: Path) -> tuple[int, Counter[tuple[str, int, str, int]], int]:
    """(frames, ClientHello-starting segments per connection key, RSTs) as dpkt sees them."""
    frames = rsts = 0
    hellos: Counter[tuple[str, int, str, int]] = Counter()
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        decode = dpkt.sll2.SLL2 if reader.datalink() == 276 else dpkt.ethernet.Ethernet
        for _ts, buf in reader:
            frames += 1
            ip = decode(buf).data
            tcp = ip.data
            assert isinstance(tcp, dpkt.tcp.TCP)
            if tcp.flags & dpkt.tcp.TH_RST:
                rsts += 1
            d = tcp.data
            if len(d) > 5 and d[0] == 0x16 and d[5] == 1:
                hellos[(str(ipaddress.ip_address(ip.src)), tcp.sport,
                        str(ipaddress.ip_address(ip.dst)), tcp.dport)] += 1
    return frames, hellos, rsts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> run.Capture:
    data = tmp_path_factory.mktemp("bench")
    return run.ensure_capture(data, "handshake", "ether", packets=400, seed=3)


@pytest.mark.parametrize("link", ["ether", "sll2"])
def test_generated_capture_matches_truth_by_dpkt(tmp_path: Path, link: str) -> None:
    out = tmp_path / "t.pcap"
    r = gen_capture.generate(out, packets=300, seed=5, mix="handshake", link=link)
    truth = _truth(gen_capture.truth_path(out))
    frames, hellos, rsts = _dpkt_hellos(out)
    assert frames == r["packets"] >= 300
    assert len(truth) == r["connections"] > 10
    # Every truth connection has a hello-starting segment (retransmitted: two), and no other
    # connection has one.
    keys = {run._key(t) for t in truth}
    assert set(hellos) == keys
    assert sum(hellos.values()) == len(truth) + sum(1 for t in truth if t["retransmitted"])
    assert rsts == sum(1 for t in truth if t["outcome"] == "server_reset")
    for t in truth:
        assert t["sni_status"] == ("absent" if t["sni"] is None else "present")
        assert 0 < t["frame"] < t["outcome_frame"] <= frames


def test_generated_hellos_parse_and_carry_truth_sni(tmp_path: Path) -> None:
    out = tmp_path / "t.pcap"
    gen_capture.generate(out, packets=300, seed=9, mix="handshake", link="ether")
    truth = {run._key(t): t for t in _truth(gen_capture.truth_path(out))}
    peer = run._py("peer_dpkt.py")
    res = run.run_tool(run.Tool("dpkt", peer), run.Capture(out, gen_capture.truth_path(out),
                       "handshake", "ether", 0, 0, 0), tmp_path)
    assert res.status == "ok", res.error
    recs = [json.loads(x) for x in (tmp_path / "t.dpkt.ndjson").read_text().splitlines()]
    single = [r for r in recs if truth[run._key(r)]["segments"] == 1]
    assert single, "expected some single-segment hellos"
    for r in single:
        t = truth[run._key(r)]
        assert (r["sni"], r["sni_status"]) == (t["sni"], t["sni_status"])
        assert r["outcome"] == t["outcome"]
    # Two-segment hellos cannot be parsed without reassembly: dpkt reports them unknown.
    for r in recs:
        if truth[run._key(r)]["segments"] == 2:
            assert r["sni_status"] == "unknown"


def test_inflated_hello_is_well_formed() -> None:
    base = gen_capture._client_hello("api.example.com", ["h2"])
    big = gen_capture._inflate(base, 1800)
    assert len(big) == 1800
    rec, _ = dpkt.ssl.tls_multi_factory(big)
    ch = dpkt.ssl.TLSHandshake(rec[0].data).data
    exts = dict(ch.extensions)
    assert exts[0][5:].decode() == "api.example.com"


def test_pcapng_mixed_has_two_link_types(tmp_path: Path) -> None:
    out = tmp_path / "m.pcapng"
    r = gen_capture.generate(out, packets=200, seed=2, mix="handshake", link="mixed")
    with open(out, "rb") as f:
        reader = dpkt.pcapng.Reader(f)
        n = sum(1 for _ in reader)
    assert n == r["packets"]
    data = out.read_bytes()
    assert data.count(b"\x01\x00\x00\x00\x20\x00\x00\x00\x01\x00") == 1   # IDB, Ethernet
    assert data.count(b"\x01\x00\x00\x00\x20\x00\x00\x00\x14\x01") == 1   # IDB, SLL2


def test_harness_with_dpkt_peer(tiny: run.Capture, tmp_path: Path) -> None:
    tools = run.select_tools("cat,dpkt")
    results = run.run_benchmarks([tiny], tools, tmp_path, sample=0)
    by = {r.tool: r for r in results}
    assert by["cat > /dev/null"].status == "ok"
    d = by["dpkt"]
    assert d.status == "ok", d.error
    assert d.rss_mb > 1 and d.wall > 0
    a = d.agreement
    assert a is not None
    truth = _truth(tiny.truth)
    multi = sum(1 for t in truth if t["segments"] == 2)
    assert a["truth"] == len(truth) and a["found"] == len(truth) and a["missed"] == 0
    assert a["unparsed"] == multi
    assert a["sni"] == len(truth) - multi
    assert a["reset"] == len(truth)
    table = run.markdown_table(results)
    assert "| dpkt |" in table and f"{len(truth)}/{len(truth)}" in table


def test_agreement_counts_wrong_answers(tiny: run.Capture, tmp_path: Path) -> None:
    truth = _truth(tiny.truth)
    out = tmp_path / "wrong.ndjson"
    with open(out, "w") as f:
        for i, t in enumerate(truth):
            if i == 0:
                continue                                  # missed
            rec = dict(t)
            if i == 1:
                rec["sni"] = "wrong.example"              # wrong SNI
            if i == 2:
                rec["outcome"] = ("server_hello" if t["outcome"] == "server_reset"
                                  else "server_reset")    # wrong reset verdict
            f.write(json.dumps(rec) + "\n")
        f.write(json.dumps({"client_ip": "10.0.0.1", "client_port": 1,
                            "server_ip": "10.0.0.2", "server_port": 2}) + "\n")
    a = run.agreement(tiny.truth, out)
    n = len(truth)
    assert a == {"truth": n, "found": n - 1, "sni": n - 2, "reset": n - 2, "missed": 1,
                 "extra": 1, "unparsed": 0}


def test_sample_truth_cuts_at_packet_count(tiny: run.Capture) -> None:
    full = run.load_truth(tiny.truth)
    cut = max(t["frame"] for t in full.values()) // 2
    part = run.load_truth(tiny.truth, upto=cut)
    assert 0 < len(part) < len(full)
    for k, t in part.items():
        assert t["frame"] <= cut
        if full[k]["outcome_frame"] > cut:
            assert t["outcome"] == "no_response"


def test_sniparse_cli_when_ready(tiny: run.Capture, tmp_path: Path) -> None:
    if importlib.util.find_spec("sniparse.cli") is None:
        pytest.skip("sniparse CLI not ready")
    res = run.run_tool(next(t for t in run.TOOLS if t.name == "sniparse"), tiny, tmp_path)
    if res.status != "ok":
        pytest.skip(f"sniparse CLI not ready: {res.error}")
    assert res.agreement is not None and res.agreement["found"] > 0


def test_cached_capture_is_reused(tiny: run.Capture) -> None:
    before = tiny.path.stat().st_mtime_ns
    again = run.ensure_capture(tiny.path.parent, "handshake", "ether", packets=400, seed=3)
    assert again.path == tiny.path and again.path.stat().st_mtime_ns == before
    assert again.packets == tiny.packets


def test_repeat_keeps_each_tools_fastest_run(tiny: run.Capture, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[tuple[str, float]] = []
    times = iter([3.0, 5.0, 1.0, 4.0, 2.0, 6.0])

    def fake(tool: run.Tool, cap: run.Capture, workdir: Path, *, sample: int = 0) -> run.Result:
        t = next(times)
        runs.append((tool.name, t))
        return run.Result(tool.name, cap, cap.packets, cap.bytes, t, 10.0, t, "ok")

    monkeypatch.setattr(run, "run_tool", fake)
    monkeypatch.setattr(run, "REPEAT", 3)
    tools = run.select_tools("cat,dpkt")
    results = run.run_benchmarks([tiny], tools, tmp_path, sample=0)
    # Round by round, tool by tool; each tool keeps its fastest run.
    assert [n for n, _ in runs] == ["cat > /dev/null", "dpkt"] * 3
    assert {r.tool: r.wall for r in results} == {"cat > /dev/null": 1.0, "dpkt": 4.0}
