"""The README documents what the code offers: every CLI option, every output field and value,
and its first two commands are the documented set-up commands."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sniparse.cli import cli
from sniparse.flows import Handshake
from sniparse.report import OUTCOMES, SNI_STATUSES, UNKNOWN_REASONS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def first_commands() -> list[str]:
    m = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert m is not None, "README has no sh code block"
    assert README.index(m.group(0)) < README.index("\n## "), "set-up block is not at the top"
    return [line for line in m.group(1).splitlines() if line.strip()]


def test_first_two_commands() -> None:
    lines = first_commands()
    assert len(lines) >= 2
    m = re.fullmatch(r"pip install \. && sniparse (fixtures/\S+)", lines[0])
    assert m is not None, lines[0]
    assert lines[1] == "pip install -e '.[test]' && pytest"


def test_first_command_fixture_runs() -> None:
    m = re.fullmatch(r"pip install \. && sniparse (fixtures/\S+)", first_commands()[0])
    assert m is not None
    fixture = ROOT / m.group(1)
    if not fixture.exists():
        pytest.skip(f"{m.group(1)} not recorded yet")
    try:
        import sniparse.analyze  # noqa: F401
    except ImportError:
        pytest.skip("pipeline not importable yet")
    r = CliRunner().invoke(cli, [str(fixture)], prog_name="sniparse")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("VERDICT:")


def all_commands() -> list[tuple[str, click.Command]]:
    assert isinstance(cli, click.Group)
    return sorted(cli.commands.items())


def test_every_option_documented() -> None:
    missing = []
    for name, cmd in all_commands():
        for p in cmd.params:
            if not isinstance(p, click.Option):
                continue
            for opt in [*p.opts, *p.secondary_opts]:
                if not re.search(r"`" + re.escape(opt) + r"[ `]", README):
                    missing.append(f"{name} {opt}")
    assert not missing, f"options missing from README.md: {missing}"


def test_every_command_documented() -> None:
    for name, _ in all_commands():
        if name == "analyze":
            assert "sniparse CAPTURE..." in README
        else:
            assert f"sniparse {name}" in README, name


def test_every_option_has_help_with_example() -> None:
    for name, cmd in all_commands():
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name not in ("help", "version"):
                assert p.help and "Example" in p.help, f"{name} {p.opts}"


def test_output_reference_complete() -> None:
    names = [f.name for f in fields(Handshake) if f.name != "client_hello"] + ["ts"]
    undocumented = [n for n in names if f"`{n}`" not in README]
    assert not undocumented, f"Handshake fields missing from README.md: {undocumented}"
    for value in (*SNI_STATUSES, *OUTCOMES, *UNKNOWN_REASONS):
        assert f"| `{value}` |" in README, value


def test_sample_output_is_current() -> None:
    m = re.search(r"Sample output \(`sniparse (\S+)`.*?```\n(.*?)```", README, re.DOTALL)
    assert m is not None, "README has no sample output"
    fixture = ROOT / m.group(1)
    if not fixture.exists():
        pytest.skip(f"{m.group(1)} not recorded yet")
    r = CliRunner().invoke(cli, [str(fixture)], prog_name="sniparse")
    assert r.exit_code == 0
    assert r.stdout.rstrip("\n") == m.group(2).rstrip("\n")
