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

A clock must hold a real point in time, or the row is never due (like NULL):
`readable_clock()` is part of every clock comparison. SQLite stores whatever it is
given: an epoch integer or a Julian number sorts below every text, so `clock < bound`
alone would take a row written an hour ago for an ancient one, and `'15.11.2026'`
compares as text. MariaDB accepts zero dates (`0000-00-00`, "not ended yet" in old
applications), which compare below every real date. A rule's `since_format`
(`unixepoch`, `unixepoch-ms`, `julianday`) says its clock columns hold numbers
instead; then only numbers are read.
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
    """Can `column` be a clock? SQLite keeps dates as text, so a text column can be one
    there (its values are read as ISO dates; any other value is never due)."""
    if dialect == "sqlite" and isinstance(column.type, (sa.String, sa.Text)):
        return True
    return column_kind(column, dialect) is not ColumnKind.OTHER


def is_boolean_like(column: sa.Column) -> bool:
    """Booleans, and the integer columns MariaDB and SQLite use for them."""
    return isinstance(column.type, (sa.Boolean, sa.Integer))


def string_length(column: sa.Column) -> int | None:
    """Return the declared length of a string column (None: unbounded)."""
    return getattr(column.type, "length", None)


def is_string(column: sa.Column) -> bool:
    return isinstance(column.type, (sa.String, sa.Text))


#: SQLite: an ISO 8601 date at the start of a text value (the GLOB's digits).
_ISO_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]*"
_UNIX_JULIAN_DAY = 2440587.5  # the Julian day number of 1970-01-01T00:00Z


def readable_clock(
    column: sa.ColumnElement, dialect: str, since_format: str | None = None
) -> sa.ColumnElement[bool] | None:
    """Return a predicate true where `column` holds a readable point in time (None: always).

    NULL is not readable either (the predicate is unknown there, like a comparison).
    """
    if since_format is not None:
        if dialect == "sqlite":
            return sa.func.typeof(column).in_(["integer", "real"])
        return None  # a numeric column (check_rule verifies): every value is a number
    if dialect == "sqlite":
        text = sa.type_coerce(column, sa.String)
        day, month = sa.func.substr(column, 9, 2), sa.func.substr(column, 6, 2)
        return sa.and_(
            # ISO text (a number never matches: it has no '-' in the fifth place) ...
            text.op("GLOB")(_ISO_DATE_GLOB),
            # ... from year 1 (not `column >= '0001-01-01'`: without statistics SQLite
            # takes a two-sided range on the clock's index to be very selective, and
            # would walk that index in every batch instead of the primary key) ...
            sa.func.substr(column, 1, 4) != "0000",
            # ... of a real day. date() with a modifier rolls '2027-02-30' over to
            # 2 March, so a day that comes back as itself is real; it is asked only
            # for days past the 28th or odd months, as it costs more than the rest.
            sa.case(
                (sa.and_(day.between("01", "28"), month.between("01", "12")), sa.true()),
                else_=sa.func.coalesce(sa.func.date(sa.func.substr(column, 1, 10), "+0 days"), "")
                == sa.func.substr(column, 1, 10),
            ),
        )
    if dialect in ("mysql", "mariadb"):
        # Zero dates and partial zero dates ('2020-00-00', '2020-05-00') are not days.
        # (Functions of the column, not a range on it: the clock's index keeps serving
        # `column < bound` alone, and the optimiser's choice of index is unchanged.)
        return sa.and_(
            sa.func.year(column) > 0,
            sa.func.month(column) > 0,
            sa.func.dayofmonth(column) > 0,
        )
    return None


def numeric_instant(instant: dt.datetime, since_format: str) -> float | int:
    """Return an aware instant as `since_format` writes it."""
    seconds = instant.timestamp()
    if since_format == "unixepoch":
        return int(seconds) if seconds.is_integer() else seconds
    if since_format == "unixepoch-ms":
        return round(seconds * 1000)
    if since_format == "julianday":
        return seconds / 86400 + _UNIX_JULIAN_DAY
    raise ValueError(f"unknown since_format {since_format!r}")


def day_start_bound(
    column: sa.Column,
    dialect: str,
    day: dt.date,
    tz: ZoneInfo,
    since_format: str | None = None,
) -> sa.BindParameter:
    """Bind "the first moment of local `day`" for comparison with `column`."""
    if since_format is not None:
        value = numeric_instant(start_of_local_day(day, tz), since_format)
        return sa.bindparam(
            None, value, type_=sa.Float if isinstance(value, float) else sa.BigInteger
        )
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
    column: sa.Column,
    dialect: str,
    as_of: dt.datetime,
    tz: ZoneInfo,
    since_format: str | None = None,
) -> sa.ColumnElement[bool]:
    """Return `column` is later than the as-of (a date column covers its whole day).

    A consent "until 23 Nov" still holds on 23 Nov, so a DATE column keeps the row
    while it is on or after the as-of's local date. NULL, or a value that is not a
    point in time, is never later.
    """
    readable = readable_clock(column, dialect, since_format)
    later = _later_than(column, dialect, as_of, tz, since_format)
    return later if readable is None else sa.and_(readable, later)


def _later_than(
    column: sa.Column,
    dialect: str,
    as_of: dt.datetime,
    tz: ZoneInfo,
    since_format: str | None,
) -> sa.ColumnElement[bool]:
    if since_format is not None:
        value = numeric_instant(as_of, since_format)
        return column > sa.bindparam(None, value, type_=sa.Float)
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
