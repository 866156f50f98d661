"""`replay` after a restore acts on the erased person only (issue 17 point 1), every engine.

An erasure records its root row (key sealed, a keyed fingerprint of the identifiers)
once it committed. `replay` re-finds the row by its key and erases again from it
through the subject graph only when the fingerprint matches: after a restore of an
older backup the person is erased again (children found through the root); a key that
now belongs to a new person (a rowid reused, a sequence reset) is reported "not the
erased person" and nothing of theirs changes; an erasure that failed recorded nothing.
Integer, UUID, text and composite keys. `audit find` answers by any identifier of the
erased row (issue 17 point 4).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gdpr_sweep.subject.reapply import ALREADY_ERASED, NOT_THE_PERSON
from tests.conftest import TargetDb, run_cli, write_config

EMAIL = "rikke.replay@example.dk"
CPR = "010190-1234"
NEW_EMAIL = "nina.new@example.dk"
MARKERS = (EMAIL, CPR, NEW_EMAIL, "Rikke", "Nina", "rikke-note", "nina-note")

CONFIG = """
[subject]
root = "person"
identifiers = { email = "email", cpr = "cpr" }
"""


def key_columns(shape: str, dialect: str) -> list[sa.Column]:
    if shape == "integer":
        return [sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)]
    if shape == "uuid":
        kind = sa.Uuid() if dialect == "postgresql" else sa.String(36)
        return [sa.Column("id", kind, primary_key=True)]
    if shape == "text":
        return [sa.Column("id", sa.String(40), primary_key=True)]
    return [  # composite
        sa.Column("tenant", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    ]


def key_value(shape: str, dialect: str, n: int) -> dict[str, Any]:
    if shape == "integer":
        return {"id": n}
    if shape == "uuid":
        value = uuid.UUID(int=n)
        return {"id": value if dialect == "postgresql" else str(value)}
    if shape == "text":
        return {"id": f"P-{n:04d}"}
    return {"tenant": 7, "id": n}


def schema(shape: str, dialect: str) -> sa.MetaData:
    m = sa.MetaData()
    person_key = key_columns(shape, dialect)
    sa.Table("person", m, *person_key, sa.Column("email", sa.String(100)),
             sa.Column("cpr", sa.String(11)), sa.Column("name", sa.String(100)))  # fmt: skip
    refs = [sa.Column(f"person_{c.name}", c.type) for c in key_columns(shape, dialect)]
    sa.Table(
        "note", m, sa.Column("note_id", sa.Integer, primary_key=True, autoincrement=False),
        *refs, sa.Column("body", sa.String(100)),
        sa.ForeignKeyConstraint([c.name for c in refs], [f"person.{c.name}" for c in person_key]),
    )  # fmt: skip
    return m


def rows(shape: str, dialect: str) -> dict[str, list[dict[str, Any]]]:
    def ref(n: int) -> dict[str, Any]:
        return {f"person_{k}": v for k, v in key_value(shape, dialect, n).items()}

    return {
        "person": [
            {**key_value(shape, dialect, 1), "email": EMAIL, "cpr": CPR, "name": "Rikke"},
            {**key_value(shape, dialect, 2), "email": "o@example.dk", "cpr": "x", "name": "O"},
        ],
        "note": [
            {"note_id": 1, **ref(1), "body": "rikke-note"},
            {"note_id": 2, **ref(1), "body": "rikke-note"},
            {"note_id": 3, **ref(2), "body": "other"},
        ],
    }


def dump(target_db: TargetDb) -> dict[str, list[tuple]]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            return {
                name: sorted((tuple(r) for r in connection.execute(sa.select(table))), key=repr)
                for name, table in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()


def restore(target_db: TargetDb, metadata: sa.MetaData, backup: dict[str, list[dict]]) -> None:
    """Put the backup back: every table emptied and refilled (children first)."""
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
            for table in metadata.sorted_tables:
                if backup.get(table.name):
                    connection.execute(table.insert(), backup[table.name])
    finally:
        engine.dispose()


def replay(config: Path, *extra: str) -> dict:
    result = run_cli("replay", "-c", str(config), "--since", "2000-01-01", "--json", *extra)
    assert result.exit_code == 0, result.stdout + result.stderr
    for marker in MARKERS:
        assert marker not in result.stdout + result.stderr
    return result.json()


def skipped(document: dict) -> dict[str, int]:
    return {s["reason"]: s["rows"] for s in document["skipped"]}


@pytest.mark.parametrize("shape", ["integer", "uuid", "text", "composite"])
def test_replay_after_a_restore_erases_the_same_person_again(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    dialect = target_db.engine_name
    metadata = schema(shape, dialect)
    backup = rows(shape, dialect)
    target_db.create(metadata, backup)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    before = dump(target_db)

    erased = run_cli("erase", "-c", str(config), "--subject", f"cpr={CPR}", "--json")
    assert erased.exit_code == 0, erased.stdout + erased.stderr
    after_erase = dump(target_db)
    assert len(after_erase["person"]) == 1 and len(after_erase["note"]) == 1

    # Nothing restored yet: replay finds the person gone, and changes nothing.
    nothing = replay(config)
    assert nothing["tables"] == [] and skipped(nothing) == {ALREADY_ERASED: 1}
    assert dump(target_db) == after_erase

    restore(target_db, metadata, backup)
    assert dump(target_db) == before
    dry = replay(config, "--dry-run")
    assert dump(target_db) == before
    real = replay(config)
    expected = {("main", "note", "deleted", 2), ("main", "person", "deleted", 1)}
    for document in (dry, real):
        assert {(t["database"], t["table"], t["action"], t["rows"]) for t in document["tables"]} \
            == expected  # fmt: skip
    assert dump(target_db) == after_erase
    assert skipped(replay(config)) == {ALREADY_ERASED: 1}  # idempotent


@pytest.mark.parametrize("shape", ["integer", "text", "composite"])
def test_a_reused_key_is_not_the_erased_person(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """After the erasure a new person gets the same key (a restore reset the sequence,
    SQLite reused the rowid): replay never touches her or her notes."""
    dialect = target_db.engine_name
    metadata = schema(shape, dialect)
    target_db.create(metadata, rows(shape, dialect))
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    assert run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}").exit_code == 0

    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            person, note = metadata.tables["person"], metadata.tables["note"]
            new = {"email": NEW_EMAIL, "cpr": "020202-2222", "name": "Nina"}
            connection.execute(person.insert(), [{**key_value(shape, dialect, 1), **new}])
            ref = {f"person_{k}": v for k, v in key_value(shape, dialect, 1).items()}
            connection.execute(note.insert(), [{"note_id": 9, **ref, "body": "nina-note"}])
    finally:
        engine.dispose()
    before = dump(target_db)

    for document in (replay(config, "--dry-run"), replay(config)):
        assert document["tables"] == []
        assert skipped(document) == {NOT_THE_PERSON: 1}
    assert dump(target_db) == before


def test_a_failed_erasure_records_nothing_replay_would_act_on(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The erasure refuses (a reference whose action is "refuse"): nothing changed, and
    replay after a later restore has nothing to act on."""
    m = sa.MetaData()
    sa.Table("person", m, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(100)), sa.Column("cpr", sa.String(11)),
             sa.Column("buddy_id", sa.Integer, sa.ForeignKey("person.id")))  # fmt: skip
    data = {"person": [{"id": 1, "email": EMAIL, "cpr": CPR, "buddy_id": None},
                       {"id": 2, "email": NEW_EMAIL, "cpr": "y", "buddy_id": 1}]}  # fmt: skip
    target_db.create(m, data)
    body = CONFIG + '[[subject.references]]\ntable = "person"\ncolumn = "buddy_id"\n'
    config = write_config(tmp_path, body + 'action = "refuse"\n', target_db.url, monkeypatch)
    before = dump(target_db)
    refused = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}")
    assert refused.exit_code == 3, refused.stdout + refused.stderr
    assert "subject.references[0] (person.buddy_id → person)" in refused.stdout
    assert dump(target_db) == before

    # The reference is then allowed to be nulled; replay still has nothing recorded.
    allowed = write_config(tmp_path, body, target_db.url, monkeypatch)
    document = replay(allowed)
    assert document["tables"] == [] and document["skipped"] == []
    assert dump(target_db) == before


def test_an_anonymised_root_is_already_erased_and_audit_find_answers_by_any_identifier(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = target_db.engine_name
    metadata = schema("integer", dialect)
    backup = rows("integer", dialect)
    target_db.create(metadata, backup)
    body = CONFIG + '[subject.erase.person]\naction = "anonymise"\n'
    body += 'columns = { email = "null", cpr = "null", name = "hash" }\n'
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    assert run_cli("erase", "-c", str(config), "--subject", f"cpr={CPR}").exit_code == 0
    anonymised = dump(target_db)

    assert skipped(replay(config)) == {ALREADY_ERASED: 1}  # as the erasure left it
    assert dump(target_db) == anonymised
    restore(target_db, metadata, backup)
    real = replay(config)
    assert {(t["table"], t["action"], t["rows"]) for t in real["tables"]} == {
        ("note", "deleted", 2),
        ("person", "anonymised", 1),
    }
    assert dump(target_db) == anonymised  # the same pseudonyms: keyed, deterministic

    # Erased by CPR: found by e-mail too, and by CPR; another person's e-mail finds nothing.
    for subject, commands in (
        (f"email={EMAIL}", ["erase"]),
        (f"cpr={CPR}", ["erase"]),
        ("email=o@example.dk", []),
    ):
        found = run_cli("audit", "find", "-c", str(config), "--subject", subject, "--json")
        assert found.exit_code == 0
        assert [r["command"] for r in found.json()["runs"]] == commands, subject
    state = (tmp_path / "state.db").read_bytes()
    for marker in MARKERS:
        assert marker.encode() not in state
