"""`apply` and the plan file's `"format"`: a plan written before plans had one is version 1
and applies; a format this gdpr-sweep does not know (a newer version, another document)
is exit 2 with one line naming it, and nothing is touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TargetDb, run_cli, write_config
from tests.test_ticket import CONFIG, build


def _plan(target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    build(target_db)
    c = str(write_config(tmp_path, CONFIG, target_db.url, monkeypatch))
    plan_file = tmp_path / "plan.json"
    made = run_cli("plan", "-c", c, "--as-of", "2026-11-23", "--out", str(plan_file))
    assert made.exit_code == 0, made.stderr
    assert json.loads(plan_file.read_text())["format"] == "gdpr-sweep plan 1"
    return c, plan_file


@pytest.mark.engines
def test_a_plan_without_format_is_version_1_and_applies(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, plan_file = _plan(target_db, tmp_path, monkeypatch)
    document = json.loads(plan_file.read_text())
    for written_later in ("format", "plan_digest", "plan_run"):
        del document[written_later]  # as plan --out wrote it before
    plan_file.write_text(json.dumps(document))
    applied = run_cli("apply", str(plan_file), "-c", c, "--yes", "--json")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert [item["done"] for item in applied.json()["items"]] == [1]
    assert target_db.scalar("SELECT COUNT(*) FROM note") == 1


@pytest.mark.engines
@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("gdpr-sweep plan 2", "'gdpr-sweep plan 2' is not one this gdpr-sweep reads"),
        ("gdpr-sweep plan 0", "'gdpr-sweep plan 0' is not one this gdpr-sweep reads"),
        ("gdpr-sweep run 1", "'gdpr-sweep run 1' is not a gdpr-sweep plan"),
        (1, "format 1 is not a gdpr-sweep plan"),
    ],
)
def test_an_unknown_format_is_refused_and_nothing_is_touched(
    target_db: TargetDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    value: object,
    said: str,
) -> None:
    c, plan_file = _plan(target_db, tmp_path, monkeypatch)
    document = json.loads(plan_file.read_text())
    plan_file.write_text(json.dumps({**document, "format": value}))
    before = target_db.checksum()
    refused = run_cli("apply", str(plan_file), "-c", c, "--yes", "--json")
    assert refused.exit_code == 2, refused.stdout + refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith("error: PLAN: ") and said in line, line
    assert "make a new plan" in line
    assert refused.json()["status"] == "failed" and refused.json()["format"] == "gdpr-sweep run 1"
    assert target_db.checksum() == before
    listed = run_cli("audit", "list", "-c", c, "--json")
    # refused before any run was recorded: only plan --out's `planned` run is there
    assert [run["command"] for run in listed.json()["runs"]] == ["plan"]


def test_a_plan_file_that_is_not_an_object_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    c, plan_file = _plan(target, tmp_path, monkeypatch)
    plan_file.write_text("[1, 2]")
    refused = run_cli("apply", str(plan_file), "-c", c, "--yes")
    assert refused.exit_code == 2
    assert "is not a gdpr-sweep plan file (not a JSON object)" in refused.stderr
