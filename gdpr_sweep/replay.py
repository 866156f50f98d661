"""Re-apply recorded erasures after a database was restored from a backup.

Deletion does not reach backups. Every erasure records the primary keys of the rows it
deleted or anonymised (keys only; the subject only as a keyed hash). After a restore,
`replay --since DATE` deletes those rows again and re-applies the recorded anonymisation
strategies, per database in one transaction, rows that refer to others first. Rows
already gone or already anonymised are unaffected, so replay is idempotent; it runs
under the sweep lock and is audited like any run. Retention rules need no replay: the
next `run` sweeps a restored database by itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .checks import select_databases
from .config import Config
from .engines import TargetDatabase, describe_write_failure
from .errors import DatabaseUnavailable, UsageError
from .execute import anonymise_rows
from .keys import hash_key
from .rowkeys import chunks, count_rows, key_match, referencing_first
from .schema import Catalog, qualified_name
from .state.lock import sweep_lock
from .state.store import StateStore
from .strategies import ZONE_TABLES_FIX, zone_problem


@dataclass
class ReplayResult:
    run_id: int | None
    since: str
    dry_run: bool
    tables: list[dict[str, Any]] = field(default_factory=list)  # database, table, action, rows
    skipped: int = 0  # recorded keys that were hashed (not replayable)
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "since": self.since,
            "dry_run": self.dry_run,
            "tables": self.tables,
            "not_replayable": self.skipped,
            "failures": self.failures,
        }


def _replay_database(
    target: TargetDatabase, records: list[dict[str, Any]], key: bytes, dry_run: bool
) -> list[dict[str, Any]]:
    by_table: dict[str, dict[str, Any]] = defaultdict(lambda: {"deleted": set(), "anonymised": {}})
    for record in records:
        row_key = tuple(json.loads(record["row_key"]))
        if record["action"] == "deleted":
            by_table[record["table_name"]]["deleted"].add(row_key)
        else:
            strategies = tuple(tuple(c) for c in json.loads(record["strategies"] or "[]"))
            by_table[record["table_name"]]["anonymised"].setdefault(strategies, set()).add(row_key)
    outcomes = []
    tz = target.config.sweep.tz
    context = target.read_only() if dry_run else target.connect()
    with context as connection:
        catalog = Catalog(connection)
        tables = []
        for name in by_table:
            table = catalog.table(name)
            if table is None:
                raise DatabaseUnavailable(f"database {target.name}: table {name!r} is gone")
            tables.append(table)
            for strategies in by_table[name]["anonymised"]:
                for column, strategy in strategies:
                    # Before any write: `year`/`month` must not write CONVERT_TZ's NULL.
                    problem = column in table.columns and zone_problem(
                        connection, table.columns[column], strategy, tz
                    )
                    if problem:
                        raise DatabaseUnavailable(
                            f"database {target.name}: {name}.{column}: {problem} — "
                            f"{ZONE_TABLES_FIX}"
                        )
        try:
            for table in referencing_first(catalog, tables):
                work = by_table[qualified_name(table)]
                pk = list(table.primary_key.columns)
                for strategies, keys in work["anonymised"].items():
                    rows = 0
                    for chunk in chunks(sorted(keys)):
                        where = key_match(table, chunk)
                        rows += (
                            count_rows(connection, table, where)
                            if dry_run
                            else anonymise_rows(
                                connection, table, pk, strategies, where, key, tz=tz
                            )
                        )
                    outcomes.append(
                        {
                            "database": target.name,
                            "table": qualified_name(table),
                            "action": "anonymised",
                            "rows": rows,
                        }
                    )
                if work["deleted"]:
                    rows = 0
                    for chunk in chunks(sorted(work["deleted"])):
                        where = key_match(table, chunk)
                        rows += (
                            count_rows(connection, table, where)
                            if dry_run
                            else connection.execute(table.delete().where(where)).rowcount
                        )
                    outcomes.append(
                        {
                            "database": target.name,
                            "table": qualified_name(table),
                            "action": "deleted",
                            "rows": rows,
                        }
                    )
            if not dry_run:
                connection.commit()
        except BaseException:
            connection.rollback()
            raise
    return outcomes


def replay(
    config: Config, since: str, databases: list[str] | None = None, dry_run: bool = False
) -> ReplayResult:
    """Re-apply every erasure recorded since `since` (YYYY-MM-DD, UTC) to the databases."""
    try:
        start = dt.date.fromisoformat(since)
    except ValueError:
        raise UsageError(f"--since: {since!r} is not a date (YYYY-MM-DD)") from None
    key = hash_key(config)
    targets = select_databases(config, databases)
    store = StateStore(config, key)
    try:
        with sweep_lock(store.engine, store.url):
            records = store.erased_since(start.isoformat())
            result = ReplayResult(None, start.isoformat(), dry_run)
            result.skipped = sum(1 for r in records if not r["replayable"])
            if not dry_run:
                store.mark_interrupted()
                result.run_id = store.start_run("replay", dt.datetime.now(dt.UTC))
            for target in targets:
                mine = [r for r in records if r["database_name"] == target.name and r["replayable"]]
                if not mine:
                    continue
                try:
                    outcomes = _replay_database(target, mine, key, dry_run)
                    result.tables.extend(outcomes)
                    if result.run_id is not None:
                        for outcome in outcomes:
                            store.append(
                                result.run_id,
                                "replay",
                                database=target.name,
                                table=outcome["table"],
                                action=outcome["action"],
                                rows=outcome["rows"],
                                details={"since": result.since},
                            )
                except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
                    message = (
                        str(exc)
                        if isinstance(exc, DatabaseUnavailable)
                        else f"database {target.name}: {describe_write_failure(exc)}"
                    )
                    result.failures.append({"database": target.name, "error": message})
                    if result.run_id is not None:
                        store.append(
                            result.run_id,
                            "database-failed",
                            database=target.name,
                            details={"error": message},
                        )
                finally:
                    target.dispose()
            if result.run_id is not None:
                store.finish_run(
                    result.run_id, "partial" if result.failures else "completed", result.to_json()
                )
            return result
    finally:
        store.close()
