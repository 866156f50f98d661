"""A named person's tables: the subject graph, from reflected foreign keys and links.

The root rows are those of `subject.root` whose identifier column equals the value
given with `--subject KIND=VALUE` (identifiers.py). Every table that reaches the root
through foreign keys (any depth, composite keys matched as a whole, tables in any
schema the connection sees; cycles and self-references are skipped) or a
`[[subject.links]]` entry holds the person's rows, and so do the declared parent
tables her rows refer to (upward). References between two people (a self-reference,
a `[[subject.references]]` entry) are recorded, never followed. Which rows of each
table are hers is rows.py: one nested, set-based predicate per table, parents first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..catalog import Catalog, Reference, qualified_name
from ..config import Config, Scalar, SubjectReference
from ..ordering import dependencies_first


@dataclass(frozen=True)
class Edge:
    """`child.columns` refer to `parent.referred_columns` (a foreign key, possibly
    composite, or a configured link, always one column).

    Ownership runs downward: the child's rows are the person's when they refer to the
    person's rows of the parent. An `upward` edge leads to a declared parent table: the
    parent's rows are the person's when the person's child rows refer to them.
    """

    child: sa.Table
    columns: tuple[str, ...]
    parent: sa.Table
    referred_columns: tuple[str, ...]
    is_foreign_key: bool
    ondelete: str | None = None
    only: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()
    upward: bool = False

    @property
    def column(self) -> str:
        """The leading referencing column: the one an index must start with."""
        return self.columns[0]

    @property
    def source(self) -> sa.Table:
        """The table whose selected rows select the other's."""
        return self.child if self.upward else self.parent

    @property
    def target(self) -> sa.Table:
        """The table whose rows this edge finds."""
        return self.parent if self.upward else self.child


@dataclass(frozen=True)
class PersonReference:
    """A foreign key by which other people's rows point at the person's rows.

    A self-referencing key always is one (the people who report to a manager); any
    other is declared in `[[subject.references]]`. It is never followed into the
    graph. `action` says what erasing the person does to the other people's rows:
    "null" sets `nulled` (columns of the key) to NULL, "keep" leaves them (so the rows
    they refer to stay, anonymised), "refuse" fails the database.
    """

    child: sa.Table
    columns: tuple[str, ...]
    parent: sa.Table
    referred_columns: tuple[str, ...]
    ondelete: str | None
    action: str
    nulled: tuple[str, ...]
    label: str


@dataclass
class SubjectGraph:
    """The tables holding a person's rows in one database, each after those it is
    found from (parents before children; declared parent tables after their children)."""

    root: sa.Table
    identifier: sa.Column
    order: list[sa.Table] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    references: list[PersonReference] = field(default_factory=list)
    #: Tables reached only as declared parents: nothing is found downward from them,
    #: and a row of theirs another person's row refers to is shared.
    parent_tables: list[sa.Table] = field(default_factory=list)

    def incoming(self, table: sa.Table) -> list[Edge]:
        """Edges by which `table`'s rows are found (from tables placed before it)."""
        position = {id(t): i for i, t in enumerate(self.order)}
        return [
            e
            for e in self.edges
            if e.target is table and position.get(id(e.source), 10**9) < position[id(table)]
        ]

    def is_parent_table(self, table: sa.Table) -> bool:
        return any(t is table for t in self.parent_tables)

    def references_to(self, table: sa.Table) -> list[PersonReference]:
        return [r for r in self.references if r.parent is table]

    def children_first(self) -> Iterator[sa.Table]:
        return reversed(self.order)


def names_table(catalog: Catalog, name: str, table: sa.Table) -> bool:
    """Does the config's table name `name` ("t" or "schema.t") name `table`?"""
    found = catalog.table(name)
    if found is None:
        return False
    if found is table:
        return True
    default = catalog.default_schema
    return (found.schema or default, found.name) == (table.schema or default, table.name)


def _declared_reference(
    catalog: Catalog, config: Config, child: sa.Table, columns: tuple[str, ...]
) -> SubjectReference | None:
    assert config.subject is not None
    for declared in config.subject.references:
        if declared.column in columns and names_table(catalog, declared.table, child):
            return declared
    return None


def detachable_columns(table: sa.Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of a foreign key of `table` that setting to NULL detaches a row from
    what it refers to: every nullable one outside the table's own primary key (one
    NULL is enough under MATCH SIMPLE). Empty: the key cannot be detached."""
    own_key = {c.name for c in table.primary_key.columns}
    return tuple(c for c in columns if c not in own_key and table.columns[c].nullable)


def _person_reference(
    parent: sa.Table, ref: Reference, declared: SubjectReference | None
) -> PersonReference:
    child = ref.child
    arrow = f"{qualified_name(child)}.{', '.join(ref.columns)} → {qualified_name(parent)}"
    columns: tuple[str, ...]
    if declared is not None:
        action, columns = declared.action, (declared.column,)
        named = f"subject.references[{declared.index}] ({arrow})"
    else:  # an undeclared self-reference: nulled where it can be, refused otherwise
        columns = detachable_columns(child, ref.columns)
        action, named = ("null" if columns else "refuse"), f"the self-reference {arrow}"
    return PersonReference(
        child, ref.columns, parent, ref.referred_columns, ref.ondelete, action, columns, named
    )


def build_graph(catalog: Catalog, config: Config, identifier_column: str) -> SubjectGraph:
    """Walk foreign keys and links outwards from the root table, then up to the
    declared parent tables the person's rows refer to."""
    assert config.subject is not None
    root = catalog.table(config.subject.root)
    assert root is not None, "check_subject() verified the root table"
    graph = SubjectGraph(root, root.columns[identifier_column], order=[root])
    placed = {qualified_name(root): root}
    queue = [root]
    links = list(config.subject.links)
    seen_references: set[tuple[int, tuple[str, ...], int]] = set()
    while queue:
        parent = queue.pop(0)
        found: list[Edge] = []
        for ref in catalog.references_to(parent):
            if len(ref.columns) != len(ref.referred_columns):
                continue
            declared = _declared_reference(catalog, config, ref.child, ref.columns)
            if ref.child is parent or declared is not None:
                # A reference between two people: never followed as ownership.
                slot = (id(ref.child), ref.columns, id(parent))
                if slot not in seen_references:
                    seen_references.add(slot)
                    graph.references.append(_person_reference(parent, ref, declared))
                continue
            found.append(
                Edge(ref.child, ref.columns, parent, ref.referred_columns, True, ref.ondelete)
            )
        for link in links:
            if catalog.table(link.references_table) is parent:
                child = catalog.table(link.table)
                assert child is not None
                found.append(
                    Edge(
                        child,
                        (link.column,),
                        parent,
                        (link.references_column,),
                        False,
                        None,
                        link.only,
                    )
                )
        for edge in found:
            graph.edges.append(edge)
            name = qualified_name(edge.child)
            if name not in placed:
                placed[name] = edge.child
                graph.order.append(edge.child)
                queue.append(edge.child)
    graph.order = _parents_first(graph.order, graph.edges)
    _add_declared_parents(catalog, config, graph, placed)
    return graph


def _add_declared_parents(
    catalog: Catalog, config: Config, graph: SubjectGraph, placed: dict[str, sa.Table]
) -> None:
    """Add the declared parent tables that the person's rows refer to, upward.

    A parent table already reached through ownership stays an owned table. The others
    are placed after every table that refers to them (a parent of a parent after its
    child); nothing is followed downward from them.
    """
    assert config.subject is not None
    candidates = []
    for name in config.subject.parents:
        table = catalog.table(name)
        if table is not None and qualified_name(table) not in placed:
            candidates.append(table)
    reached: list[sa.Table] = []
    sources = list(graph.order)
    changed = True
    while changed:  # parents of parents, until nothing more is reached
        changed = False
        for table in candidates:
            if any(t is table for t in reached):
                continue
            in_graph = {id(t) for t in sources}
            if any(id(ref.child) in in_graph for ref in catalog.references_to(table)):
                reached.append(table)
                sources.append(table)
                changed = True
    in_graph = {id(t) for t in sources}
    for table in reached:
        for ref in catalog.references_to(table):
            if (
                id(ref.child) not in in_graph
                or ref.child is table
                or len(ref.columns) != len(ref.referred_columns)
            ):
                continue
            graph.edges.append(
                Edge(
                    ref.child,
                    ref.columns,
                    table,
                    ref.referred_columns,
                    True,
                    ref.ondelete,
                    upward=True,
                )
            )
    graph.parent_tables = reached
    graph.order += _sources_first(reached, graph.edges)


def _parents_first(discovered: list[sa.Table], edges: list[Edge]) -> list[sa.Table]:
    """Order tables so each comes after every graph table it refers to, the root first.

    A table that refers to two graph tables (the root and a case table, say) must come
    after both, so its rows are found through either. In a cycle, the table discovered
    first goes first and its edge back into the cycle is not followed.
    """
    root, rest = discovered[0], discovered[1:]

    def parents(table: sa.Table) -> set[int]:
        return {id(e.parent) for e in edges if e.child is table}

    return [root, *dependencies_first(rest, parents, done=[id(root)])]


def _sources_first(tables: list[sa.Table], edges: list[Edge]) -> list[sa.Table]:
    """Order declared parent tables so each comes after the parent tables it is found
    from (a cycle among them is broken at the first reached)."""
    return dependencies_first(tables, lambda t: {id(e.source) for e in edges if e.target is t})
