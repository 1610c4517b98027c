"""Every capture of the public corpus read by CaptureReader, checked against tshark.

For each row of MANIFEST.tsv: the number of frames (``packets``) and the link types of the
declared interfaces (``link_types``) must agree with what tshark 4.0.17 saw; and for every
ClientHello frame listed in the truth file, the frame's timestamp (to the nanosecond),
original and captured lengths and interface index must agree too.

Explained disagreements are listed in ``KNOWN`` with the reason; any other disagreement
fails the test, and so does a known one that stops happening.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from sniparse.capture import CaptureReader
from sniparse.errors import Issues

pytestmark = pytest.mark.corpus

# tshark's encapsulation names (as MANIFEST.tsv spells them) for LINKTYPE_* numbers.
LINKTYPE_NAMES = {
    0: "null",
    1: "ether",
    9: "ppp",
    12: "rawip",
    14: "rawip",
    101: "rawip",
    108: "loop",
    113: "linux-sll",
    228: "rawip4",
    229: "rawip6",
    276: "linux-sll2",
}

# path -> (our frame count, why it differs from tshark's)
KNOWN: dict[str, tuple[int, str]] = {
    "files/suricata-verify/tests/bug-1450-04/tls_DER-incomplete-header.pcap": (
        14,
        (
            "record 6 claims 2 captured bytes more than it holds, so the header read after it "
            "is shifted and says 4325376 bytes; tshark stops there after 6 frames, sniparse "
            "reports it, finds the real header 2 bytes earlier (timestamps continue in order) "
            "and reads the 8 records after it"
        ),
    ),
    "files/suricata-verify/tests/bug-1450-05/tls_DER-incomplete-content.pcap": (
        14,
        "the same over-long record 6 as bug-1450-04: tshark stops, sniparse resynchronises",
    ),
}


def _ts_ns(epoch: str) -> int:
    return int(Decimal(epoch) * 1_000_000_000)


def test_corpus_frames_linktypes_and_hello_frames(corpus_dir: Path) -> None:
    with open(corpus_dir / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) > 100
    agree = 0
    explained = 0
    hellos_checked = 0
    failures: list[str] = []
    for row in rows:
        rel = row["relative_path"]
        issues = Issues()
        reader = CaptureReader(corpus_dir / rel, issues)
        by_frame: dict[int, tuple[int, int, int, int]] = {}
        truth_path = corpus_dir / "truth" / (rel.removeprefix("files/") + ".json")
        truth = json.loads(truth_path.read_text()) if truth_path.is_file() else {}
        wanted = {h["frame"] for h in truth.get("client_hellos", [])}
        n = 0
        for rec in reader:
            n = rec.frame
            if rec.frame in wanted:
                # tshark's interface id counts within the pcapng section
                local = reader.interfaces[rec.iface].local_id
                by_frame[rec.frame] = (rec.ts_ns, rec.origlen, len(rec.data), local)
        names = sorted({LINKTYPE_NAMES.get(i.linktype, str(i.linktype)) for i in reader.interfaces})
        want_names = sorted(set(row["link_types"].split(",")))
        problems = []
        if n != int(row["packets"]):
            if rel in KNOWN and KNOWN[rel][0] == n and any(i.kind == "malformed" for i in issues):
                explained += 1
            else:
                problems.append(f"{n} frames, tshark {row['packets']}")
        elif rel in KNOWN:
            problems.append("listed in KNOWN but agrees now: update KNOWN")
        if names != want_names:
            problems.append(f"link types {names}, tshark {want_names}")
        for h in truth.get("client_hellos", []):
            got = by_frame.get(h["frame"])
            # tshark gives no interface id for classic pcap: the one interface, 0.
            want = (_ts_ns(h["time_epoch"]), h["frame_len"], h["cap_len"], h["interface_id"] or 0)
            hellos_checked += 1
            if got != want:
                problems.append(f"frame {h['frame']}: {got} != tshark {want}")
        if rel not in KNOWN and any(i.kind != "info" for i in issues):
            problems.append("issues: " + "; ".join(i.detail for i in issues))
        if problems:
            failures.append(f"{rel}: " + " | ".join(problems[:3]))
        elif rel not in KNOWN:
            agree += 1
    print(
        f"\ncorpus: {agree}/{len(rows)} captures agree with tshark on frames, link types "
        f"and {hellos_checked} hello frames; {explained} explained differences"
    )
    assert not failures, "\n".join(failures[:20])
    assert agree + explained == len(rows)
