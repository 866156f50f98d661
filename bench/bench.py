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

import ptarchiver
import summary
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

# The goal of the plan rows (issue 22's goals are in summary.py).
MAX_PLAN_RATIO = 1.1  # plan vs a plain COUNT(*)
#: The hand-written loop and pt-archiver stay at a fixed batch, whatever gdpr-sweep's.
BASELINE_BATCH_SIZE = 5000

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
PT_RUN = "pt-archiver --purge --limit {limit} --commit-each"
PT_BULK_RUN = PT_RUN + " --bulk-delete"

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


# --- one engine -----------------------------------------------------------------------


class EngineBench:
    """Generate, restore, run and verify on one engine."""

    def __init__(
        self, target: Target, args: argparse.Namespace, workdir: Path, rows: int, repeat: int
    ) -> None:
        self.target = target
        self.engine = target.engine
        self.args = args
        self.workdir = workdir
        self.rows = rows
        self.repeat = repeat
        self.due = expected_due(rows)
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
                message = migrated.stderr.strip()
                if self.args.batch_size == "auto" and "batch_size" in message:
                    message = (
                        f'{self.args.gdpr_sweep} does not accept batch_size = "auto" '
                        f"(issue 22's adaptive batch size); use --batch-size N: {message}"
                    )
                raise BenchError(f"gdpr-sweep migrate failed: {message}")
            shutil.copyfile(directory / "state.db", directory / "state.fresh.db")
        self.setup_seconds = time.perf_counter() - started
        self.log(f"set-up took {self.setup_seconds:.1f} s; {self.due:,} of {self.rows:,} due")

    def config_text(self, rule: str) -> str:
        return (
            "[sweep]\n"
            'state_url = "sqlite:///state.db"\n'
            'hash_key_env = "GDPR_SWEEP_KEY"\n'
            'timezone = "Europe/Copenhagen"\n'
            f"batch_size = {toml_batch_size(self.args.batch_size)}\n"
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
            "batch_size": self.args.baseline_batch_size,
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

    def pt_archiver(self, bulk: bool) -> Sample:
        """pt-archiver --purge of the due rows (MariaDB, delete), a whole process too."""
        limit = self.args.baseline_batch_size
        argv = ptarchiver.argv(self.target.params, CUTOFF, limit, bulk)
        finished = run_process(argv, self.env, self.workdir, self.args.timeout)
        what = f"pt-archiver{' --bulk-delete' if bulk else ''} ({self.engine})"
        if finished.returncode != 0:
            raise BenchError(f"{what} exited {finished.returncode}: {finished.stderr.strip()}")
        deleted = ptarchiver.deleted(finished.stdout)
        if deleted != self.due:
            raise BenchError(f"{what}: reports {deleted} rows deleted, expected {self.due:,}")
        return Sample(wall=finished.wall, work=None, rss_kib=finished.rss_kib, rows=deleted)

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
            step("start-up", NOOP, "noop", partial(self.baseline, "noop")),
        ]
        for action in ("delete", "anonymise"):
            steps += [
                write(action, RUN, "tool", partial(self.run_tool, action)),
                write(action, BASELINE, "baseline", partial(self.baseline, f"{action}-batched")),
            ]
            if action == "delete" and self.engine == "mariadb" and self.args.pt_archiver:
                limit = self.args.baseline_batch_size
                steps += [
                    write(
                        action,
                        PT_RUN.format(limit=limit),
                        summary.PT,
                        partial(self.pt_archiver, False),
                    ),
                    write(
                        action,
                        PT_BULK_RUN.format(limit=limit),
                        summary.PT_BULK,
                        partial(self.pt_archiver, True),
                    ),
                ]
            steps.append(write(action, ONE, "one", partial(self.baseline, f"{action}-one")))
        if self.args.hash:
            steps.append(write("anonymise+hash", HASH_RUN, "tool", partial(self.run_tool, "hash")))

        for repetition in range(1, self.repeat + 1):
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
                    f"{self.rows:,} rows, repetition {repetition}/{self.repeat}: "
                    f"{current.measurement.group} "
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


def plan_goals(measurements: list[Measurement]) -> list[summary.Goal]:
    """The plan rows' goal (`--details`): the plan's due-count query against COUNT(*)."""
    found = {(m.engine, m.rows_total, m.group, m.operation): m for m in measurements}
    result = []
    for engine, rows in sorted({(m.engine, m.rows_total) for m in measurements if m.rows_total}):
        for rule in ("delete", "anonymise"):
            tool = found.get((engine, rows, "plan", PLAN.format(rule=rule)))
            base = found.get((engine, rows, "plan", COUNT if rule == "delete" else COUNT_PENDING))
            goal = f"plan ({rule} rule) query <= {MAX_PLAN_RATIO}x COUNT(*) query"
            ours = tool.median("work") if tool else None
            theirs = base.median("work") if base else None
            if not ours or not theirs or tool is None or base is None:
                result.append(summary.Goal(engine, rows, goal, None, MAX_PLAN_RATIO, "x"))
                continue
            whole = f"whole processes {tool.seconds / base.seconds:.2f}x"
            result.append(
                summary.Goal(engine, rows, goal, ours / theirs, MAX_PLAN_RATIO, "x", whole)
            )
    return result


def references(
    measurements: list[Measurement],
) -> dict[int, tuple[Measurement | None, Measurement | None]]:
    """For each row: the measurement its ratio columns divide by, (b) and (c)."""
    by_key = {(m.engine, m.rows_total, m.group, m.kind): m for m in measurements}
    refs = {}
    for m in measurements:
        group = "anonymise" if m.group == "anonymise+hash" else m.group
        if m.group == "plan":
            refs[id(m)] = (by_key.get((m.engine, m.rows_total, "plan", "count")), None)
        elif m.group in ("delete", "anonymise", "anonymise+hash"):
            refs[id(m)] = (
                by_key.get((m.engine, m.rows_total, group, "baseline")),
                by_key.get((m.engine, m.rows_total, group, "one")),
            )
        else:
            refs[id(m)] = (None, None)
    return refs


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def render_details(measurements: list[Measurement]) -> str:
    """`--details`: every measured operation as its own row (plans, driver-only, hash)."""
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
        if previous is not None and (m.engine, m.rows_total) != previous:
            out.append("")
        previous = (m.engine, m.rows_total)
        out.append(line(cells))
    return "\n".join(out)


# --- main -----------------------------------------------------------------------------


def parse_rows(text: str) -> list[int]:
    """`--rows 1000000,10000000` (underscores allowed): the sizes, ascending, no repeats."""
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not sizes or sizes[0] < 100:
        raise argparse.ArgumentTypeError("every N must be at least 100")
    return sizes


def parse_batch_size(text: str) -> int | str:
    """`--batch-size auto` or a positive integer."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'auto' or a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'auto' or a positive integer, not {text!r}")
    return value


def toml_batch_size(value: int | str) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark gdpr-sweep run against hand-written SQL and pt-archiver.",
        epilog="See bench/README.md for how to read the output.",
    )
    parser.add_argument(
        "--rows",
        "-n",
        type=parse_rows,
        default=[1_000_000],
        metavar="N[,N...]",
        help="rows in candidate; several sizes comma-separated, e.g. 1000000,10000000 "
        "(default 1,000,000)",
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
        "--repeat-large",
        type=int,
        default=1,
        metavar="K",
        help=f"timed runs per operation for N >= {summary.LARGE_ROWS:,} (default 1; the "
        "table's `runs` column says how many)",
    )
    parser.add_argument(
        "--batch-size",
        type=parse_batch_size,
        default=None,
        metavar="auto|N",
        help="gdpr-sweep's batch_size (default: gdpr-sweep's default); the loop (b) and "
        "pt-archiver stay at --baseline-batch-size",
    )
    parser.add_argument(
        "--baseline-batch-size",
        type=int,
        default=BASELINE_BATCH_SIZE,
        metavar="N",
        help=f"rows per batch of the loop (b) and pt-archiver's --limit "
        f"(default {BASELINE_BATCH_SIZE})",
    )
    parser.add_argument(
        "--no-pt-archiver",
        dest="pt_archiver",
        action="store_false",
        help="do not run pt-archiver on MariaDB",
    )
    parser.add_argument(
        "--details",
        action="store_true",
        help="also print every operation as its own row (plans, COUNT(*), driver-only, hash) "
        "and the plan goals",
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
    if args.repeat < 1 or args.repeat_large < 1 or args.baseline_batch_size < 1:
        parser.error("--repeat, --repeat-large and --baseline-batch-size must be at least 1")
    if args.profile and importlib.util.find_spec("pyinstrument") is None:
        parser.error("--profile needs pyinstrument: .venv/bin/pip install pyinstrument")
    if args.batch_size is None:
        args.batch_size = default_batch_size()
    return args


def default_batch_size() -> int | str:
    try:
        from gdpr_sweep.config import SweepSettings

        value = SweepSettings.batch_size
    except (ImportError, AttributeError):
        return BASELINE_BATCH_SIZE
    return value if isinstance(value, str) else int(value)


def repeat_for(args: argparse.Namespace, rows: int) -> int:
    return args.repeat_large if rows >= summary.LARGE_ROWS else args.repeat


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
    measurement = Measurement("-", 0, "start-up", "gdpr-sweep --version", summary.STARTUP)
    for _ in range(max(args.repeat, 3)):
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
    skipped: list[str] = []
    try:
        selected = select_engines(args.engines)
        if args.pt_archiver and any(e == "mariadb" for e, _ in selected):
            reason = ptarchiver.missing()
            if reason:
                skipped.append(f"pt-archiver skipped: {reason}")
                log(skipped[-1])
                args.pt_archiver = False
        sizes = ", ".join(f"{n:,} (repeat {repeat_for(args, n)})" for n in args.rows)
        log(
            f"rows {sizes}, batch size {args.batch_size} (loop (b) and pt-archiver "
            f"{args.baseline_batch_size}), engines {', '.join(e for e, _ in selected)}; "
            f"work dir {workdir}"
        )
        startup = startup_measurement(args, workdir)
        version = run_process([args.gdpr_sweep, "--version"], dict(os.environ), workdir, 60)
        for engine, url in selected:
            target = make_target(
                engine, lambda m, e=engine: log(f"{e}: {m}"), workdir / engine, url, args.database
            )
            try:
                for rows in args.rows:
                    directory = workdir / engine / str(rows)
                    directory.mkdir(parents=True, exist_ok=True)
                    bench = EngineBench(target, args, directory, rows, repeat_for(args, rows))
                    engine_started = time.perf_counter()
                    bench.setup()
                    measurements += bench.measure()
                    if args.profile:
                        bench.profile(args.profile / f"{rows}")
                    engines_meta[f"{engine} {rows}"] = {
                        "engine": engine,
                        "rows": rows,
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

    result = summary.goals(measurements)
    duration = time.perf_counter() - started
    runs = ", ".join(f"{n:,}: median of {repeat_for(args, n)}" for n in args.rows)
    print()
    print(
        f"gdpr-sweep run against the hand-written loop (b), pt-archiver and one statement (c); "
        f"whole processes, seconds; batch size {args.batch_size} (loop (b) and pt-archiver "
        f"{args.baseline_batch_size}); {runs}"
    )
    print(summary.render_table(measurements))
    for line in skipped:
        print(line)
    print()
    print("Goals (issue 22):")
    print(summary.render_goals(result))
    details = plan_goals(measurements)
    if args.details:
        print()
        print("Every operation:")
        print(render_details(measurements))
        print()
        print("Plan goals:")
        print(summary.render_goals(details))
    print()
    for meta in engines_meta.values():
        print(
            f"{meta['engine']} {meta['rows']:,}: {meta['server']}; set-up {meta['setup_seconds']}"
            f" s, restores {meta['restore_seconds_total']} s (untimed), total "
            f"{meta['seconds_total']} s"
        )
    if args.pt_archiver and any(e == "mariadb" for e, _ in selected):
        print(ptarchiver.version() or "pt-archiver: not installed")
    print(
        f"{version.stdout.strip()} ({args.gdpr_sweep}); Python {platform.python_version()}; "
        f"{os.cpu_count()} CPUs; load average at the end (1/5/15 min) "
        f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"benchmark took {duration / 60:.1f} min"
    )
    if args.json:
        document = {
            "started_at": started_at.isoformat(timespec="seconds"),
            "seconds": round(duration, 1),
            "rows": args.rows,
            "repeat": {str(n): repeat_for(args, n) for n in args.rows},
            "batch_size": args.batch_size,
            "baseline_batch_size": args.baseline_batch_size,
            "as_of": AS_OF,
            "cutoff": CUTOFF,
            "gdpr_sweep_version": version.stdout.strip(),
            "gdpr_sweep_command": args.gdpr_sweep,
            "pt_archiver": ptarchiver.version() if args.pt_archiver else None,
            "skipped": skipped,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "engines": engines_meta,
            "measurements": [m.to_json() for m in measurements],
            "goals": [{**asdict(g), "passed": g.passed} for g in result],
            "plan_goals": [{**asdict(g), "passed": g.passed} for g in details],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        log(f"results written to {args.json}")
    if args.strict and not all(g.passed for g in result):
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
