"""The CLI's direct ndjson row writer gives exactly the JSON encoder's text."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import pytest

import sniparse
from sniparse import cli
from sniparse.errors import SniparseError
from sniparse.flows import Handshake
from sniparse.report import handshake_to_dict


def _encoded(h: Handshake) -> str:
    return cli._ENCODER.encode(handshake_to_dict(h)) + "\n"


def _captures(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and (".pcap" in p.name or p.suffix == ".cap"))


def _check_file(path: Path) -> int:
    try:
        hs = list(sniparse.iter_handshakes(str(path)))
    except SniparseError:
        return 0
    for h in hs:
        assert cli._ndjson_line(h) == _encoded(h), (path, h)
    return len(hs)


def test_rows_match_encoder_on_fixtures(fixtures_dir: Path) -> None:
    total = sum(_check_file(p) for p in _captures(fixtures_dir))
    assert total > 50


def test_rows_match_encoder_on_corpus(corpus_dir: Path) -> None:
    with open(corpus_dir / "MANIFEST.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    total = sum(_check_file(corpus_dir / r["relative_path"]) for r in rows)
    assert total > 100


@pytest.fixture(scope="module")
def sample(fixtures_dir: Path) -> Handshake:
    for p in _captures(fixtures_dir):
        try:
            for h in sniparse.iter_handshakes(str(p)):
                if h.client_hello is not None and h.alpn:
                    return h
        except SniparseError:
            continue
    pytest.skip("no fixture handshake with ALPN")


@pytest.mark.parametrize(
    "changes",
    [
        {"sni": "caf\u00e9.example", "detail": 'quote " back\\slash \n\t\x00\x1f \u2028'},
        {"sni": "\udcff-lone-surrogate"},
        {"outcome_ms": math.nan},
        {"outcome_ms": math.inf},
        {"outcome_ms": -math.inf},
        {"outcome_ms": 1e-7},
        {"outcome_ms": 123456789.125},
        {"outcome_ms": 0.0, "vlan": None, "hrr": True, "ech": False},
        {"ts_ns": -1},
        {"ts_ns": 2**70},
        {"ts_ns": 0, "versions": (), "alpn": ("h2", "\u00e9", "")},
        {"sni_raw": b"\x00\xffab", "alpn": (b"\x01\x02",)},
        {"alpn": (1, 2.5, None, True)},
        {"alpn": ((1, 2),)},
        {"vlan": (10, 20)},
        {"detail": 3.5},
        {"segments": True},
    ],
)
def test_rows_match_encoder_on_odd_values(sample: Handshake, changes: dict[str, object]) -> None:
    # Handshake is frozen: fill the instance dict of a copy, as the flow table does.
    h = dataclasses.replace(sample)
    h.__dict__.update(changes)
    assert cli._ndjson_line(h) == _encoded(h)
