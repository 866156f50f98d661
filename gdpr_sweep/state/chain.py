"""Runs and the hash-chained audit trail in the state database.

Each audit entry carries the hash of the one before it, and its own hash is a keyed
HMAC over its id, its fields and that previous hash. Editing, deleting or reordering
an entry breaks the chain from that entry on, and without the key nobody can forge a
consistent replacement. Each finished run records the chain's head in its summary, so
cutting entries off the end is detected too.

Rows of the runs table are sealed into the chain as well: whenever a run's row is
written (started, finished, marked interrupted), the entry written with it carries a
keyed digest of the whole row (`run_row`), so editing a run's status, subject hash,
as-of or counts afterwards is detected by `audit verify`, as is a run row with no entries.

The chain's `head` (`N:digest`, a keyed digest of the N-th entry's hash and N) can be
kept elsewhere (a log line per run, a ticket); `verify --head` then proves that the
chain still holds that entry: deleting the newest runs with their entries, which
leaves a consistent but shorter chain, is caught against an older head kept outside.

The key check value (`state_meta.key_check`, a keyed digest of a fixed label) lets a
command given another key refuse before it writes anything: otherwise it would append
entries that no one could ever verify with the right key.

Rotating the key (`gdpr-sweep audit rotate-key`, `rotation.py`) appends a `key-rotated`
entry, hashed with the new key, whose details name the key check values of the old
and the new key (never a key). The rotations cut the chain into segments: the entries
before the first rotation are verified with the key whose check is its
`previous_key_check`, the rotation entry and those after it with its `key_check` key,
and so on; the run rows and heads sealed in a segment with that segment's key. The
old keys come from `GDPR_SWEEP_OLD_KEYS` (`keys.keyring`); a segment whose key is not
there is reported as not checked (a missing key is config, not tampering), while an
edited, removed or forged rotation is tampering: the entries around it then do not
verify with the keys the rotations name.

This module holds the chain's primitives: an entry's hash (`entry_hash`), a run row's
seal (`run_row_digest`), the head (`chain_head`, `parse_head`), the key check value
and a rotation's checks, and the statements that read them. `StateStore` appends
(`store.py`, `runs.py`), `chain_verify.py` walks the chain, `rotation.py` re-keys it.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ..keys import keyed_hex
from .models import audit_entries, state_meta

GENESIS = "0" * 64
_HASHED_FIELDS = (
    "id",
    "run_id",
    "recorded_at",
    "kind",
    "database_name",
    "rule_id",
    "table_name",
    "action",
    "rows",
    "key_from",
    "key_to",
    "details",
    "prev_hash",
)


# Built once: an append per batch should not rebuild (and re-key) its statements.
SELECT_LAST_ENTRY = (
    sa.select(audit_entries.c.id, audit_entries.c.entry_hash)
    .order_by(audit_entries.c.id.desc())
    .limit(1)
)
INSERT_ENTRY = audit_entries.insert()
SELECT_KEY_CHECK = sa.select(state_meta.c.value).where(state_meta.c.name == "key_check")
SELECT_LAST_ROTATION = (
    sa.select(audit_entries.c.details)
    .where(audit_entries.c.kind == "key-rotated")
    .order_by(audit_entries.c.id.desc())
    .limit(1)
)
SELECT_FIRST_ROTATION = (
    sa.select(audit_entries.c.details)
    .where(audit_entries.c.kind == "key-rotated")
    .order_by(audit_entries.c.id)
    .limit(1)
)
#: The kind of the entry that records a key rotation (it starts a new segment).
ROTATION = "key-rotated"


def entry_hash(hmac_key: bytes, entry: dict[str, Any]) -> str:
    """Return the keyed hash of an audit entry (all fields but its own hash)."""
    canonical = json.dumps(
        [entry.get(name) for name in _HASHED_FIELDS], separators=(",", ":"), default=str
    )
    return keyed_hex(hmac_key, "audit-entry", canonical)


_RUN_FIELDS = (
    "id",
    "command",
    "as_of",
    "config_digest",
    "plan_digest",
    "user_name",
    "host",
    "pid",
    "tool_version",
    "started_at",
    "finished_at",
    "status",
    "subject_hash",
)


def run_row_digest(hmac_key: bytes, row: Any) -> str:
    """Return the keyed digest of a runs row (its summary without the chain head it
    records, which is the hash of the very entry that carries this digest)."""
    values = [row[name] for name in _RUN_FIELDS]
    summary = json.loads(row["summary"]) if row["summary"] else None
    if isinstance(summary, dict):
        summary.pop("audit_head", None)
    canonical = json.dumps([values, summary], sort_keys=True, separators=(",", ":"), default=str)
    return keyed_hex(hmac_key, "run-row", canonical)


def chain_head(hmac_key: bytes, entry_hash_value: str, count: int) -> str:
    """The head of a chain of `count` entries whose last hash is `entry_hash_value`."""
    return f"{count}:{keyed_hex(hmac_key, 'chain-head', entry_hash_value, str(count))[:32]}"


def key_check_value(hmac_key: bytes) -> str:
    return keyed_hex(hmac_key, "key-check")[:32]


def rotation_checks(details: str | None) -> tuple[str, str] | None:
    """(previous key check, new key check) of a `key-rotated` entry; None if malformed."""
    try:
        document = json.loads(details or "")
        previous, new = document["previous_key_check"], document["key_check"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(previous, str) or not isinstance(new, str):
        return None
    return previous, new


def parse_head(head: str) -> int:
    """Return the entry count of a chain head `N:digest`; ValueError if it is not one."""
    count, _, digest = head.partition(":")
    if not count.isdigit() or len(digest) != 32:
        raise ValueError(f"{head!r} is not a chain head (N:digest, as audit verify --json prints)")
    return int(count)
