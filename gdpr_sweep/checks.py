"""`gdpr-sweep check`: the config against every database's reflected schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa

from .config import Config, Rule
from .engines import TargetDatabase, describe_failure, open_targets
from .errors import DatabaseUnavailable, SchemaError, UsageError
from .schema import Catalog, Finding, check_rule, check_subject, qualified_name
from .subject import build_graph

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


def unindexed_subject_links(catalog: Catalog, target: TargetDatabase) -> list[Finding]:
    """Warn about subject-graph columns without an index: erasing through them scans."""
    config = target.config
    if config.subject is None or not config.subject.identifiers:
        return []
    findings = []
    root = catalog.table(config.subject.root)
    assert root is not None
    graph = build_graph(catalog, config, config.subject.identifiers[0][1])
    needed = [(root, column, f"subject.identifiers.{kind}")
              for kind, column in config.subject.identifiers]  # fmt: skip
    needed += [(e.child, e.column, f"subject: {qualified_name(e.child)}.{e.column}")
               for e in graph.edges]  # fmt: skip
    for table, column, key in needed:
        if not catalog.is_indexed(table, column):
            findings.append(Finding(
                target.name, key,
                f"{qualified_name(table)}.{column} has no index, so finding a person's "
                "rows through it scans the whole table",
                f"add an index on {qualified_name(table)} ({column})", warning=True,
            ))  # fmt: skip
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
        return findings or unindexed_subject_links(catalog, target)

    result = CheckResult()
    for target, findings, error in read_each(select_databases(config, databases), read):
        if error is not None or findings is None:
            result.unreachable.append(error or f"database {target.name}: not read")
            continue
        result.findings.extend(findings)
        if not any(not f.warning for f in findings):
            result.passed.append(target.name)
    return result
