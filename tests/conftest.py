"""Fixtures: real databases on SQLite, PostgreSQL and MariaDB, and the real CLI.

PostgreSQL and MariaDB come from $GDPR_SWEEP_TEST_PG_URL and
$GDPR_SWEEP_TEST_MARIADB_URL (`.ci/run` starts local servers and sets both). Without
them the tests for that engine skip with the reason; under CI (CI=true) a skip for a
missing server is a failure, so CI can never pass on SQLite alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from typer.testing import CliRunner

from gdpr_sweep.cli import app

ENGINE_ENV = {
    "postgresql": "GDPR_SWEEP_TEST_PG_URL",
    "mariadb": "GDPR_SWEEP_TEST_MARIADB_URL",
}
ENGINES = ["sqlite", "postgresql", "mariadb"]
TEST_KEY = "test-secret-0123456789abcdef"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: The wall clock every in-process test starts at (it ticks on from there). Tests pass
#: `--as-of` where dates matter; this keeps any that read "now" (a default as-of, a
#: hold's lapse, a receipt's date) from depending on the day the suite is run.
TEST_NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _wall_clock() -> Iterator[None]:
    """Start every test at TEST_NOW, whatever the machine's date."""
    with time_machine.travel(TEST_NOW, tick=True):
        yield


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's own GDPR_SWEEP_* settings and working directory out."""
    for name in list(os.environ):
        if name.startswith("GDPR_SWEEP_") and not name.startswith("GDPR_SWEEP_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GDPR_SWEEP_KEY", TEST_KEY)
    # pytest-xdist's workers have COLUMNS=80, which the console honours when piped: a
    # test that wants a width says so (run_cli(..., env={"COLUMNS": "80"})).
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)


def _worker_database_url(url: str, engine_name: str, worker: str) -> str:
    """Give one pytest-xdist worker a database of its own on the same server.

    Every test resets its database (drops and recreates the schema), so two workers
    must never share one. The worker's database is `<name>_<worker>`, created here
    from the base URL when it is missing."""
    base = sa.engine.make_url(url)
    own = base.set(database=f"{base.database}_{worker}")
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if engine_name == "postgresql":
                exists = connection.exec_driver_sql(
                    "SELECT 1 FROM pg_database WHERE datname = %(name)s",
                    {"name": own.database},
                ).first()
                if not exists:
                    connection.exec_driver_sql(f'CREATE DATABASE "{own.database}"')
            else:
                connection.exec_driver_sql(
                    f"CREATE DATABASE IF NOT EXISTS `{own.database}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
    except sa.exc.OperationalError:
        return url  # unreachable: the tests report it as they would without workers
    finally:
        engine.dispose()
    return own.render_as_string(hide_password=False)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n 2`), point each worker at its own server databases."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    for engine_name, variable in ENGINE_ENV.items():
        url = os.environ.get(variable)
        if url:
            os.environ[variable] = _worker_database_url(url, engine_name, worker)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _reset_server_database(url: str, engine_name: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            if engine_name == "postgresql":
                connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
                connection.exec_driver_sql("CREATE SCHEMA public")
                connection.exec_driver_sql("DROP SCHEMA IF EXISTS hr CASCADE")
            else:
                database = engine.url.database
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
                connection.exec_driver_sql(
                    f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
    finally:
        engine.dispose()


@dataclass
class TargetDb:
    """A clean, empty database of one engine for one test."""

    engine_name: str
    url: str

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url)

    def create(self, metadata: sa.MetaData, rows: dict[str, list[dict]] | None = None) -> None:
        """Create the tables and insert the rows (per table name)."""
        engine = self.engine()
        try:
            with engine.begin() as connection:
                metadata.create_all(connection)
                for table in metadata.sorted_tables:
                    if rows and rows.get(table.name):
                        connection.execute(table.insert(), rows[table.name])
        finally:
            engine.dispose()

    def checksum(self) -> str:
        """Return a digest of every table's full contents, in key order."""
        engine = self.engine()
        digest = hashlib.sha256()
        try:
            with engine.connect() as connection:
                metadata = sa.MetaData()
                metadata.reflect(connection)
                for table in sorted(metadata.tables.values(), key=lambda t: t.name):
                    digest.update(table.name.encode())
                    order = list(table.primary_key.columns) or list(table.columns)
                    for row in connection.execute(sa.select(table).order_by(*order)):
                        digest.update(repr(tuple(row)).encode())
        finally:
            engine.dispose()
        return digest.hexdigest()

    def scalar(self, sql: str) -> object:
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return connection.exec_driver_sql(sql).scalar()
        finally:
            engine.dispose()


@pytest.fixture(params=ENGINES)
def target_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetDb]:
    """A clean database on each engine in turn."""
    engine_name = request.param
    if engine_name == "sqlite":
        yield TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
        return
    variable = ENGINE_ENV[engine_name]
    url = os.environ.get(variable)
    if not url:
        _unavailable(f"{engine_name}: set {variable} to a test server (see .ci/start-databases)")
    try:
        _reset_server_database(url, engine_name)
    except sa.exc.OperationalError as exc:
        _unavailable(f"{engine_name}: server at {variable} unreachable ({type(exc.orig).__name__})")
    yield TargetDb(engine_name, url)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def run_cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """Run the real CLI in-process and return its exit code and output."""
    result = CliRunner(env=env).invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli():
    return run_cli


def write_config(
    directory: Path,
    body: str,
    url: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
    timezone: str = "Europe/Copenhagen",
    extra_sweep: str = "",
) -> Path:
    """Write a config whose database `main` is `url`, passed through url_env."""
    path = directory / "gdpr-sweep.toml"
    database = ""
    if url is not None:
        assert monkeypatch is not None
        monkeypatch.setenv("TEST_TARGET_URL", url)
        database = '[databases.main]\nurl_env = "TEST_TARGET_URL"\ncontroller = "Testkommune"\n'
    path.write_text(
        f'[sweep]\nstate_url = "sqlite:///state.db"\ntimezone = "{timezone}"\n{extra_sweep}\n'
        f"{database}\n{body}",
        encoding="utf-8",
    )
    return path


def items_by_rule(document: dict) -> dict[str, dict]:
    """The `items` of a `plan --json` or `run --json` document, by rule id."""
    return {item["rule"]: item for item in document["items"]}


def plan_items(config: Path, as_of: str, *extra: str) -> dict[str, dict]:
    """Run `plan --json` at `as_of` (it must exit 0) and return its items by rule id."""
    result = run_cli("plan", "-c", str(config), "--as-of", as_of, "--json", *extra)
    assert result.exit_code == 0, result.stdout + result.stderr
    return items_by_rule(result.json())


def query_rows(target_db: TargetDb, sql: str) -> list[tuple]:
    """Every row `sql` returns from `target_db`, as plain tuples."""
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def postgresql_state_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """The PostgreSQL test server, emptied (schema public dropped and made again), as the
    state database: its URL, also set as $STATE_URL. Skips without a server (fails in CI)."""
    url = os.environ.get(ENGINE_ENV["postgresql"])
    if not url:
        _unavailable(f"postgresql: set {ENGINE_ENV['postgresql']} to a test server")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    monkeypatch.setenv("STATE_URL", url)
    return url
