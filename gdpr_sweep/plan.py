"""Build the dry-run plan: per database and rule, the cutoff and how many rows are due.

`build_plan()` changes nothing: each database is read in a transaction the engine
itself holds read-only, and rolled back. The counts use `CompiledRule.due`, the very
predicate the executor acts on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from . import __version__
from .catalog import Catalog, qualified_name
from .checks.check_config import check_database
from .checks.findings import raise_findings
from .config import Config, Rule
from .counting import count, has_at_least, scan_is_cheaper
from .dependencies import execution_order, held_back
from .engines import DatabaseFailure, TargetDatabase, database_failure, select_databases
from .errors import DatabaseUnavailable, UsageError
from .formats import format_name
from .holds.rows import hold_name
from .holds.store import HeldKeys, active_holds
from .keyset import Keyset
from .partition_plan import PartitionChoice, choose_partitions, partitions_text
from .periods import local_date
from .rules import REFERENCED, CompiledRule, compile_rule


@dataclass(frozen=True)
class PlanItem:
    """What one rule would do in one database."""

    database: str
    rule: str
    table: str
    action: str
    after: str
    cutoff: str  # ISO 8601 local midnight: rows whose clock is before it are due
    due: int
    held: int
    held_by: dict[str, int] = field(default_factory=dict)
    # held "referenced": per table, the rows that stay and still refer to due rows
    # (None: through a cascade table, not counted)
    referenced_by: dict[str, int | None] = field(default_factory=dict)
    basis: str | None = None
    controller: str | None = None
    due_digest: str | None = None  # keyed digest of the due keys (plan files only)
    # Rows in the table, for the max_fraction guard of run/apply: counted only as far as
    # the guard needs (None: the table has more rows than would make it trip).
    table_rows: int | None = None
    count_seconds: float | None = None  # how long counting the due rows took
    # Partitions of the table with due rows (partition_plan.py): those removed whole
    # ("drop"/"truncate", their rows part of `due`) and those batched, with the reason.
    partitions: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """The dry run: serialisable, and enough to re-check before applying."""

    as_of: dt.datetime
    timezone: str
    config_digest: str
    items: list[PlanItem]
    failures: list[DatabaseFailure] = field(default_factory=list)  # databases not read
    version: str = __version__
    # A plan read from a file: the digest of its content (`review_trail.plan_digest`).
    digest: str | None = None

    @property
    def total_due(self) -> int:
        return sum(item.due for item in self.items)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": format_name("plan"),
            "as_of": self.as_of.isoformat(),
            "timezone": self.timezone,
            "config_digest": self.config_digest,
            "gdpr_sweep_version": self.version,
            "items": [asdict(item) for item in self.items],
            "failures": [dict(failure) for failure in self.failures],
        }


def select_rules(config: Config, rule_ids: Iterable[str] | None) -> tuple[Rule, ...]:
    """Return the configured rules, or those named by `--rule` (unknown ids are exit 2)."""
    wanted = list(rule_ids or [])
    known = {rule.id for rule in config.rules}
    for rule_id in wanted:
        if rule_id not in known:
            raise UsageError(f"--rule: no rule with id {rule_id!r} in the config")
    return tuple(rule for rule in config.rules if not wanted or rule.id in wanted)


def count_rule(connection: sa.Connection, compiled: CompiledRule) -> tuple[int, dict[str, int]]:
    """Return (rows due, rows held per exception reason)."""
    unindexed = scan_is_cheaper(connection, compiled)
    due = count(connection, compiled.table, compiled.due_where(unindexed=unindexed))
    held_by: dict[str, int] = {}
    if compiled.exceptions:
        sums = [
            sa.func.coalesce(sa.func.sum(sa.case((e.keeps, 1), else_=0)), 0)
            for e in compiled.exceptions
        ]
        row = connection.execute(
            sa.select(sa.func.count(), *sums)
            .select_from(compiled.table)
            .where(compiled.candidate_where(unindexed=unindexed), compiled.kept)
        ).one()
        held_by = {e.reason: int(n) for e, n in zip(compiled.exceptions, row[1:], strict=True)}
        held_by["total"] = int(row[0])
    return due, held_by


def due_keys_digest(
    connection: sa.Connection,
    compiled: CompiledRule,
    hmac_key: bytes,
    partitions: list[dict[str, Any]] | None = None,
) -> str:
    """Return a keyed digest of the due rows' primary keys, streamed in key order.

    A plan file carries it so `apply` can prove the due set is still the reviewed
    one; the keys themselves never leave the database, and the digest reveals none.
    The partition list (names, bounds, rows, what is done and why) is part of it: a
    plan whose partitions changed is stale.
    """
    mac = hmac.new(hmac_key, b"due-keys\x1f", hashlib.sha256)
    if partitions:
        mac.update(b"partitions\x1f" + partitions_text(partitions) + b"\x1f")
    keyset = Keyset(compiled.table, compiled.key_columns, connection.dialect.name)
    result = connection.execution_options(stream_results=True, yield_per=10_000).execute(
        keyset.ordered_keys(compiled.due)
    )
    for partition in result.partitions():
        mac.update("".join(_key_text(tuple(row)) for row in partition).encode("utf-8"))
    return "hmac-sha256:" + mac.hexdigest()


def _key_text(key: tuple) -> str:
    # A one-column key is written as before (plan files made by 0.1 still verify).
    return (f"{key[0]}" if len(key) == 1 else "\x1d".join(map(str, key))) + "\x1e"


@dataclass(frozen=True)
class RuleEvaluation:
    """A rule compiled and counted in one database: what plan shows and run executes."""

    item: PlanItem
    compiled: CompiledRule
    position: int = 0  # when it runs in its database (dependencies.execution_order)
    partitions: tuple[PartitionChoice, ...] = ()  # with due rows (partition_plan.py)

    @property
    def removed_partitions(self) -> list[PartitionChoice]:
        return [p for p in self.partitions if p.removed]


def evaluate_database(
    target: TargetDatabase,
    rules: tuple[Rule, ...],
    as_of: dt.datetime,
    hmac_key: bytes | None = None,
    guard_fraction: float | None = None,
    holds: HeldKeys | None = None,
) -> list[RuleEvaluation]:
    """Check, compile and count every applicable rule in one database, read-only."""
    applicable = [rule for rule in rules if rule.applies_to(target.name)]
    evaluated = []
    with target.read_only() as connection:
        catalog = Catalog(connection)
        raise_findings(check_database(catalog, target, applicable))
        rules_compiled, order = compile_database(catalog, target, applicable, as_of, holds or {})
        position = {index: n for n, index in enumerate(order)}
        for index, (rule, compiled) in enumerate(zip(applicable, rules_compiled, strict=True)):
            started = time.perf_counter()
            cascade = {qualified_name(t) for t in map(catalog.table, rule.cascade) if t is not None}
            partitions = choose_partitions(catalog, compiled, cascade)
            listed = [p.to_json() for p in partitions]
            if (
                partitions
                and not compiled.exceptions
                and all(p.due is not None for p in partitions)
            ):
                # Every partition with due rows is listed with its due count (and a rule
                # without exceptions holds nothing back): one pass over the rows, not two.
                due, held_by = sum(p.due or 0 for p in partitions), dict[str, int]()
            else:
                due, held_by = count_rule(connection, compiled)
            count_seconds = round(time.perf_counter() - started, 4)
            held = held_by.pop("total", 0)
            item = PlanItem(
                database=target.name,
                rule=rule.id,
                table=rule.table,
                action=rule.action,
                after=str(rule.after),
                cutoff=compiled.cutoff.isoformat(),
                due=due,
                held=held,
                held_by=held_by,
                referenced_by=_referenced_by(connection, compiled)
                if held_by.get(REFERENCED)
                else {},
                basis=rule.basis,
                controller=target.db.controller,
                count_seconds=count_seconds,
                due_digest=due_keys_digest(connection, compiled, hmac_key, listed)
                if hmac_key is not None
                else None,
                table_rows=_rows_for_guard(connection, compiled, due, guard_fraction, partitions),
                partitions=listed,
            )
            evaluated.append(RuleEvaluation(item, compiled, position[index], tuple(partitions)))
    return evaluated


def _referenced_by(connection: sa.Connection, compiled: CompiledRule) -> dict[str, int | None]:
    """Per table, how many rows that stay refer to the rule's candidate rows."""
    counts: dict[str, int | None] = {}
    for exception in (e for e in compiled.exceptions if e.reason == REFERENCED):
        counts.update(dict.fromkeys(exception.tables))
        for child, stays, refers in exception.referencing:
            parent = sa.select(sa.literal(1)).select_from(compiled.table)
            parents = parent.where(refers, compiled.candidate).correlate(child).exists()
            name = qualified_name(child)
            counts[name] = (counts.get(name) or 0) + count(connection, child, stays, parents)
    return counts


def compile_database(
    catalog: Catalog,
    target: TargetDatabase,
    rules: list[Rule],
    as_of: dt.datetime,
    holds: HeldKeys,
) -> tuple[list[CompiledRule], list[int]]:
    """Compile every rule of one database, with what holds back a delete's rows; return
    them and the order they run in (indexes, `dependencies.execution_order`).

    A due row of a delete rule is held back when a row that goes with it is held, or
    when a row that stays refers to it (`dependencies.py`). "Stays" means no delete
    rule of this run deletes it, so the rules are completed in execution order:
    children first, each seeing the finished predicates of the rules before it.
    """
    config, settings = target.config, target.config.sweep
    compiled: list[CompiledRule] = []
    for rule in rules:
        table = catalog.table(rule.table)
        assert table is not None
        held_keys = holds.get((target.name, hold_name(catalog, table)), [])
        compiled.append(compile_rule(catalog, rule, as_of, settings, held_keys))
    deleted: dict[int, list[sa.ColumnElement[bool]]] = {}

    def goes(table: sa.Table) -> sa.ColumnElement[bool] | None:
        predicates = deleted.get(id(table))
        return sa.or_(*predicates) if predicates else None

    order = execution_order(catalog, compiled, config)
    for index in order:
        done = compiled[index]
        extra = held_back(catalog, done, config, target.name, holds, goes)
        if extra:
            done = compiled[index] = replace(done, exceptions=(*done.exceptions, *extra))
        if done.rule.action == "delete":
            deleted.setdefault(id(done.table), []).append(done.due)
    return compiled, order


def _rows_for_guard(
    connection: sa.Connection,
    compiled: CompiledRule,
    due: int,
    fraction: float | None,
    partitions: list[PartitionChoice] | None = None,
) -> int | None:
    """Return the table's row count if `due` rows could exceed `fraction` of it, else None.

    The guard trips when due / rows > fraction, i.e. when the table has fewer than
    due / fraction rows; reading stops just past that (one row of margin for float
    rounding). A nightly run with a few rows due in a big table reads a few rows. A
    partitioned table's listed partitions were counted already: only the rows above
    the last of them are read (a lower bound is enough to know it cannot trip).
    """
    if fraction is None or not due:
        return None
    table = compiled.table
    needed = math.floor(due / fraction) + 2
    bounded = [
        p for p in partitions or [] if not p.partition.default and p.partition.upper is not None
    ]
    if bounded and compiled.rule.since is not None:
        top = bounded[-1].partition.upper
        assert top is not None
        known = sum(p.rows for p in bounded)
        if has_at_least(
            connection, table, needed - known, table.columns[compiled.rule.since] >= top
        ):
            return None
    elif has_at_least(connection, table, needed):
        return None
    return count(connection, table)  # a table small enough to trip the guard


def build_plan(
    config: Config,
    as_of: dt.datetime,
    databases: Iterable[str] | None = None,
    rule_ids: Iterable[str] | None = None,
    hmac_key: bytes | None = None,
    shard: tuple[int, int] | None = None,
) -> Plan:
    """Return the plan for every selected database and rule; change nothing.

    A database that cannot be reached is recorded as a failure and the others are
    still planned; a config that does not match a database's schema stops the plan.
    With `hmac_key`, each item carries a keyed digest of its due keys (for `apply`).
    """
    rules = select_rules(config, rule_ids)
    targets = select_databases(config, databases, shard)
    holds = active_holds(config, local_date(as_of, config.sweep.tz))
    items: list[PlanItem] = []
    failures: list[DatabaseFailure] = []
    for target in targets:
        try:
            evaluated = evaluate_database(target, rules, as_of, hmac_key, holds=holds)
            items.extend(e.item for e in evaluated)
        except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
            failures.append(database_failure(target, exc))
        finally:
            target.dispose()
    return Plan(
        as_of=as_of,
        timezone=config.sweep.timezone,
        config_digest=config.digest,
        items=items,
        failures=failures,
    )
