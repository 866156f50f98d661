"""A delete rule's `cascade`: its child tables, each with the link to its parent.

`cascade_steps` orders them parents first, each linked by a foreign key or a
`[[subject.links]]` entry; the executor (`execute.py`) deletes them children first.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .catalog import Catalog, qualified_name
from .config import Config, Rule


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
