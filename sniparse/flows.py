"""Flow table: who is the client, TCP events, reassembly, TLS, and the outcome.

:class:`FlowTable` is sans-I/O: the pipeline feeds it decoded TCP segments in capture order
and it returns :class:`Handshake` records, one per TCP connection that carried a ClientHello,
when that connection closes (RST, FIN from both sides, idle, eviction, end of capture).

Rules
-----
* **Client.** The sender of a SYN without ACK (or the peer of a SYN+ACK sender). Without a
  SYN in the capture: the side whose first bytes start a ClientHello; until then, provisionally
  the first side that sent payload. TLS is recognised by bytes, never by port.
* **Streams.** Each direction's opening bytes go through :class:`~sniparse.reassembly.Stream`
  (anchored at ISN+1 when the SYN was seen, so TCP Fast Open data counts, RFC 7413; else at
  the first payload segment). Once a direction's question is answered its buffer is dropped.
* **Preludes.** When the client's bytes do not start a hello, a bounded scan looks for one
  after a recognised plaintext prelude: PROXY protocol v1/v2 (the header's source address
  becomes ``proxy_client``), HTTP ``CONNECT``, STARTTLS (SMTP, IMAP, POP3 ``STLS``, FTP
  ``AUTH TLS``, XMPP ``<starttls``), PostgreSQL SSLRequest. The server's TLS reaction is then
  read from the first TLS record header that follows its plaintext replies (after a line
  end, a ``>`` or PostgreSQL's ``S``). Other, binary preludes (SOCKS, RDP, MySQL and LDAP
  STARTTLS...) are found by scanning the client's first 4 KiB for an offset where a whole
  ClientHello parses (``prelude`` ``socks``, ``rdp``, ``starttls_mysql``, ``starttls_ldap``
  or ``unknown``); the server's reaction is then its first ServerHello or alert record
  header. While that scan waits for more bytes the flow stays open; it gives up (``not_tls``)
  at 4 KiB of client bytes, at 16 KiB from the server, or when the flow closes. HTTP
  requests, HTTP responses and SSH banners are rejected at once. ``proxy_client`` is
  ``ip:port`` (``[ip]:port`` for IPv6).
* **Hello status.** Complete hello: its ``sni_status``. :class:`MalformedError`:
  ``malformed`` + ``detail``. A hello that never completes: ``unknown`` with
  ``unknown_reason`` ``truncated`` (snaplen cut), ``gap`` (bytes missing from the capture, or
  the connection closed / went idle before the hello was whole), ``capture_end`` (the capture
  ended mid-hello) -- never ``absent``. Without a SYN, client bytes that do not start a hello
  are a ``midstream`` flow; when the server's first bytes are then a ServerHello, the hello's
  start was missed and a record with ``unknown_reason="midstream"`` is emitted.
* **Outcome** (SPEC): the server's first reaction once the client's hello started:
  ServerHello/HRR -> ``server_hello``; alert -> ``alert``; RST -> ``server_reset``; FIN ->
  ``server_close``; a client RST first -> ``client_reset``; else ``no_response``.
  *Decision for non-TLS server bytes* (an HTTP error page, a TLS record of another type):
  they are not a TLS reaction, so the outcome stays open and is decided by what follows:
  a server FIN -> ``server_close``, a server RST -> ``server_reset``, a client RST ->
  ``client_reset``, silence -> ``no_response``; ``detail`` says the server sent non-TLS
  bytes and an Issue is recorded. ``outcome_ms`` is measured from the time the hello's last
  byte arrived to the reaction's packet.
  *Inferred ServerHello.* While the server's reaction is undecided (nothing, non-TLS bytes,
  or only a FIN), the client's first records after its hello are read (at most 4): a
  ChangeCipherSpec, application data, or a Certificate / CertificateVerify /
  ClientKeyExchange / Finished message proves the server answered with a ServerHello the
  capture lacks (one direction captured, lost segments). Then ``outcome`` is
  ``server_hello``, ``detail`` names the record and its frame, ``outcome_ms`` is None and a
  ``gap`` Issue is counted. Hellos offering early_data (42) are excluded: 0-RTT sends CCS
  and application data before any ServerHello (RFC 8446 §D.4), and so are records that
  arrived with the hello's last byte. A RST before the proof stays the outcome.
* **HelloRetryRequest.** ``hrr=True``; the client's second ClientHello (after an optional
  ChangeCipherSpec, RFC 8446 §D.4) is parsed and an Issue is added when its SNI differs.
* **Zeek.** ``conn_state`` and ``history`` follow Zeek's conn.log definitions (the
  ``conn_state`` function of ``base/protocols/conn/main.zeek``), computed when the flow closes
  (originator = client). History letters S h A D F R, first occurrence per direction, upper
  case for the originator, ``^`` when the first packet came from the server. A flow closes
  at a RST -- except a RST that follows the sender's own FIN: as in Zeek, the flow stays
  open until the peer's FIN (that endpoint then counts as CLOSED again, so ``SF``), a RST
  from the peer, idle or end. Differences: the flow closes at its second FIN, so a RST
  after both FINs is not reflected (Zeek adds ``r``/``R`` to the history; ``conn_state``
  stays ``SF`` in both); the optional letters C T W G I Q are not produced.
* **Closing.** A closed flow leaves the table; its keys stay for up to a minute as
  tombstones so stray packets after the close (the last ACK, a late RST) do not start
  phantom flows (``stats["after_close"]``). A SYN without ACK always starts a new flow, and
  one with another ISN on a live tuple closes the old flow first (port reuse).
* **Memory.** The client's bytes are dropped once its hello is read (kept only while a TLS
  1.3 hello may still meet a HelloRetryRequest, or while the server's reaction is undecided
  and the client's next records may prove a ServerHello), the server's once its reaction
  is read.
* **Skipping.** :attr:`FlowTable.decided` holds the direction keys of live flows whose
  question is answered and whose direction already shows both ``A`` and ``D`` history
  letters (the only things a data or pure-ACK packet could still add) -- or, failing that,
  has sent 16 more packets since the answer. :meth:`FlowTable.feed` itself ignores data and
  pure-ACK packets of a key in ``decided``, so a caller may skip them (never SYN/FIN/RST)
  without changing any result; the price is that an ``A``/``D`` letter first seen after
  that point is missing from ``history``. Skipped packets do not refresh the idle timer; a
  caller that wants exact idle expiry calls :meth:`FlowTable.skip`, or records the packet's
  time in :attr:`FlowTable.pending_ts` (the largest per key), which the table applies
  itself whenever it reads idle times (an idle sweep, a flow's close); a fed packet of a
  decided key does exactly what ``skip`` does.
* **Bounds.** ``stream_cap`` bytes per direction, ``max_flows`` live flows (the oldest is
  evicted with a ``limit`` Issue), bounded prelude scans.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Final, Literal, cast

from ._compiled import mypyc_attr, speedups
from .errors import DecodeError, Issues, SniparseError
from .fingerprint import fingerprints
from .reassembly import Span, Stream, seq_offset
from .tcp import ACK, FIN, RST, SYN, Segment, flow_key
from .tls import (
    HRR_RANDOM,
    ClientHello,
    ServerReaction,
    is_grease,
    looks_like_tls_hello,
    read_client_hello,
    read_server_reaction,
    version_name,
)

__all__ = ["FlowTable", "Handshake"]


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class Handshake:
    """One TCP connection that carried a ClientHello, and what the server did about it.

    Field names are a public contract (they are the JSON / CSV / pandas column names).
    """

    ts_ns: int                     # time of the hello's first segment, ns since epoch
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    sni: str | None
    sni_status: str                # present | absent | empty | unknown | malformed
    unknown_reason: str | None     # truncated | gap | capture_end | midstream (unknown only)
    detail: str | None             # why malformed / unknown, in words
    sslv2: bool
    ech: bool
    versions: tuple[str, ...]      # offered TLS versions, highest first, e.g. ("TLSv1.3", "TLSv1.2")
    alpn: tuple[str, ...]
    ja3: str | None                # MD5 hex
    ja4: str | None
    segments: int                  # TCP segments the hello spanned
    hrr: bool                      # the server answered with a HelloRetryRequest
    outcome: str                   # server_hello | alert | server_reset | server_close | client_reset | no_response
    alert: int | None              # alert description code when outcome == "alert"
    outcome_ms: float | None       # from the hello's last byte to the outcome event
    conn_state: str                # Zeek conn_state
    history: str                   # Zeek history letters
    frame: int = 0                 # frame number of the hello's first segment
    sni_raw: bytes | None = None
    proxy_client: str | None = None  # "ip:port" from a PROXY protocol header
    prelude: str | None = None     # plaintext before TLS: "http_connect", "starttls_smtp", ...
    ip_version: int = 4
    vlan: tuple[int, ...] = ()
    ja3_string: str | None = None
    ja4_r: str | None = None
    server_version: str | None = None  # version the ServerHello selected
    client_hello: ClientHello | None = field(default=None, repr=False, compare=False)

    @property
    def ts(self) -> str | None:
        """The hello's time as ISO 8601 UTC with microseconds; None when the capture's
        timestamp is outside what a calendar date can show (corrupt captures have them)."""
        try:
            dt = datetime.fromtimestamp(self.ts_ns // 1_000_000_000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(self.ts_ns % 1_000_000_000) // 1000:06d}Z"

    @property
    def without_sni(self) -> bool:
        """True when the client sent no usable SNI (absent or empty -- never unknown)."""
        return self.sni_status in ("absent", "empty")


_object_new: Final = object.__new__
_object_setattr: Final = object.__setattr__
# Typed as a variable-length tuple: compiled code then keeps it as the one tuple object.
_HS_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Handshake))
assert _HS_FIELDS[0] == "ts_ns" and _HS_FIELDS[-1] == "client_hello" and len(_HS_FIELDS) == 32
#: ``_speedups.new_record(cls, names, values)`` (see sniparse.tls._client_hello_of).
_C_NEW_RECORD = cast(
    "Callable[[type, tuple[str, ...], tuple[object, ...]], object] | None",
    speedups("new_record"),
)


def _make_handshake(values: tuple[object, ...]) -> Handshake:
    """``Handshake(*values)`` with every field given in declaration order (its one caller,
    FlowTable._build, does; tests/test_flows.py checks the result), ~10x faster: the
    generated ``__init__`` of a frozen dataclass sets each field through
    ``object.__setattr__``, this fills the record's ``__dict__`` directly. In C when the
    extension is built: measured with callgrind on the handshake benchmark, building the
    values dict in compiled code cost ~8,500 instructions a record, the C function (a copy
    of the previous record's dict, then only the values that changed) ~4,000."""
    new = _C_NEW_RECORD
    if new is not None:
        return cast("Handshake", new(Handshake, _HS_FIELDS, values))
    h: Handshake = _object_new(Handshake)
    _object_setattr(h, "__dict__", dict(zip(_HS_FIELDS, values)))
    return h


# The Handshake fields taken from the ClientHello, when there is none.
_NO_HELLO: Final[dict[str, Any]] = {"sni": None, "sslv2": False, "ech": False, "sni_raw": None}


# -- client question states ------------------------------------------------------------------
_Q_OPEN: Final = 0      # looking for the hello's first byte (maybe after a prelude)
_Q_HELLO: Final = 1     # hello start found at hello_start, reading it
_Q_DONE: Final = 2      # hello parsed, malformed, or given up (cap)
_Q_NONE: Final = 3      # not TLS (or midstream without a hello): no record
_Q_MID: Final = 4       # no SYN, client bytes are not a hello start: is the server's first a ServerHello?

# Zeek history letters of one direction as bits (_Dir.letters), in Zeek's letter order.
_L_S: Final = 1
_L_H: Final = 2
_L_A: Final = 4
_L_D: Final = 8
_L_F: Final = 16
_L_R: Final = 32
_HISTORY_LETTERS: Final = "SHADFR"
# One history event (_Flow.events): 1 + 2 * the letter's index in _HISTORY_LETTERS + 1 when
# direction a sent it. A flow has at most 12 events (6 letters, 2 directions) of 4 bits each.
_EV_S: Final = 1
_EV_H: Final = 3
_EV_A: Final = 5
_EV_D: Final = 7
_EV_F: Final = 9
_EV_R: Final = 11

# Zeek endpoint states (conn/main.zeek, conn_state()).
_INACTIVE: Final = 0
_SYN_SENT: Final = 1
_SYN_ACK_SENT: Final = 2
_PARTIAL: Final = 3
_ESTABLISHED: Final = 4
_CLOSED: Final = 5
_RESET: Final = 6

_PROXY2_SIG: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_PG_SSLREQ: Final = bytes.fromhex("0000000804d2162f")
_PRELUDE_LIMIT: Final = 16384           # bytes of plaintext scanned for a hello start
_GENERIC_LIMIT: Final = 4096            # bytes of an unknown binary prelude scanned for a hello
_SERVER_GIVE_UP: Final = 16384          # server bytes after which a client without hello is not TLS
_BINARY_PRELUDES = frozenset({"socks", "rdp", "starttls_ldap", "starttls_mysql", "unknown"})
# Packets of a decided direction fed before it joins `decided` without its A and D letters.
_LETTER_WAIT: Final = 16
_PLAINTEXT = re.compile(rb"(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|TRACE) |SSH-|HTTP/")
_TEXT_OPENERS = re.compile(
    rb"(?i)(EHLO|HELO|STARTTLS|STLS|CAPA|AUTH|FEAT|USER|<\?xml|<stream|"
    rb"[A-Za-z0-9.]{1,20} (CAPABILITY|STARTTLS|NOOP|ID|LOGIN))"
)
_IMAP_STARTTLS = re.compile(rb"(?im)^[^\s]+ STARTTLS\r?$")
_SMTP_STARTTLS = re.compile(rb"(?im)^STARTTLS\r?$")
_POP3_STLS = re.compile(rb"(?im)^STLS\r?$")
_FTP_AUTH = re.compile(rb"(?im)^AUTH (TLS|SSL)")
_RST_HISTORY = re.compile(r"^\^?S[^HAFGIQ]*R")
_EARLY_DATA: Final = 42                 # early_data extension (RFC 8446 §4.2.10)
_INFER_RECORDS: Final = 4               # client records read after the hello for proof of a ServerHello
# Client handshake messages that only follow a ServerHello (RFC 5246 §7.3, RFC 8446 §4.4).
_AFTER_SH: Final = {11: "Certificate", 15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished"}


# Address text of recent clients and servers: the same few thousand addresses recur for
# every connection of a capture (cleared when it grows past the bound).
_IP_TEXT: Final[dict[bytes, str]] = {}
_IP_TEXT_MAX: Final = 65536


def _ip_text(packed: bytes) -> str:
    text = _IP_TEXT.get(packed)
    if text is None:
        text = _format_ip(packed)
        if len(_IP_TEXT) >= _IP_TEXT_MAX:
            _IP_TEXT.clear()
        _IP_TEXT[packed] = text
    return text


# "0" .. "255": IPv4 address text from cached octets (see _format_ip).
_OCTETS: Final = tuple(str(i) for i in range(256))


def _format_ip(packed: bytes) -> str:
    if len(packed) == 4:
        # What inet_ntop gives (RFC 791 dotted decimal, no leading zeros). Measured with
        # callgrind: ~4,100 instructions a call through socket.inet_ntop (argument parsing,
        # the IntEnum family, glibc's sprintf), ~900 joining cached octet strings.
        o = _OCTETS
        return f"{o[packed[0]]}.{o[packed[1]]}.{o[packed[2]]}.{o[packed[3]]}"
    if len(packed) == 16:
        return socket.inet_ntop(socket.AF_INET6, packed)
    return packed.hex()


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _reverse_key(key: bytes, seg: Segment) -> bytes:
    """The peer direction's key: ``flow_key(seg.dst, seg.src, seg.dport, seg.sport)`` for
    the ``key`` of ``seg``, its port bytes swapped rather than encoded again (compiled,
    ``int.to_bytes`` is a generic method call: this is ~1,000 instructions cheaper per new
    flow on the handshake benchmark; tests/test_flows.py checks both agree)."""
    return seg.dst + seg.src + key[-2:] + key[-4:-2]


class _Dir:
    """One direction of a flow."""

    __slots__ = (
        "ack_after_synack",
        "dport",
        "dst",
        "fin",
        "fin_rst",
        "fin_ts",
        "first_data_ts",
        "ip_version",
        "isn0",
        "isns",
        "key",
        "letters",
        "pkts",
        "pkts_after_done",
        "rst",
        "rst_ts",
        "sport",
        "src",
        "stream",
        "syn",
        "synack",
        "vlan",
    )

    def __init__(self, seg: Segment, key: bytes, reverse: bool = False) -> None:
        self.key = key
        if reverse:
            self.src, self.dst, self.sport, self.dport = seg.dst, seg.src, seg.dport, seg.sport
        else:
            self.src, self.dst, self.sport, self.dport = seg.src, seg.dst, seg.sport, seg.dport
        self.syn = False
        self.synack = False
        self.fin = False
        self.fin_rst = False   # this side's first RST followed its own FIN
        self.rst = False
        self.fin_ts = 0
        self.rst_ts = 0
        self.stream: Stream | None = None
        # ISN+1 of each SYN / SYN-ACK seen before data (at most 4): the first in isn0 (-1
        # until then), the others in isns (None until a second one): one SYN per direction
        # is the rule, and a list for it cost ~500 instructions per direction (callgrind).
        self.isn0 = -1
        self.isns: list[int] | None = None
        self.pkts = 0
        self.pkts_after_done = 0
        self.ack_after_synack = False
        self.vlan = seg.vlan
        self.ip_version = seg.ip_version
        self.first_data_ts = -1
        self.letters = 0       # history letters seen from this side (_L_* bits)


class _Flow:
    """Live state of one TCP connection."""

    __slots__ = (
        "a",
        "alert",
        "b",
        "cap_hit",
        "ch",
        "client_is_a",
        "closing",
        "done",
        "events",
        "first_ts",
        "hello_end",
        "hello_start",
        "hrr",
        "hrr_state",
        "hspan",
        "in_decided",
        "infer",
        "inferred",
        "last_ts",
        "malformed",
        "mid_record",
        "outcome",
        "outcome_ts",
        "prelude",
        "proxy_client",
        "q",
        "roles_fixed",
        "server_other",
        "server_version",
        "sstart",
        "syn_seen",
    )

    def __init__(self, a: _Dir, b: _Dir, ts: int) -> None:
        self.a = a
        self.b = b
        self.client_is_a = True
        self.roles_fixed = False
        self.syn_seen = False
        self.first_ts = ts
        self.last_ts = ts
        # History events in arrival order, 4 bits each, the latest lowest (_EV_* codes +1
        # for direction a): a native int, so recording a letter allocates nothing.
        self.events = 0
        self.q = _Q_OPEN
        self.hello_start = 0
        self.prelude: str | None = None
        self.proxy_client: str | None = None
        self.ch: ClientHello | None = None
        self.hello_end = 0
        self.hspan: Span | None = None   # segments that delivered the hello, kept at parse time
        self.malformed: str | None = None
        self.cap_hit = False
        self.hrr = False
        self.hrr_state = 0          # 0 none, 1 waiting for the second hello, 2 done
        self.sstart: int | None = None
        self.server_other: str | None = None
        self.outcome: str | None = None
        self.outcome_ts = 0
        self.alert: int | None = None
        self.server_version: str | None = None
        self.mid_record = False
        self.done = False           # question answered: data packets can no longer matter
        self.in_decided = 0         # bit 1: a.key in decided, bit 2: b.key in decided
        self.closing = False
        self.infer = 0              # 0 not applicable, 1 reading the client's next records, 2 done
        self.inferred: str | None = None  # why the outcome was inferred (no server event)

    @property
    def client(self) -> _Dir:
        return self.a if self.client_is_a else self.b

    @property
    def server(self) -> _Dir:
        return self.b if self.client_is_a else self.a


class FlowTable:
    """Tracks TCP flows and turns them into :class:`Handshake` records.

    ``issues`` collects problems (gaps, conflicting overlaps, table limits...).
    ``idle_timeout_ns``: a flow without packets for this long is closed by :meth:`expire`.
    ``max_flows``: live flows kept; beyond it the oldest flow is closed early (``limit``
    Issue). ``stream_cap``: opening bytes buffered per direction.

    ``stats`` counts flows by kind when they close: ``tls`` (carried a ClientHello; one
    Handshake each), ``rejected_syn`` (SYN answered by RST), ``syn_only`` (SYN, no answer),
    ``not_tls`` (payload but no hello), ``midstream`` (picked up mid-stream without a hello
    start), ``no_payload`` (handshake completed, no data); plus ``flows_total``,
    ``flow_table_full`` (evictions), ``port_reuse`` (a new SYN replaced a flow),
    ``after_close`` (packets of a just-closed connection, ignored), ``expired``.
    """

    def __init__(
        self,
        issues: Issues,
        *,
        idle_timeout_ns: int = 300 * 10**9,
        max_flows: int = 1_000_000,
        stream_cap: int = 65536 + 4096,
    ) -> None:
        self.issues = issues
        self.idle_timeout_ns = idle_timeout_ns
        self.max_flows = max_flows
        self.stream_cap = stream_cap
        #: Direction keys of live flows whose data packets can be skipped (see module doc).
        self.decided: set[bytes] = set()
        self.stats: dict[str, int] = {
            "flows_total": 0,
            "tls": 0,
            "rejected_syn": 0,
            "syn_only": 0,
            "not_tls": 0,
            "midstream": 0,
            "no_payload": 0,
            "flow_table_full": 0,
            "port_reuse": 0,
            "after_close": 0,
            "expired": 0,
        }
        #: Largest timestamp of packets skipped per decided key, not yet applied to the
        #: flow's idle timer (a fast path writes it; applied when idle times are read).
        self.pending_ts: dict[bytes, int] = {}
        self._flows: dict[bytes, _Flow] = {}
        self._live: dict[_Flow, None] = {}       # insertion order = age, for eviction
        #: Closed flow key -> close time. The batch scans read it with ``_flows`` to drop
        #: the packets ``feed`` would only count as ``after_close``
        #: (:attr:`sniparse._fastpath.Skipper.tomb`).
        self._tomb: dict[bytes, int] = {}
        self._tomb_ttl = min(idle_timeout_ns, 60 * 10**9)
        self._next_scan = -(2**63)
        # Hooks for reading a capture in parts (sniparse.analyze.ParallelAnalysis); unused
        # (None / False) otherwise. See held_keys().
        #: When a dict: every ``stats`` increment is also counted under the direction key
        #: of the packet or flow it is about.
        self.tally: dict[bytes, dict[str, int]] | None = None
        #: When true, :meth:`finish` closes nothing: the caller goes on feeding.
        self.defer_finish = False

    def __len__(self) -> int:
        """Live flows."""
        return len(self._live)

    def __bool__(self) -> bool:
        """A table is always true, even when empty (``len`` counts live flows)."""
        return True

    # -- public API ---------------------------------------------------------------------
    def feed(self, seg: Segment, key: bytes | None = None) -> list[Handshake]:
        """Process one TCP segment; returns the handshakes of flows this segment closed
        (usually none). ``key``: the segment's :func:`~sniparse.tcp.flow_key` when the
        caller already has it."""
        out: list[Handshake] = []
        self.feed_into(seg, key, out)
        return out

    def feed_into(self, seg: Segment, key: bytes | None, out: list[Handshake]) -> None:
        """:meth:`feed`, appending the handshakes to ``out``: a caller feeding many
        segments needs no list per segment (most close nothing; callgrind on the handshake
        benchmark: ~150 instructions a packet)."""
        if key is None:
            key = flow_key(seg.src, seg.dst, seg.sport, seg.dport)
        flags = seg.flags
        # One dict lookup per packet: a key is in `decided` exactly when its flow is in
        # `_flows` with that direction's bit in `in_decided`, so the flow answers both.
        flow = self._flows.get(key)
        pure_syn = (flags & (SYN | ACK)) == SYN
        if flow is not None and not pure_syn:
            # The common case, a further packet of a live flow: the general path below
            # without its checks.
            a = flow.a
            is_a = key == a.key
            if flow.in_decided and not flags & (SYN | FIN | RST) and flow.in_decided & (1 if is_a else 2):
                # Exactly what a caller that skips this packet and calls skip() gets (see
                # module notes): only the idle timer moves.
                ts = seg.ts_ns
                if ts > flow.last_ts:  # noqa: PLR1730 (per packet: cheaper than a max() call)
                    flow.last_ts = ts
                return
            self._packet(flow, a if is_a else flow.b, seg, flags)
            if flow.closing:
                self._close_into(flow, out, at_end=False)
            elif flow.done and flow.in_decided != 3:
                self._update_decided(flow)
            return
        if flow is not None and pure_syn:
            d0 = flow.a if key == flow.a.key else flow.b
            # A new SYN with another ISN on a live tuple: port reuse (or a restart after a
            # FIN/RST we did not see). The old connection is over.
            if (
                flow.roles_fixed
                and d0 is flow.client
                and d0.syn
                and d0.isn0 >= 0
                and not _seen_isn(d0, (seg.seq + 1) & 0xFFFFFFFF)
            ):
                self.stats["port_reuse"] += 1
                if self.tally is not None:
                    self._tallied(key, "port_reuse")
                self._close_into(flow, out, at_end=False)
                flow = None
        if flow is None:
            tomb = self._tomb.get(key)
            if tomb is not None:
                if not pure_syn:
                    self.stats["after_close"] += 1
                    if self.tally is not None:
                        self._tallied(key, "after_close")
                    return
                del self._tomb[key]
                self._tomb.pop(_reverse_key(key, seg), None)
            if len(self._live) >= self.max_flows:
                out.extend(self._evict())
            a = _Dir(seg, key)
            rkey = _reverse_key(key, seg)
            b = _Dir(seg, rkey, reverse=True)
            b.pkts = 0
            flow = _Flow(a, b, seg.ts_ns)
            self._flows[key] = flow
            self._flows[rkey] = flow
            self._live[flow] = None
            self.stats["flows_total"] += 1
            if self.tally is not None:
                self._tallied(key, "flows_total")
            d = a
        else:
            d = flow.a if key == flow.a.key else flow.b
        self._packet(flow, d, seg, flags)
        if flow.closing:
            self._close_into(flow, out, at_end=False)
        elif flow.done and flow.in_decided != 3:
            self._update_decided(flow)

    def skip(self, key: bytes, ts_ns: int) -> None:
        """Note that a packet of a decided flow was skipped at ``ts_ns`` (keeps idle expiry
        exact; optional)."""
        flow = self._flows.get(key)
        if flow is not None and ts_ns > flow.last_ts:
            flow.last_ts = ts_ns

    def touch(self, last_seen: dict[bytes, int]) -> None:
        """:meth:`skip` for many packets at once: ``last_seen`` maps a direction key of a
        decided flow to the latest timestamp of its skipped packets. Exact when called
        before the table next feeds, expires or finishes (a flow's idle time is read only
        there, and the largest timestamp wins whatever the order)."""
        flows = self._flows
        for key, ts in last_seen.items():
            flow = flows.get(key)
            if flow is not None and ts > flow.last_ts:
                flow.last_ts = ts

    def expire(self, now_ns: int) -> list[Handshake]:
        """Close flows idle for longer than ``idle_timeout_ns`` at capture time ``now_ns``.

        Cheap to call often: the table is only scanned every ``idle_timeout_ns / 8`` of
        capture time, so a flow closes between 1 and 1.125 idle timeouts after its last
        packet."""
        out: list[Handshake] = []
        if now_ns < self._next_scan:
            return out
        self._next_scan = now_ns + max(self.idle_timeout_ns // 8, 1)
        if self.pending_ts:
            self.touch(self.pending_ts)
            self.pending_ts.clear()
        limit = now_ns - self.idle_timeout_ns
        for flow in [f for f in self._live if f.last_ts < limit]:
            self.stats["expired"] += 1
            if self.tally is not None:
                self._tallied(flow.a.key, "expired")
            out.extend(self._close(flow, at_end=False, idle=True))
        tlimit = now_ns - self._tomb_ttl
        if self._tomb:
            for k in [k for k, t in self._tomb.items() if t < tlimit]:
                del self._tomb[k]
        return out

    def finish(self) -> list[Handshake]:
        """End of capture: close every live flow and return the remaining handshakes
        (nothing while ``defer_finish`` is set)."""
        out: list[Handshake] = []
        if self.defer_finish:
            return out
        for flow in list(self._live):
            out.extend(self._close(flow, at_end=True))
        self._tomb.clear()
        return out

    # -- reading a capture in parts (ParallelAnalysis) ---------------------------------
    def held_keys(self) -> set[bytes]:
        """Direction keys whose next packet this table would not treat as a stranger's: the
        keys of live flows and of tombstones. A table that saw only part of a capture
        differs from one that saw it all only in these keys' next packets."""
        return set(self._flows) | set(self._tomb)

    def _tallied(self, key: bytes, name: str) -> None:
        tally = self.tally
        if tally is not None:
            per = tally.get(key)
            if per is None:
                per = tally[key] = {}
            per[name] = per.get(name, 0) + 1

    # -- per packet ---------------------------------------------------------------------
    def _packet(self, flow: _Flow, d: _Dir, seg: Segment, flags: int) -> None:
        """One packet of ``flow`` sent by ``d``; ``flags`` is ``seg.flags`` (the caller has
        it: one tuple field read fewer per packet)."""
        ts = seg.ts_ns
        if ts > flow.last_ts:  # noqa: PLR1730 (per packet: cheaper than a max() call)
            flow.last_ts = ts
        d.pkts += 1
        if flow.done:
            d.pkts_after_done += 1
        is_a = d is flow.a
        peer = flow.b if is_a else flow.a
        syn = flags & SYN
        ack = flags & ACK
        plen = seg.payload_len
        # Zeek history letters: first occurrence per direction, in this order. Bits and a
        # packed int rather than strings and (letter, side) tuples: this runs for every
        # packet and the letter is usually already there; _history() spells them out once.
        letters = d.letters
        side = 1 if is_a else 0
        if syn:
            if ack:
                if not letters & _L_H:
                    letters |= _L_H
                    flow.events = (flow.events << 4) | (_EV_H + side)
            elif not letters & _L_S:
                letters |= _L_S
                flow.events = (flow.events << 4) | (_EV_S + side)
        if plen > 0:
            if not letters & _L_D:
                letters |= _L_D
                flow.events = (flow.events << 4) | (_EV_D + side)
        elif ack and not (flags & (SYN | FIN | RST)) and not letters & _L_A:
            letters |= _L_A
            flow.events = (flow.events << 4) | (_EV_A + side)
        if flags & (FIN | RST):
            if flags & FIN and not letters & _L_F:
                letters |= _L_F
                flow.events = (flow.events << 4) | (_EV_F + side)
            if flags & RST and not letters & _L_R:
                letters |= _L_R
                flow.events = (flow.events << 4) | (_EV_R + side)
        d.letters = letters

        if syn:
            if ack:
                d.synack = True
                if not flow.roles_fixed:
                    flow.client_is_a = not is_a
                    flow.roles_fixed = True
            else:
                d.syn = True
                if not flow.roles_fixed:
                    flow.client_is_a = is_a
                    flow.roles_fixed = True
            flow.syn_seen = True
            # RFC 9293 §3.4: the SYN occupies the ISN; data starts at ISN+1. Repeated
            # SYN-ACKs may carry different ISNs; the first payload picks the one it fits.
            if d.first_data_ts < 0:
                _note_isn(d, (seg.seq + 1) & 0xFFFFFFFF)
        elif ack and peer.synack and d.syn:
            d.ack_after_synack = True

        if plen > 0:
            if d.first_data_ts < 0:
                d.first_data_ts = ts
                if not flow.roles_fixed and peer.first_data_ts < 0:
                    # Provisional client: the first side that sent payload.
                    flow.client_is_a = is_a
            start_seq = seg.seq + 1 if syn else seg.seq
            if d.stream is None:
                d.stream = Stream(self._anchor(d, start_seq), self.stream_cap)
            d.stream.add(start_seq, seg.payload, plen, seg.frame, ts)
        if ack and peer.stream is not None and not peer.stream.released:
            # This side acknowledged the peer's bytes up to seg.ack: evidence of how far
            # the peer's stream really went (missing segments -> "gap", not "capture_end").
            peer.stream.note_end(seg.ack)
        if flags & FIN:
            d.fin = True
            if not d.fin_ts:
                d.fin_ts = ts
            if d.stream is not None and not d.stream.released:
                d.stream.note_end((seg.seq + (1 if syn else 0) + plen) & 0xFFFFFFFF)
        if flags & RST:
            if not d.rst:
                d.fin_rst = d.fin
            d.rst = True
            if not d.rst_ts:
                d.rst_ts = ts

        if not flow.done and (plen > 0 or flags & (FIN | RST)):
            self._progress(flow, ts)
        if flags & (RST | FIN):
            # Also after `done`: a server that sent non-TLS bytes is judged by its FIN/RST.
            self._tcp_event(flow, d, flags, ts)
            if not flow.done:
                self._check_done(flow)
        if flags & (FIN | RST):
            a = flow.a
            b = flow.b
            if (
                (a.fin and b.fin)
                or (a.rst and not (a.fin_rst and not b.rst))
                or (b.rst and not (b.fin_rst and not a.rst))
            ):
                # A RST after the sender's own FIN keeps the flow open until the peer's FIN
                # (or a RST, idle, end): Zeek then counts a normal termination (SF).
                flow.closing = True

    def _anchor(self, d: _Dir, start_seq: int) -> int:
        """The stream's offset 0: ISN+1 of the SYN this data belongs to, else the first
        payload's sequence number (picked up mid-stream)."""
        if d.isn0 < 0:
            return start_seq
        if d.isns is None:
            return d.isn0   # the only candidate: the loop below would pick it either way
        best = -1
        base = start_seq
        cands = [d.isn0, *d.isns]
        for cand in cands:
            off = seq_offset(start_seq, cand)
            if 0 <= off < self.stream_cap and (best < 0 or off < best):
                best, base = off, cand
        if best < 0:
            base = cands[-1]
        return base

    # -- the client's question: where is the hello, and what is it --------------------
    def _progress(self, flow: _Flow, ts: int) -> None:
        if not flow.roles_fixed:
            for d, is_a in ((flow.a, True), (flow.b, False)):
                st = d.stream
                if st is not None and st.data and looks_like_tls_hello(st.data) is True:
                    flow.client_is_a = is_a
                    flow.roles_fixed = True
                    break
        c = flow.client
        cst = c.stream
        if flow.q == _Q_OPEN:
            if cst is not None and cst.data:
                self._find_hello(flow, cst, closing=False)
            else:
                sst = flow.server.stream
                if sst is not None and sst.seen_end > _SERVER_GIVE_UP:
                    # The server streams data and the client said nothing (a download
                    # channel, or only one direction captured): no hello is coming.
                    flow.q = _Q_NONE
        if flow.q == _Q_HELLO and cst is not None:
            self._read_hello(flow, cst)
        if flow.hrr_state == 1 and cst is not None:
            self._read_second_hello(flow, cst, final=False)
        if flow.q in (_Q_HELLO, _Q_DONE, _Q_MID) and flow.outcome is None and flow.server_other is None:
            self._read_server(flow)
        if flow.infer == 1:
            self._infer(flow, final=False)
        self._check_done(flow)

    def _find_hello(self, flow: _Flow, st: Stream, *, closing: bool) -> None:
        sst = flow.server.stream
        give_up = (
            closing
            or st.full
            or (sst is not None and sst.seen_end > _SERVER_GIVE_UP)
            # Picked up mid-stream and the server talks: no prelude dialogue to wait for.
            or (not flow.syn_seen and sst is not None and len(sst.data) > 0)
        )
        res = _find_hello_start(st.data, give_up)
        if res is None:
            if closing:
                buf = st.data
                # Too few bytes to say, but they begin like a TLS record / SSLv2 hello:
                # an incomplete hello, never a client "without SNI".
                if buf and looks_like_tls_hello(buf) is None and (buf[0] == 0x16 or buf[0] & 0x80):
                    flow.q = _Q_HELLO
                    flow.hello_start = 0
                else:
                    flow.q = _Q_NONE if flow.syn_seen else _Q_MID
            elif st.full or st.released:
                flow.q = _Q_NONE if flow.syn_seen else _Q_MID
            return
        if res is False:
            flow.q = _Q_NONE if flow.syn_seen else _Q_MID
            return
        start, prelude, proxy = res
        flow.hello_start = start
        flow.prelude = prelude
        flow.proxy_client = proxy
        flow.q = _Q_HELLO
        if prelude is None:
            flow.sstart = 0

    def _read_hello(self, flow: _Flow, st: Stream) -> None:
        try:
            r = read_client_hello(st.data, flow.hello_start)
        except DecodeError as e:
            flow.malformed = e.detail
            flow.hello_end = len(st.data)
            flow.hspan = st.span(flow.hello_start, max(flow.hello_end, flow.hello_start + 1))
            flow.q = _Q_DONE
            self.issues.add(
                "malformed", "tls", f"malformed ClientHello: {e.detail}",
                frame=st.span(flow.hello_start, flow.hello_start + 1).frame or None,
                flow=self._flow_text(flow), key=("malformed_hello", e.detail),
            )
            return
        if r is None:
            if st.full:
                flow.cap_hit = True
                flow.hspan = st.span(flow.hello_start, len(st.data))
                flow.q = _Q_DONE
            return
        ch, end = r
        flow.ch = ch
        flow.hello_end = end
        flow.hspan = st.span(flow.hello_start, end)
        flow.q = _Q_DONE
        if not ch.sslv2 and not _offers_early_data(ch):
            # The client's next records may prove a ServerHello the capture lacks.
            flow.infer = 1
        if 0x0304 not in ch.supported_versions and flow.server.stream is not st and flow.infer != 1:
            # No TLS 1.3 offered, so no HelloRetryRequest and no second hello to read
            # (RFC 8446 §4.1.4): the client's question is answered, drop its bytes.
            st.release()

    def _read_second_hello(self, flow: _Flow, st: Stream, *, final: bool) -> None:
        buf = st.data
        p = flow.hello_end
        # Middlebox compatibility mode (RFC 8446 §D.4): a ChangeCipherSpec may come first.
        while p + 5 <= len(buf) and buf[p] == 20:
            p += 5 + ((buf[p + 3] << 8) | buf[p + 4])
        try:
            r = read_client_hello(buf, p)
        except DecodeError as e:
            flow.hrr_state = 2
            self.issues.add("malformed", "tls", f"second ClientHello after HRR: {e.detail}",
                            flow=self._flow_text(flow))
            return
        if r is None:
            if final or st.full:
                flow.hrr_state = 2
            return
        flow.hrr_state = 2
        ch2 = r[0]
        first = flow.ch
        if first is not None and ch2.sni_raw != first.sni_raw:
            self.issues.add(
                "info", "tls",
                "the ClientHello after a HelloRetryRequest changed its SNI",
                frame=st.span(p, p + 1).frame or None, flow=self._flow_text(flow),
                key=("hrr_sni_changed",),
            )

    def _infer(self, flow: _Flow, *, final: bool) -> None:
        """Read the client's first records after its hello while the server's reaction is
        undecided (or only a FIN). A ChangeCipherSpec, application data, or a Certificate /
        CertificateVerify / ClientKeyExchange / Finished message is sent only after the
        client received a ServerHello (RFC 5246 §7.3, RFC 8446 §4.4 and §D.4 -- a
        middlebox-compatibility CCS before the ServerHello comes only with 0-RTT data, so
        hellos offering early_data are never read here): the server answered and the
        capture lacks its reply (one direction captured, dropped segments). The server's
        ServerHello bytes precede its FIN, so the proof also outranks ``server_close``, and
        server bytes that are not a TLS reaction (the capture starts inside the server's
        flight after a lost segment)."""
        outcome = flow.outcome
        if (outcome is not None and outcome != "server_close") or flow.q != _Q_DONE or flow.ch is None:
            flow.infer = 2
            return
        st = flow.client.stream
        if st is None or st.released:
            flow.infer = 2
            return
        buf = st.data
        n = len(buf)
        p = flow.hello_end
        for _ in range(_INFER_RECORDS):
            if p + 5 > n or (buf[p] == 22 and p + 6 > n):
                # A handshake record's message type is its sixth byte: wait for it.
                if final or st.full:
                    break
                return
            ct = buf[p]
            if buf[p + 1] != 3:
                break
            what: str | None = None
            if ct == 20:
                what = "ChangeCipherSpec"
            elif ct == 23:
                what = "application data"
            elif ct == 22:
                what = _AFTER_SH.get(buf[p + 5])
                if what is None and buf[p + 5] != 1:
                    break
            else:
                break   # an alert or anything else proves nothing
            if what is not None:
                sp = st.span(p, p + 1)
                hs = flow.hspan
                if hs is not None and sp.ts_ns <= hs.last_ts_ns:
                    # Sent with the hello's last byte: before any ServerHello could arrive.
                    break
                flow.outcome = "server_hello"
                flow.outcome_ts = sp.ts_ns
                flow.inferred = (
                    "no ServerHello in the capture; inferred from the client's "
                    f"{what} in frame {sp.frame}"
                )
                flow.infer = 2
                return
            p += 5 + ((buf[p + 3] << 8) | buf[p + 4])
        flow.infer = 2

    # -- the server's reaction ------------------------------------------------------------
    def _read_server(self, flow: _Flow, final: bool = False) -> None:
        s = flow.server
        st = s.stream
        if st is None or not st.data:
            return
        buf = st.data
        if flow.q == _Q_MID:
            # Midstream: a record is due only when the client's bytes came first and the
            # server's first bytes are a ServerHello (the hello's start was missed).
            try:
                r = read_server_reaction(buf, 0)
            except SniparseError:
                r = None
                flow.q = _Q_NONE
                return
            if r is None:
                if st.full:
                    flow.q = _Q_NONE
                return
            c = flow.client
            if r.kind == "server_hello" and 0 <= c.first_data_ts <= s.first_data_ts:
                flow.mid_record = True
                cst = c.stream
                if cst is not None and cst.data:
                    flow.hspan = cst.span(0, len(cst.data))
                flow.q = _Q_DONE
                self._set_reaction(flow, st, 0, r)
            else:
                flow.q = _Q_NONE
            return
        if flow.sstart is None:
            flow.sstart = _find_server_tls(buf, flow.prelude)
            if flow.sstart is None:
                return
        try:
            r = read_server_reaction(buf, flow.sstart)
        except DecodeError as e:
            p = flow.sstart
            if len(buf) > p + 5 and buf[p] == 22 and buf[p + 5] == 2:
                # A handshake record whose first message is a ServerHello (RFC 8446 §4):
                # the server did answer with a ServerHello even if its body does not parse
                # (TLS 1.3 drafts, broken stacks). The outcome does not depend on the body.
                flow.outcome = "server_hello"
                flow.outcome_ts = st.last_ts_of(p, p + 6)
                self.issues.add(
                    "malformed", "tls", f"ServerHello could not be parsed: {e.detail}",
                    flow=self._flow_text(flow), key=("server_hello_malformed", e.detail),
                )
            else:
                flow.server_other = f"the server's first TLS bytes are malformed: {e.detail}"
                self._note_server_other(flow)
            self._server_answered(flow)
            return
        if r is None:
            if st.blocked_by_cut():
                self._cut_reaction(flow, st, flow.sstart)
            elif st.full:
                flow.server_other = "the server's first TLS message exceeds the buffer"
                self._server_answered(flow)
            return
        al = r.alert
        if r.kind == "alert" and al is not None and al.level == 1 and al.description not in (0, 90):
            # A warning (typically unrecognized_name, RFC 6066 §3) is not the server's
            # answer when a ServerHello follows it: judge by what comes after, and keep the
            # warning only when nothing follows before the server's stream ends.
            try:
                after = read_server_reaction(buf, flow.sstart, past_warnings=True)
            except DecodeError:
                after = None
            if after is not None:
                r = after
            elif not (final or s.fin or s.rst or st.full or st.blocked_by_cut()):
                return
        self._set_reaction(flow, st, flow.sstart, r)
        self._server_answered(flow)

    def _set_reaction(self, flow: _Flow, st: Stream, start: int, r: ServerReaction) -> None:
        kind = r.kind
        end = r.end
        ts = st.last_ts_of(start, max(end, start + 1))
        if kind == "server_hello":
            sh = r.server_hello
            flow.outcome = "server_hello"
            flow.outcome_ts = ts
            if sh is not None:
                flow.server_version = version_name(sh.selected_version)
                if sh.hrr:
                    flow.hrr = True
                    ch = flow.ch
                    if ch is not None and flow.hrr_state == 0:
                        flow.hrr_state = 1
                        cst = flow.client.stream
                        if cst is not None and not cst.released:
                            self._read_second_hello(flow, cst, final=False)
        elif kind == "alert":
            flow.outcome = "alert"
            flow.outcome_ts = ts
            al = r.alert
            flow.alert = al.description if al is not None else None
        else:
            flow.server_other = (
                "the server answered with bytes that are not TLS"
                if kind == "not_tls"
                else "the server's first TLS record is neither a ServerHello nor an alert"
            )
            self._note_server_other(flow)

    def _cut_reaction(self, flow: _Flow, st: Stream, p: int) -> None:
        """The snaplen cut the server's first message: decide from the captured prefix.
        A handshake record whose message type is ServerHello (RFC 8446 §4) is a ServerHello
        whatever its cut body says; an alert record is an alert (its description when
        captured). Anything shorter stays undecided (the outcome then comes from FIN/RST)."""
        buf = st.data
        n = len(buf)
        if n >= p + 6 and buf[p] == 22 and buf[p + 1] == 3 and buf[p + 5] == 2:
            flow.outcome = "server_hello"
            # RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello with this random.
            if n >= p + 43 and bytes(buf[p + 11 : p + 43]) == HRR_RANDOM:
                flow.hrr = True
        elif n >= p + 5 and buf[p] == 21 and buf[p + 1] == 3:
            flow.outcome = "alert"
            flow.alert = buf[p + 6] if n >= p + 7 else None
        else:
            return
        flow.outcome_ts = st.last_ts_of(p, n)
        self.issues.add(
            "truncated", "flow", "the snaplen cut the server's first TLS message",
            flow=self._flow_text(flow), key=("server_reaction_cut",),
        )
        self._server_answered(flow)

    @staticmethod
    def _server_answered(flow: _Flow) -> None:
        st = flow.server.stream
        if st is not None and not st.released:
            st.release()

    def _note_server_other(self, flow: _Flow) -> None:
        self.issues.add("info", "flow", flow.server_other or "", flow=self._flow_text(flow),
                        key=("server_other", flow.server_other))

    def _tcp_event(self, flow: _Flow, d: _Dir, flags: int, ts: int) -> None:
        if flow.outcome is not None or flow.q in (_Q_OPEN, _Q_NONE, _Q_MID):
            return
        if d is flow.server:
            if flags & RST:
                flow.outcome, flow.outcome_ts = "server_reset", ts
            elif flags & FIN:
                flow.outcome, flow.outcome_ts = "server_close", ts
        elif flags & RST:
            flow.outcome, flow.outcome_ts = "client_reset", ts

    def _check_done(self, flow: _Flow) -> None:
        q = flow.q
        outcome = flow.outcome
        if flow.infer == 1 and outcome is not None and outcome != "server_close":
            flow.infer = 2
        if q == _Q_NONE or q == _Q_DONE and flow.hrr_state != 1 and flow.infer != 1 and (
            outcome is not None or flow.server_other is not None
        ):
            flow.done = True
        else:
            return
        _release(flow.a.stream)
        _release(flow.b.stream)

    def _update_decided(self, flow: _Flow) -> None:
        """Put the flow's direction keys in ``decided`` once they qualify (module notes).
        Called for every packet of a done flow until both are in: no tuples or loops."""
        if flow.in_decided == 3:
            return
        established = not flow.syn_seen or flow.client.ack_after_synack
        if not established:
            return
        if not flow.in_decided & 1 and _letters_known(flow.a):
            self.decided.add(flow.a.key)
            flow.in_decided |= 1
        if not flow.in_decided & 2 and _letters_known(flow.b):
            self.decided.add(flow.b.key)
            flow.in_decided |= 2

    # -- closing ----------------------------------------------------------------------------
    def _evict(self) -> list[Handshake]:
        oldest = next(iter(self._live))
        self.stats["flow_table_full"] += 1
        if self.tally is not None:
            self._tallied(oldest.a.key, "flow_table_full")
        self.issues.add(
            "limit", "flow",
            f"flow table full ({self.max_flows} flows): oldest flows closed early",
            flow=self._flow_text(oldest), key=("flow_table_full",),
        )
        return self._close(oldest, at_end=False, idle=True)

    def _close(self, flow: _Flow, *, at_end: bool, idle: bool = False) -> list[Handshake]:
        out: list[Handshake] = []
        self._close_into(flow, out, at_end=at_end, idle=idle)
        return out

    def _close_into(self, flow: _Flow, out: list[Handshake], *, at_end: bool, idle: bool = False) -> None:
        """Close ``flow``; its handshake, if it has one, goes to ``out``."""
        # Once per connection: get + del rather than dict.pop(k, None) (compiled, a generic
        # method call), and no loop over a tuple of the two directions (callgrind on the
        # handshake benchmark: ~2,000 instructions fewer per connection).
        live = self._live
        if flow in live:
            del live[flow]
        pending = self.pending_ts
        if pending:
            self._apply_pending(flow, flow.a.key)
            self._apply_pending(flow, flow.b.key)
        last_ts = flow.last_ts
        self._forget_key(flow, flow.a.key, at_end, last_ts, flow.in_decided & 1 != 0)
        self._forget_key(flow, flow.b.key, at_end, last_ts, flow.in_decided & 2 != 0)
        tomb = self._tomb
        excess = len(tomb) - self.max_flows
        if excess > 0:
            # Bounded: drop the oldest tombstones (insertion order), one or two per close.
            # Never copy all the keys: past the cap that happens on every close, and a busy
            # capture then costs O(max_flows) per connection.
            it = iter(tomb)
            for k in [next(it) for _ in range(excess)]:
                del tomb[k]
        hs = self._finalise(flow, at_end=at_end, idle=idle)
        if hs is not None:
            out.append(hs)

    def _apply_pending(self, flow: _Flow, key: bytes) -> None:
        """Move a direction key's skipped-packet time from ``pending_ts`` to the flow."""
        pending = self.pending_ts
        t = pending.get(key)
        if t is not None:
            del pending[key]
            if t > flow.last_ts:  # noqa: PLR1730 (compiled: cheaper than a max() call)
                flow.last_ts = t

    def _forget_key(self, flow: _Flow, key: bytes, at_end: bool, last_ts: int, decided: bool) -> None:
        """A closing flow's direction key leaves the table (a tombstone stays unless at the
        capture's end). ``decided``: the flow put the key in ``decided`` (its in_decided bit)."""
        flows = self._flows
        if flows.get(key) is flow:
            del flows[key]
        if decided:
            self.decided.discard(key)
        if not at_end:
            self._tomb[key] = last_ts

    def _finalise(self, flow: _Flow, *, at_end: bool, idle: bool) -> Handshake | None:
        c = flow.client
        cst = c.stream
        if flow.q == _Q_OPEN:
            if cst is not None and cst.data:
                self._find_hello(flow, cst, closing=True)
                if flow.q == _Q_HELLO:
                    self._read_hello(flow, cst)
            elif c.first_data_ts >= 0:
                flow.q = _Q_NONE if flow.syn_seen else _Q_MID
        if flow.hrr_state == 1 and cst is not None and not cst.released:
            self._read_second_hello(flow, cst, final=True)
        if flow.q == _Q_MID:
            self._read_server(flow)
            if flow.q == _Q_MID:
                flow.q = _Q_NONE
        if flow.q in (_Q_HELLO, _Q_DONE) and flow.outcome is None:
            self._late_outcome(flow)
        if flow.q == _Q_OPEN or flow.q == _Q_NONE:
            self._count_kind(flow)
            return None
        self.stats["tls"] += 1
        if self.tally is not None:
            self._tallied(flow.a.key, "tls")
        return self._build(flow, at_end=at_end, idle=idle)

    def _late_outcome(self, flow: _Flow) -> None:
        """The hello start was only recognised at the close (too few bytes before): read the
        server's reaction and replay the FIN/RST events that were held back.

        A method of its own so that no caller's ``flow.outcome is None`` test is still in
        force here: the reads below change ``flow.outcome``, and compiled code (mypyc)
        trusts a narrowed attribute type (a narrowed read of a changed attribute raises)."""
        c = flow.client
        if flow.server_other is None:
            self._read_server(flow, final=True)
        if flow.outcome is None and flow.infer == 1:
            self._infer(flow, final=True)
        if flow.outcome is None or flow.inferred is not None:
            s = flow.server
            events = [(t, k) for t, k in ((s.rst_ts, "server_reset"), (s.fin_ts, "server_close"),
                                          (c.rst_ts, "client_reset")) if t]
            if events:
                t, k = min(events)
                if flow.inferred is None:
                    flow.outcome_ts, flow.outcome = t, k
                elif k != "server_close" and t < flow.outcome_ts:
                    # A reset before the client's proof records is the first reaction.
                    flow.outcome_ts, flow.outcome, flow.inferred = t, k, None

    def _count_kind(self, flow: _Flow) -> None:
        c = flow.client
        s = flow.server
        if c.first_data_ts >= 0 or s.first_data_ts >= 0:
            kind = "not_tls" if flow.syn_seen else "midstream"
        elif not flow.syn_seen:
            kind = "midstream"
        elif c.syn and s.rst and not s.synack:
            kind = "rejected_syn"
        elif c.syn and s.pkts == 0:
            kind = "syn_only"
        else:
            kind = "no_payload"
        self.stats[kind] += 1
        if self.tally is not None:
            self._tallied(flow.a.key, kind)

    def _build(self, flow: _Flow, *, at_end: bool, idle: bool) -> Handshake:
        c = flow.client
        s = flow.server
        cst = c.stream
        ch = flow.ch
        start = flow.hello_start
        detail: str | None = None
        reason: str | None = None
        segments = 0
        frame = 0
        ts_ns = c.first_data_ts if c.first_data_ts >= 0 else flow.first_ts
        hello_ts = ts_ns
        sp = flow.hspan
        if sp is None and cst is not None and len(cst.data) > start:
            sp = cst.span(start, len(cst.data))
        if sp is not None and sp.segments:
            segments, frame, ts_ns, hello_ts = sp.segments, sp.frame, sp.ts_ns, sp.last_ts_ns
        # The hello's fields are read from its instance dict: ClientHello is an ordinary
        # (non-native) class, and a dict lookup is cheaper than an attribute lookup through
        # its type (~110 against ~220 instructions, eight fields a connection).
        chd: dict[str, Any] = ch.__dict__ if ch is not None else _NO_HELLO
        if ch is not None:
            status = chd["sni_status"]
        elif flow.malformed is not None:
            status, detail = "malformed", flow.malformed
        elif flow.mid_record:
            status, reason = "unknown", "midstream"
            detail = "the capture started after the ClientHello began"
        else:
            status = "unknown"
            if flow.cap_hit:
                reason = "truncated"
                detail = f"the ClientHello exceeds the {self.stream_cap}-byte reassembly limit"
            elif cst is None:
                reason = "truncated"
            else:
                reason = cst.incomplete_reason(at_end)
                if reason == "capture_end":
                    detail = "the capture ended before the ClientHello was complete"
                elif reason == "truncated":
                    detail = "the snaplen cut a segment of the ClientHello"
                elif idle:
                    detail = "the flow went idle before the ClientHello was complete"
                else:
                    detail = "segments of the ClientHello are missing from the capture"
            self.issues.add(
                "gap" if reason == "gap" else "truncated", "flow",
                f"ClientHello incomplete ({reason})", frame=frame or None,
                flow=self._flow_text(flow), key=("hello_incomplete", reason),
            )
        if cst is not None and cst.conflicts:
            self.issues.add("malformed", "tcp", "overlapping retransmission with different bytes",
                            flow=self._flow_text(flow), key=("overlap_conflict",))
        outcome = flow.outcome or "no_response"
        outcome_ms: float | None = None
        if flow.inferred is not None:
            # No server event to time: the ServerHello itself is missing.
            if detail is None:
                detail = flow.inferred
                if flow.server_other is not None:
                    detail += f"; {flow.server_other}"
            self.issues.add(
                "gap", "flow", "the server's reply is missing from the capture "
                "(a ServerHello is inferred from the client's next records)",
                frame=frame or None, flow=self._flow_text(flow), key=("server_hello_inferred",),
            )
        elif flow.outcome is not None and (ch is not None or flow.malformed or frame):
            outcome_ms = (flow.outcome_ts - hello_ts) / 1e6
        if flow.server_other is not None and detail is None:
            detail = flow.server_other
        versions: tuple[str, ...] = ()
        alpn: tuple[str, ...] = ()
        ja3 = ja3s = ja4 = ja4r = None
        if ch is not None:
            versions = _version_names(chd["supported_versions"], chd["legacy_version"])
            alpn = chd["alpn"]
            ja3s, ja3, ja4, ja4r = _fingerprints(ch)
        # Every Handshake field, in declaration order (_HS_FIELDS).
        return _make_handshake((
            ts_ns,
            _ip_text(c.src),                                        # client_ip
            c.sport,                                                # client_port
            _ip_text(c.dst),                                        # server_ip
            c.dport,                                                # server_port
            chd["sni"],
            status,                                                 # sni_status
            reason,                                                 # unknown_reason
            detail,
            chd["sslv2"],
            chd["ech"],
            versions,
            alpn,
            ja3,
            ja4,
            segments,
            flow.hrr,                                               # hrr
            outcome,
            flow.alert if outcome == "alert" else None,             # alert
            outcome_ms,
            _conn_state(flow),                                      # conn_state
            _history(flow),                                         # history
            frame,
            chd["sni_raw"],
            flow.proxy_client,                                      # proxy_client
            flow.prelude,                                           # prelude
            c.ip_version,                                           # ip_version
            c.vlan if c.pkts else s.vlan,                           # vlan
            ja3s,                                                   # ja3_string
            ja4r,                                                   # ja4_r
            flow.server_version if outcome == "server_hello" else None,  # server_version
            ch,                                                     # client_hello
        ))

    @staticmethod
    def _flow_text(flow: _Flow) -> str:
        c = flow.client
        return (f"{_endpoint(_ip_text(c.src), c.sport)} -> "
                f"{_endpoint(_ip_text(c.dst), c.dport)}")


# -- helpers ---------------------------------------------------------------------------------

_VERSION_NAMES: Final[dict[tuple[tuple[int, ...], int], tuple[str, ...]]] = {}
# The last answer of _version_names: [supported, legacy, names].
_LAST_VERSIONS: Final[list[object]] = [(), -1, ()]


def _version_names(supported: tuple[int, ...], legacy: int) -> tuple[str, ...]:
    """Offered versions as names, highest first, GREASE removed (remembered: a capture's
    clients offer a handful of different lists, most often the same as the previous
    connection's; checking that first skips hashing the key, ~1,100 -> ~300 instructions
    a call measured with callgrind)."""
    last = _LAST_VERSIONS
    if last[1] == legacy and last[0] == supported:
        return cast("tuple[str, ...]", last[2])
    key = (supported, legacy)
    names = _VERSION_NAMES.get(key)
    if names is None:
        vs = [v for v in supported if not is_grease(v)] or [legacy]
        names = tuple(version_name(v) for v in sorted(set(vs), reverse=True))
        if len(_VERSION_NAMES) >= 4096:
            _VERSION_NAMES.clear()
        _VERSION_NAMES[key] = names
    last[0], last[1], last[2] = supported, legacy, names
    return names


def _offers_early_data(ch: ClientHello) -> bool:
    """``_EARLY_DATA in ch.extension_types`` without building that tuple."""
    for ext_type, _ in ch.extensions:
        if ext_type == _EARLY_DATA:
            return True
    return False


def _seen_isn(d: _Dir, start: int) -> bool:
    """``start`` is one of the ISN+1 values recorded for ``d``."""
    return start == d.isn0 or (d.isns is not None and start in d.isns)


def _note_isn(d: _Dir, start: int) -> None:
    """Record ISN+1 of a SYN / SYN-ACK seen before data (at most 4 different ones)."""
    if d.isn0 < 0:
        d.isn0 = start
    elif not _seen_isn(d, start):
        more = d.isns
        if more is None:
            d.isns = [start]
        elif len(more) < 3:
            more.append(start)


def _release(st: Stream | None) -> None:
    if st is not None and not st.released:
        st.release()


def _letters_known(d: _Dir) -> bool:
    """The direction shows both A and D (all a data or pure-ACK packet could add), or has
    sent _LETTER_WAIT packets since its flow was done."""
    return (d.letters & (_L_A | _L_D)) == _L_A | _L_D or d.pkts_after_done >= _LETTER_WAIT


def _fingerprints(ch: ClientHello) -> tuple[str | None, str | None, str | None, str | None]:
    """(ja3_string, ja3 md5, ja4, ja4_r); None where this hello cannot be fingerprinted."""
    try:
        fp = fingerprints(ch)
    except SniparseError:
        return None, None, None, None
    return fp.ja3_string, fp.ja3, fp.ja4, fp.ja4_r


def _find_hello_start(
    buf: bytearray, give_up: bool = False
) -> tuple[int, str | None, str | None] | Literal[False] | None:
    """Where the ClientHello starts in the client's opening bytes.

    Returns ``(offset, prelude, proxy_client)``, ``None`` when more bytes are needed, or
    ``False`` when the bytes are not a hello (nor a recognised prelude before one).
    ``give_up``: answer False rather than None in the open-ended binary scan (the flow is
    closing, or the server already sent plenty without a hello from the client).
    """
    n = len(buf)
    if n == 0:
        return None
    pos = 0
    proxy: str | None = None
    prelude: str | None = None
    # The PROXY headers are only looked for when the first byte fits (a plain hello, the
    # common case, then costs no slices).
    first = buf[0]
    # PROXY protocol v1: "PROXY TCP4 src dst sport dport\r\n", at most 107 bytes.
    if first == 0x50 and (buf[:6] == b"PROXY " or (n < 6 and b"PROXY "[:n] == bytes(buf))):
        if n < 6:
            return None
        i = buf.find(b"\r\n", 0, 108)
        if i < 0:
            return None if n < 108 else False
        parts = bytes(buf[:i]).split(b" ")
        if len(parts) == 6 and parts[1] in (b"TCP4", b"TCP6"):
            try:
                ip = str(ipaddress.ip_address(parts[2].decode("ascii")))
                proxy = _endpoint(ip, int(parts[4]))
            except (ValueError, UnicodeDecodeError):
                proxy = None
        pos = i + 2
    elif first == 0x0D and (buf[:12] == _PROXY2_SIG or (n < 12 and _PROXY2_SIG[:n] == bytes(buf))):
        # PROXY protocol v2: 12-byte signature, ver/cmd, family, length, addresses.
        if n < 16:
            return None
        ln = (buf[14] << 8) | buf[15]
        if n < 16 + ln:
            return None
        fam = buf[13]
        if fam == 0x11 and ln >= 12:
            proxy = _endpoint(_ip_text(bytes(buf[16:20])), (buf[24] << 8) | buf[25])
        elif fam == 0x21 and ln >= 36:
            proxy = _endpoint(_ip_text(bytes(buf[16:32])), (buf[48] << 8) | buf[49])
        pos = 16 + ln
    lk = looks_like_tls_hello(buf, pos)
    if lk is True:
        return pos, prelude, proxy
    if lk is None:
        return None
    if buf[pos : pos + 8] == _PG_SSLREQ:
        lk = looks_like_tls_hello(buf, pos + 8)
        if lk is None:
            return None
        return (pos + 8, "starttls_postgres", proxy) if lk else False
    if buf[pos : pos + 8] == b"CONNECT ":
        j = buf.find(b"\r\n\r\n", pos, pos + _PRELUDE_LIMIT)
        if j < 0:
            return None if n < pos + _PRELUDE_LIMIT else False
        lk = looks_like_tls_hello(buf, j + 4)
        if lk is None:
            return None
        return (j + 4, "http_connect", proxy) if lk else False
    head = bytes(buf[pos : pos + 40])
    if _PLAINTEXT.match(head):
        return False
    if not _TEXT_OPENERS.match(head):
        return _scan_binary(buf, pos, proxy, give_up)
    limit = min(n, pos + _PRELUDE_LIMIT)
    q = pos
    while True:
        i = buf.find(b"\n", q, limit)
        k = buf.find(b">", q, limit)
        if i < 0 and k < 0:
            break
        q = (min(i, k) if i >= 0 and k >= 0 else max(i, k)) + 1
        lk = looks_like_tls_hello(buf, q)
        if lk is None:
            return None
        if lk:
            return q, _prelude_name(bytes(buf[pos:q])), proxy
    return None if n < pos + _PRELUDE_LIMIT else False


def _scan_binary(
    buf: bytearray, pos: int, proxy: str | None, give_up: bool
) -> tuple[int, str | None, str | None] | Literal[False] | None:
    """A hello after an unrecognised binary prelude (SOCKS, MySQL/LDAP STARTTLS, RDP...):
    the first offset in the bounded window where a whole ClientHello parses (or starts and
    is still incomplete). Random bytes practically never pass the full parse."""
    n = len(buf)
    end = min(n, pos + _GENERIC_LIMIT)
    q = pos
    while True:
        i = buf.find(b"\x16\x03", q, end)
        if i < 0:
            break
        lk = looks_like_tls_hello(buf, i)
        if lk is None:
            return False if give_up else None
        if lk:
            try:
                r = read_client_hello(buf, i)
                ok = True
            except DecodeError:
                ok = False
            if ok:
                if r is None and give_up:
                    return False
                return i, _binary_prelude_name(bytes(buf[pos:i])), proxy
        q = i + 1
    if give_up or n >= pos + _GENERIC_LIMIT:
        return False
    return None


def _binary_prelude_name(head: bytes) -> str:
    if head[:1] in (b"\x04", b"\x05"):
        return "socks"
    if head[:2] == b"\x03\x00":
        return "rdp"
    if b"1.3.6.1.4.1.1466.20037" in head:
        return "starttls_ldap"
    if head[:4] == b"\x20\x00\x00\x01":
        return "starttls_mysql"
    return "unknown"


def _prelude_name(text: bytes) -> str:
    if b"<starttls" in text.lower():
        return "starttls_xmpp"
    if _FTP_AUTH.search(text):
        return "starttls_ftp"
    if _POP3_STLS.search(text):
        return "starttls_pop3"
    if _SMTP_STARTTLS.search(text):
        return "starttls_smtp"
    if _IMAP_STARTTLS.search(text):
        return "starttls_imap"
    return "plaintext"


def _find_server_tls(buf: bytearray, prelude: str | None) -> int | None:
    """Offset of the first TLS record header in the server's bytes after its plaintext
    replies to a prelude, or None when it is not there yet."""
    n = len(buf)
    cands = [0]
    if prelude == "starttls_postgres":
        cands = [1]
    elif prelude in _BINARY_PRELUDES:
        # Binary replies: the first ServerHello or alert record header in the window.
        limit = min(n, _PRELUDE_LIMIT)
        for pat in (b"\x16\x03", b"\x15\x03"):
            q = buf.find(pat, 0, limit)
            while q >= 0:
                if q + 6 <= n and (buf[q + 5] == 2 if pat[0] == 22 else buf[q + 3 : q + 5] == b"\x00\x02"):
                    cands.append(q)
                    break
                q = buf.find(pat, q + 1, limit)
        cands.sort()
    else:
        q = 0
        limit = min(n, _PRELUDE_LIMIT)
        while q < limit:
            i = buf.find(b"\n", q, limit)
            k = buf.find(b">", q, limit)
            if i < 0 and k < 0:
                break
            q = (min(i, k) if i >= 0 and k >= 0 else max(i, k)) + 1
            cands.append(q)
    for q in cands:
        if q + 3 <= n and 20 <= buf[q] <= 24 and buf[q + 1] == 3 and buf[q + 2] <= 4:
            return q
    if n >= _PRELUDE_LIMIT:
        return 0  # give up on the prelude: read whatever is there (it will be "not TLS")
    return None


def _ep_state(d: _Dir, peer: _Dir, established: bool) -> int:
    if d.rst:
        # Zeek (TCPSessionAdapter::UpdateStateMachine): an endpoint that sent FIN then RST
        # returns to CLOSED when the peer's FIN arrives ("actually normal termination").
        if d.fin_rst and peer.fin:
            return _CLOSED
        return _RESET
    if d.fin:
        return _CLOSED
    if established:
        return _ESTABLISHED
    if d.syn:
        return _SYN_SENT
    if d.synack:
        return _SYN_ACK_SENT
    if d.pkts:
        return _PARTIAL
    return _INACTIVE


def _conn_state(flow: _Flow) -> str:
    """Zeek's conn_state (base/protocols/conn/main.zeek), originator = client."""
    o, r = flow.client, flow.server
    established = o.syn and r.synack and o.ack_after_synack
    os_ = _ep_state(o, r, established)
    rs = _ep_state(r, o, established)
    o_inactive = os_ in (_INACTIVE, _PARTIAL)
    r_inactive = rs in (_INACTIVE, _PARTIAL)
    if rs == _RESET:
        if os_ in (_SYN_SENT, _SYN_ACK_SENT) or (
            os_ == _RESET and o.first_data_ts < 0 and r.first_data_ts < 0
        ):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os_ == _RESET:
        if r_inactive:
            return "RSTOS0" if _RST_HISTORY.match(_history(flow)) else "OTH"
        return "RSTO"
    if rs == _CLOSED and os_ == _CLOSED:
        return "SF"
    if os_ == _CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == _CLOSED:
        return "SHR" if o_inactive else "S3"
    if os_ == _SYN_SENT and rs == _INACTIVE:
        return "S0"
    if os_ == _ESTABLISHED and rs == _ESTABLISHED:
        return "S1"
    return "OTH"


# History text by (events, client_is_a): a capture's connections share a few dozen histories.
_HISTORY: Final[dict[int, str]] = {}


def _history(flow: _Flow) -> str:
    """Zeek history letters: originator upper case, responder lower case."""
    key = (flow.events << 1) | (1 if flow.client_is_a else 0)
    text = _HISTORY.get(key)
    if text is None:
        text = _history_text(flow.events, flow.client_is_a)
        if len(_HISTORY) >= 4096:
            _HISTORY.clear()
        _HISTORY[key] = text
    return text


def _history_text(events: int, client_is_a: bool) -> str:
    codes: list[int] = []
    while events:
        codes.append(events & 15)
        events >>= 4
    out = ["^"] if not client_is_a else []
    for code in reversed(codes):
        letter = _HISTORY_LETTERS[(code - 1) >> 1]
        is_a = (code - 1) & 1 == 1
        out.append(letter if is_a == client_is_a else letter.lower())
    return "".join(out)
