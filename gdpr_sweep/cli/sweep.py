"""The commands that look before anything is swept: check, plan, demo, scan, migrate.

None of them changes a target database (`migrate` creates or upgrades the state
database only). Modules only some commands need (the demo, the scan, migrations) are
imported by those commands: the nightly `run --quiet` starts without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..checks.check_config import check_config
from ..config import TodoError, load_config
from ..errors import ExitCode, UsageError
from ..keys import hash_key
from ..periods import local_date
from ..plan import Plan, build_plan
from ..render.console import dumps, make_console
from ..render.draft import print_todos
from ..render.sweep import (
    check_document,
    check_error_document,
    check_todos_document,
    demo_files,
    demo_next_steps,
    print_findings,
    print_plan,
    print_scan,
)
from ..shards import parse_shard
from ..state.store import StateStore
from .errors import json_errors
from .files import cannot_write, check_writable, write_private
from .options import (
    AsOfOption,
    ConfigOption,
    DatabaseOption,
    JsonPlanOption,
    JsonResultOption,
    ShardOption,
    as_of_instant,
)


def check(
    config_path: ConfigOption = None,
    database: DatabaseOption = None,
    as_json: JsonResultOption = False,
) -> None:
    """Check the config against every database's reflected schema; change nothing.

    Every table and column a rule names must exist, `since` must be a date or
    timestamp column, `only` values must fit their columns, a strategy must be able to
    succeed, and a delete must not break rows that reference it (rows that stay and
    still reference a due row hold it back: a warning says so). Exit 2 when anything
    is wrong, 3 when a database cannot be reached. `--json` prints the findings as one
    JSON document (`"format": "gdpr-sweep check 1"`), with the same exit codes.

    Example:

        gdpr-sweep check -c /etc/gdpr-sweep/gdpr-sweep.toml
    """
    with json_errors(as_json, "check", check_error_document):
        try:
            config = load_config(config_path)
        except TodoError as exc:  # a draft from `init`: every question left, then exit 2
            emit_check_todos(exc.keys, as_json)
            raise typer.Exit(ExitCode.USAGE) from None
        result = check_config(config, database)
    if as_json:
        typer.echo(dumps(check_document(result)))
    else:
        print_findings(make_console(), result.findings, result.passed, result.failures)
    raise typer.Exit(result.exit_code)


def emit_check_todos(keys: list[str], as_json: bool) -> None:
    """The TODOs a draft still holds: as `check --json` documents them, or one line each."""
    if as_json:
        typer.echo(dumps(check_todos_document(keys)))
    else:
        print_todos(make_console(), keys)


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
    as_json: JsonPlanOption = False,
    shard: ShardOption = None,
) -> None:
    """Show what is due: per database and rule, the cutoff, rows due and rows held.

    The dry run changes nothing in any database. Counts use the very predicate that
    `run` and `apply` act on.

    Example:

        gdpr-sweep plan --as-of 2026-12-01 --out plan-2026-12-01.json
    """
    shard_of = parse_shard(shard)
    config = load_config(config_path)
    # A plan file carries keyed digests of the due keys, so apply can prove the
    # due set is unchanged; they need the hash key.
    hmac_key = hash_key(config) if out is not None else None
    result = build_plan(
        config, as_of_instant(config, as_of), database, rule, hmac_key=hmac_key, shard=shard_of
    )
    emit_plan(result, as_json, out)


def emit_plan(plan: Plan, as_json: bool, out: Path | None) -> None:
    """Write the plan file (if asked), print the plan; exit 3 if a database failed."""
    document = dumps(plan.to_json())
    if out is not None:
        check_writable("--out", out)
        try:
            write_private(out, document + "\n", "before-plan-write")
        except OSError as exc:
            raise UsageError(cannot_write("--out", out, exc)) from None  # plan changes nothing
    if as_json:
        typer.echo(document)
    else:
        print_plan(make_console(), plan)
        if out is not None:
            typer.echo(f"Plan written to {out}; apply it with: gdpr-sweep apply {out}")
    if plan.failures:
        raise typer.Exit(ExitCode.PARTIAL)


def demo(
    directory: Annotated[
        Path, typer.Argument(help="Where to put the demo database and config.")
    ] = Path("gdpr-sweep-demo"),
    as_of: AsOfOption = None,
    as_json: JsonPlanOption = False,
) -> None:
    """Make a SQLite demo database and config (if missing) and print their plan.

    The demo is modelled on a Danish recruitment and career-counselling consultancy
    and a management consultancy: every retention rule of their privacy policies, with
    fake people whose rows are due, not yet due, and held by an exception. Re-running
    it is safe: existing files are kept.

    Example:

        gdpr-sweep demo && gdpr-sweep plan -c gdpr-sweep-demo/gdpr-sweep.toml
    """
    from ..demo.build import built_for, write_demo
    from ..demo.config import demo_config

    # The rows are built relative to the as-of day, so the demo's promise (every
    # rule has due and not-due rows) holds at the day its plan is shown for. The
    # as-of is read before anything is written: a bad --as-of changes nothing.
    settings = demo_config(directory)
    when = as_of_instant(settings, as_of)
    config_file, database_file = write_demo(directory, local_date(when, settings.sweep.tz))
    config = load_config(config_file)
    result = build_plan(config, when)
    if not as_json:
        day = local_date(when, config.sweep.tz)
        typer.echo(demo_files(database_file, config_file, built_for(database_file), day))
    emit_plan(result, as_json, None)
    if not as_json:
        typer.echo(demo_next_steps(config_file))


def migrate(config_path: ConfigOption = None) -> None:
    """Create or upgrade the state database to the newest schema (also done on first use).

    Example:

        gdpr-sweep migrate -c /etc/gdpr-sweep/gdpr-sweep.toml
    """
    from ..state.migrate import head_revision

    config = load_config(config_path)
    StateStore(config, None).close()  # opening it migrates it
    typer.echo(f"state database at revision {head_revision()}")


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
    from ..scan import scan_config

    config = load_config(config_path)
    sweep = config.sweep
    result = scan_config(config, database, sweep.personal_column_patterns, sweep.scan_ignore)
    if as_json:
        typer.echo(dumps(result.to_json()))
    else:
        print_scan(make_console(), result)
    if result.failures:
        raise typer.Exit(ExitCode.PARTIAL)
    if strict and result.findings:
        raise typer.Exit(ExitCode.REFUSED)
