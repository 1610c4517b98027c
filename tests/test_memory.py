"""Constant memory: the report built from a stream equals the full one, the CLI streams its
row formats in the same rows and order, and peak memory does not grow with capture size."""

from __future__ import annotations

import csv
import io
import json
import random
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import sniparse.cli as cli_mod
from sniparse.analyze import Analysis
from sniparse.cli import cli, render_csv, render_ndjson
from sniparse.flows import Handshake
from sniparse.report import Report, ReportBuilder

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted(
    p for p in (ROOT / "fixtures").rglob("*")
    if p.is_file() and ".pcap" in p.name and p.stat().st_size < 4_000_000
)


def _read(path: Path) -> tuple[list[Handshake], Analysis] | None:
    try:
        run = Analysis(str(path))
        hs = list(run)
    except Exception:  # noqa: BLE001 - fixtures that are deliberately not captures
        return None
    return hs, run


def _views(r: Report) -> str:
    d = r.to_dict()
    d.pop("handshakes")
    # json.dumps keeps key order, so Counter / dict orders are compared too.
    return json.dumps(d, sort_keys=False, default=str)


@pytest.fixture(scope="module")
def fixture_runs() -> list[tuple[Path, list[Handshake], Analysis]]:
    out = []
    for p in FIXTURES:
        got = _read(p)
        if got is not None:
            out.append((p, *got))
    if not out:
        pytest.skip("no fixture captures")
    return out


def test_builder_without_handshakes_matches_full_build(
    fixture_runs: list[tuple[Path, list[Handshake], Analysis]],
) -> None:
    rng = random.Random(7)
    with_handshakes = 0
    for path, hs, run in fixture_runs:
        issues, stats = run.issues.to_list(), run.stats()
        full = Report.build(sorted(hs, key=lambda h: (h.ts_ns, h.frame)), issues, stats)
        # decision order (as streamed), and a shuffled order: by_time makes both equal
        for order in (hs, rng.sample(hs, len(hs))):
            b = ReportBuilder(keep_handshakes=False, by_time=True)
            for h in order:
                b.add(h)
            lean = b.build(issues, stats)
            assert lean.handshakes == () and not lean.handshakes_kept, path
            assert lean.clients == full.clients, path
            assert lean.servers == full.servers, path
            assert lean.verdicts == full.verdicts, path
            assert lean.summary() == full.summary(), path
            assert lean.issues == full.issues and lean.stats == full.stats, path
            assert _views(lean) == _views(full), path
            assert b.without_sni == full.summary()["without_sni"]
        # kept, without the parsed hellos: same rows in the same (time) order
        b = ReportBuilder(keep_client_hello=False, by_time=True)
        for h in rng.sample(hs, len(hs)):
            b.add(h)
        kept = b.build(issues, stats)
        assert kept.handshakes_kept
        assert kept.handshakes == full.handshakes, path
        assert all(h.client_hello is None for h in kept.handshakes)
        assert kept.to_json() == full.to_json(), path
        with_handshakes += bool(hs)
    assert with_handshakes >= 10


def test_builder_in_added_order_is_report() -> None:
    """Report(list) is the builder fed in list order: ties go to the first added."""
    base: dict[str, Any] = {
        "client_port": 1, "server_port": 443, "unknown_reason": None, "detail": None,
        "sslv2": False, "ech": False, "versions": (), "alpn": (), "ja3": None, "ja4": None,
        "segments": 1, "hrr": False, "alert": None, "conn_state": "SF", "history": "ShAD",
        "server_ip": "10.0.0.9",
    }
    hs = [
        Handshake(ts_ns=t, client_ip=c, sni=n, sni_status="present" if n else "absent",
                  outcome=o, outcome_ms=ms, frame=t, **base)
        for t, c, n, o, ms in [
            (5, "10.0.0.1", "b.example", "server_hello", 1.5),
            (1, "10.0.0.1", "a.example", "server_hello", 2.5),
            (3, "10.0.0.2", None, "server_reset", 0.25),
            (2, "10.0.0.2", None, "alert", None),
        ]
    ]
    r = Report(hs)
    b = ReportBuilder()
    for h in hs:
        b.add(h)
    assert _views(b.build()) == _views(r)
    c1 = next(c for c in r.clients if c.ip == "10.0.0.1")
    assert c1.names == ("b.example", "a.example")  # tie: first added wins
    t = ReportBuilder(by_time=True)
    for h in hs:
        t.add(h)
    bt = t.build()
    assert next(c for c in bt.clients if c.ip == "10.0.0.1").names == ("a.example", "b.example")
    assert [h.ts_ns for h in bt.handshakes] == [1, 2, 3, 5]
    assert c1.typical_ms == 2.0 and r.servers[0].typical_ms == 1.5
    with pytest.raises(ValueError):
        ReportBuilder(keep_handshakes=False).build().filtered(lambda h: True)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), prog_name="sniparse")


def test_streamed_rows_equal_report_rows(
    fixture_runs: list[tuple[Path, list[Handshake], Analysis]],
) -> None:
    checked = 0
    for path, hs, run in fixture_runs:
        if not hs:
            continue
        report = Report.build(sorted(hs, key=lambda h: (h.ts_ns, h.frame)),
                              run.issues.to_list(), run.stats())
        n = _cli("--format", "ndjson", str(path))
        assert n.exit_code == 0, (path, n.output)
        assert n.stdout == render_ndjson(report), path  # same rows, same order
        c = _cli("--format", "csv", str(path))
        assert c.exit_code == 0, (path, c.output)
        assert c.stdout == render_csv(report), path
        checked += 1
    assert checked >= 10


def test_reorder_window_keeps_every_row(monkeypatch: pytest.MonkeyPatch,
                                        fixture_runs: list[tuple[Path, list[Handshake],
                                                                 Analysis]]) -> None:
    """A window smaller than the out-of-order stretch still writes each row exactly once."""
    path, hs, _run = max(fixture_runs, key=lambda t: len(t[1]))
    report = Report.build(sorted(hs, key=lambda h: (h.ts_ns, h.frame)))
    monkeypatch.setattr(cli_mod, "REORDER_WINDOW", 1)
    n = _cli("--format", "ndjson", str(path))
    assert n.exit_code == 0
    assert sorted(n.stdout.splitlines()) == sorted(render_ndjson(report).splitlines())
    c = _cli("--format", "csv", str(path))
    rows = list(csv.reader(io.StringIO(c.stdout)))
    assert len(rows) == 1 + len(hs)


def test_text_and_json_from_the_stream(
    fixture_runs: list[tuple[Path, list[Handshake], Analysis]],
) -> None:
    """The text output (built without handshakes) and json (handshakes kept without their
    hellos) say what the full report says."""
    from sniparse.cli import render_text

    for path, hs, run in fixture_runs[:40]:
        report = Report.build(sorted(hs, key=lambda h: (h.ts_ns, h.frame)),
                              run.issues.to_list(), run.stats())
        t = _cli(str(path))
        assert t.exit_code == 0, (path, t.output)
        assert t.stdout == render_text(report), path
        j = _cli("--format", "json", str(path))
        assert j.stdout == report.to_json(indent=2) + "\n", path
        f = _cli("--flows", str(path))
        assert f.stdout == render_text(report, flows=True), path


# ---------------------------------------------------------------------------------------------
# Peak memory of the command in a subprocess

_PEAK = """
import resource, sys
from sniparse.cli import main
try:
    main(sys.argv[1:])
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def _peak_kb(cap: Path, fmt: str) -> int:
    p = subprocess.run(
        [sys.executable, "-c", _PEAK, str(cap), "--format", fmt, "-o", "/dev/null"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert p.returncode == 0, p.stderr
    return int(p.stderr.strip().splitlines()[-1])


def _generate(out: Path, packets: int) -> Path:
    gen = ROOT / "benchmarks" / "gen_capture.py"
    if not gen.exists():
        pytest.skip("benchmarks/gen_capture.py not present")
    subprocess.run(
        [sys.executable, str(gen), str(out), "--packets", str(packets), "--mix", "handshake"],
        check=True, capture_output=True, timeout=120,
    )
    return out


@pytest.fixture(scope="module")
def small_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("mem") / "small.pcap", 30_000)


def test_peak_memory_does_not_grow_with_capture(small_capture: Path, tmp_path: Path) -> None:
    small = small_capture
    big = _generate(tmp_path / "big.pcap", 120_000)
    assert big.stat().st_size > 3.5 * small.stat().st_size
    n_small = sum(1 for _ in Analysis(str(small)))
    assert n_small > 2000  # handshake-heavy: thousands of handshakes per capture
    for fmt in ("ndjson", "text"):
        a = _peak_kb(small, fmt)
        b = _peak_kb(big, fmt)
        # Measured: ndjson +5 MB, text +16 MB (per-client views of ~3,700 more distinct
        # clients). Before streaming the same step cost +113 MB (ndjson) and +88 MB (text).
        assert b - a < 30_000, f"{fmt}: peak RSS {a} kB -> {b} kB"
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss > 0


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "json"])
def test_reader_leaving_early_is_quiet(small_capture: Path, fmt: str) -> None:
    """`sniparse cap --format ndjson | head`: rows are still streaming when the reader goes;
    the command stops with status 0 and no traceback."""
    p = subprocess.Popen(
        [sys.executable, "-m", "sniparse", str(small_capture), "--format", fmt],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.read(100)
    p.stdout.close()  # more than a pipe's buffer of output is still to come
    err = p.stderr.read()
    assert p.wait(timeout=60) == 0, err
    assert first and b"Traceback" not in err and err == b""
