"""The root command group: commands loaded when they are called, usage errors in one line.

`gdpr-sweep --version` or `gdpr-sweep plan` should not pay for every command's
imports (SQLAlchemy alone is most of a second on a small machine). `OneLineErrors`
is the Click group of the app and of its command groups; `LazyCommands` is the root's:
it knows each command's module and imports it only when the command is looked up
(to run it, to show its help, or for the root's `--help` and shell completion, which
list them all).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

import typer
from typer.core import TyperGroup

from .metavars import WordsOnly


def is_click_error(exc: BaseException) -> bool:
    """Click's usage errors (Typer vendors Click in recent versions, so match by shape)."""
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


def quiet_library_warnings() -> None:
    """Library warnings (e.g. SQLAlchemy on an odd URL argument) would add lines to an
    output whose errors are one line each; --debug shows tracebacks instead."""
    sqlalchemy = sys.modules.get("sqlalchemy")
    if sqlalchemy is not None:
        warnings.filterwarnings("ignore", category=sqlalchemy.exc.SAWarning)


class OneLineErrors(WordsOnly, TyperGroup):
    """Report Click's usage errors as one line and exit 2, like our own errors (and name
    option values in words in help: `metavars`)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        quiet_library_warnings()
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            result = 1
        except Exception as exc:
            if not is_click_error(exc):
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


# name -> (module in gdpr_sweep.cli, attribute): a command function or a Typer group.
# The order is the order `--help` lists them in.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("sweep", "check"),
    "plan": ("sweep", "plan"),
    "demo": ("sweep", "demo"),
    "run": ("sweep_run", "run"),
    "apply": ("sweep_run", "apply"),
    "migrate": ("sweep", "migrate"),
    "erase": ("subject", "erase"),
    "export": ("subject", "export"),
    "scan": ("sweep", "scan"),
    "report": ("report", "report"),
    "replay": ("subject", "replay_command"),
    "init": ("init", "init"),
    "hold": ("hold", "hold_app"),
    "audit": ("audit", "audit_app"),
}


class LazyCommands(OneLineErrors):
    """The root group: a command's module is imported when the command is looked up."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = load_command(cmd_name)
            self.add_command(command, cmd_name)
            quiet_library_warnings()
        return command


def load_command(name: str) -> Any:
    """The Click command (or group) `name`, built from its module."""
    module_name, attribute = COMMANDS[name]
    module = importlib.import_module(f"{__package__}.{module_name}")
    target = getattr(module, attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    from .errors import Commands  # the handler every command runs in

    single = Commands(add_completion=False)
    single.command(name)(target)
    return typer.main.get_command(single)


def subcommands(group: Any) -> dict[str, Any]:
    """A group's commands by name, in `--help` order, loading the lazy ones (the CLI
    reference and the tests walk the whole tree)."""
    return {name: group.get_command(None, name) for name in group.list_commands(None)}
