"""`gdpr-sweep init`: draft a config from a live schema; never overwrite without --force."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .files import cannot_write, check_writable, write_private


def _refuse_existing(out: Path, force: bool) -> None:
    """Before connecting: an existing file is kept unless --force (exit 2, unchanged)."""
    if out.expanduser().is_dir():
        check_writable("--out", out)  # "is a directory", with or without --force
    if out.expanduser().exists() and not force:
        raise UsageError(f"--out: {str(out)!r} exists; pass --force to replace it")
    check_writable("--out", out)


def _write(out: Path, text: str) -> None:
    try:
        write_private(out, text, "before-init-write")
    except OSError as exc:
        raise UsageError(cannot_write("--out", out, exc)) from None


def init(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="The database URL (a password in it is never written).",
            show_default=False,
        ),
    ] = None,
    url_env: Annotated[
        str | None,
        typer.Option(
            "--url-env",
            metavar="VAR",
            help="An environment variable holding the database URL.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="FILE", help="Where to write the draft.")
    ] = Path("gdpr-sweep.toml"),
    schema: Annotated[
        list[str] | None,
        typer.Option(
            "--schema",
            metavar="SCHEMA",
            help="PostgreSQL: draft for this schema (repeatable; default: the default schema).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Draft a config from a live database's schema, for you to answer its TODOs.

    Reflects the database (read-only: from the rows only counts are read,
    never a value) and writes a subject suggestion and a rule stub per table
    with personal-looking columns (clock, action, a strategy per column, data
    categories), each choice explained in a comment. `after` and `basis` are
    "TODO": `check` lists every one left, and no other command runs until
    they are answered. A password in --url is never written: the draft names
    an environment variable instead.

    Example:

        gdpr-sweep init --url-env SHOP_DB_URL --out gdpr-sweep.toml
    """
    from ..draft import draft_config, draft_source
    from ..render.draft import draft_summary, env_note

    _refuse_existing(out, force)
    draft = draft_config(draft_source(url, url_env, out), schema)
    _refuse_existing(out, force)  # made meanwhile: still never overwritten
    _write(out, draft.text)
    typer.echo(draft_summary(draft, out))
    if draft.env_to_set:
        typer.echo(env_note(draft.env_to_set), err=True)
