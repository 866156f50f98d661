"""The subject graph's shapes: composite foreign keys, and tables in other schemas.

Composite keys (every engine): a multi-tenant schema where every key is
`(tenant_id, id)`. The person's applications are found by `(tenant_id, candidate_id)`
as a whole, and their interviews by `(tenant_id, application_id)` — never another
tenant's candidate 1 or application 100, nor a colleague's rows in the same tenant.
A kept invoice referring to her through the composite key keeps her candidate row
(anonymised, not deleted), and a meeting note linked to a colleague too is shared:
kept as it is.

Other schemas (PostgreSQL): `billing.note → hr.candidate`, `public.cv → hr.candidate`,
`hr.cv_comment → public.cv`: every one of those tables is the person's, exported and
erased children first without a foreign-key violation.

Each test reads every table before and after, and checks that export, `--dry-run` and
the real erasure agree on exactly the person's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.subject.receipts import SHARED_BASIS
from tests.conftest import TargetDb, run_cli, write_config
from tests.erase_support import erased_and_kept, export_dry_run_erase, exported_tables

EMAIL = "mette.marker@example.dk"
NAME = "Mette Markersen"
MARKERS = (EMAIL, NAME, "Markersen", "mette-app", "mette-interview", "only-hers", "mette-cv")


def dump(url: str, schemas: tuple[str | None, ...] = (None,)) -> dict[str, dict[tuple, dict]]:
    """Every row of every table (of `schemas`), by primary key."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            tables: dict[str, dict[tuple, dict]] = {}
            for schema in schemas:
                metadata = sa.MetaData()
                metadata.reflect(connection, schema=schema)
                for table in metadata.tables.values():
                    if table.schema != schema:
                        continue
                    pk = list(table.primary_key.columns)
                    name = f"{schema}.{table.name}" if schema else table.name
                    tables[name] = {
                        tuple(row[c.name] for c in pk): dict(row)
                        for row in connection.execute(sa.select(table).order_by(*pk)).mappings()
                    }
            return tables
    finally:
        engine.dispose()


def run_all(config: Path, tmp_path: Path) -> tuple[Path, dict, dict]:
    """Export, dry run, real erasure: return the export file and both documents."""
    return export_dry_run_erase(config, tmp_path, f"email={EMAIL}", MARKERS)


# --- composite foreign keys ---------------------------------------------------------


def tenant_schema() -> sa.MetaData:
    m = sa.MetaData()
    key = {"primary_key": True, "autoincrement": False}
    sa.Table("candidate", m, sa.Column("tenant_id", sa.Integer, **key),
             sa.Column("id", sa.Integer, **key), sa.Column("name", sa.String(120)),
             sa.Column("email", sa.String(254), index=True))  # fmt: skip
    sa.Table(
        "application", m,
        sa.Column("tenant_id", sa.Integer, **key), sa.Column("id", sa.Integer, **key),
        sa.Column("candidate_id", sa.Integer, nullable=False), sa.Column("note", sa.Text),
        sa.ForeignKeyConstraint(["tenant_id", "candidate_id"],
                                ["candidate.tenant_id", "candidate.id"]),
    )  # fmt: skip
    sa.Table(
        "interview", m,
        sa.Column("id", sa.Integer, **key), sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("application_id", sa.Integer, nullable=False), sa.Column("notes", sa.Text),
        sa.ForeignKeyConstraint(["tenant_id", "application_id"],
                                ["application.tenant_id", "application.id"]),
    )  # fmt: skip
    sa.Table("meeting_note", m, sa.Column("tenant_id", sa.Integer, **key),
             sa.Column("id", sa.Integer, **key), sa.Column("body", sa.Text))  # fmt: skip
    sa.Table(
        "candidate_meeting_note", m,
        sa.Column("tenant_id", sa.Integer, **key), sa.Column("candidate_id", sa.Integer, **key),
        sa.Column("note_id", sa.Integer, **key),
        sa.ForeignKeyConstraint(["tenant_id", "candidate_id"],
                                ["candidate.tenant_id", "candidate.id"]),
        sa.ForeignKeyConstraint(["tenant_id", "note_id"],
                                ["meeting_note.tenant_id", "meeting_note.id"]),
    )  # fmt: skip
    sa.Table(
        "invoice", m,
        sa.Column("id", sa.Integer, **key), sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("candidate_id", sa.Integer), sa.Column("amount", sa.Integer),
        sa.ForeignKeyConstraint(["tenant_id", "candidate_id"],
                                ["candidate.tenant_id", "candidate.id"]),
    )  # fmt: skip
    return m


# Mette is candidate 1 of tenant 1. Jens is candidate 2 of the same tenant; Ole is
# candidate 1 of tenant 2, whose application 100 has the same id as hers.
TENANT_ROWS: dict[str, list[dict]] = {
    "candidate": [
        {"tenant_id": 1, "id": 1, "name": NAME, "email": EMAIL},
        {"tenant_id": 1, "id": 2, "name": "Jens Other", "email": "jens@example.dk"},
        {"tenant_id": 2, "id": 1, "name": "Ole Tenant", "email": "ole@example.dk"},
    ],
    "application": [
        {"tenant_id": 1, "id": 100, "candidate_id": 1, "note": "mette-app"},
        {"tenant_id": 1, "id": 101, "candidate_id": 2, "note": "jens app"},
        {"tenant_id": 2, "id": 100, "candidate_id": 1, "note": "ole app"},
    ],
    "interview": [
        {"id": 1, "tenant_id": 1, "application_id": 100, "notes": "mette-interview"},
        {"id": 2, "tenant_id": 1, "application_id": 101, "notes": "jens interview"},
        {"id": 3, "tenant_id": 2, "application_id": 100, "notes": "ole interview"},
    ],
    "meeting_note": [
        {"tenant_id": 1, "id": 10, "body": "joint meeting"},
        {"tenant_id": 1, "id": 11, "body": "only-hers"},
        {"tenant_id": 1, "id": 12, "body": "only his"},
        {"tenant_id": 2, "id": 13, "body": "ole's meeting"},
    ],
    "candidate_meeting_note": [
        {"tenant_id": 1, "candidate_id": 1, "note_id": 10},
        {"tenant_id": 1, "candidate_id": 2, "note_id": 10},
        {"tenant_id": 1, "candidate_id": 1, "note_id": 11},
        {"tenant_id": 1, "candidate_id": 2, "note_id": 12},
        {"tenant_id": 2, "candidate_id": 1, "note_id": 13},
    ],
    "invoice": [
        {"id": 1, "tenant_id": 1, "candidate_id": 1, "amount": 500},
        {"id": 2, "tenant_id": 2, "candidate_id": 1, "amount": 700},
        {"id": 3, "tenant_id": 1, "candidate_id": 2, "amount": 900},
    ],
}

TENANT_KEYS = {
    "candidate": ("tenant_id", "id"),
    "application": ("tenant_id", "id"),
    "meeting_note": ("tenant_id", "id"),
    "candidate_meeting_note": ("tenant_id", "candidate_id", "note_id"),
}

TENANT_CONFIG = """
[subject]
root = "candidate"
identifiers = { email = "email" }

[[subject.links]]
table = "meeting_note"
column = "id"
references = "candidate_meeting_note.note_id"

[subject.erase.invoice]
action = "keep"
basis = "bookkeeping act"

[subject.erase.candidate]
action = "delete"
columns = { name = "null", email = "null" }
"""

#: Her rows, by table and key.
HERS = {
    "candidate": {(1, 1)},
    "application": {(1, 100)},
    "interview": {(1,)},
    "meeting_note": {(1, 10), (1, 11)},
    "candidate_meeting_note": {(1, 1, 10), (1, 1, 11)},
    "invoice": {(1,)},
}


def by_key(rows: dict[str, list[dict]], keys: dict[str, tuple[str, ...]]):
    return {
        name: {tuple(r[c] for c in keys.get(name, ("id",))): dict(r) for r in table_rows}
        for name, table_rows in rows.items()
    }


def test_composite_foreign_keys_find_exactly_the_persons_rows(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(tenant_schema(), TENANT_ROWS)
    config = write_config(tmp_path, TENANT_CONFIG, target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == by_key(TENANT_ROWS, TENANT_KEYS)

    out, dry, receipt = run_all(config, tmp_path)

    # The export: exactly her rows, in every table, nobody else's.
    rows = exported_tables(out)
    assert set(rows) == set(HERS)
    for name, keys in HERS.items():
        columns = TENANT_KEYS.get(name, ("id",))
        got = {tuple(r[c] for c in columns): r for r in rows[name]}
        assert set(got) == keys, name
        assert got == {k: before[name][k] for k in keys}, name

    erased = {
        ("interview", "deleted", 1),
        ("application", "deleted", 1),
        ("candidate_meeting_note", "deleted", 2),
        ("meeting_note", "deleted", 1),
        # the kept invoice still refers to her through (tenant_id, candidate_id)
        ("candidate", "anonymised", 1),
    }
    kept = {("invoice", 1, "bookkeeping act"), ("meeting_note", 1, SHARED_BASIS)}
    assert erased_and_kept(dry) == (erased, kept)
    assert erased_and_kept(receipt) == (erased, kept)
    assert dump(target_db.url) != before

    # Every row of every table afterwards: exactly her rows changed.
    expected = by_key(TENANT_ROWS, TENANT_KEYS)
    del expected["interview"][(1,)]
    del expected["application"][(1, 100)]
    del expected["candidate_meeting_note"][(1, 1, 10)]
    del expected["candidate_meeting_note"][(1, 1, 11)]
    del expected["meeting_note"][(1, 11)]
    expected["candidate"][(1, 1)].update(name=None, email=None)
    after = dump(target_db.url)
    assert after == expected
    # The same candidate id in another tenant, and a colleague in hers, as they were.
    assert after["candidate"][(2, 1)] == before["candidate"][(2, 1)]
    assert after["application"][(2, 100)] == before["application"][(2, 100)]
    assert after["interview"][(3,)] == before["interview"][(3,)]
    assert after["candidate"][(1, 2)] == before["candidate"][(1, 2)]


def test_dry_run_changes_nothing_with_composite_keys(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(tenant_schema(), TENANT_ROWS)
    config = write_config(tmp_path, TENANT_CONFIG, target_db.url, monkeypatch)
    before = target_db.checksum()
    dry = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert target_db.checksum() == before


# --- other schemas (PostgreSQL) -------------------------------------------------------

SCHEMAS = ("hr", "billing", None)


@pytest.fixture
def pg_schemas(target_db: TargetDb) -> Iterator[TargetDb]:
    """PostgreSQL with schemas `hr` and `billing` (dropped again afterwards)."""
    if target_db.engine_name != "postgresql":
        pytest.skip("schemas other than the default: a PostgreSQL test")
    engine = target_db.engine()

    def drop() -> None:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS billing CASCADE")
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS hr CASCADE")

    try:
        drop()
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE SCHEMA hr")
            connection.exec_driver_sql("CREATE SCHEMA billing")
        yield target_db
        drop()
    finally:
        engine.dispose()


def schemas_metadata() -> sa.MetaData:
    m = sa.MetaData()
    sa.Table("candidate", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(120)), sa.Column("email", sa.String(254), index=True),
             schema="hr")  # fmt: skip
    sa.Table("note", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("candidate_id", sa.Integer, sa.ForeignKey("hr.candidate.id"), index=True),
             sa.Column("body", sa.Text), schema="billing")  # fmt: skip
    sa.Table("note_line", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("note_id", sa.Integer, sa.ForeignKey("billing.note.id"), index=True),
             sa.Column("text", sa.Text), schema="billing")  # fmt: skip
    sa.Table("cv", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("candidate_id", sa.Integer, sa.ForeignKey("hr.candidate.id"), index=True),
             sa.Column("body", sa.Text))  # fmt: skip
    sa.Table("cv_comment", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("cv_id", sa.Integer, sa.ForeignKey("cv.id"), index=True),
             sa.Column("text", sa.Text), schema="hr")  # fmt: skip
    return m


SCHEMA_ROWS: dict[str, list[dict]] = {
    "candidate": [{"id": 1, "name": NAME, "email": EMAIL},
                  {"id": 2, "name": "Jens Other", "email": "jens@example.dk"}],
    "note": [{"id": 1, "candidate_id": 1, "body": "mette-note"},
             {"id": 2, "candidate_id": 2, "body": "jens note"},
             {"id": 3, "candidate_id": 1, "body": "mette-note 2"}],
    "note_line": [{"id": 1, "note_id": 1, "text": "only-hers"},
                  {"id": 2, "note_id": 2, "text": "his line"}],
    "cv": [{"id": 1, "candidate_id": 1, "body": "mette-cv"},
           {"id": 2, "candidate_id": 2, "body": "jens cv"}],
    "cv_comment": [{"id": 1, "cv_id": 1, "text": "mette-cv comment"},
                   {"id": 2, "cv_id": 2, "text": "jens cv comment"},
                   {"id": 3, "cv_id": 1, "text": "mette-cv comment 2"}],
}  # fmt: skip

QUALIFIED = {
    "candidate": "hr.candidate",
    "note": "billing.note",
    "note_line": "billing.note_line",
    "cv": "cv",
    "cv_comment": "hr.cv_comment",
}

SCHEMA_HERS = {
    "hr.candidate": {(1,)},
    "billing.note": {(1,), (3,)},
    "billing.note_line": {(1,)},
    "cv": {(1,)},
    "hr.cv_comment": {(1,), (3,)},
}

SCHEMA_CONFIG = """
[subject]
root = "hr.candidate"
identifiers = { email = "email" }
"""


def test_other_schemas_are_followed_exported_and_erased(
    pg_schemas: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pg_schemas.create(schemas_metadata(), SCHEMA_ROWS)
    config = write_config(tmp_path, SCHEMA_CONFIG, pg_schemas.url, monkeypatch)
    before = dump(pg_schemas.url, SCHEMAS)
    initial = {QUALIFIED[n]: {(r["id"],): r for r in rows} for n, rows in SCHEMA_ROWS.items()}
    assert before == initial

    out, dry, receipt = run_all(config, tmp_path)

    rows = exported_tables(out)
    assert set(rows) == set(SCHEMA_HERS)
    for name, keys in SCHEMA_HERS.items():
        assert {(r["id"],): r for r in rows[name]} == {k: before[name][k] for k in keys}, name

    erased = {(name, "deleted", len(keys)) for name, keys in SCHEMA_HERS.items()}
    assert erased_and_kept(dry) == (erased, set())
    assert erased_and_kept(receipt) == (erased, set())

    expected = {
        name: {k: r for k, r in table.items() if k not in SCHEMA_HERS[name]}
        for name, table in initial.items()
    }
    assert dump(pg_schemas.url, SCHEMAS) == expected
