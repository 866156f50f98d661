"""For the slow tests that work as a newcomer would: a fresh copy of the repository, an
environment without our own settings, and commands run as separate processes.

They build virtual environments (pip, pipx, uv) and so take a minute or more each. CI
(`CI=true`) always runs them; locally, `GDPR_SWEEP_SKIP_SLOW=1` skips them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent

skip_slow = pytest.mark.skipif(
    os.environ.get("GDPR_SWEEP_SKIP_SLOW") == "1" and not IN_CI,
    reason="GDPR_SWEEP_SKIP_SLOW=1: the slow install tests (a venv built from nothing) are "
    "skipped locally; CI=true always runs them",
)
#: `pytestmark = SLOW` for a module of slow tests only.
SLOW = [pytest.mark.slow, skip_slow]


def copy_repository(destination: Path) -> Path:
    """The repository's files as a fresh clone has them (tracked, plus new files not
    ignored: a working tree under test), without .venv, caches or the demo."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():  # deleted in the working tree
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return destination


def newcomer_environment(**extra: str) -> dict[str, str]:
    """The environment of someone who has just cloned: none of our variables, no venv."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GDPR_SWEEP_", "PYTEST_", "PIPX_", "UV_", "_GDPR_SWEEP"))
        and name not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "COV_CORE_SOURCE")
        # Under `make test` (CI), a nested `make demo` would see it is a sub-make and
        # print "make[1]: Entering directory": a newcomer's shell has no make of its own.
        and name
        not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR")
    }
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if part != venv_bin
    )
    env.update(extra)
    return env


def check_run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it does not exit 0."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{command} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result
