"""Anonymise rows by their strategies, set-based, binding `hash` pseudonyms per row.

Shared by the sweep's anonymise rules (`execute.py`) and erasure (`subject/schedule.py`).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .keyset import Keyset
from .rowkeys import RowKey, key_match
from .strategies import HASH_PREFIX, hash_value, replacement


def anonymise_rows(
    connection: sa.Connection,
    table: sa.Table,
    key_columns: list[sa.Column],
    columns: tuple[tuple[str, str], ...],
    where: ColumnElement[bool],
    hmac_key: bytes,
    params: dict[str, Any] | None = None,
    tz: ZoneInfo | None = None,
) -> int:
    """Apply the strategies to the rows matching `where`; return how many rows.

    Without `hash` this is one set-based UPDATE. HMAC is not portable SQL, so with
    `hash` the rows' inputs are read (the caller bounds them: one batch, or one
    person's rows) and the pseudonyms bound: an executemany UPDATE by key (every key
    column), or on MariaDB a `CASE WHEN key = ... THEN ...` UPDATE per chunk.
    """
    dialect = connection.dialect.name
    values = set_values(table, columns, dialect, tz)
    hashed = hashed_columns(table, columns)
    if not hashed:
        return connection.execute(table.update().where(where).values(values), params).rowcount
    keyset = Keyset(table, key_columns, dialect)
    width = len(key_columns)
    rows = connection.execute(hash_inputs(keyset, hashed, where), params).all()
    if not rows:
        return 0
    pseudonyms = [
        (
            tuple(row[:width]),
            *(_pseudonym(c, row[width + i], hmac_key) for i, c in enumerate(hashed)),
        )
        for row in rows
    ]
    if dialect in ("mysql", "mariadb"):
        # PyMySQL runs an executemany UPDATE row by row (a round trip each): bind the
        # pseudonyms into `SET col = CASE WHEN key = ... END` instead, in short chunks,
        # as every row walks the CASE.
        for start in range(0, len(pseudonyms), _HASH_CASE_CHUNK):
            chunk = pseudonyms[start : start + _HASH_CASE_CHUNK]
            connection.execute(hash_case_update(table, key_columns, values, hashed, chunk))
        return len(rows)
    # One statement, compiled once, executed for every row of the batch: psycopg
    # pipelines it and SQLite runs it in-process.
    names = keyset.upper_names  # unused by the table's columns
    params_each = [
        {**dict(zip(names, p[0], strict=True)), **{f"_h{i}": v for i, v in enumerate(p[1:])}}
        for p in pseudonyms
    ]
    connection.execute(hash_update_by_key(keyset, values, hashed), params_each)
    return len(rows)


def set_values(
    table: sa.Table, columns: tuple[tuple[str, str], ...], dialect: str, tz: ZoneInfo | None
) -> dict[sa.Column, Any]:
    """The SET clause of every strategy but `hash` (set-based SQL)."""
    return {
        table.columns[name]: replacement(strategy, table.columns[name], dialect, tz)
        for name, strategy in columns
        if strategy != "hash"
    }


def hashed_columns(table: sa.Table, columns: tuple[tuple[str, str], ...]) -> list[sa.Column]:
    return [table.columns[name] for name, strategy in columns if strategy == "hash"]


def hash_inputs(keyset: Keyset, hashed: list[sa.Column], where: ColumnElement[bool]) -> sa.Select:
    """The keys and the values to pseudonymise of the rows matching `where`."""
    return sa.select(*keyset.selected(), *hashed).where(where)


def hash_update_by_key(
    keyset: Keyset, values: dict[sa.Column, Any], hashed: list[sa.Column]
) -> sa.Update:
    """One row's UPDATE by its whole key, its pseudonyms bound as `_h0`, `_h1`, …
    (executed for every row of a batch)."""
    by_key = sa.and_(
        *(
            column == keyset.bind(name, column)
            for name, column in zip(keyset.upper_names, keyset.columns, strict=True)
        )
    )
    values = dict(values)
    for i, column in enumerate(hashed):
        values[column] = sa.bindparam(f"_h{i}", type_=column.type)
    return keyset.table.update().where(by_key).values(values)


def hash_case_update(
    table: sa.Table,
    key_columns: list[sa.Column],
    values: dict[sa.Column, Any],
    hashed: list[sa.Column],
    chunk: list[tuple[Any, ...]],
) -> sa.Update:
    """MariaDB/MySQL: one UPDATE for a chunk of rows, `(key, pseudonym, …)` each, as
    `SET col = CASE WHEN key = … THEN … ELSE col END WHERE key IN (…)`."""
    chunk_values = dict(values)
    for i, column in enumerate(hashed):
        chunk_values[column] = sa.case(
            *((_key_is(key_columns, p[0]), _bound(p[i + 1], column.type)) for p in chunk),
            else_=column,
        )
    match = key_match(table, [p[0] for p in chunk])
    return table.update().where(match).values(chunk_values)


def _bound(value: Any, type_: Any) -> ColumnElement[Any]:
    return value if isinstance(value, sa.BindParameter) else sa.literal(value, type_)


def _key_is(key_columns: list[sa.Column], value: RowKey) -> ColumnElement[bool]:
    return sa.and_(*(c == v for c, v in zip(key_columns, value, strict=True)))


#: Rows per CASE update on MariaDB: each row walks the CASE, so it stays short.
_HASH_CASE_CHUNK = 100


def _pseudonym(column: sa.Column, value: Any, hmac_key: bytes) -> Any:
    if value is None or (isinstance(value, str) and value.startswith(HASH_PREFIX)):
        return value  # already a pseudonym: hashing it again would change it
    return hash_value(value, hmac_key, getattr(column.type, "length", None))
