"""The erased person, recognisable later without being stored: keyed hashes.

`subject_hash` is how a subject appears in receipts and the audit trail (a keyed hash
of KIND=VALUE). An erasure that committed records its root rows (`record_roots`): the
key sealed, a keyed fingerprint of the identifier values (`root_fingerprint`), and the
keyed hash of each identifier, so `replay` acts on the same person only
(`match_replay_roots`) and `audit find` answers by any identifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..config import Config
from ..holds.sealing import seal
from ..keys import keyed_hex, keyring
from ..rowkeys import RowKey, chunks, key_match
from ..state.store import StateStore


def subject_hash(hmac_key: bytes, kind: str, value: str) -> str:
    """The subject as it may be recorded: a keyed hash of KIND=VALUE."""
    return "hmac-sha256:" + keyed_hex(hmac_key, "subject", f"{kind}={value.strip()}")


@dataclass
class ErasedRoot:
    """The person's root row an erasure changed: its key, sealed, and a keyed
    fingerprint of its identifier values (recorded for replay once committed)."""

    table: str  # the root table, as `qualified_name` gives it
    key: RowKey
    fingerprint: str
    identifier_hashes: list[str]
    anonymised_fingerprint: str | None = None  # what an anonymised root row was left with


@dataclass
class ReplayMatch:
    """How replay's recorded root rows compared with the restored database."""

    same: int = 0  # the same person: erased again
    not_the_person: int = 0  # the key now holds someone else: never changed
    already_erased: int = 0  # gone, or still as the erasure anonymised it


def root_fingerprint(hmac_key: bytes, identifiers: list[tuple[str, Any]]) -> str:
    """A keyed fingerprint of a root row's identifier values (kind, value), any order.

    Equal for the same person's row after a restore (a row changed after the backup
    still carries the same identifiers); different for a new person who got a reused
    key. Never the values themselves.
    """
    canonical = json.dumps(
        [[kind, None if value is None else str(value)] for kind, value in sorted(identifiers)],
        separators=(",", ":"),
    )
    return "hmac-sha256:" + keyed_hex(hmac_key, "root-fingerprint", canonical)


def root_identities(
    connection: sa.Connection, config: Config, root: sa.Table, keys: list[RowKey], hmac_key: bytes
) -> dict[RowKey, tuple[str, list[str]]]:
    """Per root key: its fingerprint and the keyed hash of each identifier it holds."""
    assert config.subject is not None
    kinds = list(config.subject.identifiers)
    pk = list(root.primary_key.columns)
    found: dict[RowKey, tuple[str, list[str]]] = {}
    for chunk in chunks(keys):
        selected = sa.select(*pk, *(root.columns[c] for _k, c in kinds)).where(
            key_match(root, chunk)
        )
        for row in connection.execute(selected):
            row_key = tuple(row[: len(pk)])
            values = list(zip((k for k, _c in kinds), row[len(pk) :], strict=True))
            hashes = [subject_hash(hmac_key, k, str(v)) for k, v in values if v is not None]
            found[row_key] = (root_fingerprint(hmac_key, values), hashes)
    return found


def match_replay_roots(
    connection: sa.Connection,
    config: Config,
    root: sa.Table,
    recorded: dict[RowKey, list[tuple[str, str | None]]],
    hmac_key: bytes,
) -> tuple[ReplayMatch, list[RowKey]]:
    """Sort recorded root keys: the same person (erase again), someone else, or done.

    A key may have been erased for two people (reused in between): the row is erased
    again when it is either of them. Fingerprints recorded before a key rotation are
    matched under the old keys (GDPR_SWEEP_OLD_KEYS) too."""
    ring = [hmac_key, *(k for k in keyring(config)[1:] if k != hmac_key)]
    current = [root_identities(connection, config, root, list(recorded), k) for k in ring]
    match = ReplayMatch()
    same = []
    for row_key, prints in recorded.items():
        now = {found[row_key][0] for found in current if row_key in found}
        if now & {fingerprint for fingerprint, _after in prints}:
            match.same += 1
            same.append(row_key)
        elif not now or now & {after for _fingerprint, after in prints if after}:
            match.already_erased += 1
        else:
            match.not_the_person += 1
    return match, same


def record_roots(
    store: StateStore,
    run_id: int,
    database: str,
    roots: list[ErasedRoot],
    hmac_key: bytes,
    given: str,
) -> None:
    """Record for replay the root rows an erasure changed (sealed key, fingerprint),
    and for `audit find` the keyed hash of every identifier they held."""
    records = [
        {
            "table_name": root.table,
            "row_key_sealed": seal(hmac_key, database, root.table, root.key),
            "fingerprint": root.fingerprint,
            "anonymised_fingerprint": root.anonymised_fingerprint,
        }
        for root in roots
    ]
    hashes = sorted({h for root in roots for h in root.identifier_hashes} - {given})
    if records or hashes:
        store.record_erased_subjects(run_id, database, records, hashes)
