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

from .approval import Approval
from .checks import raise_findings, select_databases
from .config import Config, EraseAction
from .engines import TargetDatabase, describe_failure, describe_write_failure
from .errors import DatabaseUnavailable, SchemaError
from .execute import anonymise_rows
from .holds import HeldKeys, active_holds, held_predicate, hold_name, seal
from .keys import hash_key, keyed_hex, keyring
from .periods import add_period, local_date
from .rowkeys import Key, chunks, count_rows, key_match
from .schema import Catalog, Reference, check_subject, qualified_name
from .state.lock import sweep_lock
from .state.store import StateStore
from .subject import (
    PersonReference,
    SubjectGraph,
    SubjectRows,
    build_graph,
    check_subject_value,
    detachable_columns,
    erase_action,
    parse_subject,
    references_in,
)

#: FK actions with which deleting a parent neither fails nor removes the child.
_DETACHES = {"SET NULL", "SET DEFAULT"}

LEGAL_HOLD_BASIS = "legal hold (gdpr-sweep hold list)"
SHARED_BASIS = "shared with another person whose data it also is"

BACKUP_NOTE = (
    "Backups are not altered by this erasure: they expire on their own schedule. If a "
    "database is restored from a backup, `gdpr-sweep replay` re-applies this erasure "
    "to the person's restored rows (recognised by a keyed fingerprint, never anyone "
    "else's), and the retention rules sweep the rest again."
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
class ReferenceOutcome:
    """Other people's rows that referred to the person's erased rows, and what was done
    to their reference: "nulled" or "kept" (counts only)."""

    database: str
    table: str
    columns: list[str]
    referenced_table: str
    action: str  # nulled | kept
    rows: int


@dataclass
class DatabaseOutcome:
    database: str
    controller: str | None
    tables: list[TableOutcome] = field(default_factory=list)
    references: list[ReferenceOutcome] = field(default_factory=list)
    error: str | None = None
    # Root rows whose identifier equals the given one only ignoring case or spaces
    # (a count, never the values): likely the same person typed differently.
    case_insensitive_matches: int = 0
    # For replay and `audit find` only (never in the receipt): the root rows changed.
    roots: list[ErasedRoot] = field(default_factory=list, repr=False)
    replay: ReplayMatch | None = field(default=None, repr=False)


@dataclass
class ErasureResult:
    """The receipt: counts, bases and dates only; the subject as a keyed hash."""

    run_id: int | None
    as_of: dt.datetime
    subject: str
    dry_run: bool
    databases: list[DatabaseOutcome]
    ticket: str | None = None  # the request's reference (--ticket), as given

    @property
    def failed(self) -> bool:
        return any(db.error for db in self.databases)

    @property
    def rows_changed(self) -> int:
        """Rows deleted, anonymised or whose reference was nulled (none in a dry run)."""
        if self.dry_run:
            return 0
        return sum(t.rows for db in self.databases for t in db.tables if t.action != "kept") + sum(
            r.rows for db in self.databases for r in db.references if r.action == "nulled"
        )

    def to_json(self) -> dict[str, Any]:
        tables = [t for db in self.databases for t in db.tables]
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "subject": self.subject,
            "ticket": self.ticket,
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
            "references": [asdict(r) for db in self.databases for r in db.references],
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
        ]
        if self.ticket:
            lines.append(f"Request: {self.ticket}")
        lines.append("")
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
            for r in db.references:
                done = "set to NULL" if r.action == "nulled" else "left in place"
                was = "would be" if self.dry_run else "was"
                lines.append(
                    f"  {r.rows} row(s) of other people in {r.table} referred to this person "
                    f"({', '.join(r.columns)} → {r.referenced_table}): the reference {was} "
                    f"{done}; their rows are otherwise unchanged"
                )
        lines += ["", BACKUP_NOTE]
        return "\n".join(lines)


class _Planner:
    """Which of the person's rows in each table are deleted, anonymised or kept, and why.

    Evaluated before anything changes, as SQL predicates over the untouched database:
    - held: under a legal hold;
    - shared: referenced (through a foreign key that would fail or cascade) by rows
      that are not this person's — another person's link row, say — so kept as is. A
      row of a declared parent table is shared when any other row refers to it;
    - staying: referenced by this person's rows that remain (kept, anonymised, held or
      shared), or by other people's rows through a reference whose action is "keep"
      (or that are held), so anonymised instead of deleted — found by `_plan_all` as a
      fixpoint over the key sets, along chains, self-references and cycles.
    A reference between two people (a self-reference, a `[[subject.references]]`
    entry) never makes the person's row shared: it is nulled, kept or refused.
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
        self._person_references = {
            (id(r.child), r.columns, id(r.parent)): r for r in graph.references
        }
        self._held: dict[int, ColumnElement[bool] | None] = {}
        for table in [*graph.order, *(r.child for r in graph.references)]:
            keys = held_keys.get(hold_name(catalog, table), [])
            pk = list(table.primary_key.columns)
            self._held[id(table)] = held_predicate(table, pk, keys, catalog.dialect)

    def action(self, table: sa.Table) -> EraseAction:
        return erase_action(self.config, table)

    def held(self, table: sa.Table) -> ColumnElement[bool] | None:
        return self._held[id(table)]

    def person_reference(self, table: sa.Table, ref: Reference) -> PersonReference | None:
        return self._person_references.get((id(ref.child), ref.columns, id(table)))

    def others(self, table: sa.Table) -> ColumnElement[bool]:
        """The rows of `table` that are not this person's (all, outside the graph)."""
        return sa.not_(self.rows.of(table)) if id(table) in self.in_graph else sa.true()

    def held_others(self, reference: PersonReference) -> ColumnElement[bool] | None:
        """Other people's rows behind `reference` that are under a legal hold."""
        held = self._held[id(reference.child)]
        return None if held is None else sa.and_(self.others(reference.child), held)

    def binding_refs(self, table: sa.Table, references: bool = True) -> list[Reference]:
        """Foreign keys to `table` whose rows hold its rows in place: deleting a row
        they refer to would fail, or cascade into them. Into a declared parent table
        every key binds (deleting a shared address would detach the other person).
        `references=False` leaves out references between two people, whose other
        people's rows are nulled, kept or refused instead of sharing the row."""
        parent_table = self.graph.is_parent_table(table)
        return [
            ref
            for ref in self.catalog.references_to(table)
            if len(ref.columns) == len(ref.referred_columns)
            and (parent_table or (ref.ondelete or "") not in _DETACHES)
            and (references or self.person_reference(table, ref) is None)
        ]

    def shared(self, table: sa.Table) -> ColumnElement[bool] | None:
        """The person's rows of `table` that other people's rows hold in place."""
        if table is self.graph.root:
            return None  # the person's own row: other people's references are handled
        clauses = [
            _referred_by(table, ref, self.others(ref.child))
            for ref in self.binding_refs(table, references=False)
        ]
        return sa.or_(*clauses) if clauses else None

    def held_by_other_references(self, table: sa.Table) -> ColumnElement[bool] | None:
        """Rows of `table` that other people's references keep pointing at: a reference
        whose action is "keep", or one on a row under a legal hold (never changed)."""
        clauses = []
        for reference in self.graph.references_to(table):
            staying = (
                self.others(reference.child)
                if reference.action == "keep"
                else self.held_others(reference)
            )
            if staying is not None:
                clauses.append(_referred_by(table, _as_reference(reference), staying))
        return sa.or_(*clauses) if clauses else None


def _as_reference(reference: PersonReference) -> Reference:
    return Reference(
        reference.child, reference.columns, reference.referred_columns, reference.ondelete
    )


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
    """Sort the person's rows of one table by what does not depend on other tables'
    outcomes: kept, held, shared; other people's kept references; the rest."""
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
    plan.anonymise = take(planner.held_by_other_references(table))
    plan.delete = [k for k in _keys(connection, table, mine) if k not in taken]
    return plan


def _remaining(planner: _Planner, plan: _TablePlan) -> ColumnElement[bool] | None:
    """The person's rows of the plan's table that will still exist (None: none)."""
    if plan.action.action in ("keep", "anonymise"):
        return planner.rows.of(plan.table)
    staying = plan.held + plan.shared + plan.anonymise
    if not staying:
        return None
    return sa.or_(*(key_match(plan.table, chunk) for chunk in chunks(staying)))


def _plan_all(connection: sa.Connection, planner: _Planner) -> dict[int, _TablePlan]:
    """Plan every table, then move to "anonymise" the rows to delete that rows which
    stay still refer to, until nothing moves (a fixpoint over the key sets).

    A row stays when it is kept, held, shared or anonymised; a row it refers to through
    a key that would fail or cascade on delete must stay too (anonymised), and so on
    along chains, self-references and cycles. Each round asks the database which of a
    table's rows to delete the staying rows of a referencing table refer to; the sets
    only grow, so it ends.
    """
    order = planner.graph.order
    plans = {id(t): _plan_table(connection, planner, t) for t in order}
    changed = True
    while changed:
        changed = False
        for table in order:
            plan = plans[id(table)]
            if plan.action.action != "delete" or not plan.delete:
                continue
            for ref in planner.binding_refs(table):
                child_plan = plans.get(id(ref.child))
                if child_plan is None:
                    continue  # not the person's table: its rows are others' (shared)
                remaining = _remaining(planner, child_plan)
                if remaining is None or not plan.delete:
                    continue
                holding = _referred_by(table, ref, sa.and_(planner.rows.of(ref.child), remaining))
                moved: set[Key] = set()
                for chunk in chunks(plan.delete):
                    moved.update(_keys(connection, table, key_match(table, chunk), holding))
                if moved:
                    plan.anonymise += [k for k in plan.delete if k in moved]
                    plan.delete = [k for k in plan.delete if k not in moved]
                    changed = True
    for plan in plans.values():
        if plan.action.action == "delete" and plan.anonymise:
            plan.anonymise_note = "kept rows still refer to it"
    return plans


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


def _require_columns(plan: _TablePlan) -> None:
    """Rows that must stay anonymised need columns to anonymise: checked while planning,
    so `--dry-run` fails exactly where the erasure would."""
    if plan.anonymise and not plan.action.columns:
        name = qualified_name(plan.table)
        raise SchemaError(
            f"subject.erase.{name}: {len(plan.anonymise)} row(s) must stay because kept "
            "or anonymised rows, or other people's kept references, refer to them, and no "
            f"columns are configured to anonymise them — add columns to [subject.erase.{name}]"
        )


@dataclass
class _ReferenceEffect:
    """Other people's rows that point at the person's changing rows through a reference."""

    reference: PersonReference
    rows: int
    keys: list[Key] = field(default_factory=list)  # their primary keys, to null by


def _reference_effects(
    connection: sa.Connection, planner: _Planner, plans: dict[int, _TablePlan]
) -> list[_ReferenceEffect]:
    """Count (and, to null them, find) the other people's rows behind each reference.

    "refuse" fails the database here, before anything changes, as the dry run does.
    """
    effects = []
    for reference in planner.graph.references:
        plan = plans.get(id(reference.parent))
        if plan is None:
            continue
        changing = plan.delete + plan.anonymise
        child = reference.child
        child_pk = _pk_columns(child)
        rows = 0
        keys: list[Key] = []
        for chunk in chunks(changing):
            target = sa.and_(
                planner.others(child),
                _refers_to(reference, key_match(reference.parent, chunk)),
            )
            held = planner.held(child)
            if held is not None:  # held rows keep their reference (and what it refers to)
                target = sa.and_(target, sa.not_(held))
            if reference.action == "null" and child_pk:
                found = _keys(connection, child, target)
                keys += found
                rows += len(found)
            else:
                rows += count_rows(connection, child, target)
        if not rows:
            continue
        if reference.action == "refuse":
            why = (
                'the reference\'s action is "refuse"'
                if reference.nulled
                else "it cannot be set to NULL — declare it in [[subject.references]] with "
                'action = "keep" to keep it (the person\'s row is then anonymised)'
            )
            raise SchemaError(
                f"{reference.label}: {rows} row(s) of other people refer to the person's "
                f"rows, and {why}; nothing was changed in this database"
            )
        if reference.action == "null" and not child_pk:
            raise SchemaError(
                f"{reference.label}: {qualified_name(child)} has no primary key, so the "
                "other people's references cannot be nulled one by one; add a primary key"
            )
        effects.append(_ReferenceEffect(reference, rows, keys))
    return effects


def _refers_to(reference: PersonReference, parent_rows: ColumnElement[bool]) -> ColumnElement[bool]:
    """Rows of the reference's table that point (key as a whole) at `parent_rows`."""
    return references_in(
        reference.child,
        reference.columns,
        reference.parent,
        reference.referred_columns,
        parent_rows,
    )


def _reference_outcome(database: str, effect: _ReferenceEffect) -> ReferenceOutcome:
    reference = effect.reference
    nulled = reference.action == "null"
    return ReferenceOutcome(
        database,
        qualified_name(reference.child),
        list(reference.nulled if nulled else reference.columns),
        qualified_name(reference.parent),
        "nulled" if nulled else "kept",
        effect.rows,
    )


@dataclass
class _Detach:
    """Before deleting: set `columns` of the person's rows of `table` that are deleted
    to NULL, so a foreign-key cycle among them can be deleted in order."""

    table: sa.Table
    columns: tuple[str, ...]


#: ON DELETE actions with which deleting the referred row does not fail.
_NON_BLOCKING = {"CASCADE", "SET NULL", "SET DEFAULT"}


def _deletion_schedule(
    catalog: Catalog, graph_order: list[sa.Table], plans: dict[int, _TablePlan]
) -> tuple[list[_Detach], list[sa.Table]]:
    """The order to delete in (referencing rows first) and the keys to null first.

    Foreign keys that would block a delete (no ON DELETE action, or RESTRICT) between
    tables with rows to delete are ordered by Kahn's algorithm; a cycle of them (a
    person and her main address, a self-reference among her own rows) is broken by
    nulling the referencing columns of a nullable side on the rows being deleted. A
    cycle with no nullable side cannot be deleted: the database fails before anything
    changes, in the dry run too.
    """
    deleting = [t for t in graph_order if plans[id(t)].delete]
    ids = {id(t) for t in deleting}
    # InnoDB checks a cascaded delete row by row, at once: a cascade into rows that
    # rows being deleted still refer to fails (error 1451), so there a cascade orders
    # the deletes like any key (children first), and a cycle through it must be broken.
    non_blocking = _NON_BLOCKING - (
        {"CASCADE"} if catalog.dialect in ("mysql", "mariadb") else set()
    )
    blocking = [
        (ref, table)
        for table in deleting
        for ref in catalog.references_to(table)
        if id(ref.child) in ids
        and (ref.ondelete or "") not in non_blocking
        and len(ref.columns) == len(ref.referred_columns)
    ]
    detach: list[_Detach] = []
    edges = []
    for ref, table in blocking:
        if ref.child is table:  # a self-reference among the person's own rows
            columns = detachable_columns(ref.child, ref.columns)
            if columns:
                detach.append(_Detach(ref.child, columns))
            continue
        edges.append((ref, table))
    order: list[sa.Table] = []
    done: set[int] = set()
    remaining = list(deleting)
    while remaining:
        # A table is ready once every table whose rows refer to it is deleted.
        ready = next(
            (
                t
                for t in remaining
                if all(id(ref.child) in done for ref, parent in edges if parent is t)
            ),
            None,
        )
        if ready is not None:
            order.append(ready)
            done.add(id(ready))
            remaining.remove(ready)
            continue
        waiting = {id(t) for t in remaining}
        cycle = [
            (ref, parent)
            for ref, parent in edges
            if id(ref.child) in waiting and id(parent) in waiting
        ]
        breakable = next(
            ((ref, parent) for ref, parent in cycle if detachable_columns(ref.child, ref.columns)),
            None,
        )
        if breakable is None:
            names = ", ".join(
                f"{qualified_name(ref.child)}.{'/'.join(ref.columns)} → {qualified_name(p)}"
                for ref, p in cycle
            )
            raise SchemaError(
                f"subject: the foreign keys {names} form a cycle with no nullable column "
                "to break it, so the person's rows in these tables cannot be deleted; "
                "nothing was changed in this database — anonymise one of the tables "
                '([subject.erase.TABLE] action = "anonymise")'
            )
        ref, _parent = breakable
        detach.append(_Detach(ref.child, detachable_columns(ref.child, ref.columns)))
        edges.remove(breakable)
    return detach, order


def _anonymise(
    connection: sa.Connection, plan: _TablePlan, key: bytes, tz: ZoneInfo | None = None
) -> None:
    table = plan.table
    pk = _pk_columns(table)
    for chunk in chunks(plan.anonymise):
        anonymise_rows(
            connection, table, pk, plan.action.columns, key_match(table, chunk), key, tz=tz
        )


def _apply_all(
    connection: sa.Connection,
    graph_order: list[sa.Table],
    plans: dict[int, _TablePlan],
    effects: list[_ReferenceEffect],
    schedule: tuple[list[_Detach], list[sa.Table]],
    key: bytes,
    tz: ZoneInfo | None,
) -> None:
    """Null other people's references, anonymise, break cycles, then delete in order."""
    for effect in effects:
        reference = effect.reference
        if reference.action != "null":
            continue
        values = dict.fromkeys(reference.nulled)
        for chunk in chunks(effect.keys):
            connection.execute(
                reference.child.update().where(key_match(reference.child, chunk)).values(values)
            )
    for table in graph_order:
        _anonymise(connection, plans[id(table)], key, tz)
    detach, order = schedule
    for step in detach:
        values = dict.fromkeys(step.columns)
        for chunk in chunks(plans[id(step.table)].delete):
            connection.execute(
                step.table.update().where(key_match(step.table, chunk)).values(values)
            )
    for table in order:
        for chunk in chunks(plans[id(table)].delete):
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
class ErasedRoot:
    """The person's root row an erasure changed: its key, sealed, and a keyed
    fingerprint of its identifier values (recorded for replay once committed)."""

    table: str  # the root table, as `qualified_name` gives it
    key: Key
    fingerprint: str
    identifier_hashes: list[str]
    anonymised_fingerprint: str | None = None  # what an anonymised root row was left with


@dataclass
class _DatabaseErasure:
    outcomes: list[TableOutcome]
    plans: list[_TablePlan]
    references: list[ReferenceOutcome]
    case_insensitive_matches: int = 0
    roots: list[ErasedRoot] = field(default_factory=list)
    replay: ReplayMatch | None = None


@dataclass
class ReplayMatch:
    """How replay's recorded root rows compared with the restored database."""

    same: int = 0  # the same person: erased again
    not_the_person: int = 0  # the key now holds someone else: never changed
    already_erased: int = 0  # gone, or still as the erasure anonymised it


def root_fingerprint(key: bytes, identifiers: list[tuple[str, Any]]) -> str:
    """A keyed fingerprint of a root row's identifier values (kind, value), any order.

    Equal for the same person's row after a restore (a row changed after the backup
    still carries the same identifiers); different for a new person who got a reused
    key. Never the values themselves.
    """
    canonical = json.dumps(
        [[kind, None if value is None else str(value)] for kind, value in sorted(identifiers)],
        separators=(",", ":"),
    )
    return "hmac-sha256:" + keyed_hex(key, "root-fingerprint", canonical)


def _root_identities(
    connection: sa.Connection, config: Config, root: sa.Table, keys: list[Key], key: bytes
) -> dict[Key, tuple[str, list[str]]]:
    """Per root key: its fingerprint and the keyed hash of each identifier it holds."""
    assert config.subject is not None
    kinds = list(config.subject.identifiers)
    pk = _pk_columns(root)
    found: dict[Key, tuple[str, list[str]]] = {}
    for chunk in chunks(keys):
        selected = sa.select(*pk, *(root.columns[c] for _k, c in kinds)).where(
            key_match(root, chunk)
        )
        for row in connection.execute(selected):
            row_key = tuple(row[: len(pk)])
            values = list(zip((k for k, _c in kinds), row[len(pk) :], strict=True))
            hashes = [subject_hash(key, k, str(v)) for k, v in values if v is not None]
            found[row_key] = (root_fingerprint(key, values), hashes)
    return found


def _match_replay_roots(
    connection: sa.Connection,
    config: Config,
    root: sa.Table,
    recorded: dict[Key, list[tuple[str, str | None]]],
    key: bytes,
) -> tuple[ReplayMatch, list[Key]]:
    """Sort recorded root keys: the same person (erase again), someone else, or done.

    A key may have been erased for two people (reused in between): the row is erased
    again when it is either of them. Fingerprints recorded before a key rotation are
    matched under the old keys (GDPR_SWEEP_OLD_KEYS) too."""
    ring = [key, *(k for k in keyring(config)[1:] if k != key)]
    current = [_root_identities(connection, config, root, list(recorded), k) for k in ring]
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


def _erase_database(
    target: TargetDatabase,
    column: str,
    value: str,
    key: bytes,
    dry_run: bool,
    holds: HeldKeys,
    replay_roots: dict[Key, list[tuple[str, str | None]]] | None = None,
) -> _DatabaseErasure:
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
    context = target.read_only() if dry_run else target.connect()
    with context as connection:
        catalog = Catalog(connection)
        raise_findings(check_subject(catalog, target.name, config))
        graph = build_graph(catalog, config, column)
        match: ReplayMatch | None = None
        root_where: ColumnElement[bool] | None = None
        if replay_roots is not None:
            match, same = _match_replay_roots(connection, config, graph.root, replay_roots, key)
            root_where = key_match(graph.root, same) if same else sa.false()
        rows = SubjectRows(graph, value, catalog.dialect, root=root_where)
        near_count = 0 if replay_roots is not None else rows.case_insensitive_matches(connection)
        held = {table: keys for (db, table), keys in holds.items() if db == target.name}
        planner = _Planner(config, catalog, graph, rows, held)
        try:
            plans = _plan_all(connection, planner)
            for plan in plans.values():
                _require_columns(plan)
            effects = _reference_effects(connection, planner, plans)
            schedule = _deletion_schedule(catalog, graph.order, plans)
            outcomes = [
                outcome
                for table in graph.children_first()
                for outcome in _outcomes(connection, target.name, planner, plans[id(table)])
            ]
            references = [_reference_outcome(target.name, e) for e in effects]
            root_plan = plans[id(graph.root)]
            changed_roots = root_plan.delete + root_plan.anonymise
            identities = _root_identities(connection, config, graph.root, changed_roots, key)
            root_name = qualified_name(graph.root)
            roots = [ErasedRoot(root_name, k, fp, hashes) for k, (fp, hashes) in identities.items()]
            if not dry_run:
                _apply_all(connection, graph.order, plans, effects, schedule, key, config.sweep.tz)
                after = _root_identities(connection, config, graph.root, root_plan.anonymise, key)
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
    key = hash_key(config)
    hashed = subject_hash(key, kind, value)
    targets = select_databases(config, databases)
    check_subject_value(targets, config, column, value)
    day = local_date(as_of, config.sweep.tz)
    with StateStore(config, key) as store:
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
                approval.ticket,
            )
        with sweep_lock(store.engine, store.url):
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
                    outcome = _database(target, column, value, key, False, holds)
                    outcomes.append(outcome)
                    if outcome.error is None:
                        # Only once the erasure committed: a failed one, which changed
                        # nothing, leaves nothing that replay would act on.
                        record_roots(store, run_id, target.name, outcome.roots, key, hashed)
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


def record_roots(
    store: StateStore,
    run_id: int,
    database: str,
    roots: list[ErasedRoot],
    key: bytes,
    given: str,
) -> None:
    """Record for replay the root rows an erasure changed (sealed key, fingerprint),
    and for `audit find` the keyed hash of every identifier they held."""
    records = [
        {
            "table_name": root.table,
            "row_key_sealed": seal(key, database, root.table, root.key),
            "fingerprint": root.fingerprint,
            "anonymised_fingerprint": root.anonymised_fingerprint,
        }
        for root in roots
    ]
    hashes = sorted({h for root in roots for h in root.identifier_hashes} - {given})
    if records or hashes:
        store.record_erased_subjects(run_id, database, records, hashes)


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
    for r in outcome.references:
        store.append(
            run_id,
            "erase",
            database=r.database,
            table=r.table,
            action=f"reference {r.action}",
            rows=r.rows,
            details={
                "subject": hashed,
                "columns": r.columns,
                "referenced_table": r.referenced_table,
            },
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
    replay_roots: dict[Key, list[tuple[str, str | None]]] | None = None,
) -> DatabaseOutcome:
    outcome = DatabaseOutcome(target.name, target.db.controller)
    try:
        erasure = _erase_database(target, column, value, key, dry_run, holds, replay_roots)
        outcome.tables = erasure.outcomes
        outcome.references = erasure.references
        outcome.case_insensitive_matches = erasure.case_insensitive_matches
        outcome.roots = erasure.roots
        outcome.replay = erasure.replay
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
