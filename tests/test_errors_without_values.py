"""No values in errors (issue 17, point 3).

An identifier value that is not of its column's type (an e-mail for a UUID, text for
an integer, an integer the column cannot hold, a date that does not exist) is exit 2
before any query, in one line naming `--subject`, the column and the type — never the
value. The value then appears in no output, no file written, and not in the state
database's bytes; nothing in the target changes. `audit find` needs no target
database: it hashes the value and simply finds no run (exit 0), again quoting nothing.

A database's own error text can quote a value (`invalid input syntax for type uuid:
"…"`, `Duplicate entry '…' for key`, `Incorrect date value: '…'`): real failing
statements on each engine show that describe_failure / describe_write_failure keep
the error's class and code and a generic reason, and drop the text; and an export
whose database fails half-way writes that database's entry as an error without the
rows read so far or the driver's text.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gdpr_sweep.engines import describe_failure, describe_write_failure
from gdpr_sweep.errors import UsageError
from gdpr_sweep.subject import export as export_module
from gdpr_sweep.subject.identifiers import identifier_value as _identifier_value
from tests.conftest import TargetDb, run_cli, write_config

ANNA_ID = "0b6f3c2e-8d7a-4c1e-9f00-5a1b2c3d4e5f"
ANNA_EMAIL = "anna.andersen@example.dk"
#: Anna's own values: none may reach output other than the export file.
PERSONAL = (ANNA_EMAIL, "Anna Andersen", "anna-note")

CONFIG = """
[subject]
root = "person"
identifiers = { id = "id", number = "number", born = "born", email = "email" }
"""


def schema(engine_name: str) -> sa.MetaData:
    m = sa.MetaData()
    id_type = postgresql.UUID(as_uuid=False) if engine_name == "postgresql" else sa.String(36)
    sa.Table(
        "person", m,
        sa.Column("id", id_type, primary_key=True),
        sa.Column("number", sa.Integer, nullable=False, unique=True),
        sa.Column("born", sa.Date, nullable=False, index=True),
        sa.Column("email", sa.String(254), nullable=False, index=True),
        sa.Column("name", sa.String(120)),
    )  # fmt: skip
    sa.Table(
        "note", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", id_type, sa.ForeignKey("person.id"), nullable=False, index=True),
        sa.Column("body", sa.Text),
    )  # fmt: skip
    return m


ROWS = {
    "person": [
        {"id": ANNA_ID, "number": 4711, "born": dt.date(1990, 5, 17), "email": ANNA_EMAIL,
         "name": "Anna Andersen"},
        {"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "number": 4712,
         "born": dt.date(1985, 1, 2), "email": "bo@example.dk", "name": "Bo Berg"},
    ],
    "note": [
        {"id": 1, "person_id": ANNA_ID, "body": "anna-note"},
        {"id": 2, "person_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "body": "bo-note"},
    ],
}  # fmt: skip


def dump(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            return {
                name: [
                    tuple(str(v) for v in row)
                    for row in connection.execute(
                        sa.select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def files_hold(directory: Path, value: str) -> list[str]:
    """The files under `directory` (the state database, the export, the receipt, any
    scratch file left over; not SQLite's target database) whose bytes contain `value`."""
    needle = value.encode()
    return [
        str(path)
        for path in directory.rglob("*")
        if path.is_file() and not path.name.startswith("target.db") and needle in path.read_bytes()
    ]


def commands(config: Path, subject: str, tmp_path: Path) -> dict[str, list[str]]:
    c = ["-c", str(config), "--subject", subject]
    return {
        "export": ["export", *c, "--out", str(tmp_path / "export.json")],
        "erase --dry-run": ["erase", *c, "--dry-run", "--json"],
        "erase": ["erase", *c, "--json", "--receipt", str(tmp_path / "receipt.json")],
        "audit find": ["audit", "find", *c, "--json"],
    }


def assert_refused(result, value: str, column: str) -> None:  # type: ignore[no-untyped-def]
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert "Traceback" not in output and "internal error" not in output, output
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --subject: {column} is "), line
    assert line.endswith("; the value given is not one"), line
    assert value not in output


# (identifier kind, a value not of the column's type, the column, refused on which engines)
BAD_VALUES = [
    pytest.param("id", "anna@x.dk", "person.id", {"postgresql"}, id="email-for-uuid"),
    pytest.param("number", "anna-4711", "person.number", None, id="text-for-integer"),
    pytest.param(
        "number", "99999999999999999999", "person.number", None, id="integer-out-of-range"
    ),
    pytest.param("born", "2024-02-30", "person.born", None, id="no-such-date"),
    pytest.param("born", "17/05/1990", "person.born", None, id="not-iso-date"),
]


@pytest.mark.parametrize(("kind", "value", "column", "refused_on"), BAD_VALUES)
def test_a_value_not_of_the_identifiers_type_is_refused_without_quoting_it(
    target_db: TargetDb, tmp_path, monkeypatch, kind, value, column, refused_on
):
    target_db.create(schema(target_db.engine_name), ROWS)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    before = dump(target_db.url)
    refused = refused_on is None or target_db.engine_name in refused_on

    for name, args in commands(config, f"{kind}={value}", tmp_path).items():
        result = run_cli(*args)
        output = result.stdout + result.stderr
        assert value not in output, (name, output)
        assert "Traceback" not in output, (name, output)
        if name == "audit find" or not refused:
            # `audit find` reads no target database; a String(36) "UUID" column is
            # text, and the text simply matches no row.
            assert result.exit_code == 0, (name, output)
            if name == "audit find" and refused:
                # A refused export or erasure recorded no run at all: the value is
                # checked in every database before the run starts.
                assert result.json()["runs"] == [], result.json()
        else:
            assert_refused(result, value, column)
        assert files_hold(tmp_path, value) == [], name
        assert dump(target_db.url) == before, name
        for marker in PERSONAL:
            assert marker not in output, (name, marker)

    if refused:
        # Nothing was exported or written: no export file, no receipt.
        assert not (tmp_path / "export.json").exists()
        assert not (tmp_path / "receipt.json").exists()
        assert list(tmp_path.glob(".export.json.*")) == []


def test_valid_values_of_each_type_still_find_the_person(target_db, tmp_path, monkeypatch):
    """The checked value is bound as the column's own type: each identifier finds Anna."""
    target_db.create(schema(target_db.engine_name), ROWS)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    for subject in (f"id={ANNA_ID}", "number=4711", "born=1990-05-17", f"email={ANNA_EMAIL}"):
        out = tmp_path / "export.json"
        result = run_cli("export", "-c", str(config), "--subject", subject, "--out", str(out))
        assert result.exit_code == 0, result.stdout + result.stderr
        [database] = json.loads(out.read_text(encoding="utf-8"))["databases"]
        assert database["error"] is None
        tables = {t["table"]: t["rows"] for t in database["tables"]}
        assert [r["email"] for r in tables["person"]] == [ANNA_EMAIL], subject
        assert [r["body"] for r in tables["note"]] == ["anna-note"], subject


def test_text_longer_than_its_varchar_finds_nothing(target_db, tmp_path, monkeypatch):
    """Text is bound as given whatever its length: no rows, exit 0, not an error (SQLite
    does not enforce VARCHAR(n), so the length is no test of a match)."""
    target_db.create(schema(target_db.engine_name), ROWS)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    long_value = "x" * 300 + "@example.dk"
    before = dump(target_db.url)
    result = run_cli("erase", "-c", str(config), "--subject", f"email={long_value}", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["erased"] == []
    assert long_value not in result.stdout + result.stderr
    assert dump(target_db.url) == before


# --- the identifier check itself ---------------------------------------------------


def column(type_: sa.types.TypeEngine) -> sa.Column:
    return sa.Table("person", sa.MetaData(), sa.Column("key", type_)).columns["key"]


@pytest.mark.parametrize(
    ("type_", "dialect", "good", "bad"),
    [
        (sa.Integer(), "postgresql", ["2147483647", "-2147483648", " 7 "], ["2147483649", "1.0"]),
        (sa.Integer(), "sqlite", ["9223372036854775807"], ["9223372036854775810", "1e3"]),
        (sa.Integer(), None, ["3000000000"], ["9223372036854775810", "x"]),
        (sa.SmallInteger(), "postgresql", ["32767"], ["32769", "٣"]),
        (sa.BigInteger(), "mariadb", ["-9223372036854775808"], ["-9223372036854775809"]),
        (postgresql.UUID(), "postgresql", [ANNA_ID, ANNA_ID.upper()], ["anna@x.dk", ""]),
        (sa.Uuid(), "sqlite", [ANNA_ID.replace("-", "")], ["not-a-uuid"]),
        (sa.Date(), "mariadb", ["2024-02-29"], ["2024-02-30", "2024-13-01", "1990-05-17T00:00"]),
        (
            sa.DateTime(),
            "postgresql",
            ["2024-02-29T10:00:00"],
            ["2024-02-29T25:00", "x", "2024-02-29T10:00+01:00"],
        ),
        (sa.DateTime(timezone=True), "postgresql", ["2024-02-29T10:00Z"], ["2024-02-29T10:00"]),
        (sa.Numeric(10, 2), "postgresql", ["12.50", "-1e3"], ["NaN", "Infinity", "1,5", "x"]),
        (sa.Boolean(), "postgresql", ["true", "0"], ["yes please"]),
        (sa.Enum("a", "b", name="kind"), "postgresql", ["a"], ["zz", "A"]),
        (sa.String(5), "postgresql", ["much longer than five"], []),
    ],
)
def test_identifier_values_are_checked_against_the_column_type(type_, dialect, good, bad):
    for text in good:
        _identifier_value(column(type_), text, dialect)
    for text in bad:
        with pytest.raises(UsageError) as raised:
            _identifier_value(column(type_), text, dialect)
        message = str(raised.value)
        assert message.startswith("--subject: person.key is ") and "\n" not in message
        assert not text or text not in message, message


def test_a_checked_value_is_of_the_columns_python_type():
    assert _identifier_value(column(sa.Integer()), "+42", "postgresql") == 42
    assert _identifier_value(column(postgresql.UUID()), ANNA_ID.upper(), "postgresql") == (
        uuid.UUID(ANNA_ID)
    )
    assert _identifier_value(column(sa.Date()), "1990-05-17", "sqlite") == dt.date(1990, 5, 17)
    assert _identifier_value(column(sa.String(5)), " Anna ", "sqlite") == " Anna "


# --- a database's own error text ---------------------------------------------------


def failing_statements(engine_name: str) -> list[tuple[str, str]]:
    """(SQL, the value its error text quotes), run on a table t(id, email UNIQUE, d DATE)."""
    if engine_name == "postgresql":
        return [
            ("SELECT CAST('anna@x.dk' AS uuid)", "anna@x.dk"),
            ("SELECT CAST('2024-02-30' AS date)", "2024-02-30"),
            ("INSERT INTO t (id, email, d) VALUES (2, 'taken@x.dk', '2024-01-01')", "taken@x.dk"),
            ("SELECT CAST('4711x' AS integer)", "4711x"),
        ]
    if engine_name == "mariadb":
        return [
            ("INSERT INTO t (id, email, d) VALUES (2, 'taken@x.dk', '2024-01-01')", "taken@x.dk"),
            ("INSERT INTO t (id, email, d) VALUES (3, 'new@x.dk', '2024-02-30')", "2024-02-30"),
            ("INSERT INTO t (id, email, d) VALUES ('abcx', 'n2@x.dk', '2024-01-01')", "abcx"),
            ("SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'anna@x.dk'", "anna@x.dk"),
        ]
    return [
        ('SELECT * FROM "anna@x.dk"', "anna@x.dk"),
        ("INSERT INTO t (id, email, d) VALUES (1, 'taken@x.dk', '2024-01-01')", "1"),
    ]


def test_a_failed_statement_is_described_without_the_drivers_text(target_db: TargetDb):
    engine = sa.create_engine(target_db.url)
    url = engine.url
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, email VARCHAR(40) UNIQUE, d DATE)"
            )
            connection.exec_driver_sql("INSERT INTO t VALUES (1, 'taken@x.dk', '2024-01-01')")
        for sql, value in failing_statements(target_db.engine_name):
            with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as raised:
                connection.exec_driver_sql(sql)
            assert value in str(raised.value.orig) or value == "1"  # the driver quotes it
            for text in (describe_failure(raised.value, url), describe_write_failure(raised.value)):
                assert text.startswith("the statement failed ("), text
                assert type(raised.value.orig).__name__ in text
                if value != "1":
                    assert value not in text, text
                assert "\n" not in text
        # An error whose text names objects only is kept: it tells the operator what to fix.
        with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as raised:
            connection.exec_driver_sql("INSERT INTO t (id, email, d) VALUES (1, 'x', '2024-01-01')")
        text = describe_failure(raised.value, url)
        assert "'x'" not in text
        if target_db.engine_name == "postgresql":
            assert 'violates unique constraint "t_pkey"' in text and "23505" in text, text
        elif target_db.engine_name == "sqlite":
            assert "UNIQUE constraint failed: t.id" in text, text
        else:
            assert "1062" in text and "unique key" in text, text
    finally:
        engine.dispose()


def test_an_export_whose_database_fails_half_way_keeps_neither_rows_nor_driver_text(
    target_db: TargetDb, tmp_path, monkeypatch
):
    """The database's rows went to a scratch file that is dropped; its entry is an error
    naming the failure's class and code, never the driver's text quoting a value."""
    target_db.create(schema(target_db.engine_name), ROWS)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    failing = {
        "postgresql": "SELECT CAST('anna@x.dk' AS uuid)",
        "mariadb": "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'anna@x.dk'",
        "sqlite": 'SELECT * FROM "anna@x.dk"',
    }[target_db.engine_name]
    write_database = export_module._write_database

    def half_way(out, connection, *args, **kwargs):  # type: ignore[no-untyped-def]
        write_database(out, connection, *args, **kwargs)  # Anna's rows, to the scratch file
        connection.exec_driver_sql(failing)

    monkeypatch.setattr(export_module, "_write_database", half_way)
    out = tmp_path / "export.json"
    result = run_cli(
        "export", "-c", str(config), "--subject", f"email={ANNA_EMAIL}", "--out", str(out)
    )
    output = result.stdout + result.stderr
    assert result.exit_code == 3, output
    assert "Traceback" not in output and "anna@x.dk" not in output, output
    document = json.loads(out.read_text(encoding="utf-8"))
    [database] = document["databases"]
    assert database["tables"] == []
    assert database["error"].startswith("database main: the statement failed ("), database
    assert "case_insensitive_matches" not in database
    assert files_hold(tmp_path, "anna@x.dk") == []
    for marker in PERSONAL:
        assert files_hold(tmp_path, marker) == [], marker
        assert marker not in output


def test_an_integer_a_postgresql_integer_cannot_hold_is_quoted_nowhere(
    target_db: TargetDb, tmp_path, monkeypatch
):
    """3,000,000,000 fits SQLite's INTEGER (64 bits), not PostgreSQL's or MariaDB's (32).

    MariaDB reflects its own INTEGER type, checked against 32 bits: exit 2. PostgreSQL's
    reflected INTEGER is SQLAlchemy's generic one, which only the dialect tells apart
    from SQLite's: the dialect tells `_identifier_value` its 32 bits, so exit 2 too.
    SQLite: a valid value that finds nobody.
    """
    target_db.create(schema(target_db.engine_name), ROWS)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch)
    before = dump(target_db.url)
    value = "3000000000"
    for name, args in commands(config, f"number={value}", tmp_path).items():
        if name == "audit find":
            continue
        result = run_cli(*args)
        output = result.stdout + result.stderr
        expected = {"sqlite": 0, "mariadb": 2, "postgresql": 2}[target_db.engine_name]
        assert result.exit_code == expected, (name, output)
        assert value not in output and "Traceback" not in output, (name, output)
        assert files_hold(tmp_path, value) == [], name
        assert dump(target_db.url) == before, name
