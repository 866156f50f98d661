"""Load the TOML config into frozen dataclasses, validating every key once.

Every error names the key path (`rules[2].after: "6 monts" is not a period`) and is
raised as `ConfigError` (exit 2). Unknown keys are refused with a "did you mean"
suggestion. Nothing here connects to a database: identifiers are checked against the
reflected schema later, by `checks.check_config`.

The package: `model.py` (the dataclasses and the fixed choices), `nodes.py` (the
TOML walker and value checks), `sections.py` (each top-level table), `load.py` (the
file, the digest, the URLs). The rest of gdpr_sweep imports the names below from
`gdpr_sweep.config`, never from the modules inside it.
"""

from .load import (
    config_digest,
    database_url,
    find_config_path,
    load_config,
    parse_config,
    state_url,
)
from .model import (
    Config,
    DatabaseConfig,
    EraseAction,
    Rule,
    Scalar,
    SinceLatest,
    SubjectConfig,
    SubjectLink,
    SubjectReference,
    SweepSettings,
)
from .nodes import resolve_url
from .todos import TODO, TodoError, find_todos, todo_hint

__all__ = [
    "TODO",
    "Config",
    "DatabaseConfig",
    "EraseAction",
    "Rule",
    "Scalar",
    "SinceLatest",
    "SubjectConfig",
    "SubjectLink",
    "SubjectReference",
    "SweepSettings",
    "TodoError",
    "config_digest",
    "database_url",
    "find_config_path",
    "find_todos",
    "load_config",
    "parse_config",
    "resolve_url",
    "state_url",
    "todo_hint",
]
