"""Prometheus text-format metrics of a run, for node-exporter's textfile collector.

Written atomically (a temporary file renamed into place), so the collector never reads
half a file. Labels are database names, rule ids, tables and actions — no values.
Sample values are exact: counts as integers, times as the shortest decimal that reads
back as the same float (`repr`), never rounded to a few significant digits.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Collection
from pathlib import Path

from .run_result import RunResult


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items())
    return "{" + inner + "}" if inner else ""


def _value(value: float) -> str:
    """Format a sample value exactly, in Prometheus text format's spelling."""
    if isinstance(value, int):  # bool included: 1 or 0
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render_metrics(
    result: RunResult | None,
    status: str,
    duration: float,
    last_success: float | None,
    databases: list[str],
    now: float | None = None,
    locked: Collection[str] | None = None,
) -> str:
    """Return the metrics of one run (result None: refused or failed before running).

    `locked`: the databases another sweep held, so this one left them alone; by default
    all of them when the run was locked out (exit 4), none otherwise.
    """
    now = time.time() if now is None else now
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {_value(value)}" for labels, value in samples)

    metric(
        "gdpr_sweep_last_run_timestamp_seconds",
        "gauge",
        "When the last sweep ended (Unix time).",
        [("", now)],
    )
    if last_success is not None:
        metric(
            "gdpr_sweep_last_success_timestamp_seconds",
            "gauge",
            "When the last sweep that completed without failures ended (Unix time).",
            [("", last_success)],
        )
    metric(
        "gdpr_sweep_last_run_success",
        "gauge",
        "1 if the last sweep completed without failures, else 0.",
        [("", 1 if status == "completed" else 0)],
    )
    metric(
        "gdpr_sweep_run_duration_seconds",
        "gauge",
        "Wall-clock duration of the last sweep.",
        [("", duration)],
    )
    failed = {f["database"] for f in (result.failures if result else [])}
    metric(
        "gdpr_sweep_database_failed",
        "gauge",
        "1 if the database failed in the last sweep, else 0.",
        [(_labels(database=db), 1 if db in failed else 0) for db in databases],
    )
    held_elsewhere = set(databases if status == "locked" else ()) if locked is None else set(locked)
    metric(
        "gdpr_sweep_database_locked",
        "gauge",
        "1 if another sweep held the database's lock, so the last sweep left it alone, else 0.",
        [(_labels(database=db), 1 if db in held_elsewhere else 0) for db in databases],
    )
    metric(
        "gdpr_sweep_incomplete",
        "gauge",
        "1 if the last sweep stopped at --max-runtime with rows left, else 0.",
        [("", 1 if status == "incomplete" else 0)],
    )
    metric(
        "gdpr_sweep_stopped",
        "gauge",
        "1 if the last sweep was stopped by a signal (SIGTERM, Ctrl-C) with work left, else 0.",
        [("", 1 if status == "stopped" else 0)],
    )
    metric(
        "gdpr_sweep_failures",
        "gauge",
        "Databases that failed in the last sweep.",
        [("", len(failed))],
    )
    items = result.items if result else []
    for name, help_text, attribute in (
        ("gdpr_sweep_rows_done", "Rows deleted or anonymised by the last sweep.", "done"),
        ("gdpr_sweep_rows_due", "Rows due at the last sweep's as-of.", "due"),
        ("gdpr_sweep_rows_held", "Rows kept by an exception or a hold.", "held"),
        ("gdpr_sweep_rows_left", "Rows still due when the last sweep ended.", "left"),
        (
            "gdpr_sweep_longest_batch_seconds",
            "Longest single batch (lock-hold time).",
            "longest_batch_seconds",
        ),
    ):
        metric(
            name,
            "gauge",
            help_text,
            [
                (
                    _labels(database=i.database, rule=i.rule, table=i.table, action=i.action),
                    getattr(i, attribute),
                )
                for i in items
            ],
        )
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, text: str) -> None:
    """Write atomically: the collector sees the old file or the new one, never half."""
    path = path.expanduser()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
