"""The command line: parse options, call one core function, render, choose the exit code.

Errors are turned into one line on stderr and the exit code SPEC gives them, in one
place (`_errors_to_exit_codes`); `--debug` shows the traceback of internal errors.
Usage errors from Click are reduced to one line as well (`OneLineErrors`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from typer.core import TyperGroup

from . import __version__
from .checks import check_config
from .config import Config, load_config
from .errors import GdprSweepError, UsageError
from .periods import parse_as_of
from .plan import Plan, build_plan
from .render import dumps, make_console, print_findings, print_plan


class OneLineErrors(TyperGroup):
    """Report Click's usage errors as one line and exit 2, like our own errors."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            result = 1
        except Exception as exc:
            if not _is_click_error(exc):
                raise
            message = exc.format_message().replace("\n", " ")  # type: ignore[attr-defined]
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                message = f"{message} (see {ctx.command_path} --help)"
            typer.echo(f"error: {message}", err=True)
            result = exc.exit_code  # type: ignore[attr-defined]
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


def _is_click_error(exc: BaseException) -> bool:
    """Click's usage errors (Typer vendors Click in recent versions, so match by shape)."""
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


app = typer.Typer(
    cls=OneLineErrors,
    name="gdpr-sweep",
    help="Retention and erasure sweeper for relational databases.\n\n"
    "Rules in a TOML file say when rows are due; `plan` shows what is due, `run` and "
    "`apply` act on it, and every action is written to a tamper-evident audit trail.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $GDPR_SWEEP_CONFIG, else ./gdpr-sweep.toml).",
        show_default=False,
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Pin the clock: YYYY-MM-DD (local midnight) or an ISO 8601 timestamp. Default: now.",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    list[str] | None,
    typer.Option("--database", "-d", help="Only this database (repeatable).", show_default=False),
]


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
) -> None:
    """Retention and erasure sweeper for relational databases."""


@contextlib.contextmanager
def _errors_to_exit_codes(debug: bool) -> Iterator[None]:
    """Turn our errors into `error: ...` and their exit code; anything else is exit 1."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except GdprSweepError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if _is_click_error(exc):
            raise
        if debug:
            traceback.print_exc()
        # A driver's message can quote a row's values (e.g. a duplicate key): print
        # only the exception's class, never its text.
        kind = type(getattr(exc, "orig", None) or exc).__name__
        if isinstance(exc, sa.exc.SQLAlchemyError) and not isinstance(exc, sa.exc.DBAPIError):
            kind = type(exc).__name__
        typer.echo(
            f"error: internal error ({kind}); rerun with --debug for the traceback", err=True
        )
        raise typer.Exit(1) from None


def _as_of(config: Config, text: str | None) -> dt.datetime:
    try:
        return parse_as_of(text, config.sweep.tz)
    except ValueError as exc:
        raise UsageError(f"--as-of: {exc}") from None


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (a reader never sees half of it)."""
    path = path.expanduser()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UsageError(f"--out: cannot write {str(path)!r} ({exc.strerror})") from None


def _emit_plan(plan: Plan, as_json: bool, out: Path | None) -> None:
    document = dumps(plan.to_json())
    if out is not None:
        _write_private(out, document + "\n")
    if as_json:
        typer.echo(document)
    else:
        print_plan(make_console(), plan)
        if out is not None:
            typer.echo(f"Plan written to {out}; apply it with: gdpr-sweep apply {out}")
    if plan.failures:
        raise typer.Exit(3)


@app.command()
def check(
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    debug: DebugOption = False,
) -> None:
    """Check the config against every database's reflected schema; change nothing.

    Every table and column a rule names must exist, `since` must be a date or
    timestamp column, `only` values must fit their columns, and a delete must not
    break rows that reference it. Exit 2 when anything is wrong, 3 when a database
    cannot be reached.

    Example:

        gdpr-sweep check -c /etc/gdpr-sweep/gdpr-sweep.toml
    """
    with _errors_to_exit_codes(debug):
        config = load_config(config_path)
        result = check_config(config, database)
        print_findings(make_console(), result.findings, result.passed, result.unreachable)
        if result.findings:
            raise typer.Exit(2)
        if result.unreachable:
            raise typer.Exit(3)


@app.command()
def plan(
    config_path: ConfigOption = None,
    as_of: AsOfOption = None,
    database: DatabaseOption = None,
    rule: Annotated[
        list[str] | None,
        typer.Option("--rule", "-r", help="Only this rule id (repeatable).", show_default=False),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Also write the plan as JSON to this file, for review and `apply`.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Show what is due: per database and rule, the cutoff, rows due and rows held.

    The dry run changes nothing in any database. Counts use the very predicate that
    `run` and `apply` act on.

    Example:

        gdpr-sweep plan --as-of 2026-12-01 --out plan-2026-12-01.json
    """
    with _errors_to_exit_codes(debug):
        config = load_config(config_path)
        result = build_plan(config, _as_of(config, as_of), database, rule)
        _emit_plan(result, as_json, out)


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Argument(help="Where to put the demo database and config.")
    ] = Path("gdpr-sweep-demo"),
    as_of: AsOfOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Make a SQLite demo database and config (if missing) and print their plan.

    The demo is modelled on a Danish recruitment and career-counselling consultancy
    and a management consultancy: every retention rule of their privacy policies, with
    fake people whose rows are due, not yet due, and held by an exception. Re-running
    it is safe: existing files are kept.

    Example:

        gdpr-sweep demo && gdpr-sweep plan -c gdpr-sweep-demo/gdpr-sweep.toml
    """
    from .demo import write_demo

    with _errors_to_exit_codes(debug):
        config_file, database_file = write_demo(directory)
        config = load_config(config_file)
        result = build_plan(config, _as_of(config, as_of))
        if not as_json:
            typer.echo(f"Demo database: {database_file}\nDemo config:   {config_file}\n")
        _emit_plan(result, as_json, None)
        if not as_json:
            typer.echo(
                f"\nNext: gdpr-sweep check -c {config_file}   "
                f"gdpr-sweep plan -c {config_file} --json"
            )


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gdpr-sweep")
