"""The review trail: `plan --out` → `apply --approved-by --ticket`, in the audit trail.

`plan --out` records a `planned` run (the plan's digest, as-of, config digest and
counts, no key or value); `apply` links its run to that plan's digest and run, with
who approved it and the ticket; `audit list` and `audit show` show them, in text and
JSON; the chain still verifies. A plan file changed after it was written is refused.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import TargetDb, run_cli, write_config
from tests.test_ticket import CONFIG, EMAIL, build

TICKET = "DPO-2026-0231"
APPROVER = "staff-0815"
AS_OF = "2026-11-23"


def state_dump(directory: Path) -> str:
    """Every row of the state database, as text."""
    with sqlite3.connect(directory / "state.db") as connection:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        rows = [
            repr(row)
            for name in tables
            if not name.startswith("sqlite_")
            for row in connection.execute(f'SELECT * FROM "{name}"')
        ]
    return "\n".join(rows)


def test_plan_approval_and_apply_are_one_trail(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(target_db)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    c = str(config)
    plan_file = tmp_path / "plan.json"
    planned = run_cli("plan", "-c", c, "--as-of", AS_OF, "--out", str(plan_file))
    assert planned.exit_code == 0, planned.stdout + planned.stderr
    document = json.loads(plan_file.read_text())
    digest, plan_run = document["plan_digest"], document["plan_run"]
    assert digest.startswith("sha256:") and f"recorded as run {plan_run}" in planned.stdout

    listed = run_cli("audit", "list", "-c", c, "--json").json()["runs"]
    (run,) = listed
    assert (run["id"], run["command"], run["status"]) == (plan_run, "plan", "planned")
    assert run["plan_digest"] == digest and run["config_digest"] == document["config_digest"]
    assert run["summary"]["rows_due"] == 1 and run["summary"]["items"][0]["due"] == 1
    assert run["as_of"] == document["as_of"]

    applied = run_cli("apply", str(plan_file), "-c", c, "--yes", "--json",
                      "--approved-by", APPROVER, "--ticket", TICKET)  # fmt: skip
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    summary = applied.json()
    assert (summary["plan_digest"], summary["plan_run"]) == (digest, plan_run)
    apply_run = summary["run_id"]

    shown = run_cli("audit", "show", str(apply_run), "-c", c, "--json").json()
    assert shown["run"]["plan_digest"] == digest  # the reviewed plan's, not the config's
    assert (shown["run"]["approved_by"], shown["run"]["ticket"]) == (APPROVER, TICKET)
    assert shown["run"]["plan_run"] == plan_run
    (start,) = [e for e in shown["entries"] if e["kind"] == "run-start"]
    assert start["details"]["plan_digest"] == digest and start["details"]["plan_run"] == plan_run
    assert shown["run"]["summary"]["approved_by"] == APPROVER  # where the report reads it

    ran = run_cli("run", "-c", c, "--as-of", AS_OF, "--json", "--ticket", "DPO-2026-0232")
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    runs = {r["id"]: r for r in run_cli("audit", "list", "-c", c, "--json").json()["runs"]}
    assert (runs[apply_run]["approved_by"], runs[apply_run]["ticket"]) == (APPROVER, TICKET)
    assert (runs[plan_run]["approved_by"], runs[plan_run]["plan_run"]) == (None, plan_run)
    assert runs[ran.json()["run_id"]]["ticket"] == "DPO-2026-0232"
    assert runs[ran.json()["run_id"]]["approved_by"] is None

    text = run_cli("audit", "show", str(apply_run), "-c", c)
    assert f"approved by {APPROVER} · ticket {TICKET}" in text.stdout
    assert f"planned in run {plan_run}" in text.stdout
    table = run_cli("audit", "list", "-c", c, env={"COLUMNS": "200"})
    assert APPROVER in table.stdout and TICKET in table.stdout and "DPO-2026-0232" in table.stdout
    planned_text = run_cli("audit", "show", str(plan_run), "-c", c).stdout
    assert f"plan {digest[:19]}… (planned in run {plan_run})" in planned_text

    assert run_cli("audit", "verify", "-c", c).exit_code == 0
    assert EMAIL not in state_dump(tmp_path)


def test_a_changed_plan_file_is_refused_and_a_refusal_names_the_approver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    build(target_db)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    c = str(config)
    plan_file = tmp_path / "plan.json"
    assert run_cli("plan", "-c", c, "--as-of", AS_OF, "--out", str(plan_file)).exit_code == 0
    before = target_db.checksum()

    document = json.loads(plan_file.read_text())
    changed = tmp_path / "changed.json"
    document["items"][0]["basis"] = "a basis nobody reviewed"
    changed.write_text(json.dumps(document))
    refused = run_cli("apply", str(changed), "-c", c, "--yes", "--approved-by", APPROVER)
    assert refused.exit_code == 5, refused.stdout + refused.stderr
    assert "was changed after plan --out wrote it" in refused.stderr
    assert target_db.checksum() == before

    # A plan gone stale (the due set changed) is refused and recorded with its review.
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO note (id, person_id, written_at) VALUES (3, 2, '2019-01-01 00:00:00')"
        )
    engine.dispose()
    stale = run_cli("apply", str(plan_file), "-c", c, "--yes",
                    "--approved-by", APPROVER, "--ticket", TICKET)  # fmt: skip
    assert stale.exit_code == 5, stale.stdout + stale.stderr
    (last, *_rest) = run_cli("audit", "list", "-c", c, "--json").json()["runs"]
    assert (last["command"], last["status"], last["approved_by"]) == ("apply", "refused", APPROVER)
    assert last["summary"]["ticket"] == TICKET
    assert last["summary"]["plan_digest"] == document["plan_digest"]
    assert run_cli("audit", "verify", "-c", c).exit_code == 0
