"""Read a table's range partitions on its clock column from the engine's catalog.

PostgreSQL: declarative `PARTITION BY RANGE (column)` (pg_partman's native sets are
such tables), one level: each partition's bounds come from `pg_get_expr(relpartbound)`
(`FOR VALUES FROM ('…') TO ('…')`, `MINVALUE`/`MAXVALUE`, `DEFAULT`). A partition that
is itself partitioned is listed as not removable whole (`leaf` false).

MariaDB: `PARTITION BY RANGE COLUMNS (column)`, and `PARTITION BY RANGE (TO_DAYS(column))`
or `(YEAR(column))`, from information_schema.PARTITIONS: each partition holds the rows
below its `VALUES LESS THAN` and at or above the previous partition's (the first is
unbounded below).

A bound is kept as the engine wrote it and reaches SQL only as a bound parameter,
cast to the column's type (or through FROM_DAYS / MAKEDATE), so the engine itself
compares it with the cutoff and with the rows: `lower` / `upper` are SQL expressions
of the column's type, None when unbounded. Any other partitioning (LIST, HASH, a key
on another column or an expression) gives no partitions: the rule takes the row path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement


@dataclass(frozen=True)
class Partition:
    """One range partition of a partitioned table, in bound order."""

    name: str
    schema: str | None  # PostgreSQL: the partition's own schema
    lower_text: str | None  # the bound as the catalog shows it; None: unbounded
    upper_text: str | None
    lower: ColumnElement | None  # the same bound as SQL of the column's type
    upper: ColumnElement | None
    default: bool = False
    leaf: bool = True  # False: itself partitioned (PostgreSQL), never removed whole

    def rows(self, column: sa.Column) -> ColumnElement[bool]:
        """The rows of the table that are in this partition (by its bounds)."""
        parts = []
        if self.lower is not None:
            parts.append(column >= self.lower)
        if self.upper is not None:
            parts.append(column < self.upper)
        return sa.and_(sa.true(), *parts)


def range_partitions(connection: sa.Connection, table: sa.Table, column: str) -> list[Partition]:
    """The range partitions of `table` on `column`, or [] when it is not so partitioned."""
    dialect = connection.dialect.name
    try:
        if dialect == "postgresql":
            return _postgresql(connection, table, column)
        if dialect in ("mysql", "mariadb"):
            return _mariadb(connection, table, column)
    except ValueError:
        return []  # a bound we do not read (not a literal): the row path, as always
    return []  # SQLite has no partitions


_PG_KEY = """
SELECT pg_get_partkeydef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = COALESCE(%(schema)s, current_schema()) AND c.relname = %(name)s
  AND c.relkind = 'p'
"""

_PG_CHILDREN = """
SELECT cn.nspname, c.relname, c.relkind, pg_get_expr(c.relpartbound, c.oid)
FROM pg_class p
JOIN pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_inherits i ON i.inhparent = p.oid
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace cn ON cn.oid = c.relnamespace
WHERE pn.nspname = COALESCE(%(schema)s, current_schema()) AND p.relname = %(name)s
"""

# FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')
_PG_BOUND = re.compile(r"^FOR VALUES FROM \((.*)\) TO \((.*)\)$", re.S)
_QUOTED = re.compile(r"^'((?:[^']|'')*)'$", re.S)


def _postgresql(connection: sa.Connection, table: sa.Table, column: str) -> list[Partition]:
    params = {"schema": table.schema, "name": table.name}
    key = connection.exec_driver_sql(_PG_KEY, params).scalar()
    if key is None or not _is_key_on(key, column):
        return []
    type_ = table.columns[column].type
    partitions = []
    for schema, name, kind, bound in connection.exec_driver_sql(_PG_CHILDREN, params).all():
        if bound == "DEFAULT":
            partitions.append(Partition(name, schema, None, None, None, None, default=True))
            continue
        match = _PG_BOUND.match(bound or "")
        if match is None:
            return []  # not a one-column range: no partition path at all
        lower_text, upper_text = (_pg_value(v) for v in match.groups())
        partitions.append(
            Partition(
                name,
                schema,
                lower_text,
                upper_text,
                _typed(lower_text, type_),
                _typed(upper_text, type_),
                leaf=kind != "p",
            )
        )
    return sorted(partitions, key=_order)


def _is_key_on(key: str, column: str) -> bool:
    """`RANGE (created_at)` / `RANGE ("Created")`: a one-column range key on `column`."""
    match = re.fullmatch(r'RANGE \((?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*))\)', key)
    if match is None:
        return False
    quoted, bare = match.groups()
    return (quoted.replace('""', '"') if quoted is not None else bare) == column


def _pg_value(text: str) -> str | None:
    """One bound value: a quoted literal's text, or None for MINVALUE/MAXVALUE."""
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    quoted = _QUOTED.match(text)
    if quoted is None:
        raise ValueError(f"unexpected partition bound {text!r}")
    return quoted.group(1).replace("''", "'")


def _typed(text: str | None, type_: sa.types.TypeEngine) -> ColumnElement | None:
    if text is None:
        return None
    return sa.cast(sa.bindparam(None, text, type_=sa.String), type_)


def _order(partition: Partition) -> tuple[int, str]:
    # Catalog order is not bound order; the bounds' own text sorts as dates do only for
    # ISO text, so order is only used for display: the default last.
    return (1 if partition.default else 0, partition.lower_text or "")


_MARIADB_PARTITIONS = """
SELECT PARTITION_NAME, PARTITION_METHOD, PARTITION_EXPRESSION, PARTITION_DESCRIPTION,
       SUBPARTITION_NAME
FROM information_schema.PARTITIONS
WHERE TABLE_SCHEMA = COALESCE(%(schema)s, DATABASE()) AND TABLE_NAME = %(name)s
  AND PARTITION_NAME IS NOT NULL
ORDER BY PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION
"""


def _mariadb(connection: sa.Connection, table: sa.Table, column: str) -> list[Partition]:
    rows = connection.exec_driver_sql(
        _MARIADB_PARTITIONS, {"schema": table.schema, "name": table.name}
    ).all()
    if not rows:
        return []
    method, expression = rows[0][1], rows[0][2]
    quoted = "`" + column.replace("`", "``") + "`"
    if method == "RANGE COLUMNS" and expression == quoted:
        kind = "columns"
    elif method == "RANGE" and expression.lower() == f"to_days({quoted.lower()})":
        kind = "to_days"
    elif method == "RANGE" and expression.lower() == f"year({quoted.lower()})":
        kind = "year"
    else:
        return []
    type_ = table.columns[column].type
    partitions: list[Partition] = []
    seen: set[str] = set()
    previous: tuple[str | None, ColumnElement | None] = (None, None)
    for name, _, _, description, _sub in rows:
        if name in seen:
            continue  # one row per subpartition
        seen.add(name)
        upper_text, upper = _mariadb_bound(kind, description, type_)
        partitions.append(Partition(name, None, previous[0], upper_text, previous[1], upper))
        previous = (upper_text, upper)
    return partitions


def _mariadb_bound(
    kind: str, description: str, type_: sa.types.TypeEngine
) -> tuple[str | None, ColumnElement | None]:
    if description == "MAXVALUE":
        return None, None
    if kind == "columns":
        quoted = _QUOTED.match(description)
        if quoted is None:
            raise ValueError(f"unexpected partition bound {description!r}")
        text = quoted.group(1).replace("''", "'")
        return text, _typed(text, type_)
    number = int(description)  # ValueError: not a number (the row path)
    if kind == "to_days":
        upper = sa.func.from_days(sa.bindparam(None, number, type_=sa.Integer))
    else:
        upper = sa.func.makedate(sa.bindparam(None, number, type_=sa.Integer), 1)
    text = connection_free_text(kind, number)
    return text, sa.cast(upper, sa.Date)


def connection_free_text(kind: str, number: int) -> str:
    """The bound of a TO_DAYS / YEAR partition as a date, for the plan and the trail."""
    import datetime as dt

    if kind == "year":
        return f"{number:04d}-01-01"
    # TO_DAYS('0000-01-01') is 1 in MariaDB's proleptic calendar; date.fromordinal(1)
    # is 0001-01-01, whose TO_DAYS is 366.
    return dt.date.fromordinal(number - 365).isoformat()


def attached_partitions(connection: sa.Connection, table: sa.Table) -> set[tuple[str | None, str]]:
    """(schema, name) of every partition attached to `table` now, in one catalog query
    (MariaDB: schema None, as `range_partitions` gives it)."""
    params = {"schema": table.schema, "name": table.name}
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(_PG_CHILDREN, params).all()
        return {(schema, name) for schema, name, _, _ in rows}
    rows = connection.exec_driver_sql(_MARIADB_PARTITIONS, params).all()
    return {(None, row[0]) for row in rows}
