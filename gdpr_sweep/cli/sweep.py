"""The commands that look before anything is swept: check, plan, demo, scan, migrate.

None of them changes a target database (`migrate` creates or upgrades the state
database only). Modules only some commands need (the demo, the scan, migrations) are
imported by those commands: the nightly `run --quiet` starts without them.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from ..checks.check_config import check_config
from ..config import Config, TodoError, load_config
from ..errors import ExitCode, StateUnavailable, UsageError
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
from ..review_trail import plan_digest, plan_document, planned_summary
from ..shards import parse_shard
from ..state.store import StateStore
from .completion import complete_rules
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
        typer.Option(
            "--rule",
            "-r",
            metavar="RULE",
            help="Only this rule id (repeatable).",
            show_default=False,
            autocompletion=complete_rules,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Also write the plan as JSON to this file, for review and `apply`.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonPlanOption = False,
    sql: Annotated[
        bool,
        typer.Option(
            "--sql",
            help="Print, per rule, the statements apply will execute, compiled for each "
            "database (placeholders for bound values, never a key); change nothing.",
        ),
    ] = False,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="text|md|csv",
            help="text (a table fitted to the terminal), md (a table per database) or csv "
            "(a row per rule and database), for a sign-off document. Not with --json.",
        ),
    ] = "text",
    shard: ShardOption = None,
) -> None:
    """Show what is due: per database and rule, the cutoff, rows due and rows held.

    The dry run changes nothing in any database. Counts use the very predicate that
    `run` and `apply` act on. `--out` also records the plan (its digest, the counts) in
    the audit trail, for `apply --approved-by`. `--json`, `--format md|csv` and `--sql`
    are different outputs: give one (exit 2 otherwise).

    Example:

        gdpr-sweep plan --as-of 2026-12-01 --out plan-2026-12-01.json
        gdpr-sweep plan --format md > sign-off.md; gdpr-sweep plan --sql --rule cv-delete
    """
    chosen = _one_output(as_json, sql, output_format, out)
    shard_of = parse_shard(shard)
    config = load_config(config_path)
    when = as_of_instant(config, as_of)
    if sql:
        from ..plan_sql import build_sql_plan
        from ..render.plan_sql import sql_text

        shown = build_sql_plan(config, when, database, rule, shard_of)
        typer.echo(sql_text(shown), nl=False)
        for failure in shown.failures:
            typer.echo(f"error: {failure['error']}", err=True)
        raise typer.Exit(ExitCode.PARTIAL if shown.failures else ExitCode.OK)
    # A plan file carries keyed digests of the due keys, so apply can prove the
    # due set is unchanged; they need the hash key.
    hmac_key = hash_key(config) if out is not None else None
    result = build_plan(config, when, database, rule, hmac_key=hmac_key, shard=shard_of)
    emit_plan(
        result,
        as_json,
        out,
        config=config,
        hmac_key=hmac_key,
        output_format=chosen,
        config_path=config_path,
    )


PLAN_FORMATS = ("text", "md", "csv")


def _one_output(as_json: bool, sql: bool, output_format: str, out: Path | None) -> str:
    """The plan's one output, or exit 2 naming the options that cannot go together."""
    if output_format not in PLAN_FORMATS:
        raise UsageError(f"--format: one of {', '.join(PLAN_FORMATS)}, not {output_format!r}")
    if as_json and output_format != "text":
        raise UsageError("--format: cannot be combined with --json (give one of them)")
    if sql and (as_json or output_format != "text" or out is not None):
        given = "--json" if as_json else "--out" if out is not None else "--format"
        raise UsageError(f"--sql: cannot be combined with {given} (it prints SQL only)")
    return output_format


def emit_plan(
    plan: Plan,
    as_json: bool,
    out: Path | None,
    *,
    config: Config | None = None,
    hmac_key: bytes | None = None,
    output_format: str = "text",
    config_path: Path | None = None,
) -> None:
    """Write the plan file (if asked) and record it in the audit trail; print the plan;
    exit 3 if a database failed."""
    document = plan_document(plan)
    if out is not None:
        assert config is not None and hmac_key is not None
        check_writable("--out", out)
        digest = plan_digest(document)
        written: list[Path] = []

        def write(run_id: int) -> None:
            text = dumps({**document, "plan_digest": digest, "plan_run": run_id})
            try:
                write_private(out, text + "\n", "before-plan-write")
            except OSError as exc:  # the record is rolled back: plan changes nothing
                raise UsageError(cannot_write("--out", out, exc)) from None
            written.append(out)

        # The record is committed once the file is written: a plan file always has its
        # `planned` run, and a file that cannot be written leaves no record.
        with StateStore(config, hmac_key) as store:
            try:
                planned = store.record_plan(
                    plan.as_of, digest, planned_summary(plan, digest), write=write
                )
            except StateUnavailable:
                for path in written:  # written, but its record was not committed
                    path.unlink(missing_ok=True)
                raise
    if as_json:
        typer.echo(dumps(document))
    elif output_format != "text":
        from ..render.plan_view import plan_csv, plan_markdown

        typer.echo(plan_markdown(plan) if output_format == "md" else plan_csv(plan), nl=False)
        for failure in plan.failures:
            typer.echo(f"error: {failure['error']}", err=True)
        if out is not None:  # stdout is the document: the note goes to stderr
            typer.echo(f"Plan written to {out} (plan {digest[:19]}…, run {planned})", err=True)
    else:
        print_plan(make_console(), plan)
        if out is not None:
            typer.echo(
                f"Plan written to {out} (plan {digest[:19]}…, recorded as run {planned}); "
                f"apply it with: {apply_command(out, config_path)}"
            )
            typer.echo("(add --approved-by NAME --ticket REF to record who approved it)")
    if plan.failures:
        raise typer.Exit(ExitCode.PARTIAL)


def apply_command(plan_file: Path, config_path: Path | None) -> str:
    """`apply` of this plan file, as the user would paste it (same program, same -c)."""
    from .invocation import invoked_as

    words = [*invoked_as(), "apply"]
    if config_path is not None:
        words += ["-c", str(config_path)]
    return shlex.join([*words, str(plan_file)])


def demo(
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIRECTORY", help="Where to put the demo database and config."),
    ] = Path("gdpr-sweep-demo"),
    as_of: AsOfOption = None,
    as_json: JsonPlanOption = False,
) -> None:
    """Make a SQLite demo database and config (if missing) and print their plan.

    The demo is modelled on a Danish recruitment and career-counselling consultancy
    and a management consultancy: every retention rule of their privacy policies, with
    fake people whose rows are due, not yet due, and held by an exception. It also
    writes a demo-only hash key (DIRECTORY/demo.key, owner-only) and ends with a tour:
    lines to paste that plan, sweep, verify, export and erase a demo person.
    Re-running it is safe: existing files are kept.

    Example:

        gdpr-sweep demo && gdpr-sweep plan -c gdpr-sweep-demo/gdpr-sweep.toml
    """
    from ..demo.build import KEY_NAME, built_for, write_demo
    from ..demo.config import demo_config
    from ..demo.tour import TOUR_PERSON, tour_lines
    from .invocation import invoked_as

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
        key_file = directory / KEY_NAME
        typer.echo(demo_files(database_file, config_file, key_file, built_for(database_file), day))
    emit_plan(result, as_json, None)
    if not as_json:
        lines = tour_lines(invoked_as(), config_file, key_file, config.sweep.hash_key_env)
        typer.echo(demo_next_steps(lines, TOUR_PERSON))


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
