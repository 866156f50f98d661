"""The commands about one named person: erase, export, replay (after a restore).

The person is given as KIND=VALUE and appears in output, files and the audit trail
only as a keyed hash (the export file holds her rows, owner-only). The erasure, export
and replay modules are imported by their commands only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..approval import Approval
from ..config import load_config
from ..errors import ExitCode, GdprSweepError, PartialFailure, UsageError
from ..periods import parse_as_of
from ..render.console import dumps
from ..render.subject import (
    note_case_insensitive_matches,
    print_export,
    print_replay,
    receipt_text,
)
from .files import cannot_write, preflight, rows_changed, write_private
from .options import (
    ConfigOption,
    DatabaseOption,
    JsonResultOption,
    SubjectOption,
    TicketOption,
)

if TYPE_CHECKING:
    from ..subject import ErasureResult


def erase(
    subject: SubjectOption,
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    receipt: Annotated[
        Path | None,
        typer.Option(
            "--receipt",
            metavar="FILE",
            help="Write the JSON receipt to this file.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
    ticket: TicketOption = None,
) -> None:
    """Erase one named person from every database: delete, anonymise or keep, per table.

    Finds the person's rows through reflected foreign keys and subject.links, deletes
    them children first, anonymises what kept rows still refer to, and keeps what the
    law obliges (subject.erase.TABLE action = "keep") with the basis and the date it
    ends. One transaction per database; a failed database leaves the others done (exit
    3). The receipt names the person only as a keyed hash; a person not found is not
    an error (exit 0, 0 rows).

    Example:

        gdpr-sweep erase --subject email=person@example.com --receipt receipt.json
    """
    from ..subject import erase_subject

    config = load_config(config_path)
    result = erase_subject(
        config,
        subject,
        parse_as_of(None, config.sweep.tz),
        databases=database,
        dry_run=dry_run,
        preflight=preflight("--receipt", receipt),
        approval=Approval.given(ticket),
    )
    document = dumps(result.to_json())
    unwritten = _write_receipt(result, receipt, document)
    # Printed even when the file could not be written: then it is the only copy.
    typer.echo(document if as_json else receipt_text(result))
    note_case_insensitive_matches(sum(db.case_insensitive_matches for db in result.databases))
    if unwritten is not None:
        raise unwritten
    raise typer.Exit(ExitCode.PARTIAL if result.failed else ExitCode.OK)


def _write_receipt(
    result: ErasureResult, receipt: Path | None, document: str
) -> GdprSweepError | None:
    """Write the receipt file, if asked; the error to raise once it is printed, if any."""
    if receipt is None:
        return None
    try:
        write_private(receipt, document + "\n", "before-receipt-write")
    except OSError as exc:
        return _receipt_unwritten(result, cannot_write("--receipt", receipt, exc))
    return None


def _receipt_unwritten(result: ErasureResult, message: str) -> GdprSweepError:
    """A receipt that failed after the erasure: exit 3 once anything changed, never 2."""
    if result.dry_run:
        return UsageError(message)
    if result.rows_changed:
        return PartialFailure(
            f"{message} after the erasure; {rows_changed(result.rows_changed, result.run_id)}"
        )
    if result.failed:
        return PartialFailure(
            f"{message}; a database failed (above) and no rows were changed "
            f"(run {result.run_id} in the audit trail)"
        )
    return UsageError(f"{message}; no rows were changed (run {result.run_id} found none to erase)")


def export(
    subject: SubjectOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="The JSON file to write (owner-only: it holds the person's data).",
            show_default=False,
        ),
    ],
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    ticket: TicketOption = None,
) -> None:
    """Export one named person's rows from every database as JSON (access, portability).

    Streams every row the person has, in every table and database, to --out, created
    owner-only. Dates, timestamps and decimals round-trip exactly; each table lists its
    column types. Only counts reach the screen and the audit trail.

    Example:

        gdpr-sweep export --subject cpr=010190-9999 --out subject-access.json
    """
    from ..subject import export_subject

    config = load_config(config_path)
    result = export_subject(
        config,
        subject,
        out,
        databases=database,
        preflight=preflight("--out", out),
        approval=Approval.given(ticket),
    )
    print_export(result, out)
    raise typer.Exit(ExitCode.PARTIAL if result.failures else ExitCode.OK)


def replay_command(
    since: Annotated[
        str,
        typer.Option(
            "--since",
            metavar="DATE",
            help="Re-apply erasures made on or after "
            "this date (YYYY-MM-DD): the date of the backup that was restored.",
            show_default=False,
        ),
    ],
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count; change nothing.")] = False,
    as_json: JsonResultOption = False,
) -> None:
    """Re-apply recorded erasures after a database was restored from a backup.

    Every erasure records the person's root row (its key sealed, a keyed fingerprint of
    its identifiers). After restoring a backup taken on DATE, replay re-finds each row by
    its key and, only where it is still the same person, erases again from it through
    the subject graph; a key that now holds someone else is skipped, never changed.
    Idempotent and audited; retention rules need no replay (the next run sweeps).

    Example:

        gdpr-sweep replay --since 2026-11-01 --database aarhus
    """
    from ..subject import replay

    result = replay(load_config(config_path), since, database, dry_run)
    if as_json:
        typer.echo(dumps(result.to_json()))
    else:
        print_replay(result, dry_run)
    raise typer.Exit(ExitCode.PARTIAL if result.failures else ExitCode.OK)
