"""Which partitions of a delete rule's table go whole, and why the others are batched.

A partition is removed whole (`partitions = "drop"` or `"truncate"`) only when every
row it can hold is due by the same day rule as the row path — its upper bound is at
or before the cutoff bound the row path compares with (the engine compares them) —
and every row it holds now is due by the rule's whole predicate: no `only` filter
leaves one out and no `unless_*` exception, legal hold or referencing row keeps one
(else it is batched, reason `exception`, `held` or `referenced`; `clock` when only
the row's clock keeps it: MariaDB stores partial zero dates such as '2024-02-00' inside
a bounded partition, which the row path never calls due), and no foreign key
from outside the rule's `cascade` points at one of its rows (`referenced`: a drop
would break it; the row path lets the engine apply the key's ON DELETE per row).

The partition holding the cutoff (`cutoff`), the default partition (`default`), one
unbounded below (`unbounded`) and one that is itself partitioned (`subpartitioned`)
are batched: their due rows take the row path. Partitions with nothing due are left
out of the list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .catalog import Catalog, qualified_name
from .columns import day_start_bound
from .counting import count
from .partition_catalog import Partition, range_partitions
from .rules import LEGAL_HOLD, REFERENCED, CompiledRule

REMOVE = ("drop", "truncate")


@dataclass(frozen=True)
class PartitionChoice:
    """One partition of a rule's table with due rows, and what the run does with it."""

    partition: Partition
    rows: int  # rows in the partition now
    due: int | None  # of them due (None: the default partition, not counted)
    action: str  # "drop" | "truncate" | "batch"
    reason: str | None = None  # why batched

    @property
    def removed(self) -> bool:
        return self.action in REMOVE

    def to_json(self) -> dict[str, Any]:
        p = self.partition
        return {
            "name": p.name,
            "schema": p.schema,
            "from": p.lower_text,
            "to": p.upper_text,
            "default": p.default,
            "rows": self.rows,
            "due": self.due,
            "action": self.action,
            "reason": self.reason,
        }


def partition_path_applies(catalog: Catalog, compiled: CompiledRule) -> bool:
    rule = compiled.rule
    return (
        catalog.dialect in ("postgresql", "mysql", "mariadb")
        and rule.action == "delete"
        and rule.partitions != "off"
        and rule.since is not None
        and rule.since_latest is None
        and rule.since_format is None
    )


def choose_partitions(
    catalog: Catalog, compiled: CompiledRule, cascade_tables: set[str]
) -> list[PartitionChoice]:
    """Judge every partition of the rule's table that holds due rows (read-only)."""
    if not partition_path_applies(catalog, compiled):
        return []
    connection = catalog.connection
    rule = compiled.rule
    assert rule.since is not None
    table = compiled.table
    clock = table.columns[rule.since]
    partitions = range_partitions(connection, table, rule.since)
    if not partitions:
        return []
    assert compiled.tz is not None
    bound = day_start_bound(clock, catalog.dialect, compiled.cutoff_date, compiled.tz)
    wholly, starts_before = _compare_bounds(connection, partitions, bound)
    outside = _outside_references(catalog, table, cascade_tables)
    # PostgreSQL refuses to TRUNCATE a table any foreign key refers to, rows or not.
    no_truncate = compiled.rule.partitions == "truncate" and bool(
        catalog.dialect == "postgresql" and catalog.references_to(table)
    )
    choices = []
    for partition, whole, before in zip(partitions, wholly, starts_before, strict=True):
        if partition.default:
            rows = _own_rows(connection, partition)
            if rows:
                choices.append(PartitionChoice(partition, rows, None, "batch", "default"))
            continue
        if not before:
            continue  # starts at or after the cutoff: nothing in it is due
        in_partition = partition.rows(clock)
        if not whole or not partition.leaf or partition.lower is None:
            due = count(connection, table, in_partition, compiled.due)
            if due:
                rows = count(connection, table, in_partition)
                reason = (
                    "subpartitioned"
                    if not partition.leaf
                    else "unbounded"
                    if partition.lower is None and whole
                    else "cutoff"
                )
                choices.append(PartitionChoice(partition, rows, due, "batch", reason))
            continue
        choice = _wholly_due(connection, compiled, partition, in_partition, outside)
        if choice.removed and no_truncate:
            choice = PartitionChoice(partition, choice.rows, choice.due, "batch", "referenced")
        choices.append(choice)
    return choices


def _wholly_due(
    connection: sa.Connection,
    compiled: CompiledRule,
    partition: Partition,
    in_partition: sa.ColumnElement[bool],
    outside: list[tuple[Any, sa.ColumnElement[bool]]],
) -> PartitionChoice:
    table = compiled.table
    one = sa.literal(1)
    sums = []
    if not bounds_prove_due(connection.dialect.name, compiled):
        sums.append(sa.func.coalesce(sa.func.sum(sa.case((compiled.due, one), else_=0)), 0))
    sums += [
        sa.func.coalesce(sa.func.sum(sa.case((e.keeps, one), else_=0)), 0)
        for e in compiled.exceptions
    ]
    row = connection.execute(
        sa.select(sa.func.count(), *sums).select_from(table).where(in_partition)
    ).one()
    rows = int(row[0])
    due = int(row[1]) if sums else rows  # the bounds prove every row due: only count
    kept = {e.reason: int(n) for e, n in zip(compiled.exceptions, row[2:], strict=True)}
    mode = compiled.rule.partitions
    if due < rows:
        if kept.get(LEGAL_HOLD):
            reason = "held"
        elif kept.get(REFERENCED):
            reason = "referenced"
        elif any(kept.values()) or compiled.rule.only:
            reason = "exception"  # an `only` filter or an `unless_*` exception
        else:
            # Nothing keeps the row but its clock: inside the bounds, yet not a point in
            # time the row path calls due (MariaDB's partial zero date '2024-02-00').
            reason = "clock"
        return PartitionChoice(partition, rows, due, "batch", reason)
    for child, refers in outside:
        parents = sa.select(one).select_from(table).where(in_partition, refers)
        referring = sa.select(one).select_from(child).where(parents.correlate(child).exists())
        if connection.execute(referring.limit(1)).first() is not None:
            return PartitionChoice(partition, rows, due, "batch", "referenced")
    return PartitionChoice(partition, rows, due, mode)


def bounds_prove_due(dialect: str, compiled: CompiledRule) -> bool:
    """Is every row of a wholly due partition due by its bounds alone?

    Only on PostgreSQL, for a rule with no `only` and no exception (holds included): a
    bounded range partition there holds no NULL clock (NULL goes to the default
    partition) and every value it can hold is a point in time below its upper bound,
    so the row path's `clock < cutoff` is true for each. On MariaDB a partial zero date
    ('2024-02-00', stored unless the sql_mode has NO_ZERO_IN_DATE) sits inside a bounded
    partition and is never due on the row path: every row is checked there.
    """
    return dialect == "postgresql" and not compiled.exceptions and not compiled.rule.only


def _compare_bounds(
    connection: sa.Connection, partitions: list[Partition], bound: sa.BindParameter
) -> tuple[list[bool], list[bool]]:
    """Per partition, in one query: is its upper bound at or before the cutoff bound
    (every row it can hold is due), and does it start before it (some row can be)?"""
    columns: list[sa.ColumnElement[Any]] = []
    for p in partitions:
        upper = p.upper <= bound if p.upper is not None else sa.false()
        lower = p.lower < bound if p.lower is not None else sa.true()
        columns += [sa.case((upper, 1), else_=0), sa.case((lower, 1), else_=0)]
    row = connection.execute(sa.select(*columns)).one()
    values = [bool(v) for v in row]
    return values[0::2], values[1::2]


def _outside_references(
    catalog: Catalog, table: sa.Table, cascade_tables: set[str]
) -> list[tuple[Any, sa.ColumnElement[bool]]]:
    """Foreign keys into `table` from tables the rule's cascade does not delete from:
    (child, "the child row refers to the table's row")."""
    found = []
    for reference in catalog.references_to(table):
        child: Any = reference.child
        if qualified_name(reference.child) in cascade_tables:
            continue
        if child is table:  # a self-reference: rows elsewhere may refer into it
            child = table.alias("referrer")
        refers = sa.and_(
            *(
                child.columns[c] == table.columns[r]
                for c, r in zip(reference.columns, reference.referred_columns, strict=True)
            )
        )
        found.append((child, refers))
    return found


def _own_rows(connection: sa.Connection, partition: Partition) -> int:
    """Rows in one partition's own table (PostgreSQL: the default partition)."""
    own = sa.table(partition.name, schema=partition.schema)
    return int(connection.execute(sa.select(sa.func.count()).select_from(own)).scalar_one())


def partitions_text(choices: list[dict[str, Any]]) -> bytes:
    """The partition list as it goes into a plan's due digest (stale when it changes)."""
    return json.dumps(choices, sort_keys=True, separators=(",", ":")).encode("utf-8")
