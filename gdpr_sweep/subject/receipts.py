"""What an erasure did, per database and table: the receipt a DPO sends back.

Counts, bases and dates only; the subject as a keyed hash; other people's references
nulled or kept as counts. `ErasureResult.to_json()` is the receipt document
(`gdpr_sweep.render.subject.receipt_text` says it in words).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..formats import format_name
from .fingerprints import ErasedRoot, ReplayMatch

if TYPE_CHECKING:
    from ..engines import DatabaseFailure

LEGAL_HOLD_BASIS = "legal hold (gdpr-sweep hold list)"
SHARED_BASIS = "shared with another person whose data it also is"

BACKUP_NOTE = (
    "Backups are not altered by this erasure: they expire on their own schedule. If a "
    "database is restored from a backup, `gdpr-sweep replay` re-applies this erasure "
    "to the person's restored rows (recognised by a keyed fingerprint, never anyone "
    "else's), and the retention rules sweep the rest again."
)


@dataclass
class TableOutcome:
    """What erasure did (or would do) to one table's rows of the person."""

    database: str
    table: str
    action: str  # deleted | anonymised | kept
    rows: int
    basis: str | None = None
    until: str | None = None
    rule: str | None = None
    note: str | None = None


@dataclass
class ReferenceOutcome:
    """Other people's rows that referred to the person's erased rows, and what was done
    to their reference: "nulled" or "kept" (counts only)."""

    database: str
    table: str
    columns: list[str]
    referenced_table: str
    action: str  # nulled | kept
    rows: int


@dataclass
class DatabaseOutcome:
    database: str
    controller: str | None
    tables: list[TableOutcome] = field(default_factory=list)
    references: list[ReferenceOutcome] = field(default_factory=list)
    failure: DatabaseFailure | None = None  # nothing changed in this database
    # Root rows whose identifier equals the given one only ignoring case or spaces
    # (a count, never the values): likely the same person typed differently.
    case_insensitive_matches: int = 0
    # For replay and `audit find` only (never in the receipt): the root rows changed.
    roots: list[ErasedRoot] = field(default_factory=list, repr=False)
    replay: ReplayMatch | None = field(default=None, repr=False)


@dataclass
class ErasureResult:
    """The receipt: counts, bases and dates only; the subject as a keyed hash."""

    run_id: int | None
    as_of: dt.datetime
    subject: str
    dry_run: bool
    databases: list[DatabaseOutcome]
    ticket: str | None = None  # the request's reference (--ticket), as given

    @property
    def failed(self) -> bool:
        return any(db.failure for db in self.databases)

    @property
    def rows_changed(self) -> int:
        """Rows deleted, anonymised or whose reference was nulled (none in a dry run)."""
        if self.dry_run:
            return 0
        return sum(t.rows for db in self.databases for t in db.tables if t.action != "kept") + sum(
            r.rows for db in self.databases for r in db.references if r.action == "nulled"
        )

    def to_json(self) -> dict[str, Any]:
        tables = [t for db in self.databases for t in db.tables]
        return {
            "format": format_name("erase"),
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "subject": self.subject,
            "ticket": self.ticket,
            "dry_run": self.dry_run,
            "erased": [
                {"database": t.database, "table": t.table, "action": t.action, "rows": t.rows}
                for t in tables
                if t.action != "kept"
            ],
            "kept": [
                {
                    "database": t.database,
                    "table": t.table,
                    "rows": t.rows,
                    "basis": t.basis,
                    "until": t.until,
                    "rule": t.rule,
                }
                for t in tables
                if t.action == "kept"
            ],
            "databases": [
                {
                    "database": db.database,
                    "controller": db.controller,
                    "error": db.failure["error"] if db.failure else None,
                    "case_insensitive_matches": db.case_insensitive_matches,
                }
                for db in self.databases
            ],
            "references": [asdict(r) for db in self.databases for r in db.references],
            "case_insensitive_matches": sum(db.case_insensitive_matches for db in self.databases),
            "backups": BACKUP_NOTE,
            "tables": [asdict(t) for t in tables],
        }
