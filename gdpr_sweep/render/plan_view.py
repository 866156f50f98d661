"""The plan as a DPO reads it: on a terminal of any width, as Markdown, as CSV.

On a terminal the rule, table, action and due count are never cut or dropped: they
are measured and kept whole (no `1,…`); the other columns wrap. When the whole table
does not fit the terminal, a compact table stacks rule over table and the timing over
the reasons; when even that does not fit, each rule is a block of lines. The legal
basis is shown in every layout.

`--format md` gives a table per database with the same columns; `--format csv` one row
per item with a header (RFC 4180, written by the csv module), numbers without
separators, the cutoff in full.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Rich is imported when something is drawn
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

    from ..plan import Plan, PlanItem

CAPTION = "due: rows the rule acts on · held: due by time, kept by an exception"


def due_before(item: PlanItem) -> str:
    return dt.datetime.fromisoformat(item.cutoff).date().isoformat()


def held_because(item: PlanItem) -> str:
    """`1 legal hold; 2 referenced (by 69 rows of invoice)`."""
    return "; ".join(
        f"{n} {reason}" + (_referenced_by(item.referenced_by) if reason == "referenced" else "")
        for reason, n in item.held_by.items()
        if n
    )


def _referenced_by(tables: dict[str, int | None]) -> str:
    """` (by 69 rows of invoice)`: what keeps a due parent until those rows go."""
    parts = [
        f"{rows:,} row{'s' if rows != 1 else ''} of {table}" if rows is not None else table
        for table, rows in tables.items()
    ]
    return f" (by {', '.join(parts)})" if parts else ""


def plan_title(plan: Plan) -> str:
    title = f"gdpr-sweep plan as of {plan.as_of.isoformat(timespec='seconds')} ({plan.timezone})"
    databases = sorted({item.database for item in plan.items})
    if len(databases) == 1:
        controller = plan.items[0].controller
        title += f"\ndatabase {databases[0]}" + (
            f" · controller {controller}" if controller else ""
        )
    return title


# --- the terminal ----------------------------------------------------------------------


def plan_renderable(plan: Plan, width: int) -> RenderableType:
    """The widest layout that keeps rule, table, action and due whole in `width` columns."""
    for layout, fixed, room in (
        (_full_table, _FULL_FIXED, 40),
        (_compact_table, _COMPACT_FIXED, 24),
    ):
        # Enough room for the columns that wrap to stay readable, and drawn whole.
        if _fixed_width(plan, fixed) + room > width:
            continue
        table = layout(plan)
        if _keeps_key_columns(table, plan, width):
            return table
    return _blocks(plan)


#: The columns each table never wraps, and the values they show.
_FULL_FIXED = ("database", "rule", "table", "action", "after", "due before", "due", "held")
_COMPACT_FIXED = ("rule / table", "action", "due", "held")


def _fixed_width(plan: Plan, headers: tuple[str, ...]) -> int:
    """The width of the columns that never wrap: content, padding and a rule each."""
    from rich.cells import cell_len

    many = _many(plan)

    def values(header: str, item: PlanItem) -> list[str]:
        return {
            "database": [item.database],
            "rule": [item.rule],
            "table": [item.table],
            "rule / table": [item.rule, item.table, *([item.database] if many else [])],
            "action": [item.action],
            "after": [item.after],
            "due before": [due_before(item)],
            "due": [f"{item.due:,}"],
            "held": [f"{item.held:,}"],
        }[header]

    shown = [h for h in headers if h != "database" or many]
    widths = [
        max([cell_len(h), *(cell_len(v) for item in plan.items for v in values(h, item))])
        for h in shown
    ]
    return sum(widths) + 3 * len(shown) + 1


def plan_table(plan: Plan) -> Table:
    """The full table (every column its own), as a wide terminal shows it."""
    return _full_table(plan)


def _keeps_key_columns(table: Table, plan: Plan, width: int) -> bool:
    """Drawn `width` wide, does every item keep its rule, action and due count whole on
    one line, and its table whole? (Rich cuts a column that cannot wrap when nothing
    else can give way: drawing it is the one sure test.)"""
    from rich.console import Console

    probe = Console(width=width, file=io.StringIO(), color_system=None, highlight=False)
    with probe.capture() as captured:
        probe.print(table)
    lines = captured.get().splitlines()
    for item in plan.items:
        due = re.compile(rf"(?<![\d,]){re.escape(f'{item.due:,}')}(?![\d,])")
        if not any(
            item.rule in line and item.action in line and due.search(line) for line in lines
        ):
            return False
        if not any(item.table in line for line in lines):
            return False
    return True


def _many(plan: Plan) -> bool:
    return len({item.database for item in plan.items}) > 1


def _text(value: str) -> Text:
    from rich.text import Text

    return Text(value)  # config text is shown as written, never read as markup


def _full_table(plan: Plan) -> Table:
    from rich.table import Table

    table = Table(title=plan_title(plan), caption=_caption(plan))
    if _many(plan):
        table.add_column("database", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("table", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("after", no_wrap=True)
    table.add_column("due before", no_wrap=True)
    table.add_column("due", justify="right", no_wrap=True)
    table.add_column("held", justify="right", no_wrap=True)
    table.add_column("held because", overflow="fold")
    table.add_column("legal basis", overflow="fold")
    for item in plan.items:
        row: list[str | Text] = [
            _text(item.rule),
            _text(item.table),
            item.action,
            item.after,
            due_before(item),
            f"{item.due:,}",
            f"{item.held:,}",
            _text(held_because(item)),
            _text(item.basis or ""),
        ]
        table.add_row(*([_text(item.database), *row] if _many(plan) else row))
    return table


def _compact_table(plan: Plan) -> Table:
    """Rule over table (and database); when, legal basis and reasons in one column."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=plan_title(plan), caption=_caption(plan), box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("rule / table", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("due", justify="right", no_wrap=True)
    table.add_column("held", justify="right", no_wrap=True)
    table.add_column("when · legal basis · held because", overflow="fold")
    for item in plan.items:
        where = Text(item.rule)
        where.append("\n" + item.table, style="dim")
        if _many(plan):
            where.append("\n" + item.database, style="dim")
        details = Text(f"after {item.after}, due before {due_before(item)}")
        if item.basis:
            details.append(f"\nbasis: {item.basis}")
        if held_because(item):
            details.append(f"\nheld: {held_because(item)}")
        table.add_row(where, item.action, f"{item.due:,}", f"{item.held:,}", details)
    return table


def _blocks(plan: Plan) -> RenderableType:
    """One block of lines per rule, for a terminal narrower than any table."""
    from rich.console import Group
    from rich.text import Text

    lines: list[RenderableType] = [Text(plan_title(plan), style="bold")]
    database = None
    for item in plan.items:
        if _many(plan) and item.database != database:
            database = item.database
            controller = f" · controller {item.controller}" if item.controller else ""
            lines += [Text(""), Text(f"database {database}{controller}", style="bold underline")]
        lines.append(Text(""))
        lines.append(Text(item.rule, style="bold"))
        lines.append(Text(f"  {item.action} in {item.table}"))
        lines.append(Text(f"  due {item.due:,} · held {item.held:,}"))
        lines.append(Text(f"  after {item.after}, due before {due_before(item)}"))
        if item.basis:
            lines.append(Text(f"  legal basis: {item.basis}"))
        if held_because(item):
            lines.append(Text(f"  held: {held_because(item)}"))
    lines.append(Text(""))
    lines.append(Text(_caption(plan), style="dim"))
    return Group(*lines)


def _caption(plan: Plan) -> str:
    return f"config {plan.config_digest[:19]}… · {CAPTION}"


def print_plan_table(console: Console, plan: Plan) -> None:
    console.print(plan_renderable(plan, console.width))


# --- Markdown and CSV ------------------------------------------------------------------

MD_HEADERS = (
    "rule",
    "table",
    "action",
    "after",
    "due before",
    "due",
    "held",
    "held because",
    "legal basis",
)


def _md_cell(text: str) -> str:
    """A Markdown table cell: one line, `|` and `\\` escaped."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def plan_markdown(plan: Plan) -> str:
    """The plan for a sign-off document: a table per database, the same columns."""
    lines = [
        f"# gdpr-sweep plan as of {plan.as_of.isoformat(timespec='seconds')} ({plan.timezone})",
        "",
        f"Config `{plan.config_digest}`. {CAPTION.capitalize()}. Nothing was changed.",
    ]
    for database in dict.fromkeys(item.database for item in plan.items):
        items = [item for item in plan.items if item.database == database]
        controller = items[0].controller
        lines += [
            "",
            f"## database {_md_cell(database)}"
            + (f" · controller {_md_cell(controller)}" if controller else ""),
            "",
            "| " + " | ".join(MD_HEADERS) + " |",
            "|" + "|".join("---:" if h in ("due", "held") else "---" for h in MD_HEADERS) + "|",
        ]
        for item in items:
            cells = [
                item.rule,
                item.table,
                item.action,
                item.after,
                due_before(item),
                f"{item.due:,}",
                f"{item.held:,}",
                held_because(item),
                item.basis or "",
            ]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    rules = sum(1 for item in plan.items if item.due)
    databases = len({item.database for item in plan.items})
    lines += [
        "",
        f"**{plan.total_due:,} rows due under {rules} rule(s) in {databases} database(s).**",
    ]
    for failure in plan.failures:
        lines.append(f"\n**Failed:** {_md_cell(failure['error'])}")
    return "\n".join(lines) + "\n"


CSV_HEADERS = (
    "database",
    "controller",
    "rule",
    "table",
    "action",
    "after",
    "due_before",
    "cutoff",
    "due",
    "held",
    "held_because",
    "basis",
)


def plan_csv(plan: Plan) -> str:
    """One row per item (database and rule), a header first; CRLF line ends (RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADERS)
    for item in plan.items:
        writer.writerow(
            [
                item.database,
                item.controller or "",
                item.rule,
                item.table,
                item.action,
                item.after,
                due_before(item),
                item.cutoff,
                item.due,
                item.held,
                held_because(item),
                item.basis or "",
            ]
        )
    return out.getvalue()
