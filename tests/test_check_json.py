"""`check --json`: the check as one JSON document, with the text check's exit codes."""

from __future__ import annotations

import datetime as dt

from tests.conftest import TargetDb, run_cli, write_config
from tests.test_check import good_down_and_missing, people_schema, rule

MARKERS = ("Marker-Ørsted-7731", "marker7731@example.invalid", "7731")


def seeded(target_db: TargetDb, ondelete: str | None = None) -> None:
    """The check tests' schema, with a candidate row and a meeting holding marker values."""
    name, email, phone = MARKERS
    ended = dt.datetime(2020, 1, 1)
    target_db.create(
        people_schema(ondelete),
        {
            "candidate": [
                {"id": 1, "name": name, "email": email, "phone": phone, "ended_at": ended}
            ],
            "meeting": [{"id": 1, "candidate_id": 1, "held_at": ended}],
        },
    )


def check_json(tmp_path, target_db, monkeypatch, body: str):
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    result = run_cli("check", "-c", str(config), "--json")
    for marker in MARKERS:
        assert marker not in result.stdout + result.stderr
    return result, result.json()


def test_a_config_that_matches_passes(target_db: TargetDb, tmp_path, monkeypatch):
    seeded(target_db)
    body = rule('cascade = ["meeting", "minutes"]')
    result, document = check_json(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 0, result.stdout
    assert document == {
        "format": "gdpr-sweep check 1",
        "passed": True,
        "exit_code": 0,
        "error": None,
        "todos": [],
        "databases": [{"database": "main", "status": "passed", "errors": 0, "warnings": 0}],
        "findings": [],
        "failures": [],
    }


def test_an_error_finding_fails_its_database(target_db: TargetDb, tmp_path, monkeypatch):
    seeded(target_db, ondelete="CASCADE")
    body = rule('columns = { name = "null" }', action="anonymise")
    result, document = check_json(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 2, result.stdout
    assert document["passed"] is False and document["exit_code"] == 2
    assert document["databases"] == [
        {"database": "main", "status": "failed", "errors": 1, "warnings": 0}
    ]
    (finding,) = document["findings"]
    assert finding["database"] == "main" and finding["severity"] == "error"
    assert finding["key_path"] == "rules[0].columns.name"
    assert "is NOT NULL" in finding["message"] and finding["fix"]
    assert document["failures"] == [] and document["todos"] == []


def test_a_warning_still_passes(target_db: TargetDb, tmp_path, monkeypatch):
    seeded(target_db)  # meeting references candidate with no ON DELETE: a warning
    result, document = check_json(tmp_path, target_db, monkeypatch, rule(""))
    assert result.exit_code == 0, result.stdout
    assert document["passed"] is True
    (database,) = document["databases"]
    assert database["status"] == "passed" and database["errors"] == 0
    assert database["warnings"] == len(document["findings"]) >= 1
    assert {f["severity"] for f in document["findings"]} == {"warning"}
    held = [f for f in document["findings"] if f["key_path"] == "rules[0].action"]
    assert "rows of 'meeting'" in held[0]["message"]


def test_a_database_not_read_is_exit_3(tmp_path, monkeypatch):
    config = good_down_and_missing(tmp_path, monkeypatch)
    result = run_cli("check", "-c", str(config), "--json")
    assert result.exit_code == 3, result.stdout
    document = result.json()
    assert document["passed"] is False and document["exit_code"] == 3
    statuses = {d["database"]: d["status"] for d in document["databases"]}
    assert statuses == {"good": "passed", "down": "unreadable", "missing": "unreadable"}
    failures = {f["database"]: f["error"] for f in document["failures"]}
    assert "database down: cannot connect" in failures["down"]
    assert "database missing: no SQLite file" in failures["missing"]
    assert all("\n" not in error for error in failures.values())
    assert "s3cret" not in result.stdout + result.stderr
    assert "sweeper" not in result.stdout + result.stderr


def test_an_error_finding_outranks_a_database_not_read(target_db: TargetDb, tmp_path, monkeypatch):
    seeded(target_db, ondelete="CASCADE")
    config = write_config(
        tmp_path,
        '[databases.missing]\nurl = "sqlite:///no-such-file.db"\n' + rule("", table="nosuch"),
        target_db.url,
        monkeypatch,
    )
    result = run_cli("check", "-c", str(config), "--json")
    assert result.exit_code == 2, result.stdout  # as the text check: findings first
    document = result.json()
    assert document["exit_code"] == 2
    assert [f["key_path"] for f in document["findings"]] == ["rules[0].table"]
    assert [f["database"] for f in document["failures"]] == ["missing"]


def test_a_draft_lists_its_todos(target_db: TargetDb, tmp_path, monkeypatch):
    seeded(target_db, ondelete="CASCADE")
    body = (
        '[[rules]]\nid = "r"\ntable = "candidate"\naction = "delete"\nafter = "TODO"\n'
        'since = "ended_at"\nbasis = "TODO"\n'
    )
    result, document = check_json(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 2, result.stdout
    assert result.stderr == ""  # as the text check: the list is the output
    assert document["passed"] is False and document["exit_code"] == 2
    assert [t["key_path"] for t in document["todos"]] == ["rules[0].after", "rules[0].basis"]
    assert "6 months" in document["todos"][0]["answer_with"]
    assert document["databases"] == [] and document["findings"] == []


def test_a_bad_config_is_a_json_error_and_one_line(target_db: TargetDb, tmp_path, monkeypatch):
    for body, expected in (
        (rule("") + "nosuch = 1\n", "rules[0].nosuch"),
        ("[[rules]\n", ""),  # not TOML
    ):
        result, document = check_json(tmp_path, target_db, monkeypatch, body)
        assert result.exit_code == 2, result.stdout
        assert document["format"] == "gdpr-sweep check 1"
        assert document["passed"] is False and document["exit_code"] == 2
        assert expected in document["error"] and "\n" not in document["error"]
        assert result.stderr == f"error: {document['error']}\n"
        assert document["databases"] == [] and document["findings"] == []


def test_an_unknown_database_is_bad_usage(target_db: TargetDb, tmp_path, monkeypatch):
    seeded(target_db, ondelete="CASCADE")
    config = write_config(tmp_path, rule(""), target_db.url, monkeypatch)
    result = run_cli("check", "-c", str(config), "--json", "--database", "nosuch")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "nosuch" in result.json()["error"]
