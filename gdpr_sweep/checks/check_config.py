"""`gdpr-sweep check`: the whole config against every selected database's reflected schema."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..catalog import Catalog
from ..config import Config, Rule
from ..engines import DatabaseFailure, TargetDatabase, read_each, select_databases
from ..errors import ExitCode
from .clock_checks import unreadable_clocks
from .findings import Finding
from .rule_checks import check_rule
from .subject_checks import check_subject, subject_graph_warnings


@dataclass
class CheckResult:
    """Findings per database, the databases read and those that passed, and those not read."""

    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    failures: list[DatabaseFailure] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """2 when any finding is an error, else 3 when a database was not read, else 0."""
        if any(not finding.warning for finding in self.findings):
            return ExitCode.USAGE
        return ExitCode.PARTIAL if self.failures else ExitCode.OK


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


def check_config(config: Config, databases: Iterable[str] | None = None) -> CheckResult:
    """Reflect every selected database and check the whole config against it."""

    def read(target: TargetDatabase, catalog: Catalog) -> list[Finding]:
        findings = check_database(catalog, target, config.rules)
        if any(not f.warning for f in findings):
            return findings
        return (
            findings + unreadable_clocks(catalog, target) + subject_graph_warnings(catalog, target)
        )

    done, failures = read_each(select_databases(config, databases), read)
    result = CheckResult(failures=failures)
    for target, findings in done:
        result.checked.append(target.name)
        result.findings.extend(findings)
        if not any(not f.warning for f in findings):
            result.passed.append(target.name)
    return result
