"""A problem `check` found, and how the other commands stop on the first one."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SchemaError


@dataclass(frozen=True)
class Finding:
    """One problem `check` found: where (database, config key) and how to fix it."""

    database: str
    key_path: str
    message: str
    fix: str = ""
    warning: bool = False  # worth fixing, but nothing would go wrong (exit 0)

    def line(self) -> str:
        text = f"database {self.database}: {self.key_path}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text


def raise_findings(findings: list[Finding]) -> None:
    """Stop with the first error finding (exit 2); `check` lists them all."""
    findings = [f for f in findings if not f.warning]
    if findings:
        more = f" (and {len(findings) - 1} more: run gdpr-sweep check)" if len(findings) > 1 else ""
        raise SchemaError(findings[0].line() + more)
