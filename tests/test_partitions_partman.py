"""PostgreSQL: a pg_partman 4.7 set, and a kill between DETACH and DROP (issue 21).

pg_partman's own maintenance must still work on a set after gdpr-sweep dropped some
of its children; a process killed after a partition was detached and before it was
dropped leaves a detached table that the next run drops and records. pg_partman must
be installed on the test server (`.ci/start-databases` installs it): without it these
tests skip, and under CI=true they fail.
"""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.configs import WHOLE_TABLE
from tests.conftest import IN_CI, TargetDb, query_rows, run_cli, write_config
from tests.partition_support import (
    AS_OF,
    HELD,
    audit,
    build_events,
    contents,
    due_by_hand,
    event_rule,
    events_config,
    hold,
    partitions_now,
    row_path_result,
    run_killed,
    tables_now,
)

POSTGRESQL = pytest.mark.parametrize("target_db", ["postgresql"], indirect=True)


@pytest.fixture
def partman(target_db: TargetDb) -> Iterator[None]:
    """pg_partman in schema partman of the test database, fresh (its config emptied),
    and gone afterwards: other tests list every schema of the database."""
    _install_partman(target_db)
    yield
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP EXTENSION IF EXISTS pg_partman CASCADE")
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS partman CASCADE")
    finally:
        engine.dispose()


def _install_partman(target_db: TargetDb) -> None:
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            available = connection.exec_driver_sql(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman'"
            ).first()
            if available is None:
                message = "postgresql: pg_partman is not installed (postgresql-15-partman)"
                if IN_CI:
                    pytest.fail(f"CI=true but {message}")
                pytest.skip(message)
            connection.exec_driver_sql("DROP EXTENSION IF EXISTS pg_partman CASCADE")
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS partman CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA partman")
            connection.exec_driver_sql("CREATE EXTENSION pg_partman SCHEMA partman")
    finally:
        engine.dispose()


def _partman_set(target_db: TargetDb) -> list[int]:
    """`event` as a pg_partman monthly set from 2024-01 (and its default partition),
    two rows a month of 2024; return the keys."""
    engine = target_db.engine()
    keys = []
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE event (id bigint NOT NULL, created_at timestamptz NOT NULL, "
                "kind text NOT NULL DEFAULT 'a', PRIMARY KEY (id, created_at)) "
                "PARTITION BY RANGE (created_at)"
            )
            connection.exec_driver_sql(
                "SELECT partman.create_parent(p_parent_table => 'public.event', "
                "p_control => 'created_at', p_type => 'native', p_interval => 'monthly', "
                "p_start_partition => '2024-01-01', p_premake => 2)"
            )
            for month in range(1, 13):
                for day in (5, 20):
                    key = month * 100 + day
                    at = dt.datetime(2024, month, day, 12, tzinfo=dt.UTC)
                    connection.execute(
                        sa.text("INSERT INTO event (id, created_at) VALUES (:id, :at)"),
                        {"id": key, "at": at},
                    )
                    keys.append(key)
    finally:
        engine.dispose()
    return keys


@POSTGRESQL
def test_a_pg_partman_set_loses_its_expired_children_and_partman_still_maintains_it(
    target_db: TargetDb, partman: None, tmp_path, monkeypatch
):
    keys = _partman_set(target_db)
    config = write_config(tmp_path, event_rule(), target_db.url, monkeypatch,
                          extra_sweep=WHOLE_TABLE)  # fmt: skip
    plan = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    (item,) = plan.json()["items"]
    found = {p["name"]: (p["action"], p["reason"]) for p in item["partitions"]}
    expected_drops = {f"event_p2024_{m:02d}" for m in range(1, 7)}
    assert {n for n, (a, _) in found.items() if a == "drop"} == expected_drops
    assert found["event_p2024_07"] == ("batch", "cutoff")
    assert item["due"] == 13  # Jan-Jun, and July 5 (the cutoff is July 15)

    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["items"][0]["partitions_removed"] == 6
    left = sorted(r[0] for r in query_rows(target_db, "SELECT id FROM event"))
    assert left == sorted(set(keys) - {m * 100 + d for m in range(1, 7) for d in (5, 20)} - {705})
    assert not expected_drops & (partitions_now(target_db) | tables_now(target_db))

    # pg_partman's maintenance still runs on the set, and still knows it.
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT partman.run_maintenance('public.event')")
            connection.exec_driver_sql("SELECT partman.run_maintenance()")
            shown = {
                r[1]
                for r in connection.exec_driver_sql(
                    "SELECT * FROM partman.show_partitions('public.event')"
                )
            }
            configured = connection.exec_driver_sql(
                "SELECT count(*) FROM partman.part_config WHERE parent_table = 'public.event'"
            ).scalar()
    finally:
        engine.dispose()
    assert configured == 1
    assert "event_p2024_07" in shown and not expected_drops & shown


@POSTGRESQL
def test_a_kill_between_detach_and_drop_is_finished_by_the_next_run(
    target_db: TargetDb, tmp_path, monkeypatch
):
    build_events(target_db)
    config = events_config(tmp_path, target_db, monkeypatch)
    hold(config, HELD, "2024-03-14T09:30:00")
    killed = run_killed(config, "after-partition-detach")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The first partition is detached, not dropped: a table of its own, its rows in it.
    assert "event_2024_01" not in partitions_now(target_db)
    assert "event_2024_01" in tables_now(target_db)
    assert query_rows(target_db, "SELECT count(*) FROM event_2024_01") == [(3,)]
    state = tmp_path / "state.db"
    starts = audit(state, ("partition-drop-start",))  # every intent before the first DDL
    assert [e["details"]["partition"] for e in starts] == [
        "event_2024_01", "event_2024_02", "event_2024_06"
    ]  # fmt: skip
    assert audit(state, ("partition-drop",)) == []
    assert {"event_2024_02", "event_2024_06"} <= partitions_now(target_db)  # not reached

    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "event_2024_01" not in tables_now(target_db)
    done = audit(state, ("partition-drop",))
    finished = [e for e in done if e["details"].get("finished") == "detached"]
    assert len(finished) == 1 and finished[0]["rows"] == 3
    assert finished[0]["details"]["partition"] == "event_2024_01"
    assert finished[0]["details"]["intent_of_run"] == starts[0]["run_id"]
    assert result.json()["interrupted_runs"] == [starts[0]["run_id"]]
    # The two the killed run never reached: still attached, so abandoned, then removed
    # by this run under intents of its own.
    abandoned = audit(state, ("partition-drop-abandoned",))
    assert sorted(e["details"]["partition"] for e in abandoned) == [
        "event_2024_02", "event_2024_06"
    ]  # fmt: skip
    again = [
        e for e in done if e["run_id"] == result.json()["run_id"] and "finished" not in e["details"]
    ]
    assert sorted(e["details"]["partition"] for e in again) == ["event_2024_02", "event_2024_06"]
    left = {r[0] for r in contents(target_db)["event"]}
    assert not left & due_by_hand(target_db)
    assert contents(target_db) == row_path_result(target_db, tmp_path, monkeypatch)
