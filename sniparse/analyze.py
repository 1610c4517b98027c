"""The pipeline: capture -> decode -> flows -> report.

This is the one place that ties the layers together and the one place that turns decode
trouble into Issues for the caller. Data flows one way::

    CaptureReader (records) -> decode_segment (TCP segments) -> FlowTable (handshakes)
                            -> Report.build (views, verdicts)

Speed: most packets of a real capture are bulk data of flows whose handshake question is
already answered; the flow table lists their direction keys in ``FlowTable.decided``. Such
a packet (unless it carries SYN, FIN or RST, which decide Zeek's conn_state and history)
cannot change a result, so it is counted and dropped before any decoding or flow work:

* one source (the common case, pcap or pcapng): inside the framer, straight in the mapped
  file or the read buffer (:mod:`sniparse._fastpath`; the C scan of
  ``sniparse._speedups`` when it is built). No Record, Segment or slice is made for it;
  the framer counts every frame, and this loop only decodes and feeds the rest. Skipped
  packets' times reach the flow table's idle timers through ``FlowTable.pending_ts``, and
  the idle sweep runs at the same packets as without skipping (``Skipper.on_expire``);
* several sources merged by time: per record, from ``decode.fast_key`` (:meth:`_general`).

Batches (one source, classic pcap or pcapng, with the C extension built,
``fastpath="auto"`` or ``"batch"``): the C scan hands over up to ``_BATCH`` records per call instead of one, each
already decoded to its Segment and direction key where the C segment decoder takes the
frame (else the record, for the general decoder), and :meth:`_batched` feeds them in order.
This saves, per record, a scan call (argument parsing, a buffer export, its cache), the
record tuple and its data copy, and a pass through four generators: framing and decoding
the 501k records of the handshake-heavy benchmark went from 0.52 to 0.21 CPU s (pcap; the
same capture as pcapng gained more, ~0.9 s, its per-record loop being Python).
Deciding many records at once is exact only
because feeding a record changes what the scan reads -- ``decided`` and ``pending_ts`` --
for its own flow alone, with three exceptions that end or shrink a batch:

* a record's own flow: when the list already holds a record of the same flow (its key or
  the reverse key; the scan keeps them in a small set), C does not judge a later bulk
  packet of it (no SYN/FIN/RST) -- that earlier record may decide or close the flow. It
  comes with its key in third place, and :meth:`_batched` skips it exactly as the scan
  would have if ``decided`` holds the key by the time it gets there. A collected record
  without a direction key (IP options, a tunnel: its flow is unknown to C) ends the list;
* the idle sweep, which closes any flow and applies ``pending_ts``: a list ends after a
  record, skipped or collected, whose time reaches ``Skipper.next_expire``, so the sweep
  runs at the same packet as in the per-record loop, before the next scan;
* eviction when the table is full: a new flow can evict any other. A list holds at most
  ``max_flows - len(table)`` records, so no record in it can make the table evict; near
  the limit the list shrinks to one record (the per-record scan, batching off).

Packets of just-closed connections (a key with a tombstone in ``FlowTable._tomb`` and no
live flow, not a pure SYN: ``feed`` only counts them as ``after_close``) are dropped by the
scan too, and counted (:meth:`_tomb_skip`). A tombstone can appear within a list (a flow
closed by an earlier record: the scan did not see it, the packet is handed over as
before) or disappear: a pure SYN on its key or the reverse key (the scan judges no packet
whose flow an earlier record of the list has, the same small set as above), an idle sweep
(it judges no record at or past ``stop_ts``), or a close trimming the oldest tombstones
past ``max_flows`` (the scan gets the tombstones only while ``2 * batch`` more fit,
:meth:`Skipper.tombstones`). Only frames the C segment decoder takes are dropped: the
general decoder may count or report something on the way.

Skipped packets that C judged write their times to ``pending_ts`` before earlier records
of the same list are fed; that is harmless because ``pending_ts`` is only read where a
flow closes (its own keys, excluded above; eviction and sweeps, excluded above). The
first record of the capture comes alone: its time starts the sweep schedule.

Every way gives the same handshakes, issues and statistics (``Analysis(fastpath=...)``,
checked by ``tests/test_fastpath.py`` on every fixture and corpus capture). Measured on
2 shared CPUs (CPU seconds, whole CLI run, ``--format ndjson``, ``benchmarks/run.py``): a
713 MB bulk capture (500k packets) 0.40 s against dpkt's 5.8 s and tshark's 8.3 s; a 2 GB
one 1.0 s in 31 MB of memory; a handshake-heavy one (501k packets, 51k handshakes) 6.1 s
(``iter_handshakes`` 5.2 s) against dpkt's 6.6 s and tshark's 10.5 s -- there the time is
per handshake Python work (flow state, TLS parsing, fingerprints), not reading: ~95 µs a
connection of ~10 packets, spread over many small steps (per packet: framing, decoding,
the flow state machine, reassembly; per connection: the ClientHello parse ~10 µs, the
server's reaction ~5 µs, fingerprints, the record).

Several files -- a rotated set or separate captures -- can be read in parallel processes
with the answer of one sequential read (:class:`ParallelAnalysis`, the CLI's ``--jobs``;
the class notes say how connections crossing a file boundary are followed).

Memory: nothing here keeps per-packet state. ``iter_handshakes`` yields each handshake as
its flow is decided, so a caller that streams holds only the live flow table.
"""

from __future__ import annotations

import importlib
import os
import re
import socket
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import IO, Any, Final, NamedTuple, Union, cast

from . import _fastpath, decode
from ._compiled import mypyc_attr
from ._fastpath import Skipper
from .capture import CaptureReader, Record
from .decode import decode_segment, decode_segment_key, fast_key
from .errors import Issue, Issues
from .flows import FlowTable, Handshake
from .link import LINKTYPE_NAMES
from .report import CaptureStats, Report
from .tcp import Segment, flow_key

__all__ = ["Analysis", "ParallelAnalysis", "Source", "analyze", "iter_handshakes", "merge_stats"]

Source = Union[str, "os.PathLike[str]", bytes, IO[bytes], Iterable[Union[str, "os.PathLike[str]"]]]

# How often (in capture time) idle flows are swept out of the table.
_EXPIRE_EVERY_NS: Final = 1_000_000_000
# How often (in records) the progress callback is called.
_PROGRESS_EVERY: Final = 16384

_SYN_FIN_RST: Final = 0x07


def _c_scans() -> tuple[
    _fastpath.ScanFunction | None,
    _fastpath.ScanNgFunction | None,
    _fastpath.BatchFunction | None,
    _fastpath.NgBatchFunction | None,
]:
    try:
        mod = importlib.import_module("._speedups", __package__)
    except ImportError:
        return None, None, None, None
    return (
        cast(_fastpath.ScanFunction, mod.scan_pcap),
        cast(_fastpath.ScanNgFunction, mod.scan_pcapng),
        cast("_fastpath.BatchFunction | None", getattr(mod, "scan_pcap_batch", None)),
        cast("_fastpath.NgBatchFunction | None", getattr(mod, "scan_pcapng_batch", None)),
    )


# The skipping scans a caller may ask for by name (tests compare them): classic pcap, and
# pcapng (None: the pcapng framer's own Python loop); the C batch scans ("batch").
_C_SCAN, _C_SCAN_NG, _C_BATCH, _C_NG_BATCH = _c_scans()
#: Most records handed over per batch (see "Batches" above); the C scan caps it at 1024.
_BATCH: Final = 256
_SCANS: dict[str, _fastpath.ScanFunction | None] = {
    "c": _C_SCAN,
    "python": _fastpath.scan_pcap_py,
}
_NG_SCANS: dict[str, _fastpath.ScanNgFunction | None] = {"c": _C_SCAN_NG, "python": None}


class Analysis:
    """One pass over a capture: iterate it for handshakes, then read ``issues`` and
    :meth:`stats`. Used by :func:`analyze` and :func:`iter_handshakes`; handy when a
    caller wants to stream handshakes *and* keep the capture statistics.

    ``fastpath`` chooses how bulk packets of decided flows are skipped; every choice gives
    the same handshakes, issues and statistics (``tests/test_fastpath.py``): ``"auto"``
    (a single source, pcap or pcapng, is skipped inside its framer; for classic pcap with
    the C scan when built, unless ``SNIPARSE_PURE=1``), ``"c"`` / ``"python"`` (that scan),
    ``"off"`` (the per-record loop: each frame's key is read and a decided packet is dropped
    before decoding), ``"none"`` (every frame is decoded and fed; nothing counts as
    ``bulk_skipped``; the reference the others are checked against)."""

    def __init__(
        self,
        source: Source,
        *,
        idle_timeout: float = 300.0,
        progress: Callable[[int, int], None] | None = None,
        max_flows: int = 1_000_000,
        fastpath: str = "auto",
    ) -> None:
        if fastpath not in ("auto", "off", "none", "batch") and fastpath not in _SCANS:
            raise ValueError(f"fastpath: {fastpath!r} is not auto, batch, c, python, off or none")
        if fastpath in ("c", "batch") and (
            _SCANS["c"] is None or _C_BATCH is None or _C_NG_BATCH is None
        ):
            raise ValueError(
                f"fastpath {fastpath!r}: the sniparse._speedups extension is not built"
            )
        self.fastpath = fastpath
        self.skipper: Skipper | None = None
        #: Whether batch scans may drop packets of just-closed connections themselves
        #: (:meth:`_tomb_skip`); the answer is the same either way.
        self.tomb_skip = True
        self._held: list[Handshake] = []
        self.issues = Issues()
        self.progress = progress
        self.reader = CaptureReader(_as_sources(source), self.issues, progress=None)
        self.table = FlowTable(
            self.issues, idle_timeout_ns=int(idle_timeout * 1e9), max_flows=max_flows
        )
        self.counters: dict[str, int] = {}
        self.frames = 0
        self.bytes = 0
        self.truncated_frames = 0
        self.tcp_segments = 0
        self.skipped = 0
        self.first_ts_ns: int | None = None
        self.last_ts_ns: int | None = None
        self._linktypes: dict[int, int] = {}

    def __iter__(self) -> Iterator[Handshake]:
        reader = self.reader
        fused = self.fastpath not in ("off", "none") and len(reader.files) == 1
        if fused:
            mode = self.fastpath
            auto = mode in ("auto", "batch")
            batch = batch_ng = None
            if mode == "auto":
                batch, batch_ng = _fastpath.scan_pcap_batch, _fastpath.scan_pcapng_batch
            elif mode == "batch":
                batch, batch_ng = _C_BATCH, _C_NG_BATCH
            if reader.formats[0].partition("+")[0] == "pcap":
                batch_ng = None
            else:
                batch = None
            self.skipper = reader.skipper = Skipper(
                self.table.decided,
                None if auto else _SCANS[mode],
                self._sweep,
                self.table.pending_ts,
                "default" if auto else _NG_SCANS[mode],
                batch,
                Segment,
                batch_ng,
            )
            if self.progress is not None:
                reader.progress = self.progress
            if batch is not None or batch_ng is not None:
                self._tomb_skip(self.skipper)
                return self._batched(self.skipper)
            return self._fused(self.skipper)
        return self._general()

    def _general(self) -> Iterator[Handshake]:
        """The per-record loop: any capture, any number of files."""
        table = self.table
        feed = table.feed
        skip = table.skip
        decided = table.decided
        counters = self.counters
        issues = self.issues
        linktypes = self._linktypes
        progress = self.progress
        reader = self.reader
        use_key = self.fastpath != "none"
        frames = nbytes = truncated = segments = skipped = 0
        first_ts: int | None = None
        last_ts = 0
        next_expire = 0
        try:
            for rec in reader:
                frames += 1
                data = rec.data
                caplen = len(data)
                nbytes += caplen
                if caplen < rec.origlen:
                    truncated += 1
                lt = rec.linktype
                linktypes[lt] = linktypes.get(lt, 0) + 1
                ts = rec.ts_ns
                if first_ts is None:
                    first_ts = ts
                    next_expire = ts + _EXPIRE_EVERY_NS
                last_ts = max(last_ts, ts)
                if progress is not None and frames % _PROGRESS_EVERY == 0:
                    progress(reader.bytes_read, reader.bytes_total)

                fk = fast_key(lt, data) if use_key else None
                key = None
                if fk is not None:
                    key = fk[0]
                    if not (fk[1] & _SYN_FIN_RST) and key in decided:
                        # Keeps idle expiry exact without any other flow work.
                        skip(key, ts)
                        skipped += 1
                        segments += 1
                        if ts >= next_expire:
                            # The sweep runs after every TCP segment, skipped or not,
                            # so skipping cannot move it.
                            next_expire = ts + _EXPIRE_EVERY_NS
                            expired = table.expire(ts)
                            if expired:
                                yield from expired
                        continue
                seg = decode_segment(rec, issues, counters)
                if seg is None:
                    continue
                segments += 1
                out = feed(seg, key)
                if out:
                    yield from out
                if ts >= next_expire:
                    next_expire = ts + _EXPIRE_EVERY_NS
                    expired = table.expire(ts)
                    if expired:
                        yield from expired
            yield from table.finish()
        finally:
            self._done(frames, nbytes, truncated, segments, skipped, first_ts, last_ts)

    def _sweep(self, ts: int) -> None:
        """The idle sweep, called by the framer when a skipped packet's time reaches
        ``Skipper.next_expire``; what it closes is yielded before the next record."""
        sk = self.skipper
        assert sk is not None
        sk.next_expire = ts + _EXPIRE_EVERY_NS
        self._held.extend(self.table.expire(ts))

    def _fused(self, sk: Skipper) -> Iterator[Handshake]:
        """One source (pcap or pcapng): its framer counts every frame and steps over bulk
        packets of decided flows (:mod:`sniparse._fastpath`); only the other records come
        here. Their idle-timer updates go to the table's ``pending_ts``, which it applies
        itself; idle sweeps the framer starts (:meth:`_sweep`) are yielded before the next
        record. The reader reports progress itself, once per buffer."""
        table = self.table
        decode_key = decode_segment_key
        c_key = decode._C_SEGMENT_KEY
        counters = self.counters
        issues = self.issues
        reader = self.reader
        segments = 0
        first_ts: int | None = None
        held = self._held
        try:
            for rec in reader:
                if held:
                    yield from held
                    held.clear()
                ts = rec[1]
                if first_ts is None:
                    first_ts = ts
                    sk.next_expire = ts + _EXPIRE_EVERY_NS
                # The C decoder called directly (decode_segment_key's common case without
                # the wrapper's call); anything it declines goes the general way.
                r = c_key(Segment, rec) if c_key is not None else None
                seg, key = r if r is not None else decode_key(rec, issues, counters)
                if seg is None:
                    continue
                segments += 1
                # A direct call: compiled, it is a native call (a bound method in a local
                # would go through the generic calling convention).
                out = table.feed(seg, key)
                if out:
                    yield from out
                if ts >= sk.next_expire:
                    sk.next_expire = ts + _EXPIRE_EVERY_NS
                    expired = table.expire(ts)
                    if expired:
                        yield from expired
            if held:
                yield from held
                held.clear()
            yield from table.finish()
        finally:
            self._skipper_done(sk, segments, first_ts)

    def _batched(self, sk: Skipper) -> Iterator[Handshake]:
        """:meth:`_fused` for one classic pcap source read in batches (see "Batches" in
        the module notes): each list from the framer holds three entries per record --
        ``(segment, key, None)``, ``(record, None, None)`` for the general decoder, or
        either with a key in third place: a bulk packet to skip if its key is in
        ``decided`` by now. A whole list is fed (:meth:`_feed_batch`) before the framer
        scans on; the handshakes it closed are yielded after it, in the same order."""
        table = self.table
        max_flows = table.max_flows
        held = self._held
        out: list[Handshake] = []
        segments = 0
        skipped = 0
        first_ts: int | None = None
        try:
            for items in self.reader.batches():
                if held:
                    yield from held
                    held.clear()
                if first_ts is None and items:
                    first_ts = items[0][1]
                    sk.next_expire = first_ts + _EXPIRE_EVERY_NS
                fed, passed = self._feed_batch(sk, items, out)
                segments += fed
                skipped += passed
                if out:
                    yield from out
                    out.clear()
                # The next list must not let the table evict (see the module notes).
                room = max_flows - len(table)
                sk.batch = _BATCH if room >= _BATCH else max(room, 1)
            if held:
                yield from held
                held.clear()
            yield from table.finish()
        finally:
            sk.skipped += skipped
            self._skipper_done(sk, segments, first_ts)

    def _feed_batch(self, sk: Skipper, items: list[Any], out: list[Handshake]) -> tuple[int, int]:
        """Feed one list of :meth:`_batched` to the table, in order; the handshakes that
        closed go to ``out``. Returns (segments fed, records skipped).

        A plain method rather than the generator's own loop: compiled, a generator keeps
        its locals in its frame object, and each record's loop read and wrote several of
        them (callgrind on the handshake benchmark: ~100 instructions a record fewer)."""
        table = self.table
        decided = table.decided
        pending = table.pending_ts
        issues = self.issues
        counters = self.counters
        segments = 0
        skipped = 0
        n = len(items)
        i = 0
        while i < n:
            obj: tuple[Any, ...] = items[i]
            key: bytes | None = items[i + 1]
            chk: bytes | None = items[i + 2]
            i += 3
            ts: int = obj[1]
            if chk is not None and chk in decided:
                # What the scan does with a bulk packet of a decided flow.
                old = pending.get(chk)
                if old is None or ts > old:
                    pending[chk] = ts
                skipped += 1
            else:
                seg: Segment | None
                if key is None:
                    seg, key = decode_segment_key(cast(Record, obj), issues, counters)
                    if seg is None:
                        continue
                else:
                    seg = cast(Segment, obj)
                segments += 1
                table.feed_into(seg, key, out)
            if ts >= sk.next_expire:
                sk.next_expire = ts + _EXPIRE_EVERY_NS
                expired = table.expire(ts)
                if expired:
                    out.extend(expired)
        return segments, skipped

    def _tomb_skip(self, sk: Skipper) -> None:
        """Let the batch scans drop packets of just-closed connections (``after_close``:
        ~9% of the handshake benchmark's packets, ~3,300 instructions each through the
        hand-over, the decoder and :meth:`FlowTable.feed_into`; callgrind on its first
        40 MB: 15 M fewer in all, 6,249 of its 10,622 dropped, the others closed in the
        same batch). Not while the table tallies per key
        (:class:`ParallelAnalysis`): the scan counts no keys."""
        table = self.table
        if table.tally is None and self.tomb_skip:
            sk.tomb = table._tomb
            sk.flows = table._flows
            sk.max_tombs = table.max_flows

    def _skipper_done(self, sk: Skipper, segments: int, first_ts: int | None) -> None:
        """The end of a fused read: the framer's counts (and the segments this loop fed)
        become the capture statistics; packets the scan dropped as after_close were TCP
        segments fed to the table."""
        if sk.after_close:
            self.table.stats["after_close"] += sk.after_close
            segments += sk.after_close
            sk.after_close = 0
        linktypes = self._linktypes
        for lt, k in sk.linktypes.items():
            linktypes[lt] = linktypes.get(lt, 0) + k
        sk.linktypes.clear()
        self._done(
            sk.frames,
            sk.bytes,
            sk.cut,
            segments + sk.skipped,
            sk.skipped,
            first_ts,
            max(sk.max_ts, 0),
        )

    def _done(
        self,
        frames: int,
        nbytes: int,
        truncated: int,
        segments: int,
        skipped: int,
        first_ts: int | None,
        last_ts: int,
    ) -> None:
        self.frames = frames
        self.bytes = nbytes
        self.truncated_frames = truncated
        self.tcp_segments = segments
        self.skipped = skipped
        self.first_ts_ns = first_ts
        self.last_ts_ns = last_ts if first_ts is not None else None
        if self.progress is not None:
            self.progress(self.reader.bytes_read, self.reader.bytes_total)

    def stats(self) -> CaptureStats:
        """Capture statistics; complete once iteration has finished."""
        decode = dict(self.counters)
        if self.skipped:
            decode["bulk_skipped"] = self.skipped
        return CaptureStats(
            files=tuple(str(f) for f in self.reader.files),
            frames=self.frames,
            bytes=self.bytes,
            first_ts_ns=self.first_ts_ns,
            last_ts_ns=self.last_ts_ns,
            linktypes={
                LINKTYPE_NAMES.get(lt, f"linktype {lt}"): n for lt, n in self._linktypes.items()
            },
            tcp_segments=self.tcp_segments,
            truncated_frames=self.truncated_frames,
            decode=decode,
            flows=dict(self.table.stats),
        )


@mypyc_attr(native_class=False)
class _IssueList(list[Issue]):
    """Issues already collected elsewhere, with the collector's ``to_list``."""

    def to_list(self) -> list[Issue]:
        """The issues, in order."""
        return list(self)


def _analyse_file(args: tuple[list[list[str]], list[_Span], int, float, int, str]) -> _PartResult:
    """One worker's job in :class:`ParallelAnalysis`: part ``g`` of the capture (the files
    of ``parts[g]``, read merged), then the look-ahead into the parts after it.

    The part is read like a capture of its own, except that its live flows are not closed
    at its end: the following parts are read on, and every packet whose key this table
    still holds (a live flow or a tombstone, :meth:`FlowTable.held_keys`) is fed, part by
    part, until no key is held or the capture ends. A part with no packet of a held key
    (``spans``: its key hashes) is not read: only its time passes (idle sweeps once a
    second of its time span). Look-ahead packets are not counted in the frame, byte or
    segment statistics (the part they belong to counts them).

    Frame numbers (handshakes, issues) count from the start of part ``g``: the caller adds
    the frames of the parts before it. Returns :class:`_PartResult`."""
    parts, spans, g, idle_timeout, max_flows, fastpath = args
    run = Analysis(parts[g], idle_timeout=idle_timeout, max_flows=max_flows, fastpath=fastpath)
    table = run.table
    table.tally = {}
    table.defer_finish = True
    hs = [_without_hello(h) for h in run]
    own_stats = run.stats()
    follow: dict[bytes, int] = {}
    base = run.frames
    held = table.held_keys()
    scratch = Issues()
    counters: dict[str, int] = {}
    next_expire = (run.last_ts_ns or 0) + _EXPIRE_EVERY_NS
    for u in range(g + 1, len(parts)):
        if not held:
            break
        for k in held:
            follow[_canonical(k)] = u
        span = spans[u]
        if span.keys.isdisjoint([zlib.crc32(k) for k in held]):
            # None of the held keys has a packet here: only time passes.
            if span.first is not None:
                while next_expire <= span.hi:
                    hs.extend(_without_hello(h) for h in table.expire(next_expire))
                    next_expire += _EXPIRE_EVERY_NS
            base += span.frames
            held = table.held_keys()
            continue
        n = 0
        for rec in CaptureReader(parts[u], Issues(), progress=None):
            n += 1
            ts = rec.ts_ns
            fk = fast_key(rec.linktype, rec.data)
            if fk is not None:
                key: bytes | None = fk[0]
                seg: Segment | None = None
                if key in held:
                    seg = decode_segment(rec._replace(frame=rec.frame + base), scratch, counters)
                    if seg is None:
                        continue
            else:
                seg = decode_segment(rec._replace(frame=rec.frame + base), scratch, counters)
                if seg is None:
                    continue
                key = flow_key(seg.src, seg.dst, seg.sport, seg.dport)
                if key not in held:
                    seg = None
            if seg is not None:
                out = table.feed(seg, key)
                if out:
                    hs.extend(_without_hello(h) for h in out)
            if ts >= next_expire:
                next_expire = ts + _EXPIRE_EVERY_NS
                expired = table.expire(ts)
                if expired:
                    hs.extend(_without_hello(h) for h in expired)
        base += n
        held = table.held_keys()
    table.defer_finish = False
    hs.extend(_without_hello(h) for h in table.finish())
    tally: dict[bytes, dict[str, int]] = {}
    for k, per in (table.tally or {}).items():
        ck = _canonical(k)
        mine = tally.setdefault(ck, {})
        for name, v in per.items():
            mine[name] = mine.get(name, 0) + v
    return _PartResult(
        hs,
        [_handshake_key(h) for h in hs],
        run.issues.to_list(),
        replace(own_stats, flows=dict(table.stats)),
        follow,
        tally,
    )


def merge_stats(parts: list[CaptureStats]) -> CaptureStats:
    """The statistics of several parts of a capture (or of independent captures), added
    up: files in the order of ``parts``, times from the earliest to the latest."""

    def add(dicts: Iterable[dict[str, int]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in dicts:
            for k, v in d.items():
                out[k] = out.get(k, 0) + v
        return out

    firsts = [p.first_ts_ns for p in parts if p.first_ts_ns is not None]
    lasts = [p.last_ts_ns for p in parts if p.last_ts_ns is not None]
    return CaptureStats(
        files=tuple(f for p in parts for f in p.files),
        frames=sum(p.frames for p in parts),
        bytes=sum(p.bytes for p in parts),
        first_ts_ns=min(firsts) if firsts else None,
        last_ts_ns=max(lasts) if lasts else None,
        linktypes=add(p.linktypes for p in parts),
        tcp_segments=sum(p.tcp_segments for p in parts),
        truncated_frames=sum(p.truncated_frames for p in parts),
        decode=add(p.decode for p in parts),
        flows=add(p.flows for p in parts),
    )


class ParallelAnalysis:
    """Several capture files read in parallel processes (``jobs`` at a time), with the
    answer of reading them as one capture (:class:`Analysis` on all of them): a rotated set
    (``tcpdump -C`` / ``-G``) may be split anywhere, also inside a connection. Iterate it
    for the handshakes, then read ``issues`` and :meth:`stats`, like :class:`Analysis`.

    How flows that cross a file boundary come out right:

    * **Parts.** The files are ordered by their first timestamp (as the merged read orders
      them) and cut into *parts* where every record before the cut is not later than every
      record after it; files whose time ranges overlap (two interfaces captured apart)
      stay in one part and are read merged by one worker. The merged read of the whole set
      is then exactly the parts' records one part after the other. (A first parallel pass
      reads each file's first, lowest and highest timestamp, its record count and the
      CRC-32 of each TCP direction key in it.)
    * **Workers.** Worker ``g`` reads part ``g`` from an empty flow table. The only keys
      whose packets a table that saw the whole capture would treat differently are the
      keys it still holds at the cut: live flows and tombstones (closed flows' keys, whose
      stray packets count as ``after_close``). So worker ``g`` does not close its flows at
      the end of its part: it reads on into the next parts and feeds *every* packet of the
      keys it held at each cut (a crossing connection until it closes, stray packets after
      it, a new connection on the same key), part by part, until it holds no key or the
      capture ends; such a key's packets in a part are then all its own.
    * **Merge.** Worker ``g+1`` has read the same keys from an empty table; everything it
      produced for a key that worker ``g`` (or an earlier worker still following it) held
      across the cut -- handshakes and flow counters, its own look-ahead included -- is
      dropped, so each connection is reported once, by the worker that saw its start with
      the right history. Workers report which keys they followed into which part, and
      their flow counters per key, so this is exact bookkeeping, not a guess.

    Equal to the sequential read: the handshakes (all fields; ``frame`` is the frame number
    in the whole set, the same as the sequential read's: each part's frames are offset by
    the frame counts of the parts before it), ``frames``, ``bytes``, ``tcp_segments``,
    ``truncated_frames``, ``linktypes``, the times and the flow counters. Differences: the
    order of handshakes (part by part); issues are collected per part (each names its
    files; an issue repeated in several parts is listed once per part); ``decode`` may
    count ``bulk_skipped`` differently (which packets a worker skips unread). Two things a
    table shares between keys are per worker, so exactness assumes (a) that no part's flow
    table reaches ``max_flows`` (evictions pick the oldest flow of the whole table) and (b)
    that no flow sits silent for between ``idle_timeout`` and 1.125 ``idle_timeout`` + 1 s,
    and no stray packet comes between ``min(idle_timeout, 60 s)`` and that plus
    ``idle_timeout`` / 8 + 1 s after its connection closed: the idle sweeps (once a second
    of capture time, a table scan every ``idle_timeout`` / 8) are scheduled from the first
    packet a worker reads, so they may fall at other moments than in one sequential read,
    and only such borderline silences depend on the moment. (``tcp_segments`` also
    assumes that no packet the fast key reader accepts is rejected by the full decoder.)
    ``Handshake.client_hello`` is None. One ``info`` issue says how the set was split.

    Cost: the first pass reads every record once more; each worker reads its part, then
    the records of each following part where a key it follows has packets (key hashes
    from the first pass; packets of other keys are not decoded), while it still follows
    one: a connection that lasts the whole capture keeps the first worker reading to the
    end. Measured (2 shared CPUs, the 501k-packet handshake benchmark capture cut in 4
    files): 6.1 CPU seconds in all against 4.7 for the sequential read of the same files
    (0.7 s first pass, ~0.45 s look-ahead per worker, the rest per-handshake work done
    once); the wall time divides by the free CPUs.

    Raises :class:`sniparse.NotACaptureError` at once when a file is not a readable
    capture (all files are checked before any work starts). Standard input (``"-"``)
    among the files can be read only once, so such a set is read sequentially here.
    """

    def __init__(
        self,
        sources: Iterable[str | os.PathLike[str]],
        *,
        jobs: int = 0,
        idle_timeout: float = 300.0,
        progress: Callable[[int, int], None] | None = None,
        max_flows: int = 1_000_000,
        fastpath: str = "auto",
    ) -> None:
        self.paths = [os.fspath(s) for s in sources]
        #: Standard input can be read once, by one process: then the set is read here,
        #: sequentially (the same answer).
        self._stdin_run: Analysis | None = None
        if "-" in self.paths:
            self._stdin_run = Analysis(
                self.paths, idle_timeout=idle_timeout, max_flows=max_flows, fastpath=fastpath
            )
            self.bytes_total = self._stdin_run.reader.bytes_total
        else:
            # Opens and sniffs every file: a bad one fails here, in the caller's process.
            reader = CaptureReader(list(self.paths), Issues(), progress=None)
            self.bytes_total = reader.bytes_total
        self.jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        self.idle_timeout = idle_timeout
        self.max_flows = max_flows
        self.fastpath = fastpath
        self.progress = progress
        self.issues = _IssueList()
        #: The parts the files were cut into (lists of paths, in capture order); set when
        #: iteration starts.
        self.parts: list[list[str]] = []
        self._stats: CaptureStats | None = None

    def __iter__(self) -> Iterator[Handshake]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.issues.clear()
        self._stats = None
        if self._stdin_run is not None:
            run = self._stdin_run
            yield from (_without_hello(h) for h in run)
            self.issues.append(
                Issue("info", "capture", f"{len(self.paths)} files read in one process "
                      "(--jobs): standard input can be read only once")
            )
            self.issues.extend(run.issues.to_list())
            self._stats = run.stats()
            self.parts = [list(self.paths)]
            if self.progress is not None:
                self.progress(1, 1)
            return
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        workers = max(1, min(self.jobs, len(self.paths)))
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            spans = list(ex.map(_file_span, self.paths))
            parts = self.parts = _cut_parts(self.paths, [sp[:3] for sp in spans])
            by_path = dict(zip(self.paths, spans))
            part_spans = [_part_span([by_path[p] for p in part]) for part in parts]
            together = [p for p in parts if len(p) > 1]
            detail = (
                f"{len(self.paths)} files read in {len(parts)} parts by parallel processes "
                "(--jobs); connections crossing from one part into the next were followed "
                "across by the process that read their start (frame numbers count in the "
                "whole set)"
            )
            if together:
                detail += "; files whose times overlap were read together: " + "; ".join(
                    " + ".join(p) for p in together
                )
            self.issues.append(Issue("info", "capture", detail))
            args = [
                (parts, part_spans, g, self.idle_timeout, self.max_flows, self.fastpath)
                for g in range(len(parts))
            ]
            stats: list[CaptureStats] = []
            flows: dict[str, int] = {}
            covered: dict[bytes, int] = {}   # key -> last part an earlier worker followed it into
            base = 0
            for g, res in enumerate(ex.map(_analyse_file, args)):
                name = " + ".join(parts[g])
                for h, k in zip(res.handshakes, res.keys):
                    if covered.get(k, -1) >= g:
                        continue
                    if base and h.frame:
                        h = _shift_frame(h, base)
                    yield h
                for k, per in res.tally.items():
                    if covered.get(k, -1) >= g:
                        continue
                    for c, v in per.items():
                        flows[c] = flows.get(c, 0) + v
                for k, last in res.follow.items():
                    if covered.get(k, -1) < g and last > covered.get(k, -1):
                        covered[k] = last
                for i in res.issues:
                    if i.frame is not None and base:
                        i = replace(i, frame=i.frame + base)
                    if not i.detail.startswith(name):
                        i = replace(i, detail=f"{name}: {i.detail}")
                    self.issues.append(i)
                stats.append(res.stats)
                base += res.stats.frames
                if self.progress is not None:
                    self.progress(g + 1, len(parts))
        merged = merge_stats(stats)
        # The counters every flow table starts with, also when no key was kept.
        zero = {k: 0 for s in stats for k in s.flows}
        self._stats = replace(
            merged, files=tuple(self.paths), flows={**zero, **flows}
        )

    def stats(self) -> CaptureStats:
        """The statistics of the whole set; complete once iteration has finished."""
        if self._stats is None:
            return merge_stats([])
        return self._stats


def _as_sources(source: Source) -> list[object]:
    """Normalise the many accepted source shapes to a list for CaptureReader."""
    if isinstance(source, (str, bytes, bytearray, memoryview, os.PathLike)):
        return [source]
    if hasattr(source, "read"):
        return [source]
    return list(source)


def iter_handshakes(
    source: Source,
    *,
    idle_timeout: float = 300.0,
    progress: Callable[[int, int], None] | None = None,
    max_flows: int = 1_000_000,
) -> Iterator[Handshake]:
    """Stream the handshakes of a capture, each as soon as its flow is decided.

    For captures too large to hold the results of: memory depends on the number of
    concurrent flows, not on the size of the capture. Handshakes come in the order their
    flows are decided, which is close to, but not exactly, time order.

    Raises :class:`sniparse.NotACaptureError` when the source is not a readable capture.
    """
    yield from Analysis(
        source, idle_timeout=idle_timeout, progress=progress, max_flows=max_flows
    )


def analyze(
    source: Source,
    *,
    idle_timeout: float = 300.0,
    progress: Callable[[int, int], None] | None = None,
    max_flows: int = 1_000_000,
) -> Report:
    """Read a whole capture and return its :class:`~sniparse.report.Report`.

    ``source``: a path, ``"-"`` for standard input, several paths (a rotated set is read
    as one capture in time order), the capture's bytes, or a binary file object.
    ``idle_timeout``: seconds of capture time after which a silent flow is closed.
    ``progress``: called now and then with (bytes read, bytes total or 0).

    Problems inside the capture (corrupt records, truncated frames, unsupported link
    types) are reported in ``Report.issues``; only an input that is not a capture at all
    raises :class:`sniparse.NotACaptureError`.
    """
    run = Analysis(source, idle_timeout=idle_timeout, progress=progress, max_flows=max_flows)
    handshakes = sorted(run, key=lambda h: (h.ts_ns, h.frame))
    return Report.build(handshakes, run.issues.to_list(), run.stats())


# -- ParallelAnalysis helpers ---------------------------------------------------------------


class _PartResult(NamedTuple):
    """What a worker of :class:`ParallelAnalysis` returns for its part."""

    handshakes: list[Handshake]
    keys: list[bytes]                    # each handshake's canonical flow key
    issues: list[Issue]
    stats: CaptureStats                  # the part's own counts; flows: the worker's table
    follow: dict[bytes, int]             # canonical key -> last part it was followed into
    tally: dict[bytes, dict[str, int]]   # canonical key -> its flow counters in this worker


_FileSpan = tuple[int | None, int | None, int | None, int, frozenset[int]]


def _file_span(path: str) -> _FileSpan:
    """A file's first, lowest and highest record timestamp (None when it has no record),
    its record count, and the CRC-32 of the direction key of each TCP packet in it (a
    look-ahead reads the file only when a key it follows may be there)."""
    first: int | None = None
    lo = hi = 0
    n = 0
    keys: set[bytes] = set()
    scratch = Issues()
    counters: dict[str, int] = {}
    for rec in CaptureReader([path], Issues(), progress=None, record_type=tuple):
        n += 1
        ts: int = rec[1]
        if first is None:
            first = lo = hi = ts
        elif ts < lo:
            lo = ts
        elif ts > hi:
            hi = ts
        fk = fast_key(rec[2], rec[3])
        if fk is not None:
            keys.add(fk[0])
        else:
            seg = decode_segment(Record(*rec), scratch, counters)
            if seg is not None:
                keys.add(flow_key(seg.src, seg.dst, seg.sport, seg.dport))
    if first is None:
        return None, None, None, n, frozenset()
    return first, lo, hi, n, frozenset(zlib.crc32(k) for k in keys)


class _Span(NamedTuple):
    """A part's first timestamp (None: no records), highest timestamp, record count and
    key hashes (see :func:`_file_span`)."""

    first: int | None
    hi: int
    frames: int
    keys: frozenset[int]


def _part_span(files: list[_FileSpan]) -> _Span:
    firsts = [f[0] for f in files if f[0] is not None]
    his = [f[2] for f in files if f[2] is not None]
    return _Span(
        min(firsts) if firsts else None,
        max(his) if his else 0,
        sum(f[3] for f in files),
        frozenset().union(*(f[4] for f in files)),
    )


def _cut_parts(
    paths: list[str], spans: list[tuple[int | None, int | None, int | None]]
) -> list[list[str]]:
    """The files in capture order, cut where the merged read would read everything before
    the cut first: every record before it is not later than every record after it (a tie
    goes to the earlier file, as in ``CaptureReader._merge``). Files without records come
    first, each a part of its own (they add interfaces and issues, no records)."""
    empty = [[p] for p, s in zip(paths, spans) if s[0] is None]
    order = sorted(
        ((s[0], i) for i, s in enumerate(spans) if s[0] is not None), key=lambda t: (t[0], t[1])
    )
    parts: list[list[str]] = []
    n = len(order)
    suffix_lo = [0] * n
    lo = 2**63
    for j in range(n - 1, -1, -1):
        span_lo = spans[order[j][1]][1]
        assert span_lo is not None
        lo = min(lo, span_lo)
        suffix_lo[j] = lo
    hi = -(2**63)
    for j, (_, i) in enumerate(order):
        if j == 0 or hi > suffix_lo[j]:
            if j == 0:
                parts.append([])
            parts[-1].append(paths[i])
        else:
            parts.append([paths[i]])
        span_hi = spans[i][2]
        assert span_hi is not None
        hi = max(hi, span_hi)
    return empty + parts


def _canonical(key: bytes) -> bytes:
    """One key for both directions of a flow: the lower of a direction key
    (``src + dst + sport + dport``) and its reverse."""
    n = (len(key) - 4) // 2
    rev = key[n : 2 * n] + key[:n] + key[2 * n + 2 : 2 * n + 4] + key[2 * n : 2 * n + 2]
    return min(key, rev)


def _packed(ip: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except OSError:
        return bytes.fromhex(ip)


def _handshake_key(h: Handshake) -> bytes:
    """The canonical flow key of a handshake's connection."""
    return _canonical(
        flow_key(_packed(h.client_ip), _packed(h.server_ip), h.client_port, h.server_port)
    )


_IN_FRAME = re.compile(r"in frame (\d+)")


def _shift_frame(h: Handshake, base: int) -> Handshake:
    """``h`` with its frame numbers (the field and any named in ``detail``) moved by
    ``base``: from counting in a part to counting in the whole set."""
    detail = h.detail
    if detail is not None and "in frame " in detail:
        detail = _IN_FRAME.sub(lambda m: f"in frame {int(m.group(1)) + base}", detail)
    out: Handshake = object.__new__(Handshake)
    out.__dict__.update(h.__dict__)
    out.__dict__["frame"] = h.frame + base
    out.__dict__["detail"] = detail
    return out


def _without_hello(h: Handshake) -> Handshake:
    """``h`` without its parsed ClientHello (it stays in the worker: everything reported
    is in the other fields, and it would only cost pickling). ``h`` is fresh from the
    flow table and nobody else holds it, so it is changed in place (``dataclasses.replace``
    costs ~20 µs a record)."""
    h.__dict__["client_hello"] = None
    return h
