"""`plan --sql` as text: SQL a reviewer can read, and run in a scratch copy.

Each rule in the order it runs: a comment saying what it is, then each statement with
when it runs, terminated by `;`, and beneath it one comment line per placeholder — its
value when it is a constant of the config or the as-of, else only what it stands for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..plan_sql import SqlPlan, Statement


def _one_line(text: str) -> str:
    return " ".join(text.split())


def sql_text(plan: SqlPlan) -> str:
    """The whole `plan --sql` output."""
    lines = [
        f"-- gdpr-sweep plan --sql as of {plan.as_of.isoformat()} ({plan.timezone}); "
        f"config {plan.config_digest}",
        "-- The statements apply will execute, compiled for each database; nothing was changed.",
        "-- Placeholders are written :name on every engine (the driver binds them as ? or "
        "%(name)s);",
        "-- keys and pseudonyms bound at run time are never shown, only what they stand for.",
    ]
    for item in plan.items:
        lines += [
            "",
            f"-- ==== database {item.database} ({item.dialect}) · rule {item.position + 1} of "
            f"{item.rules_in_database}: {_one_line(item.rule)}",
            f"-- {item.action} in {_one_line(item.table)} · due before {item.cutoff}"
            + (f" · basis: {_one_line(item.basis)}" if item.basis else ""),
        ]
        for statement in item.statements:
            lines += ["", *_statement_lines(statement)]
    for failure in plan.failures:
        lines += ["", f"-- failed: {_one_line(failure['error'])}"]
    return "\n".join(lines) + "\n"


def _statement_lines(statement: Statement) -> list[str]:
    lines = [f"-- {statement.when}", statement.sql.strip() + ";"]
    constants = []
    for parameter in statement.parameters:
        if parameter.structural:
            constants.append(f":{parameter.name} = {parameter.value}")
            continue
        value = f" = {parameter.value}" if parameter.value is not None else ""
        lines.append(f"--   :{parameter.name}{value}  ({_one_line(parameter.meaning)})")
    line = "--   constants:"
    for constant in constants:
        if len(line) + len(constant) > 96 and line != "--   constants:":
            lines.append(line.rstrip(","))
            line = "--   constants:"
        line += f" {constant},"
    if constants:
        lines.append(line.rstrip(","))
    return lines
