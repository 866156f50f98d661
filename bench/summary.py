"""The benchmark's one table (engine x operation x N) and issue 22's goals with PASS/FAIL.

Input: the measurements bench.py took (its `Measurement` rows: engine, rows_total,
group, operation, kind, samples). One row per engine, operation (delete, anonymise)
and N: gdpr-sweep run, the hand-written loop (b), pt-archiver with and without
`--bulk-delete` (MariaDB, delete), one unbatched statement (c), the ratios to (b)
and to pt-archiver's best, gdpr-sweep's peak RSS and longest batch, and start-up
(`gdpr-sweep --version`). bench/README.md explains the columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The goals of issue 22.
RUN_RATIO_1M = 1.1  # run <= 1.1x the loop (b) below 10,000,000 rows
RUN_RATIO_10M = 1.0  # run <= 1.0x the loop (b) at 10,000,000 rows and more
LARGE_ROWS = 10_000_000
MAX_RSS_MB = 150.0
RSS_FLAT_RATIO = 1.1  # peak RSS at the largest N over that at the smallest (>= 1M)
MAX_BATCH_SECONDS = 1.0
MAX_STARTUP_SECONDS = 0.2

ACTIONS = ("delete", "anonymise")
# kinds of Measurement bench.py uses for the rows of this table
TOOL, LOOP, ONE, PT, PT_BULK, STARTUP, NOOP = (
    "tool",
    "baseline",
    "one",
    "pt-archiver",
    "pt-archiver-bulk",
    "startup",
    "noop",
)


def run_ratio_limit(rows: int) -> float:
    return RUN_RATIO_10M if rows >= LARGE_ROWS else RUN_RATIO_1M


@dataclass
class Goal:
    engine: str
    rows: int | None  # None: not tied to one N
    goal: str
    value: float | None
    limit: float
    unit: str
    note: str = ""  # how to read it: net of start-up, batches alone, runs

    @property
    def passed(self) -> bool:
        return self.value is not None and self.value <= self.limit


class Index:
    """The measurements by (engine, N, group, kind)."""

    def __init__(self, measurements: list[Any]) -> None:
        self.by: dict[tuple[str, int, str, str], Any] = {}
        for m in measurements:
            self.by.setdefault((m.engine, m.rows_total, m.group, m.kind), m)
        self.startup = next((m for m in measurements if m.kind == STARTUP), None)
        self.cells = sorted(
            {(m.engine, m.rows_total) for m in measurements if m.group in ACTIONS},
            key=lambda c: (_ENGINE_ORDER.get(c[0], 9), c[1]),
        )

    def get(self, engine: str, rows: int, group: str, kind: str) -> Any:
        return self.by.get((engine, rows, group, kind))

    def pt_best(self, engine: str, rows: int) -> Any:
        found = [self.get(engine, rows, "delete", k) for k in (PT, PT_BULK)]
        found = [m for m in found if m is not None]
        return min(found, key=lambda m: m.seconds) if found else None

    def runs(self, engine: str, rows: int) -> int:
        tool = self.get(engine, rows, "delete", TOOL) or self.get(engine, rows, "anonymise", TOOL)
        return len(tool.samples) if tool else 0


_ENGINE_ORDER = {"sqlite": 0, "postgresql": 1, "mariadb": 2}


def _s(m: Any) -> str:
    return "-" if m is None else f"{m.seconds:.2f}"


def _ratio(a: Any, b: Any) -> float | None:
    return a.seconds / b.seconds if a is not None and b is not None and b.seconds else None


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None else f"{value:{spec}}"


HEADER = (
    "engine",
    "operation",
    "N",
    "runs",
    "gdpr-sweep s",
    "loop (b) s",
    "pt-archiver s",
    "pt --bulk-delete s",
    "one stmt (c) s",
    "x(b)",
    "x(pt best)",
    "peak RSS MB",
    "longest batch s",
    "start-up s",
)


def render_table(measurements: list[Any]) -> str:
    index = Index(measurements)
    startup = index.startup.seconds if index.startup else None
    lines = []
    for engine, rows in index.cells:
        for action in ACTIONS:
            tool = index.get(engine, rows, action, TOOL)
            loop = index.get(engine, rows, action, LOOP)
            if tool is None and loop is None:
                continue
            pt = index.get(engine, rows, action, PT)
            bulk = index.get(engine, rows, action, PT_BULK)
            pt_row = engine == "mariadb" and action == "delete"
            na = "skipped" if pt_row else "n/a"
            lines.append(
                (
                    engine,
                    action,
                    f"{rows:,}",
                    str(len(tool.samples) if tool else 0),
                    _s(tool),
                    _s(loop),
                    _s(pt) if pt else na,
                    _s(bulk) if bulk else na,
                    _s(index.get(engine, rows, action, ONE)),
                    _f(_ratio(tool, loop), ".2f"),
                    _f(_ratio(tool, index.pt_best(engine, rows)) if pt_row else None, ".2f"),
                    _f(tool.peak_rss_mb if tool else None, ".0f"),
                    _f(tool.longest_batch if tool else None, ".3f"),
                    _f(startup, ".3f"),
                )
            )
    widths = [max(len(r[i]) for r in [HEADER, *lines]) for i in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(HEADER), line(tuple("-" * w for w in widths))]
    out += [line(cells) for cells in lines]
    return "\n".join(out)


def _run_goal(index: Index, engine: str, rows: int, action: str) -> Goal:
    limit = run_ratio_limit(rows)
    tool, loop = index.get(engine, rows, action, TOOL), index.get(engine, rows, action, LOOP)
    goal = f"{action}: run <= {limit:g}x loop (b)"
    ratio = _ratio(tool, loop)
    if ratio is None:
        return Goal(engine, rows, goal, None, limit, "x")
    notes = []
    noop = index.get(engine, rows, "start-up", NOOP)
    if index.startup and noop and loop.seconds > noop.seconds:
        net = (tool.seconds - index.startup.seconds) / (loop.seconds - noop.seconds)
        notes.append(f"net of start-up {net:.2f}x")
    batches, work = tool.median("loop"), loop.median("work")
    if batches and work:
        notes.append(f"batches alone {batches / work:.2f}x")
    return Goal(engine, rows, goal, ratio, limit, "x", "; ".join(notes))


def goals(measurements: list[Any]) -> list[Goal]:
    """Issue 22's goals, per engine and N (and start-up once)."""
    index = Index(measurements)
    result: list[Goal] = []
    rss_by_engine: dict[str, list[tuple[int, float]]] = {}
    for engine, rows in index.cells:
        for action in ACTIONS:
            result.append(_run_goal(index, engine, rows, action))
        if engine == "mariadb":
            tool, best = index.get(engine, rows, "delete", TOOL), index.pt_best(engine, rows)
            value = _ratio(tool, best)
            what = "best" if best is not None else "best (not run)"
            goal = f"delete: run <= 1x pt-archiver's {what}"
            result.append(Goal(engine, rows, goal, value, 1.0, "x"))
        ours = [index.get(engine, rows, a, TOOL) for a in ACTIONS]
        ours = [m for m in ours if m is not None]
        rss = max((m.peak_rss_mb for m in ours), default=None)
        result.append(Goal(engine, rows, f"peak RSS <= {MAX_RSS_MB:g} MB", rss, MAX_RSS_MB, " MB"))
        if rss is not None and rows >= 1_000_000:
            rss_by_engine.setdefault(engine, []).append((rows, rss))
        batch = max((m.longest_batch for m in ours if m.longest_batch is not None), default=None)
        result.append(
            Goal(
                engine,
                rows,
                f"longest batch <= {MAX_BATCH_SECONDS:g} s",
                batch,
                MAX_BATCH_SECONDS,
                " s",
            )
        )
    for engine, sizes in rss_by_engine.items():
        if len(sizes) > 1:
            (small, small_rss), (large, large_rss) = min(sizes), max(sizes)
            result.append(
                Goal(
                    engine,
                    None,
                    f"peak RSS flat: {large:,} rows <= {RSS_FLAT_RATIO:g}x {small:,} rows",
                    large_rss / small_rss,
                    RSS_FLAT_RATIO,
                    "x",
                    f"{small_rss:.0f} MB -> {large_rss:.0f} MB",
                )
            )
    if index.startup is not None:
        result.append(
            Goal(
                "-",
                None,
                f"start-up (gdpr-sweep --version) <= {MAX_STARTUP_SECONDS:g} s",
                index.startup.seconds,
                MAX_STARTUP_SECONDS,
                " s",
            )
        )
    return result


def render_goals(result: list[Goal]) -> str:
    width = max(len(g.goal) for g in result)
    rows = []
    for goal in result:
        status = "PASS" if goal.passed else ("n/a " if goal.value is None else "FAIL")
        spec = ".3f" if goal.unit == " s" else ".2f" if goal.unit == "x" else ".0f"
        value = _f(goal.value, spec) + (goal.unit if goal.value is not None else "")
        size = f"{goal.rows:,}" if goal.rows else "-"
        note = f"   ({goal.note})" if goal.note else ""
        rows.append(
            f"  {status}  {goal.engine:<10}  {size:>10}  {goal.goal:<{width}}  {value:>8}{note}"
        )
    return "\n".join(rows)
