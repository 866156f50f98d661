"""Shell completion through Typer's own machinery (the `_GDPR_SWEEP_COMPLETE` protocol
the installed completion scripts speak), and help that names values in words."""

from __future__ import annotations

import re

import pytest
import typer
import typer.core
from typer.testing import CliRunner

from gdpr_sweep.cli import app
from gdpr_sweep.demo.build import write_demo
from tests.conftest import run_cli
from tests.test_cli_help import command_paths

DEMO_RULES = {
    "counselling-anonymise",
    "outplacement-anonymise",
    "consultant-mail-delete",
    "invoice-delete",
    "cctv-delete",
}


def complete(line: str, shell: str = "bash", env: dict[str, str] | None = None) -> list[str]:
    """What the shell would offer for the last word of `line` (after a space: a new word)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    result = CliRunner().invoke(
        app,
        [],
        prog_name="gdpr-sweep",
        env={
            "_GDPR_SWEEP_COMPLETE": f"complete_{shell}",
            "COMP_WORDS": line,
            "COMP_CWORD": str(cword),
            "_TYPER_COMPLETE_ARGS": line,
            **(env or {}),
        },
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return [line for line in result.stdout.splitlines() if line]


@pytest.fixture
def demo_config(tmp_path):
    config, _database = write_demo(tmp_path / "demo")
    return str(config)


def test_rule_ids_complete_from_the_config_on_the_command_line(demo_config):
    offered = complete(f"gdpr-sweep plan -c {demo_config} --rule ")
    assert set(offered) >= DEMO_RULES
    assert complete(f"gdpr-sweep plan --config {demo_config} -r cou") == ["counselling-anonymise"]
    assert set(complete(f"gdpr-sweep plan -c {demo_config} -r co")) == {
        "counselling-anonymise",
        "consultant-mail-delete",
    }


def test_database_names_complete_for_every_command_that_takes_one(demo_config):
    for command in ("plan", "run", "check", "scan", "erase", "export", "hold add"):
        assert complete(f"gdpr-sweep {command} -c {demo_config} --database ") == ["demo"], command
    assert complete(f"gdpr-sweep hold add -c {demo_config} -d ") == ["demo"]


def test_tables_kinds_and_log_formats_complete(demo_config):
    tables = complete(f"gdpr-sweep hold add -c {demo_config} -d demo --table ")
    assert {"cctv_recording", "invoice", "counselling_case"} <= set(tables)
    assert complete(f"gdpr-sweep hold add -c {demo_config} -t cc") == ["cctv_recording"]
    assert set(complete(f"gdpr-sweep erase -c {demo_config} --subject ")) == {"email=", "cpr="}
    assert complete("gdpr-sweep --log-format ") == ["text", "json"]
    assert complete("gdpr-sweep --log-format j") == ["json"]
    assert "debug" in complete("gdpr-sweep --log-level ")


def test_without_c_the_default_config_is_used(demo_config, tmp_path):
    # $GDPR_SWEEP_CONFIG, as the commands read it ...
    env = {"GDPR_SWEEP_CONFIG": demo_config}
    assert set(complete("gdpr-sweep plan --rule ", env=env)) >= DEMO_RULES
    # ... else ./gdpr-sweep.toml (the working directory is the test's tmp_path).
    (tmp_path / "gdpr-sweep.toml").write_bytes((tmp_path / "demo" / "gdpr-sweep.toml").read_bytes())
    assert set(complete("gdpr-sweep run --database ")) == {"demo"}


def test_zsh_gets_the_rule_ids_with_what_they_do(demo_config):
    (line,) = complete(f"gdpr-sweep plan -c {demo_config} --rule cctv", shell="zsh")
    assert '"cctv-delete":"delete cctv_recording"' in line


@pytest.mark.parametrize(
    "config_text",
    [
        None,  # no such file
        "this is [not toml",
        '[sweep]\nunknown_key = 1\n[databases.x]\nurl = "sqlite://"\n',
        '[sweep]\n[databases.x]\nurl = "sqlite://"\n[[rules]]\nid = "TODO"\n',
    ],
)
def test_a_broken_config_completes_nothing_and_prints_no_error(tmp_path, config_text):
    path = tmp_path / "broken.toml"
    if config_text is not None:
        path.write_text(config_text, encoding="utf-8")
    for option in ("--rule", "--database"):
        assert complete(f"gdpr-sweep plan -c {path} {option} ") == []
    assert complete(f"gdpr-sweep hold add -c {path} -t ") == []
    assert complete(f"gdpr-sweep erase -c {path} --subject ") == []


def options_of_every_command() -> list[tuple[str, object]]:
    found = []

    def walk(command: object, path: str) -> None:
        for param in getattr(command, "params", ()):
            found.append((path, param))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def test_every_option_that_takes_a_value_names_it_in_a_word():
    for path, param in options_of_every_command():
        if getattr(param, "is_flag", False):
            continue
        metavar = getattr(param, "metavar", None)
        assert metavar, f"{path}: {param.opts} has no metavar"  # type: ignore[attr-defined]
        assert re.fullmatch(r"[A-Z]+([=/][A-Z]+)?|[a-z]+(\|[a-z]+)+", metavar), (path, metavar)


@pytest.mark.parametrize("name", ["", *command_paths()])
def test_help_shows_no_python_types(name):
    result = run_cli(*name.split(), "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert not re.search(r"<[a-z\[\] ,|]+>|\b(TEXT|INTEGER|PATH|FLOAT)\b", result.stdout), (
        name,
        result.stdout,
    )
