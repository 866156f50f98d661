"""What `init` prints, and how `check` lists the TODOs a draft still holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import todo_hint
from .console import markup_escape

if TYPE_CHECKING:
    from rich.console import Console

    from ..draft import Draft


def draft_summary(draft: Draft, out: Path) -> str:
    """Two lines: what was drafted, and what to do next."""
    document = draft.document
    deletes = sum(1 for r in document.rules if r.action == "delete")
    rules = (
        f"{len(document.rules)} rule(s) ({len(document.rules) - deletes} anonymise, "
        f"{deletes} delete)"
    )
    subject = document.subject
    if subject is None:
        who = "no [subject] (no table has an e-mail or identity-number column)"
    else:
        who = (
            f"subject root {subject.root.name} ({len(subject.identifiers)} identifier(s), "
            f"{len(subject.links)} link(s), {len(subject.references)} reference(s), "
            f"{len(subject.parents)} parent(s))"
        )
    return (
        f"Drafted {out} from database {document.database} ({document.engine}, "
        f"{document.tables} tables): {rules}, {who}; {len(draft.todos)} TODO(s) to answer.\n"
        f"Next: answer every TODO in {out}, then run: gdpr-sweep check -c {out}"
    )


def env_note(variable: str) -> str:
    """Where the URL given with --url must go: the draft names the variable only."""
    return (
        f"note: set {variable} to the database URL before running gdpr-sweep; the draft "
        "names it in url_env and never holds the password"
    )


def print_todos(console: Console, keys: list[str]) -> None:
    """`check` on a config with TODOs: one line per key, then what to do."""
    for key in keys:
        console.print(
            f'[red]✗[/] {markup_escape(key)}: still "TODO" — answer it with '
            f"{markup_escape(todo_hint(key))}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"{len(keys)} TODO(s) left: answer them, then run gdpr-sweep check again",
        highlight=False,
    )
