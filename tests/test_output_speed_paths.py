"""The streamed row writer's window and the report builder's fast paths against plain
references: a stable sort of the rows, and the handshakes' own attributes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import sniparse
from sniparse import report
from sniparse.errors import SniparseError
from sniparse.flows import Handshake


def _handshakes(fixtures_dir: Path) -> list[Handshake]:
    out: list[Handshake] = []
    for p in sorted(fixtures_dir.rglob("*.pcap*")):
        try:
            out.extend(sniparse.iter_handshakes(str(p)))
        except SniparseError:
            continue
    return out


@pytest.fixture(scope="module")
def handshakes(fixtures_dir: Path) -> list[Handshake]:
    hs = _handshakes(fixtures_dir)
    assert len(hs) > 50
    return hs


def _reference(hs: list[Handshake], fmt: str, window: int) -> str:
    """What the writer must produce: heapq over (ts_ns, frame, arrival, row) tuples."""
    import heapq

    row = report._csv_row if fmt == "csv" else report._ndjson_row
    out = [report._CSV_HEADER] if fmt == "csv" else []
    heap: list[tuple[object, object, int, str]] = []
    for seq, h in enumerate(hs, 1):
        item = (h.ts_ns, h.frame, seq, row(h))
        if len(heap) < window:
            heapq.heappush(heap, item)
        else:
            out.append(heapq.heappushpop(heap, item)[3])
    while heap:
        out.append(heapq.heappop(heap)[3])
    return "".join(out)


def _written(hs: list[Handshake], fmt: str, window: int, chunk: int = 1 << 16) -> str:
    pieces: list[str] = []
    w = report._RowWriter(fmt, pieces.append, window, chunk)
    w.header()
    w.push_all(hs)
    w.drain()
    return "".join(pieces)


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
@pytest.mark.parametrize("window", [0, 1, 2, 3, 7, 64, 4096])
def test_window_orders_as_heapq(handshakes: list[Handshake], fmt: str, window: int) -> None:
    rng = random.Random(window)
    hs = list(handshakes)
    rng.shuffle(hs)
    # Equal keys too: the same handshakes again keep their arrival order.
    hs = hs + hs[: len(hs) // 3]
    assert _written(hs, fmt, window, chunk=rng.choice([1, 100, 1 << 16])) == _reference(
        hs, fmt, window
    )


def test_window_with_odd_keys(handshakes: list[Handshake]) -> None:
    """A record whose ts_ns is not exactly an int switches the window to tuples, same order."""
    import dataclasses

    hs = list(handshakes[:40])
    odd = dataclasses.replace(hs[5])
    odd.__dict__["ts_ns"] = type("Ns", (int,), {})(odd.ts_ns + 1)
    hs.insert(20, odd)
    for window in (0, 3, 100):
        assert _written(hs, "ndjson", window) == _reference(hs, "ndjson", window)


def test_found_flags_clients_without_sni(handshakes: list[Handshake]) -> None:
    w = report._RowWriter("ndjson", lambda _t: None, 10)
    w.push_all([h for h in handshakes if not h.without_sni])
    assert not w.found
    w.push_all(h for h in handshakes if h.without_sni)
    assert w.found


def test_unknown_row_format() -> None:
    with pytest.raises(ValueError):
        report._RowWriter("json", lambda _t: None, 10)
