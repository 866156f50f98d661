"""The state database of one config, as callers use it: `StateStore`.

It opens (and migrates) the state database, checks the hash key before anything is
written, and appends to the hash-chained audit trail. Its methods for runs
(`runs.py`) and erased persons (`erased.py`) come from mixins there; verifying the
chain delegates to `chain_verify.py`. What the chain's hashes are is in `chain.py`;
the engine and the one-line failures in `engine.py`. A context manager:
`with StateStore(...) as store`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from ..config import Config, state_url
from ..errors import ConfigError
from ..keys import OLD_KEYS_ENV, old_keys
from . import chain_verify, migrate
from .chain import (
    GENESIS,
    INSERT_ENTRY,
    SELECT_KEY_CHECK,
    SELECT_LAST_ENTRY,
    SELECT_LAST_ROTATION,
    chain_head,
    entry_hash,
    key_check_value,
    rotation_checks,
)
from .chain_verify import BrokenEntry
from .engine import create_state_engine, state_errors, state_failure
from .erased import ErasedSubjects
from .models import audit_entries, state_meta
from .runs import RunRecords
from .stamps import utc_now
from .tenant_lock import PROCESS_LOCKS, LockSpace, lock_key

#: The advisory transaction lock that serialises appends to the one chain (PostgreSQL).
CHAIN_LOCK_KEY = lock_key("chain", "audit")
_PG_CHAIN_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")
# MariaDB/MySQL: a locking read of the head row (with its next-key gap) until commit.
_SELECT_LAST_FOR_UPDATE = SELECT_LAST_ENTRY.with_for_update()


class StateStore(RunRecords, ErasedSubjects):
    """The state database of one config: migrated on open.

    Its runs (`RunRecords`, runs.py) and erased persons (`ErasedSubjects`, erased.py)
    are mixins; what is shared (the key, the trail, verifying it) is here."""

    def __init__(
        self, config: Config, hmac_key: bytes | None, keyring: list[bytes] | None = None
    ) -> None:
        self.config = config
        self.hmac_key = hmac_key
        # The keys that may verify and match what older keys wrote (`keys.keyring`):
        # the current key first. Only `hmac_key` ever writes.
        self.keyring = (
            keyring if keyring is not None else ([hmac_key] if hmac_key is not None else [])
        )
        self.url = state_url(config)
        self.engine = create_state_engine(self.url, config.sweep.lock_timeout)
        # Threads of one process (run --jobs) append one at a time.
        self._write_lock = threading.Lock()
        self._key_checked = False
        # The tenant, process and migration locks (`tenant_lock.py`).
        self.locks = LockSpace(self.url)
        self._process: str | None = None
        #: Seconds spent in audit-trail transactions (lock wait and commit included).
        self.append_seconds = 0.0
        try:
            migrate.upgrade(self.engine, self.locks.migration)
        except (sa.exc.DBAPIError, OSError) as exc:
            self.engine.dispose()
            raise state_failure(exc, "open") from None

    def close(self) -> None:
        if self._process is not None:
            PROCESS_LOCKS.release(self._process)
            self._process = None
        self.locks.close()
        self.engine.dispose()

    def hold_process_lock(self) -> None:
        """Hold this process's lock (once) before it records a run: while it is held, no
        other process takes this process's runs for interrupted ones."""
        if self._process is None:
            self._process = PROCESS_LOCKS.hold(self.url)

    def _timed(self) -> Any:
        return _Timer(self)

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
        assert self.hmac_key is not None, "writing the audit trail needs the key"
        wanted = key_check_value(self.hmac_key)
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
            if self.verify_chain_summary(check_runs=False)[1] is not None:
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
        if not any(key_check_value(old_key) == recorded for old_key in old):
            return None
        return ConfigError(
            f"sweep.hash_key_env: {self.config.sweep.hash_key_env} is not yet this state "
            f"database's key (it was written with a key in {OLD_KEYS_ENV}): run gdpr-sweep "
            "audit rotate-key; nothing was written"
        )

    def _still_current(self, connection: sa.Connection) -> None:
        """Refuse to append with a key a rotation replaced since this store checked it
        (a process that started before `audit rotate-key` and writes after it)."""
        assert self.hmac_key is not None
        recorded = connection.execute(SELECT_KEY_CHECK).scalar()
        if recorded is not None and recorded != key_check_value(self.hmac_key):
            raise ConfigError(
                f"sweep.hash_key_env: {self.config.sweep.hash_key_env} does not match this "
                "state database (its key was rotated meanwhile); nothing more was written"
            )

    # --- the audit trail -------------------------------------------------------------

    def append_many(self, run_id: int, entries: list[tuple[str, dict[str, Any]]]) -> str:
        """Append several entries in one transaction (one commit); return the last hash."""
        self._ensure_key()
        for attempt in range(50):
            try:
                with self._timed(), self._write_lock, self.engine.begin() as connection:
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

        Other processes (other shards, a `hold add` beside a running sweep) append to
        the same chain: the database serialises the appends (`_append`); should two
        still read the same head, one insert fails on the entry id and is retried on
        the new head — so the chain stays one line.
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
        this store's key — which must still be the state database's.

        One chain, many writers: the head is read and the entry inserted under a lock
        the database holds until this transaction ends — PostgreSQL an advisory
        transaction lock, MariaDB/MySQL a locking read of the head row, SQLite its
        write lock from `BEGIN IMMEDIATE`. The id is the entry's position (head + 1),
        never a sequence's: an append rolled back leaves no gap to mistake for a
        deleted entry.
        """
        dialect = connection.dialect.name
        if dialect == "postgresql":
            connection.execute(_PG_CHAIN_LOCK, {"key": CHAIN_LOCK_KEY})
        if signing_key is None:
            self._still_current(connection)
        locking = dialect in ("mysql", "mariadb")
        select_last = _SELECT_LAST_FOR_UPDATE if locking else SELECT_LAST_ENTRY
        last = connection.execute(select_last).first()
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
        hmac_key = signing_key or self.hmac_key
        assert hmac_key is not None, "writing the audit trail needs the key"
        entry["entry_hash"] = entry_hash(hmac_key, entry)
        connection.execute(INSERT_ENTRY, entry)
        return str(entry["entry_hash"])

    def entries(self) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=1000).execute(
                sa.select(audit_entries).order_by(audit_entries.c.id)
            )
            for row in result.mappings():
                yield dict(row)

    # --- verifying the chain (chain_verify.py) ------------------------------------

    def verify_chain_summary(
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

    #: Walk the chain segment by segment with the keyring (`chain_verify.verify_chain`).
    verify_chain = chain_verify.verify_chain

    def head(self) -> str | None:
        """The chain's head now, keyed with the key of its segment (the newest
        rotation's; else the recorded key). None: no entries yet, or that key is not in
        the keyring (a head under another key would be no anchor at all)."""
        assert self.hmac_key is not None
        with self.engine.connect() as connection:
            last = connection.execute(SELECT_LAST_ENTRY).first()
            if last is None:
                return None
            rotation = connection.execute(SELECT_LAST_ROTATION).first()
            recorded = connection.execute(SELECT_KEY_CHECK).scalar()
        checks = rotation_checks(rotation.details) if rotation is not None else None
        wanted = checks[1] if checks else recorded
        if wanted is None:  # a state database from before key checks
            return chain_head(self.hmac_key, last.entry_hash, last.id)
        hmac_key = next((k for k in self.keyring if key_check_value(k) == wanted), None)
        return None if hmac_key is None else chain_head(hmac_key, last.entry_hash, last.id)


class _Timer:
    """Adds the time of an audit-trail transaction to `StateStore.append_seconds`."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.store.append_seconds += time.perf_counter() - self.started


_READERS = {
    "runs",
    "planned_run",
    "approvals",
    "last_success",
    "erased_since",
    "erased_subjects_since",
    "runs_for_subject",
    "run",
    "verify_chain_summary",
    "verify_chain",
    "head",
}
# Every way into the state database turns a driver's failure into one line, exit 2.
for _name in (
    "start_run",
    "record_plan",
    "finish_run",
    "mark_interrupted",
    "record_erased_subjects",
    "append_many",
    "append",
    "check_key",
    *_READERS,
):
    setattr(StateStore, _name, state_errors(getattr(StateStore, _name), _READERS))
