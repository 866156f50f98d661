"""Evaluate every selected database as `plan` does, and judge the result before a sweep.

`evaluate_databases` compiles and counts every rule per database (`jobs` at a time);
a database that cannot be read is kept with its failure, to be reported. Then, before
anything changes: `guard` refuses a rule that would touch more than
`sweep.max_fraction` of its table, and `compare_with_plan` refuses unless the due sets
are the reviewed plan's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .config import Config
from .engines import DatabaseFailure, TargetDatabase, database_failure, select_databases
from .errors import DatabaseUnavailable, Refused
from .holds.store import active_holds
from .periods import local_date
from .plan import Plan, RuleEvaluation, evaluate_database, select_rules


@dataclass
class DatabaseEvaluation:
    """One database evaluated for a sweep: its rules compiled and counted, or its failure."""

    target: TargetDatabase
    rule_evaluations: list[RuleEvaluation] = field(default_factory=list)
    failure: DatabaseFailure | None = None
    locked: bool = False  # another process holds its tenant lock: not evaluated


def evaluate_databases(
    config: Config,
    as_of: dt.datetime,
    databases: Iterable[str] | None,
    rule_ids: Iterable[str] | None,
    hmac_key: bytes | None,
    jobs: int = 1,
    guard: bool = False,
    lock: Callable[[str], bool] | None = None,
    shard: tuple[int, int] | None = None,
    state_engine: sa.Engine | None = None,
) -> list[DatabaseEvaluation]:
    """Evaluate every selected database as `plan` does (`hmac_key`: with due digests).

    `lock`: take the tenant's lock first (False: another process holds it; the
    database is returned `locked`, not evaluated), then read its holds — under the
    lock that `hold add` takes too (with `state_engine`, the open store's). `shard`:
    only the databases of shard I of N."""
    rules = select_rules(config, rule_ids)
    guard_fraction = config.sweep.max_fraction if guard else None
    day = local_date(as_of, config.sweep.tz)
    all_holds = active_holds(config, day) if lock is None else None

    def evaluate(target: TargetDatabase) -> DatabaseEvaluation:
        evaluation = DatabaseEvaluation(target)
        if lock is not None and not lock(target.name):
            evaluation.locked = True
            return evaluation
        holds = all_holds if all_holds is not None else active_holds(config, day, state_engine)
        try:
            evaluation.rule_evaluations = evaluate_database(
                target,
                rules,
                as_of,
                hmac_key=hmac_key,
                guard_fraction=guard_fraction,
                holds=holds,
            )
        except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
            evaluation.failure = database_failure(target, exc)
        return evaluation

    return per_database(evaluate, select_databases(config, databases, shard), jobs)


def check_max_fraction(config: Config, evaluations: list[DatabaseEvaluation], force: bool) -> None:
    if force:
        return
    limit = config.sweep.max_fraction
    for evaluation in evaluations:
        for item in (e.item for e in evaluation.rule_evaluations):
            rows = item.table_rows or 0  # counted only when the table is small enough
            if rows and item.due / rows > limit:
                raise Refused(
                    f"database {item.database}: rule {item.rule} would touch {item.due:,} of "
                    f"{rows:,} rows of {item.table} ({item.due / rows:.0%}), more than "
                    f"sweep.max_fraction {limit:g}; review with plan, then rerun with --force"
                )


def compare_with_plan(plan: Plan, evaluations: list[DatabaseEvaluation]) -> None:
    """Refuse unless every reviewed item is due now exactly as it was reviewed."""
    now = {
        (e.item.database, e.item.rule): e.item for ev in evaluations for e in ev.rule_evaluations
    }
    for failure in (ev.failure for ev in evaluations if ev.failure):
        raise Refused(f"cannot re-check the plan: {failure['error']}")
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


def per_database(function: Callable[[Any], Any], inputs: list[Any], jobs: int) -> list[Any]:
    """Apply `function` to each database's input, `jobs` at a time, results in input order.

    Each database has its own engine and transactions, so one tenant's failure or slow
    lock never stops another's; the state store serialises audit appends.
    """
    if jobs <= 1 or len(inputs) <= 1:
        return [function(item) for item in inputs]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gdpr-sweep") as pool:
        return list(pool.map(function, inputs))
