"""Which of a person's rows are deleted, anonymised or kept, planned before any change.

Planned over the untouched database (`Planner`, `plan_all`): the table's erase action,
held and shared rows, and rows that must stay because rows that stay refer to them (a
fixpoint over key sets). What that does to other people's references is
references.py, the FK-safe order of the changes schedule.py, the receipt's lines for
a plan outcomes.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..catalog import Catalog, Reference, qualified_name
from ..config import Config, EraseAction
from ..errors import SchemaError
from ..holds.rows import held_predicate, hold_name
from ..rowkeys import RowKey, chunks, key_match
from .graph import PersonReference, SubjectGraph
from .rows import SubjectRows

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
        held_keys: dict[str, list[RowKey]],
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
    keep: list[RowKey] = field(default_factory=list)  # the table's own "keep"
    held: list[RowKey] = field(default_factory=list)
    shared: list[RowKey] = field(default_factory=list)
    anonymise: list[RowKey] = field(default_factory=list)
    delete: list[RowKey] = field(default_factory=list)
    anonymise_note: str | None = None


def pk_columns(table: sa.Table) -> list[sa.Column]:
    """The table's primary key columns (the person's rows are planned by key)."""
    return list(table.primary_key.columns)


def select_keys(
    connection: sa.Connection, table: sa.Table, *where: ColumnElement[bool]
) -> list[RowKey]:
    """The primary keys of the table's rows matching `where`, in key order."""
    pk = pk_columns(table)
    return [tuple(row) for row in connection.execute(sa.select(*pk).where(*where).order_by(*pk))]


def _plan_table(connection: sa.Connection, planner: Planner, table: sa.Table) -> TablePlan:
    """Sort the person's rows of one table by what does not depend on other tables'
    outcomes: kept, held, shared; other people's kept references; the rest."""
    action = planner.action(table)
    plan = TablePlan(table, action)
    mine = planner.rows.of(table)
    if action.action == "keep":
        plan.keep = select_keys(connection, table, mine) if pk_columns(table) else []
        return plan
    if not pk_columns(table):
        raise SchemaError(
            f"subject.erase.{qualified_name(table)}: the table has no primary key, so its "
            "rows cannot be erased one by one; add a primary key"
        )
    taken: set[RowKey] = set()

    def take(where: ColumnElement[bool] | None) -> list[RowKey]:
        if where is None:
            return []
        found = [k for k in select_keys(connection, table, mine, where) if k not in taken]
        taken.update(found)
        return found

    plan.held = take(planner.held(table))
    # Shared rows are another person's data too: kept as they are, whether the table's
    # rows are deleted or anonymised.
    plan.shared = take(planner.shared(table))
    if action.action == "anonymise":
        plan.anonymise = [k for k in select_keys(connection, table, mine) if k not in taken]
        return plan
    plan.anonymise = take(planner.held_by_other_references(table))
    plan.delete = [k for k in select_keys(connection, table, mine) if k not in taken]
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
                moved: set[RowKey] = set()
                for chunk in chunks(plan.delete):
                    moved.update(select_keys(connection, table, key_match(table, chunk), holding))
                if moved:
                    plan.anonymise += [k for k in plan.delete if k in moved]
                    plan.delete = [k for k in plan.delete if k not in moved]
                    changed = True
    for plan in plans.values():
        if plan.action.action == "delete" and plan.anonymise:
            plan.anonymise_note = "kept rows still refer to it"
    return plans


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


def erase_action(config: Config, table: sa.Table) -> EraseAction:
    """Return the configured erase action for a table (default: delete)."""
    assert config.subject is not None
    for action in config.subject.erase:
        if action.table in (table.name, qualified_name(table)):
            return action
    return EraseAction(qualified_name(table))
