"""TLS wire parsing: framing, ClientHello / ServerHello decoding, hostile input.

Fixtures in ``fixtures/hellos`` are ClientHellos recorded from real clients on loopback
(``record_hellos.py``) and constructed edge cases (``build_hellos.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sniparse.errors import MalformedError, SniparseError, TruncatedError
from sniparse.fingerprint import fingerprints
from sniparse.tls import (
    ALERT_DESCRIPTIONS,
    HRR_RANDOM,
    MAX_HELLO_RECORDS,
    MAX_RECORD_LEN,
    ClientHello,
    NotTLSError,
    is_grease,
    looks_like_tls_hello,
    parse_client_hello,
    parse_server_hello,
    read_client_hello,
    read_server_reaction,
    version_name,
)

HELLOS = Path(__file__).resolve().parent.parent / "fixtures" / "hellos"


def _load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_hellos", HELLOS / "build_hellos.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["build_hellos"] = mod
    spec.loader.exec_module(mod)
    return mod


B = _load_builder()

# What each fixture was made with (see record_hellos.py / build_hellos.py): the SNI the client
# was told to send, or None.
EXPECTED_SNI: dict[str, str | None] = {
    "openssl_sni.bin": "example.com",
    "openssl_nosni.bin": None,
    "openssl_tls12_sni.bin": "example.com",
    "openssl_hrr_sni.bin": "example.com",
    "openssl_wrongname_sni.bin": "other.test",
    "curl_sni.bin": "localhost",
    "curl_nosni.bin": None,
    "gnutls_sni.bin": "localhost",
    "gnutls_nosni.bin": None,
    "python_sni.bin": "example.com",
    "python_nosni.bin": None,
    "chrome_like_pq_sni.bin": "www.example.com",
    "chrome_like_pq_nosni.bin": None,
    "sslv2_nosni.bin": None,
    "three_records_sni.bin": "fragmented.example",
    "sni_ip_literal.bin": "192.0.2.10",
    "sni_trailing_dot.bin": "www.example.com.",
    "sni_non_ascii.bin": "bücher.example",
    "sni_empty_list.bin": None,
    "sni_empty_body.bin": None,
    "sni_zero_length_name.bin": None,
    "sni_other_name_type.bin": None,
    "no_extensions_tls10_nosni.bin": None,
}
CLIENT_FIXTURES = sorted(EXPECTED_SNI)
RECORDED = [n for n in CLIENT_FIXTURES if n.split("_")[0] in ("openssl", "curl", "gnutls",
                                                              "python")]


def fx(name: str) -> bytes:
    return (HELLOS / name).read_bytes()


def test_every_fixture_is_listed() -> None:
    on_disk = {p.name for p in HELLOS.glob("*.bin") if not p.name.startswith("server_")}
    assert on_disk == set(EXPECTED_SNI)


# -- whole hellos ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIENT_FIXTURES)
def test_fixture_parses_whole(name: str) -> None:
    data = fx(name)
    r = read_client_hello(data)
    assert r is not None
    hello, end = r
    assert end == len(data) == hello.wire_len
    assert hello.sni == EXPECTED_SNI[name]
    if hello.sni is not None:
        assert hello.sni_status == "present"
        assert hello.sni_raw is not None and hello.sni_raw.decode("utf-8") == hello.sni
    elif name.startswith("sni_"):
        assert hello.sni_status == "empty"
    else:
        assert hello.sni_status == "absent"
        assert 0 not in hello.extension_types
    assert parse_client_hello(data) == hello
    assert looks_like_tls_hello(data) is True


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_hellos_decode(name: str) -> None:
    h = parse_client_hello(fx(name))
    assert not h.sslv2 and h.records == 1
    assert 0x0303 <= h.legacy_version <= 0x0303
    assert len(h.random) == 32
    assert h.cipher_suites and h.compression_methods == (0,)
    if name == "openssl_tls12_sni.bin":
        assert h.supported_versions == () and h.versions == ("TLSv1.2",)
    else:
        assert h.versions[0] == "TLSv1.3" and "TLSv1.2" in h.versions
        assert h.key_share_groups and set(h.key_share_groups) <= set(h.supported_groups)
    if name.startswith(("python", "curl")):
        assert h.alpn == ("h2", "http/1.1") and h.alpn_raw == (b"h2", b"http/1.1")
    assert 13 in h.extension_types and h.signature_algorithms
    assert not h.ech and not h.early_data


def test_python_hello_matches_its_context() -> None:
    """The decoded views agree with what the Python ssl module was configured to send."""
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["spdy/3", "x"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(i, o, server_hostname="api.internal.example")
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    h = parse_client_hello(o.read())
    assert h.sni == "api.internal.example" and h.alpn == ("spdy/3", "x")
    assert set(h.offered_versions) == {0x0304, 0x0303}
    names = {c["id"] & 0xFFFF for c in ctx.get_ciphers()}
    assert names <= set(h.cipher_suites)


def test_chrome_like_pq_hello() -> None:
    h = parse_client_hello(fx("chrome_like_pq_sni.bin"))
    assert len(fx("chrome_like_pq_sni.bin")) > 1700
    assert h.key_share_groups == (0x2A2A, B.X25519MLKEM768, 29)
    assert h.supported_groups == (0x2A2A, B.X25519MLKEM768, 29, 23, 24)
    assert h.ech and not h.psk
    assert h.offered_versions == (0x0304, 0x0303)  # GREASE 0x3a3a removed
    assert h.supported_versions[0] == 0x3A3A  # ... but kept on the wire view
    assert h.alpn == ("h2", "http/1.1")
    assert h.signature_algorithms == tuple(B.CHROME_SIGALGS)
    assert is_grease(h.cipher_suites[0]) and is_grease(h.extension_types[0])


def test_ech_and_esni_flags() -> None:
    ech = parse_client_hello(B.simple([B.sni_ext(b"public.example"), (0xFE0D, b"\x00")]))
    assert ech.ech and not ech.esni and ech.sni_status == "present"
    esni = parse_client_hello(B.simple([(0xFFCE, b"\x13\x01"), (42, b"")]))
    assert esni.esni and not esni.ech and esni.sni_status == "absent" and esni.early_data
    plain = parse_client_hello(fx("python_sni.bin"))
    assert not plain.ech and not plain.esni and not plain.early_data


def test_sni_flags() -> None:
    ip = parse_client_hello(fx("sni_ip_literal.bin"))
    assert ip.sni_is_ip and not ip.sni_trailing_dot and not ip.sni_non_ascii
    dot = parse_client_hello(fx("sni_trailing_dot.bin"))
    assert dot.sni_trailing_dot and not dot.sni_is_ip
    na = parse_client_hello(fx("sni_non_ascii.bin"))
    assert na.sni_non_ascii and na.sni_raw == "bücher.example".encode()
    other = parse_client_hello(fx("sni_other_name_type.bin"))
    assert other.sni_status == "empty" and other.server_names == ((7, b"opaque-name"),)
    v6 = parse_client_hello(B.simple([B.sni_ext(b"2001:db8::1")]))
    assert v6.sni_is_ip and v6.sni == "2001:db8::1"
    for name in (b"example.com", b"1.example", b"host-10"):
        assert not parse_client_hello(B.simple([B.sni_ext(name)])).sni_is_ip
    # undecodable bytes: text with replacement characters, raw bytes kept
    bad = parse_client_hello(B.simple([B.sni_ext(b"ex\xffample.com")]))
    assert bad.sni_non_ascii and "\ufffd" in (bad.sni or "") and bad.sni_raw == b"ex\xffample.com"


def test_first_host_name_wins_and_all_entries_kept() -> None:
    entries = b"".join(bytes([t]) + B.vec16(n) for t, n in
                       ((9, b"x"), (0, b"first.example"), (0, b"second.example")))
    h = parse_client_hello(B.simple([(0, B.vec16(entries))]))
    assert h.sni == "first.example"
    assert h.server_names == ((9, b"x"), (0, b"first.example"), (0, b"second.example"))


def test_sslv2_hello() -> None:
    data = fx("sslv2_nosni.bin")
    h, end = read_client_hello(data) or (None, 0)
    assert isinstance(h, ClientHello) and end == len(data)
    assert h.sslv2 and h.sni_status == "absent" and h.record_version == 0x0002
    assert h.legacy_version == 0x0301 and h.extensions == ()
    assert h.sslv2_cipher_specs[:3] == (0x010080, 0x0700C0, 0x030080)
    # RFC 5246 E.2: specs with a leading zero byte are TLS suites
    assert h.cipher_suites == (0x39, 0x35, 0x2F, 0x0A, 0xFF)
    assert len(h.random) == 16
    assert looks_like_tls_hello(data) is True
    for i in range(len(data)):
        assert read_client_hello(data[:i]) is None
        with pytest.raises(TruncatedError):
            parse_client_hello(data[:i])


def test_three_records() -> None:
    data = fx("three_records_sni.bin")
    h = parse_client_hello(data)
    assert h.records == 3 and h.sni == "fragmented.example" and h.alpn == ("h2",)


def test_trailing_records_not_consumed() -> None:
    data = fx("openssl_sni.bin")
    ccs = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x05hello"
    r = read_client_hello(data + ccs)
    assert r is not None and r[1] == len(data)
    # and with a prefix before ``start``
    r2 = read_client_hello(b"PROXY junk\r\n" + data, 12)
    assert r2 is not None and r2[1] == 12 + len(data) and r2[0].sni == "example.com"


def test_split_at_every_record_size() -> None:
    """The same hello, fragmented into records of every size from 1 to 64 bytes."""
    msg = fx("python_sni.bin")[5:]
    whole = parse_client_hello(msg)
    with pytest.raises(MalformedError, match="more than 256 records"):
        read_client_hello(B.records(msg, [1] * len(msg)))
    for size in (2, 3, 4, 5, 7, 16, 64, 511):
        sizes = [size] * ((len(msg) + size - 1) // size)
        data = B.records(msg, sizes)
        h, end = read_client_hello(data) or (None, 0)
        assert h is not None and end == len(data)
        assert h.records == len(sizes) and h.sni == whole.sni
        assert h.extensions == whole.extensions


# -- every prefix ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIENT_FIXTURES)
def test_every_prefix_needs_more(name: str) -> None:
    """A cut hello is never a hello (and never "absent"): None / TruncatedError."""
    data = fx(name)
    for i in range(len(data)):
        assert read_client_hello(data[:i]) is None, i
        with pytest.raises(TruncatedError):
            parse_client_hello(data[:i])
        assert looks_like_tls_hello(data[:i]) in (None, True)


@pytest.mark.parametrize("name", ["python_sni.bin", "gnutls_nosni.bin", "chrome_like_pq_sni.bin"])
def test_bare_message_prefixes(name: str) -> None:
    msg = fx(name)[5:]
    assert parse_client_hello(msg).sni == EXPECTED_SNI[name]
    for i in range(len(msg)):
        with pytest.raises(TruncatedError):
            parse_client_hello(msg[:i])


def test_byte_at_a_time_buffer() -> None:
    """Feeding a growing bytearray (as a flow buffer does) gives the hello at the last byte."""
    data = fx("three_records_sni.bin") + b"\x17\x03\x03\x00\x02ab"
    buf = bytearray()
    got = None
    for i, b in enumerate(data):
        buf.append(b)
        got = read_client_hello(buf)
        if got is not None:
            assert i == len(fx("three_records_sni.bin")) - 1
            break
    assert got is not None and got[0].sni == "fragmented.example"


# -- mutations of length fields --------------------------------------------------------------


def split_records(data: bytes) -> tuple[list[int], bytes]:
    """The fragment sizes and the handshake message of a record-framed hello."""
    pos, sizes, msg = 0, [], b""
    while pos < len(data):
        n = int.from_bytes(data[pos + 3 : pos + 5], "big")
        sizes.append(n)
        msg += data[pos + 5 : pos + 5 + n]
        pos += 5 + n
    return sizes, msg


def message_length_fields(msg: bytes) -> Iterator[tuple[int, int, str]]:
    """(offset, width, name) of every length field inside a ClientHello message."""
    yield (1, 3, "handshake")
    p = 4 + 34
    yield (p, 1, "session_id")
    p += 1 + msg[p]
    yield (p, 2, "cipher_suites")
    p += 2 + int.from_bytes(msg[p : p + 2], "big")
    yield (p, 1, "compression")
    p += 1 + msg[p]
    if p >= len(msg):
        return
    yield (p, 2, "extensions")
    p += 2
    while p < len(msg):
        et = int.from_bytes(msg[p : p + 2], "big")
        el = int.from_bytes(msg[p + 2 : p + 4], "big")
        yield (p + 2, 2, f"ext{et}")
        b = p + 4
        if et in (0, 16, 51) and el >= 2:  # lists of length-prefixed entries
            yield (b, 2, f"ext{et}.list")
            q = b + 2
            while q < b + el:
                if et == 0:
                    yield (q + 1, 2, "sni.entry")
                    q += 3 + int.from_bytes(msg[q + 1 : q + 3], "big")
                elif et == 16:
                    yield (q, 1, "alpn.entry")
                    q += 1 + msg[q]
                else:
                    yield (q + 2, 2, "key_share.entry")
                    q += 4 + int.from_bytes(msg[q + 2 : q + 4], "big")
        elif et in (10, 13):
            yield (b, 2, f"ext{et}.list")
        elif et in (11, 43):
            yield (b, 1, f"ext{et}.list")
        p = b + el


def bump(data: bytes, off: int, width: int, delta: int) -> bytes | None:
    v = int.from_bytes(data[off : off + width], "big") + delta
    if not 0 <= v < 1 << (8 * width):
        return None
    return data[:off] + v.to_bytes(width, "big") + data[off + width :]


def length_mutations(data: bytes) -> Iterator[tuple[bytes, str, int, bool]]:
    """(mutated stream, field name, delta, is the last record's length) for every length
    field of a record-framed hello bumped by +1 and -1. Fields inside the message are bumped
    in the message, which is then framed again with the same fragment sizes (a field may
    straddle two records)."""
    sizes, msg = split_records(data)
    version = int.from_bytes(data[1:3], "big")
    pos = 0
    for i, n in enumerate(sizes):
        for delta in (1, -1):
            m = bump(data, pos + 3, 2, delta)
            if m is not None:
                yield m, f"record{i}", delta, i == len(sizes) - 1
        pos += 5 + n
    for off, width, name in message_length_fields(msg):
        for delta in (1, -1):
            mm = bump(msg, off, width, delta)
            if mm is not None:
                yield B.records(mm, sizes, version=version), name, delta, False


MUTATED = ["openssl_sni.bin", "curl_nosni.bin", "gnutls_sni.bin", "python_sni.bin",
           "openssl_tls12_sni.bin", "chrome_like_pq_sni.bin", "three_records_sni.bin",
           "sni_empty_list.bin", "no_extensions_tls10_nosni.bin"]


@pytest.mark.parametrize("name", MUTATED)
def test_length_mutations(name: str) -> None:
    """Every length field +-1 breaks the hello, with the precise kind of failure:

    * the handshake length +1 only makes the message look longer than the records that are
      there: TruncatedError (more bytes could still come);
    * the last record's length +1 likewise claims one more byte than there is:
      TruncatedError; with one more byte present that byte is left over: MalformedError;
    * a record length -1 leaves the hello's last byte to be read as the next record's
      content type: MalformedError, unless that byte happens to be 0x16 (then it is the
      start of a plausible record header: TruncatedError);
    * every other length sits inside a message whose size is fixed, so +-1 overruns its
      container or leaves bytes over: MalformedError.
    """
    data = fx(name)
    seen = 0
    for m, fname, delta, last_record in length_mutations(data):
        seen += 1
        expected: type[Exception] = MalformedError
        if fname == "handshake" and delta == 1:
            expected = TruncatedError
        elif fname.startswith("record") and delta == 1 and last_record:
            expected = TruncatedError
            with pytest.raises(MalformedError) as mi:
                parse_client_hello(m + b"\x00")
            assert "left over" in mi.value.detail
        elif fname.startswith("record") and delta == -1:
            # the byte after the shortened record is read as the next record's type
            k = int(fname[6:])
            sizes, _ = split_records(data)
            rec_end = sum(5 + n for n in sizes[: k + 1]) - 1
            if m[rec_end] == 0x16:
                expected = TruncatedError
        with pytest.raises(SniparseError) as ei:
            parse_client_hello(m)
        err = ei.value
        if expected is TruncatedError:
            assert isinstance(err, TruncatedError), (fname, delta, err)
        else:
            assert isinstance(err, MalformedError), (fname, delta, err)
        assert err.detail and err.layer == "tls"
        assert 0 <= err.offset <= len(m)
    assert seen >= 9


@pytest.mark.parametrize("name", ["python_sni.bin", "gnutls_nosni.bin"])
def test_length_mutations_bare_message(name: str) -> None:
    """Without records the handshake length alone frames the message: +1 looks longer than
    the bytes (TruncatedError), -1 leaves a byte after it (MalformedError); inner lengths
    break the message (MalformedError)."""
    msg = fx(name)[5:]
    for off, width, fname in message_length_fields(msg):
        for delta in (1, -1):
            m = bump(msg, off, width, delta)
            if m is None:
                continue
            expected = TruncatedError if (fname, delta) == ("handshake", 1) else MalformedError
            with pytest.raises(SniparseError) as ei:
                parse_client_hello(m)
            assert isinstance(ei.value, expected), (fname, delta, ei.value)
            if expected is MalformedError:
                assert not isinstance(ei.value, TruncatedError)


@pytest.mark.parametrize("name", MUTATED)
def test_length_mutations_framer(name: str) -> None:
    """The framer agrees with the whole-unit parser: Malformed raises, Truncated is None."""
    for m, _name, _delta, _last in length_mutations(fx(name)):
        try:
            parse_client_hello(m)
        except TruncatedError:
            assert read_client_hello(m) is None
        except MalformedError:
            with pytest.raises(MalformedError):
                read_client_hello(m)


# -- format rules ---------------------------------------------------------------------------


def test_not_tls() -> None:
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"SSH-2.0-OpenSSH_9.2\r\n",
                 b"\x00\x00\x00\x00\x00\x00", b"\x16\x01\x00\x00\x10"):
        with pytest.raises(NotTLSError) as ei:
            read_client_hello(junk)
        assert isinstance(ei.value, MalformedError)
        assert looks_like_tls_hello(junk) is False
    # decided on the first byte already
    with pytest.raises(NotTLSError):
        read_client_hello(b"G")


def test_first_record_not_handshake() -> None:
    with pytest.raises(MalformedError) as ei:
        read_client_hello(b"\x15\x03\x03\x00\x02\x02\x28")
    assert not isinstance(ei.value, NotTLSError)
    sh = fx("server_tls13_hello.bin")
    with pytest.raises(MalformedError, match="not ClientHello"):
        read_client_hello(sh)
    assert looks_like_tls_hello(sh) is False


def test_record_limits() -> None:
    big = b"\x16\x03\x01" + (MAX_RECORD_LEN + 1).to_bytes(2, "big") + b"\x01"
    with pytest.raises(MalformedError, match="exceeds"):
        read_client_hello(big)
    assert looks_like_tls_hello(big) is False
    # a hello that claims more than 64 KiB is refused as soon as its header is seen
    huge = b"\x16\x03\x01\x00\x04\x01\x01\x00\x01"
    with pytest.raises(MalformedError, match="limit"):
        read_client_hello(huge)
    with pytest.raises(MalformedError, match="zero-length"):
        read_client_hello(b"\x16\x03\x01\x00\x00")


def test_interleaved_record() -> None:
    msg = fx("python_sni.bin")[5:]
    data = B.records(msg[:100]) + b"\x17\x03\x03\x00\x01x" + B.records(msg[100:])
    with pytest.raises(MalformedError, match="interleaved"):
        read_client_hello(data)


def test_leftover_in_record() -> None:
    msg = fx("python_sni.bin")[5:]
    with pytest.raises(MalformedError, match="left over"):
        read_client_hello(B.records(msg + b"\x02\x00\x00\x00"))
    # also when the leftover sits in a later record of a fragmented hello
    with pytest.raises(MalformedError, match="left over"):
        read_client_hello(B.records(msg + b"\x00", [100, 500]))


def test_duplicate_extension() -> None:
    with pytest.raises(MalformedError, match="twice"):
        parse_client_hello(B.simple([B.alpn_ext(b"h2"), B.alpn_ext(b"h2")]))


def test_legacy_versions() -> None:
    """A passive observer accepts any 0x03xx legacy_version; other majors are malformed."""
    for v in (0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x03FF):
        assert parse_client_hello(B.simple(None, version=v)).legacy_version == v
    with pytest.raises(MalformedError, match="legacy_version"):
        parse_client_hello(B.simple(None, version=0x0203))


def test_grease_and_names() -> None:
    greases = [(x << 8) | x for x in range(0x0A, 0x100, 0x10)]
    assert len(greases) == 16 and all(is_grease(g) for g in greases)
    assert not any(is_grease(v) for v in (0x0A0B, 0x1A0A, 0x0303, 0x1301, 0, 0xFFFF))
    assert version_name(0x0304) == "TLSv1.3" and version_name(0x0301) == "TLSv1.0"
    assert version_name(0x0002) == "SSLv2" and version_name(0x7F1C) == "TLSv1.3-draft28"
    assert version_name(0x1234) == "0x1234" and version_name(0x5A5A) == "GREASE"
    assert ALERT_DESCRIPTIONS[112] == "unrecognized_name"


# -- server side ----------------------------------------------------------------------------


def test_server_reactions_recorded() -> None:
    cases = {
        "server_tls13_hello.bin": ("server_hello", 0x0304, False),
        "server_tls12_hello.bin": ("server_hello", 0x0303, False),
        "server_hrr.bin": ("server_hello", 0x0304, True),
    }
    for name, (kind, version, hrr) in cases.items():
        data = fx(name)
        r = read_server_reaction(data)
        assert r is not None and r.kind == kind and r.end == len(data)
        assert r.server_hello is not None
        assert r.server_hello.selected_version == version and r.server_hello.hrr is hrr
        assert (r.server_hello.random == HRR_RANDOM) is hrr
        for i in range(len(data)):
            assert read_server_reaction(data[:i]) is None
        # the parse does not wait for bytes after the ServerHello
        assert read_server_reaction(data + b"\x16\x03") == r
    alert = read_server_reaction(fx("server_alert_unrecognized_name.bin"))
    assert alert is not None and alert.kind == "alert" and alert.alert is not None
    assert (alert.alert.level, alert.alert.description) == (2, 112)
    assert alert.alert.name == "unrecognized_name"


def test_server_reaction_kinds() -> None:
    r = read_server_reaction(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert r is not None and r.kind == "not_tls" and r.end == 1
    r = read_server_reaction(b"\x14\x03\x03\x00\x01\x01")
    assert r is not None and r.kind == "other_tls" and r.content_type == 20
    r = read_server_reaction(b"\x16\x03\x03\x00\x04\x0b\x00\x00\x00")
    assert r is not None and r.kind == "other_tls"
    assert read_server_reaction(b"\x15\x03\x03\x00\x02\x02") is None
    with pytest.raises(MalformedError):
        read_server_reaction(b"\x15\x03\x03\x00\x01\x02")
    # a ServerHello split over two records, with the first record cut short of its end
    sh = fx("server_tls13_hello.bin")[5:]
    data = B.records(sh, [10, len(sh) - 10], version=0x0303)
    r = read_server_reaction(data)
    assert r is not None and r.kind == "server_hello" and r.end == len(data)
    assert r.server_hello == parse_server_hello(sh, record_version=0x0303)


def test_warning_alert_before_server_hello() -> None:
    """A warning unrecognized_name followed by a ServerHello: the handshake went on."""
    warn = b"\x15\x03\x03\x00\x02\x01\x70"
    sh = fx("server_tls12_hello.bin")
    r = read_server_reaction(warn + sh)
    assert r is not None and r.kind == "alert" and r.alert is not None
    assert (r.alert.level, r.alert.description) == (1, 112) and r.warnings == ()
    r = read_server_reaction(warn + sh, past_warnings=True)
    assert r is not None and r.kind == "server_hello" and r.end == len(warn + sh)
    assert r.warnings == (r.warnings[0],) and r.warnings[0].description == 112
    assert read_server_reaction(warn, past_warnings=True) is None
    fatal = fx("server_alert_unrecognized_name.bin")
    r = read_server_reaction(fatal + sh, past_warnings=True)
    assert r is not None and r.kind == "alert" and r.end == len(fatal)
    close = b"\x15\x03\x03\x00\x02\x01\x00"
    r = read_server_reaction(close + sh, past_warnings=True)
    assert r is not None and r.kind == "alert" and r.alert is not None
    assert r.alert.description == 0


def test_tls13_draft_server_hellos() -> None:
    """Drafts before -22 had no session id and no compression method in the ServerHello."""
    ks = B.vec16(b"")  # not decoded; any extension body will do
    for version in (0x7F12, 0x7F10, 0x0304):
        body = (version.to_bytes(2, "big") + bytes(range(32)) + b"\x13\x01"
                + B.vec16(b"\x00\x33" + B.vec16(b"\x00\x1d" + ks)))
        msg = b"\x02" + len(body).to_bytes(3, "big") + body
        r = read_server_reaction(B.records(msg, version=0x0301))
        assert r is not None and r.kind == "server_hello" and r.server_hello is not None
        assert r.server_hello.selected_version == version
        assert r.server_hello.cipher_suite == 0x1301 and r.server_hello.session_id == b""
        assert r.server_hello.extension_types == (51,)


def test_sslv2_server_hello() -> None:
    conn_id = bytes(range(16))
    cert = b"C" * 20
    body = (b"\x04\x00\x01\x00\x02" + len(cert).to_bytes(2, "big") + b"\x00\x03"
            + len(conn_id).to_bytes(2, "big") + cert + b"\x01\x00\x80" + conn_id)
    data = (0x8000 | len(body)).to_bytes(2, "big") + body
    r = read_server_reaction(data)
    assert r is not None and r.kind == "server_hello" and r.server_hello is not None
    assert r.server_hello.sslv2 and r.server_hello.selected_version == 0x0002
    assert r.server_hello.cipher_suite == 0x010080 and r.end == len(data)
    for i in range(len(data)):
        assert read_server_reaction(data[:i]) is None


# -- hostile input ---------------------------------------------------------------------------

PUBLIC_PARSERS = (
    lambda b: read_client_hello(b),
    lambda b: parse_client_hello(b),
    lambda b: looks_like_tls_hello(b),
    lambda b: read_server_reaction(b),
    lambda b: parse_server_hello(b),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_documented_errors(data: bytes) -> None:
    for f in PUBLIC_PARSERS:
        try:
            f(data)
        except SniparseError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CLIENT_FIXTURES + ["server_tls13_hello.bin", "server_tls12_hello.bin"]),
       st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, 2000))
def test_mutated_hellos_only_documented_errors(name: str, flips: list[tuple[int, int]],
                                               cut: int) -> None:
    data = bytearray(fx(name))
    for pos, val in flips:
        data[pos % len(data)] = val
    for blob in (bytes(data), bytes(data[: cut % (len(data) + 1)]), bytes(data[5:])):
        for f in PUBLIC_PARSERS:
            try:
                out = f(blob)
            except SniparseError:
                continue
            if isinstance(out, ClientHello):
                fingerprints(out)  # whatever parses can be fingerprinted


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=5, max_size=60))
def test_tls_looking_garbage(tail: bytes) -> None:
    """Bytes that start like a hello record and then go wrong."""
    for head in (b"\x16\x03\x01", b"\x16\x03\x03\x00\x40\x01", b"\x80\x2e\x01\x03\x01"):
        data = head + tail
        try:
            r = read_client_hello(data)
        except SniparseError:
            continue
        if r is not None:
            assert r[1] <= len(data)


def test_buffer_types() -> None:
    """bytes, bytearray and memoryview give the same hello, also at an offset."""
    data = fx("chrome_like_pq_sni.bin")
    want = parse_client_hello(data)
    for buf in (bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        r = read_client_hello(buf)
        assert r is not None and r[0] == want
        assert isinstance(r[0].random, bytes) and isinstance(r[0].extensions[1][1], bytes)
    frag = B.records(data[5:], [100, 1000, 10_000])
    r = read_client_hello(bytearray(b"\x00" * 7 + frag), 7)
    assert r is not None and r[0] == parse_client_hello(frag) and r[1] == 7 + len(frag)
    assert looks_like_tls_hello(b"\x00" * 7 + frag, 7) is True
    assert looks_like_tls_hello(b"\x00" * 7 + frag, 0) is False


def test_large_hellos_and_the_cap() -> None:
    """A 60 KB hello in 16 KB records is read; one above 64 KiB is refused."""
    big = B.client_hello_message([0x1301], [B.sni_ext(b"big.example"), (21, bytes(60_000))])
    h = parse_client_hello(B.records(big, [16_384] * 4))
    assert h.padding == 60_000 and h.records == 4 and h.sni == "big.example"
    huge = b"\x01" + (70_000).to_bytes(3, "big") + bytes(70_000)
    data = B.records(huge, [16_384] * 5)
    with pytest.raises(MalformedError, match="limit"):
        read_client_hello(data[:10])  # refused from its header alone
    with pytest.raises(MalformedError, match="limit"):
        read_client_hello(B.records(huge[:2], [1, 1]) + B.records(huge[2:100]))


def test_many_tiny_records_bounded() -> None:
    """A hello in 1-byte records (legal, but hostile) is refused after 256 records, and
    feeding it a byte at a time stays cheap: every call's work is bounded."""
    import time

    msg = fx("chrome_like_pq_sni.bin")[5:]
    data = B.records(msg, [1] * len(msg))
    t0 = time.process_time()
    with pytest.raises(MalformedError, match="more than"):
        read_client_hello(data)
    for i in range(0, 256 * 6, 3):
        assert read_client_hello(data[:i]) is None
    assert time.process_time() - t0 < 5.0
    # 200 records are fine
    ok = B.records(msg, [8] * (len(msg) // 8) + [len(msg) % 8 or 8])
    r = read_client_hello(ok)
    assert r is not None and r[0].records <= MAX_HELLO_RECORDS


_name = st.binary(min_size=1, max_size=40).filter(lambda b: b"\x00" not in b)


@settings(max_examples=150, deadline=None)
@given(
    ciphers=st.lists(st.integers(0, 0xFFFF), max_size=40),
    sni=st.one_of(st.none(), _name),
    alpn=st.one_of(st.none(), st.lists(_name, min_size=1, max_size=4)),
    groups=st.one_of(st.none(), st.lists(st.integers(0, 0xFFFF), max_size=10)),
    versions=st.one_of(st.none(), st.lists(st.integers(0, 0xFFFF), max_size=6)),
    shares=st.one_of(st.none(), st.lists(st.tuples(st.integers(0, 0xFFFF),
                                                   st.integers(0, 300)), max_size=3)),
    others=st.lists(st.tuples(st.integers(0x0100, 0xFEFF), st.binary(max_size=30)),
                    max_size=5, unique_by=lambda e: e[0]),
    sid=st.binary(max_size=32),
    cuts=st.lists(st.integers(1, 400), max_size=4),
)
def test_built_hellos_round_trip(
    ciphers: list[int], sni: bytes | None, alpn: list[bytes] | None, groups: list[int] | None,
    versions: list[int] | None, shares: list[tuple[int, int]] | None,
    others: list[tuple[int, bytes]], sid: bytes, cuts: list[int],
) -> None:
    """Hellos built from random field values parse back to exactly those values, in one or
    several records, and none of their prefixes parses."""
    import random

    exts: list[tuple[int, bytes]] = []
    if sni is not None:
        exts.append(B.sni_ext(sni))
    if alpn is not None:
        exts.append(B.alpn_ext(*alpn))
    if groups is not None:
        exts.append(B.u16_list_ext(10, groups))
    if versions is not None:
        exts.append(B.u16_list_ext(43, versions, len_bytes=1))
    if shares is not None:
        exts.append(B.key_share_ext(shares, random.Random(0)))
    exts += [e for e in others if e[0] not in (10, 16, 43, 51) and e[0] >= 0x0100]
    msg = B.client_hello_message(ciphers, exts, session_id=sid)
    sizes: list[int] = []
    left = len(msg)
    for c in cuts:
        if c < left:
            sizes.append(c)
            left -= c
    data = B.records(msg, sizes + [left] if sizes else None)
    h = parse_client_hello(data)
    assert h.cipher_suites == tuple(ciphers) and h.session_id == sid
    assert h.extensions == tuple(exts) and h.records == len(sizes) + 1
    assert h.sni_raw == sni and h.sni_status == ("present" if sni else "absent")
    assert h.alpn_raw == tuple(alpn or ())
    assert h.supported_groups == tuple(groups or ()) and h.supported_versions == tuple(versions or ())
    assert h.key_share_groups == tuple(g for g, _ in shares or ())
    assert parse_client_hello(msg) == parse_client_hello(B.records(msg)).__class__(
        **{**parse_client_hello(B.records(msg)).__dict__, "record_version": 0, "records": 0,
           "wire_len": len(msg)})
    for i in range(0, len(data), 7):
        assert read_client_hello(data[:i]) is None
    fp = fingerprints(h)
    assert fp.ja4[3] == ("d" if sni is not None else "i") and len(fp.ja3) == 32
