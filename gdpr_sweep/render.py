"""Render plain result objects for people: Rich tables on a terminal, plain text otherwise.

The only module besides `cli.py` that knows about Rich. Nothing rendered here holds a
value read from a row: plans and findings carry counts, names of tables, columns and
rules, and dates computed from the config.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from .plan import Plan
from .schema import Finding


def plan_table(plan: Plan) -> Table:
    """Return the plan as a Rich table a DPO can read and sign off."""
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
        reasons = "; ".join(f"{n} {reason}" for reason, n in item.held_by.items() if n)
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
        console.print(f"[bold red]failed[/]: {failure.error}", highlight=False, soft_wrap=True)


def make_console() -> Console:
    """A console for stdout; when piped (cron mail, a file), wide enough not to wrap."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    return console


def print_findings(
    console: Console, findings: list[Finding], checked: list[str], failures: list[str]
) -> None:
    for finding in findings:
        console.print(f"[red]✗[/] {finding.line()}", highlight=False, soft_wrap=True)
    for failure in failures:
        console.print(f"[red]✗[/] {failure}", highlight=False, soft_wrap=True)
    for name in checked:
        console.print(f"[green]✓[/] database {name}: config matches the schema", highlight=False)


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)
