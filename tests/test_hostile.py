"""Hostile whole captures: ``sniparse.analyze`` returns a Report or raises a SniparseError,
nothing else, within bounded time and memory -- and recovers what it can.

Inputs are the project's own fixtures (and a few small corpus captures when the corpus is
there), damaged on purpose: random bytes, bit flips, every cut tail, corrupted length
fields (pcap caplen, pcapng block lengths, IP / TCP / TLS lengths), huge lengths, lying
pcapng blocks, a decompression bomb, and more flows than the flow table may hold.

Every call runs under a SIGALRM deadline (``DEADLINE_S``), so a hang fails the test instead
of stalling it. Hypothesis runs derandomized with fixed example counts: the slice is
deterministic and short; ``tests/fuzz/`` holds the long-running fuzz targets.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import resource
import signal
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sniparse
from sniparse.errors import SniparseError
from sniparse.flows import Handshake

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
DEADLINE_S = 10

STATUSES = {"present", "absent", "empty", "unknown", "malformed"}
OUTCOMES = {"server_hello", "alert", "server_reset", "server_close", "client_reset",
            "no_response"}

HSETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Deadline(Exception):
    """Raised by SIGALRM inside :func:`bounded`; deliberately not a SniparseError."""


@contextmanager
def bounded(seconds: int = DEADLINE_S) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise Deadline(f"analysis took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check(data: bytes, **kw: Any) -> sniparse.Report | None:
    """The contract: a Report with documented values, or a SniparseError; nothing else."""
    with bounded():
        try:
            rep = sniparse.analyze(data, **kw)
        except SniparseError:
            return None
    for h in rep.handshakes:
        assert h.sni_status in STATUSES, h
        assert h.outcome in OUTCOMES, h
        assert (h.sni is not None) == (h.sni_status == "present"), h
        if h.sni_status == "unknown":
            assert h.unknown_reason in ("truncated", "gap", "capture_end", "midstream"), h
    rep.to_dicts()
    return rep


def fixture(rel: str) -> bytes:
    return (FIX / rel).read_bytes()


# -- building captures ------------------------------------------------------------------------

def pcap_header(linktype: int = 1, snaplen: int = 65535) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(ts_us: int, frame: bytes, caplen: int | None = None) -> bytes:
    n = len(frame) if caplen is None else caplen
    return struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, n, len(frame)) + frame


def pcap_records(data: bytes) -> list[tuple[int, int]]:
    """(offset, caplen) of each record of a little-endian microsecond pcap."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    out = []
    o = 24
    while o + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, o + 8)[0]
        out.append((o, caplen))
        o += 16 + caplen
    return out


def eth_ipv4_tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
                 payload: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 6, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def pcap_to_pcapng(data: bytes) -> bytes:
    """The same records as pcapng: SHB, one IDB (link type 1), one EPB per record."""
    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", 1, 0, 65535))]
    for off, caplen in pcap_records(data):
        sec, usec, _, orig = struct.unpack_from("<IIII", data, off)
        ts = sec * 1_000_000 + usec
        out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, caplen, orig)
                         + data[off + 16: off + 16 + caplen]))
    return b"".join(out)


def by_port(rep: sniparse.Report | None) -> dict[int, Handshake]:
    assert rep is not None
    return {h.client_port: h for h in rep.handshakes}


HELLO_SNI = fixture("hellos/openssl_sni.bin")
HELLO_NOSNI = fixture("hellos/openssl_nosni.bin")

SMALL = [
    "formats/pcap_usec_le.pcap",
    "formats/pcapng_two_sections.pcapng",
    "formats/pcapng_spb_opb.pcapng",
    "scenarios/hello_retry_request.pcap",
    "scenarios/server_reactions.pcap",
    "scenarios/proxy_protocol.pcap",
    "links/linux_sll2.pcap",
    "links/tunnel_vxlan.pcap",
]
SEEDS = [fixture(p) for p in SMALL] + [fixture("formats/pcap_usec_le.pcap.gz")]


# -- random bytes and mutations -------------------------------------------------------------

@HSETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    check(data)


@HSETTINGS
@given(st.sampled_from([pcap_header(), pcap_header(276), pcap_to_pcapng(pcap_header())]),
       st.binary(max_size=4096))
def test_valid_header_then_random_bytes(head: bytes, tail: bytes) -> None:
    check(head + tail)


@settings(HSETTINGS, max_examples=150)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)),
                                        min_size=1, max_size=12))
def test_bit_flips(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    check(bytes(data))


@settings(HSETTINGS, max_examples=100)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 1 << 20), st.binary(max_size=8),
                                                  st.integers(0, 64)), min_size=1, max_size=6))
def test_splices(seed: bytes, edits: list[tuple[int, bytes, int]]) -> None:
    data = bytearray(seed)
    for pos, ins, cut in edits:
        p = pos % (len(data) + 1)
        data[p: p + cut] = ins
    check(bytes(data))


def test_every_cut_tail_never_turns_sni_into_absent() -> None:
    """Cut a capture at every byte offset (pcap and pcapng). A prefix may lose handshakes or
    turn them ``unknown``; it must never report a hello that carried SNI as without SNI."""
    full = fixture("scenarios/hello_retry_request.pcap")
    want = by_port(check(full))
    assert any(h.sni_status == "present" for h in want.values())
    started = time.monotonic()
    for data in (full, pcap_to_pcapng(full)):
        for n in range(len(data) + 1):
            rep = check(data[:n])
            if rep is None:
                continue
            for port, h in by_port(rep).items():
                w = want.get(port)
                if w is None:
                    continue
                if w.sni_status == "present":
                    assert h.sni_status in ("present", "unknown"), (n, h)
                    if h.sni_status == "present":
                        assert h.sni == w.sni
    assert time.monotonic() - started < 30


def test_every_cut_of_a_compressed_capture() -> None:
    gz = fixture("formats/pcap_usec_le.pcap.gz")
    for n in range(len(gz) + 1):
        check(gz[:n])


# -- corrupted length fields ---------------------------------------------------------------

RESET = fixture("scenarios/sni_required_reset.pcap")


@pytest.mark.parametrize("frame", [30, 40, 46])
@pytest.mark.parametrize("caplen", [
    0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 0x1000000, 1, "+1", "-1",
    # caplen 0 makes a valid empty record; the frame's own bytes are then read as record
    # headers, whose garbage timestamps must not become the only resync reference.
    0,
])
def test_bad_caplen_mid_file_is_reported_and_the_rest_analysed(frame: int,
                                                               caplen: int | str) -> None:
    """One record's captured length is wrong. The damage is reported, and every handshake
    that starts after the damaged record's neighbour is still found, unchanged."""
    full = by_port(check(RESET))
    recs = pcap_records(RESET)
    off, real = recs[frame - 1]
    value = real + int(caplen) if isinstance(caplen, str) else caplen
    data = bytearray(RESET)
    struct.pack_into("<I", data, off + 8, value & 0xFFFFFFFF)
    rep = check(bytes(data))
    assert rep is not None
    assert any(i.layer == "pcap" and i.kind in ("malformed", "truncated") for i in rep.issues) \
        or value == real
    got = by_port(rep)
    later = [h for h in full.values() if h.frame > frame + 1]
    assert later
    for h in later:
        g = got.get(h.client_port)
        assert g is not None, (frame, caplen, h.client_port)
        assert (g.sni_status, g.sni, g.outcome) == (h.sni_status, h.sni, h.outcome)


def test_huge_snaplen_and_caplen_bounded_memory() -> None:
    """A header claiming a 4 GiB snaplen and records claiming 4 GiB: nothing is allocated
    from those numbers."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    frame = eth_ipv4_tcp("10.0.0.1", "10.0.0.2", 1234, 443, 1, 0, 0x18, HELLO_SNI)
    data = (pcap_header(snaplen=0xFFFFFFFF) + pcap_record(1_000_000, frame)
            + struct.pack("<IIII", 1, 2, 0xFFFFFFF0, 0xFFFFFFF0) + frame * 3
            + pcap_record(1_000_100, frame))
    check(data)
    check(pcap_header(snaplen=0xFFFFFFFF) + struct.pack("<IIII", 1, 0, 0xFFFFFFFF, 0xFFFFFFFF))
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grew_mb < 200


def _pcapng_blocks(data: bytes) -> list[tuple[int, int]]:
    out = []
    o = 0
    while o + 12 <= len(data):
        n = struct.unpack_from("<I", data, o + 4)[0]
        out.append((o, n))
        o += n
    return out


@pytest.mark.parametrize("how", ["both", "leading", "trailing", "huge", "zero", "unaligned"])
def test_pcapng_block_with_lying_length(how: str) -> None:
    """One EPB in the middle lies about its length. Whatever the lie, the call is bounded;
    when only one of the two length words lies (or both, consistently), the blocks after it
    are read and their handshakes found."""
    ng = pcap_to_pcapng(RESET)
    full = by_port(check(ng))
    blocks = _pcapng_blocks(ng)
    k = 2 + 39  # SHB, IDB, then EPB of frame 40
    off, n = blocks[k]
    data = bytearray(ng)
    if how == "both":
        struct.pack_into("<I", data, off + 4, n + 8)
        struct.pack_into("<I", data, off + n - 4, n + 8)
    elif how == "leading":
        struct.pack_into("<I", data, off + 4, n + 40)
    elif how == "trailing":
        struct.pack_into("<I", data, off + n - 4, n + 40)
    elif how == "huge":
        struct.pack_into("<I", data, off + 4, 0xFFFFFFF0)
    elif how == "zero":
        struct.pack_into("<I", data, off + 4, 0)
    else:
        struct.pack_into("<I", data, off + 4, n + 2)
    rep = check(bytes(data))
    assert rep is not None
    assert any(i.layer == "pcapng" for i in rep.issues), how
    if how in ("leading", "trailing", "huge", "zero", "unaligned"):
        got = by_port(rep)
        for h in full.values():
            if h.frame > 41:
                g = got.get(h.client_port)
                assert g is not None, (how, h.client_port)
                assert (g.sni_status, g.outcome) == (h.sni_status, h.outcome)


def _layers(frame: bytes) -> tuple[int, int, int] | None:
    """Offsets of the IPv4 header, the TCP header and the payload in an Ethernet frame."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = 14
    tcp = ip + (frame[ip] & 0x0F) * 4
    if len(frame) < tcp + 20 or frame[ip + 9] != 6:
        return None
    return ip, tcp, tcp + (frame[tcp + 12] >> 4) * 4


FIELD_OFFSETS: list[tuple[int, str]] = []
for _off, _caplen in pcap_records(RESET):
    _lay = _layers(RESET[_off + 16: _off + 16 + _caplen])
    if _lay is None:
        continue
    _ip, _tcp, _pl = (_off + 16 + x for x in _lay)
    FIELD_OFFSETS += [(_ip, "ihl"), (_ip + 2, "u16"), (_tcp + 12, "doff")]
    if _pl < _off + 16 + _caplen and RESET[_pl] == 0x16:
        FIELD_OFFSETS += [(_pl + 3, "u16"), (_pl + 6, "u16"), (_pl + 43, "u8")]


@settings(HSETTINGS, max_examples=120)
@given(st.lists(st.tuples(st.sampled_from(FIELD_OFFSETS), st.integers(0, 0xFFFF)),
                min_size=1, max_size=4))
def test_corrupted_ip_tcp_tls_lengths(edits: list[tuple[tuple[int, str], int]]) -> None:
    data = bytearray(RESET)
    for (pos, kind), value in edits:
        if kind == "u16":
            struct.pack_into("!H", data, pos, value)
        elif kind == "u8":
            data[pos] = value & 0xFF
        elif kind == "ihl":
            data[pos] = 0x40 | (value & 0x0F)
        else:
            data[pos] = ((value & 0x0F) << 4) | (data[pos] & 0x0F)
    check(bytes(data))


# -- decompression bomb ----------------------------------------------------------------------

def _bomb_payload(mib: int) -> Iterator[bytes]:
    """A valid pcap whose records are 256 KiB of zeros each: compresses to almost nothing."""
    yield pcap_header(snaplen=262144)
    rec = struct.pack("<IIII", 1_700_000_000, 0, 262144, 262144) + bytes(262144)
    for _ in range(mib * 4):
        yield rec


@pytest.mark.parametrize("codec", ["bz2", "xz", "gzip"])
def test_decompression_bomb_is_capped(codec: str) -> None:
    if codec == "gzip":
        # Deflate cannot beat ~1032:1 (RFC 1951: a 258-byte match costs at least 2 bits),
        # which is why gzip's default cap is 200:1 (capture.DEFAULT_MAX_RATIO): 100 MiB of
        # zeros crosses it about five times over.
        data = gzip.compress(b"".join(_bomb_payload(100)), compresslevel=9, mtime=0)
    else:
        c: bz2.BZ2Compressor | lzma.LZMACompressor = (
            bz2.BZ2Compressor(9) if codec == "bz2" else lzma.LZMACompressor(preset=1))
        data = b"".join(c.compress(p) for p in _bomb_payload(160)) + c.flush()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    rep = check(data)
    took = time.monotonic() - started
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert rep is not None
    limits = [i for i in rep.issues if i.kind == "limit"]
    assert limits, rep.issues
    assert took < 5, took
    assert grew_mb < 300, grew_mb


# -- many flows ------------------------------------------------------------------------------

def _flows_capture(n: int, *, sequential: bool) -> bytes:
    """``n`` TLS connections from distinct client ports, alternately with and without SNI,
    each reset by the server after the hello. ``sequential``: one after the other; else
    all SYNs first, then all hellos, then all resets."""
    c, s = "10.1.0.1", "10.2.0.1"
    per: list[list[bytes]] = []
    for i in range(n):
        port = 10000 + i
        hello = HELLO_SNI if i % 2 == 0 else HELLO_NOSNI
        per.append([
            eth_ipv4_tcp(c, s, port, 443, 1000, 0, 0x02),
            eth_ipv4_tcp(s, c, 443, port, 5000, 1001, 0x12),
            eth_ipv4_tcp(c, s, port, 443, 1001, 5001, 0x10),
            eth_ipv4_tcp(c, s, port, 443, 1001, 5001, 0x18, hello),
            eth_ipv4_tcp(s, c, 443, port, 5001, 1001 + len(hello), 0x14),
        ])
    order = ([p for conn in per for p in conn] if sequential
             else [conn[k] for k in range(5) for conn in per])
    return pcap_header() + b"".join(pcap_record(1_000_000 + 10 * i, f)
                                    for i, f in enumerate(order))


def test_many_sequential_flows_under_a_small_flow_cap() -> None:
    """Closed flows leave the table: a cap far below the number of flows loses nothing."""
    rep = check(_flows_capture(3000, sequential=True), max_flows=50)
    assert rep is not None
    assert len(rep.handshakes) == 3000
    assert all(h.outcome == "server_reset" for h in rep.handshakes)
    assert sum(h.without_sni for h in rep.handshakes) == 1500
    assert not any(i.kind == "limit" for i in rep.issues)


def test_flow_table_cap_is_reported() -> None:
    """More concurrent flows than the cap: the oldest are closed early, with a ``limit``
    Issue; the call stays bounded and no flow is reported twice."""
    started = time.monotonic()
    rep = check(_flows_capture(3000, sequential=False), max_flows=500)
    assert rep is not None
    assert time.monotonic() - started < 10
    assert any(i.kind == "limit" and "flow table" in i.detail for i in rep.issues)
    ports = [h.client_port for h in rep.handshakes]
    assert len(ports) == len(set(ports))
    # Whatever was evicted early is never reported as a client without SNI by mistake.
    for h in rep.handshakes:
        if h.client_port % 2 == 0:
            assert not h.without_sni, h


# -- real captures ---------------------------------------------------------------------------

CORPUS_SMALL = [
    "files/ja4/pcap/badcurveball.pcap",
    "files/zeek/testing/btest/Traces/tls/ssl-v2.pcap",
    "files/nDPI/tests/cfgs/default/pcap/tls_invalid_reads.pcap",
]


@pytest.mark.corpus
def test_corpus_captures_mutated(corpus_dir: Path) -> None:
    """Deterministic mutations of a few small real captures: bit flips every 97th byte,
    random-looking overwrites, every 61st cut."""
    for rel in CORPUS_SMALL:
        p = corpus_dir / rel
        if not p.is_file():
            continue
        data = p.read_bytes()[:20_000]
        for start in range(7):
            b = bytearray(data)
            for pos in range(start * 13, len(b), 97):
                b[pos] ^= 0xFF >> (pos % 8)
            check(bytes(b))
        for n in range(0, len(data), 61):
            check(data[:n])


# -- snaplen cuts and lost segments never invent a client without SNI ------------------------

def _status_ok(got: Handshake, want: Handshake) -> bool:
    """A damaged capture may make a hello ``unknown`` or ``malformed``-free of facts, never
    flip SNI presence."""
    if got.sni_status in ("unknown",):
        return True
    if want.sni_status == "present":
        return got.sni_status == "present" and got.sni == want.sni
    if want.without_sni:
        return got.without_sni
    return True


def _rewrite(data: bytes, keep: Any) -> bytes:
    """A copy of a little-endian pcap whose records pass through ``keep(index, header,
    frame) -> bytes | None`` (None drops the record)."""
    out = [data[:24]]
    for i, (off, caplen) in enumerate(pcap_records(data)):
        r = keep(i, data[off: off + 16], data[off + 16: off + 16 + caplen])
        if r is not None:
            out.append(r)
    return b"".join(out)


@pytest.mark.parametrize("name", ["scenarios/sni_required_reset.pcap",
                                  "scenarios/large_hello_two_segments.pcap",
                                  "scenarios/accepts_both.pcap"])
def test_snaplen_cuts_never_flip_sni_presence(name: str) -> None:
    """Every record cut to ``snap`` bytes (origlen kept, as tcpdump -s does)."""
    full = fixture(name)
    want = by_port(check(full))
    for snap in range(54, 1600, 23):
        def cut(i: int, hdr: bytes, frame: bytes, snap: int = snap) -> bytes:
            sec, usec, _caplen, orig = struct.unpack("<IIII", hdr)
            f = frame[:snap]
            return struct.pack("<IIII", sec, usec, len(f), orig) + f
        for port, h in by_port(check(_rewrite(full, cut))).items():
            w = want.get(port)
            if w is not None:
                assert _status_ok(h, w), (snap, h, w)
                if h.sni_status == "unknown":
                    assert h.unknown_reason in ("truncated", "gap", "capture_end")


@pytest.mark.parametrize("name", ["scenarios/large_hello_two_segments.pcap",
                                  "scenarios/hello_retry_request.pcap",
                                  "scenarios/sni_required_reset.pcap"])
def test_each_lost_record_never_flips_sni_presence(name: str) -> None:
    """Drop one record at a time (a segment the capture missed)."""
    full = fixture(name)
    want = by_port(check(full))
    for drop in range(len(pcap_records(full))):
        data = _rewrite(full, lambda i, hdr, frame, d=drop: None if i == d else hdr + frame)
        for port, h in by_port(check(data)).items():
            w = want.get(port)
            if w is not None:
                assert _status_ok(h, w), (drop, h, w)


@settings(HSETTINGS, max_examples=40)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)),
                                        min_size=1, max_size=8))
def test_mutations_read_from_a_file_path(tmp_path_factory: pytest.TempPathFactory, seed: bytes,
                                         edits: list[tuple[int, int]]) -> None:
    """The same contract when the capture is a file (memory-mapped reading) and when it is
    read as bytes -- and both give the same handshakes."""
    data = bytearray(seed)
    for pos, value in edits:
        data[pos % len(data)] = value
    path = tmp_path_factory.mktemp("hostile") / "capture.bin"
    path.write_bytes(bytes(data))
    with bounded():
        try:
            from_file = sniparse.analyze(str(path))
        except SniparseError:
            from_file = None
    from_bytes = check(bytes(data))
    assert (from_file is None) == (from_bytes is None)
    if from_file is not None and from_bytes is not None:
        assert [(h.frame, h.sni_status, h.outcome) for h in from_file.handshakes] == \
            [(h.frame, h.sni_status, h.outcome) for h in from_bytes.handshakes]


def _short_flows(n: int) -> bytes:
    """``n`` connections from distinct clients, each a SYN answered by RST+ACK."""
    out = [pcap_header()]
    for i in range(n):
        c = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        out.append(pcap_record(1_000_000 + i * 10, eth_ipv4_tcp(c, "10.255.0.2", 40000, 443,
                                                                1000, 0, 0x02)))
        out.append(pcap_record(1_000_005 + i * 10, eth_ipv4_tcp("10.255.0.2", c, 443, 40000, 0,
                                                                1001, 0x14)))
    return b"".join(out)


def test_closed_flows_cost_does_not_grow_with_the_table_cap() -> None:
    """Closed flows leave tombstones (bounded by ``max_flows``). Trimming them must cost
    O(1) per closed flow: a busy capture (more closed flows per minute than half the cap)
    may not get slower as the cap grows."""
    data = _short_flows(30_000)

    def best_of_two(max_flows: int) -> float:
        times = []
        for _ in range(2):
            started = time.perf_counter()
            rep = check(data, max_flows=max_flows)
            times.append(time.perf_counter() - started)
            assert rep is not None and rep.stats.flows["flows_total"] == 30_000
        return min(times)

    unbounded = best_of_two(10_000_000)
    at_cap = best_of_two(30_000)
    assert at_cap < 3 * unbounded + 0.5, (at_cap, unbounded)


@settings(HSETTINGS, max_examples=40)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)),
                                        min_size=0, max_size=8))
def test_streaming_iterator_same_contract(seed: bytes, flips: list[tuple[int, int]]) -> None:
    """``iter_handshakes`` (the streaming API) on damaged input: the same handshakes as
    ``analyze``, and only SniparseError escapes."""
    data = bytearray(seed)
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    rep = check(bytes(data))
    with bounded():
        try:
            streamed = list(sniparse.iter_handshakes(bytes(data)))
        except SniparseError:
            streamed = None
    assert (rep is None) == (streamed is None)
    if rep is not None and streamed is not None:
        key = lambda h: (h.ts_ns, h.frame, h.client_port)
        assert sorted(streamed, key=key) == sorted(rep.handshakes, key=key)


@pytest.mark.parametrize(("head", "word"), [
    (bytes.fromhex("5b7fc76f98ccef89b1fae71c6652aa5c"), "not a pcap or pcapng capture"),
    (b"\x3c\x00\x01\x02\xff\xfe\x00\x00", "not a pcap or pcapng capture"),
    (b'[{"ts": 1}]', "JSON text"),
    (b"<html><body>", "HTML/XML text"),
])
def test_not_a_capture_is_named_plainly(head: bytes, word: str) -> None:
    """Binary garbage is not called JSON or HTML because its first byte is '[' or '<'."""
    with pytest.raises(sniparse.NotACaptureError) as e:
        sniparse.analyze(head * 8)
    assert word in str(e.value)
