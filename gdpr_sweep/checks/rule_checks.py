"""Check one rule against a reflected database: its tables, columns, clocks, filters,
strategies and what deleting its rows does to the rows that reference them."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..catalog import Catalog, Reference, partition_message, qualified_name
from ..columns import is_boolean_like, is_temporal
from ..config import Config, Rule, Scalar, SubjectLink
from ..foreign_keys import SELF_RESOLVING
from .findings import Finding
from .strategy_checks import strategy_problems


def _bindable(value: Scalar, column: sa.Column) -> bool:
    """Can `value` be compared with `column` without the engine casting it?"""
    col_type = column.type
    if isinstance(value, bool):
        return isinstance(col_type, (sa.Boolean, sa.Integer))
    if isinstance(value, int):
        return isinstance(col_type, (sa.Integer, sa.Numeric)) and not isinstance(
            col_type, sa.Boolean
        )
    if isinstance(value, float):
        return isinstance(col_type, sa.Numeric)
    if isinstance(value, dt.datetime):
        return isinstance(col_type, sa.DateTime)
    if isinstance(value, dt.date):
        return isinstance(col_type, sa.Date) and not isinstance(col_type, sa.DateTime)
    if isinstance(value, str):
        return isinstance(col_type, (sa.String, sa.Text, sa.Enum))
    return False


class _RuleChecker:
    """Collects the findings for one rule in one database."""

    def __init__(
        self,
        catalog: Catalog,
        database: str,
        rule: Rule,
        links: tuple[SubjectLink, ...] = (),
        tz: ZoneInfo | None = None,
        config: Config | None = None,
    ) -> None:
        self.catalog = catalog
        self.database = database
        self.rule = rule
        self.links = links
        self.tz = tz
        self.config = config
        self.findings: list[Finding] = []

    def add(self, key_path: str, message: str, fix: str = "", warning: bool = False) -> None:
        self.findings.append(
            Finding(self.database, f"{self.rule.key_path}.{key_path}", message, fix, warning)
        )

    def table(self, key_path: str, name: str) -> sa.Table | None:
        parent = self.catalog.partition_parent(name)
        if parent is not None:
            self.add(key_path, partition_message(name, parent))
            return None
        table = self.catalog.table(name)
        if table is None:
            if self.catalog.is_view(name):
                self.add(
                    key_path,
                    f"{name!r} is a view, not a table",
                    "point the rule at the table the view reads from",
                )
            else:
                self.add(key_path, f"no table {name!r}", "check the table name (and its schema)")
        return table

    def column(self, table: sa.Table, key_path: str, name: str) -> sa.Column | None:
        if name not in table.columns:
            self.add(
                key_path,
                f"table {qualified_name(table)!r} has no column {name!r}",
                "check the column name against the schema",
            )
            return None
        return table.columns[name]

    def temporal(self, table: sa.Table, key_path: str, name: str) -> sa.Column | None:
        column = self.column(table, key_path, name)
        since_format = self.rule.since_format
        if column is not None and since_format is not None:
            # SQLite stores whatever it is given, so there the declared type says little.
            numeric = isinstance(column.type, (sa.Integer, sa.Numeric, sa.Float))
            if not numeric and self.catalog.dialect != "sqlite":
                self.add(
                    key_path,
                    f"column {name!r} is {column.type}; since_format = {since_format!r} "
                    "reads numbers",
                    "name a numeric column, or drop since_format for a date column",
                )
                return None
            return column
        if column is not None and not is_temporal(column, self.catalog.dialect):
            self.add(
                key_path,
                f"column {name!r} is {column.type}, not a date or timestamp",
                "name a DATE or TIMESTAMP column (or, for epoch or Julian numbers, set "
                "since_format)",
            )
            return None
        return column

    def check(self) -> list[Finding]:
        rule = self.rule
        table = self.table("table", rule.table)
        if table is None:
            return self.findings
        if not self.catalog.primary_key_columns(table):
            self.add(
                "table",
                f"table {rule.table!r} has no primary key",
                "rows are batched and recorded by their primary key; add one "
                "(a composite key is fine)",
            )
        if rule.since:
            self.temporal(table, "since", rule.since)
        if rule.since_latest and len(self.catalog.primary_key_columns(table)) > 1:
            self.add(
                "since_latest.key",
                f"table {rule.table!r} has a composite primary key; since_latest relates "
                "activity rows by one key column",
                "sweep the table by its own clock (since), or give it a single-column key",
            )
        elif rule.since_latest:
            latest = rule.since_latest
            related = self.table("since_latest.table", latest.table)
            if related is not None:
                self.temporal(related, "since_latest.column", latest.column)
                self.column(related, "since_latest.key", latest.key)
                self.activity_deleted_by_a_rule(related)
        for column_name, values in rule.only:
            column = self.column(table, f"only.{column_name}", column_name)
            if column is not None:
                for value in values:
                    if not _bindable(value, column):
                        self.add(
                            f"only.{column_name}",
                            f"a {type(value).__name__} value cannot be compared with "
                            f"column {column_name!r} of type {column.type}",
                            "give a value of the column's type",
                        )
                        break
        if rule.unless_after:
            self.temporal(table, "unless_after", rule.unless_after)
        if rule.unless_true:
            column = self.column(table, "unless_true", rule.unless_true)
            if column is not None and not is_boolean_like(column):
                self.add(
                    "unless_true",
                    f"column {rule.unless_true!r} is {column.type}, not boolean",
                    "name a BOOLEAN column",
                )
        for column_name, strategy in rule.columns:
            column = self.column(table, f"columns.{column_name}", column_name)
            if column is not None:
                self.strategy_fits(table, column, strategy)
        if rule.action == "delete":
            self.deletion_is_complete(table)
        return self.findings

    def strategy_fits(self, table: sa.Table, column: sa.Column, strategy: str) -> None:
        problems = strategy_problems(
            self.catalog, table, column, strategy, self.tz, dict(self.rule.columns)
        )
        for message, fix, warning in problems:
            self.findings.append(
                Finding(
                    self.database,
                    f"{self.rule.key_path}.columns.{column.name}",
                    message,
                    fix,
                    warning,
                )
            )

    def deletion_is_complete(self, table: sa.Table) -> None:
        """Say what deleting the rule's rows does to the rows that reference them.

        A reference from outside the cascade without an ON DELETE action does not
        make the delete fail: the sweep holds back (held, "referenced") the due rows
        still referenced, until those rows go. So that is a warning, and listing the
        table in cascade is only for deleting its rows with their parent, never a way
        to make the rule work (it would delete invoices the law says to keep). What
        the engine resolves itself (ON DELETE CASCADE/SET NULL/SET DEFAULT) needs
        nothing, except an engine cascade into rows meant to outlive the parent (a
        table with its own delete rule, or kept on erasure): those parents are held
        back too. A table that references itself is said out loud, and refused
        without an action: a due row that other rows of it still reference would
        fail the delete mid-run, every run.
        """
        children: dict[str, tuple[int, sa.Table]] = {}
        for i, name in enumerate(self.rule.cascade):
            child = self.table(f"cascade[{i}]", name)
            if child is not None:
                children[qualified_name(child)] = (i, child)
        reachable = {qualified_name(table)}
        engine_cascaded: set[str] = set()
        # Walk parents before children so a grandchild listed in cascade is accepted
        # once its own parent is. Tables the engine deletes from (ON DELETE CASCADE)
        # are walked too, as the run does: what references their rows holds the
        # parent back, and their self-references need the same answer.
        frontier: list[tuple[sa.Table, str, bool]] = [(table, "action", False)]
        while frontier:
            parent, key_path, by_engine = frontier.pop(0)
            for ref in self.catalog.references_to(parent):
                child_name = qualified_name(ref.child)
                if ref.child is parent:
                    self.self_reference(key_path, parent, ref)
                elif child_name in children and not by_engine:
                    if child_name not in reachable:
                        reachable.add(child_name)
                        frontier.append((ref.child, f"cascade[{children[child_name][0]}]", False))
                elif ref.ondelete == "CASCADE":
                    if self.kept_longer(key_path, table, parent, ref):
                        continue
                    if child_name not in engine_cascaded and child_name not in reachable:
                        engine_cascaded.add(child_name)
                        frontier.append((ref.child, key_path, True))
                elif ref.ondelete not in SELF_RESOLVING:
                    self.held_while_referenced(key_path, table, parent, ref, by_engine)
        for link in self.links:
            if link.table in children and link.references_table in reachable:
                reachable.add(qualified_name(children[link.table][1]))
        for child_name, (i, _child) in children.items():
            if child_name not in reachable:
                self.add(
                    f"cascade[{i}]",
                    f"table {child_name!r} has no foreign key to {self.rule.table!r} "
                    "(directly, through another cascade table or a subject.links entry)",
                    "remove it from cascade, or declare the foreign key",
                )

    def self_reference(self, key_path: str, table: sa.Table, ref: Reference) -> None:
        """A table the delete sweeps refers to itself (`comment.parent_id`)."""
        name, columns = qualified_name(table), ", ".join(ref.columns)
        if ref.ondelete == "CASCADE":
            self.add(
                key_path,
                f"{name!r} references itself ({columns}, ON DELETE CASCADE): rows that "
                "reference a deleted row are deleted with it by the engine, due or not",
                f"declare ON DELETE SET NULL on {columns} to keep them",
                warning=True,
            )
        elif ref.ondelete in ("SET NULL", "SET DEFAULT"):
            to = "NULL" if ref.ondelete == "SET NULL" else "its default"
            self.add(
                key_path,
                f"{name!r} references itself ({columns}, ON DELETE {ref.ondelete}): rows "
                f"that reference a deleted row stay, with {columns} set to {to}",
                warning=True,
            )
        else:
            self.add(
                key_path,
                f"{name!r} references itself ({columns}, {_on_delete(ref.ondelete)}): "
                "deleting a row that other rows still reference fails mid-run",
                f"declare ON DELETE SET NULL or CASCADE on {columns}",
            )

    def held_while_referenced(
        self, key_path: str, table: sa.Table, parent: sa.Table, ref: Reference, by_engine: bool
    ) -> None:
        """Rows outside the cascade reference the deleted ones with no ON DELETE action."""
        child, columns = qualified_name(ref.child), ", ".join(ref.columns)
        how = f"({columns}, {_on_delete(ref.ondelete)})"
        if parent is table:
            what = f"due rows of {qualified_name(table)!r} that rows of {child!r} still reference"
        else:
            went = " (deleted with them by ON DELETE CASCADE)" if by_engine else ""
            what = (
                f"due rows of {qualified_name(table)!r} whose {qualified_name(parent)!r} rows"
                f"{went} are still referenced by rows of {child!r}"
            )
        fix = (
            f"declare ON DELETE CASCADE or SET NULL on {child}.{columns} if they may go "
            "(or be detached) with it"
            if by_engine
            else f"add {child!r} to the rule's cascade only to delete them with the parent"
        )
        self.add(
            key_path, f"{what} {how} are held back (referenced) until those rows go", fix, True
        )

    def kept_longer(self, key_path: str, table: sa.Table, parent: sa.Table, ref: Reference) -> bool:
        """An engine-level ON DELETE CASCADE into rows that are to outlive the parent:
        warn and return True (the run holds such parents back), else False."""
        reason = self.kept_reason(ref.child)
        if reason is None:
            return False
        child = qualified_name(ref.child)
        self.add(
            key_path,
            f"rows of {child!r} reference {qualified_name(parent)!r} with ON DELETE CASCADE "
            f"({', '.join(ref.columns)}) and {reason}: due rows of {qualified_name(table)!r} "
            f"whose {child!r} rows are kept longer are held back (referenced)",
            f"add {child!r} to the rule's cascade only to delete them with the parent",
            warning=True,
        )
        return True

    def activity_deleted_by_a_rule(self, activity: sa.Table) -> None:
        """Another delete rule removes the rows this rule's clock reads: warn.

        A run pins its due rows first, so it does what the plan said; but once the
        latest activity is gone, the clock falls back to older activity, and a later
        run can find a row due that was not (a customer whose last call was deleted
        after a year counts from a visit years before).
        """
        if self.config is None:
            return
        for other in self.config.rules:
            if (
                other.action == "delete"
                and other is not self.rule
                and other.applies_to(self.database)
                and self.catalog.table(other.table) is activity
                # deleted no sooner than this rule is due by it: the row was due anyway
                and _approximate_days(other.after) < _approximate_days(self.rule.after)
            ):
                self.add(
                    "since_latest.table",
                    f"rule {other.key_path} deletes rows of "
                    f"{qualified_name(activity)!r}, which this "
                    "rule's clock reads: a deleted latest activity moves the clock back to "
                    "older activity, and a later run may find rows due that were not",
                    "keep the activity rows this rule needs (anonymise instead of delete, "
                    "or a longer period), or record the last activity in a column",
                    warning=True,
                )

    def kept_reason(self, child: sa.Table) -> str | None:
        """Why rows of `child` may outlive their parent: their own delete rule, or erasure
        keeps them; None if nothing does."""
        if self.config is None:
            return None
        for other in self.config.rules:
            if (
                other.action == "delete"
                and other is not self.rule
                and other.applies_to(self.database)
                and self.catalog.table(other.table) is child
            ):
                return f"have their own delete rule ({other.key_path})"
        for erase in self.config.subject.erase if self.config.subject else ():
            if erase.action == "keep" and self.catalog.table(erase.table) is child:
                return f'are kept on erasure (subject.erase.{erase.table} action "keep")'
        return None


def _approximate_days(period: Any) -> int:
    """A period's length in days, roughly (months of 28 days, years of 365: a lower bound
    within a few days, enough to say which of two periods is shorter)."""
    per_unit = {"day": 1, "week": 7, "month": 28, "year": 365}
    return int(period.count) * per_unit.get(str(period.unit), 1)


def _on_delete(action: str | None) -> str:
    return "no ON DELETE action" if action is None else f"ON DELETE {action}"


def check_rule(catalog: Catalog, database: str, rule: Rule, config: Config) -> list[Finding]:
    """Return the findings for one rule against one reflected database."""
    links = config.subject.links if config.subject else ()
    return _RuleChecker(catalog, database, rule, links, config.sweep.tz, config).check()
