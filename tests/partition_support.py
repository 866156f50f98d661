"""A monthly-partitioned `event` table on PostgreSQL and MariaDB, for the partition tests.

`event` (id, created_at, kind, keep) is partitioned by range on `created_at`: a
partition unbounded below (`event_old`, before 2023-06-01 on PostgreSQL, before
2024-01-01 on MariaDB), one per month of 2024 (`event_2024_01` … `_12`), and on
PostgreSQL a default partition (2023-06…12 and 2025 on) — on MariaDB `event_max`
(MAXVALUE) instead. Three rows a month (days 3, 14, 25; id = month * 100 + day).

At AS_OF with `after = "6 months"` the cutoff is 2024-07-15: January to June are
wholly due, July holds the cutoff. The special rows: 314 (March) gets a legal hold,
403 (April) has keep = true (`unless_true`), 525 (May) is referenced by a `ticket`
(PostgreSQL, ON DELETE SET NULL: not in the rule's cascade), 203 (February) has an
`attachment` (PostgreSQL, in the rule's cascade).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.configs import WHOLE_TABLE, rule_toml
from tests.conftest import TEST_KEY, TargetDb, query_rows, run_cli, write_config

AS_OF = "2025-01-15T12:00:00+01:00"
CUTOFF = dt.datetime(2024, 7, 15)
MONTHS = [f"event_2024_{m:02d}" for m in range(1, 13)]
HELD, KEPT, REFERENCED, CASCADED = 314, 403, 525, 203


def event_rows(engine_name: str) -> list[tuple[int, dt.datetime, str, bool]]:
    rows = [(i, dt.datetime(2023, 3, 10), "a", False) for i in (1, 2, 3)]
    if engine_name == "postgresql":  # the default partition's rows: one due, one not
        rows += [
            (50, dt.datetime(2023, 9, 10), "a", False),
            (51, dt.datetime(2025, 6, 1), "a", False),
        ]
    else:
        rows += [(51, dt.datetime(2025, 6, 1), "a", False)]
    for month in range(1, 13):
        for day in (3, 14, 25):
            key = month * 100 + day
            rows.append((key, dt.datetime(2024, month, day, 9, 30), "a", key == KEPT))
    return rows


def pg_ddl(parent: str = "event") -> list[str]:
    ddl = [
        f"CREATE TABLE {parent} (id bigint NOT NULL, created_at timestamp NOT NULL, "
        "kind text NOT NULL, keep boolean NOT NULL DEFAULT false, "
        "PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)",
        f"CREATE TABLE {parent}_old PARTITION OF {parent} "
        "FOR VALUES FROM (MINVALUE) TO ('2023-06-01')",
        f"CREATE TABLE {parent}_default PARTITION OF {parent} DEFAULT",
    ]
    for month in range(1, 13):
        upper = "2025-01-01" if month == 12 else f"2024-{month + 1:02d}-01"
        ddl.append(
            f"CREATE TABLE {parent}_2024_{month:02d} PARTITION OF {parent} "
            f"FOR VALUES FROM ('2024-{month:02d}-01') TO ('{upper}')"
        )
    ddl += [
        "CREATE TABLE attachment (id integer PRIMARY KEY, event_id bigint NOT NULL, "
        "event_at timestamp NOT NULL, FOREIGN KEY (event_id, event_at) "
        "REFERENCES event (id, created_at))",
        "CREATE TABLE ticket (id integer PRIMARY KEY, event_id bigint, event_at timestamp, "
        "FOREIGN KEY (event_id, event_at) REFERENCES event (id, created_at) ON DELETE SET NULL)",
    ]
    return ddl


def mariadb_ddl(kind: str = "columns") -> list[str]:
    if kind == "columns":
        method, value = "RANGE COLUMNS (created_at)", "'{}'"
    else:
        method, value = "RANGE (TO_DAYS(created_at))", "TO_DAYS('{}')"
    bounds = ["2024-01-01"] + [f"2024-{m + 1:02d}-01" for m in range(1, 12)] + ["2025-01-01"]
    names = ["event_old", *MONTHS]
    parts = [
        f"PARTITION {n} VALUES LESS THAN ({value.format(b)})"
        for n, b in zip(names, bounds, strict=True)
    ]
    parts.append("PARTITION event_max VALUES LESS THAN (MAXVALUE)")
    return [
        "CREATE TABLE event (id bigint NOT NULL, created_at datetime NOT NULL, "
        "kind varchar(20) NOT NULL, keep tinyint(1) NOT NULL DEFAULT 0, "
        f"PRIMARY KEY (id, created_at)) PARTITION BY {method} ({', '.join(parts)})"
    ]


def build_events(target_db: TargetDb, kind: str = "columns") -> None:
    """Create `event` (and on PostgreSQL `attachment`, `ticket`) with their rows."""
    pg = target_db.engine_name == "postgresql"
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            for statement in pg_ddl() if pg else mariadb_ddl(kind):
                connection.exec_driver_sql(statement)
            event = sa.table("event", sa.column("id"), sa.column("created_at"),
                             sa.column("kind"), sa.column("keep"))  # fmt: skip
            connection.execute(
                event.insert(),
                [{"id": i, "created_at": c, "kind": k, "keep": p}
                 for i, c, k, p in event_rows(target_db.engine_name)],
            )  # fmt: skip
            if pg:
                connection.exec_driver_sql(
                    "INSERT INTO attachment VALUES (1, 203, '2024-02-03 09:30')"
                )
                connection.exec_driver_sql("INSERT INTO ticket VALUES (1, 525, '2024-05-25 09:30')")
    finally:
        engine.dispose()


def event_rule(partitions: str | None = None, **extra: object) -> str:
    settings: dict[str, object] = {"after": "6 months", "since": "created_at"}
    if partitions is not None:
        settings["partitions"] = partitions
    settings.update(extra)
    return rule_toml("events", "event", "delete", **settings)


def events_config(tmp_path: Path, target_db: TargetDb, monkeypatch: pytest.MonkeyPatch,
                  partitions: str | None = None, **extra: object) -> Path:  # fmt: skip
    if target_db.engine_name == "postgresql":
        extra.setdefault("cascade", ["attachment"])
        extra.setdefault("unless_true", "keep")
    else:
        extra.setdefault("unless_true", "keep")
    extra = {k: v for k, v in extra.items() if v is not None}  # None: leave the key out
    return write_config(
        tmp_path, event_rule(partitions, **extra), target_db.url, monkeypatch,
        extra_sweep=WHOLE_TABLE,
    )  # fmt: skip


def hold(config: Path, key: int, created: str) -> None:
    result = run_cli(
        "hold", "add", "-c", str(config), "-d", "main", "-t", "event",
        "--key", f"id={key}", "--key", f"created_at={created}", "--reason", "case 7",
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr


def partitions_now(target_db: TargetDb) -> set[str]:
    """The partitions of `event` now (attached ones)."""
    if target_db.engine_name == "postgresql":
        sql = ("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
               "WHERE i.inhparent = 'event'::regclass")  # fmt: skip
    else:
        sql = ("SELECT PARTITION_NAME FROM information_schema.PARTITIONS "
               "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'event'")  # fmt: skip
    return {r[0] for r in query_rows(target_db, sql)}


def tables_now(target_db: TargetDb) -> set[str]:
    engine = target_db.engine()
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def contents(target_db: TargetDb) -> dict[str, list[tuple]]:
    """Every row of `event` (and `attachment`, `ticket` on PostgreSQL), in key order."""
    names = ["event", *sorted({"attachment", "ticket"} & tables_now(target_db))]
    return {n: query_rows(target_db, f"SELECT * FROM {n} ORDER BY 1, 2") for n in names}


def rows_per_partition(target_db: TargetDb) -> dict[str, int]:
    if target_db.engine_name == "postgresql":
        sql = "SELECT tableoid::regclass::text, count(*) FROM event GROUP BY 1"
    else:
        sql = ("SELECT PARTITION_NAME, TABLE_ROWS FROM information_schema.PARTITIONS "
               "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'event'")  # fmt: skip
    return {r[0]: int(r[1]) for r in query_rows(target_db, sql)}


def row_path_result(target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    held: bool = True, **extra: object) -> dict[str, list[tuple]]:  # fmt: skip
    """The oracle: rebuild the data, run the same rule with `partitions = "off"` (the row
    path) and return what is left. Leaves the database rebuilt and swept that way."""
    reset = tmp_path / "oracle"
    reset.mkdir(exist_ok=True)
    _drop_all(target_db)
    build_events(target_db, extra.pop("kind", "columns"))  # type: ignore[arg-type]
    config = events_config(reset, target_db, monkeypatch, "off", **extra)
    if held:
        hold(config, HELD, "2024-03-14T09:30:00")
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return contents(target_db)


def _drop_all(target_db: TargetDb) -> None:
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            if target_db.engine_name == "postgresql":
                connection.exec_driver_sql("DROP SCHEMA public CASCADE")
                connection.exec_driver_sql("CREATE SCHEMA public")
            else:
                for name in ("event",):
                    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    finally:
        engine.dispose()


def due_by_hand(target_db: TargetDb, held: bool = True) -> set[int]:
    """What the rule must delete, from the data's definition."""
    return {
        key for key, created, _, keep in event_rows(target_db.engine_name)
        if created < CUTOFF and not keep and not (held and key == HELD)
    }  # fmt: skip


def run_killed(config: Path, point: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GDPR_SWEEP_KEY": TEST_KEY, "GDPR_SWEEP_FAILPOINT": point}
    command = [sys.executable, "-m", "gdpr_sweep", "run", "-c", str(config), "--as-of", AS_OF,
               "--quiet"]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, timeout=120, cwd=config.parent)


def audit(state: Path, kinds: tuple[str, ...]) -> list[dict]:
    import json
    import sqlite3

    with sqlite3.connect(state) as connection:
        connection.row_factory = sqlite3.Row
        marks = ", ".join("?" * len(kinds))
        rows = connection.execute(
            f"SELECT * FROM audit_entries WHERE kind IN ({marks}) ORDER BY id", kinds
        ).fetchall()
    return [dict(r) | {"details": json.loads(r["details"] or "{}")} for r in rows]
