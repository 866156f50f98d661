"""Help that names what an option takes in words (RULE, DATE, FILE), never a Python type.

Every option that takes a value declares its `metavar` (a test checks). A flag takes
no value, so its type column stays empty: Typer would print `<bool>`, for its own
--help and --install-completion too. An argument is named by its metavar (PLAN, RUN)
and Typer would add its Python type (`<path>`, `<int>`) beside it. `WordsOnly` makes
both so, for a command or group, in every help it renders.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand


def _no_type(ctx: Any) -> None:
    return None


class WordsOnly:
    """Mixin for a Click command or group: flags and arguments show no Python type."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
            elif isinstance(param, TyperArgument) and param.metavar is not None:
                param.display_type_rich = _no_type  # type: ignore[method-assign]
        return params


class WordsCommand(WordsOnly, TyperCommand):
    """A command whose help names its options' values in words."""
