"""The bulk-data fast path: find, straight in the capture's buffer, the packets that cannot
matter, and count them without building anything.

Most packets of a real capture are data segments (or pure ACKs) of flows whose handshake
question is already answered: the flow table lists their direction keys in
``FlowTable.decided`` and ignores them (see :mod:`sniparse.flows`, "Skipping"). The
classic pcap framer (:class:`sniparse.pcap.PcapFramer`) asks :func:`scan_pcap` to walk the
records of its buffer from an offset: every record whose direction key is in ``decided``
and whose TCP flags carry no SYN, FIN or RST is counted and stepped over; the scan stops
at the first record that needs Python and returns where it stopped -- with that record
already built when it is one to decode, or without it when the framer must look at it
itself (a corrupt or incomplete record header, a record to warn about). The pcapng framer
does the same with :func:`scan_pcapng_py`'s contract (enhanced packet blocks).

No Record, no Segment, no data slice is made for a skipped packet; only its direction key
(12 or 36 bytes, needed for the set lookup). Two implementations share one contract:

* ``sniparse._speedups.scan_pcap`` / ``scan_pcapng`` (C, optional; built by ``setup.py``
  when a compiler and the Python headers are there) -- about 0.2 µs of CPU a skipped
  record of a 200 MB bulk capture, most of it the memory access to each record's header;
* :func:`scan_pcap_py` here (and the pcapng framer's own loop) -- pure Python, about
  1.5 µs a skipped record.

``sniparse._speedups.scan_pcap_batch`` and ``scan_pcapng_batch`` (:data:`scan_pcap_batch`,
:data:`scan_pcapng_batch`, C only) are the scans for a whole batch: it skips the same records, and hands over up to a given number
of the others per call, already decoded to Segments where its decoder takes them; the
pipeline (:mod:`sniparse.analyze`, "Batches") says why that is exact.

:data:`scan_pcap` is the C one when it imported and the environment variable
``SNIPARSE_PURE`` is not set to a non-empty value other than ``0``; else the Python one.
``tests/test_fastpath.py`` checks that both, and the general per-record loop, give the same
handshakes, issues and statistics on every fixture and corpus capture.

What a skipped packet still changes, and how it is kept exact:

* capture statistics (frames, bytes, frames cut by the snaplen, frames per link type, TCP
  segments, ``bulk_skipped``): counted in :class:`Skipper` and added by the pipeline;
* the idle timer of its flow: the largest skipped timestamp per key is written to
  ``Skipper.pending``, which is the flow table's ``pending_ts``; the table applies it
  itself where it reads idle times (an idle sweep, a flow's close). ``max`` does not depend
  on order, so the table ends in exactly the state per-packet ``FlowTable.skip`` calls
  would give;
* the idle sweep itself: the per-record loop runs it after every TCP segment whose time
  reaches the next sweep time; the scan stops after such a skipped record so that the
  sweep runs at the same packet (``Skipper.on_expire``).

Which frames qualify is exactly :func:`sniparse.decode.fast_key`'s rule (it is
:func:`key_at` over the whole frame): Ethernet with up to two 802.1Q / 802.1ad tags,
LINUX_SLL2, LINUX_SLL, raw IP (101, 228, 229), carrying IPv4 without options and not
fragmented, or IPv6 with TCP right after the fixed header, with a whole TCP header.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from typing import Any, Final, cast

from ._compiled import speedups

__all__ = [
    "FAST_LINKTYPES",
    "IMPLEMENTATION",
    "STOP_EXAMINED",
    "STOP_EXPIRE",
    "STOP_FULL",
    "STOP_OTHER",
    "STOP_RECORD",
    "Skipper",
    "key_at",
    "scan_pcap",
    "scan_pcap_batch",
    "scan_pcap_py",
    "scan_pcapng",
    "scan_pcapng_batch",
    "scan_pcapng_py",
]

#: Link types :func:`key_at` (and so the skipping scan) understands.
FAST_LINKTYPES = frozenset({1, 101, 113, 228, 229, 276})

_ETH_IPV4: Final = 0x0800
_ETH_IPV6: Final = 0x86DD
_PROTO_TCP: Final = 6
_SYN_FIN_RST: Final = 0x07


def _ip_at(buf: Any, off: int, end: int) -> tuple[bytes, int] | None:
    """Plain IPv4 (IHL 5, not a fragment) or IPv6 (TCP right after the fixed header) at
    ``buf[off:end]`` carrying a TCP header that is whole in the buffer: (key, flags)."""
    if off + 40 > end:
        return None
    b0 = buf[off]
    if b0 == 0x45:
        if buf[off + 9] != _PROTO_TCP or (buf[off + 6] & 0x3F) or buf[off + 7]:
            return None
        tot = (buf[off + 2] << 8) | buf[off + 3]
        t = off + 20
        doff = (buf[t + 12] >> 4) << 2
        if doff < 20 or tot < 20 + doff or t + doff > end:
            return None
        # RFC 791 §3.1: source and destination addresses, then (RFC 9293 §3.1) the ports:
        # 12 contiguous bytes that are the direction key.
        return bytes(buf[off + 12 : off + 24]), buf[t + 13]
    if b0 >> 4 == 6:
        if buf[off + 6] != _PROTO_TCP:
            return None
        plen = (buf[off + 4] << 8) | buf[off + 5]
        t = off + 40
        if t + 20 > end:
            return None
        doff = (buf[t + 12] >> 4) << 2
        if doff < 20 or plen < doff or t + doff > end:
            return None
        return bytes(buf[off + 8 : off + 40]) + bytes(buf[t : t + 4]), buf[t + 13]
    return None


def key_at(linktype: int, buf: Any, p: int, caplen: int) -> tuple[bytes, int] | None:
    """The direction key and TCP flags byte of the frame ``buf[p : p + caplen]``, or None
    when it is not one of the simple cases (see the module notes). Never raises."""
    end = p + caplen
    if linktype == 1:
        if caplen < 14:
            return None
        et = (buf[p + 12] << 8) | buf[p + 13]
        if et == _ETH_IPV4 or et == _ETH_IPV6:
            return _ip_at(buf, p + 14, end)
        # One or two 802.1Q / 802.1ad tags: the key does not include VLAN ids.
        q = 14
        while (et == 0x8100 or et == 0x88A8) and q <= 18 and caplen >= q + 4:
            et = (buf[p + q + 2] << 8) | buf[p + q + 3]
            q += 4
            if et == _ETH_IPV4 or et == _ETH_IPV6:
                return _ip_at(buf, p + q, end)
        return None
    if linktype == 276:
        if caplen < 20:
            return None
        et = (buf[p] << 8) | buf[p + 1]
        # ARPHRD_NETLINK (0x0338) frames are never IP, whatever their protocol says.
        if (et == _ETH_IPV4 or et == _ETH_IPV6) and not (buf[p + 8] == 3 and buf[p + 9] == 0x38):
            return _ip_at(buf, p + 20, end)
        return None
    if linktype == 113:
        if caplen < 16:
            return None
        et = (buf[p + 14] << 8) | buf[p + 15]
        if (et == _ETH_IPV4 or et == _ETH_IPV6) and not (buf[p + 2] == 3 and buf[p + 3] == 0x38):
            return _ip_at(buf, p + 16, end)
        return None
    if linktype == 101 or linktype == 228 or linktype == 229:
        if caplen < 1:
            return None
        v = buf[p] >> 4
        if (linktype == 228 and v != 4) or (linktype == 229 and v != 6):
            return None
        return _ip_at(buf, p, end)
    return None


_HDR = {False: Struct("<IIII").unpack_from, True: Struct(">IIII").unpack_from}
# Ethernet type, then IPv4 version/IHL, total length, flags/fragment offset, protocol, the
# 12 bytes of addresses and ports (the key), TCP data offset and flags (RFC 791 §3.1,
# RFC 9293 §3.1), at their offsets in an untagged Ethernet frame.
_ETH4 = Struct("!12xHBxH2xHxB2x12s8xBB").unpack_from

#: What a scan returns: (offset where it stopped, records skipped, their captured bytes,
#: how many of them the snaplen cut, seconds field of the last one skipped (or -1), its
#: timestamp in ns (or -1), the largest skipped timestamp in ns (or -1), and why it
#: stopped: :data:`STOP_EXAMINED` (the record at the offset was examined and needs
#: Python), :data:`STOP_OTHER` (end of the buffer, a record header the framer must look
#: at, a record past the buffer's end) or :data:`STOP_EXPIRE` (the last record skipped had
#: a timestamp at or past ``stop_ts``: time for the flow table's idle sweep).
#: Classic pcap scans return a ninth element, the record that needs Python (built as the
#: framer builds it) with :data:`STOP_RECORD`, else None; that record is then counted in the
#: bytes, cut and largest-time fields too, and the offset is past it.
ScanResult = tuple[int, int, int, int, int, int, int, int, "tuple[Any, ...] | None"]
ScanFunction = Callable[
    [Any, int, bool, int, int, int, int, bool, "set[bytes]", "dict[bytes, int]", int, int,
     int, "type[tuple[Any, ...]]"],
    ScanResult,
]
STOP_EXAMINED: Final = 0
STOP_OTHER: Final = 1
STOP_EXPIRE: Final = 2
STOP_RECORD: Final = 3
_tuple_new = tuple.__new__

#: What a batch scan returns (``sniparse._speedups.scan_pcap_batch``): (offset where it
#: stopped, records walked, of which skipped, their captured bytes, how many the snaplen
#: cut, seconds field of the last one walked (or -1), the time of the skipped record that
#: ended the batch with :data:`STOP_EXPIRE` (or -1), the largest time walked (or -1), why
#: it stopped (:data:`STOP_OTHER`, :data:`STOP_EXPIRE` or :data:`STOP_FULL`), and the
#: collected records, three list entries each (see :meth:`Skipper` and ``batch``), and how
#: many packets of just-closed connections it dropped (``Skipper.tomb``; counted in records
#: walked, not in skipped).
BatchResult = tuple[int, int, int, int, int, int, int, int, int, "list[Any]", int]
BatchFunction = Callable[
    [Any, int, bool, int, int, int, int, bool, "set[bytes]", "dict[bytes, int]", int, int,
     int, "type[tuple[Any, ...]]", "type[tuple[Any, ...]]", int, "dict[bytes, int] | None",
     "dict[bytes, Any]"],
    BatchResult,
]
#: The pcapng batch scan (``sniparse._speedups.scan_pcapng_batch``): the arguments of
#: :data:`ScanNgFunction`, a list ``seen``, then the first frame number, record type,
#: segment type, most records to collect, tombstones (or None) and live flows (as for
#: :data:`BatchFunction`); the result as :data:`BatchResult` with the
#: last time walked in place of the seconds field. ``counts`` receives every packet walked
#: per interface, ``seen`` the interface ids walked in the order of their first packet.
NgBatchFunction = Callable[
    [Any, int, bool, "list[tuple[int, int, int, int, int, int]]", int, "set[bytes]",
     "dict[bytes, int]", int, "list[int]", "list[int]", int, "type[tuple[Any, ...]]",
     "type[tuple[Any, ...]]", int, "dict[bytes, int] | None", "dict[bytes, Any]"],
    BatchResult,
]
#: A batch ended after a collected record: call the scan again.
STOP_FULL: Final = 3


def scan_pcap_py(
    buf: Any,
    pos: int,
    big_endian: bool,
    rec_hdr: int,
    ts_mult: int,
    limit: int,
    linktype: int,
    check_caplen: bool,
    decided: set[bytes],
    pending: dict[bytes, int],
    stop_ts: int,
    frame: int,
    iface: int,
    record_type: type[tuple[Any, ...]],
) -> ScanResult:
    """Skip classic pcap records of ``buf`` from ``pos`` while they are bulk packets of
    decided flows; see :data:`ScanResult`. ``rec_hdr`` is the record header size (16, or
    24 for the modified format), ``ts_mult`` turns the sub-second field into ns, ``limit``
    is the framer's largest believable captured length; with ``check_caplen`` a record whose
    captured length exceeds its original length stops the scan (the framer warns once).
    ``pending`` receives, per skipped key, the largest timestamp skipped; the scan stops
    after skipping a record whose timestamp is ``stop_ts`` or later. The first record that
    is not skipped comes back built as ``record_type((frame + skipped + 1, ts_ns, linktype,
    data, origlen, iface))`` (:data:`STOP_RECORD`)."""
    n = len(buf)
    unpack = _HDR[big_endian]
    eth = linktype == 1
    k = nbytes = cut = 0
    last_sec = last_ts = max_ts = -1
    while pos + rec_hdr <= n:
        sec, frac, caplen, origlen = unpack(buf, pos)
        p = pos + rec_hdr
        end = p + caplen
        if caplen > limit or end > n or (check_caplen and caplen > origlen):
            return pos, k, nbytes, cut, last_sec, last_ts, max_ts, STOP_OTHER, None
        ts = sec * 1_000_000_000 + frac * ts_mult
        key = None
        if eth and caplen >= 54:
            # The commonest frame, Ethernet + IPv4 (IHL 5) + TCP, in one unpack; anything
            # else (or any doubt) goes through key_at.
            et, vihl, tot, frag, proto, key, doffb, flags = _ETH4(buf, p)
            doff = (doffb >> 4) << 2
            if not (
                et == _ETH_IPV4
                and vihl == 0x45
                and proto == _PROTO_TCP
                and not frag & 0x3FFF
                and doff >= 20
                and tot >= 20 + doff
                and 34 + doff <= caplen
            ):
                key = None
        if key is None:
            kf = key_at(linktype, buf, p, caplen)
            if kf is not None:
                key, flags = kf
        if key is None or flags & _SYN_FIN_RST or key not in decided:
            rec = _tuple_new(
                record_type, (frame + k + 1, ts, linktype, buf[p:end], origlen, iface)
            )
            nbytes += caplen
            if caplen < origlen:
                cut += 1
            return end, k, nbytes, cut, sec, last_ts, max(max_ts, ts), STOP_RECORD, rec
        old = pending.get(key)
        if old is None or ts > old:
            pending[key] = ts
        max_ts = max(max_ts, ts)
        k += 1
        nbytes += caplen
        if caplen < origlen:
            cut += 1
        last_sec = sec
        last_ts = ts
        pos = end
        if ts >= stop_ts:
            return pos, k, nbytes, cut, last_sec, last_ts, max_ts, STOP_EXPIRE, None
    return pos, k, nbytes, cut, last_sec, last_ts, max_ts, STOP_OTHER, None


#: (pos, skipped, bytes, cut, last_ts, max_ts, why) -- :data:`ScanResult` without the
#: seconds field, for pcapng.
ScanNgResult = tuple[int, int, int, int, int, int, int]
ScanNgFunction = Callable[
    [Any, int, bool, "list[tuple[int, int, int, int, int, int]]", int, "set[bytes]",
     "dict[bytes, int]", int, "list[int]"],
    ScanNgResult,
]
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_EPB_HEAD = {False: Struct("<7I").unpack_from, True: Struct(">7I").unpack_from}
_U32 = {False: Struct("<I").unpack_from, True: Struct(">I").unpack_from}


def scan_pcapng_py(
    buf: Any,
    pos: int,
    big_endian: bool,
    table: list[tuple[int, int, int, int, int, int]],
    max_block: int,
    decided: set[bytes],
    pending: dict[bytes, int],
    stop_ts: int,
    counts: list[int],
) -> ScanNgResult:
    """The pcapng counterpart of :func:`scan_pcap_py`: skip Enhanced Packet Blocks
    (RFC-draft pcapng §4.3) from ``pos`` while they are bulk packets of decided flows.
    ``table`` is the framer's interface table of the current section -- (global index,
    link type, snaplen, mul, div, offset in ns) per interface id, the packet's time being
    ``timestamp * mul // div + offset``; ``counts`` (as long as ``table``) receives the
    skipped packets per interface. Stops at a block that is not a sound EPB of a known
    interface or whose time does not fit in 64 bits (:data:`STOP_OTHER`), at a packet that
    needs Python (:data:`STOP_EXAMINED`),
    or after a skipped packet at or past ``stop_ts`` (:data:`STOP_EXPIRE`). The framer
    itself runs this loop inline when the C scan is not there; this function is the
    reference the C one is tested against."""
    n = len(buf)
    epb = _EPB_HEAD[big_endian]
    u32 = _U32[big_endian]
    ntab = len(table)
    k = nbytes = cut = 0
    last_ts = max_ts = -1
    while pos + 28 <= n:
        btype, blen, ifid, tsh, tsl, caplen, origlen = epb(buf, pos)
        end = pos + blen
        if (
            btype != 6
            or ifid >= ntab
            or end > n
            or blen & 3
            or not 32 + caplen <= blen <= max_block
            or u32(buf, end - 4)[0] != blen
        ):
            return pos, k, nbytes, cut, last_ts, max_ts, STOP_OTHER
        _g, lt, _snap, mul, div, off = table[ifid]
        ts = ((tsh << 32) | tsl) * mul // div + off
        if not _INT64_MIN <= ts <= _INT64_MAX:
            # A time beyond 64 bits (a damaged block): the framer's own loop takes it.
            return pos, k, nbytes, cut, last_ts, max_ts, STOP_OTHER
        kf = key_at(lt, buf, pos + 28, caplen)
        if kf is None or kf[1] & _SYN_FIN_RST or kf[0] not in decided:
            return pos, k, nbytes, cut, last_ts, max_ts, STOP_EXAMINED
        key = kf[0]
        old = pending.get(key)
        if old is None or ts > old:
            pending[key] = ts
        max_ts = max(max_ts, ts)
        k += 1
        counts[ifid] += 1
        nbytes += caplen
        if caplen < origlen:
            cut += 1
        last_ts = ts
        pos = end
        if ts >= stop_ts:
            return pos, k, nbytes, cut, last_ts, max_ts, STOP_EXPIRE
    return pos, k, nbytes, cut, last_ts, max_ts, STOP_OTHER


def _pick() -> tuple[ScanFunction, ScanNgFunction | None, str]:
    scan = speedups("scan_pcap")
    if scan is None:
        return scan_pcap_py, None, "python"
    return cast(ScanFunction, scan), cast("ScanNgFunction | None", speedups("scan_pcapng")), "c"


scan_pcap: ScanFunction
#: The C batch scan of classic pcap (:data:`BatchFunction`), or None.
scan_pcap_batch: BatchFunction | None = cast("BatchFunction | None", speedups("scan_pcap_batch"))
#: The C batch scan of pcapng (:data:`NgBatchFunction`), or None.
scan_pcapng_batch: NgBatchFunction | None = cast(
    "NgBatchFunction | None", speedups("scan_pcapng_batch")
)
#: The C pcapng scan, or None (the framer then skips in its own Python loop).
scan_pcapng: ScanNgFunction | None
#: ``"c"`` or ``"python"``: which :data:`scan_pcap` is in use.
IMPLEMENTATION: str
scan_pcap, scan_pcapng, IMPLEMENTATION = _pick()


class Skipper:
    """What the pipeline shares with the framer's skipping scan: the flow table's
    ``decided`` set (the very object, read live), the ``pending`` idle-timer updates, the
    scan function, the counts of the framer's records (``frames``, ``bytes``, ``cut`` by the
    snaplen, per ``linktypes``, the latest time ``max_ts``; of these ``skipped`` were
    skipped, each a TCP segment), and the idle sweep: when a skipped record's timestamp reaches ``next_expire`` the framer calls
    ``on_expire(ts)`` -- the sweep the per-record loop runs after every TCP segment.

    ``scan_batch`` (the C :data:`BatchFunction`, or None) makes the classic pcap framer hand
    over many records per call (:meth:`sniparse.pcap.PcapFramer.batches`; ``scan_ng_batch``
    the same for pcapng, :meth:`sniparse.pcapng.PcapngFramer.batches`), each decoded
    to a ``segment_type`` where the C decoder can, at most ``batch`` of them per list; the
    consumer lowers ``batch`` to 1 to turn batching off (see "Batches" in the module
    notes of :mod:`sniparse.analyze`).

    ``tomb`` (the flow table's tombstones, ``FlowTable._tomb``, or None: off) and ``flows``
    (its live flows by direction key) let a batch scan drop the packets ``FlowTable.feed``
    would only count as ``after_close`` (a packet of a just-closed connection); it counts
    them in ``after_close``, which the consumer adds to the table's statistics and to the
    TCP segments. A close trims the tombstones to ``max_tombs``: :meth:`tombstones` gives
    the scan ``tomb`` only while no close of the next batch can do that."""

    __slots__ = (
        "after_close",
        "batch",
        "bytes",
        "cut",
        "decided",
        "flows",
        "frames",
        "linktypes",
        "max_tombs",
        "max_ts",
        "next_expire",
        "on_expire",
        "pending",
        "scan",
        "scan_batch",
        "scan_ng",
        "scan_ng_batch",
        "segment_type",
        "skipped",
        "tomb",
    )

    def __init__(
        self,
        decided: set[bytes],
        scan: ScanFunction | None = None,
        on_expire: Callable[[int], None] | None = None,
        pending: dict[bytes, int] | None = None,
        scan_ng: ScanNgFunction | None | str = "default",
        scan_batch: BatchFunction | None = None,
        segment_type: type[tuple[Any, ...]] = tuple,
        scan_ng_batch: NgBatchFunction | None = None,
    ) -> None:
        self.decided = decided
        self.scan_ng: ScanNgFunction | None = (
            scan_pcapng if isinstance(scan_ng, str) else scan_ng
        )
        self.pending: dict[bytes, int] = {} if pending is None else pending
        self.scan: ScanFunction = scan if scan is not None else scan_pcap
        self.on_expire: Callable[[int], None] = on_expire or (lambda ts: None)
        self.next_expire = 1 << 62
        self.skipped = 0
        self.frames = 0
        self.bytes = 0
        self.cut = 0
        self.max_ts = -1
        self.linktypes: dict[int, int] = {}
        self.scan_batch = scan_batch
        self.scan_ng_batch = scan_ng_batch
        self.segment_type = segment_type
        self.batch = 1
        self.tomb: dict[bytes, int] | None = None
        self.flows: dict[bytes, Any] = {}
        self.max_tombs = 0
        self.after_close = 0

    def tombstones(self) -> dict[bytes, int] | None:
        """``tomb`` for the next batch scan, or None when a close in it could trim the
        tombstones (each of up to ``batch`` records may close a flow: two keys)."""
        tomb = self.tomb
        if tomb is None or len(tomb) + 2 * self.batch > self.max_tombs:
            return None
        return tomb
