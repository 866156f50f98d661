"""Locks per tenant: a run takes each database's lock as it reaches it.

In-process and deterministic: a tenant lock held by hand (as another shard would hold
it) is reported "locked" and the other databases are swept (exit 3; exit 4 when all
are locked); `hold add` waits only for its own database's sweep; a `running` run is
marked interrupted only when its process's lock is free; concurrent first starts
migrate once; a rolled-back append leaves no gap in the chain. SQLite and PostgreSQL
state databases.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.state.tenant_lock import lock_key, process_name
from tests.configs import rule_toml
from tests.conftest import TargetDb, postgresql_state_url, run_cli
from tests.test_outcomes import held_flock

AS_OF = "2026-11-01"
RULE = rule_toml("purge", "mail", "delete", after="6 months", since="sent_at")
ROOT = Path(__file__).resolve().parent.parent


def mail_rows(first: int = 1, count: int = 10) -> list[dict]:
    """`count` mails sent in January 2025: all due at AS_OF (after 6 months)."""
    return [
        {"id": i, "sent_at": dt.datetime(2025, 1, 1 + (i % 28))}
        for i in range(first, first + count)
    ]


def mail_table(db: TargetDb, rows: list[dict] | None = None) -> TargetDb:
    metadata = sa.MetaData()
    sa.Table(
        "mail",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sent_at", sa.DateTime),
    )
    db.create(metadata, {"mail": mail_rows() if rows is None else rows})
    return db


def tenants_config(
    tmp_path: Path,
    count: int,
    state_url: str | None = "sqlite:///state.db",
    urls: list[str] | None = None,
) -> tuple[Path, list[TargetDb]]:
    """A config of `count` tenants t0… (SQLite files, or the given `urls`), each with
    ten due mails; `state_url` None: the state database is $STATE_URL."""
    targets = []
    blocks = []
    for i in range(count):
        url = urls[i] if urls else f"sqlite:///{tmp_path / f't{i}.db'}"
        targets.append(mail_table(TargetDb(url.split(":")[0].split("+")[0], url)))
        blocks.append(f'[databases.t{i}]\nurl = "{url}"\n')
    state = f'state_url = "{state_url}"' if state_url else 'state_url_env = "STATE_URL"'
    path = tmp_path / "gdpr-sweep.toml"
    path.write_text(
        f"[sweep]\n{state}\nbatch_size = 20\nmax_fraction = 1.0\n\n" + "\n".join(blocks) + RULE,
        encoding="utf-8",
    )
    return path, targets


def trail(path: Path) -> list[dict]:
    """Every audit entry of the config's state database."""
    from gdpr_sweep.config import load_config
    from gdpr_sweep.keys import hash_key
    from gdpr_sweep.state.store import StateStore

    config = load_config(path)
    with StateStore(config, hash_key(config)) as store:
        return list(store.entries())


def held_tenant_file_lock(state_db: Path, name: str) -> contextlib.AbstractContextManager[None]:
    """Hold tenant `name`'s lock of a SQLite state database, as a running sweep would."""
    path = Path(str(state_db) + ".locks") / f"tenant-{name}.lock"
    path.parent.mkdir(exist_ok=True)
    return held_flock(path)


@contextlib.contextmanager
def held_advisory(url: str, kind: str, name: str) -> Iterator[None]:
    """Hold the advisory lock of (`kind`, `name`) on a PostgreSQL state database."""
    engine = sa.create_engine(url)
    connection = engine.connect()
    key = lock_key(kind, name)
    assert connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar()
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
        connection.commit()
        connection.close()
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path, monkeypatch):
    """(state URL or None for $STATE_URL, hold(name) holding a tenant's lock) per engine."""
    if request.param == "sqlite":
        return "sqlite:///state.db", lambda name: held_tenant_file_lock(tmp_path / "state.db", name)
    url = postgresql_state_url(monkeypatch)
    return None, lambda name: held_advisory(url, "tenant", name)


def test_a_locked_tenant_is_reported_and_the_others_swept(state, tmp_path):
    state_url, hold = state
    path, targets = tenants_config(tmp_path, 3, state_url)
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    with hold("t1"):
        result = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert result.exit_code == 3, result.stderr
    document = result.json()
    assert document["locked"] == ["t1"]
    assert any(f["database"] == "t1" and "locked" in f["error"] for f in document["failures"])
    counts = [t.scalar("SELECT count(*) FROM mail") for t in targets]
    assert counts == [0, 10, 0]
    locked_entries = [e["database_name"] for e in trail(path) if e["kind"] == "database-locked"]
    assert locked_entries == ["t1"]
    assert run_cli("audit", "verify", "-c", str(path)).exit_code == 0
    # Free again: the next run sweeps it.
    again = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["locked"] == []
    assert targets[1].scalar("SELECT count(*) FROM mail") == 0


def test_every_tenant_locked_is_exit_4_and_records_nothing(state, tmp_path):
    state_url, hold = state
    path, targets = tenants_config(tmp_path, 2, state_url)
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    with hold("t0"), hold("t1"):
        result = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
        waited = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--wait-lock", "0.5s")
    assert result.exit_code == 4, result.stderr
    assert result.json()["status"] == "locked" and "t0, t1" in result.json()["error"]
    assert waited.exit_code == 4 and "after waiting 0.5 s" in waited.stderr
    assert [t.scalar("SELECT count(*) FROM mail") for t in targets] == [10, 10]
    listed = run_cli("audit", "list", "-c", str(path), "--json")
    assert listed.exit_code == 0 and listed.json()["runs"] == []


def test_hold_add_waits_only_for_its_own_tenant(state, tmp_path):
    state_url, hold = state
    path, _ = tenants_config(tmp_path, 2, state_url)
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    args = ["--table", "mail", "--key", "3", "--reason", "case 7"]
    with hold("t0"):
        blocked = run_cli("hold", "add", "-c", str(path), "-d", "t0", *args)
        other = run_cli("hold", "add", "-c", str(path), "-d", "t1", *args)
    assert blocked.exit_code == 4 and "database t0" in blocked.stderr, blocked.stderr
    assert other.exit_code == 0, other.stderr
    ran = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert ran.exit_code == 0, ran.stderr
    held = {item["database"]: item["held"] for item in ran.json()["items"]}
    assert held == {"t0": 0, "t1": 1}


def _running_run(state_url: str, host: str, pid: int) -> int:
    """A `running` run recorded by (host, pid), as a process that is sweeping leaves it."""
    engine = sa.create_engine(state_url)
    with engine.begin() as connection:
        run_id = connection.execute(
            sa.text(
                "INSERT INTO runs (command, as_of, config_digest, user_name, host, pid, "
                "tool_version, started_at, status) VALUES ('run', '2026-11-01T00:00:00+00:00',"
                " 'x', 'someone', :host, :pid, '0', '2026-11-01T00:00:00+00:00', 'running') "
                "RETURNING id"
            ),
            {"host": host, "pid": pid},
        ).scalar()
    engine.dispose()
    return int(run_id)


def _status(state_url: str, run_id: int) -> str:
    engine = sa.create_engine(state_url)
    with engine.connect() as connection:
        status = connection.execute(
            sa.text("SELECT status FROM runs WHERE id = :id"), {"id": run_id}
        ).scalar()
    engine.dispose()
    return str(status)


def test_a_running_run_is_interrupted_only_when_its_process_is_gone(tmp_path, monkeypatch):
    """Another shard's run (its process lock held) is left alone; a dead one's is marked.
    (The rows are inserted without audit entries, so `audit verify` is not asked.)"""
    url = postgresql_state_url(monkeypatch)
    path, _ = tenants_config(tmp_path, 1, None)
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    alive = _running_run(url, "other-host", 4242)
    dead = _running_run(url, "other-host", 4243)
    with held_advisory(url, "process", process_name("other-host", 4242)):
        result = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
        assert result.exit_code == 0, result.stderr
        assert result.json()["interrupted_runs"] == [dead]
        assert _status(url, alive) == "running"
    later = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert later.json()["interrupted_runs"] == [alive]
    assert _status(url, alive) == "interrupted"


def test_a_running_run_of_a_live_process_on_sqlite_state(tmp_path):
    path, _ = tenants_config(tmp_path, 1)
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    url = f"sqlite:///{tmp_path / 'state.db'}"
    # A real second process that holds its process lock while we run.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, sqlalchemy as sa\n"
            "from gdpr_sweep.state.tenant_lock import LockSpace, process_name, this_process\n"
            "space = LockSpace(sa.engine.make_url(sys.argv[1]))\n"
            "lock = space.take('process', process_name(*this_process()))\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
            url,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        alive = _running_run(url, socket.gethostname(), holder.pid)
        result = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
        assert result.exit_code == 0, result.stderr
        assert result.json()["interrupted_runs"] == []
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=20)
    later = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert later.json()["interrupted_runs"] == [alive]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_first_starts_migrate_once(engine, tmp_path, monkeypatch):
    if engine == "sqlite":
        path, _ = tenants_config(tmp_path, 1)
    else:
        postgresql_state_url(monkeypatch)
        path, _ = tenants_config(tmp_path, 1, None)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gdpr_sweep", "migrate", "-c", str(path)]
    processes = [
        subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in processes]
    assert all(code == 0 for code, _ in outcomes), outcomes
    assert run_cli("audit", "verify", "-c", str(path)).exit_code == 0


def test_a_rolled_back_append_leaves_no_gap(state, tmp_path):
    from gdpr_sweep.config import load_config
    from gdpr_sweep.keys import hash_key
    from gdpr_sweep.state.store import StateStore

    state_url, _ = state
    path, _ = tenants_config(tmp_path, 1, state_url)
    assert run_cli("run", "-c", str(path), "--as-of", AS_OF).exit_code == 0
    config = load_config(path)
    with StateStore(config, hash_key(config)) as store:
        run_id = store.start_run("run", dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        with store.engine.connect() as connection:
            transaction = connection.begin()
            store._append(connection, run_id, "batch-start", database="t0")
            transaction.rollback()  # as a batch whose state write failed
        store.append(run_id, "batch-start", database="t0")
        store.finish_run(run_id, "completed", {})
        ids = [entry["id"] for entry in store.entries()]
    assert ids == list(range(1, len(ids) + 1))
    assert run_cli("audit", "verify", "-c", str(path)).exit_code == 0


def test_erase_and_rotate_key_wait_for_a_tenant_being_swept(state, tmp_path, monkeypatch):
    """`erase` needs every database it touches, `audit rotate-key` every database: a
    tenant lock held (a shard sweeping it) is exit 4 for both, nothing changed."""
    state_url, hold = state
    path, targets = tenants_config(tmp_path, 2, state_url)
    for target in targets:
        engine = target.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE person (id INTEGER PRIMARY KEY, email TEXT)")
            connection.exec_driver_sql("INSERT INTO person VALUES (1, 'anna@example.dk')")
        engine.dispose()
    path.write_text(
        path.read_text()
        + '\n[subject]\nroot = "person"\nidentifiers = { email = "email" }\n'
        + '\n[subject.erase.mail]\naction = "keep"\nrule = "purge"\n',
        encoding="utf-8",
    )
    assert run_cli("run", "-c", str(path), "--as-of", AS_OF).exit_code == 0
    with hold("t1"):
        erased = run_cli("erase", "-c", str(path), "--subject", "email=anna@example.dk")
        monkeypatch.setenv("GDPR_SWEEP_OLD_KEYS", os.environ["GDPR_SWEEP_KEY"])
        monkeypatch.setenv("GDPR_SWEEP_KEY", "another-secret-0123456789abcdef")
        rotated = run_cli("audit", "rotate-key", "-c", str(path))
    assert erased.exit_code == 4 and "database t1" in erased.stderr, erased.stderr
    assert "anna" not in erased.stderr
    assert rotated.exit_code == 4 and "database t" in rotated.stderr, rotated.stderr
    assert [t.scalar("SELECT count(*) FROM person") for t in targets] == [1, 1]
    assert run_cli("audit", "rotate-key", "-c", str(path)).exit_code == 0
    assert run_cli("audit", "verify", "-c", str(path)).exit_code == 0


def test_many_tenant_locks_hold_one_connection(monkeypatch):
    """150 tenants' advisory locks stack on one session (a connection each would
    exhaust max_connections with 100 tenants); another session cannot take them."""
    from gdpr_sweep.state.tenant_lock import LockSpace

    url = postgresql_state_url(monkeypatch)
    space, other = LockSpace(sa.engine.make_url(url)), LockSpace(sa.engine.make_url(url))
    engine = sa.create_engine(url)
    try:
        locks = [space.take("tenant", f"kommune{i:03}") for i in range(150)]
        with engine.connect() as connection:
            held = connection.exec_driver_sql(
                "SELECT count(*), count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).one()
        assert tuple(held) == (150, 1)
        assert other.try_take("tenant", "kommune007") is None
        locks[7].release()
        assert other.try_take("tenant", "kommune007") is not None
    finally:
        space.close()
        other.close()
        engine.dispose()


def test_a_run_whose_lock_connection_drops_stops_before_the_next_batch(tmp_path, monkeypatch):
    """The server frees a session's advisory locks when its connection ends, and another
    process may then take the tenant: the run must not go on sweeping it. Here the lock
    session is terminated after the first batch; the run stops before the second, says
    so (the database failed, exit 3), and the next run finishes the work."""
    from gdpr_sweep.config import load_config
    from gdpr_sweep.execute import NoProgress
    from gdpr_sweep.sweep import run_sweep

    url = postgresql_state_url(monkeypatch)
    path, (target,) = tenants_config(tmp_path, 1, url)
    path.write_text(path.read_text().replace("batch_size = 20", "batch_size = 3"))
    key = lock_key("tenant", "t0")
    killer = sa.create_engine(url)

    class TerminateLockSession(NoProgress):
        batches = 0

        def advanced(self, token: object, rows: int) -> None:
            self.batches += 1
            if self.batches == 1:
                with killer.begin() as connection:
                    ended = connection.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE "
                            "locktype = 'advisory' AND classid = :high AND objid = :low"
                            # Only this database's: another test worker's state database
                            # on the same server holds the same tenant's key.
                            " AND database = (SELECT oid FROM pg_database"
                            " WHERE datname = current_database())"
                        ),
                        {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
                    ).all()
                assert ended == [(True,)]

    config = load_config(path)
    as_of = dt.datetime.fromisoformat(AS_OF).replace(tzinfo=config.sweep.tz)
    result = run_sweep(config, as_of, progress=TerminateLockSession())
    killer.dispose()
    (failure,) = result.failures
    assert "tenant lock was lost" in failure["error"] and "after 3 row(s)" in failure["error"]
    assert [item.done for item in result.items] == [3]
    assert target.scalar("SELECT COUNT(*) FROM mail") == 7
    again = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert target.scalar("SELECT COUNT(*) FROM mail") == 0


def _mariadb_state_database(base: str, suffix: str) -> str:
    """An empty MariaDB database `<the worker's>_<suffix>` on the test server: its URL."""
    url = sa.engine.make_url(base)
    own = url.set(database=f"{url.database}_{suffix}")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{own.database}`")
        connection.exec_driver_sql(
            f"CREATE DATABASE `{own.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )
    engine.dispose()
    return own.render_as_string(hide_password=False)


def test_mariadb_state_locks_are_per_state_database(tmp_path):
    """MariaDB's named locks are the server's: a deployment whose state database is on
    the same server as ours (same tenant names) must not lock us out, and our own
    tenant's lock must."""
    from gdpr_sweep.errors import LockHeld
    from gdpr_sweep.state.lock import sweep_lock
    from gdpr_sweep.state.tenant_lock import LockSpace

    base = os.environ.get("GDPR_SWEEP_TEST_MARIADB_URL")
    if not base:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but GDPR_SWEEP_TEST_MARIADB_URL is not set")
        pytest.skip("mariadb: set GDPR_SWEEP_TEST_MARIADB_URL to a test server")
    ours, theirs = (_mariadb_state_database(base, s) for s in ("state_ours", "state_theirs"))
    path, targets = tenants_config(tmp_path, 1, ours)
    assert run_cli("migrate", "-c", str(path)).exit_code == 0
    their_space, our_space = (
        LockSpace(sa.engine.make_url(theirs)),
        LockSpace(sa.engine.make_url(ours)),
    )
    their_engine, our_engine = sa.create_engine(theirs), sa.create_engine(ours)
    try:
        ours_locked = our_space.take("tenant", "t0")
        locked = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
        ours_locked.release()
        assert locked.exit_code == 4 and locked.json()["status"] == "locked", locked.stderr
        assert targets[0].scalar("SELECT count(*) FROM mail") == 10

        their_space.take("tenant", "t0")  # their sweep of their tenant t0
        with sweep_lock(their_engine, their_engine.url):  # their rotate-key: exclusive
            # Ours is free all the same, and excludes a second of ours.
            with sweep_lock(our_engine, our_engine.url):
                second = sweep_lock(our_engine, our_engine.url)
                with pytest.raises(LockHeld):
                    second.__enter__()
            ran = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
        assert ran.exit_code == 0, ran.stderr
        assert targets[0].scalar("SELECT count(*) FROM mail") == 0
    finally:
        their_space.close()
        our_space.close()
        their_engine.dispose()
        our_engine.dispose()
