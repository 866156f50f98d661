"""`DELETE … ORDER BY key LIMIT n`: MariaDB's one-statement batch, as SQLAlchemy Core.

MariaDB (and MySQL) accept `ORDER BY` and `LIMIT` on a single-table DELETE, and MariaDB
also `RETURNING`. SQLAlchemy 2.1 renders `LIMIT` alone (`sqlalchemy.dialects.mysql.
limit`); the order is what makes a limited DELETE walk the key: without it, MariaDB
deletes the first `n` due rows of whatever access path it picks (the clock's index,
say), and the greatest key returned would not bound the rows left behind. This is the
same syntax-extension point with both clauses. The limit is rendered as a literal at
execution (a bound integer, so one compiled form serves every batch size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import SyntaxExtension
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Delete
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.visitors import InternalTraversal


class OrderedLimit(SyntaxExtension, ClauseElement):
    """`ORDER BY columns LIMIT :n` after a DELETE's WHERE (MariaDB/MySQL only)."""

    __visit_name__ = "gdpr_sweep_ordered_limit"
    inherit_cache = True
    _traverse_internals: list[tuple[str, InternalTraversal]] = [  # noqa: RUF012 (SQLAlchemy's)
        ("columns", InternalTraversal.dp_clauseelement_tuple),
        ("limit", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, columns: Sequence[sa.Column], limit: sa.BindParameter[int]) -> None:
        self.columns = tuple(columns)
        self.limit = limit

    def apply_to_delete(self, delete_stmt: Delete) -> None:
        delete_stmt.apply_syntax_extension_point(self.append_replacing_same_type, "post_criteria")


@compiles(OrderedLimit, "mysql")
def _ordered_limit(element: OrderedLimit, compiler: SQLCompiler, **kw: Any) -> str:
    columns = ", ".join(compiler.process(column, **kw) for column in element.columns)
    kw["literal_execute"] = True
    return f"ORDER BY {columns} LIMIT {compiler.process(element.limit, **kw)}"
