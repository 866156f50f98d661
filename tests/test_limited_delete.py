"""MariaDB's one-statement batch for a delete walked in place (`inplace_keys.limited_delete`).

`DELETE … WHERE key > :last AND due ORDER BY key LIMIT n RETURNING key`: no boundary
read, the batch's upper key is the greatest key it deleted, and its intent in the audit
trail names only the key it starts after. The behaviour is the same on every engine
(the others read the boundary first): exactly the due rows go, batch by batch, each
batch's outcome pairs with its intent, and a process killed after a batch's commit
leaves that batch recorded as unconfirmed, by the key it started after.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa

from gdpr_sweep.inplace_keys import InPlaceKeys, deletes_by_limit
from tests.configs import rule_toml
from tests.conftest import TEST_KEY, TargetDb, run_cli, write_config
from tests.test_apply import AS_OF, NEW, OLD

MAIL_DELETE = rule_toml("mail-delete", "mail", "delete", after="6 months", since="received_at")


def build(target_db: TargetDb, rows: int) -> set[int]:
    """mail: keys 10, 20, ...; every second one due, every fifth one without a clock."""
    metadata = sa.MetaData()
    sa.Table(
        "mail",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("subject", sa.String(120)),
        sa.Column("received_at", sa.DateTime),
    )
    data = [
        {"id": 10 * i, "subject": f"s{i}",
         "received_at": None if i % 5 == 0 else (OLD if i % 2 else NEW)}
        for i in range(1, rows + 1)
    ]  # fmt: skip
    target_db.create(metadata, {"mail": data})
    return {r["id"] for r in data if r["received_at"] is not OLD}


def kept(target_db: TargetDb) -> set[int]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            return {r[0] for r in connection.exec_driver_sql("SELECT id FROM mail")}
    finally:
        engine.dispose()


def batch_entries(state) -> list[tuple[str, str | None, str | None, int | None]]:
    with sqlite3.connect(state) as connection:
        return connection.execute(
            "SELECT kind, key_from, key_to, rows FROM audit_entries"
            " WHERE kind IN ('batch-start', 'batch', 'batch-unconfirmed') ORDER BY id"
        ).fetchall()


def one_statement(target_db: TargetDb) -> bool:
    return target_db.engine_name == "mariadb"


@pytest.mark.parametrize("rows", [20, 24])  # 8 due (3, 3, 2), 9 due (3, 3, 3, then none)
def test_run_deletes_exactly_the_due_rows_batch_by_batch(target_db, tmp_path, monkeypatch, rows):
    stays = build(target_db, rows)
    due = rows - len(stays)
    config = write_config(tmp_path, MAIL_DELETE, target_db.url, monkeypatch,
                          extra_sweep="batch_size = 3\nmax_fraction = 1.0")  # fmt: skip
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    (item,) = result.json()["items"]
    assert (item["due"], item["done"], item["left"]) == (due, due, 0)
    assert kept(target_db) == stays

    entries = batch_entries(tmp_path / "state.db")
    starts = [e for e in entries if e[0] == "batch-start"]
    outcomes = [e for e in entries if e[0] == "batch"]
    assert len(starts) == len(outcomes) == item["batches"]
    assert sum(e[3] for e in outcomes) == due
    # Each outcome follows its intent, from the key the previous batch ended on.
    assert [s[1] for s in starts] == [o[1] for o in outcomes]
    assert [o[1] for o in outcomes[1:]] == [o[2] for o in outcomes[:-1] if o[3]]
    full = [o for o in outcomes if o[3] == 3]
    assert len(full) == due // 3
    if one_statement(target_db):
        assert all(s[2] is None for s in starts)  # the upper key is learnt from the rows
        # A last batch of 3 cannot know nothing follows: one more statement finds none.
        assert [o[3] for o in outcomes] == [3] * (due // 3) + [due % 3]
    else:
        assert [s[2] for s in starts] == [o[2] for o in outcomes]
        assert [o[3] for o in outcomes] == [3] * (due // 3) + ([due % 3] if due % 3 else [])
    verify = run_cli("audit", "verify", "-c", str(config))
    assert verify.exit_code == 0, verify.stdout + verify.stderr


def test_killed_after_a_commit_the_batch_is_unconfirmed_then_the_rerun_finishes(
    target_db, tmp_path, monkeypatch
):
    stays = build(target_db, 20)
    config = write_config(tmp_path, MAIL_DELETE, target_db.url, monkeypatch,
                          extra_sweep="batch_size = 3\nmax_fraction = 1.0")  # fmt: skip
    env = {**os.environ, "GDPR_SWEEP_KEY": TEST_KEY, "GDPR_SWEEP_FAILPOINT": "after-target-commit"}
    killed = subprocess.run(
        [sys.executable, "-m", "gdpr_sweep", "run", "-c", str(config), "--as-of", AS_OF, "--quiet"],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(kept(target_db)) == 20 - 3  # the first batch committed

    rerun = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert rerun.json()["interrupted_runs"] == [1]
    assert [i["done"] for i in rerun.json()["items"]] == [5]
    assert kept(target_db) == stays
    unconfirmed = [e for e in batch_entries(tmp_path / "state.db") if e[0] == "batch-unconfirmed"]
    first_upper = None if one_statement(target_db) else "70"  # due: 10, 30, 70, 90, ...
    assert unconfirmed == [("batch-unconfirmed", None, first_upper, None)]
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


def test_which_rules_take_one_statement_per_batch(target_db, tmp_path, monkeypatch):
    """MariaDB only (MySQL has no DELETE … RETURNING), a delete walked in place, one
    integer key, no cascade tables."""
    from gdpr_sweep.catalog import Catalog
    from gdpr_sweep.config import load_config
    from gdpr_sweep.periods import parse_as_of
    from gdpr_sweep.rules import compile_rule

    build(target_db, 4)
    config = load_config(write_config(tmp_path, MAIL_DELETE, target_db.url, monkeypatch))
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            catalog = Catalog(connection)
            instant = parse_as_of(AS_OF, config.sweep.tz)
            compiled = compile_rule(catalog, config.rules[0], instant, config.sweep)
            walked = InPlaceKeys(compiled, connection.dialect.name)
            dialect = connection.dialect
            assert deletes_by_limit(walked, compiled, [], dialect) is one_statement(target_db)
            assert not deletes_by_limit(object(), compiled, [], dialect)  # pinned keys
            cascade = [object()]
            assert not deletes_by_limit(walked, compiled, cascade, dialect)  # type: ignore[list-item]
    finally:
        engine.dispose()


def test_an_outcome_pairs_with_its_intent_by_the_key_it_started_after(tmp_path, monkeypatch):
    """The state database's pairing of intents and outcomes (`state.runs`): a one-
    statement batch's intent has no upper key, its outcome has one; only the batch
    without an outcome is unconfirmed."""
    import datetime as dt

    from gdpr_sweep.config import load_config
    from gdpr_sweep.keys import hash_key
    from gdpr_sweep.state.runs import _unconfirmed_batches
    from gdpr_sweep.state.store import StateStore

    target = f"sqlite:///{tmp_path / 'target.db'}"
    config = load_config(write_config(tmp_path, MAIL_DELETE, target, monkeypatch))
    batch = {"database": "main", "rule": "mail-delete", "table": "mail", "action": "delete"}
    with StateStore(config, hash_key(config)) as store:
        run_id = store.start_run("run", dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
        store.append(run_id, "batch-start", **batch, key_from=None, key_to=None)
        store.append(run_id, "batch", **batch, key_from=None, key_to="70", rows=3)
        store.append(run_id, "batch-start", **batch, key_from="70", key_to=None)
        store.append(run_id, "batch", **batch, key_from="70", key_to="130", rows=3)
        store.append(run_id, "batch-start", **batch, key_from="130", key_to=None)
        with store.engine.connect() as connection:
            open_batches = _unconfirmed_batches(connection, run_id)
        assert [(e.key_from, e.key_to) for e in open_batches] == [("130", None)]
        store.finish_run(run_id, "completed", {})


def test_plan_sql_shows_the_statement_run_executes(target_db, tmp_path, monkeypatch):
    """`plan --sql`: on MariaDB the in-place batch is the one DELETE; run as shown (in a
    transaction rolled back), it deletes the first `batch_size` due rows in key order
    and returns their keys."""
    from tests.test_plan_sql import driver_sql, parse

    stays = build(target_db, 20)
    config = write_config(tmp_path, MAIL_DELETE, target_db.url, monkeypatch,
                          extra_sweep="batch_size = 3\nmax_fraction = 1.0")  # fmt: skip
    shown = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--sql")
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    walked = [
        (when, sql, values)
        for when, sql, values, _ in parse(shown.stdout)["mail-delete"]
        if when.startswith("run (not apply), without pins: the first batch")
    ]
    if not one_statement(target_db):
        assert [when.rsplit(": ", 1)[-1] for when, *_ in walked] == ["its last key", "delete"]
        return
    ((when, sql, values),) = walked
    assert "one statement" in when and sql.startswith("DELETE FROM mail WHERE")
    assert "ORDER BY mail.id LIMIT 3 RETURNING mail.id" in sql
    engine = target_db.engine()
    try:
        with engine.connect() as connection, connection.begin() as scratch:
            returned = connection.exec_driver_sql(driver_sql(sql, "mariadb"), values).all()
            assert [r[0] for r in returned] == [10, 30, 70]  # the first three due keys
            scratch.rollback()
    finally:
        engine.dispose()
    assert kept(target_db) == set(range(10, 210, 10))
    assert stays < kept(target_db)
