"""A named person's rows: the predicates selecting them in every table of the graph.

A child's rows are those whose referencing columns are IN the parent's selected rows
(a composite key as a whole), one nested, set-based predicate per table, built
parents first; a declared parent's rows are those the person's child rows refer to.
Every predicate is two-valued, so its negation is exactly the other people's rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..matching import equals, equals_ignoring_case, in_select, in_values, is_text
from .graph import Edge, SubjectGraph
from .identifiers import identifier_value


def references_in(
    child: sa.Table,
    columns: tuple[str, ...],
    parent: sa.Table,
    referred: tuple[str, ...],
    where: ColumnElement[bool],
) -> ColumnElement[bool]:
    """`child.columns IN (SELECT parent.referred WHERE where)`, the key as a whole.

    A row with a NULL in any of its referencing columns refers to nothing (as the
    engine's MATCH SIMPLE foreign key has it), and matches nothing here either. The
    predicate is never NULL (both sides are filtered to non-NULL values), so its
    negation is exactly the other rows: `NOT (x IN (…, NULL))` would be NULL, which
    would hide another person's row from a "shared" test.
    """
    selected_columns = [parent.columns[c] for c in referred]
    selected = sa.select(*selected_columns).where(
        where, *(c.is_not(None) for c in selected_columns)
    )
    present = [child.columns[c].is_not(None) for c in columns]
    if len(columns) == 1:
        return sa.and_(*present, child.columns[columns[0]].in_(selected))
    return sa.and_(*present, sa.tuple_(*(child.columns[c] for c in columns)).in_(selected))


class SubjectRows:
    """The predicates selecting one person's rows in every table of the graph."""

    def __init__(
        self,
        graph: SubjectGraph,
        value: str,
        dialect: str,
        root: ColumnElement[bool] | None = None,
    ) -> None:
        """`root`: the root rows by another predicate than the identifier (replay finds
        them by their recorded keys); `value` is then not used."""
        self.graph = graph
        self.value = value
        self.dialect = dialect
        if root is None:
            bound = sa.bindparam(
                "subject_value",
                identifier_value(graph.identifier, value, dialect),
                type_=graph.identifier.type,
            )
            # Every equality is exact (matching.py): under a case-insensitive collation
            # `jorg@x` must not find `JORG@x` or `jörg@x`, who may be someone else.
            root = sa.and_(graph.identifier.is_not(None), equals(graph.identifier, bound, dialect))
        # Every predicate is two-valued (never NULL), so NOT of it is exactly the rows
        # that are not the person's.
        self._predicates: dict[int, ColumnElement[bool]] = {id(graph.root): root}
        for table in graph.order[1:]:
            clauses = [self._found_through(edge) for edge in graph.incoming(table)]
            self._predicates[id(table)] = sa.or_(*clauses) if clauses else sa.false()

    def _found_through(self, edge: Edge) -> ColumnElement[bool]:
        """The rows of `edge.target` that the person's rows of `edge.source` select."""
        dialect = self.dialect
        clause: ColumnElement[bool]
        if edge.upward:
            # A declared parent: the rows the person's child rows refer to.
            return references_in(
                edge.parent, edge.referred_columns, edge.child, edge.columns, self.of(edge.child)
            )
        parent_rows = self.of(edge.parent)
        if edge.is_foreign_key:
            # A declared foreign key refers to what the engine says it refers to (under
            # the column's collation); the engine enforces exactly that. A composite key
            # matches as a whole: (tenant_id, candidate_id) IN (SELECT tenant_id, id ...),
            # never one column on its own.
            clause = references_in(
                edge.child, edge.columns, edge.parent, edge.referred_columns, parent_rows
            )
        else:
            child_column = edge.child.columns[edge.columns[0]]
            referred = edge.parent.columns[edge.referred_columns[0]]
            clause = sa.and_(
                child_column.is_not(None),
                in_select(
                    child_column, referred, sa.and_(parent_rows, referred.is_not(None)), dialect
                ),
            )
        for column, values in edge.only:
            only = edge.child.columns[column]
            clause = sa.and_(clause, only.is_not(None), in_values(only, values, dialect))
        return clause

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
