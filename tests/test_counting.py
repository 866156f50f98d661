"""Counting reads the table or walks the clock's index: the rows counted are the same.

On SQLite, `counting.py` counts a rule whose clock range holds more than a tenth of
the table by reading the table (`+clock`, no index); a narrower range walks the index.
These tests build an indexed table with known rows, count through the real CLI on every
engine at an as-of where the range is narrow and one where it is broad, compare with the
arithmetic done in Python, then run and check that verification finds nothing left. On
SQLite they also check that both access paths were really taken.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.catalog import Catalog
from gdpr_sweep.config import load_config
from gdpr_sweep.counting import count_due, scan_is_cheaper
from gdpr_sweep.periods import parse_as_of
from gdpr_sweep.rules import compile_rule
from tests.configs import rule_toml
from tests.conftest import TargetDb, run_cli, write_config

ROWS = 200
START = dt.datetime(2020, 1, 1, 12, 0)

RULE = rule_toml(
    "anon",
    "case_file",
    "anonymise",
    after="1 year",
    since="ended_at",
    only={"status": ["closed"]},
    unless_true="keep",
    columns={"name": "null", "notes": "redact"},
)


def case_rows() -> list[dict]:
    """Row i ended i days after START; a pattern of statuses, holds and done rows."""
    rows = []
    for i in range(ROWS):
        rows.append(
            {
                "id": i + 1,
                "ended_at": START + dt.timedelta(days=i),
                "status": "open" if i % 7 == 0 else "closed",
                "keep": i % 5 == 0,
                "name": None if i % 3 == 0 else f"person {i}",
                "notes": "[redacted]" if i % 3 == 0 else f"note {i}",
            }
        )
    return rows


def expected_due(rows: list[dict], as_of: dt.date) -> int:
    """A year before the as-of's local date; NULL name and redacted notes are done."""
    cutoff = dt.datetime(as_of.year - 1, as_of.month, as_of.day)
    return sum(
        1
        for r in rows
        if r["ended_at"] < cutoff
        and r["status"] == "closed"
        and not r["keep"]
        and (r["name"] is not None or r["notes"] != "[redacted]")
    )


@pytest.fixture
def case_file(target_db: TargetDb) -> list[dict]:
    metadata = sa.MetaData()
    table = sa.Table(
        "case_file",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("status", sa.String(10)),
        sa.Column("keep", sa.Boolean),
        sa.Column("name", sa.String(60)),
        sa.Column("notes", sa.Text),
    )
    sa.Index("ix_case_file_ended_at", table.c.ended_at)
    rows = case_rows()
    target_db.create(metadata, {"case_file": rows})
    return rows


# 2021-01-06: the range holds the first 5 days (2.5 % of the table): the index is walked.
# 2021-06-01: 152 of 200 rows are in range (76 %): the table is read.
AS_OFS = {"narrow": dt.date(2021, 1, 6), "broad": dt.date(2021, 6, 1)}


@pytest.mark.parametrize("width", AS_OFS)
def test_counts_and_run_agree_with_the_arithmetic(
    target_db: TargetDb, case_file: list[dict], tmp_path: Path, monkeypatch, width: str
) -> None:
    as_of = AS_OFS[width]
    expected = expected_due(case_file, as_of)
    assert expected > 0
    config = write_config(
        tmp_path, RULE, target_db.url, monkeypatch, extra_sweep="max_fraction = 1"
    )
    plan = run_cli("plan", "-c", str(config), "--as-of", as_of.isoformat(), "--json")
    assert plan.exit_code == 0, plan.stderr
    (item,) = plan.json()["items"]
    assert item["due"] == expected
    held = sum(
        1
        for r in case_file
        if r["ended_at"] < dt.datetime(as_of.year - 1, as_of.month, as_of.day)
        and r["status"] == "closed"
        and r["keep"]
        and (r["name"] is not None or r["notes"] != "[redacted]")
    )
    assert item["held"] == held

    run = run_cli("run", "-c", str(config), "--as-of", as_of.isoformat(), "--json", "--quiet")
    assert run.exit_code == 0, run.stderr
    (done,) = run.json()["items"]
    assert (done["due"], done["done"], done["left"]) == (expected, expected, 0)
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            left = connection.execute(
                sa.text(
                    "SELECT count(*) FROM case_file WHERE ended_at < :cutoff AND status = 'closed'"
                    " AND (keep IS NULL OR keep = :no) AND name IS NOT NULL"
                ),
                {"cutoff": dt.datetime(as_of.year - 1, as_of.month, as_of.day), "no": False},
            ).scalar_one()
    finally:
        engine.dispose()
    assert left == 0


@pytest.mark.parametrize("target_db", ["sqlite"], indirect=True)
def test_sqlite_reads_the_table_only_for_a_broad_range(
    case_file: list[dict], target_db: TargetDb, tmp_path: Path, monkeypatch
) -> None:
    """The choice is SQLite's alone: PostgreSQL and MariaDB choose with their statistics."""
    config = load_config(write_config(tmp_path, RULE, target_db.url, monkeypatch))
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            catalog = Catalog(connection)
            for width, as_of in AS_OFS.items():
                instant = parse_as_of(as_of.isoformat(), config.sweep.tz)
                compiled = compile_rule(catalog, config.rules[0], instant, config.sweep)
                scan = scan_is_cheaper(connection, compiled)
                assert scan is (width == "broad")
                # Both forms count the same rows, whichever is chosen.
                counts = {
                    unindexed: connection.execute(
                        sa.select(sa.func.count())
                        .select_from(compiled.table)
                        .where(compiled.due_where(unindexed=unindexed))
                    ).scalar_one()
                    for unindexed in (False, True)
                }
                assert counts[False] == counts[True] == count_due(connection, compiled)
                assert counts[True] == expected_due(case_file, as_of)
                query = (
                    sa.select(sa.func.count())
                    .select_from(compiled.table)
                    .where(compiled.due_where(unindexed=True))
                )
                sql = str(query.compile(connection, compile_kwargs={"literal_binds": True}))
                detail = " ".join(
                    row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert "ix_case_file_ended_at" not in detail, detail
                # The estimate of the range is the bare comparison, served by the index
                # alone: no validity check of the text clock per entry.
                estimate = sa.select(sa.func.count()).where(compiled.clock_range)
                sql = str(estimate.compile(connection, compile_kwargs={"literal_binds": True}))
                assert "GLOB" not in sql and "substr" not in sql, sql
                detail = " ".join(
                    row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert "COVERING INDEX ix_case_file_ended_at" in detail, detail
    finally:
        engine.dispose()


@pytest.mark.parametrize("target_db", ["sqlite"], indirect=True)
def test_sqlite_without_an_index_on_the_clock_counts_at_once(
    case_file: list[dict], target_db: TargetDb, tmp_path: Path, monkeypatch
) -> None:
    """No index to walk: no estimate first (it would be two more table scans)."""
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_case_file_ended_at")
        config = load_config(write_config(tmp_path, RULE, target_db.url, monkeypatch))
        with engine.connect() as connection:
            catalog = Catalog(connection)
            as_of = AS_OFS["broad"]
            instant = parse_as_of(as_of.isoformat(), config.sweep.tz)
            compiled = compile_rule(catalog, config.rules[0], instant, config.sweep)
            assert compiled.clock_range is None and compiled.candidate_unindexed is None
            assert not scan_is_cheaper(connection, compiled)
            assert count_due(connection, compiled) == expected_due(case_file, as_of)
    finally:
        engine.dispose()
