"""Values a drafted config leaves to answer: every `"TODO"` is refused, by its key path.

`gdpr-sweep init` writes `after = "TODO"` and `basis = "TODO"` (and `since = "TODO"`
where a table has no clock column) for a person to answer. Until they are answered the
config is not valid: `check` lists every one (exit 2), and every other command refuses
the first like any bad value (exit 2, naming its key). A value is a TODO when, stripped,
it reads `TODO` in any case. Values under `only` are rows' values to match (a status may
well be "todo"), so they are never taken for one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

TODO = "TODO"

#: Where `only` is a key (its values are rows' values): a rule's and a subject link's;
#: a column, table or database named "only" elsewhere is no such key.
_ONLY = re.compile(r"^(rules|subject\.links)\[\d+\]\.only$")

#: What to write instead, per key name.
_HINTS = {
    "after": 'a period, e.g. "6 months" or "5 years"',
    "basis": 'the legal basis, e.g. "GDPR art. 6(1)(b)" or "Danish Bookkeeping Act § 10"',
    "since": "a date or timestamp column of the table, or since_latest",
}


def _shown(name: str) -> str:
    return name if name.isprintable() and name else repr(name)


def find_todos(data: Mapping[str, Any], path: str = "") -> list[str]:
    """The key path of every value still "TODO", in file order."""
    found: list[str] = []

    def walk(value: Any, key: str, name: str) -> None:
        if _ONLY.match(key):
            return
        if isinstance(value, Mapping):
            for child, item in value.items():
                walk(item, f"{key}.{_shown(child)}" if key else _shown(child), child)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{key}[{i}]", name)
        elif isinstance(value, str) and value.strip().upper() == TODO:
            found.append(key)

    walk(data, path, "")
    return found


def todo_hint(key: str) -> str:
    """How to answer the TODO at `key`."""
    name = key.rsplit(".", 1)[-1]
    return _HINTS.get(name, "its value")


class TodoError(ConfigError):
    """The config still holds "TODO" values (exit 2); `keys` are their key paths."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        more = f" (and {len(keys) - 1} more: gdpr-sweep check lists them)" if len(keys) > 1 else ""
        super().__init__(f'{keys[0]}: still "TODO" — answer it with {todo_hint(keys[0])}{more}')


def refuse_todos(data: Mapping[str, Any]) -> None:
    """Raise TodoError naming every value still "TODO"."""
    keys = find_todos(data)
    if keys:
        raise TodoError(keys)
