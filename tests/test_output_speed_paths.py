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


def _encoded(h: Handshake) -> str:
    return report._ENCODER.encode(report.handshake_to_dict(h)) + "\n"


def _with(h: Handshake, **changes: object) -> Handshake:
    import dataclasses

    out = dataclasses.replace(h)
    out.__dict__.update(changes)
    return out


def test_row_head_across_seconds(handshakes: list[Handshake]) -> None:
    """The per-second head texts: second boundaries, back in time, before 1970-01-01T00:00:01,
    and the last second a calendar date can show."""
    base = handshakes[0]
    stamps = [
        1_767_225_601_003_683_000, 1_767_225_601_999_999_999, 1_767_225_602_000_000_000,
        1_767_225_602_000_000_001, 1_767_225_601_500_000_000, 1_000_000_000, 999_999_999, 0,
        -1, -1_000_000_001, 1_999_999_999, 253_402_300_799_999_999_999, 253_402_300_800 * 10**9,
        1_767_225_602_000_001_000,
    ]
    for ts_ns in stamps + stamps[::-1]:
        h = _with(base, ts_ns=ts_ns)
        assert report._ndjson_row(h) == _encoded(h), ts_ns


def test_row_column_tables_when_full(handshakes: list[Handshake]) -> None:
    """Values past a column table's size or text limit are written all the same, and a table
    keeps its texts apart from equal values of another type."""
    base = handshakes[0]
    n = report._COLUMN_CACHE_SIZE + 50
    long = "x" * (report._COLUMN_TEXT_MAX + 1)
    for i in range(n):
        h = _with(base, sni=f"host{i}.example", sni_raw=f"host{i}".encode(), detail=long + str(i),
                  alpn=(f"p{i % 7}", "h2"), history=str(i % 3))
        assert report._ndjson_row(h) == _encoded(h)
    for changes in ({"alpn": ("1",)}, {"alpn": (1,)}, {"alpn": (True,)}, {"alpn": (1.0,)},
                    {"history": "1"}, {"segments": 1}, {"segments": True}, {"sni_raw": b"1"},
                    {"sni_raw": "1"}):
        h = _with(base, **changes)
        assert report._ndjson_row(h) == _encoded(h), changes
    assert all(len(t) <= report._COLUMN_CACHE_SIZE for t in report._JSON_COLUMN_TEXT)
