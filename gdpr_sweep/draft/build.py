"""`gdpr-sweep init`: reflect a live database (read-only) and draft its config.

`draft_source` reads `--url` / `--url-env` into where to connect and what the draft
may say about it: a SQLite file as `url` (it holds no secret), anything else only as
`url_env` — the variable given, or for `--url` one named after the database
(`SHOP_DB_URL`), which the command tells the user to set. `draft_config` connects in a
read-only transaction, classifies every table (facts.py), chooses the subject
(subject.py) and the rule stubs (rules.py) and writes the text (toml_text.py).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from ..catalog import Catalog
from ..config import (
    TODO,
    Config,
    DatabaseConfig,
    SweepSettings,
    find_todos,
    parse_config,
    resolve_url,
)
from ..engines import TargetDatabase
from ..errors import ConfigError, UsageError
from .facts import table_facts, table_names
from .rules import draft_rules
from .subject import draft_subject
from .toml_text import DraftDocument, draft_text

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class DraftSource:
    """Where `init` connects, and how the draft names that database."""

    url: URL
    name: str  # [databases.NAME]
    url_text: str | None  # written as `url` (a SQLite file)
    url_env: str | None  # written as `url_env`
    env_to_set: str | None  # a variable the user must set (chosen for --url)


@dataclass(frozen=True)
class Draft:
    text: str
    document: DraftDocument
    todos: list[str]
    env_to_set: str | None


def _database_name(url: URL) -> str:
    raw = url.database or ""
    if url.get_backend_name() == "sqlite":
        raw = Path(raw).stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", raw).strip("_.-")[:62]
    return name if name[:1].isalnum() else "main"


def _sqlite_url(url: URL, out: Path) -> str:
    """The SQLite file as the config's `url`, relative to the config file where it is below
    it (the config resolves relative paths from its own directory), else absolute."""
    path = Path(url.database or "").resolve()
    base = out.expanduser().resolve().parent
    shown = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
    # A URL's database is percent-decoded, and "?" starts its query: escape both, so
    # the config opens this file (`we?ird.db`, `100%.db`), not another.
    return "sqlite:///" + shown.replace("%", "%25").replace("?", "%3F")


def draft_source(url: str | None, url_env: str | None, out: Path) -> DraftSource:
    """Read `--url` / `--url-env` (exactly one), never repeating the URL in an error."""
    if (url is None) == (url_env is None):
        raise UsageError("give exactly one of --url URL or --url-env VAR")
    if url_env is not None:
        if not _ENV_RE.match(url_env):
            raise UsageError(f"--url-env: {url_env!r} is not an environment variable name")
        url = os.environ.get(url_env)
        if not url:
            raise UsageError(f"--url-env: environment variable {url_env} is not set")
    assert url is not None
    option = "--url" if url_env is None else f"--url-env ({url_env})"
    # The variable is read again by the config, which takes a relative SQLite path from
    # its own directory: read it the same way here (--url is rewritten for the file).
    base = Path.cwd() if url_env is None else out.expanduser().resolve().parent
    try:
        parsed = resolve_url(url, option, base)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise UsageError(
            f"{option}: {parsed.get_backend_name()!r} is no engine gdpr-sweep sweeps: use "
            "postgresql+psycopg://, mysql+pymysql:// or sqlite:///"
        )
    if parsed.get_backend_name() in ("mysql", "mariadb") and not parsed.database:
        raise UsageError(f"{option}: name the database (mysql+pymysql://USER@HOST/DATABASE)")
    name = _database_name(parsed)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise UsageError(f"{option}: name a SQLite file, not an in-memory database")
        if Path(parsed.database).resolve() == out.expanduser().resolve():
            raise UsageError(f"--out: {str(out)!r} is the database itself; name another file")
        if url_env is None:
            return DraftSource(parsed, name, _sqlite_url(parsed, out), None, None)
        return DraftSource(parsed, name, None, url_env, None)
    if url_env is not None:
        return DraftSource(parsed, name, None, url_env, None)
    chosen = re.sub(r"[^A-Z0-9_]", "_", name.upper()) + "_DB_URL"
    if not _ENV_RE.match(chosen):  # "1SHOP_DB_URL": no shell can set it, nor --url-env
        chosen = "DB_" + chosen
    return DraftSource(parsed, name, None, chosen, chosen)


def _schemas(catalog: Catalog, schemas: list[str]) -> list[str]:
    if not schemas:
        return []
    if catalog.dialect != "postgresql":
        raise UsageError("--schema: only PostgreSQL databases have schemas to choose")
    for schema in schemas:
        if not catalog.has_schema(schema):
            raise UsageError(f"--schema: no schema {schema!r} in the database")
    return list(dict.fromkeys(schemas))


def draft_config(source: DraftSource, schemas: list[str] | None = None) -> Draft:
    """Reflect the database in a read-only transaction and draft its config."""
    settings = SweepSettings()
    database = DatabaseConfig(source.name, url=source.url.render_as_string(hide_password=False))
    config = Config(Path.cwd() / "init.toml", settings, (database,), ())
    target = TargetDatabase(config, database)
    try:
        with _driver_installed(source.url), target.read_only() as connection:
            catalog = Catalog(connection)
            skipped: list[str] = []
            names = table_names(catalog, _schemas(catalog, list(schemas or [])), skipped)
            facts = [f for f in (table_facts(catalog, n) for n in names) if f is not None]
            subject = draft_subject(catalog, facts)
            skipped += [
                f"{f.name}: personal-looking columns but no primary key (rules sweep by key)"
                for f in facts
                if f.is_personal and not f.has_key
            ]
            rules = draft_rules(catalog, facts, settings.tz, skipped)
    finally:
        target.dispose()
    document = DraftDocument(
        source.name,
        source.url_text,
        source.url_env,
        _engine_label(source.url),
        len(facts),
        subject,
        rules,
        skipped,
    )
    text = draft_text(document)
    data = tomllib.loads(text)
    _valid_once_answered(data)
    return Draft(text, document, find_todos(data), source.env_to_set)


#: What a person might answer, to see that the rest of the draft is a valid config.
_SAMPLE_ANSWERS = {"after": "1 year", "basis": "answered", "since": "answered"}


def _valid_once_answered(data: dict) -> None:
    """The draft with its TODOs answered must be a valid config: else it is our bug."""
    answered = copy.deepcopy(data)
    for rule in answered.get("rules", []):
        for key, value in _SAMPLE_ANSWERS.items():
            if rule.get(key) == TODO:
                rule[key] = value
    try:
        parse_config(answered, Path.cwd() / "draft.toml")
    except ConfigError as exc:
        raise AssertionError(f"the draft is no valid config: {exc}") from None


@contextlib.contextmanager
def _driver_installed(url: URL) -> Iterator[None]:
    """A URL whose driver is not installed is bad usage (exit 2), not a bug."""
    try:
        yield
    except ModuleNotFoundError:
        raise UsageError(
            f"no driver installed for {url.drivername!r}: use postgresql+psycopg://, "
            "mysql+pymysql:// or sqlite:///"
        ) from None


def _engine_label(url: URL) -> str:
    backend = url.get_backend_name()
    return {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL", "mariadb": "MariaDB"}.get(
        backend, "SQLite" if backend == "sqlite" else backend
    )
