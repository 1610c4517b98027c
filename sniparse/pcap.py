"""Classic pcap framing (libpcap's savefile format), sans I/O.

Wire format (draft-ietf-opsawg-pcap, "PCAP Capture File Format"):

* a 24-byte file header (§4): magic, version major/minor, two reserved words, snaplen and
  the "LinkType and additional information" word, whose lower 16 bits are the link type and
  whose upper bits may say how many bytes of Frame Check Sequence end every frame;
* then packet records (§5): a 16-byte header -- seconds, sub-second fraction, captured
  length, original length -- followed by the captured bytes.

The magic gives both the byte order and the timestamp resolution: ``a1b2c3d4`` is
microseconds, ``a1b23c4d`` nanoseconds, each readable in either byte order. Alexey
Kuznetsov's "modified" format (``a1b2cd34``, 24-byte record headers) is read too.

Nothing here opens a file. :class:`PcapFramer` works over a buffer and an offset: its
:meth:`PcapFramer.records` generator yields every complete record in the buffer and
returns the offset of the first byte it could not use yet ("need more"). The caller
(``capture.py``) appends more bytes and calls again, or says ``eof=True`` at the end.

Hostile input: a record whose captured length is larger than ``max(snaplen, 262144)`` (or
than 16 MiB, whatever the header says) cannot be real. It is reported as a ``malformed``
Issue and the framer *resynchronises*: it scans forward for the next plausible record
header (timestamp close to the previous record's -- or to the last record known to be good,
since a zero captured length lets packet bytes pass for record headers first -- lengths
sane, a non-zero original length, and the record after it sane as well) and carries on from
there, so one corrupt record does not lose the rest of the file. The scan looks for the upper bytes of nearby timestamps with ``bytes.find``, so
even megabytes of garbage are skipped at C speed. It starts up to ``RESYNC_LOOKBACK`` bytes
*before* the corrupt header: a previous record whose captured length was a few bytes too
long swallowed the start of the next header, which lies there (a record found that way must
straddle the corrupt header, so nothing is read twice). A captured length larger than the
original length is checked the same way: when the next header is implausible at the
declared length but plausible at the original length, the record is read with the original
length (a ``malformed`` Issue says so).

Speed: the per-record work is one ``struct.unpack_from`` on the big buffer, one bytes
slice and one tuple; no exception and no per-record object beyond the yielded tuple.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final

from ._fastpath import STOP_EXPIRE, STOP_FULL, Skipper, key_at
from .errors import Issues, MalformedError

# What the framers read: the bytes of a chunk, or a read-only memory map of a file window
# (slicing either gives ``bytes``).
Buffer = bytes | mmap.mmap

__all__ = [
    "MAGIC_MODIFIED",
    "MAGIC_NSEC",
    "MAGIC_USEC",
    "MAX_CAPLEN",
    "PcapFramer",
    "PcapHeader",
    "is_pcap_magic",
    "parse_header",
]

MAGIC_USEC: Final = 0xA1B2C3D4
"""Classic pcap, microsecond timestamps."""
MAGIC_NSEC: Final = 0xA1B23C4D
"""pcap with nanosecond timestamps (libpcap >= 1.5 ``--time-stamp-precision=nano``)."""
MAGIC_MODIFIED: Final = 0xA1B2CD34
"""Kuznetsov's patched libpcap: 24-byte record headers (ifindex, protocol, pkt_type)."""

# The largest snaplen libpcap itself ever uses (MAXIMUM_SNAPLEN in pcap-int.h); a record
# may be larger than the header's snaplen up to this (writers lie about snaplen), but not
# beyond it or beyond the header's own snaplen.
DEFAULT_MAX_SNAPLEN: Final = 262_144
MAX_CAPLEN = 16 * 1024 * 1024
"""No record is believed larger than this, whatever the header says: bounds the memory
one record can make the reader buffer."""
# Resynchronisation: how far (seconds) a candidate record's timestamp may be from the last
# good record's, and the largest original length a candidate may claim (TSO/GRO super
# frames reach 64 KiB, BIG TCP 512 KiB).
RESYNC_WINDOW_S: Final = 86_400
RESYNC_MAX_ORIGLEN: Final = 1024 * 1024
# Without any good record to compare timestamps with, scan at most this many bytes one by
# one before giving up on the rest of the file.
RESYNC_BLIND_SCAN: Final = 1024 * 1024
#: The resync scan starts up to this many bytes before a corrupt header, inside the
#: previous record: when that record's captured length is too long, it swallowed the start
#: of the next header, which still lies there. A record found there must straddle the
#: corrupt header (start before it, end after it), so the scan never lands on the previous
#: record itself or an older one and yields nothing twice.
RESYNC_LOOKBACK: Final = 512

_LE_MAGICS = {
    struct.pack("<I", MAGIC_USEC): ("<", 1000, 16),
    struct.pack("<I", MAGIC_NSEC): ("<", 1, 16),
    struct.pack("<I", MAGIC_MODIFIED): ("<", 1000, 24),
    struct.pack(">I", MAGIC_USEC): (">", 1000, 16),
    struct.pack(">I", MAGIC_NSEC): (">", 1, 16),
    struct.pack(">I", MAGIC_MODIFIED): (">", 1000, 24),
}

_tuple_new = tuple.__new__


def is_pcap_magic(head: bytes) -> bool:
    """True when ``head`` (at least 4 bytes) starts with one of the classic pcap magics."""
    return bytes(head[:4]) in _LE_MAGICS


@dataclass(frozen=True)
class PcapHeader:
    """The 24-byte file header of a classic pcap file (draft-ietf-opsawg-pcap §4).

    ``endian`` is ``"<"`` or ``">"``; ``ts_mult`` multiplies the sub-second field to get
    nanoseconds (1000 for microsecond files, 1 for nanosecond files); ``record_header``
    is 16, or 24 for the modified format. ``linktype`` is the lower 16 bits of the link
    type word; ``fcs_len`` is the number of FCS bytes at the end of every frame when the
    file says so (the "P" bit, 0x04000000, with the length in 16-bit units in the top four
    bits), else None. ``linktype_raw`` keeps the whole word.
    """

    magic: int
    endian: str
    ts_mult: int
    record_header: int
    version_major: int
    version_minor: int
    snaplen: int
    linktype: int
    fcs_len: int | None
    linktype_raw: int

    @property
    def nanosecond(self) -> bool:
        """True when the file's timestamps are in nanoseconds."""
        return self.ts_mult == 1


def parse_header(
    buf: bytes | bytearray | memoryview | mmap.mmap, pos: int = 0
) -> PcapHeader | None:
    """Read the file header at ``buf[pos:]``; None when fewer than 24 bytes are there.

    Raises :class:`MalformedError` when the magic is not a pcap magic.
    """
    if len(buf) - pos < 24:
        return None
    magic4 = bytes(buf[pos : pos + 4])
    info = _LE_MAGICS.get(magic4)
    if info is None:
        raise MalformedError("pcap", 0, f"not a pcap magic number: {magic4.hex()}")
    endian, mult, rec_hdr = info
    magic, vmaj, vmin, _zone, _sigfigs, snaplen, ltraw = struct.unpack_from(
        endian + "IHHiIII", buf, pos
    )
    fcs: int | None = None
    if ltraw & 0x04000000:
        # draft-ietf-opsawg-pcap §4: "P" bit set -> FCS len (top 4 bits) is valid, in
        # units of 16 bits.
        fcs = ((ltraw >> 28) & 0xF) * 2
    return PcapHeader(
        magic=magic,
        endian=endian,
        ts_mult=mult,
        record_header=rec_hdr,
        version_major=vmaj,
        version_minor=vmin,
        snaplen=snaplen,
        linktype=ltraw & 0xFFFF,
        fcs_len=fcs,
        linktype_raw=ltraw,
    )


# Called once with the file header; returns the capture-wide interface index that this
# file's records carry.
RegisterInterface = Callable[[PcapHeader], int]

# A record as the framers yield it: ``(frame, ts_ns, linktype, data, origlen, iface)``,
# built as ``record_type`` (``sniparse.capture.Record`` or plain ``tuple``).
RecordTuple = tuple[int, int, int, bytes, int, int]


class PcapFramer:
    """Frames the records of one classic pcap stream.

    Feed it the stream's bytes through :meth:`records`, which yields one
    ``(frame, ts_ns, linktype, data, origlen, iface)`` tuple per record, built as
    ``record_type`` (``frame`` counts from 1 within this stream), and returns the offset
    where it stopped. Problems go to ``issues``: ``truncated`` when the stream ends inside
    a record, ``malformed`` for a corrupt record header (followed by resynchronisation).

    ``name`` labels issues; ``register`` maps the file header to a capture-wide interface
    index (default: always 0). ``frame_in_detail``: when several files are merged, the
    frame numbers of this stream are not the capture's, so issues carry ``frame=None``
    and name the record number within the file in the detail instead. The caller keeps
    ``offset`` equal to the absolute stream offset of ``buf[0]`` when it drops consumed
    bytes; it only makes issue details precise.
    """

    def __init__(
        self,
        issues: Issues,
        *,
        name: str = "",
        register: RegisterInterface | None = None,
        frame_in_detail: bool = False,
        record_type: type[tuple] = tuple,  # type: ignore[type-arg]
    ) -> None:
        self.issues = issues
        self.name = name
        self.register = register
        self.frame_in_detail = frame_in_detail
        self.record_type = record_type
        self.header: PcapHeader | None = None
        self.iface = 0
        self.frame = 0
        """Records yielded so far."""
        self.offset = 0
        self.limit = DEFAULT_MAX_SNAPLEN
        self.last_sec: int | None = None
        self.anchor_sec: int | None = None
        """Seconds of a record known to be good (the file's first record, then each record a
        resynchronisation lands on): a second reference time for the resync scan, because
        ``last_sec`` may come from garbage read as records before the damage was noticed
        (a zero captured length makes the packet's own bytes the next "record header")."""
        self.corrupt = 0
        """Corrupt record headers met (each followed by resynchronisation)."""
        self._resync_from: int | None = None
        self._resync_frame = 0
        self._resync_reason = ""
        self._lookback_at = -1      # absolute offset of the last corrupt header looked back from
        self._warned_caplen = False
        self._dead = False
        self.skipper: Skipper | None = None
        """When set (by the capture reader), bulk packets of decided flows are counted in
        it and not yielded (see :mod:`sniparse._fastpath`)."""

    # -- issues -------------------------------------------------------------------------
    def _issue(self, kind: str, detail: str, frame: int | None, key: str) -> None:
        label = f"{self.name}: " if self.name else ""
        if self.frame_in_detail and frame is not None:
            detail = f"{detail} (record {frame} of the file)"
            frame = None
        self.issues.add(kind, "pcap", label + detail, frame=frame, key=("pcap", key, self.name))

    def _start(self, hdr: PcapHeader) -> None:
        self.header = hdr
        if 0 < hdr.snaplen:
            self.limit = max(DEFAULT_MAX_SNAPLEN, min(hdr.snaplen, MAX_CAPLEN))
        if hdr.version_major != 2:
            self._issue(
                "unsupported",
                f"pcap version {hdr.version_major}.{hdr.version_minor} (expected 2.4); read as 2.4",
                None,
                "version",
            )
        self.iface = self.register(hdr) if self.register is not None else 0

    # -- framing ------------------------------------------------------------------------
    def _begin(self, buf: Buffer, pos: int, eof: bool) -> tuple[bool, int]:
        """Before reading records from ``pos``: read the file header if not done yet.
        ``(False, r)``: return ``r`` at once (need more, or nothing left to read);
        ``(True, p)``: records start at ``p``."""
        n = len(buf)
        if self._dead:
            return False, n  # gave up on the rest of the stream (reported once)
        if self.header is None:
            hdr = parse_header(buf, pos)
            if hdr is None:
                if eof:
                    if n > pos:
                        self._issue(
                            "truncated",
                            f"file ends inside the 24-byte pcap header ({n - pos} bytes)",
                            None,
                            "header",
                        )
                    return False, n
                return False, pos
            self._start(hdr)
            pos += 24
        hdr = self.header
        assert hdr is not None
        if self.anchor_sec is None and pos + hdr.record_header <= n:
            self.anchor_sec = struct.unpack_from(hdr.endian + "I", buf, pos)[0]
        return True, pos

    def records(
        self, buf: Buffer, pos: int = 0, eof: bool = False
    ) -> Generator[RecordTuple, None, int]:
        """Yield every complete record in ``buf[pos:]``; return the first unused offset.

        ``buf`` is ``bytes`` or a read-only ``mmap`` (record data are slices of it).
        With ``eof=True`` the stream is known to end at ``len(buf)``: a partial record
        is then reported as ``truncated`` and the returned offset is ``len(buf)``.
        """
        n = len(buf)
        go, pos = self._begin(buf, pos, eof)
        if not go:
            return pos
        hdr = self.header
        assert hdr is not None
        unpack = struct.Struct(hdr.endian + "IIII").unpack_from
        rh = hdr.record_header
        mult = hdr.ts_mult
        lt = hdr.linktype
        iface = self.iface
        limit = self.limit
        frame = self.frame
        tnew = _tuple_new
        rtype = self.record_type
        last = self.last_sec
        check_caplen = not self._warned_caplen
        sk = self.skipper
        if sk is not None:
            return (yield from self._records_skipping(buf, pos, eof, sk))
        try:
            while True:
                if self._resync_from is not None:
                    self.last_sec = last
                    go, pos = self._resume(buf, pos, eof, n)
                    if not go:
                        return pos
                    self.anchor_sec = last = unpack(buf, pos)[0]
                while pos + rh <= n:
                    sec, frac, caplen, origlen = unpack(buf, pos)
                    if caplen > limit:
                        break
                    end = pos + rh + caplen
                    if end > n:
                        break
                    if check_caplen and caplen > origlen:
                        fixed = self._fix_caplen(buf, pos, sec, caplen, origlen, eof, frame + 1)
                        if fixed < 0:
                            check_caplen = False
                            self._warn_caplen(caplen, origlen, frame + 1)
                        else:
                            caplen = fixed
                            end = pos + rh + caplen
                    frame += 1
                    yield tnew(
                        rtype,
                        (
                            frame,
                            sec * 1_000_000_000 + frac * mult,
                            lt,
                            buf[pos + rh : end],
                            origlen,
                            iface,
                        ),
                    )
                    pos = end
                    last = sec
                # Left the fast loop: a corrupt header, a record past the buffer's end,
                # or the end of the buffer.
                done, pos = self._stopped(buf, pos, eof, frame, last)
                if done:
                    return pos
        finally:
            self.frame = frame
            self.last_sec = last
            self._warned_caplen = not check_caplen

    def _records_skipping(
        self, buf: Buffer, pos: int, eof: bool, sk: Skipper
    ) -> Generator[RecordTuple, None, int]:
        """:meth:`records` for a framer with a :class:`~sniparse._fastpath.Skipper`: the
        same records, issues and frame numbers, except that bulk packets of decided flows
        are counted in ``sk`` instead of being yielded (``sk.scan`` steps over runs of
        them; a record the scan did not examine is tested here). ``sk`` also counts every
        frame, skipped or yielded (frames, bytes, snaplen cuts, link types, latest time)."""
        hdr = self.header
        assert hdr is not None
        n = len(buf)
        unpack = struct.Struct(hdr.endian + "IIII").unpack_from
        big = hdr.endian == ">"
        rh = hdr.record_header
        mult = hdr.ts_mult
        lt = hdr.linktype
        iface = self.iface
        limit = self.limit
        frame = self.frame
        tnew = _tuple_new
        rtype = self.record_type
        last = self.last_sec
        check_caplen = not self._warned_caplen
        scan = sk.scan
        decided = sk.decided
        pending = sk.pending
        nskip = nframes = nbytes = ncut = 0
        max_ts = sk.max_ts
        try:
            while True:
                if self._resync_from is not None:
                    self.last_sec = last
                    go, pos = self._resume(buf, pos, eof, n)
                    if not go:
                        return pos
                    self.anchor_sec = last = unpack(buf, pos)[0]
                while pos + rh <= n:
                    pos, k, nb, ct, lsec, lts, mts, why, rec = scan(
                        buf, pos, big, rh, mult, limit, lt, check_caplen, decided, pending,
                        sk.next_expire, frame, iface, rtype,
                    )
                    if k or rec is not None:
                        frame += k
                        nskip += k
                        nbytes += nb
                        ncut += ct
                        last = lsec
                        max_ts = max(max_ts, mts)
                        if rec is not None:
                            # The first record that needs Python, built by the scan.
                            frame += 1
                            nframes += 1
                            yield rec
                            continue
                        if why == STOP_EXPIRE:
                            sk.on_expire(lts)
                            continue
                        if pos + rh > n:
                            break
                    # The scan stopped at a record it would not judge (a corrupt or
                    # incomplete header, a record to warn about): the same checks here.
                    sec, frac, caplen, origlen = unpack(buf, pos)
                    if caplen > limit:
                        break
                    end = pos + rh + caplen
                    if end > n:
                        break
                    if check_caplen and caplen > origlen:
                        fixed = self._fix_caplen(buf, pos, sec, caplen, origlen, eof, frame + 1)
                        if fixed < 0:
                            check_caplen = False
                            self._warn_caplen(caplen, origlen, frame + 1)
                        else:
                            caplen = fixed
                            end = pos + rh + caplen
                    frame += 1
                    ts = sec * 1_000_000_000 + frac * mult
                    kf = key_at(lt, buf, pos + rh, caplen)
                    if kf is not None and not kf[1] & 0x07 and kf[0] in decided:
                        key = kf[0]
                        old = pending.get(key)
                        if old is None or ts > old:
                            pending[key] = ts
                        max_ts = max(max_ts, ts)
                        nskip += 1
                        nbytes += caplen
                        if caplen < origlen:
                            ncut += 1
                        pos = end
                        last = sec
                        if ts >= sk.next_expire:
                            sk.on_expire(ts)
                        continue
                    nframes += 1
                    nbytes += caplen
                    if caplen < origlen:
                        ncut += 1
                    if ts > max_ts:  # noqa: PLR1730 (a call costs more on this path)
                        max_ts = ts
                    yield tnew(rtype, (frame, ts, lt, buf[pos + rh : end], origlen, iface))
                    pos = end
                    last = sec
                done, pos = self._stopped(buf, pos, eof, frame, last)
                if done:
                    return pos
        finally:
            self.frame = frame
            self.last_sec = last
            self._warned_caplen = not check_caplen
            nframes += nskip
            sk.skipped += nskip
            sk.frames += nframes
            sk.bytes += nbytes
            sk.cut += ncut
            sk.max_ts = max_ts
            if nframes:
                sk.linktypes[lt] = sk.linktypes.get(lt, 0) + nframes

    def batches(
        self, buf: Buffer, pos: int = 0, eof: bool = False
    ) -> Generator[list[Any], None, int]:
        """:meth:`records` for a framer whose :class:`~sniparse._fastpath.Skipper` has a
        batch scan (``skipper.scan_batch``): the records that are not skipped come in lists,
        many per scan call, three entries per record -- ``(segment, key, None)`` when the C
        decoder took the frame (``skipper.segment_type``), ``(record, None, None)`` when the
        general decoder must, with a direction key instead of the last None when the
        consumer must test it against ``decided`` first (a bulk packet of a flow an earlier
        record of the list may decide; see "Batches" in :mod:`sniparse.analyze`).

        The consumer handles a whole list before asking for the next: the next scan then
        sees ``decided`` as it is after those records. Everything else is as in
        :meth:`_records_skipping` (same issues, frame numbers and counts)."""
        n = len(buf)
        go, pos = self._begin(buf, pos, eof)
        if not go:
            return pos
        sk = self.skipper
        hdr = self.header
        assert hdr is not None and sk is not None
        scan = sk.scan_batch
        assert scan is not None
        unpack = struct.Struct(hdr.endian + "IIII").unpack_from
        big = hdr.endian == ">"
        rh = hdr.record_header
        mult = hdr.ts_mult
        lt = hdr.linktype
        iface = self.iface
        limit = self.limit
        frame = self.frame
        tnew = _tuple_new
        rtype = self.record_type
        stype = sk.segment_type
        last = self.last_sec
        check_caplen = not self._warned_caplen
        decided = sk.decided
        pending = sk.pending
        flows = sk.flows
        nskip = nframes = nbytes = ncut = 0
        max_ts = sk.max_ts
        try:
            while True:
                if self._resync_from is not None:
                    self.last_sec = last
                    go, pos = self._resume(buf, pos, eof, n)
                    if not go:
                        return pos
                    self.anchor_sec = last = unpack(buf, pos)[0]
                while pos + rh <= n:
                    pos, nf, k, nb, ct, lsec, ets, mts, why, items, ac = scan(
                        buf, pos, big, rh, mult, limit, lt, check_caplen, decided, pending,
                        sk.next_expire, frame, iface, rtype, stype, sk.batch,
                        sk.tombstones(), flows,
                    )
                    if nf:
                        if ac:
                            sk.after_close += ac
                        frame += nf
                        nframes += nf
                        nskip += k
                        nbytes += nb
                        ncut += ct
                        last = lsec
                        if mts > max_ts:  # noqa: PLR1730 (a call costs more on this path)
                            max_ts = mts
                        if items:
                            yield items
                        if why == STOP_EXPIRE:
                            sk.on_expire(ets)
                            continue
                        if why == STOP_FULL:
                            continue
                        if pos + rh > n:
                            break
                    # The scan stopped at a record it would not judge (a corrupt or
                    # incomplete header, a record to warn about): the same checks here.
                    sec, frac, caplen, origlen = unpack(buf, pos)
                    if caplen > limit:
                        break
                    end = pos + rh + caplen
                    if end > n:
                        break
                    if check_caplen and caplen > origlen:
                        fixed = self._fix_caplen(buf, pos, sec, caplen, origlen, eof, frame + 1)
                        if fixed < 0:
                            check_caplen = False
                            self._warn_caplen(caplen, origlen, frame + 1)
                        else:
                            caplen = fixed
                            end = pos + rh + caplen
                    frame += 1
                    nframes += 1
                    nbytes += caplen
                    if caplen < origlen:
                        ncut += 1
                    ts = sec * 1_000_000_000 + frac * mult
                    if ts > max_ts:  # noqa: PLR1730
                        max_ts = ts
                    kf = key_at(lt, buf, pos + rh, caplen)
                    pos = end
                    last = sec
                    if kf is not None and not kf[1] & 0x07 and kf[0] in decided:
                        key = kf[0]
                        old = pending.get(key)
                        if old is None or ts > old:
                            pending[key] = ts
                        nskip += 1
                        if ts >= sk.next_expire:
                            sk.on_expire(ts)
                        continue
                    rec = tnew(rtype, (frame, ts, lt, buf[end - caplen : end], origlen, iface))
                    yield [rec, None, None]
                done, pos = self._stopped(buf, pos, eof, frame, last)
                if done:
                    return pos
        finally:
            self.frame = frame
            self.last_sec = last
            self._warned_caplen = not check_caplen
            sk.skipped += nskip
            sk.frames += nframes
            sk.bytes += nbytes
            sk.cut += ncut
            sk.max_ts = max_ts
            if nframes:
                sk.linktypes[lt] = sk.linktypes.get(lt, 0) + nframes

    def _stopped(
        self, buf: Buffer, pos: int, eof: bool, frame: int, last: int | None
    ) -> tuple[bool, int]:
        """The record loop stopped at ``pos``: a corrupt header, a record past the
        buffer's end, or the end of the buffer. Returns (True, offset to return) or (False,
        offset to carry on from, a resynchronisation having started)."""
        hdr = self.header
        assert hdr is not None
        rh = hdr.record_header
        limit = self.limit
        n = len(buf)
        if pos + rh <= n:
            caplen = struct.unpack_from(hdr.endian + "I", buf, pos + 8)[0]
            if caplen > limit:
                self._start_resync(
                    pos, frame + 1, f"captured length {caplen} exceeds the limit {limit}"
                )
                return False, self._lookback(pos)
            if not eof:
                return True, pos
            # The stream ends inside this record: a cut tail (tcpdump killed
            # mid-write, a partial download), unless a plausible record follows,
            # in which case this record's length field was corrupt.
            self.last_sec = last
            start = self._lookback(pos)
            if self._plausible_after(buf, start):
                self._start_resync(
                    pos,
                    frame + 1,
                    f"captured length {caplen} runs past the end of the file",
                )
                return False, start
            self._issue(
                "truncated",
                f"file ends inside record {frame + 1}: {n - pos - rh} of {caplen} "
                "captured bytes present",
                frame + 1,
                "cut",
            )
            return True, n
        if eof and pos < n:
            self._issue(
                "truncated",
                f"file ends inside the header of record {frame + 1} "
                f"({n - pos} of {rh} bytes)",
                frame + 1,
                "cut",
            )
            return True, n
        return True, pos

    def _fix_caplen(
        self, buf: Buffer, pos: int, sec: int, caplen: int, origlen: int, eof: bool, frame: int
    ) -> int:
        """A record whose captured length exceeds its original length: when the record
        after the declared length is not plausible but the one after the original length
        is, the captured length is corrupt (a few bytes too long, so it swallowed the next
        header): the record is read with its original length (an Issue says so). Returns
        that length, or -1 to read the record as declared."""
        hdr = self.header
        assert hdr is not None
        rh = hdr.record_header
        n = len(buf)
        q_decl = pos + rh + caplen
        q_orig = pos + rh + origlen
        if q_orig + rh > n or (q_decl == n and eof):
            return -1
        if q_decl + rh <= n and self._candidate(buf, q_decl, sec) >= 0:
            return -1
        if self._candidate(buf, q_orig, sec) < 0:
            return -1
        self._issue(
            "malformed",
            f"a record's captured length {caplen} is larger than its original length "
            f"{origlen} and runs into the next record's header, which starts after "
            f"{origlen} bytes: read with the original length",
            frame,
            "caplen>origlen fixed",
        )
        return origlen

    def _warn_caplen(self, caplen: int, origlen: int, frame: int) -> None:
        self._issue(
            "malformed",
            f"a record's captured length {caplen} is larger than its original length "
            f"{origlen} (the data is read as captured)",
            frame,
            "caplen>origlen",
        )

    # -- resynchronisation --------------------------------------------------------------
    def _start_resync(self, pos: int, frame: int, reason: str) -> None:
        self.corrupt += 1
        self._resync_from = self.offset + pos
        self._resync_frame = frame
        self._resync_reason = reason

    def _lookback(self, pos: int) -> int:
        """Where the resync scan for a corrupt header at ``pos`` starts: a few bytes back
        inside the previous record (see :data:`RESYNC_LOOKBACK`), once per corrupt header
        so a scan that lands there and meets the same header again moves on."""
        at = self.offset + pos
        if at == self._lookback_at or pos == 0:
            return pos + 1
        self._lookback_at = at
        return max(0, pos - RESYNC_LOOKBACK)

    def _behind(self, p: int, q: int) -> bool:
        """A candidate record ``buf[p:q]`` that lies wholly before the corrupt header the
        scan looked back from (the previous record itself, or older): never a resync
        target."""
        at = self._lookback_at
        return self.offset + p < at and self.offset + q <= at

    def _resume(self, buf: Buffer, pos: int, eof: bool, n: int) -> tuple[bool, int]:
        """After a corrupt record header: ``(True, p)`` to read on from the plausible header
        at ``p``, or ``(False, r)`` for the reading loop to stop and return ``r`` (more bytes
        needed, or nothing plausible left in the stream)."""
        r = self._scan(buf, pos, eof)
        if r is None:
            self._report_resync(None, n)
            self._dead = not eof
            return False, n
        if r < 0:
            return False, -1 - r
        self._report_resync(r, n)
        return True, r

    def _report_resync(self, found: int | None, n: int) -> None:
        start_abs = self._resync_from
        assert start_abs is not None
        self._resync_from = None
        if found is not None and self.offset + found < start_abs:
            detail = (
                f"corrupt record header at byte {start_abs} ({self._resync_reason}); the "
                f"next record starts {start_abs - self.offset - found} bytes earlier, inside "
                "the previous record, whose captured length is too long (its data runs "
                "into the next record)"
            )
        elif found is not None:
            detail = (
                f"corrupt record header at byte {start_abs} ({self._resync_reason}); "
                f"skipped {self.offset + found - start_abs} bytes to the next plausible record"
            )
        else:
            detail = (
                f"corrupt record header at byte {start_abs} ({self._resync_reason}); "
                "no plausible record found after it: the rest of the file is unreadable"
            )
        self._issue("malformed", detail, self._resync_frame, "corrupt")

    def _candidate(self, buf: Buffer, p: int, ref_sec: int | None) -> int:
        """The captured length of a plausible record header at ``buf[p:]`` (all of its
        bytes present), or -1 when it is not plausible."""
        hdr = self.header
        assert hdr is not None
        sec, frac, caplen, origlen = struct.unpack_from(hdr.endian + "IIII", buf, p)
        if ref_sec is not None and abs(sec - ref_sec) > RESYNC_WINDOW_S:
            return -1
        if frac * hdr.ts_mult >= 1_000_000_000:
            return -1
        # No link delivers a zero-length frame: an all-zero header is filler, not a record.
        if caplen > self.limit or not caplen <= origlen <= RESYNC_MAX_ORIGLEN or not origlen:
            return -1
        return int(caplen)

    def _check_at(self, buf: Buffer, p: int, eof: bool, ref_sec: int | None) -> bool | None:
        """Candidate at ``p`` plus the chain check: the record after it must be plausible
        too (its time close to the candidate's), or -- when there is a reference time --
        the candidate may end exactly at the end of the stream. None: need more."""
        hdr = self.header
        assert hdr is not None
        rh = hdr.record_header
        n = len(buf)
        if p + rh > n:
            return False if eof else None
        caplen = self._candidate(buf, p, ref_sec)
        if caplen < 0:
            return False
        q = p + rh + caplen
        if self._behind(p, q):
            return False
        if q == n and eof:
            return ref_sec is not None
        if q + rh > n:
            return False if eof else None
        sec = struct.unpack_from(hdr.endian + "I", buf, p)[0]
        return self._candidate(buf, q, sec) >= 0

    def _plausible_after(self, buf: Buffer, start: int) -> bool:
        """At end of stream: is there a plausible record anywhere in ``buf[start:]``?
        Without a good record before (no reference time) the answer is no: a cut first
        record is far likelier than a corrupt one."""
        if self.last_sec is None:
            return False
        r = self._scan(buf, start, True, blind_from=self.offset + start)
        return r is not None and r >= 0

    def _scan(
        self, buf: Buffer, start: int, eof: bool, blind_from: int | None = None
    ) -> int | None:
        """Find the next plausible record header at or after ``start``.

        Returns its offset; ``-1 - p`` when more bytes are needed and the scan must resume
        at ``p`` of this buffer; None when, at the end of the stream, nothing plausible is
        left."""
        hdr = self.header
        assert hdr is not None
        n = len(buf)
        rh = hdr.record_header
        ref = self.last_sec
        if ref is None:
            # Nothing to compare timestamps with: a bounded offset-by-offset scan.
            origin = self._resync_from if blind_from is None else blind_from
            assert origin is not None
            stop = origin + RESYNC_BLIND_SCAN - self.offset
            p = start
            while p < n and p < stop:
                ok = self._check_at(buf, p, eof, None)
                if ok is None:
                    return -1 - p
                if ok:
                    return p
                p += 1
            if p >= stop or eof:
                return None
            return -1 - p
        # A nearby record's seconds field shares its upper 16 bits with one of a few values
        # (a window of +-1 day spans at most four): find those with bytes.find, at C speed,
        # instead of testing every offset.
        # Two reference times when they disagree: the last record read, and the anchor (a
        # record known to be good). The last record may be garbage that happened to look
        # like a record.
        refs = [ref]
        anchor = self.anchor_sec
        if anchor is not None and abs(anchor - ref) > RESYNC_WINDOW_S:
            refs.append(anchor)
        shift = 2 if hdr.endian == "<" else 0
        pats: list[bytes] = []
        owners: list[int] = []
        for r in refs:
            lo = max(0, r - RESYNC_WINDOW_S) >> 16
            hi = min(0xFFFFFFFF, r + RESYNC_WINDOW_S) >> 16
            for v in range(lo, hi + 1):
                pats.append(struct.pack(hdr.endian + "H", v))
                owners.append(r)
        nxt = [buf.find(pat, start + shift) for pat in pats]
        while True:
            best = -1
            for k, pat in enumerate(pats):
                i = nxt[k]
                if 0 <= i and i - shift < start:
                    i = nxt[k] = buf.find(pat, start + shift)
                if i >= 0 and (best < 0 or i - shift < best):
                    best = i - shift
            if best < 0:
                if eof:
                    return None
                return -1 - max(start, n - rh)
            more = False
            for r in sorted({owners[k] for k in range(len(pats)) if nxt[k] - shift == best}):
                ok = self._check_at(buf, best, eof, r)
                if ok:
                    return best
                more = more or ok is None
            if more:
                return -1 - best
            start = best + 1
