"""The audit trail proves what happened: runs are sealed, heads anchor it, the key is checked.

On SQLite and PostgreSQL state databases: every tamper case is detected by `audit
verify` (exit 5, naming the entry or the run); a head kept outside catches truncation;
a command given another key is refused (exit 2) before it writes anything, in the
target or the state database.
"""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa

from tests.conftest import TEST_KEY, run_cli
from tests.test_state_faults import AS_OF, config, postgresql_state, target

OTHER_KEY = "another-secret-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path, monkeypatch):
    """(config path, state URL) with a SQLite target of ten due rows."""
    target(tmp_path)
    if request.param == "sqlite":
        return config(tmp_path, "sqlite:///state.db"), f"sqlite:///{tmp_path / 'state.db'}"
    path, url = postgresql_state(tmp_path, monkeypatch)
    return path, url


def sql(url: str, *statements: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            return [connection.exec_driver_sql(s).fetchall() if s.lstrip().upper().startswith(
                "SELECT") else connection.exec_driver_sql(s) for s in statements]  # fmt: skip
    finally:
        engine.dispose()


def verify(path, *extra: str):
    return run_cli("audit", "verify", "-c", str(path), *extra)


def two_runs(path) -> str:
    """Two sweeps (batches of 3 rows); return the head after the first."""
    first = run_cli("run", "-c", str(path), "--as-of", "2025-07-01", "--json")
    assert first.exit_code == 0, first.stderr
    second = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert second.exit_code == 0, second.stderr
    assert second.json()["head"] and second.json()["head"] != first.json()["head"]
    return first.json()["head"]


def test_an_intact_trail_verifies_and_reports_its_head(state):
    path, _url = state
    first_head = two_runs(path)
    result = verify(path, "--json")
    assert result.exit_code == 0, result.stdout
    document = result.json()
    assert document["intact"] and document["format"] == "gdpr-sweep audit verify 1"
    assert document["head"].startswith(f"{document['entries']}:")
    # A head from earlier is still in the chain; so is the current one.
    assert verify(path, "--head", first_head).exit_code == 0
    assert verify(path, "--head", document["head"]).exit_code == 0
    assert verify(path, "--head", "nonsense").exit_code == 2


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("status", "'refused'"),
        ("subject_hash", "'hmac:00'"),
        ("as_of", "'2020-01-01T00:00:00+01:00'"),
        ("finished_at", "'2026-01-01T00:00:00+00:00'"),
        ("command", "'apply'"),
        ("config_digest", "'sha256:0'"),
        ("summary", 'REPLACE(summary, \'"status": "completed"\', \'"status": "x"\')'),
    ],
)
def test_an_edited_run_row_is_detected(state, column, value):
    path, url = state
    two_runs(path)
    before = sql(url, "SELECT summary FROM runs WHERE id = 1")[0][0][0]
    sql(url, f"UPDATE runs SET {column} = {value} WHERE id = 1")
    if column == "summary":  # the replacement really changed the counts
        assert sql(url, "SELECT summary FROM runs WHERE id = 1")[0][0][0] != before
    result = verify(path)
    assert result.exit_code == 5, result.stdout
    assert "run 1 was edited after it was recorded" in result.stderr


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["UPDATE audit_entries SET rows = 999 WHERE id = 4"], "entry 4 its content was altered"),
        (["DELETE FROM audit_entries WHERE id = 3"], "entry 4 entry 3 is missing"),
        (
            [
                "UPDATE audit_entries SET id = 1000 WHERE id = 3",
                "UPDATE audit_entries SET id = 3 WHERE id = 4",
                "UPDATE audit_entries SET id = 4 WHERE id = 1000",
            ],
            "entry 3 does not follow the entry before it",
        ),
        (["DELETE FROM runs WHERE id = 1"], "the row of run 1 was removed"),
        (
            [
                "INSERT INTO runs (id, command, as_of, config_digest, user_name, host, pid, "
                "tool_version, started_at, status) VALUES (99, 'erase', 'x', 'x', 'u', 'h', 1, "
                "'0', 'x', 'completed')"
            ],
            "run 99 is not in the audit trail",
        ),
    ],
)
def test_edited_removed_or_reordered_entries_are_detected(state, statements, expected):
    path, url = state
    two_runs(path)
    if url.startswith("postgresql"):  # an administrator can switch off foreign keys
        statements = ["SET LOCAL session_replication_role = replica", *statements]
    sql(url, *statements)
    result = verify(path)
    assert result.exit_code == 5, result.stdout
    assert expected in result.stderr, result.stderr


def test_truncation_is_caught_against_a_head_kept_elsewhere(state):
    path, url = state
    two_runs(path)
    kept = verify(path, "--json").json()["head"]  # e.g. from the run's log line
    # Delete the newest run with all its entries: a consistent, shorter chain.
    sql(url, "DELETE FROM audit_entries WHERE run_id = 2", "DELETE FROM runs WHERE id = 2")
    assert verify(path).exit_code == 0  # without an anchor it cannot be told
    result = verify(path, "--head", kept)
    assert result.exit_code == 5
    assert f"the head {kept} is no longer in the chain" in result.stderr


def test_another_key_is_refused_before_anything_is_written(state, tmp_path, monkeypatch):
    path, url = state
    two_runs(path)
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    sql(
        target_url, *(f"INSERT INTO mail VALUES ({i}, '2024-01-01 00:00:00')" for i in range(1, 11))
    )
    counts = (
        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM audit_entries), "
        "(SELECT count(*) FROM holds)"
    )
    before = sql(url, counts)[0]
    monkeypatch.setenv("GDPR_SWEEP_KEY", OTHER_KEY)
    for command in (
        ["run", "-c", str(path), "--as-of", AS_OF],
        ["hold", "add", "-c", str(path), "-d", "main", "-t", "mail", "-k", "1", "--reason", "x"],
    ):
        result = run_cli(*command)
        assert result.exit_code == 2, (command, result.stderr)
        assert result.stderr == (
            "error: sweep.hash_key_env: GDPR_SWEEP_KEY does not match this state database "
            "(its audit trail was written with another key); nothing was written\n"
        )
    assert sql(url, counts)[0] == before
    assert sql(target_url, "SELECT count(*) FROM mail")[0][0][0] == 10
    monkeypatch.setenv("GDPR_SWEEP_KEY", TEST_KEY)
    assert verify(path).exit_code == 0


def test_a_state_database_without_a_key_check_adopts_the_key_its_chain_verifies_with(state):
    path, url = state
    two_runs(path)
    sql(url, "DELETE FROM state_meta")  # as a state database made by 0.1 has none
    os.environ["GDPR_SWEEP_KEY"] = OTHER_KEY  # (monkeypatched back by conftest)
    result = run_cli("run", "-c", str(path), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert "the existing audit trail does not verify with GDPR_SWEEP_KEY" in result.stderr
    assert sql(url, "SELECT count(*) FROM state_meta")[0][0][0] == 0
    os.environ["GDPR_SWEEP_KEY"] = TEST_KEY
    assert run_cli("run", "-c", str(path), "--as-of", AS_OF).exit_code == 0
    assert sql(url, "SELECT name FROM state_meta")[0] == [("key_check",)]
    assert json.loads(verify(path, "--json").stdout)["intact"]
