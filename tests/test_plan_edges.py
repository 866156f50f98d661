"""Exact due counts on every edge, on SQLite, PostgreSQL and MariaDB, via `plan --json`.

Each test builds tables with known rows, runs the real CLI with a pinned `--as-of`,
and asserts the counts. Comments give the arithmetic the expected numbers come from.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from tests.configs import rule_toml, since_latest
from tests.conftest import TargetDb, plan_items, run_cli, write_config

UTC = dt.UTC
D = dt.date
T = dt.datetime


def due(config: Path, as_of: str, rule: str) -> int:
    return plan_items(config, as_of)[rule]["due"]


def candidate_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "candidate",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120)),
        sa.Column("status", sa.String(10)),
        sa.Column("course_ended_at", sa.DateTime),
        sa.Column("course_ended_on", sa.Date),
        sa.Column("storage_consent_until", sa.Date),
        sa.Column("consent_until_ts", sa.DateTime),
        sa.Column("under_investigation", sa.Boolean),
    )


def rows(*specs: dict) -> list[dict]:
    base = {
        "name": None,
        "status": "closed",
        "course_ended_at": None,
        "course_ended_on": None,
        "storage_consent_until": None,
        "consent_until_ts": None,
        "under_investigation": None,
    }
    return [{**base, "id": i + 1, **spec} for i, spec in enumerate(specs)]


def create_candidates(target_db: TargetDb, *specs: dict) -> None:
    """Create the `candidate` table (see candidate_table) holding `rows(*specs)`."""
    metadata = sa.MetaData()
    candidate_table(metadata)
    target_db.create(metadata, {"candidate": rows(*specs)})


RULE = """
[[rules]]
id = "r"
table = "candidate"
action = "delete"
after = "{after}"
since = "{since}"
{extra}
"""


def config_for(tmp_path, target_db, monkeypatch, after, since, extra="", sweep=""):
    return write_config(
        tmp_path,
        RULE.format(after=after, since=since, extra=extra),
        target_db.url,
        monkeypatch,
        extra_sweep=sweep,
    )


def test_naive_timestamp_boundary_is_local_midnight(target_db: TargetDb, tmp_path, monkeypatch):
    # 6 months before 1 Mar 2026: L + 6 months < 1 Mar  <=>  L <= 31 Aug 2025
    # (28-31 Aug + 6 months all end on 28 Feb), so the cutoff is 1 Sep 2025 00:00.
    create_candidates(
        target_db,
        {"course_ended_at": T(2025, 8, 31, 23, 59, 59)},  # due
        {"course_ended_at": T(2025, 8, 31, 0, 0, 0)},  # due
        {"course_ended_at": T(2025, 8, 28, 12, 0, 0)},  # due (clamps to 28 Feb too)
        {"course_ended_at": T(2025, 9, 1, 0, 0, 0)},  # exactly at the cutoff: not due
        {"course_ended_at": T(2025, 9, 1, 0, 0, 1)},  # one second after: not due
        {"course_ended_at": None},  # NULL: never due
    )
    config = config_for(tmp_path, target_db, monkeypatch, "6 months", "course_ended_at")
    item = plan_items(config, "2026-03-01")["r"]
    assert item["due"] == 3
    assert item["held"] == 0
    assert item["cutoff"] == "2025-09-01T00:00:00+02:00"
    # One day earlier, 31 Aug + 6 months (28 Feb) is not yet before the as-of date.
    # On 28 Feb the cutoff is 28 Aug 2025: none of these ended before it.
    assert due(config, "2026-02-28", "r") == 0
    # The as-of's time of day does not matter: the whole local day is one date.
    assert due(config, "2026-03-01T23:59:59", "r") == 3


def test_date_column_leap_day_and_month_ends(target_db: TargetDb, tmp_path, monkeypatch):
    create_candidates(
        target_db,
        {"course_ended_on": D(2024, 2, 29)},  # + 1 year = 28 Feb 2025 (clamped)
        {"course_ended_on": D(2024, 2, 28)},  # + 1 year = 28 Feb 2025
        {"course_ended_on": D(2024, 3, 1)},  # + 1 year = 1 Mar 2025
        {"course_ended_on": D(2024, 1, 31)},  # + 1 year = 31 Jan 2025
    )
    config = config_for(tmp_path, target_db, monkeypatch, "1 year", "course_ended_on")
    assert due(config, "2025-02-28", "r") == 1  # only 31 Jan 2024
    assert due(config, "2025-03-01", "r") == 3  # 28/29 Feb ended on 28 Feb
    assert due(config, "2025-03-02", "r") == 4


def test_month_end_clamping_31_aug_plus_6_months(target_db: TargetDb, tmp_path, monkeypatch):
    create_candidates(
        target_db,
        {"course_ended_on": D(2023, 8, 31)},  # + 6 months = 29 Feb 2024 (leap year)
        {"course_ended_on": D(2023, 8, 29)},  # + 6 months = 29 Feb 2024
        {"course_ended_on": D(2023, 8, 28)},  # + 6 months = 28 Feb 2024
    )
    config = config_for(tmp_path, target_db, monkeypatch, "6 months", "course_ended_on")
    assert due(config, "2024-02-29", "r") == 1
    assert due(config, "2024-03-01", "r") == 3


def test_fiscal_year_end_counts_from_end_of_financial_year(
    target_db: TargetDb, tmp_path, monkeypatch
):
    metadata = sa.MetaData()
    sa.Table(
        "invoice",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("invoice_date", sa.Date),
    )
    target_db.create(
        metadata,
        {
            "invoice": [
                {"id": 1, "invoice_date": D(2020, 6, 15)},  # FY ends 31 Dec 2020: kept through 2025
                {"id": 2, "invoice_date": D(2020, 12, 31)},  # same fiscal year
                {"id": 3, "invoice_date": D(2021, 1, 1)},  # next fiscal year: due 1 Jan 2027
                {"id": 4, "invoice_date": D(2019, 12, 31)},  # due 1 Jan 2025
            ]
        },
    )
    body = RULE.replace('"candidate"', '"invoice"').format(
        after="5 years", since="invoice_date", extra="from_fiscal_year_end = true"
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    assert due(config, "2025-12-31", "r") == 1
    assert due(config, "2026-01-01", "r") == 3
    assert plan_items(config, "2026-01-01")["r"]["cutoff"].startswith("2021-01-01T00:00:00")
    assert due(config, "2027-01-01", "r") == 4

    # A fiscal year ending 30 June.
    config = write_config(
        tmp_path, body, target_db.url, monkeypatch, extra_sweep='fiscal_year_end = "06-30"'
    )
    # 15 Jun 2020 is in the year ending 30 Jun 2020: due from 1 Jul 2025.
    # 31 Dec 2020 and 1 Jan 2021: year ending 30 Jun 2021, due from 1 Jul 2026.
    # 31 Dec 2019 is in the year ending 30 Jun 2020 as well: kept through 30 Jun 2025.
    assert due(config, "2025-06-30", "r") == 0
    assert due(config, "2025-07-01", "r") == 2
    assert due(config, "2026-07-01", "r") == 4


@pytest.mark.parametrize(
    ("as_of", "cutoff_day", "due_utc", "not_due_utc"),
    [
        # Spring forward, 29 Mar 2026: local midnight is 23:00Z the day before (CET).
        ("2026-04-03", "2026-03-29", T(2026, 3, 28, 22, 59, 59), T(2026, 3, 28, 23, 0, 0)),
        # Fall back, 26 Oct 2025: local midnight is 22:00Z the day before (CEST).
        ("2025-10-31", "2025-10-26", T(2025, 10, 25, 21, 59, 59), T(2025, 10, 25, 22, 0, 0)),
    ],
)
def test_dst_change_night_does_not_shift_cutoff(
    target_db: TargetDb, tmp_path, monkeypatch, as_of, cutoff_day, due_utc, not_due_utc
):
    """CCTV, 5 days: the boundary is local midnight whatever the UTC offset that night."""
    metadata = sa.MetaData()
    aware = sa.DateTime(timezone=True).with_variant(mysql.TIMESTAMP(), "mysql", "mariadb")
    recording = sa.Table(
        "cctv_recording",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("recorded_at", aware),
        sa.Column("recorded_local", sa.DateTime),
    )
    tz = dt.UTC
    copenhagen = ZoneInfo("Europe/Copenhagen")
    instants = [
        due_utc.replace(tzinfo=tz),
        not_due_utc.replace(tzinfo=tz),
        (due_utc - dt.timedelta(hours=1)).replace(tzinfo=tz),
        (not_due_utc + dt.timedelta(hours=1)).replace(tzinfo=tz),
    ]

    def stored(instant: dt.datetime) -> dt.datetime:
        if target_db.engine_name == "postgresql":
            return instant
        if target_db.engine_name == "mariadb":
            return instant.replace(tzinfo=None)  # TIMESTAMP written in a UTC session
        return instant.astimezone(copenhagen).replace(tzinfo=None)  # SQLite: local text

    engine = target_db.engine()
    with engine.begin() as connection:
        if target_db.engine_name == "mariadb":
            connection.exec_driver_sql("SET time_zone = '+00:00'")
        metadata.create_all(connection)
        connection.execute(
            recording.insert(),
            [
                {
                    "id": i + 1,
                    "recorded_at": stored(t),
                    "recorded_local": t.astimezone(copenhagen).replace(tzinfo=None),
                }
                for i, t in enumerate(instants)
            ],
        )
    engine.dispose()
    body = "".join(
        RULE.replace('id = "r"', f'id = "{rule_id}"')
        .replace('"candidate"', '"cctv_recording"')
        .format(after="5 days", since=column, extra="")
        for rule_id, column in (("aware", "recorded_at"), ("naive", "recorded_local"))
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    items = plan_items(config, as_of)
    assert items["aware"]["due"] == 2, items
    assert items["naive"]["due"] == 2, items
    assert items["aware"]["cutoff"].startswith(cutoff_day + "T00:00:00")


def test_exceptions_are_held_with_reason(target_db: TargetDb, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    candidate_table(metadata)
    old = T(2020, 1, 1, 12, 0)
    target_db.create(
        metadata,
        {
            "candidate": rows(
                {"course_ended_at": old},  # due
                {
                    "course_ended_at": old,
                    "storage_consent_until": D(2026, 6, 1),
                },  # consent ahead: held
                {
                    "course_ended_at": old,
                    "storage_consent_until": D(2026, 5, 31),
                },  # consent past: due
                {"course_ended_at": old, "storage_consent_until": D(2026, 6, 2)},  # held
                {"course_ended_at": old, "under_investigation": True},  # held
                {"course_ended_at": old, "under_investigation": False},  # due
                {
                    "course_ended_at": old,
                    "under_investigation": True,
                    "storage_consent_until": D(2030, 1, 1),
                },  # held by both
                {"course_ended_at": T(2026, 5, 1), "under_investigation": True},  # not due at all
                {"course_ended_at": old, "status": "open"},  # `only` excludes
                {"course_ended_at": old, "status": None},  # NULL never matches
            )
        },
    )
    config = config_for(
        tmp_path,
        target_db,
        monkeypatch,
        "6 months",
        "course_ended_at",
        extra='unless_after = "storage_consent_until"\nunless_true = "under_investigation"\n'
        'only = { status = ["closed", "archived"] }',
    )
    item = plan_items(config, "2026-06-01")["r"]
    assert item["due"] == 3
    assert item["held"] == 4
    assert item["held_by"] == {
        "storage_consent_until is later": 3,
        "under_investigation is true": 2,
    }


def test_unless_after_timestamp_compares_with_the_as_of_instant(
    target_db: TargetDb, tmp_path, monkeypatch
):
    metadata = sa.MetaData()
    candidate_table(metadata)
    old = T(2020, 1, 1)
    target_db.create(
        metadata,
        {
            "candidate": rows(
                {
                    "course_ended_at": old,
                    "consent_until_ts": T(2026, 6, 1, 12, 0, 1),
                },  # later: held
                {"course_ended_at": old, "consent_until_ts": T(2026, 6, 1, 12, 0, 0)},  # equal: due
                {"course_ended_at": old, "consent_until_ts": T(2026, 6, 1, 11, 0, 0)},  # past: due
                {"course_ended_at": old, "consent_until_ts": None},  # NULL: due
            )
        },
    )
    config = config_for(
        tmp_path,
        target_db,
        monkeypatch,
        "1 day",
        "course_ended_at",
        extra='unless_after = "consent_until_ts"',
    )
    item = plan_items(config, "2026-06-01T12:00:00")["r"]
    assert (item["due"], item["held"]) == (3, 1)


def test_since_latest_activity_in_related_table(target_db: TargetDb, tmp_path, monkeypatch):
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
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id", ondelete="CASCADE")),
        sa.Column("performed_at", sa.DateTime),
    )
    old, recent = T(2020, 5, 1), T(2026, 1, 1)
    target_db.create(
        metadata,
        {
            "customer": [
                {"id": 1, "created_at": old},  # old activity only: due
                {"id": 2, "created_at": old},  # one old, one recent activity: not due
                {"id": 3, "created_at": old},  # no activity, old since: due
                {"id": 4, "created_at": recent},  # no activity, recent since: not due
                {"id": 5, "created_at": None},  # no activity, NULL since: never due
                {"id": 6, "created_at": recent},  # old activity wins over a recent since: due
                {"id": 7, "created_at": old},  # only NULL activity: counts from since: due
                {"id": 8, "created_at": old},  # activity exactly at the cutoff: not due
                {"id": 9, "created_at": old},  # activity one second before the cutoff: due
            ],
            "engagement": [
                {"id": 1, "customer_id": 1, "performed_at": old},
                {"id": 2, "customer_id": 2, "performed_at": old},
                {"id": 3, "customer_id": 2, "performed_at": recent},
                {"id": 4, "customer_id": 6, "performed_at": old},
                {"id": 5, "customer_id": 7, "performed_at": None},
                {"id": 6, "customer_id": 8, "performed_at": T(2023, 6, 2)},
                {"id": 7, "customer_id": 9, "performed_at": T(2023, 6, 1, 23, 59, 59)},
            ],
        },
    )
    body = rule_toml(
        "customer-delete",
        "customer",
        "delete",
        after="3 years",
        since_latest=since_latest("engagement", "performed_at", "customer_id"),
        since="created_at",
    ) + rule_toml(
        "customer-delete-activity-only",
        "customer",
        "delete",
        after="3 years",
        since_latest=since_latest("engagement", "performed_at", "customer_id"),
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    # as-of 2 Jun 2026: 3 years back the cutoff is 2 Jun 2023 00:00.
    items = plan_items(config, "2026-06-02")
    assert items["customer-delete"]["due"] == 5  # 1, 3, 6, 7, 9
    assert items["customer-delete-activity-only"]["due"] == 3  # 1, 6, 9


def test_anonymise_counts_only_rows_not_yet_anonymised(target_db: TargetDb, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    sa.Table(
        "case_file",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ended_on", sa.Date),
        sa.Column("name", sa.String(120)),
        sa.Column("notes", sa.Text),
        sa.Column("birth_date", sa.Date),
        sa.Column("phone", sa.String(40)),
    )
    old = D(2020, 1, 1)
    target_db.create(
        metadata,
        {
            "case_file": [
                {
                    "id": 1,
                    "ended_on": old,
                    "name": "Mette",
                    "notes": "x",
                    "birth_date": D(1980, 5, 17),
                    "phone": "+45 0000 0001",
                },  # due
                {
                    "id": 2,
                    "ended_on": old,
                    "name": None,
                    "notes": "[redacted]",
                    "birth_date": D(1980, 1, 1),
                    "phone": "hmac:0123456789abcdef",
                },  # already done
                {
                    "id": 3,
                    "ended_on": old,
                    "name": None,
                    "notes": None,
                    "birth_date": D(1980, 1, 1),
                    "phone": None,
                },  # done (NULLs)
                {
                    "id": 4,
                    "ended_on": old,
                    "name": None,
                    "notes": "[redacted]",
                    "birth_date": D(1980, 2, 1),
                    "phone": None,
                },  # birth date left: due
                {
                    "id": 5,
                    "ended_on": old,
                    "name": None,
                    "notes": "[redacted]",
                    "birth_date": None,
                    "phone": "+45 0000 0005",
                },  # phone left: due
                {
                    "id": 6,
                    "ended_on": D(2026, 5, 1),
                    "name": "Jens",
                    "notes": "y",
                    "birth_date": None,
                    "phone": None,
                },  # not due yet
            ]
        },
    )
    body = rule_toml(
        "anon",
        "case_file",
        "anonymise",
        after="6 months",
        since="ended_on",
        columns={"name": "null", "notes": "redact", "birth_date": "year", "phone": "hash"},
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    assert due(config, "2026-06-01", "anon") == 3


def test_schema_qualified_table_on_postgresql(target_db: TargetDb, tmp_path, monkeypatch):
    if target_db.engine_name != "postgresql":
        pytest.skip("schemas as namespaces are a PostgreSQL feature here")
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA hr")
    engine.dispose()
    metadata = sa.MetaData(schema="hr")
    sa.Table(
        "candidate",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ended_on", sa.Date),
    )
    target_db.create(
        metadata,
        {"candidate": [{"id": 1, "ended_on": D(2020, 1, 1)}, {"id": 2, "ended_on": D(2026, 1, 1)}]},
    )
    body = RULE.replace('"candidate"', '"hr.candidate"').format(
        after="1 year", since="ended_on", extra=""
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    assert due(config, "2026-06-01", "r") == 1


def test_plan_changes_nothing_and_prints_no_personal_value(
    target_db: TargetDb, tmp_path, monkeypatch
):
    metadata = sa.MetaData()
    candidate_table(metadata)
    marker = "Marker-Person-7f3a"
    target_db.create(
        metadata,
        {
            "candidate": rows(
                {"course_ended_at": T(2020, 1, 1), "name": marker},
                {"course_ended_at": T(2026, 5, 1), "name": marker + "-2"},
            )
        },
    )
    config = config_for(
        tmp_path,
        target_db,
        monkeypatch,
        "6 months",
        "course_ended_at",
        extra='only = { status = "closed" }',
    )
    sqlite_file = Path(target_db.url.removeprefix("sqlite:///"))
    before = sqlite_file.read_bytes() if target_db.engine_name == "sqlite" else target_db.checksum()
    outputs = []
    for args in (["--json"], [], ["--out", str(tmp_path / "plan.json")]):
        result = run_cli("plan", "-c", str(config), "--as-of", "2026-06-01", *args)
        assert result.exit_code == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    outputs.append((tmp_path / "plan.json").read_text())
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 0, check.stdout + check.stderr
    outputs += [check.stdout, check.stderr]
    after = sqlite_file.read_bytes() if target_db.engine_name == "sqlite" else target_db.checksum()
    assert after == before
    assert not any(marker in text for text in outputs)
    assert (tmp_path / "plan.json").stat().st_mode & 0o077 == 0
