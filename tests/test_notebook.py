"""examples/notebook.ipynb runs top to bottom on a bundled fixture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"
FIXTURE = ROOT / "fixtures" / "scenarios" / "sni_required_reset.pcap"


def test_notebook_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("pandas")
    mpl = pytest.importorskip("matplotlib")
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE.name} not recorded yet")
    try:
        import sniparse.analyze  # noqa: F401
    except ImportError:
        pytest.skip("pipeline not importable yet")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    assert cells, "the notebook has no code"
    monkeypatch.chdir(NOTEBOOK.parent)
    ns: dict[str, Any] = {"__name__": "__notebook__"}
    for i, src in enumerate(cells):
        exec(compile(src, f"{NOTEBOOK.name}[cell {i}]", "exec"), ns)  # noqa: S102
    report = ns["report"]
    assert len(report.handshakes) > 0
    assert "<table>" in report._repr_html_() or "<p" in report._repr_html_()
    assert ns["df"].shape[0] == len(report.handshakes)
    assert ns["fig"].axes
    plt.close("all")


def test_notebook_is_valid_and_clean() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    # Committed without outputs, so the diff stays reviewable and nothing stale is shown.
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None
