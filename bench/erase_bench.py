"""Erasure of one person across the demo schema scaled to N candidates (default 1,000,000).

Builds the demo schema (gdpr_sweep.demo.tables.demo_metadata, whose foreign-key and link
columns are indexed) with N candidates, one counselling case, one consultant mail, one
attachment each and an invoice for every second candidate, generated on the server.
Then times `gdpr-sweep erase --subject email=...` (the whole process, start-up
included) for `--repeat` different people, checks each receipt, and prints the median
against the goal (< 1 s).

    .venv/bin/python bench/erase_bench.py --rows 1000000 --engines sqlite,postgresql,mariadb
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from gdpr_sweep.demo.config import demo_config_text  # noqa: E402
from gdpr_sweep.demo.tables import demo_metadata  # noqa: E402

GOAL_SECONDS = 1.0
DEFAULT_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/gdpr_sweep_bench",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/gdpr_sweep_bench",
}


def numbers(engine: str, n: int) -> str:
    """A FROM clause yielding i = 1..n on the server."""
    if engine == "postgresql":
        return f"generate_series(1, {n}) AS g(i)"
    if engine == "mariadb":
        return f"(SELECT seq AS i FROM seq_1_to_{n}) AS g"
    return (
        f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "
        "SELECT i FROM s) AS g"
    )


def cat(engine: str, *parts: str) -> str:
    return f"CONCAT({', '.join(parts)})" if engine == "mariadb" else " || ".join(parts)


def build(url: str, engine: str, n: int) -> None:
    eng = sa.create_engine(url)
    metadata = demo_metadata()
    with eng.begin() as c:
        metadata.drop_all(c)
        metadata.create_all(c)
        i = "CAST(i AS CHAR)" if engine == "mariadb" else "CAST(i AS TEXT)"
        c.exec_driver_sql(
            "INSERT INTO candidate (id, name, email, cpr, phone, address, birth_date, created_at) "
            f"SELECT i, {cat(engine, repr('Person '), i)}, "
            f"{cat(engine, repr('p'), i, repr('@example.dk'))}, {cat(engine, repr('cpr-'), i)}, "
            f"'+45 0000 0000', 'Fakevej 1', '1980-01-01', '2024-01-01 10:00:00' "
            f"FROM {numbers(engine, n)}"
        )
        c.exec_driver_sql(
            "INSERT INTO counselling_case (id, candidate_id, municipality, programme, status, "
            "course_started_on, participant_name, health_notes) "
            f"SELECT i, i, 'Aarhus', 'JobSpot', 'open', '2025-01-01', 'x', 'note' "
            f"FROM {numbers(engine, n)}"
        )
        c.exec_driver_sql(
            "INSERT INTO consultant_mail (id, candidate_email, subject_line, body, sent_at) "
            f"SELECT i, {cat(engine, repr('p'), i, repr('@example.dk'))}, 'CV', 'body', "
            f"'2025-05-01 10:00:00' FROM {numbers(engine, n)}"
        )
        c.exec_driver_sql(
            "INSERT INTO attachment (id, data_item_type, data_item_id, filename, uploaded_at) "
            f"SELECT i, 100, i, 'cv.pdf', '2025-05-01 10:00:00' FROM {numbers(engine, n)}"
        )
        c.exec_driver_sql(
            "INSERT INTO invoice (id, candidate_id, invoice_date, amount, recipient_name) "
            f"SELECT i, i * 2, '2025-03-01', 100, 'x' FROM {numbers(engine, n // 2)}"
        )
    with eng.begin() as c:
        if engine == "postgresql" or engine == "sqlite":
            c.exec_driver_sql("ANALYZE")
    eng.dispose()


def _ensure_database(url: str, engine: str) -> None:
    """Create the benchmark's own database on the server if it is missing."""
    admin = url.rsplit("/", 1)[0] + ("/postgres" if engine == "postgresql" else "/")
    server = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as c:
            exists = c.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = 'gdpr_sweep_bench'"
                if engine == "postgresql"
                else "SHOW DATABASES LIKE 'gdpr_sweep_bench'"
            ).first()
            if not exists:
                c.exec_driver_sql("CREATE DATABASE gdpr_sweep_bench")
    finally:
        server.dispose()


def erase(config: Path, email: str, env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    finished = subprocess.run(
        [
            str(HERE.parent / ".venv" / "bin" / "gdpr-sweep"),
            "erase",
            "-c",
            str(config),
            "--subject",
            f"email={email}",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"erase failed: {finished.stderr.strip()}")
    return wall, json.loads(finished.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", "-n", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgresql,mariadb")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gdpr-sweep-erase-bench-"))
    results = []
    for engine in args.engines.split(","):
        url = f"sqlite:///{workdir / 'erase.db'}" if engine == "sqlite" else DEFAULT_URLS[engine]
        if engine != "sqlite":
            try:
                _ensure_database(url, engine)
            except sa.exc.OperationalError as exc:
                print(f"{engine:<11} skipped: server unreachable ({type(exc.orig).__name__})")
                continue
        started = time.perf_counter()
        build(url, engine, args.rows)
        built = time.perf_counter() - started
        config = workdir / f"{engine}.toml"
        config.write_text(
            demo_config_text()
            .replace('url = "sqlite:///demo.db"', 'url_env = "ERASE_BENCH_URL"')
            .replace(
                'state_url = "sqlite:///gdpr-sweep-state.db"',
                f'state_url = "sqlite:///{engine}-state.db"',
            )
        )
        env = {
            **os.environ,
            "ERASE_BENCH_URL": url,
            "GDPR_SWEEP_KEY": "erase-benchmark-key-0123456789",
        }
        erase(config, "p1@example.dk", env)  # warm up: state database, caches
        times = []
        for k in range(args.repeat):
            person = args.rows // 2 - 2 * k  # an even id: the person has an invoice
            wall, receipt = erase(config, f"p{person}@example.dk", env)
            erased = {(e["table"], e["action"]): e["rows"] for e in receipt["erased"]}
            kept = {k["table"]: k["rows"] for k in receipt["kept"]}
            expected = {
                ("consultant_mail", "deleted"): 1,
                ("attachment", "deleted"): 1,
                ("counselling_case", "deleted"): 1,
                ("candidate", "anonymised"): 1,
            }
            if erased != expected or kept != {"invoice": 1}:
                raise SystemExit(f"{engine}: unexpected receipt {erased} {kept}")
            times.append(wall)
        cleanup = sa.create_engine(url)
        with cleanup.begin() as c:  # leave the benchmark database as we found it
            demo_metadata().drop_all(c)
        cleanup.dispose()
        median = statistics.median(times)
        results.append((engine, median, built))
        print(
            f"{engine:<11} {args.rows:>10,} candidates  erase one subject: median {median:.3f} s "
            f"of {args.repeat} (runs {', '.join(f'{t:.3f}' for t in times)}; "
            f"build {built:.0f} s)  {'PASS' if median < GOAL_SECONDS else 'FAIL'} "
            f"(< {GOAL_SECONDS:g} s, whole process)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
