"""Shared test helpers: where the fixtures and the public corpus live."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


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


def source_module(name: str) -> ModuleType:
    """A fresh copy of ``sniparse.<name>`` loaded from its ``.py`` source, whether or not the
    installed module is compiled: for tests that replace a module's internals (a compiled
    module's internal calls do not go through its namespace)."""
    import sniparse

    path = Path(sniparse.__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"sniparse._source_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
