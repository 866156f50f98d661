"""Check `[subject]` against a reflected database: the tables and columns it names, the
strategies of its erase entries, and warnings about the subject graph it makes."""

from __future__ import annotations

from ..catalog import Catalog, partition_message, qualified_name
from ..config import Config
from ..engines import TargetDatabase
from ..subject.graph import SubjectGraph, build_graph
from .findings import Finding
from .strategy_checks import strategy_problems


def check_subject(catalog: Catalog, database: str, config: Config) -> list[Finding]:
    """Return findings for `[subject]`: the tables and columns it names must exist."""
    subject = config.subject
    if subject is None:
        return []
    findings: list[Finding] = []

    def need(key_path: str, table_name: str, columns: list[str]) -> None:
        parent = catalog.partition_parent(table_name)
        if parent is not None:  # one table everywhere: the partitioned one
            findings.append(Finding(database, key_path, partition_message(table_name, parent)))
            return
        table = catalog.table(table_name)
        if table is None:
            findings.append(
                Finding(
                    database,
                    key_path,
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
                        key_path,
                        f"table {table_name!r} has no column {column!r}",
                        "check the column name against the schema",
                    )
                )

    need("subject.root", subject.root, [column for _kind, column in subject.identifiers])
    for link in subject.links:
        key_path = f"subject.links[{link.index}]"
        need(key_path, link.table, [link.column, *[c for c, _v in link.only]])
        need(f"{key_path}.references", link.references_table, [link.references_column])
    for reference in subject.references:
        key_path = f"subject.references[{reference.index}]"
        need(key_path, reference.table, [reference.column])
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
                    f"{key_path}.column",
                    f"{reference.table}.{reference.column} is not a column of a foreign key; "
                    "a reference is a foreign key between two people",
                    "name a foreign-key column, or use [[subject.links]] for an undeclared one",
                )
            )
        elif reference.action == "null" and not table.columns[reference.column].nullable:
            findings.append(
                Finding(
                    database,
                    f"{key_path}.action",
                    f'{reference.table}.{reference.column} is NOT NULL, so "null" (the '
                    "default) cannot detach other people's rows from the erased person",
                    'use action = "keep" (the person\'s row is then anonymised) or "refuse"',
                )
            )
    for parent in subject.parents:
        need("subject.parents", parent, [])
    for erase in subject.erase:
        key_path = f"subject.erase.{erase.table}"
        need(key_path, erase.table, [c for c, _s in erase.columns])
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
                        Finding(
                            database, f"{key_path}.columns.{column_name}", message, fix, warning
                        )
                    )
    return findings


def subject_graph_warnings(catalog: Catalog, target: TargetDatabase) -> list[Finding]:
    """The warnings about the subject graph, which is built once for them."""
    config = target.config
    if config.subject is None or not config.subject.identifiers:
        return []
    graph = build_graph(catalog, config, config.subject.identifiers[0][1])
    return unindexed_subject_links(catalog, target, graph) + people_found_as_rows(target, graph)


def unindexed_subject_links(
    catalog: Catalog, target: TargetDatabase, graph: SubjectGraph
) -> list[Finding]:
    """Warn about subject-graph columns without an index: erasing through them scans."""
    config = target.config
    assert config.subject is not None
    findings = []
    root = graph.root
    needed = [(root, column, f"subject.identifiers.{kind}")
              for kind, column in config.subject.identifiers]  # fmt: skip
    for e in graph.edges:
        # Downward, the child's rows are looked up by its referencing column; upward
        # (a declared parent), the parent's by the column it is referred to by.
        table, column = (e.parent, e.referred_columns[0]) if e.upward else (e.child, e.column)
        needed.append((table, column, f"subject: {qualified_name(table)}.{column}"))
    for table, column, key_path in needed:
        if not catalog.is_indexed(table, column):
            findings.append(Finding(
                target.name, key_path,
                f"{qualified_name(table)}.{column} has no index, so finding a person's "
                "rows through it scans the whole table",
                f"add an index on {qualified_name(table)} ({column})", warning=True,
            ))  # fmt: skip
    return findings


def people_found_as_rows(target: TargetDatabase, graph: SubjectGraph) -> list[Finding]:
    """Warn about graph tables that look like other people: they hold an identifier
    column of the root's (an `email` of their own) and are reached by a foreign key
    whose column does not name the table it refers to (`support_rep_id` → employee).

    `customer.support_rep_id → employee` would make erasing a support agent erase her
    21 customers as "her rows"; declared in `[[subject.references]]`, it is a reference
    between two people instead. A warning: a table can hold the person's own address.
    """
    config = target.config
    assert config.subject is not None
    identifiers = {column for _kind, column in config.subject.identifiers}
    findings = []
    for edge in graph.edges:
        table = edge.child
        if edge.upward or not edge.is_foreign_key or table is graph.root:
            continue
        own = sorted(identifiers & {c.name for c in table.columns})
        parent_name = edge.parent.name.lower()
        if not own or any(parent_name in c.lower() for c in edge.columns):
            continue  # `candidate_id` → candidate reads as ownership; `support_rep_id` not
        name = qualified_name(table)
        column = ", ".join(edge.columns)
        findings.append(Finding(
            target.name, f"subject: {name}.{column}",
            f"{name} has identifier column(s) of its own ({', '.join(own)}) and is erased and "
            f"exported as the person's rows through {name}.{column} → "
            f"{qualified_name(edge.parent)}",
            f'if its rows are other people, declare [[subject.references]] table = "{name}" '
            f'column = "{edge.columns[0]}"', warning=True,
        ))  # fmt: skip
    return findings
