"""What the commands about one named person show: the erasure receipt, export, replay.

The person appears only as a keyed hash; other people's rows only as counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..engines import DatabaseFailure
    from ..subject.export import ExportResult
    from ..subject.reapply import ReplayResult
    from ..subject.receipts import ErasureResult


#: What a dry run says for each action: what the erasure would do, not what it did.
_WOULD = {"deleted": "would delete", "anonymised": "would anonymise", "kept": "would keep"}


def receipt_text(result: ErasureResult) -> str:
    """The receipt in words, for a DPO to send back to the person."""
    from ..subject.receipts import BACKUP_NOTE

    verb = "Would erase" if result.dry_run else "Erasure receipt"
    lines = [
        f"{verb} — gdpr-sweep run {result.run_id or '(dry run)'}, "
        f"{result.as_of.isoformat(timespec='seconds')}",
        f"Subject: {result.subject}",
        "(a keyed hash of the identifier; the identifier itself is not stored)",
    ]
    if result.ticket:
        lines.append(f"Request: {result.ticket}")
    lines.append("")
    for db in result.databases:
        who = f" (controller: {db.controller})" if db.controller else ""
        lines.append(f"Database {db.database}{who}:")
        if db.failure:
            lines.append(f"  FAILED, nothing changed in this database: {db.failure['error']}")
        if not db.tables and not db.failure:
            lines.append("  no rows of this person")
        for t in db.tables:
            did = _WOULD[t.action] if result.dry_run and t.action in _WOULD else t.action
            if t.action == "kept":
                until = f" until {t.until}" if t.until else ""
                ends = f" (then deleted by rule {t.rule})" if t.rule else ""
                lines.append(
                    f"  {did} {t.rows} row(s) in {t.table}{until}{ends} — "
                    f"basis: {t.basis or 'legal obligation'}"
                )
            else:
                note = f" ({t.note})" if t.note else ""
                lines.append(f"  {did} {t.rows} row(s) in {t.table}{note}")
        for r in db.references:
            outcome = "set to NULL" if r.action == "nulled" else "left in place"
            was = "would be" if result.dry_run else "was"
            lines.append(
                f"  {r.rows} row(s) of other people in {r.table} referred to this person "
                f"({', '.join(r.columns)} → {r.referenced_table}): the reference {was} "
                f"{outcome}; their rows are otherwise unchanged"
            )
    lines += ["", BACKUP_NOTE]
    return "\n".join(lines)


def note_case_insensitive_matches(count: int) -> None:
    """Tell the operator about likely typos of the identifier (a count, never values)."""
    if count:
        typer.echo(
            f"note: {count:,} other row(s) match the identifier only ignoring case or "
            "spaces; matching is exact, so check how the identifier was typed",
            err=True,
        )


def print_failures(failures: list[DatabaseFailure]) -> None:
    """Each failed database's error, one line each on stderr."""
    for failure in failures:
        typer.echo(f"error: {failure['error']}", err=True)


def print_export(result: ExportResult, out: Path) -> None:
    """Counts only: the rows themselves are in the file."""
    rows = sum(result.rows.values())
    typer.echo(
        f"Exported {rows:,} row(s) from {len(result.rows)} table(s) to {out} "
        f"(subject {result.subject[:24]}…)"
    )
    note_case_insensitive_matches(sum(result.case_insensitive_matches.values()))
    print_failures(result.failures)


def print_replay(result: ReplayResult, dry_run: bool) -> None:
    verb = "would be" if dry_run else "were"
    for t in result.tables:
        typer.echo(
            f"database {t['database']}: {t['rows']} row(s) of {t['table']} "
            f"{verb} {t['action']} again"
        )
    for skipped in result.skipped_roots:
        typer.echo(
            f"database {skipped['database']}: {skipped['rows']} recorded person(s) "
            f"skipped: {skipped['reason']}"
        )
    if result.skipped:
        typer.echo(
            f"{result.skipped} row key(s) were recorded by an older version without "
            "the person's fingerprint and cannot be replayed safely"
        )
    print_failures(result.failures)
