"""Anonymisation strategies as SQL expressions, per dialect.

Each strategy has two faces that must agree:
- `replacement(...)`: the value an UPDATE writes (for `hash`, computed in Python by
  `hash_value` and bound per batch, since HMAC is not portable SQL);
- `pending(...)`: a predicate that is true while a column still holds the original,
  so an anonymised row is recognisably done and a second run finds nothing due.

A column counts as done when it is NULL or already equals its replacement: `null` is
done when NULL, `redact` when it holds the placeholder, `year`/`month` when the value
equals its own truncation, `hash` when it carries the `hmac:` marker.

`year`/`month` truncate on the local calendar of `sweep.timezone` (`tz`): naive
timestamps and dates already are local wall-clock values; an instant (PostgreSQL
`timestamptz`, MariaDB/MySQL `TIMESTAMP`, UTC in our sessions) is truncated to the
local midnight that begins its local year or month, in the engine: PostgreSQL's
`date_trunc(unit, ts, zone)`, MariaDB's `CONVERT_TZ` there and back (which needs the
server's time-zone tables: `check` refuses without them, see `zone_problem`).
"""

from __future__ import annotations

import hashlib
import hmac
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection
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


def hash_value(value: object, hmac_key: bytes, length: int | None) -> str | None:
    """Return the keyed pseudonym of `value` (HMAC-SHA256, hex), fitted to `length`."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    digest = hmac.new(hmac_key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    pseudonym = HASH_PREFIX + digest
    return pseudonym if length is None else pseudonym[:length]


#: Zones that are UTC all year: an instant needs no conversion to their calendar (and
#: MariaDB no time-zone tables).
_UTC_ZONES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"}
)


def local_zone(column: sa.Column, dialect: str, tz: ZoneInfo | None) -> str | None:
    """The zone name `year`/`month` must convert `column` to, or None: no conversion.

    Only instants are converted (PostgreSQL `timestamptz`, MariaDB/MySQL `TIMESTAMP`);
    dates and naive timestamps are local already, SQLite keeps text.
    """
    if tz is None or tz.key in _UTC_ZONES:
        return None
    kind = column_kind(column, dialect)
    if dialect == "postgresql" and kind is ColumnKind.AWARE:
        return str(tz.key)
    if dialect in ("mysql", "mariadb") and kind is ColumnKind.UTC_NAIVE:
        return str(tz.key)
    return None


def zone_is_known(connection: Connection, zone: str) -> bool:
    """Can the MariaDB/MySQL server convert to `zone`?

    Without its time-zone tables (`mariadb-tzinfo-to-sql`), or for a zone they lack,
    CONVERT_TZ returns NULL, and `year`/`month` would write NULL.
    """
    probe = sa.select(
        sa.func.convert_tz(
            sa.literal("2000-01-01 00:00:00", sa.String), "+00:00", sa.literal(zone, sa.String)
        )
    )
    return connection.execute(probe).scalar() is not None


#: How to give MariaDB/MySQL the time-zone tables CONVERT_TZ needs.
ZONE_TABLES_FIX = (
    "load the server's time-zone tables: mariadb-tzinfo-to-sql /usr/share/zoneinfo "
    "| mariadb -u root mysql (MySQL: mysql_tzinfo_to_sql)"
)


def zone_problem(
    connection: Connection, column: sa.Column, strategy: str, tz: ZoneInfo | None
) -> str | None:
    """Why `strategy` cannot truncate `column` on this server, in one line, or None.

    Only MariaDB/MySQL `TIMESTAMP` columns under `year`/`month` can have one: without
    the time-zone tables CONVERT_TZ gives NULL, which the UPDATE would write.
    """
    dialect = connection.dialect.name
    if strategy not in ("year", "month") or dialect not in ("mysql", "mariadb"):
        return None
    zone = local_zone(column, dialect, tz)
    if zone is None or zone_is_known(connection, zone):
        return None
    return (
        f"strategy {strategy!r} truncates this TIMESTAMP on the calendar of {zone!r}, "
        "which the server cannot convert to (CONVERT_TZ gives NULL: no time-zone tables)"
    )


def _truncate(
    column: sa.Column, unit: str, dialect: str, tz: ZoneInfo | None = None
) -> ColumnElement:
    """Return `column` truncated to the first day of its local year or month, same type."""
    kind = column_kind(column, dialect)
    is_date = kind is ColumnKind.DATE
    zone = local_zone(column, dialect, tz)
    if dialect == "postgresql":
        if zone is not None:
            # Local midnight in `zone`, whatever the session's TimeZone (PostgreSQL 12+).
            return sa.func.date_trunc(unit, column, zone, type_=column.type)
        truncated = sa.func.date_trunc(unit, column)
        return sa.cast(truncated, column.type) if is_date else truncated
    if dialect in ("mysql", "mariadb"):
        value: ColumnElement = column
        if zone is not None:
            # A TIMESTAMP reads as UTC in our sessions (engines.py): truncate local time.
            value = sa.func.convert_tz(column, "+00:00", zone, type_=sa.DateTime)
        # Date arithmetic, not DATE_FORMAT and a cast back: about twice as fast per row,
        # and this runs for every row a batch or a count looks at.
        if unit == "year":
            first = sa.func.makedate(sa.func.year(value), 1, type_=sa.Date)
        else:
            first = sa.func.subdate(
                sa.func.date(value), sa.func.dayofmonth(value) - 1, type_=sa.Date
            )
        if zone is not None:
            # Local midnight back to the UTC instant the column stores.
            midnight = sa.cast(first, sa.DateTime)
            return sa.func.convert_tz(midnight, zone, "+00:00", type_=column.type)
        return first if is_date else sa.cast(first, column.type)
    # SQLite keeps dates as ISO text: keep the prefix, write the first day.
    prefix = sa.func.substr(column, 1, 4 if unit == "year" else 7, type_=sa.String)
    suffix = "-01-01" if unit == "year" else "-01"
    if not is_date:
        suffix += " 00:00:00"
    return prefix.concat(suffix)


def _is_native_enum(column: sa.Column, dialect: str) -> bool:
    """A PostgreSQL ENUM: its own type, which a VARCHAR neither fills nor compares with."""
    return dialect == "postgresql" and isinstance(column.type, sa.Enum)


def _text_type(column: sa.Column, dialect: str) -> sa.types.TypeEngine:
    """The type to bind the placeholder as: the ENUM itself on PostgreSQL, else text."""
    return column.type if _is_native_enum(column, dialect) else sa.String()


def replacement(
    strategy: str, column: sa.Column, dialect: str, tz: ZoneInfo | None = None
) -> ColumnElement | None:
    """Return the SQL value an UPDATE assigns for a non-hash strategy.

    `tz` (`sweep.timezone`) is the calendar `year`/`month` truncate instants on; None
    truncates them in UTC. `pending` must be given the same.
    """
    if strategy == "null":
        return sa.null()
    if strategy == "redact":
        return sa.literal(redacted_text(column), type_=_text_type(column, dialect))
    if strategy in ("year", "month"):
        return _truncate(column, strategy, dialect, tz)
    if strategy == "hash":
        return None  # computed in Python per batch, see hash_value
    raise ValueError(f"unknown strategy {strategy!r}")


def pending(
    strategy: str, column: sa.Column, dialect: str, tz: ZoneInfo | None = None
) -> ColumnElement[bool]:
    """Return a predicate: this column still holds a value the strategy must replace."""
    present = column.is_not(None)
    if strategy == "null":
        return present
    if strategy == "redact":
        if _is_native_enum(column, dialect):
            as_text: ColumnElement = sa.cast(column, sa.Text)
        else:
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
        return sa.and_(present, column != _truncate(column, strategy, dialect, tz))
    raise ValueError(f"unknown strategy {strategy!r}")
