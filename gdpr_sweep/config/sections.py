"""Validate each top-level table of the config: `[sweep]`, `[databases]`, `[[rules]]`, `[subject]`.

Each parser takes the `Node` of its table and returns the model's dataclasses, or
raises ConfigError naming the key (`nodes.py`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import Literal

from ..batch_sizing import MAX_BATCH_SIZE
from ..errors import ConfigError
from ..periods import load_timezone, parse_duration, parse_fiscal_year_end, parse_period
from .model import (
    ACTIONS,
    ERASE_ACTIONS,
    PARTITION_MODES,
    REFERENCE_ACTIONS,
    SINCE_FORMATS,
    DatabaseConfig,
    EraseAction,
    Rule,
    SinceLatest,
    SubjectConfig,
    SubjectLink,
    SubjectReference,
    SweepSettings,
)
from .nodes import (
    Node,
    check_column_name,
    check_identifier,
    choice,
    parse_only,
    parse_strategies,
    resolve_url,
)

_RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_KIND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


def parse_sweep(node: Node) -> SweepSettings:
    node.only_keys({f.name for f in dataclasses.fields(SweepSettings)})
    defaults = SweepSettings()
    tz_name = node.string("timezone", default=defaults.timezone)
    assert tz_name is not None
    try:
        load_timezone(tz_name)
    except ValueError as exc:
        raise node.fail("timezone", str(exc)) from None
    fiscal_raw = node.string("fiscal_year_end", default=str(defaults.fiscal_year_end))
    try:
        fiscal = parse_fiscal_year_end(fiscal_raw or "")
    except ValueError as exc:
        raise node.fail("fiscal_year_end", str(exc)) from None
    hash_key_env = node.string("hash_key_env", default=defaults.hash_key_env)
    if hash_key_env is not None and not _ENV_RE.match(hash_key_env):
        raise node.fail("hash_key_env", f"{hash_key_env!r} is not an environment variable name")
    state = node.string("state_url", default=defaults.state_url)
    assert state is not None
    url = resolve_url(state, node.key_path("state_url"), Path("."))
    if url.password:
        raise node.fail("state_url", "holds a password; pass secrets through the environment")
    state_env = node.string("state_url_env")
    if state_env is not None and not _ENV_RE.match(state_env):
        raise node.fail("state_url_env", f"{state_env!r} is not an environment variable name")
    if state_env is not None and "state_url" in node.value:
        raise node.fail("state_url_env", "give state_url or state_url_env, not both")
    return SweepSettings(
        state_url=state,
        state_url_env=state_env,
        hash_key_env=hash_key_env or defaults.hash_key_env,
        timezone=tz_name,
        fiscal_year_end=fiscal,
        batch_size=_batch_size(node),
        batch_time=_batch_time(node),
        max_fraction=node.number("max_fraction", defaults.max_fraction, 0.0, 1.0),
        personal_column_patterns=_regexes(node, "personal_column_patterns"),
        scan_ignore=node.string_list("scan_ignore"),
        lock_timeout=_duration(node, "lock_timeout"),
        statement_timeout=_duration(node, "statement_timeout"),
    )


def _batch_size(node: Node) -> int | Literal["auto"]:
    if node.value.get("batch_size") == "auto":
        return "auto"
    if isinstance(node.value.get("batch_size"), str):
        raise node.fail("batch_size", 'must be an integer or "auto"')
    return node.integer("batch_size", 5000, 1, MAX_BATCH_SIZE)


def _batch_time(node: Node) -> float:
    seconds = _duration(node, "batch_time")
    if seconds is None:
        return SweepSettings().batch_time
    if not 0.01 <= seconds <= 60:
        raise node.fail("batch_time", "must be between 10ms and 60s")
    return seconds


def _duration(node: Node, name: str) -> float | None:
    text = node.string(name)
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise node.fail(name, str(exc)) from None


def _regexes(node: Node, name: str) -> tuple[str, ...]:
    patterns = node.string_list(name)
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{node.key_path(name)}[{i}]: not a regular expression ({exc})"
            ) from None
    return patterns


#: The keys of a `[databases.NAME]` entry (a `[tenants]` row's columns are some of them).
DATABASE_KEYS = frozenset({"url", "url_env", "controller", "analyze"})


def parse_databases(node: Node) -> tuple[DatabaseConfig, ...]:
    result = []
    for name in node.value:
        check_database_name(node, name)
        result.append(parse_database_entry(node.table(name, required=True), name))
    return tuple(result)


def check_database_name(node: Node, name: str) -> None:
    if not is_database_name(name):
        raise node.fail(name, "a database name is letters, digits, '_', '-' and '.'")


def is_database_name(name: str) -> bool:
    return _DB_NAME_RE.match(name) is not None


def parse_database_entry(entry: Node, name: str, origin: str | None = None) -> DatabaseConfig:
    """One database entry: a `[databases.NAME]` table, or a `[tenants]` row (`origin`
    says which file and line) with the `[tenants]` table's keys filled in."""
    entry.only_keys(set(DATABASE_KEYS))
    url = entry.string("url")
    url_env = entry.string("url_env")
    if (url is None) == (url_env is None):
        raise entry.fail(None, "needs exactly one of url or url_env")
    if url is not None:
        parsed = resolve_url(url, entry.key_path("url"), Path("."))
        if parsed.password:
            raise entry.fail("url", "holds a password; name an environment variable in url_env")
    if url_env is not None and not _ENV_RE.match(url_env):
        raise entry.fail("url_env", f"{url_env!r} is not an environment variable name")
    return DatabaseConfig(
        name,
        url,
        url_env,
        entry.string("controller"),
        analyze=entry.boolean("analyze", False),
        origin=origin,
    )


_RULE_KEYS = {
    "id",
    "table",
    "databases",
    "action",
    "after",
    "since",
    "since_latest",
    "since_format",
    "from_fiscal_year_end",
    "basis",
    "description",
    "only",
    "unless_after",
    "unless_true",
    "columns",
    "cascade",
    "categories",
    "partitions",
}


def parse_rules(nodes: list[Node], database_names: set[str]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(nodes):
        node.only_keys(_RULE_KEYS)
        rule_id = node.string("id", required=True)
        assert rule_id is not None
        if not _RULE_ID_RE.match(rule_id):
            raise node.fail("id", f"{rule_id!r}: use letters, digits, '.', '_' and '-'")
        if rule_id in seen:
            raise node.fail("id", f"{rule_id!r} is already the id of rules[{seen[rule_id]}]")
        seen[rule_id] = index
        table = node.identifier("table", required=True)
        assert table is not None
        action = choice(node, "action", ACTIONS, None)
        after_raw = node.value.get("after")
        if after_raw is None:
            raise node.fail("after", 'is required (e.g. "6 months")')
        try:
            after = parse_period(after_raw)
        except ValueError as exc:
            raise node.fail("after", str(exc)) from None
        databases = node.string_list("databases", ("*",))
        for i, db_name in enumerate(databases):
            if db_name != "*" and db_name not in database_names:
                close = difflib.get_close_matches(db_name, sorted(database_names), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(
                    f"{node.key_path('databases')}[{i}]: no database {db_name!r}{hint}"
                )
        since = node.identifier("since")
        if since is not None:
            check_column_name(since, node.key_path("since"))
        since_latest = None
        if "since_latest" in node.value:
            latest = node.table("since_latest", required=True)
            latest.only_keys({"table", "column", "key"})
            lt, lc, lk = (latest.identifier(k, required=True) for k in ("table", "column", "key"))
            assert lt and lc and lk
            check_column_name(lc, latest.key_path("column"))
            check_column_name(lk, latest.key_path("key"))
            since_latest = SinceLatest(lt, lc, lk)
        if since is None and since_latest is None:
            raise node.fail(None, "needs since (a date column) or since_latest")
        since_format = (
            choice(node, "since_format", SINCE_FORMATS, None)
            if "since_format" in node.value
            else None
        )
        fiscal = node.boolean("from_fiscal_year_end", False)
        if fiscal and since_latest is not None:
            raise node.fail("from_fiscal_year_end", "cannot be combined with since_latest")
        columns = parse_strategies(node, "columns", required=action == "anonymise")
        if action == "delete" and columns:
            raise node.fail("columns", 'only applies to action "anonymise"')
        cascade = node.string_list("cascade")
        if cascade and action != "delete":
            raise node.fail("cascade", 'only applies to action "delete"')
        for i, child in enumerate(cascade):
            check_identifier(child, f"{node.key_path('cascade')}[{i}]")
        partitions = choice(node, "partitions", PARTITION_MODES, "drop")
        if "partitions" in node.value and action != "delete":
            raise node.fail("partitions", 'only applies to action "delete"')
        unless_after = node.identifier("unless_after")
        unless_true = node.identifier("unless_true")
        for name, col in (("unless_after", unless_after), ("unless_true", unless_true)):
            if col is not None:
                check_column_name(col, node.key_path(name))
        rules.append(
            Rule(
                id=rule_id,
                table=table,
                action=action,  # type: ignore[arg-type]
                after=after,
                databases=databases,
                since=since,
                since_latest=since_latest,
                since_format=since_format,
                from_fiscal_year_end=fiscal,
                basis=node.string("basis"),
                description=node.string("description"),
                only=parse_only(node, "only"),
                unless_after=unless_after,
                unless_true=unless_true,
                columns=columns,
                cascade=cascade,
                categories=_categories(node),
                partitions=partitions,
                index=index,
            )
        )
    return tuple(rules)


def _categories(node: Node) -> tuple[str, ...]:
    """`categories`: the data categories a rule's table holds (names the controller's
    record of processing uses; `init` writes those of `personal_patterns.CATEGORIES`)."""
    categories = node.string_list("categories")
    for i, name in enumerate(categories):
        if not name.isprintable() or len(name) > 100:
            raise ConfigError(f"{node.key_path('categories')}[{i}]: not a category name")
    return categories


def parse_subject(node: Node, rule_ids: set[str]) -> SubjectConfig:
    node.only_keys({"root", "identifiers", "links", "erase", "references", "parents"})
    root = node.identifier("root", required=True)
    assert root is not None
    parents = node.string_list("parents")
    for parent in parents:
        check_identifier(parent, node.key_path("parents"))
        if parent == root:
            raise node.fail("parents", f"{parent!r} is the root table, not a parent of it")
    identifiers_node = node.table("identifiers", required=True)
    if not identifiers_node.value:
        raise node.fail("identifiers", 'must name at least one kind (e.g. email = "email")')
    identifiers = []
    for kind in identifiers_node.value:
        if not _KIND_RE.match(kind):
            raise identifiers_node.fail(kind, "an identifier kind is letters, digits, '_' and '-'")
        column = identifiers_node.identifier(kind, required=True)
        assert column is not None
        check_column_name(column, identifiers_node.key_path(kind))
        identifiers.append((kind, column))
    links = []
    for index, link in enumerate(node.array_of_tables("links")):
        link.only_keys({"table", "column", "references", "only"})
        table = link.identifier("table", required=True)
        column = link.identifier("column", required=True)
        references = link.string("references", required=True)
        assert table and column and references
        check_column_name(column, link.key_path("column"))
        ref_table, _, ref_column = references.rpartition(".")
        if not ref_table or not ref_column:
            raise link.fail("references", f"{references!r} is not TABLE.COLUMN")
        check_identifier(ref_table, link.key_path("references"))
        links.append(
            SubjectLink(table, column, ref_table, ref_column, parse_only(link, "only"), index)
        )
    person_references: list[SubjectReference] = []
    for index, entry in enumerate(node.array_of_tables("references")):
        entry.only_keys({"table", "column", "action"})
        table = entry.identifier("table", required=True)
        column = entry.identifier("column", required=True)
        assert table and column
        check_column_name(column, entry.key_path("column"))
        action = choice(entry, "action", REFERENCE_ACTIONS, "null")
        same = next((r for r in person_references if (r.table, r.column) == (table, column)), None)
        if same is not None:
            raise entry.fail(
                None, f"declares the same reference as subject.references[{same.index}]"
            )
        person_references.append(SubjectReference(table, column, action, index))  # type: ignore[arg-type]
    erase = []
    erase_node = node.table("erase", required=False)
    for table in erase_node.value:
        check_identifier(table, erase_node.key_path(table))
        entry = erase_node.table(table, required=True)
        entry.only_keys({"action", "columns", "rule", "basis"})
        action = choice(entry, "action", ERASE_ACTIONS, "delete")
        # With "delete", columns say how to anonymise rows that must stay because kept
        # or anonymised rows still reference them.
        columns = parse_strategies(entry, "columns", required=action == "anonymise")
        if action == "keep" and columns:
            raise entry.fail("columns", 'does not apply to action "keep"')
        rule = entry.string("rule")
        if rule is not None and rule not in rule_ids:
            close = difflib.get_close_matches(rule, sorted(rule_ids), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise entry.fail("rule", f"no rule with id {rule!r}{hint}")
        if rule is not None and action != "keep":
            raise entry.fail("rule", 'only applies to action "keep"')
        basis = entry.string("basis")
        if action == "keep" and rule is None and basis is None:
            raise entry.fail(None, 'action "keep" needs the rule that ends it, or a basis')
        erase.append(EraseAction(table, action, columns, rule, basis))  # type: ignore[arg-type]
    return SubjectConfig(
        root, tuple(identifiers), tuple(links), tuple(erase), tuple(person_references), parents
    )
