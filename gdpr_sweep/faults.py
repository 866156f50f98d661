"""Failpoints: kill the process at a named point, for fault-injection tests only.

`GDPR_SWEEP_FAILPOINT=NAME` makes the process SIGKILL itself when it reaches `NAME`
(no cleanup, no flush: exactly what a power cut or `kill -9` does). Unset — always, in
production — a failpoint costs one dictionary lookup. Points: `before-first-batch`,
`after-batch-intent` (intent audited, statement not yet run), `after-target-commit`
(batch committed, outcome not yet audited), `after-batch` (both written),
`during-migration` (inside the state database's migration transaction).
"""

from __future__ import annotations

import os
import signal

VARIABLE = "GDPR_SWEEP_FAILPOINT"


def failpoint(name: str) -> None:
    """Die here, at once, if the environment names this point."""
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
