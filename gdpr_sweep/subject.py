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

from .catalog import Catalog, Reference, qualified_name
from .config import Config, EraseAction, Scalar, SubjectReference
from .engines import TargetDatabase
from .errors import DatabaseUnavailable, UsageError
from .matching import equals, equals_ignoring_case, in_select, in_values, is_text
from .ordering import dependencies_first


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
    if declared is not None:
        return PersonReference(
            child,
            ref.columns,
            parent,
            ref.referred_columns,
            ref.ondelete,
            declared.action,
            (declared.column,),
            f"subject.references[{declared.index}] ({arrow})",
        )
    # An undeclared self-reference: nulled where it can be, refused otherwise.
    nullable = detachable_columns(child, ref.columns)
    return PersonReference(
        child,
        ref.columns,
        parent,
        ref.referred_columns,
        ref.ondelete,
        "null" if nullable else "refuse",
        nullable,
        f"the self-reference {arrow}",
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


def check_subject_value(
    targets: list[TargetDatabase], config: Config, column: str, value: str
) -> None:
    """Check `--subject`'s value against the root's identifier column in every selected
    database before anything is recorded or changed (exit 2, the value never quoted):
    one database erased and the next refusing the value would be exit 2 after a change.
    A database that cannot be read or lacks the root is left to fail on its own later."""
    assert config.subject is not None
    for target in targets:
        try:
            with target.read_only() as connection:
                catalog = Catalog(connection)
                root = catalog.table(config.subject.root)
                if root is not None and column in root.columns:
                    _identifier_value(root.columns[column], value, catalog.dialect)
        except (sa.exc.DBAPIError, DatabaseUnavailable):
            continue
        finally:
            target.dispose()


def _identifier_value(column: sa.Column, value: str, dialect: str | None = None) -> object:
    """Bind the CLI's text as the identifier column's own type, checked before any query.

    Text that is not a value of the column's type (an e-mail for a UUID, `2024-02-30`
    for a date, an integer the column cannot hold) is exit 2 naming `--subject`, the
    column and the type, never the value: a database would otherwise refuse it with an
    error quoting it. Text for a text column is bound as given, whatever its length: a
    value longer than a VARCHAR(n) finds no rows (SQLite does not enforce n at all).
    A type not listed here (binary, json, interval, …) is bound as text, and any error
    the database gives is reported without its text (engines.describe_failure).

    `dialect` decides what a plain INTEGER holds (64 bits on SQLite, 32 elsewhere);
    without it a plain integer type is checked against 64 bits only.
    """
    checked = _typed_identifier(column.type, value, dialect)
    if isinstance(checked, _NotOfType):
        raise UsageError(
            f"--subject: {qualified_name(column.table)}.{column.name} is {checked.expected}; "
            "the value given is not one"
        )
    return checked


class _NotOfType:
    """The text is not a value of the type; `expected` names the type (never the text)."""

    def __init__(self, expected: str) -> None:
        self.expected = expected


def _typed_identifier(kind: object, text: str, dialect: str | None) -> object:
    """`text` as a value of the SQL type `kind`, or a _NotOfType saying what it must be."""
    import datetime as dt
    import decimal
    import re
    import uuid

    if isinstance(kind, sa.Boolean):
        flag = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}
        found = flag.get(text.strip().lower())
        return _NotOfType("a boolean (true or false)") if found is None else found
    if isinstance(kind, sa.Integer):
        bits = {"TINYINT": 8, "SMALLINT": 16, "small_integer": 16, "MEDIUMINT": 24}.get(
            kind.__visit_name__, 64 if kind.__visit_name__ in ("BIGINT", "big_integer") else 32
        )
        generic = type(kind).__module__.startswith("sqlalchemy.sql")
        if dialect == "sqlite" or (dialect is None and generic):
            bits = 64  # every SQLite integer column holds 64 bits; the engine unknown: the widest
        if getattr(kind, "unsigned", False):  # MariaDB's UNSIGNED
            low, high = 0, 2**bits - 1
        else:
            low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        expected = f"an integer from {low} to {high}"
        if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            return _NotOfType(expected)
        number = int(text)
        return number if low <= number <= high else _NotOfType(expected)
    if isinstance(kind, sa.Uuid):
        try:
            found_uuid = uuid.UUID(text.strip())
        except ValueError:
            return _NotOfType("a UUID")
        return found_uuid if kind.as_uuid else str(found_uuid)
    if isinstance(kind, sa.Enum):
        members = list(kind.enums)
        if members and text not in members:
            return _NotOfType(f"one of the {len(members)} values of its enum")
        return text
    if isinstance(kind, sa.String):
        return text  # exactly as given: case, accents, spaces and length count
    if isinstance(kind, sa.DateTime):
        aware = bool(getattr(kind, "timezone", False))
        # MariaDB TIMESTAMP: UTC in the session (engines.py), so either form is exact.
        utc_session = kind.__visit_name__ == "TIMESTAMP" and not type(kind).__module__.startswith(
            ("sqlalchemy.sql", "sqlalchemy.dialects.postgresql")
        )
        if aware:
            expected = "an ISO 8601 timestamp with a UTC offset"
        elif utc_session:
            expected = "an ISO 8601 timestamp (UTC unless an offset is given)"
        else:
            expected = "an ISO 8601 timestamp without a UTC offset"
        try:
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return _NotOfType(expected)
        if utc_session and moment.tzinfo is not None:
            return moment.astimezone(dt.UTC).replace(tzinfo=None)
        if (moment.tzinfo is not None) != aware and not utc_session:
            return _NotOfType(expected)
        return moment
    if isinstance(kind, sa.Date):
        try:
            return dt.date.fromisoformat(text.strip())
        except ValueError:
            return _NotOfType("a date (YYYY-MM-DD)")
    if isinstance(kind, sa.Time):
        try:
            return dt.time.fromisoformat(text.strip())
        except ValueError:
            return _NotOfType("a time (HH:MM:SS)")
    if isinstance(kind, sa.Numeric):
        number_text = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
        if not re.fullmatch(number_text, text.strip()):
            return _NotOfType("a number")
        exact = decimal.Decimal(text.strip())
        if isinstance(kind, sa.Float) or not kind.asdecimal:
            as_float = float(exact)
            return as_float if abs(as_float) != float("inf") else _NotOfType("a number")
        return exact
    return text  # another type: the database compares it (its errors are reported textless)


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
                _identifier_value(graph.identifier, value, dialect),
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


def erase_action(config: Config, table: sa.Table) -> EraseAction:
    """Return the configured erase action for a table (default: delete)."""
    assert config.subject is not None
    for action in config.subject.erase:
        if action.table in (table.name, qualified_name(table)):
            return action
    return EraseAction(qualified_name(table))
