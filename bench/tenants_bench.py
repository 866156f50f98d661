"""Many tenants: 100 SQLite tenants x 10,000 rows, swept with --jobs 1/2/4 and 2 shards.

    .venv/bin/python bench/tenants_bench.py                       # make bench runs this
    .venv/bin/python bench/tenants_bench.py --tenants 20 --rows 2000 --repeat 1   # a look

Each tenant is a SQLite file with a `mail` table of `--rows` rows, 40 % of them due at
the pinned as-of; every scenario starts from fresh copies of the files and a fresh,
migrated state database. Scenarios: one process with `--jobs 1`, `2`, `4`, and two
processes at once with `--shard 0/2` and `--shard 1/2` — each with a SQLite state
database and, when `$GDPR_SWEEP_TEST_PG_URL`'s server answers, a shared PostgreSQL
state database (`--state-database`, default `gdpr_sweep_bench_state`, made on
that server; its schema is dropped between runs). For each: the wall
time (spawn to the last exit, start-up included), and the time spent on the state
database as the run's own `run-end` log line reports it — waiting for tenant locks,
and in audit-trail transactions (the chain's lock and the commit included) — as a
share of the worker time (wall x jobs, or the sum of the shards' walls).

Then the chain alone: the cost of one append under 1 and 8 concurrent writers (8
processes, each its own run, appending `--appends` entries one transaction each), on
each state database: median and 95th percentile per append, and appends per second.
The machine may be shared: the figures are what was measured, under that load.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

AS_OF = "2026-11-01"
KEY = "bench-key-0123456789abcdef0123456789"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RULE = """
[[rules]]
id = "purge"
table = "mail"
action = "delete"
after = "6 months"
since = "sent_at"
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def template(path: Path, rows: int) -> None:
    """A tenant's file: `rows` mails, 40 of every 100 sent before the cutoff (due)."""
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE mail (id INTEGER PRIMARY KEY, sent_at TIMESTAMP, body TEXT);"
        "CREATE INDEX ix_mail_sent_at ON mail (sent_at);"
    )
    connection.execute(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?) "
        "INSERT INTO mail SELECT i, CASE WHEN i % 100 < 40 THEN '2025-01-15 10:00:00' "
        "ELSE '2026-10-01 10:00:00' END, 'body' FROM s",
        (rows,),
    )
    connection.commit()
    connection.close()


def pg_state_url(name: str) -> str | None:
    """The PostgreSQL state database `name` on $GDPR_SWEEP_TEST_PG_URL's server (made
    when missing); None when no server answers."""
    base = sa.engine.make_url(os.environ.get("GDPR_SWEEP_TEST_PG_URL", PG_DEFAULT))
    own = base.set(database=name)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name}
            ).first()
            if not exists:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError:
        return None
    finally:
        admin.dispose()
    return own.render_as_string(hide_password=False)


def reset_pg(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def prepare(work: Path, source: Path, tenants: int, state: str, pg_url: str | None) -> Path:
    """Fresh tenant files and a fresh, migrated state database; the config's path."""
    for old in work.glob("*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    blocks = []
    for i in range(tenants):
        shutil.copyfile(source, work / f"k{i:03}.db")
        blocks.append(f'[databases.kommune{i:03}]\nurl = "sqlite:///{work / f"k{i:03}.db"}"\n')
    if state == "postgresql":
        assert pg_url is not None
        reset_pg(pg_url)
        state_line = 'state_url_env = "BENCH_STATE_URL"'
    else:
        state_line = f'state_url = "sqlite:///{work / "state.db"}"'
    config = work / "gdpr-sweep.toml"
    config.write_text(
        f"[sweep]\n{state_line}\nmax_fraction = 1.0\n\n" + "\n".join(blocks) + RULE,
        encoding="utf-8",
    )
    subprocess.run(
        command(config, "migrate"), env=environment(pg_url), check=True, capture_output=True
    )
    return config


def environment(pg_url: str | None) -> dict[str, str]:
    env = {**os.environ, "GDPR_SWEEP_KEY": KEY, "PYTHONPATH": str(ROOT)}
    if pg_url:
        env["BENCH_STATE_URL"] = pg_url
    return env


def command(config: Path, *words: str) -> list[str]:
    """`gdpr-sweep WORDS… -c CONFIG` as a fresh process."""
    return [sys.executable, "-m", "gdpr_sweep", *words, "-c", str(config)]


def sweep(config: Path, pg_url: str | None, jobs: int, shards: int) -> dict[str, float]:
    """Run the scenario; wall time, state seconds and worker seconds."""
    env = environment(pg_url)
    runs = (
        [["--jobs", str(jobs)]]
        if shards == 1
        else [["--shard", f"{i}/{shards}"] for i in range(shards)]
    )
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gdpr_sweep",
                "--log-format",
                "json",
                "--log-level",
                "info",
                "run",
                "-c",
                str(config),
                "--as-of",
                AS_OF,
                "--quiet",
                *extra,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for extra in runs
    ]
    walls, lock_wait, appends = [], 0.0, 0.0
    for process in processes:
        _, stderr = process.communicate(timeout=3600)
        walls.append(time.perf_counter() - started)
        if process.returncode != 0:
            raise SystemExit(f"a run exited {process.returncode}: {stderr[-500:]}")
        end = [json.loads(line) for line in stderr.splitlines() if '"run-end"' in line][-1]
        lock_wait += end["lock_wait_seconds"]
        appends += end["append_seconds"]
    wall = max(walls)
    worker = wall * jobs if shards == 1 else sum(walls)
    return {"wall": wall, "lock_wait": lock_wait, "appends": appends, "worker": worker}


def check_swept(work: Path, tenants: int, rows: int) -> None:
    for i in range(tenants):
        connection = sqlite3.connect(work / f"k{i:03}.db")
        left = connection.execute("SELECT count(*) FROM mail").fetchone()[0]
        connection.close()
        if left != rows - rows * 40 // 100:
            raise SystemExit(f"kommune{i:03}: {left} rows left, expected {rows * 60 // 100}")


def _writer(args: tuple[str, str, int, object]) -> tuple[list[float], float, float]:
    """One writer: its own store and run, `count` appends, each its own transaction;
    the time of each append, and when the appending started and ended."""
    config_path, url, count, barrier = args
    os.environ["BENCH_STATE_URL"] = url
    os.environ["GDPR_SWEEP_KEY"] = KEY
    import datetime as dt

    from gdpr_sweep.config import load_config
    from gdpr_sweep.keys import hash_key
    from gdpr_sweep.state.store import StateStore

    config = load_config(config_path)
    times = []
    with StateStore(config, hash_key(config)) as store:
        run_id = store.start_run("run", dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        barrier.wait()  # type: ignore[attr-defined]
        began = time.monotonic()
        for i in range(count):
            started = time.perf_counter()
            store.append(run_id, "batch", database="kommune000", rows=i)
            times.append(time.perf_counter() - started)
        ended = time.monotonic()
        store.finish_run(run_id, "completed", {})
    return times, began, ended


def chain_config(work: Path) -> Path:
    path = work / "chain.toml"
    path.write_text(
        '[sweep]\nstate_url_env = "BENCH_STATE_URL"\n\n'
        f'[databases.kommune000]\nurl = "sqlite:///{work / "unused.db"}"\n' + RULE,
        encoding="utf-8",
    )
    return path


def chain_bench(config: Path, url: str, writers: int, count: int) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(writers)
        with context.Pool(writers) as pool:
            results = pool.map(_writer, [(str(config), url, count, barrier)] * writers)
    samples = sorted(t for times, _, _ in results for t in times)
    span = max(end for _, _, end in results) - min(begin for _, begin, _ in results)
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p95_ms": samples[int(len(samples) * 0.95)] * 1000,
        "per_second": len(samples) / span,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--state-database",
        default="gdpr_sweep_bench_state",
        help="the PostgreSQL state database's name (its schema is dropped between runs)",
    )
    options = parser.parse_args()
    pg_url = pg_state_url(options.state_database)
    states = ["sqlite"] + (["postgresql"] if pg_url else [])
    if not pg_url:
        log("PostgreSQL not reachable: SQLite state database only")
    results: dict[str, object] = {"tenants": options.tenants, "rows": options.rows}
    with tempfile.TemporaryDirectory(prefix="gdpr-sweep-tenants-") as tmp:
        source = Path(tmp) / "template.db"
        template(source, options.rows)
        work = Path(tmp) / "work"
        work.mkdir()
        scenarios = [("--jobs 1", 1, 1), ("--jobs 2", 2, 1), ("--jobs 4", 4, 1), ("2 shards", 1, 2)]
        print(
            f"## {options.tenants} SQLite tenants x {options.rows:,} rows "
            f"({options.rows * 40 // 100:,} due each), median of {options.repeat}"
        )
        print("\n| state database | scenario | wall s | lock waits s | appends s | state share |")
        print("|---|---|---:|---:|---:|---:|")
        for state in states:
            for label, jobs, shards in scenarios:
                samples = []
                for _ in range(options.repeat):
                    config = prepare(
                        work,
                        source,
                        options.tenants,
                        state,
                        pg_url if state == "postgresql" else None,
                    )
                    samples.append(
                        sweep(config, pg_url if state == "postgresql" else None, jobs, shards)
                    )
                    check_swept(work, options.tenants, options.rows)
                wall = statistics.median(s["wall"] for s in samples)
                pick = min(samples, key=lambda s: abs(s["wall"] - wall))
                share = (pick["lock_wait"] + pick["appends"]) / pick["worker"]
                results[f"{state} {label}"] = pick
                print(
                    f"| {state} | {label} | {wall:.1f} | {pick['lock_wait']:.2f} | "
                    f"{pick['appends']:.2f} | {share:.0%} |",
                    flush=True,
                )
        print(f"\n## One append ({options.appends} per writer, one transaction each)")
        print("\n| state database | writers | median ms | p95 ms | appends/s (all writers) |")
        print("|---|---|---:|---:|---:|")
        for state in states:
            for writers in (1, 8):
                if state == "postgresql":
                    assert pg_url is not None
                    reset_pg(pg_url)
                    url = pg_url
                else:
                    url = f"sqlite:///{work / 'chain.db'}"
                    for old in work.glob("chain.db*"):
                        shutil.rmtree(old) if old.is_dir() else old.unlink()
                figures = chain_bench(chain_config(work), url, writers, options.appends)
                results[f"chain {state} {writers}"] = figures
                print(
                    f"| {state} | {writers} | {figures['median_ms']:.1f} | "
                    f"{figures['p95_ms']:.1f} | {figures['per_second']:.0f} |",
                    flush=True,
                )
                verify = subprocess.run(
                    command(chain_config(work), "audit", "verify"),
                    env=environment(url),
                    check=False,
                    capture_output=True,
                    text=True,
                )
                if verify.returncode != 0:
                    raise SystemExit(f"the chain does not verify: {verify.stdout}{verify.stderr}")
    if options.json:
        options.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
