"""Never two sweeps writing at once: one lock per state database.

- SQLite state: an exclusive `flock` on `<state file>.lock`. The kernel drops it when
  the holding process dies, however it dies, so a stale lock never blocks.
- PostgreSQL state: a session advisory lock, held on a dedicated connection; the
  server drops it when that connection ends.
- MariaDB/MySQL state: `GET_LOCK`, likewise tied to the connection.
A second sweep does not wait: it exits 4 at once — unless it was given `--wait-lock`,
when it tries again (every `POLL` seconds, like `flock -w`) until the lock is free or
the time is up (then exit 4), or it is asked to stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..errors import LockHeld, StateUnavailable, Stopped
from ..faults import failpoint

#: A fixed advisory-lock id: "gdpr" in ASCII.
ADVISORY_LOCK_ID = 0x67647072
MYSQL_LOCK_NAME = "gdpr-sweep"
#: Seconds between two tries while waiting for the lock (`--wait-lock`).
POLL = 0.2


class Stoppable(Protocol):
    def is_set(self) -> bool: ...


def _held(where: str, waited: float | None = None) -> LockHeld:
    after = f" after waiting {waited:g} s" if waited else ""
    return LockHeld(f"another gdpr-sweep is running against this state database ({where}){after}")


def _acquire(
    try_once: Callable[[], bool], where: str, wait: float | None, stop: Stoppable | None
) -> None:
    """Take the lock with `try_once`, waiting up to `wait` seconds; else LockHeld (exit 4)."""
    deadline = time.monotonic() + (wait or 0)
    while not try_once():
        failpoint("waiting-for-lock")
        if stop is not None and stop.is_set():
            signal_name = getattr(stop, "signal", None)
            raise Stopped(
                f"stopped by {signal_name or 'request'} while waiting for the sweep lock; "
                "nothing was changed",
                signal_name,
            )
        if not wait or time.monotonic() >= deadline:
            raise _held(where, wait)
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))


@contextlib.contextmanager
def file_lock(
    path: Path, wait: float | None = None, stop: Stoppable | None = None
) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # a read-only or full file system: nothing was done yet
        raise StateUnavailable(
            f"sweep.state_url: cannot create the lock file {path} ({exc.strerror})"
        ) from None

    def try_once() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    try:
        _acquire(try_once, f"lock file {path}", wait, stop)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def sweep_lock(
    engine: sa.Engine, url: URL, wait: float | None = None, stop: Stoppable | None = None
) -> Iterator[None]:
    """Hold the sweep lock of the state database at `url` for the duration.

    `wait`: seconds to keep trying while another sweep holds it (None: exit 4 at once).
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            yield
            return
        with file_lock(Path(database + ".lock"), wait, stop):
            yield
        return
    with engine.connect() as connection:
        if backend == "postgresql":
            take = sa.text("SELECT pg_try_advisory_lock(:id)")
            release = sa.text("SELECT pg_advisory_unlock(:id)")
            params: dict[str, Any] = {"id": ADVISORY_LOCK_ID}
        else:
            take = sa.text("SELECT GET_LOCK(:name, 0)")
            release = sa.text("SELECT RELEASE_LOCK(:name)")
            params = {"name": MYSQL_LOCK_NAME}

        def try_once() -> bool:
            got = connection.execute(take, params).scalar()
            connection.commit()
            return bool(got)

        _acquire(try_once, "advisory lock", wait, stop)
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.execute(release, params)
                connection.commit()
