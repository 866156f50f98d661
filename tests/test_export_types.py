"""Export of every column type: each value round-trips exactly (issue 17, point 2).

Per engine, raw DDL builds `person(id, email)` and a child table `typed` holding the
typed columns with a foreign key to person, plus `unkeyed`, a child table without a
primary key (a json column in it must not fail the database on PostgreSQL). Mette
(person 1) has rows with ordinary values, edge values (infinity, 24:00:00, TIME past
24 h, negative TIME, empty ranges, NaN) and NULLs; Ole (person 2) has rows that must not
appear. The real CLI exports; the test then reads every row directly from the database
and asserts, per column, that decoding the exported value gives back exactly what the
database holds — on PostgreSQL also by handing the exported text back to the engine
(`CAST(exported AS type)::text` equals `column::text`).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Range

from tests.conftest import TargetDb, run_cli, write_config

EMAIL = "mette.types@example.dk"
#: Values only Ole's rows hold: none may appear in the export.
OTHER_MARKERS = ("ole.other@example.dk", "10.99.99.99", "ole-json", "999999.99", "OLESTAR")

CONFIG = """
[subject]
root = "person"
identifiers = { email = "email" }
"""


def export(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, str]:
    """Run `export`; return the document (numbers with a fraction as Decimal, exactly;
    a bare NaN or Infinity, which is not JSON, fails) and its text."""
    config = write_config(tmp_path, CONFIG, url, monkeypatch)
    out = tmp_path / "export.json"
    result = run_cli("export", "-c", str(config), "--subject", f"email={EMAIL}", "--out", str(out))
    output = result.stdout + result.stderr
    assert result.exit_code == 0, output
    assert "Traceback" not in output and "internal error" not in output, output
    assert EMAIL not in output  # her data goes to the file only
    text = out.read_text(encoding="utf-8")
    document = json.loads(text, parse_float=decimal.Decimal, parse_constant=not_json)
    [database] = document["databases"]
    assert database["error"] is None, database["error"]
    for marker in OTHER_MARKERS:
        assert marker not in text, marker
    return document, text


def tables_of(document: dict) -> dict[str, dict]:
    [database] = document["databases"]
    return {t["table"]: t for t in database["tables"]}


def rows_by_id(table: dict) -> dict[int, dict]:
    return {r["id"]: r for r in table["rows"]}


def direct(url: str, sql: str, **params: Any) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def base64_bytes(value: dict | None) -> bytes | None:
    return None if value is None else base64.b64decode(value["base64"])


def json_text(value: Any) -> str:
    """JSON text of a value parsed with Decimal floats, numbers written exactly."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {json_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def at(text: str) -> dt.datetime:
    """An exported timestamptz: ISO 8601 with its offset."""
    value = dt.datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    return value


def not_json(constant: str) -> None:
    raise ValueError(f"{constant}: Python reads it, JSON has no such value")


def optional(decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else decode(value)


# --- PostgreSQL --------------------------------------------------------------------------

PG_DDL = """
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE DOMAIN jdom AS jsonb;
CREATE TABLE person (id integer PRIMARY KEY, email text NOT NULL);
CREATE TABLE typed (
    id integer PRIMARY KEY,
    person_id integer NOT NULL REFERENCES person (id),
    addr inet, net cidr, ir int4range, tr tstzrange, dr daterange,
    ia integer[], ta text[], js json, jb jsonb, iv interval, ivs interval[],
    bin bytea, u uuid, num numeric, ts timestamptz, d date, tm time, f float8,
    moods mood[], jd jdom
);
CREATE TABLE unkeyed (
    person_id integer NOT NULL REFERENCES person (id),
    doc json, tags text[], at timestamptz, pos point
);
"""

PG_ROWS = """
INSERT INTO person VALUES (1, 'mette.types@example.dk'), (2, 'ole.other@example.dk');
INSERT INTO typed VALUES
 (1, 1, '192.168.0.1/24', '10.0.0.0/8', '[1,5)',
  '[2026-01-01 10:00+01,2026-02-01 00:00+00)', '[2026-01-01,2026-02-01)',
  '{1,NULL,3}', '{"a b",NULL,"c,d","say \\"hi\\""}',
  '{"x": 1.10, "y": [1, "2", null],  "x": 2}', '{"n": 12345678901234567890.123456789}',
  '1 year 2 mons 3 days -04:05:06.5', '{"1 mon","-2 hours"}',
  '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '12345678901234567890.01234567890',
  '2026-01-02 03:04:05.123456+01', '2026-01-02', '23:59:59.999999', 0.1, '{ok,sad}',
  '{"d": [1]}'),
 (2, 1, '::1', '2001:db8::/32', 'empty', '[2026-01-01 00:00+00,infinity)', '(,2026-01-01]',
  '{{1,2},{3,4}}', '{}', '[]', '[1, {"a": null}, "ø"]', '-1 mon', '{}',
  '', '00000000-0000-0000-0000-000000000000', 'NaN', 'infinity', '-infinity',
  '24:00:00', 'Infinity', '{sad,NULL}', '"s"'),
 (3, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 2, '10.99.99.99', NULL, NULL, NULL, NULL, NULL, '{OLESTAR}', '{"k": "ole-json"}', NULL,
  NULL, NULL, NULL, NULL, 999999.99, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO unkeyed VALUES
 (1, '{"b": 2, "a": [1.50]}', '{x,y}', '2026-03-01 12:00+00', '(1,2)'),
 (1, '{"b": 1}', NULL, NULL, NULL),
 (2, '{"k": "ole-json"}', '{OLESTAR}', NULL, '(9,9)');
"""

#: Per column of `typed`: the type to cast the exported text back to, and how the
#: exported JSON value becomes that text (None: the column has its own check below).
Literal = Callable[[Any], Any]


def pg_range_literal(value: dict) -> str:
    if value.get("empty"):
        return "empty"
    lower = "" if value["lower"] is None else f'"{value["lower"]}"'
    upper = "" if value["upper"] is None else f'"{value["upper"]}"'
    return f"{value['bounds'][0]}{lower},{upper}{value['bounds'][1]}"


PG_LITERALS: dict[str, tuple[str, Literal]] = {
    "addr": ("inet", str),
    "net": ("cidr", str),
    "ir": ("int4range", pg_range_literal),
    "tr": ("tstzrange", pg_range_literal),
    "dr": ("daterange", pg_range_literal),
    "ia": ("integer[]", lambda v: v),
    "ta": ("text[]", lambda v: v),
    "jb": ("jsonb", json_text),
    "iv": ("interval", str),
    "ivs": ("interval[]", lambda v: v),
    "bin": ("bytea", base64_bytes),
    "u": ("uuid", str),
    "num": ("numeric", str),
    "ts": ("timestamptz", str),
    "d": ("date", str),
    "tm": ("time", str),
    "f": ("float8", str),
    "moods": ("mood[]", lambda v: v),
    "jd": ("jdom", json_text),
}

#: Per column: the exported value decoded to the Python value the driver reads (row 1,
#: whose values psycopg can all load).
PG_DECODE: dict[str, Callable[[Any], Any]] = {
    "addr": ipaddress.ip_interface,
    "net": ipaddress.ip_network,
    "ir": lambda v: Range(v["lower"], v["upper"], bounds=v["bounds"]),
    "tr": lambda v: Range(
        dt.datetime.fromisoformat(v["lower"]),
        dt.datetime.fromisoformat(v["upper"]),
        bounds=v["bounds"],
    ),
    "dr": lambda v: Range(
        dt.date.fromisoformat(v["lower"]), dt.date.fromisoformat(v["upper"]), bounds=v["bounds"]
    ),
    "ia": list,
    "ta": list,
    "bin": base64_bytes,
    "u": uuid.UUID,
    "num": decimal.Decimal,
    "ts": dt.datetime.fromisoformat,
    "d": dt.date.fromisoformat,
    "tm": dt.time.fromisoformat,
    "f": float,
    "moods": list,
    "jd": lambda v: v,
}


@pytest.fixture
def pg_url(target_db: TargetDb) -> str:
    if target_db.engine_name != "postgresql":
        pytest.skip("PostgreSQL types")
    return target_db.url


def pg_build(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(PG_DDL)
            connection.exec_driver_sql(PG_ROWS)
    finally:
        engine.dispose()


@pytest.mark.parametrize("target_db", ["postgresql"], indirect=True)
def test_postgresql_types_round_trip(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pg_build(pg_url)
    document, text = export(tmp_path, pg_url, monkeypatch)
    tables = tables_of(document)
    assert set(tables) == {"person", "typed", "unkeyed"}
    assert tables["person"]["rows"] == [{"id": 1, "email": EMAIL}]
    typed = tables["typed"]
    assert typed["columns"]["ts"] == "TIMESTAMP WITH TIME ZONE"
    assert typed["columns"]["ia"] == "INTEGER[]"
    assert typed["columns"]["ir"] == "INT4RANGE"
    rows = rows_by_id(typed)
    assert set(rows) == {1, 2, 3}  # never Ole's row 4

    # Every exported value, handed back to PostgreSQL, is the stored value exactly.
    for row_id, row in rows.items():
        for column, (type_, literal) in PG_LITERALS.items():
            value = row[column]
            if value is None:
                [(stored,)] = direct(
                    pg_url, f"SELECT {column} IS NULL FROM typed WHERE id = :i", i=row_id
                )
                assert stored, (row_id, column)
                continue
            [(stored, again)] = direct(
                pg_url,
                f"SELECT {column}::text, CAST(:v AS {type_})::text FROM typed WHERE id = :i",
                v=literal(value),
                i=row_id,
            )
            assert again == stored, (row_id, column, value)

    # Decoded, row 1's values are what the driver reads from the database.
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as connection:
            table = sa.Table("typed", sa.MetaData(), autoload_with=connection)
            read = connection.execute(sa.select(table).where(table.c.id == 1)).mappings().one()
    finally:
        engine.dispose()
    for column, decode in PG_DECODE.items():
        assert decode(rows[1][column]) == read[column], column

    # json: the value itself, its text copied unchanged (duplicate keys, 1.10, spacing).
    assert '"js": {"x": 1.10, "y": [1, "2", null],  "x": 2}' in text
    assert rows[1]["jb"] == {"n": decimal.Decimal("12345678901234567890.123456789")}
    assert rows[2]["js"] == [] and rows[2]["jb"] == [1, {"a": None}, "ø"]
    # The documented encodings, spelt out.
    assert rows[1]["addr"] == "192.168.0.1/24" and rows[1]["net"] == "10.0.0.0/8"
    assert rows[1]["ir"] == {"lower": 1, "upper": 5, "bounds": "[)"}
    # (A timestamptz is written at the session's offset: compared as instants.)
    tr = rows[1]["tr"]
    assert tr["bounds"] == "[)" and [at(tr["lower"]), at(tr["upper"])] == [
        dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC),
        dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
    ]
    assert rows[2]["ir"] == {"empty": True}
    assert rows[2]["tr"]["upper"] == "infinity"
    assert rows[2]["dr"] == {"lower": None, "upper": "2026-01-02", "bounds": "()"}
    assert rows[1]["ia"] == [1, None, 3] and rows[2]["ia"] == [[1, 2], [3, 4]]
    assert rows[1]["ta"] == ["a b", None, "c,d", 'say "hi"']
    assert rows[1]["iv"] == "P1Y2M3DT-4H-5M-6.5S" and rows[2]["iv"] == "P-1M"
    assert rows[1]["ivs"] == ["P1M", "PT-2H"]
    assert rows[1]["bin"] == {"base64": "AP8Q"} and rows[2]["bin"] == {"base64": ""}
    assert rows[1]["num"] == "12345678901234567890.01234567890" and rows[2]["num"] == "NaN"
    assert at(rows[1]["ts"]) == dt.datetime(2026, 1, 2, 2, 4, 5, 123456, tzinfo=dt.UTC)
    assert re.fullmatch(r"2026-01-0[12]T\d\d:\d\d:05\.123456[+-]\d\d:\d\d", rows[1]["ts"])
    assert (rows[2]["ts"], rows[2]["d"], rows[2]["tm"]) == ("infinity", "-infinity", "24:00:00")
    assert rows[1]["f"] == decimal.Decimal("0.1") and rows[2]["f"] == "Infinity"
    assert rows[1]["moods"] == ["ok", "sad"] and rows[2]["moods"] == ["sad", None]
    assert rows[2]["jd"] == "s"
    assert all(v is None for k, v in rows[3].items() if k not in ("id", "person_id"))

    # The table without a primary key: her two rows, json intact, ordered by the columns
    # that have an ordering (json and point have none; NULL last on PostgreSQL).
    assert tables["unkeyed"]["columns"]["pos"] == "point"
    unkeyed = tables["unkeyed"]["rows"]
    assert at(unkeyed[0]["at"]) == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    assert [{**r, "at": None} for r in unkeyed] == [
        {"person_id": 1, "doc": {"b": 2, "a": [decimal.Decimal("1.50")]},
         "tags": ["x", "y"], "at": None, "pos": "(1,2)"},
        {"person_id": 1, "doc": {"b": 1}, "tags": None, "at": None, "pos": None},
    ]  # fmt: skip


# --- MariaDB -----------------------------------------------------------------------------

MARIADB_DDL = [
    "CREATE TABLE person (id integer PRIMARY KEY, email varchar(254) NOT NULL)",
    """CREATE TABLE typed (
        id integer PRIMARY KEY,
        person_id integer NOT NULL, FOREIGN KEY (person_id) REFERENCES person (id),
        colours SET('red','green','blue'), size ENUM('s','m','l'), dur TIME, fine TIME(6),
        flags BIT(10), born YEAR, doc JSON, amount DECIMAL(30,10), blob_ BLOB,
        at DATETIME(6), ratio DOUBLE, vb VARBINARY(8)
    )""",
    """CREATE TABLE unkeyed (
        person_id integer NOT NULL, FOREIGN KEY (person_id) REFERENCES person (id),
        doc JSON, note text
    )""",
]

MARIADB_ROWS = [
    "INSERT INTO person VALUES (1, 'mette.types@example.dk'), (2, 'ole.other@example.dk')",
    """INSERT INTO typed VALUES
     (1, 1, 'blue,red', 'm', '30:00:00', '-01:30:00.250000', b'1000000001', 2026,
      '{"a": 1.10, "b": [true, null],  "a": 2}', '12345678901234567890.0123456789',
      x'00ff10', '2026-01-02 03:04:05.500000', 0.1, x'0102'),
     (2, 1, '', 'l', '-838:59:59', '00:00:00.000001', b'0', 1901, '"text"', '-0.0000000001',
      x'', '1000-01-01 00:00:00', -1e308, x''),
     (3, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
     (4, 2, 'green', 's', '10:00:00', NULL, NULL, NULL, '{"k": "ole-json"}', 999999.99,
      NULL, NULL, NULL, NULL)""",
    """INSERT INTO unkeyed VALUES (1, '{"z": [1, 2]}', 'hers'), (1, NULL, NULL),
       (2, '{"k": "ole-json"}', 'OLESTAR')""",
]


@pytest.fixture
def mariadb_url(target_db: TargetDb) -> str:
    if target_db.engine_name != "mariadb":
        pytest.skip("MariaDB types")
    return target_db.url


@pytest.mark.parametrize("target_db", ["mariadb"], indirect=True)
def test_mariadb_types_round_trip(
    mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    engine = sa.create_engine(mariadb_url)
    try:
        with engine.begin() as connection:
            for statement in MARIADB_DDL + MARIADB_ROWS:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
    document, text = export(tmp_path, mariadb_url, monkeypatch)
    tables = tables_of(document)
    assert set(tables) == {"person", "typed", "unkeyed"}
    typed = tables["typed"]
    assert typed["columns"]["doc"] == "JSON"
    assert typed["columns"]["colours"] == "SET('red','green','blue')"
    rows = rows_by_id(typed)
    assert set(rows) == {1, 2, 3}

    # The database's own text and values, read directly (pymysql, no SQLAlchemy types).
    stored = {
        r[0]: r[1:]
        for r in direct(
            mariadb_url,
            "SELECT id, colours, size, CAST(dur AS CHAR), CAST(fine AS CHAR), flags + 0, born,"
            " doc, amount, blob_, at, ratio, vb, dur, fine FROM typed WHERE person_id = 1",
        )
    }
    columns = ("colours", "size", "dur_text", "fine_text", "flags", "born", "doc", "amount",
               "blob_", "at", "ratio", "vb", "dur", "fine")  # fmt: skip
    decode: dict[str, Callable[[Any], Any]] = {
        "colours": lambda v: ",".join(v),
        "size": str,
        "dur_text": str,
        "fine_text": str,
        "flags": int,
        "born": int,
        "doc": lambda v: v,
        "amount": decimal.Decimal,
        "blob_": base64_bytes,
        "at": dt.datetime.fromisoformat,
        "ratio": float,
        "vb": base64_bytes,
        "dur": parse_duration,
        "fine": parse_duration,
    }
    source = {"dur_text": "dur", "fine_text": "fine"}
    for row_id, values in stored.items():
        for column, value in zip(columns, values, strict=True):
            exported = rows[row_id][source.get(column, column)]
            if column == "doc" and value is not None:
                value = json.loads(value, parse_float=decimal.Decimal)
            got = optional(decode[column])(exported)
            if column == "colours" and value is not None:
                assert exported == (value.split(",") if value else [])
            assert got == value, (row_id, column, exported, value)

    # The documented encodings, spelt out.
    assert rows[1]["colours"] == ["red", "blue"] and rows[2]["colours"] == []
    assert rows[1]["dur"] == "30:00:00" and rows[2]["dur"] == "-838:59:59"
    assert rows[1]["fine"] == "-01:30:00.250000" and rows[2]["fine"] == "00:00:00.000001"
    assert rows[1]["flags"] == 0b1000000001 and rows[1]["born"] == 2026
    assert '"doc": {"a": 1.10, "b": [true, null],  "a": 2}' in text
    assert rows[2]["doc"] == "text"
    assert rows[1]["amount"] == "12345678901234567890.0123456789"
    assert rows[1]["blob_"] == {"base64": "AP8Q"} and rows[2]["vb"] == {"base64": ""}
    assert rows[1]["at"] == "2026-01-02T03:04:05.500000"
    assert rows[2]["ratio"] == decimal.Decimal("-1e308")
    assert all(v is None for k, v in rows[3].items() if k not in ("id", "person_id"))

    # Without a primary key: ordered by every column (NULL first on MariaDB).
    assert tables["unkeyed"]["rows"] == [
        {"person_id": 1, "doc": None, "note": None},
        {"person_id": 1, "doc": {"z": [1, 2]}, "note": "hers"},
    ]


def parse_duration(text: str) -> dt.timedelta:
    """`[-]HH:MM:SS[.ffffff]` as a timedelta (what pymysql reads from a TIME)."""
    sign = -1 if text.startswith("-") else 1
    hours, minutes, seconds = text.lstrip("-").split(":")
    whole, _, fraction = seconds.partition(".")
    micro = (int(hours) * 3600 + int(minutes) * 60 + int(whole)) * 1_000_000
    micro += int(fraction.ljust(6, "0")) if fraction else 0
    return sign * dt.timedelta(microseconds=micro)


# --- SQLite ------------------------------------------------------------------------------

SQLITE_DDL = [
    "CREATE TABLE person (id INTEGER PRIMARY KEY, email TEXT NOT NULL)",
    """CREATE TABLE typed (
        id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES person (id),
        data BLOB, ratio REAL, amount NUMERIC, price NUMERIC(12, 2), born DATE,
        at DATETIME, doc JSON
    )""",
    """CREATE TABLE unkeyed (person_id INTEGER NOT NULL REFERENCES person (id),
        data BLOB, note TEXT)""",
]

SQLITE_ROWS = [
    "INSERT INTO person VALUES (1, 'mette.types@example.dk'), (2, 'ole.other@example.dk')",
    """INSERT INTO typed VALUES
     (1, 1, x'00ff10', 0.1, 3.14159265358979, 1234.5, '2026-01-02',
      '2026-01-02 03:04:05.000000', '{"a": 1.10}'),
     (2, 1, x'', 1e308, 12345678901234567, '0.10', 'not a date', 1767225600, 'NaN'),
     (3, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
     (4, 2, x'ff', 2.5, 999999.99, 1, NULL, NULL, '{"k": "ole-json"}')""",
    "INSERT INTO unkeyed VALUES (1, x'01', 'hers'), (2, x'02', 'OLESTAR')",
]


@pytest.mark.parametrize("target_db", ["sqlite"], indirect=True)
def test_sqlite_types_round_trip(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    if target_db.engine_name != "sqlite":
        pytest.skip("SQLite types")
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            for statement in SQLITE_DDL + SQLITE_ROWS:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
    document, _ = export(tmp_path, target_db.url, monkeypatch)
    tables = tables_of(document)
    rows = rows_by_id(tables["typed"])
    assert set(rows) == {1, 2, 3}
    stored = {
        r[0]: r[1:]
        for r in direct(
            target_db.url,
            "SELECT id, data, ratio, amount, price, born, at, doc FROM typed WHERE person_id = 1",
        )
    }

    def number(text: str) -> int | float:
        # A NUMERIC holds an integer or a double: its exact decimal text reads back as it.
        return int(text) if text.lstrip("-").isdigit() else float(decimal.Decimal(text))

    def stored_datetime(value: Any) -> Any:
        """A DATETIME as SQLAlchemy stores it; any other value as it is."""
        if not isinstance(value, str):
            return value
        try:
            return dt.datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S.%f")
        except ValueError:
            return value

    def stored_json(value: Any) -> Any:
        """The JSON value of the stored text; text that is not JSON stays text."""
        try:
            return json.loads(value, parse_float=decimal.Decimal, parse_constant=not_json)
        except (TypeError, ValueError):
            return value

    decode: dict[str, Callable[[Any], Any]] = {
        "data": base64_bytes,
        "ratio": float,
        "amount": number,
        "price": number,
        "born": lambda v: v,
        "at": stored_datetime,
        "doc": lambda v: v,
    }
    columns = ("data", "ratio", "amount", "price", "born", "at", "doc")
    for row_id, values in stored.items():
        for column, value in zip(columns, values, strict=True):
            exported = rows[row_id][column]
            if column == "doc":
                value = stored_json(value)
            assert optional(decode[column])(exported) == value, (row_id, column, exported)

    assert rows[1]["data"] == {"base64": "AP8Q"} and rows[2]["data"] == {"base64": ""}
    assert rows[1]["ratio"] == decimal.Decimal("0.1")
    assert rows[1]["amount"] == "3.14159265358979" and rows[1]["price"] == "1234.50"
    assert rows[2]["amount"] == "12345678901234567" and rows[2]["price"] == "0.10"
    assert rows[1]["at"] == "2026-01-02T03:04:05" and rows[2]["at"] == 1767225600
    assert rows[2]["born"] == "not a date"  # SQLite stores any text: kept as it is
    assert rows[1]["doc"] == {"a": decimal.Decimal("1.10")} and rows[2]["doc"] == "NaN"
    assert tables["unkeyed"]["rows"] == [{"person_id": 1, "data": {"base64": "AQ=="},
                                          "note": "hers"}]  # fmt: skip
