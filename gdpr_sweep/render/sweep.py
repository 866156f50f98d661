"""What the sweep commands show: the plan, `check` findings, a run's outcome, `scan`, the demo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import todo_hint
from ..errors import ExitCode
from ..formats import format_name
from .console import markup_escape

if TYPE_CHECKING:  # Rich is imported when something is drawn: `run --quiet` never is
    from rich.console import Console

    from ..checks.check_config import CheckResult
    from ..checks.findings import Finding
    from ..engines import DatabaseFailure
    from ..plan import Plan
    from ..run_result import RunResult
    from ..scan import ScanResult


def partition_lines(plan: Plan) -> list[str]:
    """Per rule with partitions: each partition removed whole (bounds, rows) or batched
    (why). Bounds are the partition's own: from (inclusive) to (exclusive)."""
    lines = []
    for item in plan.items:
        if not item.partitions:
            continue
        removed = [p for p in item.partitions if p["action"] != "batch"]
        rows = sum(p["rows"] for p in removed)
        where = f"{item.database}: " if len({i.database for i in plan.items}) > 1 else ""
        lines.append(
            f"{where}rule {item.rule}: {len(removed)} partition(s) of {item.table} to "
            f"{removed[0]['action'] if removed else 'drop'} whole ({rows:,} rows), "
            f"{len(item.partitions) - len(removed)} batched"
        )
        for p in item.partitions:
            bounds = "default" if p["default"] else f"[{p['from'] or '-inf'}, {p['to'] or '+inf'})"
            if p["action"] == "batch":
                due = f", {p['due']:,} due" if p["due"] is not None else ""
                what = f"batch ({p['reason']}{due})"
            else:
                what = p["action"]
            lines.append(f"  {what:<28} {p['name']}  {bounds}  {p['rows']:,} rows")
    return lines


def print_plan(console: Console, plan: Plan, *, reviewing: bool = False) -> None:
    """Print the plan and what it counts: `plan` says it changed nothing; `apply`,
    reviewing the plan before it asks, says what applying it would change."""
    if plan.items:
        from .plan_view import print_plan_table

        print_plan_table(console, plan)
    else:
        console.print("No rules apply to the selected databases.")
    rows = plan.total_due
    rules = sum(1 for item in plan.items if item.due)
    counted = (
        f"{rows:,} rows due under {rules} rule(s) in "
        f"{len({i.database for i in plan.items})} database(s)"
    )
    for line in partition_lines(plan):
        console.print(markup_escape(line), highlight=False, soft_wrap=True)
    if reviewing:
        console.print(f"Applying this plan would change {counted}.")
    else:
        console.print(f"{counted}; nothing was changed.")
    print_failures(console, plan.failures)


def print_findings(
    console: Console, findings: list[Finding], checked: list[str], failures: list[DatabaseFailure]
) -> None:
    for finding in findings:
        mark = "[yellow]![/]" if finding.warning else "[red]✗[/]"
        console.print(f"{mark} {markup_escape(finding.line())}", highlight=False, soft_wrap=True)
    for failure in failures:
        console.print(
            f"[red]✗[/] {markup_escape(failure['error'])}", highlight=False, soft_wrap=True
        )
    for name in checked:
        console.print(f"[green]✓[/] database {name}: config matches the schema", highlight=False)


CHECK_FORMAT = format_name("check")


def check_document(result: CheckResult) -> dict[str, Any]:
    """`check --json`: each database passed, failed or unreadable; every finding."""

    def counts(name: str) -> dict[str, int]:
        mine = [f for f in result.findings if f.database == name]
        warnings = sum(1 for f in mine if f.warning)
        return {"errors": len(mine) - warnings, "warnings": warnings}

    databases = [
        {"database": name, "status": "passed" if name in result.passed else "failed"} | counts(name)
        for name in result.checked
    ] + [
        {"database": f["database"], "status": "unreadable", "errors": 0, "warnings": 0}
        for f in result.failures
    ]
    return _check_shape(
        result.exit_code,
        databases=databases,
        findings=[finding_json(f) for f in result.findings],
        failures=[dict(f) for f in result.failures],
    )


def finding_json(finding: Finding) -> dict[str, Any]:
    """One finding: names, counts and config values only, never a row's value."""
    return {
        "database": finding.database,
        "key_path": finding.key_path,
        "severity": "warning" if finding.warning else "error",
        "message": finding.message,
        "fix": finding.fix or None,
    }


def check_todos_document(keys: list[str]) -> dict[str, Any]:
    """`check --json` on a draft whose TODOs are unanswered: no database was read (exit 2)."""
    todos = [{"key_path": key, "answer_with": todo_hint(key)} for key in keys]
    return _check_shape(ExitCode.USAGE, todos=todos)


def check_error_document(error: str, exit_code: int) -> dict[str, Any]:
    """`check --json` on a config that cannot be used (unparseable, a bad key): one line."""
    return _check_shape(exit_code, error=error)


def _check_shape(
    exit_code: int,
    *,
    databases: list[dict[str, Any]] | None = None,
    findings: list[dict[str, Any]] | None = None,
    failures: list[dict[str, Any]] | None = None,
    todos: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Every `check --json` document has every key, whatever stopped the check."""
    return {
        "format": CHECK_FORMAT,
        "passed": exit_code == ExitCode.OK,
        "exit_code": int(exit_code),
        "error": error,
        "todos": todos or [],
        "databases": databases or [],
        "findings": findings or [],
        "failures": failures or [],
    }


def print_verify(console: Console, result: RunResult) -> None:
    """Print what `run --verify-only` counted: it has no run id, no batches, no audit."""
    from rich.table import Table

    due = sum(item.due for item in result.items)
    if due:
        outcome = f"{due:,} row(s) still due"
    else:  # with nothing due, a failure is a database that could not be counted
        outcome = "not every database could be counted" if result.failures else "nothing due"
    table = Table(
        title=f"gdpr-sweep verify only as of "
        f"{result.as_of.isoformat(timespec='seconds')}: {outcome}"
    )
    for header in ("database", "rule", "table", "action", "due", "held"):
        numeric = header in ("due", "held")
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for item in result.items:
        table.add_row(
            item.database, item.rule, item.table, item.action, f"{item.due:,}", f"{item.held:,}"
        )
    console.print(table)
    console.print(f"verify only, nothing changed: {outcome}")
    print_failures(console, result.failures)


def print_run(console: Console, result: RunResult) -> None:
    """Print what a run or apply did, rule by rule."""
    from rich.table import Table

    if result.run_id is None:  # only `run --verify-only` has no run (nothing recorded)
        print_verify(console, result)
        return
    table = Table(
        title=f"gdpr-sweep run {result.run_id} as of "
        f"{result.as_of.isoformat(timespec='seconds')}: {result.status}"
    )
    for header in (
        "database",
        "rule",
        "table",
        "action",
        "due",
        "held",
        "done",
        "left",
        "batches",
        "longest batch",
    ):
        numeric = header in ("due", "held", "done", "left", "batches", "longest batch")
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for item in result.items:
        table.add_row(
            item.database,
            item.rule,
            item.table,
            item.action,
            f"{item.due:,}",
            f"{item.held:,}",
            f"{item.done:,}",
            f"{item.left:,}",
            str(item.batches),
            f"{item.longest_batch_seconds:.2f} s",
        )
    console.print(table)
    for item in result.items:
        if item.partitions_removed:
            console.print(
                f"rule {markup_escape(item.rule)}: {item.partitions_removed} partition(s) "
                f"removed whole ({item.partition_rows:,} rows, {item.partition_seconds:.2f} s)",
                highlight=False,
            )
    for analyzed in result.analyze:
        console.print(
            f"analyze: database {markup_escape(analyzed['database'])}, "
            f"{analyzed['tables']} table(s), {analyzed['seconds']:.2f} s",
            highlight=False,
        )
    done = sum(item.done for item in result.items)
    trail = f"; audit trail: gdpr-sweep audit show {result.run_id}" if result.run_id else ""
    console.print(f"{done:,} rows done{trail}")
    if result.status == "incomplete":
        console.print(
            f"incomplete: {result.rows_left:,} rows left (--max-runtime); the next run carries on"
        )
    print_failures(console, result.failures)


def print_scan(console: Console, result: ScanResult) -> None:
    """Print `scan`'s findings and the databases it could not reach."""
    for finding in result.findings:
        console.print(
            f"[yellow]![/] {markup_escape(finding.message)}",
            highlight=False,
            soft_wrap=True,
        )
    for failure in result.failures:
        console.print(
            f"[red]✗[/] {markup_escape(failure['error'])}", highlight=False, soft_wrap=True
        )
    console.print(
        f"{len(result.findings)} finding(s) in {len(result.scanned)} database(s) scanned."
    )


def demo_files(
    database_file: Path, config_file: Path, key_file: Path, built: dt.date | None, day: dt.date
) -> str:
    """Where `demo` put its files, and whether the kept database was built for another day."""
    text = (
        f"Demo database: {database_file}\nDemo config:   {config_file}\n"
        f"Demo key:      {key_file} (a hash key for this demo only: never use it for real data)\n"
    )
    if built is not None and built != day:
        text += (
            f"\n(The demo database was built for {built:%Y-%m-%d} and is kept; "
            f"delete {database_file} to build it for this day.)\n"
        )
    return text


def demo_next_steps(lines: list[str], person: str) -> str:
    """The tour: lines to paste, one after the other (`person` is one of the demo's fake people)."""
    steps = "".join(f"  {line}\n" for line in lines)
    return (
        f"\nNext, a tour: paste these lines (the demo's people are made up; {person} is one):\n"
        f"{steps}"
    ).rstrip("\n")


def print_failures(console: Console, failures: list[DatabaseFailure]) -> None:
    """One line per database that failed, in red (its message names the database)."""
    for failure in failures:
        console.print(
            f"[bold red]failed[/]: {markup_escape(failure['error'])}",
            highlight=False,
            soft_wrap=True,
        )
