"""Shared test helpers: where the fixtures and the public corpus live."""

from __future__ import annotations

import os
from pathlib import Path

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
