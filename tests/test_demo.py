"""`gdpr-sweep demo`: the README's first command."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from tests.conftest import run_cli

RULES_WITH_EXCEPTIONS = {"recruitment-delete", "project-delete", "cctv-delete"}


def assert_every_rule_has_due_and_not_due_rows(database: Path, plan: dict) -> None:
    """The demo's promise, at the as-of its plan was made for."""
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        for item in plan["items"]:
            total = connection.execute(
                sa.text(f'SELECT count(*) FROM "{item["table"]}"')
            ).scalar_one()
            assert 0 < item["due"] < total, item
            # ... and `run` passes the default max_fraction guard without --force.
            assert item["due"] <= total / 2, item
    engine.dispose()
    assert {i["rule"] for i in plan["items"] if i["held"] > 0} == RULES_WITH_EXCEPTIONS


def table_rows(database: Path) -> dict[str, list[tuple]]:
    engine = sa.create_engine(f"sqlite:///{database}")
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        rows = {
            name: sorted(map(tuple, connection.execute(sa.select(table))), key=repr)
            for name, table in metadata.tables.items()
        }
    engine.dispose()
    return rows


# The wall clock is moved far away from the as-of: the demo must not read it.
@time_machine.travel(dt.datetime(2031, 6, 15, 12, tzinfo=dt.UTC), tick=False)
def test_demo_builds_once_and_every_rule_has_due_and_not_due_rows(tmp_path):
    directory = tmp_path / "demo"
    first = run_cli("demo", str(directory), "--as-of", "2026-11-23", "--json")
    assert first.exit_code == 0, first.stderr
    database = directory / "demo.db"
    config = directory / "gdpr-sweep.toml"
    before = (database.read_bytes(), config.read_bytes())

    plan = first.json()
    assert plan["as_of"].startswith("2026-11-23T00:00:00")
    assert_every_rule_has_due_and_not_due_rows(database, plan)

    # Re-running is safe: nothing is rebuilt, and the plan is the same.
    second = run_cli("demo", str(directory), "--as-of", "2026-11-23", "--json")
    assert second.exit_code == 0

    def counts(items: list[dict]) -> list[dict]:
        return [{k: v for k, v in item.items() if k != "count_seconds"} for item in items]

    assert counts(second.json()["items"]) == counts(plan["items"])
    assert (database.read_bytes(), config.read_bytes()) == before

    # The demo config passes check, and its plan prints as a table.
    assert run_cli("check", "-c", str(config)).exit_code == 0
    table = run_cli("plan", "-c", str(config), "--as-of", "2026-11-23")
    assert "counselling-anonymise" in table.stdout
    assert "nothing was changed" in table.stdout


def test_python_dash_m_runs_the_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gdpr_sweep", "demo", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rows due under" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("wall_clock", "as_of"),
    [
        ("2026-12-01T09:00:00+00:00", "2027-12-01"),  # planned a year after today
        ("2026-12-01T09:00:00+00:00", "2028-02-29"),  # a leap day
        ("2029-03-31T00:30:00+00:00", "2026-01-01"),  # a year before, on a DST night
        ("2030-07-01T23:30:00+00:00", "2030-07-02T01:30:00+02:00"),  # local date differs
    ],
)
def test_demo_is_built_for_its_as_of_whatever_the_wall_clock(tmp_path, wall_clock, as_of):
    with time_machine.travel(dt.datetime.fromisoformat(wall_clock), tick=False):
        result = run_cli("demo", str(tmp_path / "demo"), "--as-of", as_of, "--json")
    assert result.exit_code == 0, result.stderr
    database = tmp_path / "demo" / "demo.db"
    assert_every_rule_has_due_and_not_due_rows(database, result.json())

    # The same as-of on another wall-clock day builds the same rows.
    with time_machine.travel(dt.datetime(2040, 1, 1, tzinfo=dt.UTC), tick=False):
        other = run_cli("demo", str(tmp_path / "other"), "--as-of", as_of, "--json")
    assert other.exit_code == 0, other.stderr
    assert table_rows(tmp_path / "other" / "demo.db") == table_rows(database)


def test_demo_without_as_of_is_built_for_the_local_day(tmp_path):
    # 23:30 UTC on 28 Feb 2028 is already the leap day in Copenhagen.
    with time_machine.travel(dt.datetime(2028, 2, 28, 23, 30, tzinfo=dt.UTC), tick=False):
        result = run_cli("demo", str(tmp_path / "demo"), "--json")
    assert result.exit_code == 0, result.stderr
    plan = result.json()
    assert plan["as_of"].startswith("2028-02-29T00:30:00")
    assert_every_rule_has_due_and_not_due_rows(tmp_path / "demo" / "demo.db", plan)
    # It says which day it was built for, when shown on another.
    again = run_cli("demo", str(tmp_path / "demo"), "--as-of", "2029-01-01")
    assert "built for 2028-02-29 and is kept" in again.stdout


def test_a_bad_as_of_writes_nothing(tmp_path):
    result = run_cli("demo", str(tmp_path / "demo"), "--as-of", "2027-02-29")
    assert result.exit_code == 2
    assert "--as-of" in result.stderr
    assert not (tmp_path / "demo").exists()


def test_a_directory_that_is_a_file_is_one_line_exit_2(tmp_path):
    taken = tmp_path / "demo"
    taken.write_text("not a directory\n", encoding="utf-8")
    result = run_cli("demo", str(taken), "--as-of", "2026-11-23")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1
    assert "DIRECTORY" in result.stderr and "not a directory" in result.stderr
    assert taken.read_text(encoding="utf-8") == "not a directory\n"
    below = run_cli("demo", str(taken / "inner"), "--as-of", "2026-11-23")
    assert below.exit_code == 2, below.stdout + below.stderr
    assert below.stderr.count("\n") == 1 and "DIRECTORY" in below.stderr
