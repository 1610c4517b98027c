"""The bulk fast path gives exactly what the general decoders give.

``Analysis(fastpath=...)``: ``"none"`` decodes and feeds every frame (the reference),
``"off"`` is the per-record loop that drops decided packets after reading their key,
``"python"`` and ``"c"`` skip them inside the pcap framer with the pure-Python or the C
scan (``sniparse._fastpath``), ``"batch"`` with the C scan that hands over many records per
call. All must agree on handshakes, issues and statistics (only
``bulk_skipped`` is absent from the reference) on every fixture capture, every corpus
capture, and generated bulk captures in every pcap variant the scan reads. The C functions
are also checked one by one against their Python counterparts (the scans on intact and
damaged buffers, ``segment`` on every fixture and corpus frame and on mutated frames), and
``--jobs`` on separate captures against one sequential read.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest
from conftest import gen_capture, source_module

from sniparse import _fastpath
from sniparse import decode as decode_module
from sniparse.analyze import _SCANS, Analysis
from sniparse.decode import fast_key

HAVE_C = _SCANS["c"] is not None
# The C segment decoder (off under SNIPARSE_PURE=1, while the C scans stay selectable).
HAVE_C_SEGMENT = decode_module._C_SEGMENT is not None
# "batch": the C scan handing over many records per call, decoded (see sniparse.analyze).
MODES = ["none", "off", "python"] + (["c", "batch"] if HAVE_C else [])
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".xz", ".zst", ".bz2")


def _run(source: Any, mode: str, **kw: Any) -> tuple[Any, ...]:
    map_window = kw.pop("map_window", None)
    chunk_size = kw.pop("chunk_size", None)
    a = Analysis(source, fastpath=mode, **kw)
    if map_window is not None:
        a.reader.use_mmap = True
        a.reader.map_window = map_window
    if chunk_size is not None:
        a.reader.chunk_size = chunk_size
    hs = sorted((astuple(h)[:-1] for h in a), key=repr)  # client_hello (last) aside
    st = a.stats()
    decode = dict(st.decode)
    skipped = decode.pop("bulk_skipped", 0)
    # (Link types as a list: their order shows in the JSON report.)
    stats = (st.files, st.frames, st.bytes, st.first_ts_ns, st.last_ts_ns,
             list(st.linktypes.items()),
             st.tcp_segments, st.truncated_frames, decode, st.flows)
    return hs, [repr(i) for i in a.issues.to_list()], stats, skipped


def _agree(source: Any, **kw: Any) -> int:
    """Run every mode; assert they agree; return how many packets were skipped."""
    ref = _run(source, "none", **kw)
    assert ref[3] == 0
    skipped = None
    for mode in MODES[1:]:
        got = _run(source, mode, **kw)
        assert got[0] == ref[0], f"{mode}: handshakes differ"
        assert got[1] == ref[1], f"{mode}: issues differ"
        assert got[2] == ref[2], f"{mode}: statistics differ"
        if skipped is None:
            skipped = got[3]
        assert got[3] == skipped, f"{mode}: bulk_skipped {got[3]} != {skipped}"
    return skipped or 0


def _captures(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
    )


FIXTURE_CAPTURES = _captures(Path(__file__).resolve().parent.parent / "fixtures")


@pytest.mark.parametrize(
    "path", FIXTURE_CAPTURES, ids=[p.name for p in FIXTURE_CAPTURES]
)
def test_every_fixture(path: Path) -> None:
    _agree(str(path))


def test_fixtures_found() -> None:
    assert len(FIXTURE_CAPTURES) >= 20


@pytest.mark.corpus
def test_every_corpus_capture(corpus_dir: Path) -> None:
    files = _captures(corpus_dir / "files")
    assert files
    for path in files:
        try:
            _agree(str(path))
        except AssertionError as e:
            raise AssertionError(f"{path.relative_to(corpus_dir)}: {e}") from None


# -- generated bulk captures, in every pcap variant ----------------------------------------



def _generate(tmp: Path, link: str, mix: str = "bulk", packets: int = 4000) -> bytes:
    out = tmp / f"{mix}-{link}.pcap"
    gen_capture().generate(out, packets=packets, seed=3, mix=mix, link=link)
    return out.read_bytes()


def _records(data: bytes) -> tuple[bytes, list[tuple[int, int, int, bytes]]]:
    """(file header, [(sec, usec, origlen, frame)]) of a little-endian µs pcap."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    out = []
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, caplen, origlen = struct.unpack_from("<IIII", data, pos)
        out.append((sec, usec, origlen, data[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return data[:24], out


def _write(header: bytes, recs: list[tuple[int, int, int, bytes]], *, endian: str = "<",
           nsec: bool = False, modified: bool = False, snaplen: int | None = None) -> bytes:
    magic = 0xA1B2CD34 if modified else (0xA1B23C4D if nsec else 0xA1B2C3D4)
    _m, vmaj, vmin, zone, sig, snap, lt = struct.unpack("<IHHiIII", header)
    parts = [struct.pack(endian + "IHHiIII", magic, vmaj, vmin, zone, sig,
                         snaplen or snap, lt)]
    for sec, usec, origlen, frame in recs:
        if snaplen is not None:
            frame = frame[:snaplen]
        frac = usec * 1000 if nsec else usec
        parts.append(struct.pack(endian + "IIII", sec, frac, len(frame), origlen))
        if modified:
            parts.append(struct.pack(endian + "IHBx", 1, 0x0800, 0))
        parts.append(frame)
    return b"".join(parts)


@pytest.fixture(scope="module")
def bulk_ether(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _generate(tmp_path_factory.mktemp("gen"), "ether")


@pytest.fixture(scope="module")
def bulk_sll2(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _generate(tmp_path_factory.mktemp("gen"), "sll2")


def test_generated_bulk_skips_most_packets(bulk_ether: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bulk.pcap"
    path.write_bytes(bulk_ether)
    skipped = _agree(str(path))
    frames = len(_records(bulk_ether)[1])
    assert skipped > frames // 2, (skipped, frames)
    # Bytes (a stream), small memory-map windows and a small read buffer (records across
    # windows and buffer fills).
    assert _agree(bulk_ether) == skipped
    assert _agree(str(path), map_window=65536) == skipped
    assert _agree(str(path), chunk_size=65536) == skipped


def test_generated_sll2(bulk_sll2: bytes) -> None:
    assert _agree(bulk_sll2) > 0


def test_generated_pcapng_two_interfaces(tmp_path: Path) -> None:
    out = tmp_path / "mixed.pcapng"
    gen_capture().generate(out, packets=4000, seed=4, mix="bulk", link="mixed")
    assert _agree(str(out)) > 1000
    assert _agree(str(out), map_window=65536) > 1000
    assert _agree(str(out), chunk_size=65536) > 1000
    data = out.read_bytes()
    assert _agree(data[: len(data) * 2 // 3]) > 0  # cut inside a block


@pytest.mark.parametrize(
    "variant",
    [
        {"endian": ">"},
        {"nsec": True},
        {"endian": ">", "nsec": True},
        {"modified": True},
        {"endian": ">", "modified": True},
        {"snaplen": 200},
        {"snaplen": 64},
    ],
    ids=lambda v: ",".join(f"{k}={v[k]}" for k in v),
)
def test_pcap_variants(bulk_ether: bytes, variant: dict[str, Any]) -> None:
    header, recs = _records(bulk_ether)
    data = _write(header, recs, **variant)
    skipped = _agree(data)
    if "snaplen" not in variant:
        # (With a short snaplen the hellos are cut: their flows stay open, nothing to skip.)
        assert skipped > 0


def test_corrupt_and_odd_records(bulk_ether: bytes) -> None:
    header, recs = _records(bulk_ether)
    rng = random.Random(7)
    recs = list(recs)
    # A record claiming more captured bytes than it had on the wire (warned once),
    # timestamps out of order, and a corrupt record header in the middle (resync).
    i = len(recs) // 3
    sec, usec, _origlen, frame = recs[i]
    recs[i] = (sec, usec, len(frame) - 1, frame)
    j = len(recs) // 2
    recs[j], recs[j + 1] = recs[j + 1], recs[j]
    data = bytearray(_write(header, recs))
    pos = 24
    for _ in range(2 * len(recs) // 3):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    struct.pack_into("<I", data, pos + 8, 0x7FFFFFF0)
    _agree(bytes(data))
    # Random damage, a few times: whatever happens, every mode sees the same.
    for _ in range(3):
        bad = bytearray(bulk_ether)
        for _ in range(20):
            k = rng.randrange(24, len(bad))
            bad[k] = rng.randrange(256)
        _agree(bytes(bad[: rng.randrange(len(bad) // 2, len(bad))]))


def test_idle_expiry_is_exact(bulk_ether: bytes) -> None:
    # A short idle timeout closes decided flows between their bulk packets unless the
    # skipped packets keep their timers moving; all modes must close the same flows.
    header, recs = _records(bulk_ether)
    spread = [(sec + k // 50, usec, origlen, frame)
              for k, (sec, usec, origlen, frame) in enumerate(recs)]
    data = _write(header, spread)
    for timeout in (0.5, 3.0):
        _agree(data, idle_timeout=timeout)


def test_handshake_mix(tmp_path: Path) -> None:
    _agree(_generate(tmp_path, "sll2", mix="handshake", packets=1500))


@pytest.mark.parametrize("max_flows", [1, 5, 40, 100])
def test_full_flow_table(tmp_path: Path, max_flows: int) -> None:
    # A full table evicts its oldest flow when a new one starts, which changes what is
    # decided for any other flow: batches must shrink so that no eviction happens inside
    # one (see "Batches" in sniparse.analyze; without that, 40 and 100 differ here).
    data = _generate(tmp_path, "sll2", mix="handshake", packets=3000)
    _agree(data, max_flows=max_flows)
    _agree(_generate(tmp_path, "ether", packets=3000), max_flows=max_flows)
    out = tmp_path / "handshake.pcapng"
    gen_capture().generate(out, packets=3000, seed=3, mix="handshake", link="mixed")
    _agree(str(out), max_flows=max_flows)


@pytest.mark.skipif(not HAVE_C, reason="the C extension is not built")
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_batches_hand_over_many_records(tmp_path: Path, fmt: str) -> None:
    # The point of the batch scans: lists of many records, with bulk packets of flows an
    # earlier record of the list may decide left for Python to judge.
    out = tmp_path / f"handshake.{fmt}"
    link = "sll2" if fmt == "pcap" else "mixed"  # (the generator writes "mixed" as pcapng)
    gen_capture().generate(out, packets=1500, seed=3, mix="handshake", link=link)
    a = Analysis(str(out), fastpath="batch")
    it = iter(a)
    sk = a.skipper
    assert sk is not None
    scan = sk.scan_batch if fmt == "pcap" else sk.scan_ng_batch
    assert scan is not None
    sizes: list[int] = []
    rechecks = 0

    def counting(*args: Any) -> Any:
        nonlocal rechecks
        r = scan(*args)
        items = r[9]
        sizes.append(len(items) // 3)
        rechecks += sum(1 for x in items[2::3] if x is not None)
        return r

    if fmt == "pcap":
        sk.scan_batch = counting
    else:
        sk.scan_ng_batch = counting
    assert sum(1 for _ in it) > 0
    assert max(sizes) > 50 and rechecks > 0


# -- the scan itself -------------------------------------------------------------------------


def _all_keys(data: bytes, lt: int) -> set[bytes]:
    keys = set()
    for _sec, _usec, _orig, frame in _records(data)[1]:
        k = fast_key(lt, frame)
        if k is not None:
            keys.add(k[0])
    return keys


@pytest.mark.skipif(not HAVE_C, reason="the C extension is not built")
def test_c_scan_matches_python_scan(bulk_ether: bytes) -> None:
    from sniparse.capture import Record

    c_scan = _SCANS["c"]
    assert c_scan is not None
    decided = _all_keys(bulk_ether, 1)
    rng = random.Random(11)
    buffers = [bulk_ether, bulk_ether[: len(bulk_ether) // 2 + 3]]
    for _ in range(4):
        bad = bytearray(bulk_ether)
        for _ in range(200):
            k = rng.randrange(24, len(bad))
            bad[k] = rng.randrange(256)
        buffers.append(bytes(bad))
    for buf in buffers:
        for big in (False, True):
            for check in (False, True):
                pos = 24
                steps = 0
                while pos < len(buf) and steps < 400:
                    pend_py: dict[bytes, int] = {}
                    pend_c: dict[bytes, int] = {}
                    args = (big, 16, 1000, 262144, 1, check)
                    stop = rng.choice([1 << 62, 0, 1_600_000_000 * 10**9 + rng.randrange(10**12)])
                    rec = (steps, 3, Record if steps & 1 else tuple)
                    r_py = _fastpath.scan_pcap_py(buf, pos, *args, decided, pend_py, stop, *rec)
                    r_c = c_scan(buf, pos, *args, decided, pend_c, stop, *rec)
                    if r_c[8] is not None:
                        assert type(r_c[8]) is type(r_py[8])
                    assert r_py == r_c
                    assert pend_py == pend_c
                    steps += 1
                    pos = max(r_py[0], pos) + rng.randrange(1, 64)


@pytest.mark.skipif(not HAVE_C, reason="the C extension is not built")
def test_c_pcapng_scan_matches_python(tmp_path: Path) -> None:
    from sniparse.analyze import _NG_SCANS
    from sniparse.pcapng import MAX_BLOCK

    c_scan = _NG_SCANS["c"]
    assert c_scan is not None
    out = tmp_path / "m.pcapng"
    gen_capture().generate(out, packets=3000, seed=6, mix="bulk", link="mixed")
    data = out.read_bytes()
    # The framer's own view: its interface table and every EPB's offset and key.
    from sniparse.errors import Issues
    from sniparse.pcapng import PcapngFramer

    framer = PcapngFramer(Issues())
    recs = list(framer.records(data, 0, True))
    table = list(framer._table)
    decided = {k[0] for r in recs if (k := fast_key(r[2], r[3])) is not None}
    offsets = [i for i in range(0, len(data) - 4, 4) if data[i : i + 4] == b"\x06\0\0\0"]
    assert len(offsets) >= len(recs)
    rng = random.Random(5)
    bad = bytearray(data)
    for _ in range(300):
        bad[rng.randrange(len(bad))] = rng.randrange(256)
    for buf in (data, bytes(bad), data[: len(data) // 2]):
        for p in offsets[::7]:
            for stop in (1 << 62, 0, recs[len(recs) // 2][1]):
                cp: list[int] = [0] * len(table)
                cc: list[int] = [0] * len(table)
                pp: dict[bytes, int] = {}
                pc: dict[bytes, int] = {}
                args = (False, table, MAX_BLOCK, decided)
                r_py = _fastpath.scan_pcapng_py(buf, p, *args, pp, stop, cp)
                r_c = c_scan(buf, p, *args, pc, stop, cc)
                assert r_py == r_c, p
                assert pp == pc and cp == cc


def test_scan_on_a_memory_map(bulk_ether: bytes, tmp_path: Path) -> None:
    import mmap

    path = tmp_path / "m.pcap"
    path.write_bytes(bulk_ether)
    decided = _all_keys(bulk_ether, 1)
    offsets = []
    pos = 24
    while pos + 16 <= len(bulk_ether):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<I", bulk_ether, pos + 8)[0]
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        for name, scan in _SCANS.items():
            if scan is None:
                continue
            pend: dict[bytes, int] = {}
            args = (False, 16, 1000, 262144, 1, True, decided, pend, 1 << 62, 0, 0, tuple)
            results = [scan(mm, p, *args) for p in offsets[:300]]
            assert results == [scan(bulk_ether, p, *args) for p in offsets[:300]], name
            assert max(r[1] for r in results) > 10, name
        mm.close()  # no buffer export left behind


def test_sniparse_pure_selects_the_fallback(tmp_path: Path) -> None:
    # The child imports the very package under test (installed or checked out).
    home = str(Path(_fastpath.__file__).resolve().parent.parent)
    code = (f"import sys; sys.path.insert(0, {home!r}); import sniparse._fastpath as f; "
            "print(f.__file__, f.IMPLEMENTATION)")

    def child(pure: str) -> list[str]:
        env = dict(os.environ, SNIPARSE_PURE=pure)
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True, cwd=tmp_path).stdout.split()

    where, impl = child("1")
    # SNIPARSE_PURE also loads the module from its source when it is compiled (mypyc).
    assert Path(where).resolve() == Path(_fastpath.__file__).resolve().parent / "_fastpath.py"
    assert impl == "python"
    assert child("0")[1] == ("c" if HAVE_C else "python")


def test_bad_mode() -> None:
    with pytest.raises(ValueError):
        Analysis(b"", fastpath="fast")


# -- --jobs: separate captures in worker processes (rotated sets: test_jobs_rotated.py) -----


def test_parallel_analysis_equals_separate_runs(bulk_sll2: bytes, tmp_path: Path) -> None:
    """Two unrelated captures. ``--jobs`` gives the answer of reading the files as one
    capture (these two overlap in time, so one worker reads them merged; frames count in
    the whole set). Before, ``--jobs`` meant separate runs; their answer differs where a
    file's end closed flows that the merged read keeps open while the other file goes on,
    and where the two (generated from the same address pools) share a connection's key.
    Rotated sets: tests/test_jobs_rotated.py."""
    from collections import Counter

    from sniparse.analyze import ParallelAnalysis, merge_stats

    paths = []
    for i, data in enumerate([bulk_sll2, _generate(tmp_path, "ether", "handshake", 800)]):
        p = tmp_path / f"part{i}.pcap"
        p.write_bytes(data)
        paths.append(str(p))
    separate = [Analysis(p) for p in paths]
    for a in separate:
        list(a)
    merged = Analysis(paths)
    want = Counter(astuple(h)[:-1] for h in merged)
    par = ParallelAnalysis(paths, jobs=2)
    got = Counter(astuple(h)[:-1] for h in par)
    assert got == want
    assert par.stats() == merged.stats()
    assert par.stats().frames == merge_stats([a.stats() for a in separate]).frames
    issues = par.issues.to_list()
    assert issues[0].kind == "info" and "read together" in issues[0].detail
    assert [(i.kind, i.layer, i.count) for i in issues[1:]] == [
        (i.kind, i.layer, i.count) for i in merged.issues.to_list()
    ]


def test_cli_jobs(bulk_sll2: bytes, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from sniparse.cli import cli

    a = tmp_path / "a.pcap"
    b = tmp_path / "b.pcap"
    a.write_bytes(bulk_sll2)
    b.write_bytes(_generate(tmp_path, "ether", "handshake", 600))
    runner = CliRunner()
    rows = {}
    for args in (["--jobs", "2"], ["-j", "0"]):
        r = runner.invoke(cli, [*args, "--format", "ndjson", str(a), str(b)])
        assert r.exit_code == 0, r.output
        rows[args[0]] = sorted(r.output.splitlines())
    # The answer of reading the files as one capture (not of separate runs: the two
    # overlap in time and share connection keys).
    r = runner.invoke(cli, ["--format", "ndjson", str(a), str(b)])
    assert r.exit_code == 0, r.output
    single = r.output.splitlines()
    assert rows["--jobs"] == rows["-j"] == sorted(single)
    assert all(json.loads(line)["client_ip"] for line in single)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    r = runner.invoke(cli, ["--jobs", "2", str(a), str(bad)])
    assert r.exit_code == 1


# -- decode_segment's common case in C ------------------------------------------------------


def _frames(paths: list[Path]) -> list[tuple[Any, ...]]:
    from sniparse.capture import CaptureReader
    from sniparse.errors import Issues

    out: list[tuple[Any, ...]] = []
    for p in paths:
        out.extend(CaptureReader(str(p), Issues()))
    return out


def _check_c_segment(records: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> int:
    from sniparse import decode
    from sniparse.capture import Record
    from sniparse.errors import Issues
    from sniparse.tcp import Segment, flow_key

    c_segment = decode._C_SEGMENT
    assert c_segment is not None
    # The Python decoder from source: a compiled module's internal calls cannot be patched.
    decode = source_module("decode")
    fell_through = object()
    monkeypatch.setattr(decode, "_decode", lambda *a: fell_through)
    inline = 0
    for rec in records:
        rec = Record(*rec)
        py = decode._decode_inline(rec, Issues(), {})
        c = c_segment(Segment, rec)
        ck = decode._C_SEGMENT_KEY
        assert ck is not None
        with_key = ck(Segment, rec)
        if py is fell_through:
            assert c is None and with_key is None, rec
        else:
            inline += 1
            assert c == py and type(c) is Segment, rec
            assert with_key is not None and with_key[0] == py
            assert with_key[1] == flow_key(py.src, py.dst, py.sport, py.dport)
    return inline


@pytest.mark.skipif(not HAVE_C_SEGMENT, reason="the C segment decoder is off")
def test_c_segment_on_fixture_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    records = _frames(FIXTURE_CAPTURES)
    assert _check_c_segment(records, monkeypatch) > 100
    # Mutated frames: headers changed, cut short, original lengths that lie.
    rng = random.Random(13)
    mutated = []
    for rec in records:
        for _ in range(3):
            data = bytearray(rec[3])
            for _ in range(rng.randrange(1, 4)):
                if data:
                    data[rng.randrange(min(len(data), 90))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(len(data) + 1)]
            origlen = rng.choice([rec[4], len(data), len(data) + rng.randrange(3000)])
            mutated.append((rec[0], rec[1], rec[2], bytes(data), origlen, rec[5]))
    _check_c_segment(mutated, monkeypatch)


@pytest.mark.corpus
@pytest.mark.skipif(not HAVE_C_SEGMENT, reason="the C segment decoder is off")
def test_c_segment_on_corpus_frames(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _check_c_segment(_frames(_captures(corpus_dir / "files")), monkeypatch) > 1000


@pytest.mark.skipif(not HAVE_C, reason="the C extension is not built")
def test_c_segment_shares_addresses_keys_and_small_ints() -> None:
    """The C decoder hands out one bytes object per recurring address and direction key
    (from small caches) and shared ints for 16-bit fields: equal values whatever the cache
    holds, and many distinct addresses (more than the cache slots) still decode right."""
    from sniparse import _speedups  # type: ignore[attr-defined]
    from sniparse.tcp import Segment, flow_key

    def frame(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
        tcp = struct.pack(">HHIIBBHHH", sport, dport, 7, 9, 5 << 4, 0x18, 501, 0, 0)
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 1, 0, 64, 6, 0, src,
                         dst)
        return ip + tcp + payload

    def seg(data: bytes, n: int = 1) -> tuple[Any, bytes]:
        got = _speedups.segment_key(Segment, (n, 1000 * n, 101, data, len(data), 0))
        assert got is not None
        return got[0], got[1]

    a, k = seg(frame(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 40000, 443, b"hi"))
    b, k2 = seg(frame(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 40000, 443, b""), 2)
    assert a.src == b.src == b"\x0a\x00\x00\x01" and a.dst == b.dst == b"\x0a\x00\x00\x02"
    assert a.src is b.src and a.dst is b.dst and k is k2
    assert a.sport is b.sport and a.window is b.window and a.payload_len == 2
    assert b.payload == b"" and b.options == b""
    assert k == flow_key(a.src, a.dst, a.sport, a.dport)
    rng = random.Random(5)
    for i in range(20000):
        src, dst = rng.randbytes(4), rng.randbytes(4)
        sport, dport = rng.randrange(65536), rng.randrange(65536)
        s, key = seg(frame(src, dst, sport, dport, b"x" * (i % 3)), i)
        assert (s.src, s.dst, s.sport, s.dport, s.payload_len) == (src, dst, sport, dport,
                                                                   i % 3)
        assert key == flow_key(src, dst, sport, dport)
