"""The tour `gdpr-sweep demo` ends with: its demo key, lines that work when pasted, the
README's "Start here" showing the same lines, and the command as it was invoked."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import stat
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.cli.invocation import invoked_as
from gdpr_sweep.demo.rows import DemoData
from gdpr_sweep.demo.tour import TOUR_PERSON
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV_CLI = ".venv/bin/gdpr-sweep"


def start_here_blocks() -> list[list[str]]:
    """The command lines of each ```sh block under the README's "Start here"."""
    section = README.partition("\n## Start here\n")[2].partition("\n## ")[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def readme_tour() -> list[str]:
    """The README's tour: the block that sets the key first."""
    (tour,) = [block for block in start_here_blocks() if block[0].startswith("export ")]
    return tour


def printed_tour(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.partition("\nNext, a tour")[2].splitlines()[1:]]


def demo_as_venv_script(monkeypatch, *args: str):
    """`gdpr-sweep demo` as `make demo` runs it on a fresh clone: .venv/bin/gdpr-sweep."""
    monkeypatch.setattr(sys, "argv", [VENV_CLI, "demo", *args])
    return run_cli("demo", *args)


def test_the_demo_writes_a_demo_only_key_once(tmp_path, monkeypatch):
    first = demo_as_venv_script(monkeypatch, "--as-of", "2026-11-23")
    assert first.exit_code == 0, first.stderr
    key = tmp_path / "gdpr-sweep-demo" / "demo.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text(encoding="ascii").strip()
    assert len(secret) >= 16 and secret.startswith("demo-only-")
    assert "Demo key:      gdpr-sweep-demo/demo.key" in first.stdout
    assert "for this demo only" in first.stdout
    # Kept when the demo runs again (its audit trail must keep verifying).
    assert demo_as_venv_script(monkeypatch, "--as-of", "2026-11-23").exit_code == 0
    assert key.read_text(encoding="ascii").strip() == secret
    # Another demo has a key of its own.
    assert run_cli("demo", "other", "--as-of", "2026-11-23").exit_code == 0
    assert (tmp_path / "other" / "demo.key").read_text(encoding="ascii").strip() != secret


def test_the_readme_shows_the_tour_the_demo_prints(monkeypatch):
    result = demo_as_venv_script(monkeypatch, "--as-of", "2026-11-23")
    assert result.exit_code == 0, result.stderr
    assert printed_tour(result.stdout) == readme_tour()
    assert TOUR_PERSON in result.stdout.partition("Next, a tour")[2].splitlines()[0]
    # `make demo` is the README's first block; the tour is pasted after it.
    assert start_here_blocks()[0] == ["make demo"]


def test_the_tour_works_when_pasted(tmp_path, monkeypatch):
    """Every line of the tour, in order, as a shell would run it: each exits 0."""
    result = demo_as_venv_script(monkeypatch, "--as-of", "2026-11-23")
    lines = printed_tour(result.stdout)
    monkeypatch.delenv("GDPR_SWEEP_KEY")
    export, *commands = lines
    assert export == 'export GDPR_SWEEP_KEY="$(cat gdpr-sweep-demo/demo.key)"'
    key = (tmp_path / "gdpr-sweep-demo" / "demo.key").read_text(encoding="ascii").strip()
    monkeypatch.setenv("GDPR_SWEEP_KEY", key)
    outputs = paste(commands)
    assert "rows done" in outputs["run"]
    assert "audit trail intact" in outputs["audit"]
    export_file = tmp_path / "gdpr-sweep-demo" / "export.json"
    assert TOUR_PERSON in export_file.read_text(encoding="utf-8")
    assert "deleted 3 row(s) in consultant_mail" in outputs["erase"]
    assert "anonymised 1 row(s) in candidate" in outputs["erase"]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gdpr-sweep-demo' / 'demo.db'}")
    with engine.connect() as connection:
        left = connection.execute(
            sa.text("SELECT count(*) FROM candidate WHERE email = :e"), {"e": TOUR_PERSON}
        ).scalar_one()
    engine.dispose()
    assert left == 0
    # Pasted again (a newcomer trying twice): still every line exits 0.
    again = paste(commands)
    assert "audit trail intact" in again["audit"]
    assert "no rows of this person" in again["erase"]


def paste(commands: list[str]) -> dict[str, str]:
    """Run the tour's gdpr-sweep lines in order; each must exit 0. Stdout per command."""
    outputs = {}
    for line in commands:
        program, *args = shlex.split(line)
        assert program == VENV_CLI
        done = run_cli(*args, "--as-of", "2026-11-23") if args[0] == "run" else run_cli(*args)
        assert done.exit_code == 0, (line, done.stdout, done.stderr)
        outputs[args[0]] = done.stdout
    return outputs


@pytest.mark.parametrize("day", ["2026-11-23", "2028-02-29", "2031-06-30"])
def test_the_tour_person_is_candidate_one_with_rows_in_several_tables(day):
    rows = DemoData(dt.date.fromisoformat(day)).build()
    person = rows["candidate"][0]
    assert person["email"] == TOUR_PERSON
    tables = {
        name
        for name, table_rows in rows.items()
        for row in table_rows
        if row.get("candidate_id") == person["id"]
        or row.get("candidate_email") == TOUR_PERSON
        or (row.get("data_item_type") == 100 and row.get("data_item_id") == person["id"])
    }
    assert len(tables) >= 4, tables


def test_invoked_as_names_the_command_as_typed(tmp_path, monkeypatch):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "gdpr-sweep"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join(["/nonexistent-dir", os.environ["PATH"]]))
    cwd = str(tmp_path)
    # A path below the working directory stays relative; elsewhere it is absolute.
    assert invoked_as("venv/bin/gdpr-sweep", cwd=cwd) == ["venv/bin/gdpr-sweep"]
    assert invoked_as(str(script), cwd=cwd) == ["venv/bin/gdpr-sweep"]
    assert invoked_as(str(script), cwd=str(bin_dir / "..")) == ["bin/gdpr-sweep"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert invoked_as(str(script), cwd=str(elsewhere)) == [str(script)]
    # Found on PATH as this very file: the bare name.
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    assert invoked_as(str(script), cwd=str(elsewhere)) == ["gdpr-sweep"]
    # ... but not when PATH finds another gdpr-sweep first.
    other = tmp_path / "other" / "bin"
    other.mkdir(parents=True)
    (other / "gdpr-sweep").write_text("#!/bin/sh\n", encoding="utf-8")
    (other / "gdpr-sweep").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(other), str(bin_dir)]))
    assert invoked_as(str(script), cwd=str(elsewhere)) == [str(script)]
    # python -m gdpr_sweep, and a program that embeds the CLI (a test runner).
    python = tmp_path / "venv" / "bin" / "python"
    assert invoked_as("/x/gdpr_sweep/__main__.py", executable=str(python), cwd=cwd) == [
        "venv/bin/python",
        "-m",
        "gdpr_sweep",
    ]
    assert invoked_as("/usr/bin/pytest", cwd=cwd) == ["gdpr-sweep"]
    assert invoked_as("gdpr-sweep", cwd=cwd) == ["gdpr-sweep"]


def test_the_tour_quotes_a_directory_with_a_space(tmp_path, monkeypatch):
    result = demo_as_venv_script(monkeypatch, "my demo", "--as-of", "2026-11-23")
    assert result.exit_code == 0, result.stderr
    lines = printed_tour(result.stdout)
    assert lines[0] == "export GDPR_SWEEP_KEY=\"$(cat 'my demo/demo.key')\""
    assert shlex.split(lines[1]) == [VENV_CLI, "check", "-c", "my demo/gdpr-sweep.toml"]


def test_the_plan_files_hint_is_an_apply_that_works_when_pasted(tmp_path, monkeypatch):
    demo_as_venv_script(monkeypatch, "--as-of", "2026-11-23")
    config, plan_file = "gdpr-sweep-demo/gdpr-sweep.toml", "gdpr-sweep-demo/plan.json"
    planned = run_cli("plan", "-c", config, "--as-of", "2026-11-23", "--out", plan_file)
    assert planned.exit_code == 0, planned.stderr
    hint = planned.stdout.rpartition("apply it with: ")[2].splitlines()[0].strip()
    assert hint == f"{VENV_CLI} apply -c {config} {plan_file}"
    _program, *args = shlex.split(hint)
    applied = run_cli(*args, "--yes")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "rows done" in applied.stdout


def test_the_tour_person_is_the_only_person_the_demo_names(tmp_path, monkeypatch):
    """House rule: no output names a data subject. The demo's people are made up, and
    the tour names one of them on purpose (to export and erase); no one else appears."""
    result = demo_as_venv_script(monkeypatch, "--as-of", "2026-11-23")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gdpr-sweep-demo' / 'demo.db'}")
    with engine.connect() as connection:
        people = connection.execute(sa.text("SELECT name, email, cpr, phone FROM candidate"))
        values = {value for row in people for value in row if value}
    engine.dispose()
    named = {value for value in values if value in result.stdout}
    assert named == {TOUR_PERSON}
    (line,) = [line for line in result.stdout.splitlines() if "made up" in line and "@" in line]
    assert line.startswith("Next, a tour")
