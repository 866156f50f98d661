"""`gdpr-sweep check`: the config against every database's reflected schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa

from .columns import readable_clock
from .config import Config, Rule
from .engines import TargetDatabase, describe_failure, open_targets
from .errors import DatabaseUnavailable, SchemaError, UsageError
from .schema import Catalog, Finding, check_rule, check_subject, qualified_name
from .subject.graph import SubjectGraph, build_graph

T = TypeVar("T")


@dataclass
class CheckResult:
    """Findings per database, the databases that passed, and those unreachable."""

    findings: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)


def select_databases(config: Config, names: Iterable[str] | None) -> list[TargetDatabase]:
    """Return the configured databases, or those named by `--database` (unknown: exit 2)."""
    wanted = list(names or [])
    known = {db.name for db in config.databases}
    for name in wanted:
        if name not in known:
            raise UsageError(f"--database: no database {name!r} in the config")
    return open_targets(config, wanted)


def check_database(
    catalog: Catalog, target: TargetDatabase, rules: Iterable[Rule]
) -> list[Finding]:
    """Return every finding for the given rules (and the subject) in one database."""
    config = target.config
    findings = []
    for rule in rules:
        if rule.applies_to(target.name):
            findings.extend(check_rule(catalog, target.name, rule, config))
    findings.extend(check_subject(catalog, target.name, config))
    return findings


def subject_graph_warnings(catalog: Catalog, target: TargetDatabase) -> list[Finding]:
    """The warnings about the subject graph, which is built once for them."""
    config = target.config
    if config.subject is None or not config.subject.identifiers:
        return []
    graph = build_graph(catalog, config, config.subject.identifiers[0][1])
    return unindexed_subject_links(catalog, target, graph) + people_found_as_rows(target, graph)


def unindexed_subject_links(
    catalog: Catalog, target: TargetDatabase, graph: SubjectGraph
) -> list[Finding]:
    """Warn about subject-graph columns without an index: erasing through them scans."""
    config = target.config
    assert config.subject is not None
    findings = []
    root = graph.root
    needed = [(root, column, f"subject.identifiers.{kind}")
              for kind, column in config.subject.identifiers]  # fmt: skip
    for e in graph.edges:
        # Downward, the child's rows are looked up by its referencing column; upward
        # (a declared parent), the parent's by the column it is referred to by.
        table, column = (e.parent, e.referred_columns[0]) if e.upward else (e.child, e.column)
        needed.append((table, column, f"subject: {qualified_name(table)}.{column}"))
    for table, column, key in needed:
        if not catalog.is_indexed(table, column):
            findings.append(Finding(
                target.name, key,
                f"{qualified_name(table)}.{column} has no index, so finding a person's "
                "rows through it scans the whole table",
                f"add an index on {qualified_name(table)} ({column})", warning=True,
            ))  # fmt: skip
    return findings


def people_found_as_rows(target: TargetDatabase, graph: SubjectGraph) -> list[Finding]:
    """Warn about graph tables that look like other people: they hold an identifier
    column of the root's (an `email` of their own) and are reached by a foreign key
    whose column does not name the table it refers to (`support_rep_id` → employee).

    `customer.support_rep_id → employee` would make erasing a support agent erase her
    21 customers as "her rows"; declared in `[[subject.references]]`, it is a reference
    between two people instead. A warning: a table can hold the person's own address.
    """
    config = target.config
    assert config.subject is not None
    identifiers = {column for _kind, column in config.subject.identifiers}
    findings = []
    for edge in graph.edges:
        table = edge.child
        if edge.upward or not edge.is_foreign_key or table is graph.root:
            continue
        own = sorted(identifiers & {c.name for c in table.columns})
        parent_name = edge.parent.name.lower()
        if not own or any(parent_name in c.lower() for c in edge.columns):
            continue  # `candidate_id` → candidate reads as ownership; `support_rep_id` not
        name = qualified_name(table)
        column = ", ".join(edge.columns)
        findings.append(Finding(
            target.name, f"subject: {name}.{column}",
            f"{name} has identifier column(s) of its own ({', '.join(own)}) and is erased and "
            f"exported as the person's rows through {name}.{column} → "
            f"{qualified_name(edge.parent)}",
            f'if its rows are other people, declare [[subject.references]] table = "{name}" '
            f'column = "{edge.columns[0]}"', warning=True,
        ))  # fmt: skip
    return findings


def unreadable_clocks(catalog: Catalog, target: TargetDatabase) -> list[Finding]:
    """Warn about clock values that cannot be read as a point in time (never due).

    An epoch integer in a SQLite DATETIME column, `'15.11.2026'` as text, a MariaDB
    zero date: the due predicate leaves such rows alone, like NULL; `check` counts
    them (a full read of the column, so only here, not in every plan).
    """
    findings = []
    for rule in target.config.rules:
        if not rule.applies_to(target.name):
            continue
        clocks = [
            ("since", rule.table, rule.since),
            ("unless_after", rule.table, rule.unless_after),
        ]
        if rule.since_latest:
            latest = rule.since_latest
            clocks.append(("since_latest.column", latest.table, latest.column))
        for key, table_name, column_name in clocks:
            table = catalog.table(table_name)
            if column_name is None or table is None or column_name not in table.columns:
                continue
            column = table.columns[column_name]
            readable = readable_clock(column, catalog.dialect, rule.since_format)
            if readable is None:
                continue
            unreadable = catalog.connection.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(column.is_not(None), sa.not_(readable))
            ).scalar_one()
            if unreadable:
                how = f"as {rule.since_format}" if rule.since_format else "as a date"
                findings.append(
                    Finding(
                        target.name,
                        f"{rule.key}.{key}",
                        f"{unreadable:,} row(s) of {qualified_name(table)}.{column_name} hold "
                        f"a value that cannot be read {how}; they are never due (like NULL)",
                        "fix the values, or set since_format if the column holds epoch or "
                        "Julian numbers",
                        warning=True,
                    )
                )
    return findings


def raise_findings(findings: list[Finding]) -> None:
    """Stop with the first error finding (exit 2); `check` lists them all."""
    findings = [f for f in findings if not f.warning]
    if findings:
        more = f" (and {len(findings) - 1} more: run gdpr-sweep check)" if len(findings) > 1 else ""
        raise SchemaError(findings[0].line() + more)


def read_each(
    targets: list[TargetDatabase], read: Callable[[TargetDatabase, Catalog], T]
) -> Iterator[tuple[TargetDatabase, T | None, str | None]]:
    """Reflect each database in a read-only transaction and apply `read` to it.

    Yields (database, result, None), or (database, None, one-line error) for a database
    that cannot be reached or read: the others are still read.
    """
    for target in targets:
        value: T | None = None
        error: str | None = None
        try:
            with target.read_only() as connection:
                value = read(target, Catalog(connection))
        except DatabaseUnavailable as exc:
            error = str(exc)
        except sa.exc.DBAPIError as exc:
            error = f"database {target.name}: {describe_failure(exc, target.url)}"
        finally:
            target.dispose()
        yield target, value, error


def check_config(config: Config, databases: Iterable[str] | None = None) -> CheckResult:
    """Reflect every selected database and check the whole config against it."""

    def read(target: TargetDatabase, catalog: Catalog) -> list[Finding]:
        findings = check_database(catalog, target, config.rules)
        if any(not f.warning for f in findings):
            return findings
        return (
            findings + unreadable_clocks(catalog, target) + subject_graph_warnings(catalog, target)
        )

    result = CheckResult()
    for target, findings, error in read_each(select_databases(config, databases), read):
        if error is not None or findings is None:
            result.unreachable.append(error or f"database {target.name}: not read")
            continue
        result.findings.extend(findings)
        if not any(not f.warning for f in findings):
            result.passed.append(target.name)
    return result
