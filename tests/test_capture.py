"""Capture input: every format variant, compression, stdin, rotated sets, damage.

The fixtures under fixtures/formats/ come with ``expected.json``, written by
fixtures/make_capture_fixtures.py from what it put into each file (not from any reader).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sniparse.capture import DEFAULT_MAX_RATIO, CaptureReader, Record
from sniparse.errors import CaptureReadError, Issues, NotACaptureError, SniparseError
from sniparse.pcap import PcapFramer, parse_header
from sniparse.pcapng import PcapngFramer, ts_params

FORMATS = Path(__file__).resolve().parent.parent / "fixtures" / "formats"
EXPECTED: dict[str, Any] = json.loads((FORMATS / "expected.json").read_text())


def read(source: object, **kw: Any) -> tuple[list[Record], Issues, CaptureReader]:
    issues = Issues()
    reader = CaptureReader(source, issues, **kw)
    return list(reader), issues, reader


def as_expected(recs: list[Record]) -> list[dict[str, Any]]:
    return [
        {
            "ts_ns": r.ts_ns,
            "linktype": r.linktype,
            "caplen": len(r.data),
            "origlen": r.origlen,
            "iface": r.iface,
            "sha": hashlib.sha256(r.data).hexdigest()[:16],
        }
        for r in recs
    ]


def pcap_file(frames: list[tuple[int, int, bytes, int]]) -> bytes:
    """A little-endian nanosecond pcap of ``(ts_ns, linktype, data, origlen)`` frames."""
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, frames[0][1])]
    for ts, _lt, d, o in frames:
        out.append(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(d), o) + d)
    return b"".join(out)


SINGLE = sorted(k for k in EXPECTED if "+" not in k)


@pytest.mark.parametrize("name", SINGLE)
def test_fixture_reads_as_written(name: str) -> None:
    if name.endswith(".zst"):
        pytest.importorskip("zstandard")
    recs, issues, reader = read(FORMATS / name)
    exp = EXPECTED[name]
    assert as_expected(recs) == exp["records"]
    frames = [r.frame for r in recs]
    assert frames == sorted(set(frames)) and (not frames or frames[0] >= 1)
    if "two_sections" not in name and "pcapng_named" not in name and "cut_tail.pcapng" not in name:
        assert frames == list(range(1, len(recs) + 1))  # no custom block: no gap
    assert sorted({i.kind for i in issues}) == sorted(set(exp["issues"]))
    for r in recs:
        assert isinstance(r, Record) and isinstance(r.data, bytes)
        assert reader.interfaces[r.iface].linktype == r.linktype
    if "interfaces" in exp:
        got = [
            {"linktype": i.linktype, "snaplen": i.snaplen, "name": i.name}
            for i in reader.interfaces
        ]
        assert got == exp["interfaces"]
    if "fcs_len" in exp:
        assert reader.interfaces[0].fcs_len == exp["fcs_len"]
        assert reader.interfaces[0].snaplen == exp["snaplen"]
    assert reader.bytes_read == reader.bytes_total == (FORMATS / name).stat().st_size


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_fixtures_agree_with_tshark() -> None:
    """tshark as an independent reader of the fixtures: the same frame numbers (custom
    blocks take one, as in Wireshark), times, lengths and interfaces."""
    names = [
        n
        for n in SINGLE
        if "corrupt" not in n and "cut" not in n and not n.endswith((".zst", ".bz2", ".xz"))
    ]
    assert len(names) >= 10
    for name in names:
        out = subprocess.run(
            [
                str(TSHARK),
                "-r",
                str(FORMATS / name),
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "frame.time_epoch",
                "-e",
                "frame.len",
                "-e",
                "frame.cap_len",
                "-e",
                "frame.interface_id",
                "-e",
                "frame.protocols",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        theirs: dict[int, tuple[str, int, int, int] | None] = {}
        for line in out.splitlines():
            num, ts, flen, clen, ifid, protos = line.split("\t")
            if protos == "data" and not ts:
                theirs[int(num)] = None  # a custom block: a frame number, no packet
                continue
            theirs[int(num)] = (ts, int(flen), int(clen), int(ifid or 0))
        recs, _, reader = read(FORMATS / name)
        ours = {r.frame: r for r in recs}
        assert set(ours) == {k for k, v in theirs.items() if v is not None}, name
        for k, r in ours.items():
            row = theirs[k]
            assert row is not None
            tts, tflen, tclen, tifid = row
            local = reader.interfaces[r.iface].local_id  # tshark numbers per section
            assert (r.origlen, len(r.data), local) == (tflen, tclen, tifid), (name, k)
            if tts:  # tshark shows no time for simple packet blocks
                sec, _, frac = tts.partition(".")
                assert r.ts_ns == int(sec) * 10**9 + int(frac.ljust(9, "0")), (name, k)


def test_four_magics_agree() -> None:
    """The same frames in all four classic variants: ns files keep the sub-µs digits."""
    got = {
        n: read(FORMATS / n)[0]
        for n in (
            "pcap_usec_le.pcap",
            "pcap_usec_be.pcap",
            "pcap_nsec_le.pcap",
            "pcap_nsec_be.pcap",
        )
    }
    assert [r.data for r in got["pcap_usec_le.pcap"]] == [r.data for r in got["pcap_nsec_be.pcap"]]
    assert got["pcap_usec_le.pcap"] == got["pcap_usec_be.pcap"]
    assert got["pcap_nsec_le.pcap"] == got["pcap_nsec_be.pcap"]
    assert any(r.ts_ns % 1000 for r in got["pcap_nsec_le.pcap"])
    assert all(r.ts_ns % 1000 == 0 for r in got["pcap_usec_le.pcap"])
    hdr = parse_header((FORMATS / "pcap_nsec_be.pcap").read_bytes())
    assert hdr is not None and hdr.nanosecond and hdr.endian == ">"


def test_pcapng_timestamp_resolutions() -> None:
    assert ts_params(6) == (1000, 1)
    assert ts_params(9) == (1, 1)
    assert ts_params(12) == (1, 1000)
    assert ts_params(0x80 | 20) == (1_000_000_000, 1 << 20)
    recs, _, reader = read(FORMATS / "pcapng_two_sections.pcapng")
    # Two sections of opposite byte order, each with its own interface table.
    assert [i.linktype for i in reader.interfaces] == [1, 101, 113, 113]
    assert [(i.section, i.local_id) for i in reader.interfaces] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert {r.iface for r in recs} == {0, 1, 2, 3}
    assert all(isinstance(r.ts_ns, int) for r in recs)


def test_plain_tuple_records() -> None:
    """``record_type=tuple``: the same values, as plain tuples, also when merging."""
    for src in (
        FORMATS / "pcapng_two_sections.pcapng",
        [FORMATS / f"rotated_{k}.pcap" for k in (1, 2, 0)],
    ):
        want = read(src)[0]
        got = read(src, record_type=tuple)[0]
        assert got == [tuple(r) for r in want] and all(type(r) is tuple for r in got)


def test_compressed_variants_match_plain() -> None:
    plain = read(FORMATS / "pcap_usec_le.pcap")[0]
    for suffix in ("gz", "bz2", "xz", "zst"):
        if suffix == "zst" and not _has_zstd():
            continue
        recs, issues, reader = read(FORMATS / f"pcap_usec_le.pcap.{suffix}")
        assert recs == plain, suffix
        assert len(issues) == 0
        names = {"gz": "gzip", "bz2": "bzip2", "xz": "xz", "zst": "zstd"}
        assert reader.formats == ["pcap+" + names[suffix]]


def _has_zstd() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def test_zstd_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(NotACaptureError, match="zstandard"):
        CaptureReader(FORMATS / "pcap_usec_le.pcap.zst", Issues())


def test_format_by_content_not_name(tmp_path: Path) -> None:
    recs, _, reader = read(FORMATS / "pcapng_named.pcap.gz")
    assert len(recs) == len(EXPECTED["pcapng_named.pcap.gz"]["records"])
    assert reader.formats == ["pcapng+gzip"]
    # a pcap called .pcapng
    p = tmp_path / "really_pcap.pcapng"
    shutil.copy(FORMATS / "pcap_usec_le.pcap", p)
    assert read(p)[0] == read(FORMATS / "pcap_usec_le.pcap")[0]


def test_bytes_and_file_object_sources() -> None:
    data = (FORMATS / "pcapng_two_sections.pcapng").read_bytes()
    want = read(FORMATS / "pcapng_two_sections.pcapng")[0]
    assert read(data)[0] == want
    assert read(io.BytesIO(data))[0] == want
    with open(FORMATS / "pcapng_two_sections.pcapng", "rb") as f:
        recs, _, reader = read(f)
    assert recs == want and reader.bytes_total == len(data)


def test_stdin_monkeypatched(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (FORMATS / "pcap_usec_le.pcap.gz").read_bytes()

    class FakeStdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    recs, _, reader = read("-")
    assert recs == read(FORMATS / "pcap_usec_le.pcap")[0]
    assert reader.files == ["-"] and reader.bytes_total == 0


def test_stdin_pipe_subprocess() -> None:
    code = (
        "from sniparse.capture import CaptureReader\n"
        "from sniparse.errors import Issues\n"
        "print(sum(len(r.data) for r in CaptureReader('-', Issues())))\n"
    )
    data = (FORMATS / "pcapng_two_sections.pcapng").read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", code], input=data, capture_output=True, check=True, timeout=30
    )
    want = sum(len(r.data) for r in read(FORMATS / "pcapng_two_sections.pcapng")[0])
    assert int(out.stdout) == want


def test_named_pipe_is_read_once(tmp_path: Path) -> None:
    """``sniparse <(zcat x.pcap.gz)`` hands over a pipe path: sniffing must not lose
    its first bytes."""
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = (FORMATS / "pcapng_two_sections.pcapng").read_bytes()

    def writer() -> None:
        with open(fifo, "wb") as f:
            for i in range(0, len(data), 100):
                f.write(data[i : i + 100])
                f.flush()

    t = threading.Thread(target=writer)
    t.start()
    try:
        recs, issues, reader = read(fifo)
    finally:
        t.join(timeout=10)
    assert recs == read(data)[0] and len(issues) == 0 and reader.bytes_total == 0


def test_rotated_set_any_order() -> None:
    exp = EXPECTED["rotated_0.pcap+rotated_1.pcap+rotated_2.pcap"]["records"]
    for order in ((2, 0, 1), (0, 1, 2), (1, 2, 0)):
        files = [FORMATS / f"rotated_{k}.pcap" for k in order]
        recs, issues, reader = read(files)
        assert as_expected(recs) == exp
        assert [r.frame for r in recs] == list(range(1, 10))
        assert len(reader.interfaces) == 1  # same link type in every file: one interface
        assert len(issues) == 0
        assert reader.bytes_read == reader.bytes_total == sum(f.stat().st_size for f in files)


def test_interleaved_sources_merge_by_time() -> None:
    a = read(FORMATS / "pcap_usec_le.pcap")[0]
    b = read(FORMATS / "pcapng_two_sections.pcapng")[0]
    # shift b into a's time range so the two really interleave
    shift = a[0].ts_ns - b[0].ts_ns + 1000
    frames = [(r.ts_ns + shift, 1, r.data, r.origlen) for r in b if r.linktype == 1]
    merged, _, _ = read([FORMATS / "pcap_usec_le.pcap", pcap_file(frames)])
    ts = [r.ts_ns for r in merged]
    assert ts == sorted(ts) and len(merged) == len(a) + len(frames)
    assert [r.frame for r in merged] == list(range(1, len(merged) + 1))


def test_cut_tail_every_complete_record_and_one_issue() -> None:
    recs, issues, _ = read(FORMATS / "pcap_cut_tail.pcap")
    assert len(recs) == 5
    (issue,) = list(issues)
    assert issue.kind == "truncated" and issue.frame == 6


def test_resync_after_corrupt_record() -> None:
    recs, issues, _ = read(FORMATS / "pcap_corrupt_record.pcap")
    assert len(recs) == 9  # the corrupt third record is lost, the seven after it are not
    (issue,) = list(issues)
    assert issue.kind == "malformed" and issue.frame == 3 and "skipped" in issue.detail
    recs, issues, _ = read(FORMATS / "pcapng_corrupt_blocks.pcapng")
    assert len(recs) == 8
    assert {i.kind for i in issues} == {"malformed"} and issues.total() == 2


def test_resync_across_chunk_boundaries() -> None:
    """Small chunks force the framer to stop and resume everywhere, also mid-resync."""
    for name in (
        "pcap_corrupt_record.pcap",
        "pcapng_corrupt_blocks.pcapng",
        "pcapng_two_sections.pcapng",
        "pcap_cut_tail.pcap",
    ):
        data = (FORMATS / name).read_bytes()
        want, wiss, _ = read(data)
        for size in (1, 7, 64):
            got, gi = _feed_in_pieces(data, size)
            assert got == [tuple(r) for r in want], (name, size)
            assert list(gi) == list(wiss)


def test_memory_map_windows_match_chunks(tmp_path: Path) -> None:
    """Plain files are read into a reused buffer, or through memory-map windows; records
    and issues must be the same either way and as through a stream read in chunks, also
    when buffers and windows cut records and corrupt regions."""
    sources = []
    for name in (
        "pcap_corrupt_record.pcap",
        "pcapng_corrupt_blocks.pcapng",
        "pcapng_two_sections.pcapng",
        "pcap_nsec_be.pcap",
    ):
        data = (FORMATS / name).read_bytes()
        head = 24 if data[:4] != b"\n\r\r\n" else 0
        big = tmp_path / f"big_{name}"
        big.write_bytes(data + data[head:] * 40 + data[head:-7])  # ends in a cut record
        sources.append(big)
    for path in sources:
        with path.open("rb") as stream:
            chunked = read(stream, chunk_size=4096)
        for window in (4096, 8192, 1 << 20):
            for kw in ({"use_mmap": True, "map_window": window}, {"chunk_size": window}):
                got = read(path, **kw)
                assert got[0] == chunked[0], (path.name, kw)
                assert list(got[1]) == list(chunked[1]), (path.name, kw)
                assert got[2].bytes_read == path.stat().st_size
        assert len(chunked[0]) > 40


def _feed_in_pieces(data: bytes, size: int) -> tuple[list[tuple[Any, ...]], Issues]:
    issues = Issues()
    framer: PcapFramer | PcapngFramer
    framer = PcapngFramer(issues) if data[:4] == b"\n\r\r\n" else PcapFramer(issues)
    out: list[tuple[Any, ...]] = []
    buf = b""
    base = 0
    for i in range(0, len(data), size):
        buf += data[i : i + size]
        framer.offset = base
        gen = framer.records(buf, 0, False)
        while True:
            try:
                out.append(next(gen))
            except StopIteration as stop:
                pos = stop.value
                break
        base += pos
        buf = buf[pos:]
    framer.offset = base
    out.extend(list(framer.records(buf, 0, True)))
    return out, issues


def test_garbage_after_corrupt_header_is_skipped_fast() -> None:
    """Megabytes of garbage between good records: found again, in bounded time."""
    good = (FORMATS / "pcap_usec_le.pcap").read_bytes()
    hdr, body = good[:24], good[24:]
    junk = bytes((i * 7919) & 0xFF for i in range(3_000_000))
    bad = struct.pack("<IIII", 1_700_000_000, 0, 0x7FFFFFFF, 0x7FFFFFFF)
    recs, issues, _ = read(hdr + body + bad + junk + body)
    assert len(recs) == 12
    assert [i.kind for i in issues] == ["malformed"]


def test_blind_resync_gives_up_cleanly() -> None:
    """A corrupt *first* record has no timestamp to compare with: the scan is bounded,
    and when it gives up, nothing after it is misread as records."""
    good = (FORMATS / "pcap_usec_le.pcap").read_bytes()
    hdr, body = good[:24], good[24:]
    junk = bytes((i * 7919 + (i >> 8)) & 0xFF for i in range(2_500_000))
    bad = struct.pack("<IIII", 1_700_000_000, 0, 0x7FFFFFFF, 0x7FFFFFFF)
    recs, issues, _ = read(hdr + bad + junk + body, chunk_size=65536)
    assert recs == []
    assert [i.kind for i in issues] == ["malformed"]
    # close after the corrupt first record, it is found again
    recs, issues, _ = read(hdr + bad + junk[:1000] + body, chunk_size=4096)
    assert len(recs) == 6 and [i.kind for i in issues] == ["malformed"]


def _ng(*blocks: bytes) -> bytes:
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 0) + struct.pack("<I", 20)
    return shb + idb + b"".join(blocks)


def _epb(ts: int, data: bytes, blen_override: int | None = None) -> bytes:
    pad = b"\0" * (-len(data) % 4)
    blen = 32 + len(data) + len(pad)
    head = struct.pack(
        "<IIIIIII", 6, blen_override or blen, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)
    )
    return head + data + pad + struct.pack("<I", blen)


def test_pcapng_damaged_lengths_resync() -> None:
    t = 1_700_000_000_000_000
    good = [_epb(t + i, bytes([i]) * (20 + i)) for i in range(6)]
    # a length running past the end of the file, with sound blocks after it
    recs, issues, _ = read(_ng(good[0], _epb(t, b"x" * 40, 4096), *good[1:]))
    assert [r.data for r in recs] == [bytes([i]) * (20 + i) for i in range(6)]
    assert [i.kind for i in issues] == ["malformed"] and "past the end" in next(iter(issues)).detail
    # lengths under 12 and not a multiple of 4
    recs, issues, _ = read(
        _ng(
            good[0],
            struct.pack("<II", 6, 8) + b"\0" * 8,
            *good[1:3],
            struct.pack("<II", 6, 13) + b"\0" * 16,
            *good[3:],
        )
    )
    assert len(recs) == 6 and issues.total() == 2
    # a packet block naming an interface the section does not have: skipped by length
    bad_if = bytearray(_epb(t, b"y" * 24))
    struct.pack_into("<I", bad_if, 8, 5)
    recs, issues, _ = read(_ng(good[0], bytes(bad_if), good[1]))
    assert len(recs) == 2 and "interface 5" in next(iter(issues)).detail
    # a cut last block with nothing sound after it: truncated, not malformed
    recs, issues, _ = read(_ng(*good)[:-10])
    assert len(recs) == 5 and [i.kind for i in issues] == ["truncated"]


def test_issue_frames_in_a_merged_capture() -> None:
    """Several files: frame numbers of the merged capture are not known while one file
    is framed, so an issue names the file and its record number instead."""
    recs, issues, _ = read([FORMATS / "rotated_0.pcap", FORMATS / "pcap_corrupt_record.pcap"])
    assert len(recs) == 3 + 9
    (issue,) = list(issues)
    assert issue.frame is None
    assert "pcap_corrupt_record.pcap" in issue.detail and "record 3" in issue.detail


def test_text_mode_stream_is_refused() -> None:
    with pytest.raises(NotACaptureError, match="text mode"):
        CaptureReader(io.StringIO("abc"), Issues())


def test_hostile_lengths_are_bounded() -> None:
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0xFFFFFFFF, 1)
    # a record claiming 4 GiB, then nothing plausible: one issue, no huge allocation
    recs, issues, _ = read(hdr + struct.pack("<IIII", 1, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"x" * 100)
    assert recs == [] and [i.kind for i in issues] == ["malformed"]
    # pcapng block claiming 2 GiB
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    blk = struct.pack("<II", 6, 0x80000000) + b"\0" * 64
    recs, issues, _ = read(shb + blk)
    assert recs == [] and len(issues) == 1


@pytest.mark.parametrize(
    "name",
    [
        "pcap_usec_le.pcap",
        "pcapng_two_sections.pcapng",
        "pcapng_spb_opb.pcapng",
        "pcap_usec_le.pcap.gz",
    ],
)
def test_every_prefix_only_documented_outcomes(name: str) -> None:
    data = (FORMATS / name).read_bytes()
    full = read(data)[0]
    bounds = _boundaries(data)
    for n in range(len(data) + 1):
        try:
            recs, issues, _ = read(data[:n])
        except NotACaptureError:
            assert n < 64 or name.endswith(".gz")
            continue
        assert recs == full[: len(recs)]
        if not name.endswith(".gz"):
            # A prefix that cuts a record or block says so; one that ends between them
            # is a valid, shorter capture.
            problems = [i for i in issues if i.kind != "info"]
            assert bool(problems) == (n not in bounds), n


def _boundaries(data: bytes) -> set[int]:
    """Offsets where a record (pcap) or block (pcapng) ends, walked by hand."""
    out = set()
    if data[:4] == b"\n\r\r\n":
        pos = 0
        endian = "<"
        while pos + 12 <= len(data):
            if data[pos : pos + 4] == b"\n\r\r\n":
                endian = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            pos += struct.unpack_from(endian + "I", data, pos + 4)[0]
            out.add(pos)
    else:
        pos = 24
        out.add(pos)
        while pos + 16 <= len(data):
            pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
            out.add(pos)
    return out


def test_not_a_capture(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pcap"
    text.write_text("this is not a capture\n")
    gz = tmp_path / "text.pcap.gz"
    gz.write_bytes(gzip.compress(b"hello world, not a capture at all"))
    for path, words in ((empty, "empty"), (text, "text"), (tmp_path, "directory"), (gz, "gzip")):
        with pytest.raises(NotACaptureError, match=words) as ei:
            CaptureReader(path, Issues())
        assert str(path) in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(CaptureReadError, match="no such file"):
        CaptureReader(tmp_path / "missing.pcap", Issues())
    with pytest.raises(NotACaptureError):
        CaptureReader([], Issues())


def test_decompression_bomb_is_stopped(tmp_path: Path) -> None:
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack("<IIII", 1_700_000_000, 0, 60000, 60000) + b"\0" * 60000
    p = tmp_path / "bomb.pcap.gz"
    p.write_bytes(gzip.compress(hdr + rec * 400))  # 24 MB of zeros, ~25 KB compressed
    recs, issues, _ = read(p, max_ratio=10)
    assert 0 < len(recs) < 400
    assert "limit" in {i.kind for i in issues}
    recs, issues, _ = read(p, max_decompressed=1_000_000)
    assert len(recs) < 20 and "limit" in {i.kind for i in issues}


def test_default_gzip_cap_stops_the_densest_bomb_clearly(tmp_path: Path) -> None:
    # Deflate tops out near 1032:1 (RFC 1951), so the gzip default must sit well below it:
    # the densest bomb is stopped at the gzip cap (200:1), far from the 1000:1 of other
    # codecs, and well before its end.
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    rec = struct.pack("<IIII", 1_700_000_000, 0, 262144, 262144) + bytes(262144)
    raw = hdr + rec * 240                          # 60 MiB of zeros
    data = gzip.compress(raw, compresslevel=9, mtime=0)
    assert len(raw) / len(data) > 900              # as dense as deflate gets
    p = tmp_path / "bomb.pcap.gz"
    p.write_bytes(data)
    recs, issues, _ = read(p)
    assert "limit" in {i.kind for i in issues}
    out = sum(len(r.data) + 16 for r in recs)
    cap = DEFAULT_MAX_RATIO["gzip"] * max(len(data), 64 * 1024)
    assert DEFAULT_MAX_RATIO["gzip"] <= 250
    assert out <= cap + (1 << 20) and out < len(raw) / 3   # one read chunk of slack
    # An explicit ratio applies to gzip too: above deflate's maximum, nothing is stopped.
    recs, issues, _ = read(p, max_ratio=2000)
    assert len(recs) == 240 and "limit" not in {i.kind for i in issues}
    # A real capture compresses far below the cap and reads whole under the defaults.
    plain = (FORMATS / "pcap_usec_le.pcap").read_bytes()
    q = tmp_path / "real.pcap.gz"
    q.write_bytes(gzip.compress(plain))
    recs, issues, _ = read(q)
    assert recs and "limit" not in {i.kind for i in issues}


def test_broken_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    data = gzip.compress((FORMATS / "pcap_usec_le.pcap").read_bytes() * 1)
    p = tmp_path / "cut.pcap.gz"
    p.write_bytes(data[: len(data) - 12])
    recs, issues, _ = read(p)
    assert len(recs) >= 1 and "truncated" in {i.kind for i in issues}


def test_progress_callback() -> None:
    seen: list[tuple[int, int]] = []
    files = [FORMATS / f"rotated_{k}.pcap" for k in range(3)]
    list(CaptureReader(files, Issues(), progress=lambda a, b: seen.append((a, b))))
    assert seen and seen[-1][0] == seen[-1][1] == sum(os.path.getsize(f) for f in files)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from([b"", b"pcap", b"ng", b"gz"]))
def test_random_bytes_only_documented_errors(tail: bytes, kind: bytes) -> None:
    heads = {
        b"": b"",
        b"pcap": struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
        b"ng": struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28),
        b"gz": b"",
    }
    data = heads[kind] + tail
    if kind == b"gz":
        data = gzip.compress(data)
    try:
        recs, _, _ = read(data)
    except SniparseError:
        return
    for r in recs:
        assert isinstance(r.ts_ns, int) and len(r.data) <= 16 * 1024 * 1024


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_fixture_only_documented_errors(data: st.DataObject) -> None:
    name = data.draw(
        st.sampled_from(
            ["pcap_usec_le.pcap", "pcapng_two_sections.pcapng", "pcapng_spb_opb.pcapng"]
        )
    )
    raw = bytearray((FORMATS / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        read(bytes(raw))
    except SniparseError:
        pass


def _pcap_with(records: list[tuple[int, bytes, int]]) -> tuple[bytes, list[int]]:
    """A classic pcap (µs, little-endian, Ethernet) of (seconds, data, origlen) records, and
    each record header's offset."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    offs = []
    for i, (sec, data, origlen) in enumerate(records):
        offs.append(len(out))
        out += struct.pack("<IIII", sec, 1000 * i, len(data), origlen) + data
    return bytes(out), offs


@pytest.mark.parametrize("extra", [1, 3, 4, 12, 40])
@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("chunk", [None, 4096])
def test_caplen_a_few_bytes_too_long_loses_no_other_record(extra: int, cut: bool,
                                                          chunk: int | None) -> None:
    # Record 5's captured length is `extra` bytes too long, so it swallows the start of
    # record 6's header. With the full length on the wire (caplen == origlen) the framer
    # sees caplen > origlen and checks where the next header really is; with a snaplen cut
    # (caplen < origlen) the header after the damage is corrupt and the resync looks back
    # into the previous record. Either way every other record is read unchanged.
    rng = __import__("random").Random(extra)
    recs = []
    for i in range(12):
        data = bytes(rng.randrange(256) for _ in range(60 + 37 * i))
        recs.append((1_700_000_000 + i, data, len(data) + (100 if cut else 0)))
    raw, offs = _pcap_with(recs)
    bad = bytearray(raw)
    struct.pack_into("<I", bad, offs[4] + 8, len(recs[4][1]) + extra)
    kw: dict[str, Any] = {} if chunk is None else {"chunk_size": chunk}
    stream = io.BytesIO(bytes(bad)) if chunk is not None else bytes(bad)
    got, issues, _ = read(stream, **kw)
    datas = [r.data for r in got]
    # Known limit: 4 bytes too long on a cut record shifts the next header by one field,
    # which then reads as a plausible record (fraction as seconds, origlen as caplen)
    # without a time check on the hot path; that one record is lost, no other.
    lost = {4, 5} if cut and extra == 4 else {4}
    for i, (_, data, _) in enumerate(recs):
        if i not in lost:
            assert data in datas, (i, [i.detail for i in issues])
    assert 12 - len(lost) <= len(got) <= 12
    assert {i.kind for i in issues} & {"malformed"}
