"""Differential test: sniparse against tshark's view of every TLS-over-TCP ClientHello in the
public corpus (``../shared/corpus``; skipped when absent).

Scope: ``proto`` ``tls`` and ``sslv2`` over TCP. QUIC, DTLS, gQUIC (and the few ``tls`` over
UDP rows, which are hellos tshark found inside QUIC/DTLS payloads) are out of scope; they are
counted and printed, not compared.

Per ClientHello (the first hello of each tshark TCP stream; a second hello in the same stream
is the one after a HelloRetryRequest and belongs to the same record) sniparse must have a
handshake with the same (client ip, client port, server ip, server port) and a frame inside
the hello's segments (or the nearest one in time). Compared: SNI presence and value, JA3
(MD5 and the full string), ALPN, offered versions, the ECH flag, the hello's first frame
and its number of TCP segments. ``retransmitted_client_hellos`` must not add handshakes: the
number of sniparse records per 4-tuple may not exceed tshark's number of streams with a hello.

Per flow (tshark ``streams["tcp:N"]``): the facts "ServerHello seen", "a RST came before the
ServerHello and from which side", and the first unencrypted server alert are turned into the
outcome tshark's facts allow, and sniparse's ``outcome`` must be one of them (a server FIN or
RST racing another reaction is allowed only where tshark's facts allow it).

Every disagreement must be listed, with the bytes that decide it, in
``tests/corpus_disagreements.py``; an explained disagreement that no longer occurs fails the
test too (so the list stays true). ``pytest -s`` prints the agreement figures; they are also
written to ``$SNIPARSE_DIFF_OUT`` (default ``/tmp/sniparse_corpus_differential.json``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import sniparse
from sniparse.flows import Handshake

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_disagreements import DIFFERENTIAL

pytestmark = pytest.mark.corpus

IN_SCOPE = {("tls", "tcp"), ("sslv2", "tcp")}
OUT_FILE = os.environ.get("SNIPARSE_DIFF_OUT", "/tmp/sniparse_corpus_differential.json")

Key4 = tuple[str, int, str, int]


@dataclass
class Figures:
    """Agreement counters over the corpus."""

    captures: int = 0
    captures_with_tls: int = 0
    out_of_scope: Counter[str] = field(default_factory=Counter)
    retransmitted_in_scope: int = 0
    hellos: int = 0
    found: int = 0
    sni_compared: int = 0
    sni_agree: int = 0
    ja3_compared: int = 0
    ja3_agree: int = 0
    ja3_string_agree: int = 0
    alpn_compared: int = 0
    alpn_agree: int = 0
    flows_compared: int = 0
    outcome_agree: int = 0
    inferred: int = 0
    duplicates: int = 0
    frame_agree: int = 0
    segments_agree: int = 0
    versions_compared: int = 0
    versions_agree: int = 0
    ech_compared: int = 0
    ech_agree: int = 0
    sh_seen: int = 0
    sh_seen_agree: int = 0
    rst_first: int = 0
    rst_first_agree: int = 0
    extra: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["out_of_scope"] = dict(self.out_of_scope)
        d["outcomes"] = dict(self.outcomes)
        return d


@dataclass(frozen=True)
class Disagreement:
    """One place where sniparse and tshark differ."""

    capture: str
    frame: int
    aspect: str
    ours: str
    theirs: str

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.capture, self.frame, self.aspect)


def manifest(corpus: Path) -> list[str]:
    """Relative paths (``files/...``) of every corpus capture."""
    with open(corpus / "MANIFEST.tsv", newline="") as f:
        return [r["relative_path"] for r in csv.DictReader(f, delimiter="\t")]


def truth_of(corpus: Path, rel: str) -> dict[str, Any]:
    """tshark's truth for one capture."""
    data: dict[str, Any] = json.loads(
        (corpus / "truth" / (rel.removeprefix("files/") + ".json")).read_text()
    )
    return data


def _k(h: dict[str, Any]) -> Key4:
    return (h["src_ip"], int(h["src_port"]), h["dst_ip"], int(h["dst_port"]))


def _hk(h: Handshake) -> Key4:
    return (h.client_ip, h.client_port, h.server_ip, h.server_port)


def _t_ns(h: dict[str, Any]) -> int:
    s, _, frac = str(h["time_epoch"]).partition(".")
    return int(s) * 1_000_000_000 + int((frac + "000000000")[:9])


def _rst_side(stream: dict[str, Any]) -> str | None:
    """The side of the first RST tshark saw in the stream (``rst_from`` is in order)."""
    sides = stream.get("rst_from") or []
    return str(sides[0]) if sides else None


def expected_outcomes(stream: dict[str, Any] | None, hello_frame: int) -> set[str]:
    """The outcomes that tshark's facts about a stream allow for the hello at ``hello_frame``.

    tshark records ServerHello seen, RST frames and sides, unencrypted alerts and which sides
    sent a FIN (without frames). A FIN is allowed to have come first only when the side that
    would own it sent one.
    """
    if stream is None:
        return {"?"}
    sh = bool(stream.get("server_hello_seen"))
    sh_frame = stream.get("server_hello_frame")
    rst_frame = stream.get("first_rst_frame")
    rst_side = _rst_side(stream)
    server_fin = "server" in (stream.get("fin_from") or [])
    alerts = [
        a for a in stream.get("alerts") or []
        if a.get("side") == "server" and not a.get("encrypted") and a.get("desc") is not None
        and a.get("frame", 0) > hello_frame
    ]
    first_alert = min(alerts, key=lambda a: a["frame"]) if alerts else None
    events: list[tuple[int, str]] = []
    if sh and sh_frame:
        events.append((int(sh_frame), "server_hello"))
    if first_alert is not None:
        warning = str(first_alert.get("level")) == "1"
        if not (warning and sh and sh_frame and int(sh_frame) >= int(first_alert["frame"])):
            # A warning alert (unrecognized_name, RFC 6066 §3) followed by a ServerHello is
            # a served handshake; any other first alert is the server's reaction.
            events.append((int(first_alert["frame"]), f"alert:{first_alert['desc']}"))
    if rst_frame and rst_frame > hello_frame and rst_side in ("server", "client"):
        events.append((int(rst_frame), f"{rst_side}_reset"))
    events.sort()
    allowed: set[str] = set()
    if events:
        allowed.add(events[0][1])
    else:
        allowed.add("no_response")
    if server_fin:
        # tshark does not give FIN frames: a server FIN may have come before any of these.
        allowed.add("server_close")
    return allowed


def _version_name(v: str) -> str:
    """tshark prints TLS 1.3 draft versions as raw hex (``0x7f1c``); sniparse names them."""
    if v.startswith("0x7f") and len(v) == 6:
        return f"TLSv1.3-draft{int(v[4:], 16)}"
    return v


_INFERRED = re.compile(r"inferred from the client's .+? in frame (\d+)")


def inferred_agrees(stream: dict[str, Any] | None, allowed: set[str], h: Handshake) -> bool:
    """A ServerHello sniparse inferred from the client's next records (CCS, key exchange,
    application data) agrees with tshark's facts when tshark saw no ServerHello and no
    server alert (its facts allow only silence, FIN or RST), and no RST at or before the
    client's proof frame (a reset there would have been the first reaction)."""
    m = _INFERRED.search(h.detail or "")
    if h.outcome != "server_hello" or h.outcome_ms is not None or m is None or stream is None:
        return False
    if not allowed <= {"no_response", "server_close", "client_reset", "server_reset"}:
        return False
    rst = stream.get("first_rst_frame")
    return not (rst and int(rst) <= int(m.group(1)))


def our_outcome(h: Handshake) -> str:
    if h.outcome == "alert":
        return f"alert:{h.alert}"
    return h.outcome


def compare_capture(
    corpus: Path, rel: str, figures: Figures
) -> Iterator[Disagreement]:
    """Compare one capture; count into ``figures``; yield each disagreement."""
    truth = truth_of(corpus, rel)
    cap = rel.removeprefix("files/")
    figures.captures += 1
    for h in truth["client_hellos"]:
        if (h["proto"], h["transport"]) not in IN_SCOPE:
            figures.out_of_scope[f"{h['proto']}/{h['transport']}"] += 1
    hellos = [h for h in truth["client_hellos"] if (h["proto"], h["transport"]) in IN_SCOPE]
    retrans = [
        h for h in truth.get("retransmitted_client_hellos", [])
        if (h["proto"], h["transport"]) in IN_SCOPE
    ]
    figures.retransmitted_in_scope += len(retrans)
    if hellos:
        figures.captures_with_tls += 1
    report = sniparse.analyze(str(corpus / rel))
    ours: dict[Key4, list[Handshake]] = {}
    for hs in report.handshakes:
        ours.setdefault(_hk(hs), []).append(hs)

    # The first hello of each tshark stream is one connection attempt.
    firsts: dict[tuple[Key4, int], dict[str, Any]] = {}
    for h in sorted(hellos, key=lambda x: int(x["frame"])):
        firsts.setdefault((_k(h), int(h["stream"])), h)
    per_key = Counter(k for k, _ in firsts)
    for key, n in per_key.items():
        records = len(ours.get(key, []))
        if records > n:
            figures.duplicates += records - n
            yield Disagreement(cap, 0, f"duplicate {key}", f"{records} records", f"{n} streams")

    streams = truth.get("streams", {})
    for (key, stream_id), th in sorted(firsts.items(), key=lambda kv: int(kv[1]["frame"])):
        figures.hellos += 1
        frame = int(th["frame"])
        cands = ours.get(key, [])
        frames = {int(th["frame"]), int(th.get("first_segment_frame") or th["frame"])}
        frames.update(int(f) for f in th.get("tcp_segment_frames") or [])
        pick = next((c for c in cands if c.frame in frames), None)
        if pick is None and cands:
            # Nearest in time: another frame choice (e.g. a retransmission sniparse kept).
            t = _t_ns(th)
            pick = min(cands, key=lambda c: abs(c.ts_ns - t))
            if abs(pick.ts_ns - t) > 2_000_000_000:
                pick = None
        if pick is None:
            yield Disagreement(cap, frame, "missing", "no handshake", f"{key}")
            continue
        cands.remove(pick)
        figures.found += 1

        # SNI: value when tshark has one; "without SNI" when tshark has none.
        figures.sni_compared += 1
        t_sni = th["sni"]
        if t_sni is not None:
            ok = pick.sni_status == "present" and pick.sni == t_sni
        else:
            ok = pick.sni_status in ("absent", "empty")
        if ok:
            figures.sni_agree += 1
        else:
            yield Disagreement(cap, frame, "sni", f"{pick.sni_status}:{pick.sni!r}", repr(t_sni))

        if th.get("ja3_full"):
            figures.ja3_compared += 1
            if pick.ja3 == th["ja3"]:
                figures.ja3_agree += 1
            else:
                yield Disagreement(cap, frame, "ja3", str(pick.ja3), str(th["ja3"]))
            if pick.ja3_string == th["ja3_full"]:
                figures.ja3_string_agree += 1
            else:
                yield Disagreement(cap, frame, "ja3_string", str(pick.ja3_string),
                                   str(th["ja3_full"]))

        # The hello's first segment (Wireshark's frame numbers) and segment count.
        t_first = int(th.get("first_segment_frame") or th["frame"])
        t_segs = int(th.get("tcp_segment_count") or 1)
        figures.frame_agree += pick.frame == t_first
        figures.segments_agree += pick.segments == t_segs
        if pick.frame != t_first:
            yield Disagreement(cap, frame, "frame", str(pick.frame), str(t_first))
        if pick.segments != t_segs:
            yield Disagreement(cap, frame, "segments", str(pick.segments), str(t_segs))

        if pick.sni_status != "malformed":
            figures.versions_compared += 1
            t_vers = tuple(th.get("supported_versions") or ()) or (th["handshake_version"],)
            t_vers = tuple(_version_name(v) for v in t_vers)
            if sorted(pick.versions) == sorted(t_vers):
                figures.versions_agree += 1
            else:
                yield Disagreement(cap, frame, "versions", repr(pick.versions), repr(t_vers))
            marks = " ".join(th.get("ech") or [])
            figures.ech_compared += 1
            if pick.ech == ("0xfe0d" in marks):
                figures.ech_agree += 1
            else:
                yield Disagreement(cap, frame, "ech", str(pick.ech), marks)

        if th["proto"] == "tls":
            figures.alpn_compared += 1
            t_alpn = tuple(th.get("alpn") or ())
            if pick.alpn == t_alpn:
                figures.alpn_agree += 1
            else:
                yield Disagreement(cap, frame, "alpn", repr(pick.alpn), repr(t_alpn))

        stream = streams.get(f"tcp:{stream_id}")
        allowed = expected_outcomes(stream, frame)
        figures.flows_compared += 1
        got = our_outcome(pick)
        figures.outcomes[pick.outcome] += 1
        if stream is not None and stream.get("server_hello_seen"):
            figures.sh_seen += 1
            figures.sh_seen_agree += pick.outcome == "server_hello"
        inferred = got not in allowed and inferred_agrees(stream, allowed, pick)
        if any(a.endswith("_reset") for a in allowed) and not inferred:
            figures.rst_first += 1
            figures.rst_first_agree += got in allowed and got.endswith("_reset")
        if inferred:
            figures.inferred += 1
        if got in allowed or inferred:
            figures.outcome_agree += 1
        else:
            yield Disagreement(cap, frame, "outcome", got, "|".join(sorted(allowed)))

    # Handshakes tshark does not list at all (hellos it did not dissect, or phantoms).
    for rest in ours.values():
        for hs in rest:
            figures.extra += 1
            yield Disagreement(cap, hs.frame, "extra", f"{hs.sni_status}:{hs.sni!r} "
                               f"{_hk(hs)} {hs.outcome}", "no hello")


def run_differential(corpus: Path) -> tuple[Figures, list[Disagreement]]:
    """The whole corpus: figures and every disagreement."""
    figures = Figures()
    found: list[Disagreement] = []
    for rel in manifest(corpus):
        found.extend(compare_capture(corpus, rel, figures))
    return figures, found


def _print_figures(f: Figures, explained: int, unexplained: int) -> str:
    def pct(a: int, b: int) -> str:
        return f"{a}/{b} ({100.0 * a / b:.2f}%)" if b else "0/0"

    lines = [
        "corpus differential against tshark 4.0.17 (TLS and SSLv2 over TCP)",
        f"  captures: {f.captures}, with in-scope hellos: {f.captures_with_tls}",
        f"  out of scope (not compared): {dict(sorted(f.out_of_scope.items()))}",
        (f"  retransmitted hello copies in scope: {f.retransmitted_in_scope}, "
         f"duplicate records: {f.duplicates}"),
        f"  hellos found:        {pct(f.found, f.hellos)}",
        f"  SNI agree:           {pct(f.sni_agree, f.sni_compared)}",
        f"  JA3 md5 agree:       {pct(f.ja3_agree, f.ja3_compared)}",
        f"  JA3 string agree:    {pct(f.ja3_string_agree, f.ja3_compared)}",
        f"  ALPN agree:          {pct(f.alpn_agree, f.alpn_compared)}",
        f"  versions agree:      {pct(f.versions_agree, f.versions_compared)}",
        f"  ECH flag agree:      {pct(f.ech_agree, f.ech_compared)}",
        f"  first frame agree:   {pct(f.frame_agree, f.found)}",
        f"  segment count agree: {pct(f.segments_agree, f.found)}",
        f"  outcome facts agree: {pct(f.outcome_agree, f.flows_compared)}",
        (f"    ServerHello seen by tshark, sniparse server_hello: "
         f"{pct(f.sh_seen_agree, f.sh_seen)}"),
        (f"    RST first after the hello (tshark), same side's reset in sniparse: "
         f"{pct(f.rst_first_agree, f.rst_first)}"),
        (f"    ServerHello inferred from the client's records (tshark: no ServerHello, "
         f"no RST before the proof): {f.inferred}"),
        f"  sniparse outcomes:   {dict(f.outcomes.most_common())}",
        f"  handshakes tshark does not list: {f.extra}",
        f"  disagreements: {explained} explained, {unexplained} unexplained",
    ]
    return "\n".join(lines)


def test_corpus_differential_against_tshark(corpus_dir: Path) -> None:
    figures, found = run_differential(corpus_dir)
    explained = {k: v for k, v in DIFFERENTIAL.items()}
    unexplained = [d for d in found if d.key not in explained]
    seen = {d.key for d in found}
    stale = sorted(k for k in explained if k not in seen)
    text = _print_figures(figures, len(found) - len(unexplained), len(unexplained))
    print("\n" + text)
    Path(OUT_FILE).write_text(json.dumps({
        "figures": figures.as_dict(),
        "disagreements": [d.__dict__ | {"reason": explained.get(d.key)} for d in found],
    }, indent=1, default=str))
    assert figures.hellos > 1900, figures.hellos
    assert not unexplained, "\n".join(
        f"{d.capture} frame {d.frame} {d.aspect}: sniparse {d.ours} / tshark {d.theirs}"
        for d in unexplained[:40]
    )
    assert not stale, f"explained disagreements that no longer occur: {stale[:20]}"
