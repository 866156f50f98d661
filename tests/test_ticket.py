"""`--ticket REF` on run, apply, erase and export; `--approved-by NAME` on apply (SPEC).

Recorded as given in the chained `run-start` entry of the audit trail (so `audit
verify` still holds), in the erase receipt (JSON and text), the export document and
the run summary. A bad value (empty, a newline, too long) is exit 2 naming the option,
not quoting the value, and nothing is touched.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import TargetDb, run_cli, write_config

EMAIL = "tove.ticket@example.dk"
TICKET = "DPO-2026-0117"
APPROVER = "staff-4711"

CONFIG = """
[[rules]]
id = "note-delete"
table = "note"
action = "delete"
after = "1 year"
since = "written_at"

[subject]
root = "person"
identifiers = { email = "email" }
"""


def build(target_db: TargetDb) -> None:
    m = sa.MetaData()
    sa.Table("person", m, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(100)))  # fmt: skip
    sa.Table("note", m, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("person_id", sa.Integer, sa.ForeignKey("person.id")),
             sa.Column("written_at", sa.DateTime))  # fmt: skip
    target_db.create(
        m,
        {
            "person": [{"id": 1, "email": EMAIL}, {"id": 2, "email": "o@example.dk"}],
            "note": [
                {"id": 1, "person_id": 2, "written_at": dt.datetime(2020, 1, 1)},
                {"id": 2, "person_id": 1, "written_at": dt.datetime(2026, 11, 1)},
            ],
        },
    )


def run_start(config: Path, run_id: int) -> dict:
    shown = run_cli("audit", "show", str(run_id), "-c", str(config), "--json")
    assert shown.exit_code == 0, shown.stderr
    (start,) = [e for e in shown.json()["entries"] if e["kind"] == "run-start"]
    assert isinstance(start["details"], dict)  # an object, not a JSON string
    return start["details"]


def test_ticket_and_approver_are_recorded_everywhere(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(target_db)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    c = str(config)

    plan_file = tmp_path / "plan.json"
    assert run_cli("plan", "-c", c, "--as-of", "2026-11-23", "--out", str(plan_file)).exit_code == 0
    applied = run_cli("apply", str(plan_file), "-c", c, "--yes", "--json",
                      "--ticket", TICKET, "--approved-by", APPROVER)  # fmt: skip
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    summary = applied.json()
    assert (summary["ticket"], summary["approved_by"]) == (TICKET, APPROVER)
    assert run_start(config, summary["run_id"])["approved_by"] == APPROVER

    ran = run_cli("run", "-c", c, "--as-of", "2026-11-23", "--json", "--ticket", TICKET)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert ran.json()["ticket"] == TICKET and "approved_by" not in ran.json()
    assert run_start(config, ran.json()["run_id"])["ticket"] == TICKET

    out = tmp_path / "export.json"
    exported = run_cli("export", "-c", c, "--subject", f"email={EMAIL}", "--out", str(out),
                       "--ticket", TICKET)  # fmt: skip
    assert exported.exit_code == 0, exported.stdout + exported.stderr
    assert json.loads(out.read_text())["ticket"] == TICKET

    erased = run_cli("erase", "-c", c, "--subject", f"email={EMAIL}", "--json", "--ticket", TICKET)
    assert erased.exit_code == 0, erased.stdout + erased.stderr
    receipt = erased.json()
    assert receipt["ticket"] == TICKET
    assert run_start(config, receipt["run_id"])["ticket"] == TICKET
    text = run_cli("erase", "-c", c, "--subject", f"email={EMAIL}", "--dry-run",
                   "--ticket", TICKET)  # fmt: skip
    assert f"Request: {TICKET}" in text.stdout

    assert run_cli("audit", "verify", "-c", c).exit_code == 0


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--ticket", "", "must not be empty"),
        ("--ticket", "CASE-1\nDROP", "one line"),
        ("--ticket", "x" * 201, "at most 200"),
        ("--approved-by", "  ", "must not be empty"),
    ],
    ids=["empty", "newline", "too-long", "blank-approver"],
)
def test_a_bad_ticket_is_exit_2_and_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, value: str, words: str
) -> None:
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    build(target_db)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    before = target_db.checksum()
    plan_file = tmp_path / "plan.json"
    assert run_cli("plan", "-c", str(config), "--as-of", "2026-11-23",
                   "--out", str(plan_file)).exit_code == 0  # fmt: skip
    commands = [["apply", str(plan_file), "-c", str(config), "--yes"]]
    if option == "--ticket":
        commands += [
            ["run", "-c", str(config), "--as-of", "2026-11-23"],
            ["erase", "-c", str(config), "--subject", f"email={EMAIL}"],
            ["export", "-c", str(config), "--subject", f"email={EMAIL}",
             "--out", str(tmp_path / "e.json")],
        ]  # fmt: skip
    for command in commands:
        result = run_cli(*command, option, value)
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert result.stderr.startswith(f"error: {option}: ") and words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        if value.strip():
            assert value not in result.stderr
    assert target_db.checksum() == before
    assert not (tmp_path / "e.json").exists()
