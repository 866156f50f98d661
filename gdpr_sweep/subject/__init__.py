"""Everything about one named person: her rows, their erasure, export and replay.

One idea per module:

- `graph`: the subject graph — the tables holding her rows (foreign keys, links,
  declared parents) and the references between two people;
- `identifiers`: `--subject KIND=VALUE` parsed, the value typed as its column;
- `rows`: the predicates selecting her rows in each table of the graph;
- `planner`: which of her rows are deleted, anonymised or kept (held, shared, the
  fixpoint of rows that must stay), planned before anything changes;
- `references`: other people's rows that refer to hers: nulled, kept or refused;
- `schedule`: the FK-safe order of the changes (cycles broken by nulling), and
  applying them;
- `outcomes`: the receipt's lines a plan amounts to;
- `erase`: runs the erasure, one transaction per database;
- `receipts`: what an erasure did — the receipt;
- `fingerprints`: the keyed hashes that recognise her later (replay, `audit find`);
- `export`: her rows as one JSON document;
- `reapply`: `replay`, re-applying recorded erasures after a restore.

Who imports what: the CLI imports the public API below from this package; other
gdpr_sweep modules (check, scan) import what they need from the module where it
lives (`gdpr_sweep.subject.graph`); the modules of this package import each other
directly, never through this facade.

The names below load on first use (PEP 562 `__getattr__`), not when the package is
imported: `checks` imports `subject.graph`, and `subject.erase` imports `checks`, so
importing `erase` here eagerly would be an import cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .erase import erase_subject
    from .export import ExportResult, export_subject
    from .fingerprints import subject_hash
    from .identifiers import parse_subject
    from .reapply import ReplayResult, replay
    from .receipts import ErasureResult

#: Public name → the module of this package it lives in.
_PUBLIC = {
    "erase_subject": "erase",
    "ErasureResult": "receipts",
    "export_subject": "export",
    "ExportResult": "export",
    "replay": "reapply",
    "ReplayResult": "reapply",
    "parse_subject": "identifiers",
    "subject_hash": "fingerprints",
}

__all__ = [
    "ErasureResult",
    "ExportResult",
    "ReplayResult",
    "erase_subject",
    "export_subject",
    "parse_subject",
    "replay",
    "subject_hash",
]


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
