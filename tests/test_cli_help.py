"""Every command is discoverable: --help with an example, and a line in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from gdpr_sweep import __version__
from gdpr_sweep.cli import app
from tests.conftest import run_cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def command_names() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", command_names())
def test_every_command_has_help_with_an_example_and_is_in_the_readme(name):
    result = run_cli(name, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"gdpr-sweep {name}" in README


def test_version():
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"gdpr-sweep {__version__}"


def test_unknown_command_is_one_line_exit_2():
    result = run_cli("sweep-everything")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")


def test_state_head_constant_matches_the_migrations():
    from gdpr_sweep.state.migrate import HEAD, head_revision

    assert head_revision() == HEAD
