"""`audit show --json` and `audit list --json`: a run's summary and an entry's details are
JSON objects, not JSON text inside JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TargetDb, run_cli, write_config
from tests.test_ticket import CONFIG, EMAIL, build


def test_summary_and_details_are_objects(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(target_db)
    c = str(write_config(tmp_path, CONFIG, target_db.url, monkeypatch))
    ran = run_cli("run", "-c", c, "--as-of", "2026-11-23", "--json")
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    erased = run_cli("erase", "-c", c, "--subject", f"email={EMAIL}", "--json")
    assert erased.exit_code == 0, erased.stdout + erased.stderr
    run_id, erase_id = ran.json()["run_id"], erased.json()["run_id"]

    listed = run_cli("audit", "list", "-c", c, "--json")
    assert listed.exit_code == 0, listed.stderr
    runs = {run["id"]: run for run in listed.json()["runs"]}
    assert set(runs) == {run_id, erase_id}
    for run in runs.values():
        assert isinstance(run["summary"], dict), run
        assert run["summary"]["audit_head"]
    summary = runs[run_id]["summary"]
    assert summary["status"] == "completed" and summary["rows_left"] == 0
    assert [(i["rule"], i["done"]) for i in summary["items"]] == [("note-delete", 1)]

    for shown_id in (run_id, erase_id):
        shown = run_cli("audit", "show", str(shown_id), "-c", c, "--json")
        assert shown.exit_code == 0, shown.stderr
        document = shown.json()
        assert document["run"] == runs[shown_id]  # the same row, decoded the same way
        entries = document["entries"]
        assert {e["kind"] for e in entries} >= {"run-start", "run-end"}
        for entry in entries:
            assert entry["details"] is None or isinstance(entry["details"], dict), entry
        (end,) = [e for e in entries if e["kind"] == "run-end"]
        assert end["details"]["status"] == "completed"
        assert EMAIL not in shown.stdout
    entries = run_cli("audit", "show", str(run_id), "-c", c, "--json").json()["entries"]
    (batch,) = [e for e in entries if e["kind"] == "batch"]
    assert batch["rows"] == 1 and isinstance(batch["details"]["seconds"], float)
    assert EMAIL not in listed.stdout
