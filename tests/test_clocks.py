"""Clocks that are not what they seem: epoch integers, Julian numbers, odd text, zero dates.

A clock value that cannot be read as a point in time is never due (like NULL), on
every engine; `since_format` reads numeric clocks. Each test builds the table, runs the
real CLI and compares every row before and after.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.conftest import TargetDb, run_cli, write_config

AS_OF = "2026-06-01"
CPH = dt.timezone(dt.timedelta(hours=2))  # Copenhagen in summer
#: 2026-06-01 local midnight minus one hour: written an hour before the as-of.
HOUR_AGO = dt.datetime(2026, 5, 31, 23, tzinfo=CPH)
LONG_AGO = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)


def epoch(instant: dt.datetime) -> int:
    return int(instant.timestamp())


def julian(instant: dt.datetime) -> float:
    return instant.timestamp() / 86400 + 2440587.5


def rule(since: str = "happened_at", extra: str = "", table: str = "event") -> str:
    return (
        f'[[rules]]\nid = "r"\ntable = "{table}"\naction = "delete"\nafter = "1 year"\n'
        f'since = "{since}"\n{extra}'
    )


def ids(target_db: TargetDb, table: str = "event") -> list[int]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            return list(connection.exec_driver_sql(f"SELECT id FROM {table} ORDER BY id").scalars())
    finally:
        engine.dispose()


def insert_raw(target_db: TargetDb, table: str, rows: list[tuple], sql_mode: str | None = None):
    """Insert values as given, bypassing SQLAlchemy's types (SQLite keeps them as is)."""
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            if sql_mode is not None:
                connection.exec_driver_sql(f"SET SESSION sql_mode = '{sql_mode}'")
            width = len(rows[0])
            marks = (
                ", ".join(["?"] * width)
                if target_db.engine_name == "sqlite"
                else ", ".join(["%s"] * width)
            )
            for row in rows:
                connection.exec_driver_sql(f"INSERT INTO {table} VALUES ({marks})", row)
    finally:
        engine.dispose()


def plan_and_run(tmp_path, target_db, monkeypatch, body: str) -> tuple[dict, dict]:
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    planned = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert planned.exit_code == 0, planned.stderr
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--force", "--json")
    assert result.exit_code == 0, result.stderr + result.stdout
    return planned.json()["items"][0], result.json()["items"][0]


def event_table(clock_type: sa.types.TypeEngine) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "event",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("happened_at", clock_type),
    )
    return metadata


def test_sqlite_clock_values_that_are_not_dates_are_never_due(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    target_db.create(event_table(sa.DateTime))
    insert_raw(
        target_db,
        "event",
        [
            (1, "2024-01-01 12:00:00.000000"),  # an old ISO timestamp: due
            (2, "2024-01-01"),  # an old ISO date: due
            (3, "2024-01-01T12:00:00"),  # ISO with a T: due
            (4, "2026-05-31 23:00:00"),  # recent: not due
            (5, epoch(HOUR_AGO)),  # an epoch integer written an hour ago
            (6, epoch(LONG_AGO)),  # an old epoch integer: unreadable without since_format
            (7, julian(LONG_AGO)),  # a Julian day number
            (8, "15.11.2020"),  # a Danish date as text
            (9, ""),
            (10, None),
            (11, "2024-13-45"),  # not a date
            (12, "0000-00-00"),  # a zero date
            (13, "2460000.5"),  # a Julian number as text
            (14, "2023-02-29"),  # no such day (SQLite's date() alone accepts it)
        ],
    )
    planned, ran = plan_and_run(tmp_path, target_db, monkeypatch, rule())
    assert planned["due"] == ran["done"] == 3
    assert ids(target_db) == list(range(4, 15))
    # check warns, with the column and the count (NULL is not counted), and passes.
    checked = run_cli("check", "-c", str(tmp_path / "gdpr-sweep.toml"))
    assert checked.exit_code == 0, checked.stdout
    assert (
        "rules[0].since: 9 row(s) of event.happened_at hold a value that cannot be read as "
        "a date; they are never due" in " ".join(checked.stdout.split())
    ), checked.stdout


@pytest.mark.parametrize(
    ("since_format", "encode"),
    [
        ("unixepoch", epoch),
        ("unixepoch-ms", lambda t: epoch(t) * 1000),
        ("julianday", julian),
    ],
)
def test_since_format_reads_numeric_clocks(target_db, tmp_path, monkeypatch, since_format, encode):
    clock_type = sa.Double if since_format == "julianday" else sa.BigInteger
    target_db.create(event_table(clock_type))
    # The cutoff for "1 year" at 2026-06-01: due when the local date is before 2025-06-01.
    just_due = dt.datetime(2025, 5, 31, 23, 59, tzinfo=CPH)
    just_not = dt.datetime(2025, 6, 1, 0, 0, 1, tzinfo=CPH)
    rows = [(1, encode(LONG_AGO)), (2, encode(just_due)), (3, encode(just_not)),
            (4, encode(HOUR_AGO)), (5, None)]  # fmt: skip
    if target_db.engine_name == "sqlite":
        rows += [(6, "2020-01-01"), (7, "long ago")]  # text in a numeric clock: unreadable
    insert_raw(target_db, "event", rows)
    body = rule(extra=f'since_format = "{since_format}"\n')
    planned, ran = plan_and_run(tmp_path, target_db, monkeypatch, body)
    assert planned["due"] == ran["done"] == 2
    assert ids(target_db) == [r[0] for r in rows if r[0] >= 3]


def test_a_sqlite_text_clock_column_is_read_as_iso_dates(tmp_path, monkeypatch):
    # SQLite's own advice is to keep dates as ISO text: a TEXT column can be a clock.
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    target_db.create(event_table(sa.Text))
    insert_raw(target_db, "event", [(1, "2024-01-01"), (2, "2026-05-01 10:00"),
                                    (3, "01/01/2020"), (4, 1577836800)])  # fmt: skip
    planned, ran = plan_and_run(tmp_path, target_db, monkeypatch, rule())
    assert planned["due"] == ran["done"] == 1
    assert ids(target_db) == [2, 3, 4]
    integer = write_config(tmp_path, rule(), target_db.url, monkeypatch)
    target_db.scalar("SELECT 1")
    assert run_cli("check", "-c", str(integer)).exit_code == 0


def test_since_format_also_reads_unless_after(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    metadata = event_table(sa.Integer)
    metadata.tables["event"].append_column(sa.Column("consent_until", sa.Integer))
    target_db.create(metadata)
    later = dt.datetime(2026, 6, 2, tzinfo=CPH)
    insert_raw(target_db, "event", [(1, epoch(LONG_AGO), epoch(later)),
                                    (2, epoch(LONG_AGO), epoch(LONG_AGO)),
                                    (3, epoch(LONG_AGO), None),
                                    (4, epoch(LONG_AGO), "2999-01-01")])  # fmt: skip
    body = rule(extra='since_format = "unixepoch"\nunless_after = "consent_until"\n')
    planned, _ = plan_and_run(tmp_path, target_db, monkeypatch, body)
    assert (planned["due"], planned["held"]) == (3, 1)
    assert ids(target_db) == [1]


def test_since_format_on_a_timestamp_column_is_refused(target_db, tmp_path, monkeypatch):
    target_db.create(event_table(sa.DateTime))
    config = write_config(
        tmp_path, rule(extra='since_format = "unixepoch"\n'), target_db.url, monkeypatch
    )
    result = run_cli("check", "-c", str(config))
    if target_db.engine_name == "sqlite":
        assert result.exit_code == 0, result.stdout  # SQLite: the declared type says little
    else:
        assert result.exit_code == 2
        assert "rules[0].since: column 'happened_at'" in result.stdout
        assert "since_format = 'unixepoch' reads numbers" in result.stdout


def test_an_unknown_since_format_is_a_config_error(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'target.db'}"
    config = write_config(tmp_path, rule(extra='since_format = "epoch"\n'), url, monkeypatch)
    result = run_cli("check", "-c", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: rules[0].since_format: 'epoch' is not one of")


@pytest.mark.parametrize("clock_type", ["DATE", "DATETIME"])
def test_mariadb_zero_dates_are_never_due(target_db, tmp_path, monkeypatch, clock_type):
    if target_db.engine_name != "mariadb":
        pytest.skip("zero dates are a MariaDB/MySQL feature")
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TABLE event (id INT PRIMARY KEY, happened_at {clock_type} NULL)"
        )
    engine.dispose()
    suffix = "" if clock_type == "DATE" else " 00:00:00"
    insert_raw(
        target_db,
        "event",
        [
            (1, "0000-00-00" + suffix),  # "not ended yet" in old applications
            (2, "2020-00-00" + suffix),  # partial zero dates
            (3, "2020-05-00" + suffix),
            (4, "2020-05-17" + suffix),  # a real old date: due
            (5, "2026-05-31" + suffix),
            (6, None),
        ],
        sql_mode="",
    )
    planned, ran = plan_and_run(tmp_path, target_db, monkeypatch, rule())
    assert planned["due"] == ran["done"] == 1
    assert ids(target_db) == [1, 2, 3, 5, 6]
    checked = run_cli("check", "-c", str(tmp_path / "gdpr-sweep.toml"))
    assert checked.exit_code == 0 and "3 row(s) of event.happened_at" in checked.stdout


def test_since_latest_ignores_activity_that_is_not_a_date(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    metadata = sa.MetaData()
    sa.Table(
        "customer",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime),
    )
    sa.Table(
        "engagement",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer),
        sa.Column("performed_at", sa.DateTime),
    )
    target_db.create(metadata)
    insert_raw(target_db, "customer", [(1, "2020-01-01"), (2, "2020-01-01"), (3, "2020-01-01")])
    insert_raw(
        target_db,
        "engagement",
        [
            (1, 1, "2021-01-01"),  # customer 1: old activity only: due
            (2, 2, "2021-01-01"),
            (3, 2, epoch(HOUR_AGO)),  # customer 2: an epoch value is no activity: due
            (4, 3, "2026-05-01"),  # customer 3: recent activity: not due
        ],
    )
    body = (
        '[[rules]]\nid = "r"\ntable = "customer"\naction = "delete"\nafter = "3 years"\n'
        'since = "created_at"\n'
        'since_latest = { table = "engagement", column = "performed_at", key = "customer_id" }\n'
    )
    planned, ran = plan_and_run(tmp_path, target_db, monkeypatch, body)
    assert planned["due"] == ran["done"] == 2
    assert ids(target_db, "customer") == [3]
