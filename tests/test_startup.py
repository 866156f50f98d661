"""Start-up: a command imports only what it needs (issue 22: `--version` <= 0.2 s).

The root group loads a command's module when the command is looked up, so
`gdpr-sweep --version` needs neither SQLAlchemy (most of a second on a small machine)
nor any driver, and `run` does not load erasure, reports, scans or Alembic. Checked
on the modules a real entry-point process has loaded, not on a time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
sys.argv = ["gdpr-sweep", *sys.argv[1:]]
from gdpr_sweep.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""

HEAVY = {"sqlalchemy", "alembic", "psycopg", "pymysql", "rich"}


def loaded(*args: str) -> set[str]:
    """The modules a `gdpr-sweep ARGS` process has imported when it exits."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_version_imports_no_database_library():
    modules = loaded("--version")
    assert not tops(modules) & HEAVY
    assert not {m for m in modules if m.startswith("gdpr_sweep.cli.") and m.endswith("sweep")}


@pytest.mark.parametrize(
    ("command", "not_loaded"),
    [
        ("run", {"gdpr_sweep.report", "gdpr_sweep.scan", "gdpr_sweep.cli.subject", "alembic"}),
        ("plan", {"gdpr_sweep.report", "gdpr_sweep.cli.subject", "gdpr_sweep.cli.audit"}),
        ("audit", {"gdpr_sweep.report", "gdpr_sweep.cli.sweep_run", "gdpr_sweep.cli.subject"}),
    ],
)
def test_a_command_loads_only_its_own_module(command, not_loaded):
    modules = loaded(command, "--help")
    assert not (modules | tops(modules)) & not_loaded


def test_root_help_still_lists_every_command():
    done = subprocess.run(
        [sys.executable, "-m", "gdpr_sweep", "--help"], capture_output=True, text=True, check=True
    )
    for name in ("check", "plan", "demo", "run", "apply", "erase", "report", "hold", "audit"):
        assert f" {name} " in done.stdout
