"""TLS wire formats: record framing, ClientHello, ServerHello, Alert.

Sans-I/O. Nothing here reads files or sockets; every function takes the bytes one direction of
a TCP connection has produced so far and either returns a result, returns ``None`` ("need
more bytes"), or raises a :class:`~sniparse.errors.MalformedError` (or its subclass
:class:`NotTLSError` when the bytes are not TLS at all).

Framing rules (RFC 8446 §5.1, RFC 5246 §6.2.1):

* A record is ``type(1) version(2) length(2) fragment``. We accept any record version
  0x0300-0x03ff: a passive observer must read what clients really send (0x0301 in the first
  record is common even for TLS 1.3 hellos).
* A plaintext fragment may be at most 2^14 bytes; we allow 2^14 + 2048 (the ciphertext bound)
  before calling a record malformed, so a slightly oversized but otherwise sane record from a
  sloppy stack is still read.
* One handshake message may span several records, and handshake records must not be
  interleaved with records of other types; zero-length handshake fragments are forbidden.
* A ClientHello is the client's only handshake message until the server answers, so bytes
  left over in the record that completed it are malformed.
* A ClientHello larger than 64 KiB, or split over more than 256 records, is treated as
  malformed (bounded memory and work per call; real hellos with post-quantum key shares are
  ~1.8 KB in one record).

SSLv2-compatible CLIENT-HELLO (RFC 5246 Appendix E.2, RFC 6101 Appendix E): a 2-byte header
with the high bit set, message type 1, version 0x0002 or 0x03xx. It cannot carry extensions, so
its ``sni_status`` is always ``"absent"``.

Server side: the first record decides (ServerHello / HelloRetryRequest, alert, other TLS
record, not TLS). ServerHellos of TLS 1.3 drafts before -22, which had no session id and no
compression method, are read too; an SSLv2 SERVER-HELLO is recognised.

Implementation note: the ClientHello body parser below reads with explicit offset arithmetic
and bounds checks rather than through a bounds-checked cursor object. One hello is parsed
per connection, but the benchmark target (under 20 µs per hello including fingerprints) does not
leave room for a context manager per vector: measured with ``benchmarks/bench_tls.py``, a
517-byte hello parses in about 11 µs here against 23 µs for dpkt's parser. Every length is
still checked before it is used, and every vector's end is checked against its container
(overrun and leftovers both raise); the tests bump every length field by one either way.

The common case of that parser also exists in C (``sniparse._speedups.client_hello_fields``,
used when built and ``SNIPARSE_PURE`` is not set): a well-formed hello with at most one
extension of each type, an ASCII host name in the usual single-entry server_name list and
well-formed decoded extensions gives the same field values; for anything else it declines
and the Python parser below decides (raises, or handles the odd case). ``tests/test_tls_c.py``
checks it against the Python parser on every fixture and corpus hello, their prefixes and
mutations, and generated hellos. The server's first record has the same arrangement
(``_speedups.server_reaction``: an alert record, or a handshake record holding a whole
well-formed ServerHello, answered with the ServerReaction this module builds; anything else
declined), checked by ``tests/test_tls_server_c.py``.

Error offsets: framing errors give the offset from the start of the stream passed in
(``start``); errors inside a ClientHello/ServerHello body give the offset from the first
byte of that handshake message (its type byte).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, fields
from struct import Struct
from typing import Final, TypeAlias, cast

from ._compiled import mypyc_attr, speedups
from .errors import MalformedError, TruncatedError

__all__ = [
    "ALERT_DESCRIPTIONS",
    "EXTENSION_NAMES",
    "HRR_RANDOM",
    "MAX_HELLO_LEN",
    "MAX_HELLO_RECORDS",
    "MAX_RECORD_LEN",
    "VERSION_NAMES",
    "Alert",
    "ClientHello",
    "NotTLSError",
    "ServerHello",
    "ServerReaction",
    "alert_name",
    "extension_name",
    "is_grease",
    "looks_like_tls_hello",
    "parse_client_hello",
    "parse_server_hello",
    "read_client_hello",
    "read_server_reaction",
    "version_name",
]

Buffer: TypeAlias = "bytes | bytearray | memoryview"

# -- constants -----------------------------------------------------------------------------

#: Record content types (RFC 8446 §5.1; heartbeat RFC 6520).
CT_CHANGE_CIPHER_SPEC = 20
CT_ALERT = 21
CT_HANDSHAKE: Final = 22
CT_APPLICATION_DATA = 23
CT_HEARTBEAT = 24

#: Handshake message types (RFC 8446 §4).
HS_CLIENT_HELLO: Final = 1
HS_SERVER_HELLO = 2

#: SSLv2 message types (RFC 6101 Appendix E / the SSLv2 draft).
SSL2_MT_ERROR = 0
SSL2_MT_CLIENT_HELLO = 1
SSL2_MT_SERVER_HELLO = 4

#: Largest record fragment accepted: 2^14 plaintext plus the 2048-byte ciphertext expansion.
MAX_RECORD_LEN: Final = (1 << 14) + 2048
#: Largest ClientHello / ServerHello message accepted (bounded memory on hostile input).
MAX_HELLO_LEN: Final = 1 << 16
#: Most records one hello may be split into. Real stacks use one (or a few when a hello
#: exceeds 16 KiB; anti-censorship tools split into a handful). The framer is stateless and
#: is called again as bytes arrive, so a cap keeps each call's work bounded.
MAX_HELLO_RECORDS = 256

#: The fixed ServerHello.random that marks a HelloRetryRequest (RFC 8446 §4.1.3):
#: SHA-256("HelloRetryRequest").
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

# Extension types (IANA "TLS ExtensionType Values").
EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_PADDING = 21
EXT_PRE_SHARED_KEY = 41
EXT_EARLY_DATA = 42
EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51
EXT_ECH = 0xFE0D
#: The pre-ECH "encrypted_server_name" of draft-ietf-tls-esni-00..02 (Firefox 2018-2020).
EXT_ESNI = 0xFFCE

#: Protocol version names. Draft TLS 1.3 versions 0x7fXX are named by :func:`version_name`.
VERSION_NAMES: dict[int, str] = {
    0x0002: "SSLv2",
    0x0300: "SSLv3",
    0x0301: "TLSv1.0",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}

#: Alert descriptions (RFC 8446 §6, RFC 5246 §7.2, RFC 7301 §3.2, RFC 6066).
ALERT_DESCRIPTIONS: dict[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
    121: "ech_required",
}

#: Extension names for display (IANA registry, the ones seen in practice).
EXTENSION_NAMES: dict[int, str] = {
    0: "server_name",
    1: "max_fragment_length",
    5: "status_request",
    10: "supported_groups",
    11: "ec_point_formats",
    13: "signature_algorithms",
    15: "heartbeat",
    16: "application_layer_protocol_negotiation",
    17: "status_request_v2",
    18: "signed_certificate_timestamp",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    27: "compress_certificate",
    28: "record_size_limit",
    35: "session_ticket",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    57: "quic_transport_parameters",
    13172: "next_protocol_negotiation",
    17513: "application_settings",
    17613: "application_settings",
    0xFE0D: "encrypted_client_hello",
    0xFF01: "renegotiation_info",
}


def is_grease(v: int) -> bool:
    """True for a GREASE value (RFC 8701 §2): 0x0a0a, 0x1a1a, ... 0xfafa.

    Applies to 16-bit cipher suites, extension types, groups, versions and signature
    algorithms.
    """
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def version_name(v: int) -> str:
    """A protocol version's name ("TLSv1.3"); TLS 1.3 drafts as "TLSv1.3-draft28";
    GREASE as "GREASE"; anything else as "0x%04x"."""
    name = VERSION_NAMES.get(v)
    if name is not None:
        return name
    if 0x7F00 < v <= 0x7FFF:
        return f"TLSv1.3-draft{v & 0xFF}"
    if is_grease(v):
        return "GREASE"
    return f"0x{v:04x}"


def alert_name(description: int) -> str:
    """An alert description's name ("unrecognized_name"), or its number as text."""
    return ALERT_DESCRIPTIONS.get(description, str(description))


def extension_name(ext_type: int) -> str:
    """An extension type's name, "GREASE", or "0x%04x"."""
    name = EXTENSION_NAMES.get(ext_type)
    if name is not None:
        return name
    return "GREASE" if is_grease(ext_type) else f"0x{ext_type:04x}"


class NotTLSError(MalformedError):
    """The bytes are not TLS at all (neither a TLS record nor an SSLv2-format hello), for
    example an HTTP request or an SSH banner on port 443."""


# -- result shapes -------------------------------------------------------------------------


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class ClientHello:
    """A complete, parsed ClientHello (RFC 8446 §4.1.2; SSLv2-compatible form, RFC 5246 E.2).

    Wire values stay integers; GREASE values (RFC 8701) pass through in the tuples.
    For an SSLv2-format hello, ``random`` holds the challenge as sent (16-32 bytes),
    ``cipher_suites`` the specs whose first byte is 0 (TLS suites, as their last two bytes),
    and ``sslv2_cipher_specs`` every 3-byte spec as sent.
    """

    record_version: int            # version in the (first) record header; 0x0002 for SSLv2 form
    legacy_version: int            # client_version / legacy_version
    random: bytes
    session_id: bytes
    cipher_suites: tuple[int, ...]
    compression_methods: tuple[int, ...]
    extensions: tuple[tuple[int, bytes], ...]   # (type, raw body) in wire order
    sni_status: str                # "present" | "absent" | "empty"  (complete hellos only)
    sni: str | None                # first host_name entry, decoded (IDNA/ASCII, errors replaced)
    sni_raw: bytes | None          # its raw bytes
    server_names: tuple[tuple[int, bytes], ...]  # every (name_type, name) entry
    sni_is_ip: bool                # the name is an IPv4/IPv6 literal (RFC 6066 §3 forbids it)
    sni_trailing_dot: bool
    sni_non_ascii: bool
    alpn: tuple[str, ...]
    alpn_raw: tuple[bytes, ...]
    supported_versions: tuple[int, ...]
    supported_groups: tuple[int, ...]
    ec_point_formats: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    key_share_groups: tuple[int, ...]
    psk: bool
    early_data: bool
    ech: bool                      # encrypted_client_hello (0xfe0d) offered (may be GREASE ECH)
    padding: int                   # length of the padding extension body, 0 when absent
    sslv2: bool                    # SSLv2-compatible hello format (always sni_status "absent")
    wire_len: int = 0              # bytes of the stream consumed, record headers included
    records: int = 1               # TLS records the hello spanned
    sslv2_cipher_specs: tuple[int, ...] = ()   # SSLv2 form: every 3-byte cipher spec
    esni: bool = False             # the older encrypted_server_name (0xffce): the real name
                                   # is encrypted, so server_name is usually absent

    @property
    def extension_types(self) -> tuple[int, ...]:
        """Extension types in wire order (GREASE included)."""
        return tuple(t for t, _ in self.extensions)

    @property
    def offered_versions(self) -> tuple[int, ...]:
        """Versions the client offers, highest first, GREASE removed: the
        supported_versions list (RFC 8446 §4.2.1) when present, else the legacy version."""
        if self.supported_versions:
            return tuple(sorted({v for v in self.supported_versions if not is_grease(v)},
                                reverse=True))
        return (self.legacy_version,)

    @property
    def versions(self) -> tuple[str, ...]:
        """:attr:`offered_versions` as names, e.g. ``("TLSv1.3", "TLSv1.2")``."""
        return tuple(version_name(v) for v in self.offered_versions)

    @property
    def max_version(self) -> int:
        """The highest version offered (GREASE removed)."""
        ov = self.offered_versions
        return ov[0] if ov else self.legacy_version


_CH_FIELDS: Final = tuple(f.name for f in fields(ClientHello))
# _parse_ch_message and the C parser give every field in declaration order.
assert len(_CH_FIELDS) == 30 and _CH_FIELDS[-1] == "esni"
_object_new = object.__new__


def _new_client_hello(*values: object) -> ClientHello:
    """Build a ClientHello from all its field values in declaration order."""
    return _client_hello_of(values)


def _client_hello_of(values: tuple[object, ...]) -> ClientHello:
    """:func:`_new_client_hello` on a tuple of the values (the parsers call this one: a
    call with ``*args`` goes through the generic call protocol when compiled).

    Measured: the generated ``__init__`` of a frozen dataclass sets its 29 fields through
    ``object.__setattr__`` one call each (about 8 µs here); filling ``__dict__`` directly
    builds an identical, equally frozen object in a third of the time. One hello per
    connection is parsed, but the hello parse is the per-connection cost that matters.
    ``_speedups.new_record`` (when built) builds the same object from C, in half the time
    again (1.3 -> 0.7 µs), its ``__dict__`` a copy of the previous hello's with only the
    values that differ stored (about half of them, see ``_speedups.c``).
    """
    new = _C_NEW_RECORD
    if new is not None:
        return cast("ClientHello", new(ClientHello, _CH_FIELDS, values))
    obj = _object_new(ClientHello)
    obj.__dict__.update(zip(_CH_FIELDS, values))
    return obj


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class ServerHello:
    """A parsed ServerHello (RFC 8446 §4.1.3), or a HelloRetryRequest (``hrr``)."""

    record_version: int
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: tuple[tuple[int, bytes], ...]
    selected_version: int          # from supported_versions, else legacy_version
    hrr: bool
    sslv2: bool = False            # an SSLv2 SERVER-HELLO (cipher_suite: first 3-byte spec)

    @property
    def extension_types(self) -> tuple[int, ...]:
        """Extension types in wire order."""
        return tuple(t for t, _ in self.extensions)

    @property
    def version(self) -> str:
        """The selected version's name."""
        return version_name(self.selected_version)


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class Alert:
    """A TLS alert (RFC 8446 §6)."""

    level: int
    description: int

    @property
    def name(self) -> str:
        """The description's name, e.g. ``"unrecognized_name"``."""
        return alert_name(self.description)


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class ServerReaction:
    """The first thing the server said in TLS terms.

    ``kind``: ``"server_hello"`` (``server_hello`` set; ``server_hello.hrr`` for a
    HelloRetryRequest), ``"alert"`` (``alert`` set), ``"other_tls"`` (a TLS record of another
    type, ``content_type`` set), or ``"not_tls"`` (the bytes are not TLS). ``end`` is the
    stream offset just after the bytes that decided it.
    """

    kind: str
    end: int
    server_hello: ServerHello | None = None
    alert: Alert | None = None
    content_type: int | None = None
    warnings: tuple[Alert, ...] = ()   # warning alerts stepped over (``past_warnings``)


# Typed as variable-length tuples: compiled code then keeps each as the one tuple object
# (a fixed-length tuple type, which asserting `_SR_FIELDS == (...)` would give them, is
# rebuilt from its items wherever it is used as an object, e.g. in _SR_KIT at every call).
_SH_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(ServerHello))
_SR_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(ServerReaction))
_AL_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Alert))
# The fast constructors (here and in C) give every field in declaration order.
assert _SH_FIELDS[-1] == "sslv2" and len(_SH_FIELDS) == 10
assert list(_SR_FIELDS) == ["kind", "end", "server_hello", "alert", "content_type", "warnings"]
assert list(_AL_FIELDS) == ["level", "description"]


# -- helpers -------------------------------------------------------------------------------


def _mal(offset: int, detail: str) -> MalformedError:
    return MalformedError("tls", offset, detail)


def _not_tls(buf: Buffer, start: int, offset: int, detail: str) -> NotTLSError:
    head = bytes(buf[start : start + 8]).hex(" ")
    return NotTLSError("tls", offset, f"{detail} (stream starts {head})")


def _decode_name(raw: bytes) -> tuple[str, bool]:
    """Host name text and whether it had non-ASCII bytes (RFC 6066 §3: ASCII, IDNA A-labels)."""
    try:
        return raw.decode("ascii"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def _is_ip_literal(name: str) -> bool:
    """RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName"."""
    n = name.rstrip(".")
    if n.startswith("[") and n.endswith("]"):
        n = n[1:-1]
    if not n or not (n[-1].isdigit() or ":" in n):
        return False  # cheap rejection: every hostname ending in a letter
    try:
        ipaddress.ip_address(n)
    except ValueError:
        return False
    return True


# -- ClientHello body ----------------------------------------------------------------------


#: ``_speedups.client_hello_fields(d, msg, end, record_version, wire_len, records, is_ip,
#: cls, names)``: the ClientHello built from every field value, as ``new_record(cls, names,
#: values)`` builds it, or None to leave the hello to Python. (Without ``cls`` and ``names``
#: it returns the values, which the tests compare with the Python parser's.)
_CHFields: TypeAlias = Callable[
    [Buffer, int, int, int, int, int, Callable[[str], bool], type, tuple[str, ...]],
    "ClientHello | None",
]

#: The common case of :func:`_parse_ch_message` in C.
_C_CLIENT_HELLO = cast("_CHFields | None", speedups("client_hello_fields"))
#: ``new_record(cls, names, values)``: ``object.__new__(cls)`` and ``object.__setattr__`` of
#: every field, from C.
_C_NEW_RECORD: Final = cast(
    "Callable[[type, tuple[str, ...], tuple[object, ...]], object] | None",
    speedups("new_record"),
)
#: ``server_reaction(buf, start, kit)``: the common case of :func:`_server_reaction` in C
#: (an alert record, or a handshake record holding a whole well-formed ServerHello), the
#: ServerReaction built from ``_SR_KIT``; None to leave the bytes to the Python code.
_C_SERVER_REACTION = cast(
    "Callable[[Buffer, int, tuple[object, ...]], ServerReaction | None] | None",
    speedups("server_reaction"),
)
#: The record classes and their field names, for the C server_reaction.
_SR_KIT: Final[tuple[object, ...]] = (
    ServerReaction, _SR_FIELDS, ServerHello, _SH_FIELDS, Alert, _AL_FIELDS
)


_HH = Struct(">HH").unpack_from
#: A record header and the handshake header after it: content type, version, length, then
#: the handshake type (top byte) and length (low three bytes).
_HEAD: Final = cast(
    "Callable[[Buffer, int], tuple[int, int, int, int]]", Struct(">BHHI").unpack_from
)
_U16_STRUCTS: dict[int, Callable[[Buffer, int], tuple[int, ...]]] = {}


def _u16s(count: int) -> Callable[[Buffer, int], tuple[int, ...]]:
    """A cached ``unpack_from`` for ``count`` big-endian uint16 (at most 32768 entries)."""
    f = _U16_STRUCTS.get(count)
    if f is None:
        f = _U16_STRUCTS[count] = Struct(f">{count}H").unpack_from
    return f


# Extension types whose bodies the ClientHello parser decodes; the rest are kept raw.
_DECODED = frozenset((EXT_SERVER_NAME, EXT_SUPPORTED_GROUPS, EXT_EC_POINT_FORMATS,
                      EXT_SIGNATURE_ALGORITHMS, EXT_ALPN, EXT_PADDING, EXT_PRE_SHARED_KEY,
                      EXT_EARLY_DATA, EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE, EXT_ECH,
                      EXT_ESNI))


def _parse_ch_message(
    d: Buffer, msg: int, end: int, record_version: int, wire_len: int, records: int
) -> ClientHello:
    """Parse a ClientHello handshake message occupying ``d[msg:end]`` (type byte included).

    The message is complete (its length field says it ends at ``end``); any field that runs
    past ``end`` or stops short of it is malformed.
    """
    c = _C_CLIENT_HELLO
    if c is not None:
        hello = c(d, msg, end, record_version, wire_len, records, _is_ip_literal,
                  ClientHello, _CH_FIELDS)
        if hello is not None:
            return hello
    if type(d) is not bytes:
        # One copy up front so that every slice below is already an immutable bytes object.
        d = bytes(d[msg:end])
        end -= msg
        msg = 0
    p = msg + 4
    if end - p < 38:  # version(2) random(32) sid_len(1) cs_len(2) comp_len(1)
        raise _mal(p - msg, f"ClientHello body is {end - p} bytes, shorter than its fixed fields")
    if d[p] != 3:
        raise _mal(p - msg, f"ClientHello legacy_version 0x{(d[p] << 8) | d[p + 1]:04x} is not TLS")
    legacy_version = (d[p] << 8) | d[p + 1]
    random = d[p + 2 : p + 34]
    p += 34
    sid_len = d[p]
    p += 1
    if sid_len > 32:  # RFC 8446 §4.1.2: legacy_session_id<0..32>
        raise _mal(p - 1 - msg, f"session_id length {sid_len} exceeds 32")
    if p + sid_len + 2 > end:
        raise _mal(p - msg, f"session_id of {sid_len} bytes overruns the ClientHello")
    session_id = d[p : p + sid_len]
    p += sid_len
    cs_len = (d[p] << 8) | d[p + 1]
    p += 2
    if cs_len & 1:
        raise _mal(p - 2 - msg, f"cipher_suites length {cs_len} is odd")
    if p + cs_len + 1 > end:
        raise _mal(p - 2 - msg, f"cipher_suites length {cs_len} overruns the ClientHello")
    cipher_suites = _u16s(cs_len >> 1)(d, p)
    p += cs_len
    comp_len = d[p]
    p += 1
    if p + comp_len > end:
        raise _mal(p - 1 - msg, f"compression_methods length {comp_len} overruns the ClientHello")
    compression = tuple(d[p : p + comp_len])
    p += comp_len

    extensions: list[tuple[int, bytes]] = []
    sni_status = "absent"
    sni: str | None = None
    sni_raw: bytes | None = None
    server_names: tuple[tuple[int, bytes], ...] = ()
    sni_is_ip = sni_trailing_dot = sni_non_ascii = False
    alpn: tuple[str, ...] = ()
    alpn_raw: tuple[bytes, ...] = ()
    supported_versions: tuple[int, ...] = ()
    supported_groups: tuple[int, ...] = ()
    ec_point_formats: tuple[int, ...] = ()
    signature_algorithms: tuple[int, ...] = ()
    key_share_groups: tuple[int, ...] = ()
    psk = early_data = ech = esni = False
    padding = 0

    if p < end:
        # RFC 5246 §7.4.1.2: extensions are optional; when present their vector must fill
        # the rest of the message exactly.
        if end - p < 2:
            raise _mal(p - msg, "one stray byte where the extensions length should be")
        ext_total = (d[p] << 8) | d[p + 1]
        p += 2
        if p + ext_total != end:
            raise _mal(
                p - 2 - msg,
                f"extensions length {ext_total} does not match the {end - p} bytes left "
                "in the ClientHello",
            )
        add = extensions.append
        decoded = _DECODED
        while p < end:
            if end - p < 4:
                raise _mal(p - msg, f"{end - p} stray bytes where an extension header should be")
            et, el = _HH(d, p)
            p += 4
            b = p + el
            if b > end:
                raise _mal(p - 2 - msg, f"extension {et} length {el} overruns the extensions block")
            body = d[p:b]
            add((et, body))
            if et in decoded:
                if et == EXT_SERVER_NAME:
                    if (el > 5 and body[2] == 0 and (body[0] << 8) | body[1] == el - 2
                            and (body[3] << 8) | body[4] == el - 5):
                        # the usual single host_name entry, checked field by field
                        server_names = ((0, body[5:]),)
                    else:
                        server_names = _parse_server_name(body, p - msg)
                    sni_status = "empty"
                    for nt, name in server_names:
                        if nt == 0:
                            if name:
                                sni_status = "present"
                                sni_raw = name
                                sni, sni_non_ascii = _decode_name(name)
                                sni_trailing_dot = sni.endswith(".")
                                sni_is_ip = _is_ip_literal(sni)
                            break
                elif et == EXT_SUPPORTED_GROUPS:
                    if el < 2 or el & 1 or (body[0] << 8) | body[1] != el - 2:
                        _u16_list(body, 2, p - msg, "supported_groups")  # raises the detail
                    supported_groups = _u16s((el - 2) >> 1)(body, 2)
                elif et == EXT_SIGNATURE_ALGORITHMS:
                    if el < 2 or el & 1 or (body[0] << 8) | body[1] != el - 2:
                        _u16_list(body, 2, p - msg, "signature_algorithms")
                    signature_algorithms = _u16s((el - 2) >> 1)(body, 2)
                elif et == EXT_SUPPORTED_VERSIONS:
                    supported_versions = _u16_list(body, 1, p - msg, "supported_versions")
                elif et == EXT_KEY_SHARE:
                    key_share_groups = _parse_key_share(body, p - msg)
                elif et == EXT_ALPN:
                    alpn_raw = _parse_alpn(body, p - msg)
                    alpn = tuple([x.decode("utf-8", errors="replace") for x in alpn_raw])
                elif et == EXT_EC_POINT_FORMATS:
                    if not body or body[0] != el - 1:
                        raise _mal(p - msg, "ec_point_formats length does not match the extension")
                    ec_point_formats = tuple(body[1:])
                elif et == EXT_PADDING:
                    padding = el
                elif et == EXT_PRE_SHARED_KEY:
                    psk = True
                elif et == EXT_EARLY_DATA:
                    early_data = True
                elif et == EXT_ECH:
                    ech = True
                else:  # EXT_ESNI
                    esni = True
            p = b
        if len({t for t, _ in extensions}) != len(extensions):
            # RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type".
            types = [t for t, _ in extensions]
            dup = next(t for i, t in enumerate(types) if t in types[:i])
            raise _mal(4, f"extension {extension_name(dup)} appears twice")

    return _client_hello_of((
        record_version,
        legacy_version,
        random,
        session_id,
        cipher_suites,
        compression,
        tuple(extensions),
        sni_status,
        sni,
        sni_raw,
        server_names,
        sni_is_ip,
        sni_trailing_dot,
        sni_non_ascii,
        alpn,
        alpn_raw,
        supported_versions,
        supported_groups,
        ec_point_formats,
        signature_algorithms,
        key_share_groups,
        psk,
        early_data,
        ech,
        padding,
        False,
        wire_len,
        records,
        (),
        esni,
    ))


def _check_list_len(body: bytes, len_bytes: int, off: int, what: str) -> int:
    """Check that an extension body is one vector: a ``len_bytes``-byte length prefix that
    covers exactly the rest of the body (RFC 8446 §3.4). Returns the body's length."""
    n = len(body)
    if n < len_bytes:
        raise _mal(off, f"{what} extension too short for its list length")
    ln = body[0] if len_bytes == 1 else (body[0] << 8) | body[1]
    if ln != n - len_bytes:
        raise _mal(off, f"{what} list length {ln} does not match the extension's {n - len_bytes} bytes")
    return n


def _parse_server_name(body: bytes, off: int) -> tuple[tuple[int, bytes], ...]:
    """RFC 6066 §3 ServerNameList. An empty extension body counts as an empty list (servers
    send it that way; a client sending it has no usable name: ``sni_status`` "empty")."""
    n = len(body)
    if n == 0:
        return ()
    _check_list_len(body, 2, off, "server_name")
    out = []
    p = 2
    while p < n:
        if n - p < 3:
            raise _mal(off + p, "server_name entry header cut short")
        nt = body[p]
        nl = (body[p + 1] << 8) | body[p + 2]
        p += 3
        if p + nl > n:
            raise _mal(off + p - 2, f"server_name entry length {nl} overruns the list")
        out.append((nt, body[p : p + nl]))
        p += nl
    return tuple(out)


def _parse_alpn(body: bytes, off: int) -> tuple[bytes, ...]:
    """RFC 7301 §3.1 ProtocolNameList."""
    n = _check_list_len(body, 2, off, "ALPN")
    out = []
    p = 2
    while p < n:
        pl = body[p]
        p += 1
        if p + pl > n:
            raise _mal(off + p - 1, f"ALPN protocol length {pl} overruns the list")
        out.append(body[p : p + pl])
        p += pl
    return tuple(out)


def _u16_list(body: bytes, len_bytes: int, off: int, what: str) -> tuple[int, ...]:
    """A vector of uint16 with a 1- or 2-byte length prefix that must fill the body."""
    ln = _check_list_len(body, len_bytes, off, what) - len_bytes
    if ln & 1:
        raise _mal(off, f"{what} list length {ln} is odd")
    return _u16s(ln >> 1)(body, len_bytes)


def _parse_key_share(body: bytes, off: int) -> tuple[int, ...]:
    """RFC 8446 §4.2.8 KeyShareClientHello: the groups of the offered shares."""
    n = _check_list_len(body, 2, off, "key_share")
    out = []
    p = 2
    while p < n:
        if n - p < 4:
            raise _mal(off + p, "key_share entry header cut short")
        g = (body[p] << 8) | body[p + 1]
        kl = (body[p + 2] << 8) | body[p + 3]
        p += 4
        if p + kl > n:
            raise _mal(off + p - 2, f"key_share entry length {kl} overruns the list")
        out.append(g)
        p += kl
    return tuple(out)


# -- SSLv2-format ClientHello --------------------------------------------------------------


def _sslv2_check_head(buf: Buffer, start: int, n: int) -> None:
    """Raise NotTLSError as soon as the available bytes contradict an SSLv2 CLIENT-HELLO."""
    if n - start >= 3 and buf[start + 2] != SSL2_MT_CLIENT_HELLO:
        raise _not_tls(buf, start, 2, "SSLv2-style header without a CLIENT-HELLO message type")
    if n - start >= 4 and buf[start + 3] not in (0, 3):
        raise _not_tls(buf, start, 3, "SSLv2-style header with an impossible version")
    if n - start >= 5:
        v = (buf[start + 3] << 8) | buf[start + 4]
        if v != 0x0002 and buf[start + 3] != 3:
            raise _not_tls(buf, start, 3, f"SSLv2-style header with version 0x{v:04x}")


def _read_sslv2_hello(buf: Buffer, start: int) -> tuple[ClientHello, int] | None:
    """RFC 5246 Appendix E.2: the SSLv2-compatible CLIENT-HELLO (2-byte header form)."""
    n = len(buf)
    _sslv2_check_head(buf, start, n)
    if n - start < 2:
        return None
    length = ((buf[start] & 0x7F) << 8) | buf[start + 1]
    if length < 9:
        raise _mal(0, f"SSLv2 CLIENT-HELLO length {length} shorter than its fixed fields")
    end = start + 2 + length
    if n < end:
        return None
    p = start + 2
    version = (buf[p + 1] << 8) | buf[p + 2]
    cs_len = (buf[p + 3] << 8) | buf[p + 4]
    sid_len = (buf[p + 5] << 8) | buf[p + 6]
    ch_len = (buf[p + 7] << 8) | buf[p + 8]
    p += 9
    if cs_len == 0 or cs_len % 3:
        raise _mal(5, f"SSLv2 cipher_spec_length {cs_len} is not a positive multiple of 3")
    if sid_len not in (0, 16):
        raise _mal(7, f"SSLv2 session_id_length {sid_len} is neither 0 nor 16")
    if not 16 <= ch_len <= 32:
        raise _mal(9, f"SSLv2 challenge_length {ch_len} outside 16..32")
    if p + cs_len + sid_len + ch_len != end:
        raise _mal(
            2,
            f"SSLv2 CLIENT-HELLO length {length} does not match its fields "
            f"({9 + cs_len + sid_len + ch_len} bytes)",
        )
    specs = tuple(
        (buf[i] << 16) | (buf[i + 1] << 8) | buf[i + 2] for i in range(p, p + cs_len, 3)
    )
    p += cs_len
    session_id = bytes(buf[p : p + sid_len])
    p += sid_len
    challenge = bytes(buf[p : p + ch_len])
    hello = ClientHello(
        record_version=0x0002,
        legacy_version=version,
        random=challenge,
        session_id=session_id,
        # RFC 5246 E.2: a V2CipherSpec whose first byte is 0 is a TLS cipher suite.
        cipher_suites=tuple(s for s in specs if s >> 16 == 0),
        compression_methods=(0,),
        extensions=(),
        sni_status="absent",
        sni=None,
        sni_raw=None,
        server_names=(),
        sni_is_ip=False,
        sni_trailing_dot=False,
        sni_non_ascii=False,
        alpn=(),
        alpn_raw=(),
        supported_versions=(),
        supported_groups=(),
        ec_point_formats=(),
        signature_algorithms=(),
        key_share_groups=(),
        psk=False,
        early_data=False,
        ech=False,
        padding=0,
        sslv2=True,
        wire_len=end - start,
        records=1,
        sslv2_cipher_specs=specs,
    )
    return hello, end


# -- record framing ------------------------------------------------------------------------


def _check_first_bytes(buf: Buffer, start: int, n: int) -> None:
    """Raise when the first bytes of a client stream cannot start a ClientHello record."""
    b0 = buf[start]
    if b0 != CT_HANDSHAKE:
        if CT_CHANGE_CIPHER_SPEC <= b0 <= CT_HEARTBEAT and (n - start < 2 or buf[start + 1] == 3):
            raise _mal(0, f"first record has content type {b0}, not handshake (22)")
        raise _not_tls(buf, start, 0, "not a TLS record")
    if n - start >= 2 and buf[start + 1] != 3:
        raise _not_tls(buf, start, 1, f"record version major byte {buf[start + 1]} is not 3")


def read_client_hello(buf: Buffer, start: int = 0) -> tuple[ClientHello, int] | None:
    """Frame and parse the ClientHello at the start of a client's byte stream.

    ``buf[start:]`` is what the client has sent so far, beginning at a TLS record (or an
    SSLv2-format hello). Returns ``(hello, end)`` where ``end`` is the stream offset just
    after the last record byte that completed the hello, or ``None`` when more bytes are
    needed. Raises :class:`NotTLSError` when the bytes are not TLS at all and
    :class:`~sniparse.errors.MalformedError` when they break the format (first handshake
    message not a ClientHello, lengths that overrun, leftovers, oversized records or hello).

    Work and memory are bounded by ``len(buf) - start``; a hello above 64 KiB is malformed.
    """
    n = len(buf)
    if n - start >= 9:
        # The common case in one read of the record and handshake headers: a handshake
        # record holding exactly one whole ClientHello within the limits. Anything else
        # takes the general path below, which then decides exactly as before. Measured
        # with callgrind: twelve indexings of a bytearray cost ~2,000 instructions a hello.
        b0, rec_version, rlen, hs = _HEAD(buf, start)
        if (b0 == CT_HANDSHAKE and rec_version >> 8 == 3 and 4 <= rlen <= MAX_RECORD_LEN
                and hs >> 24 == HS_CLIENT_HELLO and (hs & 0xFFFFFF) + 4 == rlen):
            end = start + 5 + rlen
            if end > n:
                return None
            return _parse_ch_message(buf, start + 5, end, rec_version, end - start, 1), end
    if start >= n:
        return None
    b0 = buf[start]
    if b0 != CT_HANDSHAKE:
        if b0 & 0x80:
            return _read_sslv2_hello(buf, start)
        _check_first_bytes(buf, start, n)
    if n - start < 6:
        _check_first_bytes(buf, start, n)
        if n - start == 5:
            _check_record_len(buf, start, 0)
        return None
    if buf[start + 1] != 3:
        _check_first_bytes(buf, start, n)
    rec_version = (buf[start + 1] << 8) | buf[start + 2]
    rlen = (buf[start + 3] << 8) | buf[start + 4]
    _check_record_len(buf, start, 0)
    body = start + 5
    if buf[body] != HS_CLIENT_HELLO:
        raise _mal(5, f"first handshake message has type {buf[body]}, not ClientHello (1)")
    # Fast path: the whole hello inside the first record (nearly every real client).
    if rlen >= 4 and n - body >= 4:
        hlen = (buf[body + 1] << 16) | (buf[body + 2] << 8) | buf[body + 3]
        if hlen > MAX_HELLO_LEN:
            raise _mal(6, f"ClientHello length {hlen} exceeds the {MAX_HELLO_LEN}-byte limit")
        if hlen + 4 <= rlen:
            if body + rlen > n:
                return None
            if hlen + 4 < rlen:
                raise _mal(
                    5 + 4 + hlen,
                    f"{rlen - 4 - hlen} bytes left over in the record after the ClientHello",
                )
            end = body + rlen
            return _parse_ch_message(buf, body, end, rec_version, end - start, 1), end
        # Spread over records: nothing to decide before the first record is complete and
        # the next one has begun (avoids copying a partial 16 KiB fragment on every call).
        if body + rlen >= n:
            return None
    return _read_fragmented(buf, start, rec_version)


def _check_record_len(buf: Buffer, rec: int, rel: int) -> int:
    """The record length at ``rec``; raise when it is zero or too big for a handshake record."""
    rlen = (buf[rec + 3] << 8) | buf[rec + 4]
    if rlen > MAX_RECORD_LEN:
        raise _mal(rel + 3, f"record length {rlen} exceeds the {MAX_RECORD_LEN}-byte limit")
    if rlen == 0:
        # RFC 8446 §5.1 / RFC 5246 §6.2.1: no zero-length handshake fragments.
        raise _mal(rel + 3, "zero-length handshake record")
    return rlen


def _read_fragmented(buf: Buffer, start: int, rec_version: int) -> tuple[ClientHello, int] | None:
    """Reassemble a ClientHello spread over several records (RFC 8446 §5.1)."""
    n = len(buf)
    msg = bytearray()
    need = -1  # total message bytes (header included), known once 4 bytes are in
    pos = start
    records = 0
    while True:
        if pos >= n:
            return None
        rel = pos - start
        if records:
            b0 = buf[pos]
            if b0 != CT_HANDSHAKE:
                raise _mal(
                    rel,
                    f"record of content type {b0} inside the ClientHello "
                    "(handshake records must not be interleaved, RFC 8446 §5.1)",
                )
            if n - pos >= 2 and buf[pos + 1] != 3:
                raise _mal(rel + 1, f"record version major byte {buf[pos + 1]} is not 3")
        if n - pos < 5:
            return None
        if records >= MAX_HELLO_RECORDS:
            raise _mal(rel, f"ClientHello split over more than {MAX_HELLO_RECORDS} records")
        rlen = _check_record_len(buf, pos, rel)
        frag = pos + 5
        avail = min(n, frag + rlen)
        room = (need - len(msg)) if need >= 0 else -1
        # Look at the bytes of this fragment that are present, to fail early on a bad header.
        take = avail - frag
        if room >= 0 and take > room:
            raise _mal(
                rel + 5 + room,
                f"{rlen - room} bytes left over in the record after the ClientHello",
            )
        msg += buf[frag:avail]
        if need < 0 and len(msg) >= 4:
            if msg[0] != HS_CLIENT_HELLO:
                raise _mal(5, f"first handshake message has type {msg[0]}, not ClientHello (1)")
            hlen = (msg[1] << 16) | (msg[2] << 8) | msg[3]
            if hlen > MAX_HELLO_LEN:
                raise _mal(6, f"ClientHello length {hlen} exceeds the {MAX_HELLO_LEN}-byte limit")
            need = hlen + 4
            if len(msg) > need:
                raise _mal(
                    rel + 5 + (need - (len(msg) - take)),
                    f"{rlen - (need - (len(msg) - take))} bytes left over in the record "
                    "after the ClientHello",
                )
        if avail < frag + rlen:
            return None
        records += 1
        pos = frag + rlen
        if need >= 0 and len(msg) == need:
            hello = _parse_ch_message(msg, 0, need, rec_version, pos - start, records)
            return hello, pos


def looks_like_tls_hello(buf: Buffer, start: int = 0) -> bool | None:
    """Cheap test of a stream's first bytes: could they start a ClientHello?

    True for ``16 03 0x`` + a plausible record length + handshake type 1, or for the SSLv2
    CLIENT-HELLO pattern (high-bit length, message type 1, version 0x0002 or 0x03xx).
    False as soon as one byte contradicts; None when too few bytes are there to say.
    """
    n = len(buf) - start
    if n <= 0:
        return None
    b0 = buf[start]
    if b0 == CT_HANDSHAKE:
        if n < 2:
            return None
        if buf[start + 1] != 3:
            return False
        if n < 3:
            return None
        if buf[start + 2] > 4:
            return False
        if n < 5:
            return None
        rlen = (buf[start + 3] << 8) | buf[start + 4]
        if rlen == 0 or rlen > MAX_RECORD_LEN:
            return False
        if n < 6:
            return None
        return buf[start + 5] == HS_CLIENT_HELLO
    if b0 & 0x80:
        if n < 2:
            return None
        if (((b0 & 0x7F) << 8) | buf[start + 1]) < 9 + 3 + 16:
            return False
        if n < 3:
            return None
        if buf[start + 2] != SSL2_MT_CLIENT_HELLO:
            return False
        if n < 4:
            return None
        if buf[start + 3] not in (0, 3):
            return False
        if n < 5:
            return None
        v = (buf[start + 3] << 8) | buf[start + 4]
        return v == 0x0002 or (buf[start + 3] == 3 and buf[start + 4] <= 4)
    return False


def parse_client_hello(data: bytes | bytearray | memoryview) -> ClientHello:
    """Parse a complete ClientHello from raw bytes.

    ``data`` is either one or more TLS records (starting ``16 03``), an SSLv2-format hello,
    or a bare handshake message (starting with type 1). Bytes after the records that carry
    the hello are ignored (they are the client's later records). Raises
    :class:`~sniparse.errors.TruncatedError` when the bytes end before the hello is complete
    (it never returns a hello for a prefix), :class:`NotTLSError` when the bytes are not
    TLS, and :class:`~sniparse.errors.MalformedError` when they break the format.
    """
    if not data:
        raise TruncatedError("tls", 0, "no bytes")
    if data[0] == HS_CLIENT_HELLO:
        n = len(data)
        if n < 4:
            raise TruncatedError("tls", n, f"handshake header cut short after {n} bytes")
        hlen = (data[1] << 16) | (data[2] << 8) | data[3]
        if hlen > MAX_HELLO_LEN:
            raise _mal(1, f"ClientHello length {hlen} exceeds the {MAX_HELLO_LEN}-byte limit")
        if n < 4 + hlen:
            raise TruncatedError("tls", n, f"ClientHello needs {4 + hlen} bytes, only {n} given")
        if n > 4 + hlen:
            raise _mal(4 + hlen, f"{n - 4 - hlen} bytes after the ClientHello message")
        return _parse_ch_message(data, 0, n, 0, n, 0)
    r = read_client_hello(data, 0)
    if r is None:
        raise TruncatedError("tls", len(data), f"ClientHello incomplete after {len(data)} bytes")
    return r[0]


# -- server side ---------------------------------------------------------------------------


def parse_server_hello(
    d: Buffer, msg: int = 0, end: int | None = None, record_version: int = 0
) -> ServerHello:
    """Parse a ServerHello handshake message occupying ``d[msg:end]`` (type byte included).

    Raises :class:`~sniparse.errors.MalformedError` when the message breaks the format and
    :class:`~sniparse.errors.TruncatedError` when ``d`` ends before the message does.
    """
    return _parse_server_hello(d if isinstance(d, bytes) else bytes(d), msg, end, record_version)


def _parse_server_hello(d: bytes, msg: int, end: int | None, record_version: int) -> ServerHello:
    """:func:`parse_server_hello` on ``bytes``: compiled, indexing ``bytes`` is a native
    operation while indexing a bytearray or a union goes through the generic protocol."""
    n = len(d) if end is None else end
    if n - msg < 4:
        raise TruncatedError("tls", n - msg, "ServerHello header cut short")
    if d[msg] != HS_SERVER_HELLO:
        raise _mal(0, f"handshake message type {d[msg]} is not ServerHello (2)")
    hlen = (d[msg + 1] << 16) | (d[msg + 2] << 8) | d[msg + 3]
    if n - msg < 4 + hlen:
        raise TruncatedError("tls", n - msg, f"ServerHello needs {4 + hlen} bytes")
    end = msg + 4 + hlen
    p = msg + 4
    if end - p < 36:  # version(2) random(32) suite(2)
        raise _mal(4, f"ServerHello body is {end - p} bytes, shorter than its fixed fields")
    legacy_version = (d[p] << 8) | d[p + 1]
    random = bytes(d[p + 2 : p + 34])
    p += 34
    if (d[msg + 4] == 0x7F and d[msg + 5] < 22) or legacy_version == 0x0304:
        # TLS 1.3 drafts before -22 (version 0x7f0f..0x7f15, or 0x0304 itself in the
        # earliest drafts; e.g. Chrome 55 / Firefox 52 betas): ServerHello { version; random;
        # cipher_suite; extensions } -- no session id and no compression method
        # (draft-ietf-tls-tls13-21 §4.1.3). A final TLS 1.3 server always sends 0x0303 here.
        session_id = b""
        suite = (d[p] << 8) | d[p + 1]
        comp = 0
        p += 2
    else:
        if end - p < 4:
            raise _mal(4, f"ServerHello body is {end - msg - 4} bytes, shorter than its fixed "
                       "fields")
        sid_len = d[p]
        p += 1
        if sid_len > 32 or p + sid_len + 3 > end:
            raise _mal(p - 1 - msg, f"ServerHello session_id length {sid_len} is impossible")
        session_id = bytes(d[p : p + sid_len])
        p += sid_len
        suite = (d[p] << 8) | d[p + 1]
        comp = d[p + 2]
        p += 3
    exts: list[tuple[int, bytes]] = []
    selected = legacy_version
    if p < end:
        if end - p < 2:
            raise _mal(p - msg, "one stray byte where the extensions length should be")
        total = (d[p] << 8) | d[p + 1]
        p += 2
        if p + total != end:
            raise _mal(p - 2 - msg, f"ServerHello extensions length {total} does not match "
                       f"the {end - p} bytes left")
        while p < end:
            if end - p < 4:
                raise _mal(p - msg, "stray bytes where an extension header should be")
            et = (d[p] << 8) | d[p + 1]
            el = (d[p + 2] << 8) | d[p + 3]
            p += 4
            if p + el > end:
                raise _mal(p - 2 - msg, f"extension {et} length {el} overruns the ServerHello")
            body = bytes(d[p : p + el])
            exts.append((et, body))
            if et == EXT_SUPPORTED_VERSIONS:
                # RFC 8446 §4.2.1: in a ServerHello / HRR it is the single selected version.
                if el != 2:
                    raise _mal(p - msg, f"ServerHello supported_versions is {el} bytes, not 2")
                selected = (body[0] << 8) | body[1]
            p += el
    # Built as _new_client_hello builds a ClientHello (every field given, same object).
    sh = _object_new(ServerHello)
    sh.__dict__.update(zip(_SH_FIELDS, (
        record_version,
        legacy_version,
        random,
        session_id,
        suite,
        comp,
        tuple(exts),
        selected,
        random == HRR_RANDOM,
        False,
    )))
    return sh


def _read_sslv2_server(buf: Buffer, start: int) -> ServerReaction | None:
    """An SSLv2 SERVER-HELLO (message type 4) or ERROR (type 0), 2-byte header form."""
    n = len(buf)
    if n - start < 3:
        return None
    length = ((buf[start] & 0x7F) << 8) | buf[start + 1]
    mt = buf[start + 2]
    if mt == SSL2_MT_ERROR and length == 3:
        # An SSLv2 ERROR message: not a TLS alert, report it as other TLS-family bytes.
        return ServerReaction("other_tls", start + 3)
    if mt != SSL2_MT_SERVER_HELLO or length < 11:
        return ServerReaction("not_tls", start + 3)
    end = start + 2 + length
    if n < end:
        return None
    p = start + 3
    version = (buf[p + 2] << 8) | buf[p + 3]
    cert_len = (buf[p + 4] << 8) | buf[p + 5]
    specs_len = (buf[p + 6] << 8) | buf[p + 7]
    conn_len = (buf[p + 8] << 8) | buf[p + 9]
    p += 10
    if p + cert_len + specs_len + conn_len != end or specs_len % 3:
        raise _mal(2, "SSLv2 SERVER-HELLO lengths do not match its size")
    sp = p + cert_len
    spec = (buf[sp] << 16) | (buf[sp + 1] << 8) | buf[sp + 2] if specs_len else 0
    conn_id = bytes(buf[end - conn_len : end])
    sh = ServerHello(0x0002, version, conn_id, b"", spec, 0, (), version, False, sslv2=True)
    return ServerReaction("server_hello", end, server_hello=sh)


def read_server_reaction(
    buf: Buffer, start: int = 0, *, past_warnings: bool = False
) -> ServerReaction | None:
    """Classify the first thing the server sent: ServerHello / HelloRetryRequest, alert,
    another TLS record, or bytes that are not TLS (an HTTP error page, an SSH banner...).

    ``buf[start:]`` is the server's byte stream so far. Returns None when more bytes are
    needed. A ServerHello is parsed as soon as its message is complete, without waiting for
    the rest of its record (a TLS 1.2 server's first record often carries the whole flight);
    it may span several records. Raises :class:`~sniparse.errors.MalformedError` when a
    handshake record that starts with a ServerHello breaks the format, or an alert record is
    shorter than an alert.

    SSLv2 (2-byte header with the high bit set): a SERVER-HELLO gives ``"server_hello"``
    with ``server_hello.sslv2`` set; an SSLv2 ERROR message gives ``"other_tls"`` (it is
    not a TLS alert and has no content type); anything else ``"not_tls"``. A TLS-looking
    header whose length exceeds any record's is ``"not_tls"``.

    ``past_warnings``: step over warning-level alerts (level 1, other than close_notify and
    user_canceled) and report what follows, listing them in ``warnings``. Some servers send
    a warning unrecognized_name(112) and then carry on with a ServerHello (RFC 6066 §3 calls
    that "NOT RECOMMENDED" but allows it), so the warning is not the server's answer. With
    only the warning in the buffer the result is None; call again without the flag when the
    stream has ended to get the warning itself.
    """
    r = _server_reaction(buf, start)
    if not past_warnings:
        return r
    warnings: list[Alert] = []
    pos = start
    while True:
        if (
            r is None
            or r.kind != "alert"
            or r.alert is None
            or r.alert.level != 1
            or r.alert.description in (0, 90)
            or (buf[pos + 3] << 8) | buf[pos + 4] != 2  # several alerts in one record
            or len(warnings) >= 8  # bounded work on a server that only sends warnings
        ):
            if r is not None and warnings:
                return ServerReaction(r.kind, r.end, r.server_hello, r.alert, r.content_type,
                                      tuple(warnings))
            return r
        warnings.append(r.alert)
        pos = r.end
        r = _server_reaction(buf, pos)


def _server_reaction(buf: Buffer, start: int) -> ServerReaction | None:
    """:func:`read_server_reaction` for the record at ``start``.

    Once per connection (the server's first record): the C function answers the usual
    records, a whole ServerHello or an alert, with the object this code would build (about
    1.8 against 5.7 µs per call on the handshake benchmark's server records); it declines
    anything else and the code below decides.
    """
    c = _C_SERVER_REACTION
    if c is not None:
        r = c(buf, start, _SR_KIT)
        if r is not None:
            return r
    n = len(buf)
    if start >= n:
        return None
    b0 = buf[start]
    if not CT_CHANGE_CIPHER_SPEC <= b0 <= CT_HEARTBEAT:
        if b0 & 0x80:
            return _read_sslv2_server(buf, start)
        return ServerReaction("not_tls", start + 1)
    if n - start < 2:
        return None
    if buf[start + 1] != 3:
        return ServerReaction("not_tls", start + 2)
    if n - start < 5:
        return None
    rec_version = (buf[start + 1] << 8) | buf[start + 2]
    rlen = (buf[start + 3] << 8) | buf[start + 4]
    if rlen > MAX_RECORD_LEN:
        # A TLS-looking header with an impossible length: not a TLS stream after all.
        return ServerReaction("not_tls", start + 5)
    if b0 == CT_ALERT:
        if rlen < 2:
            raise _mal(3, f"alert record of {rlen} bytes")
        if n - start < 7:
            return None
        return ServerReaction(
            "alert", start + 7, alert=Alert(buf[start + 5], buf[start + 6]), content_type=b0
        )
    if b0 != CT_HANDSHAKE:
        return ServerReaction("other_tls", start + 5, content_type=b0)
    if rlen == 0:
        raise _mal(3, "zero-length handshake record")
    if n - start < 6:
        return None
    if buf[start + 5] != HS_SERVER_HELLO:
        return ServerReaction("other_tls", start + 6, content_type=b0)
    # Gather the ServerHello message, possibly across records (RFC 8446 §5.1).
    msg = bytearray()
    need = -1
    pos = start
    records = 0
    while True:
        if pos >= n or n - pos < 5:
            return None
        if records:
            if buf[pos] != CT_HANDSHAKE:
                raise _mal(pos - start, f"record of content type {buf[pos]} inside the ServerHello")
            if buf[pos + 1] != 3:
                raise _mal(pos - start + 1, "record version major byte is not 3")
        rlen = (buf[pos + 3] << 8) | buf[pos + 4]
        if rlen == 0 or rlen > MAX_RECORD_LEN:
            raise _mal(pos - start + 3, f"bad record length {rlen} inside the ServerHello")
        frag = pos + 5
        avail = min(n, frag + rlen)
        want = (need if need >= 0 else 4) - len(msg)
        piece = buf[frag : min(avail, frag + want)]
        msg += piece
        used = len(piece)
        if need < 0 and len(msg) >= 4:
            hlen = (msg[1] << 16) | (msg[2] << 8) | msg[3]
            if hlen > MAX_HELLO_LEN:
                raise _mal(6, f"ServerHello length {hlen} exceeds the limit")
            need = hlen + 4
            more = buf[frag + used : min(avail, frag + used + (need - len(msg)))]
            msg += more
            used += len(more)
        if need >= 0 and len(msg) >= need:
            sh = _parse_server_hello(bytes(msg), 0, need, rec_version)
            # ServerReaction("server_hello", frag + used, server_hello=sh, content_type=22),
            # built as _new_client_hello builds a ClientHello: once per connection.
            sr = _object_new(ServerReaction)
            sr.__dict__.update(zip(_SR_FIELDS, ("server_hello", frag + used, sh, None, 22, ())))
            return sr
        if avail < frag + rlen:
            return None
        records += 1
        pos = frag + rlen
