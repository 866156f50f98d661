"""The order a person's rows change in, and the changes: FK-safe, cycles broken by nulling.

`deletion_schedule` orders the deletes referencing rows first and breaks foreign-key
cycles by nulling a nullable side (or fails the database before any change);
`apply_all` then acts on exactly the plan, in the one transaction of the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..anonymise import anonymise_rows
from ..catalog import Catalog, qualified_name
from ..errors import SchemaError
from ..rowkeys import chunks, key_match
from .graph import detachable_columns
from .planner import TablePlan, pk_columns
from .references import ReferenceEffect


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
    connection: sa.Connection, plan: TablePlan, hmac_key: bytes, tz: ZoneInfo | None = None
) -> None:
    table = plan.table
    pk = pk_columns(table)
    for chunk in chunks(plan.anonymise):
        anonymise_rows(
            connection, table, pk, plan.action.columns, key_match(table, chunk), hmac_key, tz=tz
        )


def apply_all(
    connection: sa.Connection,
    graph_order: list[sa.Table],
    plans: dict[int, TablePlan],
    effects: list[ReferenceEffect],
    schedule: tuple[list[_Detach], list[sa.Table]],
    hmac_key: bytes,
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
        _anonymise(connection, plans[id(table)], hmac_key, tz)
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
