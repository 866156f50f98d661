"""`gdpr-sweep demo`: the README's first command."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from tests.conftest import run_cli


def test_demo_builds_once_and_every_rule_has_due_and_not_due_rows(tmp_path):
    directory = tmp_path / "demo"
    first = run_cli("demo", str(directory), "--as-of", "2026-11-23", "--json")
    assert first.exit_code == 0, first.stderr
    database = directory / "demo.db"
    config = directory / "gdpr-sweep.toml"
    before = (database.read_bytes(), config.read_bytes())

    plan = first.json()
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        for item in plan["items"]:
            total = connection.execute(
                sa.text(f'SELECT count(*) FROM "{item["table"]}"')
            ).scalar_one()
            assert 0 < item["due"] < total, item
    engine.dispose()
    rules_with_exceptions = {"recruitment-delete", "project-delete", "cctv-delete"}
    assert {i["rule"] for i in plan["items"] if i["held"] > 0} == rules_with_exceptions

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
