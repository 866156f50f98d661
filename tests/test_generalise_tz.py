"""`year`/`month` generalise on the local calendar of `sweep.timezone`, on every engine.

An instant (PostgreSQL `timestamptz`, MariaDB `TIMESTAMP`, UTC underneath) is truncated
to the local midnight that begins its local year or month: 00:30 on 1 January in
Copenhagen is 23:30 on 31 December in UTC, and must stay in its own year. Naive
timestamps and dates are local wall-clock values already; SQLite keeps text. The real
CLI generalises the rows, every value is compared exactly (instants as instants), and
a second plan finds nothing due. On MariaDB this needs the server's time-zone tables:
without them `check` (and so `plan`/`run`/`erase`) refuses, naming the key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from gdpr_sweep import strategies
from gdpr_sweep.engines import create_target_engine
from tests.conftest import TargetDb, run_cli, write_config

TZ = ZoneInfo("Europe/Copenhagen")
AS_OF = "2026-11-23"
ENDED = dt.date(2020, 1, 1)  # long before the as-of: every row is due
EMAIL = "person@example.dk"

COLUMNS = {
    "at_y": "year",
    "at_m": "month",
    "naive_y": "year",
    "naive_m": "month",
    "on_y": "year",
    "on_m": "month",
}
RULE = (
    '[[rules]]\nid = "generalise"\ntable = "event"\naction = "anonymise"\n'
    'after = "1 year"\nsince = "ended_on"\n[rules.columns]\n'
    + "".join(f'{column} = "{strategy}"\n' for column, strategy in COLUMNS.items())
)


def local(*args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ, fold=fold)  # type: ignore[misc]


#: Local moments in Copenhagen, each where UTC truncation would go wrong or near it.
MOMENTS: list[dt.datetime | None] = [
    local(2021, 1, 1, 0, 30),  # 00:30 on 1 Jan: 23:30 on 31 Dec 2020 in UTC
    local(2021, 3, 1, 0, 30),  # 00:30 on the 1st of a month, winter time
    local(2021, 8, 1, 0, 30),  # ... summer time: 22:30 UTC on 31 Jul
    local(2021, 12, 31, 23, 30),  # 23:30 on 31 Dec: not yet the next year
    local(2021, 3, 28, 3, 30),  # just after the spring change (CET to CEST)
    local(2021, 10, 31, 2, 30),  # the repeated hour of the autumn change, in CEST
    local(2021, 10, 31, 2, 30, fold=1),  # ... and again in CET
    local(2021, 10, 31, 12, 0),  # after the autumn change: the month began in CEST
    local(2021, 7, 15, 0, 30),  # summer: the year began in CET
    dt.datetime(2021, 2, 1, tzinfo=dt.UTC).astimezone(TZ),  # truncated in UTC only
    local(2021, 1, 1),  # already generalised on the local calendar: not due
    None,  # NULL: never due
]
DUE = sum(1 for m in MOMENTS if m is not None and m != local(m.year, 1, 1))


def first_of_year(moment: dt.datetime) -> dt.datetime:
    return local(moment.year, 1, 1)


def first_of_month(moment: dt.datetime) -> dt.datetime:
    return local(moment.year, moment.month, 1)


def aware_type(engine_name: str) -> sa.types.TypeEngine:
    """The column type that holds an instant on this engine."""
    if engine_name == "mariadb":
        return mysql.TIMESTAMP()
    return sa.DateTime(timezone=True)


def event_table(metadata: sa.MetaData, engine_name: str, email: bool = False) -> sa.Table:
    return sa.Table(
        "event",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        *([sa.Column("email", sa.String(254))] if email else []),
        sa.Column("ended_on", sa.Date),
        sa.Column("at_y", aware_type(engine_name), nullable=True),
        sa.Column("at_m", aware_type(engine_name), nullable=True),
        sa.Column("naive_y", sa.DateTime),
        sa.Column("naive_m", sa.DateTime),
        sa.Column("on_y", sa.Date),
        sa.Column("on_m", sa.Date),
    )


def stored_instant(engine_name: str, moment: dt.datetime) -> dt.datetime:
    """How the engine is given an instant: MariaDB naive UTC, SQLite local text."""
    if engine_name == "mariadb":
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    if engine_name == "sqlite":
        return moment.replace(tzinfo=None)
    return moment


def as_instant(engine_name: str, value: object) -> dt.datetime:
    """Read an instant back as an aware datetime (SQLite: its local wall-clock text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime), value
    if engine_name == "mariadb":
        assert value.tzinfo is None
        return value.replace(tzinfo=dt.UTC)
    if engine_name == "postgresql":
        assert value.tzinfo is not None
        return value
    return value.replace(tzinfo=TZ)


def as_naive(value: object) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime) and value.tzinfo is None, value
    return value


def as_date(value: object) -> dt.date:
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    assert isinstance(value, dt.date) and not isinstance(value, dt.datetime), value
    return value


def row_values(engine_name: str, moment: dt.datetime | None) -> dict:
    if moment is None:
        return dict.fromkeys(COLUMNS)
    instant = stored_instant(engine_name, moment)
    wall_clock = moment.replace(tzinfo=None)
    return {
        "at_y": instant,
        "at_m": instant,
        "naive_y": wall_clock,
        "naive_m": wall_clock,
        "on_y": moment.date(),
        "on_m": moment.date(),
    }


def create(target_db: TargetDb, metadata: sa.MetaData, rows: list[dict]) -> None:
    # Our own engine: on MariaDB its sessions are UTC, as the sweep's are.
    engine = create_target_engine(sa.make_url(target_db.url))
    try:
        with engine.begin() as connection:
            metadata.create_all(connection)
            connection.execute(metadata.tables["event"].insert(), rows)
    finally:
        engine.dispose()


def create_events(target_db: TargetDb) -> sa.Table:
    """Create `event` (see event_table) with a row per MOMENTS, all ended on ENDED."""
    metadata = sa.MetaData()
    event = event_table(metadata, target_db.engine_name)
    rows = [
        {"id": i + 1, "ended_on": ENDED, **row_values(target_db.engine_name, moment)}
        for i, moment in enumerate(MOMENTS)
    ]
    create(target_db, metadata, rows)
    return event


def restore(target_db: TargetDb, table: sa.Table, rows: list[dict]) -> None:
    engine = create_target_engine(sa.make_url(target_db.url))
    try:
        with engine.begin() as connection:
            connection.execute(table.delete())
            connection.execute(table.insert(), rows)
    finally:
        engine.dispose()


def read(target_db: TargetDb, table: sa.Table) -> list[sa.Row]:
    engine = create_target_engine(sa.make_url(target_db.url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.select(table).order_by(table.c.id)).all())
    finally:
        engine.dispose()


def assert_generalised(engine_name: str, row: sa.Row, moment: dt.datetime | None) -> None:
    if moment is None:
        assert all(getattr(row, column) is None for column in COLUMNS), row
        return
    year, month = first_of_year(moment), first_of_month(moment)
    assert as_instant(engine_name, row.at_y) == year, (moment, row)
    assert as_instant(engine_name, row.at_m) == month, (moment, row)
    assert as_naive(row.naive_y) == year.replace(tzinfo=None), (moment, row)
    assert as_naive(row.naive_m) == month.replace(tzinfo=None), (moment, row)
    assert as_date(row.on_y) == year.date(), (moment, row)
    assert as_date(row.on_m) == month.date(), (moment, row)


def test_generalised_on_the_local_calendar_and_done_after_one_run(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = create_events(target_db)
    config = write_config(
        tmp_path, RULE, target_db.url, monkeypatch, extra_sweep="max_fraction = 1"
    )

    checked = run_cli("check", "-c", str(config))
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    # The row already at local midnight on 1 January and the NULL row are done. (SQLite
    # compares text, and SQLAlchemy wrote that midnight as '... 00:00:00.000000', not
    # the '... 00:00:00' a truncation writes: rewritten once, unchanged in value.)
    before = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert before.exit_code == 0, before.stderr
    assert before.json()["items"][0]["due"] == DUE + (target_db.engine_name == "sqlite")

    run = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json", "--quiet")
    assert run.exit_code == 0, run.stderr
    stored = read(target_db, event)
    assert len(stored) == len(MOMENTS)
    for moment, row in zip(MOMENTS, stored, strict=True):
        assert_generalised(target_db.engine_name, row, moment)

    again = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["items"][0]["due"] == 0


ERASE_CONFIG = """
[subject]
root = "event"
identifiers = { email = "email" }

[subject.erase.event]
action = "anonymise"
[subject.erase.event.columns]
email = "null"
""" + "".join(f'{column} = "{strategy}"\n' for column, strategy in COLUMNS.items())


def test_erase_generalises_on_the_local_calendar(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata = sa.MetaData()
    event = event_table(metadata, target_db.engine_name, email=True)
    rows = [
        {
            "id": i + 1,
            "email": EMAIL if i % 2 == 0 else f"other{i}@example.dk",
            "ended_on": ENDED,
            **row_values(target_db.engine_name, moment),
        }
        for i, moment in enumerate(MOMENTS)
    ]
    create(target_db, metadata, rows)
    original = read(target_db, event)
    config = write_config(tmp_path, ERASE_CONFIG, target_db.url, monkeypatch)

    result = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr

    def assert_erased() -> None:
        stored = read(target_db, event)
        for i, (moment, row) in enumerate(zip(MOMENTS, stored, strict=True)):
            if i % 2 == 0:
                assert row.email is None
                assert_generalised(target_db.engine_name, row, moment)
            else:
                assert row == original[i]  # another person's row: untouched

    assert_erased()
    # Restored from a backup, `replay` generalises the same rows on the same calendar.
    restore(target_db, event, rows)
    if target_db.engine_name == "mariadb":
        with monkeypatch.context() as patched:
            no_zone_tables(patched)
            refused = run_cli("replay", "-c", str(config), "--since", "2000-01-01", "--json")
        assert refused.exit_code == 3, refused.stdout + refused.stderr
        (failure,) = refused.json()["failures"]
        # Replay erases again through the erasure's own checks: the same finding.
        assert "subject.erase.event.columns.at_" in failure["error"]
        assert "mariadb-tzinfo-to-sql" in failure["error"]
        assert read(target_db, event) == original  # refused before any write
    replayed = run_cli("replay", "-c", str(config), "--since", "2000-01-01", "--json")
    assert replayed.exit_code == 0, replayed.stdout + replayed.stderr
    assert_erased()


# --- MariaDB without time-zone tables -------------------------------------------------


def no_zone_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the probe see what a server without time-zone tables answers (NULL).

    The shared test server keeps its tables; `test_the_probe_reads_null_as_unknown`
    runs the real probe against a zone no server has.
    """
    monkeypatch.setattr(strategies, "zone_is_known", lambda connection, zone: False)


@pytest.mark.parametrize("target_db", ["mariadb"], indirect=True)
def test_the_probe_reads_null_as_unknown(target_db: TargetDb) -> None:
    engine = create_target_engine(sa.make_url(target_db.url))
    try:
        with engine.connect() as connection:
            assert strategies.zone_is_known(connection, "Europe/Copenhagen")
            assert not strategies.zone_is_known(connection, "Nowhere/Atlantis")
    finally:
        engine.dispose()


@pytest.mark.parametrize("target_db", ["mariadb"], indirect=True)
def test_without_time_zone_tables_check_plan_and_run_refuse(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = create_events(target_db)
    before = read(target_db, event)
    config = write_config(
        tmp_path, RULE, target_db.url, monkeypatch, extra_sweep="max_fraction = 1"
    )
    no_zone_tables(monkeypatch)

    checked = run_cli("check", "-c", str(config))
    assert checked.exit_code == 2, checked.stdout
    lines = sorted(line for line in checked.stdout.splitlines() if "time-zone tables" in line)
    # The two TIMESTAMP columns, not the DATETIME or DATE ones; one line each.
    assert len(lines) == 2, checked.stdout
    assert "rules[0].columns.at_m: strategy 'month'" in lines[0]
    assert "rules[0].columns.at_y: strategy 'year'" in lines[1]
    for line in lines:
        assert "'Europe/Copenhagen'" in line
        assert "— load the server's time-zone tables: mariadb-tzinfo-to-sql" in line
    for command in ("plan", "run"):
        refused = run_cli(command, "-c", str(config), "--as-of", AS_OF)
        assert refused.exit_code == 2, (command, refused.stdout, refused.stderr)
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert "rules[0].columns.at_m: strategy 'month'" in refused.stderr
        assert "mariadb-tzinfo-to-sql" in refused.stderr
    assert read(target_db, event) == before  # nothing was written (no NULLs)

    # A zone that is UTC all year needs no conversion, so no tables either.
    utc = write_config(tmp_path, RULE, target_db.url, monkeypatch, timezone="UTC")
    assert run_cli("check", "-c", str(utc)).exit_code == 0


@pytest.mark.parametrize("target_db", ["mariadb"], indirect=True)
def test_without_time_zone_tables_erase_columns_are_refused(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata = sa.MetaData()
    event = event_table(metadata, target_db.engine_name, email=True)
    create(
        target_db,
        metadata,
        [{"id": 1, "email": EMAIL, "ended_on": ENDED, **row_values("mariadb", MOMENTS[0])}],
    )
    before = read(target_db, event)
    config = write_config(tmp_path, ERASE_CONFIG, target_db.url, monkeypatch)
    no_zone_tables(monkeypatch)

    checked = run_cli("check", "-c", str(config))
    assert checked.exit_code == 2, checked.stdout
    assert "subject.erase.event.columns.at_y: strategy 'year'" in checked.stdout
    assert "subject.erase.event.columns.at_m: strategy 'month'" in checked.stdout
    # `erase` fails the database before touching it, as for any schema finding (exit 3).
    erased = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--json")
    assert erased.exit_code == 3, erased.stdout + erased.stderr
    (database,) = erased.json()["databases"]
    assert "subject.erase.event.columns.at_" in database["error"]
    assert "mariadb-tzinfo-to-sql" in database["error"]
    assert read(target_db, event) == before
