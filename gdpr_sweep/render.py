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
    local = plan.as_of
    table = Table(
        title=f"gdpr-sweep plan as of {local.isoformat(timespec='seconds')} ({plan.timezone})",
        caption=f"config {plan.config_digest[:19]}…  ·  due = rows the rule would act on; "
        "held = due by time but kept by an exception",
        show_lines=False,
    )
    for header, justify in (
        ("database", "left"),
        ("rule", "left"),
        ("table", "left"),
        ("action", "left"),
        ("after", "left"),
        ("due before", "left"),
        ("due", "right"),
        ("held", "right"),
        ("held because", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for item in plan.items:
        cutoff = dt.datetime.fromisoformat(item.cutoff).date().isoformat()
        reasons = "; ".join(f"{n} {reason}" for reason, n in item.held_by.items() if n)
        table.add_row(
            item.database,
            item.rule,
            item.table,
            item.action,
            item.after,
            cutoff,
            f"{item.due:,}",
            f"{item.held:,}",
            reasons,
        )
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
        console.print(f"[bold red]failed[/]: {failure.error}", highlight=False)


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
