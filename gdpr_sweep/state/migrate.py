"""Upgrade the state database to the newest Alembic revision, from code.

Alembic (with Mako) costs a tenth of a second to import, on every command; so the
stamped revision is read with plain SQL first, and Alembic is imported only when the
database is behind `HEAD` (a test keeps `HEAD` equal to the newest migration).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

#: The newest revision in migrations/versions (checked by a test).
HEAD = "0009"


def script_location() -> Path:
    """The migrations folder: inside the wheel, or at the top of a source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError("the gdpr-sweep migrations folder is missing from this installation")


def alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision according to the migration scripts themselves."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def upgrade(
    engine: sa.Engine, lock: Callable[[], AbstractContextManager[None]] | None = None
) -> None:
    """Bring the state database to head (a no-op when it is already there).

    `lock`: the migration lock (`LockSpace.migration`): processes starting at once on
    a new state database migrate one at a time; the others, once they hold it, find
    the database at head (read again under the lock) and do nothing.
    """
    with engine.connect() as connection:
        if current_revision(connection) == HEAD:
            return
    from alembic import command

    with lock() if lock is not None else contextlib.nullcontext():
        with engine.connect() as connection:
            if current_revision(connection) == HEAD:
                return
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
