"""`run` and `apply`: evaluate, guard, execute, and audit — under the sweep lock.

`run_sweep()` is the whole cron job: it takes the lock (exit 4 when held), marks runs
a killed process left behind as interrupted, evaluates every rule exactly as `plan`
does, refuses when a guard trips (exit 5), then executes database by database. A
database that fails is recorded and the others complete (exit 3).

`apply_plan()` is the same with a reviewed plan file: it re-evaluates at the plan's
pinned as-of and refuses (exit 5) unless the config digest and every rule's due set
(count and keyed digest of the keys) are what was reviewed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .approval import Approval
from .catalog import Catalog
from .config import Config, SweepSettings
from .counting import count, count_due
from .engines import TargetDatabase, describe_failure, describe_write_failure, select_databases
from .errors import (
    DatabaseUnavailable,
    ExitCode,
    PartialFailure,
    Refused,
    StateUnavailable,
    UsageError,
)
from .execute import (
    CascadeStep,
    NoProgress,
    Progress,
    RuleExecutor,
    cascade_steps,
    session_timeouts,
)
from .faults import failpoint
from .holds.store import active_holds
from .keys import hash_key
from .periods import local_date
from .pinning import PinnedKeys, pinned_rules
from .plan import Evaluated, Plan, evaluate_database, select_rules
from .state.lock import sweep_lock
from .state.store import StateStore

log = logging.getLogger(__name__)


@dataclass
class RunItem:
    database: str
    rule: str
    table: str
    action: str
    cutoff: str
    due: int
    held: int
    done: int = 0
    batches: int = 0
    longest_batch_seconds: float = 0.0
    seconds: float = 0.0  # time spent executing the rule's batches, audit appends included
    left: int = 0  # still due when the run ended (verification recount)


@dataclass
class RunResult:
    """The summary SPEC's `run --json` prints."""

    run_id: int | None
    as_of: dt.datetime
    config_digest: str
    status: str  # completed | incomplete | stopped | partial | refused
    items: list[RunItem] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    interrupted_runs: list[int] = field(default_factory=list)
    head: str | None = None  # the audit chain's head after the run (keep it elsewhere)
    approval: Approval = field(default_factory=Approval)

    @property
    def exit_code(self) -> int:
        # `stopped` (a signal): work remains, the next run continues (SPEC: exit 3; the
        # CLI makes SIGINT's 130).
        codes = {
            "completed": ExitCode.OK,
            "incomplete": ExitCode.OK,
            "partial": ExitCode.PARTIAL,
            "stopped": ExitCode.PARTIAL,
            "refused": ExitCode.REFUSED,
        }
        return codes.get(self.status, ExitCode.INTERNAL)

    @property
    def rows_left(self) -> int:
        return sum(item.left for item in self.items)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "config_digest": self.config_digest,
            "status": self.status,
            "items": [vars(item) for item in self.items],
            "failures": self.failures,
            "interrupted_runs": self.interrupted_runs,
            "rows_left": self.rows_left,
            "head": self.head,
            **self.approval.details(),
        }


@dataclass
class _Evaluation:
    target: TargetDatabase
    evaluated: list[Evaluated] = field(default_factory=list)
    error: str | None = None


def _evaluate(
    config: Config,
    as_of: dt.datetime,
    databases: Iterable[str] | None,
    rule_ids: Iterable[str] | None,
    digest_key: bytes | None,
    jobs: int = 1,
    guard: bool = False,
) -> list[_Evaluation]:
    rules = select_rules(config, rule_ids)
    guard_fraction = config.sweep.max_fraction if guard else None
    holds = active_holds(config, local_date(as_of, config.sweep.tz))

    def evaluate(target: TargetDatabase) -> _Evaluation:
        evaluation = _Evaluation(target)
        try:
            evaluation.evaluated = evaluate_database(
                target,
                rules,
                as_of,
                digest_key=digest_key,
                guard_fraction=guard_fraction,
                holds=holds,
            )
        except DatabaseUnavailable as exc:
            evaluation.error = str(exc)
        except sa.exc.DBAPIError as exc:
            evaluation.error = f"database {target.name}: {describe_failure(exc, target.url)}"
        return evaluation

    return _per_database(evaluate, select_databases(config, databases), jobs)


def _guard(config: Config, evaluations: list[_Evaluation], force: bool) -> None:
    if force:
        return
    limit = config.sweep.max_fraction
    for evaluation in evaluations:
        for item in (e.item for e in evaluation.evaluated):
            rows = item.table_rows or 0  # counted only when the table is small enough
            if rows and item.due / rows > limit:
                raise Refused(
                    f"database {item.database}: rule {item.rule} would touch {item.due:,} of "
                    f"{rows:,} rows of {item.table} ({item.due / rows:.0%}), more than "
                    f"sweep.max_fraction {limit:g}; review with plan, then rerun with --force"
                )


def _compare(plan: Plan, evaluations: list[_Evaluation]) -> None:
    """Refuse unless every reviewed item is due now exactly as it was reviewed."""
    now = {(e.item.database, e.item.rule): e.item for ev in evaluations for e in ev.evaluated}
    for failed in (ev for ev in evaluations if ev.error):
        raise Refused(f"cannot re-check the plan: {failed.error}")
    for item in plan.items:
        current = now.pop((item.database, item.rule), None)
        if current is None:
            raise Refused(f"stale plan: rule {item.rule} in database {item.database} is gone")
        if current.due != item.due or current.due_digest != item.due_digest:
            raise Refused(
                f"stale plan: rule {item.rule} in database {item.database} has {current.due:,} "
                f"rows due now, the plan reviewed {item.due:,}"
                + (" (a different set)" if current.due == item.due else "")
                + "; make a new plan"
            )
    if now:
        database, rule = next(iter(now))
        raise Refused(f"stale plan: rule {rule} in database {database} is not in the plan")


class StopRequest:
    """A request from outside (a signal handler, another thread) to stop a sweep.

    Setting it never interrupts a statement: every executor finishes (commits or rolls
    back) its current batch and starts no other; the run is recorded `stopped` with
    the reason, and the next run carries on where it stopped.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self.signal: str | None = None

    def request(self, reason: str, signal_name: str | None = None) -> None:
        if not self.event.is_set():
            self.reason, self.signal = reason, signal_name
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs: guards, parallelism and its nightly window."""

    force: bool = False
    jobs: int = 1
    max_runtime: float | None = None  # seconds; stop cleanly between batches after it
    pause: float = 0.0  # seconds to sleep after each batch
    stop: StopRequest | None = None  # set from outside: stop between batches
    wait_lock: float | None = None  # seconds to wait for the sweep lock (None: exit 4 at once)
    # Called under the lock once the guards passed, before anything changes: the CLI
    # checks there that the files it will write can be written (exit 2 if not), so a
    # lock held (4) or a guard (5) is reported as such, and a bad path changes nothing.
    preflight: Callable[[], None] | None = None
    approval: Approval = field(default_factory=Approval)  # --ticket, --approved-by


class _Window:
    """The time a sweep may take; when it is up every executor stops before its next batch."""

    def __init__(self, seconds: float | None, stop: StopRequest | None = None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.stopped = threading.Event()
        self.stop = stop

    def is_up(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped.set()
        if self.stop is not None and self.stop.is_set():
            self.stopped.set()
        return self.stopped.is_set()

    @property
    def signalled(self) -> bool:
        return self.stop is not None and self.stop.is_set()


def _execute_database(
    config: Config,
    store: StateStore,
    run_id: int,
    key: bytes,
    evaluation: _Evaluation,
    progress: Progress,
    options: SweepOptions,
    window: _Window,
) -> tuple[list[RunItem], str | None]:
    """Execute one database's due rules, then verify; return its items and any failure."""
    target = evaluation.target
    if evaluation.error:
        store.append(
            run_id, "database-failed", database=target.name, details={"error": evaluation.error}
        )
        log.error("database failed", extra={"event": "database-failed", "database": target.name})
        return [], evaluation.error
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
        for e in evaluation.evaluated
    ]
    settings = config.sweep
    try:
        # One connection for the database's whole run: the pinned keys live in its
        # session's temporary tables (pinning.py).
        with target.connect() as connection:
            catalog = Catalog(connection)
            steps = {
                e.item.rule: cascade_steps(catalog, e.compiled.rule, e.compiled.table, config)
                for e in evaluation.evaluated
            }
            connection.rollback()  # end the reflection's transaction before pinning
            pairs = list(zip(evaluation.evaluated, items, strict=True))
            compiled = [e.compiled for e in evaluation.evaluated]
            lock_wait = session_timeouts(target.engine.dialect.name, settings.lock_timeout, None)
            with pinned_rules(connection, compiled, lock_wait) as pins:
                failed: list[str] = []
                # Dependency order: a rule before the deletes that would take its rows.
                for index in sorted(range(len(pairs)), key=lambda i: pairs[i][0].position):
                    evaluated, item = pairs[index]
                    if item.due == 0 or window.is_up():
                        continue
                    error = _execute_rule(
                        connection,
                        pins[index],
                        evaluated,
                        item,
                        steps[item.rule],
                        store,
                        run_id,
                        key,
                        target.name,
                        settings,
                        progress,
                        options,
                        window,
                    )
                    if error is not None:
                        failed.append(error)
                verified = _verify(connection, pins, store, run_id, evaluation, items, window)
        if failed:
            return items, f"database {target.name}: " + "; ".join(failed)
        return items, verified
    except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
        message = (
            str(exc)
            if isinstance(exc, DatabaseUnavailable)
            else f"database {target.name}: {describe_write_failure(exc)}"
        )
        store.append(run_id, "database-failed", database=target.name, details={"error": message})
        log.error("database failed", extra={"event": "database-failed", "database": target.name})
        return items, message
    finally:
        target.dispose()


def _execute_rule(
    connection: sa.Connection,
    pinned: PinnedKeys,
    evaluated: Evaluated,
    item: RunItem,
    cascade: list[CascadeStep],
    store: StateStore,
    run_id: int,
    key: bytes,
    database: str,
    settings: SweepSettings,
    progress: Progress,
    options: SweepOptions,
    window: _Window,
) -> str | None:
    """Run one rule over its pinned keys; record it; return its failure, if any."""
    started = time.perf_counter()
    executor = RuleExecutor(
        connection,
        pinned,
        evaluated.compiled,
        cascade,
        database=database,
        batch_size=settings.batch_size,
        key=key,
        store=store,
        run_id=run_id,
        progress=progress,
        due=item.due,
        should_stop=window.is_up,
        pause=options.pause,
        lock_timeout=settings.lock_timeout,
        statement_timeout=settings.statement_timeout,
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
        item.done, item.batches = outcome.rows, outcome.batches
        item.longest_batch_seconds = round(outcome.longest_batch_seconds, 3)
        item.seconds = round(time.perf_counter() - started, 3)
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


def _connection_lost(exc: sa.exc.DBAPIError) -> bool:
    """Did the statement fail because the connection to the database is gone?"""
    return bool(exc.connection_invalidated) or isinstance(exc, sa.exc.InterfaceError)


def _verify(
    connection: sa.Connection,
    pins: list[PinnedKeys],
    store: StateStore,
    run_id: int,
    evaluation: _Evaluation,
    items: list[RunItem],
    window: _Window,
) -> str | None:
    """Count, same as-of, what each rule should have done and did not: reported (exit 3).

    A rule whose clock is its own row's: the rows due now, as before the run (a batch
    that skipped them, old data inserted while the sweep ran, a parent still referenced
    because its children's rule failed). A `since_latest` rule: its pinned rows still
    there and still due by what the batches re-check — its unpinned rows are not
    counted, as their clock may have moved because this run deleted their activity;
    the next run judges them. When the nightly window ran out, rows left are expected:
    recorded, not a failure.
    """
    with connection.begin():
        for evaluated, item, pinned in zip(evaluation.evaluated, items, pins, strict=True):
            compiled = evaluated.compiled
            if compiled.rule.since_latest is None:
                item.left = count_due(connection, compiled)
            else:
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
        return f"database {evaluation.target.name}: " + ", ".join(
            f"rule {item.rule}: {item.left:,} row(s) still due after the run" for item in left
        )
    return None


def _per_database(function: Callable[[Any], Any], inputs: list[Any], jobs: int) -> list[Any]:
    """Apply `function` to each database's input, `jobs` at a time, results in input order.

    Each database has its own engine and transactions, so one tenant's failure or slow
    lock never stops another's; the state store serialises audit appends.
    """
    if jobs <= 1 or len(inputs) <= 1:
        return [function(item) for item in inputs]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gdpr-sweep") as pool:
        return list(pool.map(function, inputs))


def verify_only(
    config: Config,
    as_of: dt.datetime,
    databases: Iterable[str] | None = None,
    jobs: int = 1,
) -> RunResult:
    """Count what is still due, changing nothing (monitoring after the nightly run)."""
    evaluations = _evaluate(config, as_of, databases, None, None, jobs)
    result = RunResult(None, as_of, config.digest, "completed")
    for evaluation in evaluations:
        if evaluation.error:
            result.failures.append({"database": evaluation.target.name, "error": evaluation.error})
        for e in evaluation.evaluated:
            i = e.item
            result.items.append(
                RunItem(
                    database=i.database,
                    rule=i.rule,
                    table=i.table,
                    action=i.action,
                    cutoff=i.cutoff,
                    due=i.due,
                    held=i.held,
                    left=i.due,
                )
            )
            if i.due:
                result.failures.append(
                    {
                        "database": i.database,
                        "error": f"database {i.database}: rule {i.rule}: {i.due:,} row(s) due",
                    }
                )
    if result.failures:
        result.status = "partial"
    return result


def run_sweep(
    config: Config,
    as_of: dt.datetime,
    databases: Iterable[str] | None = None,
    rule_ids: Iterable[str] | None = None,
    *,
    options: SweepOptions | None = None,
    reviewed: Plan | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Evaluate and execute every due rule under the sweep lock; audit everything."""
    options = options or SweepOptions()
    key = hash_key(config)
    with (
        StateStore(config, key) as store,
        sweep_lock(store.engine, store.url, wait=options.wait_lock, stop=options.stop),
    ):
        interrupted = store.mark_interrupted()
        evaluations = _evaluate(
            config,
            as_of,
            databases,
            rule_ids,
            key if reviewed is not None else None,
            options.jobs,
            guard=not options.force,
        )
        command = "apply" if reviewed is not None else "run"
        try:
            if reviewed is not None:
                _compare(reviewed, evaluations)
            _guard(config, evaluations, options.force)
            if options.preflight is not None:
                options.preflight()
        except Refused as exc:
            # Nothing was touched; the trail still shows that a sweep was refused.
            refused_id = store.start_run(command, as_of, approval=options.approval.details())
            store.finish_run(refused_id, "refused", {"reason": str(exc)})
            raise
        failpoint("after-evaluation")
        run_id = store.start_run(
            command,
            as_of,
            plan_digest=reviewed.config_digest if reviewed else None,
            approval=options.approval.details(),
        )
        result = RunResult(
            run_id,
            as_of,
            config.digest,
            "completed",
            interrupted_runs=interrupted,
            approval=options.approval,
        )
        window = _Window(options.max_runtime, options.stop)
        try:
            _execute_and_finish(config, store, key, evaluations, result, progress, options, window)
        except StateUnavailable as exc:
            # Batches may have committed before the state database failed: say so.
            raise PartialFailure(
                f"{exc}, during run {run_id}: batches committed before it stay committed "
                "(their intent is in the audit trail); fix the state database and run "
                "again to finish"
            ) from None
        return result


def _execute_and_finish(
    config: Config,
    store: StateStore,
    key: bytes,
    evaluations: list[_Evaluation],
    result: RunResult,
    progress: Progress | None,
    options: SweepOptions,
    window: _Window,
) -> None:
    """Execute every database's due rules, then record how the run ended."""
    run_id = result.run_id
    assert run_id is not None
    try:
        outcomes = _per_database(
            lambda ev: _execute_database(
                config,
                store,
                run_id,
                key,
                ev,
                progress or NoProgress(),
                options,
                window,
            ),
            evaluations,
            options.jobs,
        )
        for evaluation, (items, failure) in zip(evaluations, outcomes, strict=True):
            result.items.extend(items)
            if failure:
                result.failures.append({"database": evaluation.target.name, "error": failure})
    except BaseException:
        with contextlib.suppress(StateUnavailable):  # the error that follows says more
            store.finish_run(run_id, "failed", result.to_json())
        raise
    if result.failures:
        result.status = "partial"
    elif window.signalled:
        # Stopped from outside (SIGTERM, Ctrl-C): recorded as such even when the
        # last batch happened to finish the work, so the trail says what happened.
        assert options.stop is not None
        result.status = "stopped"
        store.append(
            run_id,
            "stopped",
            rows=result.rows_left,
            details={"reason": options.stop.reason, "signal": options.stop.signal},
        )
    elif window.stopped.is_set() and result.rows_left:
        result.status = "incomplete"
        store.append(run_id, "stopped", rows=result.rows_left, details={"reason": "max-runtime"})
    result.head = store.finish_run(run_id, result.status, result.to_json())
    # One line per run carries the chain's head: kept by syslog/the journal, it is the
    # anchor `audit verify --head` checks against (truncation of the trail).
    log.info(
        "sweep finished",
        extra={
            "event": "run-end",
            "run_id": run_id,
            "status": result.status,
            "rows": sum(item.done for item in result.items),
            "head": result.head,
        },
    )


def load_plan(path: Path) -> Plan:
    """Read a plan file written by `plan --out`; exit 2 if it is not one."""
    from .plan import PlanItem

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        as_of = dt.datetime.fromisoformat(document["as_of"])
        items = [PlanItem(**item) for item in document["items"]]
        if as_of.tzinfo is None:
            raise ValueError("as_of has no offset")
        if any(item.due_digest is None for item in items):
            raise ValueError("made without --out")
        return Plan(
            as_of=as_of,
            timezone=document["timezone"],
            config_digest=document["config_digest"],
            items=items,
        )
    except FileNotFoundError:
        raise UsageError(f"PLAN: no file {str(path)!r}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"PLAN: {str(path)!r} is not a gdpr-sweep plan file ({exc})") from None


def apply_plan(
    config: Config,
    plan: Plan,
    *,
    options: SweepOptions | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Execute exactly the reviewed plan, or refuse (exit 5) if anything changed."""
    if plan.config_digest != config.digest:
        raise Refused(
            f"stale plan: it was made with config {plan.config_digest[:19]}…, the config is "
            f"now {config.digest[:19]}…; make a new plan"
        )
    databases = sorted({item.database for item in plan.items})
    rules = sorted({item.rule for item in plan.items})
    known_dbs = {db.name for db in config.databases}
    if not set(databases) <= known_dbs or not plan.items:
        raise Refused("stale plan: it names databases the config does not have, or nothing")
    return run_sweep(
        config, plan.as_of, databases, rules, options=options, reviewed=plan, progress=progress
    )
