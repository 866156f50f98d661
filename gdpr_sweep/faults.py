"""Failpoints: kill or signal the process at a named point, for fault-injection tests only.

`GDPR_SWEEP_FAILPOINT=NAME` makes the process SIGKILL itself when it reaches `NAME`
(no cleanup, no flush: exactly what a power cut or `kill -9` does);
`GDPR_SWEEP_FAILPOINT=NAME:SIGTERM` (or `:SIGINT`) sends itself that signal there
instead, so a test can deliver a real signal at an exact point and watch the process
stop cleanly; `GDPR_SWEEP_FAILPOINT=NAME:ENOSPC` (any errno name) raises that
`OSError` there, as a disk that fills up or a directory that vanishes would. Unset —
always, in production — a failpoint costs one dictionary lookup. Points:
`after-evaluation` (due rows counted, nothing changed yet), `before-first-batch`,
`after-batch-intent` (intent audited, statement not yet run), `after-target-commit`
(batch committed, outcome not yet audited), `after-batch` (both written),
`during-migration` (inside the state database's migration transaction),
`waiting-for-lock` (each time `--wait-lock` finds the lock held),
`after-partition-detach` (a wholly due partition detached and committed, its table not
yet dropped: `partition_drop.py`); and where an output
file is written, after its path passed the checks made before anything changed:
`before-metrics-write` (`run --metrics-file`), `before-receipt-write` (`erase
--receipt`, after the erasure committed), `before-export-write` (`export --out`, the
rows read, the file not yet in place), `before-plan-write` (`plan --out`).
"""

from __future__ import annotations

import errno
import os
import signal

VARIABLE = "GDPR_SWEEP_FAILPOINT"


def failpoint(name: str) -> None:
    """Die, signal ourselves or fail an I/O call here, at once, if the environment names it."""
    setting = os.environ.get(VARIABLE)
    if setting is None:
        return
    point, _, action = setting.partition(":")
    if point != name:
        return
    code = getattr(errno, action, None) if action.startswith("E") else None
    if isinstance(code, int):
        raise OSError(code, os.strerror(code))
    signum = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}.get(action, signal.SIGKILL)
    os.kill(os.getpid(), signum)
