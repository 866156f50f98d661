"""The locks below the state lock: one per tenant, one per live process, one for migrating.

- **tenant** (a target database's handle, `[databases.NAME]`): held while a command
  writes that tenant (a run from reaching it until its batches and recount are done;
  `erase`/`replay` for each database they touch; `hold add/release` for the hold's
  database; `rotate-key` for all). Two shards never wait for each other; the same
  tenant is never swept twice at once.
- **process** (host and pid): held by every process that records a run, for as long as
  it may write to it. A run left `running` is marked interrupted only when its
  process's lock is free — that process is gone (killed, its host rebooted) — never
  because another process happens to start (`RunRecords.mark_interrupted`).
- **migration**: concurrent first starts migrate the state database one at a time.

PostgreSQL: session advisory locks, held on a dedicated connection (one per process and
state database, used for nothing else; they stack on it, so a run over 100 tenants
holds one connection, and when it ends, however it ends, the server drops them all),
keyed by a stable 64-bit hash of the kind and name
(`lock_key`; a collision between two handles would only make them take turns).
MariaDB/MySQL: `GET_LOCK` with a name made of the same hash and the state database's
name (named locks are server-wide there). SQLite: an `flock` on a
file in `<state file>.locks/` (`tenant-NAME.lock`, `process-…`, `migration.lock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from ..errors import LockHeld
from .lock import Stoppable, acquire, mysql_lock_name, open_lock_file, sqlite_file, try_flock

#: Seconds a first start waits for another process's migration of the state database.
MIGRATION_WAIT = 120.0


def lock_key(kind: str, name: str) -> int:
    """The advisory-lock key of `kind` ("tenant", "process", "migration") and `name`: a
    signed 64-bit integer from SHA-256, the same on every host and Python."""
    digest = hashlib.sha256(f"gdpr-sweep {kind} lock\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class HeldLock(Protocol):
    def try_once(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


class _NoLock:
    """An in-memory state database: one process only, nothing to exclude."""

    def try_once(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class _FileLock:
    def __init__(self, path: Path, remove: bool = False) -> None:
        self.path, self.remove = path, remove
        self.fd: int | None = open_lock_file(path)

    def try_once(self) -> bool:
        assert self.fd is not None
        return try_flock(self.fd)

    def still_held(self) -> bool:
        return self.fd is not None  # an flock lasts while this process keeps the file open

    def release(self) -> None:
        if self.fd is None:
            return
        if self.remove:  # a process's lock file: not left behind (a tenant's stays)
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


class _LockSession:
    """One connection that holds every advisory lock of one `LockSpace` (its tenants',
    a migration's): session locks stack on one session, so a run over 100 tenants
    holds one connection, not 100. Threads (`--jobs`) use it one at a time."""

    def __init__(self, url: URL) -> None:
        self.engine = sa.create_engine(
            url, poolclass=NullPool, hide_parameters=True, connect_args={"connect_timeout": 10}
        )
        self.mutex = threading.Lock()
        self.connection: sa.Connection | None = None
        self.held = 0
        self.backend: object = None  # the server session the locks are held on

    def execute(self, statement: sa.TextClause, params: dict[str, object]) -> bool:
        with self.mutex:
            if self.connection is None:
                self.connection = self.engine.connect()
                self.backend = self._backend()
            got = self.connection.execute(statement, params).scalar()
            self.connection.commit()
            return bool(got)

    def _backend(self) -> object:
        assert self.connection is not None
        ask = (
            "SELECT pg_backend_pid()"
            if self.engine.dialect.name == "postgresql"
            else ("SELECT CONNECTION_ID()")
        )
        backend = self.connection.execute(sa.text(ask)).scalar()
        self.connection.commit()
        return backend

    def alive(self) -> bool:
        """Whether the session that took the locks is still the one connected: when the
        connection dropped, the server freed its locks (SQLAlchemy would quietly
        reconnect, to a session that holds none)."""
        with self.mutex:
            if self.connection is None:
                return False
            try:
                return self._backend() == self.backend
            except sa.exc.SQLAlchemyError:  # a dropped connection, or one left invalid
                return False

    def close(self) -> None:
        with self.mutex:
            if self.connection is not None:
                with contextlib.suppress(sa.exc.DBAPIError):
                    self.connection.close()  # the session ends: the server drops its locks
                self.connection = None
        self.engine.dispose()


class _ServerLock:
    def __init__(self, session: _LockSession, kind: str, name: str) -> None:
        self.session = session
        if session.engine.dialect.name == "postgresql":
            self.take = sa.text("SELECT pg_try_advisory_lock(:key)")
            self.free = sa.text("SELECT pg_advisory_unlock(:key)")
            self.params: dict[str, object] = {"key": lock_key(kind, name)}
        else:
            self.take = sa.text("SELECT GET_LOCK(:key, 0)")
            self.free = sa.text("SELECT RELEASE_LOCK(:key)")
            database = session.engine.url.database
            self.params = {"key": mysql_lock_name(kind, name, database)}
        self.held = False

    def try_once(self) -> bool:
        self.held = self.session.execute(self.take, self.params)
        return self.held

    def still_held(self) -> bool:
        return self.held and self.session.alive()

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            freed = self.session.execute(self.free, self.params)
        except sa.exc.SQLAlchemyError:  # a dropped connection, or one left invalid
            freed = False
        if not freed:
            # Not surely unlocked (the connection failed): end the session, which
            # drops every lock it held, rather than keep one that may still hold it.
            self.session.close()


def _tenant_held(name: str) -> object:
    def held(where: str, waited: float | None) -> LockHeld:
        after = f" after waiting {waited:g} s" if waited else ""
        return LockHeld(f"database {name}: locked by another gdpr-sweep ({where}){after}")

    return held


class LockSpace:
    """The tenant, process and migration locks of one state database (see above)."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.file = sqlite_file(url)
        self.memory = url.get_backend_name() == "sqlite" and self.file is None
        self._session: _LockSession | None = None
        self._mutex = threading.Lock()
        #: Seconds spent waiting for (or taking) tenant locks: the bench reports it.
        self.waited = 0.0

    def session(self) -> _LockSession:
        with self._mutex:
            if self._session is None:
                self._session = _LockSession(self.url)
            return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def _lock(self, kind: str, name: str) -> HeldLock:
        if self.memory:
            return _NoLock()
        if self.file is not None:
            directory = Path(self.file + ".locks")
            if kind == "tenant":
                return _FileLock(directory / f"tenant-{name}.lock")
            if kind == "process":
                label = hashlib.sha256(name.encode()).hexdigest()[:16]
                return _FileLock(directory / f"process-{label}.lock", remove=True)
            return _FileLock(directory / f"{kind}.lock")
        return _ServerLock(self.session(), kind, name)

    def take(
        self,
        kind: str,
        name: str,
        wait: float | None = None,
        stop: Stoppable | None = None,
    ) -> HeldLock:
        """Take the lock of `kind` and `name`, waiting up to `wait` seconds; else
        LockHeld (exit 4) naming the tenant, or Stopped when asked to stop."""
        started = time.monotonic()
        lock = self._lock(kind, name)
        try:
            where = "tenant lock" if kind == "tenant" else f"{kind} lock"
            held = _tenant_held(name) if kind == "tenant" else _other_held
            acquire(lock.try_once, where, wait, stop, held)  # type: ignore[arg-type]
        except BaseException:
            lock.release()
            raise
        finally:
            if kind == "tenant":
                with self._mutex:
                    self.waited += time.monotonic() - started
        return lock

    def try_take(self, kind: str, name: str) -> HeldLock | None:
        """The lock if it is free now, else None (never waits)."""
        try:
            return self.take(kind, name)
        except LockHeld:
            return None

    @contextlib.contextmanager
    def migration(self) -> Iterator[None]:
        """Concurrent first starts: one migrates, the others wait and find it done."""
        lock = self.take("migration", "state", wait=MIGRATION_WAIT)
        try:
            yield
        finally:
            lock.release()


def _other_held(where: str, waited: float | None) -> LockHeld:
    after = f" after waiting {waited:g} s" if waited else ""
    return LockHeld(f"another gdpr-sweep holds the {where} of this state database{after}")


def this_process() -> tuple[str, int]:
    """(host, pid) as the runs table records them."""
    return socket.gethostname()[:255], os.getpid()


def process_name(host: str, pid: int) -> str:
    return f"{host}\0{pid}"


class ProcessLocks:
    """This process's own lock per state database, shared by every store of the process
    (refcounted): held while any of them may write a run."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: dict[str, tuple[LockSpace | None, HeldLock | None, int]] = {}

    def hold(self, url: URL) -> str:
        key = url.render_as_string(hide_password=False)
        with self._mutex:
            space, lock, count = self._held.get(key, (None, None, 0))
            if count == 0:
                # Its own lock space (connection): it outlives the store that took it
                # while another store of this process still runs.
                space = LockSpace(url)
                lock = space.try_take("process", process_name(*this_process()))
            self._held[key] = (space, lock, count + 1)
        return key

    def release(self, key: str) -> None:
        with self._mutex:
            space, lock, count = self._held.get(key, (None, None, 0))
            if count <= 1:
                self._held.pop(key, None)
                if lock is not None:
                    lock.release()
                if space is not None:
                    space.close()
            else:
                self._held[key] = (space, lock, count - 1)


PROCESS_LOCKS = ProcessLocks()
