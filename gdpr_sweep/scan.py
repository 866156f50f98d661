"""`gdpr-sweep scan`: personal-looking columns that no rule or subject table covers.

The question a data-protection officer asks: "what personal data do we keep forever by
accident?" For every table of every selected database the scan looks at the column *names* —
reflection only, no row is ever read — and reports:

- `uncovered-column`: a column whose name looks personal and that nothing removes:
  no `delete` rule for its table (a delete removes every column, and so does being a
  rule's `cascade` child), no `anonymise` rule for its table that lists it in `columns`,
  and its table is not in the subject graph (an erasure request removes the person's
  rows; counted only when `[subject]` is valid for that database);
- `table-without-rule`: a table holding a personal-looking column that no rule names at
  all (as its table or as a cascade child) — even if erasure on request covers it, since
  without a rule its rows are kept until someone asks, i.e. forever.

Which tables (`scanned_tables`): tables, never views. PostgreSQL: every schema the
connection's user may use (USAGE), except `pg_catalog`, `information_schema`, `pg_toast*`
and `pg_temp*`; a partition is part of its partitioned table, which is scanned once under
its own name. MariaDB/MySQL: the URL's database only (the others on the server belong to
other applications). SQLite: `main` and any attached database (never `temp`). Tables of
the default schema are named as the config names them (`employee`), the others
schema-qualified (`hr.employee`), and a rule, cascade or subject table may name them
either way.

A column "looks personal" when its name matches a pattern (`personal_patterns.py`).

Primary-key and foreign-key columns are never reported as columns: no strategy can
anonymise a key, and a foreign key's value lives in the parent table, which is scanned
itself. A personal-looking primary key that is not an integer (a table keyed by e-mail
address) still makes its table one that needs a rule.

The tool's own state tables (`alembic_version`, `runs`, `audit_entries`, `holds`) are
skipped when the scanned database is the state database, or when a table of that name
has every NOT NULL column of ours (a state database reached under another URL).
Findings and errors name databases, tables, columns and patterns, never a value.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .catalog import Catalog, qualified_name, split_name
from .checks.subject_checks import check_subject
from .config import Config, Rule, state_url
from .engines import DatabaseFailure, TargetDatabase, read_each, select_databases
from .errors import GdprSweepError
from .formats import format_name
from .personal_patterns import DEFAULT_COMPILED, PATTERN_LABELS, compile_patterns, personal_pattern
from .state.models import metadata as state_metadata
from .subject.graph import build_graph

UNCOVERED_COLUMN = "uncovered-column"
TABLE_WITHOUT_RULE = "table-without-rule"


@dataclass(frozen=True)
class ScanFinding:
    """One personal-looking column, or table, that nothing removes on a schedule."""

    database: str
    table: str  # qualified name
    column: str | None  # None for a table-level finding
    kind: str  # "uncovered-column" | "table-without-rule"
    pattern: str | None  # the pattern that matched (for columns)
    message: str  # one line: database, table, column, and how to fix it


@dataclass
class ScanResult:
    """Findings, the databases scanned, and those that could not be read."""

    findings: list[ScanFinding] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)
    failures: list[DatabaseFailure] = field(default_factory=list)

    @property
    def unreachable(self) -> list[str]:
        """The databases not scanned, one line each (as `scan --json` lists them)."""
        return [failure["error"] for failure in self.failures]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": format_name("scan"),
            "scanned": list(self.scanned),
            "unreachable": list(self.unreachable),
            "findings": [asdict(finding) for finding in self.findings],
        }


# --- coverage ------------------------------------------------------------------------------

TableKey = tuple[str | None, str]


@dataclass
class _Coverage:
    """What the config does to each table of one database, keyed by (schema, table)."""

    deleted_by: dict[TableKey, list[str]] = field(default_factory=dict)  # rule ids
    cascaded_by: dict[TableKey, list[str]] = field(default_factory=dict)
    anonymised_by: dict[TableKey, list[Rule]] = field(default_factory=dict)
    subject_tables: set[TableKey] = field(default_factory=set)

    def has_rule(self, key: TableKey) -> bool:
        return self.deletes(key) or bool(self.anonymised_by.get(key))

    def deletes(self, key: TableKey) -> bool:
        return bool(self.deleted_by.get(key) or self.cascaded_by.get(key))

    def anonymises(self, key: TableKey, column: str) -> bool:
        return any(column in dict(rule.columns) for rule in self.anonymised_by.get(key, []))


def _key(catalog: Catalog, name: str) -> TableKey:
    """The (schema, table) a config name refers to, the default schema spelt out."""
    schema, table = split_name(name)
    return (schema or catalog.inspector.default_schema_name, table)


def _table_key(catalog: Catalog, table: sa.Table) -> TableKey:
    return (table.schema or catalog.inspector.default_schema_name, table.name)


def _coverage(catalog: Catalog, database: str, config: Config) -> _Coverage:
    coverage = _Coverage()
    for rule in config.rules_for(database):
        key = _key(catalog, rule.table)
        if rule.action == "delete":
            coverage.deleted_by.setdefault(key, []).append(rule.id)
            for child in rule.cascade:
                coverage.cascaded_by.setdefault(_key(catalog, child), []).append(rule.id)
        else:
            coverage.anonymised_by.setdefault(key, []).append(rule)
    subject = config.subject
    if subject is not None and subject.identifiers and not check_subject(catalog, database, config):
        graph = build_graph(catalog, config, subject.identifiers[0][1])
        coverage.subject_tables = {_table_key(catalog, table) for table in graph.order}
    return coverage


# --- the tool's own tables -------------------------------------------------------------------


def _state_tables() -> dict[str, set[str]]:
    """Our state tables' names and their NOT NULL columns (present since the first migration)."""
    shapes = {"alembic_version": {"version_num"}}
    for table in state_metadata.tables.values():
        shapes[table.name] = {c.name for c in table.columns if not c.nullable}
    return shapes


def _same_database(a: URL, b: URL) -> bool:
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        if not a.database or not b.database or ":memory:" in (a.database, b.database):
            return False
        return Path(a.database).resolve() == Path(b.database).resolve()
    return (a.host, a.port, a.database) == (b.host, b.port, b.database)


def _is_state_database(config: Config, target: TargetDatabase) -> bool:
    try:
        return _same_database(state_url(config), target.url)
    except GdprSweepError:  # the state URL's variable is not set: not comparable
        return False


def _is_own_table(table: sa.Table, is_state_db: bool, shapes: dict[str, set[str]]) -> bool:
    if table.name not in shapes:
        return False
    # Our state tables live in the state database's default schema; a `runs` table in
    # another schema of it is ours only if it has our shape.
    in_state_schema = is_state_db and table.schema is None
    return in_state_schema or shapes[table.name] <= {c.name for c in table.columns}


# --- which tables ----------------------------------------------------------------------------

#: Every table and partitioned table (not a partition, view, materialized view, foreign
#: table or sequence) in every schema but the system ones that the user may use.
_PG_SCANNED_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_)'
  AND has_schema_privilege(n.oid, 'USAGE')
ORDER BY n.nspname, c.relname
"""


def scanned_tables(catalog: Catalog) -> list[str]:
    """The tables the scan covers, named as the config would name them: the default
    schema's first, unqualified, then the other schemas' as "schema.table"."""
    default = catalog.default_schema
    pairs: list[tuple[str, str]]
    if catalog.dialect == "postgresql":
        pairs = [(s, t) for s, t in catalog.connection.exec_driver_sql(_PG_SCANNED_TABLES)]
    elif catalog.dialect == "sqlite":
        pairs = []
        for _seq, schema, *_file in catalog.connection.exec_driver_sql("PRAGMA database_list"):
            if schema != "temp":
                pairs += [(schema, t) for t in catalog.inspector.get_table_names(schema=schema)]
    else:  # MariaDB/MySQL: the URL's database only
        pairs = [(default, t) for t in catalog.inspector.get_table_names()]
    own = sorted(t for s, t in pairs if s == default)
    return own + [f"{s}.{t}" for s, t in sorted(p for p in pairs if p[0] != default)]


# --- the scan ------------------------------------------------------------------------------


def _ignored(ignore: tuple[str, ...], table: str, column: str | None = None) -> bool:
    names = [table.lower()] if column is None else [table.lower(), f"{table}.{column}".lower()]
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in ignore for name in names)


def scan_database(
    catalog: Catalog,
    database: str,
    config: Config,
    patterns: list[tuple[str, re.Pattern[str]]],
    skip_own_tables: bool = False,
    ignore: tuple[str, ...] = (),
) -> list[ScanFinding]:
    """Return the findings for one reflected database (reflection only; no row is read)."""
    coverage = _coverage(catalog, database, config)
    shapes = _state_tables()
    findings: list[ScanFinding] = []
    for name in scanned_tables(catalog):
        table = catalog.table(name)
        if table is None or _is_own_table(table, skip_own_tables, shapes):
            continue
        qualified = qualified_name(table)
        if _ignored(ignore, qualified):
            continue
        key = _table_key(catalog, table)
        foreign = {c for fk in table.foreign_key_constraints for c in fk.column_keys}
        personal: list[str] = []
        uncovered: list[ScanFinding] = []
        for column in table.columns:
            if column.name in foreign or _ignored(ignore, qualified, column.name):
                continue
            pattern = personal_pattern(column.name, patterns)
            if pattern is None:
                continue
            if column.primary_key:
                # Never reported itself, but a key like an e-mail address is personal.
                if not isinstance(column.type, sa.Integer):
                    personal.append(column.name)
                continue
            personal.append(column.name)
            if (
                coverage.deletes(key)
                or coverage.anonymises(key, column.name)
                or key in coverage.subject_tables
            ):
                continue
            uncovered.append(
                ScanFinding(
                    database,
                    qualified,
                    column.name,
                    UNCOVERED_COLUMN,
                    pattern,
                    _column_message(database, qualified, column.name, pattern, coverage, key),
                )
            )
        if personal and not coverage.has_rule(key):
            findings.append(
                ScanFinding(
                    database,
                    qualified,
                    None,
                    TABLE_WITHOUT_RULE,
                    None,
                    _table_message(database, qualified, personal, key in coverage.subject_tables),
                )
            )
        findings.extend(uncovered)
    return findings


def _column_message(
    database: str, table: str, column: str, pattern: str, coverage: _Coverage, key: TableKey
) -> str:
    rules = [rule.id for rule in coverage.anonymised_by.get(key, [])]
    why = PATTERN_LABELS.get(pattern) or f"matches {pattern!r}"
    if rules:
        fix = (
            f"add {column!r} to the columns of rule {rules[0]!r}"
            if len(rules) == 1
            else f"add {column!r} to the columns of one of the rules {', '.join(map(repr, rules))}"
        )
    else:
        fix = f"add a delete rule for {table!r}, or an anonymise rule that lists {column!r}"
    return (
        f"database {database}: table {table!r}, column {column!r} looks personal "
        f"({why}) but no rule removes it, so it is kept forever — {fix}"
    )


def _table_message(database: str, table: str, personal: list[str], in_subject: bool) -> str:
    columns = ", ".join(map(repr, personal))
    erasure = (
        "erasure on request reaches it, but nothing removes it on a schedule"
        if in_subject
        else "its rows are kept forever"
    )
    return (
        f"database {database}: table {table!r} holds personal-looking columns ({columns}) "
        f"but no rule names it, so {erasure} — add a delete or anonymise rule for "
        f"{table!r}, or list it in a delete rule's cascade"
    )


def scan_config(
    config: Config,
    databases: list[str] | None = None,
    extra_patterns: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (),
) -> ScanResult:
    """Reflect every selected database and report personal data that no rule removes.

    `extra_patterns` are added to `DEFAULT_PATTERNS` (an invalid one is a ConfigError).
    `ignore` holds case-insensitive globs of `TABLE` or `TABLE.COLUMN` names known not to
    be personal (or handled elsewhere); they are never reported.
    """
    patterns = DEFAULT_COMPILED + compile_patterns(extra_patterns)

    def read(target: TargetDatabase, catalog: Catalog) -> list[ScanFinding]:
        return scan_database(
            catalog,
            target.name,
            config,
            patterns,
            skip_own_tables=_is_state_database(config, target),
            ignore=ignore,
        )

    done, failures = read_each(select_databases(config, databases), read)
    result = ScanResult(failures=failures)
    for target, findings in done:
        result.findings.extend(findings)
        result.scanned.append(target.name)
    return result
