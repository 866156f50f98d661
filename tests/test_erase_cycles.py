"""Foreign-key cycles among the person's rows (issue 16, point 7).

`person.main_address_id → address` (nullable, added with ALTER TABLE) and
`address.person_id → person` (NOT NULL) form a real cycle; `address.previous_address_id
→ address` is a self-reference among her own rows too. Erasing Mette deletes her person
row and her addresses in one transaction — the nullable side is set to NULL on her rows
first — exits 0, and the dry run counts exactly that; other people are untouched. When
Jens moved into Mette's old flat (his address's previous_address_id is hers), his
reference is nulled, nothing else of his changes.

When both sides of the cycle are NOT NULL, there is nothing to break it with: both
`erase --dry-run` and `erase` fail the database with the same one line naming the
tables (exit 3), and nothing is touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import TargetDb, write_config
from tests.erase_support import by_id, database_error, dump, personal_values, run_all

METTE = "email=mette.marker@example.dk"

CONFIG = """
[subject]
root = "person"
identifiers = { email = "email" }
"""

FK_SQL = (
    "ALTER TABLE person ADD CONSTRAINT fk_person_main_address "
    "FOREIGN KEY (main_address_id) REFERENCES address (id)"
)


def create_cycle(
    target_db: TargetDb,
    data: dict[str, list[dict]],
    nullable: bool,
    person_ondelete: str | None = None,
) -> None:
    """Create person ↔ address and insert `data`.

    PostgreSQL and MariaDB: tables first, rows, then the person → address foreign key
    with ALTER TABLE (the rows would not go in with both keys checked at once). SQLite
    cannot add a constraint later: it is declared inline, and the fixture's connection
    does not enforce foreign keys while inserting (gdpr-sweep's own connections do).
    """
    inline = target_db.engine_name == "sqlite"
    m = sa.MetaData()
    key = {"primary_key": True, "autoincrement": False}
    main_address = [sa.Column("main_address_id", sa.Integer, nullable=nullable, index=True)]
    if inline:
        main_address.append(
            sa.ForeignKeyConstraint(
                ["main_address_id"], ["address.id"], name="fk_person_main_address",
                use_alter=True,
            )
        )  # fmt: skip
    sa.Table("person", m, sa.Column("id", sa.Integer, **key),
             sa.Column("email", sa.String(120), index=True), sa.Column("name", sa.String(120)),
             *main_address)  # fmt: skip
    address = [
        sa.Column("id", sa.Integer, **key),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("person.id", ondelete=person_ondelete),
                  nullable=False, index=True),
        sa.Column("street", sa.String(120)),
    ]  # fmt: skip
    if "previous_address_id" in data["address"][0]:
        address.append(
            sa.Column("previous_address_id", sa.Integer, sa.ForeignKey("address.id"),
                      nullable=True, index=True)
        )  # fmt: skip
    sa.Table("address", m, *address)
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            m.create_all(connection)
            connection.execute(m.tables["person"].insert(), data["person"])
            connection.execute(m.tables["address"].insert(), data["address"])
            if not inline:
                connection.exec_driver_sql(FK_SQL)
    finally:
        engine.dispose()
    reflected = sa.MetaData()
    engine = target_db.engine()
    try:
        reflected.reflect(engine)
    finally:
        engine.dispose()
    # The cycle is real on every engine.
    assert {fk.column.table.name for fk in reflected.tables["person"].foreign_keys} == {"address"}


def nullable_rows(moved_in: bool = False) -> dict[str, list[dict]]:
    """Mette (1) lives at 101, having moved there from 100; Jens (2) at 200 — or, with
    `moved_in`, at 201, Mette's old flat 100 after her; Karen (3) has no address."""
    data = {
        "person": [
            {"id": 1, "email": "mette.marker@example.dk", "name": "Mette Markersen",
             "main_address_id": 101},
            {"id": 2, "email": "jens.jensen@example.dk", "name": "Jens Jensen",
             "main_address_id": 201 if moved_in else 200},
            {"id": 3, "email": "karen.lund@example.dk", "name": "Karen Lund",
             "main_address_id": None},
        ],
        "address": [
            {"id": 100, "person_id": 1, "street": "Vestergade 12", "previous_address_id": None},
            {"id": 101, "person_id": 1, "street": "Havnegade 5", "previous_address_id": 100},
            {"id": 200, "person_id": 2, "street": "Nørregade 7", "previous_address_id": None},
        ],
    }  # fmt: skip
    if moved_in:
        data["address"].append(
            {"id": 201, "person_id": 2, "street": "Vestergade 12 (Jens)",
             "previous_address_id": 100}
        )  # fmt: skip
    return data


def not_null_rows() -> dict[str, list[dict]]:
    return {
        "person": [
            {"id": 1, "email": "mette.marker@example.dk", "name": "Mette Markersen",
             "main_address_id": 100},
            {"id": 2, "email": "jens.jensen@example.dk", "name": "Jens Jensen",
             "main_address_id": 200},
        ],
        "address": [
            {"id": 100, "person_id": 1, "street": "Vestergade 12"},
            {"id": 101, "person_id": 1, "street": "Havnegade 5"},
            {"id": 200, "person_id": 2, "street": "Nørregade 7"},
        ],
    }  # fmt: skip


MARKERS = personal_values(
    {"a": nullable_rows(True)["person"] + nullable_rows(True)["address"]},
    {"email", "name", "street"},
)


@pytest.mark.parametrize("moved_in", [False, True], ids=["apart", "jens-moved-in"])
def test_a_nullable_cycle_is_broken_and_erased(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moved_in: bool
):
    data = nullable_rows(moved_in)
    create_cycle(target_db, data, nullable=True)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == by_id(data)

    erasure = run_all(config, tmp_path, METTE, MARKERS, url=target_db.url)

    assert erasure.export == {
        "person": {(1,): before["person"][(1,)]},
        "address": {k: before["address"][k] for k in ((100,), (101,))},
    }
    erased, kept, references = erasure.erased
    assert erased == {("person", "deleted", 1), ("address", "deleted", 2)}
    assert kept == set()
    # Her own rows' keys into each other are not references to other people; Jens's
    # previous_address_id into her old flat is (a self-reference).
    moved = {("address", ("previous_address_id",), "address", "nulled", 1)}
    assert references == (moved if moved_in else set())

    expected = by_id(data)
    del expected["person"][(1,)]
    del expected["address"][(100,)]
    del expected["address"][(101,)]
    if moved_in:
        expected["address"][(201,)]["previous_address_id"] = None
    assert dump(target_db.url) == expected


def test_a_not_null_cycle_refuses_with_one_line(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    create_cycle(target_db, not_null_rows(), nullable=False)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == by_id(not_null_rows())

    erasure = run_all(config, tmp_path, METTE, MARKERS, exit_code=3, url=target_db.url)

    assert set(erasure.export) == {"person", "address"}
    error = database_error(erasure.receipt)
    assert error is not None and "\n" not in error
    assert "person" in error and "address" in error, error
    assert database_error(erasure.dry) == error  # the same line from the dry run
    for document in (erasure.dry, erasure.receipt):
        assert document["erased"] == [] and document["kept"] == []
        assert document.get("references") == []
    assert dump(target_db.url) == before


# --- a self-reference among her own rows ------------------------------------------


def test_a_self_reference_among_her_own_rows(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Two employee rows of hers (an old account with the same e-mail reports to the
    new one): both deleted — the own-rows self-reference is broken first (MariaDB
    checks each deleted row at once) — and only Jens, who reports to her old account,
    counts as another person's reference."""
    m = sa.MetaData()
    sa.Table(
        "employee", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(120), index=True), sa.Column("name", sa.String(120)),
        sa.Column("reports_to", sa.Integer, sa.ForeignKey("employee.id"), nullable=True,
                  index=True),
    )  # fmt: skip
    data = {
        "employee": [
            {"id": 1, "email": "boss@example.dk", "name": "Bo Boss", "reports_to": None},
            {"id": 2, "email": "mette.marker@example.dk", "name": "Mette Markersen",
             "reports_to": 1},
            {"id": 3, "email": "mette.marker@example.dk", "name": "Mette M. (old account)",
             "reports_to": 2},
            {"id": 4, "email": "jens.jensen@example.dk", "name": "Jens Jensen",
             "reports_to": 3},
        ]
    }  # fmt: skip
    target_db.create(m, data)
    body = CONFIG.replace('root = "person"', 'root = "employee"')
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    before = dump(target_db.url)
    markers = personal_values(data, {"email", "name"})

    erasure = run_all(config, tmp_path, METTE, markers, url=target_db.url)

    assert erasure.export == {"employee": {k: before["employee"][k] for k in ((2,), (3,))}}
    assert erasure.erased == (
        {("employee", "deleted", 2)},
        set(),
        {("employee", ("reports_to",), "employee", "nulled", 1)},
    )
    expected = by_id(data)
    del expected["employee"][(2,)]
    del expected["employee"][(3,)]
    expected["employee"][(4,)]["reports_to"] = None
    assert dump(target_db.url) == expected


def test_a_not_null_cycle_with_a_cascade_is_not_blocking(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`address.person_id ... ON DELETE CASCADE`: deleting her person row takes her
    addresses with it, so the cycle blocks nothing (semantics.md: only a cycle of
    blocking foreign keys with no nullable column fails) — on SQLite and PostgreSQL.

    MariaDB (InnoDB) checks each cascaded delete at once: deleting person 1 cascades
    into address 100, which person 1 itself still references, and fails with error 1451
    (so does deleting the addresses first). Nothing can delete these rows there without
    switching foreign-key checks off, so this test expects what a blocking cycle does:
    the dry run and the erasure fail with the same one line, exit 3, nothing touched —
    never a dry run that promises what the erasure cannot do."""
    create_cycle(target_db, not_null_rows(), nullable=False, person_ondelete="CASCADE")
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    before = dump(target_db.url)
    blocked = target_db.engine_name == "mariadb"

    erasure = run_all(config, tmp_path, METTE, MARKERS, exit_code=3 if blocked else 0,
                      url=target_db.url)  # fmt: skip

    assert set(erasure.export) == {"person", "address"}
    if blocked:
        error = database_error(erasure.receipt)
        assert error is not None and "\n" not in error
        assert "person" in error and "address" in error, error
        assert database_error(erasure.dry) == error
        assert erasure.erased == (set(), set(), set())
        assert dump(target_db.url) == before
        return
    assert erasure.erased == (
        {("person", "deleted", 1), ("address", "deleted", 2)},
        set(),
        set(),
    )
    expected = by_id(not_null_rows())
    del expected["person"][(1,)]
    del expected["address"][(100,)]
    del expected["address"][(101,)]
    assert dump(target_db.url) == expected
