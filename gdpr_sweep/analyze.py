"""`analyze = true` (per database): refresh planner statistics after a run changed rows.

After a large purge the engine's statistics still describe the table as it was, and
the next night's plans (and the application's queries) are made on them. ANALYZE on
PostgreSQL and SQLite, ANALYZE TABLE on MariaDB, of each table the run changed rows
in (the rules' tables and their cascade tables), each in its own short transaction.
The time is reported apart from the rules' (`RunResult.analyze`).
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa


def analyze_statement(connection: sa.Connection, table: sa.Table) -> str:
    """The statement that refreshes `table`'s statistics, its name quoted."""
    quote = connection.dialect.identifier_preparer.quote
    name = quote(table.name) if not table.schema else f"{quote(table.schema)}.{quote(table.name)}"
    if connection.dialect.name in ("mysql", "mariadb"):
        return f"ANALYZE TABLE {name}"
    return f"ANALYZE {name}"


def analyze_tables(connection: sa.Connection, tables: list[sa.Table]) -> dict[str, Any]:
    """Analyze each table once; return what the summary shows (tables, seconds)."""
    started = time.perf_counter()
    seen: list[sa.Table] = []
    for table in tables:
        if any(t is table for t in seen):
            continue
        seen.append(table)
        with connection.begin():
            result = connection.exec_driver_sql(analyze_statement(connection, table))
            if result.returns_rows:
                result.all()  # MariaDB answers with a status row per table
    return {"tables": len(seen), "seconds": round(time.perf_counter() - started, 3)}
