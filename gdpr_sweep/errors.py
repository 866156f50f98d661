"""One exception family, each class carrying the exit code SPEC gives it.

The CLI catches `GdprSweepError` in one place and prints `error: <message>` on one
line. Messages name config keys, arguments, databases, tables and columns — never a
value read from a target database.
"""

from __future__ import annotations


class GdprSweepError(Exception):
    """Base of every error the tool reports on purpose."""

    exit_code = 1


class ConfigError(GdprSweepError):
    """The config file is missing, unreadable or invalid (exit 2)."""

    exit_code = 2


class UsageError(GdprSweepError):
    """A command-line argument is invalid (exit 2)."""

    exit_code = 2


class SchemaError(GdprSweepError):
    """The config does not match a database's reflected schema (exit 2)."""

    exit_code = 2


class DatabaseUnavailable(GdprSweepError):
    """A target database could not be reached (exit 3 once the others completed)."""

    exit_code = 3


class StateUnavailable(GdprSweepError):
    """The state database cannot be opened or written (read-only, full, locked, down).

    Exit 2: nothing was changed in a target database (a batch records its intent in
    the state database before it runs, so a state write that fails stops the batch).
    Raised during a sweep, after batches may have committed, it becomes exit 3.
    """

    exit_code = 2


class PartialFailure(GdprSweepError):
    """Some databases or rules failed; the others completed (exit 3)."""

    exit_code = 3


class Stopped(GdprSweepError):
    """Stopped by a signal before anything changed (exit 3; 130 for SIGINT, as Ctrl-C)."""

    exit_code = 3

    def __init__(self, message: str, signal_name: str | None = None) -> None:
        super().__init__(message)
        if signal_name == "SIGINT":
            self.exit_code = 130


class LockHeld(GdprSweepError):
    """Another sweep holds the lock on the state database (exit 4)."""

    exit_code = 4


class Refused(GdprSweepError):
    """A guard refused the operation: stale plan, max_fraction, altered audit (exit 5)."""

    exit_code = 5
