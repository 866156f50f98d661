"""Reflect a target database: its tables, keys, indexes, partitions and constraints.

Every table and column the config names is looked up in the reflected schema before
any SQL is built from it; the compiler (`rules.py`) only ever uses the reflected
`Table` objects, so identifiers reach SQL quoted by SQLAlchemy, never spliced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .foreign_keys import (
    ForeignKey,
    mysql_foreign_keys,
    postgresql_foreign_keys,
    reflected_foreign_keys,
    sqlite_foreign_keys,
)


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
            found: list[Any] = list(self.inspector.get_check_constraints(table.name, table.schema))
        except NotImplementedError:
            found = []
        if self.dialect in ("mysql", "mariadb"):
            # Reflection reads table-level CONSTRAINT ... CHECK only: a column's own CHECK
            # (`c varchar(45) CHECK (...)`, and every MariaDB JSON column's json_valid)
            # is in information_schema alone.
            names = {c.get("name") for c in found}
            found += [c for c in self._mariadb_checks(table) if c["name"] not in names]
        return found

    def _mariadb_checks(self, table: sa.Table) -> list[dict[str, Any]]:
        query = sa.text(
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"
        )
        try:
            with self.connection.begin_nested():
                rows = self.connection.execute(
                    query, {"schema": table.schema, "table": table.name}
                ).all()
        except sa.exc.DBAPIError:
            return []  # MySQL: no TABLE_NAME there (its reflection reads them all)
        return [{"name": name, "sqltext": text} for name, text in rows]

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
                keys = postgresql_foreign_keys(self.connection)
            elif self.dialect in ("mysql", "mariadb"):
                keys = mysql_foreign_keys(self.connection)
            elif self.dialect == "sqlite":
                keys = sqlite_foreign_keys(self.connection, schema)
            else:
                keys = reflected_foreign_keys(self.inspector, schema, schema or self.default_schema)
            self._foreign_keys[scope] = keys
        return self._foreign_keys[scope]


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


def partition_message(name: str, parent: str) -> str:
    """The finding for a config key that names a partition, not its partitioned table."""
    return f"{name} is a partition of {parent}; name {parent}"


def qualified_name(table: sa.Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name
