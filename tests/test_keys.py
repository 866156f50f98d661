"""Sweeps on every key shape: composite, UUID, text, BIGINT and negative keys, no key.

Each test builds a table on SQLite, PostgreSQL and MariaDB, runs the real CLI with a
small batch size (so key ranges are crossed many times) and compares every row after
the run with the rows that were due.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import TargetDb, run_cli, write_config

AS_OF = "2026-06-01"
OLD = dt.datetime(2025, 1, 1, 12)  # due under "1 year" at AS_OF
NEW = dt.datetime(2026, 5, 1, 12)  # not due


def rule(table: str, action: str = "delete", extra: str = "") -> str:
    columns = 'columns = { note = "null" }\n' if action == "anonymise" else ""
    return (
        f'[[rules]]\nid = "r"\ntable = "{table}"\naction = "{action}"\nafter = "1 year"\n'
        f'since = "happened_at"\n{columns}{extra}'
    )


def all_rows(target_db: TargetDb, table: str, order: str) -> list[tuple]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
            return [
                tuple(row)
                for row in connection.execute(
                    sa.select(reflected).order_by(*(reflected.c[c] for c in order.split(",")))
                )
            ]
    finally:
        engine.dispose()


def sweep(tmp_path, target_db: TargetDb, monkeypatch, body: str, *extra: str):
    config = write_config(tmp_path, body, target_db.url, monkeypatch, extra_sweep="batch_size = 3")
    planned = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert planned.exit_code == 0, planned.stderr
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--force", "--json", *extra)
    assert result.exit_code == 0, result.stderr + result.stdout
    item = result.json()["items"][0]
    assert item["done"] == planned.json()["items"][0]["due"] == item["due"]
    again = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert again.json()["items"][0]["due"] == 0
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0
    return item


@pytest.mark.parametrize("action", ["delete", "anonymise"])
def test_composite_key_sweeps_exactly_the_due_rows(target_db, tmp_path, monkeypatch, action):
    # A link table keyed (course_id, candidate_id): every pair is a different row, and
    # the same course_id or candidate_id appears in due and not-due rows alike.
    metadata = sa.MetaData()
    sa.Table(
        "enrolment",
        metadata,
        sa.Column("course_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("candidate_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("happened_at", sa.DateTime),
        sa.Column("note", sa.String(40)),
    )
    rows = []
    for course in (1, 2, 3):
        for candidate in (-2, 5, 7, 9):
            due = (course + candidate) % 2 == 0
            rows.append(
                {
                    "course_id": course,
                    "candidate_id": candidate,
                    "happened_at": OLD if due else NEW,
                    "note": f"n{course}{candidate}",
                }
            )
    target_db.create(metadata, {"enrolment": rows})
    item = sweep(tmp_path, target_db, monkeypatch, rule("enrolment", action))
    expected_due = [r for r in rows if r["happened_at"] == OLD]
    assert item["done"] == len(expected_due) == 7
    after = all_rows(target_db, "enrolment", "course_id,candidate_id")
    if action == "delete":
        kept = sorted((r["course_id"], r["candidate_id"]) for r in rows if r["happened_at"] == NEW)
        assert [(r[0], r[1]) for r in after] == kept
    else:
        assert len(after) == len(rows)
        for row in after:
            due = (row[0] + row[1]) % 2 == 0
            assert row[3] == (None if due else f"n{row[0]}{row[1]}"), row


def test_composite_key_with_a_timestamp_column(target_db, tmp_path, monkeypatch):
    # A partitioned table's key includes its partition column: (id, happened_at).
    metadata = sa.MetaData()
    sa.Table(
        "event",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("happened_at", sa.DateTime, primary_key=True),
        sa.Column("note", sa.String(40)),
    )
    rows = [
        {"id": i % 4, "happened_at": (OLD if i % 3 else NEW) + dt.timedelta(minutes=i), "note": "x"}
        for i in range(20)
    ]
    target_db.create(metadata, {"event": rows})
    item = sweep(tmp_path, target_db, monkeypatch, rule("event"))
    assert item["done"] == sum(1 for i in range(20) if i % 3)
    after = all_rows(target_db, "event", "id,happened_at")
    assert sorted((r[0], r[1]) for r in after) == sorted(
        (r["id"], r["happened_at"]) for r in rows if r["happened_at"] >= NEW
    )


@pytest.mark.parametrize("action", ["delete", "anonymise"])
def test_uuid_keys(target_db, tmp_path, monkeypatch, action):
    # PostgreSQL's native uuid (no max(uuid)); CHAR(32) elsewhere.
    metadata = sa.MetaData()
    sa.Table(
        "visit",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("happened_at", sa.DateTime),
        sa.Column("note", sa.String(40)),
    )
    ids = [uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % (1 << 128)) for i in range(1, 15)]
    rows = [{"id": u, "happened_at": OLD if i % 2 else NEW, "note": "x"} for i, u in enumerate(ids)]
    target_db.create(metadata, {"visit": rows})
    item = sweep(tmp_path, target_db, monkeypatch, rule("visit", action))
    assert item["done"] == 7
    # Reflected back as CHAR(32) (hex) on SQLite and MariaDB: compare as UUIDs.
    after = {uuid.UUID(str(r[0])): r for r in all_rows(target_db, "visit", "id")}
    for i, u in enumerate(ids):
        if action == "delete":
            assert (u in after) == (i % 2 == 0)
        else:
            assert after[u][2] == (None if i % 2 else "x")


@pytest.mark.parametrize("collated", [False, True])
def test_text_keys_in_mixed_case_and_unicode(target_db, tmp_path, monkeypatch, collated):
    # Collated: the key column orders and compares case-insensitively (MariaDB's
    # utf8mb4_general_ci, SQLite's NOCASE, PostgreSQL's default linguistic collation).
    collation = None
    if collated:
        collation = {"mariadb": "utf8mb4_general_ci", "sqlite": "NOCASE"}.get(target_db.engine_name)
    metadata = sa.MetaData()
    sa.Table(
        "account",
        metadata,
        sa.Column("code", sa.String(20, collation=collation), primary_key=True),
        sa.Column("happened_at", sa.DateTime),
        sa.Column("note", sa.String(40)),
    )
    # Unique under every engine's collation (MariaDB's may be case-insensitive).
    codes = ["a", "B", "c-1", "c_2", "Ö", "z", "aa", "Ab", "0", "9x", "é", "ß", "-"]
    rows = [
        {"code": c, "happened_at": OLD if i % 3 != 1 else NEW, "note": "x"}
        for i, c in enumerate(codes)
    ]
    target_db.create(metadata, {"account": rows})
    item = sweep(tmp_path, target_db, monkeypatch, rule("account"))
    assert item["done"] == sum(1 for i in range(len(codes)) if i % 3 != 1)
    left = {r[0] for r in all_rows(target_db, "account", "code")}
    assert left == {c for i, c in enumerate(codes) if i % 3 == 1}


def test_bigint_and_negative_keys(target_db, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    sa.Table(
        "ledger",
        metadata,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("happened_at", sa.DateTime),
        sa.Column("note", sa.String(40)),
    )
    ids = [-(2**62), -5, -1, 0, 1, 2**31, 2**40 + 3, 2**62]
    rows = [
        {"id": k, "happened_at": OLD if i % 2 == 0 else NEW, "note": "x"} for i, k in enumerate(ids)
    ]
    target_db.create(metadata, {"ledger": rows})
    item = sweep(tmp_path, target_db, monkeypatch, rule("ledger"))
    assert item["done"] == 4
    assert [r[0] for r in all_rows(target_db, "ledger", "id")] == ids[1::2]


def test_hash_strategy_on_a_composite_key(target_db, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    sa.Table(
        "enrolment",
        metadata,
        sa.Column("course_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("candidate", sa.String(10), primary_key=True),
        sa.Column("happened_at", sa.DateTime),
        sa.Column("note", sa.String(80)),
    )
    rows = [
        {"course_id": c, "candidate": p, "happened_at": OLD if c == 1 else NEW, "note": f"{c}{p}"}
        for c in (1, 2)
        for p in ("a", "b", "c", "d")
    ]
    target_db.create(metadata, {"enrolment": rows})
    body = rule("enrolment", "anonymise").replace('note = "null"', 'note = "hash"')
    item = sweep(tmp_path, target_db, monkeypatch, body)
    assert item["done"] == 4
    after = all_rows(target_db, "enrolment", "course_id,candidate")
    hashed = [r[3] for r in after if r[0] == 1]
    assert all(h.startswith("hmac:") for h in hashed) and len(set(hashed)) == 4
    assert [r[3] for r in after if r[0] == 2] == ["2a", "2b", "2c", "2d"]


def test_a_table_without_a_primary_key_is_refused_by_check(target_db, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    sa.Table("log", metadata, sa.Column("happened_at", sa.DateTime), sa.Column("note", sa.Text))
    target_db.create(metadata, {"log": [{"happened_at": OLD, "note": "x"}]})
    config = write_config(tmp_path, rule("log"), target_db.url, monkeypatch)
    before = target_db.checksum()
    checked = run_cli("check", "-c", str(config))
    assert checked.exit_code == 2
    assert "rules[0].table: table 'log' has no primary key" in checked.stdout
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--force")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "has no primary key" in result.stderr
    assert target_db.checksum() == before


TRIGGER_THAT_REFUSES_DELETES = {
    "sqlite": [
        "CREATE TRIGGER a_refuses BEFORE DELETE ON a "
        "BEGIN SELECT RAISE(ABORT, 'secret value 4711'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION a_refuses() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'secret value 4711'; END $$",
        "CREATE TRIGGER a_refuses BEFORE DELETE ON a FOR EACH ROW EXECUTE FUNCTION a_refuses()",
    ],
    "mariadb": [
        "CREATE TRIGGER a_refuses BEFORE DELETE ON a FOR EACH ROW "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'secret value 4711'"
    ],
}


def test_a_failing_rule_is_named_and_the_other_rules_still_run(target_db, tmp_path, monkeypatch):
    # A trigger refuses every delete from `a` (as an application's own guard might):
    # rule `first` fails in the database, rule `second` on `b` still runs.
    metadata = sa.MetaData()
    for name in ("a", "b"):
        sa.Table(
            name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("happened_at", sa.DateTime),
            sa.Column("note", sa.String(40)),
        )
    target_db.create(
        metadata,
        {
            "a": [{"id": i, "happened_at": OLD, "note": "x"} for i in (1, 2)],
            "b": [{"id": i, "happened_at": OLD, "note": "x"} for i in (1, 2, 3)],
        },
    )
    engine = target_db.engine()
    with engine.begin() as connection:
        for statement in TRIGGER_THAT_REFUSES_DELETES[target_db.engine_name]:
            connection.exec_driver_sql(statement)
    engine.dispose()
    body = (
        rule("a").replace('id = "r"', 'id = "first"')
        + "\n"
        + rule("b").replace('id = "r"', 'id = "second"')
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--force", "--json")
    assert result.exit_code == 3, result.stdout + result.stderr
    document = result.json()
    failure = " ".join(f["error"] for f in document["failures"])
    assert "rule first:" in failure, failure
    assert "4711" not in result.stdout + result.stderr  # the database's text may quote values
    items = {i["rule"]: i for i in document["items"]}
    assert (items["first"]["done"], items["second"]["done"]) == (0, 3)
    assert all_rows(target_db, "b", "id") == []
    assert [r[0] for r in all_rows(target_db, "a", "id")] == [1, 2]
