"""What is coming: per rule the rows due now, and the rows becoming due in each of the
next 12 months — one query per rule, set-based.

A row becomes due on a local day D when it is due at the start of D and was not the
day before (SPEC: `L + period < A`). So the rows becoming due up to and including the
last day E of a month are those due at as-of E, and the month's count is the
difference between two such boundaries. Each boundary's clock condition is the rule's
own (`rules.compile_rule` at that as-of: the cutoff, `since_latest`, the fiscal year,
`since_format`), combined with *today's* exceptions and holds (the rule compiled at the
report's as-of, `referenced` included): a row kept by consent today is counted as kept.
One `SELECT SUM(CASE WHEN due-by-boundary-k THEN 1 ELSE 0 END) …` per rule reads the
table once; no plan is built per month and no row leaves the database.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..catalog import Catalog
from ..checks.check_config import check_database
from ..checks.findings import raise_findings
from ..config import Rule, SweepSettings
from ..engines import TargetDatabase
from ..holds.store import HeldKeys
from ..periods import local_date, start_of_local_day
from ..plan import compile_database, count_rule
from ..rules import CompiledRule, clock_before_cutoff, compile_rule

MONTHS_AHEAD = 12


@dataclass
class RuleOutlook:
    """One rule in one database: due and held now, and due in each month ahead."""

    rule: str
    table: str
    action: str
    cutoff: str  # ISO date: rows whose clock is before it are due now
    due: int
    held: int
    held_by: dict[str, int] = field(default_factory=dict)
    months: list[int] = field(default_factory=list)  # rows becoming due, month by month

    @property
    def coming(self) -> int:
        return sum(self.months)


def month_ends(as_of: dt.datetime, tz: dt.tzinfo, count: int = MONTHS_AHEAD) -> list[dt.date]:
    """The last local day of the as-of's month and of the `count - 1` months after it."""
    today = local_date(as_of, tz)  # type: ignore[arg-type]
    ends = []
    year, month = today.year, today.month
    for _ in range(count):
        ends.append(dt.date(year, month, calendar.monthrange(year, month)[1]))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return ends


def outlook_database(
    target: TargetDatabase, rules: tuple[Rule, ...], as_of: dt.datetime, holds: HeldKeys
) -> list[RuleOutlook]:
    """Count every applicable rule of one database now and month by month, read-only."""
    settings = target.config.sweep
    applicable = [rule for rule in rules if rule.applies_to(target.name)]
    ends = [start_of_local_day(day, settings.tz) for day in month_ends(as_of, settings.tz)]
    outlooks = []
    with target.read_only() as connection:
        catalog = Catalog(connection)
        raise_findings(check_database(catalog, target, applicable))
        compiled, _order = compile_database(catalog, target, applicable, as_of, holds)
        for rule, today in zip(applicable, compiled, strict=True):
            due, held_by = count_rule(connection, today)
            held = held_by.pop("total", 0)
            cumulative = _due_by(connection, catalog, rule, today, as_of, ends, settings)
            outlooks.append(
                RuleOutlook(
                    rule=rule.id,
                    table=rule.table,
                    action=rule.action,
                    cutoff=today.cutoff_date.isoformat(),
                    due=due,
                    held=held,
                    held_by={k: v for k, v in held_by.items() if v},
                    months=[b - a for a, b in itertools.pairwise(cumulative)],
                )
            )
    return outlooks


def _due_by(
    connection: sa.Connection,
    catalog: Catalog,
    rule: Rule,
    today: CompiledRule,
    as_of: dt.datetime,
    ends: list[dt.datetime],
    settings: SweepSettings,
) -> list[int]:
    """Rows due now, then rows due by the end of each month (cumulative), in one query.

    The scan keeps the rows the rule would act on by the last month's end under today's
    exceptions (its `candidate` there: clock, `only`, something left to anonymise; and
    not kept today); within them, a row is due by an earlier boundary exactly when its
    clock is before that boundary's cutoff — so only the clock is compiled per month.
    """
    last = compile_rule(catalog, rule, ends[-1], settings)
    clocks = [clock_before_cutoff(catalog, rule, when, settings) for when in (as_of, *ends)]
    sums = [sa.func.coalesce(sa.func.sum(sa.case((c, 1), else_=0)), 0) for c in clocks[:-1]]
    row = connection.execute(
        sa.select(sa.func.count(), *sums)
        .select_from(today.table)
        .where(last.candidate, *(sa.not_(e.keeps) for e in today.exceptions))
    ).one()
    by_boundary = [int(n) for n in row[1:]]
    return [*by_boundary, int(row[0])]
