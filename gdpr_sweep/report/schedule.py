"""The retention schedule in words: one sentence per rule, the Art. 30(1)(f) record.

"Rows of counselling_case where status is "closed" are anonymised 6 months after
course_ended_on, unless under_investigation is true. participant_name, email, cpr
removed; birth_date kept as year." Everything said comes from the config (table and
column names, periods, the `only` values a rule names): never a row's value.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Rule, SweepSettings
from ..config.model import Scalar

#: What each anonymisation strategy leaves in a column, as a DPO would say it.
STRATEGY_WORDS = {
    "null": "removed",
    "redact": "replaced by a placeholder text",
    "hash": "replaced by a keyed pseudonym (still personal data)",
    "year": "kept as year",
    "month": "kept as month",
}
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class RuleSchedule:
    """One rule of the schedule, in words and in its parts (for the table)."""

    rule: str
    table: str
    action: str  # "deleted" | "anonymised"
    period: str  # "6 months"
    clock: str  # "after course_ended_on" ...
    only: str  # "" or "where status is "closed""
    exceptions: tuple[str, ...]  # "unless under_investigation is true"
    columns: str  # "" or "name, email removed; birth_date kept as year"
    cascade: str  # "" or "with their rows in contact_person"
    cascade_tables: tuple[str, ...]
    basis: str
    categories: str
    description: str
    sentence: str


def _value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def only_words(rule: Rule) -> str:
    """`only = {status = "closed", kind = [1, 2]}` → 'where status is "closed" and kind
    is 1 or 2'."""
    parts = []
    for column, values in rule.only:
        if len(values) == 1:
            parts.append(f"{column} is {_value(values[0])}")
        else:
            parts.append(
                f"{column} is {', '.join(_value(v) for v in values[:-1])} or {_value(values[-1])}"
            )
    return ("where " + " and ".join(parts)) if parts else ""


def clock_words(rule: Rule, settings: SweepSettings) -> str:
    """When the period starts: an event column, the last activity, a fiscal year's end."""
    if rule.since_latest is not None:
        latest = rule.since_latest
        words = f"after the last {latest.column} in {latest.table}"
        if rule.since:
            return words + f" (rows with none: after {rule.since})"
        return words + " (rows with none are never due)"
    assert rule.since is not None
    if rule.from_fiscal_year_end:
        end = settings.fiscal_year_end
        return (
            f"after the end of the financial year (ending {end.day} {MONTHS[end.month - 1]}) "
            f"of {rule.since}"
        )
    return f"after {rule.since}"


def exception_words(rule: Rule) -> tuple[str, ...]:
    words = []
    if rule.unless_after:
        words.append(f"unless {rule.unless_after} is later than the day of the sweep")
    if rule.unless_true:
        words.append(f"unless {rule.unless_true} is true")
    return tuple(words)


def column_words(rule: Rule) -> str:
    """The columns grouped by strategy, in the config's order: "name, email removed; …"."""
    groups: dict[str, list[str]] = {}
    for column, strategy in rule.columns:
        groups.setdefault(strategy, []).append(column)
    return "; ".join(
        f"{', '.join(columns)} {STRATEGY_WORDS.get(strategy, strategy)}"
        for strategy, columns in groups.items()
    )


def describe_rule(rule: Rule, settings: SweepSettings) -> RuleSchedule:
    """The rule in plain language, and its parts."""
    action = "deleted" if rule.action == "delete" else "anonymised"
    only = only_words(rule)
    clock = clock_words(rule, settings)
    exceptions = exception_words(rule)
    columns = column_words(rule) if rule.action == "anonymise" else ""
    cascade = f"with their rows in {', '.join(rule.cascade)}" if rule.cascade else ""
    subject = f"Rows of {rule.table}" + (f" {only}" if only else "")
    sentence = f"{subject} are {action} {rule.after} {clock}"
    if cascade:
        sentence += f", {cascade}"
    if exceptions:
        sentence += ", " + " and ".join(exceptions)
    sentence += "; rows under a legal hold are kept."
    if columns:
        sentence += f" Columns: {columns}; the other columns stay."
    return RuleSchedule(
        rule=rule.id,
        table=rule.table,
        action=action,
        period=str(rule.after),
        clock=clock,
        only=only,
        exceptions=exceptions,
        columns=columns,
        cascade=cascade,
        cascade_tables=rule.cascade,
        basis=rule.basis or "(not given)",
        categories=", ".join(rule.categories),
        description=rule.description or "",
        sentence=sentence,
    )
