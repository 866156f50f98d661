"""The `gdpr-sweep` app: its root options (--version, logging) and every command registered.

The command modules never import this one; it imports them and registers their
commands in the order `--help` lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from ..errors import ExitCode
from ..logs import setup_logging
from . import audit, hold, init, report, subject, sweep, sweep_run
from .completion import complete_log_format, complete_log_level
from .errors import Commands, OneLineErrors

app = Commands(
    cls=OneLineErrors,
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


for name, command in (
    ("check", sweep.check),
    ("plan", sweep.plan),
    ("demo", sweep.demo),
    ("run", sweep_run.run),
    ("apply", sweep_run.apply),
    ("migrate", sweep.migrate),
    ("erase", subject.erase),
    ("export", subject.export),
    ("scan", sweep.scan),
    ("report", report.report),
    ("replay", subject.replay_command),
    ("init", init.init),
):
    app.command(name)(command)
app.add_typer(hold.hold_app, name="hold")
app.add_typer(audit.audit_app, name="audit")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gdpr-sweep")
