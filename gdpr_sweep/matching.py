"""Exact equality on every engine, whatever the column's collation.

An equality the tool generates (`only`, `--subject`, links, the key of `since_latest`)
must match exactly the same rows on SQLite, PostgreSQL and MariaDB. Collations differ:

- MariaDB/MySQL compare text under the column's collation: with the common
  `utf8mb4_general_ci`, `'closed'` equals `'CLOSED'`, `'jorg@x'` equals `'jörg@x'`,
  and (PAD SPACE) `'jorg@x '`; even `utf8mb4_bin` ignores trailing spaces.
- SQLite compares under the column's declared collation (`COLLATE NOCASE`, `RTRIM`).
- PostgreSQL's deterministic collations (every default one) compare byte-exactly, but
  a nondeterministic ICU collation (`und-u-ks-level2`) or `citext` does not.

So a text comparison is written twice: the collated one, which the column's index
serves, and a binary one that filters what it found. On MariaDB the binary form
compares UTF-8 bytes (`CAST(CONVERT(x USING utf8mb4) AS BINARY)`), so a column in
another character set still equals its own value; on SQLite it is `COLLATE BINARY`; on
PostgreSQL the value as `text COLLATE "C"`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


class _Utf8Bytes(sa.sql.expression.ColumnElement[bytes]):
    """MariaDB/MySQL: the UTF-8 bytes of a text expression, compared without collation."""

    inherit_cache = True
    type = sa.LargeBinary()
    # The wrapped expression is part of the statement's cache key.
    _traverse_internals = [("wrapped", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, expression: ColumnElement[Any]) -> None:
        self.wrapped = expression

    @property
    def _from_objects(self) -> list[Any]:  # type: ignore[override]
        return self.wrapped._from_objects


@compiles(_Utf8Bytes)
def _compile_utf8_bytes(element: _Utf8Bytes, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(element.wrapped, **kw)
    return f"CAST(CONVERT({inner} USING utf8mb4) AS BINARY)"


def is_text(column: ColumnElement[Any]) -> bool:
    return isinstance(column.type, (sa.String, sa.Text, sa.Enum))


def _binary(expression: ColumnElement[Any], dialect: str) -> ColumnElement[Any] | None:
    """The expression in a form that compares byte for byte (None: it already does)."""
    if dialect in ("mysql", "mariadb"):
        return _Utf8Bytes(expression)
    if dialect == "sqlite":
        return expression.collate("BINARY")
    if dialect == "postgresql":
        # Deterministic collations already compare bytes, but a nondeterministic ICU
        # collation (or citext) does not: as text under "C" it does.
        return sa.cast(expression, sa.Text).collate("C")
    return None


def _value(column: ColumnElement[Any], value: Any) -> ColumnElement[Any]:
    if isinstance(value, ColumnElement):
        return value
    return sa.bindparam(None, value, type_=column.type)


def equals(column: ColumnElement[Any], value: Any, dialect: str) -> ColumnElement[bool]:
    """`column = value`, exactly (a bound value, or another column or expression)."""
    other = _value(column, value)
    collated = column == other
    if not is_text(column):
        return collated
    left, right = _binary(column, dialect), _binary(other, dialect)
    if left is None or right is None:
        return collated
    if dialect == "sqlite":
        return sa.and_(collated, left == other)  # the left operand's COLLATE decides
    return sa.and_(collated, left == right)


def in_values(
    column: ColumnElement[Any], values: Sequence[Any], dialect: str
) -> ColumnElement[bool]:
    """`column IN (values)`, exactly."""
    if len(values) == 1:
        return equals(column, values[0], dialect)
    collated = column.in_(list(values))
    left = _binary(column, dialect) if is_text(column) else None
    if left is None:
        return collated
    if dialect == "sqlite":
        return sa.and_(collated, left.in_(list(values)))
    return sa.and_(collated, left.in_([_binary(_value(column, v), dialect) for v in values]))


def in_select(
    column: ColumnElement[Any],
    selected: ColumnElement[Any],
    where: ColumnElement[bool],
    dialect: str,
) -> ColumnElement[bool]:
    """`column IN (SELECT selected WHERE where)`, exactly."""
    collated = column.in_(sa.select(selected).where(where))
    if not (is_text(column) or is_text(selected)):
        return collated
    left = _binary(column, dialect)
    if left is None:
        return collated
    if dialect == "sqlite":
        return sa.and_(collated, left.in_(sa.select(selected).where(where)))
    right = _binary(selected, dialect)
    assert right is not None
    return sa.and_(collated, left.in_(sa.select(right).where(where)))


def equals_ignoring_case(
    column: ColumnElement[Any], value: str, dialect: str
) -> ColumnElement[bool]:
    """Rows whose text equals `value` only case-insensitively (and trimmed): likely typos."""
    folded = sa.func.lower(sa.func.trim(sa.type_coerce(column, sa.String)), type_=sa.String)
    # The folded comparison is exact too: `jörg` is not a typo of `jorg`.
    near = equals(folded, value.strip().lower(), dialect)
    return sa.and_(near, sa.not_(equals(column, value, dialect)))
