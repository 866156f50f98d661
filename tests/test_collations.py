"""Exact matching on every engine: collations never widen an equality.

Each text column here is declared case-insensitive where the engine allows it
(MariaDB `utf8mb4_general_ci`, SQLite `COLLATE NOCASE`; PostgreSQL's default
collation is deterministic), so a bare `=` would match `'CLOSED'` for `'closed'` and
`jörg@…` for `jorg@…`. The counts must be the same on all three engines.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from tests.conftest import TargetDb, run_cli, write_config

AS_OF = "2026-06-01"
OLD = dt.datetime(2024, 1, 1, 12)
NEAR_MISSES = ["closed", "CLOSED", "Closed", "closed ", "clösed", "closed\t", None]


def insensitive(target_db: TargetDb, length: int = 60) -> sa.String:
    collation = {"mariadb": "utf8mb4_general_ci", "sqlite": "NOCASE"}.get(target_db.engine_name)
    return sa.String(length, collation=collation)


def statuses(target_db: TargetDb) -> list[str | None]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            return list(
                connection.exec_driver_sql("SELECT status FROM case_file ORDER BY id").scalars()
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("only", "expected_due"),
    [('"closed"', ["closed"]), ('["closed", "Done"]', ["closed", "Done"])],
)
def test_only_matches_exactly(target_db, tmp_path, monkeypatch, only, expected_due):
    metadata = sa.MetaData()
    sa.Table(
        "case_file",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", insensitive(target_db), index=True),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("held", sa.Boolean),
    )
    values = [*NEAR_MISSES, "Done", "done", "DONE "]
    rows = [
        {"id": i + 1, "status": v, "ended_at": OLD, "held": i % 4 == 3}
        for i, v in enumerate(values)
    ]
    # Every value once more, held: the held count must be exact as well.
    rows += [
        {"id": 100 + i, "status": v, "ended_at": OLD, "held": True} for i, v in enumerate(values)
    ]
    target_db.create(metadata, {"case_file": rows})
    body = (
        '[[rules]]\nid = "r"\ntable = "case_file"\naction = "delete"\nafter = "1 year"\n'
        f'since = "ended_at"\nonly = {{ status = {only} }}\nunless_true = "held"\n'
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    item = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json").json()["items"][0]
    due_rows = [r for r in rows if r["status"] in expected_due and not r["held"]]
    held_rows = [r for r in rows if r["status"] in expected_due and r["held"]]
    assert (item["due"], item["held"]) == (len(due_rows), len(held_rows))
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--force", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["items"][0]["done"] == len(due_rows)
    kept = [r["status"] for r in sorted(rows, key=lambda r: r["id"]) if r not in due_rows]
    assert statuses(target_db) == kept


def subject_schema(target_db: TargetDb) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "candidate",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", insensitive(target_db, 254), index=True),
        sa.Column("name", sa.String(60)),
    )
    sa.Table(
        "consultant_mail",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("candidate_email", insensitive(target_db, 254), index=True),
        sa.Column("body", sa.Text),
    )
    sa.Table(
        "case_note",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("candidate_id", sa.Integer, sa.ForeignKey("candidate.id"), index=True),
        sa.Column("body", sa.Text),
    )
    return metadata


SUBJECT = """
[subject]
root = "candidate"
identifiers = { email = "email" }
[[subject.links]]
table = "consultant_mail"
column = "candidate_email"
references = "candidate.email"
"""
# Four different people, whose e-mails differ only in case, an accent or a space.
PEOPLE = ["jorg@example.dk", "JORG@example.dk", "jörg@example.dk", "jorg@example.dk "]


def test_erase_and_export_find_exactly_the_person(target_db, tmp_path, monkeypatch):
    target_db.create(
        subject_schema(target_db),
        {
            "candidate": [
                {"id": i + 1, "email": e, "name": f"person {i + 1}"} for i, e in enumerate(PEOPLE)
            ],
            "consultant_mail": [
                {"id": i + 1, "candidate_email": e, "body": f"mail {i + 1}"}
                for i, e in enumerate(PEOPLE)
            ],
            "case_note": [
                {"id": i + 1, "candidate_id": i + 1, "body": f"note {i + 1}"}
                for i in range(len(PEOPLE))
            ],
        },
    )
    config = write_config(tmp_path, SUBJECT, target_db.url, monkeypatch)
    out = tmp_path / "export.json"
    exported = run_cli(
        "export", "-c", str(config), "--subject", f"email={PEOPLE[0]}", "--out", str(out)
    )
    assert exported.exit_code == 0, exported.stderr
    # Two others differ only in case or a trailing space: the operator is told (a count).
    assert "note: 2 other row(s) match the identifier only ignoring case" in exported.stderr
    assert PEOPLE[1] not in exported.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    tables = {t["table"]: t["rows"] for t in document["databases"][0]["tables"]}
    assert [r["id"] for r in tables["candidate"]] == [1]
    assert [r["id"] for r in tables["consultant_mail"]] == [1]
    assert [r["id"] for r in tables["case_note"]] == [1]

    erased = run_cli("erase", "-c", str(config), "--subject", f"email={PEOPLE[0]}", "--json")
    assert erased.exit_code == 0, erased.stderr
    receipt = erased.json()
    assert receipt["case_insensitive_matches"] == 2
    rows = {(e["table"], e["rows"]) for e in receipt["erased"]}
    assert rows == {("candidate", 1), ("consultant_mail", 1), ("case_note", 1)}
    engine = target_db.engine()
    with engine.connect() as connection:
        for table in ("candidate", "consultant_mail", "case_note"):
            left = connection.exec_driver_sql(f"SELECT id FROM {table} ORDER BY id").scalars()
            assert list(left) == [2, 3, 4], table
    engine.dispose()
