"""Active probe: does this TLS endpoint serve clients that send no SNI?

:func:`probe` makes two real TLS handshakes against one address -- one carrying a
``server_name`` extension (RFC 6066 §3), one without it, as ``openssl s_client
-noservername`` does -- and reports what the server did with each.

Why a plain socket plus :class:`ssl.MemoryBIO` rather than ``ssl.wrap_socket``: a wrapped
socket folds "the server reset the connection", "the server closed it", "the server sent
alert 112" and "nothing came back" into a handful of ``SSLError`` strings that differ between
OpenSSL versions. Driving the TLS engine through memory buffers lets us send the ClientHello
ourselves and look at the server's first raw bytes, so the outcome vocabulary is exactly the
one the capture analysis uses (``server_hello``, ``alert``, ``server_reset``,
``server_close``) plus what only an active probe can see (``timeout``, ``connect_error``,
``not_tls``).

Certificates are read with a small bounded DER walker (subject CN, subjectAltName dNSName
and iPAddress; RFC 5280 §4.1 and §4.2.1.6) so the package needs no third-party X.509 library.
It never raises: a certificate it cannot read yields no name rather than an error.

This module never prints. Results carry ``to_dict()`` and ``render_text()``.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from .errors import SniparseError
from .tls import ALERT_DESCRIPTIONS

__all__ = [
    "ALERT_NAMES",
    "NON_SNI_FIX",
    "ProbeAttempt",
    "ProbeReport",
    "ProbeTargetError",
    "cert_names",
    "parse_target",
    "probe",
]

DEFAULT_PORT = 443

# Alert names live with the TLS wire formats (RFC 8446 §6); re-exported for callers.
ALERT_NAMES = ALERT_DESCRIPTIONS

# What to change when an endpoint refuses clients without SNI (see SPEC.md, "verdict").
NON_SNI_FIX = (
    "Fix: give the listener a default certificate / default filter chain for connections "
    "without SNI (Envoy/Istio: a filter chain without server_names; nginx: a default_server "
    "with a certificate instead of ssl_reject_handshake; HAProxy: no strict-sni, or a default "
    "certificate), or make the clients send SNI. On Apigee Hybrid: create a wildcard "
    "ApigeeRoute (hostnames: '*') with enableNonSniClient: true and list it in the virtual "
    "host's additionalGateways."
)

# RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello whose random is this value.
_HRR_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

_RECV = 65536
# Bound on the raw bytes kept while deciding the server's first reaction.
_FIRST_BYTES_CAP = 64


class ProbeTargetError(SniparseError, ValueError):
    """The target or ``connect`` text is not ``HOST``, ``HOST:PORT`` or ``[IPv6]:PORT``."""


# --------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ProbeAttempt:
    """One TLS handshake attempt and the server's first reaction to it.

    ``result`` is one of ``server_hello``, ``alert``, ``server_reset``, ``server_close``,
    ``timeout``, ``not_tls``, ``connect_error``. ``outcome_ms`` is the time from sending the
    ClientHello's last byte to that reaction. For ``server_hello`` the rest of the handshake
    is driven to completion when possible (``handshake_complete``) so that the negotiated
    ``version``, ``cipher`` and the certificate's ``cert_cn`` / ``cert_sans`` are known;
    ``error`` then says why it did not complete. For ``connect_error`` and ``not_tls``,
    ``error`` holds the message.
    """

    result: str
    sni: str | None = None
    outcome_ms: float | None = None
    alert: int | None = None
    alert_level: int | None = None
    version: str | None = None
    cipher: str | None = None
    cert_cn: str | None = None
    cert_sans: tuple[str, ...] = ()
    hrr: bool = False
    handshake_complete: bool = False
    error: str | None = None

    @property
    def alert_name(self) -> str | None:
        """The alert description's name (``unrecognized_name`` for 112), when an alert."""
        if self.alert is None:
            return None
        return ALERT_NAMES.get(self.alert, f"alert_{self.alert}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with stable keys."""
        return {
            "result": self.result,
            "sni": self.sni,
            "outcome_ms": None if self.outcome_ms is None else round(self.outcome_ms, 3),
            "alert": self.alert,
            "alert_name": self.alert_name,
            "version": self.version,
            "cipher": self.cipher,
            "cert_cn": self.cert_cn,
            "cert_sans": list(self.cert_sans),
            "hrr": self.hrr,
            "handshake_complete": self.handshake_complete,
            "error": self.error,
        }

    def describe(self) -> str:
        """One line saying what the server did."""
        ms = f" after {self.outcome_ms:.1f} ms" if self.outcome_ms is not None else ""
        r = self.result
        if r == "server_hello":
            parts = [f"ServerHello{ms}" + (" (after a HelloRetryRequest)" if self.hrr else "")]
            if self.version:
                parts.append(f"{self.version} {self.cipher or ''}".rstrip())
            if self.cert_cn or self.cert_sans:
                cert = f"certificate CN={self.cert_cn or '-'}"
                if self.cert_sans:
                    cert += " SAN=" + ",".join(self.cert_sans)
                parts.append(cert)
            if not self.handshake_complete and self.error:
                parts.append(f"handshake not completed: {self.error}")
            return ", ".join(parts)
        if r == "alert":
            return f"TLS alert {self.alert} {self.alert_name}{ms}"
        if r == "server_reset":
            return f"TCP reset by the server{ms}, no TLS bytes"
        if r == "server_close":
            return f"connection closed by the server (FIN){ms}, no TLS bytes"
        if r == "timeout":
            return f"no answer ({self.error or 'timed out'})"
        if r == "not_tls":
            return f"answered with bytes that are not TLS{ms}: {self.error}"
        if r == "connect_error":
            return f"could not connect: {self.error}"
        return r


@dataclass(frozen=True)
class ProbeReport:
    """Both attempts against one endpoint and the conclusion.

    ``with_sni`` is None when no name was available to send (the target is an IP address
    and no ``sni`` was given); ``with_sni_skipped`` then says why.
    ``non_sni_supported`` is True exactly when the attempt without SNI got a ServerHello.
    """

    target: str
    address: str | None
    port: int
    with_sni: ProbeAttempt | None
    without_sni: ProbeAttempt
    non_sni_supported: bool
    verdict: str
    with_sni_skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``target``, ``address``, ``port``, ``with_sni`` (a skipped
        attempt appears as ``{"result": "skipped", "error": why}``), ``without_sni``,
        ``non_sni_supported``, ``verdict``."""
        if self.with_sni is not None:
            with_d: dict[str, Any] = self.with_sni.to_dict()
        else:
            with_d = {"result": "skipped", "sni": None, "error": self.with_sni_skipped}
        return {
            "target": self.target,
            "address": self.address,
            "port": self.port,
            "with_sni": with_d,
            "without_sni": self.without_sni.to_dict(),
            "non_sni_supported": self.non_sni_supported,
            "verdict": self.verdict,
        }

    def render_text(self) -> str:
        """Plain text for a support engineer: the verdict first, then each attempt."""
        where = f"{_fmt_addr(self.address)}:{self.port}" if self.address else f"port {self.port}"
        lines = [self.verdict, "", f"Target {self.target} ({where})"]
        if self.with_sni is not None:
            lines.append(f"  with SNI {self.with_sni.sni!r}: {self.with_sni.describe()}")
        else:
            lines.append(f"  with SNI: skipped ({self.with_sni_skipped})")
        lines.append(f"  without SNI: {self.without_sni.describe()}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# target parsing


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _fmt_addr(addr: str | None) -> str:
    if addr and ":" in addr:
        return f"[{addr}]"
    return addr or "-"


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Split ``HOST``, ``HOST:PORT``, ``[IPv6]``, ``[IPv6]:PORT`` or a bare IPv6 address
    into ``(host, port)``. Raises :class:`ProbeTargetError` on anything else."""
    t = text.strip()
    if not t:
        raise ProbeTargetError("empty target")
    port_s: str | None = None
    if t.startswith("["):
        close = t.find("]")
        if close < 0:
            raise ProbeTargetError(f"{text!r}: missing ']' after the IPv6 address")
        host = t[1:close]
        rest = t[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ProbeTargetError(f"{text!r}: expected ':PORT' after ']'")
            port_s = rest[1:]
        if not _is_ip(host) or ":" not in host:
            raise ProbeTargetError(f"{text!r}: {host!r} is not an IPv6 address")
    elif t.count(":") > 1:
        # A bare IPv6 address; a port needs the bracket form (RFC 3986 §3.2.2).
        host = t
        if not _is_ip(host):
            raise ProbeTargetError(f"{text!r}: write an IPv6 address with a port as [ADDR]:PORT")
    elif ":" in t:
        host, port_s = t.rsplit(":", 1)
    else:
        host = t
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise ProbeTargetError(f"{text!r}: not a host name or address")
    port = default_port
    if port_s is not None:
        # ASCII digits only: str.isdigit is also true of e.g. "²", which int() refuses.
        if not (port_s.isascii() and port_s.isdigit()) or not 0 < int(port_s) < 65536:
            raise ProbeTargetError(f"{text!r}: port must be a number from 1 to 65535")
        port = int(port_s)
    return host, port


# --------------------------------------------------------------------------------------
# DER walking (RFC 5280 §4.1; X.690 DER) -- bounded, never raises out of cert_names()

_OID_CN = bytes.fromhex("550403")  # 2.5.4.3 commonName
_OID_SAN = bytes.fromhex("551d11")  # 2.5.29.17 subjectAltName
_MAX_DEPTH = 8
_MAX_NAMES = 256


class _DerError(Exception):
    pass


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one DER TLV at ``pos``: returns (tag, value_start, value_end)."""
    if pos + 2 > end:
        raise _DerError("short TLV")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _DerError("high tag numbers are not used in certificates")
    ln = data[pos + 1]
    p = pos + 2
    if ln & 0x80:
        n = ln & 0x7F
        # DER: long form only with 1..4 length bytes here; a certificate never needs more.
        if n == 0 or n > 4 or p + n > end:
            raise _DerError("bad length")
        ln = int.from_bytes(data[p : p + n], "big")
        p += n
    if p + ln > end:
        raise _DerError("length overruns its container")
    return tag, p, p + ln


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    p = start
    while p < end:
        tag, vs, ve = _tlv(data, p, end)
        out.append((tag, vs, ve))
        p = ve
        if len(out) > _MAX_NAMES:
            raise _DerError("too many elements")
    return out


def _text(data: bytes, tag: int, vs: int, ve: int) -> str:
    raw = data[vs:ve]
    if tag == 0x1E:  # BMPString
        return raw.decode("utf-16-be", "replace")
    if tag == 0x1C:  # UniversalString
        return raw.decode("utf-32-be", "replace")
    return raw.decode("utf-8", "replace")


def cert_names(der: bytes) -> tuple[str | None, tuple[str, ...]]:
    """Subject common name and subjectAltName entries (``DNS:`` names and ``IP:``
    addresses, in certificate order) of a DER X.509 certificate.

    Bounded and total: malformed input gives ``(None, ())`` or whatever was read before
    the damage; it never raises.
    """
    cn: str | None = None
    sans: list[str] = []
    try:
        data = bytes(der)
        tag, vs, ve = _tlv(data, 0, len(data))
        if tag != 0x30:
            return None, ()
        tag, tvs, tve = _tlv(data, vs, ve)  # tbsCertificate
        if tag != 0x30:
            return None, ()
        fields = _children(data, tvs, tve)
        i = 1 if fields and fields[0][0] == 0xA0 else 0  # [0] EXPLICIT version
        # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
        if len(fields) < i + 6:
            return None, ()
        _t, svs, sve = fields[i + 4]
        for _st, rvs, rve in _children(data, svs, sve):  # RDNSequence: SET OF
            for _at, avs, ave in _children(data, rvs, rve):  # AttributeTypeAndValue
                parts = _children(data, avs, ave)
                if (len(parts) == 2 and parts[0][0] == 0x06
                        and data[parts[0][1] : parts[0][2]] == _OID_CN):
                    cn = _text(data, *parts[1])  # the last CN wins, as in most tools
        for ftag, fvs, fve in fields[i + 6 :]:
            if ftag != 0xA3:  # [3] EXPLICIT extensions
                continue
            _t, evs, eve = _tlv(data, fvs, fve)
            for _et, xvs, xve in _children(data, evs, eve):
                ext = _children(data, xvs, xve)
                if not ext or ext[0][0] != 0x06 or data[ext[0][1] : ext[0][2]] != _OID_SAN:
                    continue
                octet = ext[-1]
                if octet[0] != 0x04:
                    continue
                _t, gvs, gve = _tlv(data, octet[1], octet[2])
                for gtag, nvs, nve in _children(data, gvs, gve):
                    if gtag == 0x82:  # [2] dNSName IA5String
                        sans.append("DNS:" + data[nvs:nve].decode("ascii", "replace"))
                    elif gtag == 0x87 and nve - nvs in (4, 16):  # [7] iPAddress
                        sans.append("IP:" + str(ipaddress.ip_address(data[nvs:nve])))
                    if len(sans) >= _MAX_NAMES:
                        break
    except (_DerError, ValueError, IndexError):
        pass
    return cn, tuple(sans)


# --------------------------------------------------------------------------------------
# the handshake


def _classify_first(buf: bytes, eof: bool) -> tuple[str, int | None, int | None, bool] | None:
    """Decide the server's first reaction from its first raw bytes.

    Returns ``(result, alert_level, alert_description, hrr)`` or None when more bytes are
    needed. RFC 8446 §5.1 record header: type(1) version(2) length(2).
    """
    if not buf:
        return None
    ct = buf[0]
    if ct == 21:  # alert record: level, description (RFC 8446 §6)
        if len(buf) >= 7:
            return ("alert", buf[5], buf[6], False)
        return ("not_tls", None, None, False) if eof else None
    if ct == 22:  # handshake record; type 2 = ServerHello (RFC 8446 §4)
        if len(buf) < 6:
            return ("not_tls", None, None, False) if eof else None
        if buf[5] != 2 or buf[1] != 3:
            return ("not_tls", None, None, False)
        if len(buf) >= 43:
            # handshake header (4) + legacy_version (2), then the 32-byte random.
            return ("server_hello", None, None, buf[11:43] == _HRR_RANDOM)
        return ("server_hello", None, None, False) if eof else None
    return ("not_tls", None, None, False)


def _excerpt(buf: bytes) -> str:
    text = buf[:32]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in text):
        return repr(text.decode("ascii"))  # an HTTP or SMTP answer is worth reading as text
    return text.hex()


def _context(verify: bool, with_name: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context() if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Name checking needs a name; the attempt without SNI can only verify the chain.
    ctx.check_hostname = verify and with_name
    ctx.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    return ctx


def _ms(t0: int) -> float:
    return (time.perf_counter_ns() - t0) / 1e6


def _attempt(
    family: int,
    sockaddr: Any,
    sni: str | None,
    timeout: float,
    verify: bool,
) -> ProbeAttempt:
    """One handshake over a plain socket, TLS driven through memory BIOs."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        return ProbeAttempt("connect_error", sni=sni, error=f"socket: {e.strerror or e}")
    try:
        return _handshake(sock, sockaddr, sni, timeout, deadline, verify)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def _handshake(
    sock: socket.socket,
    sockaddr: Any,
    sni: str | None,
    timeout: float,
    deadline: float,
    verify: bool,
) -> ProbeAttempt:
    sock.settimeout(max(timeout, 0.001))
    try:
        sock.connect(sockaddr)
    except TimeoutError:
        return ProbeAttempt("connect_error", sni=sni, error=f"TCP connect timed out after {timeout:g} s")
    except OSError as e:
        return ProbeAttempt("connect_error", sni=sni, error=e.strerror or str(e))

    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        obj = _context(verify, sni is not None).wrap_bio(
            incoming, outgoing, server_side=False, server_hostname=sni
        )
    except (ssl.SSLError, ValueError, TypeError) as e:
        return ProbeAttempt("connect_error", sni=sni, error=f"TLS setup: {e}")

    def flush() -> None:
        data = outgoing.read()
        if data:
            sock.sendall(data)

    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLError as e:  # pragma: no cover - a client hello cannot fail locally
        return ProbeAttempt("connect_error", sni=sni, error=f"TLS setup: {e}")
    # The clock starts as the hello is handed to the kernel: reading it after sendall()
    # returns could miss a fast server's answer (and, with a server in this process, the
    # whole handshake the other thread ran meanwhile).
    t0 = time.perf_counter_ns()
    try:
        flush()
    except OSError as e:
        return ProbeAttempt("server_reset" if _is_reset(e) else "connect_error", sni=sni,
                            error=e.strerror or str(e))

    first = b""
    decided: tuple[str, int | None, int | None, bool] | None = None
    outcome_ms: float | None = None
    error: str | None = None
    complete = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            error = f"timed out after {timeout:g} s"
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(_RECV)
        except TimeoutError:
            error = f"timed out after {timeout:g} s"
            break
        except OSError as e:
            if decided is None and _is_reset(e):
                return ProbeAttempt("server_reset", sni=sni, outcome_ms=_ms(t0))
            error = "reset by the server" if _is_reset(e) else (e.strerror or str(e))
            break
        if not chunk:
            if decided is None:
                if not first:
                    return ProbeAttempt("server_close", sni=sni, outcome_ms=_ms(t0))
                decided = _classify_first(first, eof=True)
            error = error or "the server closed the connection"
            break
        if decided is None:
            if outcome_ms is None:
                outcome_ms = _ms(t0)
            first = (first + chunk)[:_FIRST_BYTES_CAP]
            decided = _classify_first(first, eof=False)
            if decided is not None and decided[0] != "server_hello":
                break
        incoming.write(chunk)
        try:
            obj.do_handshake()
            complete = True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as e:
            error = getattr(e, "reason", None) or str(e)
            try:
                flush()  # let our alert reach the server
            except OSError:
                pass
            break
        try:
            flush()
        except OSError as e:
            error = e.strerror or str(e)
            break
        if complete:
            break

    if decided is None:
        if first:
            decided = _classify_first(first, eof=True)
        if decided is None:
            return ProbeAttempt("timeout", sni=sni, error=error)
    result, level, desc, hrr = decided
    if result == "alert":
        return ProbeAttempt("alert", sni=sni, outcome_ms=outcome_ms, alert=desc, alert_level=level)
    if result == "not_tls":
        return ProbeAttempt("not_tls", sni=sni, outcome_ms=outcome_ms, error=_excerpt(first))

    version = cipher = cn = None
    sans: tuple[str, ...] = ()
    try:
        version = obj.version()
        c = obj.cipher()
        cipher = c[0] if c else None
        der = obj.getpeercert(binary_form=True)
        if der:
            cn, sans = cert_names(der)
    except (ssl.SSLError, ValueError):
        pass
    if complete:
        error = None
        # Close cleanly: close_notify (RFC 8446 §6.1), never application data.
        try:
            obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        try:
            flush()
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    return ProbeAttempt(
        "server_hello",
        sni=sni,
        outcome_ms=outcome_ms,
        version=version,
        cipher=cipher,
        cert_cn=cn,
        cert_sans=sans,
        hrr=hrr,
        handshake_complete=complete,
        error=error,
    )


def _is_reset(e: OSError) -> bool:
    return isinstance(e, (ConnectionResetError, BrokenPipeError))


# --------------------------------------------------------------------------------------
# verdict


def _reaction(a: ProbeAttempt) -> str:
    ms = f" {a.outcome_ms:.1f} ms after the ClientHello" if a.outcome_ms is not None else ""
    if a.result == "server_reset":
        return f"resets the TCP connection{ms}"
    if a.result == "alert":
        return f"answers with TLS alert {a.alert} ({a.alert_name}){ms}"
    if a.result == "server_close":
        return f"closes the connection without sending any TLS bytes{ms}"
    if a.result == "timeout":
        return "does not answer at all"
    if a.result == "not_tls":
        return "answers with bytes that are not TLS"
    if a.result == "server_hello":
        return "answers with a ServerHello"
    return a.describe()


def _covers(names: tuple[str, ...], host: str) -> bool:
    h = host.rstrip(".").lower()
    for n in names:
        kind, _, v = n.partition(":")
        v = v.lower()
        if kind == "IP" and v == h:
            return True
        if kind == "DNS":
            if v == h:
                return True
            # RFC 6125 §6.4.3: a wildcard covers exactly one left-most label.
            if v.startswith("*.") and "." in h and h.split(".", 1)[1] == v[2:]:
                return True
    return False


def _verdict(
    target_host: str,
    address: str | None,
    port: int,
    with_sni: ProbeAttempt | None,
    without: ProbeAttempt,
) -> str:
    where = f"{_fmt_addr(address)}:{port}" if address else f"{target_host}:{port}"
    if without.result == "connect_error" and (with_sni is None or with_sni.result == "connect_error"):
        return f"Could not connect to {where}: {without.error}."
    if without.result == "server_hello":
        s = f"Clients without SNI are served: {where} answers a ClientHello without SNI with a ServerHello"
        if without.cert_cn or without.cert_sans:
            s += f" and the certificate CN={without.cert_cn or '-'}"
        s += "."
        if (with_sni is not None and with_sni.result == "server_hello"
                and (with_sni.cert_cn, with_sni.cert_sans) != (without.cert_cn, without.cert_sans)):
            s += (f" Note: clients without SNI get a different certificate than clients "
                  f"sending {with_sni.sni!r} (CN={with_sni.cert_cn or '-'}).")
        name = with_sni.sni if with_sni is not None else None
        if name and without.cert_sans and not _covers(without.cert_sans, name):
            s += (f" The certificate served without SNI does not cover {name}; clients that "
                  "verify the name will reject it.")
        return s
    reaction = _reaction(without)
    if with_sni is None:
        return (f"Clients without SNI are NOT served: without SNI {where} {reaction}. "
                f"No name was sent for comparison (pass an SNI to confirm the server works "
                f"with one). {NON_SNI_FIX}")
    if with_sni.result == "server_hello":
        return (f"{where} requires SNI: without SNI it {reaction}, while with SNI "
                f"{with_sni.sni!r} it answers with a ServerHello. {NON_SNI_FIX}")
    return (f"Both handshakes failed at {where} (with SNI {with_sni.sni!r}: "
            f"{with_sni.describe()}; without SNI: {without.describe()}), so the problem is "
            "not only SNI: check the address, the port, the TLS versions and the service.")


# --------------------------------------------------------------------------------------
# entry point


def probe(
    target: str,
    *,
    sni: str | None = None,
    connect: str | None = None,
    timeout: float = 5.0,
    verify: bool = False,
) -> ProbeReport:
    """Probe ``target`` (``HOST[:PORT]``, port 443 by default, IPv6 as ``[::1]:8443``)
    with two TLS handshakes: one with SNI, one without.

    The name sent is ``sni`` when given, else HOST when it is a name (not an IP address);
    with neither, the attempt with SNI is skipped and the report says why. ``connect``
    (``ADDR`` or ``ADDR:PORT``) overrides the address dialled, e.g. to reach one ingress
    pod by IP while sending the public name. Both attempts use the same resolved address.
    ``timeout`` bounds each attempt (connect + handshake) in seconds. Certificates are not
    validated unless ``verify`` is True. Never sends application data.

    Raises :class:`ProbeTargetError` for a malformed target; every network failure is a
    result (``connect_error``, ``timeout``...), not an exception.
    """
    host, port = parse_target(target)
    dial_host = host
    if connect:
        dial_host, port = parse_target(connect, default_port=port)
    if timeout <= 0:
        raise ProbeTargetError("timeout must be positive")
    name = sni if sni else (None if _is_ip(host) else host)
    skipped = None
    if name is None:
        skipped = "the target is an IP address and no SNI name was given"
    elif _is_ip(name):
        # RFC 6066 §3: literal addresses are not permitted in SNI; ssl would omit it.
        skipped = f"{name} is an IP address, which SNI cannot carry"
        name = None

    if name is not None:
        # Reject a name the TLS stack cannot put in a server_name extension (IDNA rules,
        # RFC 5890) here, as a usage error, rather than as a failed connection later.
        try:
            _context(False, True).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=name)
        except (ValueError, TypeError, ssl.SSLError) as e:
            raise ProbeTargetError(f"cannot send {name!r} as SNI: {e}") from e

    try:
        infos = socket.getaddrinfo(dial_host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, TypeError) as e:  # gaierror, IDNA UnicodeError, NUL
        msg = f"cannot resolve {dial_host}: {getattr(e, 'strerror', None) or e}"
        failed = ProbeAttempt("connect_error", error=msg)
        with_a = ProbeAttempt("connect_error", sni=name, error=msg) if name else None
        return ProbeReport(target, None, port, with_a, failed, False,
                           f"Could not connect to {dial_host}:{port}: {msg}.", skipped)
    family, _t, _p, _c, sockaddr = infos[0]
    address = str(sockaddr[0])

    with_a = _attempt(family, sockaddr, name, timeout, verify) if name else None
    without = _attempt(family, sockaddr, None, timeout, verify)
    ok = without.result == "server_hello"
    verdict = _verdict(host, address, port, with_a, without)
    return ProbeReport(target, address, port, with_a, without, ok, verdict, skipped)
