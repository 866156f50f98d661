"""The `partitions` rule key and the `analyze` database key (issue 21): parsing, SQLite's
row path, and `analyze = true` refreshing statistics after a run, its time apart.

A bad value is exit 2 with one line naming the key, nothing touched; configs without
the keys keep their digest (plan files made before still apply). `analyze` runs on
every engine, only after a run that changed rows.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gdpr_sweep.config import load_config
from tests.configs import WHOLE_TABLE, rule_toml
from tests.conftest import TargetDb, query_rows, run_cli, write_config

AS_OF = "2025-01-15T12:00:00+01:00"


def _config(tmp_path, url, monkeypatch, rule: str, database_extra: str = ""):
    path = write_config(tmp_path, rule, url, monkeypatch, extra_sweep=WHOLE_TABLE)
    if database_extra:
        text = path.read_text(encoding="utf-8").replace(
            'controller = "Testkommune"\n', f'controller = "Testkommune"\n{database_extra}\n'
        )
        path.write_text(text, encoding="utf-8")
    return path


def _log_table(target_db: TargetDb, rows: int = 10) -> None:
    metadata = sa.MetaData()
    sa.Table(
        "log",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    target_db.create(
        metadata,
        {"log": [{"id": i, "at": dt.datetime(2024, 1 + i % 12, 10)} for i in range(rows)]},
    )


@pytest.mark.parametrize(
    ("rule", "extra", "message"),
    [
        (
            rule_toml("r", "log", "delete", after="6 months", since="at", partitions="dropp"),
            "",
            "error: rules[0].partitions: 'dropp' is not one of drop, truncate, off "
            "(did you mean 'drop'?)",
        ),
        (
            rule_toml("r", "log", "delete", after="6 months", since="at", partitions=1),
            "",
            "error: rules[0].partitions: ",
        ),
        (
            rule_toml(
                "r",
                "log",
                "anonymise",
                after="6 months",
                since="at",
                columns={"at": "null"},
                partitions="off",
            ),
            "",
            'error: rules[0].partitions: only applies to action "delete"',
        ),
        (
            rule_toml("r", "log", "delete", after="6 months", since="at"),
            'analyze = "yes"',
            "error: databases.main.analyze: must be true or false, not ",
        ),
    ],
)
def test_a_bad_value_is_exit_2_naming_the_key(tmp_path, monkeypatch, rule, extra, message):
    target = tmp_path / "target.db"
    config = _config(tmp_path, f"sqlite:///{target}", monkeypatch, rule, extra)
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not target.exists() and not (tmp_path / "state.db").exists()


def test_the_defaults_written_out_keep_the_digest(tmp_path, monkeypatch):
    rule = rule_toml("r", "log", "delete", after="6 months", since="at")
    plain = load_config(_config(tmp_path, "sqlite:///t.db", monkeypatch, rule)).digest
    explicit = load_config(
        _config(
            tmp_path,
            "sqlite:///t.db",
            monkeypatch,
            rule_toml("r", "log", "delete", after="6 months", since="at", partitions="drop"),
            "analyze = false",
        )
    ).digest
    assert explicit == plain
    changed = load_config(
        _config(tmp_path, "sqlite:///t.db", monkeypatch,
                rule_toml("r", "log", "delete", after="6 months", since="at", partitions="off"))
    ).digest  # fmt: skip
    assert changed != plain


@pytest.mark.parametrize("target_db", ["sqlite"], indirect=True)
def test_sqlite_accepts_the_key_and_takes_the_row_path(target_db: TargetDb, tmp_path, monkeypatch):
    _log_table(target_db)
    rule = rule_toml("r", "log", "delete", after="6 months", since="at", partitions="truncate")
    config = _config(tmp_path, target_db.url, monkeypatch, rule)
    plan = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert plan.exit_code == 0, plan.stderr
    assert plan.json()["items"][0]["partitions"] == []
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    item = result.json()["items"][0]
    assert item["done"] == 7 and item["partitions_removed"] == 0 and item["batches"] == 1
    assert query_rows(target_db, "SELECT count(*) FROM log") == [(3,)]


def _statistics(target_db: TargetDb) -> object:
    """Something only ANALYZE writes, per engine (None: not analyzed)."""
    if target_db.engine_name == "postgresql":
        return target_db.scalar(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'log'"
        )
    if target_db.engine_name == "sqlite":
        exists = target_db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        return (
            target_db.scalar("SELECT stat FROM sqlite_stat1 WHERE tbl = 'log'") if exists else None
        )
    return True  # MariaDB: ANALYZE TABLE's answer is checked through the run's summary


def test_analyze_after_a_run_that_changed_rows_its_time_apart(
    target_db: TargetDb, tmp_path, monkeypatch
):
    _log_table(target_db)
    rule = rule_toml("r", "log", "delete", after="6 months", since="at")
    config = _config(tmp_path, target_db.url, monkeypatch, rule, "analyze = true")
    if target_db.engine_name != "mariadb":
        assert _statistics(target_db) is None
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    (analyzed,) = result.json()["analyze"]
    assert analyzed["database"] == "main" and analyzed["tables"] == 1
    assert analyzed["seconds"] >= 0
    assert _statistics(target_db) is not None
    # Nothing left to do: nothing changed, no analyze.
    again = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert again.exit_code == 0 and again.json()["analyze"] == []
    # The text summary shows it on a line of its own.
    _log_table_more(target_db)
    text = run_cli("run", "-c", str(config), "--as-of", AS_OF)
    assert text.exit_code == 0, text.stdout + text.stderr
    assert "analyze: database main, 1 table(s)" in text.stdout


def _log_table_more(target_db: TargetDb) -> None:
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO log (id, at) VALUES (100, '2024-02-10 00:00:00')")
    engine.dispose()


def test_without_analyze_nothing_is_analyzed(target_db: TargetDb, tmp_path, monkeypatch):
    _log_table(target_db)
    rule = rule_toml("r", "log", "delete", after="6 months", since="at")
    config = _config(tmp_path, target_db.url, monkeypatch, rule)
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["analyze"] == []
    if target_db.engine_name != "mariadb":
        assert _statistics(target_db) is None


def test_partition_statements_quote_and_order_the_ddl():
    """What `plan --sql` shows for a partition (partition_drop.partition_statements)."""
    from gdpr_sweep.partition_drop import partition_statements

    entry = {"name": "Log 2024_01", "schema": "hr", "action": "drop"}
    assert partition_statements("postgresql", "hr.log", entry) == [
        'ALTER TABLE hr.log DETACH PARTITION hr."Log 2024_01"',
        'DROP TABLE hr."Log 2024_01"',
    ]
    assert partition_statements("postgresql", "log", entry | {"action": "truncate"}) == [
        'TRUNCATE TABLE hr."Log 2024_01"'
    ]
    assert partition_statements("mariadb", "log", entry | {"schema": None}) == [
        "ALTER TABLE log DROP PARTITION `Log 2024_01`"
    ]
    assert partition_statements("mariadb", "log", entry | {"action": "truncate"}) == [
        "ALTER TABLE log TRUNCATE PARTITION `Log 2024_01`"
    ]
    assert partition_statements("postgresql", "log", entry | {"action": "batch"}) == []
