"""Reflect a target database and check the config against it (`gdpr-sweep check`).

Every table and column the config names is looked up in the reflected schema before
any SQL is built from it; the compiler (`rules.py`) only ever uses the reflected
`Table` objects, so identifiers reach SQL quoted by SQLAlchemy, never spliced.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .columns import (
    ColumnKind,
    column_kind,
    is_boolean_like,
    is_string,
    is_temporal,
    string_length,
)
from .config import Config, Rule, Scalar, SubjectLink
from .strategies import MIN_HASH_LENGTH, ZONE_TABLES_FIX, zone_problem

#: ON DELETE actions with which the database itself keeps a child consistent.
SELF_RESOLVING = {"CASCADE", "SET NULL", "SET DEFAULT"}


@dataclass(frozen=True)
class Finding:
    """One problem `check` found: where (database, config key) and how to fix it."""

    database: str
    key: str
    message: str
    fix: str = ""
    warning: bool = False  # worth fixing, but nothing would go wrong (exit 0)

    def line(self) -> str:
        text = f"database {self.database}: {self.key}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text


@dataclass(frozen=True)
class Reference:
    """A foreign key from `child.columns` to `parent.referred_columns`."""

    child: sa.Table
    columns: tuple[str, ...]
    referred_columns: tuple[str, ...]
    ondelete: str | None


def split_name(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return (schema or None), table


class Catalog:
    """Reflected tables of one database, looked up by the names the config uses."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        self.inspector = sa.inspect(connection)
        self.metadata = sa.MetaData()
        self._tables: dict[str, sa.Table | None] = {}
        self._views: dict[str | None, set[str]] = {}
        self._references: dict[str | None, dict[str, list[Any]]] = {}
        self._schemas: set[str] | None = None

    def has_schema(self, schema: str | None) -> bool:
        if schema is None:
            return True
        if self._schemas is None:
            self._schemas = set(self.inspector.get_schema_names())
        return schema in self._schemas

    def is_view(self, name: str) -> bool:
        schema, table = split_name(name)
        if not self.has_schema(schema):
            return False
        if schema not in self._views:
            self._views[schema] = set(self.inspector.get_view_names(schema=schema))
        return table in self._views[schema]

    def table(self, name: str) -> sa.Table | None:
        """Return the reflected table `name` ("t" or "schema.t"), or None if there is none."""
        if name not in self._tables:
            schema, table = split_name(name)
            found: sa.Table | None
            try:
                if not self.has_schema(schema) or self.is_view(name):
                    found = None
                else:
                    found = sa.Table(
                        table,
                        self.metadata,
                        autoload_with=self.connection,
                        schema=schema,
                        resolve_fks=False,
                    )
            except sa.exc.NoSuchTableError:
                found = None
            self._tables[name] = found
        return self._tables[name]

    def is_indexed(self, table: sa.Table, column: str) -> bool:
        """Is `column` the leading column of an index, unique constraint or primary key?"""
        if [c.name for c in table.primary_key.columns][:1] == [column]:
            return True
        schema, name = table.schema, table.name
        leading: list[list[Any]] = [
            list(ix["column_names"][:1]) for ix in self.inspector.get_indexes(name, schema)
        ]
        leading += [
            list(uc["column_names"][:1])
            for uc in self.inspector.get_unique_constraints(name, schema)
        ]
        return [column] in leading

    def foreign_key_columns(self, table: sa.Table) -> set[str]:
        fks = self.inspector.get_foreign_keys(table.name, table.schema)
        return {column for fk in fks for column in fk["constrained_columns"]}

    def is_unique(self, table: sa.Table, column: str) -> bool:
        """Is `column` alone UNIQUE (a unique constraint or a unique index)?"""
        uniques: list[list[Any]] = [
            list(uc["column_names"])
            for uc in self.inspector.get_unique_constraints(table.name, table.schema)
        ]
        uniques += [
            list(ix["column_names"])
            for ix in self.inspector.get_indexes(table.name, table.schema)
            if ix.get("unique")
        ]
        return [column] in uniques

    def check_constraints(self, table: sa.Table) -> list[Any]:
        try:
            return list(self.inspector.get_check_constraints(table.name, table.schema))
        except NotImplementedError:
            return []

    def evaluate_check(self, expression: str) -> bool | None:
        """Let the engine evaluate a CHECK expression; None if it cannot.

        Inside a savepoint, so a failed evaluation leaves the (read-only) transaction
        usable. A CHECK passes when its expression is true or NULL.
        """
        sql = (
            f"SELECT CASE WHEN ({expression}) THEN 1 WHEN ({expression}) IS NULL THEN 1 ELSE 0 END"
        )
        if self.connection.dialect.paramstyle in ("format", "pyformat"):
            sql = sql.replace("%", "%%")  # a literal % (LIKE 'K%') in a driver that formats
        try:
            with self.connection.begin_nested():
                value = self.connection.exec_driver_sql(sql).scalar()
        except sa.exc.DBAPIError:
            return None
        return bool(value)

    def primary_key(self, table: sa.Table) -> sa.Column | None:
        """Return the primary key's column if it has exactly one (else None)."""
        columns = list(table.primary_key.columns)
        return columns[0] if len(columns) == 1 else None

    def primary_key_columns(self, table: sa.Table) -> tuple[sa.Column, ...]:
        """Return every column of the primary key, in key order (empty: none)."""
        return tuple(table.primary_key.columns)

    def references_to(self, parent: sa.Table) -> list[Reference]:
        """Return every foreign key in the parent's schema that points at `parent`."""
        schema = parent.schema
        if schema not in self._references:
            self._references[schema] = {
                key[1]: fks
                for key, fks in self.inspector.get_multi_foreign_keys(schema=schema).items()
            }
        default_schema = self.inspector.default_schema_name
        result = []
        for child_name, fks in sorted(self._references[schema].items()):
            for fk in fks:
                referred_schema = fk.get("referred_schema")
                if referred_schema in (None, default_schema):
                    referred_schema = schema if schema != default_schema else None
                if fk["referred_table"] != parent.name or referred_schema not in (schema, None):
                    continue
                qualified = f"{schema}.{child_name}" if schema else child_name
                child = self.table(qualified)
                if child is None:
                    continue
                ondelete = ((fk.get("options") or {}).get("ondelete") or "").upper() or None
                result.append(
                    Reference(
                        child,
                        tuple(fk["constrained_columns"]),
                        tuple(fk["referred_columns"]),
                        ondelete,
                    )
                )
        return result


def qualified_name(table: sa.Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


# --- checks -----------------------------------------------------------------------------


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
    ) -> None:
        self.catalog = catalog
        self.database = database
        self.rule = rule
        self.links = links
        self.tz = tz
        self.findings: list[Finding] = []

    def add(self, key: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(self.database, f"{self.rule.key}.{key}", message, fix))

    def table(self, key: str, name: str) -> sa.Table | None:
        table = self.catalog.table(name)
        if table is None:
            if self.catalog.is_view(name):
                self.add(
                    key,
                    f"{name!r} is a view, not a table",
                    "point the rule at the table the view reads from",
                )
            else:
                self.add(key, f"no table {name!r}", "check the table name (and its schema)")
        return table

    def column(self, table: sa.Table, key: str, name: str) -> sa.Column | None:
        if name not in table.columns:
            self.add(
                key,
                f"table {qualified_name(table)!r} has no column {name!r}",
                "check the column name against the schema",
            )
            return None
        return table.columns[name]

    def temporal(self, table: sa.Table, key: str, name: str) -> sa.Column | None:
        column = self.column(table, key, name)
        since_format = self.rule.since_format
        if column is not None and since_format is not None:
            # SQLite stores whatever it is given, so there the declared type says little.
            numeric = isinstance(column.type, (sa.Integer, sa.Numeric, sa.Float))
            if not numeric and self.catalog.dialect != "sqlite":
                self.add(
                    key,
                    f"column {name!r} is {column.type}; since_format = {since_format!r} "
                    "reads numbers",
                    "name a numeric column, or drop since_format for a date column",
                )
                return None
            return column
        if column is not None and not is_temporal(column, self.catalog.dialect):
            self.add(
                key,
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
        problems = strategy_problems(self.catalog, table, column, strategy, self.tz)
        for message, fix, warning in problems:
            self.findings.append(
                Finding(
                    self.database, f"{self.rule.key}.columns.{column.name}", message, fix, warning
                )
            )

    def deletion_is_complete(self, table: sa.Table) -> None:
        """A delete must not fail on, or orphan, rows that reference the deleted ones."""
        cascade = list(self.rule.cascade)
        resolved = {qualified_name(table)}
        children = {}
        for i, name in enumerate(cascade):
            child = self.table(f"cascade[{i}]", name)
            if child is not None:
                children[qualified_name(child)] = (i, child)
        reachable = {qualified_name(table)}
        # Walk parents before children so a grandchild listed in cascade is accepted
        # once its own parent is.
        frontier = [table]
        while frontier:
            parent = frontier.pop(0)
            for ref in self.catalog.references_to(parent):
                child_name = qualified_name(ref.child)
                if child_name in children:
                    reachable.add(child_name)
                    if child_name not in resolved:
                        resolved.add(child_name)
                        frontier.append(ref.child)
                elif ref.ondelete not in SELF_RESOLVING and child_name != qualified_name(parent):
                    self.add(
                        "action",
                        f"deleting from {qualified_name(parent)!r} would break "
                        f"rows of {child_name!r} that reference it "
                        f"({', '.join(ref.columns)}, no ON DELETE CASCADE)",
                        f"add {child_name!r} to the rule's cascade, or declare "
                        "ON DELETE CASCADE/SET NULL",
                    )
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


def strategy_problems(
    catalog: Catalog,
    table: sa.Table,
    column: sa.Column,
    strategy: str,
    tz: ZoneInfo | None = None,
) -> list[tuple[str, str, bool]]:
    """What would go wrong writing `strategy`'s output into `column`: (message, fix, warning).

    Everything that would otherwise surface mid-run as a constraint error: NOT NULL,
    type and length, UNIQUE collisions, keys, and CHECK constraints (evaluated by the
    engine itself against the new value where it can), and a time zone the engine cannot
    truncate `year`/`month` in (`tz`, `sweep.timezone`).
    """
    dialect = catalog.dialect
    if column.primary_key:
        return [
            (
                "is the primary key; anonymising it would break references",
                "remove it from the columns",
                False,
            )
        ]
    if column.foreign_keys or column.name in catalog.foreign_key_columns(table):
        return [
            (
                "is a foreign key; anonymising it would orphan or break references",
                "remove it from the columns; the row's identifiers are elsewhere",
                False,
            )
        ]
    if strategy == "null" and not column.nullable:
        return [
            (
                'is NOT NULL, so strategy "null" cannot apply',
                'use "redact" or "hash", or make the column nullable',
                False,
            )
        ]
    if strategy in ("year", "month") and column_kind(column, dialect) is ColumnKind.OTHER:
        return [
            (
                f"strategy {strategy!r} needs a date column, not {column.type}",
                'use "null", "redact" or "hash"',
                False,
            )
        ]
    zone_missing = zone_problem(catalog.connection, column, strategy, tz)
    if zone_missing is not None:
        return [(zone_missing, ZONE_TABLES_FIX, False)]
    if strategy in ("redact", "hash") and not is_string(column):
        return [
            (
                f"strategy {strategy!r} needs a text column, not {column.type}",
                'use "null" (or "year"/"month" for dates)',
                False,
            )
        ]
    if strategy == "hash" and (string_length(column) or MIN_HASH_LENGTH) < MIN_HASH_LENGTH:
        return [
            (
                f"is too short for a keyed hash (needs {MIN_HASH_LENGTH} characters)",
                'use "null" or "redact"',
                False,
            )
        ]
    problems = []
    if strategy in ("redact", "year", "month") and catalog.is_unique(table, column.name):
        problems.append(
            (
                f"is UNIQUE, and strategy {strategy!r} gives many rows the same value",
                'use "hash" (distinct inputs stay distinct) or "null"',
                False,
            )
        )
    problems.extend(_check_constraint_problems(catalog, table, column, strategy))
    return problems


def _sample_output(strategy: str, column: sa.Column, dialect: str) -> str | None:
    """A SQL literal of what the strategy writes, to test CHECK constraints with."""
    if strategy == "null":
        return "NULL"
    if strategy == "redact":
        length = string_length(column)
        return "'" + ("[redacted]" if length is None else "[redacted]"[:length]) + "'"
    if strategy == "hash":
        length = string_length(column) or 69
        return "'" + ("hmac:" + "0" * 64)[:length] + "'"
    return None  # year/month keep the value's own date: nothing new to test


def _check_constraint_problems(
    catalog: Catalog, table: sa.Table, column: sa.Column, strategy: str
) -> list[tuple[str, str, bool]]:
    problems = []
    mention = re.compile(r"(?<![\w.])[`\"\[]?" + re.escape(column.name) + r"[`\"\]]?(?!\w)")
    for check in catalog.check_constraints(table):
        text = check.get("sqltext") or ""
        if not mention.search(text):
            continue
        name = check.get("name") or "(unnamed)"
        sample = _sample_output(strategy, column, catalog.dialect)
        verdict = None if sample is None else catalog.evaluate_check(mention.sub(sample, text))
        if verdict is False:
            problems.append(
                (
                    f"CHECK constraint {name} ({text}) would reject the value "
                    f"strategy {strategy!r} writes",
                    "choose another strategy, or relax the constraint",
                    False,
                )
            )
        elif verdict is None and sample is not None:
            problems.append(
                (
                    f"CHECK constraint {name} ({text}) mentions it and could not be "
                    "tested against the new value",
                    "make sure the strategy's output satisfies it",
                    True,
                )
            )
    return problems


def check_rule(catalog: Catalog, database: str, rule: Rule, config: Config) -> list[Finding]:
    """Return the findings for one rule against one reflected database."""
    links = config.subject.links if config.subject else ()
    return _RuleChecker(catalog, database, rule, links, config.sweep.tz).check()


def check_subject(catalog: Catalog, database: str, config: Config) -> list[Finding]:
    """Return findings for `[subject]`: the tables and columns it names must exist."""
    subject = config.subject
    if subject is None:
        return []
    findings: list[Finding] = []

    def need(key: str, table_name: str, columns: list[str]) -> None:
        table = catalog.table(table_name)
        if table is None:
            findings.append(
                Finding(
                    database,
                    key,
                    f"no table {table_name!r}",
                    "check the table name (and its schema)",
                )
            )
            return
        for column in columns:
            if column not in table.columns:
                findings.append(
                    Finding(
                        database,
                        key,
                        f"table {table_name!r} has no column {column!r}",
                        "check the column name against the schema",
                    )
                )

    need("subject.root", subject.root, [column for _kind, column in subject.identifiers])
    for link in subject.links:
        key = f"subject.links[{link.index}]"
        need(key, link.table, [link.column, *[c for c, _v in link.only]])
        need(f"{key}.references", link.references_table, [link.references_column])
    for erase in subject.erase:
        key = f"subject.erase.{erase.table}"
        need(key, erase.table, [c for c, _s in erase.columns])
        table = catalog.table(erase.table)
        if table is None:
            continue
        for column_name, strategy in erase.columns:
            if column_name in table.columns:
                for message, fix, warning in strategy_problems(
                    catalog, table, table.columns[column_name], strategy, config.sweep.tz
                ):
                    findings.append(
                        Finding(database, f"{key}.columns.{column_name}", message, fix, warning)
                    )
    return findings
