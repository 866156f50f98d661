"""A rule's due rows walked in place, for `run`, when nothing else in the run can change them.

Pinning (`pinning.py`) copies every rule's due keys into a temporary table before any
rule acts, so that rules that feed each other do what the plan said, and so that
`apply` acts on exactly the keys it reviewed. For the common case — one rule on a
table of its own, whose due predicate reads nothing but the row itself — the pins buy
nothing in `run`: no other work of the run can make one of its rows due or not due,
and its clock is a column of the row, compared with a cutoff fixed at the as-of. There
the batches walk the table itself, as a hand-written loop does:

    SELECT key … WHERE due AND key > :last ORDER BY key LIMIT n   -- the batch's upper key
    DELETE/UPDATE … WHERE key > :last AND key <= :upper AND due

with the rule's whole due predicate in both, clock included, so a row whose clock an
application moved since the evaluation is left alone, and an old row inserted since is
acted on (not left for the recount to report). That saves the pass that fills the pins
(on PostgreSQL 1M rows, 40 % due: 0.95 s of a 5.3 s run).

Never for `apply`, whose pins are the reviewed keys; never for a rule whose due
predicate reads another table (`since_latest`, rows that reference it, rows held back
through another table), or whose table another rule of the database writes (as its
table or as a cascade child). `self_contained` is that condition; the in-batch
verification (`verification.checked_by_range`) rests on it too.

The range is over the table's own key, under the key columns' own collations, which
order the `ORDER BY` and the comparisons alike on every engine; a primary key is unique
under its collation, so the range holds each row once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.util import find_tables

from .cascade import CascadeStep
from .catalog import qualified_name
from .keyset import Keyset
from .rules import CompiledRule


def written_tables(
    compiled: Sequence[CompiledRule], cascades: Sequence[Sequence[CascadeStep]]
) -> list[set[str]]:
    """Per rule, the qualified names of the tables it writes: its own and its cascade
    children (`cascades[i]`: rule i's cascade steps)."""
    return [
        {qualified_name(rule.table), *(qualified_name(step.child) for step in cascade)}
        for rule, cascade in zip(compiled, cascades, strict=True)
    ]


def self_contained(
    compiled: Sequence[CompiledRule], written: Sequence[set[str]], index: int
) -> bool:
    """Can no other work of the database's run change which rows rule `index` finds due?

    True when its due predicate reads only its own row (its clock, `only`, `unless_*`,
    holds on keys, anonymise's "still to anonymise") and no other rule writes its table.
    `written`: `written_tables` of the database's rules."""
    rule = compiled[index]
    if rule.rule.since_latest is not None:
        return False  # its clock is in another table
    if find_tables(rule.due, include_aliases=True):
        return False  # a subquery (rows that reference it, held-back rows, ...)
    table = qualified_name(rule.table)
    return not any(table in tables for i, tables in enumerate(written) if i != index)


class InPlaceKeys:
    """One rule's due rows, walked batch by batch on its own table (no pins).

    Offers what the batch loop asks of `PinnedKeys`: the key range's parameters
    (`keyset`, `table_keyset`), the batch's upper key and the rows of a batch."""

    pinned = False

    def __init__(self, compiled: CompiledRule, dialect: str) -> None:
        self.compiled = compiled
        self.dialect = dialect
        self.key_columns = list(compiled.key_columns)
        self.keyset = Keyset(compiled.table, self.key_columns, dialect)
        self.table_keyset = self.keyset

    def upper_query(self, batch_size: int, first: bool) -> sa.Select:
        """The last key of the next `batch_size` due rows after `last`."""
        return self.keyset.upper_query(self.compiled.due, batch_size, first)

    def batch(self, first: bool) -> ColumnElement[bool]:
        """Rows of the batch's range `(last, upper]` that are due, by the whole predicate."""
        in_range = [self.keyset.up_to_upper()]
        if not first:
            in_range.insert(0, self.keyset.after_last())
        return sa.and_(*in_range, self.compiled.due)
