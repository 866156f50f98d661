"""The command line: parse options, call one core function, render, choose the exit code.

Errors are turned into one line on stderr and the exit code SPEC gives them, in one
place (`_errors_to_exit_codes`); `--debug` shows the traceback of internal errors.
Usage errors from Click are reduced to one line as well (`OneLineErrors`).

Modules only some commands need (erasure, export, replay, scan, metrics, migrations,
Rich) are imported by those commands: the nightly `run --quiet` starts without them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
import typer
from typer.core import TyperGroup

from . import __version__
from .approval import Approval
from .checks.check_config import check_config
from .config import Config, load_config
from .errors import (
    ConfigError,
    ExitCode,
    GdprSweepError,
    PartialFailure,
    Refused,
    Stopped,
    UsageError,
)
from .faults import failpoint
from .holds.store import add_hold, list_holds, release_hold
from .keys import OLD_KEYS_ENV, hash_key, keyring
from .logs import report_fatal, setup_logging
from .periods import local_date, parse_as_of, parse_duration
from .plan import Plan, build_plan
from .render import (
    RichProgress,
    dumps,
    make_console,
    markup_escape,
    print_audit_run,
    print_audit_runs,
    print_findings,
    print_holds,
    print_plan,
    print_run,
)
from .run_result import RunResult
from .state.store import StateStore
from .sweep import apply_plan, load_plan, recount_only, run_sweep
from .sweep_options import StopRequest, SweepOptions

if TYPE_CHECKING:
    from .subject import ErasureResult


class OneLineErrors(TyperGroup):
    """Report Click's usage errors as one line and exit 2, like our own errors."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        # Library warnings (e.g. SQLAlchemy on an odd URL argument) would add lines to
        # an output whose errors are one line each; --debug shows tracebacks instead.
        warnings.filterwarnings("ignore", category=sa.exc.SAWarning)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
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
TicketOption = Annotated[
    str | None,
    typer.Option(
        "--ticket",
        help="The request's reference (a case or ticket number, not a person's details): "
        "recorded in the audit trail and the receipt.",
        show_default=False,
    ),
]
ApprovedByOption = Annotated[
    str | None,
    typer.Option(
        "--approved-by",
        help="Who signed off the plan (a staff id): recorded in the audit trail.",
        show_default=False,
    ),
]
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
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            envvar="GDPR_SWEEP_LOG_FORMAT",
            help="Logs on stderr as text or json (one object per line).",
        ),
    ] = "text",
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar="GDPR_SWEEP_LOG_LEVEL",
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


@contextlib.contextmanager
def _errors_to_exit_codes(debug: bool) -> Iterator[None]:
    """Turn our errors into `error: ...` and their exit code; anything else is exit 1."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except GdprSweepError as exc:
        _fatal(str(exc), exc.exit_code)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _fatal("interrupted", 130)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
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
        _fatal(f"internal error ({kind}); rerun with --debug for the traceback", 1)
        raise typer.Exit(ExitCode.INTERNAL) from None


def _fatal(message: str, exit_code: int) -> None:
    """One line on stderr: `error: ...`, or a JSON log record with --log-format json."""
    if not report_fatal(message, exit_code):
        typer.echo(f"error: {message}", err=True)


def _note_case_insensitive_matches(count: int) -> None:
    """Tell the operator about likely typos of the identifier (a count, never values)."""
    if count:
        typer.echo(
            f"note: {count:,} other row(s) match the identifier only ignoring case or "
            "spaces; matching is exact, so check how the identifier was typed",
            err=True,
        )


def _as_of(config: Config, text: str | None) -> dt.datetime:
    try:
        return parse_as_of(text, config.sweep.tz)
    except ValueError as exc:
        raise UsageError(f"--as-of: {exc}") from None


def _duration(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _write_private(path: Path, text: str, point: str) -> None:
    """Write a file only its owner can read, atomically (a reader never sees half of it).

    Raises OSError: what a failure means (exit 2, or 3 after rows changed) is the
    command's to say. `point` is the failpoint just before the write (faults.py).
    """
    path = path.expanduser()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        failpoint(point)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _cannot_write(option: str, path: Path, exc: OSError) -> str:
    return f"{option}: cannot write {str(path)!r} ({exc.strerror or type(exc).__name__})"


def _emit_plan(plan: Plan, as_json: bool, out: Path | None) -> None:
    document = dumps(plan.to_json())
    if out is not None:
        _check_writable("--out", out)
        try:
            _write_private(out, document + "\n", "before-plan-write")
        except OSError as exc:
            raise UsageError(_cannot_write("--out", out, exc)) from None  # plan changes nothing
    if as_json:
        typer.echo(document)
    else:
        print_plan(make_console(), plan)
        if out is not None:
            typer.echo(f"Plan written to {out}; apply it with: gdpr-sweep apply {out}")
    if plan.failures:
        raise typer.Exit(ExitCode.PARTIAL)


@app.command()
def check(
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    debug: DebugOption = False,
) -> None:
    """Check the config against every database's reflected schema; change nothing.

    Every table and column a rule names must exist, `since` must be a date or
    timestamp column, `only` values must fit their columns, a strategy must be able to
    succeed, and a delete must not break rows that reference it (rows that stay and
    still reference a due row hold it back: a warning says so). Exit 2 when anything
    is wrong, 3 when a database cannot be reached.

    Example:

        gdpr-sweep check -c /etc/gdpr-sweep/gdpr-sweep.toml
    """
    with _errors_to_exit_codes(debug):
        config = load_config(config_path)
        result = check_config(config, database)
        print_findings(make_console(), result.findings, result.passed, result.unreachable)
        if any(not finding.warning for finding in result.findings):
            raise typer.Exit(ExitCode.USAGE)
        if result.unreachable:
            raise typer.Exit(ExitCode.PARTIAL)


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
        # A plan file carries keyed digests of the due keys, so apply can prove the
        # due set is unchanged; they need the hash key.
        key = hash_key(config) if out is not None else None
        result = build_plan(config, _as_of(config, as_of), database, rule, hmac_key=key)
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
    from .demo.build import built_for, write_demo
    from .demo.config import demo_config

    with _errors_to_exit_codes(debug):
        # The rows are built relative to the as-of day, so the demo's promise (every
        # rule has due and not-due rows) holds at the day its plan is shown for. The
        # as-of is read before anything is written: a bad --as-of changes nothing.
        settings = demo_config(directory)
        when = _as_of(settings, as_of)
        config_file, database_file = write_demo(directory, local_date(when, settings.sweep.tz))
        config = load_config(config_file)
        result = build_plan(config, when)
        if not as_json:
            typer.echo(f"Demo database: {database_file}\nDemo config:   {config_file}\n")
            day = built_for(database_file)
            if day is not None and day != local_date(when, config.sweep.tz):
                typer.echo(
                    f"(The demo database was built for {day:%Y-%m-%d} and is kept; "
                    f"delete {database_file} to build it for this day.)\n"
                )
        _emit_plan(result, as_json, None)
        if not as_json:
            typer.echo(
                f"\nNext: gdpr-sweep check -c {config_file}   "
                f"gdpr-sweep plan -c {config_file} --json"
            )


@app.command()
def run(
    config_path: ConfigOption = None,
    as_of: AsOfOption = None,
    database: DatabaseOption = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=64,
            help="Sweep this many databases at once (each with its own connections).",
        ),
    ] = 1,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Act even when a rule would touch more than sweep.max_fraction of its table.",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print nothing on success (for cron: mail only failures)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            help="Write Prometheus "
            "text-format metrics here (atomically), e.g. for node-exporter's "
            "textfile collector.",
            show_default=False,
        ),
    ] = None,
    max_runtime: Annotated[
        str | None,
        typer.Option(
            "--max-runtime",
            help="Stop cleanly between batches after this long "
            "(e.g. 45m, 2h); the next run carries on. Exit 0, 'incomplete'.",
            show_default=False,
        ),
    ] = None,
    pause: Annotated[
        float,
        typer.Option(
            "--pause-between-batches",
            min=0.0,
            max=60.0,
            help="Seconds to sleep after each batch, to spare the application.",
        ),
    ] = 0.0,
    wait_lock: Annotated[
        str | None,
        typer.Option(
            "--wait-lock",
            help="If another sweep holds the lock, wait this long for it (e.g. 10m) "
            "instead of exiting 4 at once, like flock -w.",
            show_default=False,
        ),
    ] = None,
    verify_only: Annotated[
        bool,
        typer.Option(
            "--verify-only",
            help="Only count what is still due (changing nothing); "
            "exit 3 if anything is, for monitoring after the nightly run.",
        ),
    ] = False,
    ticket: TicketOption = None,
    debug: DebugOption = False,
) -> None:
    """Sweep: find what is due and anonymise or delete it, in batches, with an audit trail.

    The nightly cron job. It takes the sweep lock (exit 4 if another sweep holds it),
    marks runs a killed process left behind as interrupted, refuses a rule that would
    touch more than sweep.max_fraction of its table (exit 5, unless --force), and
    completes every other database when one fails (exit 3). SIGTERM or Ctrl-C stop it
    after the current batch (run recorded `stopped`; exit 3, or 130 for Ctrl-C); the
    next run carries on. Needs the hash key in the environment variable named by
    sweep.hash_key_env.

    Example:

        gdpr-sweep run --quiet --jobs 4 --metrics-file /var/lib/node_exporter/gdpr.prom
    """
    with _errors_to_exit_codes(debug), _json_errors(as_json, "run"):
        config = load_config(config_path)
        # Quiet and JSON runs draw nothing: no console (and no Rich) at all.
        console = None if quiet or as_json else make_console()
        started = time.monotonic()
        result: RunResult | None = None
        status = "failed"
        stop = StopRequest()
        options = SweepOptions(
            approval=Approval.given(ticket),
            force=force,
            jobs=jobs,
            pause=pause,
            max_runtime=_duration("--max-runtime", max_runtime),
            stop=stop,
            wait_lock=_duration("--wait-lock", wait_lock),
            preflight=(lambda: _check_writable("--metrics-file", metrics_file))
            if metrics_file is not None
            else None,
        )
        when = _as_of(config, as_of)
        failure: BaseException | None = None
        try:
            if verify_only:
                result = recount_only(config, when, database, jobs)
            else:
                bars = None
                if console is not None and console.is_terminal:
                    bars = RichProgress(console)
                with _stop_on_signals(stop), bars or contextlib.nullcontext():
                    result = run_sweep(config, when, database, options=options, progress=bars)
            status = result.status
        except GdprSweepError as exc:
            status = _status_of(exc)
            failure = exc
            raise
        finally:
            if metrics_file is not None:
                _write_run_metrics(
                    config,
                    metrics_file,
                    result,
                    status,
                    time.monotonic() - started,
                    database,
                    failure=failure,
                )
        _emit_run(console, result, as_json, quiet, stop)


class _Unwritable(UsageError):
    """A file the command was asked to write cannot be written (found before any change)."""


def _check_writable(option: str, path: Path) -> None:
    """Refuse (exit 2, before anything changes) a file we could not write afterwards."""
    path = path.expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise _Unwritable(f"{option}: {str(path)!r} is a directory")
    if not parent.is_dir():
        raise _Unwritable(f"{option}: no directory {str(parent)!r}")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _Unwritable(f"{option}: cannot write {str(path)!r} (permission denied)")


def _preflight(option: str, path: Path | None) -> Callable[[], None] | None:
    """The check a command's core makes, under the lock, before it changes anything."""
    if path is None:
        return None
    return lambda: _check_writable(option, path)


def _rows_changed(rows: int, run_id: int | None) -> str:
    """Where a late write failure leaves things: rows changed, and the run recording them."""
    return (
        f"rows were changed: {rows:,} row(s), recorded as run {run_id} in the audit trail "
        f"(gdpr-sweep audit show {run_id})"
    )


@contextlib.contextmanager
def _stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C ask the sweep to stop after its current batch.

    A second Ctrl-C interrupts at once (the open batch's transaction rolls back). Only
    in the main thread, where Python delivers signals.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.request("signal", name)
        sys.stderr.write(f"gdpr-sweep: {name}: stopping after the current batch\n")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _status_of(exc: GdprSweepError) -> str:
    """The run status an error stands for (metrics, JSON)."""
    if isinstance(exc, Stopped):
        return "stopped"
    return ExitCode(exc.exit_code).status


@contextlib.contextmanager
def _json_errors(as_json: bool, command: str) -> Iterator[None]:
    """With --json, a refused, locked or failed run still prints one JSON document."""
    try:
        yield
    except GdprSweepError as exc:
        if as_json:
            typer.echo(
                dumps(
                    {
                        "format": f"gdpr-sweep {command} 1",
                        "run_id": None,
                        "status": _status_of(exc),
                        "exit_code": exc.exit_code,
                        "error": str(exc),
                        "items": [],
                    }
                )
            )
        raise


def _write_run_metrics(
    config: Config,
    path: Path,
    result: RunResult | None,
    status: str,
    duration: float,
    databases: list[str] | None,
    failure: BaseException | None = None,
) -> None:
    """Write the metrics file; a failure never hides the run's own outcome (SPEC).

    The run already failed or was partial (exit 3, 4, 5, 130): say so and keep that
    exit code. Rows were changed: exit 3, saying they were. Nothing changed: exit 2.
    """
    from .metrics import render_metrics, write_metrics

    if isinstance(failure, _Unwritable):
        return  # the preflight found it unwritable: that is the run's error already
    try:
        with StateStore(config, None) as store:
            last_success = store.last_success()
        names = [db.name for db in config.databases if not databases or db.name in databases]
        failpoint("before-metrics-write")
        write_metrics(path, render_metrics(result, status, duration, last_success, names))
    except (OSError, GdprSweepError, sa.exc.DBAPIError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
        message = f"--metrics-file: cannot write {str(path)!r} ({reason})"
        if failure is not None:
            typer.echo(f"error: {message}", err=True)
            return  # the run's own error (and exit code) follows
        done = sum(item.done for item in result.items) if result is not None else 0
        if result is not None and done:
            message = f"{message}; {_rows_changed(done, result.run_id)}"
        if result is not None and result.exit_code:
            typer.echo(f"error: {message}", err=True)
            return  # a partial or stopped run: its summary and exit code (3, 130) follow
        if result is not None and done:
            raise PartialFailure(message) from None
        raise UsageError(message) from None


def _emit_run(
    console: Any, result: RunResult, as_json: bool, quiet: bool, stop: StopRequest | None = None
) -> None:
    if as_json:
        typer.echo(dumps({"format": "gdpr-sweep run 1", **result.to_json()}))
    elif not quiet:
        print_run(console, result)
    elif result.failures:
        for failure in result.failures:
            typer.echo(f"error: {failure['error']}", err=True)
    code = result.exit_code
    if result.status == "stopped" and stop is not None and stop.signal == "SIGINT":
        code = ExitCode.INTERRUPTED  # as for any command interrupted by Ctrl-C
    raise typer.Exit(code)


@app.command()
def apply(
    plan_file: Annotated[
        Path,
        typer.Argument(
            metavar="PLAN", help="A plan file written by `plan --out`.", show_default=False
        ),
    ],
    config_path: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Act even when a rule would touch more than sweep.max_fraction of its table.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
    ticket: TicketOption = None,
    approved_by: ApprovedByOption = None,
    debug: DebugOption = False,
) -> None:
    """Execute exactly a reviewed plan: same as-of, same config, same due rows.

    Re-evaluates at the plan's pinned as-of and refuses (exit 5) when the config
    changed or any rule's due rows differ from those reviewed. Without --yes it shows
    the plan and asks (on a terminal only; scripts must pass --yes).

    Example:

        gdpr-sweep plan --out plan.json   # review and sign off, then:
        gdpr-sweep apply plan.json --yes
    """
    with _errors_to_exit_codes(debug), _json_errors(as_json, "apply"):
        approval = Approval.given(ticket, approved_by)
        config = load_config(config_path)
        reviewed = load_plan(plan_file)
        console = make_console()
        if not yes:
            if not (sys.stdin.isatty() and console.is_terminal):
                raise UsageError(
                    "--yes: apply asks for confirmation on a terminal; "
                    "pass --yes when running it from a script"
                )
            print_plan(console, reviewed)
            if not typer.confirm("Apply this plan?", default=False):
                typer.echo("Nothing was changed.")
                raise typer.Exit(ExitCode.OK)
        show_progress = console.is_terminal and not as_json
        stop = StopRequest()
        options = SweepOptions(force=force, stop=stop, approval=approval)
        with (
            _stop_on_signals(stop),
            RichProgress(console) if show_progress else contextlib.nullcontext() as bars,
        ):
            result = apply_plan(config, reviewed, options=options, progress=bars)
        _emit_run(console, result, as_json, False, stop)


@app.command()
def migrate(config_path: ConfigOption = None, debug: DebugOption = False) -> None:
    """Create or upgrade the state database to the newest schema (also done on first use).

    Example:

        gdpr-sweep migrate -c /etc/gdpr-sweep/gdpr-sweep.toml
    """
    with _errors_to_exit_codes(debug):
        from .state.migrate import head_revision

        config = load_config(config_path)
        StateStore(config, None).close()  # opening it migrates it
        typer.echo(f"state database at revision {head_revision()}")


SubjectOption = Annotated[
    str,
    typer.Option(
        "--subject",
        "-s",
        help="The person, as KIND=VALUE with a kind from "
        "subject.identifiers (e.g. email=person@example.com).",
        show_default=False,
    ),
]


@app.command()
def erase(
    subject: SubjectOption,
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    receipt: Annotated[
        Path | None,
        typer.Option("--receipt", help="Write the JSON receipt to this file.", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
    ticket: TicketOption = None,
    debug: DebugOption = False,
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
    with _errors_to_exit_codes(debug):
        from .subject import erase_subject

        config = load_config(config_path)
        result = erase_subject(
            config,
            subject,
            parse_as_of(None, config.sweep.tz),
            databases=database,
            dry_run=dry_run,
            preflight=_preflight("--receipt", receipt),
            approval=Approval.given(ticket),
        )
        document = dumps(result.to_json())
        unwritten: GdprSweepError | None = None
        if receipt is not None:
            try:
                _write_private(receipt, document + "\n", "before-receipt-write")
            except OSError as exc:
                unwritten = _receipt_unwritten(result, _cannot_write("--receipt", receipt, exc))
        # Printed even when the file could not be written: then it is the only copy.
        typer.echo(document if as_json else result.to_text())
        _note_case_insensitive_matches(sum(db.case_insensitive_matches for db in result.databases))
        if unwritten is not None:
            raise unwritten
        raise typer.Exit(ExitCode.PARTIAL if result.failed else ExitCode.OK)


def _receipt_unwritten(result: ErasureResult, message: str) -> GdprSweepError:
    """A receipt that failed after the erasure: exit 3 once anything changed, never 2."""
    if result.dry_run:
        return UsageError(message)
    if result.rows_changed:
        return PartialFailure(
            f"{message} after the erasure; {_rows_changed(result.rows_changed, result.run_id)}"
        )
    if result.failed:
        return PartialFailure(
            f"{message}; a database failed (above) and no rows were changed "
            f"(run {result.run_id} in the audit trail)"
        )
    return UsageError(f"{message}; no rows were changed (run {result.run_id} found none to erase)")


@app.command()
def export(
    subject: SubjectOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The JSON file to write (owner-only: it holds the person's data).",
            show_default=False,
        ),
    ],
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    ticket: TicketOption = None,
    debug: DebugOption = False,
) -> None:
    """Export one named person's rows from every database as JSON (access, portability).

    Streams every row the person has, in every table and database, to --out, created
    owner-only. Dates, timestamps and decimals round-trip exactly; each table lists its
    column types. Only counts reach the screen and the audit trail.

    Example:

        gdpr-sweep export --subject cpr=010190-9999 --out subject-access.json
    """
    with _errors_to_exit_codes(debug):
        from .subject import export_subject

        config = load_config(config_path)
        result = export_subject(
            config,
            subject,
            out,
            databases=database,
            preflight=_preflight("--out", out),
            approval=Approval.given(ticket),
        )
        rows = sum(result.rows.values())
        typer.echo(
            f"Exported {rows:,} row(s) from {len(result.rows)} table(s) to {out} "
            f"(subject {result.subject[:24]}…)"
        )
        _note_case_insensitive_matches(sum(result.case_insensitive_matches.values()))
        for failure in result.failures:
            typer.echo(f"error: {failure['error']}", err=True)
        raise typer.Exit(ExitCode.PARTIAL if result.failures else ExitCode.OK)


@app.command()
def scan(
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Exit 5 when anything is found (for CI of a customer's schema)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """List personal-looking columns that no rule and no subject table covers.

    The first question a DPO asks: what personal data do we keep forever by accident?
    Reflects every database (no row is read) and reports columns whose names look
    personal (name, e-mail, phone, CPR, address, birth, notes, health, ... plus
    sweep.personal_column_patterns) that no rule deletes or anonymises, and tables
    holding such columns that no retention rule names at all.

    Example:

        gdpr-sweep scan --strict || echo "uncovered personal data"
    """
    with _errors_to_exit_codes(debug):
        from .scan import scan_config

        config = load_config(config_path)
        result = scan_config(
            config, database, config.sweep.personal_column_patterns, config.sweep.scan_ignore
        )
        if as_json:
            typer.echo(dumps(result.to_json()))
        else:
            console = make_console()
            for finding in result.findings:
                console.print(
                    f"[yellow]![/] {markup_escape(finding.message)}",
                    highlight=False,
                    soft_wrap=True,
                )
            for failure in result.unreachable:
                console.print(
                    f"[red]✗[/] {markup_escape(failure)}", highlight=False, soft_wrap=True
                )
            console.print(
                f"{len(result.findings)} finding(s) in {len(result.scanned)} database(s) scanned."
            )
        if result.unreachable:
            raise typer.Exit(ExitCode.PARTIAL)
        if strict and result.findings:
            raise typer.Exit(ExitCode.REFUSED)


@app.command("replay")
def replay_command(
    since: Annotated[
        str,
        typer.Option(
            "--since",
            help="Re-apply erasures made on or after "
            "this date (YYYY-MM-DD): the date of the backup that was restored.",
            show_default=False,
        ),
    ],
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: DebugOption = False,
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
    with _errors_to_exit_codes(debug):
        from .subject import replay

        result = replay(load_config(config_path), since, database, dry_run)
        if as_json:
            typer.echo(dumps(result.to_json()))
        else:
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
            for failure in result.failures:
                typer.echo(f"error: {failure['error']}", err=True)
        raise typer.Exit(ExitCode.PARTIAL if result.failures else ExitCode.OK)


hold_app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    help="Legal holds on single rows: a held row is never deleted or anonymised.\n\n"
    "Example:\n\n    gdpr-sweep hold add -d aarhus -t cctv_recording -k 4711 "
    '--reason "police request 2026-118" --until 2027-01-31',
)
app.add_typer(hold_app, name="hold")

_HOLD_WAIT_LOCK = (
    "If a sweep holds the lock, wait this long for it (e.g. 10m) instead of exiting 4 "
    "at once, like flock -w."
)


@hold_app.command("add")
def hold_add(
    database: Annotated[
        str, typer.Option("--database", "-d", help="The database.", show_default=False)
    ],
    table: Annotated[
        str,
        typer.Option(
            "--table",
            "-t",
            help="The table, as the rules name it (public.t, main.t or DB.t is t).",
            show_default=False,
        ),
    ],
    key: Annotated[
        list[str],
        typer.Option(
            "--key",
            "-k",
            help="The row's primary key: VALUE for a one-column key (integer, text, UUID, "
            "date); COL=VALUE once per column for a composite key.",
            show_default=False,
        ),
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why (a case number; no personal data: the audit trail and hold list show it).",
            show_default=False,
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Last day of the hold (YYYY-MM-DD); without it, until released.",
            show_default=False,
        ),
    ] = None,
    wait_lock: Annotated[
        str | None, typer.Option("--wait-lock", help=_HOLD_WAIT_LOCK, show_default=False)
    ] = None,
    config_path: ConfigOption = None,
    debug: DebugOption = False,
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
    with _errors_to_exit_codes(debug):
        config = load_config(config_path)
        stop = StopRequest()
        with _stop_on_signals(stop):
            hold = add_hold(
                config,
                database,
                table,
                key,
                reason,
                until,
                wait=_duration("--wait-lock", wait_lock),
                stop=stop,
            )
        typer.echo(
            f"hold {hold.id}: {hold.database}.{hold.table} row {hold.key}, "
            f"until {hold.until or 'released'}"
        )


@hold_app.command("list")
def hold_list(
    config_path: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """List holds: active, lapsed and released.

    Example:

        gdpr-sweep hold list
    """
    with _errors_to_exit_codes(debug):
        config = load_config(config_path)
        holds = list_holds(config)
        today = parse_as_of(None, config.sweep.tz).date()
        if as_json:
            typer.echo(dumps({"holds": [{**vars(h), "status": h.status_on(today)} for h in holds]}))
        else:
            print_holds(make_console(), holds, today)


@hold_app.command("release")
def hold_release(
    hold_id: Annotated[int, typer.Argument(metavar="ID", help="A hold id from `hold list`.")],
    wait_lock: Annotated[
        str | None, typer.Option("--wait-lock", help=_HOLD_WAIT_LOCK, show_default=False)
    ] = None,
    config_path: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """End a hold: the row is swept again by the rules that apply to it.

    Released under the sweep lock (exit 4 while a sweep runs, unless --wait-lock).

    Example:

        gdpr-sweep hold release 7
    """
    with _errors_to_exit_codes(debug):
        config = load_config(config_path)
        stop = StopRequest()
        with _stop_on_signals(stop):
            hold = release_hold(
                config, hold_id, wait=_duration("--wait-lock", wait_lock), stop=stop
            )
        typer.echo(f"hold {hold.id} released")


audit_app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    help="The audit trail: every run and batch, hash-chained.\n\nExample:\n\n"
    "    gdpr-sweep audit list; gdpr-sweep audit show 42; gdpr-sweep audit verify",
)
app.add_typer(audit_app, name="audit")


@audit_app.command("list")
def audit_list(
    config_path: ConfigOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """List the most recent runs, newest first.

    Example:

        gdpr-sweep audit list -n 10
    """
    with _errors_to_exit_codes(debug):
        with StateStore(load_config(config_path), None) as store:
            runs = store.runs(limit)
        if as_json:
            typer.echo(dumps({"runs": runs}))
        else:
            print_audit_runs(make_console(), runs)


@audit_app.command("show")
def audit_show(
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="A run id from `audit list`.")],
    config_path: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Show one run and every audit entry it wrote.

    Example:

        gdpr-sweep audit show 42
    """
    with _errors_to_exit_codes(debug):
        with StateStore(load_config(config_path), None) as store:
            run, entries = store.run(run_id)
        if run is None:
            raise UsageError(f"RUN: no run {run_id}")
        if as_json:
            typer.echo(dumps({"run": run, "entries": entries}))
        else:
            print_audit_run(make_console(), run, entries)


@audit_app.command("find")
def audit_find(
    subject: SubjectOption,
    config_path: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Answer "was this person erased?" by hashing the identifier again.

    The trail stores only a keyed hash of each erased or exported subject; this hashes
    KIND=VALUE with the same key and lists the runs that name it (with the old keys in
    GDPR_SWEEP_OLD_KEYS too: runs from before a key rotation).

    Example:

        gdpr-sweep audit find --subject email=person@example.com
    """
    with _errors_to_exit_codes(debug):
        from .subject import parse_subject, subject_hash

        config = load_config(config_path)
        kind, _column, value = parse_subject(subject, config)
        ring = keyring(config)
        hashed = subject_hash(ring[0], kind, value)
        with StateStore(config, ring[0], ring) as store:
            runs = store.runs_for_subject([subject_hash(k, kind, value) for k in ring])
        if as_json:
            typer.echo(dumps({"subject": hashed, "runs": runs}))
        elif not runs:
            typer.echo(f"No run names subject {hashed[:24]}…")
        else:
            print_audit_runs(make_console(), runs)


@audit_app.command("verify")
def audit_verify(
    config_path: ConfigOption = None,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            help="A head printed earlier (N:digest): exit 5 if the chain no longer holds it.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Check the audit trail's hash chain; exit 5 if any entry or run was edited or removed.

    The runs table is sealed into the chain too. `--json` prints the chain's head;
    kept elsewhere (a log line per run), `--head HEAD` later proves that nothing was
    cut off the end since. Entries written before a key rotation are checked with the
    old keys in GDPR_SWEEP_OLD_KEYS; a segment whose key is not there is named, not
    checked (exit 2).

    Example:

        gdpr-sweep audit verify || echo "audit trail altered" | mail -s gdpr-sweep dpo
    """
    from .state.chain import parse_head

    with _errors_to_exit_codes(debug):
        if head is not None:
            try:
                parse_head(head)
            except ValueError as exc:
                raise UsageError(f"--head: {exc}") from None
        config = load_config(config_path)
        ring = keyring(config)
        with StateStore(config, ring[0], ring) as store:
            verification = store.verify_chain(head=head)
            current = store.head()
        checked, broken, unchecked = (
            verification.checked,
            verification.broken,
            verification.unchecked,
        )
        if as_json:
            typer.echo(
                dumps(
                    {
                        "format": "gdpr-sweep audit verify 1",
                        "intact": broken is None and not unchecked,
                        "entries": checked,
                        "head": current,
                        "broken": None
                        if broken is None
                        else {"entry": broken.entry_id, "reason": broken.reason},
                        "segments": [s.to_json() for s in verification.segments],
                        "unchecked": [s.to_json() for s in unchecked],
                        "head_checked": head is None or not verification.head_unchecked,
                    }
                )
            )
        if broken is not None:
            where = f"entry {broken.entry_id} " if broken.entry_id is not None else ""
            raise Refused(
                f"audit trail altered: {where}{broken.reason} ({checked} entries before it verify)"
            )
        name = config.sweep.hash_key_env
        if unchecked:
            raise ConfigError(
                f"{OLD_KEYS_ENV}: "
                + "; ".join(s.describe(name) for s in unchecked)
                + f"; the other {checked} entries verify"
            )
        if verification.head_unchecked:
            raise ConfigError(
                f"{OLD_KEYS_ENV}: the head {head} lies in entries written with a key not in "
                f"{OLD_KEYS_ENV}: not checked; the {checked} entries verify"
            )
        if not as_json:
            rotations = len(verification.segments) - 1
            segments = f", {rotations + 1} key segments" if rotations > 0 else ""
            typer.echo(f"audit trail intact: {checked} entries verify{segments} (head {current})")


@audit_app.command("rotate-key")
def audit_rotate_key(
    wait_lock: Annotated[
        str | None, typer.Option("--wait-lock", help=_HOLD_WAIT_LOCK, show_default=False)
    ] = None,
    config_path: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Make GDPR_SWEEP_KEY (the new key) the state database's key.

    The key it was written with must be in GDPR_SWEEP_OLD_KEYS (comma-separated; exit 2
    and nothing written otherwise). Under the sweep lock, once the whole chain verifies
    (exit 5 if not), one transaction re-seals every hold's and erased subject's key
    under the new key and appends a `key-rotated` entry. Keep the old key in
    GDPR_SWEEP_OLD_KEYS: it still verifies the entries it wrote and matches `audit find`
    and `replay` records made before. Again with the same keys: nothing to do.

    Example:

        GDPR_SWEEP_KEY=$NEW GDPR_SWEEP_OLD_KEYS=$OLD gdpr-sweep audit rotate-key
    """
    with _errors_to_exit_codes(debug):
        from .state.rotation import rotate_key

        config = load_config(config_path)
        stop = StopRequest()
        with _stop_on_signals(stop):
            result = rotate_key(config, wait=_duration("--wait-lock", wait_lock), stop=stop)
        if as_json:
            typer.echo(dumps(result.to_json()))
        elif not result.rotated:
            typer.echo(
                f"nothing to do: {config.sweep.hash_key_env} is already this state database's "
                f"key (key check {result.key_check})"
            )
        else:
            typer.echo(
                f"key rotated at entry {result.entry} (run {result.run_id}): key check "
                f"{result.previous_key_check} -> {result.key_check}; {result.holds} hold "
                f"key(s) and {result.erased_subjects} erased subject key(s) re-sealed; keep "
                f"the old keys in {OLD_KEYS_ENV}: the entries before {result.entry} were "
                f"written with them (head {result.head})"
            )
        name = config.sweep.hash_key_env
        for segment in result.unchecked:
            typer.echo(f"note: {segment.describe(name)}", err=True)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gdpr-sweep")
