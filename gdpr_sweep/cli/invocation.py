"""How the user invoked gdpr-sweep, so that printed commands work when pasted.

On a fresh clone only `.venv/bin/gdpr-sweep` exists; a hint saying `gdpr-sweep …`
would fail there. `invoked_as` gives the command as it was run: the bare name when
that name on PATH is this very program, else its path (relative to the working
directory when it lies below it), or `python -m gdpr_sweep`.
"""

from __future__ import annotations

import os
import shutil
import sys

NAME = "gdpr-sweep"


def invoked_as(
    argv0: str | None = None, executable: str | None = None, cwd: str | None = None
) -> list[str]:
    """The words that run this program again, as the user typed them (or an equivalent)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    base = os.path.basename(argv0)
    if base == "__main__.py":  # python -m gdpr_sweep
        return [_as_typed(executable or sys.executable, cwd), "-m", "gdpr_sweep"]
    if base != NAME:  # embedded (a test runner, another program): the documented name
        return [NAME]
    return [_as_typed(argv0, cwd)]


def _as_typed(program: str, cwd: str | None) -> str:
    """`program` by its bare name if PATH finds this same file, else by its path."""
    base = os.path.basename(program)
    if os.sep not in program:
        return program
    found = shutil.which(base)
    try:
        if found is not None and os.path.samefile(found, program):
            return base
    except OSError:
        pass
    here = os.path.abspath(cwd or os.getcwd())
    path = os.path.abspath(os.path.join(here, program))
    if os.path.commonpath([here, path]) != here:
        return path
    relative = os.path.relpath(path, here)
    return relative if os.sep in relative else f".{os.sep}{relative}"
