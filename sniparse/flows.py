"""Flow table and outcomes.  (skeleton: being implemented -- the Handshake shape is fixed)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from .tls import ClientHello


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
    def ts(self) -> str:
        """The hello's time as ISO 8601 UTC with microseconds."""
        dt = datetime.fromtimestamp(self.ts_ns // 1_000_000_000, tz=timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(self.ts_ns % 1_000_000_000) // 1000:06d}Z"

    @property
    def without_sni(self) -> bool:
        """True when the client sent no usable SNI (absent or empty -- never unknown)."""
        return self.sni_status in ("absent", "empty")
