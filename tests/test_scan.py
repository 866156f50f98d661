"""`scan`: personal-looking columns and tables that no rule or subject table covers."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest
import sqlalchemy as sa

from gdpr_sweep.config import load_config
from gdpr_sweep.demo.build import write_demo
from gdpr_sweep.errors import ConfigError
from gdpr_sweep.personal_patterns import DEFAULT_PATTERNS, personal_pattern
from gdpr_sweep.scan import (
    TABLE_WITHOUT_RULE,
    UNCOVERED_COLUMN,
    ScanResult,
    scan_config,
)
from gdpr_sweep.state.models import metadata as state_metadata
from tests.configs import rule_toml
from tests.conftest import TargetDb, write_config

MARKER = "Zebulon-Quist-4711"  # a value in every personal column; must never be reported


def shop_schema() -> sa.MetaData:
    metadata = sa.MetaData()
    # Fully covered by a delete rule: every column goes with the row.
    sa.Table(
        "cctv_log",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("visitor_name", sa.String(120)),
        sa.Column("phone", sa.String(20)),
        sa.Column("filename", sa.String(200)),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
    )
    # A delete rule with a cascade child: the child's columns go too.
    sa.Table(
        "shop_order",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("recipient_name", sa.String(120)),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("ordered_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "order_note",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_order_id", sa.Integer, sa.ForeignKey("shop_order.id"), nullable=False),
        sa.Column("note", sa.Text),
    )
    # An anonymise rule that forgets `phone`; `kaldenavn` only matches an extra pattern.
    sa.Table(
        "member",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120)),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(20)),
        sa.Column("kaldenavn", sa.String(60)),
        sa.Column("status", sa.String(40)),
        sa.Column("amount", sa.Integer),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    # The subject root (an anonymise rule) and a table reached only through the graph.
    sa.Table(
        "person",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254)),
        sa.Column("full_name", sa.String(120)),
        sa.Column("birth_date", sa.Date),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "person_note",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("person.id"), nullable=False),
        sa.Column("address", sa.String(200)),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", sa.DateTime),
    )
    # Nobody covers it.
    sa.Table(
        "guestbook",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254)),
        sa.Column("notes", sa.Text),
        sa.Column("filename", sa.String(200)),
        sa.Column("status", sa.String(40)),
        sa.Column("created_at", sa.DateTime),
    )
    # Keyed by an e-mail address: the key is not a column finding, but needs a rule.
    sa.Table(
        "suppression_list",
        metadata,
        sa.Column("email", sa.String(254), primary_key=True),
        sa.Column("added_at", sa.DateTime),
    )
    # Nothing personal-looking: never reported, rule or not.
    sa.Table(
        "lookup",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("filename", sa.String(200)),
        sa.Column("file_name", sa.String(200)),
        sa.Column("table_name", sa.String(200)),
        sa.Column("company_name", sa.String(200)),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("status", sa.String(40)),
        sa.Column("created_at", sa.DateTime),
    )
    return metadata


def shop_rows() -> dict[str, list[dict]]:
    when = dt.datetime(2024, 5, 1, 12, 0)
    return {
        "cctv_log": [dict(id=1, visitor_name=MARKER, phone=MARKER, filename="a", recorded_at=when)],
        "shop_order": [dict(id=1, recipient_name=MARKER, amount=1, ordered_at=when)],
        "order_note": [dict(id=1, shop_order_id=1, note=MARKER)],
        "member": [
            dict(id=1, name=MARKER, email=MARKER, phone=MARKER, kaldenavn=MARKER, created_at=when)
        ],
        "person": [dict(id=1, email=MARKER, full_name=MARKER, created_at=when)],
        "person_note": [dict(id=1, person_id=1, address=MARKER, notes=MARKER)],
        "guestbook": [dict(id=1, email=MARKER, notes=MARKER, filename=MARKER, status=MARKER)],
        "suppression_list": [dict(email=MARKER, added_at=when)],
        "lookup": [dict(id=1, filename=MARKER, table_name=MARKER, company_name=MARKER)],
    }


RULES = (
    rule_toml("cctv-delete", "cctv_log", "delete", after="5 days", since="recorded_at")
    + rule_toml(
        "order-delete",
        "shop_order",
        "delete",
        after="5 years",
        since="ordered_at",
        cascade=["order_note"],
    )
    + rule_toml(
        "member-anonymise",
        "member",
        "anonymise",
        after="1 year",
        since="created_at",
        columns={"name": "null", "email": "null"},
    )
    + rule_toml(
        "person-anonymise",
        "person",
        "anonymise",
        after="1 year",
        since="created_at",
        columns={"full_name": "null", "email": "null"},
    )
)

SUBJECT = """
[subject]
root = "person"
identifiers = { email = "email" }
"""

EXPECTED = {
    ("member", "phone", UNCOVERED_COLUMN),
    ("person_note", None, TABLE_WITHOUT_RULE),
    ("guestbook", None, TABLE_WITHOUT_RULE),
    ("guestbook", "email", UNCOVERED_COLUMN),
    ("guestbook", "notes", UNCOVERED_COLUMN),
    ("suppression_list", None, TABLE_WITHOUT_RULE),
}


def found(result: ScanResult) -> set[tuple[str, str | None, str]]:
    return {(f.table, f.column, f.kind) for f in result.findings}


def scan(tmp_path, target_db: TargetDb, monkeypatch, body: str, **kwargs) -> ScanResult:
    path = write_config(tmp_path, body, target_db.url, monkeypatch)
    return scan_config(load_config(path), **kwargs)


def test_scan_reports_exactly_what_nothing_removes(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(shop_schema(), shop_rows())
    before = target_db.checksum()
    result = scan(tmp_path, target_db, monkeypatch, RULES + SUBJECT)
    assert result.scanned == ["main"] and result.unreachable == []
    assert found(result) == EXPECTED

    by_key = {(f.table, f.column): f for f in result.findings}
    phone = by_key["member", "phone"]
    assert phone.database == "main" and phone.pattern in DEFAULT_PATTERNS
    assert "database main" in phone.message and "'member'" in phone.message
    assert "'phone'" in phone.message and "rule 'member-anonymise'" in phone.message
    assert "(a phone number)" in phone.message
    assert "erasure on request" in by_key["person_note", None].message
    assert "'email'" in by_key["suppression_list", None].message
    assert all(f.pattern is None for f in result.findings if f.column is None)
    assert all("\n" not in f.message and " — " in f.message for f in result.findings)

    # Reflection only: nothing changed, and no value from a row in any finding.
    assert target_db.checksum() == before
    document = json.dumps(result.to_json())
    assert MARKER not in document
    assert json.loads(document)["scanned"] == ["main"]


def test_extra_pattern_reports_an_otherwise_unmatched_column(
    target_db: TargetDb, tmp_path, monkeypatch
):
    target_db.create(shop_schema(), shop_rows())
    result = scan(
        tmp_path, target_db, monkeypatch, RULES + SUBJECT, extra_patterns=(r"^kaldenavn$",)
    )
    assert found(result) == EXPECTED | {("member", "kaldenavn", UNCOVERED_COLUMN)}
    finding = next(f for f in result.findings if f.column == "kaldenavn")
    assert finding.pattern == r"^kaldenavn$" and "'^kaldenavn$'" in finding.message
    assert MARKER not in json.dumps(result.to_json())


def test_without_subject_the_graph_covers_nothing(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(shop_schema())
    result = scan(tmp_path, target_db, monkeypatch, RULES)
    assert found(result) == EXPECTED | {
        ("person_note", "address", UNCOVERED_COLUMN),
        ("person_note", "notes", UNCOVERED_COLUMN),
        ("person", "birth_date", UNCOVERED_COLUMN),
    }
    # A [subject] that does not match the schema covers nothing either.
    broken = SUBJECT.replace('email = "email"', 'email = "no_such_column"')
    assert found(scan(tmp_path, target_db, monkeypatch, RULES + broken)) == found(result)


def test_rule_for_another_database_covers_nothing(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    shop_schema().create_all(engine)
    engine.dispose()
    (tmp_path / "b.db").write_bytes((tmp_path / "a.db").read_bytes())
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(
        '[databases.a]\nurl = "sqlite:///a.db"\n[databases.b]\nurl = "sqlite:///b.db"\n'
        + RULES.replace('table = "member"', 'table = "member"\ndatabases = ["a"]')
    )
    result = scan_config(load_config(config))
    a = {(t, c, k) for d, t, c, k in _rows(result) if d == "a"}
    b = {(t, c, k) for d, t, c, k in _rows(result) if d == "b"}
    assert ("member", "phone", UNCOVERED_COLUMN) in a
    assert {("member", None, TABLE_WITHOUT_RULE), ("member", "name", UNCOVERED_COLUMN)} <= b
    assert ("member", None, TABLE_WITHOUT_RULE) not in a
    # --database: only the named one.
    assert scan_config(load_config(config), ["b"]).scanned == ["b"]


def _rows(result: ScanResult) -> list[tuple[str, str, str | None, str]]:
    return [(f.database, f.table, f.column, f.kind) for f in result.findings]


def test_state_tables_are_skipped_but_an_application_table_named_alike_is_not(tmp_path):
    target = tmp_path / "target.db"
    engine = sa.create_engine(f"sqlite:///{target}")
    state_metadata.create_all(engine)  # runs.user_name would look personal
    engine.dispose()
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(
        '[sweep]\nstate_url = "sqlite:///target.db"\n[databases.main]\nurl = "sqlite:///target.db"\n'
    )
    assert scan_config(load_config(config)).findings == []

    # In another database, a `runs` table that is not ours is scanned like any other.
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, runner_email TEXT)")
    config.write_text('[databases.main]\nurl = "sqlite:///other.db"\n')
    assert found(scan_config(load_config(config))) == {
        ("runs", None, TABLE_WITHOUT_RULE),
        ("runs", "runner_email", UNCOVERED_COLUMN),
    }


def test_unreachable_database_is_named_and_the_others_scanned(tmp_path, monkeypatch):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'good.db'}")
    shop_schema().create_all(engine)
    engine.dispose()
    monkeypatch.setenv("DOWN_URL", "postgresql+psycopg://sweeper:s3cret@127.0.0.1:1/down")
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(
        '[databases.down]\nurl_env = "DOWN_URL"\n'
        '[databases.good]\nurl = "sqlite:///good.db"\n'
        '[databases.missing]\nurl = "sqlite:///no-such-file.db"\n' + RULES + SUBJECT
    )
    result = scan_config(load_config(config))
    assert result.scanned == ["good"]
    assert found(result) == EXPECTED
    assert len(result.unreachable) == 2
    assert result.unreachable[0].startswith("database down: cannot connect")
    assert result.unreachable[1].startswith("database missing: no SQLite file")
    assert all("\n" not in line for line in result.unreachable)
    assert "s3cret" not in json.dumps(result.to_json())
    assert not (tmp_path / "no-such-file.db").exists()


def test_bad_extra_pattern_is_a_config_error(tmp_path):
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text('[databases.main]\nurl = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError, match=r"scan.patterns\[0\]: '\(unclosed' is not a regular"):
        scan_config(load_config(config), extra_patterns=("(unclosed",))


def test_ignore_globs_silence_known_non_personal_columns(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'good.db'}")
    shop_schema().create_all(engine)
    engine.dispose()
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text('[databases.main]\nurl = "sqlite:///good.db"\n' + RULES + SUBJECT)
    result = scan_config(load_config(config), ignore=("guestbook", "Member.PHONE", "supp*"))
    assert found(result) == {("person_note", None, TABLE_WITHOUT_RULE)}


@pytest.mark.parametrize(
    "column",
    [
        "name", "first_name", "FirstName", "surname", "fornavn", "efternavn", "username",
        "recipient_name", "email", "e_mail", "contactEmail", "mail_address", "emailadresse",
        "phone", "mobile", "tlf", "telefon", "cpr", "cpr_nr", "ssn", "personnummer",
        "national_id", "passport", "address", "adresse", "street", "postal_code", "postnr",
        "zip", "birth_date", "date_of_birth", "dob", "foedselsdato", "fødselsdato", "notes",
        "note", "comment", "remark", "bemaerkning", "bemærkning", "health_notes", "diagnosis",
        "medical_history", "helbred", "ip_address", "IPAddress", "cv", "cv_text", "resume",
        "salary", "hourly_wage", "iban", "account_number", "kontonummer", "religion",
    ],
)  # fmt: skip
def test_personal_column_names(column):
    assert personal_pattern(column) is not None


@pytest.mark.parametrize(
    "column",
    [
        "filename", "file_name", "FileName", "table_name", "schema_name", "column_name",
        "company_name", "product_name", "hostname", "amount", "created_at", "status",
        "kaldenavn", "cvr", "automobile", "wage_subsidy", "mail_sent_at", "description",
        "title", "municipality", "posted_at", "resumed_at", "footnote", "storage", "id",
    ],
)  # fmt: skip
def test_non_personal_column_names(column):
    assert personal_pattern(column) is None


def test_demo_reports_exactly_an_uncovered_table_added_to_it(tmp_path):
    config_path, db_path = write_demo(tmp_path / "demo")
    config = load_config(config_path)
    baseline = scan_config(config)
    assert baseline.scanned == ["demo"] and baseline.unreachable == []
    assert found(baseline) == set(), [f.message for f in baseline.findings]

    with sqlite3.connect(db_path) as connection:
        connection.execute(
            "CREATE TABLE visitor_log "
            "(id INTEGER PRIMARY KEY, visitor_name TEXT, visited_at DATETIME)"
        )
        connection.execute(
            "INSERT INTO visitor_log (visitor_name, visited_at) VALUES (?, '2026-01-01')",
            (MARKER,),
        )
    result = scan_config(config)
    assert found(result) - found(baseline) == {
        ("visitor_log", None, TABLE_WITHOUT_RULE),
        ("visitor_log", "visitor_name", UNCOVERED_COLUMN),
    }
    assert MARKER not in json.dumps(result.to_json())


def test_scan_cli_strict_exit_codes(tmp_path):
    from gdpr_sweep.demo.build import write_demo
    from tests.conftest import run_cli

    config, database = write_demo(tmp_path / "demo")
    clean = run_cli("scan", "-c", str(config), "--strict")
    assert clean.exit_code == 0, clean.stdout
    assert "0 finding(s) in 1 database(s)" in clean.stdout
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE visitor_log (id INTEGER PRIMARY KEY, visitor_name TEXT, kaldenavn TEXT)"
        )
    engine.dispose()
    found = run_cli("scan", "-c", str(config), "--json")
    assert found.exit_code == 0
    assert {(f["table"], f["column"]) for f in found.json()["findings"]} == {
        ("visitor_log", None),
        ("visitor_log", "visitor_name"),
    }
    assert run_cli("scan", "-c", str(config), "--strict").exit_code == 5
    text = config.read_text().replace(
        "[sweep]",
        '[sweep]\npersonal_column_patterns = ["^kaldenavn$"]\n'
        'scan_ignore = ["visitor_log.visitor_name"]',
        1,
    )
    config.write_text(text)
    found = run_cli("scan", "-c", str(config), "--json")
    assert {(f["table"], f["column"]) for f in found.json()["findings"]} == {
        ("visitor_log", None),
        ("visitor_log", "kaldenavn"),
    }
