"""`report`: the data-protection officer's report, as one HTML file or Markdown."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ..config import load_config
from ..errors import UsageError
from ..periods import local_date
from .files import cannot_write, check_writable, write_private
from .options import AsOfOption, ConfigOption, DatabaseOption, as_of_instant


def report(
    config_path: ConfigOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the report to this file (default: print it).",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    format_name: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="html (one self-contained file) or md (default: md for an --out ending "
            "in .md, else html).",
            metavar="html|md",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="First day of the period the history covers, YYYY-MM-DD (default: a year "
            "before the as-of).",
            metavar="DATE",
            show_default=False,
        ),
    ] = None,
    as_of: AsOfOption = None,
    database: DatabaseOption = None,
) -> None:
    """Write the DPO's report: schedule, history, forecast, holds, requests, coverage,
    integrity.

    Per database and controller: every rule in plain language (the record of processing,
    Art. 30(1)(f)); what the sweeps did in the period, per rule and run, and those that
    failed, stopped or were refused; rows due now and in each of the next 12 months;
    legal holds; erasure and access requests with their tickets; personal-looking
    columns no rule covers; and whether the audit trail verifies. One HTML file with
    inline charts and no script, or Markdown. Changes nothing. Exit 3 when a database
    could not be read (it is in the report as unreadable), 5 when the audit trail was
    altered (the report says where); the report is written either way.

    Example:

        gdpr-sweep report --out dpo-report.html --since 2026-01-01
    """
    from ..report import FORMATS, build_report, render

    chosen = format_name or ("md" if out is not None and out.suffix.lower() == ".md" else "html")
    if chosen not in FORMATS:
        raise UsageError(f"--format: use {' or '.join(FORMATS)}")
    first_day = _day("--since", since)
    if out is not None:
        check_writable("--out", out)
    config = load_config(config_path)
    when = as_of_instant(config, as_of)
    if first_day is not None and first_day > local_date(when, config.sweep.tz):
        raise UsageError("--since: is after the as-of day")
    built = build_report(config, when, first_day, database)
    document = render(built, chosen)
    if out is None:
        typer.echo(document, nl=False)
    else:
        try:
            write_private(out, document, "before-report-write")
        except OSError as exc:
            raise UsageError(cannot_write("--out", out, exc)) from None
        typer.echo(f"Report written to {out}", err=True)
    raise typer.Exit(built.exit_code)


def _day(option: str, text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None
