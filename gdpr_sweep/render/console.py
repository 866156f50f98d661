"""The terminal: a console for stdout, Rich markup escaping, progress bars, JSON text."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Rich is imported when something is drawn: `run --quiet` never is
    from rich.console import Console


def markup_escape(text: str) -> str:
    """`text` as Rich prints it literally: `[[subject.references]]` is not markup."""
    from rich.markup import escape

    return escape(text)


def make_console() -> Console:
    """A console for stdout; when piped (cron mail, a file), wide enough not to wrap —
    unless `COLUMNS` says how wide (as Rich reads it on a terminal too)."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        console = Console(width=200)
    return console


class RichProgress:
    """A progress bar per rule, on a terminal (implements execute.Progress)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def rule_started(self, database: str, rule: str, due: int) -> object:
        return self.bars.add_task(f"{database} · {rule}", total=due)

    def advanced(self, token: object, rows: int) -> None:
        self.bars.advance(token, rows)  # type: ignore[arg-type]

    def rule_finished(self, token: object) -> None:
        pass


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)
