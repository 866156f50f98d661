"""A hold's key as given on the command line (`--key VALUE`, `--key COL=VALUE`),
converted to its key columns' types, so it is bound (and matched) exactly.

Errors name the key columns and the type wanted, never the value given: it may be
personal.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..catalog import qualified_name
from ..errors import UsageError

_INTEGER = re.compile(r"[+-]?[0-9]+")


def _typed(column: sa.Column, text: str) -> Any:
    """The CLI's text as a value of the column's type (never quoted back: it may be personal)."""
    kind = column.type
    problem = f"--key: {column.name} needs"
    try:
        if isinstance(kind, sa.Boolean):
            pass
        elif isinstance(kind, sa.Integer):
            if not _INTEGER.fullmatch(text.strip()):
                raise ValueError
            return int(text)
        elif isinstance(kind, sa.Uuid):
            value = uuid.UUID(text)
            return value if kind.as_uuid else str(value)
        elif isinstance(kind, (sa.String, sa.Text, sa.Enum)):
            return text  # exactly as given: case, accents and spaces count
        elif isinstance(kind, sa.DateTime):
            return dt.datetime.fromisoformat(text)
        elif isinstance(kind, sa.Date):
            return dt.date.fromisoformat(text)
        elif isinstance(kind, sa.Time):
            return dt.time.fromisoformat(text)
        elif isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
            return decimal.Decimal(text)
    except (ValueError, decimal.InvalidOperation):
        raise UsageError(f"{problem} {_expected(kind)}; the value given is not one") from None
    raise UsageError(
        f"--key: holds cannot match key column {column.name} of type {kind} exactly; "
        "hold a row of a table keyed by integers, text, UUIDs, dates or decimals"
    )


def _expected(kind: Any) -> str:
    if isinstance(kind, sa.Integer):
        return "an integer"
    if isinstance(kind, sa.Uuid):
        return "a UUID"
    if isinstance(kind, sa.DateTime):
        return "an ISO 8601 timestamp"
    if isinstance(kind, sa.Date):
        return "a date (YYYY-MM-DD)"
    if isinstance(kind, sa.Time):
        return "a time (HH:MM:SS)"
    return "a decimal number"


def key_values(table: sa.Table, columns: Sequence[sa.Column], given: Sequence[str]) -> tuple:
    """The key named by `--key`: `VALUE` for a one-column key, else `COL=VALUE` per column.

    A one-column key may be given as `COL=VALUE` too (so a value that itself starts
    with `COL=` is given as `COL=COL=...`). Errors name the key columns, never a value.
    """
    names = [c.name for c in columns]
    listed = ", ".join(names)
    if len(columns) == 1:
        if len(given) != 1:
            raise UsageError(
                f"--key: {qualified_name(table)} has a one-column key ({listed}); give --key once"
            )
        text = given[0]
        if text.startswith(f"{names[0]}="):
            text = text[len(names[0]) + 1 :]
        return (_typed(columns[0], text),)
    how = f"give --key COL=VALUE once for each key column of {qualified_name(table)}: {listed}"
    texts: dict[str, str] = {}
    for item in given:
        name, sep, text = item.partition("=")
        if not sep or name not in names:
            raise UsageError(f"--key: {how}")
        if name in texts:
            raise UsageError(f"--key: {name} given twice; {how}")
        texts[name] = text
    missing = [n for n in names if n not in texts]
    if missing:
        raise UsageError(f"--key: no value for {', '.join(missing)}; {how}")
    return tuple(_typed(c, texts[c.name]) for c in columns)


def label_text(values: tuple[Any, ...]) -> str:
    """The key as text, the way the sweep's audit entries write a batch's key."""
    return str(values[0]) if len(values) == 1 else "(" + ", ".join(map(str, values)) + ")"
