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

Several independent captures can be analysed in parallel processes
(:class:`ParallelAnalysis`, the CLI's ``--jobs``); a rotated set is one capture and is
read in one process (the class notes say why).

Memory: nothing here keeps per-packet state. ``iter_handshakes`` yields each handshake as
its flow is decided, so a caller that streams holds only the live flow table.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import IO, Final, Union, cast

from . import _fastpath, decode
from ._compiled import mypyc_attr
from ._fastpath import Skipper
from .capture import CaptureReader
from .decode import decode_segment, decode_segment_key, fast_key
from .errors import Issue, Issues
from .flows import FlowTable, Handshake
from .link import LINKTYPE_NAMES
from .report import CaptureStats, Report
from .tcp import Segment

__all__ = ["Analysis", "ParallelAnalysis", "Source", "analyze", "iter_handshakes", "merge_stats"]

Source = Union[str, "os.PathLike[str]", bytes, IO[bytes], Iterable[Union[str, "os.PathLike[str]"]]]

# How often (in capture time) idle flows are swept out of the table.
_EXPIRE_EVERY_NS: Final = 1_000_000_000
# How often (in records) the progress callback is called.
_PROGRESS_EVERY: Final = 16384

_SYN_FIN_RST: Final = 0x07


def _c_scans() -> tuple[_fastpath.ScanFunction | None, _fastpath.ScanNgFunction | None]:
    try:
        mod = importlib.import_module("._speedups", __package__)
    except ImportError:
        return None, None
    return (
        cast(_fastpath.ScanFunction, mod.scan_pcap),
        cast(_fastpath.ScanNgFunction, mod.scan_pcapng),
    )


# The skipping scans a caller may ask for by name (tests compare them): classic pcap, and
# pcapng (None: the pcapng framer's own Python loop).
_C_SCAN, _C_SCAN_NG = _c_scans()
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
        if fastpath not in ("auto", "off", "none") and fastpath not in _SCANS:
            raise ValueError(f"fastpath: {fastpath!r} is not auto, c, python, off or none")
        if fastpath == "c" and _SCANS["c"] is None:
            raise ValueError("fastpath 'c': the sniparse._speedups extension is not built")
        self.fastpath = fastpath
        self.skipper: Skipper | None = None
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
            auto = self.fastpath == "auto"
            self.skipper = reader.skipper = Skipper(
                self.table.decided,
                None if auto else _SCANS[self.fastpath],
                self._sweep,
                self.table.pending_ts,
                "default" if auto else _NG_SCANS[self.fastpath],
            )
            if self.progress is not None:
                reader.progress = self.progress
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


def _analyse_file(args: tuple[str, float, int, str]) -> tuple[
    list[Handshake], list[Issue], CaptureStats
]:
    """One worker's job in :class:`ParallelAnalysis`: a whole capture file."""
    path, idle_timeout, max_flows, fastpath = args
    run = Analysis(path, idle_timeout=idle_timeout, max_flows=max_flows, fastpath=fastpath)
    # The parsed ClientHello stays in the worker: everything reported is in the other
    # fields, and it would only cost pickling.
    hs = [replace(h, client_hello=None) for h in run]
    return hs, run.issues.to_list(), run.stats()


def merge_stats(parts: list[CaptureStats]) -> CaptureStats:
    """The statistics of several independent captures, added up."""

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
    """Several capture files analysed as *independent* captures, ``jobs`` worker processes
    at a time; iterate it for the handshakes (file by file, in the order given), then read
    ``issues`` and :meth:`stats` (added up over the files), like :class:`Analysis`.

    Why independent captures only: one capture's flow table is sequential state -- which
    flows are open, their idle timers, the tombstones of closed ones, the schedule of idle
    sweeps -- and a flow that crosses a file boundary of a rotated set needs the state the
    previous file left. A worker that starts a file with an empty table would see such a
    flow as picked up mid-stream, and no cheap check says where a rotated set may be split
    safely. So a rotated set (``tcpdump -C`` / ``-G``) is read without ``jobs`` as one
    capture; ``jobs`` is for captures that are separate anyway (several hosts, several
    interfaces captured apart, a batch of customer uploads). Frame numbers in handshakes
    and issues count within each file; each file's issues name the file; one ``info``
    issue records that the files were analysed apart. ``Handshake.client_hello`` is None.

    Raises :class:`sniparse.NotACaptureError` at once when a file is not a readable
    capture (all files are checked before any work starts).
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
        # Opens and sniffs every file: a bad one fails here, in the caller's process.
        reader = CaptureReader(list(self.paths), Issues(), progress=None)
        self.bytes_total = reader.bytes_total
        self.jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        self.idle_timeout = idle_timeout
        self.max_flows = max_flows
        self.fastpath = fastpath
        self.progress = progress
        self.issues = _IssueList()
        self._stats: list[CaptureStats] = []

    def __iter__(self) -> Iterator[Handshake]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.issues.clear()
        self._stats = []
        self.issues.append(
            Issue(
                "info",
                "capture",
                f"{len(self.paths)} files analysed as independent captures (--jobs): flows "
                "that cross from one file into the next are not followed across",
            )
        )
        jobs = [(p, self.idle_timeout, self.max_flows, self.fastpath) for p in self.paths]
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        done = 0
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(jobs)), mp_context=ctx) as ex:
            for path, (hs, issues, stats) in zip(self.paths, ex.map(_analyse_file, jobs)):
                yield from hs
                for i in issues:
                    if not i.detail.startswith(path):
                        i = replace(i, detail=f"{path}: {i.detail}")
                    self.issues.append(i)
                self._stats.append(stats)
                done += 1
                if self.progress is not None:
                    self.progress(done, len(jobs))

    def stats(self) -> CaptureStats:
        """The files' statistics added up; complete once iteration has finished."""
        return merge_stats(self._stats)


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
