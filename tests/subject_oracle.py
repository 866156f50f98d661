"""An independent reading of issue 16's "the person's rows" and erasure, for the property test.

Nothing here imports gdpr_sweep: it works on plain Python rows (dicts) of a generated
schema, and says which rows are the person's (what `export` must list) and what the
database must look like after `erase` (every row of every table).

The person's rows (notes16/semantics.md):
- owned: the root rows whose `email` equals the value; then, to a fixpoint, every row
  whose foreign key (all of its columns non-NULL, composite keys as a whole) refers to an
  owned row — except through a self-referencing foreign key or a declared reference;
- parents: a row of a declared parent table referred to, through any foreign key, by an
  owned row or by a parent row of the person's (so transitively only through declared
  parent tables); nothing is followed downward from a parent row.

Erasure (every table "delete", with `columns = { note = "null" }` — and `email` on the
root — for the rows that must stay; optionally one "keep" and one "anonymise" table):
- keep-table rows of the person: kept as they are;
- shared: a person's row of a declared parent table referred to by any row that is not
  the person's (any table, any foreign key): kept as it is (in an anonymise table too);
- anonymise-table rows of the person (not shared): anonymised;
- staying: a person's row (of a delete table, not shared) referred to, through any
  foreign key, by a person's row that remains (kept, shared or staying): anonymised;
- every other person's row: deleted;
- the other people's rows are untouched, except that a reference (a self-referencing
  foreign key or a declared one) pointing at a person's row that is deleted or
  anonymised has its id column set to NULL (a composite one keeps its `tenant`, which is
  part of the key or NOT NULL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Key = tuple


@dataclass(frozen=True)
class ForeignKey:
    child: str
    columns: tuple[str, ...]  # ("tenant", "r0_t1") or ("r0_t1",); the last one is nullable
    parent: str
    referred: tuple[str, ...]  # ("tenant", "id") or ("id",)
    declared: bool = False  # listed in [[subject.references]] (column = columns[-1])
    #: "CASCADE" or None (NO ACTION); only ever on references, where it changes nothing:
    #: the other people's references are nulled before the person's rows are deleted
    ondelete: str | None = None

    @property
    def self_reference(self) -> bool:
        return self.child == self.parent

    @property
    def is_reference(self) -> bool:
        """A reference between two people: never followed, nulled on erasure."""
        return self.self_reference or self.declared

    @property
    def column(self) -> str:
        """The nullable id column (the declared one, the one nulled)."""
        return self.columns[-1]

    def target(self, row: dict) -> Key | None:
        """The referred key, or None when any referencing column is NULL (MATCH SIMPLE)."""
        values = tuple(row[c] for c in self.columns)
        return None if any(v is None for v in values) else values


@dataclass
class Table:
    name: str
    pk: tuple[str, ...]  # ("id",) or ("tenant", "id")
    has_tenant: bool
    is_parent_kind: bool  # generated among the parent tables (p1, p2: no FK to a graph table)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    is_root: bool = False

    def key(self, row: dict) -> Key:
        return tuple(row[c] for c in self.pk)

    def referred_key(self, row: dict, fk: ForeignKey) -> Key:
        return tuple(row[c] for c in fk.referred)


@dataclass
class Scenario:
    tables: list[Table]  # creation order: parents first, then t0 (the root), t1, ...
    parents: tuple[str, ...]  # declared parent tables
    keep: str | None  # the one `action = "keep"` table, if any
    email: str
    anonymise: str | None = None  # the one `action = "anonymise"` table, if any

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    @property
    def foreign_keys(self) -> list[ForeignKey]:
        return [fk for t in self.tables for fk in t.foreign_keys]

    def describe(self) -> str:
        """A compact, readable listing for a falsifying example."""
        lines = [
            f"email={self.email!r} parents={list(self.parents)} keep={self.keep} "
            f"anonymise={self.anonymise}"
        ]
        for t in self.tables:
            fks = ", ".join(
                f"({','.join(fk.columns)})->{fk.parent}({','.join(fk.referred)})"
                + (" [declared reference]" if fk.declared else "")
                + (" [self]" if fk.self_reference else "")
                + (f" ON DELETE {fk.ondelete}" if fk.ondelete else "")
                for fk in t.foreign_keys
            )
            lines.append(f"table {t.name} pk=({','.join(t.pk)}) fks: {fks or '-'}")
            for row in t.rows:
                lines.append(f"    {row}")
        return "\n".join(lines)


def _index(table: Table, rows: Iterable[dict]) -> set[Key]:
    return {table.key(r) for r in rows}


def persons_rows(scenario: Scenario) -> dict[str, set[Key]]:
    """Per table, the keys of the person's rows (owned and declared-parent rows)."""
    owned: dict[str, set[Key]] = {t.name: set() for t in scenario.tables}
    root = next(t for t in scenario.tables if t.is_root)
    owned[root.name] = {root.key(r) for r in root.rows if r["email"] == scenario.email}

    def referred_rows_of(fk: ForeignKey, selected: dict[str, set[Key]]) -> set[Key]:
        """Keys (in the parent's referred columns) of the selected parent rows."""
        parent = scenario.table(fk.parent)
        return {
            parent.referred_key(r, fk) for r in parent.rows if parent.key(r) in selected[fk.parent]
        }

    changed = True
    while changed:
        changed = False
        for fk in scenario.foreign_keys:
            if fk.is_reference:
                continue
            wanted = referred_rows_of(fk, owned)
            child = scenario.table(fk.child)
            for row in child.rows:
                target = fk.target(row)
                if (
                    target is not None
                    and target in wanted
                    and child.key(row) not in owned[child.name]
                ):
                    owned[child.name].add(child.key(row))
                    changed = True

    mine = {name: set(keys) for name, keys in owned.items()}
    parents = set(scenario.parents)
    changed = True
    while changed:
        changed = False
        for fk in scenario.foreign_keys:
            if fk.parent not in parents:
                continue
            child = scenario.table(fk.child)
            parent = scenario.table(fk.parent)
            # the referring row must be owned, or a parent row of the person's
            referring = owned[child.name] | (mine[child.name] if child.name in parents else set())
            for row in child.rows:
                if child.key(row) not in referring:
                    continue
                target = fk.target(row)
                if target is None:
                    continue
                for prow in parent.rows:
                    if (
                        parent.referred_key(prow, fk) == target
                        and parent.key(prow) not in mine[parent.name]
                    ):
                        mine[parent.name].add(parent.key(prow))
                        changed = True
    return mine


@dataclass
class Expected:
    """What `erase` must do."""

    mine: dict[str, set[Key]]
    kept: dict[str, set[Key]]  # keep table
    shared: dict[str, set[Key]]
    anonymised: dict[str, set[Key]]
    deleted: dict[str, set[Key]]
    nulled: dict[tuple[str, str, str], set[Key]]  # (table, column, referenced table) -> rows
    after: dict[str, dict[Key, dict]]  # every row of every table afterwards


def _referrers(scenario: Scenario, table: Table, key: Key) -> list[tuple[ForeignKey, Table, dict]]:
    """Every (foreign key, referring table, referring row) that refers to `table`'s row."""
    row = next(r for r in table.rows if table.key(r) == key)
    found = []
    for fk in scenario.foreign_keys:
        if fk.parent != table.name:
            continue
        child = scenario.table(fk.child)
        wanted = table.referred_key(row, fk)
        found += [(fk, child, r) for r in child.rows if fk.target(r) == wanted]
    return found


def expected_erasure(scenario: Scenario) -> Expected:
    mine = persons_rows(scenario)
    names = [t.name for t in scenario.tables]
    kept = {n: set() for n in names}
    shared = {n: set() for n in names}
    anonymised = {n: set() for n in names}
    deleted = {n: set() for n in names}

    def is_mine(table: Table, row: dict) -> bool:
        return table.key(row) in mine[table.name]

    for table in scenario.tables:
        for key in mine[table.name]:
            if table.name == scenario.keep:
                kept[table.name].add(key)
            elif table.name in scenario.parents and any(
                not is_mine(child, r) for _fk, child, r in _referrers(scenario, table, key)
            ):
                shared[table.name].add(key)
            elif table.name == scenario.anonymise:
                anonymised[table.name].add(key)

    def remains(table: Table, row: dict) -> bool:
        key = table.key(row)
        return any(key in s[table.name] for s in (kept, shared, anonymised))

    changed = True
    while changed:
        changed = False
        for table in scenario.tables:
            for key in mine[table.name]:
                if remains(table, next(r for r in table.rows if table.key(r) == key)):
                    continue
                if any(
                    is_mine(child, r) and remains(child, r)
                    for _fk, child, r in _referrers(scenario, table, key)
                ):
                    anonymised[table.name].add(key)
                    changed = True
    for table in scenario.tables:
        deleted[table.name] = (
            mine[table.name] - kept[table.name] - shared[table.name] - anonymised[table.name]
        )

    after: dict[str, dict[Key, dict]] = {
        t.name: {t.key(r): dict(r) for r in t.rows} for t in scenario.tables
    }
    nulled: dict[tuple[str, str, str], set[Key]] = {}
    for fk in scenario.foreign_keys:
        if not fk.is_reference:
            continue
        parent = scenario.table(fk.parent)
        child = scenario.table(fk.child)
        gone = {
            parent.referred_key(r, fk)
            for r in parent.rows
            if parent.key(r) in deleted[parent.name] | anonymised[parent.name]
        }
        for row in child.rows:
            if is_mine(child, row):
                continue
            if fk.target(row) in gone:
                after[child.name][child.key(row)][fk.column] = None
                nulled.setdefault((child.name, fk.column, parent.name), set()).add(child.key(row))
    for table in scenario.tables:
        for key in anonymised[table.name]:
            after[table.name][key]["note"] = None
            if table.is_root:
                after[table.name][key]["email"] = None
        for key in deleted[table.name]:
            del after[table.name][key]
    return Expected(mine, kept, shared, anonymised, deleted, nulled, after)
