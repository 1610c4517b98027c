"""Capture input: the only module that opens files.

:class:`CaptureReader` turns what a user hands over -- a path, ``"-"`` for standard
input, the capture's bytes, a binary file object, or a list of those -- into one stream
of :class:`Record` tuples in time order.

* Format and compression are recognised by their first bytes, never by the file name
  (real captures named ``.pcap`` are often pcapng and the other way round): classic pcap
  (:mod:`sniparse.pcap`), pcapng (:mod:`sniparse.pcapng`), each possibly inside gzip,
  bzip2, xz or zstd (the last needs the optional ``zstandard`` package).
* Streaming: memory does not grow with the file. Everything is framed in one reused
  buffer of ``chunk_size`` bytes (1 MiB; see :meth:`CaptureReader._buffered`): a plain
  regular file is read into it with ``readinto``, anything else (stdin, file objects,
  decompressed data) is read in chunks of at most that size that are copied in;
  decompressors are asked for at most that much at a time whatever the compression ratio.
  *Decision:* plain files are not memory-mapped by default. Measured on a 2 GB bulk
  capture (1.4M packets, 93 % skipped; CPU seconds, 2 shared CPUs): 4 MiB read-only map
  windows 0.65-0.9 s (user 0.45-0.55, most of it page faults on fresh mappings; system
  0.2-0.45, mapping and unmapping), the reused 1 MiB buffer 0.50-0.55 s (user 0.28, system
  0.25 for the kernel's copy); the same within noise on a 172 MB handshake-heavy one. The
  copy costs less than new page-table entries for every page. ``use_mmap=True`` keeps
  the map windows (``map_window`` bytes, 4 MiB).
  A decompression bomb (output beyond ``max_ratio`` times the compressed size, or beyond
  ``max_decompressed`` bytes) is stopped with a ``limit`` Issue. *Decision:* the default
  ratio depends on the codec, because a cap only catches a bomb when the codec can exceed
  it: gzip 200:1 (deflate cannot pass ~1032:1 -- a 258-byte match costs at least 2 bits,
  RFC 1951 -- so a 1000:1 cap would let the densest gzip bomb through by a hair, while
  real captures compress about 2-20:1), bzip2, xz and zstd 1000:1 (they reach millions
  to one). ``max_ratio`` given explicitly applies to every codec. There is no absolute
  default: a capture of many GB is legitimate, and the ratio already bounds the output by
  the input's size.
* Several sources are one capture: their records are merged by timestamp (a rotated
  ``tcpdump -C``/``-G`` set may be given in any order). Each file is opened only when the
  merge reaches its first timestamp, so a rotated set of a thousand files holds one or
  two of them open at a time. Ties keep the order of the files' first timestamps.
* Input that is not a capture at all (missing file, directory, empty file, unknown
  format) raises :class:`~sniparse.errors.NotACaptureError` -- or its subclass
  :class:`~sniparse.errors.CaptureReadError` for I/O failures -- with a one-line message
  naming the file, when the reader is created. Everything else found while reading
  (truncated or corrupt records, a broken compressed stream) becomes an Issue; nothing is
  skipped silently.

Interfaces: every pcap file header and every pcapng Interface Description Block becomes
an :class:`Interface` with a capture-wide index (``Record.iface``). Across *different*
files, interfaces that look the same (link type, snaplen, name, FCS length) share one
index, so the files of a rotated set do not multiply the interface table.
"""

from __future__ import annotations

import bz2
import heapq
import io
import lzma
import mmap
import os
import stat
import sys
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple, Union, cast

from ._fastpath import Skipper
from .errors import CaptureReadError, Issues, NotACaptureError
from .pcap import RESYNC_LOOKBACK, PcapFramer, PcapHeader, is_pcap_magic
from .pcapng import PcapngFramer, PcapngInterface, is_pcapng_magic

__all__ = ["CaptureReader", "Interface", "Record", "SourceLike", "sniff_format"]


class Record(NamedTuple):
    """One captured frame.

    ``frame``: 1-based frame number over the whole (merged) capture; ``ts_ns``: integer
    nanoseconds since the Unix epoch; ``linktype``: the interface's LINKTYPE_* number;
    ``data``: the captured bytes (``caplen == len(data)``); ``origlen``: the frame's length
    on the wire; ``iface``: a capture-wide interface index (see ``CaptureReader.interfaces``).
    """

    frame: int
    ts_ns: int
    linktype: int
    data: bytes
    origlen: int
    iface: int


@dataclass(frozen=True)
class Interface:
    """One capture interface. ``index`` is what ``Record.iface`` refers to; ``snaplen``
    is 0 when unlimited; ``name`` is pcapng's ``if_name`` (None for classic pcap);
    ``source`` names the file it was first declared in; ``fcs_len`` is the number of
    Frame Check Sequence bytes that end each frame when the file says so; ``section`` and
    ``local_id`` locate it in that file (pcapng section, id within the section: what
    Wireshark shows as the frame's interface id)."""

    index: int
    linktype: int
    snaplen: int
    name: str | None
    source: str
    fcs_len: int | None = None
    section: int = 0
    local_id: int = 0


SourceLike = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

CHUNK = 1 << 20
#: Default decompression ratio cap per codec (see the module notes: deflate tops out near
#: 1032:1, so gzip needs a lower cap to catch a bomb at all).
DEFAULT_MAX_RATIO: dict[str, int] = {"gzip": 200, "bzip2": 1000, "xz": 1000, "zstd": 1000}
_SNIFF = 64

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"


def sniff_format(head: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"``, ``"gzip"``, ``"bzip2"``, ``"xz"``, ``"zstd"`` or None,
    from the first bytes of a file (at least 12 for a sure answer)."""
    if is_pcap_magic(head):
        return "pcap"
    if is_pcapng_magic(head):
        return "pcapng"
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_BZIP2) and len(head) >= 4 and head[3:4] in b"123456789":
        return "bzip2"
    if head.startswith(_XZ):
        return "xz"
    if head.startswith(_ZSTD):
        return "zstd"
    return None


def _guess(head: bytes) -> str:
    """A short hint about what a non-capture file looks like."""
    if head.startswith(b"snoop\0\0\0"):
        return "a Solaris snoop capture; convert it first: editcap -F pcap in.snoop out.pcap"
    if head.startswith(b"GMBU"):
        return "a Microsoft Network Monitor capture; convert it first with editcap -F pcap"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive; unpack it first"
    stripped = head.lstrip()
    # Only text gets a text label: binary data may start with '[' or '<' too.
    text = bool(head) and all(32 <= b < 127 or b in (9, 10, 13) or b >= 0x80
                              for b in head[:64])
    if text and stripped[:1] in (b"{", b"["):
        return "JSON text, not a capture"
    if text and stripped[:1] == b"<":
        return "HTML/XML text, not a capture"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64]):
        return "text, not a capture"
    return "not a pcap or pcapng capture (starts with " + head[:8].hex(" ") + ")"


# -- raw streams --------------------------------------------------------------------------


class _Bomb(Exception):
    """Decompressed output went past its cap (internal; becomes a ``limit`` Issue)."""


class _Prefixed(io.RawIOBase):
    """A read-only stream: ``prefix`` first, then ``raw``. Counts the raw bytes through
    ``count`` and turns I/O errors of ``raw`` into :class:`CaptureReadError`."""

    def __init__(self, prefix: bytes, raw: Any, name: str, count: Callable[[int], None]) -> None:
        super().__init__()
        self._prefix = prefix
        self._raw = raw
        self._name = name
        self._count = count
        self.raw_read = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        if self._prefix:
            out = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return out
        try:
            data = self._raw.read(n)
        except OSError as e:
            raise CaptureReadError(f"{self._name}: read failed: {e.strerror or e}") from e
        if data is None:
            data = b""
        elif isinstance(data, str):
            raise NotACaptureError(f"{self._name}: opened in text mode; give a binary stream")
        data = bytes(data)
        self.raw_read += len(data)
        self._count(len(data))
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Capped(io.RawIOBase):
    """Counts decompressed output and raises :class:`_Bomb` beyond ``cap(out)``."""

    def __init__(self, inner: Any, over: Callable[[int], bool]) -> None:
        super().__init__()
        self._inner = inner
        self._over = over
        self.out = 0
        self._tripped = False

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self._tripped:
            raise _Bomb(self.out)
        data = self._inner.read(n if n is not None and n >= 0 else CHUNK)
        self.out += len(data)
        # The chunk that crosses the cap is still delivered; the next read stops.
        self._tripped = self._over(self.out)
        return bytes(data)


class _Decompressing(io.RawIOBase):
    """gzip, bzip2 or xz data from ``raw``, decoded on demand.

    At most ``n`` bytes come out of each ``read(n)``, whatever the compression ratio;
    concatenated members / streams (``cat a.gz b.gz``) are one stream, zero padding after
    the last is allowed; and every byte decoded before an error is delivered before the
    error is raised (``EOFError`` when the data stops inside a member, the library's own
    error when the data is corrupt). The stdlib file classes lose the last decoded bytes
    of a cut stream, which is why this exists.
    """

    def __init__(self, kind: str, raw: Any, chunk: int = CHUNK) -> None:
        super().__init__()
        self._kind = kind
        self._raw = raw
        self._chunk = chunk
        self._d: Any = self._new()
        self._carry = b""
        self._done = False

    def _new(self) -> Any:
        if self._kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)  # RFC 1952 framing
        if self._kind == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor()

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n <= 0:
            n = self._chunk
        gz = self._kind == "gzip"
        while not self._done:
            d = self._d
            if d is None:
                # Between members: skip zero padding; another member may follow.
                carry = self._carry.lstrip(b"\0")
                self._carry = b""
                if not carry:
                    more = self._raw.read(self._chunk)
                    if not more:
                        self._done = True
                        return b""
                    self._carry = more
                    continue
                self._d = d = self._new()
                data = carry
            elif gz and d.unconsumed_tail:
                data = d.unconsumed_tail
            elif not gz and not d.needs_input:
                data = b""  # output was held back by max_length
            else:
                data = self._raw.read(self._chunk)
                if not data:
                    self._done = True
                    raise EOFError(f"{self._kind} data ends inside a compressed member")
            out = d.decompress(data, n) if gz else d.decompress(data, max_length=n)
            if d.eof:
                self._carry = d.unused_data
                self._d = None
            if out:
                return bytes(out)
        return b""


def _decompressor(kind: str, raw: _Prefixed, name: str) -> Any:
    if kind in ("gzip", "bzip2", "xz"):
        return _Decompressing(kind, raw)
    try:
        import zstandard
    except ImportError:
        raise NotACaptureError(
            f"{name}: zstd-compressed, and the optional 'zstandard' package is not "
            "installed (pip install 'sniparse[zstd]', or decompress it with unzstd first)"
        ) from None
    return zstandard.ZstdDecompressor().stream_reader(cast(IO[bytes], raw), read_across_frames=True)


def _decompress_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [EOFError, OSError, zlib.error, lzma.LZMAError, ValueError]
    try:
        import zstandard

        errs.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errs)


# -- sources ------------------------------------------------------------------------------


class _Opened(NamedTuple):
    stream: Any  # has read(n) -> bytes; decompressed when needed
    fmt: str  # "pcap" | "pcapng"
    compression: str | None
    close: Callable[[], None]
    mappable: Any = None  # the open regular file, when it may be memory-mapped


class _Source:
    """One input as given, plus what is known about it before reading."""

    def __init__(self, obj: object, index: int) -> None:
        self.obj = obj
        self.index = index
        self.reopenable = True
        self.size: int | None = None
        self.kept: _Opened | None = None  # opened once and kept (stdin, file objects)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            self.kind = "bytes"
            self.name = "<bytes>" if index == 0 else f"<bytes #{index + 1}>"
            self.size = len(obj)
        elif isinstance(obj, str) and obj == "-":
            self.kind = "stdin"
            self.name = "-"
            self.reopenable = False
        elif isinstance(obj, (str, os.PathLike)):
            self.kind = "path"
            self.name = os.fsdecode(obj)
        elif hasattr(obj, "read"):
            self.kind = "file"
            fname = getattr(obj, "name", None)
            self.name = fname if isinstance(fname, str) else "<stream>"
            self.reopenable = False
            try:
                st = os.fstat(obj.fileno())  # type: ignore[attr-defined]
                if stat.S_ISREG(st.st_mode):
                    self.size = st.st_size - obj.tell()  # type: ignore[attr-defined]
            except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
                pass
        else:
            raise NotACaptureError(
                f"cannot read a capture from a {type(obj).__name__} object "
                "(give a path, '-', bytes or a binary file object)"
            )


def _flatten(sources: object) -> list[object]:
    if isinstance(sources, (str, bytes, bytearray, memoryview, os.PathLike)) or hasattr(
        sources, "read"
    ):
        return [sources]
    try:
        items = list(sources)  # type: ignore[call-overload]
    except TypeError:
        return [sources]
    out: list[object] = []
    for it in items:
        if isinstance(it, (list, tuple)):
            out.extend(it)
        else:
            out.append(it)
    return out


class CaptureReader:
    """Reads one capture from one or several sources; iterate it for :class:`Record`\\ s.

    ``sources``: a path (str or PathLike), ``"-"`` for standard input, the capture's
    ``bytes``, a binary file object, or a list of those (merged by timestamp into one
    capture). ``issues`` collects everything that goes wrong inside the capture.
    ``progress`` is called after each chunk read with ``(bytes_read, bytes_total)``.
    ``max_ratio`` / ``max_decompressed`` cap decompressed output (see the module notes;
    ``max_ratio=None`` takes each codec's default from :data:`DEFAULT_MAX_RATIO`).
    ``chunk_size`` is the size of the reused read buffer; ``use_mmap`` / ``map_window``
    read plain files through memory-map windows instead; the records and issues are the
    same either way (a test checks it).
    ``record_type=tuple`` yields plain tuples in :class:`Record`'s field order instead of
    Records: ~60 ns (~12 %) less per record in the framer, for a hot loop that indexes.

    Raises :class:`~sniparse.errors.NotACaptureError` (or
    :class:`~sniparse.errors.CaptureReadError`) when a source is not a readable capture.
    Sources that are streams (stdin, file objects) can be read only once.

    Attributes: ``interfaces`` (list of :class:`Interface`, grows while reading),
    ``files`` (source names), ``bytes_read`` (raw bytes read so far, compressed bytes for
    compressed files), ``bytes_total`` (the sum of the sources' sizes when all are known,
    else 0), ``formats`` (per source ``"pcap"`` / ``"pcapng"``, with ``"+gzip"`` etc.).
    """

    def __init__(
        self,
        sources: object,
        issues: Issues,
        *,
        progress: Callable[[int, int], None] | None = None,
        chunk_size: int = CHUNK,
        max_ratio: int | None = None,
        max_decompressed: int | None = None,
        use_mmap: bool = False,
        map_window: int = 4 << 20,
        record_type: type[tuple] = Record,  # type: ignore[type-arg]
    ) -> None:
        self.issues = issues
        self.record_type = record_type
        self.use_mmap = use_mmap
        self.progress = progress
        self.chunk_size = max(4096, int(chunk_size))
        self.map_window = max(mmap.ALLOCATIONGRANULARITY, int(map_window))
        self.max_ratio = max_ratio
        self.max_decompressed = max_decompressed
        self.interfaces: list[Interface] = []
        #: Set by the pipeline before reading: a single source then skips bulk packets of
        #: decided flows in its framer (see :mod:`sniparse._fastpath`).
        self.skipper: Skipper | None = None
        self._iface_keys: dict[tuple[object, ...], list[int]] = {}
        items = _flatten(sources)
        if not items:
            raise NotACaptureError("no capture file given")
        self._sources = [_Source(obj, i) for i, obj in enumerate(items)]
        self.files: list[str] = [s.name for s in self._sources]
        self.formats: list[str] = []
        self.bytes_read = 0
        sizes: list[int | None] = []
        for src in self._sources:
            opened = self._open(src, count=False)
            self.formats.append(
                opened.fmt + (f"+{opened.compression}" if opened.compression else "")
            )
            if src.reopenable:
                opened.close()
            else:
                src.kept = opened
            sizes.append(src.size)
        self.bytes_total = sum(s for s in sizes if s is not None) if None not in sizes else 0

    # -- opening ------------------------------------------------------------------------
    def _count(self, n: int) -> None:
        self.bytes_read += n

    def _open(self, src: _Source, *, count: bool = True) -> _Opened:
        """Open ``src``, detect compression and format; raise NotACaptureError when it
        is not a capture."""
        if src.kept is not None:
            kept, src.kept = src.kept, None
            return kept
        name = src.name
        close: Callable[[], None] = _nothing
        raw: Any
        mappable: Any = None
        if src.kind == "path":
            path = src.obj
            try:
                st = os.stat(path)  # type: ignore[arg-type]
            except FileNotFoundError:
                raise CaptureReadError(f"{name}: no such file") from None
            except OSError as e:
                raise CaptureReadError(f"{name}: cannot open: {e.strerror or e}") from None
            if stat.S_ISDIR(st.st_mode):
                raise NotACaptureError(f"{name}: is a directory, not a capture file")
            if stat.S_ISREG(st.st_mode):
                src.size = st.st_size
            else:
                # A pipe or device (``sniparse <(zcat x.gz)``): it can be read only once,
                # so the reader keeps it open after sniffing.
                src.reopenable = False
            try:
                f = open(path, "rb", buffering=0)  # type: ignore[call-overload]  # noqa: SIM115
            except OSError as e:
                raise CaptureReadError(f"{name}: cannot open: {e.strerror or e}") from None
            raw = f
            close = f.close
            mappable = f if stat.S_ISREG(st.st_mode) else None
        elif src.kind == "bytes":
            raw = io.BytesIO(bytes(src.obj))  # type: ignore[call-overload]
        elif src.kind == "stdin":
            raw = getattr(sys.stdin, "buffer", None)
            if raw is None:
                raise CaptureReadError("-: standard input is not available")
        else:
            raw = src.obj
        try:
            opened = self._sniff(src, raw, close, count)
        except BaseException:
            close()
            raise
        if mappable is not None and opened.compression is None:
            return opened._replace(mappable=mappable)
        return opened

    def _sniff(self, src: _Source, raw: Any, close: Callable[[], None], count: bool) -> _Opened:
        name = src.name
        counter = self._count if count else (lambda n: None)
        pre = _Prefixed(b"", raw, name, counter)
        head = _read_full(pre, _SNIFF)
        if not head:
            raise NotACaptureError(f"{name}: empty file, not a capture")
        stream: Any = _Prefixed(head, raw, name, counter)
        kind = sniff_format(head)
        if kind is None:
            raise NotACaptureError(f"{name}: {_guess(head)}")
        compression: str | None = None
        if kind not in ("pcap", "pcapng"):
            compression = kind
            dec = _decompressor(kind, stream, name)
            stream = _Capped(dec, self._bomb_check(src, len(head), stream, kind))
            try:
                dhead = _read_full(stream, _SNIFF)
            except _decompress_errors() as e:
                raise NotACaptureError(
                    f"{name}: {kind} data that cannot be decompressed ({e})"
                ) from None
            except _Bomb:
                raise NotACaptureError(
                    f"{name}: {kind} data that expands beyond the limit"
                ) from None
            if not dhead:
                raise NotACaptureError(f"{name}: {kind}-compressed, but empty inside")
            fmt = sniff_format(dhead)
            if fmt not in ("pcap", "pcapng"):
                raise NotACaptureError(
                    f"{name}: {kind}-compressed, but inside it is {_guess(dhead)}"
                )
            stream = _Prefixed(dhead, stream, name, lambda n: None)
        else:
            fmt = kind
        return _Opened(stream, fmt, compression, close)

    def _bomb_check(
        self, src: _Source, head: int, raw: _Prefixed, codec: str
    ) -> Callable[[int], bool]:
        """The cap on decompressed output: ``max_ratio`` (or the codec's default) times the
        compressed size (the file's size when known, else what has been read of it so far;
        at least 64 KiB), and ``max_decompressed`` when set."""
        ratio = self.max_ratio if self.max_ratio is not None else DEFAULT_MAX_RATIO.get(codec, 1000)
        absolute = self.max_decompressed
        size = src.size

        def over(out: int) -> bool:
            if absolute is not None and out > absolute:
                return True
            base = size if size is not None else head + raw.raw_read
            return out > ratio * max(base, 64 * 1024)

        return over

    # -- interfaces ---------------------------------------------------------------------
    def _registrar(
        self, src: _Source
    ) -> tuple[Callable[[PcapHeader], int], Callable[[PcapngInterface], int]]:
        used: set[int] = set()

        def add(
            linktype: int, snaplen: int, name: str | None, fcs: int | None, sect: int, local: int
        ) -> int:
            key = (linktype, snaplen, name, fcs)
            for idx in self._iface_keys.get(key, ()):
                if idx not in used:
                    used.add(idx)
                    return idx
            idx = len(self.interfaces)
            self.interfaces.append(
                Interface(idx, linktype, snaplen, name, src.name, fcs, sect, local)
            )
            self._iface_keys.setdefault(key, []).append(idx)
            used.add(idx)
            return idx

        def pcap(h: PcapHeader) -> int:
            return add(h.linktype, h.snaplen, None, h.fcs_len, 0, 0)

        def pcapng(i: PcapngInterface) -> int:
            return add(i.linktype, i.snaplen, i.name, i.fcs_len, i.section, i.local_id)

        return pcap, pcapng

    # -- reading ------------------------------------------------------------------------
    def _chunks(self, opened: _Opened, name: str, quiet: bool = False) -> Iterator[bytes]:
        """The stream's bytes in chunks; a broken compressed stream ends it with an
        Issue."""
        read = opened.stream.read
        size = self.chunk_size
        progress = None if quiet else self.progress
        errors = _decompress_errors() if opened.compression else ()
        while True:
            try:
                data = read(size)
            except CaptureReadError:
                raise
            except _Bomb as e:
                if not quiet:
                    self.issues.add(
                        "limit",
                        "capture",
                        f"{name}: decompressed data passed {e.args[0]} bytes, beyond the "
                        f"limit for its compressed size; the rest was not read",
                    )
                return
            except errors as e:
                if not quiet:
                    kind = "truncated" if isinstance(e, EOFError) else "malformed"
                    self.issues.add(
                        kind,
                        "capture",
                        f"{name}: the {opened.compression} stream is "
                        + ("cut short" if kind == "truncated" else f"corrupt ({e})")
                        + "; everything before that point was read",
                    )
                return
            if not data:
                return
            if progress is not None:
                progress(self.bytes_read, self.bytes_total)
            yield data

    def _records_of(
        self, src: _Source, *, merged: bool, quiet: bool = False, batched: bool = False
    ) -> Generator[Any, None, None]:
        """Every record of one source, ``frame`` counted within the source; with
        ``batched``, the lists of :meth:`PcapFramer.batches` instead."""
        opened = self._open(src, count=not quiet)
        try:
            issues = Issues() if quiet else self.issues
            reg_pcap, reg_ng = self._registrar(src)
            framer: PcapFramer | PcapngFramer
            if opened.fmt == "pcap":
                framer = PcapFramer(
                    issues,
                    name=src.name if merged else "",
                    register=None if quiet else reg_pcap,
                    frame_in_detail=merged,
                    record_type=self.record_type,
                )
            else:
                framer = PcapngFramer(
                    issues,
                    name=src.name if merged else "",
                    register=None if quiet else reg_ng,
                    frame_in_detail=merged,
                    record_type=self.record_type,
                )
            if not merged and not quiet:
                framer.skipper = self.skipper
            frame_units: Callable[[Any, int, bool], Generator[Any, None, int]]
            if batched:
                frame_units = framer.batches
            else:
                frame_units = framer.records
            if opened.mappable is not None and src.size:
                if self.use_mmap:
                    yield from self._mapped(
                        framer, frame_units, opened.mappable, src.size, quiet
                    )
                else:
                    yield from self._buffered(
                        framer, frame_units, None, opened.mappable, src.size, quiet
                    )
                return
            yield from self._buffered(
                framer, frame_units, self._chunks(opened, src.name, quiet), None, 0, quiet
            )
        finally:
            opened.close()

    def _buffered(
        self,
        framer: PcapFramer | PcapngFramer,
        frame_units: Callable[[Any, int, bool], Generator[Any, None, int]],
        pieces: Iterator[bytes] | None,
        f: Any,
        size: int,
        quiet: bool,
    ) -> Generator[Any, None, None]:
        """Frame a stream (``pieces``, its chunks) or a plain file (``f``, ``size`` bytes,
        read with ``readinto``) through one buffer of ``chunk_size`` bytes, reused: after
        each pass only the unused tail (and the resync look-back before it) moves to the
        front, and the next bytes are read in after it.

        Why: the buffer's pages are faulted in once and stay mapped, where a new memory
        map per window (or a new ``bytes`` per chunk, ``buf[cut:] + chunk``) costs page
        faults, page-table work and unmapping for every megabyte of the capture. The
        buffer is an anonymous ``mmap`` rather than a ``bytearray`` because the framers
        need what a file map gives: slices that are ``bytes`` (the records' own copies),
        ``find`` for the resync scan, and a fixed length -- the buffer is framed only
        when full, except for the last pass, which frames a ``bytes`` copy of the rest
        with ``eof=True``. A unit larger than the buffer doubles it."""
        cap = self.chunk_size
        mm = mmap.mmap(-1, cap)
        view = memoryview(mm)
        fill = 0  # valid bytes in the buffer
        pos = 0  # where the framer resumes, in the buffer
        base = 0  # absolute offset of the buffer's first byte
        ended = False
        carry = b""  # the part of a stream chunk that did not fit yet
        coff = 0
        progress = None if quiet else self.progress
        if pieces is None:
            f.seek(0)
            if not quiet:
                self.bytes_read -= min(size, _SNIFF)  # the sniffed head, counted again
        try:
            while True:
                while fill < cap and not ended:
                    if pieces is None:
                        want = min(cap - fill, size - base - fill)
                        got = f.readinto(view[fill : fill + want]) if want > 0 else 0
                        if not got:
                            ended = True
                            break
                        fill += got
                        if not quiet:
                            self.bytes_read += got
                    else:
                        if coff >= len(carry):
                            nxt = next(pieces, None)
                            if nxt is None:
                                ended = True
                                break
                            carry = nxt
                            coff = 0
                        take = min(cap - fill, len(carry) - coff)
                        view[fill : fill + take] = memoryview(carry)[coff : coff + take]
                        fill += take
                        coff += take
                if pieces is None and progress is not None:
                    progress(self.bytes_read, self.bytes_total)
                framer.offset = base
                if ended:
                    yield from frame_units(mm[:fill], pos, True)
                    return
                newpos = yield from frame_units(mm, pos, False)
                # Keep a few bytes before the unused offset: a pcap resync looks back into
                # the previous record (RESYNC_LOOKBACK) for a header it swallowed.
                cut = max(0, newpos - RESYNC_LOOKBACK)
                if cut == 0:
                    # The unit at ``newpos`` needs more than the buffer holds: double it.
                    bigger = mmap.mmap(-1, 2 * cap)
                    bigger[:fill] = mm[:fill]
                    view.release()
                    mm.close()
                    mm = bigger
                    view = memoryview(mm)
                    cap *= 2
                    pos = newpos
                    continue
                mm.move(0, cut, fill - cut)
                fill -= cut
                base += cut
                pos = newpos - cut
        finally:
            view.release()
            mm.close()

    def _mapped(
        self,
        framer: PcapFramer | PcapngFramer,
        frame_units: Callable[[Any, int, bool], Generator[Any, None, int]],
        f: Any,
        size: int,
        quiet: bool,
    ) -> Generator[Any, None, None]:
        """Frame a regular file through read-only memory maps of ``map_window`` bytes at a
        time: no copy of the file's bytes but the records' own slices, and at most one
        window mapped (resident) at once, whatever the file's size."""
        window = self.map_window
        gran = mmap.ALLOCATIONGRANULARITY
        off = 0
        pos = 0
        done = 0  # absolute offset consumed so far, for bytes_read
        if not quiet:
            self.bytes_read -= min(size, _SNIFF)  # the sniffed head, counted again below
        progress = None if quiet else self.progress
        while True:
            length = min(window, size - off)
            eof = off + length >= size
            try:
                mm = mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ, offset=off)
            except (OSError, ValueError) as e:
                raise CaptureReadError(f"{getattr(f, 'name', '?')}: cannot map: {e}") from e
            try:
                if hasattr(mm, "madvise"):
                    mm.madvise(mmap.MADV_SEQUENTIAL)
                framer.offset = off
                newpos = yield from frame_units(mm, pos, eof)
            finally:
                mm.close()
            absolute = off + newpos
            if not quiet:
                self.bytes_read += absolute - done
            done = absolute
            if progress is not None:
                progress(self.bytes_read, self.bytes_total)
            if eof:
                return
            # The next window starts a little before the unused offset (the pcap resync's
            # look-back, RESYNC_LOOKBACK), on an allocation-granularity boundary.
            new_off = max(off, absolute - RESYNC_LOOKBACK)
            new_off -= new_off % gran
            if new_off == off:
                # The unit at ``pos`` needs more than one window holds: widen it.
                window *= 2
            pos = absolute - new_off
            off = new_off

    def __iter__(self) -> Iterator[Record]:
        self.bytes_read = 0
        if len(self._sources) == 1:
            return cast(Iterator[Record], self._records_of(self._sources[0], merged=False))
        return self._merge()

    def batches(self) -> Iterator[list[Any]]:
        """The records of a single source in the lists of :meth:`PcapFramer.batches` /
        :meth:`PcapngFramer.batches` (the reader's ``skipper`` must have the batch scan
        for the source's format)."""
        self.bytes_read = 0
        if len(self._sources) != 1:
            raise ValueError("batches() reads a single source")
        return cast(
            Iterator[list[Any]],
            self._records_of(self._sources[0], merged=False, batched=True),
        )

    def _peek(self, src: _Source) -> int | None:
        """The first record's timestamp of a reopenable source, read quietly."""
        gen = self._records_of(src, merged=True, quiet=True)
        try:
            first = next(gen, None)
        finally:
            gen.close()
        return None if first is None else int(first[1])

    def _merge(self) -> Iterator[Record]:
        """Records of all sources in timestamp order, renumbered over the capture."""
        firsts: list[tuple[int, int, _Source]] = []  # (first_ts, source index, source)
        started: dict[int, tuple[Record, Iterator[Record]]] = {}
        gen: Iterator[Record]
        for src in self._sources:
            if src.reopenable:
                ts = self._peek(src)
                if ts is None:
                    # No records: read it now, for its interfaces and issues.
                    for _ in self._records_of(src, merged=True):
                        pass
                    continue
            else:
                # A stream can be read only once: start it now and keep its first record.
                gen = self._records_of(src, merged=True)
                first = next(gen, None)
                if first is None:
                    continue
                started[src.index] = (first, gen)
                ts = first[1]
            firsts.append((ts, src.index, src))
        # Ties between files keep the order of their first timestamps, then their own.
        firsts.sort(key=lambda f: (f[0], f[1]))
        heap: list[tuple[int, int, int, Record, Iterator[Record]]] = []
        pending: list[tuple[int, int, _Source]] = []  # reverse order: pop() is the next
        for rank, (ts, idx, src) in enumerate(firsts):
            if idx in started:
                rec, gen = started[idx]
                heap.append((ts, rank, 0, rec, gen))
            else:
                pending.append((ts, rank, src))
        heapq.heapify(heap)
        pending.reverse()
        seq = 1
        frame = 0
        tnew = tuple.__new__
        rtype = self.record_type
        while heap or pending:
            if pending and (not heap or pending[-1][0] <= heap[0][0]):
                # Open a file only when the merge reaches its first timestamp.
                _, rank, src = pending.pop()
                gen = self._records_of(src, merged=True)
                opened = next(gen, None)
                if opened is not None:
                    heapq.heappush(heap, (opened[1], rank, seq, opened, gen))
                    seq += 1
                continue
            _ts, rank, _s, rec, gen = heap[0]
            frame += 1
            yield tnew(rtype, (frame, *rec[1:]))  # type: ignore[misc]
            nxt = next(gen, None)
            if nxt is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (nxt[1], rank, seq, nxt, gen))
                seq += 1


def _nothing() -> None:
    """Closing a source this reader did not open (stdin, a caller's file) does nothing."""


def _read_full(stream: Any, n: int) -> bytes:
    """Up to ``n`` bytes, reading again after short reads (pipes deliver in pieces)."""
    out = b""
    while len(out) < n:
        data = stream.read(n - len(out))
        if not data:
            break
        out += data
    return out
