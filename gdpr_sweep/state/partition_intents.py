"""Partition removals a killed run left between intent and outcome (`partition_drop.py`).

The audit trail is the record: a `partition-drop-start` entry with no later
`partition-drop`, `partition-skipped` or `partition-drop-abandoned` entry for the same
database, table and partition is pending. Few entries have these kinds, and they are
read by kind and database only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .models import audit_entries

if TYPE_CHECKING:
    from .store import StateStore

INTENT = "partition-drop-start"
OUTCOMES = ("partition-drop", "partition-skipped", "partition-drop-abandoned")


def pending_partition_drops(store: StateStore, database: str) -> list[dict[str, Any]]:
    """The intents of `database` without an outcome, oldest first (details decoded)."""
    e = audit_entries.c
    query = (
        sa.select(e.id, e.run_id, e.kind, e.rule_id, e.table_name, e.action, e.rows, e.details)
        .where(e.database_name == database, e.kind.in_((INTENT, *OUTCOMES)))
        .order_by(e.id)
    )
    pending: dict[tuple[str, str, str], dict[str, Any]] = {}
    with store.engine.connect() as connection:
        for row in connection.execute(query).mappings():
            details = json.loads(row["details"] or "{}")
            key = (row["table_name"], str(details.get("schema")), str(details.get("partition")))
            if row["kind"] == INTENT:
                pending[key] = dict(row) | {"details": details}
            else:
                pending.pop(key, None)
    return list(pending.values())
