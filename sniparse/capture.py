"""Capture input: the only module that opens files.  (skeleton: being implemented)"""

from __future__ import annotations

from typing import NamedTuple


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
