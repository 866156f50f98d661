"""A legal hold on another person's row that refers to the erased person (issue 16).

Erasing a manager nulls her reports' `reports_to` — except a report's row under a
legal hold, which is never changed: its reference stays, so the manager's own row
stays too, anonymised (never deleted, which would break the held row's reference or,
with ON DELETE CASCADE, delete it). Rows of other people not under a hold are nulled
as usual. `--dry-run` says the same as the erasure; no name or e-mail in any output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.strategies import REDACTED
from tests.conftest import TargetDb, run_cli, write_config

EMAIL = "mette.manager@example.dk"
NAME = "Mette Manager"


def schema() -> sa.MetaData:
    m = sa.MetaData()
    sa.Table(
        "employee", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(100)), sa.Column("email", sa.String(100)),
        sa.Column("reports_to", sa.Integer,
                  sa.ForeignKey("employee.id", ondelete="CASCADE"), nullable=True),
    )  # fmt: skip
    return m


ROWS = {
    "employee": [
        {"id": 1, "name": "Boss", "email": "boss@example.dk", "reports_to": None},
        {"id": 2, "name": NAME, "email": EMAIL, "reports_to": 1},
        {"id": 3, "name": "Held Report", "email": "held@example.dk", "reports_to": 2},
        {"id": 4, "name": "Free Report", "email": "free@example.dk", "reports_to": 2},
    ]
}

CONFIG = """
[subject]
root = "employee"
identifiers = { email = "email" }
[subject.erase.employee]
columns = { name = "redact", email = "null" }
"""


def employees(target_db: TargetDb) -> list[tuple]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            return [
                tuple(r)
                for r in connection.exec_driver_sql(
                    "SELECT id, name, email, reports_to FROM employee ORDER BY id"
                )
            ]
    finally:
        engine.dispose()


def test_a_held_report_keeps_her_reference_and_the_manager_is_anonymised(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_db.create(schema(), ROWS)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    held = run_cli(
        "hold", "add", "-c", str(config), "-d", "main", "-t", "employee", "-k", "3",
        "--reason", "case 2026-17",
    )  # fmt: skip
    assert held.exit_code == 0, held.stdout + held.stderr

    dry = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--dry-run", "--json")
    real = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--json")
    assert (dry.exit_code, real.exit_code) == (0, 0), real.stdout + real.stderr

    for document in (dry.json(), real.json()):
        assert document["erased"] == [
            {"database": "main", "table": "employee", "action": "anonymised", "rows": 1}
        ]
        assert document["references"] == [
            {
                "database": "main",
                "table": "employee",
                "columns": ["reports_to"],
                "referenced_table": "employee",
                "action": "nulled",
                "rows": 1,
            }
        ]
    assert employees(target_db) == [
        (1, "Boss", "boss@example.dk", None),
        (2, REDACTED, None, 1),  # hers, anonymised: the held row still refers to it
        (3, "Held Report", "held@example.dk", 2),  # held: untouched
        (4, "Free Report", "free@example.dk", None),  # nulled, never cascaded away
    ]
    for text in (dry.stdout, real.stdout, dry.stderr, real.stderr):
        assert EMAIL not in text and NAME not in text and "Report" not in text
