"""The `gdpr-sweep` app: its root options (--version, logging) and every command registered.

The command modules never import this one; `root.COMMANDS` names them, and each is
imported when its command is called (`root.LazyCommands`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from ..errors import ExitCode
from ..logs import setup_logging
from .completion import complete_log_format, complete_log_level
from .root import LazyCommands

app = typer.Typer(
    cls=LazyCommands,
    name="gdpr-sweep",
    help="Retention and erasure sweeper for relational databases.\n\n"
    "Rules in a TOML file say when rows are due; `plan` shows what is due, `run` and "
    "`apply` act on it, and every action is written to a tamper-evident audit trail.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gdpr-sweep {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            envvar="GDPR_SWEEP_LOG_FORMAT",
            metavar="text|json",
            autocompletion=complete_log_format,
            help="Logs on stderr as text or json (one object per line).",
        ),
    ] = "text",
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar="GDPR_SWEEP_LOG_LEVEL",
            metavar="LEVEL",
            autocompletion=complete_log_level,
            help="warning (default: quiet unless something is wrong), info or debug.",
        ),
    ] = "warning",
) -> None:
    """Retention and erasure sweeper for relational databases."""
    for option, value, allowed in (
        ("--log-format", log_format, ("text", "json")),
        ("--log-level", log_level.lower(), ("debug", "info", "warning", "error")),
    ):
        if value not in allowed:
            typer.echo(f"error: {option}: use {' or '.join(allowed)}", err=True)
            raise typer.Exit(ExitCode.USAGE)
    setup_logging(log_format, log_level)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gdpr-sweep")
