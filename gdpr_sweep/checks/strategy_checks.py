"""Check that a strategy's output fits its column: keys, NOT NULL, type and length,
ENUM values, UNIQUE collisions (also of composite keys and of hashes cut short), CHECK
constraints and the engine's time zone tables."""

from __future__ import annotations

import math
import re
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..catalog import Catalog, qualified_name
from ..columns import ColumnKind, column_kind, is_string, string_length
from ..strategies import (
    HASH_PREFIX,
    MIN_HASH_LENGTH,
    ZONE_TABLES_FIX,
    redacted_text,
    zone_problem,
)


def strategy_problems(
    catalog: Catalog,
    table: sa.Table,
    column: sa.Column,
    strategy: str,
    tz: ZoneInfo | None = None,
    siblings: dict[str, str] | None = None,
) -> list[tuple[str, str, bool]]:
    """What would go wrong writing `strategy`'s output into `column`: (message, fix, warning).

    `siblings`: every column the same rule (or erase entry) writes, with its strategy,
    since two columns of one UNIQUE key written together collide sooner.

    Everything that would otherwise surface mid-run as a constraint error, every
    night: NOT NULL, type and length, ENUM values, UNIQUE collisions (also of a
    composite unique key, and of hashes cut short), keys (its own and other tables'
    foreign keys to it), and CHECK constraints (evaluated by the engine itself against
    the new value where it can), and a time zone the engine cannot truncate
    `year`/`month` in (`tz`, `sweep.timezone`). A config `check` passes must not fail
    at night. Where the answer depends on the rows (collisions), the rows are asked
    (counts only, never a value).
    """
    dialect = catalog.dialect
    if column.primary_key:
        return [
            (
                "is the primary key; anonymising it would break references",
                "remove it from the columns",
                False,
            )
        ]
    if column.computed is not None:
        return [
            (
                "is a generated column: the engine computes it, and an UPDATE that sets it fails",
                "remove it from the columns (anonymise the columns it is computed from)",
                False,
            )
        ]
    for ref in catalog.references_to(table):
        if column.name in ref.referred_columns:
            return [
                (
                    f"is referenced by a foreign key of {qualified_name(ref.child)!r} "
                    f"({', '.join(ref.columns)}); anonymising it would break those references",
                    "remove it from the columns",
                    False,
                )
            ]
    own_key = column.foreign_keys or column.name in catalog.foreign_key_columns(table)
    if own_key and strategy != "null":
        # NULL detaches the row from its parent, which is what anonymising it means;
        # any other value would point at another row, or at none.
        return [
            (
                "is a foreign key; anonymising it would orphan or break references",
                'remove it from the columns, or use "null" on a nullable key to detach the row',
                False,
            )
        ]
    if strategy == "null" and not column.nullable:
        return [
            (
                'is NOT NULL, so strategy "null" cannot apply',
                'use "redact" or "hash", or make the column nullable',
                False,
            )
        ]
    if strategy in ("year", "month") and column_kind(column, dialect) is ColumnKind.OTHER:
        return [
            (
                f"strategy {strategy!r} needs a date column, not {column.type}",
                'use "null", "redact" or "hash"',
                False,
            )
        ]
    zone_missing = zone_problem(catalog.connection, column, strategy, tz)
    if zone_missing is not None:
        return [(zone_missing, ZONE_TABLES_FIX, False)]
    if strategy in ("redact", "hash") and not is_string(column):
        return [
            (
                f"strategy {strategy!r} needs a text column, not {column.type}",
                'use "null" (or "year"/"month" for dates)',
                False,
            )
        ]
    if strategy in ("redact", "hash") and isinstance(column.type, sa.Enum):
        allowed = [str(value) for value in column.type.enums]
        if strategy == "hash":
            return [
                (
                    "is an ENUM; a keyed hash is never one of its values",
                    'use "null", or "redact" with the placeholder among its values',
                    False,
                )
            ]
        if redacted_text(column) not in allowed:
            return [
                (
                    f"is an ENUM whose values do not include the placeholder "
                    f"{redacted_text(column)!r} that strategy 'redact' writes",
                    f'add {redacted_text(column)!r} to its values, or use "null"',
                    False,
                )
            ]
    if strategy == "hash" and (string_length(column) or MIN_HASH_LENGTH) < MIN_HASH_LENGTH:
        return [
            (
                f"is too short for a keyed hash (needs {MIN_HASH_LENGTH} characters)",
                'use "null" or "redact"',
                False,
            )
        ]
    problems = []
    unique = catalog.is_unique(table, column.name)
    if strategy in ("redact", "year", "month") and unique:
        problems.append(
            (
                f"is UNIQUE, and strategy {strategy!r} gives many rows the same value",
                'use "hash" (distinct inputs stay distinct) or "null"',
                False,
            )
        )
    elif strategy in ("redact", "year", "month"):
        problems.extend(
            _composite_unique_problems(catalog, table, column, strategy, siblings or {})
        )
    if strategy == "hash" and unique:
        problems.extend(_hash_collision_problems(catalog, table, column))
    problems.extend(_check_constraint_problems(catalog, table, column, strategy))
    return problems


def _composite_unique_problems(
    catalog: Catalog,
    table: sa.Table,
    column: sa.Column,
    strategy: str,
    siblings: dict[str, str],
) -> list[tuple[str, str, bool]]:
    """`redact`/`year`/`month` into a column of a multi-column UNIQUE key.

    Two rows that agree on the key's other columns collide as soon as both get the
    placeholder (or the same first day): refused when any two rows of the table do
    today (conservatively, due or not), else a warning that they may later. NULLs
    never collide, so rows with a NULL among those columns are left out, and a key
    another column of which the same rule nulls cannot collide. Another column the
    rule redacts or truncates will agree too, so it is not counted as telling rows
    apart.
    """
    problems = []
    key_columns = {c.name for c in table.primary_key.columns}
    for names in catalog.unique_sets(table):
        if len(names) < 2 or column.name not in names:
            continue
        written = {n: siblings.get(n) for n in names if n != column.name}
        if "null" in written.values():
            continue  # the anonymised rows get a NULL in the key: they never collide
        if key_columns and key_columns <= set(written):
            continue  # the primary key is among them: no two rows can agree on them
        others = [
            table.columns[n]
            for n, other in written.items()
            if n in table.columns and other not in ("redact", "year", "month")
        ]
        shown = ", ".join(names)
        query = (
            sa.select(sa.literal(1))
            .select_from(table)
            .where(column.is_not(None), *[c.is_not(None) for c in others])
        )
        if others:
            query = query.group_by(*others).having(sa.func.count() > 1).limit(1)
        else:  # every other column becomes one value too: any two rows collide
            query = query.offset(1).limit(1)
        clash = catalog.connection.execute(query).first()
        if clash is not None:
            problems.append(
                (
                    f"is part of UNIQUE ({shown}), and rows share the other columns' values, "
                    f"so strategy {strategy!r} would give two of them the same key",
                    'use "hash" (distinct inputs stay distinct) or "null"',
                    False,
                )
            )
        else:
            problems.append(
                (
                    f"is part of UNIQUE ({shown}); strategy {strategy!r} fails the run "
                    "once two rows share the other columns' values",
                    'use "hash" or "null" to be safe',
                    True,
                )
            )
    return problems


#: Odds of a collision among a UNIQUE column's pseudonyms above which `hash` is refused.
HASH_COLLISION_ODDS = 1e-6


def _hash_collision_problems(
    catalog: Catalog, table: sa.Table, column: sa.Column
) -> list[tuple[str, str, bool]]:
    """`hash` into a UNIQUE column too short for the pseudonyms to stay distinct.

    `hash_value` cuts the pseudonym to the column, leaving `length - len("hmac:")`
    hex digits; among n distinct values two share a cut pseudonym with the birthday
    odds 1 - exp(-n(n-1)/2 / 16^digits), and one such pair fails the UPDATE. From 24
    digits on that needs some 10^11 rows before it matters, so the rows are counted
    only below that.
    """
    length = string_length(column)
    if length is None:
        return []
    digits = min(64, length - len(HASH_PREFIX))
    if digits >= 24:
        return []
    rows = catalog.connection.execute(
        sa.select(sa.func.count(column)).select_from(table)
    ).scalar_one()
    pairs = rows * (rows - 1) / 2
    odds = -math.expm1(-pairs / 16**digits)
    if odds <= HASH_COLLISION_ODDS:
        return []
    needed = math.ceil(math.log(pairs / HASH_COLLISION_ODDS, 16))
    return [
        (
            f"is UNIQUE and holds {rows:,} values; a keyed hash cut to {digits} hex digits "
            f"gives two of them the same pseudonym with odds of about {odds:.1g}",
            f'widen the column to at least {len(HASH_PREFIX) + needed} characters, or use "null"',
            False,
        )
    ]


def _sample_output(strategy: str, column: sa.Column, dialect: str) -> str | None:
    """A SQL literal of what the strategy writes, to test CHECK constraints with."""
    if strategy == "null":
        return "NULL"
    if strategy == "redact":
        length = string_length(column)
        return "'" + ("[redacted]" if length is None else "[redacted]"[:length]) + "'"
    if strategy == "hash":
        length = string_length(column) or 69
        return "'" + ("hmac:" + "0" * 64)[:length] + "'"
    return None  # year/month keep the value's own date: nothing new to test


def _check_constraint_problems(
    catalog: Catalog, table: sa.Table, column: sa.Column, strategy: str
) -> list[tuple[str, str, bool]]:
    problems = []
    mention = re.compile(r"(?<![\w.])[`\"\[]?" + re.escape(column.name) + r"[`\"\]]?(?!\w)")
    for check in catalog.check_constraints(table):
        text = check.get("sqltext") or ""
        if not mention.search(text):
            continue
        name = check.get("name") or "(unnamed)"
        sample = _sample_output(strategy, column, catalog.dialect)
        verdict = None if sample is None else catalog.evaluate_check(mention.sub(sample, text))
        if verdict is False:
            problems.append(
                (
                    f"CHECK constraint {name} would reject the value strategy {strategy!r} writes",
                    "choose another strategy, or relax the constraint",
                    False,
                )
            )
        elif verdict is None:  # also year/month: the new date may fail it too
            problems.append(
                (
                    f"CHECK constraint {name} mentions it and could not be "
                    "tested against the new value",
                    "make sure the strategy's output satisfies it",
                    True,
                )
            )
    return problems
