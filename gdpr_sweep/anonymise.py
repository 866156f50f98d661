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
    values = {
        table.columns[name]: replacement(strategy, table.columns[name], dialect, tz)
        for name, strategy in columns
        if strategy != "hash"
    }
    hashed = [table.columns[name] for name, strategy in columns if strategy == "hash"]
    if not hashed:
        return connection.execute(table.update().where(where).values(values), params).rowcount
    keyset = Keyset(table, key_columns, dialect)
    width = len(key_columns)
    rows = connection.execute(sa.select(*keyset.selected(), *hashed).where(where), params).all()
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
            chunk_values = dict(values)
            for i, column in enumerate(hashed):
                chunk_values[column] = sa.case(
                    *(
                        (_key_is(key_columns, p[0]), sa.literal(p[i + 1], column.type))
                        for p in chunk
                    ),
                    else_=column,
                )
            match = key_match(table, [p[0] for p in chunk])
            connection.execute(table.update().where(match).values(chunk_values))
        return len(rows)
    # One statement, compiled once, executed for every row of the batch: psycopg
    # pipelines it and SQLite runs it in-process.
    names = keyset.upper_names  # unused by the table's columns
    for i, column in enumerate(hashed):
        values[column] = sa.bindparam(f"_h{i}", type_=column.type)
    params_each = [
        {**dict(zip(names, p[0], strict=True)), **{f"_h{i}": v for i, v in enumerate(p[1:])}}
        for p in pseudonyms
    ]
    by_key = sa.and_(
        *(
            column == keyset.bind(name, column)
            for name, column in zip(names, key_columns, strict=True)
        )
    )
    connection.execute(table.update().where(by_key).values(values), params_each)
    return len(rows)


def _key_is(key_columns: list[sa.Column], value: RowKey) -> ColumnElement[bool]:
    return sa.and_(*(c == v for c, v in zip(key_columns, value, strict=True)))


#: Rows per CASE update on MariaDB: each row walks the CASE, so it stays short.
_HASH_CASE_CHUNK = 100


def _pseudonym(column: sa.Column, value: Any, hmac_key: bytes) -> Any:
    if value is None or (isinstance(value, str) and value.startswith(HASH_PREFIX)):
        return value  # already a pseudonym: hashing it again would change it
    return hash_value(value, hmac_key, getattr(column.type, "length", None))
