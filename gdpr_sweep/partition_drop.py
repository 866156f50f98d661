"""Remove a delete rule's wholly due partitions, each checked again, audited, crash-safe.

Before a database's rules pin their keys (`pinning.py`), the partitions the plan
chose to remove (`partition_plan.py`) go:

1. the intents in the audit trail, all in one commit (`partition-drop-start`: rule,
   table, partition, bounds, the rows planned); then one partition at a time:
2. one transaction: take the table's lock (PostgreSQL `LOCK TABLE … ACCESS EXCLUSIVE`
   for a drop, the partition's for a truncate; MariaDB `LOCK TABLES … WRITE`), count
   the partition's rows and, in the same pass, those due by the rule's whole predicate
   (holds, exceptions, rows still referencing it, a NULL or unreadable clock: the row
   path's own predicate), delete the rows of the rule's `cascade` tables that refer to
   its rows, then `DETACH PARTITION` (PostgreSQL drop), `TRUNCATE` (truncate) or
   `ALTER TABLE … DROP/TRUNCATE PARTITION` (MariaDB). On PostgreSQL, for a rule with no
   `only` and no exception, the bounds alone prove every row due (a bounded range
   partition holds no NULL clock), so nothing is read under the parent's lock;
3. PostgreSQL drop: `DROP TABLE` of the detached tables, all in one transaction after
   the last DETACH; a table not counted yet is locked by name and counted first;
4. the outcomes, all in one commit after the last (`partition-drop`: partition,
   bounds, rows removed).

When the check finds a row that is no longer due (a hold placed since the plan, say),
the partition is left as it is (`partition-skipped`) and its due rows take the row
path like any other. A process killed between 1 and 4 leaves an intent without an
outcome: the next run over that database finishes it first (`finish_pending`): a
detached table that is still there is dropped, an intent whose partition is still
attached is recorded as abandoned, one whose table is gone as done.

`partition_statements()` gives the DDL for one partition of a plan item (`plan --sql`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.util import find_tables

from .cascade import CascadeStep, cascade_deletes
from .catalog import qualified_name, split_name
from .counting import count
from .faults import failpoint
from .partition_catalog import attached_partitions
from .partition_plan import PartitionChoice, bounds_prove_due
from .plan import RuleEvaluation
from .state.partition_intents import pending_partition_drops
from .state.store import StateStore

START, DONE, SKIPPED, ABANDONED = (
    "partition-drop-start",
    "partition-drop",
    "partition-skipped",
    "partition-drop-abandoned",
)


#: Detached tables dropped per transaction: one commit for many, within the lock table.
DROP_CHUNK = 64


@dataclass(frozen=True)
class _Detached:
    """A PostgreSQL partition detached and not yet dropped."""

    index: int  # its place in the run's list
    choice: PartitionChoice
    rows: int | None  # None: counted after the DETACH, as its own table
    drop: str  # its DROP TABLE
    seconds: float  # so far
    lock_seconds: float


def _tally(
    connection: sa.Connection,
    table: sa.Table,
    in_partition: sa.ColumnElement[bool],
    due: sa.ColumnElement[bool],
) -> tuple[int, int]:
    """(rows, rows due) of one partition in one pass. `CASE WHEN due` counts a row only
    where `due` is true, never where it is NULL: the same rows as `WHERE due`."""
    one = sa.literal(1)
    row = connection.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((due, one), else_=0)), 0))
        .select_from(table)
        .where(in_partition)
    ).one()
    return int(row[0]), int(row[1])


@dataclass
class PartitionOutcome:
    """What removing a rule's partitions did."""

    removed: int = 0
    rows: int = 0
    seconds: float = 0.0
    longest_lock_seconds: float = 0.0


def partition_statements(
    dialect: sa.Dialect | str, table: str, partition: dict[str, Any]
) -> list[str]:
    """The DDL that removes `partition` (a plan item's `partitions[]` entry) of `table`
    (the item's table, as the config names it); [] for a batched partition.

    The rows of the rule's `cascade` tables that refer to the partition's rows are
    deleted first, in the same transaction (not shown here).
    """
    if isinstance(dialect, str):
        dialect = _dialect(dialect)
    action = partition["action"]
    if action not in ("drop", "truncate"):
        return []
    quote = dialect.identifier_preparer.quote
    schema, name = split_name(table)
    parent = f"{quote(schema)}.{quote(name)}" if schema else quote(name)
    if dialect.name == "postgresql":
        own = quote(partition["name"])
        if partition.get("schema"):
            own = f"{quote(partition['schema'])}.{own}"
        if action == "truncate":
            return [f"TRUNCATE TABLE {own}"]
        return [f"ALTER TABLE {parent} DETACH PARTITION {own}", f"DROP TABLE {own}"]
    verb = "DROP" if action == "drop" else "TRUNCATE"
    return [f"ALTER TABLE {parent} {verb} PARTITION {quote(partition['name'])}"]


def _dialect(name: str) -> sa.Dialect:
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect()  # type: ignore[no-any-return]
    from sqlalchemy.dialects import mysql

    return mysql.dialect()  # type: ignore[no-any-return]


class PartitionRemover:
    """Removes one rule's chosen partitions in one database (see the module docstring)."""

    def __init__(
        self,
        connection: sa.Connection,
        evaluation: RuleEvaluation,
        cascade: list[CascadeStep],
        *,
        database: str,
        store: StateStore,
        run_id: int,
        timeouts: list[str],
    ) -> None:
        self.connection = connection
        self.evaluation = evaluation
        self.compiled = evaluation.compiled
        self.cascade = cascade
        self.database = database
        self.store = store
        self.run_id = run_id
        self.timeouts = timeouts
        self.dialect = connection.dialect.name
        self.outcome = PartitionOutcome()

    def run(self, should_stop: Any = lambda: False) -> PartitionOutcome:
        """Remove the partitions; the audit trail gets every intent in one commit before
        the first DDL and every outcome in one commit after the last (a partition not
        reached gets `partition-skipped`), so the state database adds two commits, not
        two per partition. One whose removal failed keeps its intent alone: the next run
        finds out what became of it (`finish_pending`)."""
        started = time.perf_counter()
        # Another rule of this run may have removed one already (its rows were due there
        # too): only those still attached (one catalog query for all of them).
        with self.connection.begin():
            attached = attached_partitions(self.connection, self.compiled.table)
        choices = [
            c
            for c in self.evaluation.removed_partitions
            if (c.partition.schema, c.partition.name) in attached
        ]
        if choices:
            self.store.append_many(self.run_id, [(START, self._entry(c, c.rows)) for c in choices])
        outcomes: dict[int, tuple[str, dict[str, Any]]] = {}
        reached = 0
        try:
            detached: list[_Detached] = []
            try:
                for index, choice in enumerate(choices):
                    if should_stop():
                        break
                    reached = index + 1
                    done = self._remove(index, choice)
                    if isinstance(done, _Detached):
                        detached.append(done)
                    else:
                        outcomes[index] = done
            finally:
                # What was detached is dropped even when a later partition failed (its
                # lock timed out, say), unless the connection itself is gone.
                if detached and not self.connection.invalidated:
                    self._drop_detached(detached, outcomes)
        finally:
            # The one that failed, and any detached whose DROP failed, keep their intent
            # alone; those not reached are recorded as skipped.
            for index in range(reached, len(choices)):
                outcomes[index] = (SKIPPED, self._entry(choices[index], 0, reason="not reached"))
            if outcomes:
                self.store.append_many(self.run_id, [outcomes[i] for i in sorted(outcomes)])
            self.outcome.seconds = round(time.perf_counter() - started, 3)
        return self.outcome

    def _entry(self, choice: PartitionChoice, rows: int | None, **extra: Any) -> dict[str, Any]:
        p = choice.partition
        return dict(
            database=self.database,
            rule=self.compiled.rule.id,
            table=qualified_name(self.compiled.table),
            action=choice.action,
            rows=rows,
            details={"partition": p.name, "schema": p.schema, "from": p.lower_text,
                     "to": p.upper_text} | extra,
        )  # fmt: skip

    def _remove(
        self, index: int, choice: PartitionChoice
    ) -> tuple[str, dict[str, Any]] | _Detached:
        """Remove one partition, or find a row no longer due: its outcome entry; or, for a
        PostgreSQL drop, detach it and return what `_drop_detached` needs to finish."""
        connection, table = self.connection, self.compiled.table
        assert self.compiled.rule.since is not None
        in_partition = choice.partition.rows(table.columns[self.compiled.rule.since])
        statements = partition_statements(
            connection.dialect, qualified_name(table), choice.to_json()
        )
        started = time.perf_counter()
        locked = self._lock_statements(choice)
        # A PostgreSQL drop whose rows are all due by the bounds is counted after the
        # DETACH, as its own table, while the application has the parent back.
        later = bounds_prove_due(self.dialect, self.compiled) and len(statements) > 1
        rows = due = 0
        transaction = connection.begin()
        try:
            for statement in [*self.timeouts, *locked]:
                connection.exec_driver_sql(statement)
            if not later:
                # One pass under the lock the DDL takes: the rows, and how many of them
                # are due by the rule's whole predicate (the row path's: a NULL or
                # unreadable clock, a hold, an exception or a `only` is not due).
                rows, due = _tally(connection, table, in_partition, self.compiled.due)
            if due == rows:
                for delete in cascade_deletes(self.cascade, table, in_partition, self.dialect):
                    connection.execute(delete)
                connection.exec_driver_sql(statements[0])
                transaction.commit()
            else:
                transaction.rollback()
        except BaseException:
            if transaction.is_active:
                transaction.rollback()
            raise
        finally:
            if locked and self.dialect != "postgresql" and not connection.invalidated:
                connection.exec_driver_sql("UNLOCK TABLES")
                connection.commit()
        if due != rows:
            return SKIPPED, self._entry(choice, rows - due, reason="a row is no longer due")
        locked_for = time.perf_counter() - started  # the table's lock: until here
        failpoint("after-partition-detach")
        if len(statements) > 1:  # PostgreSQL: DROP TABLE of the detached table, later
            return _Detached(
                index=index, choice=choice, rows=None if later else rows, drop=statements[1],
                seconds=time.perf_counter() - started, lock_seconds=locked_for,
            )  # fmt: skip
        return self._done(choice, rows, time.perf_counter() - started, locked_for)

    def _done(
        self, choice: PartitionChoice, rows: int, elapsed: float, locked_for: float
    ) -> tuple[str, dict[str, Any]]:
        self.outcome.removed += 1
        self.outcome.rows += rows
        self.outcome.longest_lock_seconds = max(self.outcome.longest_lock_seconds, locked_for)
        return DONE, self._entry(
            choice, rows, seconds=round(elapsed, 3), lock_seconds=round(locked_for, 3)
        )

    def _drop_detached(
        self, detached: list[_Detached], outcomes: dict[int, tuple[str, dict[str, Any]]]
    ) -> None:
        """DROP TABLE of the detached partitions, in one transaction per `DROP_CHUNK` (one
        commit, not one per partition); one not yet counted is locked by name and counted
        first, so nothing can change it between the count and the DROP. Each committed
        chunk's outcomes go into `outcomes`; a failure leaves its chunk's intents alone
        (the next run drops those tables: `finish_pending`)."""
        connection = self.connection
        for first in range(0, len(detached), DROP_CHUNK):
            finished = []
            with connection.begin():
                for statement in self.timeouts:
                    connection.exec_driver_sql(statement)
                for entry in detached[first : first + DROP_CHUNK]:
                    started = time.perf_counter()
                    rows = entry.rows
                    if rows is None:
                        name = entry.drop.removeprefix("DROP TABLE ")  # quoted, as there
                        connection.exec_driver_sql(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
                        p = entry.choice.partition
                        own = sa.table(p.name, schema=p.schema)
                        rows = count(connection, own)  # type: ignore[arg-type]
                    connection.exec_driver_sql(entry.drop)
                    finished.append((entry, rows, time.perf_counter() - started))
            for entry, rows, seconds in finished:
                outcomes[entry.index] = self._done(
                    entry.choice, rows, entry.seconds + seconds, entry.lock_seconds
                )

    def _lock_statements(self, choice: PartitionChoice) -> list[str]:
        """Lock what the check reads, so nothing changes between it and the DDL."""
        quote = self.connection.dialect.identifier_preparer.quote
        table = self.compiled.table
        if self.dialect == "postgresql":
            if choice.action == "truncate":
                p = choice.partition
                own = quote(p.name) if not p.schema else f"{quote(p.schema)}.{quote(p.name)}"
                return [f"LOCK TABLE {own} IN ACCESS EXCLUSIVE MODE"]
            parent = quote(table.name) if not table.schema else (
                f"{quote(table.schema)}.{quote(table.name)}"
            )  # fmt: skip
            return [f"LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE"]
        # MariaDB: under LOCK TABLES only the locked tables can be read, so the table is
        # locked only when the rule's predicate and cascade read no other (else the
        # check and the DDL are apart by one statement).
        read = {t for t in find_tables(self.compiled.due, include_aliases=True)}
        if any(t is not table for t in read) or self.cascade:
            return []
        own = quote(table.name)
        if table.schema:
            own = f"{quote(table.schema)}.{own}"
        return [f"LOCK TABLES {own} WRITE"]


def finish_pending(
    connection: sa.Connection, store: StateStore, run_id: int, database: str
) -> list[str]:
    """Finish what a killed run left between a partition's intent and its outcome;
    return the failures (one line each) of those it could not finish."""
    failures = []
    for intent in pending_partition_drops(store, database):
        details = intent["details"]
        fields = {
            "database": database,
            "rule": intent["rule_id"],
            "table": intent["table_name"],
            "action": intent["action"],
        }
        extra = {**details, "intent_of_run": intent["run_id"]}
        where = {"schema": details.get("schema"), "name": details["partition"]}
        try:
            state = _partition_state(connection, intent["table_name"], where)
            if state == "attached":
                store.append(run_id, ABANDONED, rows=0, details=extra, **fields)
                continue
            rows = intent["rows"]
            if state == "detached":
                own = sa.table(where["name"], schema=where["schema"])
                with connection.begin():
                    rows = count(connection, own)  # type: ignore[arg-type]
                    quote = connection.dialect.identifier_preparer.quote
                    name = quote(where["name"])
                    if where["schema"]:
                        name = f"{quote(where['schema'])}.{name}"
                    connection.exec_driver_sql(f"DROP TABLE {name}")
            store.append(run_id, DONE, rows=rows, details=extra | {"finished": state}, **fields)
        except sa.exc.DBAPIError as exc:
            if connection.in_transaction():
                connection.rollback()
            failures.append(
                f"partition {details['partition']} of {intent['table_name']}: detached by run "
                f"{intent['run_id']}, not dropped ({type(exc.orig).__name__}); drop it by hand"
            )
    return failures


_PG_STATE = """
SELECT c.relispartition FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = COALESCE(%(schema)s, current_schema()) AND c.relname = %(name)s
"""

_MARIADB_STATE = """
SELECT 1 FROM information_schema.PARTITIONS
WHERE TABLE_SCHEMA = COALESCE(%(schema)s, DATABASE()) AND TABLE_NAME = %(table)s
  AND PARTITION_NAME = %(name)s
"""


def _partition_state(connection: sa.Connection, table: str, where: dict[str, Any]) -> str:
    """ "attached", "detached" (PostgreSQL: a table of its own) or "gone"."""
    with connection.begin():
        if connection.dialect.name == "postgresql":
            found = connection.exec_driver_sql(_PG_STATE, where).first()
            if found is None:
                return "gone"
            return "attached" if found[0] else "detached"
        schema, name = split_name(table)
        params = {"schema": schema, "table": name, "name": where["name"]}
        return "attached" if connection.exec_driver_sql(_MARIADB_STATE, params).first() else "gone"
