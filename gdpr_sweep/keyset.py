"""Keyset batching over a primary key of one or more columns, of any ordered type.

A batch is the key range `(last, upper]` in primary-key order. With a composite key
the comparison is on the whole key, in the key's column order:

- PostgreSQL and SQLite compare row values, `(a, b) > (:a, :b)`, which both engines
  serve from the primary key's index;
- MariaDB/MySQL do not use an index for a row-value range, so there the comparison is
  written out: `a > :a OR (a = :a AND b > :b)`, which its range optimiser does use.

Nothing here needs `max()` (PostgreSQL has none for `uuid`): a batch's upper key is the
last row of the next `batch_size` due keys, read as `ORDER BY key DESC LIMIT 1` over
them. Key values travel from the database back into the next statement unchanged; on
SQLite they are read and bound raw (no type processing), so a value stored in a form
SQLAlchemy would re-format (a timestamp written by another application) still compares
equal to itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from .rowkeys import RowKey


class Keyset:
    """The key columns of one table and the bound parameters of a batch's key range."""

    def __init__(self, table: sa.Table, columns: Sequence[sa.Column], dialect: str) -> None:
        if not columns:
            raise ValueError(f"table {table.name!r} has no primary key")
        self.table = table
        self.columns = list(columns)
        self.dialect = dialect
        self.raw = dialect == "sqlite"
        taken = {column.key for column in table.columns}
        self.last_names = [_unused(taken, f"gdpr_sweep_last_{i}") for i in range(len(columns))]
        self.upper_names = [_unused(taken, f"gdpr_sweep_upper_{i}") for i in range(len(columns))]

    def on(self, table: sa.Table, columns: Sequence[sa.Column]) -> Keyset:
        """The same key range over other columns of the same types (another table's
        copy of the key), bound to the same parameters: one `params()` serves both."""
        other = Keyset(table, columns, self.dialect)
        other.last_names, other.upper_names = self.last_names, self.upper_names
        return other

    @property
    def single(self) -> bool:
        return len(self.columns) == 1

    def bind(self, name: str, column: sa.Column) -> sa.BindParameter:
        return sa.bindparam(name, type_=NullType() if self.raw else column.type)

    def selected(self) -> list[ColumnElement]:
        """The key columns as a SELECT list (raw on SQLite)."""
        return [
            sa.type_coerce(c, NullType()).label(f"k{i}") if self.raw else c.label(f"k{i}")
            for i, c in enumerate(self.columns)
        ]

    def after_last(self) -> ColumnElement[bool]:
        """Key > the bound `last` key."""
        return self._compare(self.last_names, ">")

    def up_to_upper(self) -> ColumnElement[bool]:
        """Key <= the bound `upper` key."""
        return self._compare(self.upper_names, "<=")

    def params(self, last: RowKey | None, upper: RowKey | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for names, key in ((self.last_names, last), (self.upper_names, upper)):
            if key is not None:
                values.update(zip(names, key, strict=True))
        return values

    def upper_query(self, due: ColumnElement[bool], batch_size: int, first: bool) -> sa.Select:
        """The last key of the next `batch_size` due rows after `last` (no row: done)."""
        inner = sa.select(*self.selected()).where(due)
        if not first:
            inner = inner.where(self.after_last())
        batch = inner.order_by(*self.columns).limit(batch_size).subquery("batch")
        keys = [batch.c[f"k{i}"] for i in range(len(self.columns))]
        return sa.select(*keys).order_by(*(k.desc() for k in keys)).limit(1)

    def ordered_keys(self, where: ColumnElement[bool]) -> sa.Select:
        """Every key matching `where`, in key order (for streaming digests)."""
        return sa.select(*self.selected()).where(where).order_by(*self.columns)

    def _compare(self, names: list[str], op: str) -> ColumnElement[bool]:
        binds = [self.bind(n, c) for n, c in zip(names, self.columns, strict=True)]
        if self.single:
            return _op(self.columns[0], op, binds[0])
        if self.dialect not in ("mysql", "mariadb"):
            return _op(sa.tuple_(*self.columns), op, sa.tuple_(*binds))
        # a > x OR (a = x AND (b > y OR (b = y AND ...))), innermost last: the strict
        # part of `op` on every column but the last, which takes `op` itself.
        strict = ">" if op in (">", ">=") else "<"
        expression = _op(self.columns[-1], op, binds[-1])
        for column, bind in zip(reversed(self.columns[:-1]), reversed(binds[:-1]), strict=True):
            expression = sa.or_(_op(column, strict, bind), sa.and_(column == bind, expression))
        return expression


def _op(left: Any, op: str, right: Any) -> ColumnElement[bool]:
    return {
        ">": lambda: left > right,
        ">=": lambda: left >= right,
        "<": lambda: left < right,
        "<=": lambda: left <= right,
    }[op]()


def _unused(taken: set[str], name: str) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name
