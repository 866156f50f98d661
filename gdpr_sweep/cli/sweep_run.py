"""The commands that sweep: `run` (the nightly job) and `apply` (a reviewed plan).

Both take the sweep lock, stop cleanly on SIGTERM or Ctrl-C (`signals`), draw progress
bars on a terminal and print the run's summary; `run` also writes the metrics file,
whatever the run's outcome. Metrics are imported only when that file is asked for.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from ..approval import Approval
from ..config import Config, load_config
from ..errors import ExitCode, GdprSweepError, PartialFailure, UsageError
from ..faults import failpoint
from ..formats import with_format
from ..plan import Plan
from ..render.console import RichProgress, dumps, make_console
from ..render.sweep import print_plan, print_run
from ..run_result import RunResult
from ..shards import parse_shard
from ..state.store import StateStore
from ..sweep import apply_plan, load_plan, recount_only, run_sweep
from ..sweep_options import StopRequest, SweepOptions
from .errors import json_errors, status_of
from .files import Unwritable, check_writable, rows_changed
from .options import (
    ApprovedByOption,
    AsOfOption,
    ConfigOption,
    DatabaseOption,
    ShardOption,
    TicketOption,
    as_of_instant,
    duration,
)
from .signals import stop_on_signals

JobsOption = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        metavar="N",
        min=1,
        max=64,
        help="Sweep this many databases at once (each with its own connections).",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Act even when a rule would touch more than sweep.max_fraction of its table.",
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print nothing on success (for cron: mail only failures)."),
]
JsonRunOption = Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")]
MetricsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        metavar="FILE",
        help="Write Prometheus "
        "text-format metrics here (atomically), e.g. for node-exporter's "
        "textfile collector.",
        show_default=False,
    ),
]
MaxRuntimeOption = Annotated[
    str | None,
    typer.Option(
        "--max-runtime",
        metavar="DURATION",
        help="Stop cleanly between batches after this long "
        "(e.g. 45m, 2h); the next run carries on. Exit 0, 'incomplete'.",
        show_default=False,
    ),
]
PauseOption = Annotated[
    float,
    typer.Option(
        "--pause-between-batches",
        metavar="SECONDS",
        min=0.0,
        max=60.0,
        help="Seconds to sleep after each batch, to spare the application.",
    ),
]
RunWaitLockOption = Annotated[
    str | None,
    typer.Option(
        "--wait-lock",
        metavar="DURATION",
        help="If another sweep holds a lock (the state database's, or a database's "
        "tenant lock), wait this long for each (e.g. 10m) instead of reporting it "
        "locked at once, like flock -w.",
        show_default=False,
    ),
]
VerifyOnlyOption = Annotated[
    bool,
    typer.Option(
        "--verify-only",
        help="Only count what is still due (changing nothing); "
        "exit 3 if anything is, for monitoring after the nightly run.",
    ),
]


@dataclass(frozen=True)
class RunOptions:
    """`run`'s options as given; durations and the as-of are read after the config."""

    as_of: str | None
    databases: list[str] | None
    jobs: int
    force: bool
    metrics_file: Path | None
    max_runtime: str | None
    pause: float
    wait_lock: str | None
    verify_only: bool
    ticket: str | None
    shard: tuple[int, int] | None = None

    def sweep_options(self, stop: StopRequest) -> SweepOptions:
        metrics_file = self.metrics_file
        return SweepOptions(
            approval=Approval.given(self.ticket),
            force=self.force,
            jobs=self.jobs,
            pause=self.pause,
            max_runtime=duration("--max-runtime", self.max_runtime),
            stop=stop,
            wait_lock=duration("--wait-lock", self.wait_lock),
            shard=self.shard,
            preflight=(lambda: check_writable("--metrics-file", metrics_file))
            if metrics_file is not None
            else None,
        )


def run(
    config_path: ConfigOption = None,
    as_of: AsOfOption = None,
    database: DatabaseOption = None,
    jobs: JobsOption = 1,
    force: ForceOption = False,
    quiet: QuietOption = False,
    as_json: JsonRunOption = False,
    metrics_file: MetricsFileOption = None,
    max_runtime: MaxRuntimeOption = None,
    pause: PauseOption = 0.0,
    wait_lock: RunWaitLockOption = None,
    verify_only: VerifyOnlyOption = False,
    ticket: TicketOption = None,
    shard: ShardOption = None,
) -> None:
    """Sweep: find what is due and anonymise or delete it, in batches, with an audit trail.

    The nightly cron job. It takes each database's tenant lock as it reaches it: a
    database another sweep holds is reported "locked" and the others are swept (exit
    3; exit 4 when all are locked). It marks runs a killed process left behind as
    interrupted, refuses a rule that would
    touch more than sweep.max_fraction of its table (exit 5, unless --force), and
    completes every other database when one fails (exit 3). SIGTERM or Ctrl-C stop it
    after the current batch (run recorded `stopped`; exit 3, or 130 for Ctrl-C); the
    next run carries on. Needs the hash key in the environment variable named by
    sweep.hash_key_env.

    Example:

        gdpr-sweep run --quiet --jobs 4 --metrics-file /var/lib/node_exporter/gdpr.prom
        gdpr-sweep run --quiet --shard auto/4    # pod I of a 4-pod Indexed Job
    """
    shard_of = parse_shard(shard)
    options = RunOptions(
        as_of=as_of,
        databases=database,
        jobs=jobs,
        force=force,
        metrics_file=metrics_file,
        max_runtime=max_runtime,
        pause=pause,
        wait_lock=wait_lock,
        verify_only=verify_only,
        ticket=ticket,
        shard=shard_of,
    )
    with json_errors(as_json, "run"):
        config = load_config(config_path)
        # Quiet and JSON runs draw nothing: no console (and no Rich) at all.
        console = None if quiet or as_json else make_console()
        stop = StopRequest()
        result = _sweep(config, options, console, stop)
        _emit_run(console, result, as_json, quiet, stop)


def _sweep(config: Config, options: RunOptions, console: Any, stop: StopRequest) -> RunResult:
    """Run (or, with --verify-only, count) the sweep; write the metrics file in any case."""
    started = time.monotonic()
    result: RunResult | None = None
    status = "failed"
    sweep_options = options.sweep_options(stop)
    when = as_of_instant(config, options.as_of)
    failure: BaseException | None = None
    try:
        if options.verify_only:
            result = recount_only(config, when, options.databases, options.jobs, options.shard)
        else:
            bars = None
            if console is not None and console.is_terminal:
                bars = RichProgress(console)
            with stop_on_signals(stop), bars or contextlib.nullcontext():
                result = run_sweep(
                    config, when, options.databases, options=sweep_options, progress=bars
                )
        status = result.status
    except GdprSweepError as exc:
        status = status_of(exc)
        failure = exc
        raise
    finally:
        if options.metrics_file is not None:
            _write_run_metrics(
                config,
                options.metrics_file,
                result,
                status,
                time.monotonic() - started,
                options.databases,
                failure=failure,
            )
    return result


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
    from ..metrics import render_metrics, write_metrics

    if isinstance(failure, Unwritable):
        return  # the preflight found it unwritable: that is the run's error already
    try:
        with StateStore(config, None) as store:
            last_success = store.last_success()
        names = [db.name for db in config.databases if not databases or db.name in databases]
        failpoint("before-metrics-write")
        locked = result.locked if result is not None else None
        write_metrics(
            path, render_metrics(result, status, duration, last_success, names, locked=locked)
        )
    except (OSError, GdprSweepError, sa.exc.DBAPIError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
        message = f"--metrics-file: cannot write {str(path)!r} ({reason})"
        if failure is not None:
            typer.echo(f"error: {message}", err=True)
            return  # the run's own error (and exit code) follows
        done = sum(item.done for item in result.items) if result is not None else 0
        if result is not None and done:
            message = f"{message}; {rows_changed(done, result.run_id)}"
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
        typer.echo(dumps(with_format("run", result.to_json())))
    elif not quiet:
        print_run(console, result)
    elif result.failures:
        for failure in result.failures:
            typer.echo(f"error: {failure['error']}", err=True)
    code = result.exit_code
    if result.status == "stopped" and stop is not None and stop.signal == "SIGINT":
        code = ExitCode.INTERRUPTED  # as for any command interrupted by Ctrl-C
    raise typer.Exit(code)


def apply(
    plan_file: Annotated[
        Path,
        typer.Argument(
            metavar="PLAN", help="A plan file written by `plan --out`.", show_default=False
        ),
    ],
    config_path: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: ForceOption = False,
    as_json: JsonRunOption = False,
    ticket: TicketOption = None,
    approved_by: ApprovedByOption = None,
) -> None:
    """Execute exactly a reviewed plan: same as-of, same config, same due rows.

    Re-evaluates at the plan's pinned as-of and refuses (exit 5) when the config
    changed or any rule's due rows differ from those reviewed. Without --yes it shows
    the plan and asks (on a terminal only; scripts must pass --yes).

    Example:

        gdpr-sweep plan --out plan.json   # review and sign off, then:
        gdpr-sweep apply plan.json --yes
    """
    with json_errors(as_json, "run"):
        approval = Approval.given(ticket, approved_by)
        config = load_config(config_path)
        reviewed = load_plan(plan_file)
        console = make_console()
        if not yes:
            _confirm(console, reviewed)
        show_progress = console.is_terminal and not as_json
        stop = StopRequest()
        options = SweepOptions(force=force, stop=stop, approval=approval)
        with (
            stop_on_signals(stop),
            RichProgress(console) if show_progress else contextlib.nullcontext() as bars,
        ):
            result = apply_plan(config, reviewed, options=options, progress=bars)
        _emit_run(console, result, as_json, False, stop)


def _confirm(console: Any, reviewed: Plan) -> None:
    """Show the plan and ask, on a terminal only; "no" exits 0 having changed nothing."""
    if not (sys.stdin.isatty() and console.is_terminal):
        raise UsageError(
            "--yes: apply asks for confirmation on a terminal; "
            "pass --yes when running it from a script"
        )
    print_plan(console, reviewed, reviewing=True)
    if not typer.confirm("Apply this plan?", default=False):
        typer.echo("Nothing was changed.")
        raise typer.Exit(ExitCode.OK)
