"""A bounds-checked reader over bytes.

Parsers of complete units (a ClientHello, a pcapng block) read through a :class:`Cursor`.
Every read checks the remaining length first, so a lying length field raises
:class:`~sniparse.errors.MalformedError` (or :class:`~sniparse.errors.TruncatedError` when
the cursor was told the data may simply be cut short) instead of a silent short slice.

``block(n)`` is the tool for length-prefixed fields: it yields a sub-cursor over exactly
``n`` bytes and, on exit, complains when the inner parser left bytes unread (RFC 8446 §3:
a vector's length covers exactly its elements).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .errors import DecodeError, MalformedError, TruncatedError

__all__ = ["Cursor"]


class Cursor:
    """Reads big-endian integers and byte strings from ``data[start:end]``.

    ``layer`` names the format in error messages. ``truncated_ok``: when True, running off
    the end of the *outermost* data raises :class:`TruncatedError` (the unit was cut short);
    running off the end of an inner ``block`` is always :class:`MalformedError` (the block's
    own length field lied).
    """

    __slots__ = ("data", "pos", "end", "layer", "base", "_outer_end", "_truncated_ok", "what")

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        layer: str,
        start: int = 0,
        end: int | None = None,
        *,
        truncated_ok: bool = False,
        what: str = "",
    ) -> None:
        self.data = data
        self.pos = start
        self.base = start
        self.end = len(data) if end is None else end
        self._outer_end = self.end
        self.layer = layer
        self._truncated_ok = truncated_ok
        self.what = what

    # -- errors -----------------------------------------------------------------------
    def _short(self, need: int, what: str) -> DecodeError:
        label = what or self.what or "field"
        detail = f"{label} needs {need} bytes, only {self.end - self.pos} left"
        if self._truncated_ok and self.end == self._outer_end:
            return TruncatedError(self.layer, self.pos - self.base, detail)
        return MalformedError(self.layer, self.pos - self.base, detail)

    def malformed(self, detail: str) -> MalformedError:
        """An error at the current position, for the caller to raise."""
        return MalformedError(self.layer, self.pos - self.base, detail)

    # -- reads ------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        """Bytes left before the end of this cursor."""
        return self.end - self.pos

    def at_end(self) -> bool:
        """True when every byte has been read."""
        return self.pos >= self.end

    def u8(self, what: str = "") -> int:
        """One unsigned byte."""
        if self.pos + 1 > self.end:
            raise self._short(1, what)
        v = self.data[self.pos]
        self.pos += 1
        return v

    def u16(self, what: str = "") -> int:
        """A big-endian unsigned 16-bit integer."""
        p = self.pos
        if p + 2 > self.end:
            raise self._short(2, what)
        d = self.data
        self.pos = p + 2
        return (d[p] << 8) | d[p + 1]

    def u24(self, what: str = "") -> int:
        """A big-endian unsigned 24-bit integer."""
        p = self.pos
        if p + 3 > self.end:
            raise self._short(3, what)
        d = self.data
        self.pos = p + 3
        return (d[p] << 16) | (d[p + 1] << 8) | d[p + 2]

    def u32(self, what: str = "") -> int:
        """A big-endian unsigned 32-bit integer."""
        p = self.pos
        if p + 4 > self.end:
            raise self._short(4, what)
        self.pos = p + 4
        return int.from_bytes(self.data[p : p + 4], "big")

    def bytes(self, n: int, what: str = "") -> bytes:
        """Exactly ``n`` bytes, copied."""
        p = self.pos
        if n < 0 or p + n > self.end:
            raise self._short(n, what)
        self.pos = p + n
        return bytes(self.data[p : p + n])

    def skip(self, n: int, what: str = "") -> None:
        """Step over ``n`` bytes."""
        if n < 0 or self.pos + n > self.end:
            raise self._short(n, what)
        self.pos += n

    def rest(self) -> bytes:
        """All remaining bytes, copied."""
        out = bytes(self.data[self.pos : self.end])
        self.pos = self.end
        return out

    @contextmanager
    def block(self, n: int, what: str = "") -> Iterator["Cursor"]:
        """A sub-cursor over the next ``n`` bytes; the parent skips them on exit.

        Raises when ``n`` overruns this cursor, and, on normal exit, when the inner parser
        left bytes unread.
        """
        if n < 0 or self.pos + n > self.end:
            raise self._short(n, what)
        inner = Cursor.__new__(Cursor)
        inner.data = self.data
        inner.pos = self.pos
        inner.base = self.base
        inner.end = self.pos + n
        inner._outer_end = self._outer_end
        inner.layer = self.layer
        inner._truncated_ok = False
        inner.what = what
        yield inner
        if inner.pos != inner.end:
            raise MalformedError(
                self.layer,
                inner.pos - self.base,
                f"{what or 'block'} has {inner.end - inner.pos} bytes left over",
            )
        self.pos = inner.end

    def vector(self, len_bytes: int, what: str = "") -> "Cursor":
        """Read a length prefix of ``len_bytes`` (1, 2 or 3) and return a sub-cursor over
        the vector, skipping it in this cursor. Unlike :meth:`block`, leftovers are the
        caller's to check with ``at_end``."""
        if len_bytes == 1:
            n = self.u8(what)
        elif len_bytes == 2:
            n = self.u16(what)
        else:
            n = self.u24(what)
        if self.pos + n > self.end:
            raise self._short(n, what)
        inner = Cursor.__new__(Cursor)
        inner.data = self.data
        inner.pos = self.pos
        inner.base = self.base
        inner.end = self.pos + n
        inner._outer_end = self._outer_end
        inner.layer = self.layer
        inner._truncated_ok = False
        inner.what = what
        self.pos += n
        return inner
