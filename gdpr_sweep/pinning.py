"""Pin each rule's due keys at the start of a database's run, then act on exactly those.

Rules feed each other: customers are due three years after their last invoice, and an
invoice rule deletes old invoices; a customer rule over `since_latest` cascades to the
very table its clock reads. Re-deriving the clock while the run deletes would find the
customers no longer due (their last invoices are gone) and keep them — never due again
— while the plan listed them. So before any rule acts, every rule's due keys are
evaluated once, as the plan did, and written to a temporary table of the target
database (`INSERT INTO pin SELECT key FROM t WHERE due`: the key set never passes
through Python). Each batch then takes the next keys from its pin table and acts on
the rows with those keys that are still due by what can change meanwhile — holds,
`unless_*` exceptions, rows still referencing them, an anonymise rule's "something left
to do" (`CompiledRule.still_due`) — never by a clock.

Temporary tables live in the session of one connection, so a database's whole run
(pins, batches, verification) uses one connection, and a killed run leaves nothing
behind: the next run evaluates afresh. The user needs the right to create temporary
tables (PostgreSQL's TEMP, MariaDB's CREATE TEMPORARY TABLES; SQLite always has it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .counting import scan_is_cheaper
from .inplace_keys import InPlaceKeys
from .keyset import Keyset
from .matching import equals, is_text
from .rules import CompiledRule


class PinnedKeys:
    """One rule's due keys in a temporary table, and how a batch matches its rows.

    The pinned key columns have the types and collations of the table's own: on
    PostgreSQL and MariaDB the engine copies them (`CREATE TEMPORARY TABLE … AS SELECT
    key … LIMIT 0`), so a domain, `citext` or a column collation that reflection does
    not report is copied too. So both order keys alike: a batch's range `(last, upper]`
    over the pins is the same range of the table's primary-key index, which every batch
    statement reads by range (a plain `key IN (SELECT … FROM pin)` is a full table scan
    per batch on PostgreSQL, and on MariaDB, which has no semi-join for a single-table
    DELETE or UPDATE).
    """

    pinned = True

    def __init__(self, compiled: CompiledRule, name: str, dialect: str) -> None:
        self.compiled = compiled
        self.dialect = dialect
        self.key_columns = list(compiled.key_columns)
        self.table = sa.Table(
            name,
            sa.MetaData(),
            *(
                sa.Column(
                    f"k{i}",
                    c.type,
                    primary_key=True,
                    autoincrement=False,
                )
                for i, c in enumerate(self.key_columns)
            ),
            prefixes=["TEMPORARY"],
        )
        self.columns = list(self.table.columns)
        self.keyset = Keyset(self.table, self.columns, dialect)
        # The same range over the table's own key columns, bound to the same values.
        self.table_keyset = self.keyset.on(compiled.table, self.key_columns)

    def create(self, connection: sa.Connection) -> None:
        if self.dialect == "sqlite":
            self.table.create(connection)  # declared types; SQLite compares by value
            return
        for statement in self.create_statements(connection):
            connection.exec_driver_sql(statement)

    def create_statements(self, connection: sa.Connection) -> list[str]:
        """The SQL that creates the pin table (`plan --sql` shows it)."""
        if self.dialect == "sqlite":
            return [str(sa.schema.CreateTable(self.table).compile(connection)).strip()]
        # The engine copies each key column's type, character set and collation.
        shape = sa.select(
            *(c.label(p.name) for c, p in zip(self.key_columns, self.columns, strict=True))
        ).limit(0)
        select = shape.compile(connection, compile_kwargs={"literal_binds": True})
        name = connection.dialect.identifier_preparer.quote(self.table.name)
        keys = ", ".join(connection.dialect.identifier_preparer.quote(c.name) for c in self.columns)
        if self.dialect == "postgresql":
            return [
                f"CREATE TEMPORARY TABLE {name} AS {select}",
                f"ALTER TABLE {name} ADD PRIMARY KEY ({keys})",
            ]
        return [f"CREATE TEMPORARY TABLE {name} (PRIMARY KEY ({keys})) {select}"]

    def fill_statement(self, unindexed: bool) -> sa.Insert:
        """`INSERT INTO pin SELECT key FROM t WHERE due`: the keys never leave the database."""
        due = self.compiled.due_where(unindexed=unindexed)
        return self.table.insert().from_select(
            [c.name for c in self.columns], sa.select(*self.key_columns).where(due)
        )

    def analyze_statement(self) -> str | None:
        """PostgreSQL: autovacuum never analyses temporary tables; give the planner counts."""
        return f"ANALYZE {self.table.name}" if self.dialect == "postgresql" else None

    def fill(self, connection: sa.Connection) -> int:
        """Create the table and pin the rule's due keys; return how many."""
        self.create(connection)
        unindexed = scan_is_cheaper(connection, self.compiled)
        rows = connection.execute(self.fill_statement(unindexed)).rowcount
        analyze = self.analyze_statement()
        if analyze is not None:
            connection.exec_driver_sql(analyze)
        return int(rows)

    def drop(self, connection: sa.Connection) -> None:
        self.table.drop(connection)

    def upper_query(self, batch_size: int, first: bool) -> sa.Select:
        """The last key of the next `batch_size` pinned keys after `last`."""
        return self.keyset.upper_query(sa.true(), batch_size, first)

    def batch(self, first: bool) -> ColumnElement[bool]:
        """Rows of the rule's table pinned in the batch's range `(last, upper]`."""
        pins, rows = self.keyset, self.table_keyset
        if self.dialect == "sqlite":
            # SQLite drives `key IN (SELECT …)` from the pins through the key's index,
            # and its declared collations are not reflected: no range on the table.
            in_range = pins.up_to_upper()
            return self.rows(in_range if first else sa.and_(pins.after_last(), in_range))
        if first:
            return sa.and_(rows.up_to_upper(), self.rows(pins.up_to_upper()))
        return sa.and_(
            rows.after_last(),
            rows.up_to_upper(),
            self.rows(sa.and_(pins.after_last(), pins.up_to_upper())),
        )

    def rows(self, where: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
        """Rows of the rule's table whose key is pinned (and matches `where` in the pin).

        Keys compare exactly: a text key under a case-insensitive collation matches only
        the row it was read from. MariaDB cannot read a temporary table twice in one
        statement, so there the match is one correlated EXISTS (which it turns into a
        semi-join); elsewhere an IN drives the lookup from the pinned keys.
        """
        conditions = [where] if where is not None else []
        text = any(is_text(c) for c in self.key_columns)
        exact = (
            sa.select(sa.literal(1))
            .select_from(self.table)
            .where(
                *conditions,
                *(
                    equals(c, p, self.dialect)
                    for c, p in zip(self.key_columns, self.columns, strict=True)
                ),
            )
            .exists()
        )
        if text and self.dialect in ("mysql", "mariadb"):
            return exact
        selected = sa.select(*self.columns).where(*conditions)
        if len(self.key_columns) == 1:
            member = self.key_columns[0].in_(selected)
        else:
            member = sa.tuple_(*self.key_columns).in_(selected)
        return sa.and_(member, exact) if text else member


#: What a rule's batches walk: its pinned keys, or its own table (`inplace_keys.py`).
BatchKeys = PinnedKeys | InPlaceKeys


@contextmanager
def pinned_rules(
    connection: sa.Connection,
    rules: list[CompiledRule],
    setup: Sequence[str] = (),
    in_place: Collection[int] = (),
) -> Iterator[list[BatchKeys]]:
    """Pin every rule's due keys in one transaction, before any rule acts; drop them after.

    The rules whose index is in `in_place` are not pinned: their batches walk their
    own table (`inplace_keys.py`).

    On PostgreSQL the transaction reads one snapshot (REPEATABLE READ), as MariaDB's
    default isolation and SQLite's single writer do, so every rule is pinned at the
    same moment of the data. `setup` statements (the batches' lock timeout) run first:
    reading the due rows for the pins must not wait on the application's row locks any
    longer than a batch would.
    """
    dialect = connection.dialect.name
    created: list[PinnedKeys] = []
    try:
        keys: list[BatchKeys] = [
            InPlaceKeys(c, dialect)
            if i in in_place
            else PinnedKeys(c, f"gdpr_sweep_pin_{i}", dialect)
            for i, c in enumerate(rules)
        ]
        pins = [k for k in keys if isinstance(k, PinnedKeys)]
        if pins:
            with connection.begin():
                if dialect == "postgresql":
                    connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                for statement in setup:
                    connection.exec_driver_sql(statement)
                for pin in pins:
                    created.append(pin)
                    pin.fill(connection)
        yield keys
    finally:
        if connection.in_transaction():
            connection.rollback()
        if not connection.invalidated and not connection.closed:
            try:
                if created:
                    with connection.begin():
                        for pin in created:
                            pin.drop(connection)
            except sa.exc.DBAPIError:
                pass  # the session ends with the connection; its tables with it
