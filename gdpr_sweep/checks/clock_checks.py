"""Count the clock values `check` cannot read as a point in time (never due)."""

from __future__ import annotations

import sqlalchemy as sa

from ..catalog import Catalog, qualified_name
from ..columns import readable_clock
from ..engines import TargetDatabase
from .findings import Finding


def unreadable_clocks(catalog: Catalog, target: TargetDatabase) -> list[Finding]:
    """Warn about clock values that cannot be read as a point in time (never due).

    An epoch integer in a SQLite DATETIME column, `'15.11.2026'` as text, a MariaDB
    zero date: the due predicate leaves such rows alone, like NULL; `check` counts
    them (a full read of the column, so only here, not in every plan).
    """
    findings = []
    for rule in target.config.rules:
        if not rule.applies_to(target.name):
            continue
        clocks = [
            ("since", rule.table, rule.since),
            ("unless_after", rule.table, rule.unless_after),
        ]
        if rule.since_latest:
            latest = rule.since_latest
            clocks.append(("since_latest.column", latest.table, latest.column))
        for key_path, table_name, column_name in clocks:
            table = catalog.table(table_name)
            if column_name is None or table is None or column_name not in table.columns:
                continue
            column = table.columns[column_name]
            readable = readable_clock(column, catalog.dialect, rule.since_format)
            if readable is None:
                continue
            unreadable = catalog.connection.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(column.is_not(None), sa.not_(readable))
            ).scalar_one()
            if unreadable:
                how = f"as {rule.since_format}" if rule.since_format else "as a date"
                findings.append(
                    Finding(
                        target.name,
                        f"{rule.key_path}.{key_path}",
                        f"{unreadable:,} row(s) of {qualified_name(table)}.{column_name} hold "
                        f"a value that cannot be read {how}; they are never due (like NULL)",
                        "fix the values, or set since_format if the column holds epoch or "
                        "Julian numbers",
                        warning=True,
                    )
                )
    return findings
