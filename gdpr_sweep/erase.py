"""Erase one named person from every database: delete, anonymise or keep, per table.

Per database, one transaction, children before parents:

- `keep` tables (a legal obligation, e.g. invoices) are counted, not touched; the
  receipt says on what basis and until when (from the rule that will delete them);
- `anonymise` tables get the configured strategies;
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
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .checks import raise_findings, select_databases
from .config import Config, EraseAction
from .engines import TargetDatabase, describe_failure, describe_write_failure
from .errors import DatabaseUnavailable, SchemaError
from .execute import anonymise_rows
from .holds import HeldKeys, active_holds
from .keys import hash_key, keyed_hex
from .periods import add_period, local_date
from .schema import Catalog, check_subject, qualified_name
from .state.lock import sweep_lock
from .state.store import StateStore
from .subject import SubjectGraph, SubjectRows, build_graph, erase_action, parse_subject

#: FK actions with which deleting a parent neither fails nor removes the child.
_DETACHES = {"SET NULL", "SET DEFAULT"}

LEGAL_HOLD_BASIS = "legal hold (gdpr-sweep hold list)"

BACKUP_NOTE = (
    "Backups are not altered by this erasure: they expire on their own schedule, and a "
    "database restored from a backup is swept again by gdpr-sweep's retention rules."
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
                {"database": db.database, "controller": db.controller, "error": db.error}
                for db in self.databases
            ],
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
    """The predicates and counts for one database's erasure."""

    def __init__(
        self,
        config: Config,
        graph: SubjectGraph,
        rows: SubjectRows,
        held_keys: dict[str, list[int]],
    ) -> None:
        self.config = config
        self.graph = graph
        self.rows = rows
        self._held: dict[int, ColumnElement[bool] | None] = {}
        for table in graph.order:
            keys = held_keys.get(qualified_name(table))
            pk = next(iter(table.primary_key.columns), None)
            self._held[id(table)] = pk.in_(sorted(keys)) if keys and pk is not None else None
        self._stays: dict[int, ColumnElement[bool] | None] = {}
        for table in graph.children_first():
            self._stays[id(table)] = self._compute_stays(table)

    def action(self, table: sa.Table) -> EraseAction:
        return erase_action(self.config, table)

    def held(self, table: sa.Table) -> ColumnElement[bool] | None:
        """Rows of `table` under a legal hold (None: none)."""
        return self._held[id(table)]

    def remains(self, table: sa.Table) -> ColumnElement[bool] | None:
        """Rows of the person in `table` that will still exist afterwards (None: none)."""
        if self.action(table).action in ("keep", "anonymise"):
            return sa.true()
        parts = [p for p in (self._stays[id(table)], self._held[id(table)]) if p is not None]
        return sa.or_(*parts) if parts else None

    def stays(self, table: sa.Table) -> ColumnElement[bool] | None:
        return self._stays[id(table)]

    def _compute_stays(self, table: sa.Table) -> ColumnElement[bool] | None:
        """Rows of a table that remaining rows reference through a binding foreign key."""
        clauses = []
        for edge in self.graph.referencing(table):
            if not edge.is_foreign_key or (edge.ondelete or "") in _DETACHES:
                continue
            remaining = self.remains(edge.child)
            if remaining is None:
                continue
            column = edge.child.columns[edge.column]
            referencing = sa.select(column).where(
                self.rows.of(edge.child), remaining, column.is_not(None)
            )
            clauses.append(table.columns[edge.referred].in_(referencing))
        return sa.or_(*clauses) if clauses else None


def _count(connection: sa.Connection, table: sa.Table, *where: ColumnElement[bool]) -> int:
    return connection.execute(
        sa.select(sa.func.count()).select_from(table).where(*where)
    ).scalar_one()


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


def _erase_database(
    target: TargetDatabase,
    column: str,
    value: str,
    key: bytes,
    dry_run: bool,
    holds: HeldKeys,
) -> list[TableOutcome]:
    config = target.config
    outcomes: list[TableOutcome] = []
    context = target.read_only() if dry_run else target.connect()
    with context as connection:
        catalog = Catalog(connection)
        raise_findings(check_subject(catalog, target.name, config))
        graph = build_graph(catalog, config, column)
        rows = SubjectRows(graph, value)
        held = {table: keys for (db, table), keys in holds.items() if db == target.name}
        planner = _Planner(config, graph, rows, held)
        # One transaction for the whole database (it began with the reflection above):
        # committed at the end, rolled back on any error.
        try:
            for table in graph.children_first():
                outcomes.extend(_erase_table(connection, target.name, planner, table, key, dry_run))
            if not dry_run:
                connection.commit()
        except BaseException:
            connection.rollback()
            raise
    return outcomes


def _erase_table(
    connection: sa.Connection,
    database: str,
    planner: _Planner,
    table: sa.Table,
    key: bytes,
    dry_run: bool,
) -> list[TableOutcome]:
    name = qualified_name(table)
    mine = planner.rows.of(table)
    action = planner.action(table)
    pk = next(iter(table.primary_key.columns), None)
    outcomes = []
    held = planner.held(table)
    if held is not None and action.action != "keep":
        on_hold = _count(connection, table, mine, held)
        if on_hold:
            outcomes.append(TableOutcome(database, name, "kept", on_hold, basis=LEGAL_HOLD_BASIS))
        mine = sa.and_(mine, sa.not_(held))
    if action.action == "keep":
        rows = _count(connection, table, mine)
        if not rows:
            return []
        basis, until = _kept_until(connection, planner.config, action, table, mine)
        return [TableOutcome(database, name, "kept", rows, basis, until, action.rule)]
    if action.action == "anonymise":
        rows = (
            _count(connection, table, mine)
            if dry_run
            else _anonymise(connection, table, pk, action, mine, key)
        )
        return outcomes + ([TableOutcome(database, name, "anonymised", rows)] if rows else [])
    stays = planner.stays(table)
    if stays is not None:
        staying = _count(connection, table, mine, stays)
        if staying and not action.columns:
            raise SchemaError(
                f"database {database}: subject.erase.{name}: {staying} row(s) must stay because "
                "kept or anonymised rows reference them, and no columns are configured to "
                "anonymise them — add columns to [subject.erase." + name + "]"
            )
        if staying:
            if not dry_run:
                staying = _anonymise(connection, table, pk, action, sa.and_(mine, stays), key)
            outcomes.append(
                TableOutcome(
                    database, name, "anonymised", staying, note="kept rows still refer to it"
                )
            )
        mine = sa.and_(mine, sa.not_(stays))
    if dry_run:
        deleted = _count(connection, table, mine)
    else:
        deleted = connection.execute(table.delete().where(mine)).rowcount
    if deleted:
        outcomes.append(TableOutcome(database, name, "deleted", deleted))
    return outcomes


def _anonymise(
    connection: sa.Connection,
    table: sa.Table,
    pk: sa.Column | None,
    action: EraseAction,
    where: ColumnElement[bool],
    key: bytes,
) -> int:
    if pk is None:
        raise SchemaError(f"subject.erase.{qualified_name(table)}: the table has no primary key")
    return anonymise_rows(connection, table, pk, action.columns, where, key)


def erase_subject(
    config: Config,
    subject: str,
    as_of: dt.datetime,
    *,
    databases: list[str] | None = None,
    dry_run: bool = False,
) -> ErasureResult:
    """Erase (or, with dry_run, count) one person's rows in every selected database."""
    kind, column, value = parse_subject(subject, config)
    key = hash_key(config)
    hashed = subject_hash(key, kind, value)
    targets = select_databases(config, databases)
    holds = active_holds(config, local_date(as_of, config.sweep.tz))
    store = StateStore(config, key)
    try:
        if dry_run:
            return ErasureResult(
                None,
                as_of,
                hashed,
                True,
                [_database(t, column, value, key, True, holds) for t in targets],
            )
        with sweep_lock(store.engine, store.url):
            store.mark_interrupted()
            run_id = store.start_run("erase", as_of, subject_hash=hashed)
            outcomes: list[DatabaseOutcome] = []
            try:
                for target in targets:
                    outcome = _database(target, column, value, key, False, holds)
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
    target: TargetDatabase, column: str, value: str, key: bytes, dry_run: bool, holds: HeldKeys
) -> DatabaseOutcome:
    outcome = DatabaseOutcome(target.name, target.db.controller)
    try:
        outcome.tables = _erase_database(target, column, value, key, dry_run, holds)
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
