"""The active probe against real servers on loopback, started here and stopped after.

Each server is a thread (or an nginx subprocess) bound to 127.0.0.1 / ::1 on a free port.
Certificates are generated per test session with ``openssl req``.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sniparse.probe import (
    ProbeTargetError,
    cert_names,
    parse_target,
    probe,
)

NAME = "api.example.test"


# --------------------------------------------------------------------------- certificates


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("certs")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(crt), "-days", "2",
            "-subj", f"/O=sniparse tests/CN={NAME}",
            "-addext", f"subjectAltName=DNS:{NAME},DNS:*.example.test,IP:127.0.0.1,IP:::1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return crt, key


def _server_ctx(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


# --------------------------------------------------------------------------- servers


class Server:
    """A one-connection-at-a-time TCP server in a thread, handling each accepted socket
    with ``handler``. Stopped by the fixture; every socket has a timeout."""

    def __init__(self, handler: Callable[[socket.socket, Server], None], host: str = "127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.stop = threading.Event()
        self.seen_sni: list[str | None] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                self.handler(conn, self)
            except (OSError, ssl.SSLError):
                pass
            except BaseException as e:  # noqa: BLE001 - reported by the test
                self.errors.append(e)
            finally:
                try:
                    conn.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handler: Callable[[socket.socket, Server], None], host: str = "127.0.0.1") -> Server:
        s = Server(handler, host)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()
        assert not s.errors, s.errors


def _reset(conn: socket.socket) -> None:
    # SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def sni_required_reset(cert: tuple[Path, Path]) -> Callable[[socket.socket, Server], None]:
    """Like an SNI-routed ingress without a default chain: read the hello through a
    memory BIO, learn its SNI, and reset the connection when there is none."""
    ctx = _server_ctx(cert)

    def handler(conn: socket.socket, srv: Server) -> None:
        seen: list[str | None] = []

        def cb(obj: ssl.SSLObject, name: str | None, c: ssl.SSLContext) -> None:
            seen.append(name)

        ctx.sni_callback = cb
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_side=True)
        reported = False
        while True:
            data = conn.recv(65536)
            if not data:
                return
            inc.write(data)
            try:
                obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            if seen and not reported:
                reported = True
                srv.seen_sni.append(seen[0])
                if seen[0] is None:
                    _reset(conn)
                    return
            pending = out.read()
            if pending:
                conn.sendall(pending)
            if done:
                conn.recv(65536)  # the client's close_notify or EOF
                return

    return handler


def sni_alert(cert: tuple[Path, Path]) -> Callable[[socket.socket, Server], None]:
    """Refuse a hello without SNI with alert 112 unrecognized_name (RFC 6066 §3)."""
    ctx = _server_ctx(cert)

    def handler(conn: socket.socket, srv: Server) -> None:
        def cb(obj: ssl.SSLSocket, name: str | None, c: ssl.SSLContext) -> int | None:
            srv.seen_sni.append(name)
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME if name is None else None

        ctx.sni_callback = cb  # type: ignore[assignment]
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1024)

    return handler


def accept_all(cert: tuple[Path, Path]) -> Callable[[socket.socket, Server], None]:
    ctx = _server_ctx(cert)

    def handler(conn: socket.socket, srv: Server) -> None:
        def cb(obj: ssl.SSLSocket, name: str | None, c: ssl.SSLContext) -> None:
            srv.seen_sni.append(name)

        ctx.sni_callback = cb  # type: ignore[assignment]
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1024)  # close_notify / EOF; the probe must send no application data

    return handler


def hello_retry(cert: tuple[Path, Path]) -> Callable[[socket.socket, Server], None]:
    """Accept only P-384: Python's client offers an X25519 key share first, so a TLS 1.3
    server must answer with a HelloRetryRequest (RFC 8446 §4.1.4)."""
    ctx = _server_ctx(cert)
    ctx.set_ecdh_curve("secp384r1")

    def handler(conn: socket.socket, srv: Server) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1024)

    return handler


def silent(conn: socket.socket, srv: Server) -> None:
    conn.recv(65536)
    srv.stop.wait(3)


def close_quietly(conn: socket.socket, srv: Server) -> None:
    # Read the hello first: closing with unread bytes would make the kernel send a RST.
    conn.recv(65536)
    conn.shutdown(socket.SHUT_WR)
    conn.settimeout(2)
    try:
        conn.recv(65536)
    except OSError:
        pass


def http_answer(conn: socket.socket, srv: Server) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    conn.shutdown(socket.SHUT_WR)
    try:
        conn.recv(65536)
    except OSError:
        pass


# --------------------------------------------------------------------------- target parsing


@pytest.mark.parametrize(
    "text,expected",
    [
        ("example.com", ("example.com", 443)),
        ("example.com:8443", ("example.com", 8443)),
        ("10.0.0.1", ("10.0.0.1", 443)),
        ("10.0.0.1:9443", ("10.0.0.1", 9443)),
        ("[::1]:8443", ("::1", 8443)),
        ("[::1]", ("::1", 443)),
        ("::1", ("::1", 443)),
        ("fe80::1", ("fe80::1", 443)),
    ],
)
def test_parse_target(text: str, expected: tuple[str, int]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    "text", ["", "host:0", "host:70000", "host:abc", "host:\u00b2", "[::1", "[::1]x",
             "[nothost]:1", "a b:1", "1::2::3"]
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ProbeTargetError):
        parse_target(text)


# --------------------------------------------------------------------------- outcomes


def test_sni_required_reset(serve: Callable[..., Server], cert: tuple[Path, Path]) -> None:
    srv = serve(sni_required_reset(cert))
    rep = probe(f"{NAME}:{srv.port}", connect="127.0.0.1", timeout=5)
    assert rep.address == "127.0.0.1" and rep.port == srv.port
    assert rep.with_sni is not None
    assert rep.with_sni.result == "server_hello"
    assert rep.with_sni.handshake_complete
    assert rep.with_sni.sni == NAME
    assert rep.with_sni.version in ("TLSv1.3", "TLSv1.2")
    assert rep.with_sni.cert_cn == NAME
    assert "DNS:*.example.test" in rep.with_sni.cert_sans
    assert rep.without_sni.result == "server_reset"
    assert rep.without_sni.outcome_ms is not None and 0 <= rep.without_sni.outcome_ms < 5000
    assert rep.non_sni_supported is False
    assert "requires SNI" in rep.verdict and "enableNonSniClient" in rep.verdict
    assert "resets" in rep.verdict
    # The server really saw one hello with the name and one without.
    assert srv.seen_sni == [NAME, None]
    d = rep.to_dict()
    assert d["with_sni"]["result"] == "server_hello"
    assert d["without_sni"]["result"] == "server_reset"
    assert d["non_sni_supported"] is False
    assert json.loads(json.dumps(d)) == d
    text = rep.render_text()
    assert text.startswith(rep.verdict)
    assert "without SNI: TCP reset by the server" in text


def test_alert_unrecognized_name(serve: Callable[..., Server], cert: tuple[Path, Path]) -> None:
    srv = serve(sni_alert(cert))
    rep = probe(f"127.0.0.1:{srv.port}", sni=NAME, timeout=5)
    assert rep.with_sni is not None and rep.with_sni.result == "server_hello"
    assert rep.without_sni.result == "alert"
    assert rep.without_sni.alert == 112
    assert rep.without_sni.alert_name == "unrecognized_name"
    assert rep.without_sni.alert_level == 2
    assert rep.to_dict()["without_sni"]["alert"] == 112
    assert not rep.non_sni_supported
    assert "112" in rep.verdict and "unrecognized_name" in rep.verdict


def test_accepts_both(serve: Callable[..., Server], cert: tuple[Path, Path]) -> None:
    srv = serve(accept_all(cert))
    rep = probe(f"localhost:{srv.port}", connect=f"127.0.0.1:{srv.port}", timeout=5)
    assert rep.with_sni is not None and rep.with_sni.sni == "localhost"
    assert rep.with_sni.result == rep.without_sni.result == "server_hello"
    assert rep.without_sni.handshake_complete and rep.without_sni.error is None
    assert rep.without_sni.cert_cn == NAME
    assert rep.without_sni.cert_sans == (
        f"DNS:{NAME}", "DNS:*.example.test", "IP:127.0.0.1", "IP:::1")
    assert rep.non_sni_supported is True
    assert rep.to_dict()["non_sni_supported"] is True
    assert "are served" in rep.verdict
    # The certificate does not name "localhost": say so.
    assert "does not cover localhost" in rep.verdict
    assert srv.seen_sni == ["localhost", None]


def test_hello_retry_request(serve: Callable[..., Server], cert: tuple[Path, Path]) -> None:
    srv = serve(hello_retry(cert))
    rep = probe(f"127.0.0.1:{srv.port}", timeout=5)
    a = rep.without_sni
    assert a.result == "server_hello" and a.hrr and a.handshake_complete
    assert a.version == "TLSv1.3"
    assert "HelloRetryRequest" in a.describe()
    assert rep.to_dict()["without_sni"]["hrr"] is True


def test_verify_reports_an_untrusted_certificate(
    serve: Callable[..., Server], cert: tuple[Path, Path]
) -> None:
    srv = serve(accept_all(cert))
    rep = probe(f"{NAME}:{srv.port}", connect="127.0.0.1", timeout=5, verify=True)
    for a in (rep.with_sni, rep.without_sni):
        assert a is not None
        # The server did answer: the outcome stays server_hello, the failure is ours.
        assert a.result == "server_hello" and not a.handshake_complete
        assert a.error is not None and "CERTIFICATE_VERIFY_FAILED" in a.error
    assert rep.non_sni_supported


def test_ip_target_without_sni_skips_with_sni(
    serve: Callable[..., Server], cert: tuple[Path, Path]
) -> None:
    srv = serve(accept_all(cert))
    rep = probe(f"127.0.0.1:{srv.port}", timeout=5)
    assert rep.with_sni is None
    assert rep.with_sni_skipped and "IP address" in rep.with_sni_skipped
    assert rep.to_dict()["with_sni"]["result"] == "skipped"
    assert rep.without_sni.result == "server_hello"
    assert srv.seen_sni == [None]
    assert "skipped" in rep.render_text()


def test_ipv6_target(serve: Callable[..., Server], cert: tuple[Path, Path]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = serve(accept_all(cert), host="::1")
    except OSError:
        pytest.skip("::1 not available")
    rep = probe(f"[::1]:{srv.port}", sni=NAME, timeout=5)
    assert rep.address == "::1"
    assert rep.with_sni is not None and rep.with_sni.result == "server_hello"
    assert rep.non_sni_supported
    assert f"[::1]:{srv.port}" in rep.render_text()


def test_connection_refused() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rep = probe(f"{NAME}:{port}", connect="127.0.0.1", timeout=2)
    assert rep.without_sni.result == "connect_error"
    assert rep.without_sni.error and "refused" in rep.without_sni.error.lower()
    assert rep.with_sni is not None and rep.with_sni.result == "connect_error"
    assert rep.non_sni_supported is False
    assert rep.verdict.startswith("Could not connect")


def test_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver is replaced: the test must not send a DNS query anywhere.
    asked: list[object] = []

    def fail(host: object, *a: object, **k: object) -> object:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    rep = probe("no-such-host.invalid:443", timeout=2)
    assert asked == ["no-such-host.invalid"]
    assert rep.without_sni.result == "connect_error"
    assert rep.with_sni is not None and rep.with_sni.result == "connect_error"
    assert rep.address is None
    assert "cannot resolve no-such-host.invalid" in (rep.without_sni.error or "")
    assert rep.verdict.startswith("Could not connect")


@pytest.mark.parametrize("sni", ["a..b", "x" * 70, "\x00", ".lead"])
def test_unsendable_sni_is_a_usage_error(sni: str) -> None:
    with pytest.raises(ProbeTargetError):
        probe("127.0.0.1:1", sni=sni, timeout=1)


def test_timeout(serve: Callable[..., Server]) -> None:
    srv = serve(silent)
    t = time.monotonic()
    rep = probe(f"127.0.0.1:{srv.port}", sni=NAME, timeout=0.4)
    elapsed = time.monotonic() - t
    assert rep.without_sni.result == "timeout"
    assert rep.with_sni is not None and rep.with_sni.result == "timeout"
    assert elapsed < 3
    assert "Both handshakes failed" in rep.verdict


def test_server_close(serve: Callable[..., Server]) -> None:
    srv = serve(close_quietly)
    rep = probe(f"127.0.0.1:{srv.port}", timeout=3)
    assert rep.without_sni.result == "server_close"
    assert rep.without_sni.outcome_ms is not None
    assert "closes the connection" in rep.verdict


def test_not_tls(serve: Callable[..., Server]) -> None:
    srv = serve(http_answer)
    rep = probe(f"127.0.0.1:{srv.port}", timeout=3)
    assert rep.without_sni.result == "not_tls"
    assert "HTTP/1.1 400" in (rep.without_sni.error or "")


def test_bad_target_raises() -> None:
    with pytest.raises(ProbeTargetError):
        probe("host:99999")
    with pytest.raises(ProbeTargetError):
        probe("host", timeout=0)


# --------------------------------------------------------------------------- nginx


NGINX_CONF = """
user root;
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl default_server;
        ssl_reject_handshake on;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {name};
        ssl_certificate {crt};
        ssl_certificate_key {key};
        return 204;
    }}
}}
"""


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.fixture
def nginx(tmp_path: Path, cert: tuple[Path, Path]) -> Iterator[int]:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe is None:
        pytest.skip("nginx not installed")
    port = _free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(d=tmp_path, port=port, name=NAME, crt=cert[0], key=cert[1]))
    proc = subprocess.Popen(
        [exe, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.skip(f"nginx did not start: {err.strip()[:200]}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_nginx_reject_handshake(nginx: int) -> None:
    rep = probe(f"{NAME}:{nginx}", connect="127.0.0.1", timeout=5)
    assert rep.with_sni is not None and rep.with_sni.result == "server_hello"
    assert rep.with_sni.cert_cn == NAME
    # nginx's ssl_reject_handshake refuses with unrecognized_name (RFC 6066 §3).
    assert rep.without_sni.result == "alert"
    assert rep.without_sni.alert == 112
    assert not rep.non_sni_supported
    assert "requires SNI" in rep.verdict


# --------------------------------------------------------------------------- DER walker


def test_cert_names_matches_cryptography(cert: tuple[Path, Path]) -> None:
    x509 = pytest.importorskip("cryptography.x509")
    der = ssl.PEM_cert_to_DER_cert(cert[0].read_text())
    c = x509.load_der_x509_certificate(der)
    cn = c.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    want = tuple(
        ("DNS:" + g.value) if isinstance(g, x509.DNSName) else f"IP:{g.value}"
        for g in san
        if isinstance(g, (x509.DNSName, x509.IPAddress))
    )
    assert cert_names(der) == (cn, want)


def test_cert_names_total_on_garbage(cert: tuple[Path, Path]) -> None:
    der = ssl.PEM_cert_to_DER_cert(cert[0].read_text())
    # Every prefix and a spread of single-byte mutations: never an exception.
    for n in range(0, len(der), 7):
        cert_names(der[:n])
    for i in range(0, len(der), 3):
        for v in (0x00, 0x7F, 0x84, 0xFF):
            mutated = der[:i] + bytes([v]) + der[i + 1 :]
            cn, sans = cert_names(mutated)
            assert cn is None or isinstance(cn, str)
            assert all(isinstance(s, str) for s in sans)
    assert cert_names(b"") == (None, ())
    assert cert_names(b"\x30\x84\xff\xff\xff\xff") == (None, ())
