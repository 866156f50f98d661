"""`python -m gdpr_sweep` with a stopwatch on the phases of a run, for partition_bench.py.

    python bench/run_phases.py PHASES.json run -c sweep.toml --as-of ... --json

Runs the CLI in this process exactly as `python -m gdpr_sweep` would, after wrapping a
few library functions with timers (nothing else changes), and writes to PHASES.json
the seconds, as `time.time()` marks and durations, of:

- `imported`: the mark when the CLI's modules are imported (start-up up to here);
- `evaluate`: each database's evaluation (connect, reflect, count) and within it
  `partition_counts` (choose_partitions: judging and counting the partitions);
- `execute`: each database's execution, and within it `remove_partitions`
  (PartitionRemover.run: the drops), `pin` (pinning the row path's keys),
  `batches` (each rule's batches) and `recount` (the check after the run);
- `run_sweep`: the whole library call (state database, locks, evaluation, execution,
  audit trail), the rest being the CLI's own (config, summary, exit);
- `exit`: the mark when the CLI returns.

The benchmark subtracts these marks from the time it spawned the process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

marks: dict[str, float] = {}
spans: dict[str, float] = defaultdict(float)


def _timed(owner: object, name: str, label: str) -> None:
    function = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spans[label] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def _timed_context(owner: object, name: str, label: str) -> None:
    """A context manager's entry only (pinning happens on entering `pinned_rules`)."""
    function = getattr(owner, name)

    @contextlib.contextmanager
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        with function(*args, **kwargs) as value:
            spans[label] += time.perf_counter() - started
            yield value

    setattr(owner, name, wrapper)


def _write(path: Path) -> None:
    marks["exit"] = time.time()
    path.write_text(json.dumps({"marks": marks, "spans": dict(spans)}, indent=2))


def main() -> None:
    path = Path(sys.argv[1])
    sys.argv = ["gdpr-sweep", *sys.argv[2:]]
    from gdpr_sweep import database_run, evaluation, partition_drop, plan, sweep
    from gdpr_sweep.cli import main as cli_main
    from gdpr_sweep.cli import sweep_run

    marks["imported"] = time.time()
    _timed(sweep_run, "run_sweep", "run_sweep")
    _timed(evaluation, "evaluate_database", "evaluate")
    _timed(plan, "choose_partitions", "partition_counts")
    _timed(sweep, "execute_database", "execute")
    _timed(partition_drop.PartitionRemover, "run", "remove_partitions")
    _timed_context(database_run, "pinned_rules", "pin")
    _timed(database_run, "_execute_rule", "batches")
    _timed(database_run, "_recount", "recount")
    atexit.register(_write, path)
    cli_main()


if __name__ == "__main__":
    main()
