"""How each column is read for `export`: the SQL expressions to select for it and the
function turning what the driver returns into its JSON encoding (`ColumnReader`),
chosen by the engine and the column's reflected type (`column_reader`).

PostgreSQL values the driver would lose or refuse (json's text, an interval's months,
infinity, 24:00:00) are read as text; ranges bound by bound; MariaDB SET and BIT,
SQLite's dates, NUMERIC and booleans decoded from what those engines keep.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.sql.elements import ColumnElement

from .encoding import RawJSON, encode_value, float_value

_RAW = sa.types.NullType()


@dataclass(frozen=True)
class ColumnReader:
    """How one column is selected (`expressions`) and encoded (`decode(*values)`)."""

    name: str
    type_name: str
    expressions: tuple[ColumnElement[Any], ...]
    decode: Callable[..., Any]


def unwrap_domain(type_: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    """A PostgreSQL domain's base type."""
    while isinstance(type_, postgresql.DOMAIN):
        type_ = type_.data_type
    return type_


def _parsed(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    """Decode an engine's date/time text as ISO 8601; keep text Python cannot hold."""

    def decode(value: Any) -> Any:
        if not isinstance(value, str):
            return encode_value(value)
        try:
            return parse(value).isoformat()
        except ValueError:
            return value

    return decode


def _temporal_parser(type_: sa.types.TypeEngine[Any]) -> Callable[[str], Any] | None:
    if isinstance(type_, sa.DateTime):
        return dt.datetime.fromisoformat
    if isinstance(type_, sa.Date):
        return dt.date.fromisoformat
    if isinstance(type_, sa.Time):
        return dt.time.fromisoformat
    return None


def _json_text(validate: bool) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8")
        if not isinstance(value, str):
            return encode_value(value)
        if validate:
            try:
                json.loads(value, parse_constant=_not_json)
            except ValueError:
                return value  # not JSON after all: its text, as any text column
        return RawJSON(value)

    return decode


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")  # Python's json reads NaN and Infinity


def _elements(decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def each(value: Any) -> Any:
        if isinstance(value, list):
            return [each(v) for v in value]
        return decode(value)

    return each


_RANGE_SUBTYPES: tuple[tuple[type[Any], sa.types.TypeEngine[Any]], ...] = (
    (postgresql.INT4RANGE, sa.Integer()),
    (postgresql.INT8RANGE, sa.BigInteger()),
    (postgresql.NUMRANGE, sa.Numeric()),
    (postgresql.DATERANGE, sa.Date()),
    (postgresql.TSRANGE, sa.DateTime()),
    (postgresql.TSTZRANGE, sa.DateTime(timezone=True)),
)


def _pg_text_decoder(type_: sa.types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """How a PostgreSQL value read as text is decoded, for the types the driver would
    lose (json's text, an interval's months) or refuse (infinity, 24:00:00); None: read
    as the driver returns it."""
    if isinstance(type_, sa.JSON):  # json and jsonb
        return _json_text(validate=False)
    if isinstance(type_, (postgresql.INTERVAL, sa.Interval)):
        return encode_value  # IntervalStyle iso_8601 (prepare_session)
    parser = _temporal_parser(type_)
    return None if parser is None else _parsed(parser)


def _as_text(expression: ColumnElement[Any]) -> ColumnElement[Any]:
    return sa.type_coerce(sa.cast(expression, sa.Text), _RAW)


def _pg_reader(column: sa.Column[Any], type_: sa.types.TypeEngine[Any]) -> ColumnReader | None:
    decode = _pg_text_decoder(type_)
    if decode is not None:
        return ColumnReader(column.name, "", (_as_text(column),), decode)
    if isinstance(type_, postgresql.ARRAY):
        item = unwrap_domain(type_.item_type)
        decode = _pg_text_decoder(item)
        if decode is None and isinstance(item, sa.Enum):
            decode = encode_value  # the driver reads an enum[] as one text: '{ok,sad}'
        if decode is None:
            return None
        texts = sa.type_coerce(sa.cast(column, postgresql.ARRAY(sa.Text)), _RAW)
        return ColumnReader(column.name, "", (texts,), _elements(decode))
    for range_type, subtype in _RANGE_SUBTYPES:
        if isinstance(type_, range_type):
            return _pg_range(column, subtype)
    return None


def _pg_range(column: sa.Column[Any], subtype: sa.types.TypeEngine[Any]) -> ColumnReader:
    """Bounds read one by one, each in its subtype's encoding (an infinite timestamp
    bound is a value the driver refuses in a range)."""
    decode_bound = _pg_text_decoder(subtype)
    bounds: list[ColumnElement[Any]] = [sa.func.lower(column), sa.func.upper(column)]
    if decode_bound is None:
        decode_bound = encode_value
        bounds = [sa.type_coerce(b, _RAW) for b in bounds]
    else:
        bounds = [_as_text(b) for b in bounds]
    flags = [
        sa.type_coerce(function(column), _RAW)
        for function in (sa.func.isempty, sa.func.lower_inc, sa.func.upper_inc)
    ]

    def decode(empty: Any, lower_inc: Any, upper_inc: Any, lower: Any, upper: Any) -> Any:
        if empty is None:
            return None
        if empty:
            return {"empty": True}
        return {
            "lower": decode_bound(lower),
            "upper": decode_bound(upper),
            "bounds": ("[" if lower_inc else "(") + ("]" if upper_inc else ")"),
        }

    return ColumnReader(column.name, "", (*flags, *bounds), decode)


def _mysql_set(value: Any) -> Any:
    if isinstance(value, str):
        return value.split(",") if value else []
    return encode_value(value)


def _mysql_bit(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    return encode_value(value)


def _sqlite_numeric(scale: int | None) -> Callable[[Any], Any]:
    """SQLite keeps a NUMERIC as an integer or a double: its exact decimal text (at the
    column's scale when that changes nothing: 1234.5 in NUMERIC(12, 2) is "1234.50")."""

    def decode(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return encode_value(value)
        if isinstance(value, float) and not math.isfinite(value):
            return float_value(value)
        number = decimal.Decimal(repr(value) if isinstance(value, float) else value)
        if scale is not None and scale >= 0:
            try:
                scaled = number.quantize(decimal.Decimal(1).scaleb(-scale))
            except decimal.InvalidOperation:
                scaled = number
            if scaled == number:
                number = scaled
        return str(number)

    return decode


def _sqlite_boolean(value: Any) -> Any:
    return bool(value) if value in (0, 1) and not isinstance(value, float) else value


def _raw(column: sa.Column[Any], decode: Callable[[Any], Any]) -> ColumnReader:
    return ColumnReader(column.name, "", (sa.type_coerce(column, _RAW),), decode)


def column_reader(
    column: sa.Column[Any], dialect: sa.engine.Dialect, json_columns: frozenset[str] = frozenset()
) -> ColumnReader:
    """How `column` is read and encoded on `dialect` (its reflected type decides)."""
    type_ = unwrap_domain(column.type)
    name = dialect.name
    reader: ColumnReader | None = None
    if name == "postgresql":
        reader = _pg_reader(column, type_)
    elif column.name in json_columns or isinstance(type_, sa.JSON):
        reader = _raw(column, _json_text(validate=True))
    elif name in ("mysql", "mariadb"):
        if isinstance(type_, mysql.SET):
            reader = _raw(column, _mysql_set)
        elif isinstance(type_, mysql.BIT):
            reader = _raw(column, _mysql_bit)
    elif name == "sqlite":
        parser = _temporal_parser(type_)
        if parser is not None:
            reader = _raw(column, _parsed(parser))
        elif isinstance(type_, sa.Float):
            reader = _raw(column, encode_value)
        elif isinstance(type_, sa.Numeric):
            reader = _raw(column, _sqlite_numeric(type_.scale))
        elif isinstance(type_, sa.Boolean):
            reader = _raw(column, _sqlite_boolean)
    if reader is None:
        reader = _raw(column, encode_value)
    json_type = "JSON" if column.name in json_columns else None
    return ColumnReader(
        reader.name, json_type or type_name(column, dialect), reader.expressions, reader.decode
    )


def type_name(column: sa.Column[Any], dialect: sa.engine.Dialect) -> str:
    """The column's type as its engine spells it in DDL (`TIMESTAMP WITH TIME ZONE`)."""
    if isinstance(column.type, sa.types.NullType):
        return "NULL"
    try:
        return str(column.type.compile(dialect=dialect))
    except sa.exc.SQLAlchemyError:
        return str(column.type)
