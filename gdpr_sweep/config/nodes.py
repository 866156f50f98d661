"""Checking TOML values with their key path: the table walker and the value checks.

`Node` is a TOML table with its key path, so every error names the key
(`rules[2].after: ...`); the functions check one kind of value (an identifier, an
`only` table, a column = strategy table, a choice, a database URL). Used by the
section parsers in `sections.py`.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import ConfigError
from .model import STRATEGIES, Scalar

_MAX_IDENTIFIER = 128


def resolve_url(raw: str, key_path: str, base_dir: Path) -> URL:
    """Parse a database URL; a relative SQLite path is taken relative to `base_dir`."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(f'{key_path}: not a database URL (e.g. "sqlite:///demo.db")') from None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db_path = Path(url.database)
        if not db_path.is_absolute() and not url.database.startswith("file:"):
            url = url.set(database=str(base_dir / db_path))
    return url


class Node:
    """A table in the TOML document with its key path, for precise messages."""

    def __init__(self, value: Any, path: str, present: bool = True) -> None:
        self.value = value if value is not None else {}
        self.path = path
        self.present = present

    def key_path(self, name: str) -> str:
        shown = name if name.isprintable() and name else repr(name)
        return f"{self.path}.{shown}" if self.path else shown

    def fail(self, name: str | None, message: str) -> ConfigError:
        where = self.key_path(name) if name is not None else (self.path or "config")
        return ConfigError(f"{where}: {message}")

    def only_keys(self, allowed: set[str]) -> None:
        for name in self.value:
            if name not in allowed:
                close = difflib.get_close_matches(name, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(name, f"unknown key{hint}")

    def table(self, name: str, required: bool) -> Node:
        if name not in self.value:
            if required:
                raise self.fail(name, "is required")
            return Node({}, self.key_path(name), present=False)
        value = self.value[name]
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table, not {type_name(value)}")
        return Node(value, self.key_path(name))

    def array_of_tables(self, name: str) -> list[Node]:
        value = self.value.get(name, [])
        if not isinstance(value, list):
            raise self.fail(
                name, f"must be an array of tables ([[{name}]]), not {type_name(value)}"
            )
        nodes = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(
                    f"{self.key_path(name)}[{i}]: must be a table, not {type_name(item)}"
                )
            nodes.append(Node(item, f"{self.key_path(name)}[{i}]"))
        return nodes

    def string(self, name: str, required: bool = False, default: str | None = None) -> str | None:
        if name not in self.value:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.value[name]
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {type_name(value)}")
        if not value.strip():
            raise self.fail(name, "must not be empty")
        if any(ord(ch) < 32 for ch in value):
            raise self.fail(name, "must not contain control characters")
        return value

    def identifier(self, name: str, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None:
            check_identifier(value, self.key_path(name))
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.value.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {type_name(value)}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.value.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(name, f"must be an integer, not {type_name(value)}")
        if not low <= value <= high:
            raise self.fail(name, f"must be between {low:,} and {high:,}, not {value:,}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.value.get(name, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.fail(name, f"must be a number, not {type_name(value)}")
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


def type_name(value: Any) -> str:
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


def check_identifier(value: str, key_path: str) -> None:
    """Refuse identifiers no schema can hold; existence is checked against reflection."""
    if not value.isprintable():
        raise ConfigError(f"{key_path}: {value!r} is not a table or column name")
    parts = value.split(".")
    if len(value) > 2 * _MAX_IDENTIFIER + 1 or any(
        not p or len(p) > _MAX_IDENTIFIER for p in parts
    ):
        raise ConfigError(f"{key_path}: {value!r} is not a table or column name")
    if len(parts) > 2:
        raise ConfigError(f"{key_path}: {value!r} has more than one schema qualifier")


def check_column_name(value: str, key_path: str) -> None:
    if not value or not value.isprintable() or "." in value or len(value) > _MAX_IDENTIFIER:
        raise ConfigError(f"{key_path}: {value!r} is not a column name")


def _scalar(value: Any, key_path: str) -> Scalar:
    if isinstance(value, (str, bool, int, float, dt.datetime, dt.date)) and not isinstance(
        value, dt.time
    ):
        if isinstance(value, float) and value != value:  # NaN matches nothing, ever
            raise ConfigError(f"{key_path}: NaN is not a value a row can equal")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
            raise ConfigError(f"{key_path}: {value} does not fit a 64-bit integer")
        return value
    raise ConfigError(
        f"{key_path}: must be a string, number, boolean or date, not {type_name(value)}"
    )


def _columns(node: Node, name: str) -> Iterator[tuple[str, Any, str]]:
    """Each `column = value` of the table `name` (at least one), with its key path;
    every column name checked."""
    columns = node.table(name, required=True)
    if not columns.value:
        raise node.fail(name, "must name at least one column")
    for column, value in columns.value.items():
        key_path = columns.key_path(column)
        check_column_name(column, key_path)
        yield column, value, key_path


def parse_only(node: Node, name: str) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
    if name not in node.value:
        return ()
    result = []
    for column, value, key_path in _columns(node, name):
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ConfigError(f"{key_path}: must not be an empty list")
        scalars = tuple(
            _scalar(v, f"{key_path}[{i}]" if isinstance(value, list) else key_path)
            for i, v in enumerate(values)
        )
        if len({type(v) for v in scalars}) > 1:
            raise ConfigError(f"{key_path}: mixes values of different types")
        result.append((column, scalars))
    return tuple(sorted(result, key=lambda item: item[0]))


def parse_strategies(node: Node, name: str, required: bool) -> tuple[tuple[str, str], ...]:
    if name not in node.value:
        if required:
            raise node.fail(name, 'is required for action "anonymise" (column = strategy)')
        return ()
    result = []
    for column, strategy, key_path in _columns(node, name):
        if strategy not in STRATEGIES:
            shown = strategy if isinstance(strategy, str) else type_name(strategy)
            close = difflib.get_close_matches(str(strategy), STRATEGIES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{key_path}: {shown!r} is not a strategy; use one of {', '.join(STRATEGIES)}{hint}"
            )
        result.append((column, strategy))
    return tuple(sorted(result))


def choice(node: Node, name: str, choices: tuple[str, ...], default: str | None) -> str:
    value = node.string(name, required=default is None, default=default)
    assert value is not None
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise node.fail(name, f"{value!r} is not one of {', '.join(choices)}{hint}")
    return value
