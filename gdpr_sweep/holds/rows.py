"""The rows a hold names: the SQL predicate that keeps them out of every rule and
erasure (`held_predicate`), the name a table's holds are stored under (`hold_name`,
`resolve_table`), and the row `hold add` names, found exactly in its database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..catalog import Catalog, partition_message, qualified_name, split_name
from ..engines import TargetDatabase
from ..errors import DatabaseUnavailable, SchemaError, UsageError
from ..matching import equals, in_values
from .keys import key_values, label_text


def held_predicate(
    table: sa.Table, key_columns: Sequence[sa.Column], keys: Sequence[tuple[Any, ...]], dialect: str
) -> ColumnElement[bool] | None:
    """Rows of `table` whose primary key is one of the held `keys` (None: no keys).

    Exact on every engine (`matching`): a collation never widens it to another row.
    And 2-valued: key columns are never NULL, so `NOT held` is exactly the rows that
    are not held (the rule's `due` is `candidate AND NOT (... OR held)`). A held key
    that no longer fits the table's primary key (the key was changed since) refuses
    the table rather than let the hold quietly stop holding.
    """
    wanted = list(dict.fromkeys(tuple(k) for k in keys))
    if not wanted:
        return None
    columns = list(key_columns)
    if not columns or any(len(k) != len(columns) for k in wanted):
        raise SchemaError(
            f"holds: a hold on {qualified_name(table)} names a key of another shape than the "
            f"table's primary key ({', '.join(c.name for c in columns) or 'none'}); release "
            "it (gdpr-sweep hold list / hold release) and hold the row again"
        )
    if len(columns) == 1:
        return in_values(columns[0], [held_key(columns[0], k[0]) for k in wanted], dialect)
    return sa.or_(
        *(
            sa.and_(
                *(equals(c, held_key(c, v), dialect) for c, v in zip(columns, key, strict=True))
            )
            for key in wanted
        )
    )


#: The name of every bound held key (`held_key_1`, …): `plan --sql` never shows them.
HELD_KEY = "held_key"


def held_key(column: sa.Column, value: Any) -> sa.BindParameter:
    """A held row's key value, bound under a name that says what it is."""
    return sa.bindparam(HELD_KEY, value, type_=column.type, unique=True)


def hold_name(catalog: Catalog, table: sa.Table) -> str:
    """The name holds on a reflected table are stored under: `public.t` (a rule that
    spells out the default schema) is `t`, as `hold add` stores it (`resolve_table`)."""
    if table.schema is not None and table.schema == catalog.inspector.default_schema_name:
        return table.name
    return qualified_name(table)


def resolve_table(catalog: Catalog, database: str, name: str) -> sa.Table:
    """The reflected table `name`, under the name the rules use (else exit 2).

    A name qualified with the connection's default schema (`public.t`, `main.t`, the
    MariaDB database itself) is the bare name, because a rule's `table = "t"` reflects
    without a schema and holds are looked up by `qualified_name()` of that table.
    """
    schema, bare = split_name(name)
    malformed = not bare or ("." in name and schema is None)  # "t." or ".t"
    if schema is not None and schema == catalog.inspector.default_schema_name:
        name = bare
    parent = None if malformed else catalog.partition_parent(name)
    if parent is not None:  # a hold on a partition's row is a hold on the parent's row
        raise UsageError(f"--table: {partition_message(name, parent)}")
    table = None if malformed else catalog.table(name)
    if table is None:
        raise UsageError(f"--table: database {database} has no table {name!r}")
    return table


@dataclass(frozen=True)
class HeldRow:
    """The row a hold names, found in the target database."""

    table: str  # the canonical name (as the rules look it up)
    values: tuple[Any, ...]
    personal: bool


def find_row(target: TargetDatabase, table: str, given: Sequence[str]) -> HeldRow:
    """Resolve the table and key and check the row exists, exactly; else exit 2."""
    from ..execute import is_personal_key  # execute imports rules, which imports holds

    database = target.name
    try:
        with target.read_only() as connection:
            catalog = Catalog(connection)
            reflected = resolve_table(catalog, database, table)
            columns = list(catalog.primary_key_columns(reflected))
            name = qualified_name(reflected)
            if not columns:
                raise UsageError(
                    f"--table: {name} in database {database} has no primary key; holds name "
                    "a row by it"
                )
            values = key_values(reflected, columns, given)
            personal = is_personal_key(columns)
            match = held_predicate(reflected, columns, [values], catalog.dialect)
            assert match is not None
            found = connection.execute(
                sa.select(sa.literal(1)).select_from(reflected).where(match).limit(1)
            ).first()
    except sa.exc.DBAPIError as exc:
        # The driver's text may quote the key: name only the kind of failure.
        raise DatabaseUnavailable(
            f"database {database}: cannot look the row up ({type(exc.orig).__name__})"
        ) from None
    if found is None:
        which = "with that key (matched exactly)" if personal else label_text(values)
        raise UsageError(f"--key: {name} in database {database} has no row {which}")
    return HeldRow(name, values, personal)
