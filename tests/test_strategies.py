"""The `year` and `month` strategies on DATE and DATETIME columns, on every engine.

Each engine truncates in its own SQL (`strategies.py`); the replacement and the "still
to anonymise" predicate must agree with each other and with the calendar. Hypothesis
draws the dates (leap days, month and year ends, times just before midnight); the real
CLI anonymises them, and the table is compared with the truncation done in Python.
A second `plan` must then find nothing due: a row the replacement leaves "pending"
would be rewritten every night.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.configs import rule_toml
from tests.conftest import TargetDb, run_cli, write_config

RULE = rule_toml(
    "truncate",
    "person",
    "anonymise",
    after="1 year",
    since="ended_on",
    columns={"born_on": "year", "born_at": "year", "moved_on": "month", "moved_at": "month"},
)

ENDED = dt.date(2020, 1, 1)  # long before the as-of: every row is due
AS_OF = "2026-11-23"

datetimes = st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2099, 12, 31))
rows = st.lists(st.tuples(datetimes, datetimes), min_size=1, max_size=40)


def first_of_year(value: dt.date) -> dt.date:
    return dt.date(value.year, 1, 1)


def first_of_month(value: dt.date) -> dt.date:
    return dt.date(value.year, value.month, 1)


def as_date(value: object) -> dt.date:
    """SQLite hands back text; the servers hand back dates and datetimes."""
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        assert value.time() == dt.time(0), value  # truncated to midnight
        return value.date()
    assert isinstance(value, dt.date)
    return value


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=rows)
def test_year_and_month_truncate_exactly_and_once(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: list
) -> None:
    metadata = sa.MetaData()
    person = sa.Table(
        "person",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ended_on", sa.Date),
        sa.Column("born_on", sa.Date),
        sa.Column("born_at", sa.DateTime),
        sa.Column("moved_on", sa.Date),
        sa.Column("moved_at", sa.DateTime),
    )
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            metadata.drop_all(connection)
            metadata.create_all(connection)
            connection.execute(
                person.insert(),
                [
                    {
                        "id": i + 1,
                        "ended_on": ENDED,
                        "born_on": born.date(),
                        "born_at": born.replace(microsecond=0),
                        "moved_on": moved.date(),
                        "moved_at": moved.replace(microsecond=0),
                    }
                    for i, (born, moved) in enumerate(values)
                ],
            )
        config = write_config(
            tmp_path, RULE, target_db.url, monkeypatch, extra_sweep="max_fraction = 1"
        )
        run = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json", "--quiet")
        assert run.exit_code == 0, run.stderr
        with engine.connect() as connection:
            stored = connection.execute(
                sa.select(
                    person.c.id,
                    person.c.born_on,
                    person.c.born_at,
                    person.c.moved_on,
                    person.c.moved_at,
                ).order_by(person.c.id)
            ).all()
        for (born, moved), row in zip(values, stored, strict=True):
            assert as_date(row.born_on) == first_of_year(born.date()), row
            assert as_date(row.born_at) == first_of_year(born.date()), row
            assert as_date(row.moved_on) == first_of_month(moved.date()), row
            assert as_date(row.moved_at) == first_of_month(moved.date()), row
        plan = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
        assert plan.exit_code == 0, plan.stderr
        assert plan.json()["items"][0]["due"] == 0
    finally:
        engine.dispose()
