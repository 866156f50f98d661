"""MariaDB batch shapes at the driver level: what one batch's statements cost.

    .venv/bin/python bench/mariadb_shapes.py [--runs 2] [--size 57000]

Needs the 1M-row template `bench/phases.py mariadb delete --setup` leaves in
`gdpr_sweep_bench_template.candidate` (servers as for bench.py). Each run copies it to
`gdpr_sweep_bench.shapes`, then deletes every due row in batches of `--size` keys:

- `two statements`: the boundary read (`SELECT max(id) FROM (… ORDER BY id LIMIT n)`)
  and `DELETE … WHERE id > :last AND id <= :upper AND due`, as gdpr-sweep does;
- `one statement`: `DELETE … WHERE id > :last AND due ORDER BY id LIMIT n RETURNING
  id` (tried in `run` and taken out: RESULTS.md, issue 22 round 4);
- `range check` (anonymise): the in-batch `count(*)` of the range still due after the
  UPDATE, plain and as a locking read (`LOCK IN SHARE MODE`).

The due predicate is gdpr-sweep's (clock and the zero-date checks). Prints seconds per
shape and run. For looking into one question; `make bench` is the measurement.
"""

from __future__ import annotations

import argparse
import os
import time
from urllib.parse import urlsplit

import pymysql

DUE = (
    "course_ended_at < '2024-07-01' AND year(course_ended_at) > 0"
    " AND month(course_ended_at) > 0 AND dayofmonth(course_ended_at) > 0"
)
PENDING = (
    " AND (name IS NOT NULL OR email IS NOT NULL OR cpr IS NOT NULL OR address IS NOT NULL"
    " OR (notes IS NOT NULL AND notes <> '[redacted]')"
    " OR (birth_date IS NOT NULL AND birth_date <> makedate(year(birth_date), 1)))"
)
SET = (
    "SET name = NULL, email = NULL, cpr = NULL, address = NULL, notes = '[redacted]',"
    " birth_date = makedate(year(birth_date), 1)"
)


def connect() -> pymysql.Connection:
    url = urlsplit(
        os.environ.get("GDPR_SWEEP_TEST_MARIADB_URL") or "mysql+pymysql://root@127.0.0.1:3306/x"
    )
    return pymysql.connect(host=url.hostname, port=url.port or 3306, user=url.username,
                           password=url.password or "", database="gdpr_sweep_bench")  # fmt: skip


def restore(connection: pymysql.Connection) -> None:
    cursor = connection.cursor()
    cursor.execute("DROP TABLE IF EXISTS shapes")
    cursor.execute("CREATE TABLE shapes LIKE gdpr_sweep_bench_template.candidate")
    cursor.execute("INSERT INTO shapes SELECT * FROM gdpr_sweep_bench_template.candidate")
    connection.commit()
    cursor.execute("ANALYZE TABLE shapes")
    cursor.fetchall()
    time.sleep(2)


def two_statements(connection: pymysql.Connection, size: int) -> int:
    cursor, last, rows = connection.cursor(), 0, 0
    while True:
        cursor.execute(f"SELECT max(id) FROM (SELECT id FROM shapes WHERE {DUE} AND id > %s"
                       " ORDER BY id LIMIT %s) AS batch", (last, size))  # fmt: skip
        upper = cursor.fetchone()[0]
        if upper is None:
            return rows
        rows += cursor.execute(f"DELETE FROM shapes WHERE id > %s AND id <= %s AND {DUE}",
                               (last, upper))  # fmt: skip
        connection.commit()
        last = upper


def one_statement(connection: pymysql.Connection, size: int) -> int:
    cursor, last, rows = connection.cursor(), 0, 0
    while True:
        cursor.execute(f"DELETE FROM shapes WHERE id > %s AND {DUE} ORDER BY id LIMIT %s"
                       " RETURNING id", (last, size))  # fmt: skip
        keys = [row[0] for row in cursor.fetchall()]
        connection.commit()
        rows += len(keys)
        if len(keys) < size:
            return rows
        last = max(keys)


def anonymise_checked(connection: pymysql.Connection, size: int, locking: bool) -> int:
    cursor, last, rows = connection.cursor(), 0, 0
    lock = " LOCK IN SHARE MODE" if locking else ""
    while True:
        cursor.execute(f"SELECT max(id) FROM (SELECT id FROM shapes WHERE {DUE}{PENDING}"
                       " AND id > %s ORDER BY id LIMIT %s) AS batch", (last, size))  # fmt: skip
        upper = cursor.fetchone()[0]
        if upper is None:
            return rows
        rows += cursor.execute(f"UPDATE shapes {SET} WHERE id > %s AND id <= %s AND {DUE}"
                               f"{PENDING}", (last, upper))  # fmt: skip
        cursor.execute(f"SELECT count(*) FROM shapes WHERE id > %s AND id <= %s AND {DUE}"
                       f"{PENDING}{lock}", (last, upper))  # fmt: skip
        assert cursor.fetchone()[0] == 0
        connection.commit()
        last = upper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--size", type=int, default=57_000)
    options = parser.parse_args()
    connection = connect()
    shapes = {
        "delete, two statements": lambda: two_statements(connection, options.size),
        "delete, one statement": lambda: one_statement(connection, options.size),
        "anonymise, plain range check": lambda: anonymise_checked(connection, options.size, False),
        "anonymise, locking range check": lambda: anonymise_checked(connection, options.size, True),
    }
    for run in range(1, options.runs + 1):
        for name, shape in shapes.items():
            restore(connection)
            started = time.perf_counter()
            rows = shape()
            print(f"run {run}  {name:32} {time.perf_counter() - started:6.3f} s  {rows:,} rows",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
