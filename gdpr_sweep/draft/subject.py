"""`init`'s `[subject]`: the likely root table, and the links, references and parents.

- The root is the table, among those with an e-mail or identity-number column of their
  own, that the most personal tables reach: through foreign keys (any depth, as the
  subject graph follows them) and through the links proposed for it. Ties go to the
  table with more identifiers, then the name.
- A link (`[[subject.links]]`) is a column with no foreign key that looks like one:
  `X_id` whose name says it refers to a table already reached and whose sampled values
  are all keys of it (one set-based count), or an e-mail column some of whose values
  are the root's e-mail addresses (or, with no rows to compare, one that names the root).
- A reference (`[[subject.references]]`) is a foreign key into a reached table from a
  table with identifiers of its own whose column does not name the table it refers to
  (`support_agent.key_account_id → customer`: another person, not the customer's row).
- A parent (`parents`) is a table the person's rows refer to that holds personal-looking
  columns but no identifier of its own (an address, a payment card).

Only names and counts are kept; every choice carries its reason for the comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..catalog import Catalog
from .facts import TableFacts, comparable, matching_count, nameable


@dataclass(frozen=True)
class Suggestion:
    """A link, reference or parent, and why (a comment)."""

    table: str
    column: str = ""
    target: str = ""  # links: "table.column"; references: the table referred to
    action: str = ""  # references: "null" or "keep"
    why: str = ""


@dataclass
class SubjectDraft:
    root: TableFacts
    identifiers: list[tuple[str, str]]  # (kind, column)
    reached: list[TableFacts] = field(default_factory=list)  # owned tables, root excluded
    links: list[Suggestion] = field(default_factory=list)
    references: list[Suggestion] = field(default_factory=list)
    parents: list[Suggestion] = field(default_factory=list)
    why: str = ""


def _names(column: str, table: TableFacts) -> bool:
    """Does a column name (`candidate_id`, `applicationId`) name `table`?"""
    base = table.table.name.lower()
    words = {base, base.rstrip("s"), base.removesuffix("es")}
    stem = re.sub(r"_?id$", "", column.lower())
    return bool(stem) and (stem in words or any(stem.endswith(w) for w in words if len(w) > 2))


def _is_other_person(child: TableFacts, columns: tuple[str, ...], parent: TableFacts) -> bool:
    name = parent.table.name.lower()
    return bool(child.identifiers) and not any(name in c.lower() for c in columns)


class _Walker:
    """The subject graph a root would make, with the suggestions that made it."""

    def __init__(self, catalog: Catalog, facts: list[TableFacts]) -> None:
        self.catalog = catalog
        self.facts = facts
        self.by_id = {id(f.table): f for f in facts}
        self._counts: dict[tuple[int, str, int, str], tuple[int, int]] = {}

    def count(self, column: sa.Column, target: sa.Column) -> tuple[int, int]:
        key = (id(column.table), column.name, id(target.table), target.name)
        if key not in self._counts:
            self._counts[key] = matching_count(self.catalog.connection, column, target)
        return self._counts[key]

    def walk(self, root: TableFacts) -> SubjectDraft:
        draft = SubjectDraft(root, _identifiers(root))
        reached = {id(root.table)}
        queue = [root]
        while True:
            while queue:
                parent = queue.pop(0)
                for ref in self.catalog.references_to(parent.table):
                    child = self.by_id.get(id(ref.child))
                    if child is None or child is parent:
                        continue  # a self-reference is always one between two people
                    if _is_other_person(child, ref.columns, parent):
                        if not nameable(ref.columns[0]):
                            continue  # a config cannot name it: not proposed
                        reference = _reference(child, ref.columns, parent)
                        if reference not in draft.references:
                            draft.references.append(reference)
                    elif id(child.table) not in reached:
                        reached.add(id(child.table))
                        draft.reached.append(child)
                        queue.append(child)
            link = self.next_link(draft, reached)
            if link is None:
                break
            suggestion, child = link
            draft.links.append(suggestion)
            reached.add(id(child.table))
            draft.reached.append(child)
            queue.append(child)
        draft.parents = self.parents(reached)
        return draft

    def next_link(
        self, draft: SubjectDraft, reached: set[int]
    ) -> tuple[Suggestion, TableFacts] | None:
        emails = [c for c in draft.root.identifiers if c.label == "an e-mail address"]
        for child in self.facts:
            if id(child.table) in reached:
                continue
            for column in child.table.columns:
                if column.primary_key or column.name in child.foreign:
                    continue
                if not nameable(column.name):
                    continue  # a config cannot name it: no link
                found = self.link_for(draft, reached, child, column, emails)
                if found is not None:
                    return found, child
        return None

    def link_for(
        self, draft: SubjectDraft, reached: set[int], child: TableFacts, column: sa.Column,
        emails: list,
    ) -> Suggestion | None:  # fmt: skip
        personal = {c.name: c for c in child.personal}
        if column.name in personal and personal[column.name].label == "an e-mail address":
            for email in emails:
                target = draft.root.table.columns[email.name]
                if not comparable(column, target):
                    continue
                sampled, matched = self.count(column, target)
                if matched or (not sampled and _names(column.name, draft.root)):
                    where = f"{draft.root.name}.{email.name}"
                    found = f"{matched:,} of {sampled:,} sampled values are {where} addresses"
                    return _link(child, column, draft.root.name, where, found if sampled else None)
            return None
        if not re.search(r"(?i)_?id$", column.name) or column.name.lower() == "id":
            return None
        for target_facts in [draft.root, *draft.reached]:
            key = list(target_facts.table.primary_key.columns)
            if len(key) != 1 or not _names(column.name, target_facts):
                continue
            if not comparable(column, key[0]):
                continue
            sampled, matched = self.count(column, key[0])
            if sampled and matched < sampled:
                continue  # some values are no key of it: not (only) a reference to it
            found = f"every one of {sampled:,} sampled values is a key of {target_facts.name}"
            where = f"{target_facts.name}.{key[0].name}"
            return _link(child, column, target_facts.name, where, found if sampled else None)
        return None

    def parents(self, reached: set[int]) -> list[Suggestion]:
        found: list[Suggestion] = []
        sources = set(reached)
        changed = True
        while changed:
            changed = False
            for facts in self.facts:
                if id(facts.table) in sources or not facts.personal or facts.identifiers:
                    continue
                if not facts.has_key:
                    continue
                referrers = sorted(
                    {
                        self.by_id[id(ref.child)].name
                        for ref in self.catalog.references_to(facts.table)
                        if id(ref.child) in sources and ref.child is not facts.table
                    }
                )
                if referrers:
                    why = (
                        f"the person's rows of {', '.join(referrers)} refer to it, and it holds "
                        f"{', '.join(sorted({c.category for c in facts.personal}))} data "
                        "but no identifier of its own"
                    )
                    found.append(Suggestion(facts.name, why=why))
                    sources.add(id(facts.table))
                    changed = True
        return found


def _reference(child: TableFacts, columns: tuple[str, ...], parent: TableFacts) -> Suggestion:
    column = columns[0]
    nullable = child.table.columns[column].nullable
    own = ", ".join(c.name for c in child.identifiers)
    why = (
        f"{child.name} has identifiers of its own ({own}): its rows are other people, "
        f"who refer to a {parent.name}"
    )
    action = "null" if nullable else "keep"
    return Suggestion(child.name, column, parent.name, action, why)


def _identifiers(root: TableFacts) -> list[tuple[str, str]]:
    columns = sorted(root.identifiers, key=lambda c: (c.label != "an e-mail address", c.name))
    kinds: list[tuple[str, str]] = []
    for column in columns:
        kind = re.sub(r"[^A-Za-z0-9_-]", "_", column.name)
        if not kind[:1].isalpha():
            kind = "id_" + kind
        kind, n = kind[:60], 2
        while kind in {k for k, _c in kinds}:
            kind, n = f"{kind.rstrip('0123456789_')}_{n}", n + 1
        kinds.append((kind, column.name))
    return kinds


def draft_subject(catalog: Catalog, facts: list[TableFacts]) -> SubjectDraft | None:
    """The likeliest `[subject]`, or None when no table holds an identifier."""
    walker = _Walker(catalog, facts)
    best: tuple[tuple[int, int], SubjectDraft] | None = None
    for candidate in facts:  # by name: a tie goes to the first
        if not candidate.identifiers:
            continue
        draft = walker.walk(candidate)
        personal = sum(1 for f in draft.reached if f.is_personal)
        score = (personal, len(candidate.identifiers))
        if best is None or score > best[0]:
            best = (score, draft)
    if best is None:
        return None
    draft = best[1]
    others = sum(1 for f in facts if f.identifiers and f is not draft.root)
    draft.why = (
        f"{sum(1 for f in draft.reached if f.is_personal)} personal table(s) reach it "
        "through foreign keys and the links below"
        + (f"; {others} other table(s) with identifiers reach fewer" if others else "")
    )
    return draft


def _link(
    child: TableFacts, column: sa.Column, target: str, where: str, found: str | None
) -> Suggestion:
    """The link `child.column → where` (a column of `target`), and why: what the sample
    found, or (no rows to sample) the column's name."""
    why = found if found is not None else f"no rows to compare; its name says {target}"
    return Suggestion(child.name, column.name, where, why=why)
