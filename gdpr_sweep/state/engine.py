"""The connection to the state database: its engine, and its failures as one line.

SQLite gets real transactions (DDL included, writers serialised from BEGIN) and WAL;
PostgreSQL a lock timeout. A driver's failure on any way into the state database
becomes `StateUnavailable` (exit 2) naming the state database and the driver's reason,
never a value (`state_failure`, `state_errors`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..errors import StateUnavailable

#: Seconds a state-database write waits for a lock another process holds, unless
#: `sweep.lock_timeout` says otherwise; then it fails with one line (exit 2 or 3).
STATE_LOCK_TIMEOUT = 30.0


def create_state_engine(url: URL, lock_timeout: float | None = None) -> sa.Engine:
    wait = lock_timeout or STATE_LOCK_TIMEOUT
    if url.get_backend_name() == "sqlite":
        if url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # Wait for another process's write instead of failing at once.
        engine = sa.create_engine(url, connect_args={"timeout": wait}, hide_parameters=True)
        _transactional_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if url.get_backend_name() == "postgresql":
        # A state table locked by someone else fails the write instead of hanging.
        connect_args["options"] = f"-c lock_timeout={int(wait * 1000)}"
    return sa.create_engine(url, hide_parameters=True, connect_args=connect_args)


def _transactional_sqlite(engine: sa.Engine) -> None:
    """Make SQLite transactions real: DDL included, and writers serialised from BEGIN.

    Python's sqlite3 driver commits DDL on its own and begins transactions lazily, so a
    migration killed half-way could leave tables without their Alembic stamp, and two
    processes could read the same audit head. `BEGIN IMMEDIATE` takes the write lock
    at the start: a migration is all or nothing, and appends are serialised.
    """

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        # Write-ahead logging: an append commits without rewriting the journal, several
        # times faster, and readers (audit list) never block the writer.
        dbapi_connection.execute("PRAGMA journal_mode = WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def state_failure(exc: BaseException, doing: str = "write") -> StateUnavailable:
    """One line naming the state database and the driver's reason (no values: the state
    database holds counts, keys and hashes only, and parameters are hidden)."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, OSError) and orig.strerror:
        reason = orig.strerror
    else:
        lines = str(orig).strip().splitlines()
        reason = lines[0][:160] if lines else ""
    name = type(orig).__name__
    return StateUnavailable(
        f"sweep.state_url: cannot {doing} the state database ({name}: {reason})"
        if reason
        else f"sweep.state_url: cannot {doing} the state database ({name})"
    )


def state_errors(method: Callable[..., Any], readers: Collection[str]) -> Callable[..., Any]:
    """`method`, its driver failures raised as `state_failure` ("read" for `readers`)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (sa.exc.DBAPIError, OSError) as exc:
            raise state_failure(exc, "read" if method.__name__ in readers else "write") from None

    return wrapper
