"""`--subject KIND=VALUE`: the identifier kind parsed, the value typed as its column.

The value is checked against the root's identifier column before any query, in every
selected database (exit 2 naming `--subject`, the column and its type, never the
value), and bound as that column's own type (rows.py binds it).
"""

from __future__ import annotations

import sqlalchemy as sa

from ..catalog import Catalog, qualified_name
from ..config import Config
from ..engines import TargetDatabase
from ..errors import DatabaseUnavailable, UsageError


def parse_subject(text: str, config: Config) -> tuple[str, str, str]:
    """Split `KIND=VALUE`; return (kind, identifier column, value). Unknown kind: exit 2."""
    if config.subject is None:
        raise UsageError("--subject: the config has no [subject] section")
    kind, sep, value = text.partition("=")
    kinds = dict(config.subject.identifiers)
    if not sep or not value:
        raise UsageError("--subject: expected KIND=VALUE, e.g. email=person@example.com")
    if kind not in kinds:
        raise UsageError(
            f"--subject: unknown identifier kind {kind!r}; the config has {', '.join(kinds)}"
        )
    return kind, kinds[kind], value


def check_subject_value(
    targets: list[TargetDatabase], config: Config, column: str, value: str
) -> None:
    """Check `--subject`'s value against the root's identifier column in every selected
    database before anything is recorded or changed (exit 2, the value never quoted):
    one database erased and the next refusing the value would be exit 2 after a change.
    A database that cannot be read or lacks the root is left to fail on its own later."""
    assert config.subject is not None
    for target in targets:
        try:
            with target.read_only() as connection:
                catalog = Catalog(connection)
                root = catalog.table(config.subject.root)
                if root is not None and column in root.columns:
                    identifier_value(root.columns[column], value, catalog.dialect)
        except (sa.exc.DBAPIError, DatabaseUnavailable):
            continue
        finally:
            target.dispose()


def identifier_value(column: sa.Column, value: str, dialect: str | None = None) -> object:
    """Bind the CLI's text as the identifier column's own type, checked before any query.

    Text that is not a value of the column's type (an e-mail for a UUID, `2024-02-30`
    for a date, an integer the column cannot hold) is exit 2 naming `--subject`, the
    column and the type, never the value: a database would otherwise refuse it with an
    error quoting it. Text for a text column is bound as given, whatever its length: a
    value longer than a VARCHAR(n) finds no rows (SQLite does not enforce n at all).
    A type not listed here (binary, json, interval, …) is bound as text, and any error
    the database gives is reported without its text (engines.describe_failure).

    `dialect` decides what a plain INTEGER holds (64 bits on SQLite, 32 elsewhere);
    without it a plain integer type is checked against 64 bits only.
    """
    checked = _typed_identifier(column.type, value, dialect)
    if isinstance(checked, _NotOfType):
        raise UsageError(
            f"--subject: {qualified_name(column.table)}.{column.name} is {checked.expected}; "
            "the value given is not one"
        )
    return checked


class _NotOfType:
    """The text is not a value of the type; `expected` names the type (never the text)."""

    def __init__(self, expected: str) -> None:
        self.expected = expected


def _typed_identifier(kind: object, text: str, dialect: str | None) -> object:
    """`text` as a value of the SQL type `kind`, or a _NotOfType saying what it must be."""
    import datetime as dt
    import decimal
    import re
    import uuid

    if isinstance(kind, sa.Boolean):
        flag = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}
        found = flag.get(text.strip().lower())
        return _NotOfType("a boolean (true or false)") if found is None else found
    if isinstance(kind, sa.Integer):
        bits = {"TINYINT": 8, "SMALLINT": 16, "small_integer": 16, "MEDIUMINT": 24}.get(
            kind.__visit_name__, 64 if kind.__visit_name__ in ("BIGINT", "big_integer") else 32
        )
        generic = type(kind).__module__.startswith("sqlalchemy.sql")
        if dialect == "sqlite" or (dialect is None and generic):
            bits = 64  # every SQLite integer column holds 64 bits; the engine unknown: the widest
        if getattr(kind, "unsigned", False):  # MariaDB's UNSIGNED
            low, high = 0, 2**bits - 1
        else:
            low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        expected = f"an integer from {low} to {high}"
        if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            return _NotOfType(expected)
        number = int(text)
        return number if low <= number <= high else _NotOfType(expected)
    if isinstance(kind, sa.Uuid):
        try:
            found_uuid = uuid.UUID(text.strip())
        except ValueError:
            return _NotOfType("a UUID")
        return found_uuid if kind.as_uuid else str(found_uuid)
    if isinstance(kind, sa.Enum):
        members = list(kind.enums)
        if members and text not in members:
            return _NotOfType(f"one of the {len(members)} values of its enum")
        return text
    if isinstance(kind, sa.String):
        return text  # exactly as given: case, accents, spaces and length count
    if isinstance(kind, sa.DateTime):
        aware = bool(getattr(kind, "timezone", False))
        # MariaDB TIMESTAMP: UTC in the session (engines.py), so either form is exact.
        utc_session = kind.__visit_name__ == "TIMESTAMP" and not type(kind).__module__.startswith(
            ("sqlalchemy.sql", "sqlalchemy.dialects.postgresql")
        )
        if aware:
            expected = "an ISO 8601 timestamp with a UTC offset"
        elif utc_session:
            expected = "an ISO 8601 timestamp (UTC unless an offset is given)"
        else:
            expected = "an ISO 8601 timestamp without a UTC offset"
        try:
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return _NotOfType(expected)
        if utc_session and moment.tzinfo is not None:
            return moment.astimezone(dt.UTC).replace(tzinfo=None)
        if (moment.tzinfo is not None) != aware and not utc_session:
            return _NotOfType(expected)
        return moment
    if isinstance(kind, sa.Date):
        try:
            return dt.date.fromisoformat(text.strip())
        except ValueError:
            return _NotOfType("a date (YYYY-MM-DD)")
    if isinstance(kind, sa.Time):
        try:
            return dt.time.fromisoformat(text.strip())
        except ValueError:
            return _NotOfType("a time (HH:MM:SS)")
    if isinstance(kind, sa.Numeric):
        number_text = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
        if not re.fullmatch(number_text, text.strip()):
            return _NotOfType("a number")
        exact = decimal.Decimal(text.strip())
        if isinstance(kind, sa.Float) or not kind.asdecimal:
            as_float = float(exact)
            return as_float if abs(as_float) != float("inf") else _NotOfType("a number")
        return exact
    return text  # another type: the database compares it (its errors are reported textless)
