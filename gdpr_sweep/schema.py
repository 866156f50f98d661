"""Reflect a target database and check the config against it (`gdpr-sweep check`).

Every table and column the config names is looked up in the reflected schema before
any SQL is built from it; the compiler (`rules.py`) only ever uses the reflected
`Table` objects, so identifiers reach SQL quoted by SQLAlchemy, never spliced.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .columns import (
    ColumnKind,
    column_kind,
    is_boolean_like,
    is_string,
    is_temporal,
    string_length,
)
from .config import Config, Rule, Scalar, SubjectLink
from .strategies import (
    HASH_PREFIX,
    MIN_HASH_LENGTH,
    ZONE_TABLES_FIX,
    redacted_text,
    zone_problem,
)

#: ON DELETE actions with which the database itself keeps a child consistent.
SELF_RESOLVING = {"CASCADE", "SET NULL", "SET DEFAULT"}


@dataclass(frozen=True)
class Finding:
    """One problem `check` found: where (database, config key) and how to fix it."""

    database: str
    key: str
    message: str
    fix: str = ""
    warning: bool = False  # worth fixing, but nothing would go wrong (exit 0)

    def line(self) -> str:
        text = f"database {self.database}: {self.key}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text


@dataclass(frozen=True)
class Reference:
    """A foreign key from `child.columns` to `parent.referred_columns`."""

    child: sa.Table
    columns: tuple[str, ...]
    referred_columns: tuple[str, ...]
    ondelete: str | None


def split_name(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return (schema or None), table


class Catalog:
    """Reflected tables of one database, looked up by the names the config uses."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        self.inspector = sa.inspect(connection)
        self.metadata = sa.MetaData()
        self._tables: dict[str, sa.Table | None] = {}
        self._views: dict[str | None, set[str]] = {}
        self._foreign_keys: dict[str | None, list[ForeignKey]] = {}
        self._schemas: set[str] | None = None
        self._partitions: dict[tuple[str, str], tuple[str, str]] | None = None
        self._leaves: dict[tuple[str, str], list[tuple[str, str]]] | None = None

    def has_schema(self, schema: str | None) -> bool:
        if schema is None:
            return True
        if self._schemas is None:
            self._schemas = set(self.inspector.get_schema_names())
        return schema in self._schemas

    def is_view(self, name: str) -> bool:
        schema, table = split_name(name)
        if not self.has_schema(schema):
            return False
        if schema not in self._views:
            self._views[schema] = set(self.inspector.get_view_names(schema=schema))
        return table in self._views[schema]

    def table(self, name: str) -> sa.Table | None:
        """Return the reflected table `name` ("t" or "schema.t"), or None if there is none."""
        if name not in self._tables:
            schema, table = split_name(name)
            found: sa.Table | None
            try:
                if not self.has_schema(schema) or self.is_view(name):
                    found = None
                else:
                    found = sa.Table(
                        table,
                        self.metadata,
                        autoload_with=self.connection,
                        schema=schema,
                        resolve_fks=False,
                    )
            except sa.exc.NoSuchTableError:
                found = None
            self._tables[name] = found
        return self._tables[name]

    def is_indexed(self, table: sa.Table, column: str) -> bool:
        """Is `column` the leading column of an index, unique constraint or primary key?

        A partitioned table (PostgreSQL) is indexed on `column` when it is itself, or
        when every one of its partitions is (indexes declared per partition, as in
        pagila): a lookup through it then uses an index in each partition.
        """
        if [c.name for c in table.primary_key.columns][:1] == [column]:
            return True
        if self._leads_an_index(table.schema, table.name, column):
            return True
        leaves = self._partition_leaves(table)
        return bool(leaves) and all(
            self._leads_an_index(schema, name, column) for schema, name in leaves
        )

    def _leads_an_index(self, schema: str | None, name: str, column: str) -> bool:
        leading: list[list[Any]] = [
            list(ix["column_names"][:1]) for ix in self.inspector.get_indexes(name, schema)
        ]
        leading += [
            list(uc["column_names"][:1])
            for uc in self.inspector.get_unique_constraints(name, schema)
        ]
        return [column] in leading

    def foreign_key_columns(self, table: sa.Table) -> set[str]:
        """Every column of a foreign key of `table`: reflected, and from the engine's
        catalog (where a PostgreSQL partition's keys are its partitioned table's)."""
        fks = self.inspector.get_foreign_keys(table.name, table.schema)
        columns = {column for fk in fks for column in fk["constrained_columns"]}
        own = (table.schema or self.default_schema, table.name)
        for fk in self.foreign_keys(table.schema):
            if self._same_name(fk.child, own):
                columns.update(fk.columns)
        return columns

    def partition_parent(self, name: str) -> str | None:
        """The partitioned table that table `name` ("t" or "schema.t") is a partition of
        (its root, for a partition of a partition), named as the config would name it;
        None when `name` is no partition (or no table). PostgreSQL only: elsewhere a
        partitioned table has no partitions of its own name."""
        if self.dialect != "postgresql":
            return None
        schema, table = split_name(name)
        root = self._partition_roots().get((schema or self.default_schema, table))
        if root is None:
            return None
        return self._local_name(root, schema)

    def _partition_roots(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(schema, partition) -> (schema, root partitioned table), read once."""
        if self._partitions is None:
            rows = self.connection.exec_driver_sql(_PG_PARTITIONS).all()
            self._partitions = {(s, t): (rs, rt) for s, t, rs, rt in rows}
        return self._partitions

    def _partition_leaves(self, table: sa.Table) -> list[tuple[str, str]]:
        """The leaf partitions of a partitioned `table` (schema, name); [] if it is none."""
        if self.dialect != "postgresql":
            return []
        if self._leaves is None:
            self._leaves = {}
            for child, root in self._partition_roots().items():
                self._leaves.setdefault(root, []).append(child)
            leaf_rows = self.connection.exec_driver_sql(_PG_PARTITIONED).all()
            partitioned = {(s, t) for s, t in leaf_rows}
            for root, children in self._leaves.items():
                self._leaves[root] = sorted(c for c in children if c not in partitioned)
        own = (table.schema or self.default_schema, table.name)
        return self._leaves.get(own, [])

    def check_constraints(self, table: sa.Table) -> list[Any]:
        try:
            return list(self.inspector.get_check_constraints(table.name, table.schema))
        except NotImplementedError:
            return []

    def evaluate_check(self, expression: str) -> bool | None:
        """Let the engine evaluate a CHECK expression; None if it cannot.

        Inside a savepoint, so a failed evaluation leaves the (read-only) transaction
        usable. A CHECK passes when its expression is true or NULL.
        """
        sql = (
            f"SELECT CASE WHEN ({expression}) THEN 1 WHEN ({expression}) IS NULL THEN 1 ELSE 0 END"
        )
        if self.connection.dialect.paramstyle in ("format", "pyformat"):
            sql = sql.replace("%", "%%")  # a literal % (LIKE 'K%') in a driver that formats
        try:
            with self.connection.begin_nested():
                value = self.connection.exec_driver_sql(sql).scalar()
        except sa.exc.DBAPIError:
            return None
        return bool(value)

    def primary_key(self, table: sa.Table) -> sa.Column | None:
        """Return the primary key's column if it has exactly one (else None)."""
        columns = list(table.primary_key.columns)
        return columns[0] if len(columns) == 1 else None

    def primary_key_columns(self, table: sa.Table) -> tuple[sa.Column, ...]:
        """Return every column of the primary key, in key order (empty: none)."""
        return tuple(table.primary_key.columns)

    def is_unique(self, table: sa.Table, column: str) -> bool:
        """Is `column` alone UNIQUE (a unique constraint or a unique index)?"""
        return (column,) in self.unique_sets(table)

    def unique_sets(self, table: sa.Table) -> list[tuple[str, ...]]:
        """Every set of columns a unique constraint or unique index holds, deduplicated.

        An index on an expression (a NULL among its column names) is left out: its
        values are not the columns' own.
        """
        found: list[tuple[str, ...]] = []
        entries: list[Any] = list(self.inspector.get_unique_constraints(table.name, table.schema))
        entries += [
            ix for ix in self.inspector.get_indexes(table.name, table.schema) if ix.get("unique")
        ]
        sets = [tuple(entry["column_names"]) for entry in entries]
        if self.dialect == "sqlite":
            sets += self._sqlite_unique_indexes(table)
        for names in sets:
            if names and all(isinstance(n, str) for n in names) and names not in found:
                found.append(names)
        return found

    def _sqlite_unique_indexes(self, table: sa.Table) -> list[tuple[str | None, ...]]:
        """SQLite's unique indexes, with the automatic ones behind an inline
        `col TEXT UNIQUE` (which SQLAlchemy's reflection leaves out)."""
        schema = table.schema or "main"
        rows = self.connection.exec_driver_sql(
            "SELECT il.name, ii.name FROM pragma_index_list(?, ?) AS il "
            "JOIN pragma_index_info(il.name, ?) AS ii "
            'WHERE il."unique" = 1 ORDER BY il.name, ii.seqno',
            (table.name, schema, schema),
        ).all()
        grouped: dict[str, list[str | None]] = {}
        for index, column in rows:
            grouped.setdefault(index, []).append(column)
        return [tuple(columns) for columns in grouped.values()]

    def references_to(self, parent: sa.Table) -> list[Reference]:
        """Return every foreign key that points at `parent`, from any table in any schema.

        Reflection per schema misses what a sweep trips over: a PostgreSQL table in
        another schema (`billing.note` → `hr.candidate`), a MariaDB table in another
        database on the same server, and on SQLite the ON DELETE action of an inline
        `col REFERENCES t(id) ON DELETE SET NULL` (SQLAlchemy loses it). So the keys
        come from the engine's own catalog, read once per database (per schema on
        SQLite, whose keys never cross databases) and cached: see `foreign_keys`.
        `ondelete` is normalised to "CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT"
        or None (NO ACTION, the default).
        """
        target = (parent.schema or self.default_schema, parent.name)
        result = []
        for fk in self.foreign_keys(parent.schema):
            if self._same_name(fk.referred, target):
                child = self.table(self._local_name(fk.child, parent.schema))
                if child is None:
                    continue
                referred = fk.referred_columns or tuple(c.name for c in parent.primary_key.columns)
                result.append(Reference(child, fk.columns, referred, fk.ondelete))
        return result

    @property
    def default_schema(self) -> str:
        return str(self.inspector.default_schema_name or "")

    def _same_name(self, a: tuple[str, str], b: tuple[str, str]) -> bool:
        if self.dialect == "sqlite":  # SQLite matches table names case-insensitively
            return a[0].lower() == b[0].lower() and a[1].lower() == b[1].lower()
        return a == b

    def _local_name(self, name: tuple[str, str], like: str | None) -> str:
        """The name the config would use for table `name`: unqualified in the default
        schema (unless the parent was named with it), else "schema.table"."""
        schema, table = name
        if schema == self.default_schema and like != schema:
            return table
        return f"{schema}.{table}"

    def foreign_keys(self, schema: str | None = None) -> list[ForeignKey]:
        """Every foreign key of the database, from its catalog (one query, cached).

        PostgreSQL and MariaDB: every schema (database) the connection can see; a
        partition's keys count as its partitioned table's. SQLite: the tables of
        `schema` (None: main), through `pragma_foreign_key_list`, which keeps the
        ON DELETE action of inline REFERENCES clauses. Other engines: SQLAlchemy's
        reflection of `schema`.
        """
        scope = schema if self.dialect not in ("postgresql", "mysql", "mariadb") else "*"
        if scope not in self._foreign_keys:
            if self.dialect == "postgresql":
                keys = self._postgresql_foreign_keys()
            elif self.dialect in ("mysql", "mariadb"):
                keys = self._mysql_foreign_keys()
            elif self.dialect == "sqlite":
                keys = self._sqlite_foreign_keys(schema)
            else:
                keys = self._reflected_foreign_keys(schema)
            self._foreign_keys[scope] = keys
        return self._foreign_keys[scope]

    def _postgresql_foreign_keys(self) -> list[ForeignKey]:
        rows = self.connection.exec_driver_sql(_PG_FOREIGN_KEYS).all()
        keys = [
            ForeignKey(
                (child_schema, child),
                tuple(columns),
                (parent_schema, parent),
                tuple(referred),
                _PG_ON_DELETE.get(action),
            )
            for child_schema, child, _name, columns, parent_schema, parent, referred, action in rows
        ]
        # A key declared on each partition (not on the partitioned table) is one key of
        # the partitioned table, not one per partition.
        return list(dict.fromkeys(keys))

    def _mysql_foreign_keys(self) -> list[ForeignKey]:
        grouped: dict[tuple[str, str, str], list[Any]] = {}
        for row in self.connection.exec_driver_sql(_MYSQL_FOREIGN_KEYS).all():
            grouped.setdefault((row[0], row[1], row[2]), []).append(row)
        keys = []
        for (schema, table, _name), rows in grouped.items():
            first = rows[0]
            keys.append(
                ForeignKey(
                    (schema, table),
                    tuple(r[3] for r in rows),
                    (first[4], first[5]),
                    tuple(r[6] for r in rows),
                    normalise_ondelete(first[7]),
                )
            )
        return keys

    def _sqlite_foreign_keys(self, schema: str | None) -> list[ForeignKey]:
        name = schema or "main"
        quoted = self.connection.dialect.identifier_preparer.quote_identifier(name)
        rows = self.connection.exec_driver_sql(
            f'SELECT m.name, p.id, p.seq, p."table", p."from", p."to", p.on_delete '
            f"FROM {quoted}.sqlite_master AS m "
            "JOIN pragma_foreign_key_list(m.name, ?) AS p "
            "WHERE m.type = 'table' ORDER BY m.name, p.id, p.seq",
            (name,),
        ).all()
        grouped: dict[tuple[str, int], list[Any]] = {}
        for row in rows:
            grouped.setdefault((row[0], row[1]), []).append(row)
        keys = []
        for (table, _id), fk_rows in grouped.items():
            referred = tuple(r[5] for r in fk_rows)
            keys.append(
                ForeignKey(
                    (name, table),
                    tuple(r[4] for r in fk_rows),
                    (name, fk_rows[0][3]),
                    () if any(c is None for c in referred) else referred,  # () : its key
                    normalise_ondelete(fk_rows[0][6]),
                )
            )
        return keys

    def _reflected_foreign_keys(self, schema: str | None) -> list[ForeignKey]:
        own = schema or self.default_schema
        keys = []
        for (_schema, table), fks in sorted(
            self.inspector.get_multi_foreign_keys(schema=schema).items(),
            key=lambda item: item[0][1],
        ):
            for fk in fks:
                keys.append(
                    ForeignKey(
                        (own, table),
                        tuple(fk["constrained_columns"]),
                        (fk.get("referred_schema") or own, fk["referred_table"]),
                        tuple(fk["referred_columns"]),
                        normalise_ondelete((fk.get("options") or {}).get("ondelete")),
                    )
                )
        return keys


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key as the engine's catalog holds it: (schema, table) names, no objects."""

    child: tuple[str, str]
    columns: tuple[str, ...]
    referred: tuple[str, str]
    referred_columns: tuple[str, ...]  # () : the referred table's primary key (SQLite)
    ondelete: str | None


def normalise_ondelete(action: str | None) -> str | None:
    """One spelling per action: "CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", or None
    for NO ACTION (the default, which catalogs report as NULL, "NO ACTION" or nothing)."""
    text = " ".join((action or "").upper().split())
    return None if text in ("", "NO ACTION") else text


_PG_ON_DELETE = {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

#: Every foreign key, every schema. Keys cloned onto partitions (conparentid <> 0) are
#: left out and a partition stands for its partitioned table, so a partitioned table
#: and its partitions are one table here.
_PG_FOREIGN_KEYS = """
SELECT cn.nspname, c.relname, con.conname,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.i),
       pn.nspname, p.relname,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.i),
       con.confdeltype::text
FROM pg_constraint con
JOIN pg_class c ON c.oid = COALESCE(pg_partition_root(con.conrelid), con.conrelid)
JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = COALESCE(pg_partition_root(con.confrelid), con.confrelid)
JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0
ORDER BY cn.nspname, c.relname, con.conname
"""

#: Every partition (at any depth) and the partitioned table at the root of its tree.
_PG_PARTITIONS = """
SELECT n.nspname, c.relname, rn.nspname, r.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class r ON r.oid = pg_partition_root(c.oid)
JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.relispartition AND c.relkind IN ('r', 'p', 'f')
"""

#: Every partitioned table (its rows are in its partitions).
_PG_PARTITIONED = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'p'
"""

#: Every foreign key in every database the connection may see (the server's catalog).
_MYSQL_FOREIGN_KEYS = """
SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME,
       k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME,
       r.DELETE_RULE
FROM information_schema.KEY_COLUMN_USAGE AS k
JOIN information_schema.REFERENTIAL_CONSTRAINTS AS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA
 AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
 AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""


def partition_message(name: str, parent: str) -> str:
    """The finding for a config key that names a partition, not its partitioned table."""
    return f"{name} is a partition of {parent}; name {parent}"


def qualified_name(table: sa.Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


# --- checks -----------------------------------------------------------------------------


def _bindable(value: Scalar, column: sa.Column) -> bool:
    """Can `value` be compared with `column` without the engine casting it?"""
    col_type = column.type
    if isinstance(value, bool):
        return isinstance(col_type, (sa.Boolean, sa.Integer))
    if isinstance(value, int):
        return isinstance(col_type, (sa.Integer, sa.Numeric)) and not isinstance(
            col_type, sa.Boolean
        )
    if isinstance(value, float):
        return isinstance(col_type, sa.Numeric)
    if isinstance(value, dt.datetime):
        return isinstance(col_type, sa.DateTime)
    if isinstance(value, dt.date):
        return isinstance(col_type, sa.Date) and not isinstance(col_type, sa.DateTime)
    if isinstance(value, str):
        return isinstance(col_type, (sa.String, sa.Text, sa.Enum))
    return False


class _RuleChecker:
    """Collects the findings for one rule in one database."""

    def __init__(
        self,
        catalog: Catalog,
        database: str,
        rule: Rule,
        links: tuple[SubjectLink, ...] = (),
        tz: ZoneInfo | None = None,
        config: Config | None = None,
    ) -> None:
        self.catalog = catalog
        self.database = database
        self.rule = rule
        self.links = links
        self.tz = tz
        self.config = config
        self.findings: list[Finding] = []

    def add(self, key: str, message: str, fix: str = "", warning: bool = False) -> None:
        self.findings.append(
            Finding(self.database, f"{self.rule.key}.{key}", message, fix, warning)
        )

    def table(self, key: str, name: str) -> sa.Table | None:
        parent = self.catalog.partition_parent(name)
        if parent is not None:
            self.add(key, partition_message(name, parent))
            return None
        table = self.catalog.table(name)
        if table is None:
            if self.catalog.is_view(name):
                self.add(
                    key,
                    f"{name!r} is a view, not a table",
                    "point the rule at the table the view reads from",
                )
            else:
                self.add(key, f"no table {name!r}", "check the table name (and its schema)")
        return table

    def column(self, table: sa.Table, key: str, name: str) -> sa.Column | None:
        if name not in table.columns:
            self.add(
                key,
                f"table {qualified_name(table)!r} has no column {name!r}",
                "check the column name against the schema",
            )
            return None
        return table.columns[name]

    def temporal(self, table: sa.Table, key: str, name: str) -> sa.Column | None:
        column = self.column(table, key, name)
        since_format = self.rule.since_format
        if column is not None and since_format is not None:
            # SQLite stores whatever it is given, so there the declared type says little.
            numeric = isinstance(column.type, (sa.Integer, sa.Numeric, sa.Float))
            if not numeric and self.catalog.dialect != "sqlite":
                self.add(
                    key,
                    f"column {name!r} is {column.type}; since_format = {since_format!r} "
                    "reads numbers",
                    "name a numeric column, or drop since_format for a date column",
                )
                return None
            return column
        if column is not None and not is_temporal(column, self.catalog.dialect):
            self.add(
                key,
                f"column {name!r} is {column.type}, not a date or timestamp",
                "name a DATE or TIMESTAMP column (or, for epoch or Julian numbers, set "
                "since_format)",
            )
            return None
        return column

    def check(self) -> list[Finding]:
        rule = self.rule
        table = self.table("table", rule.table)
        if table is None:
            return self.findings
        if not self.catalog.primary_key_columns(table):
            self.add(
                "table",
                f"table {rule.table!r} has no primary key",
                "rows are batched and recorded by their primary key; add one "
                "(a composite key is fine)",
            )
        if rule.since:
            self.temporal(table, "since", rule.since)
        if rule.since_latest and len(self.catalog.primary_key_columns(table)) > 1:
            self.add(
                "since_latest.key",
                f"table {rule.table!r} has a composite primary key; since_latest relates "
                "activity rows by one key column",
                "sweep the table by its own clock (since), or give it a single-column key",
            )
        elif rule.since_latest:
            latest = rule.since_latest
            related = self.table("since_latest.table", latest.table)
            if related is not None:
                self.temporal(related, "since_latest.column", latest.column)
                self.column(related, "since_latest.key", latest.key)
                self.activity_deleted_by_a_rule(related)
        for column_name, values in rule.only:
            column = self.column(table, f"only.{column_name}", column_name)
            if column is not None:
                for value in values:
                    if not _bindable(value, column):
                        self.add(
                            f"only.{column_name}",
                            f"a {type(value).__name__} value cannot be compared with "
                            f"column {column_name!r} of type {column.type}",
                            "give a value of the column's type",
                        )
                        break
        if rule.unless_after:
            self.temporal(table, "unless_after", rule.unless_after)
        if rule.unless_true:
            column = self.column(table, "unless_true", rule.unless_true)
            if column is not None and not is_boolean_like(column):
                self.add(
                    "unless_true",
                    f"column {rule.unless_true!r} is {column.type}, not boolean",
                    "name a BOOLEAN column",
                )
        for column_name, strategy in rule.columns:
            column = self.column(table, f"columns.{column_name}", column_name)
            if column is not None:
                self.strategy_fits(table, column, strategy)
        if rule.action == "delete":
            self.deletion_is_complete(table)
        return self.findings

    def strategy_fits(self, table: sa.Table, column: sa.Column, strategy: str) -> None:
        problems = strategy_problems(
            self.catalog, table, column, strategy, self.tz, dict(self.rule.columns)
        )
        for message, fix, warning in problems:
            self.findings.append(
                Finding(
                    self.database, f"{self.rule.key}.columns.{column.name}", message, fix, warning
                )
            )

    def deletion_is_complete(self, table: sa.Table) -> None:
        """Say what deleting the rule's rows does to the rows that reference them.

        A reference from outside the cascade without an ON DELETE action does not
        make the delete fail: the sweep holds back (held, "referenced") the due rows
        still referenced, until those rows go. So that is a warning, and listing the
        table in cascade is only for deleting its rows with their parent, never a way
        to make the rule work (it would delete invoices the law says to keep). What
        the engine resolves itself (ON DELETE CASCADE/SET NULL/SET DEFAULT) needs
        nothing, except an engine cascade into rows meant to outlive the parent (a
        table with its own delete rule, or kept on erasure): those parents are held
        back too. A table that references itself is said out loud, and refused
        without an action: a due row that other rows of it still reference would
        fail the delete mid-run, every run.
        """
        children: dict[str, tuple[int, sa.Table]] = {}
        for i, name in enumerate(self.rule.cascade):
            child = self.table(f"cascade[{i}]", name)
            if child is not None:
                children[qualified_name(child)] = (i, child)
        reachable = {qualified_name(table)}
        engine_cascaded: set[str] = set()
        # Walk parents before children so a grandchild listed in cascade is accepted
        # once its own parent is. Tables the engine deletes from (ON DELETE CASCADE)
        # are walked too, as the run does: what references their rows holds the
        # parent back, and their self-references need the same answer.
        frontier: list[tuple[sa.Table, str, bool]] = [(table, "action", False)]
        while frontier:
            parent, key, by_engine = frontier.pop(0)
            for ref in self.catalog.references_to(parent):
                child_name = qualified_name(ref.child)
                if ref.child is parent:
                    self.self_reference(key, parent, ref)
                elif child_name in children and not by_engine:
                    if child_name not in reachable:
                        reachable.add(child_name)
                        frontier.append((ref.child, f"cascade[{children[child_name][0]}]", False))
                elif ref.ondelete == "CASCADE":
                    if self.kept_longer(key, table, parent, ref):
                        continue
                    if child_name not in engine_cascaded and child_name not in reachable:
                        engine_cascaded.add(child_name)
                        frontier.append((ref.child, key, True))
                elif ref.ondelete not in SELF_RESOLVING:
                    self.held_while_referenced(key, table, parent, ref, by_engine)
        for link in self.links:
            if link.table in children and link.references_table in reachable:
                reachable.add(qualified_name(children[link.table][1]))
        for child_name, (i, _child) in children.items():
            if child_name not in reachable:
                self.add(
                    f"cascade[{i}]",
                    f"table {child_name!r} has no foreign key to {self.rule.table!r} "
                    "(directly, through another cascade table or a subject.links entry)",
                    "remove it from cascade, or declare the foreign key",
                )

    def self_reference(self, key: str, table: sa.Table, ref: Reference) -> None:
        """A table the delete sweeps refers to itself (`comment.parent_id`)."""
        name, columns = qualified_name(table), ", ".join(ref.columns)
        if ref.ondelete == "CASCADE":
            self.add(
                key,
                f"{name!r} references itself ({columns}, ON DELETE CASCADE): rows that "
                "reference a deleted row are deleted with it by the engine, due or not",
                f"declare ON DELETE SET NULL on {columns} to keep them",
                warning=True,
            )
        elif ref.ondelete in ("SET NULL", "SET DEFAULT"):
            to = "NULL" if ref.ondelete == "SET NULL" else "its default"
            self.add(
                key,
                f"{name!r} references itself ({columns}, ON DELETE {ref.ondelete}): rows "
                f"that reference a deleted row stay, with {columns} set to {to}",
                warning=True,
            )
        else:
            self.add(
                key,
                f"{name!r} references itself ({columns}, {_on_delete(ref.ondelete)}): "
                "deleting a row that other rows still reference fails mid-run",
                f"declare ON DELETE SET NULL or CASCADE on {columns}",
            )

    def held_while_referenced(
        self, key: str, table: sa.Table, parent: sa.Table, ref: Reference, by_engine: bool
    ) -> None:
        """Rows outside the cascade reference the deleted ones with no ON DELETE action."""
        child, columns = qualified_name(ref.child), ", ".join(ref.columns)
        how = f"({columns}, {_on_delete(ref.ondelete)})"
        if parent is table:
            what = f"due rows of {qualified_name(table)!r} that rows of {child!r} still reference"
        else:
            went = " (deleted with them by ON DELETE CASCADE)" if by_engine else ""
            what = (
                f"due rows of {qualified_name(table)!r} whose {qualified_name(parent)!r} rows"
                f"{went} are still referenced by rows of {child!r}"
            )
        fix = (
            f"declare ON DELETE CASCADE or SET NULL on {child}.{columns} if they may go "
            "(or be detached) with it"
            if by_engine
            else f"add {child!r} to the rule's cascade only to delete them with the parent"
        )
        self.add(key, f"{what} {how} are held back (referenced) until those rows go", fix, True)

    def kept_longer(self, key: str, table: sa.Table, parent: sa.Table, ref: Reference) -> bool:
        """An engine-level ON DELETE CASCADE into rows that are to outlive the parent:
        warn and return True (the run holds such parents back), else False."""
        reason = self.kept_reason(ref.child)
        if reason is None:
            return False
        child = qualified_name(ref.child)
        self.add(
            key,
            f"rows of {child!r} reference {qualified_name(parent)!r} with ON DELETE CASCADE "
            f"({', '.join(ref.columns)}) and {reason}: due rows of {qualified_name(table)!r} "
            f"whose {child!r} rows are kept longer are held back (referenced)",
            f"add {child!r} to the rule's cascade only to delete them with the parent",
            warning=True,
        )
        return True

    def activity_deleted_by_a_rule(self, activity: sa.Table) -> None:
        """Another delete rule removes the rows this rule's clock reads: warn.

        A run pins its due rows first, so it does what the plan said; but once the
        latest activity is gone, the clock falls back to older activity, and a later
        run can find a row due that was not (a customer whose last call was deleted
        after a year counts from a visit years before).
        """
        if self.config is None:
            return
        for other in self.config.rules:
            if (
                other.action == "delete"
                and other is not self.rule
                and other.applies_to(self.database)
                and self.catalog.table(other.table) is activity
                # deleted no sooner than this rule is due by it: the row was due anyway
                and _approximate_days(other.after) < _approximate_days(self.rule.after)
            ):
                self.add(
                    "since_latest.table",
                    f"rule {other.key} deletes rows of {qualified_name(activity)!r}, which this "
                    "rule's clock reads: a deleted latest activity moves the clock back to "
                    "older activity, and a later run may find rows due that were not",
                    "keep the activity rows this rule needs (anonymise instead of delete, "
                    "or a longer period), or record the last activity in a column",
                    warning=True,
                )

    def kept_reason(self, child: sa.Table) -> str | None:
        """Why rows of `child` may outlive their parent: their own delete rule, or erasure
        keeps them; None if nothing does."""
        if self.config is None:
            return None
        for other in self.config.rules:
            if (
                other.action == "delete"
                and other is not self.rule
                and other.applies_to(self.database)
                and self.catalog.table(other.table) is child
            ):
                return f"have their own delete rule ({other.key})"
        for erase in self.config.subject.erase if self.config.subject else ():
            if erase.action == "keep" and self.catalog.table(erase.table) is child:
                return f'are kept on erasure (subject.erase.{erase.table} action "keep")'
        return None


def _approximate_days(period: Any) -> int:
    """A period's length in days, roughly (months of 28 days, years of 365: a lower bound
    within a few days, enough to say which of two periods is shorter)."""
    per_unit = {"day": 1, "week": 7, "month": 28, "year": 365}
    return int(period.count) * per_unit.get(str(period.unit), 1)


def _on_delete(action: str | None) -> str:
    return "no ON DELETE action" if action is None else f"ON DELETE {action}"


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
                    f"CHECK constraint {name} ({text}) would reject the value "
                    f"strategy {strategy!r} writes",
                    "choose another strategy, or relax the constraint",
                    False,
                )
            )
        elif verdict is None and sample is not None:
            problems.append(
                (
                    f"CHECK constraint {name} ({text}) mentions it and could not be "
                    "tested against the new value",
                    "make sure the strategy's output satisfies it",
                    True,
                )
            )
    return problems


def check_rule(catalog: Catalog, database: str, rule: Rule, config: Config) -> list[Finding]:
    """Return the findings for one rule against one reflected database."""
    links = config.subject.links if config.subject else ()
    return _RuleChecker(catalog, database, rule, links, config.sweep.tz, config).check()


def check_subject(catalog: Catalog, database: str, config: Config) -> list[Finding]:
    """Return findings for `[subject]`: the tables and columns it names must exist."""
    subject = config.subject
    if subject is None:
        return []
    findings: list[Finding] = []

    def need(key: str, table_name: str, columns: list[str]) -> None:
        parent = catalog.partition_parent(table_name)
        if parent is not None:  # one table everywhere: the partitioned one
            findings.append(Finding(database, key, partition_message(table_name, parent)))
            return
        table = catalog.table(table_name)
        if table is None:
            findings.append(
                Finding(
                    database,
                    key,
                    f"no table {table_name!r}",
                    "check the table name (and its schema)",
                )
            )
            return
        for column in columns:
            if column not in table.columns:
                findings.append(
                    Finding(
                        database,
                        key,
                        f"table {table_name!r} has no column {column!r}",
                        "check the column name against the schema",
                    )
                )

    need("subject.root", subject.root, [column for _kind, column in subject.identifiers])
    for link in subject.links:
        key = f"subject.links[{link.index}]"
        need(key, link.table, [link.column, *[c for c, _v in link.only]])
        need(f"{key}.references", link.references_table, [link.references_column])
    for reference in subject.references:
        key = f"subject.references[{reference.index}]"
        need(key, reference.table, [reference.column])
        table = catalog.table(reference.table)
        if (
            table is None
            or catalog.partition_parent(reference.table) is not None
            or reference.column not in table.columns
        ):
            continue
        if reference.column not in catalog.foreign_key_columns(table):
            findings.append(
                Finding(
                    database,
                    f"{key}.column",
                    f"{reference.table}.{reference.column} is not a column of a foreign key; "
                    "a reference is a foreign key between two people",
                    "name a foreign-key column, or use [[subject.links]] for an undeclared one",
                )
            )
        elif reference.action == "null" and not table.columns[reference.column].nullable:
            findings.append(
                Finding(
                    database,
                    f"{key}.action",
                    f'{reference.table}.{reference.column} is NOT NULL, so "null" (the '
                    "default) cannot detach other people's rows from the erased person",
                    'use action = "keep" (the person\'s row is then anonymised) or "refuse"',
                )
            )
    for parent in subject.parents:
        need("subject.parents", parent, [])
    for erase in subject.erase:
        key = f"subject.erase.{erase.table}"
        need(key, erase.table, [c for c, _s in erase.columns])
        table = catalog.table(erase.table)
        if table is None or catalog.partition_parent(erase.table) is not None:
            continue
        for column_name, strategy in erase.columns:
            if column_name in table.columns:
                for message, fix, warning in strategy_problems(
                    catalog,
                    table,
                    table.columns[column_name],
                    strategy,
                    config.sweep.tz,
                    dict(erase.columns),
                ):
                    findings.append(
                        Finding(database, f"{key}.columns.{column_name}", message, fix, warning)
                    )
    return findings
