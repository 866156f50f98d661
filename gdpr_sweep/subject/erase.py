"""Erase one named person from every database: delete, anonymise or keep, per table.

Per database, one transaction, children before parents:

- `keep` tables (a legal obligation, e.g. invoices) are counted, not touched; the
  receipt says on what basis and until when (from the rule that will delete them);
- `anonymise` tables get the configured strategies, except rows shared with another
  person (referenced by rows that are not this person's) and held rows: kept as is;
- `delete` tables (the default) are deleted — except rows that kept or anonymised rows
  still reference through a foreign key (one that would fail, or cascade into kept
  rows): those are anonymised with the table's `columns` instead, never left dangling.
  A table whose rows must stay but has no columns to anonymise them fails the database
  before anything is touched.

If one database fails, the others still complete (exit 3). `dry_run` counts in a
read-only transaction and changes nothing.

This module runs the erasure; `planner`, `references` and `schedule` decide what
happens to each row and in which order, `outcomes` and `receipts` hold what it did,
`fingerprints` what recognises the person later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..approval import Approval
from ..catalog import Catalog, qualified_name
from ..checks.findings import raise_findings
from ..checks.subject_checks import check_subject
from ..config import Config
from ..engines import TargetDatabase, database_failure, select_databases
from ..errors import DatabaseUnavailable, SchemaError
from ..holds.store import HeldKeys, active_holds
from ..keys import hash_key
from ..periods import local_date
from ..rowkeys import RowKey, key_match
from ..run_locks import writing
from ..state.store import StateStore
from .fingerprints import (
    ErasedRoot,
    ReplayMatch,
    match_replay_roots,
    record_roots,
    root_identities,
    subject_hash,
)
from .graph import build_graph
from .identifiers import check_subject_value, parse_subject
from .outcomes import reference_outcome, table_outcomes
from .planner import Planner, TablePlan, plan_all, require_columns
from .receipts import DatabaseOutcome, ErasureResult, ReferenceOutcome, TableOutcome
from .references import reference_effects
from .rows import SubjectRows
from .schedule import apply_all, deletion_schedule


@dataclass
class _DatabaseErasure:
    outcomes: list[TableOutcome]
    plans: list[TablePlan]
    references: list[ReferenceOutcome]
    case_insensitive_matches: int = 0
    roots: list[ErasedRoot] = field(default_factory=list)
    replay: ReplayMatch | None = None


@dataclass(frozen=True)
class _Request:
    """What to erase in each database: the identifier column and value, and how."""

    column: str
    value: str
    hmac_key: bytes
    dry_run: bool
    holds: HeldKeys
    replay_roots: dict[RowKey, list[tuple[str, str | None]]] | None = None


def _erase_database(target: TargetDatabase, request: _Request) -> _DatabaseErasure:
    """Sort the person's rows first, then act on them by key, referencing rows first.

    The sorting reads the untouched database, so a table found through a link that
    points "upwards" (a shared note found through a link table) is sorted correctly
    before the link rows it was found through are deleted. One transaction: committed
    at the end, rolled back on any error.

    `replay_roots` (replay after a restore): the root rows are those recorded keys
    whose row still has the recorded fingerprint — the same person — found and
    compared inside this transaction; the erasure runs again from them.
    """
    config = target.config
    column, value, hmac_key = request.column, request.value, request.hmac_key
    dry_run, holds, replay_roots = request.dry_run, request.holds, request.replay_roots
    context = target.read_only() if dry_run else target.connect()
    with context as connection:
        catalog = Catalog(connection)
        raise_findings(check_subject(catalog, target.name, config))
        graph = build_graph(catalog, config, column)
        match: ReplayMatch | None = None
        root_where: ColumnElement[bool] | None = None
        if replay_roots is not None:
            match, same = match_replay_roots(connection, config, graph.root, replay_roots, hmac_key)
            root_where = key_match(graph.root, same) if same else sa.false()
        rows = SubjectRows(graph, value, catalog.dialect, root=root_where)
        near_count = 0 if replay_roots is not None else rows.case_insensitive_matches(connection)
        held = {table: keys for (db, table), keys in holds.items() if db == target.name}
        planner = Planner(config, catalog, graph, rows, held)
        try:
            plans = plan_all(connection, planner)
            for plan in plans.values():
                require_columns(plan)
            effects = reference_effects(connection, planner, plans)
            schedule = deletion_schedule(catalog, graph.order, plans)
            outcomes = [
                outcome
                for table in graph.children_first()
                for outcome in table_outcomes(connection, target.name, planner, plans[id(table)])
            ]
            references = [reference_outcome(target.name, e) for e in effects]
            root_plan = plans[id(graph.root)]
            changed_roots = root_plan.delete + root_plan.anonymise
            identities = root_identities(connection, config, graph.root, changed_roots, hmac_key)
            root_name = qualified_name(graph.root)
            roots = [ErasedRoot(root_name, k, fp, hashes) for k, (fp, hashes) in identities.items()]
            if not dry_run:
                apply_all(
                    connection, graph.order, plans, effects, schedule, hmac_key, config.sweep.tz
                )
                after = root_identities(
                    connection, config, graph.root, root_plan.anonymise, hmac_key
                )
                for root in roots:
                    if root.key in after:
                        root.anonymised_fingerprint = after[root.key][0]
                connection.commit()
        except BaseException:
            connection.rollback()
            raise
    return _DatabaseErasure(outcomes, list(plans.values()), references, near_count, roots, match)


def erase_subject(
    config: Config,
    subject: str,
    as_of: dt.datetime,
    *,
    databases: list[str] | None = None,
    dry_run: bool = False,
    preflight: Callable[[], None] | None = None,
    approval: Approval | None = None,
) -> ErasureResult:
    """Erase (or, with dry_run, count) one person's rows in every selected database.

    `preflight` is called once the subject and databases are validated and the sweep
    lock is held, before anything changes: the CLI checks there that the receipt can be
    written (exit 2 if not), so a lock held is still exit 4 and a bad path changes
    nothing — not even the audit trail.
    """
    kind, column, value = parse_subject(subject, config)
    approval = approval or Approval()
    hmac_key = hash_key(config)
    hashed = subject_hash(hmac_key, kind, value)
    targets = select_databases(config, databases)
    check_subject_value(targets, config, column, value)
    day = local_date(as_of, config.sweep.tz)
    with StateStore(config, hmac_key) as store:
        if dry_run:
            if preflight is not None:
                preflight()
            holds = active_holds(config, day)
            return ErasureResult(
                None,
                as_of,
                hashed,
                True,
                [_database(t, _Request(column, value, hmac_key, True, holds)) for t in targets],
                approval.ticket,
            )
        with writing(store, [t.name for t in targets]):
            if preflight is not None:
                preflight()
            # Under the lock, which `hold add` takes too: a hold placed a moment ago
            # is seen, and none can be placed while the erasure runs.
            holds = active_holds(config, day)
            store.mark_interrupted()
            run_id = store.start_run(
                "erase", as_of, subject_hash=hashed, approval=approval.details()
            )
            outcomes: list[DatabaseOutcome] = []
            try:
                for target in targets:
                    outcome = _database(target, _Request(column, value, hmac_key, False, holds))
                    outcomes.append(outcome)
                    if outcome.failure is None:
                        # Only once the erasure committed: a failed one, which changed
                        # nothing, leaves nothing that replay would act on.
                        record_roots(store, run_id, target.name, outcome.roots, hmac_key, hashed)
                    _audit_outcome(store, run_id, hashed, outcome)
            except BaseException:
                store.finish_run(run_id, "failed", {"subject": hashed})
                raise
            result = ErasureResult(run_id, as_of, hashed, False, outcomes, approval.ticket)
            status = "partial" if result.failed else "completed"
            store.finish_run(
                run_id, status, {"subject": hashed, "erased": result.to_json()["erased"]}
            )
            return result


def _audit_outcome(store: StateStore, run_id: int, hashed: str, outcome: DatabaseOutcome) -> None:
    """One `erase` entry per table and per reference changed, then any failure."""

    def erased(database: str, table: str, action: str, rows: int, **details: object) -> None:
        store.append(
            run_id,
            "erase",
            database=database,
            table=table,
            action=action,
            rows=rows,
            details={"subject": hashed, **details},
        )

    for t in outcome.tables:
        erased(t.database, t.table, t.action, t.rows, basis=t.basis, until=t.until, rule=t.rule)
    for r in outcome.references:
        action = f"reference {r.action}"
        erased(
            r.database,
            r.table,
            action,
            r.rows,
            columns=r.columns,
            referenced_table=r.referenced_table,
        )
    if outcome.failure:
        store.append(
            run_id,
            "database-failed",
            database=outcome.database,
            details={"error": outcome.failure["error"], "subject": hashed},
        )


def _database(target: TargetDatabase, request: _Request) -> DatabaseOutcome:
    outcome = DatabaseOutcome(target.name, target.db.controller)
    try:
        erasure = _erase_database(target, request)
        outcome.tables = erasure.outcomes
        outcome.references = erasure.references
        outcome.case_insensitive_matches = erasure.case_insensitive_matches
        outcome.roots = erasure.roots
        outcome.replay = erasure.replay
    except (DatabaseUnavailable, SchemaError, sa.exc.DBAPIError) as exc:
        # A driver's error is described as a failed statement, in a dry run too: its
        # text may quote the person's identifier.
        outcome.failure = database_failure(target, exc, writing=True)
    finally:
        target.dispose()
    return outcome
