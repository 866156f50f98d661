"""Which of a person's rows are deleted, anonymised or kept, and in which order.

Planned before anything changes, over the untouched database (`Planner`, `plan_all`):
held and shared rows, rows that must stay (a fixpoint over key sets), other people's
references (`reference_effects`: nulled, kept or refused) and the FK-safe deletion
schedule with cycles broken by nulling (`deletion_schedule`); then `apply_all` acts
on exactly that plan, in the one transaction of the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .anonymise import anonymise_rows
from .config import Config, EraseAction
from .errors import SchemaError
from .holds import held_predicate, hold_name
from .periods import add_period, local_date
from .receipts import LEGAL_HOLD_BASIS, SHARED_BASIS, ReferenceOutcome, TableOutcome
from .rowkeys import Key, chunks, count_rows, key_match
from .schema import Catalog, Reference, qualified_name
from .subject import (
    PersonReference,
    SubjectGraph,
    SubjectRows,
    detachable_columns,
    erase_action,
    references_in,
)

#: FK actions with which deleting a parent neither fails nor removes the child.
_DETACHES = {"SET NULL", "SET DEFAULT"}


class Planner:
    """Which of the person's rows in each table are deleted, anonymised or kept, and why.

    Evaluated before anything changes, as SQL predicates over the untouched database:
    - held: under a legal hold;
    - shared: referenced (through a foreign key that would fail or cascade) by rows
      that are not this person's — another person's link row, say — so kept as is. A
      row of a declared parent table is shared when any other row refers to it;
    - staying: referenced by this person's rows that remain (kept, anonymised, held or
      shared), or by other people's rows through a reference whose action is "keep"
      (or that are held), so anonymised instead of deleted — found by `plan_all` as a
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
class TablePlan:
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


def _plan_table(connection: sa.Connection, planner: Planner, table: sa.Table) -> TablePlan:
    """Sort the person's rows of one table by what does not depend on other tables'
    outcomes: kept, held, shared; other people's kept references; the rest."""
    action = planner.action(table)
    plan = TablePlan(table, action)
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


def _remaining(planner: Planner, plan: TablePlan) -> ColumnElement[bool] | None:
    """The person's rows of the plan's table that will still exist (None: none)."""
    if plan.action.action in ("keep", "anonymise"):
        return planner.rows.of(plan.table)
    staying = plan.held + plan.shared + plan.anonymise
    if not staying:
        return None
    return sa.or_(*(key_match(plan.table, chunk) for chunk in chunks(staying)))


def plan_all(connection: sa.Connection, planner: Planner) -> dict[int, TablePlan]:
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


def table_outcomes(
    connection: sa.Connection, database: str, planner: Planner, plan: TablePlan
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


def require_columns(plan: TablePlan) -> None:
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


def reference_effects(
    connection: sa.Connection, planner: Planner, plans: dict[int, TablePlan]
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


def reference_outcome(database: str, effect: _ReferenceEffect) -> ReferenceOutcome:
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


def deletion_schedule(
    catalog: Catalog, graph_order: list[sa.Table], plans: dict[int, TablePlan]
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
    connection: sa.Connection, plan: TablePlan, key: bytes, tz: ZoneInfo | None = None
) -> None:
    table = plan.table
    pk = _pk_columns(table)
    for chunk in chunks(plan.anonymise):
        anonymise_rows(
            connection, table, pk, plan.action.columns, key_match(table, chunk), key, tz=tz
        )


def apply_all(
    connection: sa.Connection,
    graph_order: list[sa.Table],
    plans: dict[int, TablePlan],
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
