"""Execute due rules in batches: set-based DELETE/UPDATE over the keys pinned for the run.

A database's run first pins every rule's due keys in temporary tables (`pinning.py`),
except, in `run`, a rule nothing else can affect, whose batches walk its own table
(`inplace_keys.py`); each batch is then one transaction in the target database:

1. find the batch's upper key: the last of the next `batch_size` pinned keys after
   `:last`, in key order — one key, never the key set (`keyset.py`: composite keys
   compare as a whole, any ordered key type);
2. record the intent (`batch-start`, the key range) in the audit trail;
3. `DELETE`/`UPDATE ... WHERE key IN (pinned keys in (last, upper]) AND still due` —
   what can change during the run (holds, exceptions, rows still referencing it) is
   evaluated again inside the statement, so a row that stopped being due in the
   meantime is left alone; cascade children go first, selected through the same
   parents;
4. commit, then record the outcome (`batch`, rows) in the audit trail.

A process killed at any point leaves each batch committed or not; the next run marks
the dead run interrupted, evaluates afresh and finds exactly the rows left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .anonymise import anonymise_rows
from .batch_sizing import MAX_BATCH_SIZE, MAX_HASH_BATCH_SIZE, BatchSizer, first_batch_size
from .cascade import CascadeStep, cascade_deletes
from .catalog import qualified_name
from .faults import failpoint
from .keys import key_label
from .pinning import BatchKeys
from .rowkeys import RowKey
from .rules import CompiledRule
from .state.store import StateStore
from .strategies import replacement
from .verification import range_count


class Progress(Protocol):
    """What the executor reports while it works (the CLI draws it; the core does not).

    `rule_started` returns a token the other two calls get back, so databases swept in
    parallel (`run --jobs`) each report their own rule.
    """

    def rule_started(self, database: str, rule: str, due: int) -> object: ...
    def advanced(self, token: object, rows: int) -> None: ...
    def rule_finished(self, token: object) -> None: ...


class NoProgress:
    def rule_started(self, database: str, rule: str, due: int) -> object:
        return None

    def advanced(self, token: object, rows: int) -> None:
        pass

    def rule_finished(self, token: object) -> None:
        pass


@dataclass
class RuleResult:
    """What one rule did in one database."""

    rows: int = 0
    batches: int = 0
    longest_batch_seconds: float = 0.0
    # With `verify`: rows of the committed batches' key ranges still due after them
    # (verification.py), and the last committed batch's upper key.
    left: int = 0
    last: RowKey | None = None


def session_timeouts(
    dialect: str, lock_timeout: float | None, statement_timeout: float | None
) -> list[str]:
    """Statements that bound one batch's lock wait and run time (PostgreSQL, MariaDB).

    On PostgreSQL `SET LOCAL` lasts for the batch's transaction, so it is sent with every
    batch; on MariaDB they are session values, which hold for every statement on the
    connection, so they are set once per rule, before its first batch. A batch that
    times out fails its database (exit 3) with nothing half-done, and the next run
    carries on.
    """
    statements = []
    if dialect == "postgresql":
        if lock_timeout:
            statements.append(f"SET LOCAL lock_timeout = {int(lock_timeout * 1000)}")
        if statement_timeout:
            statements.append(f"SET LOCAL statement_timeout = {int(statement_timeout * 1000)}")
    elif dialect in ("mysql", "mariadb"):
        if lock_timeout:
            statements.append(
                f"SET SESSION innodb_lock_wait_timeout = {max(1, round(lock_timeout))}"
            )
        if statement_timeout:
            statements.append(f"SET SESSION max_statement_time = {statement_timeout:.3f}")
    return statements


def session_level(dialect: str) -> bool:
    """Do the timeouts hold for the session (set once), not for one transaction?"""
    return dialect in ("mysql", "mariadb")


def is_personal_key(columns: list[sa.Column]) -> bool:
    """Is a key recorded only as a keyed hash? Any column that is not an integer may be."""
    return not all(isinstance(column.type, sa.Integer) for column in columns)


class RuleExecutor:
    """Runs one compiled rule to completion in one database, batch by batch."""

    def __init__(
        self,
        connection: sa.Connection,
        pinned: BatchKeys,
        compiled: CompiledRule,
        cascade: list[CascadeStep],
        *,
        database: str,
        batch_size: int | Literal["auto"],
        hmac_key: bytes,
        store: StateStore,
        run_id: int,
        progress: Progress,
        due: int = 0,
        should_stop: Callable[[], bool] = lambda: False,
        pause: float = 0.0,
        lock_timeout: float | None = None,
        statement_timeout: float | None = None,
        verify: bool = False,
        batch_time: float = 0.5,
    ) -> None:
        self.connection = connection
        self.pinned = pinned
        self.compiled = compiled
        self.cascade = cascade
        self.database = database
        self.batch_size = first_batch_size(batch_size)
        self.batch_time = batch_time
        self.adaptive = batch_size == "auto"
        self.hmac_key = hmac_key
        self.store = store
        self.run_id = run_id
        self.progress = progress
        self.due = due
        self.should_stop = should_stop
        self.pause = pause
        self.dialect = connection.dialect.name
        timeouts = session_timeouts(self.dialect, lock_timeout, statement_timeout)
        # PostgreSQL: every batch; MariaDB: session values, once (`session_timeouts`).
        self.session_once = timeouts if session_level(self.dialect) else []
        self.timeouts = [] if session_level(self.dialect) else timeouts
        # Every batch runs the same statements with other keys: build them once, so
        # SQLAlchemy compiles each once (its cache key is memoised on the object).
        # (Key parameters are named apart from the table's columns, whose SET values
        # SQLAlchemy binds by name.)
        self.keyset = pinned.keyset  # batches walk the pinned keys, in key order
        self.personal_key = is_personal_key(list(compiled.key_columns))
        self.result = RuleResult()
        self._first_batch = self._statements(first=True)
        self._next_batch = self._statements(first=False)
        # Verification inside each batch: its key range of the table still due after it.
        self._verify = (
            (range_count(pinned, first=True), range_count(pinned, first=False)) if verify else None
        )
        # Adaptive sizes: one boundary query per size (sizes have two significant digits).
        self._uppers: dict[tuple[int, bool], sa.Select] = {}

    def _upper(self, size: int, first: bool) -> sa.Select:
        if size == self.batch_size:
            return (self._first_batch if first else self._next_batch).upper
        upper = self._uppers.get((size, first))
        if upper is None:
            upper = self._uppers[size, first] = self.pinned.upper_query(size, first)
        return upper

    def label(self, value: RowKey | None) -> str | None:
        if value is None:
            return None
        text = value[0] if len(value) == 1 else "(" + ", ".join(map(str, value)) + ")"
        return key_label(self.hmac_key, text, self.personal_key)

    def run(self) -> RuleResult:
        token = self.progress.rule_started(self.database, self.compiled.rule.id, self.due)
        try:
            return self._run(token)
        finally:
            self.progress.rule_finished(token)

    def _run(self, token: object) -> RuleResult:
        # Kept on the executor, so a caller whose run failed partway still reads the
        # rows of the batches that were committed.
        result = self.result = RuleResult()
        last: RowKey | None = None
        # The outcome of a batch is written together with the next batch's intent: one
        # state-database commit per batch. Lost in a crash, it is recorded as unconfirmed.
        outcome: dict[str, Any] | None = None
        failpoint("before-first-batch")
        connection = self.connection
        hashed = self._next_batch.act is None  # a batch's rows are read into memory
        sizer = BatchSizer(
            "auto" if self.adaptive else self.batch_size,
            self.batch_time,
            MAX_HASH_BATCH_SIZE if hashed else MAX_BATCH_SIZE,
        )
        if self.session_once:
            with connection.begin():
                for statement in self.session_once:
                    connection.exec_driver_sql(statement)
        while not self.should_stop():
            with connection.begin():
                for statement in self.timeouts:
                    connection.exec_driver_sql(statement)
                statements = self._first_batch if last is None else self._next_batch
                size = sizer.size
                upper_query = self._upper(size, last is None)
                found = connection.execute(upper_query, self.keyset.params(last, None)).first()
                if found is None:
                    break
                upper = tuple(found)
                keys = self.keyset.params(last, upper)
                audit = {
                    "database": self.database,
                    "rule": self.compiled.rule.id,
                    "table": qualified_name(self.compiled.table),
                    "action": self.compiled.rule.action,
                    "key_from": self.label(last),
                    "key_to": self.label(upper),
                }
                # A plain read took no row locks yet: record the intent, then act.
                self.store.append_many(
                    self.run_id,
                    [*([("batch", outcome)] if outcome else []), ("batch-start", audit)],
                )
                failpoint("after-batch-intent")
                started = time.perf_counter()
                # The due predicate is evaluated again inside the statement, so a row
                # that stopped being due since the boundary was read is left alone.
                if statements.act is None:
                    rows = self._anonymise_hashed(connection, keys, statements.rows)
                else:
                    for cascade in statements.cascade:
                        connection.execute(cascade, keys)
                    rows = connection.execute(statements.act, keys).rowcount
                left = 0
                if self._verify is not None:
                    check = self._verify[0 if last is None else 1]
                    left = int(connection.execute(check, keys).scalar_one())
            elapsed = time.perf_counter() - started  # how long the batch held its locks
            failpoint("after-target-commit")
            details: dict[str, Any] = {"seconds": round(elapsed, 3)}
            if self.adaptive:
                details["batch_size"] = size  # keys the batch asked for
            outcome = {**audit, "rows": rows, "details": details}
            result.rows += rows
            result.batches += 1
            result.longest_batch_seconds = max(result.longest_batch_seconds, elapsed)
            result.left += left
            sizer.record(elapsed)
            self.progress.advanced(token, rows)
            last = result.last = upper
            if self.pause:
                time.sleep(self.pause)  # let the application beside us breathe
        if outcome:
            self.store.append(self.run_id, "batch", **outcome)
            failpoint("after-batch")
        return result

    def _statements(self, *, first: bool) -> BatchStatements:
        return batch_statements(
            self.compiled, self.pinned, self.cascade, self.batch_size, self.dialect, first=first
        )

    def _anonymise_hashed(
        self, connection: sa.Connection, keys: dict[str, Any], rows: ColumnElement[bool]
    ) -> int:
        return anonymise_rows(
            connection,
            self.compiled.table,
            list(self.compiled.key_columns),
            self.compiled.rule.columns,
            rows,
            self.hmac_key,
            params=keys,
            tz=self.compiled.tz,
        )


def batch_statements(
    compiled: CompiledRule,
    pinned: BatchKeys,
    cascade: list[CascadeStep],
    batch_size: int,
    dialect: str,
    *,
    first: bool,
) -> BatchStatements:
    """Build one batch's statements; the keys are bound parameters (`plan --sql` shows
    these very statements)."""
    table = compiled.table
    upper = pinned.upper_query(batch_size, first)
    # The batch's rows: pinned in (last, upper], and still due by what can change (in
    # place: due rows of the table in (last, upper], by the whole predicate).
    rows = pinned.batch(first)
    if pinned.pinned:
        rows = sa.and_(rows, compiled.still_due)
    rule = compiled.rule
    if rule.action == "delete":
        # Children before parents: the deepest cascade table first.
        children = cascade_deletes(cascade, table, rows, dialect)
        return BatchStatements(upper, rows, children, table.delete().where(rows))
    if any(strategy == "hash" for _, strategy in rule.columns):
        return BatchStatements(upper, rows, (), None)  # pseudonyms bound per batch
    values = {
        table.columns[name]: replacement(strategy, table.columns[name], dialect, compiled.tz)
        for name, strategy in rule.columns
    }
    return BatchStatements(upper, rows, (), table.update().where(rows).values(values))


@dataclass(frozen=True)
class BatchStatements:
    """One batch's statements, the keys bound at execution (last and upper)."""

    upper: sa.Select  # the batch's last key: max over the next `batch_size` pinned keys
    rows: ColumnElement[bool]  # the rule's rows the batch acts on
    cascade: tuple[sa.Delete, ...]  # delete rules: children first
    act: sa.Delete | sa.Update | None  # None: an anonymise rule with `hash` columns
