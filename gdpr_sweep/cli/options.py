"""The options several commands share (Typer `Annotated` types), and reading their values.

Each option's name, help text and default live here once; a command names the type
(`config_path: ConfigOption = None`). Values Typer cannot check (an as-of, a duration)
are read by `as_of` and `duration`, which name the option in their error.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ..periods import parse_as_of, parse_duration
from .completion import complete_databases, complete_subject

if TYPE_CHECKING:
    from ..config import Config

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="Config file (default: $GDPR_SWEEP_CONFIG, else ./gdpr-sweep.toml).",
        show_default=False,
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
TicketOption = Annotated[
    str | None,
    typer.Option(
        "--ticket",
        metavar="REF",
        help="The request's reference (a case or ticket number, not a person's details): "
        "recorded in the audit trail and the receipt.",
        show_default=False,
    ),
]
ApprovedByOption = Annotated[
    str | None,
    typer.Option(
        "--approved-by",
        metavar="NAME",
        help="Who signed off the plan (a staff id): recorded in the audit trail.",
        show_default=False,
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="DATE",
        help="Pin the clock: YYYY-MM-DD (local midnight) or an ISO 8601 timestamp. Default: now.",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    list[str] | None,
    typer.Option(
        "--database",
        "-d",
        metavar="DATABASE",
        help="Only this database (repeatable).",
        show_default=False,
        autocompletion=complete_databases,
    ),
]
ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="I/N",
        help="Only the databases of shard I of N (I from 0): I/N, or auto/N to take I "
        "from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job). Each database is in "
        "exactly one shard.",
        show_default=False,
    ),
]
SubjectOption = Annotated[
    str,
    typer.Option(
        "--subject",
        "-s",
        metavar="KIND=VALUE",
        autocompletion=complete_subject,
        help="The person, as KIND=VALUE with a kind from "
        "subject.identifiers (e.g. email=person@example.com).",
        show_default=False,
    ),
]
#: `--wait-lock` of the commands that change the state database only (hold, rotate-key).
WaitLockOption = Annotated[
    str | None,
    typer.Option(
        "--wait-lock",
        metavar="DURATION",
        help="If a sweep holds the lock, wait this long for it (e.g. 10m) instead of exiting 4 "
        "at once, like flock -w.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
JsonResultOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
JsonPlanOption = Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")]


def as_of_instant(config: Config, text: str | None) -> dt.datetime:
    """The `--as-of` instant (now without one), in the config's time zone."""
    try:
        return parse_as_of(text, config.sweep.tz)
    except ValueError as exc:
        raise UsageError(f"--as-of: {exc}") from None


def duration(option: str, text: str | None) -> float | None:
    """A duration option (`45m`, `2h`) in seconds; None when not given."""
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
