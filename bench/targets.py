"""The benchmark's databases: build the `candidate` data set once, restore it before each run.

Each engine gets the data set generated on the server side (PostgreSQL
`generate_series`, MariaDB's SEQUENCE engine or a recursive CTE, SQLite a recursive
CTE) in chunks, into a template that is never modified. `restore()` rebuilds the
measured `candidate` table from it, physically fresh, with its indexes and statistics:

- SQLite: the template is a database file; restore copies it.
- PostgreSQL: the template is `bench_template.candidate` in the benchmark database;
  restore is `CREATE TABLE` + `INSERT ... SELECT`, then the primary key, the index,
  `VACUUM ANALYZE` and a `CHECKPOINT`, so no run pays for the restore's writes.
  Autovacuum is off on the measured table, so it cannot start in the middle of a run.
- MariaDB: the template is `candidate` in the database `<bench>_template`; restore is
  `CREATE TABLE ... LIKE` + `INSERT ... SELECT` + `ANALYZE TABLE`.

On the servers the benchmark works in its own database (default `gdpr_sweep_bench`),
because the test suite drops the schema of the test database it is pointed at.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbapi import connect, connect_params, engine_of, with_database

AS_OF = "2025-01-01"  # the pinned --as-of (local midnight, Europe/Copenhagen)
CUTOFF = "2024-07-01"  # 6 months before it: rows whose course ended before this are due
DUE_PERCENT = 40
CHUNK_ROWS = 500_000
COLUMNS = "id, name, email, phone, cpr, address, birth_date, notes, municipality, course_ended_at"
#: ~185 characters, so `notes` holds ~200 with its prefix.
NOTE = (
    "Samtale om jobsoegning og uddannelsesmuligheder. Kandidaten oensker forloeb i "
    "kommunalt regi; aftalt opfoelgning efter tre uger, CV gennemgaaet og sendt til "
    "konsulent. Intet videre at bemaerke."
)

Log = Callable[[str], None]


def is_due(key: int) -> bool:
    """The generator's rule: 40 of every 100 consecutive keys are due, scattered."""
    return key * 37 % 100 < DUE_PERCENT


def expected_due(rows: int) -> int:
    """Return how many of the keys 1..rows are due."""
    full, rest = divmod(rows, 100)
    start = full * 100
    return full * DUE_PERCENT + sum(is_due(k) for k in range(start + 1, start + rest + 1))


class Target:
    """One engine's benchmark database."""

    engine: str

    def __init__(self, log: Log) -> None:
        self.log = log

    # Set by subclasses: the URL gdpr-sweep gets and the baseline's connect() arguments.
    tool_url: str
    params: dict[str, Any]

    def prepare(self) -> None:
        """Create the benchmark database/schema if missing."""

    def build_template(self, rows: int) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        raise NotImplementedError

    def server_version(self) -> str:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Drop what the benchmark created (not the databases themselves)."""

    def close(self) -> None:
        pass

    def _chunks(self, rows: int) -> list[tuple[int, int]]:
        return [(a, min(a + CHUNK_ROWS - 1, rows)) for a in range(1, rows + 1, CHUNK_ROWS)]


class SqliteTarget(Target):
    engine = "sqlite"

    def __init__(self, log: Log, workdir: Path) -> None:
        super().__init__(log)
        self.template = workdir / "template.db"
        self.path = workdir / "candidate.db"
        self.tool_url = f"sqlite:///{self.path}"
        self.params = {"database": str(self.path)}

    def build_template(self, rows: int) -> None:
        self.template.unlink(missing_ok=True)
        connection = connect("sqlite", {"database": str(self.template)}, autocommit=True)
        try:
            connection.execute("PRAGMA synchronous = OFF")  # this connection only
            connection.execute(
                "CREATE TABLE candidate (id INTEGER PRIMARY KEY, name VARCHAR(120), "
                "email VARCHAR(254), phone VARCHAR(20), cpr CHAR(11), address VARCHAR(200), "
                "birth_date DATE, notes TEXT, municipality VARCHAR(60), "
                "course_ended_at TIMESTAMP)"
            )
            for first, last in self._chunks(rows):
                connection.execute("BEGIN")
                connection.execute(
                    f"WITH RECURSIVE s(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM s WHERE x < ?) "
                    f"INSERT INTO candidate ({COLUMNS}) SELECT x, "
                    "'Kandidat ' || x || ' Testesen', "
                    "'kandidat.' || x || '@example.dk', "
                    "'+45 ' || (20000000 + x), "
                    "printf('%02d%02d%02d-%04d', x % 28 + 1, x % 12 + 1, x % 100, x % 10000), "
                    "'Testvej ' || (x % 250 + 1) || ', ' || (1000 + x % 8990) || ' Testby', "
                    "date('1940-01-01', '+' || (x * 7 % 25000) || ' days'), "
                    "'Forloebsnotat ' || x || ': ' || ?, "
                    "'Kommune ' || (x % 98 + 1), "
                    f"CASE WHEN x * 37 % 100 < {DUE_PERCENT} "
                    "THEN datetime('2018-01-01', '+' || (x % 2300) || ' days', "
                    "'+' || (x % 86400) || ' seconds') "
                    "ELSE datetime('2024-08-01', '+' || (x % 150) || ' days', "
                    "'+' || (x % 86400) || ' seconds') END "
                    "FROM s",
                    (first, last, NOTE),
                )
                connection.execute("COMMIT")
                self.log(f"generated {last:,} of {rows:,} rows")
            connection.execute(
                "CREATE INDEX ix_candidate_course_ended_at ON candidate (course_ended_at)"
            )
        finally:
            connection.close()

    def restore(self) -> None:
        for suffix in ("-journal", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.path)

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        connection = connect("sqlite", self.params, autocommit=True)
        try:
            return connection.execute(sql.replace("%s", "?"), params).fetchone()[0]
        finally:
            connection.close()

    def server_version(self) -> str:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"

    def cleanup(self) -> None:
        for path in (self.template, self.path):
            path.unlink(missing_ok=True)


class _ServerTarget(Target):
    """PostgreSQL or MariaDB: one autocommit admin connection, idle during the runs."""

    def __init__(self, log: Log, url: str, database: str) -> None:
        super().__init__(log)
        self.server_url = url
        own = connect_params(url)
        self.database = database or own.get("dbname") or own.get("database") or ""
        self.tool_url = with_database(url, self.database)
        self.params = connect_params(self.tool_url)
        self._admin: Any = None

    @property
    def admin(self) -> Any:
        if self._admin is None:
            self._admin = connect(self.engine, self.params, autocommit=True)
        return self._admin

    def execute(self, sql: str, params: tuple[Any, ...] | None = None) -> None:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, params)

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, params or None)
            return cursor.fetchone()[0]

    def close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None


class PostgresTarget(_ServerTarget):
    engine = "postgresql"
    TEMPLATE = "bench_template.candidate"

    def prepare(self) -> None:
        server = connect(self.engine, connect_params(self.server_url), autocommit=True)
        try:
            with server.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cursor.fetchone() is None:
                    self.log(f"creating database {self.database}")
                    cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            server.close()
        self.execute("CREATE SCHEMA IF NOT EXISTS bench_template")

    def build_template(self, rows: int) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.TEMPLATE}")
        self.execute(
            f"CREATE TABLE {self.TEMPLATE} (id integer NOT NULL, name varchar(120), "
            "email varchar(254), phone varchar(20), cpr char(11), address varchar(200), "
            "birth_date date, notes text, municipality varchar(60), "
            "course_ended_at timestamp) WITH (autovacuum_enabled = false)"
        )
        for first, last in self._chunks(rows):
            self.execute(
                f"INSERT INTO {self.TEMPLATE} ({COLUMNS}) SELECT x, "
                "'Kandidat ' || x || ' Testesen', "
                "'kandidat.' || x || '@example.dk', "
                "'+45 ' || (20000000 + x), "
                "lpad((mod(x, 28) + 1)::text, 2, '0') || lpad((mod(x, 12) + 1)::text, 2, '0') "
                "|| lpad(mod(x, 100)::text, 2, '0') || '-' || lpad(mod(x, 10000)::text, 4, '0'), "
                "'Testvej ' || (mod(x, 250) + 1) || ', ' || (1000 + mod(x, 8990)) || ' Testby', "
                "date '1940-01-01' + mod(x * 7, 25000)::int, "
                "'Forloebsnotat ' || x || ': ' || %s, "
                "'Kommune ' || (mod(x, 98) + 1), "
                f"CASE WHEN mod(x * 37, 100) < {DUE_PERCENT} "
                "THEN timestamp '2018-01-01' "
                "+ make_interval(days => mod(x, 2300)::int, secs => mod(x, 86400)::float8) "
                "ELSE timestamp '2024-08-01' "
                "+ make_interval(days => mod(x, 150)::int, secs => mod(x, 86400)::float8) END "
                "FROM generate_series(%s::bigint, %s::bigint) AS x",
                (NOTE, first, last),
            )
            self.log(f"generated {last:,} of {rows:,} rows")
        self.execute(f"ALTER TABLE {self.TEMPLATE} ADD PRIMARY KEY (id)")
        self.execute(f"VACUUM ANALYZE {self.TEMPLATE}")

    def restore(self) -> None:
        self.execute("DROP TABLE IF EXISTS public.candidate")
        self.execute(
            f"CREATE TABLE public.candidate (LIKE {self.TEMPLATE} INCLUDING DEFAULTS) "
            "WITH (autovacuum_enabled = false)"
        )
        self.execute(f"INSERT INTO public.candidate SELECT * FROM {self.TEMPLATE}")
        self.execute("ALTER TABLE public.candidate ADD PRIMARY KEY (id)")
        self.execute(
            "CREATE INDEX ix_candidate_course_ended_at ON public.candidate (course_ended_at)"
        )
        self.execute("VACUUM ANALYZE public.candidate")
        try:
            self.execute("CHECKPOINT")
        except Exception as exc:  # needs superuser or pg_checkpoint; only less steady without
            self.log(f"CHECKPOINT failed ({type(exc).__name__}); timings may be noisier")

    def server_version(self) -> str:
        return "PostgreSQL " + self.scalar("SHOW server_version")

    def cleanup(self) -> None:
        self.execute("DROP TABLE IF EXISTS public.candidate")
        self.execute(f"DROP TABLE IF EXISTS {self.TEMPLATE}")


class MariadbTarget(_ServerTarget):
    engine = "mariadb"

    def __init__(self, log: Log, url: str, database: str) -> None:
        super().__init__(log, url, database)
        self.template_db = f"{self.database}_template"

    @property
    def template(self) -> str:
        return f"`{self.template_db}`.candidate"

    def prepare(self) -> None:
        server = connect(self.engine, connect_params(self.server_url), autocommit=True)
        try:
            with server.cursor() as cursor:
                for name in (self.database, self.template_db):
                    cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        finally:
            server.close()
        self.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")

    def _sequence(self, first: int, last: int) -> tuple[str, str]:
        """Return (WITH clause, FROM clause) producing `seq` = first..last."""
        engines = self.scalar(
            "SELECT count(*) FROM information_schema.engines "
            "WHERE engine = 'SEQUENCE' AND support IN ('YES', 'DEFAULT')"
        )
        if engines:
            return "", f"seq_{first}_to_{last}"
        # Recursive CTE fallback: max_recursive_iterations must allow the chunk.
        self.execute(f"SET SESSION max_recursive_iterations = {CHUNK_ROWS + 10}")
        return (
            f"WITH RECURSIVE s(seq) AS (SELECT {first} UNION ALL "
            f"SELECT seq + 1 FROM s WHERE seq < {last}) ",
            "s",
        )

    def build_template(self, rows: int) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.template}")
        self.execute(
            f"CREATE TABLE {self.template} (id int NOT NULL PRIMARY KEY, name varchar(120), "
            "email varchar(254), phone varchar(20), cpr char(11), address varchar(200), "
            "birth_date date, notes text, municipality varchar(60), course_ended_at datetime, "
            "KEY ix_candidate_course_ended_at (course_ended_at)) ENGINE=InnoDB"
        )
        for first, last in self._chunks(rows):
            with_clause, source = self._sequence(first, last)
            self.execute(
                f"INSERT INTO {self.template} ({COLUMNS}) {with_clause}SELECT seq, "
                "CONCAT('Kandidat ', seq, ' Testesen'), "
                "CONCAT('kandidat.', seq, '@example.dk'), "
                "CONCAT('+45 ', 20000000 + seq), "
                "CONCAT(LPAD(MOD(seq, 28) + 1, 2, '0'), LPAD(MOD(seq, 12) + 1, 2, '0'), "
                "LPAD(MOD(seq, 100), 2, '0'), '-', LPAD(MOD(seq, 10000), 4, '0')), "
                "CONCAT('Testvej ', MOD(seq, 250) + 1, ', ', 1000 + MOD(seq, 8990), ' Testby'), "
                "DATE '1940-01-01' + INTERVAL MOD(seq * 7, 25000) DAY, "
                "CONCAT('Forloebsnotat ', seq, ': ', %s), "
                "CONCAT('Kommune ', MOD(seq, 98) + 1), "
                f"CASE WHEN MOD(seq * 37, 100) < {DUE_PERCENT} "
                "THEN TIMESTAMP '2018-01-01 00:00:00' + INTERVAL MOD(seq, 2300) DAY "
                "+ INTERVAL MOD(seq, 86400) SECOND "
                "ELSE TIMESTAMP '2024-08-01 00:00:00' + INTERVAL MOD(seq, 150) DAY "
                "+ INTERVAL MOD(seq, 86400) SECOND END "
                f"FROM {source}",
                (NOTE,),
            )
            self.log(f"generated {last:,} of {rows:,} rows")
        self.execute(f"ANALYZE TABLE {self.template}")

    def restore(self) -> None:
        self.execute("DROP TABLE IF EXISTS candidate")
        self.execute(f"CREATE TABLE candidate LIKE {self.template}")
        self.execute(f"INSERT INTO candidate SELECT * FROM {self.template} ORDER BY id")
        self.execute("ANALYZE TABLE candidate")

    def execute(self, sql: str, params: tuple[Any, ...] | None = None) -> None:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.description:  # ANALYZE TABLE returns a result set
                cursor.fetchall()

    def server_version(self) -> str:
        return "MariaDB " + self.scalar("SELECT version()")

    def cleanup(self) -> None:
        self.execute("DROP TABLE IF EXISTS candidate")
        self.execute(f"DROP TABLE IF EXISTS {self.template}")


def make_target(engine: str, log: Log, workdir: Path, url: str | None, database: str) -> Target:
    if engine == "sqlite":
        return SqliteTarget(log, workdir)
    assert url is not None and engine_of(url) == engine
    cls = PostgresTarget if engine == "postgresql" else MariadbTarget
    return cls(log, url, database)
