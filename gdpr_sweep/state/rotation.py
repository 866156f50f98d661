"""Rotating the hash key: `gdpr-sweep audit rotate-key`.

The new key is `GDPR_SWEEP_KEY` (the config's `sweep.hash_key_env`); the key the state
database was written with must be among `GDPR_SWEEP_OLD_KEYS` (its key check value
tells which). Under the state lock held exclusively (no sweep of any tenant runs) and
every tenant's lock, once the whole chain verified with the keyring,
one state transaction

- re-seals every hold's key and every erased subject's root key under the new key
  (and gives a hold's keyed-hash label the new key's label, as the sweep writes it),
- appends a `key-rotated` entry hashed with the new key, whose details are the key
  check values of both keys (never a key) — it starts the chain's next segment,
- records the new key check, so commands with the old key are refused from then on.

It is recorded as a run (`rotate-key`) like any other: its `run-start` entry is the old
key's last, its `key-rotated` and `run-end` entries the new key's first. Nothing else is
rewritten: entries, run digests and heads keep the key that wrote them, and the old
key, kept in GDPR_SWEEP_OLD_KEYS, still verifies them and still matches the subject
hashes and fingerprints recorded under it (`audit find`, `replay`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..config import Config
from ..errors import ConfigError, Refused
from ..formats import format_name
from ..keys import OLD_KEYS_ENV, key_label, keyring
from ..times import stored
from .chain import (
    ROTATION,
    SELECT_KEY_CHECK,
    SELECT_LAST_ENTRY,
    chain_head,
    key_check_value,
    run_row_digest,
)
from .chain_verify import Segment
from .lock import Stoppable
from .models import erased_subjects, runs, state_meta
from .models import holds as holds_table
from .runs import insert_run
from .stamps import utc_now
from .store import StateStore


@dataclass
class RotationResult:
    rotated: bool  # False: the state database already has the current key
    key_check: str
    previous_key_check: str | None = None
    run_id: int | None = None
    entry: int | None = None  # the `key-rotated` entry
    holds: int = 0  # hold keys re-sealed
    erased_subjects: int = 0  # erased subjects' root keys re-sealed
    head: str | None = None
    unchecked: list[Segment] = field(default_factory=list)  # older segments not verified

    def to_json(self) -> dict[str, Any]:
        return {
            "format": format_name("audit rotate-key"),
            "rotated": self.rotated,
            "run_id": self.run_id,
            "entry": self.entry,
            "previous_key_check": self.previous_key_check,
            "key_check": self.key_check,
            "resealed": {"holds": self.holds, "erased_subjects": self.erased_subjects},
            "head": self.head,
            "unchecked": [s.to_json() for s in self.unchecked],
        }


def rotate_key(
    config: Config, *, wait: float | None = None, stop: Stoppable | None = None
) -> RotationResult:
    """Make GDPR_SWEEP_KEY the state database's key (see the module's text).

    Exit 2 (nothing written) if the key it was written with is not in
    GDPR_SWEEP_OLD_KEYS; exit 5 if the chain does not verify; exit 4 while a sweep
    holds the lock (after `wait`). With the current key already the state database's,
    nothing is done.
    """
    ring = keyring(config)
    new = ring[0]
    new_check = key_check_value(new)
    with StateStore(config, new, ring) as store:
        recorded = _recorded(store)
        if recorded == new_check:
            return RotationResult(False, new_check)
        old = _old_key(store, recorded, ring)
        if old is None:  # a state database without a key check, written with this key
            store.check_key()
            return RotationResult(False, new_check)
        from ..run_locks import writing

        tenants = [db.name for db in config.databases]
        with writing(store, tenants, wait=wait, stop=stop, exclusive=True):
            store.hold_process_lock()
            if _recorded(store) != recorded:
                raise ConfigError(
                    "sweep.hash_key_env: the state database's key changed while waiting for "
                    "the lock (another rotation?); nothing was written"
                )
            verification = store.verify_chain(first_key=old if recorded is None else None)
            if verification.broken is not None:
                broken = verification.broken
                where = f"entry {broken.entry_id} " if broken.entry_id is not None else ""
                raise Refused(
                    f"audit trail altered: {where}{broken.reason}; the key was not rotated "
                    "(run gdpr-sweep audit verify)"
                )
            result = _rotate(store, old, new, recorded)
            result.unchecked = verification.unchecked
            return result


def _recorded(store: StateStore) -> str | None:
    with store.engine.connect() as connection:
        value = connection.execute(SELECT_KEY_CHECK).scalar()
    return None if value is None else str(value)


def _old_key(store: StateStore, recorded: str | None, hmac_keys: list[bytes]) -> bytes | None:
    """The key the state database was written with, from GDPR_SWEEP_OLD_KEYS (exit 2 if
    it is not there). None: there is nothing to rotate from (see `rotate_key`)."""
    old_ring = hmac_keys[1:]
    if recorded is not None:
        for hmac_key in old_ring:
            if key_check_value(hmac_key) == recorded:
                return hmac_key
        given = "has no key" if old_ring else "is not set: it must hold the key"
        raise ConfigError(
            f"{OLD_KEYS_ENV}: {given} that this state database was written with (its key "
            f"check is {recorded}); give the old key there and the new one in "
            f"{store.config.sweep.hash_key_env}; nothing was written"
        )
    # A state database from before key checks: the key its chain verifies with.
    with store.engine.connect() as connection:
        empty = connection.execute(SELECT_LAST_ENTRY).first() is None
    if empty:
        return None
    for hmac_key in hmac_keys:
        if store.verify_chain(check_runs=False, first_key=hmac_key).broken is None:
            return None if hmac_key == hmac_keys[0] else hmac_key
    raise ConfigError(
        f"{OLD_KEYS_ENV}: the existing audit trail verifies with no key in it nor in "
        f"{store.config.sweep.hash_key_env} (another key, or an altered trail: run "
        "gdpr-sweep audit verify); nothing was written"
    )


def _rotate(store: StateStore, old: bytes, new: bytes, recorded: str | None) -> RotationResult:
    """The one transaction that re-keys the state database."""
    from ..holds.keys import label_text  # holds.store imports the state store
    from ..holds.sealing import seal, unseal

    old_check, new_check = key_check_value(old), key_check_value(new)
    now = dt.datetime.now(dt.UTC)
    config = store.config
    with store.engine.begin() as connection:
        meta = connection.execute(SELECT_KEY_CHECK.with_for_update()).scalar()
        if meta != recorded:
            raise ConfigError(
                "sweep.hash_key_env: the state database's key changed meanwhile (another "
                "rotation?); nothing was written"
            )
        run_id = insert_run(connection, "rotate-key", now, config.digest)
        this_run = runs.update().where(runs.c.id == run_id)

        def row_digest(hmac_key: bytes) -> str:
            row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()
            return run_row_digest(hmac_key, row)

        store._append(
            connection,
            run_id,
            "run-start",
            details={
                "command": "rotate-key",
                "as_of": stored(now),
                "config_digest": config.digest,
                "plan_digest": None,
                "subject": None,
                "run_row": row_digest(old),
            },
            signing_key=old,
        )
        holds = _reseal(connection, holds_table, old, new, seal, unseal, label_text)
        subjects = _reseal(connection, erased_subjects, old, new, seal, unseal, None)
        rotation = {"previous_key_check": old_check, "key_check": new_check}
        store._append(
            connection,
            run_id,
            ROTATION,
            details={**rotation, "resealed": {"holds": holds, "erased_subjects": subjects}},
            signing_key=new,
        )
        entry = connection.execute(SELECT_LAST_ENTRY).one().id
        summary: dict[str, Any] = {
            **rotation,
            "entry": entry,
            "resealed": {"holds": holds, "erased_subjects": subjects},
        }
        connection.execute(
            this_run.values(status="completed", finished_at=utc_now(), summary=json.dumps(summary))
        )
        last = store._append(
            connection,
            run_id,
            "run-end",
            details={"status": "completed", "run_row": row_digest(new)},
            signing_key=new,
        )
        count = connection.execute(SELECT_LAST_ENTRY).one().id
        connection.execute(this_run.values(summary=json.dumps({**summary, "audit_head": last})))
        if recorded is None:
            connection.execute(state_meta.insert().values(name="key_check", value=new_check))
        else:
            connection.execute(
                state_meta.update().where(state_meta.c.name == "key_check").values(value=new_check)
            )
    return RotationResult(
        True,
        new_check,
        previous_key_check=old_check,
        run_id=run_id,
        entry=int(entry),
        holds=holds,
        erased_subjects=subjects,
        head=chain_head(new, last, int(count)),
    )


def _reseal(
    connection: sa.Connection,
    table: sa.Table,
    old: bytes,
    new: bytes,
    seal: Any,
    unseal: Any,
    label_text: Any,
) -> int:
    """Open every sealed key of `table` with the old key and seal it with the new one;
    return how many. One that does not open refuses the rotation (exit 2)."""
    relabel = label_text is not None
    columns = [table.c.id, table.c.database_name, table.c.table_name, table.c.row_key_sealed]
    if relabel:
        columns.append(table.c.row_key_label)
    rows = connection.execute(
        sa.select(*columns).where(table.c.row_key_sealed.is_not(None)).order_by(table.c.id)
    ).all()
    for row in rows:
        where = (row.database_name, row.table_name)
        try:
            values = unseal(old, *where, row.row_key_sealed)
        except (ValueError, KeyError, TypeError):
            what = "hold" if relabel else "erased subject"
            raise ConfigError(
                f"{OLD_KEYS_ENV}: the sealed key of {what} {row.id} does not open with the old "
                "key (an altered state database?); nothing was written"
            ) from None
        changes: dict[str, Any] = {"row_key_sealed": seal(new, *where, values)}
        if relabel and row.row_key_label and row.row_key_label.startswith("hmac:"):
            changes["row_key_label"] = key_label(new, label_text(values), True)[:128]
        connection.execute(table.update().where(table.c.id == row.id).values(**changes))
    return len(rows)
