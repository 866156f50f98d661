"""Load the TOML config into frozen dataclasses, validating every key once.

Every error names the key path (`rules[2].after: "6 monts" is not a period`) and is
raised as `ConfigError` (exit 2). Unknown keys are refused with a "did you mean"
suggestion. Nothing here connects to a database: identifiers are checked against the
reflected schema later, by `schema.check_config`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigError
from .periods import (
    FiscalYearEnd,
    Period,
    load_timezone,
    parse_duration,
    parse_fiscal_year_end,
    parse_period,
)

DEFAULT_CONFIG_NAME = "gdpr-sweep.toml"
CALENDAR_YEAR_END = FiscalYearEnd(12, 31)
CONFIG_ENV = "GDPR_SWEEP_CONFIG"

STRATEGIES = ("null", "redact", "hash", "year", "month")
ACTIONS = ("anonymise", "delete")
#: How a clock column that is not a date type is read (`since_format`): seconds or
#: milliseconds since 1970-01-01 UTC, or a Julian day number (UTC, as SQLite's julianday).
SINCE_FORMATS = ("unixepoch", "unixepoch-ms", "julianday")
ERASE_ACTIONS = ("delete", "anonymise", "keep")
REFERENCE_ACTIONS = ("null", "keep", "refuse")

Scalar = str | int | float | bool | dt.date | dt.datetime
Action = Literal["anonymise", "delete"]

_RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_KIND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_MAX_IDENTIFIER = 128


# --- the model -----------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSettings:
    """The `[sweep]` table."""

    state_url: str = "sqlite:///gdpr-sweep-state.db"
    state_url_env: str | None = None  # an env var holding the state URL (with credentials)
    hash_key_env: str = "GDPR_SWEEP_KEY"
    timezone: str = "Europe/Copenhagen"
    fiscal_year_end: FiscalYearEnd = CALENDAR_YEAR_END
    batch_size: int = 5000
    max_fraction: float = 0.5
    # `scan`: more column-name regexes that look personal, and TABLE / TABLE.COLUMN
    # globs known not to be (never reported).
    personal_column_patterns: tuple[str, ...] = ()
    scan_ignore: tuple[str, ...] = ()
    # Per batch, on PostgreSQL and MariaDB: give up rather than stall the application.
    lock_timeout: float | None = None  # seconds
    statement_timeout: float | None = None  # seconds

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class DatabaseConfig:
    """One `[databases.NAME]` entry: where a tenant's database is and who controls it."""

    name: str
    url: str | None = None
    url_env: str | None = None
    controller: str | None = None


@dataclass(frozen=True)
class SinceLatest:
    """`since_latest`: the clock is the latest `column` in `table` whose `key` points at the row."""

    table: str
    column: str
    key: str


@dataclass(frozen=True)
class Rule:
    """One `[[rules]]` entry."""

    id: str
    table: str
    action: Action
    after: Period
    databases: tuple[str, ...] = ("*",)
    since: str | None = None
    since_latest: SinceLatest | None = None
    since_format: str | None = None  # None: the clock columns hold dates or timestamps
    from_fiscal_year_end: bool = False
    basis: str | None = None
    description: str | None = None
    only: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()
    unless_after: str | None = None
    unless_true: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    cascade: tuple[str, ...] = ()
    index: int = 0  # position in the file, for key paths in messages

    @property
    def key(self) -> str:
        return f"rules[{self.index}]"

    def applies_to(self, database: str) -> bool:
        return "*" in self.databases or database in self.databases


@dataclass(frozen=True)
class SubjectLink:
    """A `[[subject.links]]` entry: a reference the schema does not declare."""

    table: str
    column: str
    references_table: str
    references_column: str
    only: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()
    index: int = 0


@dataclass(frozen=True)
class SubjectReference:
    """A `[[subject.references]]` entry: a foreign key between two people, not ownership.

    `action` says what erasing the referred person does to the other people's rows
    that point at them: "null" their reference, "keep" it, or "refuse" the database.
    """

    table: str
    column: str
    action: Literal["null", "keep", "refuse"] = "null"
    index: int = 0


@dataclass(frozen=True)
class EraseAction:
    """A `[subject.erase.TABLE]` entry: what erasure does to that table's rows."""

    table: str
    action: Literal["delete", "anonymise", "keep"] = "delete"
    columns: tuple[tuple[str, str], ...] = ()
    rule: str | None = None
    basis: str | None = None


@dataclass(frozen=True)
class SubjectConfig:
    """The `[subject]` table: how a named person is found, for erase and export."""

    root: str
    identifiers: tuple[tuple[str, str], ...]
    links: tuple[SubjectLink, ...] = ()
    erase: tuple[EraseAction, ...] = ()
    references: tuple[SubjectReference, ...] = ()
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """The whole validated config."""

    path: Path
    sweep: SweepSettings
    databases: tuple[DatabaseConfig, ...]
    rules: tuple[Rule, ...]
    subject: SubjectConfig | None = None
    digest: str = field(default="", compare=False)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def database(self, name: str) -> DatabaseConfig:
        for db in self.databases:
            if db.name == name:
                return db
        raise KeyError(name)

    def rules_for(self, database: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.applies_to(database))


# --- reading ---------------------------------------------------------------------------


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """Return the config path: `--config`, else $GDPR_SWEEP_CONFIG, else ./gdpr-sweep.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path.cwd() / DEFAULT_CONFIG_NAME


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file; raise ConfigError naming the key on any fault."""
    config_path = find_config_path(path)
    try:
        raw_bytes = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {str(config_path)!r} not found "
            f"(use --config, ${CONFIG_ENV} or ./{DEFAULT_CONFIG_NAME})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {str(config_path)!r}: {exc.strerror}") from None
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the TOML.
        data = tomllib.loads(raw_bytes.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(config_path)!r} is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(config_path)!r} is not valid TOML: {exc}") from None
    return parse_config(data, config_path.resolve())


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate an already-parsed TOML document."""
    root = _Node(data, "")
    root.only_keys({"sweep", "databases", "rules", "subject"})
    sweep = _parse_sweep(root.table("sweep", required=False))
    databases = _parse_databases(root.table("databases", required=True))
    names = {db.name for db in databases}
    rules = _parse_rules(root.array_of_tables("rules"), names)
    subject_node = root.table("subject", required=False)
    subject = _parse_subject(subject_node, {r.id for r in rules}) if subject_node.present else None
    config = Config(path=path, sweep=sweep, databases=databases, rules=rules, subject=subject)
    return dataclasses.replace(config, digest=config_digest(config))


def config_digest(config: Config) -> str:
    """Return a SHA-256 over the validated config (not its comments or key order)."""
    body = dataclasses.asdict(config)
    body.pop("path")
    body.pop("digest")
    # Tables of TOML are unordered: their order in the file must not change the digest.
    body["databases"] = sorted(body["databases"], key=lambda db: db["name"])
    for rule in body["rules"]:
        if rule["since_format"] is None:  # added later: configs without it keep their digest
            del rule["since_format"]
    if body["subject"]:
        body["subject"]["identifiers"] = sorted(body["subject"]["identifiers"])
        body["subject"]["erase"] = sorted(body["subject"]["erase"], key=lambda e: e["table"])
        body["subject"]["parents"] = sorted(body["subject"]["parents"])
        for added in ("references", "parents"):  # configs without them keep their digest
            if not body["subject"][added]:
                del body["subject"][added]
    canonical = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


# --- URLs --------------------------------------------------------------------------------


def resolve_url(raw: str, key: str, base_dir: Path) -> URL:
    """Parse a database URL; a relative SQLite path is taken relative to `base_dir`."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(f'{key}: not a database URL (e.g. "sqlite:///demo.db")') from None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db_path = Path(url.database)
        if not db_path.is_absolute() and not url.database.startswith("file:"):
            url = url.set(database=str(base_dir / db_path))
    return url


def database_url(config: Config, db: DatabaseConfig) -> URL:
    """Return the URL of a configured database, reading `url_env` from the environment."""
    if db.url_env:
        key = f"databases.{db.name}.url_env"
        raw = os.environ.get(db.url_env)
        if not raw:
            raise ConfigError(f"{key}: environment variable {db.url_env} is not set")
    else:
        key = f"databases.{db.name}.url"
        raw = db.url or ""
    return resolve_url(raw, key, config.directory)


def state_url(config: Config) -> URL:
    """Return the URL of the tool's own state database."""
    variable = config.sweep.state_url_env
    if variable:
        raw = os.environ.get(variable)
        if not raw:
            raise ConfigError(f"sweep.state_url_env: environment variable {variable} is not set")
        return resolve_url(raw, "sweep.state_url_env", config.directory)
    return resolve_url(config.sweep.state_url, "sweep.state_url", config.directory)


# --- validation helpers ----------------------------------------------------------------


class _Node:
    """A table in the TOML document with its key path, for precise messages."""

    def __init__(self, value: Any, path: str, present: bool = True) -> None:
        self.value = value if value is not None else {}
        self.path = path
        self.present = present

    def key(self, name: str) -> str:
        shown = name if name.isprintable() and name else repr(name)
        return f"{self.path}.{shown}" if self.path else shown

    def fail(self, name: str | None, message: str) -> ConfigError:
        where = self.key(name) if name is not None else (self.path or "config")
        return ConfigError(f"{where}: {message}")

    def only_keys(self, allowed: set[str]) -> None:
        for name in self.value:
            if name not in allowed:
                close = difflib.get_close_matches(name, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(name, f"unknown key{hint}")

    def table(self, name: str, required: bool) -> _Node:
        if name not in self.value:
            if required:
                raise self.fail(name, "is required")
            return _Node({}, self.key(name), present=False)
        value = self.value[name]
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table, not {_type_name(value)}")
        return _Node(value, self.key(name))

    def array_of_tables(self, name: str) -> list[_Node]:
        value = self.value.get(name, [])
        if not isinstance(value, list):
            raise self.fail(
                name, f"must be an array of tables ([[{name}]]), not {_type_name(value)}"
            )
        nodes = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(f"{self.key(name)}[{i}]: must be a table, not {_type_name(item)}")
            nodes.append(_Node(item, f"{self.key(name)}[{i}]"))
        return nodes

    def string(self, name: str, required: bool = False, default: str | None = None) -> str | None:
        if name not in self.value:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.value[name]
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {_type_name(value)}")
        if not value.strip():
            raise self.fail(name, "must not be empty")
        if any(ord(ch) < 32 for ch in value):
            raise self.fail(name, "must not contain control characters")
        return value

    def identifier(self, name: str, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None:
            _check_identifier(value, self.key(name))
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.value.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {_type_name(value)}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.value.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(name, f"must be an integer, not {_type_name(value)}")
        if not low <= value <= high:
            raise self.fail(name, f"must be between {low:,} and {high:,}, not {value:,}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.value.get(name, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.fail(name, f"must be a number, not {_type_name(value)}")
        if not (low < value <= high):  # NaN fails this too
            raise self.fail(name, f"must be greater than {low} and at most {high}, not {value}")
        return float(value)

    def string_list(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if name not in self.value:
            return default
        value = self.value[name]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, "must be a list of non-empty strings")
        if not value:
            raise self.fail(name, "must not be empty")
        if len(set(value)) != len(value):
            raise self.fail(name, "lists a name twice")
        return tuple(value)


def _type_name(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
        dt.date: "a date",
        dt.datetime: "a date-time",
        dt.time: "a time",
    }
    return names.get(type(value), type(value).__name__)


def _check_identifier(value: str, key: str) -> None:
    """Refuse identifiers no schema can hold; existence is checked against reflection."""
    if not value.isprintable():
        raise ConfigError(f"{key}: {value!r} is not a table or column name")
    parts = value.split(".")
    if len(value) > 2 * _MAX_IDENTIFIER + 1 or any(
        not p or len(p) > _MAX_IDENTIFIER for p in parts
    ):
        raise ConfigError(f"{key}: {value!r} is not a table or column name")
    if len(parts) > 2:
        raise ConfigError(f"{key}: {value!r} has more than one schema qualifier")


def _check_column_name(value: str, key: str) -> None:
    if not value or not value.isprintable() or "." in value or len(value) > _MAX_IDENTIFIER:
        raise ConfigError(f"{key}: {value!r} is not a column name")


def _scalar(value: Any, key: str) -> Scalar:
    if isinstance(value, (str, bool, int, float, dt.datetime, dt.date)) and not isinstance(
        value, dt.time
    ):
        if isinstance(value, float) and value != value:  # NaN matches nothing, ever
            raise ConfigError(f"{key}: NaN is not a value a row can equal")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
            raise ConfigError(f"{key}: {value} does not fit a 64-bit integer")
        return value
    raise ConfigError(f"{key}: must be a string, number, boolean or date, not {_type_name(value)}")


def _parse_only(node: _Node, name: str) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
    if name not in node.value:
        return ()
    only = node.table(name, required=True)
    if not only.value:
        raise node.fail(name, "must name at least one column")
    result = []
    for column, value in only.value.items():
        key = only.key(column)
        _check_column_name(column, key)
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ConfigError(f"{key}: must not be an empty list")
        scalars = tuple(
            _scalar(v, f"{key}[{i}]" if isinstance(value, list) else key)
            for i, v in enumerate(values)
        )
        if len({type(v) for v in scalars}) > 1:
            raise ConfigError(f"{key}: mixes values of different types")
        result.append((column, scalars))
    return tuple(sorted(result, key=lambda item: item[0]))


def _parse_strategies(node: _Node, name: str, required: bool) -> tuple[tuple[str, str], ...]:
    if name not in node.value:
        if required:
            raise node.fail(name, 'is required for action "anonymise" (column = strategy)')
        return ()
    columns = node.table(name, required=True)
    if not columns.value:
        raise node.fail(name, "must name at least one column")
    result = []
    for column, strategy in columns.value.items():
        key = columns.key(column)
        _check_column_name(column, key)
        if strategy not in STRATEGIES:
            shown = strategy if isinstance(strategy, str) else _type_name(strategy)
            close = difflib.get_close_matches(str(strategy), STRATEGIES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{key}: {shown!r} is not a strategy; use one of {', '.join(STRATEGIES)}{hint}"
            )
        result.append((column, strategy))
    return tuple(sorted(result))


def _choice(node: _Node, name: str, choices: tuple[str, ...], default: str | None) -> str:
    value = node.string(name, required=default is None, default=default)
    assert value is not None
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise node.fail(name, f"{value!r} is not one of {', '.join(choices)}{hint}")
    return value


# --- sections ----------------------------------------------------------------------------


def _parse_sweep(node: _Node) -> SweepSettings:
    node.only_keys({f.name for f in dataclasses.fields(SweepSettings)})
    defaults = SweepSettings()
    tz_name = node.string("timezone", default=defaults.timezone)
    assert tz_name is not None
    try:
        load_timezone(tz_name)
    except ValueError as exc:
        raise node.fail("timezone", str(exc)) from None
    fiscal_raw = node.string("fiscal_year_end", default=str(defaults.fiscal_year_end))
    try:
        fiscal = parse_fiscal_year_end(fiscal_raw or "")
    except ValueError as exc:
        raise node.fail("fiscal_year_end", str(exc)) from None
    hash_key_env = node.string("hash_key_env", default=defaults.hash_key_env)
    if hash_key_env is not None and not _ENV_RE.match(hash_key_env):
        raise node.fail("hash_key_env", f"{hash_key_env!r} is not an environment variable name")
    state = node.string("state_url", default=defaults.state_url)
    assert state is not None
    url = resolve_url(state, node.key("state_url"), Path("."))
    if url.password:
        raise node.fail("state_url", "holds a password; pass secrets through the environment")
    state_env = node.string("state_url_env")
    if state_env is not None and not _ENV_RE.match(state_env):
        raise node.fail("state_url_env", f"{state_env!r} is not an environment variable name")
    if state_env is not None and "state_url" in node.value:
        raise node.fail("state_url_env", "give state_url or state_url_env, not both")
    return SweepSettings(
        state_url=state,
        state_url_env=state_env,
        hash_key_env=hash_key_env or defaults.hash_key_env,
        timezone=tz_name,
        fiscal_year_end=fiscal,
        batch_size=node.integer("batch_size", defaults.batch_size, 1, 1_000_000),
        max_fraction=node.number("max_fraction", defaults.max_fraction, 0.0, 1.0),
        personal_column_patterns=_regexes(node, "personal_column_patterns"),
        scan_ignore=node.string_list("scan_ignore"),
        lock_timeout=_duration(node, "lock_timeout"),
        statement_timeout=_duration(node, "statement_timeout"),
    )


def _duration(node: _Node, name: str) -> float | None:
    text = node.string(name)
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise node.fail(name, str(exc)) from None


def _regexes(node: _Node, name: str) -> tuple[str, ...]:
    patterns = node.string_list(name)
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{node.key(name)}[{i}]: not a regular expression ({exc})") from None
    return patterns


def _parse_databases(node: _Node) -> tuple[DatabaseConfig, ...]:
    if not node.value:
        raise ConfigError("databases: at least one [databases.NAME] entry is required")
    result = []
    for name in node.value:
        if not _DB_NAME_RE.match(name):
            raise node.fail(name, "a database name is letters, digits, '_', '-' and '.'")
        entry = node.table(name, required=True)
        entry.only_keys({"url", "url_env", "controller"})
        url = entry.string("url")
        url_env = entry.string("url_env")
        if (url is None) == (url_env is None):
            raise entry.fail(None, "needs exactly one of url or url_env")
        if url is not None:
            parsed = resolve_url(url, entry.key("url"), Path("."))
            if parsed.password:
                raise entry.fail("url", "holds a password; name an environment variable in url_env")
        if url_env is not None and not _ENV_RE.match(url_env):
            raise entry.fail("url_env", f"{url_env!r} is not an environment variable name")
        result.append(DatabaseConfig(name, url, url_env, entry.string("controller")))
    return tuple(result)


_RULE_KEYS = {
    "id",
    "table",
    "databases",
    "action",
    "after",
    "since",
    "since_latest",
    "since_format",
    "from_fiscal_year_end",
    "basis",
    "description",
    "only",
    "unless_after",
    "unless_true",
    "columns",
    "cascade",
}


def _parse_rules(nodes: list[_Node], database_names: set[str]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(nodes):
        node.only_keys(_RULE_KEYS)
        rule_id = node.string("id", required=True)
        assert rule_id is not None
        if not _RULE_ID_RE.match(rule_id):
            raise node.fail("id", f"{rule_id!r}: use letters, digits, '.', '_' and '-'")
        if rule_id in seen:
            raise node.fail("id", f"{rule_id!r} is already the id of rules[{seen[rule_id]}]")
        seen[rule_id] = index
        table = node.identifier("table", required=True)
        assert table is not None
        action = _choice(node, "action", ACTIONS, None)
        after_raw = node.value.get("after")
        if after_raw is None:
            raise node.fail("after", 'is required (e.g. "6 months")')
        try:
            after = parse_period(after_raw)
        except ValueError as exc:
            raise node.fail("after", str(exc)) from None
        databases = node.string_list("databases", ("*",))
        for i, db_name in enumerate(databases):
            if db_name != "*" and db_name not in database_names:
                close = difflib.get_close_matches(db_name, sorted(database_names), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{node.key('databases')}[{i}]: no database {db_name!r}{hint}")
        since = node.identifier("since")
        if since is not None:
            _check_column_name(since, node.key("since"))
        since_latest = None
        if "since_latest" in node.value:
            latest = node.table("since_latest", required=True)
            latest.only_keys({"table", "column", "key"})
            lt, lc, lk = (latest.identifier(k, required=True) for k in ("table", "column", "key"))
            assert lt and lc and lk
            _check_column_name(lc, latest.key("column"))
            _check_column_name(lk, latest.key("key"))
            since_latest = SinceLatest(lt, lc, lk)
        if since is None and since_latest is None:
            raise node.fail(None, "needs since (a date column) or since_latest")
        since_format = (
            _choice(node, "since_format", SINCE_FORMATS, None)
            if "since_format" in node.value
            else None
        )
        fiscal = node.boolean("from_fiscal_year_end", False)
        if fiscal and since_latest is not None:
            raise node.fail("from_fiscal_year_end", "cannot be combined with since_latest")
        columns = _parse_strategies(node, "columns", required=action == "anonymise")
        if action == "delete" and columns:
            raise node.fail("columns", 'only applies to action "anonymise"')
        cascade = node.string_list("cascade")
        if cascade and action != "delete":
            raise node.fail("cascade", 'only applies to action "delete"')
        for i, child in enumerate(cascade):
            _check_identifier(child, f"{node.key('cascade')}[{i}]")
        unless_after = node.identifier("unless_after")
        unless_true = node.identifier("unless_true")
        for key, col in (("unless_after", unless_after), ("unless_true", unless_true)):
            if col is not None:
                _check_column_name(col, node.key(key))
        rules.append(
            Rule(
                id=rule_id,
                table=table,
                action=action,  # type: ignore[arg-type]
                after=after,
                databases=databases,
                since=since,
                since_latest=since_latest,
                since_format=since_format,
                from_fiscal_year_end=fiscal,
                basis=node.string("basis"),
                description=node.string("description"),
                only=_parse_only(node, "only"),
                unless_after=unless_after,
                unless_true=unless_true,
                columns=columns,
                cascade=cascade,
                index=index,
            )
        )
    return tuple(rules)


def _parse_subject(node: _Node, rule_ids: set[str]) -> SubjectConfig:
    node.only_keys({"root", "identifiers", "links", "erase", "references", "parents"})
    root = node.identifier("root", required=True)
    assert root is not None
    parents = node.string_list("parents")
    for parent in parents:
        _check_identifier(parent, node.key("parents"))
        if parent == root:
            raise node.fail("parents", f"{parent!r} is the root table, not a parent of it")
    identifiers_node = node.table("identifiers", required=True)
    if not identifiers_node.value:
        raise node.fail("identifiers", 'must name at least one kind (e.g. email = "email")')
    identifiers = []
    for kind in identifiers_node.value:
        if not _KIND_RE.match(kind):
            raise identifiers_node.fail(kind, "an identifier kind is letters, digits, '_' and '-'")
        column = identifiers_node.identifier(kind, required=True)
        assert column is not None
        _check_column_name(column, identifiers_node.key(kind))
        identifiers.append((kind, column))
    links = []
    for index, link in enumerate(node.array_of_tables("links")):
        link.only_keys({"table", "column", "references", "only"})
        table = link.identifier("table", required=True)
        column = link.identifier("column", required=True)
        references = link.string("references", required=True)
        assert table and column and references
        _check_column_name(column, link.key("column"))
        ref_table, _, ref_column = references.rpartition(".")
        if not ref_table or not ref_column:
            raise link.fail("references", f"{references!r} is not TABLE.COLUMN")
        _check_identifier(ref_table, link.key("references"))
        links.append(
            SubjectLink(table, column, ref_table, ref_column, _parse_only(link, "only"), index)
        )
    person_references: list[SubjectReference] = []
    for index, entry in enumerate(node.array_of_tables("references")):
        entry.only_keys({"table", "column", "action"})
        table = entry.identifier("table", required=True)
        column = entry.identifier("column", required=True)
        assert table and column
        _check_column_name(column, entry.key("column"))
        action = _choice(entry, "action", REFERENCE_ACTIONS, "null")
        same = next((r for r in person_references if (r.table, r.column) == (table, column)), None)
        if same is not None:
            raise entry.fail(
                None, f"declares the same reference as subject.references[{same.index}]"
            )
        person_references.append(SubjectReference(table, column, action, index))  # type: ignore[arg-type]
    erase = []
    erase_node = node.table("erase", required=False)
    for table in erase_node.value:
        _check_identifier(table, erase_node.key(table))
        entry = erase_node.table(table, required=True)
        entry.only_keys({"action", "columns", "rule", "basis"})
        action = _choice(entry, "action", ERASE_ACTIONS, "delete")
        # With "delete", columns say how to anonymise rows that must stay because kept
        # or anonymised rows still reference them.
        columns = _parse_strategies(entry, "columns", required=action == "anonymise")
        if action == "keep" and columns:
            raise entry.fail("columns", 'does not apply to action "keep"')
        rule = entry.string("rule")
        if rule is not None and rule not in rule_ids:
            close = difflib.get_close_matches(rule, sorted(rule_ids), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise entry.fail("rule", f"no rule with id {rule!r}{hint}")
        if rule is not None and action != "keep":
            raise entry.fail("rule", 'only applies to action "keep"')
        basis = entry.string("basis")
        if action == "keep" and rule is None and basis is None:
            raise entry.fail(None, 'action "keep" needs the rule that ends it, or a basis')
        erase.append(EraseAction(table, action, columns, rule, basis))  # type: ignore[arg-type]
    return SubjectConfig(
        root, tuple(identifiers), tuple(links), tuple(erase), tuple(person_references), parents
    )
