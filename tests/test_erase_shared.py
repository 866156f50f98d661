"""Erasure in anonymise tables: shared rows are kept, composite keys match as a whole.

A row of the person's that another person's row still references (here a meeting note
linked to two candidates) is kept as it is in an `anonymise` table, exactly as in a
`delete` table, with the shared basis; the receipt and `--dry-run` say the same. The
anonymising UPDATE of a table with a composite primary key `(course_id, candidate_id)`
rewrites the person's rows only, never the other participant's row of the same course
— with `hash` (bound pseudonyms by key) and without it (one set-based UPDATE).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.strategies import REDACTED, hash_value
from gdpr_sweep.subject.receipts import SHARED_BASIS
from tests.conftest import TEST_KEY, TargetDb, run_cli, write_config
from tests.erase_support import dump

EMAIL = "mette.marker@example.dk"
NAME = "Mette Markersen"
OTHER_EMAIL = "jens.other@example.dk"
MARKERS = (EMAIL, NAME, "Markersen", "mette-enrolment-note", "mette-comment", "only-hers")


def schema() -> sa.MetaData:
    m = sa.MetaData()
    sa.Table("candidate", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(120)), sa.Column("email", sa.String(254)))  # fmt: skip
    sa.Table("course", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("title", sa.String(120)))  # fmt: skip
    sa.Table(
        "enrolment", m,
        sa.Column("course_id", sa.Integer, sa.ForeignKey("course.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("candidate_id", sa.Integer, sa.ForeignKey("candidate.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("note", sa.Text), sa.Column("comment", sa.String(200)),
    )  # fmt: skip
    sa.Table("meeting_note", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("body", sa.Text))  # fmt: skip
    sa.Table(
        "candidate_meeting_note", m,
        sa.Column("candidate_id", sa.Integer, sa.ForeignKey("candidate.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("note_id", sa.Integer, sa.ForeignKey("meeting_note.id"), primary_key=True,
                  autoincrement=False),
    )  # fmt: skip
    return m


ROWS: dict[str, list[dict]] = {
    "candidate": [{"id": 1, "name": NAME, "email": EMAIL},
                  {"id": 2, "name": "Jens Other", "email": OTHER_EMAIL}],
    "course": [{"id": 1, "title": "Welding"}, {"id": 2, "title": "Forklift"}],
    # Both candidates in both courses: the other participant's row shares the course_id.
    "enrolment": [
        {"course_id": 1, "candidate_id": 1, "note": "mette-enrolment-note-1",
         "comment": "mette-comment-1"},
        {"course_id": 1, "candidate_id": 2, "note": "jens note 1", "comment": "jens comment 1"},
        {"course_id": 2, "candidate_id": 1, "note": "mette-enrolment-note-2",
         "comment": "mette-comment-2"},
        {"course_id": 2, "candidate_id": 2, "note": "jens note 2", "comment": None},
    ],
    "meeting_note": [{"id": 10, "body": "joint meeting"}, {"id": 11, "body": "only-hers"},
                     {"id": 12, "body": "only his"}],
    "candidate_meeting_note": [{"candidate_id": 1, "note_id": 10},
                               {"candidate_id": 2, "note_id": 10},
                               {"candidate_id": 1, "note_id": 11},
                               {"candidate_id": 2, "note_id": 12}],
}  # fmt: skip

STRATEGIES = {
    # hash: pseudonyms bound by key (an executemany UPDATE; a CASE UPDATE on MariaDB)
    "hash": {"note": "hash", "comment": "redact"},
    # no hash: one set-based UPDATE over the keys
    "set-based": {"note": "redact", "comment": "null"},
}


def config_body(strategies: dict[str, str]) -> str:
    columns = ", ".join(f'{c} = "{s}"' for c, s in strategies.items())
    return f"""
[subject]
root = "candidate"
identifiers = {{ email = "email" }}

[[subject.links]]
table = "meeting_note"
column = "id"
references = "candidate_meeting_note.note_id"

[subject.erase.enrolment]
action = "anonymise"
columns = {{ {columns} }}

[subject.erase.meeting_note]
action = "anonymise"
columns = {{ body = "redact" }}

[subject.erase.candidate]
action = "delete"
columns = {{ name = "null", email = "null" }}
"""


def expected_after(strategies: dict[str, str]) -> dict[str, dict[tuple, dict]]:
    """The database after erasing candidate 1: every row, changed or not."""
    expected = {name: {_key(name, r): dict(r) for r in rows} for name, rows in ROWS.items()}

    def apply(strategy: str, value: object) -> object:
        if strategy == "hash":
            return hash_value(value, TEST_KEY.encode(), None)
        if strategy == "redact":
            return REDACTED
        return None

    for course in (1, 2):
        row = expected["enrolment"][(course, 1)]
        for column, strategy in strategies.items():
            row[column] = apply(strategy, row[column])
    # Her own note is anonymised; the joint note (10) is kept as it is: Jens's too.
    expected["meeting_note"][(11,)]["body"] = REDACTED
    # Her link rows go; the candidate row stays, anonymised: her enrolments refer to it.
    del expected["candidate_meeting_note"][(1, 10)]
    del expected["candidate_meeting_note"][(1, 11)]
    expected["candidate"][(1,)].update(name=None, email=None)
    return expected


def _key(table: str, row: dict) -> tuple:
    columns = {
        "enrolment": ("course_id", "candidate_id"),
        "candidate_meeting_note": ("candidate_id", "note_id"),
    }.get(table, ("id",))
    return tuple(row[c] for c in columns)


EXPECTED_ERASED = {
    ("enrolment", "anonymised"): 2,
    ("meeting_note", "anonymised"): 1,
    ("candidate_meeting_note", "deleted"): 2,
    ("candidate", "anonymised"): 1,
}
EXPECTED_KEPT = {("meeting_note", 1, SHARED_BASIS)}


def assert_no_personal_value(*texts: str) -> None:
    for text in texts:
        for marker in MARKERS:
            assert marker not in text, marker


@pytest.mark.parametrize("strategies", list(STRATEGIES.values()), ids=list(STRATEGIES))
def test_anonymise_keeps_shared_rows_and_matches_every_key_column(
    target_db: TargetDb, tmp_path: Path, monkeypatch, strategies: dict[str, str]
):
    target_db.create(schema(), ROWS)
    config = write_config(tmp_path, config_body(strategies), target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == {n: {_key(n, r): r for r in rows} for n, rows in ROWS.items()}

    dry = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert dump(target_db.url) == before  # a dry run changes nothing
    assert_no_personal_value(dry.stdout, dry.stderr)

    receipt = tmp_path / "receipt.json"
    real = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}",
                   "--receipt", str(receipt))  # fmt: skip
    assert real.exit_code == 0, real.stderr
    assert_no_personal_value(real.stdout, real.stderr, receipt.read_text())

    # Every row of every table: exactly her rows changed, nobody else's.
    after = dump(target_db.url)
    assert after == expected_after(strategies)
    assert after["enrolment"][(1, 2)] == before["enrolment"][(1, 2)]  # same course, Jens
    assert after["meeting_note"][(10,)] == before["meeting_note"][(10,)]  # shared: as it was

    document = json.loads(receipt.read_text())
    erased = {(e["table"], e["action"]): e["rows"] for e in document["erased"]}
    kept = {(k["table"], k["rows"], k["basis"]) for k in document["kept"]}
    assert erased == EXPECTED_ERASED
    assert kept == EXPECTED_KEPT
    assert document["dry_run"] is False
    # The dry run counted exactly what the erasure then did.
    planned = dry.json()
    assert planned["dry_run"] is True
    assert {(e["table"], e["action"]): e["rows"] for e in planned["erased"]} == erased
    assert {(k["table"], k["rows"], k["basis"]) for k in planned["kept"]} == kept
    assert planned["tables"] == document["tables"]
    # The text receipt says the same in words.
    assert "kept 1 row(s) in meeting_note — basis: " + SHARED_BASIS in real.stdout
    assert "anonymised 2 row(s) in enrolment" in real.stdout

    # Erasing again finds no one (her e-mail is gone) and changes nothing.
    again = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["erased"] == []
    assert dump(target_db.url) == after

    # A backup restored, then replayed: the same rows again — the shared note was not
    # recorded as anonymised, so the replay leaves it as it is too.
    restore(target_db, before)
    assert dump(target_db.url) == before
    replayed = run_cli("replay", "-c", str(config), "--since", "2000-01-01", "--json")
    assert replayed.exit_code == 0, replayed.stderr
    assert_no_personal_value(replayed.stdout, replayed.stderr)
    assert dump(target_db.url) == after


def restore(target_db: TargetDb, snapshot: dict[str, dict[tuple, dict]]) -> None:
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
            for table in metadata.sorted_tables:
                if snapshot[table.name]:
                    connection.execute(table.insert(), list(snapshot[table.name].values()))
    finally:
        engine.dispose()
