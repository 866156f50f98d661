"""Wholly due partitions go whole; the others are batched, and the plan says why (issue 21).

On PostgreSQL (declarative range partitions, a default partition, one unbounded below,
FKs into the table) and MariaDB (RANGE COLUMNS, RANGE (TO_DAYS)): see
`partition_support` for the table and its special rows. Every run is checked against
the oracle — the same rule with `partitions = "off"` (the row path) on a fresh copy of
the data leaves exactly the same rows — and against the due set worked out by hand.
"""

from __future__ import annotations

import datetime as dt
import re

import jsonschema
import pytest

from gdpr_sweep.config import load_config
from gdpr_sweep.formats import schema
from gdpr_sweep.sweep import run_sweep
from gdpr_sweep.sweep_options import SweepOptions
from tests.configs import rule_toml
from tests.conftest import TargetDb, query_rows, run_cli
from tests.partition_support import (
    AS_OF,
    CUTOFF,
    HELD,
    MONTHS,
    audit,
    build_events,
    contents,
    due_by_hand,
    event_rows,
    events_config,
    hold,
    partitions_now,
    row_path_result,
    rows_per_partition,
    tables_now,
)

SERVERS = pytest.mark.parametrize("target_db", ["postgresql", "mariadb"], indirect=True)

#: What the plan does with each partition that has due rows, per engine.
EXPECTED = {
    "postgresql": {
        "event_old": ("batch", "unbounded"),
        "event_default": ("batch", "default"),
        "event_2024_01": ("drop", None),
        "event_2024_02": ("drop", None),  # its attachment goes by the rule's cascade
        "event_2024_03": ("batch", "held"),
        "event_2024_04": ("batch", "exception"),
        "event_2024_05": ("batch", "referenced"),  # a ticket refers to a row
        "event_2024_06": ("drop", None),
        "event_2024_07": ("batch", "cutoff"),
    },
    "mariadb": {
        "event_old": ("batch", "unbounded"),
        "event_2024_01": ("drop", None),
        "event_2024_02": ("drop", None),
        "event_2024_03": ("batch", "held"),
        "event_2024_04": ("batch", "exception"),
        "event_2024_05": ("drop", None),
        "event_2024_06": ("drop", None),
        "event_2024_07": ("batch", "cutoff"),
    },
}


def _setup(target_db: TargetDb, tmp_path, monkeypatch, partitions=None, kind="columns", **extra):
    build_events(target_db, kind)
    config = events_config(tmp_path, target_db, monkeypatch, partitions, **extra)
    hold(config, HELD, "2024-03-14T09:30:00")
    return config


def _plan(config) -> dict:
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    jsonschema.validate(result.json(), schema("plan"))  # the partitions' shape too
    (item,) = result.json()["items"]
    return item


@SERVERS
@pytest.mark.parametrize("kind", ["columns", "to_days"])
def test_plan_lists_what_goes_whole_and_why_the_rest_is_batched(
    target_db: TargetDb, tmp_path, monkeypatch, kind
):
    if kind == "to_days" and target_db.engine_name == "postgresql":
        pytest.skip("RANGE (TO_DAYS(...)) is MariaDB's")
    config = _setup(target_db, tmp_path, monkeypatch, kind=kind)
    before = contents(target_db)
    item = _plan(config)
    found = {p["name"]: (p["action"], p["reason"]) for p in item["partitions"]}
    assert found == EXPECTED[target_db.engine_name]
    listed = {p["name"]: p for p in item["partitions"]}
    assert listed["event_2024_01"]["rows"] == 3 and listed["event_2024_01"]["due"] == 3
    assert listed["event_2024_03"]["due"] == 2  # one of three held
    assert listed["event_2024_07"]["due"] == 2 and listed["event_2024_07"]["rows"] == 3
    assert listed["event_2024_01"]["from"].startswith("2024-01-01")
    assert listed["event_2024_01"]["to"].startswith("2024-02-01")
    assert item["due"] == len(due_by_hand(target_db))  # partitions are part of `due`
    text = run_cli("plan", "-c", str(config), "--as-of", AS_OF)
    assert text.exit_code == 0
    dropped = sum(1 for a, _ in EXPECTED[target_db.engine_name].values() if a == "drop")
    assert f"{dropped} partition(s) of event to drop whole" in text.stdout
    assert "batch (held, 2 due)" in text.stdout and "event_2024_03" in text.stdout
    assert contents(target_db) == before  # plan changed nothing


@SERVERS
@pytest.mark.parametrize("kind", ["columns", "to_days"])
def test_run_drops_wholly_due_partitions_and_leaves_what_the_row_path_leaves(
    target_db: TargetDb, tmp_path, monkeypatch, kind
):
    if kind == "to_days" and target_db.engine_name == "postgresql":
        pytest.skip("RANGE (TO_DAYS(...)) is MariaDB's")
    config = _setup(target_db, tmp_path, monkeypatch, kind=kind)
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    jsonschema.validate(result.json(), schema("run"))
    (item,) = result.json()["items"]
    dropped = {n for n, (a, _) in EXPECTED[target_db.engine_name].items() if a == "drop"}
    assert item["partitions_removed"] == len(dropped)
    assert item["partition_rows"] == 3 * len(dropped)
    assert item["done"] == len(due_by_hand(target_db)) and item["left"] == 0
    assert not dropped & partitions_now(target_db)
    assert not dropped & tables_now(target_db)  # detached and dropped, not left behind
    assert set(MONTHS) - dropped <= partitions_now(target_db)
    left = {r[0] for r in query_rows(target_db, "SELECT id FROM event")}
    all_keys = {r[0] for r in query_rows(target_db, "SELECT id FROM event")} | due_by_hand(
        target_db
    )
    assert left == all_keys - due_by_hand(target_db)
    entries = audit(tmp_path / "state.db", ("partition-drop",))
    assert {e["details"]["partition"] for e in entries} == dropped
    assert all(e["rows"] == 3 and e["action"] == "drop" and e["details"]["to"] for e in entries)
    after = contents(target_db)
    if target_db.engine_name == "postgresql":
        assert after["attachment"] == []  # deleted with its event's partition (cascade)
        assert after["ticket"] == [(1, None, None)]  # its event went by the row path
    assert after == row_path_result(target_db, tmp_path, monkeypatch, kind=kind)


@SERVERS
def test_truncate_empties_the_partitions_and_keeps_them(target_db: TargetDb, tmp_path, monkeypatch):
    pg = target_db.engine_name == "postgresql"
    config = _setup(target_db, tmp_path, monkeypatch, "truncate")
    expected = {n for n, (a, _) in EXPECTED[target_db.engine_name].items() if a == "drop"}
    if pg:
        # PostgreSQL cannot TRUNCATE a table a foreign key refers to: all batched.
        reasons = {p["name"]: p["reason"] for p in _plan(config)["partitions"]}
        assert all(reasons[n] == "referenced" for n in expected)
        engine = target_db.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE attachment, ticket")
        engine.dispose()
        config = events_config(tmp_path, target_db, monkeypatch, "truncate", cascade=None)
        expected.add("event_2024_05")  # no ticket refers to it any more
    item = _plan(config)
    truncated = {p["name"] for p in item["partitions"] if p["action"] == "truncate"}
    assert truncated == expected
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["items"][0]["partitions_removed"] == len(expected)
    assert set(MONTHS) <= partitions_now(target_db)  # every partition is still there
    if target_db.engine_name == "postgresql":
        assert all(rows_per_partition(target_db).get(n, 0) == 0 for n in truncated)
    entries = audit(tmp_path / "state.db", ("partition-drop",))
    assert {e["action"] for e in entries} == {"truncate"}
    assert {e["details"]["partition"] for e in entries} == expected
    after = contents(target_db)
    assert {r[0] for r in after["event"]} == {
        r[0] for r in event_rows(target_db.engine_name)
    } - due_by_hand(target_db)
    if not pg:
        assert after == row_path_result(target_db, tmp_path, monkeypatch)


@SERVERS
def test_off_keeps_every_partition_and_takes_the_row_path(
    target_db: TargetDb, tmp_path, monkeypatch
):
    config = _setup(target_db, tmp_path, monkeypatch, "off")
    assert _plan(config)["partitions"] == []
    before = partitions_now(target_db)
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    item = result.json()["items"][0]
    assert item["partitions_removed"] == 0 and item["done"] == len(due_by_hand(target_db))
    assert partitions_now(target_db) == before
    assert audit(tmp_path / "state.db", ("partition-drop-start",)) == []


@SERVERS
def test_only_filter_batches_a_partition_with_rows_it_leaves_out(
    target_db: TargetDb, tmp_path, monkeypatch
):
    build_events(target_db)
    engine = target_db.engine()
    with engine.begin() as connection:  # one row of June is of another kind
        connection.exec_driver_sql("UPDATE event SET kind = 'b' WHERE id = 614")
    engine.dispose()
    config = events_config(tmp_path, target_db, monkeypatch, only={"kind": "a"})
    item = _plan(config)
    found = {p["name"]: (p["action"], p["reason"]) for p in item["partitions"]}
    assert found["event_2024_06"] == ("batch", "exception")
    assert found["event_2024_01"] == ("drop", None)
    assert run_cli("run", "-c", str(config), "--as-of", AS_OF).exit_code == 0
    assert query_rows(target_db, "SELECT id FROM event WHERE id BETWEEN 600 AND 699") == [(614,)]


@SERVERS
def test_apply_refuses_a_plan_whose_partition_list_changed(
    target_db: TargetDb, tmp_path, monkeypatch
):
    config = _setup(target_db, tmp_path, monkeypatch)
    plan_file = tmp_path / "plan.json"
    made = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--out", str(plan_file))
    assert made.exit_code == 0, made.stdout + made.stderr
    # A new, empty, wholly due partition: the due rows are the same, the list is not.
    engine = target_db.engine()
    with engine.begin() as connection:
        if target_db.engine_name == "postgresql":
            connection.exec_driver_sql(
                "CREATE TABLE event_2023_12 PARTITION OF event "
                "FOR VALUES FROM ('2023-12-01') TO ('2024-01-01')"
            )
        else:
            connection.exec_driver_sql(
                "ALTER TABLE event REORGANIZE PARTITION event_old INTO ("
                "PARTITION event_older VALUES LESS THAN ('2023-06-01'), "
                "PARTITION event_old VALUES LESS THAN ('2024-01-01'))"
            )
    engine.dispose()
    before = contents(target_db)
    result = run_cli("apply", str(plan_file), "-c", str(config), "--yes")
    assert result.exit_code == 5, result.stdout + result.stderr
    assert "stale plan" in result.stdout + result.stderr
    assert contents(target_db) == before
    # A fresh plan applies, and the new empty partition goes with the others.
    assert (
        run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--out", str(plan_file)).exit_code == 0
    )
    result = run_cli("apply", str(plan_file), "-c", str(config), "--yes", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len({*partitions_now(target_db)} & {"event_2023_12"}) == 0


@SERVERS
def test_a_held_row_keeps_its_partition(target_db: TargetDb, tmp_path, monkeypatch):
    build_events(target_db)
    config = events_config(tmp_path, target_db, monkeypatch)
    hold(config, HELD, "2024-03-14T09:30:00")
    hold(config, 103, "2024-01-03T09:30:00")  # January now has a held row
    item = _plan(config)
    assert {p["name"]: p["reason"] for p in item["partitions"]}["event_2024_01"] == "held"
    assert run_cli("run", "-c", str(config), "--as-of", AS_OF).exit_code == 0
    assert "event_2024_01" in partitions_now(target_db)
    assert query_rows(target_db, "SELECT id FROM event WHERE id BETWEEN 100 AND 199") == [(103,)]


@SERVERS
def test_a_row_that_stopped_being_due_after_the_evaluation_keeps_its_partition(
    target_db: TargetDb, tmp_path, monkeypatch
):
    """The check under the lock, just before the DDL, sees what the evaluation could
    not: a row kept by the exception, written into a partition the plan would drop
    after the run evaluated (between evaluation and execution, as the application
    could). The partition stays; its other rows go by the row path."""
    build_events(target_db)
    config = events_config(tmp_path, target_db, monkeypatch)

    def meanwhile() -> None:
        engine = target_db.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO event (id, created_at, kind, keep) "
                "VALUES (190, '2024-01-20 10:00:00', 'a', true)"
            )
        engine.dispose()

    loaded = load_config(config)
    as_of = dt.datetime.fromisoformat(AS_OF)
    result = run_sweep(loaded, as_of, options=SweepOptions(preflight=meanwhile))
    assert result.status == "completed", result.failures
    (item,) = result.items
    assert "event_2024_01" in partitions_now(target_db)
    assert query_rows(target_db, "SELECT id FROM event WHERE id BETWEEN 100 AND 199") == [(190,)]
    skipped = audit(tmp_path / "state.db", ("partition-skipped",))
    assert [e["details"]["partition"] for e in skipped] == ["event_2024_01"]
    # No hold here, so March goes too: the expected drops, without January, with March.
    expected = {n for n, (a, _) in EXPECTED[target_db.engine_name].items() if a == "drop"}
    assert item.partitions_removed == len(expected - {"event_2024_01"} | {"event_2024_03"})


@SERVERS
def test_two_rules_on_one_table_remove_each_partition_once(
    target_db: TargetDb, tmp_path, monkeypatch
):
    build_events(target_db)
    second = rule_toml("events-older", "event", "delete", after="9 months", since="created_at")
    config = events_config(tmp_path, target_db, monkeypatch, cascade=None, unless_true=None)
    config.write_text(config.read_text(encoding="utf-8") + second, encoding="utf-8")
    if target_db.engine_name == "postgresql":
        engine = target_db.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE attachment, ticket")
        engine.dispose()
    plan = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    listed = {
        i["rule"]: {p["name"] for p in i["partitions"] if p["action"] == "drop"}
        for i in plan.json()["items"]
    }
    assert listed["events-older"] and listed["events-older"] <= listed["events"]
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    entries = audit(tmp_path / "state.db", ("partition-drop",))
    names = [e["details"]["partition"] for e in entries]
    assert sorted(names) == sorted(set(names)) == sorted(listed["events"])
    left = {r[0] for r in query_rows(target_db, "SELECT id FROM event")}
    assert not left & {k for k, c, _, _ in event_rows(target_db.engine_name) if c < CUTOFF}


@SERVERS
@pytest.mark.parametrize(("fraction", "exit_code"), [(0.3, 5), (0.7, 0)])
def test_max_fraction_counts_a_partitioned_table_right(
    target_db: TargetDb, tmp_path, monkeypatch, fraction, exit_code
):
    """The guard reads only the rows above the listed partitions (their rows are
    counted already): it must still trip exactly as on the whole table."""
    config = _setup(target_db, tmp_path, monkeypatch)
    text = config.read_text(encoding="utf-8").replace(
        "max_fraction = 1.0", f"max_fraction = {fraction}"
    )
    config.write_text(text, encoding="utf-8")
    rows = len(event_rows(target_db.engine_name))
    assert 0.3 < len(due_by_hand(target_db)) / rows < 0.7
    before = contents(target_db)
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF)
    assert result.exit_code == exit_code, result.stdout + result.stderr
    if exit_code == 5:
        assert "more than sweep.max_fraction" in result.stdout + result.stderr
        assert contents(target_db) == before


@SERVERS
def test_plan_sql_shows_the_ddl_of_each_partition_removed_whole(
    target_db: TargetDb, tmp_path, monkeypatch
):
    """`plan --sql`: a DETACH + DROP (PostgreSQL) or DROP PARTITION (MariaDB) per partition
    the run removes whole, before the pins; none for a batched one; nothing changed."""
    config = _setup(target_db, tmp_path, monkeypatch)
    before = rows_per_partition(target_db)
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--sql")
    assert result.exit_code == 0, result.stdout + result.stderr
    expected = EXPECTED[target_db.engine_name]
    verb = "DETACH" if target_db.engine_name == "postgresql" else "DROP"
    for name, (action, _reason) in expected.items():
        ddl = rf"{verb} PARTITION (\S+\.)?[`\"]?{name}[`\"]?;"
        assert bool(re.search(ddl, result.stdout)) == (action == "drop"), (name, action)
    assert result.stdout.index("PARTITION") < result.stdout.index("gdpr_sweep_pin_")
    assert rows_per_partition(target_db) == before
    assert partitions_now(target_db) >= set(expected) - {"event_default"}
