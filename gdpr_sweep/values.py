"""Column values as JSON for `export`: one documented, exact encoding per column type.

Each column is read through a `ColumnReader`: the SQL expressions to select for it and
the function turning what the driver returns into a JSON value from which the stored
value is recovered exactly (the table in the README's export paragraph):

- integers, booleans, text, ENUM: as they are; finite floats as JSON numbers (the
  shortest text that reads back as the same double), NaN and ±infinity as the strings
  "NaN", "Infinity", "-Infinity";
- DECIMAL / NUMERIC: exact decimal text ("1234.50", "NaN");
- dates, times, timestamps: ISO 8601 text (`date.isoformat()` and friends); a
  PostgreSQL value Python cannot hold (infinity, -infinity, BC, year 10000+,
  24:00:00) as PostgreSQL writes it;
- PostgreSQL interval: ISO 8601 duration as PostgreSQL writes it in `IntervalStyle
  iso_8601` ("P1M2DT-3H", months and days kept apart: a month is not 30 days);
- MariaDB TIME: the signed duration "[-]HH:MM:SS[.ffffff]" (hours may pass 23:
  "30:00:00", "-01:30:00.250000");
- binary (bytea, BLOB, VARBINARY): {"base64": "..."};
- json, jsonb, MariaDB JSON, SQLite JSON: the JSON value itself, its text copied
  unchanged (a SQL NULL and a JSON `null` both export as null);
- uuid, inet, cidr, macaddr, money and any type without a JSON form: the engine's text;
- arrays: JSON lists (nested for several dimensions) of their elements' encodings;
- ranges: {"lower": ..., "upper": ..., "bounds": "[)"} with the bounds in their
  subtype's encoding (null = unbounded), or {"empty": true}; multiranges: lists of them;
- MariaDB SET: the list of its members, in the column's order; BIT(n): the unsigned
  integer; YEAR: the integer.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg.types.multirange import Multirange as PgMultirange
from psycopg.types.range import Range as PgRange
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.sql.elements import ColumnElement

_RAW = sa.types.NullType()

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


def _float(value: float) -> float | str:
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
        return _float(value)
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


@dataclass(frozen=True)
class ColumnReader:
    """How one column is selected (`expressions`) and encoded (`decode(*values)`)."""

    name: str
    type_name: str
    expressions: tuple[ColumnElement[Any], ...]
    decode: Callable[..., Any]


# --- the types ---------------------------------------------------------------------------


def _unwrap(type_: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
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
        item = _unwrap(type_.item_type)
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
            return _float(value)
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
    type_ = _unwrap(column.type)
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


# --- per database and table ------------------------------------------------------------


def prepare_session(connection: sa.Connection) -> None:
    """Fix the text forms read from PostgreSQL for this transaction only."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL IntervalStyle = 'iso_8601'")
        connection.exec_driver_sql("SET LOCAL DateStyle = 'ISO, YMD'")


_JSON_CHECK = re.compile(r"^\s*json_valid\(`((?:[^`]|``)+)`\)\s*$", re.IGNORECASE)


def mariadb_json_columns(connection: sa.Connection, table: sa.Table) -> frozenset[str]:
    """MariaDB's JSON is LONGTEXT with a `json_valid(col)` check: those columns."""
    if not any(isinstance(c.type, mysql.LONGTEXT) for c in table.columns):
        return frozenset()
    try:
        clauses = connection.execute(
            sa.text(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA = COALESCE(:schema, DATABASE()) "
                "AND TABLE_NAME = :table"
            ),
            {"schema": table.schema, "table": table.name},
        ).scalars()
        found = {m.group(1).replace("``", "`") for m in map(_JSON_CHECK.match, clauses) if m}
    except sa.exc.DBAPIError:  # MySQL: no TABLE_NAME there, but a real JSON type
        return frozenset()
    return frozenset(found)


def pg_type_names(connection: sa.Connection, table: sa.Table) -> dict[str, str]:
    """PostgreSQL's own names of the table's column types (`point`, `tsvector`)."""
    rows = connection.execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0 "
            "AND NOT a.attisdropped"
        ),
        {"table": connection.dialect.identifier_preparer.format_table(table)},
    )
    return {str(name): str(type_) for name, type_ in rows}


def _orderable(type_: sa.types.TypeEngine[Any]) -> bool:
    """Can PostgreSQL ORDER BY a column of this type? (json, point, xml: no)."""
    type_ = _unwrap(type_)
    if isinstance(type_, postgresql.ARRAY):
        return _orderable(type_.item_type)
    if isinstance(type_, sa.JSON):
        return isinstance(type_, postgresql.JSONB)
    return isinstance(
        type_,
        (
            sa.Integer,
            sa.Numeric,
            sa.String,
            sa.Date,
            sa.DateTime,
            sa.Time,
            sa.Interval,
            postgresql.INTERVAL,
            sa.Boolean,
            sa.Uuid,
            sa.LargeBinary,
            postgresql.INET,
            postgresql.CIDR,
            postgresql.MACADDR,
            postgresql.AbstractRange,
        ),
    )


def row_order(table: sa.Table, dialect: str) -> list[sa.Column[Any]]:
    """The primary key; else every column (on PostgreSQL every orderable one), so a
    table without a key is exported in a stable order rather than not at all."""
    if table.primary_key.columns:
        return list(table.primary_key.columns)
    if dialect != "postgresql":
        return list(table.columns)
    return [c for c in table.columns if _orderable(c.type)]


def readers(connection: sa.Connection, table: sa.Table) -> list[ColumnReader]:
    """Every column's reader, in the table's column order."""
    dialect = connection.dialect
    json_columns: frozenset[str] = frozenset()
    if dialect.name in ("mysql", "mariadb"):
        json_columns = mariadb_json_columns(connection, table)
    found = [column_reader(c, dialect, json_columns) for c in table.columns]
    if dialect.name == "postgresql" and any(r.type_name == "NULL" for r in found):
        names = pg_type_names(connection, table)
        found = [
            ColumnReader(r.name, names.get(r.name, r.type_name), r.expressions, r.decode)
            if r.type_name == "NULL"
            else r
            for r in found
        ]
    return found


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
