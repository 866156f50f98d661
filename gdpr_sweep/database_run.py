"""Sweep one database: pin its rules' due keys, run each rule's batches, recount.

A database that failed evaluation, or fails while it runs, is recorded
(`database-failed`) and returned as its failure; the other databases carry on. One
rule's failure (a constraint, a timeout) is its own unless the connection is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from .analyze import analyze_tables
from .cascade import CascadeStep, cascade_steps
from .catalog import Catalog
from .config import Config, SweepSettings
from .counting import count, count_due
from .engines import DatabaseFailure, database_failure, describe_write_failure
from .errors import DatabaseUnavailable
from .evaluation import DatabaseEvaluation
from .execute import Progress, RuleExecutor, RuleResult, session_timeouts
from .inplace_keys import self_contained, written_tables
from .partition_drop import PartitionRemover, finish_pending
from .pinning import BatchKeys, PinnedKeys, pinned_rules
from .plan import RuleEvaluation
from .run_result import RunItem
from .state.store import StateStore
from .sweep_options import SweepOptions, SweepWindow, TenantWindow
from .verification import checked_by_range, tail_count

# The JSON log names the logger: these records keep the name they had before the
# sweep was split into modules.
log = logging.getLogger("gdpr_sweep.sweep")


def execute_database(
    config: Config,
    store: StateStore,
    run_id: int,
    hmac_key: bytes,
    evaluation: DatabaseEvaluation,
    progress: Progress,
    options: SweepOptions,
    window: SweepWindow,
    lock_held: Callable[[], bool] | None = None,
    exact_keys: bool = False,
) -> tuple[list[RunItem], DatabaseFailure | None, dict[str, Any] | None]:
    """Execute one database's due rules, then recount; return its items, any failure
    and, with `analyze = true`, what refreshing the statistics took.

    `exact_keys` (`apply`): every rule acts on its pinned keys, the reviewed ones; else
    (`run`) a rule nothing else in the run can affect walks its table in place
    (`inplace_keys.py`).

    `lock_held` says whether the run still holds the tenant's lock; asked before the
    database is touched and before every batch: a lost lock stops it there (failed)."""
    target = evaluation.target
    if evaluation.failure:
        return [], _database_failed(store, run_id, evaluation.failure), None
    if lock_held is not None:
        window = TenantWindow(window, lock_held)
        if not lock_held():
            lost = f"database {target.name}: {_lost_lock(0)}"
            failure = DatabaseFailure(database=target.name, error=lost)
            return [], _database_failed(store, run_id, failure), None
    items = [
        RunItem(
            database=e.item.database,
            rule=e.item.rule,
            table=e.item.table,
            action=e.item.action,
            cutoff=e.item.cutoff,
            due=e.item.due,
            held=e.item.held,
        )
        for e in evaluation.rule_evaluations
    ]
    settings = config.sweep
    try:
        # One connection for the database's whole run: the pinned keys live in its
        # session's temporary tables (pinning.py).
        with target.connect() as connection:
            catalog = Catalog(connection)
            steps = {
                e.item.rule: cascade_steps(catalog, e.compiled.rule, e.compiled.table, config)
                for e in evaluation.rule_evaluations
            }
            connection.rollback()  # end the reflection's transaction before pinning
            failed: list[str] = finish_pending(connection, store, run_id, target.name)
            pairs = list(zip(evaluation.rule_evaluations, items, strict=True))
            timeouts = session_timeouts(
                target.engine.dialect.name, settings.lock_timeout, settings.statement_timeout
            )
            # Wholly due partitions go first, before the keys are pinned: the row path
            # then pins and batches only the rows left (partition_drop.py).
            for index in sorted(range(len(pairs)), key=lambda i: pairs[i][0].position):
                rule_evaluation, item = pairs[index]
                if rule_evaluation.removed_partitions and not window.is_up():
                    error = _remove_partitions(
                        connection, rule_evaluation, item, steps[item.rule], store, run_id,
                        target.name, timeouts, window,
                    )  # fmt: skip
                    if error is not None:
                        failed.append(error)
            compiled = [e.compiled for e in evaluation.rule_evaluations]
            written = written_tables(compiled, [steps[c.rule.id] for c in compiled])
            # Rules verified by their batches' key ranges: what each batch left (verification.py).
            ranged: dict[int, RuleResult] = {
                i: RuleResult()
                for i in range(len(compiled))
                if checked_by_range(compiled, written, i, target.engine.dialect.name)
            }
            # `run`: a rule nothing else in the run can affect needs no pins.
            in_place = (
                set()
                if exact_keys
                else {i for i in range(len(compiled)) if self_contained(compiled, written, i)}
            )
            lock_wait = session_timeouts(target.engine.dialect.name, settings.lock_timeout, None)
            with pinned_rules(connection, compiled, lock_wait, in_place) as pins:
                # Dependency order: a rule before the deletes that would take its rows.
                for index in sorted(range(len(pairs)), key=lambda i: pairs[i][0].position):
                    rule_evaluation, item = pairs[index]
                    if item.due == 0 or window.is_up():
                        continue
                    error = _execute_rule(
                        connection,
                        pins[index],
                        rule_evaluation,
                        item,
                        steps[item.rule],
                        store,
                        run_id,
                        hmac_key,
                        target.name,
                        settings,
                        progress,
                        options,
                        window,
                        ranged.get(index),
                    )
                    if error is not None:
                        failed.append(error)
                recounted = _recount(
                    connection, pins, store, run_id, evaluation, items, window, ranged
                )
            analyzed = None
            if target.db.analyze and any(item.done for item in items):
                changed = [
                    table
                    for e, item in pairs
                    if item.done
                    for table in (e.compiled.table, *(s.child for s in steps[item.rule]))
                ]
                analyzed = {"database": target.name} | analyze_tables(connection, changed)
        if isinstance(window, TenantWindow) and window.lock_lost:
            failed.append(_lost_lock(sum(item.done for item in items)))
        if failed:
            message = f"database {target.name}: " + "; ".join(failed)
            return items, DatabaseFailure(database=target.name, error=message), analyzed
        return items, recounted, analyzed
    except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
        failure = database_failure(target, exc, writing=True)
        return items, _database_failed(store, run_id, failure), None
    finally:
        target.dispose()


def _lost_lock(rows: int) -> str:
    return (
        "its tenant lock was lost (the lock connection to the state database ended): "
        f"stopped before the next batch after {rows} row(s); run again"
    )


def _database_failed(store: StateStore, run_id: int, failure: DatabaseFailure) -> DatabaseFailure:
    """Record that the database failed as a whole (`database-failed`, and a log line)."""
    database = failure["database"]
    store.append(run_id, "database-failed", database=database, details={"error": failure["error"]})
    log.error("database failed", extra={"event": "database-failed", "database": database})
    return failure


def _execute_rule(
    connection: sa.Connection,
    pinned: BatchKeys,
    rule_evaluation: RuleEvaluation,
    item: RunItem,
    cascade: list[CascadeStep],
    store: StateStore,
    run_id: int,
    hmac_key: bytes,
    database: str,
    settings: SweepSettings,
    progress: Progress,
    options: SweepOptions,
    window: SweepWindow,
    checked: RuleResult | None = None,
) -> str | None:
    """Run one rule over its pinned keys; record it; return its failure, if any.

    With `checked`, each batch verifies its key range; what they left goes there."""
    started = time.perf_counter()
    executor = RuleExecutor(
        connection,
        pinned,
        rule_evaluation.compiled,
        cascade,
        database=database,
        batch_size=settings.batch_size,
        hmac_key=hmac_key,
        store=store,
        run_id=run_id,
        progress=progress,
        due=item.due,
        should_stop=window.is_up,
        pause=options.pause,
        lock_timeout=settings.lock_timeout,
        statement_timeout=settings.statement_timeout,
        verify=checked is not None,
        batch_time=settings.batch_time,
    )
    error = None
    try:
        executor.run()
    except sa.exc.DBAPIError as exc:
        if _connection_lost(exc):
            raise  # the database is gone: its other rules cannot run either
        # One rule's failure (a constraint, a timeout) is its own: the batch rolled
        # back, the committed batches stay counted, the other rules run.
        error = f"rule {item.rule}: {describe_write_failure(exc)}"
    finally:
        outcome = executor.result  # the committed batches, however it ended
        item.done, item.batches = item.partition_rows + outcome.rows, outcome.batches
        item.longest_batch_seconds = round(
            max(item.longest_batch_seconds, outcome.longest_batch_seconds), 3
        )
        item.seconds = round(time.perf_counter() - started, 3)
        if checked is not None:
            checked.left, checked.last = outcome.left, outcome.last
    store.append(
        run_id,
        "rule-done" if error is None else "rule-failed",
        database=database,
        rule=item.rule,
        table=item.table,
        action=item.action,
        rows=item.done,
        details={"due": item.due, "held": item.held, "cutoff": item.cutoff}
        | ({"error": error} if error else {}),
    )
    if error is not None:
        log.error(
            "rule failed", extra={"event": "rule-failed", "database": database, "rule": item.rule}
        )
        return error
    log.info(
        "rule done",
        extra={"event": "rule-done", "database": database, "rule": item.rule, "rows": item.done},
    )
    return None


def _remove_partitions(
    connection: sa.Connection,
    rule_evaluation: RuleEvaluation,
    item: RunItem,
    cascade: list[CascadeStep],
    store: StateStore,
    run_id: int,
    database: str,
    timeouts: list[str],
    window: SweepWindow,
) -> str | None:
    """Remove one rule's wholly due partitions; return its failure, if any."""
    remover = PartitionRemover(
        connection, rule_evaluation, cascade, database=database, store=store, run_id=run_id,
        timeouts=timeouts,
    )  # fmt: skip
    error = None
    try:
        remover.run(window.is_up)
    except sa.exc.DBAPIError as exc:
        if _connection_lost(exc):
            raise
        if connection.in_transaction():
            connection.rollback()
        error = f"rule {item.rule}: removing a partition: {describe_write_failure(exc)}"
        store.append(
            run_id, "rule-failed", database=database, rule=item.rule, table=item.table,
            action=item.action, rows=remover.outcome.rows, details={"error": error},
        )  # fmt: skip
    finally:
        outcome = remover.outcome
        item.partitions_removed, item.partition_rows = outcome.removed, outcome.rows
        item.partition_seconds = outcome.seconds
        item.done = outcome.rows
        item.longest_batch_seconds = round(outcome.longest_lock_seconds, 3)
    return error


def _connection_lost(exc: sa.exc.DBAPIError) -> bool:
    """Did the statement fail because the connection to the database is gone?"""
    return bool(exc.connection_invalidated) or isinstance(exc, sa.exc.InterfaceError)


def _recount(
    connection: sa.Connection,
    pins: list[BatchKeys],
    store: StateStore,
    run_id: int,
    evaluation: DatabaseEvaluation,
    items: list[RunItem],
    window: SweepWindow,
    ranged: dict[int, RuleResult],
) -> DatabaseFailure | None:
    """Count, same as-of, what each rule should have done and did not: reported (exit 3).

    A rule whose clock is its own row's: the rows due now, as before the run (a batch
    that skipped them, old data inserted while the sweep ran, a parent still referenced
    because its children's rule failed). A `since_latest` rule: its pinned rows still
    there and still due by what the batches re-check — its unpinned rows are not
    counted, as their clock may have moved because this run deleted their activity;
    the next run judges them. A rule in `ranged` (`verification.checked_by_range`): what
    its batches left in their key ranges, plus the rows above its last batch. When the
    nightly window ran out, rows left are expected: recorded, not a failure.
    """
    with connection.begin():
        for index, (rule_evaluation, item, pinned) in enumerate(
            zip(evaluation.rule_evaluations, items, pins, strict=True)
        ):
            compiled = rule_evaluation.compiled
            if index in ranged:
                checked = ranged[index]
                item.left = checked.left + tail_count(connection, pinned, checked.last)
            elif compiled.rule.since_latest is None:
                item.left = count_due(connection, compiled)
            else:
                assert isinstance(pinned, PinnedKeys), "a since_latest rule is always pinned"
                item.left = count(connection, compiled.table, pinned.rows(), compiled.still_due)
    left = [item for item in items if item.left]
    for item in left:
        store.append(
            run_id,
            "left-after-run" if window.stopped.is_set() else "verify-failed",
            database=item.database,
            rule=item.rule,
            table=item.table,
            action=item.action,
            rows=item.left,
        )
    if left and not window.stopped.is_set():
        log.error(
            "rows still due after the run",
            extra={"event": "verify-failed", "database": evaluation.target.name},
        )
        database = evaluation.target.name
        message = f"database {database}: " + ", ".join(
            f"rule {item.rule}: {item.left:,} row(s) still due after the run" for item in left
        )
        return DatabaseFailure(database=database, error=message)
    return None
