"""A delete rule's `cascade`: its child tables, each with the link to its parent.

`cascade_steps` orders them parents first, each linked by a foreign key or a
`[[subject.links]]` entry; the executor (`execute.py`) deletes them children first.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .catalog import Catalog, qualified_name
from .config import Config, Rule
from .matching import in_select


@dataclass(frozen=True)
class CascadeStep:
    """Delete rows of `child` whose `columns` point at `parent.referred` rows being deleted
    (a composite foreign key matches as a whole)."""

    child: sa.Table
    columns: tuple[str, ...]
    parent: sa.Table
    referred: tuple[str, ...]
    is_link: bool = False  # a [[subject.links]] entry, not a foreign key: matched exactly


def cascade_steps(
    catalog: Catalog, rule: Rule, table: sa.Table, config: Config
) -> list[CascadeStep]:
    """Return the rule's cascade tables with the link to their parent, parents first."""
    children = {}
    for name in rule.cascade:
        child = catalog.table(name)
        assert child is not None, "check_rule() verified the cascade tables"
        children[qualified_name(child)] = child
    links = config.subject.links if config.subject else ()
    steps: list[CascadeStep] = []
    placed = {qualified_name(table): table}
    progress = True
    while progress and len(steps) < len(children):
        progress = False
        for name, child in children.items():
            if any(step.child is child for step in steps):
                continue
            step = _link_to_placed(catalog, child, placed, links)
            if step is not None:
                steps.append(step)
                placed[name] = child
                progress = True
    return steps


def _link_to_placed(
    catalog: Catalog, child: sa.Table, placed: dict[str, sa.Table], links: tuple
) -> CascadeStep | None:
    for parent in placed.values():
        for ref in catalog.references_to(parent):
            if ref.child is child:
                return CascadeStep(child, tuple(ref.columns), parent, tuple(ref.referred_columns))
    for link in links:
        linked = placed.get(link.references_table)
        if linked is not None and catalog.table(link.table) is child and not link.only:
            return CascadeStep(
                child, (link.column,), linked, (link.references_column,), is_link=True
            )
    return None


def cascade_deletes(
    steps: list[CascadeStep], table: sa.Table, rows: ColumnElement[bool], dialect: str
) -> tuple[sa.Delete, ...]:
    """The DELETEs of the cascade tables' rows that refer to `rows` of `table`
    (recursively), the deepest table first: run them before deleting `rows`."""
    return tuple(
        step.child.delete().where(children_of(steps, step, table, rows, dialect))
        for step in reversed(steps)
    )


def children_of(
    steps: list[CascadeStep],
    step: CascadeStep,
    table: sa.Table,
    rows: ColumnElement[bool],
    dialect: str,
) -> ColumnElement[bool]:
    """The rows of `step.child` that refer to `rows` of `table` (recursively).

    Through a foreign key the engine's own comparison decides what refers to what;
    through a configured link the match is exact (matching.py).
    """
    parent = step.parent
    if parent is table:
        parent_rows = rows
    else:
        above = next(s for s in steps if s.child is parent)
        parent_rows = children_of(steps, above, table, rows, dialect)
    columns = [step.child.columns[c] for c in step.columns]
    referred = [parent.columns[c] for c in step.referred]
    if step.is_link:
        return in_select(columns[0], referred[0], parent_rows, dialect)
    if len(columns) == 1:
        return columns[0].in_(sa.select(referred[0]).where(parent_rows))
    return sa.tuple_(*columns).in_(sa.select(*referred).where(parent_rows))
