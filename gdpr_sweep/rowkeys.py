"""Rows by primary key: matching key lists in chunks, counting, and a foreign-key-safe order.

Erasure and replay act on a known, bounded set of rows (one person's) by their keys;
these are the pieces they share.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .catalog import Catalog
from .ordering import dependencies_first

RowKey = tuple[Any, ...]

#: Keys per statement: far below every engine's bound-parameter limit.
CHUNK = 500


def chunks(keys: list[RowKey]) -> list[list[RowKey]]:
    return [keys[i : i + CHUNK] for i in range(0, len(keys), CHUNK)]


def key_match(table: sa.Table, keys: list[RowKey]) -> ColumnElement[bool]:
    """The rows of `table` whose primary key is one of `keys` (composite keys too)."""
    pk = list(table.primary_key.columns)
    if len(pk) == 1:
        return pk[0].in_([k[0] for k in keys])
    return sa.tuple_(*pk).in_(keys)


def count_rows(connection: sa.Connection, table: sa.Table, *where: ColumnElement[bool]) -> int:
    return connection.execute(
        sa.select(sa.func.count()).select_from(table).where(*where)
    ).scalar_one()


def referencing_first(catalog: Catalog, tables: list[sa.Table]) -> list[sa.Table]:
    """Order `tables` so a table that refers to another comes before it.

    Deleting in this order never breaks a foreign key between them. In a cycle the
    first table of the given order goes first.
    """
    return dependencies_first(tables, lambda t: {id(r.child) for r in catalog.references_to(t)})
