"""Write the demo's files: the SQLite database (built once, for a day) and its config."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, insert

from ..errors import UsageError
from .config import CONFIG_NAME, demo_config_text
from .rows import DemoData
from .tables import demo_metadata

DB_NAME = "demo.db"
#: The demo's own hash key (owner-only): for the made-up people of demo.db, never real data.
KEY_NAME = "demo.key"


def build_demo_database(db_path: Path, today: dt.date) -> None:
    """Build the demo SQLite database at `db_path` (replacing it) with data relative to `today`.

    The file is written under a temporary name in the same directory and renamed into
    place at the end, so an interrupted build never leaves half a database behind.
    """
    db_path = Path(db_path)
    rows = DemoData(today).build()
    metadata = demo_metadata()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".tmp", dir=db_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        engine = create_engine(f"sqlite:///{tmp}")
        try:
            with engine.begin() as conn:
                metadata.create_all(conn)
                for table in metadata.sorted_tables:
                    if rows[table.name]:
                        conn.execute(insert(table), rows[table.name])
                # The day the rows are relative to, so a later `demo` can say so.
                conn.exec_driver_sql(f"PRAGMA user_version = {today:%Y%m%d}")
        finally:
            engine.dispose()
        os.replace(tmp, db_path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def built_for(db_path: Path) -> dt.date | None:
    """Return the day an existing demo database was built for (None if unknown)."""
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            stamp = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
    finally:
        engine.dispose()
    try:
        return dt.datetime.strptime(str(stamp), "%Y%m%d").date()
    except ValueError:
        return None


def write_demo_key(key_path: Path) -> None:
    """Create (if missing) the demo-only hash key: random, readable by its owner only.

    The tour sets the hash key variable from it (`run`, `erase`, a plan file need one);
    an existing key is kept, so the demo's audit trail keeps verifying.
    """
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"demo-only-{secrets.token_urlsafe(24)}\n")


def write_demo(directory: Path, today: dt.date | None = None) -> tuple[Path, Path]:
    """Create (if missing) DIR/demo.db, DIR/gdpr-sweep.toml and DIR/demo.key; return
    (config, database).

    The rows are relative to `today` (default: the local date now), so that at that
    day every rule has due and not-due rows. An existing file is never overwritten, so
    running it again is safe and keeps a demo database that has already been swept.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"DIRECTORY: {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"DIRECTORY: cannot create {directory} ({exc.strerror})") from None
    config_path, db_path = directory / CONFIG_NAME, directory / DB_NAME
    if not db_path.exists():
        build_demo_database(db_path, today or dt.date.today())
    if not config_path.exists():
        with contextlib.suppress(FileExistsError), config_path.open("x", encoding="utf-8") as f:
            f.write(demo_config_text())
    write_demo_key(directory / KEY_NAME)
    return config_path, db_path
