"""Fuzz target: whole-capture analysis from arbitrary bytes.

Contract checked: ``sniparse.analyze(data)`` returns a Report or raises a SniparseError,
and every handshake in the report uses only the documented vocabulary.

Run: ``python tests/fuzz/fuzz_capture.py -max_total_time=600 -timeout=20`` (see README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import instrumented, run, seed_files

with instrumented():
    import sniparse
    from sniparse.errors import SniparseError

_STATUS = {"present", "absent", "empty", "unknown", "malformed"}
_OUTCOMES = {"server_hello", "alert", "server_reset", "server_close", "client_reset",
             "no_response"}


def target(data: bytes) -> None:
    """One fuzz input: the capture's bytes."""
    try:
        rep = sniparse.analyze(data, max_flows=64)
    except SniparseError:
        return
    for h in rep.handshakes:
        assert h.sni_status in _STATUS, h.sni_status
        assert h.outcome in _OUTCOMES, h.outcome
        assert (h.sni is not None) == (h.sni_status == "present"), (h.sni, h.sni_status)
    rep.to_dicts()


def main() -> None:
    run("capture", target, seed_files(
        ["formats/*.pcap*", "links/*.pcap", "scenarios/*.pcap"], max_size=12_000))


if __name__ == "__main__":
    main()
