"""The batch scans drop packets of just-closed connections themselves (``Skipper.tomb``):
the same handshakes, issues and statistics as when they hand them over to
``FlowTable.feed`` (``Analysis.tomb_skip = False``) and as the reference that decodes and
feeds every frame (``fastpath="none"``).

Checked on every fixture and corpus capture, on the benchmark generator's captures, and on
scripted captures for the cases where a tombstone changes within one batch: a SYN reusing
a tombstoned tuple (either direction), an idle sweep that drops old tombstones, and a flow
table small enough that closes trim the tombstones.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest
from conftest import gen_capture

from sniparse.analyze import _C_BATCH, Analysis

HAVE_BATCH = _C_BATCH is not None
pytestmark = pytest.mark.skipif(not HAVE_BATCH, reason="the C extension is not built")

ROOT = Path(__file__).resolve().parent.parent
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".xz", ".zst", ".bz2")

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def _run(source: Any, mode: str, tomb_skip: bool = True, **kw: Any) -> tuple[Any, ...]:
    """Handshakes, issues and statistics of one read, and how many packets the batch scans
    dropped as after_close."""
    a = Analysis(source, fastpath=mode, **kw)
    a.tomb_skip = tomb_skip
    it = iter(a)
    dropped = 0
    sk = a.skipper
    if sk is not None:
        for attr in ("scan_batch", "scan_ng_batch"):
            scan = getattr(sk, attr)
            if scan is None:
                continue

            def counting(*args: Any, _scan: Any = scan) -> Any:
                nonlocal dropped
                r = _scan(*args)
                dropped += r[10]
                return r

            setattr(sk, attr, counting)
    hs = [astuple(h)[:-1] for h in it]  # client_hello (last) aside
    st = a.stats()
    decode = dict(st.decode)
    skipped = decode.pop("bulk_skipped", 0)
    stats = (st.files, st.frames, st.bytes, st.first_ts_ns, st.last_ts_ns,
             list(st.linktypes.items()), st.tcp_segments, st.truncated_frames, decode,
             st.flows)
    return hs, [repr(i) for i in a.issues.to_list()], stats, skipped, dropped


def _agree(source: Any, **kw: Any) -> int:
    """Tomb skip on and off (both batch modes) agree with each other and with the
    reference; returns how many packets the scans dropped."""
    ref = _run(source, "none", **kw)
    dropped = 0
    for mode in ("batch", "auto"):
        on = _run(source, mode, **kw)
        off = _run(source, mode, tomb_skip=False, **kw)
        assert off[4] == 0
        assert on[:4] == off[:4], f"{mode}: tomb skip changes the answer"
        assert on[0] == ref[0], f"{mode}: handshakes differ from the reference"
        assert on[1] == ref[1], f"{mode}: issues differ from the reference"
        assert on[2] == ref[2], f"{mode}: statistics differ from the reference"
        dropped = on[4]
    return dropped


def _captures(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
    )


FIXTURE_CAPTURES = _captures(ROOT / "fixtures")


@pytest.mark.parametrize("path", FIXTURE_CAPTURES, ids=[p.name for p in FIXTURE_CAPTURES])
def test_every_fixture(path: Path) -> None:
    _agree(str(path))


@pytest.mark.corpus
def test_every_corpus_capture(corpus_dir: Path) -> None:
    files = _captures(corpus_dir / "files")
    assert files
    for path in files:
        try:
            _agree(str(path))
        except AssertionError as e:
            raise AssertionError(f"{path.relative_to(corpus_dir)}: {e}") from None



@pytest.mark.parametrize(
    ("mix", "link", "name"),
    [
        ("handshake", "sll2", "hs.pcap"),
        ("handshake", "mixed", "hs.pcapng"),
        ("handshake", "ether", "hs-ether.pcap"),
        ("bulk", "ether", "bulk.pcap"),
    ],
)
def test_generated_captures(tmp_path: Path, mix: str, link: str, name: str) -> None:
    out = tmp_path / name
    gen_capture().generate(out, packets=6000, seed=5, mix=mix, link=link)
    dropped = _agree(str(out))
    if mix == "handshake":
        assert dropped > 0


@pytest.mark.parametrize("max_flows", [1, 3, 10, 40, 200])
def test_generated_small_tables(tmp_path: Path, max_flows: int) -> None:
    out = tmp_path / "hs.pcap"
    gen_capture().generate(out, packets=3000, seed=7, mix="handshake", link="sll2")
    _agree(str(out), max_flows=max_flows)


# -- scripted captures -------------------------------------------------------------------------


def _frame(src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int,
           payload: bytes = b"") -> bytes:
    """Ethernet + IPv4 (RFC 791, DF set) + TCP (RFC 9293) without options."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + payload


class _Script:
    """Packets with increasing times (µs), written as a little-endian pcap."""

    def __init__(self) -> None:
        self.t_us = 1_767_225_600 * 10**6
        self.frames: list[tuple[int, bytes]] = []

    def add(self, frame: bytes, dt_us: int = 100) -> None:
        self.t_us += dt_us
        self.frames.append((self.t_us, frame))

    def write(self, path: Path) -> str:
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
        for t, f in self.frames:
            out.append(struct.pack("<IIII", t // 10**6, t % 10**6, len(f), len(f)) + f)
        path.write_bytes(b"".join(out))
        return str(path)


class _Conn:
    def __init__(self, sc: _Script, cport: int, client: str = "10.0.0.1",
                 server: str = "10.9.0.1", sport: int = 443, isn: int = 1000) -> None:
        self.sc, self.c, self.s, self.cp, self.sp = sc, client, server, cport, sport
        self.cseq, self.sseq = isn, isn * 7 + 5

    def c2s(self, flags: int, payload: bytes = b"", dt: int = 100) -> None:
        self.sc.add(_frame(self.c, self.s, self.cp, self.sp, flags, self.cseq, self.sseq,
                           payload), dt)
        self.cseq += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def s2c(self, flags: int, payload: bytes = b"", dt: int = 100) -> None:
        self.sc.add(_frame(self.s, self.c, self.sp, self.cp, flags, self.sseq, self.cseq,
                           payload), dt)
        self.sseq += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def open(self) -> None:
        self.c2s(SYN)
        self.s2c(SYN | ACK)
        self.c2s(ACK)
        self.c2s(PSH | ACK, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.s2c(PSH | ACK, b"HTTP/1.1 200 OK\r\n\r\n")

    def close(self) -> None:
        self.c2s(FIN | ACK)
        self.s2c(FIN | ACK)

    def late(self) -> None:
        """Packets after both FINs: the last ACK, a repeated FIN, a RST."""
        self.c2s(ACK)
        self.s2c(FIN | ACK)
        self.c2s(RST)


def test_late_packets_are_dropped(tmp_path: Path) -> None:
    sc = _Script()
    conns = [_Conn(sc, 40000 + i) for i in range(30)]
    for c in conns:
        c.open()
        c.close()
    for c in conns:
        c.late()
    path = sc.write(tmp_path / "late.pcap")
    dropped = _agree(path)
    assert dropped > 0
    st = _run(path, "batch")[2]
    assert st[-1]["after_close"] == 90


def test_syn_reuse_of_a_tombstoned_tuple(tmp_path: Path) -> None:
    # Closed connections whose tuples come back: a new SYN (forward, or from the server's
    # side) in the same batch as late packets of the old connection, before and after it.
    sc = _Script()
    for i in range(40):
        c = _Conn(sc, 41000 + i, isn=1000 + i)
        c.open()
        c.close()
        c.late()
        if i % 3 == 0:
            again = _Conn(sc, 41000 + i, isn=900_000 + i)
            again.c2s(SYN)
            c.c2s(ACK)  # a late packet of the old connection, after the new SYN
            again.s2c(SYN | ACK)
            again.c2s(ACK)
            again.close()
            again.late()
        elif i % 3 == 1:
            # The reverse direction's pure SYN removes both tombstones.
            rev = _Conn(sc, 443, client="10.9.0.1", server="10.0.0.1", sport=41000 + i)
            rev.c2s(SYN)
            c.c2s(ACK)
            c.s2c(ACK)
        else:
            c.s2c(RST)
    path = sc.write(tmp_path / "reuse.pcap")
    assert _agree(path) > 0


def test_idle_sweep_drops_tombstones_mid_batch(tmp_path: Path) -> None:
    # idle_timeout 2 s: tombstones live 2 s. Late packets come before and after a sweep
    # drops their tombstones (after it they start midstream flows), with other traffic
    # around so that the sweep falls inside batches.
    sc = _Script()
    conns = [_Conn(sc, 42000 + i) for i in range(20)]
    for c in conns:
        c.open()
        c.close()
    for j, c in enumerate(conns):
        c.late()
        filler = _Conn(sc, 43000 + j, server="10.9.0.2")
        filler.open()
        filler.close()
        # Time jumps across several sweep times (every 1 s of capture time).
        c.c2s(ACK, dt=250_000 * (j % 5))
        c.s2c(ACK, dt=1)
    path = sc.write(tmp_path / "sweep.pcap")
    assert _agree(path, idle_timeout=2.0) > 0
    assert _agree(path, idle_timeout=0.5) >= 0


@pytest.mark.parametrize("max_flows", [1, 2, 5, 20, 60, 600])
def test_tombstone_cap(tmp_path: Path, max_flows: int) -> None:
    # Many closes: with a small table, closes trim the oldest tombstones, so the late
    # packets of old connections may or may not be after_close.
    sc = _Script()
    conns = [_Conn(sc, 44000 + i) for i in range(150)]
    for k, c in enumerate(conns):
        c.open()
        c.close()
        if k >= 10:
            conns[k - 10].late()
    for c in conns[-10:]:
        c.late()
    path = sc.write(tmp_path / "cap.pcap")
    dropped = _agree(path, max_flows=max_flows)
    if max_flows >= 600:
        assert dropped > 0


def test_off_under_parallel_analysis_tally(tmp_path: Path) -> None:
    # ParallelAnalysis counts per key (FlowTable.tally): the scan does not drop there.
    sc = _Script()
    for i in range(10):
        c = _Conn(sc, 45000 + i)
        c.open()
        c.close()
        c.late()
    path = sc.write(tmp_path / "tally.pcap")
    a = Analysis(path, fastpath="batch")
    a.table.tally = {}
    list(a)
    assert a.skipper is not None and a.skipper.tomb is None
    assert a.stats().flows["after_close"] == 30
    assert sum(t.get("after_close", 0) for t in a.table.tally.values()) == 30
