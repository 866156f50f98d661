"""Erasure and export of a named person, across two databases, on all three engines.

Database `crm` is the engine under test; database `archive` is a SQLite file with the
same schema (a second system holding the same person). The person has rows in eight
tables, reached through foreign keys (two levels deep, one ON DELETE CASCADE), a link
by e-mail and a polymorphic link.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import TargetDb, run_cli

EMAIL = "mette.marker@example.dk"
CPR = "010190-9123"
NAME = "Mette Markersen"
OTHER_EMAIL = "jens.other@example.dk"
MARKERS = (EMAIL, CPR, NAME, "Markersen", "secret-health-note", "mail-body-marker")


def schema() -> sa.MetaData:
    m = sa.MetaData()
    sa.Table("candidate", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(120)), sa.Column("email", sa.String(254)),
             sa.Column("cpr", sa.String(11)), sa.Column("birth_date", sa.Date),
             sa.Column("municipality", sa.String(60)))  # fmt: skip
    sa.Table("counselling_case", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("candidate_id", sa.Integer, sa.ForeignKey("candidate.id"), index=True),
             sa.Column("health_notes", sa.Text), sa.Column("ended_on", sa.Date))  # fmt: skip
    sa.Table("case_note", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("case_id", sa.Integer, sa.ForeignKey("counselling_case.id"), index=True),
             sa.Column("body", sa.Text))  # fmt: skip
    sa.Table("meeting", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("candidate_id", sa.Integer,
                       sa.ForeignKey("candidate.id", ondelete="CASCADE"), index=True),
             sa.Column("held_at", sa.DateTime))  # fmt: skip
    sa.Table("invoice", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("candidate_id", sa.Integer, sa.ForeignKey("candidate.id"), index=True),
             sa.Column("invoice_date", sa.Date),
             sa.Column("amount", sa.Numeric(12, 2)))  # fmt: skip
    sa.Table("invoice_line", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoice.id"), index=True),
             sa.Column("text", sa.String(200)), sa.Column("amount", sa.Numeric(12, 2)))  # fmt: skip
    sa.Table("consultant_mail", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("candidate_email", sa.String(254), index=True),
             sa.Column("body", sa.Text), sa.Column("sent_at", sa.DateTime))  # fmt: skip
    sa.Table("attachment", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("data_item_type", sa.Integer), sa.Column("data_item_id", sa.Integer),
             sa.Column("filename", sa.String(200)))  # fmt: skip
    return m


def rows(offset: int) -> dict[str, list[dict]]:
    """The marked person (id offset+1) and another person (id offset+2)."""
    a, b = offset + 1, offset + 2
    return {
        "candidate": [
            {"id": a, "name": NAME, "email": EMAIL, "cpr": CPR, "birth_date": dt.date(1990, 1, 1),
             "municipality": "Aarhus"},
            {"id": b, "name": "Jens Other", "email": OTHER_EMAIL, "cpr": "020290-9000",
             "birth_date": dt.date(1990, 2, 2), "municipality": "Odense"},
        ],
        "counselling_case": [
            {"id": a, "candidate_id": a, "health_notes": "secret-health-note", "ended_on": None},
            {"id": b, "candidate_id": b, "health_notes": "other note", "ended_on": None},
        ],
        "case_note": [{"id": a, "case_id": a, "body": f"about {NAME}"},
                      {"id": a + 10, "case_id": a, "body": "second note"},
                      {"id": b, "case_id": b, "body": "other"}],
        "meeting": [{"id": a, "candidate_id": a, "held_at": dt.datetime(2025, 1, 2, 10, 0)},
                    {"id": b, "candidate_id": b, "held_at": dt.datetime(2025, 1, 3, 10, 0)}],
        "invoice": [{"id": a, "candidate_id": a, "invoice_date": dt.date(2025, 3, 1),
                     "amount": decimal.Decimal("1234.50")},
                    {"id": b, "candidate_id": b, "invoice_date": dt.date(2025, 3, 1),
                     "amount": decimal.Decimal("99.95")}],
        "invoice_line": [
            {"id": a, "invoice_id": a, "text": "Course", "amount": decimal.Decimal("1234.50")},
            {"id": b, "invoice_id": b, "text": "Course", "amount": decimal.Decimal("99.95")},
        ],
        "consultant_mail": [
            {"id": a, "candidate_email": EMAIL, "body": "mail-body-marker",
             "sent_at": dt.datetime(2025, 5, 1, 8, 0)},
            {"id": a + 10, "candidate_email": EMAIL, "body": "cv attached",
             "sent_at": dt.datetime(2025, 5, 2, 8, 0)},
            {"id": b, "candidate_email": OTHER_EMAIL, "body": "hello",
             "sent_at": dt.datetime(2025, 5, 1, 8, 0)},
        ],
        "attachment": [
            {"id": a, "data_item_type": 100, "data_item_id": a, "filename": "cv-mette.pdf"},
            {"id": a + 10, "data_item_type": 200, "data_item_id": a, "filename": "project.pdf"},
            {"id": b, "data_item_type": 100, "data_item_id": b, "filename": "cv-jens.pdf"},
        ],
    }  # fmt: skip


CONFIG = """
[sweep]
state_url = "sqlite:///state.db"

[databases.crm]
url_env = "CRM_URL"
controller = "Testkommune"

[databases.archive]
url = "sqlite:///archive.db"

[[rules]]
id = "invoice-delete"
table = "invoice"
action = "delete"
after = "5 years"
since = "invoice_date"
from_fiscal_year_end = true
basis = "Danish Bookkeeping Act § 10"
cascade = ["invoice_line"]

[subject]
root = "candidate"
identifiers = { email = "email", cpr = "cpr" }

[[subject.links]]
table = "consultant_mail"
column = "candidate_email"
references = "candidate.email"

[[subject.links]]
table = "attachment"
column = "data_item_id"
references = "candidate.id"
only = { data_item_type = 100 }

[subject.erase.invoice]
action = "keep"
rule = "invoice-delete"

[subject.erase.invoice_line]
action = "keep"
basis = "Danish Bookkeeping Act § 10 (invoice lines)"

[subject.erase.candidate]
action = "delete"
columns = { name = "null", email = "null", cpr = "null", birth_date = "year" }
"""


def setup(target_db: TargetDb, tmp_path: Path, monkeypatch) -> Path:
    target_db.create(schema(), rows(0))
    archive = TargetDb("sqlite", f"sqlite:///{tmp_path / 'archive.db'}")
    archive.create(schema(), rows(1000))
    monkeypatch.setenv("CRM_URL", target_db.url)
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return config


def dump(url: str) -> dict[str, list[dict]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            return {
                name: [dict(r) for r in connection.execute(
                    sa.select(t).order_by(*t.primary_key.columns)).mappings()]
                for name, t in metadata.tables.items()
            }  # fmt: skip
    finally:
        engine.dispose()


def test_erase_across_two_databases(target_db: TargetDb, tmp_path, monkeypatch):
    config = setup(target_db, tmp_path, monkeypatch)
    urls = {"crm": target_db.url, "archive": f"sqlite:///{tmp_path / 'archive.db'}"}
    before = {name: dump(url) for name, url in urls.items()}

    # Export first: every row of the person, in both databases, values round-tripping.
    out = tmp_path / "export.json"
    exported = run_cli(
        "export", "-c", str(config), "--subject", f"email={EMAIL}", "--out", str(out)
    )
    assert exported.exit_code == 0, exported.stderr
    assert out.stat().st_mode & 0o077 == 0
    document = json.loads(out.read_text())
    got = {
        (db["database"], t["table"]): {r["id"] for r in t["rows"]}
        for db in document["databases"] for t in db["tables"]
    }  # fmt: skip
    for database, offset in (("crm", 0), ("archive", 1000)):
        a = offset + 1
        assert got[(database, "candidate")] == {a}
        assert got[(database, "counselling_case")] == {a}
        assert got[(database, "case_note")] == {a, a + 10}
        assert got[(database, "meeting")] == {a}
        assert got[(database, "invoice")] == {a}
        assert got[(database, "invoice_line")] == {a}
        assert got[(database, "consultant_mail")] == {a, a + 10}
        assert got[(database, "attachment")] == {a}  # type 200 is not the person
    crm = next(db for db in document["databases"] if db["database"] == "crm")
    invoice = next(t for t in crm["tables"] if t["table"] == "invoice")
    assert decimal.Decimal(invoice["rows"][0]["amount"]) == decimal.Decimal("1234.50")
    assert dt.date.fromisoformat(invoice["rows"][0]["invoice_date"]) == dt.date(2025, 3, 1)
    meeting = next(t for t in crm["tables"] if t["table"] == "meeting")
    assert dt.datetime.fromisoformat(meeting["rows"][0]["held_at"]) == dt.datetime(2025, 1, 2, 10)

    # A dry run changes nothing and says what would happen.
    dry = run_cli("erase", "-c", str(config), "--subject", f"cpr={CPR}", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert {name: dump(url) for name, url in urls.items()} == before

    receipt = tmp_path / "receipt.json"
    result = run_cli("erase", "-c", str(config), "--subject", f"cpr={CPR}",
                     "--receipt", str(receipt))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert receipt.stat().st_mode & 0o077 == 0  # owner-only, like plans and exports
    document = json.loads(receipt.read_text())
    assert dry.json()["erased"] == document["erased"]
    erased = {(e["database"], e["table"], e["action"]): e["rows"] for e in document["erased"]}
    kept = {(k["database"], k["table"]): k for k in document["kept"]}
    for database in ("crm", "archive"):
        assert erased[(database, "case_note", "deleted")] == 2
        assert erased[(database, "counselling_case", "deleted")] == 1
        assert erased[(database, "consultant_mail", "deleted")] == 2
        assert erased[(database, "attachment", "deleted")] == 1
        assert erased[(database, "meeting", "deleted")] == 1
        # Invoices refer to the root: it is anonymised, not deleted.
        assert erased[(database, "candidate", "anonymised")] == 1
        assert (database, "candidate", "deleted") not in erased
        assert kept[(database, "invoice")]["until"] == "2030-12-31"
        assert kept[(database, "invoice")]["basis"] == "Danish Bookkeeping Act § 10"
        assert kept[(database, "invoice_line")]["rows"] == 1
    assert "Backups are not altered" in document["backups"]

    for name, url in urls.items():
        offset = 0 if name == "crm" else 1000
        a, b = offset + 1, offset + 2
        after = dump(url)
        flat = json.dumps(after, default=str)
        for marker in MARKERS:
            assert marker not in flat, (name, marker)
        # The root stays, anonymised; its invoices are still there and still refer to it.
        (root,) = [r for r in after["candidate"] if r["id"] == a]
        assert (root["name"], root["email"], root["cpr"]) == (None, None, None)
        assert root["birth_date"] == dt.date(1990, 1, 1)
        assert root["municipality"] == "Aarhus"
        assert [r["candidate_id"] for r in after["invoice"] if r["id"] == a] == [a]
        assert [r["id"] for r in after["invoice_line"] if r["invoice_id"] == a] == [a]
        # Everyone else is untouched.
        for table, table_rows in before[name].items():
            others = [r for r in table_rows if r["id"] not in (a, a + 10)]
            assert [r for r in after[table] if r["id"] not in (a, a + 10)] == others, table
        assert sorted(r["id"] for r in after["attachment"]) == sorted([a + 10, b])

    # Nothing personal in what the tool wrote: outputs, receipt, state database.
    state = (tmp_path / "state.db").read_bytes()
    for marker in MARKERS:
        for text in (result.stdout, result.stderr, dry.stdout, exported.stdout,
                     receipt.read_text()):  # fmt: skip
            assert marker not in text
        assert marker.encode() not in state
    with sqlite3.connect(tmp_path / "state.db") as connection:
        assert connection.execute(
            "SELECT count(*) FROM runs WHERE command = 'erase'"
        ).fetchone() == (1,)

    # Was this person erased? Hash the identifier again.
    found = run_cli("audit", "find", "-c", str(config), "--subject", f"cpr={CPR}", "--json")
    assert [r["command"] for r in found.json()["runs"]] == ["erase"]
    # Erased by CPR, asked by e-mail: the erasure recorded every identifier of the row.
    found = run_cli("audit", "find", "-c", str(config), "--subject", f"email={EMAIL}", "--json")
    assert [r["command"] for r in found.json()["runs"]] == ["erase", "export"]  # newest first
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0

    # Erasing again finds nothing: exit 0, 0 rows.
    again = run_cli("erase", "-c", str(config), "--subject", f"cpr={CPR}", "--json")
    assert again.exit_code == 0
    assert again.json()["erased"] == []


def test_unknown_kind_is_exit_2_and_not_found_is_exit_0(target_db, tmp_path, monkeypatch):
    config = setup(target_db, tmp_path, monkeypatch)
    before = dump(target_db.url)
    result = run_cli("erase", "-c", str(config), "--subject", "phone=123")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --subject: unknown identifier kind 'phone'")
    result = run_cli("erase", "-c", str(config), "--subject", "email=nobody@example.dk", "--json")
    assert result.exit_code == 0
    assert result.json()["erased"] == [] and result.json()["kept"] == []
    # SQL metacharacters are bound as a value, never spliced.
    result = run_cli("erase", "-c", str(config), "--subject", "email=x' OR '1'='1")
    assert result.exit_code == 0
    assert dump(target_db.url) == before


def test_one_database_down_the_other_is_erased(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'crm.db'}")
    config = setup(target_db, tmp_path, monkeypatch)
    monkeypatch.setenv("CRM_URL", "postgresql+psycopg://postgres@127.0.0.1:1/down")
    result = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--json")
    assert result.exit_code == 3
    document = result.json()
    assert {e["database"] for e in document["erased"]} == {"archive"}
    failed = [db for db in document["databases"] if db["error"]]
    assert [db["database"] for db in failed] == ["crm"]


def test_erase_honours_a_legal_hold(target_db, tmp_path, monkeypatch):
    config = setup(target_db, tmp_path, monkeypatch)
    held = run_cli("hold", "add", "-c", str(config), "-d", "crm", "-t", "counselling_case",
                   "-k", "1", "--reason", "complaint 2026-7")  # fmt: skip
    assert held.exit_code == 0, held.stderr
    result = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--json")
    assert result.exit_code == 0, result.stderr
    document = result.json()
    kept = {(k["database"], k["table"]): k for k in document["kept"]}
    assert kept[("crm", "counselling_case")]["rows"] == 1
    assert kept[("crm", "counselling_case")]["basis"].startswith("legal hold")
    erased = {(e["database"], e["table"], e["action"]) for e in document["erased"]}
    assert ("crm", "counselling_case", "deleted") not in erased
    assert ("archive", "counselling_case", "deleted") in erased  # the hold is crm's only
    assert ("crm", "case_note", "deleted") in erased
    after = dump(target_db.url)
    assert [r["id"] for r in after["counselling_case"]] == [1, 2]
    assert [r["candidate_id"] for r in after["counselling_case"] if r["id"] == 1] == [1]


SHARED_CONFIG = """
[sweep]
state_url = "sqlite:///state.db"
[databases.crm]
url_env = "CRM_URL"
[subject]
root = "candidate"
identifiers = { email = "email" }
[[subject.links]]
table = "meeting_note"
column = "id"
references = "candidate_meeting_note.note_id"
"""


def test_a_row_shared_with_another_person_is_kept(target_db, tmp_path, monkeypatch):
    m = sa.MetaData()
    sa.Table("candidate", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("email", sa.String(254)))  # fmt: skip
    sa.Table("meeting_note", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("body", sa.Text))  # fmt: skip
    sa.Table(
        "candidate_meeting_note", m,
        sa.Column("candidate_id", sa.Integer, sa.ForeignKey("candidate.id"), primary_key=True),
        sa.Column("note_id", sa.Integer, sa.ForeignKey("meeting_note.id"), primary_key=True),
    )  # fmt: skip
    target_db.create(m, {
        "candidate": [{"id": 1, "email": EMAIL}, {"id": 2, "email": OTHER_EMAIL}],
        "meeting_note": [{"id": 10, "body": "joint meeting"}, {"id": 11, "body": "only hers"},
                         {"id": 12, "body": "only his"}],
        "candidate_meeting_note": [{"candidate_id": 1, "note_id": 10},
                                   {"candidate_id": 2, "note_id": 10},
                                   {"candidate_id": 1, "note_id": 11},
                                   {"candidate_id": 2, "note_id": 12}],
    })  # fmt: skip
    monkeypatch.setenv("CRM_URL", target_db.url)
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(SHARED_CONFIG)
    result = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}", "--json")
    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert {(k["table"], k["rows"], k["basis"]) for k in document["kept"]} == {
        ("meeting_note", 1, "shared with another person whose data it also is")
    }
    erased = {(e["table"], e["action"]): e["rows"] for e in document["erased"]}
    assert erased == {("candidate_meeting_note", "deleted"): 2, ("meeting_note", "deleted"): 1,
                      ("candidate", "deleted"): 1}  # fmt: skip
    after = dump(target_db.url)
    assert [r["id"] for r in after["candidate"]] == [2]
    assert [r["id"] for r in after["meeting_note"]] == [10, 12]
    assert sorted((r["candidate_id"], r["note_id"]) for r in after["candidate_meeting_note"]) == [
        (2, 10),
        (2, 12),
    ]


def restore(url: str, snapshot: dict[str, list[dict]]) -> None:
    """Put every table back as it was: a backup restored."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        metadata = sa.MetaData()
        metadata.reflect(connection)
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
        for table in metadata.sorted_tables:
            if snapshot.get(table.name):
                connection.execute(table.insert(), snapshot[table.name])
    engine.dispose()


def test_replay_after_restore_erases_the_person_again(target_db, tmp_path, monkeypatch):
    config = setup(target_db, tmp_path, monkeypatch)
    backup = dump(target_db.url)
    result = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}")
    assert result.exit_code == 0, result.stderr
    assert "gdpr-sweep replay" in result.stdout  # the receipt says how a restore is handled
    erased = dump(target_db.url)

    restore(target_db.url, backup)
    assert dump(target_db.url) == backup
    dry = run_cli("replay", "-c", str(config), "--since", "2000-01-01", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert dump(target_db.url) == backup
    replayed = run_cli("replay", "-c", str(config), "--since", "2000-01-01", "--json")
    assert replayed.exit_code == 0, replayed.stderr
    assert dry.json()["tables"] == replayed.json()["tables"]
    assert dump(target_db.url) == erased  # the person is gone again, nobody else touched

    again = run_cli("replay", "-c", str(config), "--since", "2000-01-01", "--json")
    assert again.exit_code == 0
    assert all(t["rows"] == 0 or t["action"] == "anonymised" for t in again.json()["tables"])
    assert dump(target_db.url) == erased
    # Erasures before --since are not replayed.
    later = run_cli("replay", "-c", str(config), "--since", "2999-01-01", "--json")
    assert later.json()["tables"] == []
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0
    state = (tmp_path / "state.db").read_bytes()
    for marker in MARKERS:
        assert marker.encode() not in state
