"""The exit codes, and one exception family, each class carrying the code SPEC gives it.

The CLI catches `GdprSweepError` in one place and prints `error: <message>` on one
line. Messages name config keys, arguments, databases, tables and columns — never a
value read from a target database.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code the CLI gives, with SPEC's meaning (the one table of them)."""

    OK = 0  # done (a person not found, nothing due: also 0)
    INTERNAL = 1  # a bug: an internal error (rerun with --debug for the traceback)
    USAGE = 2  # bad usage or bad config: one line naming the argument or key; nothing touched
    PARTIAL = 3  # work remains: a database failed or unreachable, stopped by SIGTERM
    LOCKED = 4  # another sweep holds the lock
    REFUSED = 5  # a guard refused: stale plan, max_fraction, altered audit trail, --strict
    INTERRUPTED = 130  # stopped by SIGINT (Ctrl-C), as shells report it

    @property
    def status(self) -> str:
        """The run status an error with this code stands for (metrics, JSON)."""
        return {ExitCode.LOCKED: "locked", ExitCode.REFUSED: "refused"}.get(self, "failed")


class GdprSweepError(Exception):
    """Base of every error the tool reports on purpose."""

    exit_code: int = ExitCode.INTERNAL


class ConfigError(GdprSweepError):
    """The config file is missing, unreadable or invalid (exit 2)."""

    exit_code = ExitCode.USAGE


class UsageError(GdprSweepError):
    """A command-line argument is invalid (exit 2)."""

    exit_code = ExitCode.USAGE


class SchemaError(GdprSweepError):
    """The config does not match a database's reflected schema (exit 2)."""

    exit_code = ExitCode.USAGE


class DatabaseUnavailable(GdprSweepError):
    """A target database could not be reached (exit 3 once the others completed)."""

    exit_code = ExitCode.PARTIAL


class StateUnavailable(GdprSweepError):
    """The state database cannot be opened or written (read-only, full, locked, down).

    Exit 2: nothing was changed in a target database (a batch records its intent in
    the state database before it runs, so a state write that fails stops the batch).
    Raised during a sweep, after batches may have committed, it becomes exit 3.
    """

    exit_code = ExitCode.USAGE


class PartialFailure(GdprSweepError):
    """Some databases or rules failed; the others completed (exit 3)."""

    exit_code = ExitCode.PARTIAL


class Stopped(GdprSweepError):
    """Stopped by a signal before anything changed (exit 3; 130 for SIGINT, as Ctrl-C)."""

    exit_code = ExitCode.PARTIAL

    def __init__(self, message: str, signal_name: str | None = None) -> None:
        super().__init__(message)
        if signal_name == "SIGINT":
            self.exit_code = ExitCode.INTERRUPTED


class LockHeld(GdprSweepError):
    """Another sweep holds the lock on the state database (exit 4)."""

    exit_code = ExitCode.LOCKED


class Refused(GdprSweepError):
    """A guard refused the operation: stale plan, max_fraction, altered audit (exit 5)."""

    exit_code = ExitCode.REFUSED
