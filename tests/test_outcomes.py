"""The outcome is never masked, and every outcome is told: --wait-lock, --json, metrics.

- `run --wait-lock D` waits for a sweep lock another process holds (SQLite and
  PostgreSQL state databases), exiting 4 only when D has passed;
- `run --json` prints one JSON document whether the run completed, was refused by a
  guard or found the lock held;
- a metrics file that cannot be written never replaces the run's own exit code: a bad
  path is refused before anything changes (exit 2), a write that fails after rows
  changed exits 3 saying so, and a run that already failed keeps its code (4, 5).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.state.lock import ADVISORY_LOCK_ID
from tests.conftest import run_cli
from tests.test_state_faults import AS_OF, config, postgresql_state, small_filesystem, target


def held_file_lock(state_db: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the sweep lock of a SQLite state database, as a running sweep would."""
    return held_flock(Path(str(state_db) + ".lock"))


@contextlib.contextmanager
def held_flock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (made if missing), as another process would."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def held_advisory_lock(url: str) -> Iterator[None]:
    engine = sa.create_engine(url)
    connection = engine.connect()
    connection.exec_driver_sql(f"SELECT pg_advisory_lock({ADVISORY_LOCK_ID})")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql(f"SELECT pg_advisory_unlock({ADVISORY_LOCK_ID})")
        connection.commit()
        connection.close()
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path, monkeypatch):
    """(config path, a context manager that holds the sweep lock) per state engine."""
    target(tmp_path)
    if request.param == "sqlite":
        path = config(tmp_path, "sqlite:///state.db")
        return path, lambda: held_file_lock(tmp_path / "state.db")
    path, url = postgresql_state(tmp_path, monkeypatch)
    return path, lambda: held_advisory_lock(url)


def test_wait_lock_gives_up_after_the_duration(state):
    path, hold = state
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    with hold():
        started = time.monotonic()
        result = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--wait-lock", "1s")
        waited = time.monotonic() - started
        at_once = run_cli("run", "-c", str(path), "--as-of", AS_OF)
    assert result.exit_code == 4, result.stderr
    assert "after waiting 1 s" in result.stderr
    assert 1.0 <= waited < 5
    assert at_once.exit_code == 4 and "after waiting" not in at_once.stderr


def test_wait_lock_runs_once_the_lock_is_free(state, tmp_path):
    path, hold = state
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    lock = hold()
    lock.__enter__()
    releaser = threading.Timer(0.8, lambda: lock.__exit__(None, None, None))
    releaser.start()
    try:
        result = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--wait-lock", "20s", "--json")
    finally:
        releaser.join()
    assert result.exit_code == 0, result.stderr
    assert result.json()["status"] == "completed"
    assert sum(item["done"] for item in result.json()["items"]) == 10


def test_a_bad_wait_lock_is_a_usage_error(tmp_path):
    target(tmp_path)
    path = config(tmp_path, "sqlite:///state.db")
    result = run_cli("run", "-c", str(path), "--wait-lock", "soon")
    assert result.exit_code == 2 and result.stderr.startswith("error: --wait-lock: ")


def test_json_in_every_outcome(tmp_path):
    db = target(tmp_path)
    path = config(tmp_path, "sqlite:///state.db")
    # Locked.
    with held_file_lock(tmp_path / "state.db"):
        locked = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert locked.exit_code == 4
    document = json.loads(locked.stdout)
    assert (document["status"], document["exit_code"]) == ("locked", 4)
    assert document["format"] == "gdpr-sweep run 1" and "another gdpr-sweep" in document["error"]
    # Refused by the max_fraction guard.
    guarded = (
        config(tmp_path, "sqlite:///state.db")
        .read_text()
        .replace("max_fraction = 1.0", "max_fraction = 0.1")
    )
    path.write_text(guarded, encoding="utf-8")
    refused = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert refused.exit_code == 5
    assert json.loads(refused.stdout)["status"] == "refused"
    assert db.scalar("SELECT count(*) FROM mail") == 10
    # Completed.
    done = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json", "--force")
    assert done.exit_code == 0
    assert json.loads(done.stdout)["format"] == "gdpr-sweep run 1"


def test_a_bad_metrics_path_is_refused_before_anything_changes(tmp_path):
    db = target(tmp_path)
    path = config(tmp_path, "sqlite:///state.db")
    before = db.checksum()
    missing = tmp_path / "no" / "such" / "dir" / "m.prom"
    # Locked: the lock is the outcome (exit 4); the metrics file is named too.
    with held_file_lock(tmp_path / "state.db"):
        locked = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--metrics-file", str(missing))
    assert locked.exit_code == 4, locked.stderr
    assert "--metrics-file: cannot write" in locked.stderr
    result = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--metrics-file", str(missing))
    assert result.exit_code == 2
    assert (
        result.stderr == f"error: --metrics-file: no directory {str(tmp_path / 'no/such/dir')!r}\n"
    )
    assert db.checksum() == before


def test_a_metrics_write_that_fails_never_masks_the_outcome(tmp_path):
    db = target(tmp_path)
    path = config(tmp_path, "sqlite:///state.db")
    with small_filesystem(tmp_path / "metrics", size="64k") as fs:
        with contextlib.suppress(OSError), open(fs / "filler", "wb", buffering=0) as filler:
            while True:
                filler.write(b"\0" * 4096)
        metrics = fs / "gdpr.prom"
        # The lock is held: exit 4 stays exit 4, and the metrics failure is said too.
        with held_file_lock(tmp_path / "state.db"):
            locked = run_cli("run", "-c", str(path), "--as-of", AS_OF,
                             "--metrics-file", str(metrics))  # fmt: skip
        assert locked.exit_code == 4, locked.stderr
        assert "--metrics-file: cannot write" in locked.stderr
        assert locked.stderr.strip().endswith("(lock file " + str(tmp_path / "state.db.lock") + ")")
        # Rows changed, then the metrics could not be written: exit 3, saying so.
        changed = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--metrics-file", str(metrics))
        assert changed.exit_code == 3, changed.stderr
        assert "--metrics-file: cannot write" in changed.stderr
        assert "rows were changed" in changed.stderr
        assert db.scalar("SELECT count(*) FROM mail") == 0


def test_fatal_errors_follow_the_log_format(tmp_path):
    target(tmp_path)
    path = config(tmp_path, "sqlite:///state.db")
    with held_file_lock(tmp_path / "state.db"):
        result = run_cli("--log-format", "json", "run", "-c", str(path), "--as-of", AS_OF)
    assert result.exit_code == 4
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(records) == 1, result.stderr
    record = records[0]
    assert (record["level"], record["event"], record["exit_code"]) == ("error", "error", 4)
    assert record["message"].startswith("another gdpr-sweep is running")
