"""Legal holds: single rows that no rule and no erasure may touch while the hold lasts.

A hold names a database, a table and one row by its whole primary key, with who, why,
since when and (optionally) until when; a hold with `until` lapses by itself after that
local date. Holds live in the state database. The sweep and erasure read the active
holds once, at their as-of, and exclude the held keys in SQL (`held_predicate`),
reporting them as held. Four things make a hold hold:

- **The table's name is the one the rules use.** Rules and erasure look holds up by
  `hold_name()` of the reflected table: `cctv`, not `public.cctv` (PostgreSQL),
  `main.cctv` (SQLite) or `<database>.cctv` (MariaDB). `hold add` turns a name
  qualified with the default schema into the bare name, keeps any other schema, and
  refuses (exit 2) a name it cannot find — a hold stored under another spelling would
  be silently ignored and the row swept.
- **It is written under the sweep lock.** A sweep reads the holds once, when it starts;
  a hold written while it runs would only count from the next run. So `hold add` (and
  `hold release`) take the sweep lock too: exit 4 while a sweep runs, or wait for it
  with `--wait-lock`. The row's existence is checked again under the lock.
- **The key matches exactly.** Any key type (integer, text, UUID, date, composite) is
  converted to the column's type and bound as a parameter, and compared with
  `matching.equals`, so `'Anna@x'` never holds (or is found as) `'anna@x'` under a
  case-insensitive MariaDB or SQLite collation.
- **A key that may be personal is never stored readable.** A single integer key is
  stored in clear (`row_key`), as before. Any other key (an e-mail address, a UUID, a
  composite) is sealed: AES-256-GCM under a key derived from the hash key (HKDF-SHA256
  with its own label, so it is never the HMAC key itself), a random 96-bit nonce per
  hold, and the database and table as associated data (a sealed key copied onto
  another hold does not open). It is opened only to bind it; `hold list` and the audit
  trail show it only as its keyed-hash label (`keys.key_label`), the same label the
  sweep's batch entries use. A bare hash would not do: the sweep must bind the value
  itself, and a hash of a guessable key (an e-mail address) is only as secret as the key.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import getpass
import json
import os
import re
import socket
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.sql.elements import ColumnElement

from .catalog import Catalog, partition_message, qualified_name, split_name
from .config import Config, state_url
from .engines import TargetDatabase, select_databases
from .errors import ConfigError, DatabaseUnavailable, SchemaError, UsageError
from .keys import OLD_KEYS_ENV, hash_key, key_label, keyring
from .matching import equals, in_values
from .state.lock import Stoppable, sweep_lock
from .state.models import holds as holds_table
from .state.models import state_meta
from .state.store import StateStore, key_check_value, utc_now

MAX_REASON = 500

#: Active holds by (database, qualified table name): each held row's primary key, as a
#: tuple of every key column's value in key order (opened, ready to bind).
HeldKeys = dict[tuple[str, str], list[tuple[Any, ...]]]


def held_predicate(
    table: sa.Table, key_columns: Sequence[sa.Column], keys: Sequence[tuple[Any, ...]], dialect: str
) -> ColumnElement[bool] | None:
    """Rows of `table` whose primary key is one of the held `keys` (None: no keys).

    Exact on every engine (`matching`): a collation never widens it to another row.
    And 2-valued: key columns are never NULL, so `NOT held` is exactly the rows that
    are not held (the rule's `due` is `candidate AND NOT (... OR held)`). A held key
    that no longer fits the table's primary key (the key was changed since) refuses
    the table rather than let the hold quietly stop holding.
    """
    wanted = list(dict.fromkeys(tuple(k) for k in keys))
    if not wanted:
        return None
    columns = list(key_columns)
    if not columns or any(len(k) != len(columns) for k in wanted):
        raise SchemaError(
            f"holds: a hold on {qualified_name(table)} names a key of another shape than the "
            f"table's primary key ({', '.join(c.name for c in columns) or 'none'}); release "
            "it (gdpr-sweep hold list / hold release) and hold the row again"
        )
    if len(columns) == 1:
        return in_values(columns[0], [k[0] for k in wanted], dialect)
    return sa.or_(
        *(
            sa.and_(*(equals(c, v, dialect) for c, v in zip(columns, key, strict=True)))
            for key in wanted
        )
    )


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


# --- sealing a key that may be personal ---------------------------------------------------

_SEAL_VERSION = "v1"
_SEAL_INFO = b"gdpr-sweep hold key v1"  # HKDF label: this key encrypts holds, nothing else
_NONCE_BYTES = 12


def _cipher(secret: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(secret)
    return AESGCM(derived)


def _associated(database: str, table: str) -> bytes:
    return "\x1f".join(("gdpr-sweep hold", database, table)).encode("utf-8")


def _encode(value: Any) -> list[str]:
    """One key value as [type, text], so it is bound with the type it was checked with."""
    if isinstance(value, bool):
        raise TypeError("a boolean primary key")
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if isinstance(value, dt.datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, dt.date):
        return ["date", value.isoformat()]
    if isinstance(value, dt.time):
        return ["time", value.isoformat()]
    if isinstance(value, decimal.Decimal):
        return ["decimal", str(value)]
    if isinstance(value, str):
        return ["str", value]
    raise TypeError(type(value).__name__)


_DECODERS: dict[str, Any] = {
    "int": int,
    "uuid": uuid.UUID,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": decimal.Decimal,
    "str": str,
}


def seal(secret: bytes, database: str, table: str, values: tuple[Any, ...]) -> str:
    """Encrypt a key for the state database: `v1:` + base64url(nonce + ciphertext + tag)."""
    plaintext = json.dumps([_encode(v) for v in values], separators=(",", ":")).encode("utf-8")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(secret).encrypt(nonce, plaintext, _associated(database, table))
    return f"{_SEAL_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(secret: bytes, database: str, table: str, sealed: str) -> tuple[Any, ...]:
    """Open a sealed key; ValueError if it does not open with this secret for this table."""
    version, _, body = sealed.partition(":")
    if version != _SEAL_VERSION:
        raise ValueError(f"unknown sealed-key format {version!r}")
    try:
        raw = base64.urlsafe_b64decode(body.encode("ascii"))
        plaintext = _cipher(secret).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(database, table)
        )
    except (InvalidTag, ValueError):
        raise ValueError("the sealed key does not open with this hash key") from None
    return tuple(_DECODERS[kind](text) for kind, text in json.loads(plaintext))


# --- naming the row ---------------------------------------------------------------------


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


def hold_name(catalog: Catalog, table: sa.Table) -> str:
    """The name holds on a reflected table are stored under: `public.t` (a rule that
    spells out the default schema) is `t`, as `hold add` stores it (`resolve_table`)."""
    if table.schema is not None and table.schema == catalog.inspector.default_schema_name:
        return table.name
    return qualified_name(table)


def resolve_table(catalog: Catalog, database: str, name: str) -> sa.Table:
    """The reflected table `name`, under the name the rules use (else exit 2).

    A name qualified with the connection's default schema (`public.t`, `main.t`, the
    MariaDB database itself) is the bare name, because a rule's `table = "t"` reflects
    without a schema and holds are looked up by `qualified_name()` of that table.
    """
    schema, bare = split_name(name)
    malformed = not bare or ("." in name and schema is None)  # "t." or ".t"
    if schema is not None and schema == catalog.inspector.default_schema_name:
        name = bare
    parent = None if malformed else catalog.partition_parent(name)
    if parent is not None:  # a hold on a partition's row is a hold on the parent's row
        raise UsageError(f"--table: {partition_message(name, parent)}")
    table = None if malformed else catalog.table(name)
    if table is None:
        raise UsageError(f"--table: database {database} has no table {name!r}")
    return table


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _typed(column: sa.Column, text: str) -> Any:
    """The CLI's text as a value of the column's type (never quoted back: it may be personal)."""
    kind = column.type
    problem = f"--key: {column.name} needs"
    try:
        if isinstance(kind, sa.Boolean):
            pass
        elif isinstance(kind, sa.Integer):
            if not _INTEGER.fullmatch(text.strip()):
                raise ValueError
            return int(text)
        elif isinstance(kind, sa.Uuid):
            value = uuid.UUID(text)
            return value if kind.as_uuid else str(value)
        elif isinstance(kind, (sa.String, sa.Text, sa.Enum)):
            return text  # exactly as given: case, accents and spaces count
        elif isinstance(kind, sa.DateTime):
            return dt.datetime.fromisoformat(text)
        elif isinstance(kind, sa.Date):
            return dt.date.fromisoformat(text)
        elif isinstance(kind, sa.Time):
            return dt.time.fromisoformat(text)
        elif isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
            return decimal.Decimal(text)
    except (ValueError, decimal.InvalidOperation):
        raise UsageError(f"{problem} {_expected(kind)}; the value given is not one") from None
    raise UsageError(
        f"--key: holds cannot match key column {column.name} of type {kind} exactly; "
        "hold a row of a table keyed by integers, text, UUIDs, dates or decimals"
    )


def _expected(kind: Any) -> str:
    if isinstance(kind, sa.Integer):
        return "an integer"
    if isinstance(kind, sa.Uuid):
        return "a UUID"
    if isinstance(kind, sa.DateTime):
        return "an ISO 8601 timestamp"
    if isinstance(kind, sa.Date):
        return "a date (YYYY-MM-DD)"
    if isinstance(kind, sa.Time):
        return "a time (HH:MM:SS)"
    return "a decimal number"


def _key_values(table: sa.Table, columns: Sequence[sa.Column], given: Sequence[str]) -> tuple:
    """The key named by `--key`: `VALUE` for a one-column key, else `COL=VALUE` per column.

    A one-column key may be given as `COL=VALUE` too (so a value that itself starts
    with `COL=` is given as `COL=COL=...`). Errors name the key columns, never a value.
    """
    names = [c.name for c in columns]
    listed = ", ".join(names)
    if len(columns) == 1:
        if len(given) != 1:
            raise UsageError(
                f"--key: {qualified_name(table)} has a one-column key ({listed}); give --key once"
            )
        text = given[0]
        if text.startswith(f"{names[0]}="):
            text = text[len(names[0]) + 1 :]
        return (_typed(columns[0], text),)
    how = f"give --key COL=VALUE once for each key column of {qualified_name(table)}: {listed}"
    texts: dict[str, str] = {}
    for item in given:
        name, sep, text = item.partition("=")
        if not sep or name not in names:
            raise UsageError(f"--key: {how}")
        if name in texts:
            raise UsageError(f"--key: {name} given twice; {how}")
        texts[name] = text
    missing = [n for n in names if n not in texts]
    if missing:
        raise UsageError(f"--key: no value for {', '.join(missing)}; {how}")
    return tuple(_typed(c, texts[c.name]) for c in columns)


def _label_text(values: tuple[Any, ...]) -> str:
    """The key as text, the way the sweep's audit entries write a batch's key."""
    return str(values[0]) if len(values) == 1 else "(" + ", ".join(map(str, values)) + ")"


@dataclass(frozen=True)
class _Row:
    """The row a hold names, found in the target database."""

    table: str  # the canonical name (as the rules look it up)
    values: tuple[Any, ...]
    personal: bool


def _find_row(target: TargetDatabase, table: str, given: Sequence[str]) -> _Row:
    """Resolve the table and key and check the row exists, exactly; else exit 2."""
    from .execute import is_personal_key  # execute imports rules, which imports holds

    database = target.name
    try:
        with target.read_only() as connection:
            catalog = Catalog(connection)
            reflected = resolve_table(catalog, database, table)
            columns = list(catalog.primary_key_columns(reflected))
            name = qualified_name(reflected)
            if not columns:
                raise UsageError(
                    f"--table: {name} in database {database} has no primary key; holds name "
                    "a row by it"
                )
            values = _key_values(reflected, columns, given)
            personal = is_personal_key(columns)
            match = held_predicate(reflected, columns, [values], catalog.dialect)
            assert match is not None
            found = connection.execute(
                sa.select(sa.literal(1)).select_from(reflected).where(match).limit(1)
            ).first()
    except sa.exc.DBAPIError as exc:
        # The driver's text may quote the key: name only the kind of failure.
        raise DatabaseUnavailable(
            f"database {database}: cannot look the row up ({type(exc.orig).__name__})"
        ) from None
    if found is None:
        which = "with that key (matched exactly)" if personal else _label_text(values)
        raise UsageError(f"--key: {name} in database {database} has no row {which}")
    return _Row(name, values, personal)


# --- commands ---------------------------------------------------------------------------


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
    """Record a hold on one existing row, under the sweep lock.

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
    secret = hash_key(config)
    (target,) = select_databases(config, [database])
    try:
        _find_row(target, table, given)
    finally:
        target.dispose()
    with StateStore(config, secret) as store:
        store.check_key()  # before the hold is written, not only before the audit entry
        with sweep_lock(store.engine, store.url, wait=wait, stop=stop):
            try:
                row = _find_row(target, table, given)
            finally:
                target.dispose()
            single_integer = not row.personal and len(row.values) == 1
            label = key_label(secret, _label_text(row.values), row.personal)[:128]
            with store.engine.begin() as connection:
                hold_id = connection.execute(
                    holds_table.insert().values(
                        database_name=database,
                        table_name=row.table,
                        row_key=row.values[0] if single_integer else None,
                        row_key_sealed=None
                        if single_integer
                        else seal(secret, database, row.table, row.values),
                        row_key_label=label,
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
                table=row.table,
                key_to=label,
                details={"hold": hold_id, "until": until_date},
            )
            store.finish_run(run_id, "completed", {"hold": hold_id})
        return _load(store, int(hold_id))


def release_hold(
    config: Config, hold_id: int, *, wait: float | None = None, stop: Stoppable | None = None
) -> Hold:
    """End a hold, under the sweep lock (a running sweep keeps honouring it until done)."""
    with StateStore(config, hash_key(config)) as store:
        store.check_key()
        _load(store, hold_id)  # exit 2 for an unknown id before waiting for the lock
        with sweep_lock(store.engine, store.url, wait=wait, stop=stop):
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


def active_holds(config: Config, day: dt.date) -> HeldKeys:
    """Return the keys held on local date `day`, without creating a state database.

    `plan` reads holds too, and must not create or migrate anything: a state database
    that does not exist yet (or predates holds, or sealed keys) simply has none (or
    only integer ones). Sealed keys are opened here, so a command that honours holds
    needs the hash key once any hold is sealed; another key is refused (exit 2), never
    taken to mean "no holds".
    """
    url = state_url(config)
    is_file_db = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if is_file_db and not Path(str(url.database)).is_file():
        return {}
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
            secret = None
            if any(row["row_key"] is None for row in active):
                secret = _opening_key(config, connection, inspector.has_table("state_meta"))
            held: HeldKeys = defaultdict(list)
            for row in active:
                target = (row["database_name"], row["table_name"])
                if row["row_key"] is not None:
                    held[target].append((int(row["row_key"]),))
                    continue
                assert secret is not None
                try:
                    held[target].append(unseal(secret, *target, row["row_key_sealed"] or ""))
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
        engine.dispose()


def _opening_key(config: Config, connection: sa.Connection, has_meta: bool) -> bytes:
    """The key the holds are sealed with: the hash key, checked against the state
    database's key check value if it has one — or, between setting a new key and
    `audit rotate-key`, the old key in GDPR_SWEEP_OLD_KEYS that the check names."""
    secret = hash_key(config)
    if has_meta:
        recorded = connection.execute(
            sa.select(state_meta.c.value).where(state_meta.c.name == "key_check")
        ).scalar()
        if recorded is not None and recorded != key_check_value(secret):
            for old in keyring(config)[1:]:
                if key_check_value(old) == recorded:
                    return old
            raise ConfigError(
                f"sweep.hash_key_env: {config.sweep.hash_key_env} does not match this state "
                f"database (its holds were sealed with another key, not in {OLD_KEYS_ENV}); "
                "nothing was done"
            )
    return secret
