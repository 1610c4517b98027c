"""``--jobs`` on a rotated set: :class:`ParallelAnalysis` gives the sequential answer.

A capture is split into consecutive classic-pcap files (each with the original 24-byte
header) at chosen packet boundaries -- between the two segments of a two-segment
ClientHello, between a hello and the server's reaction, right after a FIN (so the last ACK
is a stray packet in the next file), inside long bulk flows, one packet per file -- and
``ParallelAnalysis(files)`` must give the same handshakes (as a multiset, every field
including the whole-set ``frame``) and the same statistics as ``Analysis(files)``, the
sequential merged read. Files whose time ranges overlap (two interfaces captured apart)
are read together by one worker.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from collections import Counter
from dataclasses import astuple
from itertools import pairwise
from pathlib import Path

import pytest

from sniparse.analyze import Analysis, ParallelAnalysis, _canonical, _cut_parts
from sniparse.decode import fast_key

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "fixtures" / "scenarios").glob("*.pcap"))


# -- a small classic pcap reader / writer ------------------------------------------------------


def _records(data: bytes) -> tuple[bytes, list[bytes], str, int]:
    """(24-byte header, raw records with their 16-byte headers, byte order, linktype)."""
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    out = []
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, pos + 8)[0]
        out.append(data[pos : pos + 16 + incl])
        pos += 16 + incl
    return data[:24], out, endian, linktype


def _split(data: bytes, cuts: list[int], directory: Path, stem: str) -> list[str]:
    """Write the capture as consecutive files, a new file starting at each record index in
    ``cuts``; returns the paths (in a shuffled order: the set is ordered by time)."""
    header, recs, _, _ = _records(data)
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(recs)}), len(recs)]
    paths = []
    for i, (a, b) in enumerate(pairwise(bounds)):
        p = directory / f"{stem}.{i:04d}.pcap"
        p.write_bytes(header + b"".join(recs[a:b]))
        paths.append(str(p))
    random.Random(len(paths)).shuffle(paths)
    return paths


def _flags(data: bytes) -> list[int | None]:
    """The TCP flags byte of every record (None when not a simple TCP frame)."""
    _, recs, _, linktype = _records(data)
    out: list[int | None] = []
    for r in recs:
        fk = fast_key(linktype, r[16:])
        out.append(None if fk is None else fk[1])
    return out


def _generate(tmp_path: Path, mix: str, link: str, packets: int, seed: int) -> bytes:
    out = tmp_path / f"gen-{mix}-{link}-{packets}-{seed}.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gen_capture.py"), str(out), "--packets",
         str(packets), "--mix", mix, "--link", link, "--seed", str(seed)],
        check=True, capture_output=True,
    )
    return out.read_bytes()


# -- the comparison ------------------------------------------------------------------------------


def _rows(hs: object) -> Counter[tuple[object, ...]]:
    return Counter(astuple(h)[:-1] for h in hs)  # type: ignore[attr-defined]


def _check(paths: list[str], jobs: int = 3, **kw: object) -> tuple[Analysis, ParallelAnalysis]:
    seq = Analysis(paths, **kw)  # type: ignore[arg-type]
    want = _rows(seq)
    par = ParallelAnalysis(paths, jobs=jobs, **kw)  # type: ignore[arg-type]
    got = _rows(par)
    assert got == want, (sorted(got - want)[:3], sorted(want - got)[:3])
    a, b = seq.stats(), par.stats()
    for name in ("files", "frames", "bytes", "first_ts_ns", "last_ts_ns", "linktypes",
                 "tcp_segments", "truncated_frames", "flows"):
        assert getattr(b, name) == getattr(a, name), name
    assert {k: v for k, v in b.decode.items() if k != "bulk_skipped"} == {
        k: v for k, v in a.decode.items() if k != "bulk_skipped"
    }
    info = par.issues.to_list()[0]
    assert info.kind == "info" and "parts" in info.detail
    return seq, par


@pytest.fixture(scope="module")
def handshake_capture(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _generate(tmp_path_factory.mktemp("gen"), "handshake", "sll2", 6000, 3)


@pytest.fixture(scope="module")
def bulk_capture(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _generate(tmp_path_factory.mktemp("gen"), "bulk", "ether", 8000, 5)


def test_split_inside_two_segment_hellos_and_before_reactions(
    handshake_capture: bytes, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(handshake_capture)
    hs = list(Analysis(str(whole)))
    two = [h.frame for h in hs if h.segments == 2]
    reset = [h.frame for h in hs if h.outcome == "server_reset" and h.segments == 1]
    hello = [h.frame for h in hs if h.outcome == "server_hello" and h.segments == 1]
    assert two and reset and hello
    # Frame f is record f - 1; a cut at index f starts the next file right after it.
    cuts = two[::7][:8] + reset[::5][:6] + hello[::9][:6]
    seq, _ = _check(_split(handshake_capture, cuts, tmp_path, "hs"))
    assert seq.stats().flows["tls"] == len(hs)


def test_split_after_fins_counts_stray_packets_once(
    handshake_capture: bytes, tmp_path: Path
) -> None:
    flags = _flags(handshake_capture)
    fins = [i + 1 for i, f in enumerate(flags) if f is not None and f & 0x01]
    cuts = fins[3::40][:25]
    seq, _ = _check(_split(handshake_capture, cuts, tmp_path, "fin"))
    assert seq.stats().flows["after_close"] > 0


def test_many_random_cuts_chains_over_many_files(bulk_capture: bytes, tmp_path: Path) -> None:
    n = len(_records(bulk_capture)[1])
    rng = random.Random(11)
    cuts = rng.sample(range(1, n), 12)
    paths = _split(bulk_capture, cuts, tmp_path, "bulk")
    _, par = _check(paths, jobs=4)
    assert len(par.parts) == 13
    # Long transfers cross several files: some key was followed past the next part.
    assert par.stats().flows["tls"] > 0


def test_random_cuts_handshake_mix(handshake_capture: bytes, tmp_path: Path) -> None:
    n = len(_records(handshake_capture)[1])
    cuts = random.Random(5).sample(range(1, n), 9)
    _check(_split(handshake_capture, cuts, tmp_path, "rnd"), jobs=2)


def test_overlapping_files_are_read_together(handshake_capture: bytes, tmp_path: Path) -> None:
    """Two 'interfaces' captured apart (each flow's packets in one of two files, both
    spanning the same time), then rotated: each time slice is a part of two files."""
    header, recs, _, linktype = _records(handshake_capture)
    n = len(recs)
    paths = []
    for s, (a, b) in enumerate([(0, n // 3), (n // 3, 2 * n // 3), (2 * n // 3, n)]):
        sides: list[list[bytes]] = [[], []]
        for r in recs[a:b]:
            fk = fast_key(linktype, r[16:])
            side = 0 if fk is None else _canonical(fk[0])[-1] & 1
            sides[side].append(r)
        for side in (0, 1):
            p = tmp_path / f"if{side}.{s}.pcap"
            p.write_bytes(header + b"".join(sides[side]))
            paths.append(str(p))
    _, par = _check(paths)
    assert len(par.parts) <= 3
    assert any(len(p) == 2 for p in par.parts)
    assert "read together" in par.issues.to_list()[0].detail


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenarios_split_everywhere(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    n = len(_records(data)[1])
    if n <= 80:
        # One packet per file: every boundary is a cut.
        cuts = list(range(1, n))
    else:
        cuts = random.Random(n).sample(range(1, n), 40)
    _check(_split(data, cuts, tmp_path, path.stem), jobs=4)
    # And a set of two files, cut at each of a few places.
    for c in random.Random(n + 1).sample(range(1, n), min(3, n - 1)):
        _check(_split(data, [c], tmp_path, f"{path.stem}-{c}"), jobs=2)


def test_short_idle_timeout(bulk_capture: bytes, tmp_path: Path) -> None:
    """Flows expire and tombstones age out while keys are followed across files (no
    silence here falls in the window where the moment of an idle sweep decides, see the
    ParallelAnalysis notes)."""
    n = len(_records(bulk_capture)[1])
    cuts = random.Random(3).sample(range(1, n), 6)
    _check(_split(bulk_capture, cuts, tmp_path, "idle"), idle_timeout=0.05)


def test_cut_parts_ties_and_empty_files() -> None:
    paths = ["a", "b", "c", "d", "e"]
    spans: list[tuple[int | None, int | None, int | None]] = [
        (10, 10, 20), (20, 20, 30), (None, None, None), (25, 25, 40), (41, 41, 50)
    ]
    # b ends after d starts: b and d together; a ends where b starts (a tie): a cut.
    assert _cut_parts(paths, spans) == [["c"], ["a"], ["b", "d"], ["e"]]
    # A file whose records go back in time below the next file's: no cut there.
    spans = [(10, 10, 20), (21, 5, 30), (31, 31, 40), (None, None, None), (None, None, None)]
    assert _cut_parts(paths, spans) == [["d"], ["e"], ["a", "b"], ["c"]]


def test_cli_jobs_on_a_rotated_set(handshake_capture: bytes, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sniparse.cli import cli

    n = len(_records(handshake_capture)[1])
    paths = _split(handshake_capture, [n // 3, 2 * n // 3], tmp_path, "cli")
    runner = CliRunner()
    out = {}
    for args in ([], ["--jobs", "2"]):
        r = runner.invoke(cli, [*args, "--format", "ndjson", *paths])
        assert r.exit_code == 0, r.output
        out[bool(args)] = sorted(r.output.splitlines())
    assert out[True] == out[False]


def test_jobs_with_standard_input(handshake_capture: bytes, tmp_path: Path) -> None:
    """Standard input among the files is read once, so the set is read in one process."""
    from click.testing import CliRunner

    from sniparse.cli import cli

    n = len(_records(handshake_capture)[1])
    first, second = sorted(_split(handshake_capture, [n // 2], tmp_path, "stdin"))
    runner = CliRunner()
    want = runner.invoke(cli, ["--format", "ndjson", first, second])
    got = runner.invoke(
        cli, ["--jobs", "2", "--format", "ndjson", first, "-"], input=Path(second).read_bytes()
    )
    assert got.exit_code == 0, got.output
    assert sorted(got.output.splitlines()) == sorted(want.output.splitlines())
