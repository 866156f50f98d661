"""Benchmark gdpr-sweep against hand-written SQL on SQLite, PostgreSQL and MariaDB.

    make bench                    # N=1,000,000 rows, every reachable engine
    make bench N=10000000
    .venv/bin/python bench/bench.py --rows 100000 --repeat 1 --engines sqlite

Per engine it generates a `candidate` table of N rows (40% due), then times, as
fresh processes and with the table restored to the same state before each run:

  (a) `gdpr-sweep run --json --quiet` with a delete rule, and with an anonymise rule;
  (b) the hand-written baseline (bench/baseline.py): the same work with the DB-API
      driver, batched by primary-key ranges with the same batch size;
  (c) one unbatched DELETE / UPDATE: the physical limit;
  (d) `gdpr-sweep plan --json` against a plain `SELECT count(*)` (fresh process too).

It prints a table and the issue's goals with PASS/FAIL; bench/README.md explains
how to read them. A run in which gdpr-sweep (or a baseline) did not do exactly the
expected work stops the benchmark with exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from dbapi import (
    ENGINES,
    REDACTED,
    connect,
    connect_params,
    cutoff_param,
    pending_predicate,
)
from targets import AS_OF, CUTOFF, Target, expected_due, make_target

HERE = Path(__file__).resolve().parent
SERVER_URLS = {
    "postgresql": ("GDPR_SWEEP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": ("GDPR_SWEEP_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
URL_ENV = "GDPR_SWEEP_BENCH_URL"  # the config's url_env for the measured database
KEY = "gdpr-sweep-benchmark-key-0123456789"  # GDPR_SWEEP_KEY for the runs (16+ chars)

# The goals of the issue.
MAX_RUN_RATIO = 1.15  # run vs the hand-written baseline (b)
MAX_RSS_MB = 150.0  # peak RSS of a gdpr-sweep process
MAX_BATCH_SECONDS = 1.0  # longest single batch (transaction)
MAX_PLAN_RATIO = 1.1  # plan vs a plain COUNT(*)

RULE_HEAD = """[[rules]]
id = "candidate-{action}"
table = "candidate"
action = "{action}"
after = "6 months"
since = "course_ended_at"
basis = "benchmark"
"""
ANONYMISE_COLUMNS = """[rules.columns]
name = "null"
email = "null"
cpr = "null"
address = "null"
notes = "redact"
birth_date = "year"
"""
RULES = {
    "delete": RULE_HEAD.format(action="delete"),
    "anonymise": RULE_HEAD.format(action="anonymise") + ANONYMISE_COLUMNS,
    "hash": RULE_HEAD.format(action="anonymise") + ANONYMISE_COLUMNS + 'phone = "hash"\n',
}

# The operations (rows of the table).
RUN = "gdpr-sweep run (a)"
BASELINE = "baseline, key ranges (b)"
ONE = "one statement (c)"
PLAN = "gdpr-sweep plan, {rule} rule (d)"
COUNT = "plain COUNT(*) (d)"
COUNT_PENDING = "plain COUNT(*), anonymise predicate (d)"
NOOP = "driver-only process: connect, SELECT 1"
HASH_RUN = "gdpr-sweep run, phone = hash"

#: A due row's birth date is the first day of its year after the anonymise rule.
FIRST_OF_YEAR = {
    "sqlite": "substr(birth_date, 6) = '01-01'",
    "postgresql": "extract(doy FROM birth_date) = 1",
    "mariadb": "DAYOFYEAR(birth_date) = 1",
}


class BenchError(Exception):
    """The benchmark cannot go on: a wrong result, a failed process, a missing server."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------


@dataclass
class Finished:
    """A finished child process: exit code, wall time, peak RSS and its output."""

    returncode: int
    wall: float
    rss_kib: int
    stdout: str
    stderr: str

    def json(self, what: str) -> Any:
        if self.returncode != 0:
            raise BenchError(f"{what} exited {self.returncode}: {self.stderr.strip()[-2000:]}")
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise BenchError(f"{what} printed no JSON: {self.stdout[:500]!r}") from None


def run_process(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Finished:
    """Run `argv` to completion; time it from spawn to exit and take its peak RSS.

    The process is started by bench/spawn.py (`subprocess.Popen`, then `os.wait4` for
    its `ru_maxrss`, KiB on Linux): started from this bigger process the figure would
    include our own RSS (see spawn.py). Output goes to files, so no pipe can fill up.
    """
    with tempfile.TemporaryDirectory(prefix="gdpr-sweep-bench-proc-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        helper = subprocess.run(
            [sys.executable, str(HERE / "spawn.py"), str(out), str(err), str(timeout), *argv],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        if helper.returncode != 0:
            raise BenchError(f"bench/spawn.py failed: {helper.stderr.strip()}")
        report = json.loads(helper.stdout)
        return Finished(
            report["returncode"],
            report["wall"],
            report["maxrss_kib"],
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
        )


# --- results --------------------------------------------------------------------------


@dataclass
class Sample:
    """One timed repetition."""

    wall: float  # spawn to exit of the process, Python start-up included
    work: float | None  # in-process time (see bench/README.md), if known
    rss_kib: int
    rows: int
    batches: int | None = None
    longest_batch: float | None = None
    loop: float | None = None  # gdpr-sweep: its batches alone (the run's own `seconds`)


@dataclass
class Measurement:
    """One row of the results table: an operation on one engine, every repetition."""

    engine: str
    rows_total: int
    group: str  # delete | anonymise | anonymise+hash | plan | start-up
    operation: str
    kind: str  # tool | baseline | one | count | startup
    samples: list[Sample] = field(default_factory=list)

    def median(self, attribute: str) -> float | None:
        values = [getattr(s, attribute) for s in self.samples]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    @property
    def seconds(self) -> float:
        value = self.median("wall")
        assert value is not None
        return value

    @property
    def longest_batch(self) -> float | None:
        """The worst batch over all repetitions (the goal is about the worst case)."""
        values = [s.longest_batch for s in self.samples if s.longest_batch is not None]
        return max(values) if values else None

    @property
    def peak_rss_mb(self) -> float:
        return max(s.rss_kib for s in self.samples) / 1024

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "samples"},
            "median_seconds": self.seconds,
            "median_work_seconds": self.median("work"),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "longest_batch_seconds": self.longest_batch,
            "samples": [asdict(s) for s in self.samples],
        }


@dataclass
class Goal:
    engine: str
    goal: str
    value: float | None
    limit: float
    unit: str
    net: float | None = None  # a ratio with each side's process start-up taken off
    loop: float | None = None  # gdpr-sweep's batches alone / the baseline's work

    @property
    def passed(self) -> bool:
        return self.value is not None and self.value <= self.limit


# --- one engine -----------------------------------------------------------------------


class EngineBench:
    """Generate, restore, run and verify on one engine."""

    def __init__(self, target: Target, args: argparse.Namespace, workdir: Path) -> None:
        self.target = target
        self.engine = target.engine
        self.args = args
        self.workdir = workdir
        self.rows = args.rows
        self.due = expected_due(args.rows)
        self.cutoff = cutoff_param(self.engine, CUTOFF)
        self.env = {k: v for k, v in os.environ.items() if k != "GDPR_SWEEP_CONFIG"}
        self.env.update({"GDPR_SWEEP_KEY": KEY, URL_ENV: target.tool_url})
        self.restore_seconds = 0.0
        self.setup_seconds = 0.0

    def log(self, message: str) -> None:
        log(f"{self.engine}: {message}")

    # set-up

    def setup(self) -> None:
        started = time.perf_counter()
        self.target.prepare()
        self.log(f"generating {self.rows:,} rows")
        self.target.build_template(self.rows)
        self.restore()
        total = self.count("1 = 1")
        due = self.count("course_ended_at < %s", (self.cutoff,))
        if (total, due) != (self.rows, self.due):
            raise BenchError(
                f"{self.engine}: generated {total:,} rows with {due:,} due, "
                f"expected {self.rows:,} with {self.due:,}"
            )
        for rule, body in RULES.items():
            directory = self.workdir / rule
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "gdpr-sweep.toml").write_text(self.config_text(body), encoding="utf-8")
            # A migrated state database, copied before every run: each run starts with
            # the same (empty) audit trail and pays no migration.
            migrated = self.tool(["migrate", "-c", str(directory / "gdpr-sweep.toml")])
            if migrated.returncode != 0:
                raise BenchError(f"gdpr-sweep migrate failed: {migrated.stderr.strip()}")
            shutil.copyfile(directory / "state.db", directory / "state.fresh.db")
        self.setup_seconds = time.perf_counter() - started
        self.log(f"set-up took {self.setup_seconds:.1f} s; {self.due:,} of {self.rows:,} due")

    def config_text(self, rule: str) -> str:
        return (
            "[sweep]\n"
            'state_url = "sqlite:///state.db"\n'
            'hash_key_env = "GDPR_SWEEP_KEY"\n'
            'timezone = "Europe/Copenhagen"\n'
            f"batch_size = {json.dumps(self.args.batch_size)}\n"
            "max_fraction = 0.9\n\n"
            "[databases.bench]\n"
            f'url_env = "{URL_ENV}"\n'
            'controller = "gdpr-sweep benchmark"\n\n' + rule
        )

    def restore(self) -> None:
        started = time.perf_counter()
        self.target.restore()
        self.restore_seconds += time.perf_counter() - started

    def count(self, where: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.target.scalar(f"SELECT count(*) FROM candidate WHERE {where}", params))

    # processes

    def tool(self, arguments: list[str]) -> Finished:
        return run_process(
            [self.args.gdpr_sweep, *arguments], self.env, self.workdir, self.args.timeout
        )

    def run_tool(self, rule: str) -> Sample:
        """(a) `gdpr-sweep run` with one rule; check it did exactly the due rows."""
        directory = self.workdir / rule
        shutil.copyfile(directory / "state.fresh.db", directory / "state.db")
        config = str(directory / "gdpr-sweep.toml")
        finished = self.tool(["run", "-c", config, "--as-of", AS_OF, "--json", "--quiet"])
        summary = finished.json(f"gdpr-sweep run ({self.engine}, {rule})")
        items = summary.get("items", [])
        if summary.get("status") != "completed" or summary.get("failures") or len(items) != 1:
            raise BenchError(f"gdpr-sweep run ({self.engine}, {rule}): unexpected {summary}")
        item = items[0]
        if item["done"] != self.due or item["due"] != self.due:
            raise BenchError(
                f"gdpr-sweep run ({self.engine}, {rule}): due {item['due']:,}, done "
                f"{item['done']:,}, expected {self.due:,}"
            )
        return Sample(
            wall=finished.wall,
            work=self.tool_work_seconds(directory / "state.db", summary.get("run_id")),
            rss_kib=finished.rss_kib,
            rows=item["done"],
            batches=item.get("batches"),
            longest_batch=item.get("longest_batch_seconds"),
            loop=item.get("seconds"),
        )

    def plan_tool(self, rule: str) -> Sample:
        """(d) `gdpr-sweep plan` with one rule; check its count."""
        config = str(self.workdir / rule / "gdpr-sweep.toml")
        finished = self.tool(["plan", "-c", config, "--as-of", AS_OF, "--json"])
        plan = finished.json(f"gdpr-sweep plan ({self.engine}, {rule})")
        items = plan.get("items", [])
        if len(items) != 1 or items[0]["due"] != self.due:
            raise BenchError(f"gdpr-sweep plan ({self.engine}, {rule}): expected {self.due:,}")
        if not items[0]["cutoff"].startswith(CUTOFF):
            raise BenchError(f"gdpr-sweep plan: cutoff {items[0]['cutoff']}, expected {CUTOFF}")
        # work: the tool's own time for its COUNT, to compare query with query.
        return Sample(
            finished.wall, items[0].get("count_seconds"), finished.rss_kib, items[0]["due"]
        )

    def baseline(self, op: str) -> Sample:
        """(b), (c), COUNT(*) and the no-op: bench/baseline.py in a fresh process."""
        spec = {
            "engine": self.engine,
            "connect": self.target.params,
            "op": op,
            "cutoff": CUTOFF,
            "batch_size": fixed_batch_size(self.args.batch_size),
        }
        finished = run_process(
            [sys.executable, str(HERE / "baseline.py"), json.dumps(spec)],
            self.env,
            self.workdir,
            self.args.timeout,
        )
        result = finished.json(f"baseline {op} ({self.engine})")
        expected = {"noop": 0}.get(op, self.due)
        if result["rows"] != expected:
            raise BenchError(f"baseline {op} ({self.engine}): {result['rows']:,}, not {expected:,}")
        return Sample(
            wall=finished.wall,
            work=result.get("query_seconds", result["seconds"]),
            rss_kib=finished.rss_kib,
            rows=result["rows"],
            batches=result.get("batches"),
            longest_batch=result.get("longest_batch_seconds"),
        )

    @staticmethod
    def tool_work_seconds(state: Path, run_id: int | None) -> float | None:
        """The run's own duration from the state database (after evaluation, to the end)."""
        try:
            with contextlib.closing(sqlite3.connect(state)) as connection:
                row = connection.execute(
                    "SELECT started_at, finished_at FROM runs WHERE id = ?", (run_id,)
                ).fetchone()
        except sqlite3.Error:
            return None
        if not row or not row[1]:
            return None
        return (
            dt.datetime.fromisoformat(row[1]) - dt.datetime.fromisoformat(row[0])
        ).total_seconds()

    def profile(self, directory: Path) -> None:
        """Untimed: `plan` and `run` of each rule under pyinstrument, one text report each."""
        directory.mkdir(parents=True, exist_ok=True)
        for rule in ("delete", "anonymise"):
            self.restore()  # plan changes nothing: the run after it finds the same table
            for command in ("plan", "run"):
                config = self.workdir / rule / "gdpr-sweep.toml"
                extra = []
                if command == "run":
                    shutil.copyfile(
                        self.workdir / rule / "state.fresh.db", config.parent / "state.db"
                    )
                    extra = ["--quiet"]
                report = directory / f"{self.engine}-{command}-{rule}.txt"
                argv = [sys.executable, "-m", "pyinstrument", "--renderer", "text"]
                argv += ["--outfile", str(report), self.args.gdpr_sweep, command]
                argv += ["-c", str(config), "--as-of", AS_OF, "--json", *extra]
                run_process(argv, self.env, self.workdir, self.args.timeout).json(
                    f"pyinstrument gdpr-sweep {command} ({self.engine}, {rule})"
                )
                if command == "run":
                    self.verify(rule)
                self.log(f"profile written to {report}")

    # verification of the table after a run

    def verify(self, action: str) -> None:
        cutoff = (self.cutoff,)
        if action == "delete":
            checks = {
                "rows left": (self.count("1 = 1"), self.rows - self.due),
                "due rows left": (self.count("course_ended_at < %s", cutoff), 0),
            }
        else:
            anonymised = "name IS NULL AND email IS NULL AND cpr IS NULL AND address IS NULL"
            checks = {
                "rows left": (self.count("1 = 1"), self.rows),
                "anonymised rows": (self.count(anonymised), self.due),
                "anonymised due rows": (
                    self.count(f"{anonymised} AND course_ended_at < %s", cutoff),
                    self.due,
                ),
                "redacted notes": (self.count("notes = %s", (REDACTED,)), self.due),
                "due birth dates on 1 January": (
                    self.count(f"course_ended_at < %s AND {FIRST_OF_YEAR[self.engine]}", cutoff),
                    self.due,
                ),
            }
            if action == "hash":
                checks["pseudonymised phones"] = (self.count("phone LIKE 'hmac:%%'"), self.due)
        for what, (found, expected) in checks.items():
            if found != expected:
                raise BenchError(
                    f"{self.engine} after {action}: {what} {found:,}, not {expected:,}"
                )

    def warm_up(self) -> None:
        """Untimed: read the restored table through the paths the read-only steps use.

        The read-only steps share the restore, so without this the first of them (the
        delete rule's plan) alone would pay for a cold cache.
        """
        self.count("course_ended_at < %s", (self.cutoff,))
        self.count(f"course_ended_at < %s AND {pending_predicate(self.engine)}", (self.cutoff,))

    # the measurements

    def measure(self) -> list[Measurement]:
        """Time every operation `--repeat` times, interleaved; return the table's rows."""

        def step(group: str, operation: str, kind: str, run: Callable[[], Sample]) -> Step:
            return Step(Measurement(self.engine, self.rows, group, operation, kind), run)

        def write(group: str, operation: str, kind: str, run: Callable[[], Sample]) -> Step:
            verify = "hash" if group == "anonymise+hash" else group
            return Step(Measurement(self.engine, self.rows, group, operation, kind), run, verify)

        steps = [
            step("plan", PLAN.format(rule="delete"), "tool", partial(self.plan_tool, "delete")),
            step("plan", COUNT, "count", partial(self.baseline, "count")),
            step(
                "plan", PLAN.format(rule="anonymise"), "tool", partial(self.plan_tool, "anonymise")
            ),
            step("plan", COUNT_PENDING, "count", partial(self.baseline, "count-pending")),
            step("start-up", NOOP, "startup", partial(self.baseline, "noop")),
        ]
        for action in ("delete", "anonymise"):
            steps += [
                write(action, RUN, "tool", partial(self.run_tool, action)),
                write(action, BASELINE, "baseline", partial(self.baseline, f"{action}-batched")),
                write(action, ONE, "one", partial(self.baseline, f"{action}-one")),
            ]
        if self.args.hash:
            steps.append(write("anonymise+hash", HASH_RUN, "tool", partial(self.run_tool, "hash")))

        for repetition in range(1, self.args.repeat + 1):
            self.restore()
            self.warm_up()
            fresh = True  # the read-only steps and the first writing step share a restore
            for current in steps:
                if current.verify and not fresh:
                    self.restore()
                sample = current.run()
                if current.verify:
                    self.verify(current.verify)
                    fresh = False
                current.measurement.samples.append(sample)
                self.log(
                    f"repetition {repetition}/{self.args.repeat}: {current.measurement.group} "
                    f"{current.measurement.operation}: {sample.wall:.2f} s, "
                    f"RSS {sample.rss_kib / 1024:.0f} MB"
                )
        # Writing operations first in the table, then plans and start-up.
        return [s.measurement for s in steps if s.verify] + [
            s.measurement for s in steps if not s.verify
        ]


@dataclass
class Step:
    """An operation to time: its row of the table, how to run it once, and, for one that
    changes the table, what to check afterwards (the table is restored before it)."""

    measurement: Measurement
    run: Callable[[], Sample]
    verify: str | None = None


# --- report ---------------------------------------------------------------------------


def _ratio_goal(
    found: dict[tuple[str, str, str], Measurement],
    engine: str,
    goal: str,
    ours: tuple[str, str],
    theirs: tuple[str, str],
    limit: float,
    by_work: bool = False,
) -> Goal:
    """A goal `ours <= limit x theirs`, also computed with each side's start-up taken off.

    `by_work` compares the in-process time of the work itself (the query's time, as
    gdpr-sweep reports it and as the baseline measures it) instead of whole processes.
    """
    tool, base = found.get((engine, *ours)), found.get((engine, *theirs))
    if tool is None or base is None:
        return Goal(engine, goal, None, limit, "x")
    if by_work:
        ours_work, theirs_work = tool.median("work"), base.median("work")
        if not ours_work or not theirs_work:
            return Goal(engine, goal, None, limit, "x")
        return Goal(engine, goal, ours_work / theirs_work, limit, "x", tool.seconds / base.seconds)
    tool_startup = found.get(("-", "start-up", "gdpr-sweep --version"))
    base_startup = found.get((engine, "start-up", NOOP))
    net = None
    if tool_startup and base_startup and base.seconds > base_startup.seconds:
        net_tool = tool.seconds - tool_startup.seconds
        net = net_tool / (base.seconds - base_startup.seconds)
    loop, base_work = tool.median("loop"), base.median("work")
    loop_ratio = loop / base_work if loop and base_work else None
    return Goal(engine, goal, tool.seconds / base.seconds, limit, "x", net, loop_ratio)


def goals(measurements: list[Measurement], engines: list[str]) -> list[Goal]:
    """The issue's goals, per engine."""
    found = {(m.engine, m.group, m.operation): m for m in measurements}
    result = []
    for engine in engines:
        for action in ("delete", "anonymise"):
            result.append(
                _ratio_goal(
                    found,
                    engine,
                    f"{action}: run <= {MAX_RUN_RATIO}x baseline (b)",
                    (action, RUN),
                    (action, BASELINE),
                    MAX_RUN_RATIO,
                )
            )
        ours = [m for m in measurements if m.engine == engine and m.kind == "tool"]
        rss = max((m.peak_rss_mb for m in ours), default=None)
        result.append(
            Goal(engine, f"peak RSS of gdpr-sweep <= {MAX_RSS_MB:g} MB", rss, MAX_RSS_MB, " MB")
        )
        batch = max((m.longest_batch for m in ours if m.longest_batch is not None), default=None)
        result.append(
            Goal(
                engine, f"longest batch <= {MAX_BATCH_SECONDS:g} s", batch, MAX_BATCH_SECONDS, " s"
            )
        )
        for rule in ("delete", "anonymise"):
            result.append(
                _ratio_goal(
                    found,
                    engine,
                    f"plan ({rule} rule) query <= {MAX_PLAN_RATIO}x COUNT(*) query",
                    ("plan", PLAN.format(rule=rule)),
                    ("plan", COUNT if rule == "delete" else COUNT_PENDING),
                    MAX_PLAN_RATIO,
                    by_work=True,
                )
            )
    return result


def references(
    measurements: list[Measurement],
) -> dict[int, tuple[Measurement | None, Measurement | None]]:
    """For each row: the measurement its ratio columns divide by, (b) and (c)."""
    by_key = {(m.engine, m.group, m.kind): m for m in measurements}
    refs = {}
    for m in measurements:
        group = "anonymise" if m.group == "anonymise+hash" else m.group
        if m.group == "plan":
            refs[id(m)] = (by_key.get((m.engine, "plan", "count")), None)
        elif m.group in ("delete", "anonymise", "anonymise+hash"):
            refs[id(m)] = (
                by_key.get((m.engine, group, "baseline")),
                by_key.get((m.engine, group, "one")),
            )
        else:
            refs[id(m)] = (None, None)
    return refs


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def render_table(measurements: list[Measurement]) -> str:
    refs = references(measurements)
    header = (
        "engine",
        "N",
        "group",
        "operation",
        "median s",
        "rows/s",
        "x(b)",
        "x(c)",
        "work s",
        "peak RSS MB",
        "longest batch s",
    )
    lines = []
    for m in measurements:
        base, one = refs[id(m)]
        writes = m.group in ("delete", "anonymise", "anonymise+hash")
        rate = m.samples[0].rows / m.seconds if writes else None
        lines.append(
            (
                m.engine,
                f"{m.rows_total:,}" if m.rows_total else "-",
                m.group,
                m.operation,
                f"{m.seconds:.3f}",
                _fmt(rate / 1000 if rate else None, ".0f", "k"),
                _fmt(m.seconds / base.seconds if base and base is not m else None, ".2f"),
                _fmt(m.seconds / one.seconds if one and one is not m else None, ".2f"),
                _fmt(m.median("work"), ".3f"),
                f"{m.peak_rss_mb:.0f}",
                _fmt(m.longest_batch, ".3f"),
            )
        )
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]
    right = {1, 4, 5, 6, 7, 8, 9, 10}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    previous = None
    for m, cells in zip(measurements, lines, strict=True):
        if previous is not None and m.engine != previous:
            out.append("")
        previous = m.engine
        out.append(line(cells))
    return "\n".join(out)


def render_goals(result: list[Goal]) -> str:
    width = max(len(g.goal) for g in result)
    rows = []
    for goal in result:
        status = "PASS" if goal.passed else ("n/a " if goal.value is None else "FAIL")
        value = _fmt(
            goal.value,
            ".3f" if goal.unit == " s" else ".2f" if goal.unit == "x" else ".0f",
            goal.unit,
        )
        what = "whole processes" if " query <= " in goal.goal else "net of start-up"
        net = f"   ({what}: {goal.net:.2f}x" if goal.net is not None else ""
        if net and goal.loop is not None:
            net += f"; batches alone: {goal.loop:.2f}x"
        net += ")" if net else ""
        rows.append(f"  {status}  {goal.engine:<10}  {goal.goal:<{width}}  {value:>8}{net}")
    return "\n".join(rows)


# --- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark gdpr-sweep run/plan against hand-written SQL.",
        epilog="See bench/README.md for how to read the output.",
    )
    parser.add_argument(
        "--rows", "-n", type=int, default=1_000_000, help="rows in candidate (default 1,000,000)"
    )
    parser.add_argument(
        "--engines",
        help="comma-separated: sqlite,postgresql,mariadb (default: every reachable one)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per operation; the median is reported (default 3)",
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=None,
        help='rows per batch (default: gdpr-sweep\'s default); "auto": gdpr-sweep sizes its '
        "batches itself, the baseline keeps the default fixed size",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--hash", action="store_true", help='also time an anonymise rule with phone = "hash"'
    )
    parser.add_argument(
        "--database",
        default="gdpr_sweep_bench",
        help="database the benchmark owns on the PostgreSQL/MariaDB servers (created if missing; "
        "the test suite wipes the test database, so not that one) (default gdpr_sweep_bench)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="for SQLite files and configs (default: a new temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated tables and files")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds before a process is killed"
    )
    parser.add_argument(
        "--gdpr-sweep",
        metavar="PATH",
        default=str(Path(sys.executable).parent / "gdpr-sweep"),
        help="the gdpr-sweep command to measure (default: the one next to this Python)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="afterwards, profile one plan and one run per rule with pyinstrument (untimed; "
        "`.venv/bin/pip install pyinstrument`) and write the reports to DIR",
    )
    parser.add_argument("--strict", action="store_true", help="exit 4 when a goal fails")
    args = parser.parse_args(argv)
    if args.rows < 100 or args.repeat < 1:
        parser.error("--rows must be at least 100 and --repeat at least 1")
    if args.profile and importlib.util.find_spec("pyinstrument") is None:
        parser.error("--profile needs pyinstrument: .venv/bin/pip install pyinstrument")
    if args.batch_size is None:
        args.batch_size = default_batch_size()
    return args


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    return int(text)


def fixed_batch_size(batch_size: int | str) -> int:
    """The baseline's size: gdpr-sweep's `auto` starts from the default and adapts."""
    return 5000 if batch_size == "auto" else int(batch_size)


def default_batch_size() -> int:
    try:
        from gdpr_sweep.config import SweepSettings

        return int(SweepSettings.batch_size)
    except (ImportError, AttributeError):
        return 5000


def select_engines(requested: str | None) -> list[tuple[str, str | None]]:
    """Return (engine, server URL): those requested, or every reachable one."""
    names = [n.strip() for n in requested.split(",")] if requested else list(ENGINES)
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise BenchError(
            f"--engines: unknown {', '.join(unknown)} (choose from {', '.join(ENGINES)})"
        )
    selected: list[tuple[str, str | None]] = []
    for name in names:
        if name == "sqlite":
            selected.append((name, None))
            continue
        variable, default = SERVER_URLS[name]
        url = os.environ.get(variable) or default
        try:
            connect(name, connect_params(url), autocommit=True).close()
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            reason = f"{name} at ${variable} ({url.split('@')[-1]}) unreachable: {first_line}"
            if requested:
                raise BenchError(reason + "; start it with `make databases`") from None
            log(f"skipping {reason}")
            continue
        selected.append((name, url))
    return selected


def startup_measurement(args: argparse.Namespace, workdir: Path) -> Measurement:
    """`gdpr-sweep --version`: the fixed cost of starting the tool (imports)."""
    measurement = Measurement("-", 0, "start-up", "gdpr-sweep --version", "startup")
    for _ in range(args.repeat):
        finished = run_process([args.gdpr_sweep, "--version"], dict(os.environ), workdir, 60)
        if finished.returncode != 0:
            raise BenchError(f"{args.gdpr_sweep} --version failed: {finished.stderr.strip()}")
        measurement.samples.append(Sample(finished.wall, None, finished.rss_kib, 0))
    return measurement


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gdpr-sweep-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    measurements: list[Measurement] = []
    engines_meta: dict[str, Any] = {}
    try:
        selected = select_engines(args.engines)
        log(
            f"{args.rows:,} rows, batch size {args.batch_size}, repeat {args.repeat}, "
            f"engines {', '.join(e for e, _ in selected)}; work dir {workdir}"
        )
        startup = startup_measurement(args, workdir)
        version = run_process([args.gdpr_sweep, "--version"], dict(os.environ), workdir, 60)
        for engine, url in selected:
            target = make_target(
                engine, lambda m, e=engine: log(f"{e}: {m}"), workdir / engine, url, args.database
            )
            (workdir / engine).mkdir(exist_ok=True)
            bench = EngineBench(target, args, workdir / engine)
            engine_started = time.perf_counter()
            try:
                bench.setup()
                measurements += bench.measure()
                if args.profile:
                    bench.profile(args.profile)
                engines_meta[engine] = {
                    "server": target.server_version(),
                    "due": bench.due,
                    "setup_seconds": round(bench.setup_seconds, 1),
                    "restore_seconds_total": round(bench.restore_seconds, 1),
                    "seconds_total": round(time.perf_counter() - engine_started, 1),
                }
            finally:
                if not args.keep:
                    with contextlib.suppress(Exception):
                        target.cleanup()
                target.close()
        measurements.append(startup)
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    engines = [e for e, _ in selected]
    result = goals(measurements, engines)
    duration = time.perf_counter() - started
    print()
    print(render_table(measurements))
    print()
    print(f"Goals (N = {args.rows:,}, batch size {args.batch_size}, median of {args.repeat}):")
    print(render_goals(result))
    print()
    for engine, meta in engines_meta.items():
        print(
            f"{engine}: {meta['server']}; set-up {meta['setup_seconds']} s, restores "
            f"{meta['restore_seconds_total']} s (untimed), engine total {meta['seconds_total']} s"
        )
    print(
        f"{version.stdout.strip()} ({args.gdpr_sweep}); Python {platform.python_version()}; "
        f"{os.cpu_count()} CPUs; 5-min load average {os.getloadavg()[1]:.2f}; "
        f"benchmark took {duration / 60:.1f} min"
    )
    if args.json:
        document = {
            "started_at": started_at.isoformat(timespec="seconds"),
            "seconds": round(duration, 1),
            "rows": args.rows,
            "batch_size": args.batch_size,
            "repeat": args.repeat,
            "as_of": AS_OF,
            "cutoff": CUTOFF,
            "gdpr_sweep_version": version.stdout.strip(),
            "gdpr_sweep_command": args.gdpr_sweep,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "engines": engines_meta,
            "measurements": [m.to_json() for m in measurements],
            "goals": [{**asdict(g), "passed": g.passed} for g in result],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        log(f"results written to {args.json}")
    if args.strict and not all(g.passed for g in result):
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
