"""TLS wire formats.  (skeleton: being implemented -- the public shapes below are fixed)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientHello:
    """A complete, parsed ClientHello (RFC 8446 §4.1.2; SSLv2-compatible form, RFC 5246 E.2).

    Wire values stay integers; GREASE values (RFC 8701) pass through in the tuples.
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


@dataclass(frozen=True)
class Alert:
    """A TLS alert (RFC 8446 §6)."""

    level: int
    description: int


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
