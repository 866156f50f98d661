"""What a reflected column holds, and how a point in time is bound against it.

The due predicate compares a column with one bound value. What that value must be
depends on how the engine stores time:

- `DATE`: the local date.
- naive `TIMESTAMP`/`DATETIME`: SPEC reads naive timestamps as wall-clock time in
  `sweep.timezone`, so a local date boundary is a naive local midnight; no conversion
  happens and a DST change cannot shift it.
- `timestamptz` (PostgreSQL): an aware instant, local midnight converted to UTC.
- MariaDB/MySQL `TIMESTAMP`: stored in UTC and shown in the session time zone; our
  connections set the session to UTC (`engines.py`), so the bound is naive UTC.
- SQLite has no time type: values are ISO text, compared as text. A date boundary is
  bound as `'YYYY-MM-DD'`, which sorts before every timestamp of that day whatever
  its separator (`' '` or `'T'`) or precision, and after every one of the day before.
"""

from __future__ import annotations

import datetime as dt
import enum
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .periods import start_of_local_day


class ColumnKind(enum.Enum):
    DATE = "date"
    NAIVE = "naive timestamp"
    AWARE = "timestamp with time zone"
    UTC_NAIVE = "UTC timestamp"
    OTHER = "other"


def column_kind(column: sa.Column, dialect: str) -> ColumnKind:
    """Classify a reflected column by how it holds time."""
    col_type = column.type
    if isinstance(col_type, sa.DateTime):
        if dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql  # loaded by then; not at start-up

            if isinstance(col_type, mysql.TIMESTAMP):
                return ColumnKind.UTC_NAIVE
        return ColumnKind.AWARE if getattr(col_type, "timezone", False) else ColumnKind.NAIVE
    if isinstance(col_type, sa.Date):
        return ColumnKind.DATE
    return ColumnKind.OTHER


def is_temporal(column: sa.Column, dialect: str) -> bool:
    return column_kind(column, dialect) is not ColumnKind.OTHER


def is_boolean_like(column: sa.Column) -> bool:
    """Booleans, and the integer columns MariaDB and SQLite use for them."""
    return isinstance(column.type, (sa.Boolean, sa.Integer))


def string_length(column: sa.Column) -> int | None:
    """Return the declared length of a string column (None: unbounded)."""
    return getattr(column.type, "length", None)


def is_string(column: sa.Column) -> bool:
    return isinstance(column.type, (sa.String, sa.Text))


def day_start_bound(
    column: sa.Column, dialect: str, day: dt.date, tz: ZoneInfo
) -> sa.BindParameter:
    """Bind "the first moment of local `day`" for comparison with `column`."""
    if dialect == "sqlite":
        return sa.bindparam(None, day.isoformat(), type_=sa.String)
    kind = column_kind(column, dialect)
    if kind is ColumnKind.DATE:
        return sa.bindparam(None, day, type_=sa.Date)
    if kind is ColumnKind.NAIVE:
        return sa.bindparam(None, dt.datetime.combine(day, dt.time(0)), type_=sa.DateTime)
    instant = start_of_local_day(day, tz).astimezone(dt.UTC)
    if kind is ColumnKind.AWARE:
        return sa.bindparam(None, instant, type_=sa.DateTime(timezone=True))
    return sa.bindparam(None, instant.replace(tzinfo=None), type_=sa.DateTime)


def later_than(
    column: sa.Column, dialect: str, as_of: dt.datetime, tz: ZoneInfo
) -> sa.ColumnElement[bool]:
    """Return `column` is later than the as-of (a date column covers its whole day).

    A consent "until 23 Nov" still holds on 23 Nov, so a DATE column keeps the row
    while it is on or after the as-of's local date. NULL is never later.
    """
    local = as_of.astimezone(tz)
    kind = column_kind(column, dialect)
    if kind is ColumnKind.DATE:
        return column >= day_start_bound(column, dialect, local.date(), tz)
    if dialect == "sqlite":
        text = local.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return sa.type_coerce(column, sa.String) > sa.bindparam(None, text, type_=sa.String)
    if kind is ColumnKind.NAIVE:
        return column > sa.bindparam(None, local.replace(tzinfo=None), type_=sa.DateTime)
    utc = as_of.astimezone(dt.UTC)
    if kind is ColumnKind.AWARE:
        return column > sa.bindparam(None, utc, type_=sa.DateTime(timezone=True))
    return column > sa.bindparam(None, utc.replace(tzinfo=None), type_=sa.DateTime)
