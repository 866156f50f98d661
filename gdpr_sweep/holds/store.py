"""Holds in the state database: adding and releasing one (under the tenant's lock, with
audit entries), listing them, and the keys held on a day (`active_holds`), opened
and ready to bind, for the sweep, plans and erasure.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..config import Config, state_url
from ..engines import select_databases
from ..errors import ConfigError, DatabaseUnavailable, UsageError
from ..keys import OLD_KEYS_ENV, hash_key, key_label, keyring
from ..run_locks import writing
from ..state.chain import key_check_value
from ..state.lock import Stoppable
from ..state.models import holds as holds_table
from ..state.models import state_meta
from ..state.stamps import utc_now, who_is_running
from ..state.store import StateStore
from .keys import label_text
from .rows import find_row
from .sealing import seal, unseal

MAX_REASON = 500

#: Active holds by (database, qualified table name): each held row's primary key, as a
#: tuple of every key column's value in key order (opened, ready to bind).
HeldKeys = dict[tuple[str, str], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Hold:
    id: int
    database: str
    table: str
    key: int | str  # a single integer key itself; any other key only as its label
    reason: str
    created_by: str
    created_at: str
    until: dt.date | None
    released_at: str | None
    released_by: str | None

    def active_on(self, day: dt.date) -> bool:
        return self.released_at is None and (self.until is None or day <= self.until)

    def status_on(self, day: dt.date) -> str:
        if self.released_at is not None:
            return "released"
        return "active" if self.active_on(day) else "lapsed"


def _parse_until(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--until: {text!r} is not a date (YYYY-MM-DD)") from None


def add_hold(
    config: Config,
    database: str,
    table: str,
    key: str | Sequence[str],
    reason: str,
    until: str | None,
    *,
    wait: float | None = None,
    stop: Stoppable | None = None,
) -> Hold:
    """Record a hold on one existing row, under its database's tenant lock (a sweep of
    that database is not running, and none starts until the hold is recorded).

    Exit 2 if the row (or table, or database) is not there — checked first without the
    lock, so a typo is not made to wait, and again under it, since a sweep we waited
    for may have removed the row. Exit 4 if a sweep holds the lock (after `wait`).
    """
    until_date = _parse_until(until)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON or not reason.isprintable():
        raise UsageError(f"--reason: give one line of at most {MAX_REASON} characters")
    given = [key] if isinstance(key, str) else list(key)
    if not given:
        raise UsageError("--key: name the row by its primary key")
    hmac_key = hash_key(config)
    (target,) = select_databases(config, [database])
    try:
        find_row(target, table, given)
    finally:
        target.dispose()
    with StateStore(config, hmac_key) as store:
        store.check_key()  # before the hold is written, not only before the audit entry
        with writing(store, [database], wait=wait, stop=stop):
            try:
                row = find_row(target, table, given)
            finally:
                target.dispose()
            single_integer = not row.personal and len(row.values) == 1
            label = key_label(hmac_key, label_text(row.values), row.personal)[:128]
            with store.engine.begin() as connection:
                hold_id = connection.execute(
                    holds_table.insert().values(
                        database_name=database,
                        table_name=row.table,
                        row_key=row.values[0] if single_integer else None,
                        row_key_sealed=None
                        if single_integer
                        else seal(hmac_key, database, row.table, row.values),
                        row_key_label=label,
                        reason=reason,
                        created_by=who_is_running(at_host=True),
                        created_at=utc_now(),
                        until=until_date,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            run_id = store.start_run("hold-add", dt.datetime.now(dt.UTC))
            store.append(
                run_id,
                "hold-add",
                database=database,
                table=row.table,
                key_to=label,
                details={"hold": hold_id, "until": until_date},
            )
            store.finish_run(run_id, "completed", {"hold": hold_id})
        return _load(store, int(hold_id))


def release_hold(
    config: Config, hold_id: int, *, wait: float | None = None, stop: Stoppable | None = None
) -> Hold:
    """End a hold, under its database's tenant lock (a running sweep of it keeps
    honouring the hold until it is done)."""
    with StateStore(config, hash_key(config)) as store:
        store.check_key()
        _load(store, hold_id)  # exit 2 for an unknown id before waiting for the lock
        with writing(store, [_load(store, hold_id).database], wait=wait, stop=stop):
            hold = _load(store, hold_id)
            if hold.released_at is not None:
                raise UsageError(f"ID: hold {hold_id} was already released")
            with store.engine.begin() as connection:
                connection.execute(
                    holds_table.update()
                    .where(holds_table.c.id == hold_id)
                    .values(released_at=utc_now(), released_by=who_is_running(at_host=True))
                )
            run_id = store.start_run("hold-release", dt.datetime.now(dt.UTC))
            store.append(
                run_id,
                "hold-release",
                database=hold.database,
                table=hold.table,
                key_to=str(hold.key),
                details={"hold": hold_id},
            )
            store.finish_run(run_id, "completed", {"hold": hold_id})
        return _load(store, hold_id)


def list_holds(config: Config) -> list[Hold]:
    with StateStore(config, None) as store, store.engine.connect() as connection:
        rows = connection.execute(sa.select(holds_table).order_by(holds_table.c.id))
        return [_hold(row) for row in rows.mappings()]


def _load(store: StateStore, hold_id: int) -> Hold:
    with store.engine.connect() as connection:
        row = (
            connection.execute(sa.select(holds_table).where(holds_table.c.id == hold_id))
            .mappings()
            .first()
        )
    if row is None:
        raise UsageError(f"ID: no hold {hold_id}")
    return _hold(row)


def _hold(row: sa.RowMapping) -> Hold:
    key: int | str
    if row["row_key"] is not None:
        key = int(row["row_key"])
    else:
        key = row.get("row_key_label") or "sealed"
    return Hold(
        id=row["id"],
        database=row["database_name"],
        table=row["table_name"],
        key=key,
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        until=row["until"],
        released_at=row["released_at"],
        released_by=row["released_by"],
    )


def active_holds(config: Config, day: dt.date, engine: sa.Engine | None = None) -> HeldKeys:
    """Return the keys held on local date `day`, without creating a state database.

    `plan` reads holds too, and must not create or migrate anything: a state database
    that does not exist yet (or predates holds, or sealed keys) simply has none (or
    only integer ones). Sealed keys are opened here, so a command that honours holds
    needs the hash key once any hold is sealed; another key is refused (exit 2), never
    taken to mean "no holds".

    `engine`: the open state store's (a sweep reads holds once per tenant, under its
    lock: with the store's pool, not a connection each time).
    """
    url = state_url(config)
    is_file_db = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if engine is None and is_file_db and not Path(str(url.database)).is_file():
        return {}
    own = engine is None
    if engine is None:
        engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            if not inspector.has_table("holds"):
                return {}
            present = {c["name"] for c in inspector.get_columns("holds")}
            columns = [c for c in holds_table.c if c.name in present]
            rows = connection.execute(
                sa.select(*columns).where(holds_table.c.released_at.is_(None))
            ).mappings()
            active = [row for row in rows if _hold(row).active_on(day)]
            hmac_key = None
            if any(row["row_key"] is None for row in active):
                hmac_key = _opening_key(config, connection, inspector.has_table("state_meta"))
            held: HeldKeys = defaultdict(list)
            for row in active:
                target = (row["database_name"], row["table_name"])
                if row["row_key"] is not None:
                    held[target].append((int(row["row_key"]),))
                    continue
                assert hmac_key is not None
                try:
                    held[target].append(unseal(hmac_key, *target, row["row_key_sealed"] or ""))
                except (ValueError, KeyError, TypeError):
                    raise ConfigError(
                        f"sweep.hash_key_env: hold {row['id']} does not open with the key in "
                        f"{config.sweep.hash_key_env} (another key, or an altered state "
                        "database); nothing was done"
                    ) from None
            return dict(held)
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(
            f"sweep.state_url: cannot read holds from the state database "
            f"({type(exc.orig).__name__})"
        ) from None
    finally:
        if own:
            engine.dispose()


def _opening_key(config: Config, connection: sa.Connection, has_meta: bool) -> bytes:
    """The key the holds are sealed with: the hash key, checked against the state
    database's key check value if it has one — or, between setting a new key and
    `audit rotate-key`, the old key in GDPR_SWEEP_OLD_KEYS that the check names."""
    hmac_key = hash_key(config)
    if has_meta:
        recorded = connection.execute(
            sa.select(state_meta.c.value).where(state_meta.c.name == "key_check")
        ).scalar()
        if recorded is not None and recorded != key_check_value(hmac_key):
            for old in keyring(config)[1:]:
                if key_check_value(old) == recorded:
                    return old
            raise ConfigError(
                f"sweep.hash_key_env: {config.sweep.hash_key_env} does not match this state "
                f"database (its holds were sealed with another key, not in {OLD_KEYS_ENV}); "
                "nothing was done"
            )
    return hmac_key
