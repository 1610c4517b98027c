"""Ingress access logs: read them, summarise them, and line them up with a capture.

Envoy, Istio and Apigee Hybrid ingress gateways log one line per downstream connection or
request. When a client connects without SNI and no filter chain matches, Envoy closes the
connection (the client sees a reset) and logs ``filter_chain_not_found`` with response flag
``NR`` and a null requested server name. This module reads those logs as a support engineer
receives them -- ``kubectl logs`` output, possibly with ``--timestamps`` and ``--prefix``
decorations, mixed with the proxy's own diagnostic lines -- and

* :func:`read_ingress_log` turns every access-log line into an :class:`IngressEntry`
  (JSON lines, and Envoy/Istio's default TEXT format), counting the lines it cannot read;
* :func:`summarize` counts entries by details and response flags and lists the clients
  refused with ``filter_chain_not_found``;
* :func:`correlate` joins entries to captured handshakes by client ip:port, nearest in time,
  estimates the clock skew between the ingress and the capture host, and reports what only
  one side saw and where the two disagree.

Field names differ between products (Envoy's ``%DOWNSTREAM_REMOTE_ADDRESS%`` is
``downstream_remote_address`` in Istio's JSON and ``remote_address`` in Apigee's), so each
entry field is looked up in a list of known keys; ``-``, empty and null all mean absent, as in
Envoy's own formatter.

Work is bounded: a line longer than :data:`MAX_LINE` bytes is skipped (and counted) without
being held whole, and at most a few unreadable lines are kept as examples. This module never
prints; results carry ``to_dict()`` and ``render_text()``.
"""

from __future__ import annotations

import functools
import gzip
import ipaddress
import json
import re
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, cast

from .errors import SniparseError
from .flows import Handshake
from .probe import NON_SNI_FIX

__all__ = [
    "MAX_LINE",
    "ClientCount",
    "IngressCorrelation",
    "IngressEntry",
    "IngressLog",
    "IngressLogError",
    "IngressMatch",
    "LogSummary",
    "correlate",
    "parse_line",
    "parse_time",
    "read_ingress_log",
    "split_address",
    "summarize",
]

MAX_LINE = 64 * 1024
_MAX_EXAMPLES = 5
_LIST_LIMIT = 50  # rows per section in render_text()

FILTER_CHAIN_NOT_FOUND = "filter_chain_not_found"

# Keys, first match wins. The direct peer comes before addresses that PROXY protocol or
# X-Forwarded-For may have rewritten, because the capture sees the direct peer.
_CLIENT_KEYS = (
    "downstream_direct_remote_address",
    "remote_address",
    "downstream_remote_address",
    "downstream_peer_address",
    "client_address",
    "client_ip",
)
_TS_KEYS = ("start_time", "timestamp", "time", "@timestamp")
_DETAILS_KEYS = ("status_details", "response_code_details", "connection_termination_details")
_FLAGS_KEYS = ("upstream_response_flags", "response_flags")
_SNI_KEYS = ("sni_host", "requested_server_name", "sni")
_LOCAL_KEYS = ("downstream_local_address",)
_UPSTREAM_KEYS = ("upstream_host", "upstream_address")
_CODE_KEYS = ("response_code", "status")
_ACCESS_KEYS = frozenset(
    _CLIENT_KEYS + _DETAILS_KEYS + _FLAGS_KEYS + _SNI_KEYS + _LOCAL_KEYS + _UPSTREAM_KEYS
)


class IngressLogError(SniparseError):
    """An ingress log could not be opened or read at all (missing file, permission,
    I/O error). Unreadable *lines* are counted, not raised."""


# --------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class IngressEntry:
    """One access-log entry.

    ``ts_ns``: the entry's start time (for a TCP connection Envoy logs when the downstream
    connection started), ns since the epoch, or None. ``client_ip`` / ``client_port``: the
    downstream peer. ``sni``: the requested server name, None when the log shows none.
    ``details``: response code details or connection termination details
    (``filter_chain_not_found``...). ``flags``: Envoy response flags as logged (``NR``,
    ``UF,URX``). ``local_address``: the listener address (``ip:port``) the client reached.
    ``raw_line_no``: 1-based line number inside ``source``.
    """

    ts_ns: int | None
    client_ip: str | None
    client_port: int | None
    sni: str | None
    details: str | None
    flags: str | None
    local_address: str | None
    raw_line_no: int
    upstream_host: str | None = None
    termination_details: str | None = None
    response_code: int | None = None
    source: str | None = None
    pod: str | None = None
    format: str = "json"  # "json" or "text"
    alt_clients: tuple[tuple[str, int], ...] = ()  # other client addresses the line names

    @property
    def no_filter_chain(self) -> bool:
        """True when the ingress found no filter chain for this connection."""
        return any(
            d is not None and FILTER_CHAIN_NOT_FOUND in d
            for d in (self.details, self.termination_details)
        )

    @property
    def client(self) -> str | None:
        """``ip:port`` (``[v6]:port``), or the IP alone when the log has no port."""
        return _fmt_ep(self.client_ip, self.client_port)

    @property
    def ts(self) -> str | None:
        """The start time as ISO 8601 UTC, or None."""
        return _iso(self.ts_ns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with stable keys."""
        return {
            "ts": self.ts,
            "ts_ns": self.ts_ns,
            "client_ip": self.client_ip,
            "client_port": self.client_port,
            "sni": self.sni,
            "details": self.details,
            "termination_details": self.termination_details,
            "flags": self.flags,
            "local_address": self.local_address,
            "upstream_host": self.upstream_host,
            "response_code": self.response_code,
            "filter_chain_not_found": self.no_filter_chain,
            "source": self.source,
            "line": self.raw_line_no,
            "pod": self.pod,
            "format": self.format,
        }


@dataclass(frozen=True)
class IngressLog:
    """Every access-log entry read from one or more sources, and what could not be read.

    ``lines`` counts non-blank lines; ``unparsed`` those that were not access-log entries
    (proxy diagnostics, junk, cut JSON, over-long lines); ``unparsed_examples`` keeps the
    first few as ``(source, line_no, excerpt)``.
    """

    entries: tuple[IngressEntry, ...]
    lines: int
    unparsed: int
    unparsed_examples: tuple[tuple[str, int, str], ...] = ()
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: counts, sources, unreadable-line examples and every entry."""
        return {
            "sources": list(self.sources),
            "lines": self.lines,
            "entries": len(self.entries),
            "unparsed": self.unparsed,
            "unparsed_examples": [
                {"source": s, "line": n, "text": t} for s, n, t in self.unparsed_examples
            ],
            "items": [e.to_dict() for e in self.entries],
        }

    def __iter__(self) -> Iterator[IngressEntry]:
        return iter(self.entries)


# --------------------------------------------------------------------------------------
# small helpers


def _iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    dt = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=ts_ns // 1_000_000_000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ts_ns % 1_000_000_000) // 1000:06d}Z"


def _fmt_ep(ip: str | None, port: int | None) -> str | None:
    if ip is None:
        return None
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _val(v: Any) -> str | None:
    """Envoy writes '-' for an unset value; JSON formats may write null or ''."""
    if v is None or isinstance(v, (dict, list)):
        return None
    s = str(v).strip()
    if s in ("", "-"):
        return None
    return s


@functools.lru_cache(maxsize=65536)
def _canon_ip(s: str) -> str | None:
    # Cached: a log names the same few thousand clients over and over, and ipaddress
    # parsing dominates the per-line cost otherwise.
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # A dual-stack listener logs IPv4 clients as ::ffff:a.b.c.d; the wire shows IPv4.
        return str(ip.ipv4_mapped)
    return str(ip)


def split_address(text: str | None) -> tuple[str | None, int | None]:
    """``"10.1.2.3:51234"``, ``"[::1]:443"``, ``"10.1.2.3"`` or ``"::1"`` to
    ``(ip, port)``; ``(None, None)`` for anything else (pipes, ``envoy://internal``...)."""
    if not text:
        return None, None
    t = text.strip()
    if t.startswith("["):
        close = t.find("]")
        if close < 0:
            return None, None
        ip = _canon_ip(t[1:close])
        rest = t[close + 1 :]
        if ip is None:
            return None, None
        if rest.startswith(":") and _digits(rest[1:]) and int(rest[1:]) < 65536:
            return ip, int(rest[1:])
        return ip, None
    if t.count(":") == 1:
        host, _, port = t.partition(":")
        ip = _canon_ip(host)
        if ip is None or not _digits(port) or int(port) > 65535:
            return None, None
        return ip, int(port)
    return _canon_ip(t), None


_ISO_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9})\d*)?\s*(Z|[+-]\d\d:?\d\d)?$"
)


@functools.lru_cache(maxsize=4096)
def _day_seconds(y: str, mo: str, d: str) -> int | None:
    """Seconds from the epoch to midnight UTC of that day; cached, a log spans few days."""
    try:
        dt = datetime(int(y), int(mo), int(d), tzinfo=timezone.utc)
    except ValueError:
        return None
    return int((dt - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds())


def parse_time(text: Any) -> int | None:
    """An ISO 8601 / RFC 3339 time (up to nanoseconds, ``Z`` or an offset, UTC when none)
    or epoch seconds / ms / µs / ns as a number, to integer ns since the epoch."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        num = str(text)
    else:
        s = _val(text)
        if s is None:
            return None
        m = _ISO_RE.match(s)
        if m:
            y, mo, d, h, mi, sec, frac, tz = m.groups()
            day = _day_seconds(y, mo, d)
            hh, mm, ss = int(h), int(mi), int(sec)
            if day is None or hh > 23 or mm > 59 or ss > 60:  # 60: a leap second
                return None
            ns = (day + hh * 3600 + mm * 60 + ss) * 1_000_000_000
            ns += int(frac.ljust(9, "0")) if frac else 0
            if tz and tz != "Z":
                sign = 1 if tz[0] == "+" else -1
                off = int(tz[1:3]) * 3600 + int(tz[-2:]) * 60
                ns -= sign * off * 1_000_000_000
            return ns
        num = s
    # Decimal, not float: epoch nanoseconds need 19 significant digits.
    if len(num) > 40:
        return None
    try:
        v = Decimal(num)
    except InvalidOperation:
        return None
    if not v.is_finite() or v <= 0 or v > Decimal("1e19"):
        return None
    # Pick the unit by magnitude: any time after 1973 in seconds is > 1e8.
    if v > Decimal("1e17"):
        return int(v)
    if v > Decimal("1e14"):
        return int(v * 1000)
    if v > Decimal("1e11"):
        return int(v * 1_000_000)
    return int(v * 1_000_000_000)


# --------------------------------------------------------------------------------------
# line parsing

# `kubectl logs --prefix`: "[pod/NAME/CONTAINER] "
_POD_RE = re.compile(r"\[(?:pod/)?([^\]\s/]+)/([^\]\s]+)\]\s+")
# `kubectl logs --timestamps`: RFC 3339 with nanoseconds and a space.
_KTS_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d))\s+")
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')


def _first(obj: dict[str, Any], keys: Iterable[str]) -> str | None:
    for k in keys:
        if k in obj:
            v = _val(obj[k])
            if v is not None:
                return v
    return None


def _digits(v: str) -> bool:
    """Only ASCII digits (``str.isdigit`` is also true of e.g. "²", which ``int`` refuses)."""
    return v.isascii() and v.isdigit()


def _int(v: str | None) -> int | None:
    return int(v) if v is not None and _digits(v) and len(v) < 10 else None


def _from_json(
    obj: dict[str, Any], line_no: int, source: str | None, pod: str | None, kts: int | None
) -> IngressEntry | None:
    payload = obj.get("jsonPayload")  # a Cloud Logging export wraps the entry
    if isinstance(payload, dict):
        obj = payload
    if not _ACCESS_KEYS.intersection(obj):
        return None
    ts = None
    for k in _TS_KEYS:
        if k in obj:
            ts = parse_time(obj[k])
            if ts is not None:
                break
    if ts is None:
        ts = kts
    addrs: list[tuple[str, int | None]] = []
    for k in _CLIENT_KEYS:
        ip, port = split_address(_val(obj.get(k)))
        if ip is not None:
            addrs.append((ip, port))
    extra_port = _int(_first(obj, ("client_port", "remote_port")))
    client_ip = client_port = None
    if addrs:
        client_ip, client_port = addrs[0]
        if client_port is None:
            # The first key had only an IP: take the port from another key for that IP.
            client_port = next((p for i, p in addrs if i == client_ip and p is not None),
                               extra_port)
    alt = tuple(dict.fromkeys(
        (i, p) for i, p in addrs if p is not None and (i, p) != (client_ip, client_port)
    ))
    details = _first(obj, _DETAILS_KEYS)
    term = _val(obj.get("connection_termination_details"))
    return IngressEntry(
        ts_ns=ts,
        client_ip=client_ip,
        client_port=client_port,
        sni=_first(obj, _SNI_KEYS),
        details=details,
        flags=_first(obj, _FLAGS_KEYS),
        local_address=_first(obj, _LOCAL_KEYS),
        raw_line_no=line_no,
        upstream_host=_first(obj, _UPSTREAM_KEYS),
        termination_details=term,
        response_code=_int(_first(obj, _CODE_KEYS)),
        source=source,
        pod=pod,
        format="json",
        alt_clients=alt,
    )


def _unquote(tok: str) -> str | None:
    if len(tok) >= 2 and tok[0] == tok[-1] == '"':
        return _val(tok[1:-1])
    return _val(tok)


def _from_text(
    line: str, line_no: int, source: str | None, pod: str | None, kts: int | None
) -> IngressEntry | None:
    """Envoy's default format and Istio's (which appends upstream cluster, upstream local,
    downstream local, downstream remote, requested server name and route name):

    ``[START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS [DETAILS [TERMINATION]] ["FAILURE"]
    RX TX DURATION SVC_TIME "XFF" "UA" "REQ_ID" "AUTHORITY" "UPSTREAM_HOST" [istio fields]``
    """
    if not line.startswith("["):
        return None
    close = line.find("]")
    if close < 0:
        return None
    ts = parse_time(line[1:close])
    if ts is None:
        return None
    toks = _TOKEN_RE.findall(line[close + 1 :])
    if len(toks) < 3 or not toks[0].startswith('"'):
        return None
    code = _int(_val(toks[1]))
    flags = _val(toks[2])
    # Unquoted tokens after the flags and before the next quoted one: details and
    # termination details in current formats; older formats go straight to byte counts.
    i = 3
    plain: list[str] = []
    while i < len(toks) and not toks[i].startswith('"'):
        plain.append(toks[i])
        i += 1
    details = term = None
    if 1 <= len(plain) <= 2 and not plain[0].isdigit():
        details = _val(plain[0])
        term = _val(plain[1]) if len(plain) == 2 else None
    quoted = [n for n, t in enumerate(toks) if t.startswith('"')]
    last_q = quoted[-1]
    tail = toks[last_q + 1 :]
    upstream = local = sni = None
    client_ip = client_port = None
    if len(tail) >= 5:  # Istio: cluster, upstream local, downstream local, remote, sni[, route]
        upstream = _unquote(toks[last_q])
        local = _val(tail[2])
        client_ip, client_port = split_address(_val(tail[3]))
        sni = _val(tail[4])
    elif len(quoted) >= 6:
        upstream = _unquote(toks[last_q])
    return IngressEntry(
        ts_ns=ts if ts is not None else kts,
        client_ip=client_ip,
        client_port=client_port,
        sni=sni,
        details=details or term,
        flags=flags,
        local_address=local,
        raw_line_no=line_no,
        upstream_host=upstream,
        termination_details=term,
        response_code=code,
        source=source,
        pod=pod,
        format="text",
    )


def parse_line(line: str, line_no: int = 0, source: str | None = None) -> IngressEntry | None:
    """Parse one log line (``kubectl`` prefixes allowed) into an :class:`IngressEntry`,
    or None when it is not an access-log entry. Never raises."""
    s = line.strip().lstrip("\ufeff")
    pod = None
    kts = None
    # Either order of kubectl's decorations; each at most once.
    for _ in range(2):
        m = _POD_RE.match(s)
        if m and pod is None:
            pod = m.group(1)
            s = s[m.end() :]
            continue
        m = _KTS_RE.match(s)
        if m and kts is None:
            kts = parse_time(m.group(1))
            s = s[m.end() :]
            continue
        break
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        return _from_json(obj, line_no, source, pod, kts)
    if s.startswith("["):
        return _from_text(s, line_no, source, pod, kts)
    return None


# --------------------------------------------------------------------------------------
# reading

Source = str | Path | IO[str] | IO[bytes]


def _lines(f: IO[Any]) -> Iterator[tuple[str | None, bool]]:
    """Yield (line, ok); an over-long line is yielded once as (None, False) after its rest
    has been skipped in bounded chunks."""
    while True:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        if isinstance(raw, bytes):
            text = raw.decode("utf-8", "replace")
        else:
            text = raw
        if len(raw) > MAX_LINE and not text.endswith("\n"):
            while True:
                more = f.readline(MAX_LINE)
                if not more or (more.endswith(b"\n") if isinstance(more, bytes)
                                else more.endswith("\n")):
                    break
            yield None, False
            continue
        yield text, True


def _open(src: str | Path) -> tuple[IO[bytes], str]:
    name = str(src)
    if name == "-":
        return sys.stdin.buffer, "<stdin>"
    try:
        with open(src, "rb") as probe_f:
            head = probe_f.read(2)
        f: IO[bytes]
        if head == b"\x1f\x8b":
            f = cast(IO[bytes], gzip.open(src, "rb"))  # noqa: SIM115 - the caller closes it
        else:
            f = open(src, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as e:
        raise IngressLogError(f"cannot read {name}: {e.strerror or e}") from e
    return f, name


def read_ingress_log(sources: Source | list[Source] | tuple[Source, ...]) -> IngressLog:
    """Read Envoy / Istio / Apigee Hybrid access logs from paths (``-`` is standard input;
    gzip is detected by content) or open file objects, text or binary.

    Every non-blank line is either an entry or counted in ``unparsed``. Raises
    :class:`IngressLogError` when a source cannot be opened or read.
    """
    srcs = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    entries: list[IngressEntry] = []
    lines = unparsed = 0
    examples: list[tuple[str, int, str]] = []
    names: list[str] = []
    for src in srcs:
        f: IO[Any]
        if isinstance(src, (str, Path)):
            f, name = _open(src)
            close = name != "<stdin>"
        else:
            f, name, close = src, str(getattr(src, "name", "<stream>")), False
        names.append(name)
        try:
            for n, (text, ok) in enumerate(_lines(f), 1):
                if ok and text is not None and not text.strip():
                    continue
                lines += 1
                entry = parse_line(text, n, name) if ok and text is not None else None
                if entry is None:
                    unparsed += 1
                    if len(examples) < _MAX_EXAMPLES:
                        excerpt = (text or f"<line longer than {MAX_LINE} bytes>").strip()
                        examples.append((name, n, excerpt[:200]))
                else:
                    entries.append(entry)
        except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as e:
            raise IngressLogError(f"cannot read {name}: {e}") from e
        finally:
            if close:
                f.close()
    return IngressLog(tuple(entries), lines, unparsed, tuple(examples), tuple(names))


# --------------------------------------------------------------------------------------
# summary


@dataclass(frozen=True)
class ClientCount:
    """A client IP with how many entries it has and when it was first and last seen."""

    ip: str
    count: int
    first_ns: int | None
    last_ns: int | None
    local_addresses: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "ip": self.ip,
            "count": self.count,
            "first": _iso(self.first_ns),
            "last": _iso(self.last_ns),
            "local_addresses": list(self.local_addresses),
        }


@dataclass(frozen=True)
class LogSummary:
    """What an ingress log says, counted (``sniparse logs FILE``)."""

    entries: int
    lines: int
    unparsed: int
    first_ns: int | None
    last_ns: int | None
    by_details: tuple[tuple[str, int], ...]
    by_flags: tuple[tuple[str, int], ...]
    filter_chain_not_found: int
    without_sni: int
    no_chain_clients: tuple[ClientCount, ...]
    no_chain_listeners: tuple[tuple[str, int], ...]
    unparsed_examples: tuple[tuple[str, int, str], ...] = ()
    sources: tuple[str, ...] = ()
    by_sni: tuple[tuple[str, int], ...] = ()  # requested server names, "-" for none

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with stable keys."""
        return {
            "sources": list(self.sources),
            "lines": self.lines,
            "entries": self.entries,
            "unparsed": self.unparsed,
            "first": _iso(self.first_ns),
            "last": _iso(self.last_ns),
            "filter_chain_not_found": self.filter_chain_not_found,
            "without_sni": self.without_sni,
            "by_details": dict(self.by_details),
            "by_flags": dict(self.by_flags),
            "by_sni": dict(self.by_sni),
            "filter_chain_not_found_clients": [c.to_dict() for c in self.no_chain_clients],
            "filter_chain_not_found_listeners": dict(self.no_chain_listeners),
            "unparsed_examples": [
                {"source": s, "line": n, "text": t} for s, n, t in self.unparsed_examples
            ],
        }

    def render_text(self) -> str:
        """Plain text: the finding first, then the counts."""
        out: list[str] = []
        if self.filter_chain_not_found:
            n = len(self.no_chain_clients)
            out.append(
                f"{self.filter_chain_not_found} of {self.entries} connections were refused with "
                f"filter_chain_not_found (no filter chain matched: typically clients that send "
                f"no SNI while the listener has no default chain), from {n} client "
                f"IP{'s' if n != 1 else ''}."
            )
            out.append(NON_SNI_FIX)
        else:
            out.append(f"No filter_chain_not_found among {self.entries} entries.")
        out.append("")
        span = ""
        if self.first_ns is not None:
            span = f", {_iso(self.first_ns)} .. {_iso(self.last_ns)}"
        out.append(f"{self.entries} entries from {self.lines} lines "
                   f"({self.unparsed} not access-log entries){span}; "
                   f"{self.without_sni} without SNI in the log.")
        if self.no_chain_clients:
            out.append("")
            out.append("Clients refused with filter_chain_not_found:")
            out.append(f"  {'client ip':<40} {'count':>6}  {'first':<27} {'last':<27} listener")
            for c in self.no_chain_clients[:_LIST_LIMIT]:
                out.append(f"  {c.ip:<40} {c.count:>6}  {_iso(c.first_ns) or '-':<27} "
                           f"{_iso(c.last_ns) or '-':<27} {','.join(c.local_addresses) or '-'}")
            if len(self.no_chain_clients) > _LIST_LIMIT:
                out.append(f"  ... {len(self.no_chain_clients) - _LIST_LIMIT} more")
        for title, rows in (("By details:", self.by_details),
                            ("By response flags:", self.by_flags),
                            ("By requested server name (SNI):", self.by_sni)):
            if rows:
                out.append("")
                out.append(title)
                for k, v in rows[:_LIST_LIMIT]:
                    out.append(f"  {v:>8}  {k}")
        if self.unparsed_examples:
            out.append("")
            out.append("Lines that are not access-log entries (first ones):")
            for s, n, t in self.unparsed_examples:
                out.append(f"  {s}:{n}: {t[:100]}")
        return "\n".join(out) + "\n"


def summarize(log: IngressLog) -> LogSummary:
    """Count a log's entries by details and response flags and list the clients that
    were refused with ``filter_chain_not_found``."""
    details: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    snis: Counter[str] = Counter()
    listeners: Counter[str] = Counter()
    clients: dict[str, list[Any]] = {}
    first = last = None
    fcnf = no_sni = 0
    for e in log.entries:
        details[e.details or "-"] += 1
        flags[e.flags or "-"] += 1
        snis[e.sni or "-"] += 1
        if e.sni is None:
            no_sni += 1
        if e.ts_ns is not None:
            first = e.ts_ns if first is None else min(first, e.ts_ns)
            last = e.ts_ns if last is None else max(last, e.ts_ns)
        if e.no_filter_chain:
            fcnf += 1
            listeners[e.local_address or "-"] += 1
            key = e.client_ip or "-"
            c = clients.setdefault(key, [0, None, None, {}])
            c[0] += 1
            if e.ts_ns is not None:
                c[1] = e.ts_ns if c[1] is None else min(c[1], e.ts_ns)
                c[2] = e.ts_ns if c[2] is None else max(c[2], e.ts_ns)
            if e.local_address:
                c[3][e.local_address] = None
    ccs = sorted(
        (ClientCount(ip, v[0], v[1], v[2], tuple(v[3])) for ip, v in clients.items()),
        key=lambda c: (-c.count, c.ip),
    )
    return LogSummary(
        entries=len(log.entries),
        lines=log.lines,
        unparsed=log.unparsed,
        first_ns=first,
        last_ns=last,
        by_details=tuple(details.most_common()),
        by_flags=tuple(flags.most_common()),
        filter_chain_not_found=fcnf,
        without_sni=no_sni,
        no_chain_clients=tuple(ccs),
        no_chain_listeners=tuple(listeners.most_common()),
        unparsed_examples=log.unparsed_examples,
        sources=log.sources,
        by_sni=tuple(snis.most_common()),
    )


# --------------------------------------------------------------------------------------
# correlation with a capture


@dataclass(frozen=True)
class IngressMatch:
    """A log entry and the captured connection it describes.

    ``delta_ms`` is the log's time minus the capture's (None when the entry has no time);
    ``by_port`` is False when the log named only the client IP; ``note`` describes a
    disagreement between the two, or is None.
    """

    entry: IngressEntry
    handshake: Handshake
    delta_ms: float | None
    by_port: bool = True
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the entry's fields, the flow's, and the comparison."""
        h = self.handshake
        return {
            "entry": self.entry.to_dict(),
            "flow": {
                "ts": h.ts,
                "client_ip": h.client_ip,
                "client_port": h.client_port,
                "server_ip": h.server_ip,
                "server_port": h.server_port,
                "sni": h.sni,
                "sni_status": h.sni_status,
                "outcome": h.outcome,
                "alert": h.alert,
                "outcome_ms": h.outcome_ms,
            },
            "delta_ms": None if self.delta_ms is None else round(self.delta_ms, 3),
            "by_port": self.by_port,
            "disagreement": self.note,
        }


def _hs_dict(h: Handshake) -> dict[str, Any]:
    return {
        "ts": h.ts,
        "client_ip": h.client_ip,
        "client_port": h.client_port,
        "server_ip": h.server_ip,
        "server_port": h.server_port,
        "sni": h.sni,
        "sni_status": h.sni_status,
        "outcome": h.outcome,
        "outcome_ms": h.outcome_ms,
    }


@dataclass(frozen=True)
class IngressCorrelation:
    """An ingress log lined up with a capture's handshakes.

    ``matched``: entries joined to a captured connection. ``unmatched``: entries without a
    flow in the capture. ``resets_without_entry``: captured server resets, inside the log's
    time span, that no entry explains. ``disagreements``: matches where log and capture tell
    different stories about SNI or the outcome. ``skew_ms``: estimated log clock minus
    capture clock (median over matches), None without timed matches.
    """

    entries: int
    filter_chain_not_found: int
    matched: tuple[IngressMatch, ...]
    unmatched: tuple[IngressEntry, ...]
    resets_without_entry: tuple[Handshake, ...]
    disagreements: tuple[IngressMatch, ...]
    skew_ms: float | None
    max_skew_ms: float
    no_address: int = 0

    def _no_chain_story(self) -> tuple[int, int, int, float | None]:
        """(matched fcnf entries, of them without SNI in the capture, of them reset,
        median outcome_ms of those resets)."""
        m = [x for x in self.matched if x.entry.no_filter_chain]
        nosni = [x for x in m if x.handshake.without_sni]
        resets = [x.handshake.outcome_ms for x in nosni if x.handshake.outcome == "server_reset"]
        times = [t for t in resets if t is not None]
        return len(m), len(nosni), len(resets), (statistics.median(times) if times else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: counts at the top (``entries``, ``filter_chain_not_found``,
        ``matched``, ``unmatched``, ``resets_without_entry``, ``disagreements``, ``skew_ms``)
        and the rows under ``matches``, ``unmatched_entries``, ``unlogged_resets`` and
        ``disagreement_rows``."""
        m, nosni, resets, med = self._no_chain_story()
        return {
            "entries": self.entries,
            "filter_chain_not_found": self.filter_chain_not_found,
            "matched": len(self.matched),
            "unmatched": len(self.unmatched),
            "no_address": self.no_address,
            "resets_without_entry": len(self.resets_without_entry),
            "disagreements": len(self.disagreements),
            "skew_ms": None if self.skew_ms is None else round(self.skew_ms, 3),
            "max_skew_ms": self.max_skew_ms,
            "filter_chain_not_found_matched": m,
            "filter_chain_not_found_without_sni": nosni,
            "filter_chain_not_found_reset": resets,
            "filter_chain_not_found_reset_median_ms": None if med is None else round(med, 3),
            "matches": [x.to_dict() for x in self.matched],
            "unmatched_entries": [e.to_dict() for e in self.unmatched],
            "unlogged_resets": [_hs_dict(h) for h in self.resets_without_entry],
            "disagreement_rows": [x.to_dict() for x in self.disagreements],
        }

    def render_text(self) -> str:
        """Plain text: the conclusion first, then each section."""
        out: list[str] = []
        skew = "unknown" if self.skew_ms is None else f"{self.skew_ms:+.1f} ms"
        out.append(
            f"Ingress log vs capture: {self.entries} log entries "
            f"({self.filter_chain_not_found} filter_chain_not_found), {len(self.matched)} "
            f"matched to captured connections, {len(self.unmatched)} without a captured flow; "
            f"clock skew {skew} (log minus capture)."
        )
        if not self.matched and self.entries:
            out.append(
                f"No log entry matched a captured connection. Either the capture was taken "
                f"where the ingress sees other client addresses (NAT, a load balancer or a "
                f"proxy in between: compare the log's client addresses with the capture's), "
                f"the log and the capture cover different times, or the clocks differ by "
                f"more than {self.max_skew_ms:g} ms (raise max_skew_ms)."
            )
        m, nosni, resets, med = self._no_chain_story()
        if m:
            s = (f"filter_chain_not_found confirmed by the capture: {nosni} of {m} matched "
                 f"connections sent no SNI")
            if resets:
                s += f", {resets} of them reset by the server"
                if med is not None:
                    s += f" {med:.1f} ms (median) after the ClientHello"
            out.append(s + ".")
        if self.disagreements:
            out.append("")
            out.append(f"Log and capture disagree ({len(self.disagreements)}):")
            for x in self.disagreements[:_LIST_LIMIT]:
                out.append(f"  {x.entry.ts or '-'} {x.entry.client or '-'} "
                           f"({x.entry.source}:{x.entry.raw_line_no}): {x.note}")
        if self.unmatched:
            out.append("")
            out.append(f"Log entries without a captured flow ({len(self.unmatched)}):")
            for e in self.unmatched[:_LIST_LIMIT]:
                out.append(f"  {e.ts or '-'} {e.client or '(no client address)'} "
                           f"{e.details or '-'} {e.flags or '-'} sni={e.sni or '-'} "
                           f"({e.source}:{e.raw_line_no})")
            if len(self.unmatched) > _LIST_LIMIT:
                out.append(f"  ... {len(self.unmatched) - _LIST_LIMIT} more")
        if self.resets_without_entry:
            out.append("")
            out.append(f"Server resets in the capture without a log entry "
                       f"({len(self.resets_without_entry)}):")
            for h in self.resets_without_entry[:_LIST_LIMIT]:
                out.append(f"  {h.ts} {_fmt_ep(h.client_ip, h.client_port)} -> "
                           f"{_fmt_ep(h.server_ip, h.server_port)} sni={h.sni_status}")
            if len(self.resets_without_entry) > _LIST_LIMIT:
                out.append(f"  ... {len(self.resets_without_entry) - _LIST_LIMIT} more")
        if self.matched:
            out.append("")
            out.append("Matched:")
            out.append(f"  {'log time':<27} {'client':<22} {'log details':<24} {'flags':<6} "
                       f"{'sni_status':<10} {'outcome':<13} {'ms':>8}")
            for x in self.matched[:_LIST_LIMIT]:
                h = x.handshake
                ms = "-" if h.outcome_ms is None else f"{h.outcome_ms:.1f}"
                out.append(f"  {x.entry.ts or '-':<27} {x.entry.client or '-':<22} "
                           f"{x.entry.details or '-':<24} {x.entry.flags or '-':<6} "
                           f"{h.sni_status:<10} {h.outcome:<13} {ms:>8}")
            if len(self.matched) > _LIST_LIMIT:
                out.append(f"  ... {len(self.matched) - _LIST_LIMIT} more")
        return "\n".join(out) + "\n"


def _norm_name(s: str) -> str:
    return s.rstrip(".").lower()


def _disagreement(e: IngressEntry, h: Handshake) -> str | None:
    if h.sni_status == "present" and e.sni is None:
        if e.no_filter_chain:
            return f"SNI sent ({h.sni}) but no filter chain matched it"
        return f"the log shows no SNI but the ClientHello carried {h.sni}"
    if e.sni is not None and h.sni_status in ("absent", "empty"):
        return (f"the log shows SNI {e.sni} but the captured ClientHello had none "
                f"({h.sni_status})")
    if (e.sni is not None and h.sni_status == "present" and h.sni is not None
            and _norm_name(e.sni) != _norm_name(h.sni)):
        return f"the log shows SNI {e.sni} but the ClientHello carried {h.sni}"
    if e.no_filter_chain and h.outcome == "server_hello":
        return "the log says filter_chain_not_found but the capture shows a ServerHello"
    return None


def _keys(h: Handshake) -> list[tuple[str, int | None]]:
    keys: list[tuple[str, int | None]] = []
    ip = _canon_ip(h.client_ip) or h.client_ip
    keys.append((ip, h.client_port))
    if h.proxy_client:
        # The PROXY protocol header names the original client, which the ingress logs.
        pip, pport = split_address(h.proxy_client)
        if pip is not None and pport is not None:
            keys.append((pip, pport))
    return keys


# Width of the band in which candidate time differences count as "the same skew": the
# log's start time is the TCP accept, the capture's is the hello, one client RTT apart.
_SKEW_BAND_NS = 250 * 1_000_000
_MAX_SKEW_SAMPLES = 200_000


def _skew_guess(all_cands: list[list[tuple[int, int | None, bool]]], band: int) -> int:
    """First estimate of the clock skew: the densest band of candidate time differences.

    Taking each entry's raw-nearest candidate would fail when a client port is reused
    within the window; the true skew is the one most entries agree on.
    """
    deltas = sorted(d for c in all_cands for _j, d, bp in c if d is not None and bp)
    if not deltas:
        deltas = sorted(d for c in all_cands for _j, d, _bp in c if d is not None)
    if not deltas:
        return 0
    if len(deltas) > _MAX_SKEW_SAMPLES:  # bounded work: an even sample keeps the shape
        step = len(deltas) / _MAX_SKEW_SAMPLES
        deltas = [deltas[int(k * step)] for k in range(_MAX_SKEW_SAMPLES)]
    best: tuple[int, int, int] = (0, 0, 0)  # (count, start, end)
    best_center = 0
    lo = 0
    for hi in range(len(deltas)):
        while deltas[hi] - deltas[lo] > band:
            lo += 1
        n = hi - lo + 1
        center = abs(deltas[(lo + hi) // 2])
        if n > best[0] or (n == best[0] and center < best_center):
            best, best_center = (n, lo, hi + 1), center
    return int(statistics.median(deltas[best[1] : best[2]]))


def correlate(
    log: IngressLog | Iterable[IngressEntry],
    handshakes: Iterable[Handshake] | Any,
    *,
    max_skew_ms: float = 5000,
) -> IngressCorrelation:
    """Join ingress log entries to captured handshakes (``handshakes`` may also be a
    :class:`sniparse.report.Report`, whose ``handshakes`` are used).

    An entry matches a handshake with the same client ip:port (or the PROXY protocol client)
    whose time is within ``max_skew_ms`` of the entry's. Among several candidates the one
    nearest after correcting for the estimated clock skew wins; each handshake explains at
    most one entry. Entries that name only a client IP are matched afterwards, by IP and time.
    ``skew_ms`` is the median of (log time - capture time) over the matches.
    """
    entries = list(log.entries if isinstance(log, IngressLog) else log)
    # A Report (anything with a ``handshakes`` sequence) is accepted as well.
    hs: list[Handshake] = list(getattr(handshakes, "handshakes", handshakes))
    window = int(max_skew_ms * 1_000_000)

    by_ep: dict[tuple[str, int | None], list[int]] = {}
    by_ip: dict[str, list[int]] = {}
    for j, h in enumerate(hs):
        for k in _keys(h):
            by_ep.setdefault(k, []).append(j)
            by_ip.setdefault(k[0], []).append(j)

    def cands(e: IngressEntry) -> list[tuple[int, int | None, bool]]:
        """(handshake index, delta ns or None, by_port) within the window."""
        out: list[tuple[int, int | None, bool]] = []
        if e.client_ip is None:
            return out
        if e.client_port is None:
            for j in by_ip.get(e.client_ip, ()):
                if e.ts_ns is not None and abs(e.ts_ns - hs[j].ts_ns) <= window:
                    out.append((j, e.ts_ns - hs[j].ts_ns, False))
            return out
        eps = [(e.client_ip, e.client_port), *e.alt_clients]
        for ep in eps:
            js = by_ep.get(ep, ())
            for j in js:
                if e.ts_ns is None:
                    if len(js) == 1:  # no time to compare: only an unambiguous flow
                        out.append((j, None, True))
                elif abs(e.ts_ns - hs[j].ts_ns) <= window:
                    out.append((j, e.ts_ns - hs[j].ts_ns, True))
        return out

    all_cands = [cands(e) for e in entries]
    skew0 = _skew_guess(all_cands, min(_SKEW_BAND_NS, window))

    # Greedy one-to-one assignment, best pairs first: port matches before IP-only ones,
    # timed before untimed, then by distance from the estimated skew.
    pairs = []
    for i, c in enumerate(all_cands):
        for j, d, bp in c:
            dist = abs(d - skew0) if d is not None else window + 1
            pairs.append((0 if bp else 1, dist, i, j, d, bp))
    pairs.sort(key=lambda p: (p[0], p[1], p[2], p[3]))
    e_used: dict[int, tuple[int, int | None, bool]] = {}
    h_used: set[int] = set()
    for _rank, _dist, i, j, d, bp in pairs:
        if i in e_used or j in h_used:
            continue
        e_used[i] = (j, d, bp)
        h_used.add(j)

    matched: list[IngressMatch] = []
    unmatched: list[IngressEntry] = []
    no_address = 0
    deltas: list[int] = []
    for i, e in enumerate(entries):
        if i not in e_used:
            unmatched.append(e)
            if e.client_ip is None:
                no_address += 1
            continue
        j, d, bp = e_used[i]
        h = hs[j]
        if d is not None:
            deltas.append(d)
        matched.append(IngressMatch(e, h, None if d is None else d / 1e6, bp,
                                    _disagreement(e, h)))
    skew_ms = statistics.median(deltas) / 1e6 if deltas else None

    # Resets the log should have explained: inside the log's time span (in capture time).
    times = [e.ts_ns for e in entries if e.ts_ns is not None]
    resets: list[Handshake] = []
    if times:
        shift = int((skew_ms or 0) * 1e6)
        lo, hi = min(times) - shift - window, max(times) - shift + window
        resets = [
            h for j, h in enumerate(hs)
            if j not in h_used and h.outcome == "server_reset" and lo <= h.ts_ns <= hi
        ]
    return IngressCorrelation(
        entries=len(entries),
        filter_chain_not_found=sum(1 for e in entries if e.no_filter_chain),
        matched=tuple(matched),
        unmatched=tuple(unmatched),
        resets_without_entry=tuple(resets),
        disagreements=tuple(m for m in matched if m.note is not None),
        skew_ms=skew_ms,
        max_skew_ms=float(max_skew_ms),
        no_address=no_address,
    )

