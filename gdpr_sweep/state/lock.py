"""Never two sweeps writing the same tenant at once: the state database's locks.

Two levels, both tied to something the kernel or the server drops when the holder
dies (however it dies), so a stale lock never blocks:

- the *state lock*, one per state database: every sweeping command (`run`, `apply`,
  `erase`, `replay`, `hold add/release`) takes it **shared**; `audit rotate-key` (and an
  operator's maintenance) takes it **exclusive**, so it excludes them all;
- a *tenant lock* per target database's handle (`tenant_lock.py`): a run takes those of
  its tenants as it reaches them, so different tenants run in parallel from different
  processes (shards) while the same tenant never runs twice.

Backends: SQLite state, an `flock` on `<state file>.lock` (tenant, process and
migration locks in `<state file>.locks/`); PostgreSQL state, session advisory locks on
dedicated connections (the server drops them when the connection ends);
MariaDB/MySQL state, `GET_LOCK` with names that include the state database (no shared
mode: there a sweep takes no state lock, and `rotate-key` takes every tenant's lock as
well).
A lock held by another does not wait: LockHeld (exit 4) at once — unless `wait` was
given (`--wait-lock`), when it tries again every `POLL` seconds (like `flock -w`) until
the lock is free or the time is up, or it is asked to stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..errors import LockHeld, StateUnavailable, Stopped
from ..faults import failpoint

#: A fixed advisory-lock id for the state lock: "gdpr" in ASCII.
ADVISORY_LOCK_ID = 0x67647072
#: Seconds between two tries while waiting for a lock (`--wait-lock`).
POLL = 0.2


def mysql_lock_name(kind: str, name: str, database: str | None) -> str:
    """The `GET_LOCK` name of `kind` and `name` for the state database `database`.

    MariaDB/MySQL's named locks are the server's, not a database's (PostgreSQL's
    advisory locks are per database), so the state database is part of the name: two
    deployments whose state databases share a server never lock each other out.
    """
    text = f"gdpr-sweep {kind} lock\0{database or ''}\0{name}"
    return f"gdpr-sweep:{kind}:{hashlib.sha256(text.encode()).hexdigest()[:40]}"


class Stoppable(Protocol):
    def is_set(self) -> bool: ...


def _held(where: str, waited: float | None = None) -> LockHeld:
    after = f" after waiting {waited:g} s" if waited else ""
    return LockHeld(f"another gdpr-sweep is running against this state database ({where}){after}")


def acquire(
    try_once: Callable[[], bool],
    where: str,
    wait: float | None,
    stop: Stoppable | None,
    held: Callable[[str, float | None], LockHeld] = _held,
) -> None:
    """Take a lock with `try_once`, waiting up to `wait` seconds; else LockHeld (exit 4)."""
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
            raise held(where, wait)
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))


def open_lock_file(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # a read-only or full file system: nothing was done yet
        raise StateUnavailable(
            f"sweep.state_url: cannot create the lock file {path} ({exc.strerror})"
        ) from None


def try_flock(fd: int, shared: bool = False) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def file_lock(
    path: Path,
    wait: float | None = None,
    stop: Stoppable | None = None,
    shared: bool = False,
    held: Callable[[str, float | None], LockHeld] = _held,
) -> Iterator[None]:
    fd = open_lock_file(path)
    try:
        acquire(lambda: try_flock(fd, shared), f"lock file {path}", wait, stop, held)
        if not shared:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def sqlite_file(url: URL) -> str | None:
    """The SQLite state database's file, or None (not SQLite, or in memory)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    return None if database in ("", ":memory:") else database


@contextlib.contextmanager
def sweep_lock(
    engine: sa.Engine,
    url: URL,
    wait: float | None = None,
    stop: Stoppable | None = None,
    shared: bool = False,
) -> Iterator[None]:
    """Hold the state lock of the state database at `url` for the duration.

    `shared`: as every sweeping command does (they exclude each other per tenant, see
    `tenant_lock.py`); exclusive, as `audit rotate-key` does. `wait`: seconds to keep
    trying while another holds it (None: exit 4 at once).
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = sqlite_file(url)
        if database is None:
            yield
            return
        with file_lock(Path(database + ".lock"), wait, stop, shared=shared):
            yield
        return
    if backend != "postgresql" and shared:
        yield  # MySQL has no shared named lock: the tenant locks alone exclude sweeps
        return
    with engine.connect() as connection:
        if backend == "postgresql":
            mode = "_shared" if shared else ""
            take = sa.text(f"SELECT pg_try_advisory_lock{mode}(:id)")
            release = sa.text(f"SELECT pg_advisory_unlock{mode}(:id)")
            params: dict[str, Any] = {"id": ADVISORY_LOCK_ID}
        else:
            take = sa.text("SELECT GET_LOCK(:name, 0)")
            release = sa.text("SELECT RELEASE_LOCK(:name)")
            params = {"name": mysql_lock_name("state", "", url.database)}

        def try_once() -> bool:
            got = connection.execute(take, params).scalar()
            connection.commit()
            return bool(got)

        acquire(try_once, "advisory lock", wait, stop)
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.execute(release, params)
                connection.commit()
