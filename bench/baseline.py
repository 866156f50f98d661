"""The hand-written baseline: what gdpr-sweep does, in plain DB-API calls.

Run as a fresh process by bench.py, so its start-up cost is comparable with the
gdpr-sweep process it is measured against:

    python bench/baseline.py '{"engine": ..., "connect": {...}, "op": ..., ...}'

It prints one JSON object: rows affected (or counted), batches, the longest batch
and `seconds`, the time from opening the connection to closing it (the driver is
imported before the clock starts).

Operations (BASELINES.md's recommended forms):
- `delete-batched` / `anonymise-batched`: keyset batching by primary-key ranges.
  Per batch, one transaction: `SELECT max(id) FROM (SELECT id ... WHERE due AND
  id > :last ORDER BY id LIMIT n)`, then `DELETE`/`UPDATE ... WHERE id > :last AND
  id <= :upper AND due`, commit.
- `delete-one` / `anonymise-one`: one unbatched statement, one commit.
- `count`: `SELECT count(*) ... WHERE due`, what `plan` computes for a delete rule.
- `noop`: connect, `SELECT 1`, close (start-up cost of a driver-only process).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from dbapi import PLACEHOLDER, anonymise_assignments, connect, cutoff_param, pending_predicate


def _dml(engine: str, action: str) -> tuple[str, tuple[Any, ...]]:
    """Return the DELETE or UPDATE statement head and the parameters it binds."""
    if action == "delete":
        return "DELETE FROM candidate", ()
    assignments, params = anonymise_assignments(engine)
    return f"UPDATE candidate SET {assignments}", params


def batched(connection: Any, engine: str, action: str, cutoff: Any, size: int) -> dict:
    p = PLACEHOLDER[engine]
    upper_sql = (
        f"SELECT max(id) FROM (SELECT id FROM candidate WHERE course_ended_at < {p} "
        f"AND id > {p} ORDER BY id LIMIT {int(size)}) AS batch"
    )
    head, head_params = _dml(engine, action)
    dml_sql = f"{head} WHERE id > {p} AND id <= {p} AND course_ended_at < {p}"
    cursor = connection.cursor()
    rows = batches = 0
    longest = 0.0
    last = 0  # the generated keys start at 1
    while True:
        started = time.perf_counter()
        cursor.execute(upper_sql, (cutoff, last))
        upper = cursor.fetchone()[0]
        if upper is None:
            connection.commit()
            break
        cursor.execute(dml_sql, (*head_params, last, upper, cutoff))
        rows += cursor.rowcount
        connection.commit()
        longest = max(longest, time.perf_counter() - started)
        batches += 1
        last = upper
    return {"rows": rows, "batches": batches, "longest_batch_seconds": longest}


def one_statement(connection: Any, engine: str, action: str, cutoff: Any) -> dict:
    head, head_params = _dml(engine, action)
    started = time.perf_counter()
    cursor = connection.cursor()
    cursor.execute(f"{head} WHERE course_ended_at < {PLACEHOLDER[engine]}", (*head_params, cutoff))
    rows = cursor.rowcount
    connection.commit()
    return {"rows": rows, "batches": 1, "longest_batch_seconds": time.perf_counter() - started}


def count(connection: Any, engine: str, cutoff: Any, pending: bool = False) -> dict:
    """COUNT(*) with the rule's predicate; `pending` adds the anonymise rule's "still to do"."""
    cursor = connection.cursor()
    extra = f" AND {pending_predicate(engine)}" if pending else ""
    started = time.perf_counter()
    cursor.execute(
        f"SELECT count(*) FROM candidate WHERE course_ended_at < {PLACEHOLDER[engine]}{extra}",
        (cutoff,),
    )
    rows = cursor.fetchone()[0]
    query_seconds = time.perf_counter() - started
    connection.rollback()
    return {"rows": rows, "query_seconds": query_seconds}


def noop(connection: Any) -> dict:
    cursor = connection.cursor()
    cursor.execute("SELECT 1")
    cursor.fetchone()
    connection.rollback()
    return {"rows": 0}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    engine, op = spec["engine"], spec["op"]
    cutoff = cutoff_param(engine, spec.get("cutoff", "2000-01-01"))
    __import__({"sqlite": "sqlite3", "postgresql": "psycopg", "mariadb": "pymysql"}[engine])
    started = time.perf_counter()
    connection = connect(engine, spec["connect"])
    try:
        if op in ("delete-batched", "anonymise-batched"):
            action = op.split("-")[0]
            result = batched(connection, engine, action, cutoff, spec["batch_size"])
        elif op in ("delete-one", "anonymise-one"):
            result = one_statement(connection, engine, op.split("-")[0], cutoff)
        elif op in ("count", "count-pending"):
            result = count(connection, engine, cutoff, pending=op == "count-pending")
        elif op == "noop":
            result = noop(connection)
        else:
            raise SystemExit(f"baseline.py: unknown op {op!r}")
    finally:
        connection.close()
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
