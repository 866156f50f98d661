"""Every command is discoverable: --help with an example, and a line in the README.

The commands are found by walking the Typer app (groups and their subcommands), so a new
command or subcommand without an example in its docstring fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import typer.core

from gdpr_sweep import __version__
from gdpr_sweep.cli import app
from gdpr_sweep.cli.root import subcommands
from tests.conftest import run_cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def command_paths() -> list[str]:
    """Every command and group below the app, as typed after `gdpr-sweep` ("audit rotate-key")."""

    def walk(command: object, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = [path] if path else []
        if isinstance(command, typer.core.TyperGroup):
            for name, sub in subcommands(command).items():
                found += walk(sub, (*path, name))
        return found

    return sorted(" ".join(path) for path in walk(typer.main.get_command(app), ()))


def test_the_walk_finds_groups_and_their_subcommands():
    paths = set(command_paths())
    assert {"run", "hold", "hold add", "hold release", "audit", "audit rotate-key"} <= paths
    for group in ("hold", "audit"):
        assert any(path.startswith(f"{group} ") for path in paths)


@pytest.mark.parametrize("name", command_paths())
def test_every_command_has_help_with_an_example_and_is_in_the_readme(name):
    result = run_cli(*name.split(), "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    # The example shows this command (Rich wraps long lines, so compare word by word).
    example = " ".join(result.stdout.partition("Example")[2].split())
    assert f"gdpr-sweep {name}" in example
    listed = f"gdpr-sweep {name}" in README
    if " " in name:  # a group's subcommands share a row of the command table: `audit show RUN`
        listed = listed or f"`{name}" in README
    assert listed


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
