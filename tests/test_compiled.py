"""The compiled build and the pure-Python source agree; builds without mypyc or a compiler work.

setup.py compiles the modules in ``sniparse._compiled.COMPILED_MODULES`` with mypyc (and the
C extension ``sniparse._speedups``) when it can, and otherwise leaves the package running its
Python source. ``SNIPARSE_PURE=1`` makes a compiled package load that source instead.

* Agreement: a child process with ``SNIPARSE_PURE=1`` analyses every fixture and corpus capture
  and writes what it found (each handshake as ``astuple(h)[:-1]``, the whole report as JSON,
  the statistics and the issues, all as ``repr`` so that ``1`` / ``1.0`` / ``True`` and dict
  order count) to a pickle; the test process does the same with the compiled modules, at the
  same time, and both must be identical. The CLI's ``--format json`` and ``--flows`` text are
  compared the same way on the fixture scenarios, and the analyses on damaged copies of the
  fixtures and a flow table's results on random TCP segments (these found what the captures
  did not: a compiled module's run-time type check failing where the source runs on, for an
  attribute narrowed by mypy and then changed by a call). Skipped when not compiled.
* Builds: a copy of the source tree (``git ls-files``) built with ``SNIPARSE_NO_MYPYC=1``, with
  ``SNIPARSE_NO_EXTENSION=1``, and with a failing C compiler (``CC=false``, which also makes
  mypyc's build fail) gives no mypyc module and the same CLI output as the package under test.
* Staleness: in an in-place (editable) checkout, no compiled module is older than its source
  (the edit-without-rebuild trap: the old compiled code would run).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.machinery
import importlib.util
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ROOT

import sniparse
from sniparse import _compiled
from sniparse.analyze import Analysis, analyze
from sniparse.cli import cli
from sniparse.errors import SniparseError
from sniparse.report import handshake_to_dict

PACKAGE = Path(sniparse.__file__).resolve().parent
#: What a child process puts first on sys.path to import this very package.
HOME = PACKAGE.parent
TESTS = Path(__file__).resolve().parent
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".xz", ".zst", ".bz2")
SCENARIO = "fixtures/scenarios/sni_required_reset.pcap"
MYPYC_GROUP = "sniparse__mypyc"  # the library holding all the compiled code (setup.py's group)


# Child processes leave out the meta path finder of an editable sniparse install (setuptools'
# ``__editable___sniparse_*_finder``): it resolves any ``sniparse.*`` module that the imported
# package lacks (such as ``_speedups`` in a build without it) from that other checkout.
_NO_EDITABLE_FINDER = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not str(getattr(f, '__module__', '')).startswith('__editable___sniparse')]; "
)


def _captures(root: Path) -> list[Path]:
    """Capture files under ``root``, as tests/test_fastpath.py lists them."""
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
    )


FIXTURE_CAPTURES = _captures(ROOT / "fixtures")
SCENARIOS = sorted((ROOT / "fixtures" / "scenarios").glob("*.pcap"))


def _loaded() -> dict[str, str]:
    """Where each compiled-or-not module of the package was loaded from."""
    found = {}
    for m in _compiled.COMPILED_MODULES:
        mod = importlib.import_module(f"sniparse.{m}")
        found[m] = str(Path(mod.__file__ or "").resolve())
    return found


def _all_compiled() -> bool:
    return all(not f.endswith(".py") for f in _loaded().values())


COMPILED = _all_compiled()
needs_compiled = pytest.mark.skipif(
    not COMPILED,
    reason="the sniparse modules under test are not compiled (no mypyc build, or "
           "SNIPARSE_PURE=1): nothing to compare the source with",
)


# -- what one side finds -------------------------------------------------------------------


def _snapshot(paths: list[str]) -> list[tuple[Any, ...]]:
    """Per capture: handshakes, handshake dicts, statistics, issues and the whole report."""
    out: list[tuple[Any, ...]] = []
    for path in paths:
        try:
            a = Analysis(path)
            rows = []
            dicts = []
            for h in a:
                rows.append(repr(dataclasses.astuple(h)[:-1]))  # client_hello (last) aside
                dicts.append(json.dumps(handshake_to_dict(h)))
            issues = [repr(i) for i in a.issues.to_list()]
            found: tuple[Any, ...] = (path, rows, dicts, repr(a.stats()), issues,
                                      analyze(path).to_json())
        except SniparseError as e:  # not a capture: the same error on both sides
            found = (path, f"{type(e).__name__}: {e}")
        except Exception as e:
            # A bug (in one build or both); name the capture. The child's traceback shows it.
            raise AssertionError(f"{path}: {type(e).__name__}: {e}") from e
        out.append(found)
    return out


def _cli_outputs(paths: list[str], out_dir: Path) -> list[tuple[Any, ...]]:
    """The CLI's ``--format json`` and ``--flows`` text for each capture (exit code, text)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runner = CliRunner()
    results: list[tuple[Any, ...]] = []
    for i, path in enumerate(paths):
        for j, args in enumerate((["--format", "json"], ["--flows"])):
            target = out_dir / f"{i}-{j}.out"
            r = runner.invoke(cli, [path, *args, "-o", str(target)], prog_name="sniparse")
            text = target.read_text(encoding="utf-8") if target.exists() else None
            error = None if isinstance(r.exception, (SystemExit, type(None))) else repr(
                r.exception)
            results.append((path, args, r.exit_code, error, text))
    return results


# A TLS 1.3 ServerHello record, an alert record and other openings for random segments.
_SERVER_HELLO = (b"\x16\x03\x03\x00Z\x02\x00\x00V\x03\x03" + bytes(range(32))
                 + b"\x00\x13\x01\x00\x00.\x00+\x00\x02\x03\x04\x003\x00$\x00\x1d\x00 "
                 + bytes(32))
_OTHER_PAYLOADS = (_SERVER_HELLO, _SERVER_HELLO[:20], b"\x15\x03\x03\x00\x02\x02\x70",
                   b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", b"EHLO x\r\nSTARTTLS\r\n", b"\x80")


def _random_segments(cases: int) -> list[tuple[Any, ...]]:
    """Per case, what a small FlowTable makes of random TCP segments between two endpoints
    (flags, sequence numbers in and out of order, ClientHellos from fixtures/hellos whole and
    cut, ServerHello, alert, other protocols, snaplen cuts): (handshakes, issues) or the error.
    The same cases on every run and in both processes (a fixed seed)."""
    from sniparse.errors import Issues
    from sniparse.flows import FlowTable
    from sniparse.tcp import ACK, FIN, PSH, RST, SYN, Segment

    flags = [SYN, SYN | ACK, ACK, ACK | PSH, FIN | ACK, RST, RST | ACK, SYN | FIN]
    hellos = [p.read_bytes() for p in sorted((ROOT / "fixtures" / "hellos").glob("*.bin"))]
    cip, sip = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    rng = random.Random(443)
    out: list[tuple[Any, ...]] = []
    for _ in range(cases):
        table = FlowTable(Issues(), max_flows=2, stream_cap=2048)
        ts = 1_700_000_000 * 10**9
        nxt = {side: rng.choice([0, rng.getrandbits(32)]) for side in (True, False)}
        found: list[Any] = []
        try:
            for i in range(rng.randrange(1, 30)):
                ts += 1_000_000
                client = rng.random() < 0.5
                h = rng.choice(hellos)
                payload = rng.choice([b"", b"", rng.randbytes(rng.randrange(1, 64)), h,
                                      h[:rng.randrange(1, len(h))], h[rng.randrange(1, len(h)):],
                                      rng.choice(_OTHER_PAYLOADS)])
                seq = rng.choice([nxt[client], nxt[client], 0, rng.getrandbits(32)])
                nxt[client] = (seq + len(payload)) & 0xFFFFFFFF
                src, dst, sport, dport = (cip, sip, 1234, 443) if client else (sip, cip, 443, 1234)
                wire = len(payload) + rng.choice([0, 0, rng.randrange(200)])
                found += table.feed(Segment(i + 1, ts, 4, src, dst, sport, dport, seq, 0,
                                            rng.choice(flags), 0, payload, wire, b"", None, ()))
                if i % 7 == 6:
                    found += table.expire(ts)
            found += table.finish()
            out.append(([repr(dataclasses.astuple(h)[:-1]) for h in found],
                        [repr(i) for i in table.issues.to_list()]))
        except Exception as e:  # noqa: BLE001 - compared (and then refused) below
            out.append((f"{type(e).__name__}: {e}",))
    return out


def _child(job_file: str) -> None:
    """The child's side (run with ``SNIPARSE_PURE=1``): the same work, pickled."""
    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    result = {
        "loaded": _loaded(),
        "compiled": [m for m in _compiled.COMPILED_MODULES if _compiled.is_compiled(m)],
        "package": str(PACKAGE),
        "snapshot": _snapshot(job["paths"]),
        "cli": _cli_outputs(job["cli"], Path(job["out"]) / "cli"),
        "segments": _random_segments(job["segments"]),
    }
    with open(Path(job["out"]) / "result.pickle", "wb") as f:
        pickle.dump(result, f)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNIPARSE_")}
    env.update(extra)
    return env


def _agree(tmp_path: Path, paths: list[Path], cli_paths: list[Path], segments: int = 0) -> None:
    """Run the pure child and the compiled parent side by side; assert they agree."""
    child_dir = tmp_path / "pure"
    child_dir.mkdir()
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"paths": [str(p) for p in paths],
                               "cli": [str(p) for p in cli_paths], "segments": segments,
                               "out": str(child_dir)}))
    code = _NO_EDITABLE_FINDER + (f"sys.path[:0] = [{str(HOME)!r}, {str(TESTS)!r}]; "
                                  f"import test_compiled; test_compiled._child({str(job)!r})")
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=_clean_env(SNIPARSE_PURE="1"), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        mine = _snapshot([str(p) for p in paths])
        my_cli = _cli_outputs([str(p) for p in cli_paths], tmp_path / "compiled")
        my_segments = _random_segments(segments)
        _, err = child.communicate(timeout=600)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, f"pure-Python child failed:\n{err[-3000:]}"
    with open(child_dir / "result.pickle", "rb") as f:
        theirs = pickle.load(f)

    # The child ran this package's source, the parent its compiled modules.
    assert theirs["package"] == str(PACKAGE)
    assert theirs["compiled"] == []
    assert all(_compiled.is_compiled(m) for m in _compiled.COMPILED_MODULES)
    for m, where in theirs["loaded"].items():
        assert where == str(PACKAGE / f"{m}.py"), f"pure child loaded {m} from {where}"
    for m, where in _loaded().items():
        assert not where.endswith(".py"), f"parent loaded {m} from its source ({where})"
    # ... from this checkout's library, not another one found through an editable install.
    group = getattr(sys.modules.get(MYPYC_GROUP), "__file__", None) or ""
    assert Path(group).resolve().parent == HOME, f"compiled code loaded from {group!r}"

    assert len(mine) == len(theirs["snapshot"]) == len(paths)
    names = ("handshakes", "handshake dicts", "statistics", "issues", "report JSON")
    for got, want in zip(mine, theirs["snapshot"]):
        path = got[0]
        if len(got) != len(want) or len(got) == 2:
            assert got == want, f"{path}: compiled and pure differ in whether / how it fails"
            continue
        for name, g, w in zip(names, got[1:], want[1:]):
            if g != w:
                detail = ""
                if isinstance(g, list) and isinstance(w, list):
                    first = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b),
                                 min(len(g), len(w)))
                    detail = (f" (lengths {len(g)} / {len(w)}; first difference at {first}:"
                              f"\ncompiled {g[first] if first < len(g) else None}"
                              f"\npure     {w[first] if first < len(w) else None})")
                raise AssertionError(f"{path}: {name} differ between compiled and pure{detail}")
    assert len(my_cli) == len(theirs["cli"])
    for got, want in zip(my_cli, theirs["cli"]):
        assert got[2] == 0 and got[3] is None and got[4], f"CLI failed: {got[:4]}"
        assert got == want, f"{got[0]} {' '.join(got[1])}: CLI output differs"
    assert len(my_segments) == len(theirs["segments"]) == segments
    for case, (got, want) in enumerate(zip(my_segments, theirs["segments"])):
        assert got == want, f"random segments, case {case}: compiled {got}\npure {want}"
        assert len(got) == 2, f"random segments, case {case}: FlowTable raised {got[0]}"


@needs_compiled
def test_fixtures_compiled_and_pure_agree(tmp_path: Path) -> None:
    assert len(FIXTURE_CAPTURES) >= 20 and len(SCENARIOS) >= 15
    _agree(tmp_path, FIXTURE_CAPTURES, SCENARIOS)


@pytest.mark.corpus
@needs_compiled
def test_corpus_compiled_and_pure_agree(corpus_dir: Path, tmp_path: Path) -> None:
    files = _captures(corpus_dir / "files")
    assert files
    _agree(tmp_path, files, [])


def _mutants(out_dir: Path, per_capture: int = 6) -> list[Path]:
    """Damaged copies of the uncompressed fixture captures (bytes flipped, a span zeroed, the
    tail cut; the file header kept), the same on every run: odd paths through the flow and
    TLS code, where a compiled module's run-time type checks could fail and the source not."""
    rng = random.Random(20261129)
    out_dir.mkdir()
    paths: list[Path] = []
    for src in FIXTURE_CAPTURES:
        if not src.name.endswith((".pcap", ".pcapng", ".cap")):
            continue
        data = src.read_bytes()
        for k in range(per_capture):
            b = bytearray(data)
            if len(b) > 64:
                kind = k % 3
                if kind == 0:
                    for _ in range(rng.randint(1, 6)):
                        b[rng.randrange(32, len(b))] ^= 1 << rng.randrange(8)
                elif kind == 1:
                    at = rng.randrange(32, len(b) - 16)
                    b[at:at + 16] = bytes(16)
                else:
                    del b[rng.randrange(32, len(b)):]
            path = out_dir / f"{len(paths):04d}-{src.name}"
            path.write_bytes(bytes(b))
            paths.append(path)
    return paths


@needs_compiled
def test_random_segments_compiled_and_pure_agree(tmp_path: Path) -> None:
    _agree(tmp_path, [], [], segments=3000)


@needs_compiled
def test_damaged_fixtures_compiled_and_pure_agree(tmp_path: Path) -> None:
    damaged = _mutants(tmp_path / "damaged")
    assert len(damaged) >= 300
    _agree(tmp_path, damaged, [])


# -- builds without mypyc, without any extension, with a failing compiler -------------------

EXT_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _extension_files(root: Path) -> list[str]:
    """Extension modules in a checkout (its top level and the package), relative names."""
    found = [p for p in [*root.iterdir(), *(root / "sniparse").iterdir()]
             if p.is_file() and p.name.endswith(EXT_SUFFIXES)]
    return sorted(str(p.relative_to(root)) for p in found)


def _is_mypyc_output(name: str) -> bool:
    stem = Path(name).name.split(".", 1)[0]
    return stem == MYPYC_GROUP or stem in _compiled.COMPILED_MODULES


def _source_copy(dst: Path) -> Path:
    """The checkout's source files (tracked and new, not ignored) copied to ``dst``."""
    if shutil.which("git") is None or not (ROOT / "setup.py").is_file():
        pytest.skip("needs the source checkout and git")
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed: setup.py cannot run")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=False,
    )
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.decode(errors='replace').strip()}")
    for name in listed.stdout.decode().split("\0"):
        src = ROOT / name
        if name and src.is_file():  # a tracked file deleted in the work tree: not copied
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst / name)
    return dst


def _build(tree: Path, **env: str) -> subprocess.CompletedProcess[str]:
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree, env=_clean_env(**env), capture_output=True, text=True, timeout=900, check=False,
    )
    assert build.returncode == 0, f"build failed:\n{build.stdout[-2000:]}\n{build.stderr[-3000:]}"
    return build


def _expected_ndjson() -> str:
    r = CliRunner().invoke(cli, [str(ROOT / SCENARIO), "--format", "ndjson"],
                           prog_name="sniparse")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("\n") >= 1
    return r.stdout


_PROBE = _NO_EDITABLE_FINDER + (
    "import json, sniparse, sniparse._compiled as c, sniparse._fastpath as f, sniparse.cli; "
    "print(json.dumps({'where': [getattr(m, '__file__', None) or '' for n, m in "
    "sorted(sys.modules.items()) if n.startswith('sniparse')], "
    "'compiled': [m for m in c.COMPILED_MODULES if c.is_compiled(m)], "
    "'scan': f.IMPLEMENTATION}))"
)
_CLI = _NO_EDITABLE_FINDER + (
    "import runpy; runpy.run_module('sniparse', run_name='__main__', alter_sys=True)"
)


def _run_copy(tree: Path) -> tuple[str, str]:
    """(which bulk scan the copy uses, the scenario's ndjson), run from the copy with no
    SNIPARSE_* settings: the current directory comes first on sys.path, so the copy is the
    package imported."""
    env = _clean_env()
    probe = json.loads(subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=tree, env=env, capture_output=True, text=True,
        check=True,
    ).stdout)
    inside = tree.resolve()
    outside = [w for w in probe["where"] if not Path(w).resolve().is_relative_to(inside)]
    assert not outside, f"modules imported from outside the copy: {outside}"
    assert probe["compiled"] == [], "the copy loaded compiled modules"
    run = subprocess.run(
        [sys.executable, "-c", _CLI, SCENARIO, "--format", "ndjson"],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    return str(probe["scan"]), run.stdout


def _speedups_built_here() -> bool:
    """The package under test has its C extension: a compiler works on this machine."""
    return any(n.startswith("sniparse/_speedups.") for n in _extension_files(HOME))


def test_build_without_mypyc(tmp_path: Path) -> None:
    tree = _source_copy(tmp_path / "src")
    _build(tree, SNIPARSE_NO_MYPYC="1")
    built = _extension_files(tree)
    assert not [n for n in built if _is_mypyc_output(n)], built
    if _speedups_built_here():
        assert [n for n in built if n.startswith("sniparse/_speedups.")], built
    implementation, ndjson = _run_copy(tree)
    assert implementation == ("c" if _speedups_built_here() else "python")
    assert ndjson == _expected_ndjson()


def test_build_without_any_extension(tmp_path: Path) -> None:
    tree = _source_copy(tmp_path / "src")
    _build(tree, SNIPARSE_NO_EXTENSION="1")
    assert _extension_files(tree) == []
    implementation, ndjson = _run_copy(tree)
    assert implementation == "python"
    assert ndjson == _expected_ndjson()


@pytest.mark.slow  # mypyc still translates every module before the compiler fails (~30 s)
def test_build_with_a_failing_compiler(tmp_path: Path) -> None:
    if shutil.which("false") is None:
        pytest.skip("no 'false' command to stand in for a broken compiler")
    tree = _source_copy(tmp_path / "src")
    # Compiled modules an earlier in-place build left behind: a failed build must remove
    # them, or their old code would shadow the source (and these fakes would not import).
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or EXT_SUFFIXES[0]
    stale = [tree / f"{MYPYC_GROUP}{suffix}"]
    stale += [tree / "sniparse" / f"{m}{suffix}" for m in _compiled.COMPILED_MODULES]
    for p in stale:
        p.write_bytes(b"stale")
    build = _build(tree, CC="false")
    assert "warning:" in build.stderr and "pure-Python" in build.stderr, build.stderr[-3000:]
    assert [n for n in _extension_files(tree) if _is_mypyc_output(n)] == []
    implementation, ndjson = _run_copy(tree)
    assert implementation == "python"
    assert ndjson == _expected_ndjson()


# -- stale compiled code in an in-place checkout --------------------------------------------


def _mtime(p: Path) -> float:
    return p.stat().st_mtime


def _loadable(directory: Path) -> dict[str, Path]:
    """Extension modules in ``directory`` that this interpreter would import, by module name
    (not another Python version's builds)."""
    found = {}
    for p in directory.iterdir():
        for suffix in EXT_SUFFIXES:
            name = p.name[: -len(suffix)]
            if p.name.endswith(suffix) and name.isidentifier():
                found[name] = p
                break
    return found


def test_no_compiled_module_is_older_than_its_source() -> None:
    if not (HOME / "setup.py").is_file():
        pytest.skip(f"sniparse is installed, not built in place ({PACKAGE})")
    modules = _loadable(PACKAGE)
    group = _loadable(HOME).get(MYPYC_GROUP)
    if not modules and group is None:
        pytest.skip("nothing is compiled in this checkout")
    # --force: without it, an edit that leaves mypyc's C unchanged (a comment) relinks
    # nothing, and the library keeps its old time.
    rebuild = "rebuild with: python setup.py build_ext --inplace --force"

    shims = {m for m in modules if m in _compiled.COMPILED_MODULES}
    # A module dropped from COMPILED_MODULES but still built would run its old code.
    unknown = sorted(set(modules) - shims - {"_speedups"})
    assert not unknown, f"compiled modules setup.py no longer builds: {unknown}"
    if shims or group is not None:
        assert shims == set(_compiled.COMPILED_MODULES) and group is not None, (
            f"a partial set of mypyc modules: {sorted(shims)}, group library {group}; {rebuild}")
        # The compiled code of every module lives in the group library (the per-module
        # files are small stubs that setuptools does not rebuild when they are unchanged).
        older = [m for m in _compiled.COMPILED_MODULES
                 if _mtime(PACKAGE / f"{m}.py") > _mtime(group)]
        assert not older, f"edited since the last mypyc build: {older}; {rebuild}"
    if "_speedups" in modules:
        assert _mtime(PACKAGE / "_speedups.c") <= _mtime(modules["_speedups"]), (
            f"sniparse/_speedups.c edited since its build; {rebuild}")


def test_pure_switch_in_a_bare_interpreter(tmp_path: Path) -> None:
    # SNIPARSE_PURE installs an import finder; it must not import anything while it is asked
    # about an import. `python -S` starts without `site`, so importlib.util is not loaded yet
    # (an installed package meets this; a development checkout's editable finder hides it).
    package_parent = str(Path(sniparse.__file__).resolve().parent.parent)
    code = (f"import sys; sys.path.insert(0, {package_parent!r}); "
            "assert 'importlib.util' not in sys.modules; "
            "import sniparse, sniparse.flows as f, sniparse._compiled as c; "
            "print(f.__file__, c.is_compiled())")
    env = dict(os.environ, SNIPARSE_PURE="1")
    r = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True,
                       text=True, cwd=tmp_path, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    where, compiled = r.stdout.split()
    assert where.endswith("flows.py") and compiled == "False"
