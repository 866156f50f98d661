"""Open target databases: one engine each, with the session settings the sweep relies on."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from .config import Config, DatabaseConfig, database_url
from .errors import DatabaseUnavailable


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


def describe_write_failure(exc: BaseException) -> str:
    """Name a failed statement without its message, which may quote a row's values.

    MariaDB's "Duplicate entry 'x' for key" and PostgreSQL's DETAIL lines carry
    values; while writing personal data only the error's class and code are safe.
    """
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlstate", None) or (orig.args[0] if getattr(orig, "args", None) else "")
    code_text = f" {code}" if isinstance(code, (int, str)) and str(code).isalnum() else ""
    return f"the statement failed ({type(orig).__name__}{code_text})"


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


def describe_failure(exc: BaseException, url: URL) -> str:
    """Return the driver's reason in one line, with the URL's password masked."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = reason[0] if reason else type(exc).__name__
    return mask_url(text, url)[:200]


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
