"""Compile a rule into one SQLAlchemy Core predicate family, with its cutoff.

For each rule and as-of this module computes, in Python, the threshold local date
`T` (`periods.py`) and binds it as a parameter; the database does all the row work:

    candidate = clock < T  AND  only-filters  [AND still-to-anonymise]
    due       = candidate  AND NOT (exception OR ...)
    held      = candidate  AND     (exception OR ...)

`plan` counts `due` and `held`; `apply` (later) deletes or updates exactly `due`, in
batches. Both take the predicate from here, so they cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from .catalog import Catalog
from .columns import day_start_bound, later_than, readable_clock
from .config import Rule, SweepSettings
from .holds.rows import held_predicate
from .matching import equals, in_values
from .periods import due_before, fiscal_due_before, local_date, start_of_local_day
from .strategies import pending

LEGAL_HOLD = "legal hold"
#: SPEC's held reason for a due parent kept because rows that stay still reference it.
REFERENCED = "referenced"


@dataclass(frozen=True)
class RuleException:
    """An exception that keeps otherwise-due rows: its reason and its predicate.

    `keeps` is judged at the as-of (what `plan` counts and a run pins). While the run
    deletes, a pinned row is re-checked with `recheck` (default: `keeps` itself): for
    `referenced`, whether any referencing row is still there, not whether it was due.
    """

    reason: str
    keeps: ColumnElement[bool]
    recheck: ColumnElement[bool] | None = None
    tables: tuple[str, ...] = ()  # `referenced`: the tables whose rows refer to it
    # `referenced`, direct references: (child table, "the child row stays", "it refers
    # to the row"), to count the rows that hold the due rows back (plan)
    referencing: tuple[tuple[sa.Table, ColumnElement[bool], ColumnElement[bool]], ...] = ()

    @property
    def keeps_now(self) -> ColumnElement[bool]:
        return self.keeps if self.recheck is None else self.recheck


@dataclass(frozen=True)
class CompiledRule:
    """A rule bound to one database's reflected table and one as-of."""

    rule: Rule
    table: sa.Table
    key_columns: tuple[sa.Column, ...]  # the primary key, every column of it
    cutoff_date: dt.date  # rows whose clock falls before this local date are due
    cutoff: dt.datetime  # the same boundary as an aware instant (local midnight)
    candidate: ColumnElement[bool]
    exceptions: tuple[RuleException, ...]
    # SQLite only, for counting (see counting.py): the bare clock comparison (an
    # estimate of the range, from the index alone), and the same candidate predicate
    # written so that it cannot walk the clock's index.
    clock_range: ColumnElement[bool] | None = None
    candidate_unindexed: ColumnElement[bool] | None = None
    # `sweep.timezone`: the calendar `year`/`month` truncate instants on (strategies.py).
    tz: ZoneInfo | None = None
    # anonymise rules: "some column is still to anonymise" (part of `candidate` too).
    pending: ColumnElement[bool] | None = None

    @property
    def due(self) -> ColumnElement[bool]:
        """The predicate of the rows this rule acts on."""
        return self.due_where(unindexed=False)

    def due_where(self, *, unindexed: bool) -> ColumnElement[bool]:
        """`due`, or with `unindexed` its table-scanning form (same rows, SQLite only)."""
        candidate = self.candidate_where(unindexed=unindexed)
        # NOT a AND NOT b, not NOT (a OR b): each exception is 2-valued, and a planner
        # turns a top-level NOT EXISTS into an anti-join.
        return sa.and_(candidate, *(sa.not_(e.keeps) for e in self.exceptions))

    @property
    def still_due(self) -> ColumnElement[bool]:
        """What a batch re-checks on a pinned row: exceptions (holds, `unless_*`, rows
        that still reference it) and, for anonymise, that something is left to do —
        never the clock, which the run itself may have moved (`pinning.py`)."""
        return sa.and_(
            sa.true(),
            *([self.pending] if self.pending is not None else []),
            *(sa.not_(e.keeps_now) for e in self.exceptions),
        )

    def candidate_where(self, *, unindexed: bool) -> ColumnElement[bool]:
        if unindexed and self.candidate_unindexed is not None:
            return self.candidate_unindexed
        return self.candidate

    @property
    def kept(self) -> ColumnElement[bool]:
        return sa.or_(*(e.keeps for e in self.exceptions))


def cutoff_date(rule: Rule, as_of: dt.datetime, settings: SweepSettings) -> dt.date:
    """Return the threshold local date: a clock on an earlier local date is due."""
    today = local_date(as_of, settings.tz)
    if rule.from_fiscal_year_end:
        return fiscal_due_before(today, rule.after, settings.fiscal_year_end)
    return due_before(today, rule.after)


def clock_before_cutoff(
    catalog: Catalog, rule: Rule, as_of: dt.datetime, settings: SweepSettings
) -> ColumnElement[bool]:
    """The clock condition alone of `rule` at `as_of` (its part of `candidate`): the
    report's forecast counts it at each month's end, beside the rule's other conditions."""
    table = catalog.table(rule.table)
    assert table is not None, "check_rule() runs before clock_before_cutoff()"
    return _clock_is_before(catalog, rule, table, cutoff_date(rule, as_of, settings), settings.tz)


def compile_rule(
    catalog: Catalog,
    rule: Rule,
    as_of: dt.datetime,
    settings: SweepSettings,
    held_keys: Sequence[tuple[Any, ...]] = (),
) -> CompiledRule:
    """Build the predicates of `rule` against reflected tables (checked beforehand)."""
    dialect = catalog.dialect
    tz: ZoneInfo = settings.tz
    table = catalog.table(rule.table)
    assert table is not None, "check_rule() runs before compile_rule()"
    key_columns = catalog.primary_key_columns(table)
    assert key_columns, "check_rule() refuses a table without a primary key"
    threshold = cutoff_date(rule, as_of, settings)

    clock = _clock_is_before(catalog, rule, table, threshold, tz)
    clauses: list[ColumnElement[bool]] = []
    for column_name, values in rule.only:
        clauses.append(in_values(table.columns[column_name], values, dialect))
    still_pending = None
    if rule.action == "anonymise":
        still_pending = sa.or_(
            *(
                pending(strategy, table.columns[name], dialect, tz)
                for name, strategy in rule.columns
            )
        )
        clauses.append(still_pending)

    exceptions = []
    if rule.unless_after:
        column = table.columns[rule.unless_after]
        exceptions.append(
            RuleException(
                f"{rule.unless_after} is later",
                sa.and_(
                    column.is_not(None),
                    later_than(column, dialect, as_of, tz, rule.since_format),
                ),
            )
        )
    if rule.unless_true:
        column = table.columns[rule.unless_true]
        # 2-valued on purpose (NULL is not true), so NOT(keeps) is exact.
        exceptions.append(
            RuleException(
                f"{rule.unless_true} is true",
                sa.and_(column.is_not(None), column != sa.false()),
            )
        )
    held = held_predicate(table, key_columns, held_keys, dialect)  # exact, 2-valued
    if held is not None:
        exceptions.append(RuleException(LEGAL_HOLD, held))
    clock_range = candidate_unindexed = None
    since = table.columns[rule.since] if rule.since and rule.since_latest is None else None
    if (
        dialect == "sqlite"
        and since is not None
        and _leads_an_index(table, since)
        and (clauses or exceptions)
    ):
        # Only an indexed clock column with further conditions makes SQLite walk the
        # index with a row lookup per entry (counting.py chooses). Without the index it
        # reads the table anyway, and estimating first would only add two scans; with
        # the clock alone the index answers the count by itself.
        bound = day_start_bound(since, dialect, threshold, tz, rule.since_format)
        # The bare comparison, without the clock's validity checks: the index alone
        # answers it (the checks cost a function call per entry, 0.13 s on 400,000).
        # It only estimates how much of the table the range holds; what is counted is
        # the whole predicate either way.
        clock_range = since < bound
        candidate_unindexed = sa.and_(
            _before(_unindexed(since), bound, dialect, rule.since_format), *clauses
        )

    return CompiledRule(
        rule=rule,
        table=table,
        key_columns=key_columns,
        cutoff_date=threshold,
        cutoff=start_of_local_day(threshold, tz),
        candidate=sa.and_(clock, *clauses),
        exceptions=tuple(exceptions),
        clock_range=clock_range,
        candidate_unindexed=candidate_unindexed,
        tz=tz,
        pending=still_pending,
    )


def _leads_an_index(table: sa.Table, column: sa.Column) -> bool:
    return any(next(iter(index.columns), None) is column for index in table.indexes)


def _unindexed(column: sa.Column) -> ColumnElement:
    """SQLite's `+column`: the same value, but no index can serve the comparison.

    Unary plus only drops the column's affinity, which changes nothing here: the bound
    value is ISO text that no numeric affinity would convert.
    """
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _clock_is_before(
    catalog: Catalog, rule: Rule, table: sa.Table, threshold: dt.date, tz: ZoneInfo
) -> ColumnElement[bool]:
    """Return: the row's clock falls on a local date before `threshold`.

    With `since_latest`, the clock is the latest non-NULL activity in the related
    table, else `since`; it is before the threshold exactly when no activity is at
    or after it and either some activity exists (all of it earlier) or `since` is
    earlier. Two correlated (NOT) EXISTS, so the engine can use the key's index.
    NULL `since` compares as unknown, so it is never due.
    """
    dialect = catalog.dialect
    since_format = rule.since_format
    since_before = None
    if rule.since:
        since = table.columns[rule.since]
        since_before = _before(
            since,
            day_start_bound(since, dialect, threshold, tz, since_format),
            dialect,
            since_format,
        )
    if rule.since_latest is None:
        assert since_before is not None
        return since_before
    reflected = catalog.table(rule.since_latest.table)
    assert reflected is not None
    # An alias keeps the correlation right even when the activity table is the
    # rule's own table (a self-reference).
    related = reflected.alias("activity")
    pk = catalog.primary_key(table)
    activity = related.columns[rule.since_latest.column]
    fk_column = related.columns[rule.since_latest.key]
    bound = day_start_bound(activity, dialect, threshold, tz, since_format)
    belongs = equals(fk_column, pk, dialect)
    # Activity that is not a point in time is no activity (like NULL).
    readable = readable_clock(activity, dialect, since_format)
    only_readable = [readable] if readable is not None else []
    recent = sa.exists().where(belongs, activity >= bound, *only_readable)
    earlier = sa.exists().where(belongs, activity < bound, *only_readable)
    started = earlier if since_before is None else sa.or_(earlier, since_before)
    return sa.and_(sa.not_(recent), started)


def _before(
    clock: ColumnElement[Any], bound: sa.BindParameter, dialect: str, since_format: str | None
) -> ColumnElement[bool]:
    """`clock < bound`, for clock values that are points in time (others are never due)."""
    readable = readable_clock(clock, dialect, since_format)
    return clock < bound if readable is None else sa.and_(clock < bound, readable)
