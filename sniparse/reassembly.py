"""Per-direction reassembly of a TCP stream's *opening* bytes (sans-I/O).

sniparse only needs the first few kilobytes of each direction: the client's ClientHello
(possibly after a plaintext prelude) and the server's first reaction. :class:`Stream`
therefore keeps a contiguous byte buffer that starts at stream offset 0 and stops at a byte
cap; everything beyond the cap is ignored.

Rules (RFC 9293 §3.4 sequence numbers, RFC 1982 serial arithmetic):

* Offsets are ``(seq - base) mod 2**32`` read as a signed 32-bit number, so sequence
  wrap-around is invisible to the caller. ``base`` is ISN+1 when the SYN was seen (data in
  the SYN itself -- TCP Fast Open, RFC 7413 §4.2 -- sits at offset 0 because the SYN
  occupies the ISN), else the sequence number of the first payload segment seen.
* Bytes before offset 0 (old retransmissions) are dropped; bytes at or after the cap are
  ignored.
* Out-of-order segments are held (at most ``max_pending`` segments / ``2 * cap`` bytes;
  beyond that the stream can only end with a gap) and drained once the hole before them
  fills.
* Retransmissions and overlaps: the first copy of a byte wins. A later copy with different
  bytes is a *conflicting overlap*, counted in ``conflicts`` for the caller to report.
* A segment whose captured payload is shorter than its wire length (snaplen) leaves a hole
  that the capture itself can never fill: :meth:`Stream.incomplete_reason` answers
  ``"truncated"`` when reading stopped there.
* ``seen_end`` is the highest offset the peer is known to have sent (segment wire ends, a
  FIN's sequence number, the other side's ACK numbers): when the contiguous bytes stop
  before it, bytes are missing from the capture (``"gap"``).

For each appended run of bytes the stream remembers which segment (frame, ts_ns) delivered
it first, so a caller can tell how many TCP segments a message spanned and when its last
byte arrived (:meth:`Stream.span`, :meth:`Stream.last_ts_of`). Work per segment is bounded
by the cap.

Speed: most streams get all the bytes they are asked about in one segment (a ClientHello,
a server's first flight). The first run is therefore kept in three plain integer fields and
the run lists exist only from the second run on; on the handshake benchmark (first 40 MB,
callgrind) that saves about 1,100 instructions per stream (three list allocations, three
boxed appends and their deallocation). :meth:`Stream.last_ts_of` answers the one field most
callers want without building a :class:`Span` (a tuple subclass: ~1,000 instructions each).
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = ["DEFAULT_CAP", "Span", "Stream", "seq_offset"]

_MASK: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000

#: Default byte cap: the largest TLS handshake message we care about (a ClientHello may
#: span several records, RFC 8446 §5.1 allows 2**14 per record) plus headroom for a prelude.
DEFAULT_CAP: Final = 65536 + 4096


def seq_offset(seq: int, base: int) -> int:
    """Signed distance from ``base`` to ``seq`` in 32-bit serial arithmetic (RFC 1982)."""
    d = (seq - base) & _MASK
    return d - 0x100000000 if d >= _HALF else d


class Span(NamedTuple):
    """Which segments delivered a byte range of the stream.

    ``frame``/``ts_ns``: the segment that delivered the range's first byte; ``segments``:
    how many distinct segments delivered bytes of the range; ``last_ts_ns``: the latest
    arrival time among them (when the range became complete in the capture).
    """

    frame: int
    ts_ns: int
    segments: int
    last_ts_ns: int


_EMPTY_SPAN: Final = Span(0, 0, 0, 0)
#: The class itself as a constant (compiled: a static instead of a module-dict lookup).
_SPAN: Final = Span
#: ``tuple.__new__``: builds a Span from a tuple of its four fields.
_new_span: Final = tuple.__new__


def _count_below(ends: list[int], x: int) -> int:
    """``bisect.bisect_left(ends, x)``, compiled to native code (the module's is a generic
    call from compiled code: several times the cost for the few runs a message spans)."""
    lo = 0
    hi = len(ends)
    while lo < hi:
        mid = (lo + hi) >> 1
        if ends[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


class Stream:
    """The opening bytes of one direction of a TCP connection.

    ``data`` holds the contiguous bytes from offset 0 (read it, never write it). Feed
    segments with :meth:`add`; ask :meth:`span` which segments delivered a range.
    """

    __slots__ = (
        "_cuts",
        "_end0",
        "_frame0",
        "_pending",
        "_pending_bytes",
        "_run_end",
        "_run_frame",
        "_run_ts",
        "_ts0",
        "base",
        "cap",
        "conflicts",
        "data",
        "max_pending",
        "overflow",
        "released",
        "seen_end",
        "segments_seen",
    )

    def __init__(self, base_seq: int, cap: int = DEFAULT_CAP, *, max_pending: int = 256) -> None:
        self.base = base_seq & _MASK
        self.cap = cap
        self.data = bytearray()
        self.max_pending = max_pending
        # offset -> (bytes, frame, ts_ns); first copy per offset kept. None until a segment
        # arrives out of order (most streams never see one: one allocation fewer each).
        self._pending: dict[int, tuple[bytes, int, int]] | None = None
        self._pending_bytes = 0
        # Runs of appended bytes: run i covers [end of run i-1, end of run i). The first run
        # is (_end0, _frame0, _ts0), _end0 == 0 while there is none (a run is never empty);
        # the lists hold the runs after it, None until the second run (see the module notes).
        self._end0 = 0
        self._frame0 = 0
        self._ts0 = 0
        self._run_end: list[int] | None = None
        self._run_frame: list[int] | None = None
        self._run_ts: list[int] | None = None
        # Holes left by snaplen-cut segments: (start, end) offsets, bounded list; None
        # until the first cut segment.
        self._cuts: list[tuple[int, int]] | None = None
        #: Highest offset the sender is known to have reached.
        self.seen_end = 0
        #: Overlapping copies whose bytes differed from the first copy.
        self.conflicts = 0
        #: Out-of-order segments dropped because the hold limit was reached.
        self.overflow = 0
        #: Segments with payload fed (after the stream was released too).
        self.segments_seen = 0
        #: True once :meth:`release` dropped the buffers.
        self.released = False

    # -- feeding ------------------------------------------------------------------------
    def add(self, seq: int, payload: bytes, wire_len: int, frame: int, ts_ns: int) -> int:
        """Add one segment's payload starting at sequence number ``seq``.

        ``wire_len`` is the payload length on the wire (``>= len(payload)``; larger when the
        snaplen cut the segment). Returns how many bytes the contiguous prefix grew by.
        """
        self.segments_seen += 1
        if self.released:
            return 0
        # seq_offset() inlined: this runs once per payload segment.
        off = (seq - self.base) & _MASK
        if off >= _HALF:
            off -= 0x100000000
        cap = self.cap
        captured = len(payload)
        if wire_len < captured:  # noqa: PLR1730 (per segment: cheaper than a max() call)
            wire_len = captured
        wire_end = off + wire_len
        if wire_end > self.seen_end:
            self.seen_end = wire_end if wire_end <= cap else cap + 1
        data = self.data
        if captured == wire_len and off == len(data) and wire_end <= cap and not self._pending:
            # The common case: the next in-order segment, whole, inside the cap, nothing
            # held: what _append() does with no overlap, without the calls.
            if captured == 0:
                return 0
            data += payload
            if self._end0 == 0:
                self._end0 = captured
                self._frame0 = frame
                self._ts0 = ts_ns
            else:
                self._add_run(len(data), frame, ts_ns)
            return captured
        if captured < wire_len:
            cut_start = off + captured
            cuts = self._cuts
            if cuts is None:
                cuts = self._cuts = []
            if cut_start < cap and len(cuts) < 64:
                cuts.append((max(cut_start, 0), wire_end))
        if captured == 0:
            return 0
        end = off + captured
        if end <= 0 or off >= cap:
            return 0
        if off < 0:
            payload = payload[-off:]
            off = 0
        if end > cap:
            payload = payload[: cap - off]
            end = cap
        have = len(self.data)
        if off > have:
            self._hold(off, payload, frame, ts_ns)
            return 0
        before = have
        self._append(off, payload, frame, ts_ns)
        if self._pending:
            self._drain()
        return len(self.data) - before

    def note_end(self, offset_seq: int) -> None:
        """Evidence that the sender reached sequence number ``offset_seq`` (a FIN's seq, or
        the peer's acknowledgment number)."""
        off = seq_offset(offset_seq, self.base)
        if off > self.seen_end:
            self.seen_end = min(off, self.cap + 1)

    def _append(self, off: int, payload: bytes, frame: int, ts_ns: int) -> None:
        data = self.data
        have = len(data)
        overlap = have - off
        if overlap > 0:
            # First copy wins; a different later copy is a conflicting overlap.
            n = min(overlap, len(payload))
            if data[off : off + n] != payload[:n]:
                self.conflicts += 1
            if len(payload) <= overlap:
                return
            payload = payload[overlap:]
        data += payload
        if self._end0 == 0:
            self._end0 = len(data)
            self._frame0 = frame
            self._ts0 = ts_ns
        else:
            self._add_run(len(data), frame, ts_ns)

    def _add_run(self, end: int, frame: int, ts_ns: int) -> None:
        """Record a run after the first one."""
        ends = self._run_end
        frames = self._run_frame
        tss = self._run_ts
        if ends is None or frames is None or tss is None:
            ends = self._run_end = []
            frames = self._run_frame = []
            tss = self._run_ts = []
        ends.append(end)
        frames.append(frame)
        tss.append(ts_ns)

    def _hold(self, off: int, payload: bytes, frame: int, ts_ns: int) -> None:
        pending = self._pending
        if pending is None:
            pending = self._pending = {}
        old = pending.get(off)
        if old is not None:
            n = min(len(old[0]), len(payload))
            if old[0][:n] != payload[:n]:
                self.conflicts += 1
            if len(payload) <= len(old[0]):
                return
            # A longer copy at the same offset: keep the old bytes, extend with the new tail.
            payload = old[0] + payload[len(old[0]) :]
            self._pending_bytes -= len(old[0])
            frame, ts_ns = old[1], old[2]
        if len(pending) >= self.max_pending or self._pending_bytes + len(payload) > 2 * self.cap:
            self.overflow += 1
            return
        pending[off] = (payload, frame, ts_ns)
        self._pending_bytes += len(payload)

    def _drain(self) -> None:
        pending = self._pending
        if pending is None:
            return
        progressed = True
        while progressed and pending:
            progressed = False
            have = len(self.data)
            for off in sorted(pending):
                if off > have:
                    break
                payload, frame, ts_ns = pending.pop(off)
                self._pending_bytes -= len(payload)
                self._append(off, payload, frame, ts_ns)
                have = len(self.data)
                progressed = True

    # -- questions ----------------------------------------------------------------------
    @property
    def full(self) -> bool:
        """True when the contiguous bytes reached the cap."""
        return len(self.data) >= self.cap

    def runs(self) -> tuple[list[int], list[int], list[int]]:
        """The runs of appended bytes as three new lists: each run's end offset (run i
        covers ``[ends[i-1], ends[i])``), the frame and the time of the segment that
        delivered it."""
        if self._end0 == 0:
            return [], [], []
        ends = [self._end0]
        frames = [self._frame0]
        tss = [self._ts0]
        if self._run_end is not None and self._run_frame is not None and self._run_ts is not None:
            ends += self._run_end
            frames += self._run_frame
            tss += self._run_ts
        return ends, frames, tss

    def span(self, start: int, end: int) -> Span:
        """Which segments delivered bytes ``[start, end)`` (``end <= len(data)``).

        Called when a hello is parsed (about once per connection): the common range lies in
        the first run (one segment carried the whole message), answered without searching.
        ``_new_span`` builds the tuple without the NamedTuple's ``__new__`` (a Python-level
        function: twice the cost).
        """
        end0 = self._end0
        if end0 == 0 or end <= start:
            return _EMPTY_SPAN
        if end <= end0 or self._run_end is None:
            ts = self._ts0
            return _new_span(_SPAN, (self._frame0, ts, 1, ts))
        frames = self._run_frame
        tss = self._run_ts
        assert frames is not None and tss is not None
        i0, i1 = self._run_range(start, end)
        frame = self._frame0 if i0 == 0 else frames[i0 - 1]
        first_ts = self._ts0 if i0 == 0 else tss[i0 - 1]
        seen = {frame}
        latest = first_ts
        for k in range(i0, i1):
            seen.add(frames[k])
            if tss[k] > latest:  # noqa: PLR1730 (compiled: cheaper than a max() call)
                latest = tss[k]
        return _new_span(_SPAN, (frame, first_ts, len(seen), latest))

    def _run_range(self, start: int, end: int) -> tuple[int, int]:
        """The runs holding ``start`` and ``end - 1`` (the last run when the range goes past
        the bytes), for a range past the first run: run 0 is the first run's fields, run
        k >= 1 is index k - 1 of the run lists."""
        ends = self._run_end
        assert ends is not None
        last = len(ends)
        i0 = 0 if start < self._end0 else 1 + _count_below(ends, start + 1)
        i1 = 1 + _count_below(ends, end)
        return (i0 if i0 < last else last), (i1 if i1 < last else last)  # noqa: FURB136 (as above)

    def last_ts_of(self, start: int, end: int) -> int:
        """``span(start, end).last_ts_ns`` without building the Span (the server's reaction
        needs only this, once per connection)."""
        end0 = self._end0
        if end0 == 0 or end <= start:
            return 0
        if end <= end0 or self._run_end is None:
            return self._ts0
        tss = self._run_ts
        assert tss is not None
        i0, i1 = self._run_range(start, end)
        latest = self._ts0 if i0 == 0 else tss[i0 - 1]
        for k in range(i0, i1):
            if tss[k] > latest:  # noqa: PLR1730 (compiled: cheaper than a max() call)
                latest = tss[k]
        return latest

    def last_ts(self) -> int:
        """Arrival time of the latest run of contiguous bytes (0 when empty)."""
        if self._end0 == 0:
            return 0
        tss = self._run_ts
        if tss:
            return max(self._ts0, max(tss))
        return self._ts0

    def incomplete_reason(self, at_capture_end: bool) -> str:
        """Why the contiguous bytes stop where they do, for a message that needed more.

        ``"truncated"`` when a snaplen-cut segment left the hole; ``"gap"`` when the sender
        is known to have sent bytes beyond it (later segments, a FIN, the peer's ACK) or an
        out-of-order segment had to be dropped; otherwise ``"capture_end"`` when the capture
        ended (``at_capture_end``) and ``"gap"`` when the connection closed.
        """
        have = len(self.data)
        for a, b in self._cuts or ():
            if a <= have < b:
                return "truncated"
        if self.overflow or self._pending or self.seen_end > have:
            return "gap"
        return "capture_end" if at_capture_end else "gap"

    def blocked_by_cut(self) -> bool:
        """True when the contiguous bytes stop at a hole a snaplen cut left: they will
        never grow, whatever comes later."""
        cuts = self._cuts
        if not cuts:
            return False
        have = len(self.data)
        return any(a <= have < b for a, b in cuts)

    def release(self) -> None:
        """Drop every buffer: the question this direction answers has been answered.

        Allocates nothing new: a released stream has no runs."""
        self.released = True
        self.data = bytearray()
        self._pending = None
        self._pending_bytes = 0
        self._end0 = 0
        self._run_end = None
        self._run_frame = None
        self._run_ts = None
        self._cuts = None
