"""Kill -9 a real `gdpr-sweep run` mid-sweep, several times; the rerun finishes exactly.

Each kill lands wherever the sweep happens to be (between or inside batches, before or
after the audit write); after the final run every due row is processed exactly once
(a pseudonym hashed twice would differ), no other row is touched, the killed runs show
as interrupted, and the audit trail verifies.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from gdpr_sweep.strategies import hash_value
from tests.conftest import TEST_KEY, TargetDb, run_cli, write_config
from tests.test_apply import AS_OF, NEW, OLD
from tests.test_faults import CASE_FILE_ANONYMISE, case_file_table

ROWS = 700


def batch_entries(state: Path) -> int:
    if not state.exists():
        return 0
    try:
        with sqlite3.connect(state, timeout=5) as connection:
            return connection.execute(
                "SELECT count(*) FROM audit_entries WHERE kind = 'batch'"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def start_run(config: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gdpr_sweep", "run", "-c", str(config), "--as-of", AS_OF,
         "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_sigkill_mid_run_then_rerun_processes_exactly_the_due_set(
    target_db: TargetDb, tmp_path, monkeypatch
):
    metadata = sa.MetaData()
    case = case_file_table(metadata)
    rows = [
        {"id": i, "name": f"N{i}", "phone": f"+45 0000 {i:04d}", "notes": f"n{i}",
         "ended_at": OLD if i % 4 else NEW}
        for i in range(1, ROWS + 1)
    ]  # fmt: skip
    due = {row["id"] for row in rows if row["ended_at"] == OLD}
    target_db.create(metadata, {"case_file": rows})
    config = write_config(
        tmp_path,
        CASE_FILE_ANONYMISE,
        target_db.url,
        monkeypatch,
        extra_sweep="batch_size = 1\nmax_fraction = 0.9",
    )
    env = {**os.environ, "GDPR_SWEEP_KEY": TEST_KEY}
    state = tmp_path / "state.db"

    kills = 0
    for kill_after in (3, 40, 150, 300):
        process = start_run(config, env)
        deadline = time.monotonic() + 60
        while batch_entries(state) < kill_after and process.poll() is None:
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.005)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        assert process.returncode in (0, -signal.SIGKILL), process.stderr.read()
    assert kills >= 3, "the sweep finished before it could be killed: make it longer"

    final = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert final.exit_code == 0, final.stderr
    # Each run marks the one killed before it; the final run marks the last. (A process
    # killed before it started its run leaves no run behind, so count runs, not kills.)
    interrupted_by_final = final.json()["interrupted_runs"]

    engine = target_db.engine()
    with engine.connect() as connection:
        for row in connection.execute(sa.select(case)).mappings():
            i = row["id"]
            if i in due:
                assert row["name"] is None and row["notes"] == "[redacted]"
                # Hashed once: the pseudonym of the original, not of a pseudonym.
                assert row["phone"] == hash_value(f"+45 0000 {i:04d}", TEST_KEY.encode(), 40)
            else:
                assert (row["name"], row["phone"], row["notes"]) == (
                    f"N{i}",
                    f"+45 0000 {i:04d}",
                    f"n{i}",
                )
    engine.dispose()

    with sqlite3.connect(state) as connection:
        statuses = [s for (s,) in connection.execute("SELECT status FROM runs ORDER BY id")]
        done = connection.execute(
            "SELECT coalesce(sum(rows), 0) FROM audit_entries WHERE kind = 'batch'"
        ).fetchone()[0]
        unconfirmed = connection.execute(
            "SELECT count(*) FROM audit_entries WHERE kind = 'batch-unconfirmed'"
        ).fetchone()[0]
    assert statuses == ["interrupted"] * (len(statuses) - 1) + ["completed"]
    assert len(statuses) >= 3
    assert interrupted_by_final == [len(statuses) - 1]
    # Every due row was recorded as done, except at most one row (batch_size 1) per kill
    # whose commit landed just before the process died, and which is recorded unconfirmed.
    assert done <= len(due) <= done + unconfirmed
    assert unconfirmed <= kills
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0
