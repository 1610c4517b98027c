"""sniparse against the corpus projects' own expected output (``baselines/normalized``).

The corpus keeps, per capture, what Zeek (ssl.log / conn.log), nDPI (``*.out``), FoxIO's JA4
(Python and Rust test data), Arkime, suricata-verify and PcapPlusPlus expect, parsed per flow.
Those tools are independent of tshark, so this is a second opinion next to
``test_corpus_differential.py``. Compared, for TCP flows only (QUIC/DTLS are out of scope):

* SNI: a baseline server name on a TLS flow must be sniparse's SNI of a handshake on the same
  endpoints; nDPI's "TLS SNI missing" flag must be sniparse's "without SNI";
* JA3 (MD5, and the full string where given) and JA4 (any of the baseline's values);
* Zeek ``conn_state`` and ``history`` against ``Handshake.conn_state`` / ``history``;
* PcapPlusPlus SSLAnalyzer's expected number of ClientHellos.

Every disagreement must be explained in ``tests/corpus_disagreements.py`` (``BASELINES``),
and every explanation must still match a disagreement. ``pytest -s`` prints the figures; they
are also written to ``$SNIPARSE_BASELINE_OUT`` (default ``/tmp/sniparse_corpus_baselines.json``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sniparse
from sniparse.flows import Handshake

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_disagreements import BASELINES

pytestmark = pytest.mark.corpus

OUT_FILE = os.environ.get("SNIPARSE_BASELINE_OUT", "/tmp/sniparse_corpus_baselines.json")

_OPTIONAL = set("CTWGIQ")

Endpoint = tuple[str, int]
Pair = frozenset[Endpoint]
# (capture, baseline source, flow text, aspect)
DKey = tuple[str, str, str, str]


def _norm_ip(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def parse_flow(text: str) -> tuple[str, Pair] | None:
    """``"tcp 1.2.3.4:443<->5.6.7.8:5555"`` (IPv6 without brackets) -> (proto, endpoints)."""
    proto, _, rest = text.partition(" ")
    a, sep, b = rest.partition("<->")
    if not sep:
        return None
    eps = []
    for side in (a, b):
        ip, _, port = side.rpartition(":")
        if not port.isdigit():
            return None
        eps.append((_norm_ip(ip), int(port)))
    return proto, frozenset(eps)


def _pair(h: Handshake) -> Pair:
    return frozenset({(_norm_ip(h.client_ip), h.client_port), (_norm_ip(h.server_ip), h.server_port)})


class Tally:
    """Agreement counters per (source, aspect)."""

    def __init__(self) -> None:
        self.compared: Counter[tuple[str, str]] = Counter()
        self.agree: Counter[tuple[str, str]] = Counter()
        self.no_flow: Counter[str] = Counter()
        self.udp_skipped: Counter[str] = Counter()

    def count(self, source: str, aspect: str, ok: bool) -> None:
        self.compared[(source, aspect)] += 1
        self.agree[(source, aspect)] += ok

    def lines(self) -> list[str]:
        out = []
        for key in sorted(self.compared):
            a, c = self.agree[key], self.compared[key]
            out.append(f"  {key[0]:32s} {key[1]:11s} {a}/{c} ({100.0 * a / c:.2f}%)")
        return out


def _is_tls_flow(source: str, f: dict[str, Any]) -> bool:
    """Whether a baseline flow's SNI/JA3 comes from a TLS ClientHello (not HTTP Host etc.)."""
    if source == "nDPI":
        # nDPI prints the HTTP Host in the same column; a JA3, a TLS protocol label or the
        # "SNI missing" risk says the value came from a ClientHello.
        return bool(f.get("ja3") or "TLS" in str(f.get("proto", "")).upper()
                    or f.get("sni_missing_flag"))
    if source == "zeek":
        # ssl.log rows, and conn.log rows (compared where sniparse saw a hello on them).
        return bool(f.get("in_ssl_log") or f.get("conn_state"))
    return True


def compare_capture(
    corpus: Path, capture: str, baselines: list[dict[str, Any]], tally: Tally
) -> Iterator[tuple[DKey, str, str]]:
    """Yield (key, ours, theirs) for every disagreement in one capture."""
    report: sniparse.Report | None = None
    by_pair: dict[Pair, list[Handshake]] = {}
    # Zeek's ssl.log has no transport column, so the normalized baselines call QUIC flows
    # "tcp"; tshark's truth says which endpoint pairs carried a QUIC/DTLS hello.
    truth_path = corpus / "truth" / (capture + ".json")
    udp_pairs: set[Pair] = set()
    if truth_path.is_file():
        for th in json.loads(truth_path.read_text()).get("client_hellos", []):
            if th.get("transport") == "udp":
                udp_pairs.add(frozenset({(_norm_ip(th["src_ip"]), int(th["src_port"])),
                                         (_norm_ip(th["dst_ip"]), int(th["dst_port"]))}))
    for b in baselines:
        source = str(b["source"])
        comp = b.get("comparison") or {}
        if source == "pcapplusplus-SSLAnalyzer" and "expected_hello_count" in comp:
            if report is None:
                report = sniparse.analyze(str(corpus / "files" / capture))
                for h in report.handshakes:
                    by_pair.setdefault(_pair(h), []).append(h)
            want = int(comp["expected_hello_count"])
            got = len(report.handshakes)
            tally.count(source, "hellos", got == want)
            if got != want:
                yield (capture, source, "*", "hellos"), str(got), str(want)
            continue
        for f in b.get("flows", []):
            parsed = parse_flow(str(f.get("flow", "")))
            if parsed is None or parsed[0] != "tcp":
                continue
            if not _is_tls_flow(source, f):
                continue
            if parsed[1] in udp_pairs:
                tally.udp_skipped[source] += 1
                continue
            if report is None:
                report = sniparse.analyze(str(corpus / "files" / capture))
                for h in report.handshakes:
                    by_pair.setdefault(_pair(h), []).append(h)
            flow = str(f["flow"])
            hs = by_pair.get(parsed[1], [])
            wants_something = bool(
                (f.get("sni") not in (None, "?")) or f.get("ja3") or f.get("ja3_all")
                or f.get("ja4") or f.get("sni_missing_flag")
                or (source == "zeek" and f.get("in_ssl_log"))
            )
            if not hs:
                if wants_something:
                    tally.no_flow[source] += 1
                    tally.count(source, "flow", False)
                    yield (capture, source, flow, "flow"), "no handshake", "a TLS flow"
                continue
            if wants_something:
                tally.count(source, "flow", True)
            sni = f.get("sni")
            if sni and sni != "?":  # "?": the baseline prints no server name
                ok = any(h.sni == sni for h in hs)
                tally.count(source, "sni", ok)
                if not ok:
                    yield ((capture, source, flow, "sni"),
                           ",".join(f"{h.sni_status}:{h.sni}" for h in hs), str(sni))
            if source == "nDPI" and f.get("sni_missing_flag"):
                ok = any(h.without_sni for h in hs)
                tally.count(source, "no_sni", ok)
                if not ok:
                    yield ((capture, source, flow, "no_sni"),
                           ",".join(f"{h.sni_status}:{h.sni}" for h in hs), "SNI missing")
            ja3 = f.get("ja3")
            ja3_all = set(f.get("ja3_all") or ([ja3] if ja3 else []))
            if ja3_all:
                ok = any(h.ja3 in ja3_all for h in hs)
                tally.count(source, "ja3", ok)
                if not ok:
                    yield ((capture, source, flow, "ja3"),
                           ",".join(str(h.ja3) for h in hs), ",".join(sorted(ja3_all)))
            ja3_full = f.get("ja3_full")
            if ja3_full:
                ok = any(h.ja3_string == ja3_full for h in hs)
                tally.count(source, "ja3_string", ok)
                if not ok:
                    yield ((capture, source, flow, "ja3_string"),
                           ",".join(str(h.ja3_string) for h in hs), str(ja3_full))
            ja4s = f.get("ja4")
            if ja4s:
                ok = any(h.ja4 in ja4s for h in hs)
                tally.count(source, "ja4", ok)
                if not ok:
                    yield ((capture, source, flow, "ja4"),
                           ",".join(str(h.ja4) for h in hs), ",".join(ja4s))
            if source in ("zeek", "suricata-verify") and f.get("rst") is not None:
                # Zeek's conn.log: a RST from either side at any time (history r / R).
                ours_rst = any("r" in h.history.lower() for h in hs)
                ok = ours_rst == bool(f["rst"])
                tally.count(source, "rst", ok)
                if not ok:
                    yield ((capture, source, flow, "rst"),
                           ",".join(h.history for h in hs), f"rst={f['rst']}")
            if f.get("conn_state"):
                orig = tuple(f.get("orig") or ())
                mine = [h for h in hs if (h.client_ip, h.client_port) == orig] or hs
                h = mine[0]
                ok = h.conn_state == f["conn_state"]
                tally.count(source, "conn_state", ok)
                if not ok:
                    yield (capture, source, flow, "conn_state"), h.conn_state, f["conn_state"]
                # flows.py produces the letters S h A D F R (and ^); Zeek's optional letters
                # (C T W G I Q: bad checksum, retransmission, window, gap, inconsistent,
                # multi-flag) are left out of the comparison.
                want_history = "".join(c for c in str(f["history"]) if c.upper() not in _OPTIONAL)
                ok = h.history == want_history
                tally.count(source, "history", ok)
                if not ok:
                    yield (capture, source, flow, "history"), h.history, str(f["history"])


def run_baselines(corpus: Path) -> tuple[Tally, list[tuple[DKey, str, str]]]:
    """Every normalized baseline: the tally and every disagreement."""
    tally = Tally()
    found: list[tuple[DKey, str, str]] = []
    root = corpus / "baselines" / "normalized"
    for p in sorted(root.rglob("*.json")):
        d = json.loads(p.read_text())
        found.extend(compare_capture(corpus, str(d["capture"]), d["baselines"], tally))
    return tally, found


def test_corpus_baselines(corpus_dir: Path) -> None:
    if not (corpus_dir / "baselines" / "normalized").is_dir():
        pytest.skip("no normalized baselines")
    tally, found = run_baselines(corpus_dir)
    unexplained = [d for d in found if d[0] not in BASELINES]
    seen = {d[0] for d in found}
    stale = sorted(k for k in BASELINES if k not in seen)
    # What tshark scored against the same baselines (BASELINE_COMPARE.tsv), for reference.
    ref: dict[str, list[int]] = {}
    compare_tsv = corpus_dir / "BASELINE_COMPARE.tsv"
    if compare_tsv.is_file():
        for line in compare_tsv.read_text().splitlines()[1:]:
            cols = line.split("\t")
            acc = ref.setdefault(cols[1], [0] * 6)
            for i in range(6):
                acc[i] += int(cols[4 + i] or 0)
    text = "\n".join([
        "corpus baselines (Zeek, nDPI, JA4, Arkime, suricata-verify, PcapPlusPlus) vs sniparse",
        *tally.lines(),
        f"  QUIC/DTLS flows listed as tcp, skipped: {dict(tally.udp_skipped)}",
        "  tshark against the same baselines (all transports; sni, ja3, rst agree/total):",
        *(f"    {k:32s} {v[0]}/{v[0] + v[1]}  {v[2]}/{v[2] + v[3]}  {v[4]}/{v[4] + v[5]}"
          for k, v in sorted(ref.items())),
        (f"  disagreements: {len(found) - len(unexplained)} explained, "
        f"{len(unexplained)} unexplained"),
    ])
    print("\n" + text)
    Path(OUT_FILE).write_text(json.dumps({
        "figures": {f"{s}/{a}": [tally.agree[(s, a)], c] for (s, a), c in tally.compared.items()},
        "disagreements": [
            {"key": list(k), "ours": o, "theirs": t, "reason": BASELINES.get(k)}
            for k, o, t in found
        ],
    }, indent=1))
    assert sum(tally.compared.values()) > 2000
    assert not unexplained, "\n".join(
        f"{k}: sniparse {o} / baseline {t}" for k, o, t in unexplained[:40]
    )
    assert not stale, f"explained disagreements that no longer occur: {stale[:20]}"
