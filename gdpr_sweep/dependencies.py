"""Rules that feed each other: what a delete takes with it, what holds it back, run order.

A delete rule's rows do not go alone. Their cascade children (the rule's `cascade`, and
tables whose foreign key says `ON DELETE CASCADE`) go with them, and rows that
reference them without an ON DELETE action would make the delete fail. So, for each due
row of a delete rule, this module builds two 2-valued conditions that hold it back:

- **a legal hold below it**: a held row among the rows that would go with it (a held
  contact person keeps its customer; the parent and its children go together or not at
  all);
- **`referenced`**: a row that stays references it — a row of a table outside the
  cascade with no ON DELETE action (an invoice the Bookkeeping Act keeps longer than
  the customer), or a row that an engine-level `ON DELETE CASCADE` would take although
  a rule (or `[subject.erase.T] keep`) keeps it longer. Such a parent goes in the run in
  which those rows go.

"Stays" is judged at the as-of, before the run changes anything: a referencing row
stays unless a delete rule of the same run deletes it. That is what `plan` counts and
what the run pins (`pinning.py`). While the run deletes, the statement re-checks the
plain fact instead (does any such row still reference it?), which after the children's
rules have run is the same answer — and the database's own foreign key would refuse
otherwise.

Rules run in dependency order: a rule whose rows another rule's delete would take
(its table's children, its cascade tables, the same table anonymised before it is
deleted) runs before it, so a parent's children are gone when the parent's turn comes
and every rule acts on the rows it was planned for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .cascade import CascadeStep, cascade_steps
from .catalog import Catalog, Reference, qualified_name
from .config import Config
from .foreign_keys import SELF_RESOLVING
from .holds.rows import held_predicate, hold_name
from .holds.store import HeldKeys
from .matching import equals
from .rules import LEGAL_HOLD, REFERENCED, CompiledRule, RuleException

#: Predicates "this row of the table is deleted by a delete rule of this run".
Goes = Callable[[sa.Table], ColumnElement[bool] | None]


@dataclass(frozen=True)
class _Walk:
    """What a walk down from a delete rule's table reads: the schema, the rule's
    cascade steps, the config, and this database's holds and deletes."""

    catalog: Catalog
    steps: list[CascadeStep]
    config: Config
    database: str
    holds: HeldKeys
    goes: Goes


@dataclass
class _Blockers:
    """Conditions on a row of one table (correlated to it) that hold it back."""

    held: list[ColumnElement[bool]] = field(default_factory=list)
    # (as planned: a referencing row that stays; now: any referencing row, child table)
    referenced: list[tuple[ColumnElement[bool], ColumnElement[bool], str]] = field(
        default_factory=list
    )
    # direct references: the child table, and "this child row stays and refers to a row
    # of the table" as a condition on the child (correlated to nothing): for counting
    staying: list[tuple[sa.Table, ColumnElement[bool], ColumnElement[bool]]] = field(
        default_factory=list
    )


def kept_longer(catalog: Catalog, config: Config, database: str, table: sa.Table) -> bool:
    """Does a delete rule, or `[subject.erase.T] keep`, keep this table's rows for a time?

    Names are resolved through the catalog: `hr.note` is not `note`."""
    if any(
        rule.action == "delete" and rule.applies_to(database) and catalog.table(rule.table) is table
        for rule in config.rules
    ):
        return True
    erase = config.subject.erase if config.subject else ()
    return any(entry.action == "keep" and catalog.table(entry.table) is table for entry in erase)


def _match(
    child: sa.Table, columns: Sequence[str], parent: sa.Table, referred: Sequence[str]
) -> ColumnElement[bool]:
    """Child row refers to the parent row (the engine's own comparison, as its FK does)."""
    return sa.and_(
        *(child.columns[c] == parent.columns[r] for c, r in zip(columns, referred, strict=True))
    )


def _exists(child: sa.Table, *where: ColumnElement[bool]) -> ColumnElement[bool]:
    # correlate_except: the child is always read in the subquery, even when an
    # enclosing statement (a cascade DELETE) targets the same table.
    return (
        sa.select(sa.literal(1)).select_from(child).where(*where).correlate_except(child).exists()
    )


def held_back(
    catalog: Catalog,
    compiled: CompiledRule,
    config: Config,
    database: str,
    holds: HeldKeys,
    goes: Goes,
) -> list[RuleException]:
    """The exceptions that hold back a delete rule's due rows (none for anonymise)."""
    if compiled.rule.action != "delete":
        return []
    steps = cascade_steps(catalog, compiled.rule, compiled.table, config)
    walk = _Walk(catalog, steps, config, database, holds, goes)
    blockers = _blockers_of(walk, compiled.table, {id(compiled.table)})
    exceptions = []
    if blockers.held:
        held = sa.or_(*blockers.held)
        exceptions.append(RuleException(f"{LEGAL_HOLD} on a row that goes with it", held))
    if blockers.referenced:
        planned = sa.or_(*(p for p, _now, _child in blockers.referenced))
        now = sa.or_(*(n for _p, n, _child in blockers.referenced))
        children = tuple(sorted({child for _p, _n, child in blockers.referenced}))
        exceptions.append(
            RuleException(
                REFERENCED,
                planned,
                recheck=now,
                tables=children,
                referencing=tuple(blockers.staying),
            )
        )
    return exceptions


def _blockers_of(walk: _Walk, table: sa.Table, path: set[int]) -> _Blockers:
    """What holds back a row of `table` that is to be deleted (recursively, no cycles)."""
    catalog, database = walk.catalog, walk.database
    result = _Blockers()
    taken: set[tuple[int, tuple[str, ...]]] = set()
    for step in (s for s in walk.steps if s.parent is table):
        child = step.child
        taken.add((id(child), step.columns))
        if id(child) in path:
            continue
        if step.is_link:
            column, referred = child.columns[step.columns[0]], table.columns[step.referred[0]]
            match = equals(column, referred, catalog.dialect)
        else:
            match = _match(child, step.columns, table, step.referred)
        _goes_with(walk, child, match, path, result)
    for ref in catalog.references_to(table):
        child = ref.child
        if child is table:
            # `check` says what a self-reference does (cascaded, nulled, or refused);
            # rows the engine cascades to through it keep the row when one is held.
            if ref.ondelete == "CASCADE":
                keys = walk.holds.get((database, hold_name(catalog, table)), [])
                below = _held_below_itself(catalog, table, ref, keys)
                if below is not None:
                    result.held.append(below)
            continue
        if (id(child), tuple(ref.columns)) in taken or id(child) in path:
            continue
        match = _match(child, ref.columns, table, ref.referred_columns)
        if ref.ondelete == "CASCADE" and not kept_longer(catalog, walk.config, database, child):
            # The engine deletes them with the row: what holds them holds it.
            _goes_with(walk, child, match, path, result)
        elif ref.ondelete in SELF_RESOLVING and ref.ondelete != "CASCADE":
            continue  # SET NULL / SET DEFAULT: the child stays, detached
        else:
            deleted = walk.goes(child)
            stays = [sa.not_(deleted)] if deleted is not None else []
            result.referenced.append(
                (_exists(child, match, *stays), _exists(child, match), qualified_name(child))
            )
            result.staying.append((child, sa.and_(sa.true(), *stays), match))
    return result


def _held_below_itself(
    catalog: Catalog, table: sa.Table, ref: Reference, keys: Sequence[tuple]
) -> ColumnElement[bool] | None:
    """`comment.parent_id → comment.id ON DELETE CASCADE`: is a held row among the
    replies (recursively) the engine would delete with this row?

    The held rows' ancestors, walked upwards by a recursive CTE (UNION, so a cycle
    ends), nested in the condition so that it works inside DELETE on every engine. A
    composite self-reference (`(forum, parent_id) → (forum, id)`) walks all its columns.
    """
    held = held_predicate(table, catalog.primary_key_columns(table), keys, catalog.dialect)
    if held is None:
        return None
    fk_columns = [table.columns[c] for c in ref.columns]
    referred = [table.columns[c] for c in ref.referred_columns]
    names = [f"up{i}" for i in range(len(fk_columns))]
    upper = table.alias("held_parent")
    start = (
        sa.select(*(fk_column.label(n) for fk_column, n in zip(fk_columns, names, strict=True)))
        .where(held, *(fk_column.is_not(None) for fk_column in fk_columns))
        .correlate_except(table)
        .cte("held_ancestors", recursive=True, nesting=True)
    )
    step = sa.select(*(upper.columns[fk_column.name] for fk_column in fk_columns)).where(
        *(upper.columns[r.name] == start.c[n] for r, n in zip(referred, names, strict=True)),
        *(upper.columns[fk_column.name].is_not(None) for fk_column in fk_columns),
    )
    ancestors = start.union(step)
    selected = sa.select(*(ancestors.c[n] for n in names))
    if len(referred) == 1:
        return referred[0].in_(selected)
    return sa.tuple_(*referred).in_(selected)


def _goes_with(
    walk: _Walk, child: sa.Table, match: ColumnElement[bool], path: set[int], result: _Blockers
) -> None:
    """`child`'s rows matching `match` go with the row: their holds and blockers count."""
    catalog = walk.catalog
    keys = walk.holds.get((walk.database, hold_name(catalog, child)), [])
    own_hold = held_predicate(child, catalog.primary_key_columns(child), keys, catalog.dialect)
    below = _blockers_of(walk, child, path | {id(child)})
    held = ([own_hold] if own_hold is not None else []) + below.held
    if held:
        result.held.append(_exists(child, match, sa.or_(*held)))
    for planned, now, name in below.referenced:
        result.referenced.append((_exists(child, match, planned), _exists(child, match, now), name))


def removed_tables(catalog: Catalog, compiled: CompiledRule, config: Config) -> set[int]:
    """Tables whose rows a delete rule may take with its own (and its own table)."""
    if compiled.rule.action != "delete":
        return set()
    seen = {id(compiled.table)}
    frontier = [compiled.table]
    for step in cascade_steps(catalog, compiled.rule, compiled.table, config):
        if id(step.child) not in seen:
            seen.add(id(step.child))
            frontier.append(step.child)
    while frontier:
        table = frontier.pop()
        for ref in catalog.references_to(table):
            if id(ref.child) not in seen:
                seen.add(id(ref.child))
                frontier.append(ref.child)
    return seen


def execution_order(
    catalog: Catalog, compiled: Sequence[CompiledRule], config: Config
) -> list[int]:
    """Indexes of `compiled` in the order to run them: a rule before any delete that takes
    (or is blocked by) its rows. Ties, and cycles, keep the config's order."""
    removes = [removed_tables(catalog, c, config) for c in compiled]
    before: dict[int, set[int]] = {i: set() for i in range(len(compiled))}
    for i, earlier in enumerate(compiled):
        for j, later in enumerate(compiled):
            if i == j or id(earlier.table) not in removes[j]:
                continue
            same_table = earlier.table is later.table
            if same_table and earlier.rule.action == "delete":
                continue  # two deletes of one table: neither takes the other's rows first
            before[j].add(i)
    order: list[int] = []
    remaining = list(range(len(compiled)))
    while remaining:
        ready = next((j for j in remaining if before[j] <= set(order)), remaining[0])
        order.append(ready)
        remaining.remove(ready)
    return order
