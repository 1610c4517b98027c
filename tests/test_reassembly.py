"""Per-direction reassembly: order, overlaps, wrap-around, cuts, cap."""

from __future__ import annotations

import bisect
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sniparse.reassembly import Span, Stream, seq_offset

DATA = bytes(range(256)) * 8  # 2048 distinct-ish bytes


def cut(data: bytes, sizes: list[int]) -> list[tuple[int, bytes]]:
    out = []
    off = 0
    for n in sizes:
        if off >= len(data):
            break
        out.append((off, data[off : off + n]))
        off += n
    if off < len(data):
        out.append((off, data[off:]))
    return out


def test_seq_offset_serial_arithmetic() -> None:
    assert seq_offset(5, 0xFFFFFFFE) == 7
    assert seq_offset(0xFFFFFFFE, 5) == -7
    assert seq_offset(100, 100) == 0


def test_in_order_and_span() -> None:
    s = Stream(1000)
    assert s.add(1000, DATA[:100], 100, 1, 10) == 100
    assert s.add(1100, DATA[100:300], 200, 2, 20) == 200
    assert bytes(s.data) == DATA[:300]
    sp = s.span(0, 300)
    assert (sp.frame, sp.ts_ns, sp.segments, sp.last_ts_ns) == (1, 10, 2, 20)
    assert s.span(0, 100).segments == 1
    assert s.span(150, 160).frame == 2
    assert s.runs() == ([100, 300], [1, 2], [10, 20])
    assert s.last_ts_of(0, 100) == 10 and s.last_ts_of(50, 150) == 20 and s.last_ts() == 20


def test_reversed_and_retransmission_first_copy_wins() -> None:
    s = Stream(0)
    assert s.add(100, DATA[100:200], 100, 2, 20) == 0  # held
    assert s.add(0, DATA[:100], 100, 1, 10) == 200
    assert s.add(50, b"\xff" * 100, 100, 3, 30) == 0  # conflicting overlap ignored
    assert bytes(s.data) == DATA[:200]
    assert s.conflicts == 1
    assert s.span(0, 200).segments == 2
    s.add(0, DATA[:100], 100, 4, 40)  # clean retransmission
    assert s.conflicts == 1
    assert s.span(0, 200).last_ts_ns == 20


def test_wraparound() -> None:
    base = 0xFFFFFF00
    s = Stream(base)
    pieces = cut(DATA[:1000], [300, 300])
    for i, (off, p) in enumerate(pieces):
        s.add((base + off) & 0xFFFFFFFF, p, len(p), i + 1, i)
    assert bytes(s.data) == DATA[:1000]


def test_old_bytes_before_base_trimmed() -> None:
    s = Stream(1000)
    s.add(990, b"x" * 10 + DATA[:20], 30, 1, 1)
    assert bytes(s.data) == DATA[:20]


def test_cap() -> None:
    s = Stream(0, cap=500)
    s.add(0, DATA[:400], 400, 1, 1)
    s.add(400, DATA[400:800], 400, 2, 2)
    assert len(s.data) == 500 and s.full
    s.add(900, DATA[:10], 10, 3, 3)
    assert len(s.data) == 500


def test_snaplen_cut_is_truncated() -> None:
    s = Stream(0)
    s.add(0, DATA[:100], 300, 1, 1)  # only 100 of 300 bytes captured
    s.add(300, DATA[300:400], 100, 2, 2)
    assert len(s.data) == 100
    assert s.incomplete_reason(at_capture_end=True) == "truncated"


def test_gap_vs_capture_end() -> None:
    s = Stream(0)
    s.add(0, DATA[:100], 100, 1, 1)
    assert s.incomplete_reason(at_capture_end=True) == "capture_end"
    s.add(200, DATA[200:300], 100, 2, 2)
    assert s.incomplete_reason(at_capture_end=True) == "gap"
    t = Stream(0)
    t.add(0, DATA[:100], 100, 1, 1)
    t.note_end(150)  # the peer acknowledged bytes we never saw
    assert t.incomplete_reason(at_capture_end=True) == "gap"


def test_pending_is_bounded() -> None:
    s = Stream(0, max_pending=4)
    for i in range(10):
        s.add(100 + 10 * i, DATA[:5], 5, i, i)
    assert s.overflow == 6
    assert s.incomplete_reason(at_capture_end=True) == "gap"


def test_release_drops_buffers() -> None:
    s = Stream(0)
    s.add(0, DATA[:100], 100, 1, 1)
    s.release()
    assert s.add(100, DATA[100:200], 100, 2, 2) == 0
    assert len(s.data) == 0 and s.segments_seen == 2


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=20),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    base=st.integers(min_value=0, max_value=2**32 - 1),
    dups=st.integers(min_value=0, max_value=5),
)
def test_any_segmentation_and_order(sizes: list[int], seed: int, base: int, dups: int) -> None:
    data = DATA[:1500]
    pieces = cut(data, sizes)
    rng = random.Random(seed)
    order = pieces + [rng.choice(pieces) for _ in range(dups)]
    rng.shuffle(order)
    s = Stream(base)
    for i, (off, p) in enumerate(order):
        s.add((base + off) & 0xFFFFFFFF, p, len(p), i + 1, i)
    assert bytes(s.data) == data
    assert s.conflicts == 0
    assert s.span(0, len(data)).segments == len(pieces)


def _span_reference(s: Stream, start: int, end: int) -> Span:
    """Stream.span's definition, written out: the runs from the one holding ``start`` to
    the one holding ``end - 1`` (the last run when the range goes past the bytes)."""
    ends, run_frames, run_ts = s.runs()
    if not ends or end <= start:
        return Span(0, 0, 0, 0)
    i0 = min(bisect.bisect_right(ends, start), len(ends) - 1)
    i1 = min(bisect.bisect_left(ends, end), len(ends) - 1)
    frames = run_frames[i0 : i1 + 1]
    return Span(frames[0], run_ts[i0], len(set(frames)), max(run_ts[i0 : i1 + 1]))


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=8),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_span_every_range(sizes: list[int], seed: int) -> None:
    """The single-run shortcut and the search give the definition's answer, as a Span."""
    data = DATA[:700]
    rng = random.Random(seed)
    s = Stream(0)
    assert s.span(0, 10) == Span(0, 0, 0, 0)
    for i, (off, p) in enumerate(cut(data, sizes)):
        # frames may repeat (the same frame number fed twice counts once)
        s.add(off, p, len(p), rng.choice([i, 1]), rng.randrange(100))
    n = len(s.data)
    for start in range(0, n + 2, 7):
        for end in range(start - 1, n + 3, 5):
            got = s.span(start, end)
            assert type(got) is Span and got == _span_reference(s, start, end)
            assert s.last_ts_of(start, end) == got.last_ts_ns
    ends, _, run_ts = s.runs()
    assert ends[-1] == n and s.last_ts() == max(run_ts)


def test_release_then_questions() -> None:
    """A released stream answers every question as an empty one (nothing held, no cut)."""
    s = Stream(0)
    s.add(0, DATA[:100], 300, 1, 1)        # cut by the snaplen
    s.add(400, DATA[400:500], 100, 2, 2)   # held
    assert s.blocked_by_cut() and s.incomplete_reason(at_capture_end=True) == "truncated"
    s.release()
    assert s.released and s.data == bytearray() and s.span(0, 10) == Span(0, 0, 0, 0)
    assert s.last_ts() == 0 and not s.blocked_by_cut() and not s.full
    assert s.incomplete_reason(at_capture_end=False) == "gap"  # seen_end is kept
    s.note_end(1000)
    assert s.add(100, DATA[100:200], 100, 3, 3) == 0 and s.add(0, DATA[:5], 50, 4, 4) == 0
    assert s.segments_seen == 4 and s.conflicts == 0 and s.overflow == 0


def test_fresh_stream_questions() -> None:
    s = Stream(7)
    assert s.incomplete_reason(at_capture_end=True) == "capture_end"
    assert not s.blocked_by_cut() and s.last_ts() == 0 and s.span(0, 1) == Span(0, 0, 0, 0)
    # a cut segment that lies wholly beyond the cap leaves no hole to report
    t = Stream(0, cap=100)
    t.add(150, DATA[:10], 40, 1, 1)
    assert not t.blocked_by_cut()
