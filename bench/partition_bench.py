"""Partitioned retention on PostgreSQL: gdpr-sweep's partition path against its row path
and against pg_partman's retention (issue 21).

An `event_log` of N rows (default 10,000,000) in 24 monthly range partitions
(2023-07 … 2025-06, pg_partman names `event_log_pYYYY_MM`, primary key `(id,
created_at)`, an index on `created_at`), the rows spread evenly over the two years.
At the pinned as-of 2024-10-18 a delete rule `after = "6 months"` has its cutoff on
2024-04-18: 40 % of the rows are due, nine partitions (2023-07 … 2024-03) wholly and
April 2024 in part (it holds the cutoff, so its due rows are batched).

Measured, median of `--repeat` (each on a freshly restored table; restores untimed):

- `gdpr-sweep run` with the rule's default `partitions = "drop"` — the whole process,
  from spawn to exit, like every row of bench.py;
- the same rule with `partitions = "off"` (the row path): goal, the partition path
  >= 100x faster;
- the drop itself: the run's own `items[].partition_seconds` (intent and outcome in the
  audit trail, lock, re-check, DETACH, DROP — process start-up, evaluation and the
  batches of April left out) against `partman.run_maintenance('public.event_log')`
  dropping the same nine partitions by its retention (timed around the call on an open
  connection, so it pays no start-up either): goal, within 1.5x.

    .venv/bin/python bench/partition_bench.py --rows 10000000 --repeat 3
    .venv/bin/python bench/partition_bench.py --rows 1000000 --repeat 1   # a quick look

The server comes from $GDPR_SWEEP_TEST_PG_URL (default postgres@127.0.0.1:5432); the
benchmark works in its own database, `gdpr_sweep_partition_bench` (`--database`),
and drops its tables when done (`--keep` keeps them). pg_partman (Debian
`postgresql-15-partman`) must be installed for the comparison with it; without it
that row is skipped. `--json FILE` writes every sample.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START = dt.date(2023, 7, 1)
MONTHS = 24
AS_OF = "2024-10-18T12:00:00+00:00"
CUTOFF = "2024-04-18"  # six months before the as-of: the rule's cutoff (UTC)
WHOLLY_DUE = 9  # 2023-07 … 2024-03
RUN_GOAL = 100.0  # partitions = "off" / "drop", whole processes
DROP_GOAL = 1.5  # our drop / pg_partman's retention drop
KEY = "partition-benchmark-key-0123456789"


def months() -> list[tuple[str, dt.date, dt.date]]:
    """(partition name, from, to) for the 24 months."""
    result = []
    for k in range(MONTHS):
        year, month = divmod(START.month - 1 + k, 12)
        lower = dt.date(START.year + year, month + 1, 1)
        year2, month2 = divmod(START.month + k, 12)
        upper = dt.date(START.year + year2, month2 + 1, 1)
        result.append((f"event_log_p{lower:%Y_%m}", lower, upper))
    return result


def build_template(engine: sa.Engine, n: int) -> None:
    """The rows, once, in a plain table every restore copies from."""
    span = (months()[-1][2] - START).total_seconds()
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS event_log_template")
        c.exec_driver_sql(
            "CREATE TABLE event_log_template AS SELECT i::bigint AS id, "
            f"timestamp '{START}' + (i - 1) * interval '{span / n:.9f} seconds' AS created_at, "
            "mod(i, 50000)::integer AS user_id, 'viewed case ' || mod(i, 977) AS action, "
            "md5(i::text) || md5((i + 1)::text) AS detail "
            f"FROM generate_series(1, {n}) AS g(i)"
        )


def build_table(engine: sa.Engine) -> None:
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS event_log CASCADE")
        c.exec_driver_sql(
            "CREATE TABLE event_log (id bigint NOT NULL, created_at timestamp NOT NULL, "
            "user_id integer NOT NULL, action text NOT NULL, detail text, "
            "PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)"
        )
        c.exec_driver_sql("CREATE INDEX event_log_created_at ON event_log (created_at)")
        for name, lower, upper in months():
            _partition(c, name, lower, upper)
        c.exec_driver_sql("INSERT INTO event_log SELECT * FROM event_log_template")
    _vacuum(engine, [name for name, _, _ in months()])


def _partition(c: sa.Connection, name: str, lower: dt.date, upper: dt.date) -> None:
    c.exec_driver_sql(
        f"CREATE TABLE {name} PARTITION OF event_log FOR VALUES FROM ('{lower}') TO ('{upper}')"
    )
    c.exec_driver_sql(f"ALTER TABLE {name} SET (autovacuum_enabled = false)")


def _vacuum(engine: sa.Engine, names: list[str]) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        for name in names:
            c.exec_driver_sql(f"VACUUM ANALYZE {name}")
        c.exec_driver_sql("ANALYZE event_log")
        c.exec_driver_sql("CHECKPOINT")


def restore(engine: sa.Engine) -> None:
    """Put back every partition with due rows (dropped, truncated or batched), untimed."""
    changed = [m for m in months() if m[1] < dt.date.fromisoformat(CUTOFF)]
    with engine.begin() as c:
        for name, lower, upper in changed:
            c.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            _partition(c, name, lower, upper)
            c.exec_driver_sql(
                f"INSERT INTO event_log SELECT * FROM event_log_template "
                f"WHERE created_at >= '{lower}' AND created_at < '{upper}'"
            )
    _vacuum(engine, [name for name, _, _ in changed])


def register_partman(engine: sa.Engine) -> bool:
    """Make `event_log` a pg_partman 4.x set (monthly, native), without retention yet.

    Registered in `partman.part_config` as `create_parent` would (which would make
    partitions up to today's date); one maintenance run, untimed, premakes next month.
    """
    with engine.begin() as c:
        if not c.exec_driver_sql(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman'"
        ).first():
            return False
        c.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS partman")
        c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
        c.exec_driver_sql("DELETE FROM partman.part_config WHERE parent_table = 'public.event_log'")
        c.exec_driver_sql("DROP TABLE IF EXISTS partman.template_public_event_log")
        c.exec_driver_sql("CREATE TABLE partman.template_public_event_log (LIKE event_log)")
        c.exec_driver_sql(
            "INSERT INTO partman.part_config (parent_table, control, partition_interval, "
            "partition_type, premake, datetime_string, template_table, retention, "
            "retention_keep_table, infinite_time_partitions) VALUES ('public.event_log', "
            "'created_at', '1 mon', 'native', 1, 'YYYY_MM', "
            "'partman.template_public_event_log', NULL, false, false)"
        )
        c.exec_driver_sql("SELECT partman.run_maintenance('public.event_log')")
    return True


def partman_drop(engine: sa.Engine) -> float:
    """pg_partman's retention drops the wholly due partitions: the call's time."""
    with engine.begin() as c:  # retention: everything that ended by the cutoff
        c.exec_driver_sql(
            "UPDATE partman.part_config SET retention = "
            f"(now() - timestamptz '{CUTOFF} 00:00+00')::interval::text "
            "WHERE parent_table = 'public.event_log'"
        )
    with engine.connect() as c:
        started = time.perf_counter()
        c.exec_driver_sql("SELECT partman.run_maintenance('public.event_log')")
        c.commit()
        seconds = time.perf_counter() - started
    with engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE partman.part_config SET retention = NULL "
            "WHERE parent_table = 'public.event_log'"
        )
    gone = _missing_partitions(engine)
    expected = {name for name, _, upper in months() if upper <= dt.date.fromisoformat(CUTOFF)}
    if gone != expected:
        raise SystemExit(f"pg_partman dropped {sorted(gone)}, expected {sorted(expected)}")
    return seconds


def _missing_partitions(engine: sa.Engine) -> set[str]:
    with engine.connect() as c:
        present = {
            r[0]
            for r in c.exec_driver_sql(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'event_log'::regclass"
            )
        }
    return {name for name, _, _ in months()} - present


def command(args: argparse.Namespace) -> list[str]:
    if args.gdpr_sweep:
        return [args.gdpr_sweep]
    installed = ROOT / ".venv" / "bin" / "gdpr-sweep"
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "gdpr_sweep"]


def config_text(url_env: str, partitions: str, batch_size: str | None) -> str:
    """`batch_size`: `--batch-size` as given, a number or a word such as "auto" (written
    as a TOML string), None: gdpr-sweep's default."""
    batch = ""
    if batch_size:
        value = batch_size if batch_size.isdigit() else json.dumps(batch_size)
        batch = f"batch_size = {value}\n"
    return (
        '[sweep]\nstate_url = "sqlite:///state.db"\ntimezone = "UTC"\nmax_fraction = 0.9\n'
        f'{batch}\n[databases.bench]\nurl_env = "{url_env}"\n\n'
        '[[rules]]\nid = "event-log"\ntable = "event_log"\naction = "delete"\n'
        f'since = "created_at"\nafter = "6 months"\npartitions = "{partitions}"\n'
    )


def timed_run(args, workdir: Path, partitions: str, env: dict[str, str], due: int) -> dict:
    """One `gdpr-sweep run` in a fresh process with an empty state database."""
    directory = workdir / partitions
    directory.mkdir(exist_ok=True)
    (directory / "sweep.toml").write_text(config_text("BENCH_URL", partitions, args.batch_size))
    shutil.copy(workdir / "state.db", directory / "state.db")
    phases = directory / "phases.json"
    phases.unlink(missing_ok=True)
    runner = command(args)
    if args.phases:  # the same CLI in the same interpreter, with a stopwatch on its phases
        runner = [sys.executable, str(HERE / "run_phases.py"), str(phases)]
    spawned = time.time()
    started = time.perf_counter()
    finished = subprocess.run(
        [*runner, "run", "-c", "sweep.toml", "--as-of", AS_OF, "--json", "--quiet"],
        cwd=directory, env=env, capture_output=True, text=True, timeout=7200, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"run ({partitions}) exit {finished.returncode}: {finished.stderr[-500:]}")
    (item,) = json.loads(finished.stdout)["items"]
    if item["done"] != due or item["left"] != 0:
        raise SystemExit(f"run ({partitions}): done {item['done']:,}, expected {due:,}")
    removed = WHOLLY_DUE if partitions == "drop" else 0
    if item["partitions_removed"] != removed:
        raise SystemExit(f"run ({partitions}): {item['partitions_removed']} partitions removed")
    sample = {"wall": wall, "partition_seconds": item["partition_seconds"],
              "batch_seconds": item["seconds"], "batches": item["batches"]}  # fmt: skip
    if args.phases and phases.exists():
        sample["phases"] = decompose(json.loads(phases.read_text()), spawned, wall)
    return sample


def decompose(recorded: dict, spawned: float, wall: float) -> dict[str, float]:
    """A run's wall time by phase (bench/run_phases.py); they add up to `wall`."""
    marks, spans = recorded["marks"], recorded["spans"]
    get = spans.get
    evaluate, execute = get("evaluate", 0.0), get("execute", 0.0)
    inside = sum(get(k, 0.0) for k in ("remove_partitions", "pin", "batches", "recount"))
    phases = {
        "start-up (interpreter, imports)": marks["imported"] - spawned,
        "evaluate: connect, reflect, row counts": evaluate - get("partition_counts", 0.0),
        "evaluate: partition counts": get("partition_counts", 0.0),
        "execute: connect, reflect, finish pending": execute - inside,
        "execute: partition drops": get("remove_partitions", 0.0),
        "execute: pin the row path's keys": get("pin", 0.0),
        "execute: batches (cutoff partition)": get("batches", 0.0),
        "execute: recount": get("recount", 0.0),
    }
    library = get("run_sweep", evaluate + execute)
    phases["run_sweep: state db, locks, trail"] = library - evaluate - execute
    phases["rest: CLI (config, summary), exit"] = wall - sum(phases.values())
    return {k: round(v, 4) for k, v in phases.items()}


def startup(args, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([*command(args), "--version"], env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", "-n", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", default="gdpr_sweep_partition_bench")
    parser.add_argument(
        "--batch-size", default=None, help='gdpr-sweep\'s sweep.batch_size: a number, or "auto"'
    )
    parser.add_argument("--no-phases", dest="phases", action="store_false",
                        help="do not time the run's phases (bench/run_phases.py)")  # fmt: skip
    parser.add_argument("--gdpr-sweep", default=None, help="the gdpr-sweep command to measure")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.gdpr_sweep:
        args.phases = False  # another command: no stopwatch inside it
    base = sa.engine.make_url(
        os.environ.get(
            "GDPR_SWEEP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
    )
    url = base.set(database=args.database)
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            if not c.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %(d)s", {"d": args.database}
            ).first():
                c.exec_driver_sql(f'CREATE DATABASE "{args.database}"')
    except sa.exc.OperationalError as exc:
        print(f"postgresql skipped: server unreachable ({type(exc.orig).__name__})")
        return 0
    finally:
        admin.dispose()
    engine = sa.create_engine(url)
    workdir = Path(tempfile.mkdtemp(prefix="gdpr-sweep-partition-bench-"))
    env = {**os.environ, "BENCH_URL": url.render_as_string(hide_password=False),
           "GDPR_SWEEP_KEY": KEY, "PYTHONPATH": str(ROOT)}  # fmt: skip
    started = time.perf_counter()
    build_template(engine, args.rows)
    build_table(engine)
    built = time.perf_counter() - started
    print(f"built {args.rows:,} rows in {MONTHS} partitions in {built:.0f} s; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)  # fmt: skip
    with engine.connect() as c:
        due = c.exec_driver_sql(
            f"SELECT count(*) FROM event_log WHERE created_at < '{CUTOFF}'"
        ).scalar_one()
    (workdir / "state.toml").write_text(config_text("BENCH_URL", "drop", None))
    subprocess.run([*command(args), "migrate", "-c", "state.toml"], cwd=workdir, env=env,
                   check=True, capture_output=True)  # fmt: skip
    partman = register_partman(engine)
    samples: dict[str, list] = {"drop": [], "off": [], "partman": [], "startup": []}
    for _ in range(args.repeat):
        samples["startup"].append(startup(args, env))
        restore(engine)
        samples["drop"].append(timed_run(args, workdir, "drop", env, due))
        restore(engine)
        samples["off"].append(timed_run(args, workdir, "off", env, due))
        if partman:
            restore(engine)
            samples["partman"].append(partman_drop(engine))
        print(f"  repetition done: drop {samples['drop'][-1]['wall']:.2f} s, off "
              f"{samples['off'][-1]['wall']:.2f} s", flush=True)  # fmt: skip
    if not args.keep:
        with engine.begin() as c:
            c.exec_driver_sql("DROP TABLE IF EXISTS event_log CASCADE")
            c.exec_driver_sql("DROP TABLE IF EXISTS event_log_template")
            if partman:
                c.exec_driver_sql(
                    "DELETE FROM partman.part_config WHERE parent_table = 'public.event_log'"
                )
                c.exec_driver_sql("DROP TABLE IF EXISTS partman.template_public_event_log")
    engine.dispose()
    return report(args, samples, due, partman)


def report(args, samples: dict[str, list], due: int, partman: bool) -> int:
    med = statistics.median
    drop = med(s["wall"] for s in samples["drop"])
    off = med(s["wall"] for s in samples["off"])
    boot = med(samples["startup"])
    dropping = med(s["partition_seconds"] for s in samples["drop"])
    print(f"\nPostgreSQL, {args.rows:,} rows in {MONTHS} monthly partitions, {due:,} due "
          f"({due / args.rows:.0%}), median of {args.repeat}")  # fmt: skip
    print(f"  gdpr-sweep run, partitions = \"drop\"   {drop:8.2f} s   "
          f"(drop itself {dropping:.3f} s; batches of the cutoff's partition "
          f"{med(s['batch_seconds'] for s in samples['drop']):.2f} s)")  # fmt: skip
    print(f'  gdpr-sweep run, partitions = "off"    {off:8.2f} s')
    print(f"  gdpr-sweep --version (start-up)      {boot:8.2f} s")
    ratio = off / drop
    net = (off - boot) / max(drop - boot, 1e-9)
    print(f"  off / drop: {ratio:.1f}x (net of start-up {net:.1f}x)  "
          f"{'PASS' if ratio >= RUN_GOAL else 'FAIL'} (goal >= {RUN_GOAL:g}x)")  # fmt: skip
    result = {"rows": args.rows, "due": due, "repeat": args.repeat, "samples": samples,
              "off_over_drop": ratio, "off_over_drop_net": net}  # fmt: skip
    if partman:
        theirs = med(samples["partman"])
        print(f"  pg_partman run_maintenance() retention {theirs:.3f} s")
        drop_ratio = dropping / theirs
        result["drop_over_partman"] = drop_ratio
        verdict = "PASS" if drop_ratio <= DROP_GOAL else "FAIL"
        print(f"  our drop / pg_partman's: {drop_ratio:.2f}x  {verdict} (goal <= {DROP_GOAL:g}x)")
    else:
        print("  pg_partman: not installed, comparison skipped")
    for mode in ("drop", "off"):
        timed = [s["phases"] for s in samples[mode] if "phases" in s]
        if timed:
            print(f'  run, partitions = "{mode}", by phase (median of {len(timed)}):')
            for name in timed[0]:
                print(f"    {name:<48} {med(t[name] for t in timed):8.3f} s")
    load = os.getloadavg()[1]
    print(f"  load average (5 min) at the end: {load:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result | {"load": load}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
