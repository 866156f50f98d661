"""Config text for the tests: `[[rules]]` blocks and the `[sweep]` settings they share.

`rule(...)` writes one `[[rules]]` block as TOML, its keys in the order given, so a
test still reads like the config it builds:

    rule_toml("comment-delete", "comment", "delete", since="posted", after="1 year")

Pass the result (or several joined) as the body of `conftest.write_config`.
"""

from __future__ import annotations

import json

#: `[sweep]` settings for the tests' small tables: the max_fraction guard would stop
#: every run over a handful of rows.
WHOLE_TABLE = "max_fraction = 1.0"
#: As WHOLE_TABLE, and batches of one row (every row its own batch).
ONE_ROW_BATCHES = WHOLE_TABLE + "\nbatch_size = 1"


def toml_value(value: object) -> str:
    """A TOML value: a string, integer, float, bool, list, or inline table (a dict)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def rule_toml(rule_id: str, table: str, action: str, **settings: object) -> str:
    """One `[[rules]]` block: `id`, `table`, `action`, then `settings` in order.

    A dict becomes an inline table (`only = { kind = "call" }`, `columns = {...}`,
    `since_latest = {...}`), a list a TOML array (`cascade = ["contact"]`).
    """
    lines = ["[[rules]]", f'id = "{rule_id}"', f'table = "{table}"', f'action = "{action}"']
    lines += [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    return "\n" + "\n".join(lines) + "\n"


def since_latest(table: str, column: str, key: str) -> dict[str, str]:
    """A rule's `since_latest`: the latest `column` of `table` rows whose `key` is ours."""
    return {"table": table, "column": column, "key": key}
