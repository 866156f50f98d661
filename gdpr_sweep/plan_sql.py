"""`plan --sql`: per rule, the statements `apply` will execute, compiled for its database.

The statements come from the very functions the sweep executes — the pins
(`pinning.PinnedKeys`), each batch (`execute.batch_statements`), `hash` pseudonyms
(`anonymise`), the recount (`counting`) — over the rules compiled as `plan` compiles
them (`plan.compile_database`), and each is compiled by its database's own dialect
(quoting, casts, functions, composite-key comparisons), so what is shown is what runs.
Only the placeholders are spelled `:name` on every engine, so that each can be named
beside its statement; the driver gets its own spelling (`?`, `%(name)s`).

Bound values are listed beside the statement when they are constants of the config or
the as-of — the cutoff, `only` values, a strategy's placeholder, the batch size. What is
bound at run time and may be personal — the batch's key range, a held row's key, a
row's pseudonym — is only ever a placeholder. Nothing is written: each database is read
in a read-only transaction, rolled back.

`ITEM_STEPS` are the steps of one item (a rule in a database), in the order they run:
partitions removed whole, the pins, the batches, the recount. For a rule nothing else in
the run can affect, `run` walks its table in place instead of the pins
(`inplace_keys.py`): those batches are shown after `apply`'s.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from .anonymise import hash_case_update, hash_inputs, hash_update_by_key, set_values
from .batch_sizing import first_batch_size
from .cascade import CascadeStep, cascade_steps
from .catalog import Catalog, qualified_name
from .checks.check_config import check_database
from .checks.findings import raise_findings
from .columns import numeric_instant
from .config import Config
from .counting import count_statement, scan_is_cheaper
from .engines import DatabaseFailure, TargetDatabase, database_failure, select_databases
from .errors import DatabaseUnavailable
from .execute import batch_statements, session_level, session_timeouts
from .holds.rows import HELD_KEY
from .holds.store import active_holds
from .inplace_keys import InPlaceKeys, self_contained, written_tables
from .keyset import Keyset
from .periods import local_date, start_of_local_day
from .pinning import BatchKeys, PinnedKeys
from .plan import compile_database, select_rules
from .rules import CompiledRule


@dataclass(frozen=True)
class Parameter:
    """A placeholder of a shown statement: what it stands for, and its value if shown."""

    name: str
    meaning: str
    value: str | None = None  # as SQL writes it; None: bound at run time, never shown
    #: a constant of the SQL itself (a substr() position, a strategy's placeholder), not
    #: of a rule's meaning: listed together, after the ones that say something
    structural: bool = False


@dataclass(frozen=True)
class Statement:
    """One statement as it runs, and when it runs."""

    when: str
    sql: str
    parameters: tuple[Parameter, ...] = ()


@dataclass
class ItemStatements:
    """Every statement one rule runs in one database, in order."""

    database: str
    dialect: str
    rule: str
    table: str
    action: str
    cutoff: str
    basis: str | None
    position: int  # when the rule runs in its database (0: first)
    rules_in_database: int
    statements: list[Statement] = field(default_factory=list)


@dataclass(frozen=True)
class ItemContext:
    """What a step needs to build one rule's statements in one database."""

    connection: sa.Connection
    compiled: CompiledRule
    pinned: PinnedKeys
    cascade: list[CascadeStep]
    config: Config
    as_of: dt.datetime
    catalog: Catalog | None = None  # for the partition step (partition_plan.py)
    # `run` walks this rule's table in place, without pins (inplace_keys.py)
    in_place: bool = False

    @property
    def dialect(self) -> str:
        return self.connection.dialect.name


@dataclass
class SqlPlan:
    """`plan --sql`: the items in the order they run, per database; databases not read."""

    as_of: dt.datetime
    timezone: str
    config_digest: str
    items: list[ItemStatements] = field(default_factory=list)
    failures: list[DatabaseFailure] = field(default_factory=list)


# --- the steps of one item ------------------------------------------------------------


def pin_statements(context: ItemContext) -> list[Statement]:
    """Once, before any rule of the database acts: the pin table and its due keys."""
    pinned, connection = context.pinned, context.connection
    when = "pin (once, before any rule acts: every rule's pins in one transaction)"
    shown = [Statement(when, sql) for sql in pinned.create_statements(connection)]
    fill = pinned.fill_statement(scan_is_cheaper(connection, context.compiled))
    shown.append(show(context, when, fill))
    analyze = pinned.analyze_statement()
    if analyze is not None:
        shown.append(Statement(when, analyze))
    return shown


def batch_statements_shown(context: ItemContext) -> list[Statement]:
    """Every batch, one transaction each, until no pinned key is left."""
    return _batches_shown(context, context.pinned, "")


def in_place_statements(context: ItemContext) -> list[Statement]:
    """`run`, for a rule nothing else in the run can affect: its batches walk its table
    in place, by its whole due predicate (no pins); `apply` walks the pins above."""
    if not context.in_place:
        return []
    walked = InPlaceKeys(context.compiled, context.dialect)
    return _batches_shown(context, walked, "run (not apply), without pins: ")


def _batches_shown(context: ItemContext, keys: BatchKeys, prefix: str) -> list[Statement]:
    settings = context.config.sweep
    compiled, dialect = context.compiled, context.dialect
    timeouts = session_timeouts(dialect, settings.lock_timeout, settings.statement_timeout)
    shown: list[Statement] = []
    for first, when in ((True, f"{prefix}the first batch"), (False, f"{prefix}each later batch")):
        if not session_level(dialect):
            shown += [Statement(f"{when}: its session limits", sql) for sql in timeouts]
        elif first:  # session values: once, before the rule's first batch
            shown += [Statement("once per rule: its session limits", sql) for sql in timeouts]
        batch = batch_statements(
            compiled,
            keys,
            context.cascade,
            first_batch_size(settings.batch_size),
            dialect,
            first=first,
        )
        shown.append(show(context, f"{when}: its last key", batch.upper))
        for child, step in zip(batch.cascade, reversed(context.cascade), strict=True):
            shown.append(show(context, f"{when}: cascade to {qualified_name(step.child)}", child))
        if batch.act is not None:
            shown.append(show(context, f"{when}: {compiled.rule.action}", batch.act))
        else:
            shown += _hash_statements(context, when, batch.rows)
    return shown


def _hash_statements(
    context: ItemContext, when: str, rows: sa.ColumnElement[bool]
) -> list[Statement]:
    """`hash` columns: the inputs are read, the keyed pseudonyms bound per row."""
    compiled, dialect = context.compiled, context.dialect
    table, key_columns = compiled.table, list(compiled.key_columns)
    values = set_values(table, compiled.rule.columns, dialect, compiled.tz)
    hashed = [table.columns[n] for n, strategy in compiled.rule.columns if strategy == "hash"]
    keyset = Keyset(table, key_columns, dialect)
    shown = [
        show(context, f"{when}: read the values to pseudonymise", hash_inputs(keyset, hashed, rows))
    ]
    if dialect in ("mysql", "mariadb"):
        key = tuple(sa.bindparam(f"{_ROW_KEY}{i}", type_=c.type) for i, c in enumerate(key_columns))
        pseudonyms = tuple(sa.bindparam(f"_h{i}", type_=c.type) for i, c in enumerate(hashed))
        update = hash_case_update(table, key_columns, values, hashed, [(key, *pseudonyms)])
        label = f"{when}: anonymise, up to 100 rows per statement (shown for one row)"
    else:
        update = hash_update_by_key(keyset, values, hashed)
        label = f"{when}: anonymise, once per row read"
        # Here the key placeholders hold each row's own key, not the batch's range.
        renamed = {name: f"{_ROW_KEY}{i}" for i, name in enumerate(keyset.upper_names)}
        return [*shown, show(context, label, update, renamed)]
    shown.append(show(context, label, update))
    return shown


def recount_statements(context: ItemContext) -> list[Statement]:
    """After the database's rules: what is still due is counted (verification)."""
    compiled, pinned = context.compiled, context.pinned
    if compiled.rule.since_latest is None:
        unindexed = scan_is_cheaper(context.connection, compiled)
        where: tuple[sa.ColumnElement[bool], ...] = (compiled.due_where(unindexed=unindexed),)
    else:
        where = (pinned.rows(), compiled.still_due)
    when = "after every rule of the database: the recount"
    shown = [show(context, when, count_statement(compiled.table, *where))]
    drop = str(sa.schema.DropTable(pinned.table).compile(context.connection)).strip()
    return [*shown, Statement("at the end of the database's run", drop)]


def partition_drops(context: ItemContext) -> list[Statement]:
    """Before the pins: each partition removed whole (partition_drop.py), in its own
    transaction under the table's lock, after the cascade rows that refer to it."""
    if context.catalog is None:
        return []
    from .partition_drop import partition_statements
    from .partition_plan import choose_partitions

    rule, catalog = context.compiled.rule, context.catalog
    cascade = {qualified_name(t) for t in map(catalog.table, rule.cascade) if t is not None}
    shown = []
    for choice in choose_partitions(catalog, context.compiled, cascade):
        entry = choice.to_json()
        bounds = f"[{entry['from'] or '-inf'}, {entry['to'] or '+inf'})"
        when = (
            f"partition {entry['name']} {bounds}, {entry['rows']:,} rows, removed whole "
            "(the cascade tables' rows that refer to it are deleted first, in the same "
            "transaction)"
        )
        shown += [Statement(when, sql) for sql in partition_statements(
            context.connection.dialect, rule.table, entry
        )]  # fmt: skip
    return shown


#: The steps that make one item's statements, in the order they run.
ITEM_STEPS: list[Callable[[ItemContext], list[Statement]]] = [
    partition_drops,
    pin_statements,
    batch_statements_shown,
    in_place_statements,
    recount_statements,
]


def statements_for_item(context: ItemContext) -> list[Statement]:
    """The statements of one item (a rule in a database), every step's in order."""
    return [statement for step in ITEM_STEPS for statement in step(context)]


# --- compiling what is shown -------------------------------------------------------------

#: Display-only placeholders for a row's key in MariaDB's CASE update (keys never shown).
_ROW_KEY = "gdpr_sweep_row_key_"
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def show(
    context: ItemContext,
    when: str,
    statement: sa.ClauseElement,
    meaning_of: dict[str, str] | None = None,
) -> Statement:
    """`statement` compiled by the database's dialect, its placeholders named (a
    placeholder in `meaning_of` means what that other name means)."""
    dialect = copy.copy(context.connection.dialect)
    dialect.paramstyle, dialect.positional = "named", False
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    unbound = {
        name: None for name, bind in compiled.binds.items() if bind.required and "(" not in name
    }
    expanded = compiled.construct_expanded_state(unbound)
    sql = expanded.statement
    values: dict[str, Any] = dict(expanded.parameters)  # type: ignore[arg-type]
    names = list(dict.fromkeys(_PLACEHOLDER.findall(sql)))
    meaning = _Meanings(context)
    aliases = meaning_of or {}
    parameters = [
        replace(meaning.parameter(aliases.get(name, name), values.get(name)), name=name)
        for name in names
    ]
    return Statement(when, sql, tuple(parameters))


class _Meanings:
    """What a placeholder stands for; its value only when it is the config's or the as-of's."""

    def __init__(self, context: ItemContext) -> None:
        self.context = context
        compiled = context.compiled
        pinned = context.pinned
        self.last = set(pinned.keyset.last_names)
        self.upper = set(pinned.keyset.upper_names)
        tz = compiled.tz or context.config.sweep.tz
        self.cutoff = _instant_forms(start_of_local_day(compiled.cutoff_date, tz), tz)
        self.cutoff |= _typed({compiled.cutoff_date, compiled.cutoff_date.isoformat()})
        self.as_of = _instant_forms(context.as_of, tz)
        self.only = {(type(v), v): column for column, values in compiled.rule.only for v in values}

    def parameter(self, name: str, value: Any) -> Parameter:
        rule = self.context.compiled.rule
        if name in self.last:
            return Parameter(name, "the previous batch's last key (bound per batch, not shown)")
        if name in self.upper:
            return Parameter(name, "this batch's last key, read just before (not shown)")
        if name.startswith(HELD_KEY):
            return Parameter(name, "a held row's key (legal hold; not shown)")
        if name.startswith(_ROW_KEY):
            return Parameter(name, "a row's key, as read above (not shown)")
        if re.fullmatch(r"_h\d+", name):
            return Parameter(name, "the row's keyed pseudonym, computed per row (not shown)")
        if not isinstance(value, _SHOWN_TYPES):
            return Parameter(name, "bound at run time (not shown)")
        typed = (type(value), value)
        if typed in self.cutoff:
            latest = rule.since_latest
            clock = f"the latest {latest.table}.{latest.column}" if latest else rule.since
            after = (
                f"{rule.after} from the fiscal year's end"
                if rule.from_fiscal_year_end
                else rule.after
            )
            meaning = (
                f"cutoff: due when {clock} is before {self.context.compiled.cutoff_date} "
                f"(rule {rule.id}, after {after})"
            )
        elif typed in self.as_of:
            meaning = f"the as-of (rule {rule.id})"
        elif typed in self.only:
            meaning = f"only: {self.only[typed]} (rule {rule.id})"
        elif value == first_batch_size(self.context.config.sweep.batch_size) and isinstance(
            value, int
        ):
            meaning = (
                "at most sweep.batch_size keys per batch"
                if self.context.config.sweep.batch_size != "auto"
                else 'keys in the first batch (sweep.batch_size = "auto": later batches '
                "are sized toward sweep.batch_time)"
            )
        else:
            return Parameter(name, "constant", sql_literal(value), structural=True)
        return Parameter(name, meaning, sql_literal(value))


_SHOWN_TYPES = (str, int, float, Decimal, dt.date, bool, type(None))


def _typed(values: Iterable[Any]) -> set[tuple[type, Any]]:
    return {(type(v), v) for v in values}


def _instant_forms(instant: dt.datetime, tz: Any) -> set[tuple[type, Any]]:
    """Every way `columns.day_start_bound`/`later_than` bind an instant."""
    local = instant.astimezone(tz)
    utc = instant.astimezone(dt.UTC)
    forms: set[Any] = {
        local,
        utc,
        local.replace(tzinfo=None),
        utc.replace(tzinfo=None),
        local.date(),
        local.date().isoformat(),
        local.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds"),
    }
    for since_format in ("unixepoch", "unixepoch-ms", "julianday"):
        forms.add(numeric_instant(instant, since_format))
    return _typed(forms)


def sql_literal(value: Any) -> str:
    """A shown value as SQL would write it: `'2026-06-01'`, `1000`, `NULL`, `true`."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


# --- the databases -----------------------------------------------------------------------


def database_statements(
    target: TargetDatabase, config: Config, rule_ids: Iterable[str] | None, as_of: dt.datetime
) -> list[ItemStatements]:
    """Every applicable rule's statements in one database, in the order the rules run."""
    rules = [r for r in select_rules(config, rule_ids) if r.applies_to(target.name)]
    holds = active_holds(config, local_date(as_of, config.sweep.tz))
    items: list[ItemStatements] = []
    with target.read_only() as connection:
        catalog = Catalog(connection)
        raise_findings(check_database(catalog, target, rules))
        compiled, order = compile_database(catalog, target, rules, as_of, holds)
        dialect = connection.dialect.name
        shown_name = "mariadb" if getattr(connection.dialect, "is_mariadb", False) else dialect
        steps = [cascade_steps(catalog, rule.rule, rule.table, config) for rule in compiled]
        written = written_tables(compiled, steps)
        for position, index in enumerate(order):
            rule = compiled[index]
            context = ItemContext(
                connection,
                rule,
                PinnedKeys(rule, f"gdpr_sweep_pin_{index}", dialect),  # as pinned_rules names it
                steps[index],
                config,
                as_of,
                catalog,
                in_place=self_contained(compiled, written, index),
            )
            items.append(
                ItemStatements(
                    database=target.name,
                    dialect=shown_name,
                    rule=rule.rule.id,
                    table=rule.rule.table,
                    action=rule.rule.action,
                    cutoff=rule.cutoff.isoformat(),
                    basis=rule.rule.basis,
                    position=position,
                    rules_in_database=len(order),
                    statements=statements_for_item(context),
                )
            )
    return items


def build_sql_plan(
    config: Config,
    as_of: dt.datetime,
    databases: Iterable[str] | None = None,
    rule_ids: Iterable[str] | None = None,
    shard: tuple[int, int] | None = None,
) -> SqlPlan:
    """Every selected database's statements (of shard I of N with `shard`); a database
    that cannot be read is a failure."""
    select_rules(config, rule_ids)  # an unknown --rule is exit 2 before any database
    result = SqlPlan(as_of, config.sweep.timezone, config.digest)
    for target in select_databases(config, databases, shard):
        try:
            result.items.extend(database_statements(target, config, rule_ids, as_of))
        except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
            result.failures.append(database_failure(target, exc))
        finally:
            target.dispose()
    return result
