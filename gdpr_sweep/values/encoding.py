"""Values as JSON: a value as a driver returns it, encoded losing nothing
(`encode_value`), its JSON text (a json column's `RawJSON` copied as it is), and one
row written as a JSON object, each value in its column's encoding (`RowEncoder`).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import json
import math
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from psycopg.types.multirange import Multirange as PgMultirange
from psycopg.types.range import Range as PgRange
from sqlalchemy.dialects import postgresql

if TYPE_CHECKING:
    from .columns import ColumnReader

_IP = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
)


class RawJSON:
    """A JSON text written into the document as it is (a json column's value)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"RawJSON({self.text!r})"


def duration_text(value: dt.timedelta) -> str:
    """`[-]HH:MM:SS[.ffffff]`, hours unbounded: MariaDB's own form of a TIME."""
    micro = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micro < 0 else ""
    seconds, fraction = divmod(abs(micro), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def float_value(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _range(lower: Any, upper: Any, bounds: str | None, empty: bool) -> dict[str, Any]:
    if empty:
        return {"empty": True}
    return {"lower": encode_value(lower), "upper": encode_value(upper), "bounds": bounds}


def encode_value(value: Any) -> Any:
    """Return a JSON-safe form of a value as a driver returns it, losing nothing."""
    if value is None or isinstance(value, (bool, int, str, RawJSON)):
        return value
    if isinstance(value, float):
        return float_value(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.timedelta):
        return duration_text(value)
    if isinstance(value, (uuid.UUID, *_IP)):
        return str(value)
    if isinstance(value, PgRange):
        return _range(value.lower, value.upper, value.bounds, value.isempty)
    if isinstance(value, postgresql.Range):
        return _range(value.lower, value.upper, value.bounds, value.empty)
    if isinstance(value, (list, tuple, PgMultirange)):
        return [encode_value(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((encode_value(v) for v in value), key=str)
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    return str(value)


def to_json_text(value: Any) -> str:
    """The JSON text of an encoded value (a `RawJSON` copied as it is)."""
    if isinstance(value, RawJSON):
        return value.text
    if isinstance(value, list) and any(isinstance(v, (RawJSON, list)) for v in value):
        return "[" + ", ".join(to_json_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class RowEncoder:
    """Writes one row of a table as a JSON object, each value in its column's encoding."""

    def __init__(self, found: Sequence[ColumnReader]) -> None:
        self.expressions = [e for reader in found for e in reader.expressions]
        self._columns: list[tuple[str, int, int, Callable[..., Any]]] = []
        position = 0
        for reader in found:
            width = len(reader.expressions)
            key = json.dumps(reader.name, ensure_ascii=False) + ": "
            self._columns.append((key, position, position + width, reader.decode))
            position += width

    def text(self, row: Sequence[Any]) -> str:
        return (
            "{"
            + ", ".join(
                key + to_json_text(decode(*row[start:end]))
                for key, start, end, decode in self._columns
            )
            + "}"
        )
