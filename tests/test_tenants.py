"""Many tenant databases: parallel sweeps, one failing, metrics and JSON logs."""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.configs import rule_toml
from tests.conftest import TargetDb, run_cli
from tests.test_apply import AS_OF, seed

RULES = rule_toml(
    "counselling-anonymise",
    "counselling_case",
    "anonymise",
    after="6 months",
    since="course_ended_at",
    columns={"name": "null", "email": "null", "notes": "redact"},
)


def tenant_config(tmp_path, target_db: TargetDb, monkeypatch) -> str:
    for name in ("odense", "vejle"):
        seed(TargetDb("sqlite", f"sqlite:///{tmp_path / (name + '.db')}"))
    seed(target_db)
    monkeypatch.setenv("AARHUS_URL", target_db.url)
    monkeypatch.setenv("HORSENS_URL", "postgresql+psycopg://sweeper:pw@127.0.0.1:1/horsens")
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(
        '[sweep]\nstate_url = "sqlite:///state.db"\nbatch_size = 3\nmax_fraction = 0.9\n'
        '[databases.aarhus]\nurl_env = "AARHUS_URL"\n'
        '[databases.odense]\nurl = "sqlite:///odense.db"\n'
        '[databases.horsens]\nurl_env = "HORSENS_URL"\n'
        '[databases.vejle]\nurl = "sqlite:///vejle.db"\n' + RULES
    )
    return str(config)


def anonymised(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.exec_driver_sql(
            "SELECT count(*) FROM counselling_case WHERE name IS NULL"
        ).scalar_one()
    engine.dispose()
    return count


def test_jobs_sweeps_tenants_in_parallel_and_isolates_a_failure(target_db, tmp_path, monkeypatch):
    config = tenant_config(tmp_path, target_db, monkeypatch)
    metrics = tmp_path / "gdpr-sweep.prom"
    result = run_cli("run", "-c", config, "--as-of", AS_OF, "--jobs", "3", "--json",
                     "--metrics-file", str(metrics))  # fmt: skip
    assert result.exit_code == 3, result.stderr
    summary = result.json()
    assert [f["database"] for f in summary["failures"]] == ["horsens"]
    assert "pw" not in result.stdout and "sweeper" not in result.stdout
    done = {item["database"]: item["done"] for item in summary["items"]}
    assert set(done) == {"aarhus", "odense", "vejle"}
    assert len(set(done.values())) == 1 and next(iter(done.values())) > 0
    for url in (target_db.url, f"sqlite:///{tmp_path / 'odense.db'}",
                f"sqlite:///{tmp_path / 'vejle.db'}"):  # fmt: skip
        assert anonymised(url) == done["aarhus"]
    assert run_cli("audit", "verify", "-c", config).exit_code == 0
    show = run_cli("audit", "show", "1", "-c", config, "--json").json()
    per_database = {e["database_name"] for e in show["entries"] if e["kind"] == "batch"}
    assert per_database == {"aarhus", "odense", "vejle"}
    assert [e["database_name"] for e in show["entries"] if e["kind"] == "database-failed"] == [
        "horsens"
    ]

    # The metrics file is valid Prometheus text format, and says what happened.
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    failed = {s.labels["database"]: s.value for s in families["gdpr_sweep_database_failed"].samples}
    assert failed == {"aarhus": 0, "odense": 0, "horsens": 1, "vejle": 0}
    rows = {s.labels["database"]: s.value for s in families["gdpr_sweep_rows_done"].samples}
    assert rows == {db: float(n) for db, n in done.items()}
    assert families["gdpr_sweep_last_run_success"].samples[0].value == 0
    assert "gdpr_sweep_last_success_timestamp_seconds" not in families
    assert oct(metrics.stat().st_mode & 0o777) == "0o644"

    # Without the failing tenant the sweep succeeds, and the success is timestamped.
    result = run_cli("run", "-c", config, "--as-of", AS_OF, "-j", "2", "-d", "aarhus", "-d",
                     "odense", "--quiet", "--metrics-file", str(metrics))  # fmt: skip
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == ("", "")
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    assert families["gdpr_sweep_last_run_success"].samples[0].value == 1
    assert families["gdpr_sweep_last_success_timestamp_seconds"].samples[0].value > 0


def test_json_logs_on_stderr_results_on_stdout(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'aarhus.db'}")
    config = tenant_config(tmp_path, target_db, monkeypatch)
    result = run_cli("--log-format", "json", "--log-level", "info", "run", "-c", config,
                     "--as-of", AS_OF, "--json")  # fmt: skip
    assert result.exit_code == 3
    json.loads(result.stdout)  # stdout holds the result alone
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    events = {line.get("event") for line in lines}
    assert {"rule-done", "database-failed", "run-end"} <= events
    assert all(line["level"] in ("info", "error") for line in lines)


@pytest.mark.parametrize("value", ["xml", "loud"])
def test_bad_log_options_are_exit_2(value):
    option = "--log-format" if value == "xml" else "--log-level"
    result = run_cli(option, value, "check")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {option}")


def test_lock_contention_two_processes(tmp_path, monkeypatch):
    """Two real processes started together: never both on one tenant (locks are per
    tenant). One that finds every tenant locked exits 4, one that finds some locked
    sweeps the others and exits 3 ([3, 3]: each took one tenant first), 0 when the
    other had finished. Either way every tenant is swept: nothing is left due."""
    import subprocess
    import sys

    from tests.conftest import TEST_KEY

    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'aarhus.db'}")
    config = tenant_config(tmp_path, target_db, monkeypatch)
    env = {**os.environ, "GDPR_SWEEP_KEY": TEST_KEY}
    command = [sys.executable, "-m", "gdpr_sweep", "run", "-c", config, "--as-of", AS_OF,
               "-d", "aarhus", "-d", "odense", "--quiet"]  # fmt: skip
    # The state database is created (and migrated) first, so both start on equal terms.
    assert run_cli("migrate", "-c", config).exit_code == 0
    processes = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]  # fmt: skip
    codes = sorted(p.wait(timeout=120) for p in processes)
    # [0, 0]: the first finished before the second began; [0, 3]: the second found one
    # tenant still locked (reported, not swept) and swept the one the first had let go.
    assert codes in ([0, 4], [0, 3], [3, 3], [0, 0])
    state = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with state.connect() as connection:
        statuses = [r[0] for r in connection.exec_driver_sql("SELECT status FROM runs")]
    state.dispose()
    assert statuses.count("completed") == codes.count(0)
    assert statuses.count("partial") == codes.count(3)  # its locked tenant is reported
    planned = run_cli(
        "plan", "-c", config, "--as-of", AS_OF, "-d", "aarhus", "-d", "odense", "--json"
    )
    assert planned.exit_code == 0, planned.stderr
    assert [item["due"] for item in planned.json()["items"]] == [0, 0]
