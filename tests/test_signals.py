"""SIGTERM and Ctrl-C: a real `gdpr-sweep run` process stops after its current batch.

A signal is delivered to a real process, either by the process itself at an exact point
(`GDPR_SWEEP_FAILPOINT=POINT:SIGTERM`, see gdpr_sweep/faults.py) or from outside while
it works. Every time: the exit code is SPEC's (3 for SIGTERM, 130 for SIGINT), the run
is recorded `stopped` with reason `signal`, only whole batches were processed, the
summary and the metrics file are written, and the next run finishes exactly the rest.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_KEY, TargetDb, run_cli, write_config
from tests.test_faults import RULE, assert_exactly_processed, build

AS_OF = "2026-06-01"
BATCH = 4
SIGNALS = {"SIGTERM": (signal.SIGTERM, 3), "SIGINT": (signal.SIGINT, 130)}


def run_command(config, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gdpr_sweep", "run", "-c", str(config), "--as-of", AS_OF,
            "--json", *extra]  # fmt: skip


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDPR_SWEEP_FAILPOINT")}
    return {**env, "GDPR_SWEEP_KEY": TEST_KEY, **extra}


def state_runs(tmp_path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "state.db") as connection:
        return connection.execute("SELECT id, command, status FROM runs ORDER BY id").fetchall()


def stopped_entries(tmp_path) -> list[dict]:
    with sqlite3.connect(tmp_path / "state.db") as connection:
        rows = connection.execute(
            "SELECT details FROM audit_entries WHERE kind = 'stopped' ORDER BY id"
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


def processed(document: dict) -> int:
    return sum(item["done"] for item in document["items"])


@pytest.mark.parametrize("name", sorted(SIGNALS))
@pytest.mark.parametrize(
    ("point", "batches"),
    [
        ("after-evaluation", 0),  # counted, nothing changed yet: nothing is done
        ("after-batch-intent", 1),  # inside the first batch: it is finished, then stop
        ("after-target-commit", 1),  # between commit and audit: the outcome is recorded
    ],
)
def test_a_signal_stops_the_run_after_the_current_batch(
    target_db, tmp_path, monkeypatch, name, point, batches
):
    _signum, code = SIGNALS[name]
    case, due_cases, due_mail = build(target_db)
    config = write_config(tmp_path, RULE, target_db.url, monkeypatch,
                          extra_sweep=f"batch_size = {BATCH}\nmax_fraction = 1.0")  # fmt: skip
    metrics = tmp_path / "gdpr.prom"
    started = time.monotonic()
    stopped = subprocess.run(
        run_command(config, "--metrics-file", str(metrics)),
        env=environment(GDPR_SWEEP_FAILPOINT=f"{point}:{name}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.monotonic() - started < 30
    assert stopped.returncode == code, stopped.stderr
    assert f"{name}: stopping after the current batch" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    summary = json.loads(stopped.stdout)
    assert summary["status"] == "stopped"
    assert processed(summary) == batches * BATCH  # whole batches only
    assert [s for _, _, s in state_runs(tmp_path)] == ["stopped"]
    assert stopped_entries(tmp_path) == [{"reason": "signal", "signal": name}]
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.read_text())
        for sample in family.samples
        if not sample.labels
    }
    assert (samples["gdpr_sweep_stopped"], samples["gdpr_sweep_last_run_success"]) == (1, 0)

    # The next run continues exactly where it stopped; the trail verifies.
    rerun = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert processed(rerun.json()) == len(due_cases) + len(due_mail) - batches * BATCH
    assert_exactly_processed(target_db, case, due_cases, due_mail)
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_a_signal_from_outside_while_the_run_works(target_db, tmp_path, monkeypatch, name):
    signum, code = SIGNALS[name]
    case, due_cases, due_mail = build(target_db)
    config = write_config(tmp_path, RULE, target_db.url, monkeypatch,
                          extra_sweep="batch_size = 2\nmax_fraction = 1.0")  # fmt: skip
    process = subprocess.Popen(
        run_command(config, "--pause-between-batches", "0.2"),
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until the first batch has been recorded, then signal.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if (tmp_path / "state.db").exists():
            try:
                with sqlite3.connect(tmp_path / "state.db") as connection:
                    n = connection.execute(
                        "SELECT count(*) FROM audit_entries WHERE kind = 'batch-start'"
                    ).fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if n:
                break
    process.send_signal(signum)
    started = time.monotonic()
    out, err = process.communicate(timeout=60)
    assert time.monotonic() - started < 10  # "within a few seconds"
    assert process.returncode == code, err
    summary = json.loads(out)
    done = processed(summary)
    assert summary["status"] == "stopped" and 0 < done < len(due_cases) + len(due_mail)
    assert done % 2 == 0  # whole batches of two
    rerun = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert processed(rerun.json()) == len(due_cases) + len(due_mail) - done
    assert_exactly_processed(target_db, case, due_cases, due_mail)
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


def test_sigterm_stops_parallel_databases(tmp_path):
    # `--jobs 2`: the signal reaches the main thread; both databases' executors stop
    # after their current batch.
    databases = ""
    for name in ("aarhus", "odense"):
        db = TargetDb("sqlite", f"sqlite:///{tmp_path / name}.db")
        build(db)
        databases += f'[databases.{name}]\nurl = "sqlite:///{tmp_path / name}.db"\n'
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(
        '[sweep]\nstate_url = "sqlite:///state.db"\nbatch_size = 2\nmax_fraction = 1.0\n'
        f"{databases}{RULE}",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        run_command(config, "--jobs", "2", "--pause-between-batches", "0.2"),
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            with sqlite3.connect(tmp_path / "state.db") as connection:
                batches = connection.execute(
                    "SELECT count(DISTINCT database_name) FROM audit_entries WHERE kind = 'batch'"
                ).fetchone()[0]
        except sqlite3.OperationalError:
            continue
        if batches == 2:
            break
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    out, err = process.communicate(timeout=60)
    assert time.monotonic() - started < 10
    assert process.returncode == 3, err
    summary = json.loads(out)
    assert summary["status"] == "stopped"
    per_database = {}
    for item in summary["items"]:
        per_database[item["database"]] = per_database.get(item["database"], 0) + item["done"]
    assert set(per_database) == {"aarhus", "odense"}
    assert all(0 < done < 47 for done in per_database.values()), per_database
    rerun = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert rerun.exit_code == 0, rerun.stderr
    for name in ("aarhus", "odense"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / name}.db")
        with engine.connect() as connection:
            left = connection.exec_driver_sql("SELECT count(*) FROM mail").scalar()
        engine.dispose()
        assert left == 20  # the 20 mails not due; the 20 due ones are gone
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0
