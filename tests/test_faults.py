"""Fault injection: a real `gdpr-sweep run` killed at named points, connections dropped.

Every time: the rerun processes exactly the due set once (a pseudonym hashed twice would
differ from the expected one), nothing else is touched, the killed run shows as
interrupted, and the audit trail verifies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from gdpr_sweep.strategies import hash_value
from tests.configs import rule_toml
from tests.conftest import TEST_KEY, TargetDb, run_cli, write_config
from tests.test_apply import AS_OF, NEW, OLD

ROWS = 40
#: The case files' rule, shared with test_crash.
CASE_FILE_ANONYMISE = rule_toml(
    "anon",
    "case_file",
    "anonymise",
    after="6 months",
    since="ended_at",
    columns={"name": "null", "phone": "hash", "notes": "redact"},
)
RULE = CASE_FILE_ANONYMISE + rule_toml("purge", "mail", "delete", after="6 months", since="sent_at")
POINTS = [
    "before-first-batch",
    "after-batch-intent",
    "after-target-commit",
    "after-batch",
    "during-migration",
]


def case_file_table(metadata: sa.MetaData) -> sa.Table:
    """`case_file`: the personal columns CASE_FILE_ANONYMISE rewrites, and its clock."""
    return sa.Table(
        "case_file",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120)),
        sa.Column("phone", sa.String(40)),
        sa.Column("notes", sa.Text),
        sa.Column("ended_at", sa.DateTime),
    )


def build(target_db: TargetDb) -> tuple[sa.Table, set[int], set[int]]:
    metadata = sa.MetaData()
    case = case_file_table(metadata)
    sa.Table(
        "mail",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text),
        sa.Column("sent_at", sa.DateTime),
    )
    target_db.create(
        metadata,
        {
            "case_file": [
                {
                    "id": i,
                    "name": f"N{i}",
                    "phone": f"+45 0000 {i:04d}",
                    "notes": f"n{i}",
                    "ended_at": OLD if i % 3 else NEW,
                }
                for i in range(1, ROWS + 1)
            ],
            "mail": [
                {"id": i, "body": f"b{i}", "sent_at": OLD if i % 2 else NEW}
                for i in range(1, ROWS + 1)
            ],
        },
    )
    return case, {i for i in range(1, ROWS + 1) if i % 3}, {i for i in range(1, ROWS + 1) if i % 2}


def assert_exactly_processed(
    target_db: TargetDb, case: sa.Table, due_cases: set[int], due_mail: set[int]
) -> None:
    engine = target_db.engine()
    with engine.connect() as connection:
        for row in connection.execute(sa.select(case)).mappings():
            i = row["id"]
            if i in due_cases:
                assert (row["name"], row["notes"]) == (None, "[redacted]")
                assert row["phone"] == hash_value(f"+45 0000 {i:04d}", TEST_KEY.encode(), 40)
            else:
                assert (row["name"], row["phone"], row["notes"]) == (
                    f"N{i}",
                    f"+45 0000 {i:04d}",
                    f"n{i}",
                )
        mail = {r[0] for r in connection.exec_driver_sql("SELECT id FROM mail")}
    engine.dispose()
    assert mail == set(range(1, ROWS + 1)) - due_mail


def command(config) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gdpr_sweep",
        "run",
        "-c",
        str(config),
        "--as-of",
        AS_OF,
        "--quiet",
    ]


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_a_failpoint_then_rerun(target_db, tmp_path, monkeypatch, point):
    case, due_cases, due_mail = build(target_db)
    config = write_config(
        tmp_path, RULE, target_db.url, monkeypatch, extra_sweep="batch_size = 4\nmax_fraction = 1.0"
    )
    env = {**os.environ, "GDPR_SWEEP_KEY": TEST_KEY, "GDPR_SWEEP_FAILPOINT": point}
    killed = subprocess.run(command(config), env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    rerun = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert_exactly_processed(target_db, case, due_cases, due_mail)
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0
    with sqlite3.connect(tmp_path / "state.db") as connection:
        statuses = [s for (s,) in connection.execute("SELECT status FROM runs ORDER BY id")]
    if point == "during-migration":
        # The migration was all or nothing: no run was recorded before the kill.
        assert statuses == ["completed"]
    else:
        assert statuses == ["interrupted", "completed"]
        assert rerun.json()["interrupted_runs"] == [1]


def _backends(target_db: TargetDb) -> list[int]:
    engine = target_db.engine()
    with engine.connect() as connection:
        if target_db.engine_name == "postgresql":
            rows = connection.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'gdpr-sweep'"
                " AND datname = current_database()"
            )
        else:
            rows = connection.exec_driver_sql(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
        found = [r[0] for r in rows]
    engine.dispose()
    return found


def _kill(target_db: TargetDb, backend: int) -> None:
    engine = target_db.engine()
    with engine.begin() as connection:
        if target_db.engine_name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
        else:
            with contextlib.suppress(sa.exc.DBAPIError):  # it may have ended meanwhile
                connection.exec_driver_sql(f"KILL {int(backend)}")
    engine.dispose()


def test_connection_dropped_mid_run_fails_cleanly_then_rerun_completes(
    target_db, tmp_path, monkeypatch
):
    if target_db.engine_name == "sqlite":
        pytest.skip("SQLite has no server connection to drop")
    case, due_cases, due_mail = build(target_db)
    config = write_config(
        tmp_path, RULE, target_db.url, monkeypatch, extra_sweep="batch_size = 1\nmax_fraction = 1.0"
    )
    env = {**os.environ, "GDPR_SWEEP_KEY": TEST_KEY}
    # A short pause between batches keeps the run going long enough for the loop below
    # to find its connection even on a loaded machine (two test workers, two cores).
    process = subprocess.Popen(
        [*command(config), "--json", "--pause-between-batches", "0.05"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    killed = 0
    while process.poll() is None and time.monotonic() < deadline:
        for backend in _backends(target_db):
            _kill(target_db, backend)
            killed += 1
        time.sleep(0.05)
    out, err = process.communicate(timeout=60)
    assert killed, f"the sweep finished before its connection could be dropped: {err}"
    assert process.returncode in (0, 3), err
    if process.returncode == 3:
        assert "database main:" in err + out
        assert "Traceback" not in err
    rerun = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert_exactly_processed(target_db, case, due_cases, due_mail)
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


def test_erase_during_a_run_is_serialised(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 't.db'}")
    build(target_db)
    config = write_config(
        tmp_path,
        RULE + '[subject]\nroot = "mail"\nidentifiers = { body = "body" }\n',
        target_db.url,
        monkeypatch,
        extra_sweep="batch_size = 1\nmax_fraction = 1.0",
    )
    env = {**os.environ, "GDPR_SWEEP_KEY": TEST_KEY}
    process = subprocess.Popen(
        [*command(config), "--pause-between-batches", "0.2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = tmp_path / "state.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(state, timeout=5) as connection:
                if connection.execute("SELECT count(*) FROM audit_entries").fetchone()[0] > 2:
                    break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    erase = run_cli("erase", "-c", str(config), "--subject", "body=b2")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert erase.exit_code == 4, erase.stderr
    assert erase.stderr.count("\n") == 1
