"""Re-apply recorded erasures after a database was restored from a backup.

Deletion does not reach backups. Every erasure that committed records, per database,
the person's root row: its primary key, sealed (a key may be personal: UUID, text,
composite), and a keyed fingerprint of its identifier values (the configured
`identifiers`; the subject only as a keyed hash). After a restore, `replay --since DATE`
re-finds each recorded root row by its key and acts only when the row's identifiers
still have the recorded fingerprint — the same person (a row changed after the backup
was taken still carries the same identifiers). A key that now belongs to someone else
(SQLite reuses rowids; a restore resets sequences) is reported as "not the erased
person" and never changed. From the matching roots the erasure runs again through the
subject graph, exactly as `erase` does (child rows are found through the root, not by
stored keys; holds, shared rows, kept tables and references as configured), per
database in one transaction. Rows already gone find nothing, so replay is idempotent;
it runs under the sweep lock and is audited like any run. Retention rules need no
replay: the next `run` sweeps a restored database by itself.

After a key rotation (`audit rotate-key`) the recorded root keys are sealed under the
new key, and fingerprints recorded before it are matched under the old keys in
GDPR_SWEEP_OLD_KEYS: the same person is still recognised, a reused key still is not.

Erasures recorded by versions before 0.2 (the keys of every row, no fingerprint) are
counted as not replayable and never acted on: a bare key could be a new person's.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..engines import DatabaseFailure, select_databases
from ..errors import ConfigError, UsageError
from ..formats import format_name
from ..holds.sealing import unseal
from ..holds.store import active_holds
from ..keys import OLD_KEYS_ENV, keyring
from ..periods import local_date
from ..rowkeys import RowKey
from ..run_locks import writing
from ..state.store import StateStore
from .erase import _database, _Request
from .receipts import DatabaseOutcome

NOT_THE_PERSON = "not the erased person"
ALREADY_ERASED = "already erased (gone, or as the erasure anonymised it)"
OTHER_ROOT = "recorded for another subject.root than the config's"


@dataclass
class ReplayResult:
    run_id: int | None
    since: str
    dry_run: bool
    tables: list[dict[str, Any]] = field(default_factory=list)  # database, table, action, rows
    skipped: int = 0  # recorded erasures that cannot be replayed (no fingerprint recorded)
    skipped_roots: list[dict[str, Any]] = field(default_factory=list)  # database, reason, rows
    failures: list[DatabaseFailure] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": format_name("replay"),
            "run_id": self.run_id,
            "since": self.since,
            "dry_run": self.dry_run,
            "tables": self.tables,
            "skipped": self.skipped_roots,
            "not_replayable": self.skipped,
            "failures": self.failures,
        }


#: Per recorded root key, every (fingerprint, anonymised fingerprint) recorded for it: a
#: key erased for one person and, after a reuse, for another, has both.
Fingerprints = dict[RowKey, list[tuple[str, str | None]]]


def _recorded_roots(
    records: list[dict[str, Any]], hmac_keys: list[bytes]
) -> dict[str, dict[str, Fingerprints]]:
    """database → root table → {key: [(fingerprint, anonymised fingerprint), …]}."""
    roots: dict[str, dict[str, Fingerprints]] = defaultdict(lambda: defaultdict(dict))
    for record in records:
        database, table = record["database_name"], record["table_name"]
        row_key = _open(hmac_keys, database, table, record)
        prints = (record["fingerprint"], record["anonymised_fingerprint"])
        roots[database][table].setdefault(row_key, []).append(prints)
    return roots


def _open(hmac_keys: list[bytes], database: str, table: str, record: dict[str, Any]) -> Any:
    """The recorded root key, opened with the current key (or, sealed before a rotation
    that was not run yet, an old one)."""
    for hmac_key in hmac_keys:
        try:
            return unseal(hmac_key, database, table, record["row_key_sealed"])
        except ValueError:
            continue
    raise ConfigError(
        f"sweep.hash_key_env: the root key recorded by erasure run {record['run_id']} does not "
        f"open with the key nor with {OLD_KEYS_ENV} (another key, or an altered state "
        "database); nothing was done"
    )


def _table_rows(outcome: DatabaseOutcome) -> list[dict[str, Any]]:
    rows = [
        {"database": t.database, "table": t.table, "action": t.action, "rows": t.rows}
        for t in outcome.tables
        if t.action != "kept"
    ]
    rows += [
        {
            "database": r.database,
            "table": r.table,
            "action": f"reference {r.action}",
            "rows": r.rows,
        }
        for r in outcome.references
        if r.action == "nulled"
    ]
    return rows


def replay(
    config: Config, since: str, databases: list[str] | None = None, dry_run: bool = False
) -> ReplayResult:
    """Re-apply every erasure recorded since `since` (YYYY-MM-DD, UTC) to the databases."""
    try:
        start = dt.date.fromisoformat(since)
    except ValueError:
        raise UsageError(f"--since: {since!r} is not a date (YYYY-MM-DD)") from None
    if config.subject is None:
        raise UsageError("replay: the config has no [subject] section to erase through")
    ring = keyring(config)
    hmac_key = ring[0]
    targets = select_databases(config, databases)
    column = config.subject.identifiers[0][1]
    with (
        StateStore(config, hmac_key) as store,
        writing(store, [t.name for t in targets]),
    ):
        recorded = store.erased_subjects_since(start.isoformat())
        fingerprinted = {r["run_id"] for r in recorded}
        legacy = store.erased_since(start.isoformat())
        result = ReplayResult(None, start.isoformat(), dry_run)
        result.skipped = sum(1 for r in legacy if r["run_id"] not in fingerprinted)
        roots = _recorded_roots(recorded, ring)
        holds = active_holds(config, local_date(dt.datetime.now(dt.UTC), config.sweep.tz))
        if not dry_run:
            store.mark_interrupted()
            result.run_id = store.start_run("replay", dt.datetime.now(dt.UTC))
        for target in targets:
            by_table = roots.get(target.name)
            if not by_table:
                continue
            outcome = _replay_database(target, column, by_table, hmac_key, dry_run, holds)
            _report(store, result, target.name, by_table, outcome)
        if result.run_id is not None:
            store.finish_run(
                result.run_id, "partial" if result.failures else "completed", result.to_json()
            )
        return result


def _replay_database(
    target: Any,
    column: str,
    by_table: dict[str, Fingerprints],
    hmac_key: bytes,
    dry_run: bool,
    holds: Any,
) -> DatabaseOutcome:
    """Erase again from the recorded roots of `subject.root` that are the same person."""
    assert target.config.subject is not None
    expected = by_table.get(target.config.subject.root, {})
    return _database(target, _Request(column, "", hmac_key, dry_run, holds, expected))


def _report(
    store: StateStore,
    result: ReplayResult,
    database: str,
    by_table: dict[str, Fingerprints],
    outcome: DatabaseOutcome,
) -> None:
    if outcome.failure:
        result.failures.append(outcome.failure)
        if result.run_id is not None:
            store.append(
                result.run_id,
                "database-failed",
                database=database,
                details={"error": outcome.failure["error"]},
            )
        return
    tables = _table_rows(outcome)
    result.tables.extend(tables)
    match = outcome.replay
    assert match is not None
    assert store.config.subject is not None
    other_roots = sum(
        len(keys) for table, keys in by_table.items() if table != store.config.subject.root
    )
    skipped = [
        (NOT_THE_PERSON, match.not_the_person),
        (ALREADY_ERASED, match.already_erased),
        (OTHER_ROOT, other_roots),
    ]
    for reason, rows in skipped:
        if rows > 0:
            result.skipped_roots.append({"database": database, "reason": reason, "rows": rows})
    if result.run_id is None:
        return
    for t in tables:
        store.append(
            result.run_id,
            "replay",
            database=database,
            table=t["table"],
            action=t["action"],
            rows=t["rows"],
            details={"since": result.since},
        )
    for reason, rows in skipped:
        if rows > 0:
            store.append(
                result.run_id,
                "replay-skipped",
                database=database,
                rows=rows,
                details={"since": result.since, "reason": reason},
            )
