"""Open target databases: one engine each, with the session settings the sweep relies on;
select them by `--database` and read each in a read-only transaction.

A database that fails is told in one line that never quotes a value read from it
(`describe_failure`, `describe_write_failure`), and every result carries it as one
`DatabaseFailure`, made by `database_failure()` from the exception that ended the work.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypedDict, TypeVar
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from .catalog import Catalog
from .config import Config, DatabaseConfig, database_url
from .errors import DatabaseUnavailable, GdprSweepError, UsageError

T = TypeVar("T")


def _on_connect(dialect: str):
    def configure(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        try:
            if dialect == "sqlite":
                # Deletes must honour declared foreign keys (off by default in SQLite).
                cursor.execute("PRAGMA foreign_keys = ON")
            elif dialect in ("mysql", "mariadb"):
                # TIMESTAMP columns are UTC underneath; read and bind them as UTC
                # (columns.py) whatever the server's default time zone is.
                cursor.execute("SET time_zone = '+00:00'")
        finally:
            cursor.close()

    return configure


def create_target_engine(url: URL) -> Engine:
    """Create an engine for a target database (no connection is made yet)."""
    # No pool pre-ping: it costs a round trip per checkout, and a connection dropped
    # mid-sweep should fail its database cleanly (exit 3), not be papered over.
    kwargs: dict = {}
    if url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10, "application_name": "gdpr-sweep"}
    elif url.get_backend_name() in ("mysql", "mariadb"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    # Statement parameters never reach error messages or tracebacks (--debug): they can
    # be a person's identifier (erase, export) or a value read from a row.
    engine = sa.create_engine(url, hide_parameters=True, **kwargs)
    event.listen(engine, "connect", _on_connect(engine.dialect.name))
    return engine


#: Driver error codes whose first line names only objects (tables, columns, constraints,
#: users, hosts), never a value: that line is kept. Every other statement failure is
#: reported by its class, its code and a generic reason: PostgreSQL's class 22 quotes
#: the value (`invalid input syntax for type uuid: "…"`), MariaDB quotes it in
#: `Duplicate entry '…' for key` and `Incorrect datetime value: '…'`, and a syntax
#: error there quotes the statement with its parameters filled in.
_OBJECTS_ONLY = frozenset(
    {
        # PostgreSQL (SQLSTATE; the values are on the DETAIL line, never kept)
        "23502", "23503", "23505", "23514", "25006", "40001", "40P01", "42501",
        "42P01", "42703", "55P03", "57014",
        # MariaDB (error number)
        "1048", "1054", "1142", "1143", "1146", "1205", "1213", "1451", "1452", "1792",
        "1969",
        # SQLite (extended result code name)
        "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY", "SQLITE_CONSTRAINT_FOREIGNKEY",
        "SQLITE_CONSTRAINT_NOTNULL", "SQLITE_CONSTRAINT_PRIMARYKEY",
        "SQLITE_CONSTRAINT_UNIQUE",
    }
)  # fmt: skip

#: Connection and authentication failures: their text (hosts, users, database names,
#: "Connection refused") is kept, with the URL's password masked.
_CONNECTING_SQLSTATE = ("08", "28", "3D", "53300", "57P")
_CONNECTING_MARIADB = frozenset(
    {"1040", "1044", "1045", "1049", "1129", "1130", "1698", "1927", "2002", "2003", "2005",
     "2006", "2013", "2055", "4031"}
)  # fmt: skip
_CONNECTING_SQLITE = frozenset({"SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_PERM", "SQLITE_AUTH"})

#: A generic reason per code or code class, for a failure whose own text is not kept.
_REASONS = {
    "22001": "a value is too long for its column",
    "22003": "a number is out of range for its column",
    "22007": "a date or time is not valid",
    "22008": "a date or time is out of range",
    "22P02": "a value is not valid for its type",
    "22": "a data exception (a value not valid for its type or out of range)",
    "23": "an integrity constraint is violated",
    "25": "invalid transaction state",
    "40": "the transaction was rolled back by the server",
    "42": "an error in the statement or a missing privilege",
    "53": "the server is out of resources",
    "54": "a limit of the server was exceeded",
    "55": "an object is not in the state the statement needs",
    "57": "the statement was cancelled or the server is shutting down",
    "45": "an error raised by a trigger or procedure (SIGNAL)",
    "P0": "an error raised by a trigger or function",
    "1062": "a unique key would be duplicated",
    "4025": "a check constraint is violated",
    "1064": "an error in the statement",
    "1264": "a number is out of range for its column",
    "1292": "a value is not valid for its column",
    "1366": "a value is not valid for its column",
    "1406": "a value is too long for its column",
    "SQLITE_CONSTRAINT": "a constraint is violated",
    "SQLITE_ERROR": "an error in the statement, or a missing table or column",
    "SQLITE_MISMATCH": "a value does not match its column's type",
    "SQLITE_TOOBIG": "a value is too big",
}


def _sqlstate(orig: BaseException) -> str | None:
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return sqlstate if isinstance(sqlstate, str) and sqlstate.isalnum() else None


def _driver_code(orig: BaseException) -> str | None:
    """The driver's error code: MariaDB's error number (its SQLSTATEs are coarse: 23000
    for every integrity error), else the SQLSTATE, else SQLite's result code name."""
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return str(args[0])  # PyMySQL: (number, message)
    sqlstate = _sqlstate(orig)
    if sqlstate is not None:
        return sqlstate
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str) and name.replace("_", "").isalnum():
        return name
    return None


def _first_line(orig: BaseException) -> str:
    args: tuple[object, ...] = getattr(orig, "args", ())
    # PyMySQL's str() is the tuple `(1146, "Table 'x' doesn't exist")`: take the message.
    text = str(args[1]) if len(args) > 1 and isinstance(args[0], int) else str(orig)
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _is_connecting(exc: BaseException, code: str | None) -> bool:
    """Did the driver fail to reach or log in to the server (rather than run a statement)?"""
    if code is None:
        # No code: the driver's own connection failures (psycopg's "connection failed:
        # …"), whatever SQLAlchemy wrapped as operational or interface errors.
        return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
    sqlstate = _sqlstate(getattr(exc, "orig", None) or exc)
    return (
        code.startswith(_CONNECTING_SQLSTATE)
        or (sqlstate is not None and sqlstate.startswith(_CONNECTING_SQLSTATE))
        or code in _CONNECTING_MARIADB
        or code in _CONNECTING_SQLITE
    )


def _reason(code: str | None, sqlstate: str | None) -> str:
    """A generic reason: by the code, SQLite's primary result code, or SQLSTATE's class."""
    if code is None:
        return ""
    keys = [code, "_".join(code.split("_")[:2])]
    if sqlstate is not None:
        keys += [sqlstate, sqlstate[:2]]
    return next((_REASONS[k] for k in keys if k in _REASONS), "")


def describe_write_failure(exc: BaseException) -> str:
    """Name a failed statement by its class, code and a reason, never its own text
    where that may quote a value.

    MariaDB's "Duplicate entry 'x' for key", PostgreSQL's `invalid input syntax for
    type uuid: "x"` and its DETAIL lines carry values: only the first line of a code
    known to name objects alone (a table, a column, a constraint) is kept.
    """
    orig = getattr(exc, "orig", None) or exc
    code = _driver_code(orig)
    label = type(orig).__name__ + (f" {code}" if code else "")
    reason = _first_line(orig)[:160] if code in _OBJECTS_ONLY else _reason(code, _sqlstate(orig))
    return f"the statement failed ({label}{': ' + reason if reason else ''})"


def describe_failure(exc: BaseException, url: URL) -> str:
    """One line for a failed connection or statement, with the URL's password masked.

    A connection failure keeps the driver's reason ("Connection refused", "password
    authentication failed for user …"): it names hosts, users and databases, no row's
    value. A failed statement is described as describe_write_failure() does: its
    text can quote the person's identifier or a row's value.
    """
    orig = getattr(exc, "orig", None) or exc
    if not _is_connecting(exc, _driver_code(orig)):
        return mask_url(describe_write_failure(exc), url)[:200]
    reason = str(orig).strip().splitlines()
    text = reason[0] if reason else type(exc).__name__
    return mask_url(text, url)[:200]


def mask_url(text: str, url: URL) -> str:
    """Mask the URL's password in `text`, as SQLAlchemy renders a URL with it hidden.

    The URL itself, written out with its password, becomes its hidden rendering, and so
    does each `user:password@` form; the password on its own is masked only where it
    stands as a whole token (`password=pw`, `'pw'`), never inside a word: a password or
    user `u` must not turn "Connection refused" into "Connection ref***sed". A user
    name alone is not a secret and is kept.
    """
    if not url.password:
        return text
    text = text.replace(
        url.render_as_string(hide_password=False), url.render_as_string(hide_password=True)
    )
    # `user:password@` as SQLAlchemy writes it (its own quoting of special characters).
    auth = URL.create("x", username=url.username, password=url.password)
    text = text.replace(
        auth.render_as_string(hide_password=False).removeprefix("x://"),
        auth.render_as_string(hide_password=True).removeprefix("x://"),
    )
    password = str(url.password)
    spellings = sorted({password, quote(password, safe=""), quote_plus(password)}, key=len)
    for spelling in reversed(spellings):  # longest first: one may contain another
        # A whole token: also `user:pw@host` (the user kept) and `password=pw`.
        text = re.sub(rf"(?<!\w){re.escape(spelling)}(?!\w)", "***", text)
    return text


class DatabaseFailure(TypedDict):
    """A database whose work failed, and why in one line (no password, no row's value).

    A dict, as the results print and record it: `{"database": …, "error": …}` in the
    JSON of plan, run, export and replay; `error` names the database already.
    """

    database: str
    error: str


def database_failure(
    target: TargetDatabase, exc: BaseException, *, writing: bool = False
) -> DatabaseFailure:
    """The failure of `target` that `exc` stands for.

    Our own errors (a database unreachable, a schema that does not match) pass through
    as they are: they name the database. Anything else — a driver's error — is
    described without its text where that may quote a value: as `describe_failure`
    does (the connection's reason kept, the password masked), or, for a database being
    changed (`writing`), as `describe_write_failure` does.
    """
    if isinstance(exc, GdprSweepError):
        return DatabaseFailure(database=target.name, error=str(exc))
    reason = describe_write_failure(exc) if writing else describe_failure(exc, target.url)
    return DatabaseFailure(database=target.name, error=f"database {target.name}: {reason}")


class TargetDatabase:
    """A configured database with its engine, opened on first use."""

    def __init__(self, config: Config, db: DatabaseConfig) -> None:
        self.config = config
        self.db = db
        self.name = db.name
        self.url = database_url(config, db)
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_target_engine(self.url)
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """Connect, turning a connection failure into DatabaseUnavailable naming the database."""
        if self.url.get_backend_name() == "sqlite":
            path = self.url.database or ""
            is_file_path = path not in ("", ":memory:") and not path.startswith("file:")
            if is_file_path and not Path(path).is_file():
                # Connecting would create an empty file: a typo must not do that.
                raise DatabaseUnavailable(f"database {self.name}: no SQLite file {path!r}")
        try:
            connection = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise DatabaseUnavailable(
                f"database {self.name}: cannot connect ({describe_failure(exc, self.url)})"
            ) from None
        except sa.exc.ArgumentError as exc:
            raise DatabaseUnavailable(f"database {self.name}: {exc}") from None
        with connection:
            yield connection

    @contextlib.contextmanager
    def read_only(self) -> Iterator[Connection]:
        """Connect in a transaction the engine itself refuses to write in; roll it back.

        Defence in depth for `plan` and `check`: a bug that emitted a write would fail
        instead of changing a target database.
        """
        with self.connect() as connection:
            dialect = connection.dialect.name
            transaction = connection.begin()
            if dialect == "sqlite":
                connection.exec_driver_sql("PRAGMA query_only = ON")
            else:
                # The first statement of the transaction, so it may still set its mode.
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            try:
                yield connection
            finally:
                transaction.rollback()
                if dialect == "sqlite":
                    # Pooled SQLite connections keep pragmas: give it back writable.
                    connection.exec_driver_sql("PRAGMA query_only = OFF")
                    connection.rollback()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def open_targets(config: Config, names: list[str] | None = None) -> list[TargetDatabase]:
    """Return the configured databases (all, or those named), in config order."""
    return [TargetDatabase(config, db) for db in config.databases if not names or db.name in names]


def select_databases(
    config: Config, names: Iterable[str] | None, shard: tuple[int, int] | None = None
) -> list[TargetDatabase]:
    """Return the configured databases, or those named by `--database` (unknown: exit 2);
    with `shard` (I, N), only those of shard I of N (`shards.py`)."""
    wanted = list(names or [])
    known = {db.name for db in config.databases}
    for name in wanted:
        if name not in known:
            raise UsageError(f"--database: no database {name!r} in the config")
    targets = open_targets(config, wanted)
    if shard is None:
        return targets
    from .shards import in_shard

    mine = set(in_shard([t.name for t in targets], shard))
    return [t for t in targets if t.name in mine]


def read_each(
    targets: list[TargetDatabase], read: Callable[[TargetDatabase, Catalog], T]
) -> tuple[list[tuple[TargetDatabase, T]], list[DatabaseFailure]]:
    """Reflect each database in a read-only transaction and apply `read` to it.

    Returns each database read with its result, and the failure of each database that
    could not be reached or read (the others are still read), both in the given order.
    """
    done: list[tuple[TargetDatabase, T]] = []
    failures: list[DatabaseFailure] = []
    for target in targets:
        try:
            with target.read_only() as connection:
                done.append((target, read(target, Catalog(connection))))
        except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
            failures.append(database_failure(target, exc))
        finally:
            target.dispose()
    return done, failures
