"""Where one `gdpr-sweep run` of bench.py's rules goes, phase by phase.

    .venv/bin/python bench/phases.py ENGINE RULE [--runs K] [--rows N] [--setup]

ENGINE is sqlite, postgresql or mariadb (servers as for bench.py), RULE delete or
anonymise. The table is generated once into a kept work directory (`--setup` makes it
again); each run restores it, runs `gdpr-sweep run` under `run_phases.py` and prints
its wall time, the phase marks and spans (imports, evaluation, pins, batches, recount)
and what it did. For looking into one case; `make bench` is the measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from targets import AS_OF, make_target

import bench

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["sqlite", "postgresql", "mariadb"])
    parser.add_argument("rule", choices=["delete", "anonymise"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--setup", action="store_true", help="generate the table again")
    parser.add_argument("--batch-size", default="auto", metavar="auto|N")
    options = parser.parse_args()
    work = Path(tempfile.gettempdir()) / f"gdpr-sweep-phases-{options.engine}-{options.rows}"
    args = bench.parse_args(
        ["--rows", str(options.rows), "--batch-size", options.batch_size, "--keep"]
    )
    url = None
    if options.engine != "sqlite":
        variable, default = bench.SERVER_URLS[options.engine]
        url = os.environ.get(variable) or default
    (work / options.engine).mkdir(parents=True, exist_ok=True)
    target = make_target(
        options.engine, lambda m: print(m, file=sys.stderr), work / options.engine, url,
        args.database,
    )  # fmt: skip
    engine_bench = bench.EngineBench(target, args, work, options.rows, 1)
    directory = work / options.rule
    if options.setup or not (directory / "state.fresh.db").exists():
        engine_bench.setup()
    for _ in range(options.runs):
        engine_bench.restore()
        shutil.copyfile(directory / "state.fresh.db", directory / "state.db")
        phases = work / "phases.json"
        config = str(directory / "gdpr-sweep.toml")
        argv = [sys.executable, str(HERE / "run_phases.py"), str(phases), "run", "-c", config,
                "--as-of", AS_OF, "--json", "--quiet"]  # fmt: skip
        started = time.time()
        finished = subprocess.run(
            argv, env=engine_bench.env, cwd=work, capture_output=True, text=True, check=False
        )
        wall = time.time() - started
        if finished.returncode != 0:
            print(finished.stderr, file=sys.stderr)
            return finished.returncode
        recorded = json.loads(phases.read_text())
        item = json.loads(finished.stdout)["items"][0]
        marks = {k: round(v - started, 3) for k, v in recorded["marks"].items()}
        spans = {k: round(v, 3) for k, v in recorded["spans"].items()}
        print(
            f"wall {wall:.2f} s; marks {marks}; spans {spans}; due {item['due']:,}, "
            f"done {item['done']:,} in {item['batches']} batches"
        )
    target.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
