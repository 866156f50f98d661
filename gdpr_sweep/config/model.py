"""The validated config as frozen dataclasses, and the vocabulary its keys may use.

What `load_config` returns (`Config` and the entries it holds) and the fixed choices
(strategies, actions, clock formats) the validation in `sections.py` accepts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from ..periods import FiscalYearEnd, Period

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
#: How a delete rule's wholly due partitions go (`partitions`; "off": the row path).
PARTITION_MODES = ("drop", "truncate", "off")

Scalar = str | int | float | bool | dt.date | dt.datetime
Action = Literal["anonymise", "delete"]


@dataclass(frozen=True)
class SweepSettings:
    """The `[sweep]` table."""

    state_url: str = "sqlite:///gdpr-sweep-state.db"
    state_url_env: str | None = None  # an env var holding the state URL (with credentials)
    hash_key_env: str = "GDPR_SWEEP_KEY"
    timezone: str = "Europe/Copenhagen"
    fiscal_year_end: FiscalYearEnd = CALENDAR_YEAR_END
    #: Keys per batch, or "auto": sized batch by batch toward `batch_time` (`batch_sizing.py`).
    batch_size: int | Literal["auto"] = 5000
    batch_time: float = 0.5  # seconds a batch aims at with batch_size = "auto"
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
    analyze: bool = False  # refresh planner statistics after a run that changed rows
    #: Where a `[tenants]` row came from ("/etc/gdpr-sweep/tenants.csv line 7"), for
    #: messages; None for a written-out entry. Not part of the config digest.
    origin: str | None = field(default=None, compare=False)

    @property
    def key_path(self) -> str:
        """Where messages say this entry is: `databases.NAME`, or its tenants-file line."""
        return self.origin or f"databases.{self.name}"


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
    categories: tuple[str, ...] = ()  # data categories (contact, health, ...): documentation
    partitions: str = "drop"  # PARTITION_MODES: wholly due partitions of a delete rule
    index: int = 0  # position in the file, for key paths in messages

    @property
    def key_path(self) -> str:
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
