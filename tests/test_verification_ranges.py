"""Verification inside the batches (verification.py) and where the full recount stays.

A delete rule on PostgreSQL, or an anonymise rule on SQLite or MariaDB, whose due
predicate reads only its own row, on a table no other rule writes, is verified by its
batches' key ranges plus the tail above its last batch; the others (deletes on SQLite
and MariaDB, anonymise rules on PostgreSQL, rules that read or share other tables) by
the full recount after the run. Rows are written behind the sweep's back from its
progress hook: after the keys were pinned (`rule_started`) or after a batch committed
(`advanced`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep import execute
from gdpr_sweep.config import load_config
from gdpr_sweep.periods import parse_as_of
from gdpr_sweep.run_result import RunResult
from gdpr_sweep.sweep import apply_plan, load_plan, run_sweep
from gdpr_sweep.sweep_options import StopRequest, SweepOptions
from tests.configs import rule_toml
from tests.conftest import TargetDb, run_cli, write_config
from tests.test_apply import AS_OF, NEW, OLD

MAIL_DELETE = rule_toml("mail-delete", "mail", "delete", after="6 months", since="received_at")
MAIL_ANONYMISE = rule_toml(
    "mail-anonymise",
    "mail",
    "anonymise",
    after="1 month",
    since="received_at",
    only={"folder": ["inbox"]},
    columns={"subject": "null"},
)
NOTE_DELETE = rule_toml("note-delete", "note", "delete", after="6 months", since="written_at")


def schema() -> sa.MetaData:
    metadata = sa.MetaData()
    for name, clock in (("mail", "received_at"), ("note", "written_at")):
        sa.Table(
            name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("folder", sa.String(20)),
            sa.Column("subject", sa.String(120)),
            sa.Column(clock, sa.DateTime),
        )
    return metadata


def seed(target_db: TargetDb) -> None:
    """mail and note: keys 10, 20, ..., 300; every second one due (15 each)."""
    rows = {
        name: [
            {"id": 10 * i, "folder": "archive", "subject": f"s{i}", clock: OLD if i % 2 else NEW}
            for i in range(1, 31)
        ]
        for name, clock in (("mail", "received_at"), ("note", "written_at"))
    }
    target_db.create(schema(), rows)


def insert(target_db: TargetDb, table: str, key: int) -> None:
    """A due row written behind the sweep's back."""
    clock = "received_at" if table == "mail" else "written_at"
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(f"INSERT INTO {table} (id, folder, subject, {clock}) "
                        "VALUES (:id, 'archive', 'late', :t)"),
                {"id": key, "t": OLD},
            )  # fmt: skip
    finally:
        engine.dispose()


class Hook:
    """Progress hook: `action()` once, when `rule` starts (batch 0) or after its batch N."""

    def __init__(self, rule: str, batch: int, action: Callable[[], None]) -> None:
        self.rule, self.batch, self.action = rule, batch, action
        self.current: str | None = None
        self.batches, self.fired = 0, False

    def _fire(self) -> None:
        if self.current == self.rule and self.batches == self.batch and not self.fired:
            self.fired = True
            self.action()

    def rule_started(self, database: str, rule: str, due: int) -> object:
        self.current, self.batches = rule, 0
        self._fire()
        return None

    def advanced(self, token: object, rows: int) -> None:
        self.batches += 1
        self._fire()

    def rule_finished(self, token: object) -> None:
        self.current = None


def sweep(tmp_path: Path, target_db: TargetDb, monkeypatch, rules: str, hook: Hook) -> RunResult:
    path = write_config(tmp_path, rules, target_db.url, monkeypatch,
                        extra_sweep="batch_size = 3\nmax_fraction = 1.0")  # fmt: skip
    cfg = load_config(path)
    result = run_sweep(cfg, parse_as_of(AS_OF, cfg.sweep.tz), progress=hook)
    assert hook.fired
    return result


def verify_failed(tmp_path: Path, result: RunResult) -> list[tuple[str, int]]:
    path = tmp_path / "gdpr-sweep.toml"
    shown = run_cli("audit", "show", str(result.run_id), "-c", str(path), "--json").json()
    return [(e["rule_id"], e["rows"]) for e in shown["entries"] if e["kind"] == "verify-failed"]


def verify_only(tmp_path: Path) -> list[int]:
    path = tmp_path / "gdpr-sweep.toml"
    checked = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--verify-only", "--json")
    return [item["left"] for item in checked.json()["items"]]


def test_a_batch_range_reports_an_unpinned_due_row_in_it(target_db, tmp_path, monkeypatch):
    """Caught by a range: a due row written after the pins, into a range not yet swept.
    `apply` acts on the pinned keys only (`run` would sweep the row: test_inplace_keys)."""
    seed(target_db)
    path = write_config(tmp_path, MAIL_DELETE, target_db.url, monkeypatch,
                        extra_sweep="batch_size = 3\nmax_fraction = 1.0")  # fmt: skip
    plan_file = tmp_path / "plan.json"
    run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--out", str(plan_file))
    hook = Hook("mail-delete", 1, lambda: insert(target_db, "mail", 155))
    result = apply_plan(load_config(path), load_plan(plan_file), progress=hook)
    assert hook.fired
    assert result.exit_code == 3
    assert [(i.rule, i.due, i.done, i.left) for i in result.items] == [("mail-delete", 15, 15, 1)]
    assert "mail-delete: 1 row(s) still due after the run" in result.failures[0]["error"]
    assert verify_failed(tmp_path, result) == [("mail-delete", 1)]
    assert target_db.scalar("SELECT count(*) FROM mail WHERE id = 155") == 1
    assert verify_only(tmp_path) == [1]


def test_the_tail_is_counted_after_the_last_rule(target_db, tmp_path, monkeypatch):
    """Caught by the tail: a due row with a key above the last batch, written while the
    next rule runs."""
    seed(target_db)
    hook = Hook("note-delete", 0, lambda: insert(target_db, "mail", 1000))
    result = sweep(tmp_path, target_db, monkeypatch, MAIL_DELETE + NOTE_DELETE, hook)
    assert result.exit_code == 3
    assert {i.rule: (i.done, i.left) for i in result.items} == {
        "mail-delete": (15, 1),
        "note-delete": (15, 0),
    }
    assert verify_failed(tmp_path, result) == [("mail-delete", 1)]


def test_a_range_already_swept_is_not_read_again(target_db, tmp_path, monkeypatch):
    """What the ranges do not see: a due row written into a range whose batch committed.
    On PostgreSQL (a delete rule: ranges) the run reports nothing left; `run
    --verify-only` (the full count) finds it, and the next run deletes it. SQLite and
    MariaDB keep the recount for every rule (cheaper there): the run finds it."""
    seed(target_db)
    hook = Hook("mail-delete", 2, lambda: insert(target_db, "mail", 15))
    result = sweep(tmp_path, target_db, monkeypatch, MAIL_DELETE, hook)
    left = 0 if target_db.engine_name == "postgresql" else 1
    assert result.exit_code == (3 if left else 0), result.failures
    assert [(i.done, i.left) for i in result.items] == [(15, left)]
    assert verify_failed(tmp_path, result) == ([("mail-delete", 1)] if left else [])
    assert verify_only(tmp_path) == [1]
    again = run_cli("run", "-c", str(tmp_path / "gdpr-sweep.toml"), "--as-of", AS_OF, "--json")
    assert again.exit_code == 0, again.stderr
    assert [i["done"] for i in again.json()["items"]] == [1]
    assert verify_only(tmp_path) == [0]


def test_two_rules_on_one_table_keep_the_full_recount(target_db, tmp_path, monkeypatch):
    """Another rule writes the table: its work could make rows of a swept range due, so
    both rules are recounted in full after the run — the row written into a range
    already swept is found."""
    seed(target_db)
    engine = target_db.engine()
    with engine.begin() as connection:  # mail-anonymise: inbox rows, 15 due (one month)
        connection.execute(sa.text("UPDATE mail SET folder = 'inbox'"))
    engine.dispose()
    hook = Hook("mail-anonymise", 2, lambda: insert(target_db, "mail", 15))
    rules = MAIL_ANONYMISE + MAIL_DELETE
    result = sweep(tmp_path, target_db, monkeypatch, rules, hook)
    assert result.exit_code == 3
    # The late row is in the archive folder: due for the delete rule only.
    assert {i.rule: (i.due, i.left) for i in result.items} == {
        "mail-anonymise": (15, 0),
        "mail-delete": (15, 1),
    }
    assert verify_failed(tmp_path, result) == [("mail-delete", 1)]


def test_an_anonymise_rule_by_engine(target_db, tmp_path, monkeypatch):
    """An anonymise rule is recounted in full after the run on PostgreSQL (cheaper there
    than reading each batch's rows again after its UPDATE): a row written into a range
    already swept is found. On SQLite and MariaDB its batches' ranges are counted
    instead, which do not see that row; `--verify-only` does."""
    seed(target_db)
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE mail SET folder = 'inbox'"))
    engine.dispose()

    def late_inbox_row() -> None:
        insert(target_db, "mail", 15)
        engine = target_db.engine()
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE mail SET folder = 'inbox' WHERE id = 15"))
        engine.dispose()

    hook = Hook("mail-anonymise", 2, late_inbox_row)
    result = sweep(tmp_path, target_db, monkeypatch, MAIL_ANONYMISE, hook)
    if target_db.engine_name == "postgresql":
        assert result.exit_code == 3
        assert [(i.due, i.done, i.left) for i in result.items] == [(15, 15, 1)]
        assert verify_failed(tmp_path, result) == [("mail-anonymise", 1)]
    else:
        assert result.exit_code == 0, result.failures
        assert [(i.due, i.done, i.left) for i in result.items] == [(15, 15, 0)]
        assert verify_failed(tmp_path, result) == []
    assert verify_only(tmp_path) == [1]


@pytest.mark.parametrize("stop_after", [1, 3])
def test_a_stopped_run_counts_what_is_left_as_before(target_db, tmp_path, monkeypatch, stop_after):
    """Stopped between batches: the rows left are the ranges' rows still due plus the
    tail (here: everything not yet swept), recorded as `left-after-run`, not a failure."""
    seed(target_db)
    stop = StopRequest()
    hook = Hook("mail-delete", stop_after, lambda: stop.request("test"))
    path = write_config(tmp_path, MAIL_DELETE + NOTE_DELETE, target_db.url, monkeypatch,
                        extra_sweep="batch_size = 3\nmax_fraction = 1.0")  # fmt: skip
    cfg = load_config(path)
    result = run_sweep(cfg, parse_as_of(AS_OF, cfg.sweep.tz), progress=hook,
                       options=SweepOptions(stop=stop))  # fmt: skip
    assert result.status == "stopped" and not result.failures
    done = 3 * stop_after
    assert {i.rule: (i.done, i.left) for i in result.items} == {
        "mail-delete": (done, 15 - done),
        "note-delete": (0, 15),
    }
    shown = run_cli("audit", "show", str(result.run_id), "-c", str(path), "--json").json()
    left = [(e["rule_id"], e["rows"]) for e in shown["entries"] if e["kind"] == "left-after-run"]
    assert left == [("mail-delete", 15 - done), ("note-delete", 15)]
    assert verify_only(tmp_path) == [15 - done, 15]


def test_a_row_the_application_finishes_during_a_batch_is_not_reported_left(
    target_db, tmp_path, monkeypatch
):
    """A due row of the batch's range that the application anonymises itself between
    the batch's boundary read and its UPDATE: the UPDATE leaves it (nothing left to do),
    and the check after it must read the row as it now is. On MariaDB the batch runs in
    REPEATABLE READ, whose plain reads see the snapshot of the boundary read — the row
    as it was, still due — so the range count reads with a lock (the latest committed
    rows, the range being locked by the UPDATE already)."""
    if target_db.engine_name == "sqlite":
        pytest.skip("SQLite has one writer: no other connection commits during a batch")
    seed(target_db)
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE mail SET folder = 'inbox'"))
    engine.dispose()
    fired = []

    def finish_row_30() -> None:
        engine = target_db.engine()
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("UPDATE mail SET subject = NULL WHERE id = 30"))
        finally:
            engine.dispose()

    real_failpoint = execute.failpoint

    def failpoint(name: str) -> None:
        if name == "after-batch-intent" and not fired:
            fired.append(name)  # the first batch: keys 10, 30, 50
            finish_row_30()
        real_failpoint(name)

    monkeypatch.setattr(execute, "failpoint", failpoint)
    path = write_config(tmp_path, MAIL_ANONYMISE, target_db.url, monkeypatch,
                        extra_sweep="batch_size = 3\nmax_fraction = 1.0")  # fmt: skip
    cfg = load_config(path)
    result = run_sweep(cfg, parse_as_of(AS_OF, cfg.sweep.tz))
    assert fired
    assert result.exit_code == 0, result.failures
    assert [(i.due, i.done, i.left) for i in result.items] == [(15, 14, 0)]
    assert verify_failed(tmp_path, result) == []
    assert verify_only(tmp_path) == [0]
