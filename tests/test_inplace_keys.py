"""`run` walks a self-contained rule's table in place; `apply` and the other rules pin.

A rule whose due predicate reads only its own row, on a table no other rule of the
database writes, needs no pins in `run` (inplace_keys.py): its batches take the next
due keys from the table itself and re-check the whole due predicate, clock included.
So a due row written ahead of the sweep while it runs is swept too, and a row whose
clock an application moved since the evaluation is left alone. `apply` acts on the
pinned (reviewed) keys whatever the rule, and a rule another rule's work can affect
is pinned in `run` too. Rows are changed behind the sweep's back from its progress
hook, after the keys were pinned (`rule_started`) or after a batch committed.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from gdpr_sweep.config import load_config
from gdpr_sweep.periods import parse_as_of
from gdpr_sweep.sweep import apply_plan, load_plan, run_sweep
from tests.conftest import TargetDb, run_cli, write_config
from tests.test_apply import AS_OF, NEW
from tests.test_verification_ranges import (
    MAIL_ANONYMISE,
    MAIL_DELETE,
    Hook,
    insert,
    schema,
    seed,
    verify_failed,
)

SWEEP = "batch_size = 3\nmax_fraction = 1.0"


def config(tmp_path: Path, target_db: TargetDb, monkeypatch, rules: str) -> Path:
    return write_config(tmp_path, rules, target_db.url, monkeypatch, extra_sweep=SWEEP)


def set_clock(target_db: TargetDb, key: int, when) -> None:
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE mail SET received_at = :t WHERE id = :id"), {"t": when, "id": key}
            )
    finally:
        engine.dispose()


def keys(target_db: TargetDb) -> set[int]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            return set(connection.execute(sa.text("SELECT id FROM mail")).scalars())
    finally:
        engine.dispose()


def reseed(target_db: TargetDb) -> None:
    engine = target_db.engine()
    try:
        schema().drop_all(engine)
    finally:
        engine.dispose()
    seed(target_db)


def test_run_sweeps_a_due_row_written_ahead_of_it(target_db, tmp_path, monkeypatch):
    """In place: a due row inserted above the batches while the rule runs is deleted."""
    seed(target_db)
    path = config(tmp_path, target_db, monkeypatch, MAIL_DELETE)
    cfg = load_config(path)
    hook = Hook("mail-delete", 1, lambda: insert(target_db, "mail", 155))
    result = run_sweep(cfg, parse_as_of(AS_OF, cfg.sweep.tz), progress=hook)
    assert hook.fired
    assert result.exit_code == 0, result.failures
    assert [(i.rule, i.due, i.done, i.left) for i in result.items] == [("mail-delete", 15, 16, 0)]
    assert keys(target_db) == {10 * i for i in range(2, 31, 2)}  # the 15 recent rows
    assert verify_failed(tmp_path, result) == []


def test_run_leaves_a_row_whose_clock_moved_since_the_evaluation(target_db, tmp_path, monkeypatch):
    """In place, the batch re-checks the clock: a row made recent meanwhile stays."""
    seed(target_db)
    path = config(tmp_path, target_db, monkeypatch, MAIL_DELETE)
    cfg = load_config(path)
    hook = Hook("mail-delete", 0, lambda: set_clock(target_db, 250, NEW))
    result = run_sweep(cfg, parse_as_of(AS_OF, cfg.sweep.tz), progress=hook)
    assert hook.fired
    assert result.exit_code == 0, result.failures
    assert [(i.due, i.done, i.left) for i in result.items] == [(15, 14, 0)]
    assert keys(target_db) == {10 * i for i in range(2, 31, 2)} | {250}


def test_apply_acts_on_exactly_the_reviewed_keys(target_db, tmp_path, monkeypatch):
    """apply pins: the row inserted ahead of it is not among the reviewed keys, so it is
    left and reported (verify-failed, exit 3); the next run sweeps it."""
    seed(target_db)
    path = config(tmp_path, target_db, monkeypatch, MAIL_DELETE)
    plan_file = tmp_path / "plan.json"
    run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--out", str(plan_file))
    cfg = load_config(path)
    hook = Hook("mail-delete", 1, lambda: insert(target_db, "mail", 155))
    result = apply_plan(cfg, load_plan(plan_file), progress=hook)
    assert hook.fired
    assert result.exit_code == 3
    assert [(i.due, i.done, i.left) for i in result.items] == [(15, 15, 1)]
    assert verify_failed(tmp_path, result) == [("mail-delete", 1)]
    assert 155 in keys(target_db)
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json").json()
    assert [(i["due"], i["done"], i["left"]) for i in run["items"]] == [(1, 1, 0)]
    assert 155 not in keys(target_db)


def test_two_rules_on_one_table_are_pinned(target_db, tmp_path, monkeypatch):
    """The table is written by another rule: pinned, so the late row is not swept by the
    delete and is reported after the run."""
    seed(target_db)
    path = config(tmp_path, target_db, monkeypatch, MAIL_ANONYMISE + MAIL_DELETE)
    cfg = load_config(path)
    hook = Hook("mail-delete", 1, lambda: insert(target_db, "mail", 155))
    result = run_sweep(cfg, parse_as_of(AS_OF, cfg.sweep.tz), progress=hook)
    assert hook.fired
    assert result.exit_code == 3
    delete = next(i for i in result.items if i.rule == "mail-delete")
    assert (delete.due, delete.done, delete.left) == (15, 15, 1)
    assert 155 in keys(target_db)


def test_run_in_place_and_apply_leave_the_same_table(target_db, tmp_path, monkeypatch):
    """Nothing changes behind the sweep: in place and pinned act on the same rows."""
    seed(target_db)
    path = config(tmp_path, target_db, monkeypatch, MAIL_DELETE)
    plan_file = tmp_path / "plan.json"
    run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--out", str(plan_file))
    applied = run_cli("apply", str(plan_file), "-c", str(path), "--yes", "--json").json()
    after_apply = target_db.checksum()
    assert keys(target_db) == {10 * i for i in range(2, 31, 2)}
    reseed(target_db)
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json").json()
    assert target_db.checksum() == after_apply
    assert [(i["due"], i["done"], i["left"]) for i in run["items"]] == [
        (i["due"], i["done"], i["left"]) for i in applied["items"]
    ]
