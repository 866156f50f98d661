"""`run` and `apply`: evaluate, guard, execute, and audit — under the sweep lock.

`run_sweep()` is the whole cron job: it takes the state lock (shared; exit 4 while a
key rotation holds it), marks runs a killed process left behind as interrupted, takes
each tenant's lock as it reaches it (`run_locks.py`) and evaluates its rules exactly
as `plan` does, refuses when a guard trips (exit 5), then executes database by
database, letting each tenant's lock go once it is done. A database that fails, or
that another process holds ("locked"), is recorded and the others complete (exit 3);
when every selected database is locked, exit 4.

`apply_plan()` is the same with a reviewed plan file: it re-evaluates at the plan's
pinned as-of and refuses (exit 5) unless the config digest and every rule's due set
(count and keyed digest of the keys) are what was reviewed.

`recount_only()` (`run --verify-only`) counts what is still due and changes nothing.

The parts: `evaluation.py` (evaluate, the guards), `database_run.py` (one database's
batches and the recount after them), `sweep_options.py` (options, stop request,
window), `run_result.py` (what a run reports).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import Config
from .database_run import execute_database
from .engines import DatabaseFailure
from .errors import LockHeld, PartialFailure, Refused, StateUnavailable, UsageError
from .evaluation import (
    DatabaseEvaluation,
    check_max_fraction,
    compare_with_plan,
    evaluate_databases,
    per_database,
)
from .execute import NoProgress, Progress
from .faults import failpoint
from .formats import document_version
from .keys import hash_key
from .plan import Plan
from .review_trail import checked_digest, reviewed_fields
from .run_locks import RunLocks
from .run_result import RunItem, RunResult
from .state.lock import sweep_lock
from .state.store import StateStore
from .sweep_options import SweepOptions, SweepWindow

log = logging.getLogger(__name__)


def recount_only(
    config: Config,
    as_of: dt.datetime,
    databases: Iterable[str] | None = None,
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
) -> RunResult:
    """Count what is still due, changing nothing (monitoring after the nightly run)."""
    evaluations = evaluate_databases(config, as_of, databases, None, None, jobs, shard=shard)
    result = RunResult(None, as_of, config.digest, "completed")
    for evaluation in evaluations:
        if evaluation.failure:
            result.failures.append(evaluation.failure)
        for e in evaluation.rule_evaluations:
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
                message = f"database {i.database}: rule {i.rule}: {i.due:,} row(s) due"
                result.failures.append(DatabaseFailure(database=i.database, error=message))
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
    hmac_key = hash_key(config)
    with (
        StateStore(config, hmac_key) as store,
        sweep_lock(store.engine, store.url, wait=options.wait_lock, stop=options.stop, shared=True),
        RunLocks(store, options.wait_lock, options.stop) as tenant_locks,
    ):
        interrupted = store.mark_interrupted()
        evaluations = evaluate_databases(
            config,
            as_of,
            databases,
            rule_ids,
            hmac_key if reviewed is not None else None,
            options.jobs,
            guard=not options.force,
            lock=tenant_locks.take,
            shard=options.shard,
            state_engine=store.engine,
        )
        locked = [ev.target.name for ev in evaluations if ev.locked]
        evaluations = [ev for ev in evaluations if not ev.locked]
        if locked and (not evaluations or reviewed is not None):
            # Every tenant is being swept by another process (or a reviewed plan
            # cannot be applied in part): nothing was done, exit 4.
            more = f" and {len(locked) - 5} more" if len(locked) > 5 else ""
            names = ", ".join(locked[:5]) + more
            raise LockHeld(
                f"another gdpr-sweep is sweeping every selected database ({names}; tenant "
                "locks)" + (f" after waiting {options.wait_lock:g} s" if options.wait_lock else "")
            )
        command = "apply" if reviewed is not None else "run"
        try:
            if reviewed is not None:
                compare_with_plan(reviewed, evaluations)
            check_max_fraction(config, evaluations, options.force)
            if options.preflight is not None:
                options.preflight()
        except Refused as exc:
            # Nothing was touched; the trail still shows that a sweep was refused, and
            # which plan, approver and ticket it refused.
            refused = _review(store, reviewed)
            refused_id = store.start_run(
                command,
                as_of,
                plan_digest=reviewed.digest if reviewed else None,
                approval={**options.approval.details(), **refused},
            )
            summary = {"reason": str(exc), **options.approval.details(), **refused}
            store.finish_run(refused_id, "refused", summary)
            raise
        failpoint("after-evaluation")
        review = _review(store, reviewed)
        run_id = store.start_run(
            command,
            as_of,
            plan_digest=reviewed.digest if reviewed else None,
            approval={**options.approval.details(), **review},
        )
        result = RunResult(
            run_id,
            as_of,
            config.digest,
            "completed",
            interrupted_runs=interrupted,
            locked=locked,
            approval=options.approval,
            review=review,
        )
        for name in locked:
            message = (
                f"database {name}: locked: another gdpr-sweep is sweeping it; not swept by this run"
            )
            store.append(run_id, "database-locked", database=name)
            result.failures.append(DatabaseFailure(database=name, error=message))
        window = SweepWindow(options.max_runtime, options.stop)
        try:
            _execute_and_finish(
                config,
                store,
                hmac_key,
                evaluations,
                result,
                progress,
                options,
                window,
                tenant_locks,
                exact_keys=reviewed is not None,  # apply: exactly the reviewed keys
            )
        except StateUnavailable as exc:
            # Batches may have committed before the state database failed: say so.
            raise PartialFailure(
                f"{exc}, during run {run_id}: batches committed before it stay committed "
                "(their intent is in the audit trail); fix the state database and run "
                "again to finish"
            ) from None
        return result


def _review(store: StateStore, reviewed: Plan | None) -> dict[str, Any]:
    """`apply`: the reviewed plan's digest and the `planned` run that recorded it."""
    if reviewed is None or reviewed.digest is None:
        return {}
    return reviewed_fields(reviewed.digest, store.planned_run(reviewed.digest))


def _execute_and_finish(
    config: Config,
    store: StateStore,
    hmac_key: bytes,
    evaluations: list[DatabaseEvaluation],
    result: RunResult,
    progress: Progress | None,
    options: SweepOptions,
    window: SweepWindow,
    tenant_locks: RunLocks,
    exact_keys: bool = False,
) -> None:
    """Execute every database's due rules, then record how the run ended."""
    run_id = result.run_id
    assert run_id is not None

    def execute(
        evaluation: DatabaseEvaluation,
    ) -> tuple[list[RunItem], DatabaseFailure | None, dict[str, Any] | None]:
        try:
            return execute_database(
                config,
                store,
                run_id,
                hmac_key,
                evaluation,
                progress or NoProgress(),
                options,
                window,
                lock_held=lambda: tenant_locks.still_held(evaluation.target.name),
                exact_keys=exact_keys,
            )
        finally:  # this tenant is done: another process may take it now
            tenant_locks.release(evaluation.target.name)

    try:
        outcomes = per_database(execute, evaluations, options.jobs)
        for items, failure, analyzed in outcomes:
            result.items.extend(items)
            if failure:
                result.failures.append(failure)
            if analyzed:
                result.analyze.append(analyzed)
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
            # Time spent on the state database: waiting for tenant locks, and in
            # audit-trail transactions (the chain's lock wait included); `make bench`.
            "lock_wait_seconds": round(store.locks.waited, 3),
            "append_seconds": round(store.append_seconds, 3),
        },
    )


def load_plan(path: Path) -> Plan:
    """Read a plan file written by `plan --out`; exit 2 if it is not one."""
    from .plan import PlanItem

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raise UsageError(f"PLAN: no file {str(path)!r}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"PLAN: {str(path)!r} is not a gdpr-sweep plan file ({exc})") from None
    try:  # a plan written before plans had a format is version 1
        document_version(document, "plan")
    except ValueError as exc:
        raise UsageError(f"PLAN: {str(path)!r}: {exc}; make a new plan") from None
    try:
        as_of = dt.datetime.fromisoformat(document["as_of"])
        items = [PlanItem(**item) for item in document["items"]]
        if as_of.tzinfo is None:
            raise ValueError("as_of has no offset")
        if any(item.due_digest is None for item in items):
            raise ValueError("made without --out")
        plan = Plan(
            as_of=as_of,
            timezone=document["timezone"],
            config_digest=document["config_digest"],
            items=items,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"PLAN: {str(path)!r} is not a gdpr-sweep plan file ({exc})") from None
    return replace(plan, digest=checked_digest(document, str(path)))


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
