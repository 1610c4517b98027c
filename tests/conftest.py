"""Shared test helpers: where the fixtures and the public corpus live."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
BENCH = ROOT / "benchmarks"


def corpus_path() -> Path:
    """``../shared/corpus`` beside the checkout, or ``$SNIPARSE_CORPUS``."""
    env = os.environ.get("SNIPARSE_CORPUS")
    if env:
        return Path(env)
    return ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The project's own fixture captures."""
    return FIXTURES


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The public corpus; the test is skipped when it is absent."""
    p = corpus_path()
    if not (p / "MANIFEST.tsv").is_file():
        pytest.skip(f"corpus not found at {p}")
    return p


def module_from_path(name: str, path: Path, *, register: bool = False) -> ModuleType:
    """The module in the file ``path``, loaded under ``name`` (also put in ``sys.modules``
    when ``register``: dataclasses look their defining module up there)."""
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def gen_capture() -> ModuleType:
    """``benchmarks/gen_capture.py``, the project's own capture generator."""
    import sys

    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("gen_capture")
    finally:
        sys.path.remove(str(BENCH))


def source_module(name: str, *, as_name: str | None = None) -> ModuleType:
    """A fresh copy of ``sniparse.<name>`` loaded from its ``.py`` source, whether or not the
    installed module is compiled: for tests that replace a module's internals (a compiled
    module's internal calls do not go through its namespace). With ``as_name`` the copy is
    registered in ``sys.modules`` under that name (records of its classes then pickle)."""
    import sniparse

    path = Path(sniparse.__file__).resolve().parent / f"{name}.py"
    if as_name is not None:
        return module_from_path(as_name, path, register=True)
    return module_from_path(f"sniparse._source_{name}", path)
