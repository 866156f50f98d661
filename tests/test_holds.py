"""Legal holds on all three engines: a held row is excluded from rules and erasure."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.configs import rule_toml
from tests.conftest import TargetDb, run_cli, write_config

AS_OF = "2026-06-01"
RULE = rule_toml("cctv-delete", "cctv_recording", "delete", after="5 days", since="recorded_at")


def seed(target_db: TargetDb) -> None:
    metadata = sa.MetaData()
    sa.Table("cctv_recording", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("recorded_at", sa.DateTime), sa.Column("camera", sa.String(40)))  # fmt: skip
    sa.Table("keyed_by_email", metadata, sa.Column("email", sa.String(254), primary_key=True))
    old, new = dt.datetime(2026, 5, 1, 14, 0), dt.datetime(2026, 5, 31, 14, 0)
    target_db.create(metadata, {
        "cctv_recording": [{"id": i, "recorded_at": old if i <= 5 else new, "camera": "door"}
                           for i in range(1, 8)],
        "keyed_by_email": [{"email": "someone@example.dk"}],
    })  # fmt: skip


def ids(target_db: TargetDb) -> set[int]:
    engine = target_db.engine()
    with engine.connect() as connection:
        result = {r[0] for r in connection.exec_driver_sql("SELECT id FROM cctv_recording")}
    engine.dispose()
    return result


def plan_item(config) -> dict:
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()["items"][0]


def test_hold_excludes_exactly_its_row_until_released(target_db, tmp_path, monkeypatch):
    seed(target_db)
    config = write_config(tmp_path, RULE, target_db.url, monkeypatch,
                          extra_sweep="max_fraction = 1.0")  # fmt: skip
    assert plan_item(config)["due"] == 5
    added = run_cli("hold", "add", "-c", str(config), "-d", "main", "-t", "cctv_recording",
                    "-k", "3", "--reason", "case 2026-118")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    item = plan_item(config)
    assert (item["due"], item["held"], item["held_by"]) == (4, 1, {"legal hold": 1})

    assert run_cli("run", "-c", str(config), "--as-of", AS_OF, "--quiet").exit_code == 0
    assert ids(target_db) == {3, 6, 7}

    listing = run_cli("hold", "list", "-c", str(config), "--json").json()["holds"]
    assert [(h["id"], h["key"], h["status"]) for h in listing] == [(1, 3, "active")]
    assert run_cli("hold", "release", "-c", str(config), "1").exit_code == 0
    assert run_cli("hold", "release", "-c", str(config), "1").exit_code == 2
    assert run_cli("run", "-c", str(config), "--as-of", AS_OF, "--quiet").exit_code == 0
    assert ids(target_db) == {6, 7}
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


def test_lapsed_hold_no_longer_protects(target_db, tmp_path, monkeypatch):
    seed(target_db)
    config = write_config(tmp_path, RULE, target_db.url, monkeypatch)
    for key, until in (("2", "2026-05-31"), ("4", "2026-06-01")):
        result = run_cli("hold", "add", "-c", str(config), "-d", "main", "-t", "cctv_recording",
                         "-k", key, "--reason", "x", "--until", until)  # fmt: skip
        assert result.exit_code == 0, result.stderr
    item = plan_item(config)  # as of 1 Jun: the hold until 31 May has lapsed
    assert (item["due"], item["held"]) == (4, 1)


def test_hold_on_missing_row_table_or_personal_key_is_exit_2(target_db, tmp_path, monkeypatch):
    seed(target_db)
    config = write_config(tmp_path, RULE, target_db.url, monkeypatch)
    cases = [
        (["-d", "main", "-t", "cctv_recording", "-k", "999"], "--key"),
        (["-d", "main", "-t", "nosuch", "-k", "1"], "--table"),
        (["-d", "nosuch", "-t", "cctv_recording", "-k", "1"], "--database"),
        (["-d", "main", "-t", "cctv_recording", "-k", "abc"], "--key"),
        (["-d", "main", "-t", "keyed_by_email", "-k", "1"], "--key"),  # no such row
        (["-d", "main", "-t", "cctv_recording", "-k", "1", "--until", "soon"], "--until"),
    ]
    for args, key in cases:
        result = run_cli("hold", "add", "-c", str(config), *args, "--reason", "x")
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr.startswith(f"error: {key}"), result.stderr
        assert result.stderr.count("\n") == 1
    assert run_cli("hold", "list", "-c", str(config), "--json").json()["holds"] == []
