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
byte arrived (:meth:`Stream.span`). Work per segment is bounded by the cap.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
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
#: ``tuple.__new__``: builds a Span from a tuple of its four fields.
_new_span: Final = tuple.__new__


class Stream:
    """The opening bytes of one direction of a TCP connection.

    ``data`` holds the contiguous bytes from offset 0 (read it, never write it). Feed
    segments with :meth:`add`; ask :meth:`span` which segments delivered a range.
    """

    __slots__ = (
        "_cuts",
        "_pending",
        "_pending_bytes",
        "_run_end",
        "_run_frame",
        "_run_ts",
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
        # Runs of appended bytes: run i covers [_run_end[i-1], _run_end[i]).
        self._run_end: list[int] = []
        self._run_frame: list[int] = []
        self._run_ts: list[int] = []
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
            self._run_end.append(len(data))
            self._run_frame.append(frame)
            self._run_ts.append(ts_ns)
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
        self._run_end.append(len(data))
        self._run_frame.append(frame)
        self._run_ts.append(ts_ns)

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

    def span(self, start: int, end: int) -> Span:
        """Which segments delivered bytes ``[start, end)`` (``end <= len(data)``).

        Called when a hello is parsed and when the server's reaction is read (about twice
        per connection): the common range lies in the first run (one segment carried the
        whole message), answered without searching. ``_new_span`` builds the tuple without
        the NamedTuple's ``__new__`` (a Python-level function: twice the cost).
        """
        ends = self._run_end
        if not ends or end <= start:
            return _EMPTY_SPAN
        if end <= ends[0]:
            ts = self._run_ts[0]
            return _new_span(Span, (self._run_frame[0], ts, 1, ts))
        i0 = bisect_right(ends, start)
        i1 = bisect_left(ends, end)
        if i0 >= len(ends):
            i0 = len(ends) - 1
        if i1 >= len(ends):
            i1 = len(ends) - 1
        frames = self._run_frame[i0 : i1 + 1]
        return _new_span(
            Span, (frames[0], self._run_ts[i0], len(set(frames)), max(self._run_ts[i0 : i1 + 1]))
        )

    def last_ts(self) -> int:
        """Arrival time of the latest run of contiguous bytes (0 when empty)."""
        return max(self._run_ts) if self._run_ts else 0

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

        The run lists are private and never appended to once released, so they are
        emptied in place rather than replaced (once per direction: no new allocations)."""
        self.released = True
        self.data = bytearray()
        self._pending = None
        self._pending_bytes = 0
        self._run_end.clear()
        self._run_frame.clear()
        self._run_ts.clear()
        self._cuts = None
