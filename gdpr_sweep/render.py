"""Render plain result objects for people: Rich tables on a terminal, plain text otherwise.

The only module besides `cli.py` that knows about Rich. Nothing rendered here holds a
value read from a row: plans and findings carry counts, names of tables, columns and
rules, and dates computed from the config.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Rich is imported when something is drawn: `run --quiet` never is
    from rich.console import Console
    from rich.table import Table

    from .checks.findings import Finding
    from .holds.store import Hold
    from .plan import Plan
    from .run_result import RunResult


def markup_escape(text: str) -> str:
    """`text` as Rich prints it literally: `[[subject.references]]` is not markup."""
    from rich.markup import escape

    return escape(text)


def plan_table(plan: Plan) -> Table:
    """Return the plan as a Rich table a DPO can read and sign off."""
    from rich.table import Table

    databases = sorted({item.database for item in plan.items})
    many = len(databases) > 1
    title = f"gdpr-sweep plan as of {plan.as_of.isoformat(timespec='seconds')} ({plan.timezone})"
    if not many and databases:
        controller = plan.items[0].controller
        title += f"\ndatabase {databases[0]}" + (
            f" · controller {controller}" if controller else ""
        )
    table = Table(
        title=title,
        caption=f"config {plan.config_digest[:19]}… · due: rows the rule acts on · "
        "held: due by time, kept by an exception",
    )
    if many:
        table.add_column("database", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("table", overflow="fold")
    table.add_column("action", no_wrap=True)
    table.add_column("after", no_wrap=True)
    table.add_column("due before", no_wrap=True)
    table.add_column("due", justify="right", no_wrap=True)
    table.add_column("held", justify="right", no_wrap=True)
    table.add_column("held because", overflow="fold")
    for item in plan.items:
        cutoff = dt.datetime.fromisoformat(item.cutoff).date().isoformat()
        reasons = "; ".join(
            f"{n} {reason}" + (_referenced_by(item.referenced_by) if reason == "referenced" else "")
            for reason, n in item.held_by.items()
            if n
        )
        row = [
            item.rule,
            item.table,
            item.action,
            item.after,
            cutoff,
            f"{item.due:,}",
            f"{item.held:,}",
            reasons,
        ]
        table.add_row(*([item.database, *row] if many else row))
    return table


def _referenced_by(tables: dict[str, int | None]) -> str:
    """` (by 69 rows of invoice)`: what keeps a due parent until those rows go."""
    parts = [
        f"{rows:,} row{'s' if rows != 1 else ''} of {table}" if rows is not None else table
        for table, rows in tables.items()
    ]
    return f" (by {', '.join(parts)})" if parts else ""


def print_plan(console: Console, plan: Plan) -> None:
    if plan.items:
        console.print(plan_table(plan))
    else:
        console.print("No rules apply to the selected databases.")
    rows = plan.total_due
    rules = sum(1 for item in plan.items if item.due)
    console.print(
        f"{rows:,} rows due under {rules} rule(s) in "
        f"{len({i.database for i in plan.items})} database(s); nothing was changed."
    )
    for failure in plan.failures:
        console.print(
            f"[bold red]failed[/]: {markup_escape(failure.error)}", highlight=False, soft_wrap=True
        )


def make_console() -> Console:
    """A console for stdout; when piped (cron mail, a file), wide enough not to wrap."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    return console


def print_findings(
    console: Console, findings: list[Finding], checked: list[str], failures: list[str]
) -> None:
    for finding in findings:
        mark = "[yellow]![/]" if finding.warning else "[red]✗[/]"
        console.print(f"{mark} {markup_escape(finding.line())}", highlight=False, soft_wrap=True)
    for failure in failures:
        console.print(f"[red]✗[/] {markup_escape(failure)}", highlight=False, soft_wrap=True)
    for name in checked:
        console.print(f"[green]✓[/] database {name}: config matches the schema", highlight=False)


class RichProgress:
    """A progress bar per rule, on a terminal (implements execute.Progress)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def rule_started(self, database: str, rule: str, due: int) -> object:
        return self.bars.add_task(f"{database} · {rule}", total=due)

    def advanced(self, token: object, rows: int) -> None:
        self.bars.advance(token, rows)  # type: ignore[arg-type]

    def rule_finished(self, token: object) -> None:
        pass


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
    for failure in result.failures:
        console.print(
            f"[bold red]failed[/]: {markup_escape(failure['error'])}",
            highlight=False,
            soft_wrap=True,
        )


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
    done = sum(item.done for item in result.items)
    trail = f"; audit trail: gdpr-sweep audit show {result.run_id}" if result.run_id else ""
    console.print(f"{done:,} rows done{trail}")
    if result.status == "incomplete":
        console.print(
            f"incomplete: {result.rows_left:,} rows left (--max-runtime); the next run carries on"
        )
    for failure in result.failures:
        console.print(
            f"[bold red]failed[/]: {markup_escape(failure['error'])}",
            highlight=False,
            soft_wrap=True,
        )


def print_audit_runs(console: Console, runs: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="gdpr-sweep runs (newest first)")
    for header in (
        "run",
        "command",
        "as of",
        "started (UTC)",
        "finished (UTC)",
        "status",
        "user@host",
    ):
        table.add_column(header, no_wrap=True)
    for run in runs:
        table.add_row(
            str(run["id"]),
            run["command"],
            run["as_of"][:19],
            run["started_at"][:19],
            (run["finished_at"] or "")[:19],
            run["status"],
            f"{run['user_name']}@{run['host']}",
        )
    console.print(table)


def print_audit_run(console: Console, run: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    from rich.table import Table

    console.print(
        f"run {run['id']}: {run['command']} as of {run['as_of']}, {run['status']}, "
        f"config {run['config_digest'][:19]}…, by {run['user_name']}@{run['host']}",
        highlight=False,
    )
    table = Table()
    for header in (
        "entry",
        "time (UTC)",
        "kind",
        "database",
        "rule",
        "table",
        "action",
        "rows",
        "keys",
    ):
        table.add_column(header, no_wrap=header != "keys")
    for e in entries:
        keys = f"({e['key_from'] or ''}, {e['key_to']}]" if e["key_to"] is not None else ""
        table.add_row(
            str(e["id"]),
            e["recorded_at"][:23],
            e["kind"],
            e["database_name"] or "",
            e["rule_id"] or "",
            e["table_name"] or "",
            e["action"] or "",
            "" if e["rows"] is None else f"{e['rows']:,}",
            keys,
        )
    console.print(table)


def print_holds(console: Console, holds: list[Hold], today: dt.date) -> None:
    from rich.table import Table

    table = Table(title="gdpr-sweep holds")
    for header in ("id", "status", "database", "table", "key", "until", "reason", "by", "since"):
        table.add_column(header, no_wrap=header not in ("reason",))
    for hold in holds:
        table.add_row(
            str(hold.id),
            hold.status_on(today),
            hold.database,
            hold.table,
            str(hold.key),
            str(hold.until or ""),
            hold.reason,
            hold.created_by,
            hold.created_at[:19],
        )
    console.print(table)


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)
