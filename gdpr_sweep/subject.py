"""A named person's rows: the subject graph, from reflected foreign keys and links.

The root rows are those of `subject.root` whose identifier column equals the value
given with `--subject KIND=VALUE` (a bound parameter, never spliced). Every table that
reaches the root through foreign keys (any depth, composite keys matched as a whole,
tables in any schema the connection sees; cycles and self-references are skipped) or a
`[[subject.links]]` entry holds the person's rows: a child's rows are those whose
referencing columns are IN the parent's selected rows — one nested, set-based
predicate per table, built parents first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .config import Config, EraseAction, Scalar
from .errors import UsageError
from .matching import equals, equals_ignoring_case, in_select, in_values, is_text
from .schema import Catalog, qualified_name


@dataclass(frozen=True)
class Edge:
    """`child.columns` refer to `parent.referred_columns` (a foreign key, possibly
    composite, or a configured link, always one column)."""

    child: sa.Table
    columns: tuple[str, ...]
    parent: sa.Table
    referred_columns: tuple[str, ...]
    is_foreign_key: bool
    ondelete: str | None = None
    only: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()

    @property
    def column(self) -> str:
        """The leading referencing column: the one an index must start with."""
        return self.columns[0]


@dataclass
class SubjectGraph:
    """The tables holding a person's rows in one database, parents before children."""

    root: sa.Table
    identifier: sa.Column
    order: list[sa.Table] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def incoming(self, table: sa.Table) -> list[Edge]:
        """Edges by which `table`'s rows are found (to tables placed before it)."""
        position = {id(t): i for i, t in enumerate(self.order)}
        return [
            e
            for e in self.edges
            if e.child is table and position.get(id(e.parent), 10**9) < position[id(table)]
        ]

    def referencing(self, table: sa.Table) -> list[Edge]:
        """Edges from tables of the graph that point at `table` (any direction in order)."""
        return [e for e in self.edges if e.parent is table and e.child is not table]

    def children_first(self) -> Iterator[sa.Table]:
        return reversed(self.order)


def parse_subject(text: str, config: Config) -> tuple[str, str, str]:
    """Split `KIND=VALUE`; return (kind, identifier column, value). Unknown kind: exit 2."""
    if config.subject is None:
        raise UsageError("--subject: the config has no [subject] section")
    kind, sep, value = text.partition("=")
    kinds = dict(config.subject.identifiers)
    if not sep or not value:
        raise UsageError("--subject: expected KIND=VALUE, e.g. email=person@example.com")
    if kind not in kinds:
        raise UsageError(
            f"--subject: unknown identifier kind {kind!r}; the config has {', '.join(kinds)}"
        )
    return kind, kinds[kind], value


def build_graph(catalog: Catalog, config: Config, identifier_column: str) -> SubjectGraph:
    """Walk foreign keys and links outwards from the root table."""
    assert config.subject is not None
    root = catalog.table(config.subject.root)
    assert root is not None, "check_subject() verified the root table"
    graph = SubjectGraph(root, root.columns[identifier_column], order=[root])
    placed = {qualified_name(root): root}
    queue = [root]
    links = list(config.subject.links)
    while queue:
        parent = queue.pop(0)
        found: list[Edge] = []
        for ref in catalog.references_to(parent):
            if ref.child is parent or len(ref.columns) != len(ref.referred_columns):
                continue  # self-references are not followed
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
    return graph


def _parents_first(discovered: list[sa.Table], edges: list[Edge]) -> list[sa.Table]:
    """Order tables so each comes after every graph table it refers to (Kahn's algorithm).

    A table that refers to two graph tables (the root and a case table, say) must come
    after both, so its rows are found through either. In a cycle, the table discovered
    first goes first and its edge back into the cycle is not followed.
    """
    parents = {
        id(t): {id(e.parent) for e in edges if e.child is t and e.parent is not t}
        for t in discovered
    }
    order = [discovered[0]]
    placed = {id(discovered[0])}
    remaining = discovered[1:]
    while remaining:
        # In a cycle nothing is ready: break it at the earliest discovered table.
        chosen = next((t for t in remaining if parents[id(t)] <= placed), remaining[0])
        order.append(chosen)
        placed.add(id(chosen))
        remaining.remove(chosen)
    return order


def references_in(
    child: sa.Table,
    columns: tuple[str, ...],
    parent: sa.Table,
    referred: tuple[str, ...],
    where: ColumnElement[bool],
) -> ColumnElement[bool]:
    """`child.columns IN (SELECT parent.referred WHERE where)`, the key as a whole.

    A row with a NULL in any of its referencing columns refers to nothing (as the
    engine's MATCH SIMPLE foreign key has it), and matches nothing here either.
    """
    selected = sa.select(*(parent.columns[c] for c in referred)).where(where)
    if len(columns) == 1:
        return child.columns[columns[0]].in_(selected)
    return sa.tuple_(*(child.columns[c] for c in columns)).in_(selected)


def _identifier_value(column: sa.Column, value: str) -> object:
    """Bind the CLI's text as the identifier column's own type."""
    if isinstance(column.type, sa.Integer):
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"--subject: {column.name} is a number") from None
    return value


class SubjectRows:
    """The predicates selecting one person's rows in every table of the graph."""

    def __init__(self, graph: SubjectGraph, value: str, dialect: str) -> None:
        self.graph = graph
        self.value = value
        self.dialect = dialect
        bound = sa.bindparam(
            "subject_value", _identifier_value(graph.identifier, value), type_=graph.identifier.type
        )
        # Every equality is exact (matching.py): under a case-insensitive collation
        # `jorg@x` must not find `JORG@x` or `jörg@x`, who may be someone else.
        self._predicates: dict[int, ColumnElement[bool]] = {
            id(graph.root): equals(graph.identifier, bound, dialect)
        }
        for table in graph.order[1:]:
            clauses = []
            for edge in graph.incoming(table):
                parent_rows = self.of(edge.parent)
                clause: ColumnElement[bool]
                if edge.is_foreign_key:
                    # A declared foreign key refers to what the engine says it refers
                    # to (under the column's collation); the engine enforces exactly that.
                    # A composite key matches as a whole: (tenant_id, candidate_id) IN
                    # (SELECT tenant_id, id ...), never one column on its own.
                    clause = references_in(
                        edge.child, edge.columns, edge.parent, edge.referred_columns, parent_rows
                    )
                else:
                    child_column = edge.child.columns[edge.columns[0]]
                    referred = edge.parent.columns[edge.referred_columns[0]]
                    clause = in_select(child_column, referred, parent_rows, dialect)
                for column, values in edge.only:
                    clause = sa.and_(clause, in_values(table.columns[column], values, dialect))
                clauses.append(clause)
            self._predicates[id(table)] = sa.or_(*clauses)

    def of(self, table: sa.Table) -> ColumnElement[bool]:
        """The predicate of the person's rows in `table`."""
        return self._predicates[id(table)]

    def case_insensitive_matches(self, connection: sa.Connection) -> int:
        """Count the root rows whose identifier equals the value only ignoring case and
        surrounding spaces: likely the same person typed differently (a count only)."""
        if not is_text(self.graph.identifier):
            return 0
        near = equals_ignoring_case(self.graph.identifier, self.value, self.dialect)
        return connection.execute(
            sa.select(sa.func.count()).select_from(self.graph.root).where(near)
        ).scalar_one()


def erase_action(config: Config, table: sa.Table) -> EraseAction:
    """Return the configured erase action for a table (default: delete)."""
    assert config.subject is not None
    for action in config.subject.erase:
        if action.table in (table.name, qualified_name(table)):
            return action
    return EraseAction(qualified_name(table))
