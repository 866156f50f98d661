"""A partition goes whole only when every row in it is due by the row path's own
predicate, and its audit entry counts exactly the rows it removed (issue 21).

The bounds say which rows a partition *can* hold; only on PostgreSQL, for a rule with
no `only` and no exception, do they prove every row due (a bounded range partition
there holds no NULL clock: NULL goes to the default partition — and a rule's table
has a primary key, which must include the partition key, so its clock is NOT NULL on
both engines). MariaDB stores partial zero dates (`'2024-02-00'`, unless the
sql_mode has NO_ZERO_IN_DATE) inside a bounded partition — `'2024-02-00'` sorts
before `'2024-02-01'`, so it sits in January's — and the row path never calls them
due. See `partition_support` for the `event` table.
"""

from __future__ import annotations

import datetime as dt

import pytest

from gdpr_sweep.config import load_config
from gdpr_sweep.sweep import run_sweep
from gdpr_sweep.sweep_options import SweepOptions
from tests.conftest import TargetDb, query_rows, run_cli
from tests.partition_support import (
    AS_OF,
    CUTOFF,
    _drop_all,
    audit,
    build_events,
    contents,
    event_rows,
    events_config,
    partitions_now,
)

SERVERS = pytest.mark.parametrize("target_db", ["postgresql", "mariadb"], indirect=True)
MARIADB = pytest.mark.parametrize("target_db", ["mariadb"], indirect=True)
ZERO_DAY = "INSERT INTO event (id, created_at, kind, keep) VALUES (150, '2024-02-00 09:30', 'a', 0)"


def _insert(target_db: TargetDb, statement: str) -> None:
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            if target_db.engine_name != "postgresql":
                # The server's default sql_mode stores partial zero dates; say so.
                connection.exec_driver_sql("SET SESSION sql_mode = 'STRICT_TRANS_TABLES'")
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _plain_config(target_db: TargetDb, tmp_path, monkeypatch):
    """The rule with no exception and no cascade: nothing but the clock decides."""
    return events_config(tmp_path, target_db, monkeypatch, cascade=None, unless_true=None)


def _run(config, meanwhile=None):
    options = SweepOptions(preflight=meanwhile) if meanwhile else SweepOptions()
    result = run_sweep(load_config(config), dt.datetime.fromisoformat(AS_OF), options=options)
    assert result.status == "completed", result.failures
    (item,) = result.items
    return item


@MARIADB
def test_a_partial_zero_date_keeps_its_partition_in_the_plan(
    target_db: TargetDb, tmp_path, monkeypatch
):
    """'2024-02-00' sits in January's partition (its bounds say: due), but the row path
    never calls it due: January is batched (`clock`), the row stays, and what is left
    is exactly what the row path leaves."""
    build_events(target_db)
    _insert(target_db, ZERO_DAY)
    assert query_rows(target_db, "SELECT id FROM event PARTITION (event_2024_01)") == [
        (103,), (114,), (125,), (150,)
    ]  # fmt: skip
    config = _plain_config(target_db, tmp_path, monkeypatch)
    plan = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    (planned,) = plan.json()["items"]
    listed = {p["name"]: p for p in planned["partitions"]}
    january = listed["event_2024_01"]
    assert (january["action"], january["reason"]) == ("batch", "clock")
    assert (january["rows"], january["due"]) == (4, 3)
    assert listed["event_2024_02"]["action"] == "drop"
    item = _run(config)
    assert "event_2024_01" in partitions_now(target_db)
    assert query_rows(target_db, "SELECT id FROM event WHERE id BETWEEN 100 AND 199") == [(150,)]
    assert item.left == 0
    assert contents(target_db) == _row_path_with_zero_day(target_db, tmp_path, monkeypatch)


def _row_path_with_zero_day(target_db: TargetDb, tmp_path, monkeypatch) -> dict:
    """The oracle: the same data, the zero date included, through the row path."""
    _drop_all(target_db)
    build_events(target_db)
    _insert(target_db, ZERO_DAY)
    directory = tmp_path / "oracle"
    directory.mkdir()
    config = events_config(directory, target_db, monkeypatch, "off", cascade=None,
                           unless_true=None)  # fmt: skip
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF)
    assert result.exit_code == 0, result.stdout + result.stderr
    return contents(target_db)


@MARIADB
def test_a_partial_zero_date_written_after_the_evaluation_keeps_its_partition(
    target_db: TargetDb, tmp_path, monkeypatch
):
    """The check under the lock is the row path's predicate on MariaDB even for a rule
    without exceptions: a '2024-02-00' row written into January's partition after the
    run evaluated (the plan would drop January) is found, January stays
    (`partition-skipped`) with that row, its due rows go by the row path."""
    build_events(target_db)
    config = _plain_config(target_db, tmp_path, monkeypatch)
    item = _run(config, lambda: _insert(target_db, ZERO_DAY))
    assert "event_2024_01" in partitions_now(target_db)
    assert query_rows(target_db, "SELECT id FROM event WHERE id BETWEEN 100 AND 199") == [(150,)]
    skipped = audit(tmp_path / "state.db", ("partition-skipped",))
    assert [(e["details"]["partition"], e["rows"]) for e in skipped] == [("event_2024_01", 1)]
    dropped = audit(tmp_path / "state.db", ("partition-drop",))
    assert "event_2024_01" not in {e["details"]["partition"] for e in dropped}
    assert item.done == item.due and item.left == 0


@SERVERS
@pytest.mark.parametrize("exceptions", [False, True], ids=["bounds", "checked"])
def test_the_audit_entry_counts_the_rows_at_the_drop_not_the_plan(
    target_db: TargetDb, tmp_path, monkeypatch, exceptions
):
    """Due rows written into a wholly due partition after the evaluation go with it,
    and the audit entry, `partition_rows` and `done` count them: each entry's rows are
    the partition's rows when it was removed. `bounds`: PostgreSQL counts the detached
    table (MariaDB checks every row anyway); `checked`: one pass under the lock counts
    and checks (the rule has an `unless_true` exception)."""
    build_events(target_db)
    extra = {"cascade": None, "unless_true": "keep" if exceptions else None}
    config = events_config(tmp_path, target_db, monkeypatch, **extra)
    false = "false" if target_db.engine_name == "postgresql" else "0"
    added = (
        "INSERT INTO event (id, created_at, kind, keep) VALUES "
        f"(160, '2024-01-20 10:00', 'a', {false}), (161, '2024-01-21 10:00', 'a', {false}), "
        f"(260, '2024-02-20 10:00', 'a', {false})"
    )
    if target_db.engine_name == "postgresql":
        engine = target_db.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE attachment, ticket")
        engine.dispose()
    before = {r[0] for r in query_rows(target_db, "SELECT id FROM event")}
    item = _run(config, lambda: _insert(target_db, added))
    entries = {
        e["details"]["partition"]: e["rows"]
        for e in audit(tmp_path / "state.db", ("partition-drop",))
    }
    assert entries["event_2024_01"] == 5 and entries["event_2024_02"] == 4
    assert all(rows == 3 for name, rows in entries.items() if name[-2:] not in ("01", "02"))
    assert item.partition_rows == sum(entries.values())
    left = {r[0] for r in query_rows(target_db, "SELECT id FROM event")}
    gone = (before | {160, 161, 260}) - left
    kept = {k for k, _, _, keep in event_rows(target_db.engine_name) if keep and exceptions}
    assert gone == {
        k for k, created, _, _ in event_rows(target_db.engine_name) if created < CUTOFF
    } - kept | {160, 161, 260}
    assert item.done == len(gone) and item.left == 0
