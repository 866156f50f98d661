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
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .checks import raise_findings, select_databases
from .config import Config, EraseAction
from .engines import TargetDatabase, describe_failure, describe_write_failure
from .errors import DatabaseUnavailable, SchemaError
from .execute import anonymise_rows
from .holds import HeldKeys, active_holds, held_predicate, hold_name
from .keys import hash_key, key_label, keyed_hex
from .periods import add_period, local_date
from .rowkeys import Key, chunks, count_rows, key_match, referencing_first
from .schema import Catalog, Reference, check_subject, qualified_name
from .state.lock import sweep_lock
from .state.store import StateStore
from .subject import SubjectGraph, SubjectRows, build_graph, erase_action, parse_subject

#: FK actions with which deleting a parent neither fails nor removes the child.
_DETACHES = {"SET NULL", "SET DEFAULT"}

LEGAL_HOLD_BASIS = "legal hold (gdpr-sweep hold list)"
SHARED_BASIS = "shared with another person whose data it also is"

BACKUP_NOTE = (
    "Backups are not altered by this erasure: they expire on their own schedule. If a "
    "database is restored from a backup, `gdpr-sweep replay` re-applies this erasure "
    "from the keys recorded for it, and the retention rules sweep the rest again."
)


def subject_hash(key: bytes, kind: str, value: str) -> str:
    """The subject as it may be recorded: a keyed hash of KIND=VALUE."""
    return "hmac-sha256:" + keyed_hex(key, "subject", f"{kind}={value.strip()}")


@dataclass
class TableOutcome:
    """What erasure did (or would do) to one table's rows of the person."""

    database: str
    table: str
    action: str  # deleted | anonymised | kept
    rows: int
    basis: str | None = None
    until: str | None = None
    rule: str | None = None
    note: str | None = None


@dataclass
class DatabaseOutcome:
    database: str
    controller: str | None
    tables: list[TableOutcome] = field(default_factory=list)
    error: str | None = None
    # Root rows whose identifier equals the given one only ignoring case or spaces
    # (a count, never the values): likely the same person typed differently.
    case_insensitive_matches: int = 0


@dataclass
class ErasureResult:
    """The receipt: counts, bases and dates only; the subject as a keyed hash."""

    run_id: int | None
    as_of: dt.datetime
    subject: str
    dry_run: bool
    databases: list[DatabaseOutcome]

    @property
    def failed(self) -> bool:
        return any(db.error for db in self.databases)

    @property
    def rows_changed(self) -> int:
        """Rows deleted or anonymised (none in a dry run: it only counts)."""
        if self.dry_run:
            return 0
        return sum(t.rows for db in self.databases for t in db.tables if t.action != "kept")

    def to_json(self) -> dict[str, Any]:
        tables = [t for db in self.databases for t in db.tables]
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "subject": self.subject,
            "dry_run": self.dry_run,
            "erased": [
                {"database": t.database, "table": t.table, "action": t.action, "rows": t.rows}
                for t in tables
                if t.action != "kept"
            ],
            "kept": [
                {
                    "database": t.database,
                    "table": t.table,
                    "rows": t.rows,
                    "basis": t.basis,
                    "until": t.until,
                    "rule": t.rule,
                }
                for t in tables
                if t.action == "kept"
            ],
            "databases": [
                {
                    "database": db.database,
                    "controller": db.controller,
                    "error": db.error,
                    "case_insensitive_matches": db.case_insensitive_matches,
                }
                for db in self.databases
            ],
            "case_insensitive_matches": sum(db.case_insensitive_matches for db in self.databases),
            "backups": BACKUP_NOTE,
            "tables": [asdict(t) for t in tables],
        }

    def to_text(self) -> str:
        """The receipt in words, for a DPO to send back to the person."""
        verb = "Would erase" if self.dry_run else "Erasure receipt"
        lines = [
            f"{verb} — gdpr-sweep run {self.run_id or '(dry run)'}, "
            f"{self.as_of.isoformat(timespec='seconds')}",
            f"Subject: {self.subject}",
            "(a keyed hash of the identifier; the identifier itself is not stored)",
            "",
        ]
        for db in self.databases:
            who = f" (controller: {db.controller})" if db.controller else ""
            lines.append(f"Database {db.database}{who}:")
            if db.error:
                lines.append(f"  FAILED, nothing changed in this database: {db.error}")
            if not db.tables and not db.error:
                lines.append("  no rows of this person")
            for t in db.tables:
                if t.action == "kept":
                    until = f" until {t.until}" if t.until else ""
                    ends = f" (then deleted by rule {t.rule})" if t.rule else ""
                    lines.append(
                        f"  kept {t.rows} row(s) in {t.table}{until}{ends} — "
                        f"basis: {t.basis or 'legal obligation'}"
                    )
                else:
                    note = f" ({t.note})" if t.note else ""
                    lines.append(f"  {t.action} {t.rows} row(s) in {t.table}{note}")
        lines += ["", BACKUP_NOTE]
        return "\n".join(lines)


class _Planner:
    """Which of the person's rows in each table are deleted, anonymised or kept, and why.

    Evaluated before anything changes, as SQL predicates over the untouched database:
    - held: under a legal hold;
    - shared: referenced (through a foreign key that would fail or cascade) by rows
      that are not this person's — another person's link row, say — so kept as is;
    - staying: referenced by this person's rows that remain (kept, anonymised, held or
      shared), so anonymised instead of deleted.
    """

    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        graph: SubjectGraph,
        rows: SubjectRows,
        held_keys: dict[str, list[Key]],
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.graph = graph
        self.rows = rows
        self.in_graph = {id(t) for t in graph.order}
        self._held: dict[int, ColumnElement[bool] | None] = {}
        for table in graph.order:
            keys = held_keys.get(hold_name(catalog, table), [])
            pk = list(table.primary_key.columns)
            self._held[id(table)] = held_predicate(table, pk, keys, catalog.dialect)
        self._memo: dict[tuple[str, int], ColumnElement[bool] | None] = {}
        self._busy: set[tuple[str, int]] = set()

    def action(self, table: sa.Table) -> EraseAction:
        return erase_action(self.config, table)

    def held(self, table: sa.Table) -> ColumnElement[bool] | None:
        return self._held[id(table)]

    def _binding_refs(self, table: sa.Table) -> list[Reference]:
        return [
            ref
            for ref in self.catalog.references_to(table)
            if len(ref.columns) == len(ref.referred_columns)
            and (ref.ondelete or "") not in _DETACHES
        ]

    def _memoised(self, kind: str, table: sa.Table, build: Any) -> ColumnElement[bool] | None:
        slot = (kind, id(table))
        if slot not in self._memo:
            if slot in self._busy:
                return None  # a cycle of references: do not follow it round again
            self._busy.add(slot)
            try:
                self._memo[slot] = build()
            finally:
                self._busy.discard(slot)
        return self._memo[slot]

    def shared(self, table: sa.Table) -> ColumnElement[bool] | None:
        def build() -> ColumnElement[bool] | None:
            clauses = []
            for ref in self._binding_refs(table):
                others = (
                    sa.not_(self.rows.of(ref.child))
                    if id(ref.child) in self.in_graph
                    else sa.true()
                )
                clauses.append(_referred_by(table, ref, others))
            return sa.or_(*clauses) if clauses else None

        return self._memoised("shared", table, build)

    def remains(self, table: sa.Table) -> ColumnElement[bool] | None:
        """The person's rows in `table` that will still exist afterwards (None: none)."""
        if self.action(table).action in ("keep", "anonymise"):
            return sa.true()
        parts = [self.held(table), self.shared(table), self.staying(table)]
        present = [p for p in parts if p is not None]
        return sa.or_(*present) if present else None

    def staying(self, table: sa.Table) -> ColumnElement[bool] | None:
        def build() -> ColumnElement[bool] | None:
            clauses = []
            for ref in self._binding_refs(table):
                if id(ref.child) not in self.in_graph:
                    continue
                remaining = self.remains(ref.child)
                if remaining is None:
                    continue
                clauses.append(
                    _referred_by(table, ref, sa.and_(self.rows.of(ref.child), remaining))
                )
            return sa.or_(*clauses) if clauses else None

        return self._memoised("staying", table, build)

    def deletion_order(self) -> list[sa.Table]:
        """Graph tables with every table that references another before it (FK-safe)."""
        return referencing_first(self.catalog, list(reversed(self.graph.order)))


def _referred_by(
    table: sa.Table, ref: Reference, where: ColumnElement[bool]
) -> ColumnElement[bool]:
    """Rows of `table` that rows of `ref.child` matching `where` refer to through `ref`.

    A composite key matches as a whole; a referencing row with a NULL in any of its
    columns refers to nothing (MATCH SIMPLE), so it holds nothing back.
    """
    columns = [ref.child.columns[c] for c in ref.columns]
    selected = sa.select(*columns).where(*(c.is_not(None) for c in columns), where)
    referred = [table.columns[c] for c in ref.referred_columns]
    if len(referred) == 1:
        return referred[0].in_(selected)
    return sa.tuple_(*referred).in_(selected)


@dataclass
class _TablePlan:
    """The person's rows of one table, by primary key, sorted into what happens to them."""

    table: sa.Table
    action: EraseAction
    keep: list[Key] = field(default_factory=list)  # the table's own "keep"
    held: list[Key] = field(default_factory=list)
    shared: list[Key] = field(default_factory=list)
    anonymise: list[Key] = field(default_factory=list)
    delete: list[Key] = field(default_factory=list)
    anonymise_note: str | None = None


def _pk_columns(table: sa.Table) -> list[sa.Column]:
    return list(table.primary_key.columns)


def _keys(connection: sa.Connection, table: sa.Table, *where: ColumnElement[bool]) -> list[Key]:
    pk = _pk_columns(table)
    return [tuple(row) for row in connection.execute(sa.select(*pk).where(*where).order_by(*pk))]


def _plan_table(connection: sa.Connection, planner: _Planner, table: sa.Table) -> _TablePlan:
    action = planner.action(table)
    plan = _TablePlan(table, action)
    mine = planner.rows.of(table)
    if action.action == "keep":
        plan.keep = _keys(connection, table, mine) if _pk_columns(table) else []
        return plan
    if not _pk_columns(table):
        raise SchemaError(
            f"subject.erase.{qualified_name(table)}: the table has no primary key, so its "
            "rows cannot be erased one by one; add a primary key"
        )
    taken: set[Key] = set()

    def take(where: ColumnElement[bool] | None) -> list[Key]:
        if where is None:
            return []
        found = [k for k in _keys(connection, table, mine, where) if k not in taken]
        taken.update(found)
        return found

    plan.held = take(planner.held(table))
    # Shared rows are another person's data too: kept as they are, whether the table's
    # rows are deleted or anonymised.
    plan.shared = take(planner.shared(table))
    if action.action == "anonymise":
        plan.anonymise = [k for k in _keys(connection, table, mine) if k not in taken]
        return plan
    plan.anonymise = take(planner.staying(table))
    if plan.anonymise:
        plan.anonymise_note = "kept rows still refer to it"
    plan.delete = [k for k in _keys(connection, table, mine) if k not in taken]
    return plan


def _outcomes(
    connection: sa.Connection, database: str, planner: _Planner, plan: _TablePlan
) -> list[TableOutcome]:
    name = qualified_name(plan.table)
    outcomes = []
    if plan.action.action == "keep":
        where = planner.rows.of(plan.table)
        rows = (
            len(plan.keep) if _pk_columns(plan.table) else count_rows(connection, plan.table, where)
        )
        if rows:
            basis, until = _kept_until(connection, planner.config, plan.action, plan.table, where)
            outcomes.append(
                TableOutcome(database, name, "kept", rows, basis, until, plan.action.rule)
            )
        return outcomes
    if plan.held:
        outcomes.append(
            TableOutcome(database, name, "kept", len(plan.held), basis=LEGAL_HOLD_BASIS)
        )
    if plan.shared:
        outcomes.append(TableOutcome(database, name, "kept", len(plan.shared), basis=SHARED_BASIS))
    if plan.anonymise:
        outcomes.append(
            TableOutcome(
                database, name, "anonymised", len(plan.anonymise), note=plan.anonymise_note
            )
        )
    if plan.delete:
        outcomes.append(TableOutcome(database, name, "deleted", len(plan.delete)))
    return outcomes


def _apply(
    connection: sa.Connection, plan: _TablePlan, key: bytes, tz: ZoneInfo | None = None
) -> None:
    table = plan.table
    if plan.anonymise:
        if not plan.action.columns:
            raise SchemaError(
                f"subject.erase.{qualified_name(table)}: {len(plan.anonymise)} row(s) must "
                "stay because kept or anonymised rows reference them, and no columns are "
                f"configured to anonymise them — add columns to [subject.erase."
                f"{qualified_name(table)}]"
            )
        pk = _pk_columns(table)
        for chunk in chunks(plan.anonymise):
            anonymise_rows(
                connection, table, pk, plan.action.columns, key_match(table, chunk), key, tz=tz
            )
    for chunk in chunks(plan.delete):
        connection.execute(table.delete().where(key_match(table, chunk)))


def _kept_until(
    connection: sa.Connection,
    config: Config,
    action: EraseAction,
    table: sa.Table,
    where: ColumnElement[bool],
) -> tuple[str | None, str | None]:
    """Return (basis, last day kept) for a keep table, from the rule that ends it."""
    rule = next((r for r in config.rules if r.id == action.rule), None)
    basis = action.basis or (rule.basis if rule else None)
    if rule is None or rule.since is None or rule.since not in table.columns:
        return basis, None
    latest = connection.execute(
        sa.select(sa.func.max(table.columns[rule.since])).where(where)
    ).scalar()
    if latest is None:
        return basis, None
    if isinstance(latest, str):  # SQLite keeps dates as text
        latest = dt.datetime.fromisoformat(latest.replace(" ", "T"))
    if isinstance(latest, dt.datetime):
        tz = config.sweep.tz
        latest = local_date(latest if latest.tzinfo else latest.replace(tzinfo=tz), tz)
    if rule.from_fiscal_year_end:
        latest = config.sweep.fiscal_year_end.end_of_year_holding(latest)
    return basis, add_period(latest, rule.after).isoformat()


@dataclass
class _DatabaseErasure:
    outcomes: list[TableOutcome]
    plans: list[_TablePlan]
    case_insensitive_matches: int = 0


def _erase_database(
    target: TargetDatabase,
    column: str,
    value: str,
    key: bytes,
    dry_run: bool,
    holds: HeldKeys,
    record: Any = None,
) -> _DatabaseErasure:
    """Sort the person's rows first, then act on them by key, referencing rows first.

    The sorting reads the untouched database, so a table found through a link that
    points "upwards" (a shared note found through a link table) is sorted correctly
    before the link rows it was found through are deleted. One transaction: committed
    at the end, rolled back on any error.
    """
    config = target.config
    context = target.read_only() if dry_run else target.connect()
    with context as connection:
        catalog = Catalog(connection)
        raise_findings(check_subject(catalog, target.name, config))
        graph = build_graph(catalog, config, column)
        rows = SubjectRows(graph, value, catalog.dialect)
        near_count = rows.case_insensitive_matches(connection)
        held = {table: keys for (db, table), keys in holds.items() if db == target.name}
        planner = _Planner(config, catalog, graph, rows, held)
        try:
            plans = {id(t): _plan_table(connection, planner, t) for t in graph.order}
            outcomes = [
                outcome
                for table in graph.children_first()
                for outcome in _outcomes(connection, target.name, planner, plans[id(table)])
            ]
            if not dry_run:
                if record is not None:
                    record([plans[id(t)] for t in graph.order])
                for table in planner.deletion_order():
                    _apply(connection, plans[id(table)], key, config.sweep.tz)
                connection.commit()
        except BaseException:
            connection.rollback()
            raise
    return _DatabaseErasure(outcomes, list(plans.values()), near_count)


def erase_subject(
    config: Config,
    subject: str,
    as_of: dt.datetime,
    *,
    databases: list[str] | None = None,
    dry_run: bool = False,
    preflight: Callable[[], None] | None = None,
) -> ErasureResult:
    """Erase (or, with dry_run, count) one person's rows in every selected database.

    `preflight` is called once the subject and databases are validated and the sweep
    lock is held, before anything changes: the CLI checks there that the receipt can be
    written (exit 2 if not), so a lock held is still exit 4 and a bad path changes
    nothing — not even the audit trail.
    """
    kind, column, value = parse_subject(subject, config)
    key = hash_key(config)
    hashed = subject_hash(key, kind, value)
    targets = select_databases(config, databases)
    day = local_date(as_of, config.sweep.tz)
    store = StateStore(config, key)
    try:
        if dry_run:
            if preflight is not None:
                preflight()
            holds = active_holds(config, day)
            return ErasureResult(
                None,
                as_of,
                hashed,
                True,
                [_database(t, column, value, key, True, holds) for t in targets],
            )
        with sweep_lock(store.engine, store.url):
            if preflight is not None:
                preflight()
            # Under the lock, which `hold add` takes too: a hold placed a moment ago
            # is seen, and none can be placed while the erasure runs.
            holds = active_holds(config, day)
            store.mark_interrupted()
            run_id = store.start_run("erase", as_of, subject_hash=hashed)
            outcomes: list[DatabaseOutcome] = []
            try:
                for target in targets:

                    def record(plans: list[_TablePlan], name: str = target.name) -> None:
                        store.record_erased(run_id, name, _erased_records(plans, key))

                    outcome = _database(target, column, value, key, False, holds, record)
                    outcomes.append(outcome)
                    _audit_outcome(store, run_id, hashed, outcome)
            except BaseException:
                store.finish_run(run_id, "failed", {"subject": hashed})
                raise
            result = ErasureResult(run_id, as_of, hashed, False, outcomes)
            status = "partial" if result.failed else "completed"
            store.finish_run(
                run_id, status, {"subject": hashed, "erased": result.to_json()["erased"]}
            )
            return result
    finally:
        store.close()


def _erased_records(plans: list[_TablePlan], key: bytes) -> list[dict[str, Any]]:
    """The keys to record for replay: integers as they are, anything else as a keyed hash."""
    records = []
    for plan in plans:
        table = qualified_name(plan.table)
        strategies = json.dumps([list(c) for c in plan.action.columns])
        for action, keys in (("deleted", plan.delete), ("anonymised", plan.anonymise)):
            for row_key in keys:
                replayable = all(isinstance(v, int) for v in row_key)
                stored = (
                    json.dumps(list(row_key))
                    if replayable
                    else json.dumps(
                        key_label(key, json.dumps(list(row_key), default=str), personal=True)
                    )
                )
                records.append(
                    {
                        "table_name": table,
                        "action": action,
                        "row_key": stored,
                        "replayable": replayable,
                        "strategies": strategies if action == "anonymised" else None,
                    }
                )
    return records


def _audit_outcome(store: StateStore, run_id: int, hashed: str, outcome: DatabaseOutcome) -> None:
    for t in outcome.tables:
        store.append(
            run_id,
            "erase",
            database=t.database,
            table=t.table,
            action=t.action,
            rows=t.rows,
            details={"subject": hashed, "basis": t.basis, "until": t.until, "rule": t.rule},
        )
    if outcome.error:
        store.append(
            run_id,
            "database-failed",
            database=outcome.database,
            details={"error": outcome.error, "subject": hashed},
        )


def _database(
    target: TargetDatabase,
    column: str,
    value: str,
    key: bytes,
    dry_run: bool,
    holds: HeldKeys,
    record: Any = None,
) -> DatabaseOutcome:
    outcome = DatabaseOutcome(target.name, target.db.controller)
    try:
        erasure = _erase_database(target, column, value, key, dry_run, holds, record)
        outcome.tables = erasure.outcomes
        outcome.case_insensitive_matches = erasure.case_insensitive_matches
    except (DatabaseUnavailable, SchemaError) as exc:
        outcome.error = str(exc)
    except sa.exc.DBAPIError as exc:
        reason = (
            describe_write_failure(exc)
            if isinstance(exc, sa.exc.StatementError)
            else describe_failure(exc, target.url)
        )
        outcome.error = f"database {target.name}: {reason}"
    finally:
        target.dispose()
    return outcome
