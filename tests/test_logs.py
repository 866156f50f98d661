"""What reaches stderr when SQLAlchemy itself logs an error: one line at most, no traceback.

A connection the server dropped fails again when the pool rolls it back on check-in;
the pool logs that with the driver's exception attached. Without a handler of our own,
Python's last-resort handler printed the whole traceback after the run's one-line
error (seen in CI when a MariaDB connection was killed mid-run), and a driver's
exception text may quote a row's value.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.logs import setup_logging

ROOT = Path(__file__).resolve().parent.parent
VALUE = "Jane Doe 010203-1234"


class _RollbackFails:
    """A DB-API connection whose rollback fails the way a dropped connection does."""

    dropped = False

    def __init__(self) -> None:
        self._connection = sqlite3.connect(":memory:")

    def rollback(self) -> None:
        if not self.dropped:
            return self._connection.rollback()
        raise sqlite3.OperationalError(f"lost connection while writing '{VALUE}'")

    def __getattr__(self, name: str):
        return getattr(self._connection, name)


def _give_back_a_dropped_connection() -> None:
    engine = sa.create_engine("sqlite://", creator=_RollbackFails, poolclass=sa.pool.QueuePool)
    connection = engine.raw_connection()
    connection.dbapi_connection.dropped = True
    connection.close()  # the pool's reset-on-return calls rollback(), which raises
    engine.dispose()


def _stderr_of(log_format: str, level: str) -> str:
    """The scenario in a fresh interpreter: no pytest log handlers, as under the CLI."""
    script = (
        "from gdpr_sweep.logs import setup_logging\n"
        "from tests.test_logs import _give_back_a_dropped_connection\n"
        f"setup_logging({log_format!r}, {level!r})\n"
        "_give_back_a_dropped_connection()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_failed_pool_reset_prints_nothing_at_the_default_level(log_format):
    assert _stderr_of(log_format, "warning") == ""


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_with_debug_it_is_one_line_without_traceback_or_value(log_format):
    err = _stderr_of(log_format, "debug")
    assert "Exception during reset or similar" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert VALUE not in err


def test_sqlalchemy_never_echoes_statements_even_at_debug():
    setup_logging("text", "debug")
    try:
        # INFO is SQLAlchemy's SQL echo, with bound values: it stays off.
        assert not logging.getLogger("sqlalchemy.engine").isEnabledFor(logging.INFO)
    finally:
        setup_logging()
