"""pcapng framing, sans I/O.

Wire format (draft-ietf-opsawg-pcapng, "PCAP Now Generic"): a file is a sequence of
blocks, each ``type(4) length(4) body length(4)``, the length repeated at the end and
every block a multiple of 4 bytes long (§3.1). A Section Header Block (§4.1) opens each
section and fixes its byte order through the magic ``1a2b3c4d``; a file may hold several
sections, of either byte order, each with its own interface table. Interface Description
Blocks (§4.2) declare each interface's link type, snaplen and options -- ``if_tsresol``
(§4.2, option 9: a power of 10, or of 2 when the top bit is set; 10^-6 when absent) and
``if_tsoffset`` (option 14, seconds added to every timestamp). Packets come in Enhanced
Packet Blocks (§4.3), Simple Packet Blocks (§4.4: no interface id, no timestamp; they
belong to the section's first interface) and the obsolete Packet Block (Appendix A, here
"OPB"). Every other block type (name resolution, statistics, secrets, custom, unknown) is
skipped.

Nothing here opens a file. :class:`PcapngFramer` works over a buffer and an offset,
yielding records and returning the offset of the first byte it could not use yet.

Damage: a block whose length is under 12, not a multiple of 4, absurd, or not repeated at
its end, or whose length runs past the end of the file when more blocks follow, is
reported and the framer resynchronises on the next block that looks right (known type,
sane length, matching trailing length), so one broken block does not lose the rest of the
file. A block whose frame is intact but whose content is wrong (a packet longer than its
block, an unknown interface) is reported and skipped by its length.

Timestamps are integer nanoseconds, computed exactly for any resolution. Frame numbers
follow Wireshark's: custom blocks and systemd journal export blocks, which Wireshark lists
as frames, take a number although they yield no record, so "frame 1234" means the same
packet here and there.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final

from ._fastpath import STOP_EXAMINED, STOP_EXPIRE, STOP_FULL, STOP_OTHER, Skipper, key_at
from .errors import Issues

# What the framers read: the bytes of a chunk, or a read-only memory map of a file window
# (slicing either gives ``bytes``).
Buffer = bytes | mmap.mmap

__all__ = [
    "BYTE_ORDER_MAGIC",
    "DSB",
    "EPB",
    "IDB",
    "ISB",
    "MAX_BLOCK",
    "NRB",
    "OPB",
    "SHB",
    "SPB",
    "PcapngFramer",
    "PcapngInterface",
    "is_pcapng_magic",
    "ts_params",
]

SHB: Final = 0x0A0D0D0A
"""Section Header Block (§4.1); the value reads the same in both byte orders."""
IDB: Final = 0x00000001
"""Interface Description Block (§4.2)."""
OPB: Final = 0x00000002
"""Obsolete Packet Block (Appendix A)."""
SPB: Final = 0x00000003
"""Simple Packet Block (§4.4)."""
NRB: Final = 0x00000004
"""Name Resolution Block (§4.5)."""
ISB: Final = 0x00000005
"""Interface Statistics Block (§4.6)."""
EPB: Final = 0x00000006
"""Enhanced Packet Block (§4.3)."""
DSB: Final = 0x0000000A
"""Decryption Secrets Block (§4.7)."""
_CB_COPY: Final = 0x00000BAD
_CB_NOCOPY: Final = 0x40000BAD
_SYSTEMD_JOURNAL: Final = 0x00000009
BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D

MAX_BLOCK = 32 * 1024 * 1024
"""No block is believed longer than this: bounds what one block can make the reader
buffer (a packet is at most 16 MiB, as for classic pcap, plus options)."""

# Blocks that carry no packet but take a frame number in Wireshark (4.0).
_NUMBERED_NON_PACKETS = (_CB_COPY, _CB_NOCOPY, _SYSTEMD_JOURNAL)

# Block types a resynchronising scan accepts as "the next block".
_KNOWN_TYPES = (SHB, IDB, OPB, SPB, NRB, ISB, EPB, DSB, _CB_COPY, _CB_NOCOPY, _SYSTEMD_JOURNAL)

_OPT_ENDOFOPT: Final = 0
_IF_NAME: Final = 2
_IF_DESCRIPTION: Final = 3
_IF_TSRESOL: Final = 9
_IF_FCSLEN: Final = 13
_IF_TSOFFSET: Final = 14

_tuple_new = tuple.__new__

_EPB_HEAD = {e: struct.Struct(e + "7I").unpack_from for e in "<>"}
_U32 = {e: struct.Struct(e + "I").unpack_from for e in "<>"}

_BOM_LE = struct.pack("<I", BYTE_ORDER_MAGIC)
_BOM_BE = struct.pack(">I", BYTE_ORDER_MAGIC)


def is_pcapng_magic(head: bytes) -> bool:
    """True when ``head`` starts with a Section Header Block (block type and, when the
    first 12 bytes are there, a valid byte-order magic)."""
    if bytes(head[:4]) != b"\x0a\x0d\x0d\x0a":
        return False
    return len(head) < 12 or bytes(head[8:12]) in (_BOM_LE, _BOM_BE)


def ts_params(tsresol: int) -> tuple[int, int]:
    """``(mul, div)`` such that ``ts * mul // div`` turns a timestamp in units of
    ``if_tsresol`` into nanoseconds, exactly (§4.2: top bit clear -> 10^-v seconds,
    set -> 2^-v seconds)."""
    v = tsresol & 0x7F
    if tsresol & 0x80:
        return 1_000_000_000, 1 << v
    if v <= 9:
        return 10 ** (9 - v), 1
    return 1, 10 ** (v - 9)


@dataclass(frozen=True)
class PcapngInterface:
    """One Interface Description Block, as read.

    ``section`` counts sections from 0 within the file, ``local_id`` is the interface's
    id within its section (what packet blocks refer to). ``tsresol`` is the raw
    ``if_tsresol`` byte (6 when absent), ``tsoffset`` the ``if_tsoffset`` seconds,
    ``fcs_len`` the ``if_fcslen`` bytes when given.
    """

    section: int
    local_id: int
    linktype: int
    snaplen: int
    name: str | None
    description: str | None
    tsresol: int
    tsoffset: int
    fcs_len: int | None


RegisterInterface = Callable[[PcapngInterface], int]
RecordTuple = tuple[int, int, int, bytes, int, int]


class PcapngFramer:
    """Frames the packets of one pcapng stream.

    :meth:`records` yields one ``(frame, ts_ns, linktype, data, origlen, iface)`` tuple
    per packet block, built as ``record_type`` (``frame`` counts from 1 within this
    stream), and returns the offset where it stopped. ``register`` is called once per
    Interface Description Block and returns the capture-wide interface index that the
    interface's packets carry (default: the interface's position in this file). Issues
    go to ``issues``; ``name``, ``frame_in_detail`` and ``offset`` work as for
    :class:`sniparse.pcap.PcapFramer`.
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
        self.frame = 0
        """Records yielded so far."""
        self.offset = 0
        self.endian: str | None = None
        self.section = -1
        self.interfaces: list[PcapngInterface] = []
        """Every interface of the stream so far, all sections."""
        # Current section's interface table: (global index, linktype, snaplen, mul, div,
        # offset_ns) per local interface id.
        self._table: list[tuple[int, int, int, int, int, int]] = []
        self.last_ts = 0
        self.corrupt = 0
        """Damaged blocks met (each reported)."""
        self._resync_from: int | None = None
        self._resync_frame = 0
        self._resync_reason = ""
        self._spb_warned = False
        self.skipper: Skipper | None = None
        """When set (by the capture reader), bulk packets of decided flows are counted in
        it and not yielded (see :mod:`sniparse._fastpath`)."""

    # -- issues -------------------------------------------------------------------------
    def _issue(self, kind: str, detail: str, frame: int | None, key: str) -> None:
        label = f"{self.name}: " if self.name else ""
        if self.frame_in_detail and frame is not None:
            detail = f"{detail} (near record {frame} of the file)"
            frame = None
        self.issues.add(kind, "pcapng", label + detail, frame=frame, key=("pcapng", key, self.name))

    # -- framing ------------------------------------------------------------------------
    def records(
        self, buf: Buffer, pos: int = 0, eof: bool = False
    ) -> Generator[RecordTuple, None, int]:
        """Yield every complete packet in ``buf[pos:]``; return the first unused offset.

        ``buf`` is ``bytes`` or a read-only ``mmap``. With ``eof=True`` the stream ends at
        ``len(buf)``: a partial block is then reported as ``truncated`` and ``len(buf)`` is
        returned.
        """
        sk = self.skipper
        if sk is not None:
            return (yield from self._records_skipping(buf, pos, eof, sk))
        n = len(buf)
        frame = self.frame
        tnew = _tuple_new
        rtype = self.record_type
        try:
            while True:
                if self._resync_from is not None:
                    self.frame = frame
                    go, pos = self._resume(buf, pos, eof, n)
                    if not go:
                        return pos
                endian = self.endian
                if endian is not None:
                    # Fast loop: Enhanced Packet Blocks of a known interface.
                    epb = _EPB_HEAD[endian]
                    u32 = _U32[endian]
                    table = self._table
                    ntab = len(table)
                    last_ts = self.last_ts
                    while pos + 28 <= n:
                        btype, blen, ifid, tsh, tsl, caplen, origlen = epb(buf, pos)
                        end = pos + blen
                        # Anything unusual (another block type, a bad length, a block
                        # past the buffer) goes to the general path, which reports it.
                        if (
                            btype != EPB
                            or ifid >= ntab
                            or end > n
                            or blen & 3
                            or not 32 + caplen <= blen <= MAX_BLOCK
                            or u32(buf, end - 4)[0] != blen
                        ):
                            break
                        gidx, lt, _snap, mul, div, off = table[ifid]
                        last_ts = ((tsh << 32) | tsl) * mul // div + off
                        frame += 1
                        yield tnew(
                            rtype,
                            (frame, last_ts, lt, buf[pos + 28 : pos + 28 + caplen], origlen, gidx),
                        )
                        pos = end
                    self.last_ts = last_ts
                # General path: one block of any type, with every check reported.
                if pos + 12 > n:
                    if eof and pos < n:
                        self._issue(
                            "truncated",
                            f"file ends inside a block header ({n - pos} bytes)",
                            frame + 1,
                            "cut",
                        )
                        return n
                    return pos
                self.frame = frame
                step = self._block(buf, pos, eof)
                frame = self.frame  # a custom block may have taken a frame number
                if step is None:
                    return pos  # need more
                if step < 0:
                    return n  # reported, nothing more to read
                pos = step
                if self._pending is not None:
                    rec = self._pending
                    self._pending = None
                    frame += 1
                    yield tnew(rtype, (frame,) + rec)
        finally:
            self.frame = frame

    def _records_skipping(
        self, buf: Buffer, pos: int, eof: bool, sk: Skipper
    ) -> Generator[RecordTuple, None, int]:
        """:meth:`records` for a framer with a :class:`~sniparse._fastpath.Skipper`: the
        same records, issues and frame numbers, except that bulk packets of decided flows
        are counted in ``sk`` instead of being yielded; ``sk`` also counts every packet,
        skipped or yielded (see :mod:`sniparse._fastpath`)."""
        n = len(buf)
        frame = self.frame
        tnew = _tuple_new
        rtype = self.record_type
        decided = sk.decided
        pending = sk.pending
        scan_ng = sk.scan_ng
        lts: dict[int, int] = {}
        nskip = nframes = nbytes = ncut = 0
        max_ts = sk.max_ts
        try:
            while True:
                if self._resync_from is not None:
                    self.frame = frame
                    go, pos = self._resume(buf, pos, eof, n)
                    if not go:
                        return pos
                endian = self.endian
                if endian is not None:
                    # Fast loop: Enhanced Packet Blocks of a known interface (as in records).
                    epb = _EPB_HEAD[endian]
                    u32 = _U32[endian]
                    table = self._table
                    ntab = len(table)
                    last_ts = self.last_ts
                    big = endian == ">"
                    counts = [0] * ntab
                    why = STOP_OTHER
                    while pos + 28 <= n:
                        if scan_ng is not None:
                            pos, k, nb, ct, lts_, mts, why = scan_ng(
                                buf, pos, big, table, MAX_BLOCK, decided, pending,
                                sk.next_expire, counts,
                            )
                            if k:
                                frame += k
                                nskip += k
                                nframes += k
                                nbytes += nb
                                ncut += ct
                                last_ts = lts_
                                max_ts = max(max_ts, mts)
                                if why == STOP_EXPIRE:
                                    self.last_ts = last_ts
                                    sk.on_expire(last_ts)
                                    continue
                                if pos + 28 > n:
                                    break
                        btype, blen, ifid, tsh, tsl, caplen, origlen = epb(buf, pos)
                        end = pos + blen
                        if (
                            btype != EPB
                            or ifid >= ntab
                            or end > n
                            or blen & 3
                            or not 32 + caplen <= blen <= MAX_BLOCK
                            or u32(buf, end - 4)[0] != blen
                        ):
                            break
                        gidx, lt, _snap, mul, div, off = table[ifid]
                        last_ts = ((tsh << 32) | tsl) * mul // div + off
                        frame += 1
                        nframes += 1
                        nbytes += caplen
                        if caplen < origlen:
                            ncut += 1
                        lts[lt] = lts.get(lt, 0) + 1
                        if last_ts > max_ts:  # noqa: PLR1730 (per packet: no call)
                            max_ts = last_ts
                        kf = None if why == STOP_EXAMINED else key_at(lt, buf, pos + 28, caplen)
                        why = STOP_OTHER
                        if kf is not None and not kf[1] & 0x07 and kf[0] in decided:
                            key = kf[0]
                            old = pending.get(key)
                            if old is None or last_ts > old:
                                pending[key] = last_ts
                            nskip += 1
                            pos = end
                            if last_ts >= sk.next_expire:
                                self.last_ts = last_ts
                                sk.on_expire(last_ts)
                            continue
                        yield tnew(
                            rtype,
                            (frame, last_ts, lt, buf[pos + 28 : pos + 28 + caplen], origlen, gidx),
                        )
                        pos = end
                    self.last_ts = last_ts
                    for i, c in enumerate(counts):
                        if c:
                            lt = table[i][1]
                            lts[lt] = lts.get(lt, 0) + c
                # General path: one block of any type, with every check reported.
                if pos + 12 > n:
                    if eof and pos < n:
                        self._issue(
                            "truncated",
                            f"file ends inside a block header ({n - pos} bytes)",
                            frame + 1,
                            "cut",
                        )
                        return n
                    return pos
                self.frame = frame
                step = self._block(buf, pos, eof)
                frame = self.frame  # a custom block may have taken a frame number
                if step is None:
                    return pos  # need more
                if step < 0:
                    return n  # reported, nothing more to read
                pos = step
                if self._pending is not None:
                    ts, lt, data, origlen, gidx = self._pending
                    self._pending = None
                    frame += 1
                    nframes += 1
                    caplen = len(data)
                    nbytes += caplen
                    if caplen < origlen:
                        ncut += 1
                    lts[lt] = lts.get(lt, 0) + 1
                    max_ts = max(max_ts, ts)
                    kf = key_at(lt, data, 0, caplen)
                    if kf is not None and not kf[1] & 0x07 and kf[0] in decided:
                        key = kf[0]
                        old = pending.get(key)
                        if old is None or ts > old:
                            pending[key] = ts
                        nskip += 1
                        if ts >= sk.next_expire:
                            sk.on_expire(ts)
                        continue
                    yield tnew(rtype, (frame, ts, lt, data, origlen, gidx))
        finally:
            self.frame = frame
            sk.skipped += nskip
            sk.frames += nframes
            sk.bytes += nbytes
            sk.cut += ncut
            sk.max_ts = max_ts
            for lt, k in lts.items():
                sk.linktypes[lt] = sk.linktypes.get(lt, 0) + k

    def batches(
        self, buf: Buffer, pos: int = 0, eof: bool = False
    ) -> Generator[list[Any], None, int]:
        """:meth:`records` in lists of many packets, for a framer whose
        :class:`~sniparse._fastpath.Skipper` has a pcapng batch scan (``scan_ng_batch``):
        the same contract as :meth:`sniparse.pcap.PcapFramer.batches`, and otherwise as
        :meth:`_records_skipping` (same issues, frame numbers and counts)."""
        sk = self.skipper
        assert sk is not None
        scan = sk.scan_ng_batch
        assert scan is not None
        n = len(buf)
        frame = self.frame
        tnew = _tuple_new
        rtype = self.record_type
        stype = sk.segment_type
        decided = sk.decided
        pending = sk.pending
        flows = sk.flows
        lts: dict[int, int] = {}
        nskip = nframes = nbytes = ncut = 0
        max_ts = sk.max_ts
        try:
            while True:
                if self._resync_from is not None:
                    self.frame = frame
                    go, pos = self._resume(buf, pos, eof, n)
                    if not go:
                        return pos
                endian = self.endian
                if endian is not None:
                    # Enhanced Packet Blocks of a known interface: the C scan, in lists.
                    epb = _EPB_HEAD[endian]
                    u32 = _U32[endian]
                    table = self._table
                    ntab = len(table)
                    last_ts = self.last_ts
                    big = endian == ">"
                    counts = [0] * ntab
                    seen: list[int] = []
                    while pos + 28 <= n:
                        pos, nf, k, nb, ct, lts_, ets, mts, why, items, ac = scan(
                            buf, pos, big, table, MAX_BLOCK, decided, pending,
                            sk.next_expire, counts, seen, frame, rtype, stype, sk.batch,
                            sk.tombstones(), flows,
                        )
                        if ac:
                            sk.after_close += ac
                        if seen:
                            # Link types are counted in the order their packets appear
                            # (the statistics list them in that order).
                            for i in seen:
                                lt = table[i][1]
                                if lt not in lts:
                                    lts[lt] = 0
                            seen.clear()
                        if nf:
                            frame += nf
                            nframes += nf
                            nskip += k
                            nbytes += nb
                            ncut += ct
                            last_ts = lts_
                            if mts > max_ts:  # noqa: PLR1730 (a call costs more here)
                                max_ts = mts
                            if items:
                                yield items
                            if why == STOP_EXPIRE:
                                self.last_ts = last_ts
                                sk.on_expire(ets)
                                continue
                            if why == STOP_FULL:
                                continue
                            if pos + 28 > n:
                                break
                        # The scan stopped at a block it would not take: the general path
                        # below reports it -- unless it is a sound EPB whose time needs
                        # more than 64 bits, which is read here.
                        btype, blen, ifid, tsh, tsl, caplen, origlen = epb(buf, pos)
                        end = pos + blen
                        if (
                            btype != EPB
                            or ifid >= ntab
                            or end > n
                            or blen & 3
                            or not 32 + caplen <= blen <= MAX_BLOCK
                            or u32(buf, end - 4)[0] != blen
                        ):
                            break
                        gidx, lt, _snap, mul, div, off = table[ifid]
                        last_ts = ((tsh << 32) | tsl) * mul // div + off
                        frame += 1
                        nframes += 1
                        nbytes += caplen
                        if caplen < origlen:
                            ncut += 1
                        lts[lt] = lts.get(lt, 0) + 1
                        if last_ts > max_ts:  # noqa: PLR1730 (per packet: no call)
                            max_ts = last_ts
                        kf = key_at(lt, buf, pos + 28, caplen)
                        data_at = pos + 28
                        pos = end
                        if kf is not None and not kf[1] & 0x07 and kf[0] in decided:
                            key = kf[0]
                            old = pending.get(key)
                            if old is None or last_ts > old:
                                pending[key] = last_ts
                            nskip += 1
                            if last_ts >= sk.next_expire:
                                self.last_ts = last_ts
                                sk.on_expire(last_ts)
                            continue
                        rec = tnew(
                            rtype,
                            (frame, last_ts, lt, buf[data_at : data_at + caplen], origlen, gidx),
                        )
                        yield [rec, None, None]
                    self.last_ts = last_ts
                    for i, c in enumerate(counts):
                        if c:
                            lt = table[i][1]
                            lts[lt] = lts.get(lt, 0) + c
                # General path: one block of any type, with every check reported.
                if pos + 12 > n:
                    if eof and pos < n:
                        self._issue(
                            "truncated",
                            f"file ends inside a block header ({n - pos} bytes)",
                            frame + 1,
                            "cut",
                        )
                        return n
                    return pos
                self.frame = frame
                step = self._block(buf, pos, eof)
                frame = self.frame  # a custom block may have taken a frame number
                if step is None:
                    return pos  # need more
                if step < 0:
                    return n  # reported, nothing more to read
                pos = step
                if self._pending is not None:
                    ts, lt, data, origlen, gidx = self._pending
                    self._pending = None
                    frame += 1
                    nframes += 1
                    caplen = len(data)
                    nbytes += caplen
                    if caplen < origlen:
                        ncut += 1
                    lts[lt] = lts.get(lt, 0) + 1
                    max_ts = max(max_ts, ts)
                    kf = key_at(lt, data, 0, caplen)
                    if kf is not None and not kf[1] & 0x07 and kf[0] in decided:
                        key = kf[0]
                        old = pending.get(key)
                        if old is None or ts > old:
                            pending[key] = ts
                        nskip += 1
                        if ts >= sk.next_expire:
                            sk.on_expire(ts)
                        continue
                    yield [tnew(rtype, (frame, ts, lt, data, origlen, gidx)), None, None]
        finally:
            self.frame = frame
            sk.skipped += nskip
            sk.frames += nframes
            sk.bytes += nbytes
            sk.cut += ncut
            sk.max_ts = max_ts
            for lt, k in lts.items():
                sk.linktypes[lt] = sk.linktypes.get(lt, 0) + k

    _pending: tuple[int, int, bytes, int, int] | None = None

    def _block(self, buf: Buffer, pos: int, eof: bool) -> int | None:
        """Handle the block at ``pos`` (at least 12 bytes present). Returns the offset
        after it (or where resynchronisation starts), None for need more, -1 when the
        stream is finished (truncated and reported). A packet is left in ``_pending``."""
        n = len(buf)
        btype = struct.unpack_from("<I", buf, pos)[0]
        if btype == SHB:
            bom = bytes(buf[pos + 8 : pos + 12])
            if bom == _BOM_LE:
                endian = "<"
            elif bom == _BOM_BE:
                endian = ">"
            else:
                return self._corrupt(pos, f"section header with bad byte-order magic {bom.hex()}")
        else:
            if self.endian is None:
                return self._corrupt(pos, "block before any section header")
            endian = self.endian
            btype = struct.unpack_from(endian + "I", buf, pos)[0]
        blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
        minimum = 28 if btype == SHB else 12
        if blen < minimum or blen & 3 or blen > MAX_BLOCK:
            why = (
                f"length {blen} is not a multiple of 4"
                if blen & 3 and blen >= minimum
                else f"length {blen} is impossible"
            )
            return self._corrupt(pos, f"block type {btype:#x}: {why}")
        if pos + blen > n:
            if not eof:
                return None
            # The file ends inside this block: a cut tail, unless a sound block follows
            # inside the claimed length, in which case the length field was corrupt.
            if self._scan(buf, pos + 4, True) is not None:
                return self._corrupt(pos, f"block length {blen} runs past the end of the file")
            self._issue(
                "truncated",
                f"file ends inside a block of type {btype:#x}: {n - pos} of {blen} bytes present",
                self.frame + 1,
                "cut",
            )
            return -1
        trailer = struct.unpack_from(endian + "I", buf, pos + blen - 4)[0]
        if trailer != blen:
            return self._corrupt(
                pos, f"block type {btype:#x}: trailing length {trailer} differs from {blen}"
            )
        end = pos + blen
        if btype == SHB:
            self._section(buf, pos, blen, endian)
        elif btype == IDB:
            self._interface(buf, pos, blen)
        elif btype == EPB or btype == OPB:
            self._packet(buf, pos, blen, btype)
        elif btype == SPB:
            self._simple(buf, pos, blen)
        elif btype in _NUMBERED_NON_PACKETS:
            # Wireshark lists custom and systemd journal blocks as frames; they take a
            # frame number here too, so frame numbers match what the user sees there.
            self.frame += 1
        # Everything else (NRB, ISB, DSB, unknown) carries no packets: skipped.
        return int(end)

    # -- block bodies -------------------------------------------------------------------
    def _section(self, buf: Buffer, pos: int, blen: int, endian: str) -> None:
        major, minor = struct.unpack_from(endian + "HH", buf, pos + 12)
        self.endian = endian
        self.section += 1
        self._table = []
        if major != 1:
            self._issue(
                "unsupported",
                f"pcapng section version {major}.{minor} (expected 1.0); read as 1.0",
                None,
                "version",
            )

    def _interface(self, buf: Buffer, pos: int, blen: int) -> None:
        endian = self.endian
        assert endian is not None
        if blen < 20:
            self._issue(
                "malformed",
                f"interface description block of {blen} bytes is too short; its packets "
                "cannot be read",
                None,
                "idb",
            )
            # Keep the table's numbering right: packets refer to interfaces by position.
        lt, _res, snaplen = (
            struct.unpack_from(endian + "HHI", buf, pos + 8) if blen >= 20 else (0xFFFF, 0, 0)
        )
        name = desc = None
        tsresol = 6
        tsoffset = 0
        fcs: int | None = None
        p = pos + 16
        end = pos + blen - 4
        while p + 4 <= end:
            code, olen = struct.unpack_from(endian + "HH", buf, p)
            if code == _OPT_ENDOFOPT:
                break
            if p + 4 + olen > end:
                self._issue(
                    "malformed",
                    f"interface option {code} of {olen} bytes overruns its block",
                    None,
                    "idb-option",
                )
                break
            val = buf[p + 4 : p + 4 + olen]
            if code == _IF_NAME:
                name = val.rstrip(b"\0").decode("utf-8", "replace")
            elif code == _IF_DESCRIPTION:
                desc = val.rstrip(b"\0").decode("utf-8", "replace")
            elif code == _IF_TSRESOL and olen >= 1:
                tsresol = val[0]
            elif code == _IF_TSOFFSET and olen == 8:
                tsoffset = struct.unpack_from(endian + "q", val)[0]
            elif code == _IF_FCSLEN and olen >= 1:
                fcs = val[0]
            p += 4 + ((olen + 3) & ~3)  # options are padded to 32 bits (§3.5)
        info = PcapngInterface(
            section=self.section,
            local_id=len(self._table),
            linktype=lt,
            snaplen=snaplen,
            name=name,
            description=desc,
            tsresol=tsresol,
            tsoffset=tsoffset,
            fcs_len=fcs,
        )
        gidx = self.register(info) if self.register is not None else len(self.interfaces)
        self.interfaces.append(info)
        mul, div = ts_params(tsresol)
        self._table.append((gidx, lt, snaplen, mul, div, tsoffset * 1_000_000_000))

    def _packet(self, buf: Buffer, pos: int, blen: int, btype: int) -> None:
        endian = self.endian
        assert endian is not None
        what = "enhanced packet block" if btype == EPB else "packet block"
        if blen < 32:
            self._issue(
                "malformed", f"{what} of {blen} bytes is too short", self.frame + 1, "short"
            )
            return
        if btype == EPB:
            ifid, tsh, tsl, caplen, origlen = struct.unpack_from(endian + "5I", buf, pos + 8)
        else:
            ifid, _drops, tsh, tsl, caplen, origlen = struct.unpack_from(
                endian + "HHIIII", buf, pos + 8
            )
        if ifid >= len(self._table):
            self._issue(
                "malformed",
                f"{what} refers to interface {ifid}, but the section declares "
                f"{len(self._table)}; packet skipped",
                self.frame + 1,
                "ifid",
            )
            return
        if 32 + caplen > blen:
            self._issue(
                "malformed",
                f"{what} captured length {caplen} exceeds its block ({blen} bytes); packet skipped",
                self.frame + 1,
                "caplen",
            )
            return
        gidx, lt, _snap, mul, div, off = self._table[ifid]
        ts = ((tsh << 32) | tsl) * mul // div + off
        self.last_ts = ts
        self._pending = (ts, lt, buf[pos + 28 : pos + 28 + caplen], origlen, gidx)

    def _simple(self, buf: Buffer, pos: int, blen: int) -> None:
        endian = self.endian
        assert endian is not None
        if not self._table:
            self._issue(
                "malformed",
                "simple packet block in a section without interfaces; packet skipped",
                self.frame + 1,
                "spb-noif",
            )
            return
        if blen < 16:
            self._issue(
                "malformed", f"simple packet block of {blen} bytes", self.frame + 1, "short"
            )
            return
        origlen = struct.unpack_from(endian + "I", buf, pos + 8)[0]
        gidx, lt, snap, _mul, _div, _off = self._table[0]
        # §4.4: the captured length is the smaller of the original length, the
        # interface's snaplen and what the block holds.
        caplen = min(origlen, blen - 16)
        if snap:
            caplen = min(caplen, snap)
        if not self._spb_warned:
            self._spb_warned = True
            self._issue(
                "info",
                "simple packet blocks carry no timestamp: each takes the previous packet's time",
                self.frame + 1,
                "spb-ts",
            )
        self._pending = (self.last_ts, lt, buf[pos + 12 : pos + 12 + caplen], origlen, gidx)

    # -- damage and resynchronisation ---------------------------------------------------
    def _corrupt(self, pos: int, reason: str) -> int:
        self.corrupt += 1
        self._resync_from = self.offset + pos
        self._resync_frame = self.frame + 1
        self._resync_reason = reason
        return pos + 1

    def _resume(self, buf: Buffer, pos: int, eof: bool, n: int) -> tuple[bool, int]:
        """After a corrupt block: ``(True, p)`` to read on from the plausible block at ``p``,
        or ``(False, r)`` for the reading loop to stop and return ``r`` (more bytes needed,
        or nothing plausible left in the stream)."""
        r = self._scan(buf, pos, eof)
        if r is None:
            self._report_resync(None, n)
            return False, n
        if r < 0:
            return False, -1 - r
        self._report_resync(r, n)
        return True, r

    def _report_resync(self, found: int | None, n: int) -> None:
        start_abs = self._resync_from
        assert start_abs is not None
        self._resync_from = None
        if found is not None:
            detail = (
                f"damaged block at byte {start_abs} ({self._resync_reason}); "
                f"skipped {self.offset + found - start_abs} bytes to the next sound block"
            )
        else:
            detail = (
                f"damaged block at byte {start_abs} ({self._resync_reason}); no sound "
                f"block after it: the last {self.offset + n - start_abs} bytes are unreadable"
            )
        self._issue("malformed", detail, self._resync_frame, "corrupt")

    def _sound_at(self, buf: Buffer, p: int, eof: bool) -> bool | None:
        """Does a sound block start at ``p``? None: cannot tell without more bytes."""
        n = len(buf)
        if p + 12 > n:
            return False if eof else None
        if bytes(buf[p : p + 4]) == b"\x0a\x0d\x0d\x0a":
            bom = bytes(buf[p + 8 : p + 12])
            if bom == _BOM_LE:
                endian = "<"
            elif bom == _BOM_BE:
                endian = ">"
            else:
                return False
            btype = SHB
        else:
            if self.endian is None:
                return False
            endian = self.endian
            btype = struct.unpack_from(endian + "I", buf, p)[0]
            if btype not in _KNOWN_TYPES:
                return False
        blen = struct.unpack_from(endian + "I", buf, p + 4)[0]
        if blen < (28 if btype == SHB else 12) or blen & 3 or blen > MAX_BLOCK:
            return False
        if p + blen > n:
            return False if eof else None
        if struct.unpack_from(endian + "I", buf, p + blen - 4)[0] != blen:
            return False
        if btype in (EPB, OPB) and blen >= 32:
            fmt = endian + ("I" if btype == EPB else "H")
            if struct.unpack_from(fmt, buf, p + 8)[0] >= len(self._table):
                return False
        return True

    def _scan(self, buf: Buffer, start: int, eof: bool) -> int | None:
        """Find the next sound block at or after ``start``: its offset; ``-1 - p`` when
        more bytes are needed and the scan must resume at ``p``; None when, at the end of
        the stream, there is none."""
        n = len(buf)
        endian = self.endian or "<"
        pats = [b"\x0a\x0d\x0d\x0a"]
        if self.endian is not None:
            pats += [struct.pack(endian + "I", t) for t in (EPB, IDB, SPB, OPB, ISB, NRB, DSB)]
        nxt = [buf.find(pat, start) for pat in pats]
        while True:
            best = -1
            for k, pat in enumerate(pats):
                i = nxt[k]
                if 0 <= i < start:
                    i = nxt[k] = buf.find(pat, start)
                if i >= 0 and (best < 0 or i < best):
                    best = i
            if best < 0:
                if eof:
                    return None
                return -1 - max(start, n - 12)
            ok = self._sound_at(buf, best, eof)
            if ok is None:
                return -1 - best
            if ok:
                return best
            start = best + 1
