"""pt-archiver (Percona Toolkit) as a MariaDB baseline for the delete rule.

    pt-archiver --source h=...,P=...,u=...,A=utf8mb4,D=...,t=candidate \
        --where "course_ended_at < '2024-07-01 00:00:00'" --purge --limit 5000 \
        --commit-each [--bulk-delete] --statistics

It has no anonymise mode, so it is measured for delete only. It needs Perl's DBD::mysql
(Debian `libdbd-mysql-perl`, a dependency of `percona-toolkit`); `missing()` says why
it cannot run, and the benchmark then skips it with that line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

INSTALL_HINT = "apt-get install -y percona-toolkit"
_DELETED = re.compile(r"^DELETE (\d+)$", re.MULTILINE)


def missing() -> str | None:
    """Return why pt-archiver cannot run here, or None when it can."""
    if shutil.which("pt-archiver") is None:
        return f"pt-archiver not found (install it with `{INSTALL_HINT}`)"
    for module in ("DBD::mysql", "DBD::MariaDB"):
        probe = subprocess.run(["perl", f"-M{module}", "-e1"], capture_output=True, check=False)
        if probe.returncode == 0:
            return None
    return f"pt-archiver needs Perl's DBD::mysql (Debian libdbd-mysql-perl; or `{INSTALL_HINT}`)"


def version() -> str | None:
    """pt-archiver's version line, or None when it is not installed."""
    if shutil.which("pt-archiver") is None:
        return None
    found = subprocess.run(["pt-archiver", "--version"], capture_output=True, text=True)
    return found.stdout.strip() or "pt-archiver"


def dsn(params: dict[str, Any], table: str = "candidate") -> str:
    """The --source DSN for the benchmark database (TCP, utf8mb4 like the table)."""
    parts = [f"h={params['host']}", f"P={params['port']}", f"u={params['user']}"]
    if params.get("password"):
        parts.append(f"p={params['password']}")
    parts += ["A=utf8mb4", f"D={params['database']}", f"t={table}"]
    return ",".join(parts)


def argv(params: dict[str, Any], cutoff: str, limit: int, bulk: bool) -> list[str]:
    """The command line: `--purge` of the due rows, `limit` per commit, as the issue gives it."""
    command = ["pt-archiver", "--source", dsn(params)]
    command += ["--where", f"course_ended_at < '{cutoff} 00:00:00'"]
    command += ["--purge", "--limit", str(int(limit)), "--commit-each", "--statistics"]
    return [*command, "--bulk-delete"] if bulk else command


def deleted(stdout: str) -> int | None:
    """The rows it reports deleted (`--statistics`: a line `DELETE n`)."""
    found = _DELETED.search(stdout)
    return int(found.group(1)) if found else None
