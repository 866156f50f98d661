"""The CLI's one error handler: each error becomes one line on stderr and its exit code.

`Commands` is the Typer app every command group is made of: each of its commands gets
`--debug` (as its last option) and runs inside `errors_to_exit_codes`, registered here
once rather than in every command. `json_errors` keeps a failed `--json` run's output
one JSON document. `--debug` shows the traceback of internal errors. (The root group,
which reduces Click's usage errors to one line, is in `root`.)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
import typer

from ..errors import ExitCode, GdprSweepError, Stopped
from ..formats import format_name
from ..logs import report_fatal
from ..render.console import dumps
from .metavars import WordsCommand
from .options import DebugOption
from .root import is_click_error

CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


class Commands(typer.Typer):
    """A Typer app whose every command takes `--debug` and reports errors in one place."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[CommandFunction], CommandFunction]:
        kwargs.setdefault("cls", WordsCommand)
        register = super().command(*args, **kwargs)

        def decorator(function: CommandFunction) -> CommandFunction:
            register(_handling_errors(function))
            return function

        return decorator


def _handling_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command` with a last parameter `debug: DebugOption = False`, run in the handler.

    Typer reads the options from the signature, so `--debug` is parsed, shown in
    `--help` and placed exactly as when each command declared it itself.
    """

    @functools.wraps(command)
    def handled(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        with errors_to_exit_codes(debug):
            return command(*args, **kwargs)

    signature = inspect.signature(command, eval_str=True)
    debug = inspect.Parameter(
        "debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOption
    )
    handled.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), debug]
    )
    handled.__annotations__ = {**command.__annotations__, "debug": DebugOption}
    return handled


@contextlib.contextmanager
def errors_to_exit_codes(debug: bool) -> Iterator[None]:
    """Turn our errors into `error: ...` and their exit code; anything else is exit 1."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except GdprSweepError as exc:
        fatal(str(exc), exc.exit_code)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        fatal("interrupted", 130)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except Exception as exc:
        if is_click_error(exc):
            raise
        if debug:
            traceback.print_exc()
        # A driver's message can quote a row's values (e.g. a duplicate key): print
        # only the exception's class, never its text.
        kind = type(getattr(exc, "orig", None) or exc).__name__
        if isinstance(exc, sa.exc.SQLAlchemyError) and not isinstance(exc, sa.exc.DBAPIError):
            kind = type(exc).__name__
        fatal(f"internal error ({kind}); rerun with --debug for the traceback", 1)
        raise typer.Exit(ExitCode.INTERNAL) from None


def fatal(message: str, exit_code: int) -> None:
    """One line on stderr: `error: ...`, or a JSON log record with --log-format json."""
    if not report_fatal(message, exit_code):
        typer.echo(f"error: {message}", err=True)


def status_of(exc: GdprSweepError) -> str:
    """The run status an error stands for (metrics, JSON)."""
    if isinstance(exc, Stopped):
        return "stopped"
    return ExitCode(exc.exit_code).status


@contextlib.contextmanager
def json_errors(
    as_json: bool, kind: str, document: Callable[[str, int], dict[str, Any]] | None = None
) -> Iterator[None]:
    """With --json, a refused, locked or failed run still prints one JSON document.

    `document(error, exit_code)` makes it for a command whose JSON is not a run's
    (`check`); `kind` names the document's format (`run`, for `run` and `apply`). The
    one line on stderr and the exit code follow as without --json.
    """
    try:
        yield
    except GdprSweepError as exc:
        if as_json and document is not None:
            typer.echo(dumps(document(str(exc), exc.exit_code)))
        elif as_json:
            typer.echo(
                dumps(
                    {
                        "format": format_name(kind),
                        "run_id": None,
                        "status": status_of(exc),
                        "exit_code": exc.exit_code,
                        "error": str(exc),
                        "items": [],
                    }
                )
            )
        raise
