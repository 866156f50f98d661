"""`[tenants]`: many same-schema databases listed once, in a CSV file, not one table each.

```toml
[tenants]
file = "tenants.csv"          # relative to the config file
controller = "Kommunernes IT" # optional: any other key of a [databases.NAME] entry,
                              # for every row whose cell is empty
```

```csv
name,controller,url_env
aarhus,Aarhus Kommune,AARHUS_URL
```

Each row becomes a `DatabaseConfig` exactly as a written-out `[databases.NAME]` entry
with the same keys would (`sections.parse_database_entry`: the same checks, the same
digest). The header names the columns: `name` and `url_env` or `url` (or both, one of
them filled per row), `controller` optional. Anything wrong is one `ConfigError` naming
the file and the line: a header that is not these columns, a row with too few or too
many cells, an empty or bad name, a name given twice (in the file, or also written
out), not UTF-8, not CSV. A message never shows a row's URL: it may hold a password
(which is refused, as for a written-out `url`; `url_env` is the way to pass one).
"""

from __future__ import annotations

import csv
import difflib
import io
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .model import DatabaseConfig
from .nodes import Node
from .sections import DATABASE_KEYS, is_database_name, parse_database_entry
from .todos import TODO

#: The columns a tenants file may have (SPEC): the name and these database keys, all
#: strings. Other keys of a database entry can only be `[tenants]` defaults.
COLUMNS = ("name", "controller", "url", "url_env")
_URL_COLUMNS = ("url", "url_env")
#: `[tenants]` keys that are not defaults for the rows.
_OWN_KEYS = {"file"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def parse_tenants(
    node: Node, config_dir: Path, written_out: set[str]
) -> tuple[DatabaseConfig, ...]:
    """The databases the `[tenants]` table's file lists (none of them in `written_out`)."""
    # The defaults: any key of a database entry but the URL, which is each tenant's own.
    defaults_allowed = DATABASE_KEYS - set(_URL_COLUMNS)
    node.only_keys(_OWN_KEYS | defaults_allowed)
    file_name = node.string("file", required=True)
    assert file_name is not None
    defaults = {key: value for key, value in node.value.items() if key in defaults_allowed}
    # Checked as in a [databases.NAME] entry, the errors naming `tenants.KEY`.
    parse_database_entry(Node({**defaults, "url_env": "CHECK"}, node.path), "tenants")
    path = config_dir / file_name
    text = _read(node, path)
    return _rows(text, str(path), defaults, written_out)


def _read(node: Node, path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise node.fail("file", f"{str(path)!r} not found") from None
    except OSError as exc:
        raise node.fail("file", f"{str(path)!r}: {exc.strerror or type(exc).__name__}") from None
    if data.startswith(_UTF16_BOMS):
        raise ConfigError(f'{path} line 1: UTF-16, not UTF-8 (save it as "CSV UTF-8")')
    try:
        # utf-8-sig: a byte-order mark (spreadsheets write one) is not part of the header.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f'{path} line {line}: not UTF-8 (save it as "CSV UTF-8")') from None


def _rows(
    text: str, where: str, defaults: dict[str, Any], written_out: set[str]
) -> tuple[DatabaseConfig, ...]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    seen: dict[str, int] = {}
    result: list[DatabaseConfig] = []
    line = 1  # where the record being read starts (a quoted cell may span lines)
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not cells:
                continue  # a blank line
            if header is None:
                header = _header(cells, f"{where} line {start}")
                continue
            db = _row(header, cells, f"{where} line {start}", defaults)
            if db.name in written_out:
                raise ConfigError(
                    f"{where} line {start}: {db.name!r} is also a [databases.{db.name}] entry"
                )
            if db.name in seen:
                raise ConfigError(
                    f"{where} line {start}: {db.name!r} is already the name on line {seen[db.name]}"
                )
            seen[db.name] = start
            result.append(db)
    except csv.Error as exc:
        raise ConfigError(f"{where} line {reader.line_num or 1}: not valid CSV ({exc})") from None
    if header is None:
        raise ConfigError(f"{where} line 1: empty; the first line is the header (name,url_env,…)")
    if not result:
        raise ConfigError(f"{where}: no tenants below the header")
    return tuple(result)


def _header(cells: list[str], where: str) -> list[str]:
    if len(cells) == 1 and ";" in cells[0]:
        raise ConfigError(f"{where}: columns are separated by ';'; use ',' (comma-separated CSV)")
    for cell in cells:
        if cell not in COLUMNS:
            close = difflib.get_close_matches(cell.strip().lower(), COLUMNS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: {cell!r} is not a column ({', '.join(COLUMNS)}){hint}")
        if cells.count(cell) > 1:
            raise ConfigError(f"{where}: the column {cell!r} is there twice")
    if "name" not in cells:
        raise ConfigError(f"{where}: the header has no column 'name'")
    if not any(column in cells for column in _URL_COLUMNS):
        raise ConfigError(f"{where}: the header has no column 'url_env' (or 'url')")
    return cells


def _row(
    header: list[str], cells: list[str], where: str, defaults: dict[str, Any]
) -> DatabaseConfig:
    if len(cells) != len(header):
        raise ConfigError(f"{where}: {len(cells)} cells, the header has {len(header)}")
    row = dict(zip(header, cells, strict=True))
    name = row.pop("name")
    if not name.strip():
        raise ConfigError(f"{where}: the name is empty")
    if not is_database_name(name):
        raise ConfigError(
            f"{where}: {name!r} is not a database name (letters, digits, '_', '-' and '.')"
        )
    filled = {column: value for column, value in row.items() if value != ""}
    if sum(column in filled for column in _URL_COLUMNS) != 1:
        raise ConfigError(f"{where}: {name!r} needs exactly one of url and url_env")
    for column, value in filled.items():
        if value.strip().upper() == TODO:
            raise ConfigError(f'{where}: {column} is still "TODO"')
    entry = Node({**defaults, **filled}, "")
    try:
        return parse_database_entry(entry, name, origin=where)
    except ConfigError as exc:
        # "url: holds a password; …": the key, never the cell's value (a URL may hold one).
        message = str(exc)
        if "url" in filled:
            message = message.replace(filled["url"], "…")
        raise ConfigError(f"{where}: {name!r}: {message}") from None
