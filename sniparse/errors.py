"""Errors and the Issue record.

Four kinds of trouble, never mixed (see the design notes in the README):

* need more   -- a unit is not complete yet. Framers return ``None``; it never leaves
                 the module that frames.
* truncated   -- a unit will never be complete (snaplen cut, a gap, the capture ended).
                 Only the owner of the stream decides it; it becomes ``sni_status =
                 "unknown"`` plus an :class:`Issue`.
* malformed   -- the bytes contradict the format: :class:`MalformedError`, which the
                 pipeline turns into an :class:`Issue`; processing continues.
* unsupported -- valid but not handled (a link type, a protocol): counted once per cause.

Every exception this package raises on purpose derives from :class:`SniparseError`.
Any other exception escaping :func:`sniparse.analyze` is a bug.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "CaptureReadError",
    "DecodeError",
    "Issue",
    "Issues",
    "MalformedError",
    "NotACaptureError",
    "SniparseError",
    "TruncatedError",
]


class SniparseError(Exception):
    """Base class of every error sniparse raises on purpose."""


class NotACaptureError(SniparseError):
    """The input is not a packet capture sniparse can read (unknown format, empty file,
    a directory, a file that cannot be opened). The CLI maps it to exit status 1."""


class CaptureReadError(NotACaptureError):
    """The input could not be read at all (missing file, permission denied, I/O error)."""


class DecodeError(SniparseError):
    """Bytes could not be decoded. ``layer`` names the format (``"tls"``, ``"pcapng"``...),
    ``offset`` is the byte offset inside the unit where reading stopped, ``detail`` says why
    in words a network engineer understands."""

    def __init__(self, layer: str, offset: int, detail: str) -> None:
        self.layer = layer
        self.offset = offset
        self.detail = detail
        super().__init__(f"{layer}: {detail} (at byte {offset})")


class MalformedError(DecodeError):
    """The bytes contradict the format: a length that overruns its container, a field
    with a value the format forbids, bytes left over inside a length-delimited block."""


class TruncatedError(DecodeError):
    """The unit ends before it is complete. Raised by public whole-unit parsers such as
    :func:`sniparse.parse_client_hello`; it is *not* a subclass of MalformedError, because a
    cut hello is an unanswered question, not a broken one."""


@dataclass(frozen=True)
class Issue:
    """One problem found while reading a capture.

    ``kind`` is one of ``"truncated"``, ``"malformed"``, ``"unsupported"``, ``"gap"``,
    ``"limit"``, ``"info"``; ``layer`` names where (``"pcap"``, ``"pcapng"``, ``"link"``,
    ``"ip"``, ``"tcp"``, ``"tls"``, ``"flow"``...); ``frame`` is the 1-based frame number in
    the capture when known; ``flow`` a ``"client -> server"`` text when known; ``detail``
    is a human sentence; ``count`` how many times this same cause was seen.
    """

    kind: str
    layer: str
    detail: str
    frame: int | None = None
    flow: str | None = None
    count: int = 1


class Issues:
    """Collects :class:`Issue` records, counting repeats of the same cause.

    ``key`` groups repeats: the first occurrence keeps its frame and flow as the example,
    later ones only bump the count. Without a key, (kind, layer, detail) is the key. At most
    ``limit`` distinct causes are kept; beyond that they are counted in ``dropped``.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._items: dict[object, list[object]] = {}
        self.limit = limit
        self.dropped = 0

    def add(
        self,
        kind: str,
        layer: str,
        detail: str,
        *,
        frame: int | None = None,
        flow: str | None = None,
        key: object = None,
    ) -> bool:
        """Record one occurrence. Returns True when this cause is new."""
        k = key if key is not None else (kind, layer, detail)
        entry = self._items.get(k)
        if entry is not None:
            entry[5] = int(entry[5]) + 1  # type: ignore[call-overload]
            return False
        if len(self._items) >= self.limit:
            self.dropped += 1
            return False
        self._items[k] = [kind, layer, detail, frame, flow, 1]
        return True

    def seen(self, key: object) -> bool:
        """True when an issue with this key was already recorded."""
        return key in self._items

    def __iter__(self) -> Iterator[Issue]:
        for kind, layer, detail, frame, flow, count in self._items.values():
            yield Issue(kind, layer, detail, frame, flow, count)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._items)

    def total(self) -> int:
        """Occurrences over all causes."""
        return sum(int(e[5]) for e in self._items.values())  # type: ignore[call-overload]

    def to_list(self) -> list[Issue]:
        """The issues as frozen records, in the order first seen."""
        return list(self)
