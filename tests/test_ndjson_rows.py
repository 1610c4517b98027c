"""The direct ndjson / CSV row writers give exactly the JSON encoder's and csv.writer's text."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

import pytest

import sniparse
from sniparse import report
from sniparse.errors import SniparseError
from sniparse.flows import Handshake
from sniparse.report import HANDSHAKE_COLUMNS, handshake_to_dict


def _encoded(h: Handshake) -> str:
    return report._ENCODER.encode(handshake_to_dict(h)) + "\n"


def _csv_value(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ";".join(str(x) for x in v)
    return str(v)


def _written(h: Handshake) -> str:
    """The CSV line csv.writer writes for ``handshake_to_dict(h)``."""
    d = handshake_to_dict(h)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_csv_value(d[c]) for c in HANDSHAKE_COLUMNS])
    return buf.getvalue()


def _check_rows(h: Handshake) -> None:
    assert report._ndjson_row(h) == _encoded(h), h
    assert report._csv_row(h) == _written(h), h


def _captures(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and (".pcap" in p.name or p.suffix == ".cap"))


def _check_file(path: Path) -> int:
    try:
        hs = list(sniparse.iter_handshakes(str(path)))
    except SniparseError:
        return 0
    for h in hs:
        _check_rows(h)
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
        {"sni": 'a,b"c', "detail": "line\nbreak", "history": "cr\rhere"},
        {"detail": "nul\x00", "alpn": ("x,y", 'q"')},
        {"detail": "", "sni": " spaced ", "alpn": ("",)},
        {"alpn": (True, None)},
        {"vlan": (1.5,)},
        {"client_port": 2**80, "alert": -3},
        {"sni": type("S", (str,), {})("subclass")},
        {"frame": -1, "ts_ns": 2**63},
    ],
)
def test_rows_match_encoder_on_odd_values(sample: Handshake, changes: dict[str, object]) -> None:
    # Handshake is frozen: fill the instance dict of a copy, as the flow table does.
    h = dataclasses.replace(sample)
    h.__dict__.update(changes)
    _check_rows(h)


def test_csv_header_is_the_writers() -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(HANDSHAKE_COLUMNS)
    assert report._CSV_HEADER == buf.getvalue()
