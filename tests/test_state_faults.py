"""State-database faults are clear refusals: read-only, full, locked or unreachable.

One line naming the state database, exit 2 before anything changed (3 once batches may
have committed), never exit 1 "internal error", and no target row changed when the run
could not record what it would do. Tests run as root, which ignores file modes, so the
read-only and full state files live on a small tmpfs of their own (mounted here; the
test skips where mounting is not allowed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.configs import rule_toml
from tests.conftest import TargetDb, postgresql_state_url, run_cli

AS_OF = "2026-06-01"
RULE = rule_toml("purge", "mail", "delete", after="6 months", since="sent_at")


def target(tmp_path: Path) -> TargetDb:
    db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    metadata = sa.MetaData()
    sa.Table(
        "mail",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sent_at", sa.DateTime),
    )
    db.create(
        metadata,
        {"mail": [{"id": i, "sent_at": dt.datetime(2025, 1, i)} for i in range(1, 11)]},
    )
    return db


def config(tmp_path: Path, state_url: str | None, extra: str = "") -> Path:
    """Write the config; `state_url` None: the state database's URL is $STATE_URL."""
    path = tmp_path / "gdpr-sweep.toml"
    state = f'state_url = "{state_url}"' if state_url else 'state_url_env = "STATE_URL"'
    path.write_text(
        f"[sweep]\n{state}\nbatch_size = 3\nmax_fraction = 1.0\n{extra}\n"
        f'[databases.main]\nurl = "sqlite:///{tmp_path / "target.db"}"\n{RULE}',
        encoding="utf-8",
    )
    return path


@contextlib.contextmanager
def small_filesystem(where: Path, size: str = "1m") -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def postgresql_state(tmp_path: Path, monkeypatch, extra: str = "") -> tuple[Path, str]:
    """A config whose state database is a clean PostgreSQL test database: (path, URL)."""
    url = postgresql_state_url(monkeypatch)
    return config(tmp_path, None, extra), url


def assert_one_line_refusal(result, code: int = 2) -> None:
    assert result.exit_code == code, result.stderr + result.stdout
    assert result.stderr.startswith("error: sweep.state_url: cannot "), result.stderr
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr


def test_a_read_only_state_file(tmp_path):
    db = target(tmp_path)
    with small_filesystem(tmp_path / "state") as state:
        cfg = config(tmp_path, f"sqlite:///{state / 'state.db'}")
        assert run_cli("migrate", "-c", str(cfg)).exit_code == 0
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        before = db.checksum()
        result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF)
        assert_one_line_refusal(result)
        assert db.checksum() == before


def test_a_full_state_disk(tmp_path):
    db = target(tmp_path)
    with small_filesystem(tmp_path / "state", size="400k") as state:
        cfg = config(tmp_path, f"sqlite:///{state / 'state.db'}")
        assert run_cli("migrate", "-c", str(cfg)).exit_code == 0
        # Fill the file system to the last byte.
        with contextlib.suppress(OSError), open(state / "filler", "wb", buffering=0) as filler:
            while True:
                filler.write(b"\0" * 4096)
        before = db.checksum()
        result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF)
        assert result.exit_code in (2, 3), result.stderr
        assert result.stderr.startswith("error: sweep.state_url: cannot "), result.stderr
        assert "internal error" not in result.stderr
        if result.exit_code == 2:  # refused before the first batch: nothing changed
            assert db.checksum() == before
        else:  # batches committed before the disk filled: the message says so
            assert "batches committed before it stay committed" in result.stderr
        (state / "filler").unlink()
        # With room again, the next run finishes the work and the trail verifies.
        assert run_cli("run", "-c", str(cfg), "--as-of", AS_OF).exit_code == 0
        assert run_cli("audit", "verify", "-c", str(cfg)).exit_code == 0
        assert db.scalar("SELECT count(*) FROM mail") == 0


def test_an_unreachable_postgresql_state_database(tmp_path):
    db = target(tmp_path)
    cfg = config(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/state")
    before = db.checksum()
    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF)
    assert_one_line_refusal(result)
    assert "cannot open the state database (OperationalError" in result.stderr
    assert db.checksum() == before


def test_a_locked_postgresql_state_database(tmp_path, monkeypatch):
    db = target(tmp_path)
    path, url = postgresql_state(tmp_path, monkeypatch, 'lock_timeout = "1s"')
    engine = sa.create_engine(url)
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    before = db.checksum()
    holder = engine.connect()
    try:
        holder.exec_driver_sql("BEGIN")
        holder.exec_driver_sql("LOCK TABLE audit_entries IN ACCESS EXCLUSIVE MODE")
        result = run_cli("run", "-c", str(path), "--as-of", AS_OF)
    finally:
        holder.rollback()
        holder.close()
    assert_one_line_refusal(result)
    assert db.checksum() == before
    assert run_cli("run", "-c", str(path), "--as-of", AS_OF).exit_code == 0
    assert run_cli("audit", "verify", "-c", str(path)).exit_code == 0
    engine.dispose()
