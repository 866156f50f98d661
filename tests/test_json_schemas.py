"""Every JSON document gdpr-sweep prints or writes has `"format"` and validates against its
JSON Schema (draft 2020-12, `gdpr_sweep/schemas/`, linked from `docs/schemas`).

The documents come from the real CLI (`tests/every_output.py`): all of them on SQLite,
and the ones that read or change target databases (plan, run, erase, export) on
PostgreSQL and MariaDB too. A `--json` command without a kind here, a kind without a
schema, or a schema no document is validated against, fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import typer.core

from gdpr_sweep.cli import app
from gdpr_sweep.cli.root import subcommands
from gdpr_sweep.formats import VERSIONS, format_name, schema, schema_file
from tests.conftest import TargetDb
from tests.every_output import Scenario, every_output, sweep_outputs

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "gdpr_sweep" / "schemas"

#: Every command that prints JSON with --json, and the kind of document it prints.
JSON_COMMANDS = {
    "plan": "plan",
    "demo": "plan",
    "run": "run",
    "apply": "run",
    "check": "check",
    "erase": "erase",
    "replay": "replay",
    "scan": "scan",
    "hold list": "hold list",
    "audit list": "audit list",
    "audit show": "audit show",
    "audit find": "audit find",
    "audit verify": "audit verify",
    "audit rotate-key": "audit rotate-key",
}
#: Files written, and their kind (`export` writes only a file).
JSON_FILES = {"plan --out": "plan", "erase --receipt": "erase", "export --out": "export"}


def _commands(group: typer.core.TyperGroup, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, command in subcommands(group).items():
        path = f"{prefix}{name}"
        if isinstance(command, typer.core.TyperGroup):
            found |= _commands(command, path + " ")
        else:
            found[path] = command
    return found


def test_every_json_command_has_a_kind_and_every_kind_a_schema() -> None:
    commands = _commands(typer.main.get_command(app))  # type: ignore[arg-type]
    with_json = {
        path for path, command in commands.items()
        if any("--json" in getattr(p, "opts", ()) for p in command.params)
    }  # fmt: skip
    assert with_json == set(JSON_COMMANDS), "a --json command needs a kind and a schema"
    kinds = set(JSON_COMMANDS.values()) | set(JSON_FILES.values())
    assert kinds == set(VERSIONS)
    assert {schema_file(kind) for kind in VERSIONS} == {p.name for p in SCHEMAS.glob("*.json")}


@pytest.mark.parametrize("kind", sorted(VERSIONS))
def test_schema_is_valid_and_names_its_format(kind: str) -> None:
    document = schema(kind)  # from the package, as a script would load it
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert _format_consts(document) == {format_name(kind)}
    assert document["$id"].endswith(f":{VERSIONS[kind]}")


def _format_consts(node: object) -> set[str]:
    """Every `format` const a schema declares (the run schema has one per shape)."""
    found: set[str] = set()
    if isinstance(node, dict):
        const = node.get("properties", {}).get("format", {}).get("const")
        if const:
            found.add(const)
        for value in node.values():
            found |= _format_consts(value)
    elif isinstance(node, list):
        for value in node:
            found |= _format_consts(value)
    return found


def test_docs_schemas_is_the_packages_directory() -> None:
    """docs/schemas is a relative link to the schemas shipped in the package: one copy."""
    link = ROOT / "docs" / "schemas"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()
    assert link.resolve() == SCHEMAS.resolve()


def validate(scenario: Scenario) -> set[str]:
    """Validate every JSON document of the scenario; the kinds validated."""
    kinds = set()
    for output in scenario.outputs:
        if output.kind is None:
            continue
        document = json.loads(output.text)
        assert document["format"] == format_name(output.kind), output.command
        assert next(iter(document)) == "format", output.command  # the first key
        validator = jsonschema.Draft202012Validator(
            schema(output.kind), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)
        ]
        assert not errors, f"{output.command} ({output.kind}): " + "; ".join(errors[:5])
        kinds.add(output.kind)
    return kinds


def test_every_document_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    scenario = every_output(target, tmp_path, monkeypatch)
    assert validate(scenario) == set(VERSIONS), "a kind no document was validated against"


@pytest.mark.engines
def test_sweep_documents_validate_on_every_engine(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = sweep_outputs(target_db, tmp_path, monkeypatch)
    assert validate(scenario) == {"plan", "run", "erase", "export"}


def test_the_schemas_catch_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key added, a key gone, an unknown action, a time without offset: each rejected."""
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    outputs = sweep_outputs(target, tmp_path, monkeypatch).outputs
    plan = next(output for output in outputs if output.kind == "plan")
    document = json.loads(plan.text)
    validator = jsonschema.Draft202012Validator(schema("plan"))
    assert validator.is_valid(document)
    item = document["items"][0]
    for changed in (
        {**document, "extra": 1},
        {k: v for k, v in document.items() if k != "config_digest"},
        {**document, "format": "gdpr-sweep plan 2"},
        {**document, "as_of": document["as_of"][:19]},
        {**document, "items": [{**item, "action": "truncate"}]},
        {**document, "items": [{**item, "due": "1"}]},
        {**document, "items": [{**item, "partition_list": []}]},
        {**document, "items": [{**item, "partitions": [{"name": "p1", "action": "drop"}]}]},
    ):
        assert not validator.is_valid(changed), changed


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("run", ["audit list", "audit show", "audit find"]),
        ("segment", ["audit verify", "audit rotate-key"]),
        ("failure", ["plan", "run"]),
    ],
)
def test_shared_definitions_are_the_same_everywhere(name: str, kinds: list[str]) -> None:
    """Each schema file stands alone (no reference between files), so a shape that more
    than one document has is copied: a field added to one copy must be added to all."""
    first, *others = (schema(kind)["$defs"][name] for kind in kinds)
    assert all(other == first for other in others), f"$defs/{name} differs in {kinds}"
