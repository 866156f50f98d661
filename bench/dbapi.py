"""Plain DB-API access for the benchmark: URLs, connections and the baseline's SQL.

Standard library only (the drivers are imported when a connection is opened), so the
baseline process (`baseline.py`) starts as a driver-only script would: no SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

ENGINES = ("sqlite", "postgresql", "mariadb")

#: The DB-API paramstyle of each driver: sqlite3 `qmark`, psycopg and PyMySQL `format`.
PLACEHOLDER = {"sqlite": "?", "postgresql": "%s", "mariadb": "%s"}

REDACTED = "[redacted]"  # what gdpr-sweep's `redact` strategy writes

#: What the anonymise rule sets, written the way one would by hand on each engine:
#: name/email/cpr/address = "null", notes = "redact", birth_date = "year".
_BIRTH_YEAR = {
    "sqlite": "substr(birth_date, 1, 4) || '-01-01'",
    "postgresql": "date_trunc('year', birth_date)::date",
    "mariadb": "MAKEDATE(YEAR(birth_date), 1)",
}


def pending_predicate(engine: str) -> str:
    """Rows the anonymise rule still has work on: what gdpr-sweep's plan also counts."""
    return (
        "(name IS NOT NULL OR email IS NOT NULL OR cpr IS NOT NULL OR address IS NOT NULL"
        f" OR (notes IS NOT NULL AND notes <> '{REDACTED}')"
        f" OR (birth_date IS NOT NULL AND birth_date <> {_BIRTH_YEAR[engine]}))"
    )


def engine_of(url: str) -> str:
    """Return which of ENGINES a SQLAlchemy-style URL points at."""
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    if scheme in ("mysql", "mariadb"):
        return "mariadb"
    if scheme in ENGINES:
        return scheme
    raise ValueError(f"unsupported database URL scheme {scheme!r}")


def connect_params(url: str) -> dict[str, Any]:
    """Return the driver's connect() keyword arguments for a SQLAlchemy-style URL."""
    engine = engine_of(url)
    parts = urlsplit(url)
    if engine == "sqlite":
        return {"database": parts.path[1:]}  # sqlite:///relative, sqlite:////absolute
    params: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or (5432 if engine == "postgresql" else 3306),
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
    }
    database = unquote(parts.path.lstrip("/"))
    params["dbname" if engine == "postgresql" else "database"] = database
    return params


def with_database(url: str, database: str) -> str:
    """Return `url` pointing at another database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def connect(engine: str, params: dict[str, Any], *, autocommit: bool = False) -> Any:
    """Open a DB-API connection with the driver's defaults (explicit commits)."""
    if engine == "sqlite":
        import sqlite3

        return sqlite3.connect(params["database"], isolation_level=None if autocommit else "")
    if engine == "postgresql":
        import psycopg

        return psycopg.connect(**params, autocommit=autocommit, connect_timeout=10)
    import pymysql

    return pymysql.connect(**params, autocommit=autocommit, charset="utf8mb4", connect_timeout=10)


def cutoff_param(engine: str, cutoff: str) -> Any:
    """Bind the cutoff the way gdpr-sweep does: ISO text on SQLite, else a naive datetime."""
    if engine == "sqlite":
        return cutoff
    return dt.datetime.fromisoformat(cutoff)


def anonymise_assignments(engine: str) -> tuple[str, tuple[Any, ...]]:
    """Return the SET clause of the anonymise rule and its parameters."""
    p = PLACEHOLDER[engine]
    return (
        f"name = NULL, email = NULL, cpr = NULL, address = NULL, notes = {p}, "
        f"birth_date = {_BIRTH_YEAR[engine]}",
        (REDACTED,),
    )
