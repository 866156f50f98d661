"""Never two sweeps writing at once: one lock per state database.

- SQLite state: an exclusive `flock` on `<state file>.lock`. The kernel drops it when
  the holding process dies, however it dies, so a stale lock never blocks.
- PostgreSQL state: a session advisory lock, held on a dedicated connection; the
  server drops it when that connection ends.
- MariaDB/MySQL state: `GET_LOCK`, likewise tied to the connection.
A second sweep does not wait: it exits 4 at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..errors import LockHeld

#: A fixed advisory-lock id: "gdpr" in ASCII.
ADVISORY_LOCK_ID = 0x67647072
MYSQL_LOCK_NAME = "gdpr-sweep"


def _held(where: str) -> LockHeld:
    return LockHeld(f"another gdpr-sweep is running against this state database ({where})")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _held(f"lock file {path}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def sweep_lock(engine: sa.Engine, url: URL) -> Iterator[None]:
    """Hold the sweep lock of the state database at `url` for the duration."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            yield
            return
        with file_lock(Path(database + ".lock")):
            yield
        return
    with engine.connect() as connection:
        if backend == "postgresql":
            got = connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID}
            ).scalar()
            release = sa.text("SELECT pg_advisory_unlock(:id)")
            params: dict = {"id": ADVISORY_LOCK_ID}
        else:
            got = connection.execute(
                sa.text("SELECT GET_LOCK(:name, 0)"), {"name": MYSQL_LOCK_NAME}
            ).scalar()
            release = sa.text("SELECT RELEASE_LOCK(:name)")
            params = {"name": MYSQL_LOCK_NAME}
        connection.commit()
        if not got:
            raise _held("advisory lock")
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.execute(release, params)
                connection.commit()
