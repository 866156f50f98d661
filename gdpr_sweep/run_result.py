"""What a sweep reports: one `RunItem` per database and rule, in a `RunResult`.

`RunResult` is the summary `run --json` prints and the audit trail's run record holds;
its status gives the exit code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .approval import Approval
from .errors import ExitCode

if TYPE_CHECKING:
    from .engines import DatabaseFailure


@dataclass
class RunItem:
    database: str
    rule: str
    table: str
    action: str
    cutoff: str
    due: int
    held: int
    done: int = 0
    batches: int = 0
    longest_batch_seconds: float = 0.0
    seconds: float = 0.0  # time spent executing the rule's batches, audit appends included
    left: int = 0  # still due when the run ended (the recount after the run)
    # Partitions removed whole (partition_drop.py): how many, their rows (part of
    # `done`) and the time it took (not part of `seconds`, the batches' time).
    partitions_removed: int = 0
    partition_rows: int = 0
    partition_seconds: float = 0.0


@dataclass
class RunResult:
    """The summary SPEC's `run --json` prints."""

    run_id: int | None
    as_of: dt.datetime
    config_digest: str
    status: str  # completed | incomplete | stopped | partial | refused
    items: list[RunItem] = field(default_factory=list)
    failures: list[DatabaseFailure] = field(default_factory=list)
    interrupted_runs: list[int] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)  # tenants another process was sweeping
    head: str | None = None  # the audit chain's head after the run (keep it elsewhere)
    approval: Approval = field(default_factory=Approval)
    # `apply`: the reviewed plan's digest and the run that planned it (review_trail.py)
    review: dict[str, Any] = field(default_factory=dict)
    # `analyze = true`: per database analyzed after the run, its tables and seconds
    analyze: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        # `stopped` (a signal): work remains, the next run continues (SPEC: exit 3; the
        # CLI makes SIGINT's 130).
        codes = {
            "completed": ExitCode.OK,
            "incomplete": ExitCode.OK,
            "partial": ExitCode.PARTIAL,
            "stopped": ExitCode.PARTIAL,
            "refused": ExitCode.REFUSED,
        }
        return codes.get(self.status, ExitCode.INTERNAL)

    @property
    def rows_left(self) -> int:
        return sum(item.left for item in self.items)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "config_digest": self.config_digest,
            "status": self.status,
            "items": [vars(item) for item in self.items],
            "failures": self.failures,
            "interrupted_runs": self.interrupted_runs,
            "locked": self.locked,
            "rows_left": self.rows_left,
            "head": self.head,
            "analyze": self.analyze,
            **self.approval.details(),
            **self.review,
        }
