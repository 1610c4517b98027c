"""The report: per-client and per-server views of the handshakes, and the verdicts.

Everything here is a pure function of a sequence of :class:`~sniparse.flows.Handshake`
records, the :class:`~sniparse.errors.Issue` list and the :class:`CaptureStats` counters, so
a report can be rebuilt from any filtered subset of handshakes (the CLI's ``--client`` /
``--server`` filters do exactly that).

:class:`ReportBuilder` computes every view incrementally, one handshake at a time, and can do
so without keeping the handshakes (``keep_handshakes=False``): memory then grows with the
number of distinct clients and server endpoints (their counters), plus 16 bytes per handshake
for exact medians, never with the handshakes themselves. The CLI builds its text report that
way while the capture streams past.

The verdict rules (SPEC "What it must report"):

* An endpoint whose attempts *without* SNI (``absent`` / ``empty``) are *rejected* -- a server
  RST, or an alert 112 unrecognized_name / 40 handshake_failure (RFC 8446 §6.2, RFC 6066 §3) --
  while attempts *with* SNI get a ServerHello: the server requires SNI (``sni_required``).
* Rejected without SNI, and no SNI traffic to compare: likely, unproven
  (``sni_required_likely``).
* Rejected with and without SNI: not an SNI problem (``all_rejected``).
* Served without SNI: the endpoint already handles non-SNI clients (``non_sni_served``).
* Only hellos the capture could not read whole: the capture cannot answer (``unknown_only``).

``unknown`` hellos are never counted as "without SNI": a hello cut by the snaplen says
nothing about the client, and calling it SNI-less is the most harmful wrong answer possible.

pandas and matplotlib are imported inside the methods that need them, never at module level.
"""

from __future__ import annotations

import io
import ipaddress
import json
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from heapq import heapify, heappop, heappush, heappushpop
from itertools import chain
from typing import Any, Final, cast

from ._compiled import mypyc_attr, speedups
from .errors import Issue
from .flows import Handshake
from .tls import ALERT_DESCRIPTIONS

__all__ = [
    "ALERT_NAMES",
    "HANDSHAKE_COLUMNS",
    "KNOWN_SOURCES",
    "OUTCOMES",
    "SNI_STATUSES",
    "UNKNOWN_REASONS",
    "CaptureStats",
    "ClientSummary",
    "Report",
    "ReportBuilder",
    "ServerSummary",
    "Verdict",
    "handshake_to_dict",
    "known_source",
]

#: Every ``sni_status`` value, in display order.
SNI_STATUSES: tuple[str, ...] = ("present", "absent", "empty", "unknown", "malformed")
#: Every ``outcome`` value, in display order.
OUTCOMES: tuple[str, ...] = (
    "server_hello",
    "alert",
    "server_reset",
    "server_close",
    "client_reset",
    "no_response",
)
#: Every ``unknown_reason`` value, with what it means for the answer.
UNKNOWN_REASONS: dict[str, str] = {
    "truncated": "packets cut by the capture's snaplen; capture with -s 0",
    "gap": "a segment of the hello missing from the capture, packet loss at the capture point",
    "capture_end": "the capture ended before the hello was complete",
    "midstream": "the capture started after the connection did, the hello's start is missing",
}

#: TLS alert descriptions (RFC 8446 §6, RFC 6066 §3) that mean "no certificate for you".
_SNI_ALERTS = frozenset({112, 40})

#: Alert description names for the text report; unknown codes print as numbers.
ALERT_NAMES = ALERT_DESCRIPTIONS  # one table, the TLS module's (RFC 8446 §6)

#: Address ranges of well-known clients that connect without SNI (health checkers and
#: platform probes). Sources: Google Cloud load-balancing health-check docs, Azure's
#: documented platform address 168.63.129.16.
KNOWN_SOURCES: tuple[tuple[str, str], ...] = (
    ("35.191.0.0/16", "Google Cloud load-balancer health check"),
    ("130.211.0.0/22", "Google Cloud load-balancer health check"),
    ("209.85.152.0/22", "Google Cloud legacy network load-balancer health check"),
    ("209.85.204.0/22", "Google Cloud legacy network load-balancer health check"),
    ("168.63.129.16/32", "Azure load-balancer health probe"),
)
_KNOWN_NETS = tuple((ipaddress.ip_network(n), n, name) for n, name in KNOWN_SOURCES)

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "ok": 3}

_FIX_GENERAL = (
    "Give the endpoint a default for clients without SNI: a default certificate / default "
    "filter chain (Envoy/Istio: a filter chain without server_names; nginx: a default_server "
    "without ssl_reject_handshake; HAProxy: a default certificate, no strict-sni). "
    "Apigee Hybrid: add an ApigeeRoute with hostnames ['*'] and enableNonSniClient: true, and "
    "list it in the virtual host's additionalGateways. Or make the clients send SNI "
    "(connect by host name, or set the TLS server name explicitly)."
)


def _first_octets() -> frozenset[str] | None:
    """The first-octet texts ("35.", ...) every address in a known range starts with; None
    when a range does not fix its first octet (then every address is parsed)."""
    out = set()
    for net, _, _ in _KNOWN_NETS:
        if net.version != 4 or net.prefixlen < 8:
            return None
        out.add(str(net.network_address).split(".")[0] + ".")
    return frozenset(out)


# An address text outside these can be in no known range (ipaddress accepts only plain
# dotted decimal for IPv4, and an IPv6 address is never in an IPv4 range): no parsing.
_KNOWN_FIRST_OCTETS: Final = _first_octets()


def known_source(ip: str) -> str | None:
    """The name of a well-known non-SNI client range containing ``ip``, e.g.
    ``known_source("35.191.7.9") == "Google Cloud load-balancer health check"``; None otherwise
    (also for text that is not an address)."""
    octets = _KNOWN_FIRST_OCTETS
    if octets is not None and ip[: ip.find(".") + 1] not in octets:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for net, _, name in _KNOWN_NETS:
        if addr.version == net.version and addr in net:
            return name
    return None


def _known_range(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for net, text, _ in _KNOWN_NETS:
        if addr.version == net.version and addr in net:
            return text
    return None


# ---------------------------------------------------------------------------------------------
# Capture statistics


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class CaptureStats:
    """Counters about the capture as a whole, filled in by the pipeline.

    ``linktypes`` maps a link-type name to its frame count; ``decode`` holds decoder counters
    (``not_ip``, ``udp``, ``ip_fragment``...); ``flows`` counts TCP flows by kind (``tls``,
    ``rejected_syn``, ``syn_only``, ``not_tls``, ``midstream``...). ``truncated_frames`` counts
    frames whose captured length is below their original length (a snaplen cut).
    """

    files: tuple[str, ...] = ()
    frames: int = 0
    bytes: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    linktypes: dict[str, int] = field(default_factory=dict)
    tcp_segments: int = 0
    truncated_frames: int = 0
    decode: dict[str, int] = field(default_factory=dict)
    flows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps also as ISO 8601 text)."""
        return {
            "files": list(self.files),
            "frames": self.frames,
            "bytes": self.bytes,
            "first_ts_ns": self.first_ts_ns,
            "last_ts_ns": self.last_ts_ns,
            "first_ts": _iso(self.first_ts_ns),
            "last_ts": _iso(self.last_ts_ns),
            "linktypes": dict(self.linktypes),
            "tcp_segments": self.tcp_segments,
            "truncated_frames": self.truncated_frames,
            "decode": dict(self.decode),
            "flows": dict(self.flows),
        }


class _SecondText:
    """The ISO 8601 text (up to the decimal point) of the last whole second :func:`_iso`
    formatted (``sec`` is None before the first)."""

    __slots__ = ("sec", "text")

    def __init__(self) -> None:
        self.sec: int | None = None
        self.text = ""


def _iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    sec = ts_ns // 1_000_000_000
    cache = _ISO_CACHE
    # Handshakes come in time order, so one cached second saves most datetime work.
    if sec != cache.sec:
        try:
            dt = datetime.fromtimestamp(sec, tz=timezone.utc)
        except (ValueError, OverflowError, OSError):
            # A corrupt or hostile timestamp beyond year 9999: keep the integer, skip the text.
            return None
        cache.sec = sec
        cache.text = dt.strftime("%Y-%m-%dT%H:%M:%S.")
    # Six digits of microseconds, zero-padded: the digits after the leading 1 of 1000000+us.
    us = (ts_ns - sec * 1_000_000_000) // 1000
    return cache.text + str(1_000_000 + us)[1:] + "Z"


_ISO_CACHE = _SecondText()


# ---------------------------------------------------------------------------------------------
# Handshake rows

#: Handshake fields that become columns, in order (``client_hello`` is left out: it is the
#: parsed object, not a value). ``ts`` (ISO 8601 text) follows ``ts_ns``.
HANDSHAKE_COLUMNS: tuple[str, ...] = tuple(
    ["ts_ns", "ts"] + [f.name for f in fields(Handshake) if f.name not in ("ts_ns", "client_hello")]
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        # Raw wire bytes travel as hex so that JSON and CSV stay lossless and ASCII.
        return value.hex()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


_REST_COLUMNS = HANDSHAKE_COLUMNS[2:]
# One reusable C-accelerated encoder: json.dumps(..., ensure_ascii=False) builds a new one
# per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def handshake_to_dict(h: Handshake) -> dict[str, Any]:
    """One handshake as a JSON-ready dict keyed by :data:`HANDSHAKE_COLUMNS` (tuples become
    lists, ``sni_raw`` becomes hex text)."""
    # Hot for large reports: read the instance dict once instead of 30 getattr calls, and
    # convert only the few tuple / bytes values.
    src = h.__dict__
    # ``ts`` is derived here rather than read from Handshake.ts, which cannot represent
    # timestamps past year 9999 (corrupt captures have them).
    out: dict[str, Any] = {"ts_ns": h.ts_ns, "ts": _iso(h.ts_ns)}
    for name in _REST_COLUMNS:
        v = src[name]
        t = type(v)
        if t is tuple:
            v = list(v) if all(type(x) is not bytes for x in v) else [_jsonable(x) for x in v]
        elif t is bytes:
            v = v.hex()
        out[name] = v
    return out


# ---------------------------------------------------------------------------------------------
# ndjson / csv rows (the CLI's streamed formats)
#
# One row per handshake, written straight from the record's instance dict for the value types
# a Handshake holds (None, bool, int, finite float, str, bytes, tuples of str / int / bytes):
# compiled, this is several times faster than building handshake_to_dict() and handing it to
# the JSON encoder or csv.writer. Anything else (a NaN, a str subclass, a quote or a carriage
# return in a CSV field...) sends the whole row through the general path, which defines the
# text: tests/test_ndjson_rows.py checks both paths agree on every fixture and on odd values.
# The common case of the ndjson row is also written in C (_C_NDJSON_ROW below);
# tests/test_rows_c.py checks it against the Python function.

# What the encoder uses for strings (ensure_ascii=False).
_json_str: Final = json.encoder.encode_basestring
_JSON_HEAD: Final = '{"ts_ns": '
_JSON_TS: Final = ', "ts": '
#: ``, "name": `` before each column after ``ts``, and that prefix with the constant values.
_JSON_KEYS: Final[tuple[str, ...]] = tuple(
    f", {json.encoder.encode_basestring(name)}: " for name in _REST_COLUMNS
)
_JSON_NULL: Final = tuple(k + "null" for k in _JSON_KEYS)
_JSON_TRUE: Final = tuple(k + "true" for k in _JSON_KEYS)
_JSON_FALSE: Final = tuple(k + "false" for k in _JSON_KEYS)
_JSON_EMPTY: Final = tuple(k + "[]" for k in _JSON_KEYS)


def _json_scalar(v: object) -> str | None:
    """JSON text of None, a bool, an int or a finite float as the encoder writes it; None
    for any other value (the caller then uses the encoder)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if type(v) is int:
        return str(v)
    if type(v) is float and _isfinite(v):
        return str(v)
    return None


_isfinite: Final = math.isfinite

# The ``, "name": value`` text of recent str, bytes and str-tuple values, one table per column.
# The same values come back row after row (statuses, outcomes, server names, the fingerprint
# texts of a few client stacks -- ja3_string and ja4_r are hundreds of characters): a lookup
# is far cheaper than escaping and joining again, and one piece per column makes the row's
# join shorter. A table stops growing when full rather than being emptied: a column whose
# values never repeat (client addresses on a busy link) then costs a failed lookup a row, not
# an insertion, and memory stays bounded whatever the capture holds (texts longer than
# _COLUMN_TEXT_MAX are not kept either).
_COLUMN_CACHE_SIZE: Final = 1024
_COLUMN_TEXT_MAX: Final = 1024
_JSON_COLUMN_TEXT: Final[list[dict[object, str]]] = [{} for _ in _REST_COLUMNS]
_TEXT_CACHE_SIZE: Final = 4096
_CSV_TEXT: dict[str, str] = {}


def _json_column_text(i: int, v: object) -> str:
    """``, "name": `` and the JSON text of column ``i``'s value ``v`` -- a str, bytes (as hex
    text) or a tuple of str, exact types only -- from the column's table when seen."""
    table = _JSON_COLUMN_TEXT[i]
    text = table.get(v)
    if text is not None:
        return text
    if isinstance(v, str):
        text = _JSON_KEYS[i] + _json_str(v)
    elif isinstance(v, bytes):
        # Hex digits need no escaping.
        text = _JSON_KEYS[i] + '"' + v.hex() + '"'
    else:
        items = cast("tuple[str, ...]", v)
        text = _JSON_KEYS[i] + "[" + ", ".join([_json_str(x) for x in items]) + "]"
    if len(table) < _COLUMN_CACHE_SIZE and len(text) <= _COLUMN_TEXT_MAX:
        table[v] = text
    return text


def _json_list(v: tuple[object, ...]) -> str | None:
    """The JSON list of a tuple of str, bytes (hex text), None, bool, int or finite float;
    None for anything else."""
    texts: list[str] = []
    for x in v:
        if type(x) is str:
            texts.append(_json_str(x))
        elif type(x) is bytes:
            texts.append(_json_str(x.hex()))
        else:
            sx = _json_scalar(x)
            if sx is None:
                return None
            texts.append(sx)
    return "[" + ", ".join(texts) + "]"


def _all_str(v: tuple[object, ...]) -> bool:
    for x in v:
        if type(x) is not str:
            return False
    return True


class _RowTime:
    """The row head's text for the last whole second seen: ``{"ts_ns": `` and the seconds'
    digits, and ``, "ts": "`` and the ISO text up to the decimal point (``sec`` is -1 before
    the first)."""

    __slots__ = ("sec", "ts", "ts_ns")

    def __init__(self) -> None:
        self.sec = -1
        self.ts_ns = ""
        self.ts = ""


_ROW_TIME = _RowTime()
_NS: Final = 1_000_000_000

#: ``ndjson_row(src, kit)``: the common case of :func:`_ndjson_fast` in C (``sniparse._speedups``,
#: when built): the line when it is all ASCII, else None and the code below decides. It
#: leaves every text that needs escaping to :func:`_json_column_text`. Measured under
#: callgrind on the handshake benchmark: 9,500 instructions a row instead of 24,100.
_C_NDJSON_ROW = cast(
    "Callable[[dict[str, Any], tuple[object, ...]], str | None] | None", speedups("ndjson_row")
)
_NDJSON_KIT: Final[tuple[object, ...]] = (_REST_COLUMNS, _JSON_KEYS, _json_column_text, _iso)


def _ndjson_fast(src: dict[str, Any]) -> str | None:
    """The ndjson line of a handshake's instance dict, or None when a value needs the
    encoder.

    The head comes from the second's cached texts: for ``ts_ns`` of one second or more, its
    digits are the second's digits then the nine of the nanoseconds, and the ISO text's six
    fraction digits are the first six of those nine."""
    c = _C_NDJSON_ROW
    if c is not None:
        line = c(src, _NDJSON_KIT)
        if line is not None:
            return line
    ts_ns: object = src["ts_ns"]
    if type(ts_ns) is not int:
        return None
    parts: list[str]
    sec = ts_ns // _NS
    head = _ROW_TIME
    if sec != head.sec and sec >= 1:
        ts = _iso(ts_ns)
        if ts is not None:
            head.sec = sec
            head.ts_ns = _JSON_HEAD + str(sec)
            head.ts = _JSON_TS + '"' + ts[:-7]
    # sec >= 1 again: head.sec is -1 until a second is cached, and so is the second of a
    # ts_ns just before the epoch.
    if sec == head.sec and sec >= 1:
        ns = str(_NS + ts_ns - sec * _NS)
        parts = [head.ts_ns, ns[1:], head.ts, ns[1:7], 'Z"']
    else:
        ts = _iso(ts_ns)
        # The ISO text is digits and punctuation: nothing to escape.
        parts = [_JSON_HEAD, str(ts_ns), _JSON_TS, "null" if ts is None else f'"{ts}"']
    names = _REST_COLUMNS
    for i in range(len(names)):
        v: object = src[names[i]]
        if type(v) is str:
            parts.append(_json_column_text(i, v))
        elif v is None:
            parts.append(_JSON_NULL[i])
        elif v is True:
            parts.append(_JSON_TRUE[i])
        elif v is False:
            parts.append(_JSON_FALSE[i])
        elif type(v) is int:
            parts.append(_JSON_KEYS[i])
            parts.append(str(v))
        elif isinstance(v, tuple) and type(v) is tuple:
            if not v:
                parts.append(_JSON_EMPTY[i])
            elif _all_str(v):
                parts.append(_json_column_text(i, v))
            else:
                text = _json_list(v)
                if text is None:
                    return None
                parts.append(_JSON_KEYS[i])
                parts.append(text)
        elif isinstance(v, bytes) and type(v) is bytes:
            parts.append(_json_column_text(i, v))
        elif isinstance(v, float) and type(v) is float and v - v == 0.0:
            # finite (inf - inf and nan - nan are nan)
            parts.append(_JSON_KEYS[i])
            parts.append(str(v))
        else:
            return None
    parts.append("}\n")
    return "".join(parts)


def _ndjson_row(h: Handshake) -> str:
    """One handshake as one ndjson line: exactly ``_ENCODER.encode(handshake_to_dict(h))``
    and a newline."""
    line = _ndjson_fast(h.__dict__)
    if line is None:
        return _ENCODER.encode(handshake_to_dict(h)) + "\n"
    return line


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ";".join(str(x) for x in v)
    return str(v)


def _csv_line(values: list[str]) -> str:
    import csv  # only for rows the direct writer leaves to it: not an import of every run

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


#: The CSV header line: the column names (field names: nothing csv.writer would quote).
_CSV_HEADER: Final = ",".join(HANDSHAKE_COLUMNS) + "\n"


def _csv_field(text: str) -> str | None:
    """``text`` as csv.writer writes it (QUOTE_MINIMAL, '"' doubled, '\\n' line ends); None
    for a carriage return or a NUL, which Python versions treat differently (the writer then
    decides)."""
    out = _CSV_TEXT.get(text)
    if out is not None:
        return out
    if "\r" in text or "\x00" in text:
        return None
    if '"' in text:
        out = '"' + text.replace('"', '""') + '"'
    elif "," in text or "\n" in text:
        out = '"' + text + '"'
    else:
        out = text
    if len(_CSV_TEXT) >= _TEXT_CACHE_SIZE:
        _CSV_TEXT.clear()
    _CSV_TEXT[text] = out
    return out


def _csv_fast(src: dict[str, Any]) -> str | None:
    """The CSV line of a handshake's instance dict, or None when a value needs csv.writer."""
    ts_ns: object = src["ts_ns"]
    if type(ts_ns) is not int:
        return None
    ts = _iso(ts_ns)
    parts: list[str] = [str(ts_ns), "" if ts is None else ts]
    for name in _REST_COLUMNS:
        v: object = src[name]
        text: str | None
        if type(v) is str:
            text = _csv_field(v)
            if text is None:
                return None
        elif v is None:
            text = ""
        elif v is True:
            text = "true"
        elif v is False:
            text = "false"
        elif type(v) is int:
            text = str(v)
        elif type(v) is tuple:
            texts: list[str] = []
            for x in v:
                if type(x) is str:
                    texts.append(x)
                elif type(x) is int:
                    texts.append(str(x))
                elif type(x) is bytes:
                    texts.append(x.hex())
                else:
                    return None
            text = _csv_field(";".join(texts))
            if text is None:
                return None
        elif type(v) is float:
            text = str(v)
        elif type(v) is bytes:
            text = v.hex()
        else:
            return None
        parts.append(text)
    return ",".join(parts) + "\n"


def _csv_row(h: Handshake) -> str:
    """One handshake as one CSV line, columns as :data:`HANDSHAKE_COLUMNS` (lists joined with
    ';'): exactly what csv.writer writes for ``handshake_to_dict(h)``."""
    line = _csv_fast(h.__dict__)
    if line is None:
        d = handshake_to_dict(h)
        return _csv_line([_csv_value(d[c]) for c in HANDSHAKE_COLUMNS])
    return line


class _Held:
    """A row waiting in the :class:`_RowWriter` window, with its sort key."""

    __slots__ = ("frame", "line", "seq", "ts")

    def __init__(self, ts: int, frame: int, seq: int, line: str) -> None:
        self.ts = ts
        self.frame = frame
        self.seq = seq
        self.line = line


def _before(a: _Held, b: _Held) -> bool:
    """``a`` comes first: earlier (ts_ns, frame), then earlier arrival."""
    if a.ts != b.ts:
        return a.ts < b.ts
    if a.frame != b.frame:
        return a.frame < b.frame
    return a.seq < b.seq


def _sift_down(heap: list[_Held], item: _Held) -> None:
    """Put ``item`` at the root of the min-heap ``heap`` and move it to its place.

    As :mod:`heapq` does, the hole goes down to a leaf along the earlier children, then
    ``item`` moves up from there: the item is a new row or the heap's last, usually later
    than most held rows, so it stops near the bottom in one or two comparisons. Measured
    under callgrind with the CLI's 4096-row window: 1,960 instructions a call instead of
    2,460 when the item went down and stopped at its place."""
    n = len(heap)
    pos = 0
    child = 1
    while child < n:
        right = child + 1
        if right < n and _before(heap[right], heap[child]):
            child = right
        heap[pos] = heap[child]
        pos = child
        child = 2 * pos + 1
    while pos > 0:
        parent = (pos - 1) >> 1
        above = heap[parent]
        if not _before(item, above):
            break
        heap[pos] = above
        pos = parent
    heap[pos] = item


class _RowWriter:
    """Streams ndjson or CSV rows of handshakes to ``write`` in (ts_ns, frame) order, through
    a window of at most ``window`` held rows (ties keep their arrival order, as the stable
    sort of :func:`sniparse.analyze.analyze` does), in pieces of about ``chunk`` characters.

    A row whose flow closed more than ``window`` rows late is written late rather than held
    without bound: memory stays flat however long the capture. The window is a binary heap
    over native integers; a record whose ``ts_ns`` or ``frame`` is not an int (never one from
    a capture) turns it into a :mod:`heapq` of tuples, which orders the same way.
    """

    def __init__(self, fmt: str, write: Callable[[str], None], window: int,
                 chunk: int = 1 << 16) -> None:
        if fmt not in ("ndjson", "csv"):
            raise ValueError(f"row format {fmt!r}: use ndjson or csv")
        self.csv = fmt == "csv"
        self.write = write
        self.window = max(window, 0)
        self.chunk = chunk
        self.heap: list[_Held] = []
        # (ts_ns, frame, arrival, row) once a key is not an int; None until then
        self.generic: list[tuple[Any, Any, int, str]] | None = None
        self.seq = 0
        self.parts: list[str] = []
        self.size = 0
        self.found = False

    def _out(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Hand the text written so far to ``write`` (rows held in the window stay)."""
        if self.parts:
            text = "".join(self.parts)
            self.parts = []
            self.size = 0
            self.write(text)

    def header(self) -> None:
        """Write the CSV header line (nothing for ndjson)."""
        if self.csv:
            self._out(_CSV_HEADER)

    def push(self, h: Handshake) -> None:
        """One handshake's row into the window (the oldest row out when it is full)."""
        src = h.__dict__
        if not self.found and src["sni_status"] in ("absent", "empty"):
            self.found = True
        line = _csv_fast(src) if self.csv else _ndjson_fast(src)
        if line is None:
            line = _csv_row(h) if self.csv else _ndjson_row(h)
        self.seq += 1
        ts: object = src["ts_ns"]
        frame: object = src["frame"]
        if self.generic is None and type(ts) is int and type(frame) is int:
            self._hold(_Held(ts, frame, self.seq, line))
        else:
            self._hold_generic((ts, frame, self.seq, line))

    def _hold(self, item: _Held) -> None:
        heap = self.heap
        n = len(heap)
        if n < self.window:
            # Append and move up to its place.
            heap.append(item)
            pos = n
            while pos > 0:
                parent = (pos - 1) >> 1
                if not _before(item, heap[parent]):
                    break
                heap[pos] = heap[parent]
                pos = parent
            heap[pos] = item
        elif n and _before(heap[0], item):
            out = heap[0]
            _sift_down(heap, item)
            self._out(out.line)
        else:
            self._out(item.line)

    def _hold_generic(self, item: tuple[Any, Any, int, str]) -> None:
        generic = self.generic
        if generic is None:
            generic = [(e.ts, e.frame, e.seq, e.line) for e in self.heap]
            heapify(generic)
            self.generic = generic
            self.heap = []
        if len(generic) < self.window:
            heappush(generic, item)
        else:
            self._out(heappushpop(generic, item)[3])

    def push_all(self, handshakes: Iterable[Handshake],
                 keep: Callable[[Handshake], bool] | None = None) -> None:
        """:meth:`push` every handshake for which ``keep`` (when given) is true."""
        for h in handshakes:
            if keep is None or keep(h):
                self.push(h)

    def drain(self) -> None:
        """Write every held row, in order, and flush."""
        heap = self.heap
        while heap:
            first = heap[0]
            last = heap.pop()
            if heap:
                _sift_down(heap, last)
            self._out(first.line)
        generic = self.generic
        if generic is not None:
            while generic:
                self._out(heappop(generic)[3])
        self.flush()

def _median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    import statistics  # the text report's medians only

    return float(statistics.median(vals))


# Above this many values a median is taken with numpy (when installed) straight from the
# arrays' buffers: sorted() would briefly hold a Python float (32 bytes) per value.
_NUMPY_MEDIAN_FROM = 1 << 18


def _median_of(*parts: array[float]) -> float | None:
    """The exact median of the values in ``parts`` (as :func:`statistics.median` computes
    it: the middle value, or the mean of the two middle values)."""
    n = sum(len(p) for p in parts)
    if n == 0:
        return None
    i = n // 2
    if n >= _NUMPY_MEDIAN_FROM:
        try:
            import numpy as np
        except ImportError:
            pass
        else:
            a = np.concatenate([np.frombuffer(p, dtype=np.float64) for p in parts if len(p)])
            if n % 2:
                return float(np.partition(a, i)[i])
            part = np.partition(a, (i - 1, i))
            return (float(part[i - 1]) + float(part[i])) / 2
    vals = sorted(chain.from_iterable(parts))
    if n % 2:
        return float(vals[i])
    return (vals[i - 1] + vals[i]) / 2


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _ranked(counter: Counter[str]) -> tuple[str, ...]:
    return tuple(k for k, _ in counter.most_common())


# ---------------------------------------------------------------------------------------------
# Per-client and per-server summaries
#
# Every aggregate is fed one handshake at a time (ReportBuilder.add), so a report can be built
# from a stream without holding the handshakes. Two things would otherwise depend on the
# order handshakes arrive in: which key wins a tie in a ranking (Counter.most_common keeps
# first-inserted order among equal counts; outcome dicts keep insertion order), and which
# handshake is a group's example. Both follow a *rank* given with each handshake: the order of
# add() calls, or (ReportBuilder(by_time=True)) capture time, so that handshakes streamed in
# the order their flows close give the very report the time-sorted list gives.


class _Tally:
    """A count per key plus the rank each key was first seen at. The dicts are made at the
    first key. They hold only str / int keys and int values, so the garbage collector leaves
    them untracked (a native object per key would double the objects every collection of a
    long capture walks through)."""

    __slots__ = ("counts", "first")

    def __init__(self) -> None:
        self.counts: dict[Any, int] | None = None
        self.first: dict[Any, int] | None = None

    def __len__(self) -> int:
        return len(self.counts) if self.counts is not None else 0

    def add(self, key: Any, rank: int, late: bool) -> None:
        """Count ``key`` once more, remembering the lowest rank it was seen at (only a
        ``late`` handshake can lower it)."""
        counts = self.counts
        first = self.first
        if counts is None or first is None:
            self.counts = {key: 1}
            self.first = {key: rank}
            return
        n = counts.get(key)
        if n is None:
            counts[key] = 1
            first[key] = rank
        else:
            counts[key] = n + 1
            if late and rank < first[key]:
                first[key] = rank

    def counter(self, reorder: bool) -> Counter[Any]:
        """A Counter whose keys are in first-seen (lowest rank) order."""
        counts = self.counts
        first = self.first
        if counts is None or first is None:
            return Counter()
        if reorder and len(counts) > 1:
            return Counter({k: counts[k] for k in sorted(counts, key=first.__getitem__)})
        return Counter(counts)


def _counter(t: _Tally | None, reorder: bool) -> Counter[Any]:
    """``t.counter(reorder)``; empty for a tally never made."""
    return t.counter(reorder) if t is not None else Counter()


def _ranked_tally(t: _Tally | None, reorder: bool) -> tuple[Any, ...]:
    """``_ranked(_counter(t, reorder))`` without building the Counter: most seen first, ties
    in first-seen order (``Counter.most_common`` is a stable sort by count)."""
    if t is None or t.counts is None or t.first is None:
        return ()
    counts = t.counts
    if len(counts) == 1:
        return tuple(counts)
    keys: list[Any] = sorted(counts, key=t.first.__getitem__) if reorder else list(counts)
    keys.sort(key=counts.__getitem__, reverse=True)
    return tuple(keys)


class _Acc:
    """Accumulates one group of handshakes (one client or one server endpoint).

    Memory: counters grow with the distinct values seen (names, fingerprints, peers), never
    with the number of handshakes -- except ``ms_*``: exact medians need every ``outcome_ms``,
    kept as 8-byte doubles in ``array('d')`` (a list would cost a 24-byte float object plus an
    8-byte pointer each). A handshake's value sits in exactly one of ``ms_without`` /
    ``ms_other``, so each handshake costs 8 bytes in its client's group and 8 in its server's.
    ``examples`` holds text, not handshakes (no parsed ClientHello is kept alive).
    """

    __slots__ = (
        "attempts",
        "examples",
        "first",
        "ja3",
        "ja4",
        "ja4_without",
        "label",
        "last",
        "malformed",
        "ms_other",
        "ms_without",
        "names",
        "outcomes",
        "outcomes_with",
        "outcomes_without",
        "peer_set",
        "peers",
        "peers_without",
        "unknown",
        "unknown_reasons",
        "with_sni",
        "without_sni",
    )

    def __init__(self, examples: bool = False) -> None:
        # examples=True: a server endpoint's group (see add()).
        self.label = ""  # a server endpoint's "ip:port" text
        self.attempts = 0
        self.with_sni = 0
        self.without_sni = 0
        self.unknown = 0
        self.malformed = 0
        self.outcomes = _Tally()
        self.outcomes_with: _Tally | None = None
        self.outcomes_without: _Tally | None = None
        self.names: _Tally | None = None
        self.ja3: _Tally | None = None
        self.ja4: _Tally | None = None
        self.ja4_without: _Tally | None = None
        self.ms_other: array[float] = array("d")
        self.ms_without: array[float] = array("d")
        self.first: int | None = None
        self.last: int | None = None
        # A client's servers are ranked (ClientSummary.servers); a server only counts its
        # clients, so a plain set does (no count or rank per client).
        # (Server-only containers are None in client groups: an empty set costs 216 bytes.)
        self.peers: _Tally | None = None
        self.peer_set: set[str] | None = set() if examples else None
        # Only how many there are and their counts matter here: no rank needed.
        self.peers_without: dict[str, int] | None = {} if examples else None
        self.unknown_reasons: _Tally | None = None
        # lowest-ranked handshake per sni group and outcome, as (rank, example text); only
        # server endpoints need them ("example flow" evidence)
        self.examples: dict[str, dict[str, tuple[int, str | None]]] | None = (
            {} if examples else None
        )

    def add(self, h: Handshake, peer: str, rank: int, late: bool, outcome: str, status: str,
            ms: float | None, sni: str | None, ja3: str | None, ja4: str | None,
            ts: int) -> None:
        """Count ``h`` (its fields already read by the caller) with ``peer``, the other side's
        text."""
        self.attempts += 1
        self.outcomes.add(outcome, rank, late)
        # Only server endpoints (the groups with examples) need outcomes_with, peers_without
        # and unknown_reasons: the verdict rules read them, ClientSummary does not.
        ex = self.examples
        if status == "present":
            self.with_sni += 1
            if ex is not None:
                t = self.outcomes_with
                if t is None:
                    t = self.outcomes_with = _Tally()
                t.add(outcome, rank, late)
            group = "with"
        elif status == "absent" or status == "empty":
            self.without_sni += 1
            t = self.outcomes_without
            if t is None:
                t = self.outcomes_without = _Tally()
            t.add(outcome, rank, late)
            pw = self.peers_without
            if pw is not None:
                pw[peer] = pw.get(peer, 0) + 1
            if ja4:
                t = self.ja4_without
                if t is None:
                    t = self.ja4_without = _Tally()
                t.add(ja4, rank, late)
            if ms is not None:
                self.ms_without.append(ms)
                ms = None
            group = "without"
        elif status == "malformed":
            self.malformed += 1
            group = "malformed"
        else:
            # "unknown" and anything unexpected: never counted as without SNI.
            self.unknown += 1
            if ex is not None:
                t = self.unknown_reasons
                if t is None:
                    t = self.unknown_reasons = _Tally()
                t.add(h.unknown_reason or "unknown", rank, late)
            group = "unknown"
        if ms is not None:
            self.ms_other.append(ms)
        if ex is not None:
            by_outcome = ex.get(group)
            if by_outcome is None:
                by_outcome = ex[group] = {}
            old = by_outcome.get(outcome)
            if old is None or (late and rank < old[0]):
                by_outcome[outcome] = (rank, _example(h))
        if sni:
            t = self.names
            if t is None:
                t = self.names = _Tally()
            t.add(sni, rank, late)
        if ja3:
            t = self.ja3
            if t is None:
                t = self.ja3 = _Tally()
            t.add(ja3, rank, late)
        if ja4:
            t = self.ja4
            if t is None:
                t = self.ja4 = _Tally()
            t.add(ja4, rank, late)
        first = self.first
        if first is None or ts < first:
            self.first = ts
        last = self.last
        if last is None or ts > last:
            self.last = ts
        if self.peer_set is None:
            t = self.peers
            if t is None:
                t = self.peers = _Tally()
            t.add(peer, rank, late)
        else:
            self.peer_set.add(peer)

    def typical_ms(self) -> float | None:
        return _median_of(self.ms_without, self.ms_other)

    def typical_ms_without(self) -> float | None:
        return _median_of(self.ms_without)

    def example(self, group: str, outcome: str) -> str | None:
        by_outcome = self.examples.get(group) if self.examples is not None else None
        e = by_outcome.get(outcome) if by_outcome is not None else None
        return e[1] if e is not None else None

    def first_example(self) -> str | None:
        if not self.examples:
            return None
        return min(
            (e for by_outcome in self.examples.values() for e in by_outcome.values()),
            key=lambda e: e[0],
        )[1]


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class ClientSummary:
    """What one client IP did: attempts by SNI status, outcomes, names and fingerprints.

    ``names`` are the SNI values the client sent when it did send one (most used first);
    ``typical_ms`` is the median ``outcome_ms`` over all its attempts, ``typical_ms_without_sni``
    over its attempts without SNI; ``known_source`` names a well-known non-SNI client range
    (a load-balancer health checker) when the address is in one; ``ja4_without_sni`` the JA4
    fingerprints of its hellos without SNI (most used first), which name the client software
    that needs fixing.
    """

    ip: str
    attempts: int
    with_sni: int
    without_sni: int
    unknown: int
    malformed: int
    outcomes: Counter[str]
    outcomes_without_sni: Counter[str]
    names: tuple[str, ...]
    ja3: tuple[str, ...]
    ja4: tuple[str, ...]
    typical_ms: float | None
    typical_ms_without_sni: float | None
    first_seen_ns: int | None
    last_seen_ns: int | None
    servers: tuple[str, ...]
    known_source: str | None = None
    ja4_without_sni: tuple[str, ...] = ()

    @property
    def first_seen(self) -> str | None:
        """First attempt as ISO 8601 UTC text."""
        return _iso(self.first_seen_ns)

    @property
    def last_seen(self) -> str | None:
        """Last attempt as ISO 8601 UTC text."""
        return _iso(self.last_seen_ns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (Counters become plain dicts, times also as ISO text)."""
        d = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}
        d["outcomes"] = dict(self.outcomes)
        d["outcomes_without_sni"] = dict(self.outcomes_without_sni)
        d["first_seen"] = self.first_seen
        d["last_seen"] = self.last_seen
        return d


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class ServerSummary:
    """What happened at one server endpoint (ip:port), split by the clients' SNI status.

    ``verdict`` is the kind of the endpoint's :class:`Verdict` (None when nothing to say).
    """

    endpoint: str
    ip: str
    port: int
    attempts: int
    with_sni: int
    without_sni: int
    unknown: int
    malformed: int
    outcomes: Counter[str]
    outcomes_with_sni: Counter[str]
    outcomes_without_sni: Counter[str]
    names: tuple[str, ...]
    ja3: tuple[str, ...]
    ja4: tuple[str, ...]
    clients: int
    clients_without_sni: int
    typical_ms: float | None
    typical_ms_without_sni: float | None
    first_seen_ns: int | None
    last_seen_ns: int | None
    verdict: str | None = None

    @property
    def first_seen(self) -> str | None:
        """First attempt as ISO 8601 UTC text."""
        return _iso(self.first_seen_ns)

    @property
    def last_seen(self) -> str | None:
        """Last attempt as ISO 8601 UTC text."""
        return _iso(self.last_seen_ns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (Counters become plain dicts, times also as ISO text)."""
        d = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}
        for k in ("outcomes", "outcomes_with_sni", "outcomes_without_sni"):
            d[k] = dict(getattr(self, k))
        d["first_seen"] = self.first_seen
        d["last_seen"] = self.last_seen
        return d


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class Verdict:
    """One conclusion, in words, with its evidence.

    ``kind``: ``sni_required``, ``sni_required_likely``, ``all_rejected``, ``non_sni_served``,
    ``non_sni_unanswered``, ``unknown_only`` (per endpoint: ``server`` is ``ip:port``);
    ``some_unknown``, ``malformed_hellos``, ``all_sni``, ``no_handshakes`` (overall:
    ``server`` is None). ``severity``: ``error`` (a proven SNI problem), ``warning``
    (likely, or the capture cannot tell), ``info``, ``ok``. ``summary`` is one or two plain
    sentences; ``evidence`` the numbers behind them; ``fix`` what to change, when there is
    something to change; ``example_flow`` a ``client -> server`` example with its frame.
    """

    kind: str
    server: str | None
    severity: str
    summary: str
    evidence: dict[str, Any]
    fix: str | None = None
    example_flow: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 100:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _reaction_text(outcomes: Counter[str], alerts: Counter[int]) -> str:
    parts = []
    for o in OUTCOMES:
        n = outcomes.get(o, 0)
        if not n:
            continue
        if o == "alert" and alerts:
            names = ", ".join(
                f"{ALERT_NAMES.get(a, str(a))} ({a})" for a, _ in alerts.most_common(2)
            )
            parts.append(f"{n} alert {names}")
        else:
            parts.append(f"{n} {o}")
    return ", ".join(parts) if parts else "none"


def _reasons_text(reasons: Counter[str]) -> str:
    return "; ".join(
        f"{n} {r}: {UNKNOWN_REASONS.get(r, 'reason not given')}" for r, n in reasons.most_common()
    )


def _example(h: Handshake | None) -> str | None:
    if h is None:
        return None
    ms = f", {_fmt_ms(h.outcome_ms)}" if h.outcome_ms is not None else ""
    frame = f"frame {h.frame}: " if h.frame else ""
    return (
        f"{frame}{_endpoint(h.client_ip, h.client_port)} -> "
        f"{_endpoint(h.server_ip, h.server_port)} sni_status={h.sni_status} "
        f"outcome={h.outcome}{ms}"
    )


# ---------------------------------------------------------------------------------------------
# The report


def _without_client_hello(h: Handshake) -> Handshake:
    """``h`` without its parsed ``client_hello`` (the record's other fields are unchanged)."""
    if h.client_hello is None:
        return h
    try:
        d = h.__dict__.copy()
    except AttributeError:  # a slotted Handshake: the slower, general way
        return replace(h, client_hello=None)
    # 16x faster than dataclasses.replace (no __init__ over 31 fields): it matters at
    # millions of handshakes.
    d["client_hello"] = None
    out = object.__new__(Handshake)
    object.__setattr__(out, "__dict__", d)
    return out


# Rank layout for by_time: capture time, then frame, then arrival. Exact while frame numbers
# stay below 2**32 and a builder sees fewer than 2**40 handshakes.
_FRAME_SPAN = 1 << 32
_SEQ_SPAN = 1 << 40


class ReportBuilder:
    """Builds a :class:`Report` one handshake at a time, so that a capture of any size can be
    summarised while its handshakes stream past (see :class:`sniparse.analyze.Analysis`)::

        run = Analysis("big.pcap")
        b = ReportBuilder(keep_handshakes=False, by_time=True)
        for h in run:
            b.add(h)
        report = b.build(run.issues.to_list(), run.stats())

    ``keep_handshakes=False``: the report's ``handshakes`` stay empty
    (``report.handshakes_kept`` is False) and memory no longer grows with the number of
    handshakes, apart from 16 bytes per handshake for the exact ``outcome_ms`` medians; its
    clients, servers, verdicts, summary, issues and stats are complete and identical to those
    of a report that kept them. ``keep_client_hello=False``: kept handshakes lose their parsed
    ``client_hello`` (every other field stays; it is the bulk of a handshake's memory).

    ``by_time=False``: ties (equal counts in rankings, which handshake is an endpoint's
    example) go to the handshake added first, and kept handshakes stay in the order added --
    exactly what :class:`Report` does with a list. ``by_time=True``: ties go to the earliest
    handshake in capture time (``ts_ns``, then ``frame``, then the order added) and kept
    handshakes are sorted that way, so feeding handshakes in the order their flows close
    gives the same report as the time-sorted list that :func:`sniparse.analyze` builds.
    """

    def __init__(
        self,
        *,
        keep_handshakes: bool = True,
        keep_client_hello: bool = True,
        by_time: bool = False,
    ) -> None:
        self.keep_handshakes = keep_handshakes
        self.keep_client_hello = keep_client_hello
        self.by_time = by_time
        self._kept: list[Handshake] = []
        self._clients: dict[str, _Acc] = {}
        self._servers: dict[tuple[str, int], _Acc] = {}
        self._alerts_without: dict[tuple[str, int], _Tally] = {}
        self._alerts_with: dict[tuple[str, int], _Tally] = {}
        self._seq = 0
        self._max_rank = -(2**200)
        self._late = False
        self._status: dict[str, int] = {}
        self._outcomes: dict[str, int] = {}
        self._reasons = _Tally()
        self._first_ts: int | None = None
        self._last_ts: int | None = None
        # (rank, example text) of the lowest-ranked unknown and malformed hello
        self._ex_unknown: tuple[int, str | None] | None = None
        self._ex_malformed: tuple[int, str | None] | None = None

    def __len__(self) -> int:
        """Handshakes added so far."""
        return self._seq

    @property
    def without_sni(self) -> int:
        """Handshakes added so far whose client sent no usable SNI (absent or empty)."""
        return self._status.get("absent", 0) + self._status.get("empty", 0)

    def add(self, h: Handshake) -> None:
        """Count one handshake into every view."""
        # Hot (once per handshake of the capture): the fields are read from the instance
        # dict, once each, and handed down typed.
        d = h.__dict__
        ts: int = d["ts_ns"]
        seq = self._seq
        self._seq = seq + 1
        if self.by_time:
            frame: int = d["frame"]
            if not 0 <= frame < _FRAME_SPAN:
                frame = _FRAME_SPAN - 1
            rank = (ts * _FRAME_SPAN + frame) * _SEQ_SPAN + seq
        else:
            rank = seq
        late = rank < self._max_rank
        if late:
            self._late = True
        else:
            self._max_rank = rank
        if self.keep_handshakes:
            self._kept.append(h if self.keep_client_hello else _without_client_hello(h))
        status: str = d["sni_status"]
        outcome: str = d["outcome"]
        counts = self._status
        counts[status] = counts.get(status, 0) + 1
        counts = self._outcomes
        counts[outcome] = counts.get(outcome, 0) + 1
        first = self._first_ts
        if first is None or ts < first:
            self._first_ts = ts
        last = self._last_ts
        if last is None or ts > last:
            self._last_ts = ts
        if status == "unknown":
            self._reasons.add(h.unknown_reason or "unknown", rank, late)
            if self._ex_unknown is None or rank < self._ex_unknown[0]:
                self._ex_unknown = (rank, _example(h))
        elif status == "malformed" and (
            self._ex_malformed is None or rank < self._ex_malformed[0]
        ):
            self._ex_malformed = (rank, _example(h))

        client_ip: str = d["client_ip"]
        server_ip: str = d["server_ip"]
        server_port: int = d["server_port"]
        ms: float | None = d["outcome_ms"]
        sni: str | None = d["sni"]
        ja3: str | None = d["ja3"]
        ja4: str | None = d["ja4"]
        key = (server_ip, server_port)
        c = self._clients.get(client_ip)
        if c is None:
            c = self._clients[client_ip] = _Acc()
        s = self._servers.get(key)
        if s is None:
            s = self._servers[key] = _Acc(examples=True)
            s.label = _endpoint(server_ip, server_port)
        # One shared text per endpoint: every client's tally of it holds the same string.
        c.add(h, s.label, rank, late, outcome, status, ms, sni, ja3, ja4, ts)
        s.add(h, client_ip, rank, late, outcome, status, ms, sni, ja3, ja4, ts)
        if outcome == "alert":
            alert: int | None = d["alert"]
            if alert is None:
                return
            if status == "absent" or status == "empty":
                t = self._alerts_without.get(key)
                if t is None:
                    t = self._alerts_without[key] = _Tally()
                t.add(alert, rank, late)
            elif status == "present":
                t = self._alerts_with.get(key)
                if t is None:
                    t = self._alerts_with[key] = _Tally()
                t.add(alert, rank, late)

    def build(self, issues: Sequence[Issue] = (), stats: CaptureStats | None = None) -> Report:
        """The report over every handshake added, with the reading's issues and counters.
        The builder can go on adding and build again."""
        report = Report.__new__(Report)
        self._fill(report, issues, stats)
        return report

    # -- turning the accumulators into views -------------------------------------------------

    def _fill(self, r: Report, issues: Sequence[Issue], stats: CaptureStats | None) -> None:
        reorder = self._late
        kept = self._kept
        if self.by_time and reorder:
            # Stable: equal (ts_ns, frame) keep the order they were added in.
            kept = sorted(kept, key=lambda h: (h.ts_ns, h.frame))
        r.handshakes = tuple(kept)
        r.handshakes_kept = self.keep_handshakes
        r.issues = tuple(issues)
        r.stats = stats if stats is not None else CaptureStats()
        r._total = self._seq
        r._status = dict(self._status)
        r._outcomes = dict(self._outcomes)
        r._first_ts = self._first_ts
        r._last_ts = self._last_ts
        r._reasons = self._reasons.counter(reorder)
        r._ex_unknown = self._ex_unknown[1] if self._ex_unknown else None
        r._ex_malformed = self._ex_malformed[1] if self._ex_malformed else None

        client_list = [
            ClientSummary(
                ip=ip,
                attempts=a.attempts,
                with_sni=a.with_sni,
                without_sni=a.without_sni,
                unknown=a.unknown,
                malformed=a.malformed,
                outcomes=a.outcomes.counter(reorder),
                outcomes_without_sni=_counter(a.outcomes_without, reorder),
                names=_ranked_tally(a.names, reorder),
                ja3=_ranked_tally(a.ja3, reorder),
                ja4=_ranked_tally(a.ja4, reorder),
                typical_ms=a.typical_ms(),
                typical_ms_without_sni=a.typical_ms_without(),
                first_seen_ns=a.first,
                last_seen_ns=a.last,
                servers=_ranked_tally(a.peers, reorder),
                known_source=known_source(ip),
                ja4_without_sni=_ranked_tally(a.ja4_without, reorder),
            )
            for ip, a in self._clients.items()
        ]
        client_list.sort(key=lambda c: (-c.without_sni, -c.attempts, c.ip))
        r.clients = tuple(client_list)

        verdicts: list[Verdict] = []
        server_list: list[ServerSummary] = []
        empty = _Tally()
        for (ip, port), a in self._servers.items():
            g = _Group(a, reorder)
            v = r._endpoint_verdict(
                _endpoint(ip, port), g,
                self._alerts_without.get((ip, port), empty).counter(reorder),
                self._alerts_with.get((ip, port), empty).counter(reorder),
            )
            if v is not None:
                verdicts.append(v)
            server_list.append(
                ServerSummary(
                    endpoint=_endpoint(ip, port),
                    ip=ip,
                    port=port,
                    attempts=a.attempts,
                    with_sni=a.with_sni,
                    without_sni=a.without_sni,
                    unknown=a.unknown,
                    malformed=a.malformed,
                    outcomes=g.outcomes,
                    outcomes_with_sni=g.outcomes_with,
                    outcomes_without_sni=g.outcomes_without,
                    names=_ranked(g.names),
                    ja3=_ranked_tally(a.ja3, reorder),
                    ja4=_ranked_tally(a.ja4, reorder),
                    clients=len(a.peer_set or ()),
                    clients_without_sni=len(g.peers_without),
                    typical_ms=g.typical_ms,
                    typical_ms_without_sni=g.typical_ms_without,
                    first_seen_ns=a.first,
                    last_seen_ns=a.last,
                    verdict=v.kind if v is not None else None,
                )
            )
        server_list.sort(key=lambda s: (-s.without_sni, -s.attempts, s.endpoint))
        r.servers = tuple(server_list)
        verdicts.extend(r._overall_verdicts())
        verdicts.sort(
            key=lambda v: (
                _SEVERITY_ORDER.get(v.severity, 9),
                v.server is None,
                -int(v.evidence.get("attempts_without_sni", 0) or 0),
                v.server or "",
            )
        )
        r.verdicts = tuple(verdicts)


class _Group:
    """One server endpoint's accumulator, with its counters ordered and medians taken (once)
    for the verdict rules."""

    __slots__ = (
        "acc", "attempts", "malformed", "names", "outcomes", "outcomes_with",
        "outcomes_without", "peers_without", "typical_ms", "typical_ms_without", "unknown",
        "unknown_reasons", "with_sni", "without_sni",
    )

    def __init__(self, a: _Acc, reorder: bool) -> None:
        self.acc = a
        self.attempts = a.attempts
        self.with_sni = a.with_sni
        self.without_sni = a.without_sni
        self.unknown = a.unknown
        self.malformed = a.malformed
        self.outcomes = a.outcomes.counter(reorder)
        self.outcomes_with = _counter(a.outcomes_with, reorder)
        self.outcomes_without = _counter(a.outcomes_without, reorder)
        self.names = _counter(a.names, reorder)
        self.unknown_reasons = _counter(a.unknown_reasons, reorder)
        self.peers_without = Counter(a.peers_without or {})
        self.typical_ms = a.typical_ms()
        self.typical_ms_without = a.typical_ms_without()


class Report:
    """Everything sniparse found in a capture.

    ``handshakes`` (in capture order), ``clients`` (per client IP, most attempts without SNI
    first), ``servers`` (per server endpoint), ``verdicts`` (most severe first; ``verdict`` is
    the first one), ``issues`` (capture problems with counts), ``stats`` (capture counters).
    Build it with :meth:`Report.build`, or handshake by handshake with
    :class:`ReportBuilder`; views come from :meth:`to_dicts`, :meth:`to_json`,
    :meth:`to_pandas` and :meth:`plot`.

    ``handshakes_kept`` is False for a report built with
    ``ReportBuilder(keep_handshakes=False)``: then ``handshakes`` (and so ``len(report)``,
    iteration, :attr:`without_sni`, the ``handshakes`` view and :meth:`plot`) is empty, while
    ``clients``, ``servers``, ``verdicts``, :meth:`summary`, ``issues`` and ``stats`` are
    complete.
    """

    handshakes: tuple[Handshake, ...]
    handshakes_kept: bool
    issues: tuple[Issue, ...]
    stats: CaptureStats
    clients: tuple[ClientSummary, ...]
    servers: tuple[ServerSummary, ...]
    verdicts: tuple[Verdict, ...]
    _total: int
    _status: dict[str, int]
    _outcomes: dict[str, int]
    _first_ts: int | None
    _last_ts: int | None
    _reasons: Counter[str]
    _ex_unknown: str | None
    _ex_malformed: str | None

    def __init__(
        self,
        handshakes: Iterable[Handshake] = (),
        issues: Sequence[Issue] = (),
        stats: CaptureStats | None = None,
    ) -> None:
        b = ReportBuilder()
        for h in handshakes:
            b.add(h)
        b._fill(self, issues, stats)

    @classmethod
    def build(
        cls,
        handshakes: Iterable[Handshake],
        issues: Sequence[Issue] = (),
        stats: CaptureStats | None = None,
    ) -> Report:
        """Build a report from handshakes, the issues found while reading, and the counters."""
        return cls(handshakes, issues, stats)

    def filtered(self, keep: Any) -> Report:
        """A new report over the handshakes for which ``keep(handshake)`` is true (same issues
        and stats; clients, servers and verdicts recomputed). Needs the handshakes: raises
        ValueError on a report built without them."""
        if not self.handshakes_kept:
            raise ValueError("this report was built without its handshakes "
                             "(keep_handshakes=False): filter while building instead")
        return Report(
            (h for h in self.handshakes if keep(h)), self.issues, self.stats
        )

    # -- views ---------------------------------------------------------------------------

    def _endpoint_verdict(
        self, ep: str, a: _Group, alerts_without: Counter[int], alerts_with: Counter[int]
    ) -> Verdict | None:
        if a.attempts and a.unknown == a.attempts:
            reasons = dict(a.unknown_reasons)
            why = _reasons_text(a.unknown_reasons)
            return Verdict(
                kind="unknown_only",
                server=ep,
                severity="warning",
                summary=(
                    f"{ep}: the capture cannot tell whether clients send SNI: none of its "
                    f"{_plural(a.attempts, 'ClientHello')} could be read whole ({why})."
                ),
                evidence={"attempts": a.attempts, "unknown": a.unknown, "unknown_reasons": reasons},
                fix="Capture again with a full snaplen (tcpdump -s 0), from before the "
                "connections start, at a point that sees every packet.",
                example_flow=a.acc.first_example(),
            )
        if not a.without_sni:
            return None

        rejected_without = a.outcomes_without.get("server_reset", 0) + sum(
            n for code, n in alerts_without.items() if code in _SNI_ALERTS
        )
        served_without = a.outcomes_without.get("server_hello", 0)
        served_with = a.outcomes_with.get("server_hello", 0)
        rejected_with = a.outcomes_with.get("server_reset", 0) + sum(
            n for code, n in alerts_with.items() if code in _SNI_ALERTS
        )
        clients_without = sorted(a.peers_without, key=lambda p: (-a.peers_without[p], p))
        known = {ip: known_source(ip) for ip in clients_without if known_source(ip)}
        evidence: dict[str, Any] = {
            "attempts": a.attempts,
            "attempts_with_sni": a.with_sni,
            "attempts_without_sni": a.without_sni,
            "attempts_unknown": a.unknown,
            "outcomes_with_sni": dict(a.outcomes_with),
            "outcomes_without_sni": dict(a.outcomes_without),
            "alerts_without_sni": {str(k): v for k, v in alerts_without.items()},
            "rejected_without_sni": rejected_without,
            "served_without_sni": served_without,
            "served_with_sni": served_with,
            "clients_without_sni": clients_without[:20],
            "clients_without_sni_count": len(clients_without),
            "typical_ms_without_sni": a.typical_ms_without,
            "typical_ms": a.typical_ms,
            "names_with_sni": _ranked(a.names)[:10],
            "known_sources": known,
        }
        reaction = _reaction_text(a.outcomes_without, alerts_without)
        who = _plural(len(clients_without), "client")
        if known:
            names = " / ".join(sorted({str(n) for n in known.values()}))
            ranges = ", ".join(sorted({str(_known_range(ip)) for ip in known}))
            which = "one is a" if len(known) == 1 else f"{len(known)} are"
            who += f" ({which} {names} address in {ranges})"
        ms = _fmt_ms(a.typical_ms_without)
        unknown_note = (
            f" {_plural(a.unknown, 'more hello')} could not be read whole "
            f"and {'is' if a.unknown == 1 else 'are'} not counted."
            if a.unknown
            else ""
        )

        def ex(group: str, *outs: str) -> str | None:
            for o in outs:
                text = a.acc.example(group, o)
                if text is not None:
                    return text
            return None

        # Most attempts without SNI refused, most answered attempts with SNI served: proven.
        # Comparing majorities (not mere presence) keeps one stray ServerHello or RST from
        # turning a flaky endpoint into an SNI verdict.
        mostly_refused = rejected_without > served_without
        if mostly_refused and served_with > rejected_with:
            partial = (
                f" {served_without} attempt(s) without SNI did get a ServerHello (another "
                f"replica or listener configured differently?)."
                if served_without
                else ""
            )
            return Verdict(
                kind="sni_required",
                server=ep,
                severity="error",
                summary=(
                    f"{ep} requires SNI: {rejected_without} of {a.without_sni} attempts "
                    f"without SNI from {who} were refused ({reaction}; typically within {ms} "
                    f"of the ClientHello), while {served_with} of {a.with_sni} attempts with "
                    f"SNI got a ServerHello.{partial}{unknown_note}"
                ),
                evidence=evidence,
                fix=_FIX_GENERAL,
                example_flow=ex("without", "server_reset", "alert"),
            )
        if mostly_refused and not rejected_with:
            compare = (
                "The capture holds no attempt with SNI to this endpoint to compare with"
                if not a.with_sni
                else f"None of the {a.with_sni} attempts with SNI to this endpoint got a "
                "TLS answer to compare with"
            )
            return Verdict(
                kind="sni_required_likely",
                server=ep,
                severity="warning",
                summary=(
                    f"{ep} probably requires SNI: {rejected_without} of {a.without_sni} "
                    f"attempts without SNI from {who} were refused ({reaction}; typically "
                    f"within {ms}). {compare}, so this is likely but unproven.{unknown_note}"
                ),
                evidence=evidence,
                fix=_FIX_GENERAL + " To prove it, capture one connection with SNI too "
                "(e.g. `sniparse probe HOST` or `openssl s_client -servername NAME`).",
                example_flow=ex("without", "server_reset", "alert"),
            )
        if mostly_refused:
            return Verdict(
                kind="all_rejected",
                server=ep,
                severity="warning",
                summary=(
                    f"{ep} refuses {'every' if not served_with else 'most'} handshake"
                    f"{'' if not served_with else 's'}, with or without SNI ({rejected_with} of "
                    f"{a.with_sni} with SNI and {rejected_without} of {a.without_sni} without "
                    f"were refused): this is not an SNI problem (listener down, firewall, "
                    f"wrong port, TLS policy).{unknown_note}"
                ),
                evidence=evidence,
                fix=None,
                example_flow=ex("with", "server_reset", "alert") or ex("without", "server_reset"),
            )
        if served_without:
            refused_note = (
                f" {rejected_without} other{'s were' if rejected_without > 1 else ' was'} "
                f"refused ({reaction}): perhaps one replica "
                f"or listener is configured differently."
                if rejected_without
                else ""
            )
            return Verdict(
                kind="non_sni_served",
                server=ep,
                severity="ok",
                summary=(
                    f"{ep} already serves clients without SNI: {served_without} of "
                    f"{a.without_sni} attempts without SNI from {who} got a ServerHello "
                    f"(typically within {ms}).{refused_note}{unknown_note}"
                ),
                evidence=evidence,
                fix=None,
                example_flow=ex("without", "server_hello"),
            )
        return Verdict(
            kind="non_sni_unanswered",
            server=ep,
            severity="info",
            summary=(
                f"{ep}: {a.without_sni} attempts without SNI from {who} got no TLS answer "
                f"({reaction}); the capture does not show the server refusing them on SNI "
                f"grounds.{unknown_note}"
            ),
            evidence=evidence,
            fix=None,
            example_flow=ex("without", *OUTCOMES),
        )

    def _overall_verdicts(self) -> list[Verdict]:
        out: list[Verdict] = []
        total = self._total
        counts = self._status
        if total == 0:
            flows = {k: v for k, v in self.stats.flows.items() if v}
            flow_text = (
                " TCP flows seen: " + ", ".join(f"{v} {k}" for k, v in sorted(flows.items())) + "."
                if flows
                else ""
            )
            out.append(
                Verdict(
                    kind="no_handshakes",
                    server=None,
                    severity="warning",
                    summary="No TLS ClientHello found in this capture, so there is nothing to "
                    "say about SNI." + flow_text,
                    evidence={"frames": self.stats.frames, "flows": flows},
                )
            )
            return out
        unknown = counts.get("unknown", 0)
        covered = sum(s.unknown for s in self.servers if s.verdict == "unknown_only")
        if unknown and unknown > covered:
            reasons = self._reasons
            why = _reasons_text(reasons)
            out.append(
                Verdict(
                    kind="some_unknown",
                    server=None,
                    severity="warning" if unknown == total else "info",
                    summary=(
                        f"{unknown} of {total} ClientHellos could not be read whole and are "
                        f"counted as unknown, never as without SNI ({why})."
                    ),
                    evidence={"unknown": unknown, "handshakes": total,
                              "unknown_reasons": dict(reasons)},
                    fix="Capture with a full snaplen (tcpdump -s 0) from before the "
                    "connections start." if unknown == total else None,
                    example_flow=self._ex_unknown,
                )
            )
        malformed = counts.get("malformed", 0)
        if malformed:
            out.append(
                Verdict(
                    kind="malformed_hellos",
                    server=None,
                    severity="info",
                    summary=f"{malformed} of {total} ClientHellos break the TLS format "
                    f"(see the handshakes' detail).",
                    evidence={"malformed": malformed, "handshakes": total},
                    example_flow=self._ex_malformed,
                )
            )
        without = counts.get("absent", 0) + counts.get("empty", 0)
        if without == 0 and counts.get("present", 0):
            out.append(
                Verdict(
                    kind="all_sni",
                    server=None,
                    severity="ok",
                    summary=(
                        f"Every readable ClientHello carried SNI ({counts['present']} of "
                        f"{total}): no client without SNI in this capture."
                    ),
                    evidence={"with_sni": counts["present"], "handshakes": total},
                )
            )
        return out

    # -- convenience --------------------------------------------------------------------

    @property
    def verdict(self) -> Verdict | None:
        """The headline: the most severe verdict, or None for an empty report."""
        return self.verdicts[0] if self.verdicts else None

    @property
    def without_sni(self) -> tuple[Handshake, ...]:
        """The handshakes whose client sent no usable SNI (absent or empty, never unknown);
        empty when the handshakes were not kept (``summary()["without_sni"]`` still counts
        them)."""
        return tuple(h for h in self.handshakes if h.without_sni)

    @property
    def clients_without_sni(self) -> tuple[ClientSummary, ...]:
        """The clients that connected at least once without SNI."""
        return tuple(c for c in self.clients if c.without_sni)

    def summary(self) -> dict[str, Any]:
        """Headline counts: handshakes by SNI status and outcome, clients, servers, time span."""
        counts = self._status
        outcomes = self._outcomes
        first = self._first_ts
        last = self._last_ts
        v = self.verdict
        return {
            "verdict": v.kind if v else None,
            "headline": v.summary if v else None,
            "handshakes": self._total,
            "with_sni": counts.get("present", 0),
            "without_sni": counts.get("absent", 0) + counts.get("empty", 0),
            "unknown": counts.get("unknown", 0),
            "malformed": counts.get("malformed", 0),
            "sni_status": {s: counts.get(s, 0) for s in SNI_STATUSES},
            "outcomes": {o: outcomes.get(o, 0) for o in OUTCOMES},
            "clients": len(self.clients),
            "clients_without_sni": len(self.clients_without_sni),
            "servers": len(self.servers),
            "first_ts": _iso(first),
            "last_ts": _iso(last),
            "issues": sum(i.count for i in self.issues),
        }

    def __iter__(self) -> Iterator[Handshake]:
        return iter(self.handshakes)

    def __len__(self) -> int:
        """Handshakes held (0 when they were not kept; see ``summary()["handshakes"]``)."""
        return len(self.handshakes)

    # -- serialisation -------------------------------------------------------------------

    def to_dicts(self, view: str = "handshakes") -> list[dict[str, Any]]:
        """Rows of one view as JSON-ready dicts: ``"handshakes"`` (Handshake field names),
        ``"clients"``, ``"servers"``, ``"issues"`` or ``"verdicts"``."""
        if view == "handshakes":
            return [handshake_to_dict(h) for h in self.handshakes]
        if view == "clients":
            return [c.to_dict() for c in self.clients]
        if view == "servers":
            return [s.to_dict() for s in self.servers]
        if view == "issues":
            return [
                {"kind": i.kind, "layer": i.layer, "detail": i.detail, "frame": i.frame,
                 "flow": i.flow, "count": i.count}
                for i in self.issues
            ]
        if view == "verdicts":
            return [v.to_dict() for v in self.verdicts]
        raise ValueError(
            f"unknown view {view!r}: use handshakes, clients, servers, issues or verdicts"
        )

    def to_dict(self) -> dict[str, Any]:
        """The whole report as one JSON-ready dict with keys ``verdicts``, ``summary``,
        ``servers``, ``clients``, ``handshakes``, ``issues``, ``stats``."""
        return {
            "verdicts": self.to_dicts("verdicts"),
            "summary": self.summary(),
            "servers": self.to_dicts("servers"),
            "clients": self.to_dicts("clients"),
            "handshakes": self.to_dicts("handshakes"),
            "issues": self.to_dicts("issues"),
            "stats": self.stats.to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The whole report (see :meth:`to_dict`) as JSON text.

        With ``indent``, each row of the handshakes, clients, servers and issues lists still
        sits compact on one line: Python's indenting encoder is several times slower than
        the compact one, and a capture can hold hundreds of thousands of handshakes.
        """
        if indent is None:
            return json.dumps(self.to_dict(), ensure_ascii=False)
        return "".join(self.iter_json(indent))

    def iter_json(self, indent: int = 2, extra: dict[str, Any] | None = None) -> Iterator[str]:
        """:meth:`to_json` text in pieces, one row of a list at a time, so that a writer never
        holds the whole text (nor every row as a dict) at once. ``extra``: more top-level
        keys, written after ``stats``."""
        pad = " " * indent
        row_sep = ",\n" + pad * 2
        views: list[tuple[str, Callable[[], Any]]] = [
            ("verdicts", lambda: self.to_dicts("verdicts")),
            ("summary", self.summary),
            ("servers", lambda: (s.to_dict() for s in self.servers)),
            ("clients", lambda: (c.to_dict() for c in self.clients)),
            ("handshakes", lambda: (handshake_to_dict(h) for h in self.handshakes)),
            ("issues", lambda: self.to_dicts("issues")),
            ("stats", self.stats.to_dict),
        ]
        for key, value in (extra or {}).items():
            views.append((key, _constant(value)))
        lengths = {"servers": len(self.servers), "clients": len(self.clients),
                   "handshakes": len(self.handshakes), "issues": len(self.issues)}
        yield "{\n"
        for i, (key, get) in enumerate(views):
            head = ("" if i == 0 else ",\n") + f"{pad}{json.dumps(key)}: "
            if key in lengths:
                if not lengths[key]:
                    yield head + "[]"
                    continue
                # Rows stay compact, one per line (see to_json).
                yield head + "[\n" + pad * 2
                for j, row in enumerate(get()):
                    yield (row_sep if j else "") + _ENCODER.encode(row)
                yield "\n" + pad + "]"
            else:
                text = json.dumps(get(), indent=indent, ensure_ascii=False).replace(
                    "\n", "\n" + pad
                )
                yield head + text
        yield "\n}"

    def to_pandas(self, view: str = "handshakes") -> Any:
        """One view as a pandas DataFrame (pandas is imported here, not before).

        Handshakes get ``ts`` as ``datetime64[ns, UTC]`` and categoricals for ``sni_status``
        and ``outcome``; clients and servers get ``first_seen`` / ``last_seen`` datetimes.
        """
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        rows = self.to_dicts(view)
        if view == "handshakes":
            cols = list(HANDSHAKE_COLUMNS)
            df = pd.DataFrame(rows, columns=cols)
            # errors="coerce": a corrupt timestamp outside datetime64's range becomes NaT.
            df["ts"] = pd.to_datetime(df["ts_ns"], unit="ns", utc=True, errors="coerce")
            df["sni_status"] = pd.Categorical(df["sni_status"], categories=list(SNI_STATUSES))
            df["outcome"] = pd.Categorical(df["outcome"], categories=list(OUTCOMES))
            df["outcome_ms"] = df["outcome_ms"].astype("float64")
            return df
        df = pd.DataFrame(rows)
        for col in ("first_seen", "last_seen"):
            if col in df.columns and f"{col}_ns" in df.columns:
                df[col] = pd.to_datetime(df[f"{col}_ns"], unit="ns", utc=True, errors="coerce")
        return df

    def plot(self, ax: Any = None) -> Any:
        """A timeline of handshakes: one panel per SNI group (with / without / unknown), time
        on x, ``outcome_ms`` on a log y axis, one colour per outcome; attempts with no server
        reaction sit on a line at the top. Shows at a glance e.g. "every attempt without SNI
        is reset within 1 ms". Returns the matplotlib Figure (matplotlib imported here).
        ``ax``: draw everything on this one Axes instead of a new figure.
        """
        if not self.handshakes_kept:
            raise ValueError("this report was built without its handshakes "
                             "(keep_handshakes=False): there is nothing to plot")
        import matplotlib.pyplot as plt  # type: ignore[import-untyped,unused-ignore]
        from matplotlib.ticker import FuncFormatter  # type: ignore[import-untyped,unused-ignore]

        groups: list[tuple[str, Callable[[Handshake], bool]]] = [
            ("with SNI", lambda h: h.sni_status == "present"),
            ("without SNI", lambda h: h.without_sni),
            ("unknown / malformed", lambda h: h.sni_status in ("unknown", "malformed")),
        ]
        present = [(n, [h for h in self.handshakes if f(h)]) for n, f in groups]
        present = [(n, hs) for n, hs in present if hs] or [("no handshakes", [])]
        if ax is None:
            fig, axes = plt.subplots(
                len(present), 1, sharex=True, sharey=True, squeeze=False,
                figsize=(9, 2.2 * len(present) + 0.8),
            )
            axs = [a[0] for a in axes]
        else:
            fig = ax.figure
            axs = [ax] * len(present)
        colours = {
            "server_hello": "tab:green", "alert": "tab:orange", "server_reset": "tab:red",
            "server_close": "tab:purple", "client_reset": "tab:brown", "no_response": "tab:gray",
        }
        t0 = min((h.ts_ns for h in self.handshakes), default=0)
        all_ms = [h.outcome_ms for h in self.handshakes if h.outcome_ms]
        top = max(max(all_ms, default=1.0), 1.0) * 3  # where "no reaction" points sit
        for axis, (name, hs) in zip(axs, present):
            for outcome in OUTCOMES:
                pts = [h for h in hs if h.outcome == outcome]
                if not pts:
                    continue
                xs = [(h.ts_ns - t0) / 1e9 for h in pts]
                ys = [
                    max(h.outcome_ms, 0.001) if h.outcome_ms is not None else top for h in pts
                ]
                med = _median(h.outcome_ms for h in pts)
                label = f"{name}: {outcome} ({len(pts)}, median {_fmt_ms(med)})"
                axis.scatter(xs, ys, s=14, color=colours[outcome], label=label,
                             marker="x" if outcome == "no_response" else "o")
            axis.set_yscale("log")
            # One shared scale and a 1 ms line make "reset within 1 ms" visible at a glance.
            axis.axhline(1.0, color="0.6", linewidth=0.8, linestyle="--")
            axis.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))
            axis.set_ylabel("outcome ms")
            if ax is None:
                axis.set_title(name, loc="left", fontsize=10)
            axis.legend(fontsize=7, loc="upper right")
        axs[-1].set_xlabel("seconds since first handshake")
        v = self.verdict
        if v is not None and ax is None:
            fig.suptitle(v.summary if len(v.summary) < 110 else v.summary[:107] + "...",
                         fontsize=9)
        fig.tight_layout()
        return fig

    # -- display -------------------------------------------------------------------------

    def __repr__(self) -> str:
        s = self.summary()
        lines = [
            (f"<Report: {_plural(s['handshakes'], 'handshake')} ({s['with_sni']} with SNI, "
             f"{s['without_sni']} without, {s['unknown']} unknown, {s['malformed']} malformed) "
             f"from {_plural(s['clients'], 'client')} to {_plural(s['servers'], 'server')}; "
             f"clients without SNI: {s['clients_without_sni']}; "
             f"{_plural(s['issues'], 'capture issue')}>")
        ]
        v = self.verdict
        if v is not None:
            lines.append(f"verdict ({v.kind}): {v.summary}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        s = self.summary()
        esc = html.escape
        parts = ["<div class='sniparse-report'>"]
        for v in self.verdicts[:3]:
            colour = {"error": "#b00020", "warning": "#a36200", "ok": "#1b7f3b"}.get(
                v.severity, "#333")
            parts.append(
                f"<p style='color:{colour}'><b>{esc(v.kind)}</b>: {esc(v.summary)}</p>"
            )
            if v.fix:
                parts.append(f"<p><i>Fix:</i> {esc(v.fix)}</p>")
        parts.append(
            f"<p>{s['handshakes']} handshakes: {s['with_sni']} with SNI, "
            f"<b>{s['without_sni']} without SNI</b>, {s['unknown']} unknown, "
            f"{s['malformed']} malformed; {_plural(s['clients'], 'client')}, "
            f"{_plural(s['servers'], 'server')}, {_plural(s['issues'], 'capture issue')}.</p>"
        )
        top = self.clients_without_sni[:10]
        if top:
            parts.append(
                "<table><tr><th>client</th><th>without SNI</th><th>attempts</th>"
                "<th>outcomes without SNI</th><th>typical ms</th><th>JA4 without SNI</th>"
                "<th>known as</th></tr>"
            )
            for c in top:
                outs = ", ".join(f"{k} {n}" for k, n in c.outcomes_without_sni.most_common())
                parts.append(
                    f"<tr><td>{esc(c.ip)}</td><td>{c.without_sni}</td><td>{c.attempts}</td>"
                    f"<td>{esc(outs)}</td><td>{esc(_fmt_ms(c.typical_ms_without_sni))}</td>"
                    f"<td>{esc(c.ja4_without_sni[0] if c.ja4_without_sni else '')}</td>"
                    f"<td>{esc(c.known_source or '')}</td></tr>"
                )
            parts.append("</table>")
        parts.append("</div>")
        return "".join(parts)
