"""Verifying the hash chain: walking the audit trail segment by segment (a segment is
written with one key; rotations cut the chain), checking each entry's hash, the head
kept outside, and every runs row against the seal its entries carry.

`StateStore.verify_chain` (and `audit verify`, `audit rotate-key`, and the key check
before a first write) come here. What the hashes are is in `chain.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..keys import OLD_KEYS_ENV
from .chain import (
    GENESIS,
    ROTATION,
    SELECT_FIRST_ROTATION,
    SELECT_KEY_CHECK,
    chain_head,
    entry_hash,
    key_check_value,
    parse_head,
    rotation_checks,
    run_row_digest,
)
from .models import audit_entries, runs

if TYPE_CHECKING:
    from .store import StateStore


@dataclass(frozen=True)
class BrokenEntry:
    """The first audit entry that does not verify, and why."""

    entry_id: int | None
    reason: str


@dataclass
class Segment:
    """Entries `first`..`last` of the chain, written with one key."""

    first: int
    last: int
    key_check: str | None  # None: not recorded (a state database from before key checks)
    checked: bool  # False: its key is not in the keyring
    rotated_at: int | None = None  # the entry that rotated away from this key
    runs: list[int] = field(default_factory=list)  # run rows sealed here (not checked)

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "last": self.last,
            "key_check": self.key_check,
            "checked": self.checked,
            "rotated_at": self.rotated_at,
            "runs_not_checked": self.runs,
        }

    def describe(self, current_env: str) -> str:
        """Why this segment was not checked, in one clause."""
        where = f"entries {self.first}-{self.last}"
        if self.rotated_at is not None:
            return (
                f"{where} were written with a key not in {OLD_KEYS_ENV} "
                f"(rotated at entry {self.rotated_at}): not checked"
            )
        return (
            f"{where} were written with a key that is neither {current_env} nor in "
            f"{OLD_KEYS_ENV} (this state database's key since entry {self.first}): not checked"
        )


@dataclass
class ChainVerification:
    """What `verify_chain` found: entries checked, the first break, and the segments."""

    checked: int
    broken: BrokenEntry | None
    segments: list[Segment]
    head_unchecked: bool = False  # --head lies in a segment whose key is not in the ring

    @property
    def unchecked(self) -> list[Segment]:
        return [s for s in self.segments if not s.checked]


def verify_chain(
    store: StateStore,
    check_runs: bool = True,
    head: str | None = None,
    first_key: bytes | None = None,
) -> ChainVerification:
    """Walk the chain segment by segment (see `chain.py`), with the store's keyring.

    `first_key`: the key of the entries before the first rotation, when there is no
    rotation and no key check to tell it (rotating a state database from 0.1).
    """
    ring = store.keyring or ([store.hmac_key] if store.hmac_key is not None else [])
    assert ring, "verifying the audit trail needs the key"
    by_check = {key_check_value(k): k for k in reversed(ring)}  # the current key wins
    with store.engine.connect() as connection:
        recorded = connection.execute(SELECT_KEY_CHECK).scalar()
        first_rotation = connection.execute(SELECT_FIRST_ROTATION).first()
    segment_key: bytes | None
    if first_key is not None:
        segment_check: str | None = key_check_value(first_key)
        segment_key = first_key
    elif first_rotation is not None:
        parsed = rotation_checks(first_rotation.details)
        segment_check = parsed[0] if parsed else None
        segment_key = by_check.get(segment_check) if segment_check else None
    else:  # one key wrote it all: the recorded one if the ring has it, else ours
        segment_check = recorded
        segment_key = by_check.get(recorded) if recorded else None
        if segment_key is None:
            segment_key = ring[0]
    segment = Segment(1, 0, segment_check, segment_key is not None)
    segments: list[Segment] = []
    previous = GENESIS
    expected_id = 1
    heads: set[str] = set()
    sealed: dict[int, tuple[str, bytes | None, Segment]] = {}
    checked = 0
    head_count = parse_head(head) if head is not None else None
    head_at: tuple[str, bytes | None] | None = None
    rotated = False

    def result(broken: BrokenEntry | None, **extra: Any) -> ChainVerification:
        done = [*segments, segment] if segment.last >= segment.first else segments
        return ChainVerification(checked, broken, done, **extra)

    for entry in store.entries():
        entry_id = entry["id"]
        if entry_id != expected_id:
            return result(
                BrokenEntry(entry_id, f"entry {expected_id} is missing (found {entry_id} next)")
            )
        if entry["prev_hash"] != previous:
            reason = "does not follow the entry before it (deleted or reordered)"
            return result(BrokenEntry(entry_id, reason))
        if entry["kind"] == ROTATION:
            checks = rotation_checks(entry["details"])
            if checks is None:
                return result(BrokenEntry(entry_id, "its content was altered"))
            if checks[0] != segment_check:
                return result(
                    BrokenEntry(
                        entry_id,
                        "a key rotation that does not follow the key of the entries "
                        "before it (altered or forged)",
                    )
                )
            if segment.last >= segment.first:
                segment.rotated_at = entry_id
                segments.append(segment)
            segment_check = checks[1]
            segment_key = by_check.get(segment_check)
            segment = Segment(entry_id, entry_id - 1, segment_check, segment_key is not None)
            rotated = True
        segment.last = entry_id
        if segment_key is not None:
            if entry_hash(segment_key, entry) != entry["entry_hash"]:
                return result(BrokenEntry(entry_id, "its content was altered"))
            checked += 1
        elif any(entry_hash(k, entry) == entry["entry_hash"] for k in ring):
            return result(
                BrokenEntry(
                    entry_id,
                    "was written with the key of another segment of the chain (a key "
                    "rotation was altered, removed or forged)",
                )
            )
        previous = entry["entry_hash"]
        heads.add(previous)
        expected_id += 1
        if entry["details"] and '"run_row"' in entry["details"]:
            digest = json.loads(entry["details"])["run_row"]
            sealed[entry["run_id"]] = (digest, segment_key, segment)
        if entry_id == head_count:
            head_at = (previous, segment_key)
    if rotated and recorded is not None and first_key is None and segment_check != recorded:
        return result(
            BrokenEntry(
                segment.first,
                "the last key rotation is not the one this state database records (its "
                "key check was edited, or the rotation forged)",
            )
        )
    if head is not None:
        assert head_count is not None
        if head_at is None:
            return result(_head_gone(head))
        last_hash, key_of_head = head_at
        candidates = ([key_of_head] if key_of_head is not None else []) + ring
        if not any(chain_head(k, last_hash, head_count) == head for k in candidates):
            if key_of_head is not None:
                return result(_head_gone(head))
            return result(
                _verify_runs_against_chain(store, sealed, heads, check_runs), head_unchecked=True
            )
    return result(_verify_runs_against_chain(store, sealed, heads, check_runs))


def _head_gone(head: str) -> BrokenEntry:
    return BrokenEntry(
        None,
        f"the head {head} is no longer in the chain (entries were removed from the end, or "
        "the chain was rewritten)",
    )


def _verify_runs_against_chain(
    store: StateStore,
    sealed: dict[int, tuple[str, bytes | None, Segment]],
    heads: set[str],
    check_runs: bool,
) -> BrokenEntry | None:
    """Compare each runs row with the digest the chain sealed, with that segment's key."""
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(runs).order_by(runs.c.id)).mappings().all()
    run_ids = {row["id"] for row in rows}
    for row in rows:
        summary = json.loads(row["summary"]) if row["summary"] else {}
        audit_head = summary.get("audit_head") if isinstance(summary, dict) else None
        if audit_head and audit_head not in heads:
            return BrokenEntry(
                None, f"entries of run {row['id']} were removed from the end of the trail"
            )
        if not check_runs:
            continue
        seal = sealed.get(row["id"])
        if seal is None:
            if not _has_entries(store, row["id"]):
                return BrokenEntry(None, f"run {row['id']} is not in the audit trail")
            continue  # a run recorded before runs were sealed (gdpr-sweep 0.1)
        digest, hmac_key, segment = seal
        if hmac_key is None:
            segment.runs.append(row["id"])
            continue
        if run_row_digest(hmac_key, row) != digest:
            return BrokenEntry(
                None,
                f"run {row['id']} was edited after it was recorded (its status, as-of, "
                "subject, counts or another field)",
            )
    if check_runs:
        missing = sorted(set(sealed) - run_ids)
        if missing:
            return BrokenEntry(None, f"the row of run {missing[0]} was removed")
    return None


def _has_entries(store: StateStore, run_id: int) -> bool:
    with store.engine.connect() as connection:
        return (
            connection.execute(
                sa.select(audit_entries.c.id).where(audit_entries.c.run_id == run_id).limit(1)
            ).first()
            is not None
        )
