"""Other people's rows that refer to the person's changing rows: nulled, kept or refused.

Counted (and, to null them, found by key) before anything changes, over the untouched
database: a "refuse" reference that other people's rows use fails the database here,
in the dry run too. `apply_all` (schedule.py) nulls them in the erasure's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..catalog import qualified_name
from ..errors import SchemaError
from ..rowkeys import RowKey, chunks, count_rows, key_match
from .graph import PersonReference
from .planner import Planner, TablePlan, pk_columns, select_keys
from .rows import references_in


@dataclass
class ReferenceEffect:
    """Other people's rows that point at the person's changing rows through a reference."""

    reference: PersonReference
    rows: int
    keys: list[RowKey] = field(default_factory=list)  # their primary keys, to null by


def reference_effects(
    connection: sa.Connection, planner: Planner, plans: dict[int, TablePlan]
) -> list[ReferenceEffect]:
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
        child_pk = pk_columns(child)
        rows = 0
        keys: list[RowKey] = []
        for chunk in chunks(changing):
            target = sa.and_(
                planner.others(child),
                _refers_to(reference, key_match(reference.parent, chunk)),
            )
            held = planner.held(child)
            if held is not None:  # held rows keep their reference (and what it refers to)
                target = sa.and_(target, sa.not_(held))
            if reference.action == "null" and child_pk:
                found = select_keys(connection, child, target)
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
        effects.append(ReferenceEffect(reference, rows, keys))
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
