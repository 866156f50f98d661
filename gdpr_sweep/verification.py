"""Verification of a run: each batch's key range checked inside its transaction, or a recount.

After a database's rules ran, every rule's due set must be empty (what is left is
reported: `verify-failed`, exit 3). Two ways to find out, the same numbers where both
apply:

- **ranges** (`checked_by_range`, where they are cheaper — a delete rule on PostgreSQL,
  an anonymise rule on SQLite and MariaDB: `cheaper_by_range`): inside each batch's
  transaction, right after its DELETE/UPDATE, the rows of the batch's key range `(last,
  upper]` of the *table* — not only the pinned ones — still due by the rule's full due
  predicate are counted; after the database's last rule, the tail above the rule's last
  batch (`key > upper`, or the whole table when it had no batch). The ranges cover the
  key space once, so the run reads the due set once more only where its batches already
  are, instead of a second full pass. Only for a rule whose due predicate reads nothing
  but the row itself (its clock, `only`, `unless_*`, holds on keys, anonymise's "still
  to anonymise") and whose table no other rule of the database writes (as its table or a
  cascade child): then no other work of the run can make a row of an already checked
  range due.
- **the recount** (every other rule): after all rules, the full due count again
  (`count_due`), or for a `since_latest` rule its pinned rows still there and due by
  what the batches re-check (`database_run._recount`).

What the ranges do not see that the recount does: a row written into a range after that
range's batch committed (an application inserting or back-dating rows with keys the run
already passed) — `run --verify-only`, the full count, sees it on its next run. A row
with a key above the last batch is in the tail, counted after the database's last rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .counting import count_due, count_statement
from .inplace_keys import self_contained
from .pinning import BatchKeys
from .rowkeys import RowKey
from .rules import CompiledRule


def cheaper_by_range(action: str, dialect: str) -> bool:
    """Is counting the batches' ranges cheaper than the recount (measured, 1M rows, 40 %
    due, the rule walked in place)?

    - A delete on PostgreSQL: yes — after the run, a recount through the clock's index
      is the first reader of every row the batches deleted (dead tuples), while a
      batch's range is read in its own transaction, in memory (1.2 s for the ranges
      against 2.5 s for the recount, on a loaded machine).
    - A delete on MariaDB or SQLite: no — their recount after a delete takes a few
      milliseconds (SQLite removes deleted rows from its b-tree; InnoDB's clock index
      range is empty), and MariaDB's batches took 76 s against 40 s with the range
      counts (a loaded machine).
    - An anonymise rule on PostgreSQL: no — each range is read again after its UPDATE
      through the new row versions (the batches took 1.5 s longer; the recount is
      0.87 s).
    - An anonymise rule on SQLite or MariaDB: yes — the ranges cost the batches
      0.0 to 0.6 s, the recount they replace is a pass over every anonymised row
      (0.8 to 1.3 s): whole runs 6.4 s against 6.7 to 7.3 s on SQLite, a median 7.5 s against
      8.4 s over four runs on MariaDB.
    """
    if action == "delete":
        return dialect == "postgresql"
    return dialect != "postgresql"


def checked_by_range(
    compiled: Sequence[CompiledRule], written: Sequence[set[str]], index: int, dialect: str
) -> bool:
    """Can rule `index` be verified by its batches' ranges (see the module docstring)?

    `written[i]`: the qualified names of the tables rule i writes (its own, and its
    cascade children)."""
    if not cheaper_by_range(compiled[index].rule.action, dialect):
        return False
    return self_contained(compiled, written, index)


def range_count(pinned: BatchKeys, *, first: bool) -> sa.Select:
    """Rows of the batch's key range `(last, upper]` of the table still due (the first
    batch: every key up to `upper`), bound as the batch's own statements are.

    On MariaDB it is a locking read (`LOCK IN SHARE MODE`): the batch runs in the
    server's isolation level, by default REPEATABLE READ, where a plain read sees the
    snapshot of the batch's first read (its boundary query), so a due row the
    application finished or deleted in between — which the UPDATE/DELETE, reading the
    latest rows, rightly left alone — would be counted as left. A locking read sees the
    latest committed rows; under REPEATABLE READ the batch's statement already holds the
    range's row and gap locks, so it waits for nobody (under READ COMMITTED it may wait,
    as the statement did, for a row another transaction has not committed, within the
    rule's lock timeout). (PostgreSQL reads in READ COMMITTED, each statement a new
    snapshot; SQLite has one writer.)"""
    keys = pinned.table_keyset  # ordered as the pins are (they copy the key's collation)
    in_range: list[ColumnElement[bool]] = [keys.up_to_upper()]
    if not first:
        in_range.append(keys.after_last())
    statement = count_statement(pinned.compiled.table, *in_range, pinned.compiled.due)
    if keys.dialect in ("mysql", "mariadb"):
        statement = statement.with_for_update(read=True)
    return statement


def tail_count(connection: sa.Connection, pinned: BatchKeys, last: RowKey | None) -> int:
    """Rows above the rule's last batch (`key > last`) still due; the whole table's due
    count when it had no batch."""
    compiled = pinned.compiled
    if last is None:
        return count_due(connection, compiled)
    keys = pinned.table_keyset
    statement = count_statement(compiled.table, keys.after_last(), compiled.due)
    return int(connection.execute(statement, keys.params(last, None)).scalar_one())
