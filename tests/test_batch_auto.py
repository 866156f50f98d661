"""`batch_size = "auto"`: batches sized toward `batch_time`, the same rows swept exactly.

Behaviour on SQLite, PostgreSQL and MariaDB: a composite key with a text column, a held
row, a cascade child; the audit trail's batches cover the due keys with contiguous
ranges and record each batch's size. A generous `batch_time` makes the sizes grow by
the permitted factor each batch, whatever the machine's speed; the sizing arithmetic
itself (shrinking on an overshoot, the bounds) is checked on `BatchSizer` directly.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from gdpr_sweep.batch_sizing import (
    MAX_BATCH_SIZE,
    MAX_HASH_BATCH_SIZE,
    MIN_BATCH_SIZE,
    BatchSizer,
)
from tests.conftest import TargetDb, query_rows, run_cli, write_config

AS_OF = "2026-06-01"
OLD = dt.datetime(2025, 1, 1, 12)  # due under "1 year" at AS_OF
NEW = dt.datetime(2026, 5, 1, 12)  # not due
N = 24_000  # three of every four due: 18,000 rows, batches of 5,000, 10,000, then the rest
REGIONS = ("north", "South", "öst")


def is_due(i: int) -> bool:
    return i % 4 != 0


def account_table(metadata: sa.MetaData) -> sa.Table:
    """The rule's table: a composite key with a text column first."""
    return sa.Table(
        "account",
        metadata,
        sa.Column("region", sa.String(12), primary_key=True),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("happened_at", sa.DateTime),
        sa.Column("note", sa.String(40)),
    )


def build(target_db: TargetDb) -> None:
    metadata = sa.MetaData()
    account_table(metadata)
    sa.Table(
        "visit",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("region", sa.String(12), nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(["region", "account_id"], ["account.region", "account.id"]),
        sa.Index("ix_visit_account", "region", "account_id"),
    )
    accounts = [
        {
            "region": REGIONS[i % 3],
            "id": i,
            "happened_at": OLD if is_due(i) else NEW,
            "note": "n",
        }
        for i in range(N)
    ]
    visits = [{"id": i, "region": REGIONS[i % 3], "account_id": i} for i in range(0, N, 7)]
    target_db.create(metadata, {"account": accounts, "visit": visits})


def rule(action: str) -> str:
    extra = {
        "delete": 'cascade = ["visit"]\n',
        "anonymise": 'columns = { note = "null" }\n',
        "hash": 'columns = { note = "hash" }\n',  # pseudonyms computed in Python, bound
    }[action]
    verb = "delete" if action == "delete" else "anonymise"
    return (
        f'[[rules]]\nid = "r"\ntable = "account"\naction = "{verb}"\nafter = "1 year"\n'
        f'since = "happened_at"\n{extra}'
    )


def batches(tmp_path) -> list[tuple[int, str | None, str | None, dict]]:
    with sqlite3.connect(tmp_path / "state.db") as connection:
        found = connection.execute(
            "SELECT rows, key_from, key_to, details FROM audit_entries "
            "WHERE kind = 'batch' ORDER BY id"
        ).fetchall()
    return [
        (rows, key_from, key_to, json.loads(details)) for rows, key_from, key_to, details in found
    ]


@pytest.mark.parametrize("action", ["delete", "anonymise", "hash"])
def test_auto_sweeps_exactly_the_due_rows_in_growing_batches(
    target_db, tmp_path, monkeypatch, action
):
    build(target_db)
    held = (REGIONS[5 % 3], 5)  # due, but held
    config = write_config(
        tmp_path,
        rule(action),
        target_db.url,
        monkeypatch,
        extra_sweep='batch_size = "auto"\nbatch_time = "60s"\nmax_fraction = 1.0',
    )
    added = run_cli(
        "hold", "add", "-c", str(config), "-d", "main", "--table", "account",
        "--key", f"region={held[0]}", "--key", f"id={held[1]}", "--reason", "case 1",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr + added.stdout
    due = sum(1 for i in range(N) if is_due(i)) - 1

    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr + result.stdout
    item = result.json()["items"][0]
    assert item["done"] == item["due"] == due
    assert item["held"] == 1 and item["left"] == 0

    # 60 s a batch is far off: each batch doubles the last (5,000 first), the last is
    # what is left. Ranges are contiguous: each batch starts where the last ended.
    trail = batches(tmp_path)
    assert [d["batch_size"] for *_, d in trail] == [5000, 10000, 20000]
    assert [rows for rows, *_ in trail] == [5000, 10000, due - 15000]
    assert trail[0][1] is None
    assert [f for _, f, _, _ in trail[1:]] == [t for _, _, t, _ in trail[:-1]]

    left = {(r, i): n for r, i, n in query_rows(target_db, "SELECT region, id, note FROM account")}
    if action == "delete":
        assert set(left) == {(REGIONS[i % 3], i) for i in range(N) if not is_due(i)} | {held}
        visits = {a for (a,) in query_rows(target_db, "SELECT account_id FROM visit")}
        assert visits == {i for i in range(0, N, 7) if not is_due(i) or i == held[1]}
    else:
        assert len(left) == N
        for (region, i), note in left.items():
            if not is_due(i) or (region, i) == held:
                assert note == "n", (region, i)
            elif action == "hash":
                assert note not in (None, "n"), (region, i)
            else:
                assert note is None, (region, i)
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


def test_plan_sql_shows_the_first_batch_size_and_says_it_adapts(tmp_path, monkeypatch):
    target = tmp_path / "target.db"
    engine = sa.create_engine(f"sqlite:///{target}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE account (id INTEGER PRIMARY KEY, happened_at TIMESTAMP, note TEXT)"
        )
    engine.dispose()
    body = rule("anonymise").replace('"account"', '"account"')
    config = write_config(
        tmp_path, body, f"sqlite:///{target}", monkeypatch, extra_sweep='batch_size = "auto"'
    )
    shown = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--sql")
    assert shown.exit_code == 0, shown.stderr + shown.stdout
    assert "LIMIT 5000" in shown.stdout or "5000" in shown.stdout
    assert "sweep.batch_time" in shown.stdout


@pytest.mark.parametrize(
    ("sweep", "key", "words"),
    [
        ('batch_size = "fast"', "sweep.batch_size", 'must be an integer or "auto"'),
        ("batch_size = 0", "sweep.batch_size", "must be between"),
        ('batch_time = "1ms"', "sweep.batch_time", "between 10ms and 60s"),
        ('batch_time = "soon"', "sweep.batch_time", "not a duration"),
        ("batch_time = 0.5", "sweep.batch_time", "must be a string"),
    ],
)
def test_bad_batch_settings_exit_2_naming_the_key(tmp_path, monkeypatch, sweep, key, words):
    config = write_config(
        tmp_path, rule("delete"), f"sqlite:///{tmp_path / 't.db'}", monkeypatch, extra_sweep=sweep
    )
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF)
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert key in message and words in message, message
    assert "Traceback" not in message and len(message.splitlines()) == 1
    assert not (tmp_path / "t.db").exists() or (tmp_path / "t.db").stat().st_size == 0


def test_sizer_aims_at_the_target_time():
    sizer = BatchSizer("auto", 0.5)
    assert sizer.size == 5000
    sizer.record(0.1)  # five times too fast: at most twice the size
    assert sizer.size == 10000
    sizer.record(0.4)  # a little fast: 12,500
    assert sizer.size == 12000
    sizer.record(1.2)  # overshot: shrinks in proportion at once
    assert sizer.size == 5000
    sizer.record(100.0)  # far over: at most a tenth per batch, never below the minimum
    assert sizer.size == 500
    sizer.record(100.0)
    assert sizer.size == MIN_BATCH_SIZE
    for _ in range(40):
        sizer.record(0.0)
    assert sizer.size == MAX_BATCH_SIZE
    assert sizer.largest == MAX_BATCH_SIZE


def test_sizer_stays_under_a_ceiling():
    # A rule with `hash` columns reads its batch into memory: at most 20,000 keys.
    sizer = BatchSizer("auto", 0.5, MAX_HASH_BATCH_SIZE)
    for _ in range(10):
        sizer.record(0.0)
    assert sizer.size == MAX_HASH_BATCH_SIZE


def test_sizer_keeps_a_numeric_size():
    sizer = BatchSizer(300, 0.5)
    for seconds in (0.0, 0.01, 5.0):
        sizer.record(seconds)
        assert sizer.size == 300


def test_lock_timeout_bounds_every_batch_of_an_auto_run(target_db, tmp_path, monkeypatch):
    # PostgreSQL sends SET LOCAL with each batch, MariaDB sets the session value once per
    # rule: either way a batch meeting a row the application holds gives up after
    # lock_timeout (exit 3, nothing half-done), and the next run finishes the work.
    if target_db.engine_name == "sqlite":
        pytest.skip("no row locks on SQLite")
    metadata = sa.MetaData()
    account_table(metadata)
    rows = [
        {"region": "north", "id": i, "happened_at": OLD if is_due(i) else NEW, "note": "n"}
        for i in range(400)
    ]
    target_db.create(metadata, {"account": rows})
    config = write_config(
        tmp_path,
        rule("anonymise"),
        target_db.url,
        monkeypatch,
        extra_sweep='batch_size = 100\nlock_timeout = "1s"\nmax_fraction = 1.0',
    )
    engine = target_db.engine()
    blocker = engine.connect()
    try:
        blocker.begin()
        blocker.exec_driver_sql("SELECT * FROM account WHERE id = 350 FOR UPDATE").fetchall()
        release = threading.Timer(30, blocker.rollback)  # never hang the suite
        release.start()
        started = time.monotonic()
        stopped = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
        waited = time.monotonic() - started
        release.cancel()
        assert stopped.exit_code == 3, stopped.stderr + stopped.stdout
        assert waited < 20
        blocker.rollback()
    finally:
        blocker.close()
        engine.dispose()
    finished = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert finished.exit_code == 0, finished.stderr + finished.stdout
    notes = dict(query_rows(target_db, "SELECT id, note FROM account"))
    assert notes == {i: (None if is_due(i) else "n") for i in range(400)}
