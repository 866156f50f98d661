"""Legal holds: single rows that no rule and no erasure may touch while the hold lasts.

A hold names a database, a table and a row's integer primary key, with who, why, since
when and (optionally) until when; a hold with `until` lapses by itself after that local
date. Holds live in the state database. The sweep and erasure read the active holds
once, at their as-of, and exclude the held keys in SQL (`pk NOT IN (...)`), reporting
them as held.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .checks import select_databases
from .config import Config, state_url
from .errors import DatabaseUnavailable, UsageError
from .keys import hash_key
from .schema import Catalog, qualified_name
from .state.models import holds as holds_table
from .state.store import StateStore, utc_now

MAX_REASON = 500

#: Active holds by (database, qualified table name): the held primary keys.
HeldKeys = dict[tuple[str, str], list[int]]


@dataclass(frozen=True)
class Hold:
    id: int
    database: str
    table: str
    key: int
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


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:255]


def _parse_until(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--until: {text!r} is not a date (YYYY-MM-DD)") from None


def add_hold(
    config: Config, database: str, table: str, key: str, reason: str, until: str | None
) -> Hold:
    """Record a hold on one existing row; exit 2 if the row (or table, or database) is not there."""
    until_date = _parse_until(until)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON or not reason.isprintable():
        raise UsageError(f"--reason: give one line of at most {MAX_REASON} characters")
    try:
        row_key = int(key)
    except ValueError:
        raise UsageError("--key: holds name a row by its integer primary key") from None
    (target,) = select_databases(config, [database])
    with target.read_only() as connection:
        catalog = Catalog(connection)
        reflected = catalog.table(table)
        if reflected is None:
            raise UsageError(f"--table: database {database} has no table {table!r}")
        pk = catalog.primary_key(reflected)
        if pk is None or not isinstance(pk.type, sa.Integer):
            raise UsageError(
                f"--table: {table!r} has no single integer primary key; holds name rows by it "
                "(a key that could be personal is never stored)"
            )
        exists = connection.execute(sa.select(sa.literal(1)).where(pk == row_key)).first()
        if exists is None:
            raise UsageError(f"--key: {table!r} in database {database} has no row {row_key}")
        name = qualified_name(reflected)
    target.dispose()
    store = StateStore(config, hash_key(config))
    try:
        store.check_key()  # before the hold is written, not only before the audit entry
        with store.engine.begin() as connection:
            hold_id = connection.execute(
                holds_table.insert().values(
                    database_name=database,
                    table_name=name,
                    row_key=row_key,
                    reason=reason,
                    created_by=_who(),
                    created_at=utc_now(),
                    until=until_date,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        run_id = store.start_run("hold-add", dt.datetime.now(dt.UTC))
        store.append(
            run_id,
            "hold-add",
            database=database,
            table=name,
            key_to=str(row_key),
            details={"hold": hold_id, "until": until_date},
        )
        store.finish_run(run_id, "completed", {"hold": hold_id})
        return _load(store, int(hold_id))
    finally:
        store.close()


def release_hold(config: Config, hold_id: int) -> Hold:
    store = StateStore(config, hash_key(config))
    try:
        store.check_key()
        hold = _load(store, hold_id)
        if hold.released_at is not None:
            raise UsageError(f"ID: hold {hold_id} was already released")
        with store.engine.begin() as connection:
            connection.execute(
                holds_table.update()
                .where(holds_table.c.id == hold_id)
                .values(released_at=utc_now(), released_by=_who())
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
    finally:
        store.close()


def list_holds(config: Config) -> list[Hold]:
    store = StateStore(config, None)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(sa.select(holds_table).order_by(holds_table.c.id))
            return [_hold(row) for row in rows.mappings()]
    finally:
        store.close()


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
    return Hold(
        id=row["id"],
        database=row["database_name"],
        table=row["table_name"],
        key=int(row["row_key"]),
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        until=row["until"],
        released_at=row["released_at"],
        released_by=row["released_by"],
    )


def active_holds(config: Config, day: dt.date) -> HeldKeys:
    """Return the keys held on local date `day`, without creating a state database.

    `plan` reads holds too, and must not create or migrate anything: a state database
    that does not exist yet (or predates holds) simply has none.
    """
    url = state_url(config)
    is_file_db = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if is_file_db and not Path(str(url.database)).is_file():
        return {}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("holds"):
                return {}
            active: HeldKeys = defaultdict(list)
            rows = connection.execute(
                sa.select(holds_table).where(holds_table.c.released_at.is_(None))
            ).mappings()
            for row in rows:
                hold = _hold(row)
                if hold.active_on(day):
                    active[(hold.database, hold.table)].append(hold.key)
            return dict(active)
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(
            f"sweep.state_url: cannot read holds from the state database "
            f"({type(exc.orig).__name__})"
        ) from None
    finally:
        engine.dispose()
