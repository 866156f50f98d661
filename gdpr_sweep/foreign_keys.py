"""Foreign keys as each engine's own catalog holds them, and their ON DELETE actions.

Reflection per schema misses keys that cross schemas (PostgreSQL), databases (MariaDB)
and, on SQLite, the ON DELETE action of an inline `REFERENCES` clause; so the keys are
read from the engine's catalog, one query per database. `catalog.Catalog` caches them
and turns them into `Reference`s between reflected tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Inspector

#: ON DELETE actions with which the database itself keeps a child consistent.
SELF_RESOLVING = {"CASCADE", "SET NULL", "SET DEFAULT"}


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


def postgresql_foreign_keys(connection: Connection) -> list[ForeignKey]:
    """PostgreSQL: every foreign key of every schema; a partition's are its partitioned table's."""
    rows = connection.exec_driver_sql(_PG_FOREIGN_KEYS).all()
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


def mysql_foreign_keys(connection: Connection) -> list[ForeignKey]:
    """MariaDB/MySQL: every foreign key of every database the connection may see."""
    grouped: dict[tuple[str, str, str], list[Any]] = {}
    for row in connection.exec_driver_sql(_MYSQL_FOREIGN_KEYS).all():
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


def sqlite_foreign_keys(connection: Connection, schema: str | None) -> list[ForeignKey]:
    """SQLite: the keys of `schema`'s tables (None: main), ON DELETE of inline REFERENCES kept."""
    name = schema or "main"
    quoted = connection.dialect.identifier_preparer.quote_identifier(name)
    rows = connection.exec_driver_sql(
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


def reflected_foreign_keys(inspector: Inspector, schema: str | None, own: str) -> list[ForeignKey]:
    """Other engines: SQLAlchemy's reflection of `schema`, whose name is `own`."""
    keys = []
    for (_schema, table), fks in sorted(
        inspector.get_multi_foreign_keys(schema=schema).items(),
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
