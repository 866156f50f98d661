"""`gdpr-sweep check`: the config against every database's reflected schema."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from .config import Config, Rule
from .engines import TargetDatabase, describe_failure, open_targets
from .errors import DatabaseUnavailable, SchemaError, UsageError
from .schema import Catalog, Finding, check_rule, check_subject


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


def raise_findings(findings: list[Finding]) -> None:
    """Stop with the first finding (exit 2); `check` lists them all."""
    if findings:
        more = f" (and {len(findings) - 1} more: run gdpr-sweep check)" if len(findings) > 1 else ""
        raise SchemaError(findings[0].line() + more)


def check_config(config: Config, databases: Iterable[str] | None = None) -> CheckResult:
    """Reflect every selected database and check the whole config against it."""
    result = CheckResult()
    for target in select_databases(config, databases):
        try:
            with target.read_only() as connection:
                findings = check_database(Catalog(connection), target, config.rules)
        except DatabaseUnavailable as exc:
            result.unreachable.append(str(exc))
            continue
        except sa.exc.DBAPIError as exc:
            reason = describe_failure(exc, target.url)
            result.unreachable.append(f"database {target.name}: {reason}")
            continue
        finally:
            target.dispose()
        result.findings.extend(findings)
        if not findings:
            result.passed.append(target.name)
    return result
