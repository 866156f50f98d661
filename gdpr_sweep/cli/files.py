"""Files the commands write (plans, receipts, metrics): owner-only, atomic, checked first.

A file the command cannot write is refused before anything changes (exit 2); a write
that fails after rows changed says so (`rows_changed`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError
from ..faults import failpoint


def write_private(path: Path, text: str, point: str) -> None:
    """Write a file only its owner can read, atomically (a reader never sees half of it).

    Raises OSError: what a failure means (exit 2, or 3 after rows changed) is the
    command's to say. `point` is the failpoint just before the write (faults.py).
    """
    path = path.expanduser()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        failpoint(point)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def cannot_write(option: str, path: Path, exc: OSError) -> str:
    return f"{option}: cannot write {str(path)!r} ({exc.strerror or type(exc).__name__})"


class Unwritable(UsageError):
    """A file the command was asked to write cannot be written (found before any change)."""


def check_writable(option: str, path: Path) -> None:
    """Refuse (exit 2, before anything changes) a file we could not write afterwards."""
    path = path.expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise Unwritable(f"{option}: {str(path)!r} is a directory")
    if not parent.is_dir():
        raise Unwritable(f"{option}: no directory {str(parent)!r}")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise Unwritable(f"{option}: cannot write {str(path)!r} (permission denied)")


def preflight(option: str, path: Path | None) -> Callable[[], None] | None:
    """The check a command's core makes, under the lock, before it changes anything."""
    if path is None:
        return None
    return lambda: check_writable(option, path)


def rows_changed(rows: int, run_id: int | None) -> str:
    """Where a late write failure leaves things: rows changed, and the run recording them."""
    return (
        f"rows were changed: {rows:,} row(s), recorded as run {run_id} in the audit trail "
        f"(gdpr-sweep audit show {run_id})"
    )
