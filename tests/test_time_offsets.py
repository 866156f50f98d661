"""Every time gdpr-sweep prints or writes carries its UTC offset (README: Machine-readable
output): the as-of in `sweep.timezone`, moments in UTC; dates that are days stay dates.

The state database stores every time in UTC, `runs.as_of` too (run, apply and erase
stored local time before); rows written before are read as they are.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import TargetDb, run_cli
from tests.every_output import Output, every_output, sweep_outputs

#: A date and a time of day (minutes, maybe seconds and a fraction) with no offset after.
NAIVE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?![\d.:])(?!Z|[+-]\d{2}:\d{2})"
)
OFFSET_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2}:\d{2}")


def ours(output: Output) -> str:
    """The output, without the person's own rows in an export (their data, as stored)."""
    if output.kind != "export":
        return output.text
    document = json.loads(output.text)
    for database in document["databases"]:
        for table in database["tables"]:
            table["rows"] = []
    return json.dumps(document)


def test_no_time_without_offset_in_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    outputs = every_output(target, tmp_path, monkeypatch).outputs
    naive = [
        f"{o.command} ({o.stream}): {match.group()!r}"
        for o in outputs
        for match in NAIVE_TIME.finditer(ours(o))
    ]
    assert not naive, "\n".join(naive[:20])
    # The scan saw times: the as-of, started/finished, recorded, log lines, receipts.
    with_times = [o.command for o in outputs if OFFSET_TIME.search(ours(o))]
    for command in ("plan", "run", "apply", "erase", "audit list", "audit show", "hold list"):
        assert any(shown.startswith(command) for shown in with_times), command
    assert {"receipt.json", "export.json", "plan.json"} <= set(with_times)
    assert any(o.stream == "stderr" and '"ts": ' in o.text for o in outputs)  # json logs


def _stored(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "state.db") as connection:
        return connection.execute(sql).fetchall()


@pytest.mark.engines
def test_the_state_database_stores_as_of_in_utc(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run, apply and erase stored their as-of in local time (+01:00 in November)."""
    sweep_outputs(target_db, tmp_path, monkeypatch)
    rows = _stored(tmp_path, "SELECT command, as_of, started_at FROM runs ORDER BY id")
    assert {command for command, _, _ in rows} >= {"apply", "run", "erase", "export"}
    for command, as_of, started_at in rows:
        assert as_of.endswith("+00:00") and started_at.endswith("+00:00"), (command, as_of)
    details = _stored(tmp_path, "SELECT details FROM audit_entries WHERE kind = 'run-start'")
    assert all(json.loads(d)["as_of"].endswith("+00:00") for (d,) in details)
    # The plan's as-of, local midnight, is the run's, stored in UTC.
    (apply_as_of,) = [as_of for command, as_of, _ in rows if command == "apply"][:1]
    assert apply_as_of == "2026-11-22T23:00:00.000000+00:00"


def test_audit_shows_old_rows_with_their_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row written before (as-of in local time, or a time with no offset at all) is
    shown as the same instant: the as-of in sweep.timezone, moments in UTC."""
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    c = sweep_outputs(target, tmp_path, monkeypatch).c
    with sqlite3.connect(tmp_path / "state.db") as connection:
        connection.execute(
            "UPDATE runs SET as_of = '2026-11-23T00:00:00+01:00', "
            "started_at = '2026-11-23 10:00:00.5' WHERE id = 1"
        )
        connection.execute("UPDATE runs SET as_of = '2026-11-23T12:00:00' WHERE id = 2")
    listed = run_cli("audit", "list", "-c", c, "--json")
    assert listed.exit_code == 0, listed.stderr
    runs = {run["id"]: run for run in listed.json()["runs"]}
    assert runs[1]["as_of"] == "2026-11-23T00:00:00+01:00"
    assert runs[1]["started_at"] == "2026-11-23T10:00:00.500000+00:00"
    assert runs[2]["as_of"] == "2026-11-23T13:00:00+01:00"  # no offset: read as UTC
    text = run_cli("audit", "list", "-c", c).stdout
    assert "2026-11-23T00:00:00+01:00" in text and "2026-11-23T10:00:00+00:00" in text
    shown = run_cli("audit", "show", "1", "-c", c).stdout
    assert "as of 2026-11-23T00:00:00+01:00" in shown
    assert not NAIVE_TIME.search(text + shown)
