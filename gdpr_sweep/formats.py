"""The JSON documents gdpr-sweep prints and writes: their kinds, versions and schemas.

Every document carries `"format": "gdpr-sweep <kind> <version>"` (SPEC) and has a JSON
Schema (draft 2020-12) in `gdpr_sweep/schemas/<kind>.schema.json` (a kind's spaces
as dashes: `audit-show.schema.json`), shipped in the package; `docs/schemas` links to
that directory. The version goes up only when a document changes incompatibly (a key
removed or renamed, a type or meaning changed); adding a key keeps the version and
adds the key to the schema in the same change.

To add a document: a kind here, its schema file, and the command in
`tests/test_json_schemas.py`'s table (a `--json` command without one fails the tests).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: Each kind's current version.
VERSIONS: dict[str, int] = {
    "plan": 1,  # plan --json, plan --out, demo --json; read back by apply
    "run": 1,  # run --json, apply --json
    "check": 1,
    "erase": 1,  # erase --json and the --receipt file
    "export": 1,  # the export --out file
    "replay": 1,
    "scan": 1,
    "hold list": 1,
    "audit list": 1,
    "audit show": 1,
    "audit find": 1,
    "audit verify": 1,
    "audit rotate-key": 1,
}

PREFIX = "gdpr-sweep "


def format_name(kind: str) -> str:
    """The `format` value of a document of this kind: `gdpr-sweep plan 1`."""
    return f"{PREFIX}{kind} {VERSIONS[kind]}"


def with_format(kind: str, document: dict[str, Any]) -> dict[str, Any]:
    """The document with its `format` first."""
    return {"format": format_name(kind), **{k: v for k, v in document.items() if k != "format"}}


def document_version(document: dict[str, Any], kind: str) -> int:
    """The version of a document read back (a plan file): 1 when it has no `format` (it
    was written before documents had one); ValueError when it is another kind or a
    version this gdpr-sweep does not know (a newer one's)."""
    value = document.get("format")
    if value is None:
        return 1
    if not isinstance(value, str) or not value.startswith(f"{PREFIX}{kind} "):
        raise ValueError(f"format {value!r} is not a gdpr-sweep {kind}")
    number = value.removeprefix(f"{PREFIX}{kind} ")
    if not number.isdigit() or not 1 <= int(number) <= VERSIONS[kind]:
        raise ValueError(
            f"format {value!r} is not one this gdpr-sweep reads (it reads up to "
            f"{format_name(kind)!r}; a newer gdpr-sweep wrote it?)"
        )
    return int(number)


def schema_file(kind: str) -> str:
    return kind.replace(" ", "-") + ".schema.json"


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a kind, from the package."""
    text = resources.files("gdpr_sweep").joinpath("schemas", schema_file(kind)).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
