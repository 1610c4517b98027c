"""Shared parts of the fuzz targets: seed inputs and the hypothesis fallback.

Not a test module (no ``test_`` prefix); the targets are run by hand, see README.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "fixtures"


def instrumented() -> AbstractContextManager[object]:
    """Coverage instrumentation of the modules imported inside it, when atheris is there."""
    try:
        import atheris  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return nullcontext()
    return atheris.instrument_imports(include=["sniparse"])  # type: ignore[no-any-return]


def seed_files(patterns: Iterable[str], max_size: int = 64_000) -> list[Path]:
    """Fixture files matching ``patterns`` (globs under fixtures/), small enough to mutate.

    ``$FUZZ_SEEDS`` (a directory, searched recursively) adds more seeds of at most
    ``max_size`` bytes, e.g. the public corpus's captures, read in place.
    """
    out: list[Path] = []
    for pat in patterns:
        out.extend(p for p in sorted(FIXTURES.glob(pat)) if p.stat().st_size <= max_size)
    extra = os.environ.get("FUZZ_SEEDS")
    if extra:
        out.extend(p for p in sorted(Path(extra).rglob("*"))
                   if p.is_file() and p.stat().st_size <= max_size)
    return out


def seed_corpus_dir(name: str, seeds: list[Path], prefix: bytes = b"") -> str:
    """A writable libFuzzer corpus directory (under $FUZZ_WORKDIR or /tmp) primed with seeds.

    libFuzzer adds the inputs it finds interesting to this directory, so a later run starts
    where the previous one stopped.
    """
    base = Path(os.environ.get("FUZZ_WORKDIR", "/tmp/sniparse-fuzz")) / name
    base.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        dst = base / ("seed_" + "_".join(s.parts[-3:]))
        if not dst.exists():
            dst.write_bytes(prefix + s.read_bytes())
    return str(base)


def run(
    name: str, target: Callable[[bytes], None], seeds: list[Path], prefix: bytes = b""
) -> None:
    """Run ``target`` under atheris when it is installed, otherwise under hypothesis.

    atheris: the usual libFuzzer flags pass through (``-max_total_time=600``,
    ``-timeout=10``, ``-rss_limit_mb=2048``...); extra positional directories are used as
    corpora; without one, a corpus directory under $FUZZ_WORKDIR (default /tmp/sniparse-fuzz)
    primed with the fixture seeds is used.

    hypothesis fallback: ``FUZZ_EXAMPLES`` (default 100000) examples, mutating the seeds.
    ``prefix`` is put before each seed (a target that reads a selector byte first).
    """
    try:
        import atheris  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        atheris = None
    if atheris is not None:
        argv = list(sys.argv)
        if not any(not a.startswith("-") for a in argv[1:]):
            argv.append(seed_corpus_dir(name, seeds, prefix))
        atheris.Setup(argv, target)
        atheris.Fuzz()
        return
    _hypothesis_fallback(target, seeds, prefix)


def _hypothesis_fallback(
    target: Callable[[bytes], None], seeds: list[Path], prefix: bytes
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    blobs = [prefix + s.read_bytes() for s in seeds] or [prefix]
    n = int(os.environ.get("FUZZ_EXAMPLES", "100000"))

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(blobs)))
        for _ in range(draw(st.integers(0, 8))):
            op = draw(st.integers(0, 3))
            pos = draw(st.integers(0, max(len(data), 1) - 1)) if data else 0
            if op == 0 and data:
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == 1 and data:
                data[pos] = draw(st.integers(0, 255))
            elif op == 2:
                data[pos:pos] = draw(st.binary(max_size=16))
            else:
                del data[pos : pos + draw(st.integers(1, 64))]
        return bytes(data)

    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(mutated(), st.binary(max_size=4096)))
    def fuzz(data: bytes) -> None:
        target(data)

    fuzz()
