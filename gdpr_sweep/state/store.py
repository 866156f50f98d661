"""Runs and the hash-chained audit trail in the state database.

Each audit entry carries the hash of the one before it, and its own hash is a keyed
HMAC over its id, its fields and that previous hash. Editing, deleting or reordering
an entry breaks the chain from that entry on, and without the key nobody can forge a
consistent replacement. Each finished run records the chain's head in its summary, so
cutting entries off the end is detected too.

Rows of the runs table are sealed into the chain as well: whenever a run's row is
written (started, finished, marked interrupted), the entry written with it carries a
keyed digest of the whole row (`run_row`), so editing a run's status, subject hash,
as-of or counts afterwards is detected by `verify`, as is a run row with no entries.

The chain's `head` (`N:digest`, a keyed digest of the N-th entry's hash and N) can be
kept elsewhere (a log line per run, a ticket); `verify --head` then proves that the
chain still holds that entry: deleting the newest runs with their entries, which
leaves a consistent but shorter chain, is caught against an older head kept outside.

The key check value (`state_meta.key_check`, a keyed digest of a fixed label) lets a
command given another key refuse before it writes anything: otherwise it would append
entries that no one could ever verify with the right key.

Rotating the key (`gdpr-sweep audit rotate-key`, `rotation.py`) appends a `key-rotated`
entry, hashed with the new key, whose details name the key check values of the old
and the new key (never a key). The rotations cut the chain into segments: the entries
before the first rotation are verified with the key whose check is its
`previous_key_check`, the rotation entry and those after it with its `key_check` key,
and so on; the run rows and heads sealed in a segment with that segment's key. The
old keys come from `GDPR_SWEEP_OLD_KEYS` (`keys.keyring`); a segment whose key is not
there is reported as not checked (a missing key is config, not tampering), while an
edited, removed or forged rotation is tampering: the entries around it then do not
verify with the keys the rotations name.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .. import __version__
from ..config import Config, state_url
from ..errors import ConfigError, StateUnavailable
from ..keys import OLD_KEYS_ENV, keyed_hex, old_keys
from . import migrate
from .models import audit_entries, erased_rows, erased_subjects, run_subjects, runs, state_meta

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
_KEY_CHECK = sa.select(state_meta.c.value).where(state_meta.c.name == "key_check")
_LAST_ROTATION = (
    sa.select(audit_entries.c.details)
    .where(audit_entries.c.kind == "key-rotated")
    .order_by(audit_entries.c.id.desc())
    .limit(1)
)
_FIRST_ROTATION = (
    sa.select(audit_entries.c.details)
    .where(audit_entries.c.kind == "key-rotated")
    .order_by(audit_entries.c.id)
    .limit(1)
)
#: The kind of the entry that records a key rotation (it starts a new segment).
ROTATION = "key-rotated"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(key: bytes, entry: dict[str, Any]) -> str:
    """Return the keyed hash of an audit entry (all fields but its own hash)."""
    canonical = json.dumps(
        [entry.get(name) for name in _HASHED_FIELDS], separators=(",", ":"), default=str
    )
    return keyed_hex(key, "audit-entry", canonical)


_RUN_FIELDS = (
    "id",
    "command",
    "as_of",
    "config_digest",
    "plan_digest",
    "user_name",
    "host",
    "pid",
    "tool_version",
    "started_at",
    "finished_at",
    "status",
    "subject_hash",
)


def run_row_digest(key: bytes, row: Any) -> str:
    """Return the keyed digest of a runs row (its summary without the chain head it
    records, which is the hash of the very entry that carries this digest)."""
    values = [row[name] for name in _RUN_FIELDS]
    summary = json.loads(row["summary"]) if row["summary"] else None
    if isinstance(summary, dict):
        summary.pop("audit_head", None)
    canonical = json.dumps([values, summary], sort_keys=True, separators=(",", ":"), default=str)
    return keyed_hex(key, "run-row", canonical)


def chain_head(key: bytes, entry_hash_value: str, count: int) -> str:
    """The head of a chain of `count` entries whose last hash is `entry_hash_value`."""
    return f"{count}:{keyed_hex(key, 'chain-head', entry_hash_value, str(count))[:32]}"


def key_check_value(key: bytes) -> str:
    return keyed_hex(key, "key-check")[:32]


def rotation_checks(details: str | None) -> tuple[str, str] | None:
    """(previous key check, new key check) of a `key-rotated` entry; None if malformed."""
    try:
        document = json.loads(details or "")
        previous, new = document["previous_key_check"], document["key_check"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(previous, str) or not isinstance(new, str):
        return None
    return previous, new


@dataclass(frozen=True)
class BrokenEntry:
    """The first audit entry that does not verify, and why."""

    entry_id: int | None
    reason: str


@dataclass
class Segment:
    """Entries `first`..`last` of the chain, written with one key."""

    first: int
    last: int
    key_check: str | None  # None: not recorded (a state database from before key checks)
    checked: bool  # False: its key is not in the keyring
    rotated_at: int | None = None  # the entry that rotated away from this key
    runs: list[int] = field(default_factory=list)  # run rows sealed here (not checked)

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "last": self.last,
            "key_check": self.key_check,
            "checked": self.checked,
            "rotated_at": self.rotated_at,
            "runs_not_checked": self.runs,
        }

    def describe(self, current_env: str) -> str:
        """Why this segment was not checked, in one clause."""
        where = f"entries {self.first}-{self.last}"
        if self.rotated_at is not None:
            return (
                f"{where} were written with a key not in {OLD_KEYS_ENV} "
                f"(rotated at entry {self.rotated_at}): not checked"
            )
        return (
            f"{where} were written with a key that is neither {current_env} nor in "
            f"{OLD_KEYS_ENV} (this state database's key since entry {self.first}): not checked"
        )


@dataclass
class Verification:
    """What `verify_chain` found: entries checked, the first break, and the segments."""

    checked: int
    broken: BrokenEntry | None
    segments: list[Segment]
    head_unchecked: bool = False  # --head lies in a segment whose key is not in the ring

    @property
    def unchecked(self) -> list[Segment]:
        return [s for s in self.segments if not s.checked]


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

    def __init__(
        self, config: Config, key: bytes | None, keyring: list[bytes] | None = None
    ) -> None:
        self.config = config
        self.key = key
        # The keys that may verify and match what older keys wrote (`keys.keyring`):
        # the current key first. Only `key` ever writes.
        self.keyring = keyring if keyring is not None else ([key] if key is not None else [])
        self.url = state_url(config)
        self.engine = create_state_engine(self.url, config.sweep.lock_timeout)
        # Threads of one process (run --jobs) append one at a time.
        self._write_lock = threading.Lock()
        self._key_checked = False
        try:
            migrate.upgrade(self.engine)
        except (sa.exc.DBAPIError, OSError) as exc:
            self.engine.dispose()
            raise state_failure(exc, "open") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the key ------------------------------------------------------------------

    def check_key(self) -> None:
        """Refuse (exit 2) a key that is not this state database's; see `_ensure_key`."""
        self._ensure_key()

    def _ensure_key(self) -> None:
        """Refuse (exit 2) to write with a key that is not this state database's.

        The first time a key meets a state database that has none recorded, the
        existing chain must verify with it; then its check value is recorded.
        """
        if self._key_checked:
            return
        assert self.key is not None, "writing the audit trail needs the key"
        wanted = key_check_value(self.key)
        name = self.config.sweep.hash_key_env
        mismatch = ConfigError(
            f"sweep.hash_key_env: {name} does not match this state database (its audit "
            "trail was written with another key); nothing was written"
        )
        with self.engine.connect() as connection:
            recorded = connection.execute(
                sa.select(state_meta.c.value).where(state_meta.c.name == "key_check")
            ).scalar()
        if recorded is None:
            if self.verify(check_runs=False)[1] is not None:
                raise ConfigError(
                    f"sweep.hash_key_env: the existing audit trail does not verify with {name}"
                    " (another key, or an altered trail: run gdpr-sweep audit verify); "
                    "nothing was written"
                )
            try:
                with self.engine.begin() as connection:
                    connection.execute(state_meta.insert().values(name="key_check", value=wanted))
            except sa.exc.IntegrityError:  # another process recorded one first
                with self.engine.connect() as connection:
                    recorded = connection.execute(
                        sa.select(state_meta.c.value).where(state_meta.c.name == "key_check")
                    ).scalar()
                if recorded != wanted:
                    raise mismatch from None
        elif recorded != wanted:
            raise self._rotation_hint(recorded) or mismatch
        self._key_checked = True

    def _rotation_hint(self, recorded: str) -> ConfigError | None:
        """The refusal when an old key matches: the new key is set, the rotation not run."""
        try:
            old = old_keys()
        except ConfigError:
            return None
        if not any(key_check_value(key) == recorded for key in old):
            return None
        return ConfigError(
            f"sweep.hash_key_env: {self.config.sweep.hash_key_env} is not yet this state "
            f"database's key (it was written with a key in {OLD_KEYS_ENV}): run gdpr-sweep "
            "audit rotate-key; nothing was written"
        )

    def _still_current(self, connection: sa.Connection) -> None:
        """Refuse to append with a key a rotation replaced since this store checked it
        (a process that started before `audit rotate-key` and writes after it)."""
        assert self.key is not None
        recorded = connection.execute(_KEY_CHECK).scalar()
        if recorded is not None and recorded != key_check_value(self.key):
            raise ConfigError(
                f"sweep.hash_key_env: {self.config.sweep.hash_key_env} does not match this "
                "state database (its key was rotated meanwhile); nothing more was written"
            )

    # --- runs ---------------------------------------------------------------------

    def start_run(
        self,
        command: str,
        as_of: dt.datetime,
        plan_digest: str | None = None,
        subject_hash: str | None = None,
        approval: dict[str, str] | None = None,
    ) -> int:
        """Record a new run as `running`, with a `run-start` audit entry; return its id.

        `approval`: the ticket and approver given (`Approval.details()`), recorded in
        the chained `run-start` entry."""
        self._ensure_key()
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
                    **(approval or {}),
                    "run_row": self._seal(connection, run_id),
                },
            )
        return int(run_id)

    def _seal(self, connection: sa.Connection, run_id: int) -> str:
        """The keyed digest of the run's row as it now stands (see the module's text)."""
        assert self.key is not None, "writing the audit trail needs the key"
        row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()
        return run_row_digest(self.key, row)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> str:
        """Record how the run ended; return the chain's head after it (`N:digest`)."""
        self._ensure_key()
        with self.engine.begin() as connection:
            this_run = runs.update().where(runs.c.id == run_id)
            connection.execute(
                this_run.values(
                    status=status, finished_at=utc_now(), summary=json.dumps(summary, default=str)
                )
            )
            head = self._append(
                connection,
                run_id,
                "run-end",
                details={"status": status, "run_row": self._seal(connection, run_id)},
            )
            count = connection.execute(_CHAIN_HEAD).one().id
            summary = {**summary, "audit_head": head}
            connection.execute(this_run.values(summary=json.dumps(summary, default=str)))
        assert self.key is not None
        return chain_head(self.key, head, count)

    def mark_interrupted(self) -> list[int]:
        """Mark runs left `running` by a killed process as `interrupted` (lock held)."""
        self._ensure_key()
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
                connection.execute(
                    runs.update()
                    .where(runs.c.id == run_id)
                    .values(status="interrupted", finished_at=utc_now())
                )
                self._append(
                    connection,
                    run_id,
                    "run-interrupted",
                    details={"run_row": self._seal(connection, run_id)},
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

    def erased_since(self, since: str) -> list[dict[str, Any]]:
        """Row keys recorded by erasures of versions before 0.2 (no fingerprint; never
        replayed, only counted) that started at or after `since` (ISO), oldest first."""
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.select(erased_rows, runs.c.started_at)
                .join(runs, runs.c.id == erased_rows.c.run_id)
                .where(runs.c.command == "erase", runs.c.started_at >= since)
                .order_by(erased_rows.c.id)
            ).mappings()
            return [dict(row) for row in result]

    def record_erased_subjects(
        self,
        run_id: int,
        database: str,
        roots: list[dict[str, Any]],
        identifier_hashes: list[str],
    ) -> None:
        """Record, once an erasure committed, its root rows (sealed key, fingerprint) and
        the keyed hash of every identifier they had."""
        with self._write_lock, self.engine.begin() as connection:
            if roots:
                connection.execute(
                    erased_subjects.insert(),
                    [{"run_id": run_id, "database_name": database, **root} for root in roots],
                )
            known = set(
                connection.execute(
                    sa.select(run_subjects.c.subject_hash).where(run_subjects.c.run_id == run_id)
                ).scalars()
            )
            fresh = sorted(set(identifier_hashes) - known)
            if fresh:
                connection.execute(
                    run_subjects.insert(),
                    [{"run_id": run_id, "subject_hash": h} for h in fresh],
                )

    def erased_subjects_since(self, since: str) -> list[dict[str, Any]]:
        """Root rows recorded by erasures started at or after `since` (ISO), oldest first."""
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.select(erased_subjects, runs.c.started_at)
                .join(runs, runs.c.id == erased_subjects.c.run_id)
                .where(runs.c.command == "erase", runs.c.started_at >= since)
                .order_by(erased_subjects.c.id)
            ).mappings()
            return [dict(row) for row in result]

    def runs_for_subject(self, subject_hash: str | list[str]) -> list[dict[str, Any]]:
        """Runs that name the subject: by the identifier given, or by any identifier the
        erased person's row had. Several hashes: the subject hashed with each key of
        the keyring (runs from before a rotation recorded it under an older key)."""
        hashes = [subject_hash] if isinstance(subject_hash, str) else list(subject_hash)
        with self.engine.connect() as connection:
            by_identifier = sa.select(run_subjects.c.run_id).where(
                run_subjects.c.subject_hash.in_(hashes)
            )
            rows = connection.execute(
                sa.select(runs)
                .where(sa.or_(runs.c.subject_hash.in_(hashes), runs.c.id.in_(by_identifier)))
                .order_by(runs.c.id)
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
        self._ensure_key()
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
        signing_key: bytes | None = None,
    ) -> str:
        """Append one entry, hashed with `signing_key` (only a rotation gives one) or
        this store's key — which must still be the state database's."""
        if signing_key is None:
            self._still_current(connection)
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
        key = signing_key or self.key
        assert key is not None, "writing the audit trail needs the key"
        entry["entry_hash"] = entry_hash(key, entry)
        connection.execute(_INSERT_ENTRY, entry)
        return str(entry["entry_hash"])

    def entries(self) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=1000).execute(
                sa.select(audit_entries).order_by(audit_entries.c.id)
            )
            for row in result.mappings():
                yield dict(row)

    def verify(
        self, check_runs: bool = True, head: str | None = None
    ) -> tuple[int, BrokenEntry | None]:
        """Walk the chain; return (entries checked, the first broken entry or None).

        With `check_runs`, every runs row is compared with the digest its entries
        sealed; with `head` (`N:digest`, as `chain_head` wrote it), the chain must still
        hold that head. Segments whose key is not in the keyring are skipped (see
        `verify_chain`, which says which).
        """
        result = self.verify_chain(check_runs, head)
        return result.checked, result.broken

    def verify_chain(
        self,
        check_runs: bool = True,
        head: str | None = None,
        first_key: bytes | None = None,
    ) -> Verification:
        """Walk the chain segment by segment (see the module's text), with the keyring.

        `first_key`: the key of the entries before the first rotation, when there is no
        rotation and no key check to tell it (rotating a state database from 0.1).
        """
        ring = self.keyring or ([self.key] if self.key is not None else [])
        assert ring, "verifying the audit trail needs the key"
        by_check = {key_check_value(k): k for k in reversed(ring)}  # the current key wins
        with self.engine.connect() as connection:
            recorded = connection.execute(_KEY_CHECK).scalar()
            first_rotation = connection.execute(_FIRST_ROTATION).first()
        segment_key: bytes | None
        if first_key is not None:
            segment_check: str | None = key_check_value(first_key)
            segment_key = first_key
        elif first_rotation is not None:
            parsed = rotation_checks(first_rotation.details)
            segment_check = parsed[0] if parsed else None
            segment_key = by_check.get(segment_check) if segment_check else None
        else:  # one key wrote it all: the recorded one if the ring has it, else ours
            segment_check = recorded
            segment_key = by_check.get(recorded) if recorded else None
            if segment_key is None:
                segment_key = ring[0]
        segment = Segment(1, 0, segment_check, segment_key is not None)
        segments: list[Segment] = []
        previous = GENESIS
        expected_id = 1
        heads: set[str] = set()
        sealed: dict[int, tuple[str, bytes | None, Segment]] = {}
        checked = 0
        head_count = parse_head(head) if head is not None else None
        head_at: tuple[str, bytes | None] | None = None
        rotated = False

        def result(broken: BrokenEntry | None, **extra: Any) -> Verification:
            done = [*segments, segment] if segment.last >= segment.first else segments
            return Verification(checked, broken, done, **extra)

        for entry in self.entries():
            entry_id = entry["id"]
            if entry_id != expected_id:
                return result(
                    BrokenEntry(entry_id, f"entry {expected_id} is missing (found {entry_id} next)")
                )
            if entry["prev_hash"] != previous:
                reason = "does not follow the entry before it (deleted or reordered)"
                return result(BrokenEntry(entry_id, reason))
            if entry["kind"] == ROTATION:
                checks = rotation_checks(entry["details"])
                if checks is None:
                    return result(BrokenEntry(entry_id, "its content was altered"))
                if checks[0] != segment_check:
                    return result(
                        BrokenEntry(
                            entry_id,
                            "a key rotation that does not follow the key of the entries "
                            "before it (altered or forged)",
                        )
                    )
                if segment.last >= segment.first:
                    segment.rotated_at = entry_id
                    segments.append(segment)
                segment_check = checks[1]
                segment_key = by_check.get(segment_check)
                segment = Segment(entry_id, entry_id - 1, segment_check, segment_key is not None)
                rotated = True
            segment.last = entry_id
            if segment_key is not None:
                if entry_hash(segment_key, entry) != entry["entry_hash"]:
                    return result(BrokenEntry(entry_id, "its content was altered"))
                checked += 1
            elif any(entry_hash(k, entry) == entry["entry_hash"] for k in ring):
                return result(
                    BrokenEntry(
                        entry_id,
                        "was written with the key of another segment of the chain (a key "
                        "rotation was altered, removed or forged)",
                    )
                )
            previous = entry["entry_hash"]
            heads.add(previous)
            expected_id += 1
            if entry["details"] and '"run_row"' in entry["details"]:
                digest = json.loads(entry["details"])["run_row"]
                sealed[entry["run_id"]] = (digest, segment_key, segment)
            if entry_id == head_count:
                head_at = (previous, segment_key)
        if rotated and recorded is not None and first_key is None and segment_check != recorded:
            return result(
                BrokenEntry(
                    segment.first,
                    "the last key rotation is not the one this state database records (its "
                    "key check was edited, or the rotation forged)",
                )
            )
        if head is not None:
            assert head_count is not None
            if head_at is None:
                return result(_head_gone(head))
            last_hash, key_of_head = head_at
            candidates = ([key_of_head] if key_of_head is not None else []) + ring
            if not any(chain_head(k, last_hash, head_count) == head for k in candidates):
                if key_of_head is not None:
                    return result(_head_gone(head))
                return result(_verify_runs(self, sealed, heads, check_runs), head_unchecked=True)
        return result(_verify_runs(self, sealed, heads, check_runs))

    def head(self) -> str | None:
        """The chain's head now, keyed with the key of its segment (the newest
        rotation's; else the recorded key). None: no entries yet, or that key is not in
        the keyring (a head under another key would be no anchor at all)."""
        assert self.key is not None
        with self.engine.connect() as connection:
            last = connection.execute(_CHAIN_HEAD).first()
            if last is None:
                return None
            rotation = connection.execute(_LAST_ROTATION).first()
            recorded = connection.execute(_KEY_CHECK).scalar()
        checks = rotation_checks(rotation.details) if rotation is not None else None
        wanted = checks[1] if checks else recorded
        if wanted is None:  # a state database from before key checks
            return chain_head(self.key, last.entry_hash, last.id)
        key = next((k for k in self.keyring if key_check_value(k) == wanted), None)
        return None if key is None else chain_head(key, last.entry_hash, last.id)

    def _has_entries(self, run_id: int) -> bool:
        with self.engine.connect() as connection:
            return (
                connection.execute(
                    sa.select(audit_entries.c.id).where(audit_entries.c.run_id == run_id).limit(1)
                ).first()
                is not None
            )


def parse_head(head: str) -> int:
    """Return the entry count of a chain head `N:digest`; ValueError if it is not one."""
    count, _, digest = head.partition(":")
    if not count.isdigit() or len(digest) != 32:
        raise ValueError(f"{head!r} is not a chain head (N:digest, as audit verify --json prints)")
    return int(count)


def _head_gone(head: str) -> BrokenEntry:
    return BrokenEntry(
        None,
        f"the head {head} is no longer in the chain (entries were removed from the end, or "
        "the chain was rewritten)",
    )


def _verify_runs(
    store: StateStore,
    sealed: dict[int, tuple[str, bytes | None, Segment]],
    heads: set[str],
    check_runs: bool,
) -> BrokenEntry | None:
    """Compare each runs row with the digest the chain sealed, with that segment's key."""
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(runs).order_by(runs.c.id)).mappings().all()
    run_ids = {row["id"] for row in rows}
    for row in rows:
        summary = json.loads(row["summary"]) if row["summary"] else {}
        audit_head = summary.get("audit_head") if isinstance(summary, dict) else None
        if audit_head and audit_head not in heads:
            return BrokenEntry(
                None, f"entries of run {row['id']} were removed from the end of the trail"
            )
        if not check_runs:
            continue
        seal = sealed.get(row["id"])
        if seal is None:
            if not store._has_entries(row["id"]):
                return BrokenEntry(None, f"run {row['id']} is not in the audit trail")
            continue  # a run recorded before runs were sealed (gdpr-sweep 0.1)
        digest, key, segment = seal
        if key is None:
            segment.runs.append(row["id"])
            continue
        if run_row_digest(key, row) != digest:
            return BrokenEntry(
                None,
                f"run {row['id']} was edited after it was recorded (its status, as-of, "
                "subject, counts or another field)",
            )
    if check_runs:
        missing = sorted(set(sealed) - run_ids)
        if missing:
            return BrokenEntry(None, f"the row of run {missing[0]} was removed")
    return None


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


_READERS = {
    "runs",
    "last_success",
    "erased_since",
    "erased_subjects_since",
    "runs_for_subject",
    "run",
    "verify",
    "verify_chain",
    "head",
}
# Every way into the state database turns a driver's failure into one line, exit 2.
for _name in (
    "start_run",
    "finish_run",
    "mark_interrupted",
    "record_erased_subjects",
    "append_many",
    "append",
    "check_key",
    *_READERS,
):
    setattr(StateStore, _name, _state_errors(getattr(StateStore, _name)))


def _user() -> str:
    try:
        return getpass.getuser()[:120]
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())
