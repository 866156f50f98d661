"""Reading one table for `export`: the session's text forms on PostgreSQL, every
column's reader (MariaDB's JSON columns found by their check, PostgreSQL's own type
names where SQLAlchemy has none), and the order its rows are read in.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from .columns import ColumnReader, column_reader, unwrap_domain


def prepare_session(connection: sa.Connection) -> None:
    """Fix the text forms read from PostgreSQL for this transaction only."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL IntervalStyle = 'iso_8601'")
        connection.exec_driver_sql("SET LOCAL DateStyle = 'ISO, YMD'")


_JSON_CHECK = re.compile(r"^\s*json_valid\(`((?:[^`]|``)+)`\)\s*$", re.IGNORECASE)


def mariadb_json_columns(connection: sa.Connection, table: sa.Table) -> frozenset[str]:
    """MariaDB's JSON is LONGTEXT with a `json_valid(col)` check: those columns."""
    if not any(isinstance(c.type, mysql.LONGTEXT) for c in table.columns):
        return frozenset()
    try:
        clauses = connection.execute(
            sa.text(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA = COALESCE(:schema, DATABASE()) "
                "AND TABLE_NAME = :table"
            ),
            {"schema": table.schema, "table": table.name},
        ).scalars()
        found = {m.group(1).replace("``", "`") for m in map(_JSON_CHECK.match, clauses) if m}
    except sa.exc.DBAPIError:  # MySQL: no TABLE_NAME there, but a real JSON type
        return frozenset()
    return frozenset(found)


def pg_type_names(connection: sa.Connection, table: sa.Table) -> dict[str, str]:
    """PostgreSQL's own names of the table's column types (`point`, `tsvector`)."""
    rows = connection.execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0 "
            "AND NOT a.attisdropped"
        ),
        {"table": connection.dialect.identifier_preparer.format_table(table)},
    )
    return {str(name): str(type_) for name, type_ in rows}


def _orderable(type_: sa.types.TypeEngine[Any]) -> bool:
    """Can PostgreSQL ORDER BY a column of this type? (json, point, xml: no)."""
    type_ = unwrap_domain(type_)
    if isinstance(type_, postgresql.ARRAY):
        return _orderable(type_.item_type)
    if isinstance(type_, sa.JSON):
        return isinstance(type_, postgresql.JSONB)
    return isinstance(
        type_,
        (
            sa.Integer,
            sa.Numeric,
            sa.String,
            sa.Date,
            sa.DateTime,
            sa.Time,
            sa.Interval,
            postgresql.INTERVAL,
            sa.Boolean,
            sa.Uuid,
            sa.LargeBinary,
            postgresql.INET,
            postgresql.CIDR,
            postgresql.MACADDR,
            postgresql.AbstractRange,
        ),
    )


def row_order(table: sa.Table, dialect: str) -> list[sa.Column[Any]]:
    """The primary key; else every column (on PostgreSQL every orderable one), so a
    table without a key is exported in a stable order rather than not at all."""
    if table.primary_key.columns:
        return list(table.primary_key.columns)
    if dialect != "postgresql":
        return list(table.columns)
    return [c for c in table.columns if _orderable(c.type)]


def readers(connection: sa.Connection, table: sa.Table) -> list[ColumnReader]:
    """Every column's reader, in the table's column order."""
    dialect = connection.dialect
    json_columns: frozenset[str] = frozenset()
    if dialect.name in ("mysql", "mariadb"):
        json_columns = mariadb_json_columns(connection, table)
    found = [column_reader(c, dialect, json_columns) for c in table.columns]
    if dialect.name == "postgresql" and any(r.type_name == "NULL" for r in found):
        names = pg_type_names(connection, table)
        found = [
            ColumnReader(r.name, names.get(r.name, r.type_name), r.expressions, r.decode)
            if r.type_name == "NULL"
            else r
            for r in found
        ]
    return found
