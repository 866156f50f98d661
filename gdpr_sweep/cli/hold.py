"""`hold`: legal holds on single rows (add, list, release), written under the sweep lock."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import load_config
from ..holds.store import add_hold, list_holds, release_hold
from ..periods import parse_as_of
from ..render.audit import hold_added, holds_document, print_holds
from ..render.console import dumps, make_console
from ..sweep_options import StopRequest
from .completion import complete_databases, complete_tables
from .errors import Commands
from .options import ConfigOption, JsonOption, WaitLockOption, duration
from .root import OneLineErrors
from .signals import stop_on_signals

hold_app = Commands(
    cls=OneLineErrors,
    no_args_is_help=True,
    help="Legal holds on single rows: a held row is never deleted or anonymised.\n\n"
    "Example:\n\n    gdpr-sweep hold add -d aarhus -t cctv_recording -k 4711 "
    '--reason "police request 2026-118" --until 2027-01-31',
)


@hold_app.command("add")
def hold_add(
    database: Annotated[
        str,
        typer.Option(
            "--database",
            "-d",
            metavar="DATABASE",
            help="The database.",
            show_default=False,
            autocompletion=complete_databases,
        ),
    ],
    table: Annotated[
        str,
        typer.Option(
            "--table",
            "-t",
            metavar="TABLE",
            autocompletion=complete_tables,
            help="The table, as the rules name it (public.t, main.t or DB.t is t).",
            show_default=False,
        ),
    ],
    key: Annotated[
        list[str],
        typer.Option(
            "--key",
            "-k",
            metavar="KEY",
            help="The row's primary key: VALUE for a one-column key (integer, text, UUID, "
            "date); COL=VALUE once per column for a composite key.",
            show_default=False,
        ),
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="REASON",
            help="Why (a case number; no personal data: the audit trail and hold list show it).",
            show_default=False,
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="DATE",
            help="Last day of the hold (YYYY-MM-DD); without it, until released.",
            show_default=False,
        ),
    ] = None,
    wait_lock: WaitLockOption = None,
    config_path: ConfigOption = None,
) -> None:
    """Hold one row: no rule and no erasure touches it while the hold lasts.

    The row must exist, matched exactly (exit 2 otherwise). A key that is not an
    integer may be personal: it is stored encrypted under the hash key and shown only
    as its keyed hash. The hold is written under the sweep lock, so a sweep never runs
    half with it and half without (exit 4 while one runs, unless --wait-lock). A hold
    with --until lapses by itself after that day; `hold release ID` ends it early.

    Example:

        gdpr-sweep hold add -d aarhus -t cctv_recording -k 4711 --reason "case 2026-118"

        gdpr-sweep hold add -d aarhus -t shift -k site=7 -k day=2026-11-02 --reason "case 9"
    """
    config = load_config(config_path)
    stop = StopRequest()
    with stop_on_signals(stop):
        wait = duration("--wait-lock", wait_lock)
        hold = add_hold(config, database, table, key, reason, until, wait=wait, stop=stop)
    typer.echo(hold_added(hold))


@hold_app.command("list")
def hold_list(
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List holds: active, lapsed and released.

    Example:

        gdpr-sweep hold list
    """
    config = load_config(config_path)
    holds = list_holds(config)
    today = parse_as_of(None, config.sweep.tz).date()
    if as_json:
        typer.echo(dumps(holds_document(holds, today)))
    else:
        print_holds(make_console(), holds, today)


@hold_app.command("release")
def hold_release(
    hold_id: Annotated[int, typer.Argument(metavar="ID", help="A hold id from `hold list`.")],
    wait_lock: WaitLockOption = None,
    config_path: ConfigOption = None,
) -> None:
    """End a hold: the row is swept again by the rules that apply to it.

    Released under the sweep lock (exit 4 while a sweep runs, unless --wait-lock).

    Example:

        gdpr-sweep hold release 7
    """
    config = load_config(config_path)
    stop = StopRequest()
    with stop_on_signals(stop):
        hold = release_hold(config, hold_id, wait=duration("--wait-lock", wait_lock), stop=stop)
    typer.echo(f"hold {hold.id} released")
