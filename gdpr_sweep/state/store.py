"""Runs and the hash-chained audit trail in the state database.

Each audit entry carries the hash of the one before it, and its own hash is a keyed
HMAC over its id, its fields and that previous hash. Editing, deleting or reordering
an entry breaks the chain from that entry on, and without the key nobody can forge a
consistent replacement. Each finished run records the chain's head in its summary, so
cutting entries off the end is detected too.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .. import __version__
from ..config import Config, state_url
from ..errors import StateUnavailable
from ..keys import keyed_hex
from . import migrate
from .models import audit_entries, erased_rows, runs

GENESIS = "0" * 64
_HASHED_FIELDS = (
    "id",
    "run_id",
    "recorded_at",
    "kind",
    "database_name",
    "rule_id",
    "table_name",
    "action",
    "rows",
    "key_from",
    "key_to",
    "details",
    "prev_hash",
)


# Built once: an append per batch should not rebuild (and re-key) its statements.
_CHAIN_HEAD = (
    sa.select(audit_entries.c.id, audit_entries.c.entry_hash)
    .order_by(audit_entries.c.id.desc())
    .limit(1)
)
_INSERT_ENTRY = audit_entries.insert()


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(key: bytes, entry: dict[str, Any]) -> str:
    """Return the keyed hash of an audit entry (all fields but its own hash)."""
    canonical = json.dumps(
        [entry.get(name) for name in _HASHED_FIELDS], separators=(",", ":"), default=str
    )
    return keyed_hex(key, "audit-entry", canonical)


@dataclass(frozen=True)
class BrokenEntry:
    """The first audit entry that does not verify, and why."""

    entry_id: int | None
    reason: str


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


class StateStore:
    """The state database of one config: migrated on open."""

    def __init__(self, config: Config, key: bytes | None) -> None:
        self.config = config
        self.key = key
        self.url = state_url(config)
        self.engine = create_state_engine(self.url, config.sweep.lock_timeout)
        # Threads of one process (run --jobs) append one at a time.
        self._write_lock = threading.Lock()
        try:
            migrate.upgrade(self.engine)
        except (sa.exc.DBAPIError, OSError) as exc:
            self.engine.dispose()
            raise state_failure(exc, "open") from None

    def close(self) -> None:
        self.engine.dispose()

    # --- runs ---------------------------------------------------------------------

    def start_run(
        self,
        command: str,
        as_of: dt.datetime,
        plan_digest: str | None = None,
        subject_hash: str | None = None,
    ) -> int:
        """Record a new run as `running`, with a `run-start` audit entry; return its id."""
        with self.engine.begin() as connection:
            run_id = connection.execute(
                runs.insert().values(
                    command=command,
                    as_of=as_of.isoformat(),
                    config_digest=self.config.digest,
                    plan_digest=plan_digest,
                    user_name=_user(),
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    tool_version=__version__,
                    started_at=utc_now(),
                    status="running",
                    subject_hash=subject_hash,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self._append(
                connection,
                run_id,
                "run-start",
                details={
                    "command": command,
                    "as_of": as_of.isoformat(),
                    "config_digest": self.config.digest,
                    "plan_digest": plan_digest,
                    "subject": subject_hash,
                },
            )
        return int(run_id)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            head = self._append(connection, run_id, "run-end", details={"status": status})
            summary = {**summary, "audit_head": head}
            connection.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    status=status, finished_at=utc_now(), summary=json.dumps(summary, default=str)
                )
            )

    def mark_interrupted(self) -> list[int]:
        """Mark runs left `running` by a killed process as `interrupted` (lock held)."""
        with self.engine.begin() as connection:
            stale = [
                row.id
                for row in connection.execute(
                    sa.select(runs.c.id).where(runs.c.status == "running").order_by(runs.c.id)
                )
            ]
            for run_id in stale:
                pending = self._unconfirmed_batches(connection, run_id)
                for entry in pending:
                    self._append(
                        connection,
                        run_id,
                        "batch-unconfirmed",
                        database=entry.database_name,
                        rule=entry.rule_id,
                        table=entry.table_name,
                        action=entry.action,
                        key_from=entry.key_from,
                        key_to=entry.key_to,
                        details={
                            "note": "the process died during this batch; its "
                            "transaction either committed or rolled back as a whole, "
                            "and rows still due are processed by the next run"
                        },
                    )
                self._append(connection, run_id, "run-interrupted")
                connection.execute(
                    runs.update()
                    .where(runs.c.id == run_id)
                    .values(status="interrupted", finished_at=utc_now())
                )
        return stale

    def _unconfirmed_batches(self, connection: sa.Connection, run_id: int) -> list[Any]:
        entries = connection.execute(
            sa.select(audit_entries)
            .where(
                audit_entries.c.run_id == run_id,
                audit_entries.c.kind.in_(("batch-start", "batch")),
            )
            .order_by(audit_entries.c.id)
        ).all()
        open_batches: dict[tuple, Any] = {}
        for entry in entries:
            ident = (entry.database_name, entry.rule_id, entry.key_from, entry.key_to)
            if entry.kind == "batch-start":
                open_batches[ident] = entry
            else:
                open_batches.pop(ident, None)
        return list(open_batches.values())

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

    def last_success(self) -> float | None:
        """Unix time at which the last sweep (run or apply) completed without failures."""
        with self.engine.connect() as connection:
            finished = connection.execute(
                sa.select(sa.func.max(runs.c.finished_at)).where(
                    runs.c.command.in_(("run", "apply")), runs.c.status == "completed"
                )
            ).scalar()
        return dt.datetime.fromisoformat(finished).timestamp() if finished else None

    def record_erased(self, run_id: int, database: str, rows: list[dict[str, Any]]) -> None:
        """Record the keys of rows an erasure is about to delete or anonymise."""
        if not rows:
            return
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                erased_rows.insert(),
                [{"run_id": run_id, "database_name": database, **row} for row in rows],
            )

    def erased_since(self, since: str) -> list[dict[str, Any]]:
        """Rows recorded by erasures that started at or after `since` (ISO), oldest first."""
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.select(erased_rows, runs.c.started_at)
                .join(runs, runs.c.id == erased_rows.c.run_id)
                .where(runs.c.command == "erase", runs.c.started_at >= since)
                .order_by(erased_rows.c.id)
            ).mappings()
            return [dict(row) for row in result]

    def runs_for_subject(self, subject_hash: str) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs).where(runs.c.subject_hash == subject_hash).order_by(runs.c.id)
            ).mappings()
            return [dict(row) for row in rows]

    def run(self, run_id: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            entries = connection.execute(
                sa.select(audit_entries)
                .where(audit_entries.c.run_id == run_id)
                .order_by(audit_entries.c.id)
            ).mappings()
            return (dict(row) if row else None), [dict(e) for e in entries]

    # --- the audit trail -------------------------------------------------------------

    def append_many(self, run_id: int, entries: list[tuple[str, dict[str, Any]]]) -> str:
        """Append several entries in one transaction (one commit); return the last hash."""
        for attempt in range(50):
            try:
                with self._write_lock, self.engine.begin() as connection:
                    head = ""
                    for kind, fields in entries:
                        head = self._append(connection, run_id, kind, **fields)
                    return head
            except (sa.exc.IntegrityError, sa.exc.OperationalError):
                if attempt == 49:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def append(self, run_id: int, kind: str, **fields: Any) -> str:
        """Append one entry in its own transaction; return its hash.

        Another process (a `hold add` beside a running sweep) may append at the same
        moment; both read the same head, one insert fails on the entry id, and it is
        retried on the new head — so the chain stays one line.
        """
        return self.append_many(run_id, [(kind, fields)])

    def _append(
        self,
        connection: sa.Connection,
        run_id: int,
        kind: str,
        *,
        database: str | None = None,
        rule: str | None = None,
        table: str | None = None,
        action: str | None = None,
        rows: int | None = None,
        key_from: str | None = None,
        key_to: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> str:
        last = connection.execute(_CHAIN_HEAD).first()
        entry: dict[str, Any] = {
            "id": (last.id + 1) if last else 1,
            "run_id": run_id,
            "recorded_at": utc_now(),
            "kind": kind,
            "database_name": database,
            "rule_id": rule,
            "table_name": table,
            "action": action,
            "rows": rows,
            "key_from": key_from,
            "key_to": key_to,
            "details": json.dumps(details, sort_keys=True, default=str) if details else None,
            "prev_hash": last.entry_hash if last else GENESIS,
        }
        assert self.key is not None, "writing the audit trail needs the key"
        entry["entry_hash"] = entry_hash(self.key, entry)
        connection.execute(_INSERT_ENTRY, entry)
        return str(entry["entry_hash"])

    def entries(self) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=1000).execute(
                sa.select(audit_entries).order_by(audit_entries.c.id)
            )
            for row in result.mappings():
                yield dict(row)

    def verify(self) -> tuple[int, BrokenEntry | None]:
        """Walk the chain; return (entries checked, the first broken entry or None)."""
        assert self.key is not None, "verifying the audit trail needs the key"
        previous = GENESIS
        expected_id = 1
        heads: set[str] = set()
        checked = 0
        for entry in self.entries():
            if entry["id"] != expected_id:
                return checked, BrokenEntry(
                    entry["id"], f"entry {expected_id} is missing (found {entry['id']} next)"
                )
            if entry["prev_hash"] != previous:
                return checked, BrokenEntry(
                    entry["id"], "does not follow the entry before it (deleted or reordered)"
                )
            if entry_hash(self.key, entry) != entry["entry_hash"]:
                return checked, BrokenEntry(entry["id"], "its content was altered")
            previous = entry["entry_hash"]
            heads.add(previous)
            expected_id += 1
            checked += 1
        with self.engine.connect() as connection:
            for row in connection.execute(
                sa.select(runs.c.id, runs.c.summary).where(runs.c.summary.is_not(None))
            ):
                head = json.loads(row.summary).get("audit_head")
                if head and head not in heads:
                    return checked, BrokenEntry(
                        None, f"entries of run {row.id} were removed from the end of the trail"
                    )
        return checked, None


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


def _state_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (sa.exc.DBAPIError, OSError) as exc:
            raise state_failure(exc, "read" if method.__name__ in _READERS else "write") from None

    return wrapper


_READERS = {"runs", "last_success", "erased_since", "runs_for_subject", "run", "verify"}
# Every way into the state database turns a driver's failure into one line, exit 2.
for _name in (
    "start_run",
    "finish_run",
    "mark_interrupted",
    "record_erased",
    "append_many",
    "append",
    *_READERS,
):
    setattr(StateStore, _name, _state_errors(getattr(StateStore, _name)))


def _user() -> str:
    try:
        return getpass.getuser()[:120]
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())
