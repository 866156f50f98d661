"""`init`'s rule stubs: per table with personal-looking columns, a clock, an action and,
to anonymise, a strategy per column that `check` accepts.

- The clock (`since`) is the likeliest date or timestamp column: one that marks an end
  (`ended_on`, `closed_at`, `last_login`, `unsubscribed_at`), else an event (`sent_at`,
  `invoice_date`), else the creation, else any; never a birth date. Its NULL count in a
  sample goes into the comment (a NULL clock is never due).
- Each personal column gets the first strategy that fits it, tried as `check` tries it
  (`strategy_problems`): a date `year`; text `null` where nullable, else `redact` where
  the placeholder fits, else `hash` (a UNIQUE NOT NULL column: `hash` only).
- The action is `delete` when nothing but personal data, keys and dates would be left,
  when the primary key itself looks personal, or when some column fits no strategy;
  else `anonymise`. A table whose rows another row of it references without an ON DELETE
  action is never deleted (check refuses that), nor one that rows which stay (no delete
  rule, not in its cascade) reference so: its due rows would be held back forever.
  A personal table with no clock of its own goes in the `cascade` of a delete rule of a
  table it refers to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..catalog import Catalog, qualified_name
from ..checks.strategy_checks import strategy_problems
from ..columns import ColumnKind, column_kind, is_string, string_length
from ..personal_patterns import CATEGORIES
from ..strategies import REDACTED
from .facts import GENERATED, TableFacts, nameable, sample_counts

#: Clock names, asked in this order: (pattern, preference: lower is likelier, reason).
_CLOCK_KINDS = (
    (re.compile(r"(?i)end|closed|complet|finish|terminat|resolv|left|last|cancel|unsubscri"
                r"|expir|deleted|archiv|stopp?ed"), 0, "marks an end"),
    (re.compile(r"(?i)updat|modif|chang"), 4, "changes whenever the row does"),
    (re.compile(r"(?i)creat|insert|regist|added|start"), 2, "marks the row's creation"),
    (re.compile(r"(?i)sent|record|perform|appl|signed|placed|order|paid|issued|hired|held"
                r"|visit|date|_at$|_on$|time"), 1, "marks an event"),
)  # fmt: skip
_FUTURE = re.compile(r"(?i)until|valid_?to|expires?_?(at|on)?$|consent")


@dataclass(frozen=True)
class ColumnChoice:
    column: str
    strategy: str | None  # None: no strategy fits
    why: str


@dataclass
class RuleDraft:
    id: str
    facts: TableFacts
    action: str = "anonymise"
    since: str | None = None  # None: "TODO"
    since_why: str = ""
    action_why: str = ""
    columns: list[ColumnChoice] = field(default_factory=list)
    cascade: list[TableFacts] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: (table, column, key): activity in a child table, for since_latest (a comment)
    activity: tuple[str, str, str] | None = None

    @property
    def categories(self) -> list[str]:
        found = set().union(*(t.categories for t in [self.facts, *self.cascade]))
        return [c for c in CATEGORIES if c in found] + sorted(found - set(CATEGORIES))


def _clock(catalog: Catalog, facts: TableFacts) -> tuple[str | None, str]:
    ranked = []
    for position, name in enumerate(facts.clocks):
        if _FUTURE.search(name) and not re.search(r"(?i)expir", name):
            continue  # a date in the future keeps a row (unless_after), it is no clock
        rank, how = next(((r, w) for rx, r, w in _CLOCK_KINDS if rx.search(name)), (3, "is a date"))
        ranked.append((rank, position, name, how))
    if not ranked:
        return None, ""
    _rank, _, name, how = min(ranked)
    counts = sample_counts(catalog.connection, facts.table, name)
    if counts is None:
        share = "its rows could not be read (no SELECT privilege?)"
    else:
        rows, nulls = counts
        share = (
            f"{nulls:,} of {rows:,} sampled rows are NULL (never due)" if rows else "no rows yet"
        )
    others = [n for _, _, n, _ in sorted(ranked) if n != name]
    alt = f"; other clocks: {', '.join(others)}" if others else ""
    return name, f"{name} {how}; {share}{alt}"


def _activity(
    catalog: Catalog, parent: TableFacts, facts: list[TableFacts]
) -> tuple[str, str, str] | None:
    """A child table's event clock, for `since_latest` (the parent's last activity)."""
    if len(parent.table.primary_key.columns) != 1:
        return None
    by_table = {id(f.table): f for f in facts}
    for ref in catalog.references_to(parent.table):
        child = by_table.get(id(ref.child))
        if child is None or child is parent or len(ref.columns) != 1:
            continue
        if not nameable(ref.columns[0]):
            continue
        for name in child.clocks:
            kind = next((r for rx, r, _w in _CLOCK_KINDS if rx.search(name)), 3)
            if kind == 1:
                return child.name, name, ref.columns[0]
    return None


def _candidates(column: sa.Column, unique: bool, dialect: str) -> list[str]:
    if column_kind(column, dialect) is not ColumnKind.OTHER:
        return ["year", "null"]
    if not is_string(column):
        return ["null"]
    length = string_length(column)
    redact = [] if length is not None and length < len(REDACTED) else ["redact"]
    if unique:
        return ["null", "hash"] if column.nullable else ["hash"]
    return ["null", *redact, "hash"] if column.nullable else [*redact, "hash"]


_WHY = {
    "year": "a date: kept as the first day of its year",
    "null": "nullable: emptied",
    "redact": "NOT NULL: replaced by the placeholder",
    "hash": "a keyed pseudonym (still personal data)",
}


def _strategies(catalog: Catalog, facts: TableFacts, tz: ZoneInfo) -> list[ColumnChoice]:
    chosen: dict[str, str] = {}
    choices = []
    table = facts.table
    for personal in facts.personal:
        column = table.columns[personal.name]
        if personal.unwritable:
            choices.append(ColumnChoice(column.name, None, f"{personal.label}: "
                                        f"{personal.unwritable}"))  # fmt: skip
            continue
        unique = catalog.is_unique(table, column.name)
        tried: list[str] = []
        for strategy in _candidates(column, unique, catalog.dialect):
            problems = strategy_problems(catalog, table, column, strategy, tz, chosen)
            if not any(not warning for _m, _f, warning in problems):
                chosen[column.name] = strategy
                why = _WHY[strategy] + (" (UNIQUE: distinct values stay distinct)" if
                                        unique and strategy == "hash" else "")  # fmt: skip
                if tried:
                    why += f"; {' and '.join(tried)} would not fit"
                choices.append(ColumnChoice(column.name, strategy, f"{personal.label}: {why}"))
                break
            tried.append(strategy)
        else:
            choices.append(
                ColumnChoice(column.name, None, f"{personal.label}: no strategy fits {column.type}")
            )
    return choices


def _deletable(catalog: Catalog, table: sa.Table) -> bool:
    return not any(
        ref.child is table and ref.ondelete not in ("CASCADE", "SET NULL", "SET DEFAULT")
        for ref in catalog.references_to(table)
    )


def _rule_id(name: str, action: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:80] or "table"
    candidate, n = f"{base}-{action}", 2
    while candidate in taken:
        candidate, n = f"{base}-{action}-{n}", n + 1
    taken.add(candidate)
    return candidate


def draft_rules(
    catalog: Catalog, facts: list[TableFacts], tz: ZoneInfo, skipped: list[str]
) -> list[RuleDraft]:
    """A rule stub per table with personal-looking columns (and a primary key); a table
    that can be neither deleted nor anonymised is added to `skipped`, with why."""
    drafts: dict[int, RuleDraft] = {}
    for table_facts in facts:
        if not table_facts.is_personal or not table_facts.has_key:
            continue
        draft = RuleDraft("", table_facts)
        draft.since, draft.since_why = _clock(catalog, table_facts)
        if "marks an end" not in draft.since_why:
            draft.activity = _activity(catalog, table_facts, facts)
        draft.columns = _strategies(catalog, table_facts, tz)
        draft.action, draft.action_why = _action(catalog, table_facts, draft.columns)
        if draft.action == "delete":
            draft.columns = []
        elif not any(c.strategy for c in draft.columns):
            skipped.append(f"{table_facts.name}: {draft.action_why}; no column can be anonymised")
            continue
        drafts[id(table_facts.table)] = draft
    _cascade_clockless(catalog, drafts)
    _anonymise_kept_parents(catalog, drafts, tz)
    taken: set[str] = set()
    for draft in drafts.values():
        draft.id = _rule_id(draft.facts.name, draft.action, taken)
    return list(drafts.values())


def _action(catalog: Catalog, facts: TableFacts, columns: list[ColumnChoice]) -> tuple[str, str]:
    table = facts.table
    deletable = _deletable(catalog, table)
    generated = {c.name for c in facts.personal if c.unwritable == GENERATED}
    unfit = [c.column for c in columns if c.strategy is None and c.column not in generated]
    if not deletable:
        why = "its rows reference each other with no ON DELETE action, so they are anonymised"
        return "anonymise", why + (f"; {', '.join(unfit)} fit no strategy" if unfit else "")
    if facts.personal_key:
        return "delete", "its primary key itself looks personal: only deleting removes it"
    if unfit:
        return "delete", f"{', '.join(unfit)} fit no strategy, so the rows are deleted"
    if not any(c.strategy for c in columns):
        return "delete", "no column can be anonymised"
    personal = {c.name for c in facts.personal}
    rest = [
        c.name
        for c in table.columns
        if c.name not in personal
        and not c.primary_key
        and c.name not in facts.foreign
        and c.name not in facts.clocks
    ]
    if not rest:
        return "delete", "it holds nothing but personal data, keys and dates"
    shown = ", ".join(rest[:4]) + (", ..." if len(rest) > 4 else "")
    return "anonymise", f"its other columns ({shown}) may be worth keeping without the person"


def _cascade_clockless(catalog: Catalog, drafts: dict[int, RuleDraft]) -> None:
    """A table with no clock goes with the parent it refers to, if that parent is deleted
    (or can be: its rule becomes a delete); else its `since` stays TODO."""
    for draft in list(drafts.values()):
        if draft.since is not None:
            continue
        for other in drafts.values():
            if other is draft or other.since is None:
                continue
            refers = any(ref.child is draft.facts.table for ref in
                         catalog.references_to(other.facts.table))  # fmt: skip
            if not refers or not _deletable(catalog, other.facts.table):
                continue
            if other.action != "delete":
                other.action = "delete"
                other.action_why = (
                    f"{draft.facts.name} has no clock of its own, so its rows are deleted "
                    f"with their {other.facts.name} (anonymising would keep them forever)"
                )
                other.columns = []
            other.cascade.append(draft.facts)
            other.notes.append(f"{draft.facts.name}: no date column, deleted with its parent")
            del drafts[id(draft.facts.table)]
            break


def _kept_referrers(catalog: Catalog, draft: RuleDraft, drafts: dict[int, RuleDraft]) -> list[str]:
    """Tables whose rows stay (no delete rule, not in the cascade) and refer to the
    draft's table with no ON DELETE action: a due row they refer to is held back."""
    table = draft.facts.table
    cascade = {id(t.table) for t in draft.cascade}
    found: dict[str, None] = {}
    for ref in catalog.references_to(table):
        if ref.child is table or ref.ondelete in ("CASCADE", "SET NULL", "SET DEFAULT"):
            continue
        other = drafts.get(id(ref.child))
        if id(ref.child) in cascade or (other is not None and other.action == "delete"):
            continue
        found[other.facts.name if other else qualified_name(ref.child)] = None
    return list(found)


def _anonymise_kept_parents(catalog: Catalog, drafts: dict[int, RuleDraft], tz: ZoneInfo) -> None:
    """A delete of rows that rows which stay refer to would hold the person back forever
    (check only warns): anonymise them instead, where every column fits a strategy."""
    noted: set[int] = set()
    changed = True
    while changed:  # a parent anonymised now keeps its rows: its own parents may follow
        changed = False
        for key, draft in drafts.items():
            if draft.action != "delete" or key in noted:
                continue
            kept = _kept_referrers(catalog, draft, drafts)
            if not kept:
                continue
            why = f"rows of {', '.join(kept)} that stay refer to it with no ON DELETE action"
            columns = _strategies(catalog, draft.facts, tz)
            fits = all(c.strategy for c in columns) and not draft.facts.personal_key
            if columns and fits and not draft.cascade:
                draft.action, draft.columns = "anonymise", columns
                draft.action_why = f"{why}: a delete would hold its rows back forever"
                changed = True
            else:
                draft.action_why += f"; {why}: its due rows are held back until those go"
                noted.add(key)
