"""Anonymisation strategies as SQL expressions, per dialect.

Each strategy has two faces that must agree:
- `replacement(...)`: the value an UPDATE writes (for `hash`, computed in Python by
  `hash_value` and bound per batch, since HMAC is not portable SQL);
- `pending(...)`: a predicate that is true while a column still holds the original,
  so an anonymised row is recognisably done and a second run finds nothing due.

A column counts as done when it is NULL or already equals its replacement: `null` is
done when NULL, `redact` when it holds the placeholder, `year`/`month` when the value
equals its own truncation, `hash` when it carries the `hmac:` marker.
"""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .columns import ColumnKind, column_kind, string_length

REDACTED = "[redacted]"
HASH_PREFIX = "hmac:"
#: The shortest column a keyed hash may be fitted into: the marker plus 8 hex digits
#: (32 bits) keeps accidental collisions between pseudonyms rare in a table.
MIN_HASH_LENGTH = len(HASH_PREFIX) + 8


def redacted_text(column: sa.Column) -> str:
    """Return the placeholder, cut to the column's length."""
    length = string_length(column)
    return REDACTED if length is None else REDACTED[:length]


def hash_value(value: object, key: bytes, length: int | None) -> str | None:
    """Return the keyed pseudonym of `value` (HMAC-SHA256, hex), fitted to `length`."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    digest = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    pseudonym = HASH_PREFIX + digest
    return pseudonym if length is None else pseudonym[:length]


def _truncate(column: sa.Column, unit: str, dialect: str) -> ColumnElement:
    """Return `column` truncated to the first day of its year or month, same type."""
    kind = column_kind(column, dialect)
    is_date = kind is ColumnKind.DATE
    if dialect == "postgresql":
        truncated = sa.func.date_trunc(unit, column)
        return sa.cast(truncated, column.type) if is_date else truncated
    if dialect in ("mysql", "mariadb"):
        # Date arithmetic, not DATE_FORMAT and a cast back: about twice as fast per row,
        # and this runs for every row a batch or a count looks at.
        if unit == "year":
            first = sa.func.makedate(sa.func.year(column), 1, type_=sa.Date)
        else:
            first = sa.func.subdate(
                sa.func.date(column), sa.func.dayofmonth(column) - 1, type_=sa.Date
            )
        return first if is_date else sa.cast(first, column.type)
    # SQLite keeps dates as ISO text: keep the prefix, write the first day.
    prefix = sa.func.substr(column, 1, 4 if unit == "year" else 7, type_=sa.String)
    suffix = "-01-01" if unit == "year" else "-01"
    if not is_date:
        suffix += " 00:00:00"
    return prefix.concat(suffix)


def replacement(strategy: str, column: sa.Column, dialect: str) -> ColumnElement | None:
    """Return the SQL value an UPDATE assigns for a non-hash strategy."""
    if strategy == "null":
        return sa.null()
    if strategy == "redact":
        return sa.literal(redacted_text(column), type_=sa.String)
    if strategy in ("year", "month"):
        return _truncate(column, strategy, dialect)
    if strategy == "hash":
        return None  # computed in Python per batch, see hash_value
    raise ValueError(f"unknown strategy {strategy!r}")


def pending(strategy: str, column: sa.Column, dialect: str) -> ColumnElement[bool]:
    """Return a predicate: this column still holds a value the strategy must replace."""
    present = column.is_not(None)
    if strategy == "null":
        return present
    if strategy == "redact":
        as_text = sa.type_coerce(column, sa.String)
        return sa.and_(present, as_text != sa.literal(redacted_text(column), sa.String))
    if strategy == "hash":
        as_text = sa.type_coerce(column, sa.String)
        return sa.and_(present, sa.not_(as_text.startswith(HASH_PREFIX, autoescape=True)))
    if strategy in ("year", "month"):
        if dialect == "sqlite":
            return sa.and_(
                present, sa.type_coerce(column, sa.String) != _truncate(column, strategy, dialect)
            )
        return sa.and_(present, column != _truncate(column, strategy, dialect))
    raise ValueError(f"unknown strategy {strategy!r}")
