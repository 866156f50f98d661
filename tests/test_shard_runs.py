"""Shards at once: N `gdpr-sweep run --shard i/N` processes share one state database.

4 processes on 40 SQLite tenants with a shared PostgreSQL state database, 2 on 8
PostgreSQL and MariaDB tenants, 2 on a SQLite state database: every tenant swept
exactly once, nothing due left, `audit verify` exits 0, no process exits 4 because of
another shard. A second round with one tenant's lock held by hand (as a process still
sweeping it would) reports that tenant "locked" in its shard and sweeps the rest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.shards import shard_of
from tests.conftest import ENGINE_ENV, TargetDb, _unavailable, postgresql_state_url, run_cli
from tests.test_tenant_locks import (
    AS_OF,
    ROOT,
    held_advisory,
    held_tenant_file_lock,
    mail_rows,
    tenants_config,
    trail,
)


def run_shards(path: Path, count: int) -> list[tuple[int, dict | None, str]]:
    """Start `count` `run --shard i/count --json` processes at once; (exit, JSON, stderr)."""
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gdpr_sweep",
                "run",
                "-c",
                str(path),
                "--as-of",
                AS_OF,
                "--json",
                "--shard",
                f"{i}/{count}",
            ],
            env=env,
            cwd=path.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    outcomes = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        outcomes.append((process.returncode, json.loads(stdout) if stdout else None, stderr))
    return outcomes


def assert_swept_once(path: Path, targets: list[TargetDb], outcomes, names: list[str]) -> None:
    assert [code for code, _, _ in outcomes] == [0] * len(outcomes), outcomes
    swept = Counter(
        item["database"] for _, document, _ in outcomes for item in (document or {})["items"]
    )
    assert swept == Counter(names)  # each tenant in exactly one process's run
    for index, (_code, document, _) in enumerate(outcomes):
        assert document is not None and document["locked"] == []
        assert {item["database"] for item in document["items"]} == {
            name for name in names if shard_of(name, len(outcomes)) == index
        }
    assert [t.scalar("SELECT count(*) FROM mail") for t in targets] == [0] * len(targets)
    done = Counter(e["database_name"] for e in trail(path) if e["kind"] == "rule-done")
    assert done == Counter(names)
    assert run_cli("audit", "verify", "-c", str(path)).exit_code == 0


def add_due_rows(targets: list[TargetDb]) -> None:
    for target in targets:
        engine = target.engine()
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO mail (id, sent_at) VALUES (:id, :sent_at)"),
                mail_rows(101, 10),
            )
        engine.dispose()


def assert_locked_round(path: Path, targets: list[TargetDb], outcomes, locked: str) -> None:
    count = len(outcomes)
    for index, (code, document, stderr) in enumerate(outcomes):
        if index == shard_of(locked, count):
            assert code == 3, stderr
            assert document is not None and document["locked"] == [locked]
        else:
            assert code == 0, stderr
    counts = {f"t{i}": t.scalar("SELECT count(*) FROM mail") for i, t in enumerate(targets)}
    assert counts == {name: (10 if name == locked else 0) for name in counts}
    assert run_cli("audit", "verify", "-c", str(path)).exit_code == 0


def test_four_shards_on_40_sqlite_tenants_and_a_postgresql_state(tmp_path, monkeypatch):
    url = postgresql_state_url(monkeypatch)
    path, targets = tenants_config(tmp_path, 40, None)
    names = [f"t{i}" for i in range(40)]
    assert len({shard_of(name, 4) for name in names}) == 4  # every process has work
    outcomes = run_shards(path, 4)  # the first start of the state database, too
    assert_swept_once(path, targets, outcomes, names)
    add_due_rows(targets)
    with held_advisory(url, "tenant", "t7"):
        second = run_shards(path, 4)
    assert_locked_round(path, targets, second, "t7")


def test_two_shards_on_a_sqlite_state(tmp_path):
    path, targets = tenants_config(tmp_path, 10)
    names = [f"t{i}" for i in range(10)]
    assert len({shard_of(name, 2) for name in names}) == 2
    assert_swept_once(path, targets, run_shards(path, 2), names)
    add_due_rows(targets)
    with held_tenant_file_lock(tmp_path / "state.db", "t3"):
        second = run_shards(path, 2)
    assert_locked_round(path, targets, second, "t3")


def _server_tenants(engine_name: str, count: int) -> list[str]:
    """`count` databases `<test database>_t<i>` on the engine's test server (made once),
    without a `mail` table."""
    variable = ENGINE_ENV[engine_name]
    base = os.environ.get(variable)
    if not base:
        _unavailable(f"{engine_name}: set {variable} to a test server")
    url = sa.engine.make_url(base)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    urls = []
    try:
        with admin.connect() as connection:
            for i in range(count):
                name = f"{url.database}_t{i}"
                if engine_name == "postgresql":
                    exists = connection.exec_driver_sql(
                        "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name}
                    ).first()
                    if not exists:
                        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
                    own = url.set(database=name)
                else:
                    connection.exec_driver_sql(
                        f"CREATE DATABASE IF NOT EXISTS `{name}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )
                    own = url.set(database=name)
                tenant = sa.create_engine(own)
                with tenant.begin() as tenant_connection:
                    tenant_connection.exec_driver_sql("DROP TABLE IF EXISTS mail")
                tenant.dispose()
                urls.append(own.render_as_string(hide_password=False))
    except sa.exc.OperationalError as exc:
        _unavailable(f"{engine_name}: server at {variable} unreachable ({exc.orig!r})")
    finally:
        admin.dispose()
    return urls


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_two_shards_on_8_postgresql_and_mariadb_tenants(tmp_path, monkeypatch):
    url = postgresql_state_url(monkeypatch)
    urls = _server_tenants("postgresql", 4) + _server_tenants("mariadb", 4)
    path, targets = tenants_config(tmp_path, 8, None, urls)
    names = [f"t{i}" for i in range(8)]
    outcomes = run_shards(path, 2)
    assert_swept_once(path, targets, outcomes, names)
    add_due_rows(targets)
    with held_advisory(url, "tenant", "t5"):  # a MariaDB tenant
        second = run_shards(path, 2)
    assert_locked_round(path, targets, second, "t5")
