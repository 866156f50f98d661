"""Shell completion that knows the config: rule ids, database names, tables, subject kinds.

Each function is an option's `autocompletion=`: Click calls it while the shell completes
a word, with the context of the command line typed so far. The config is the one that
command line names (`-c/--config`), else the default the commands use
($GDPR_SWEEP_CONFIG, else ./gdpr-sweep.toml). Completing never fails and never prints:
a missing or broken config gives no suggestions. Only the config file is read (no
database, no state): names from it, never a row's value.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..config import Config

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("warning", "info", "debug", "error")

Suggestions = list[tuple[str, str]]


def config_in_use(ctx: typer.Context) -> Config | None:
    """The config of the command line being completed; None if it cannot be read."""
    from ..config import load_config

    path = ctx.params.get("config_path")
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            return load_config(path)
    except Exception:  # any fault: no suggestions, and nothing on the terminal
        return None


def _matching(pairs: list[tuple[str, str]], incomplete: str) -> Suggestions:
    seen: dict[str, str] = {}
    for value, help_text in pairs:
        if value.startswith(incomplete) and value not in seen:
            seen[value] = help_text
    return list(seen.items())


def complete_rules(ctx: typer.Context, incomplete: str) -> Suggestions:
    """Rule ids, each with its action and table."""
    config = config_in_use(ctx)
    if config is None:
        return []
    return _matching([(r.id, f"{r.action} {r.table}") for r in config.rules], incomplete)


def complete_databases(ctx: typer.Context, incomplete: str) -> Suggestions:
    """Database names, each with its controller when the config names one."""
    config = config_in_use(ctx)
    if config is None:
        return []
    return _matching([(d.name, d.controller or "") for d in config.databases], incomplete)


def complete_tables(ctx: typer.Context, incomplete: str) -> Suggestions:
    """Tables the rules name (those of the --database given, when one is)."""
    config = config_in_use(ctx)
    if config is None:
        return []
    database = ctx.params.get("database")
    tables = [
        (rule.table, f"rule {rule.id}")
        for rule in config.rules
        if not database or "*" in rule.databases or database in rule.databases
    ]
    return _matching(sorted(tables), incomplete)


def complete_subject(ctx: typer.Context, incomplete: str) -> Suggestions:
    """`KIND=` for each kind in subject.identifiers (the value is the user's to type)."""
    config = config_in_use(ctx)
    if config is None or config.subject is None or "=" in incomplete:
        return []
    kinds = [(f"{kind}=", f"{table_column}") for kind, table_column in _identifiers(config)]
    return _matching(kinds, incomplete)


def _identifiers(config: Config) -> list[tuple[str, str]]:
    subject = config.subject
    assert subject is not None
    return [(kind, f"{subject.root}.{column}") for kind, column in subject.identifiers]


def complete_log_format(incomplete: str) -> list[str]:
    return [value for value in LOG_FORMATS if value.startswith(incomplete)]


def complete_log_level(incomplete: str) -> list[str]:
    return [value for value in LOG_LEVELS if value.startswith(incomplete)]
