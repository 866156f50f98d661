"""What `init` knows about each reflected table: its personal-looking columns (with their
data category), its clock columns, its keys — from reflection, plus counts of a sample.

Names, types and constraints come from the catalog; from the rows only counts are read
(`sample_counts`: how many of the first rows are NULL in a column; `matching_count`:
how many sampled values of a column are keys of another table), each one set-based
query in the database, never a row's value in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from ..catalog import Catalog
from ..columns import ColumnKind, column_kind
from ..matching import equals
from ..personal_patterns import (
    DEFAULT_COMPILED,
    PATTERN_LABELS,
    category_of,
    personal_pattern,
    snake_case,
)
from ..state.models import metadata as state_metadata

#: Rows sampled per query: counts of a bounded sample, never a scan of a large table.
SAMPLE_ROWS = 10_000
#: Values sampled to tell whether a column holds another table's keys (each one is
#: looked up there, so fewer).
SAMPLE_VALUES = 1_000


@dataclass(frozen=True)
class PersonalColumn:
    """A column whose name looks personal: what it looks like and its data category."""

    name: str
    label: str  # "an e-mail address"
    category: str  # "contact"
    #: Why no strategy can be written for it ("" if one can): a generated column, or a
    #: name the config cannot hold (a dot, a control character).
    unwritable: str = ""

    @property
    def is_identifier(self) -> bool:
        """An e-mail address or identity number: a person can be named by it."""
        return not self.unwritable and self.label in (
            "an e-mail address",
            "an identity number or document",
        )


@dataclass
class TableFacts:
    """One table as `init` sees it."""

    name: str  # as the config names it: "t", or "schema.t" outside the default schema
    table: sa.Table
    personal: list[PersonalColumn] = field(default_factory=list)
    key_category: str | None = None  # the primary key itself looks personal (an e-mail)
    clocks: list[str] = field(default_factory=list)  # date and timestamp columns
    foreign: set[str] = field(default_factory=set)  # columns of its foreign keys

    @property
    def has_key(self) -> bool:
        return bool(self.table.primary_key.columns)

    @property
    def identifiers(self) -> list[PersonalColumn]:
        return [c for c in self.personal if c.is_identifier]

    @property
    def is_personal(self) -> bool:
        return bool(self.personal) or self.personal_key

    @property
    def personal_key(self) -> bool:
        return self.key_category is not None

    @property
    def categories(self) -> set[str]:
        found = {c.category for c in self.personal}
        return found | {self.key_category} if self.key_category else found


#: The longest name the config takes (config/nodes.py).
_MAX_NAME = 128


def nameable(name: str) -> bool:
    """Can a config name this table or column (printable, no dot, not too long)?"""
    return bool(name) and name.isprintable() and "." not in name and len(name) <= _MAX_NAME


def _is_state_table(table: sa.Table) -> bool:
    """One of the tool's own state tables (the state database reached as a target)."""
    if table.name == "alembic_version":
        return {c.name for c in table.columns} == {"version_num"}
    ours = state_metadata.tables.get(table.name)
    if ours is None:
        return False
    needed = {c.name for c in ours.columns if not c.nullable}
    return needed <= {c.name for c in table.columns}


def table_names(
    catalog: Catalog, schemas: list[str], skipped: list[str] | None = None
) -> list[str]:
    """The tables to draft for (never views, partitions or our own state tables), named
    as the config names them: the default schema's unqualified, the others "schema.t".
    A table whose name the config cannot hold (a dot, a control character) is added to
    `skipped`, with why, never silently left out."""
    default = catalog.default_schema
    names = []
    for schema in schemas or [None]:  # type: ignore[list-item]
        own = schema is None or schema == default
        for table in sorted(catalog.inspector.get_table_names(schema=schema)):
            if not nameable(table) or not (own or nameable(schema)):
                shown = repr(table if own else f"{schema}.{table}")
                if skipped is not None:
                    skipped.append(
                        f"{shown}: a config cannot name it (a dot or a control character "
                        "in its name): rename it for a rule to cover it"
                    )
                continue
            name = table if own else f"{schema}.{table}"
            if catalog.partition_parent(name) is None:
                names.append(name)
    return names


#: Categories that say more than the others when a name matches several
#: (`health_notes` is health data before it is free text).
_TELLING = ("health", "special-category", "identity-number", "financial", "online-identifier")


def _most_telling(column: str, first: str) -> str:
    matches = [
        p for p, rx in DEFAULT_COMPILED if rx.search(column) or rx.search(snake_case(column))
    ]
    for category in _TELLING:
        for pattern in matches:
            if category_of(pattern) == category:
                return pattern
    return first


def table_facts(catalog: Catalog, name: str) -> TableFacts | None:
    """Classify one table's columns; None for a table to leave alone."""
    table = catalog.table(name)
    if table is None or _is_state_table(table):
        return None
    facts = TableFacts(name, table, foreign=catalog.foreign_key_columns(table))
    for column in table.columns:
        pattern = personal_pattern(column.name)
        kind = column_kind(column, catalog.dialect)
        if pattern is not None and column.primary_key:
            if not isinstance(column.type, sa.Integer):
                facts.key_category = category_of(pattern) or "personal"
        elif pattern is not None and column.name not in facts.foreign:
            pattern = _most_telling(column.name, pattern)
            label = PATTERN_LABELS.get(pattern, "personal data")
            category = category_of(pattern) or "personal"
            unwritable = _unwritable(column)
            facts.personal.append(PersonalColumn(column.name, label, category, unwritable))
        elif (
            kind is not ColumnKind.OTHER
            and column.name not in facts.foreign
            and nameable(column.name)  # else `since` could not name it
        ):
            facts.clocks.append(column.name)
    return facts


#: Why a generated column gets no strategy: it follows the columns it is computed from.
GENERATED = "a generated column: computed from other columns, no UPDATE may set it"


def _unwritable(column: sa.Column) -> str:
    """Why no strategy can be written for a personal column, or ""."""
    if not nameable(column.name):
        return "a config cannot name it (a dot or a control character in its name)"
    if column.computed is not None:
        return GENERATED
    return ""


def sample_counts(
    connection: sa.Connection, table: sa.Table, column: str
) -> tuple[int, int] | None:
    """(rows sampled, of which NULL in `column`): counts of the first SAMPLE_ROWS rows;
    None if the rows cannot be read (no SELECT privilege): the schema is still drafted."""
    sample = sa.select(table.columns[column].label("c")).limit(SAMPLE_ROWS).subquery()
    query = sa.select(sa.func.count(), sa.func.count(sample.c.c)).select_from(sample)
    try:
        with connection.begin_nested():
            rows, present = connection.execute(query).one()
    except sa.exc.DBAPIError:
        return None
    return int(rows), int(rows) - int(present)


def comparable(a: sa.Column, b: sa.Column) -> bool:
    """Can the two columns be compared without the engine casting one of them?"""
    both_int = isinstance(a.type, sa.Integer) and isinstance(b.type, sa.Integer)
    both_text = isinstance(a.type, sa.String) and isinstance(b.type, sa.String)
    return (both_int or both_text) and not isinstance(a.type, sa.Enum | sa.Boolean)


def matching_count(
    connection: sa.Connection, column: sa.Column, target: sa.Column
) -> tuple[int, int]:
    """(non-NULL values sampled from `column`, of which equal to some `target` value):
    one set-based query (an EXISTS per sampled row), counts only; (0, 0) if the engine
    cannot compare them. Equal means exactly equal, as the sweep will match the link
    (`matching.equals`): `Anna@x.dk` is no `anna@x.dk` under a case-insensitive collation."""
    values = sa.select(column.label("c")).where(column.is_not(None))
    sample = values.limit(SAMPLE_VALUES).subquery()  # each one looked up in the target
    hit = sa.exists().where(equals(target, sample.c.c, connection.dialect.name))
    query = sa.select(
        sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((hit, 1), else_=0)), 0)
    ).select_from(sample)
    try:
        with connection.begin_nested():
            sampled, matched = connection.execute(query).one()
    except sa.exc.DBAPIError:
        return 0, 0
    return int(sampled), int(matched)
