"""Legal holds that always hold, on all three engines (issue 15, point 1).

- a table named with its default schema (`public.t`, `main.t`, `<database>.t`) is the
  table the rules sweep; a name that cannot be resolved is exit 2 and records nothing;
- holds on UUID, text and composite keys hold exactly their row (never a row that only
  a case-insensitive collation calls equal), in `run`, `plan` and `erase`;
- such a key is never in clear in the state database, `hold list` or the audit trail,
  and another hash key is a clear error, never "no holds";
- `hold add` and `hold release` take the sweep lock: exit 4 while a sweep runs (a real
  `run` process, paused), or wait for it with `--wait-lock`;
- a state database from before sealed keys keeps its integer holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tests.conftest import (
    ENGINE_ENV,
    TEST_KEY,
    TargetDb,
    _reset_server_database,
    _unavailable,
    run_cli,
    write_config,
)
from tests.test_collations import insensitive
from tests.test_outcomes import held_advisory_lock, held_file_lock

AS_OF = "2026-06-01"
OLD = dt.datetime(2026, 5, 1, 14, 0)  # due as of AS_OF with after = "5 days"
NEW = dt.datetime(2026, 5, 31, 14, 0)  # not yet due
REASON = "case 2026-118"
U1, U2, U3 = (uuid.UUID(f"3f2504e0-4f89-11d3-9a0c-0305e82c330{i}") for i in (1, 2, 3))
ANNA, ANNA_LOWER, BOB = "Anna@x.dk", "anna@x.dk", "bob@x.dk"


def rule(table: str) -> str:
    return (
        f'[[rules]]\nid = "{table.replace(".", "-")}"\ntable = "{table}"\naction = "delete"\n'
        'after = "5 days"\nsince = "recorded_at"\n'
    )


def configure(target_db: TargetDb, tmp_path: Path, monkeypatch, *tables: str) -> Path:
    body = "".join(rule(t) for t in tables)
    return write_config(tmp_path, body, target_db.url, monkeypatch,
                        extra_sweep="max_fraction = 1.0")  # fmt: skip


def hold(config: Path, *args: str):
    return run_cli("hold", "add", "-c", str(config), "-d", "main", *args, "--reason", REASON)


def holds(config: Path) -> list[dict]:
    result = run_cli("hold", "list", "-c", str(config), "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()["holds"]


def plan(config: Path) -> dict[str, dict]:
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    return {item["rule"]: item for item in result.json()["items"]}


def run(config: Path) -> dict:
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def remaining(target_db: TargetDb, table: str, *columns: str) -> set[tuple]:
    """Every row's key columns, as text (a UUID too), straight from the database."""
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
            selected = sa.select(*(reflected.c[c] for c in columns))
            return {tuple(str(v) for v in row) for row in connection.execute(selected)}
    finally:
        engine.dispose()


def refused(result, option: str) -> None:
    """Exit 2, one line, naming the option."""
    assert result.exit_code == 2, result.stderr + result.stdout
    assert result.stderr.startswith(f"error: {option}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def hold_runs(tmp_path: Path) -> list[str]:
    state = tmp_path / "state.db"
    if not state.exists():
        return []
    with sqlite3.connect(state) as connection:
        return [r[0] for r in connection.execute("SELECT command FROM runs WHERE command "
                                                 "LIKE 'hold-%' ORDER BY id")]  # fmt: skip


def cctv(target_db: TargetDb) -> None:
    metadata = sa.MetaData()
    sa.Table("cctv", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    target_db.create(metadata, {"cctv": [{"id": i, "recorded_at": OLD if i <= 4 else NEW}
                                         for i in range(1, 6)]})  # fmt: skip


# --- a. table names ------------------------------------------------------------------


def qualified(target_db: TargetDb, table: str) -> str:
    schema = {"sqlite": "main", "postgresql": "public"}.get(target_db.engine_name)
    return f"{schema or sa.make_url(target_db.url).database}.{table}"


def test_a_name_qualified_with_the_default_schema_holds_the_rules_row(
    target_db, tmp_path, monkeypatch
):
    cctv(target_db)
    if target_db.engine_name == "postgresql":  # a schema that exists, without the table
        engine = target_db.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE SCHEMA hr")
        engine.dispose()
    config = configure(target_db, tmp_path, monkeypatch, "cctv")
    elsewhere = {"sqlite": "temp.cctv", "postgresql": "hr.cctv", "mariadb": "mysql.cctv"}
    for name in (elsewhere[target_db.engine_name], "nosuch", "nosuch.cctv", ".cctv", "cctv."):
        refused(hold(config, "-t", name, "-k", "2"), "--table")
    assert holds(config) == [] and hold_runs(tmp_path) == []

    added = hold(config, "-t", qualified(target_db, "cctv"), "-k", "2")
    assert added.exit_code == 0, added.stderr
    assert [(h["table"], h["key"]) for h in holds(config)] == [("cctv", 2)]
    item = plan(config)["cctv"]
    assert (item["due"], item["held"], item["held_by"]) == (3, 1, {"legal hold": 1})
    assert run(config)["items"][0]["done"] == 3
    assert remaining(target_db, "cctv", "id") == {("2",), ("5",)}


def test_a_table_in_another_schema_keeps_its_schema(target_db, tmp_path, monkeypatch):
    if target_db.engine_name != "postgresql":
        pytest.skip("a second schema in the same database: PostgreSQL")
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA hr")
        connection.exec_driver_sql(
            "CREATE TABLE hr.cctv (id int PRIMARY KEY, recorded_at timestamp)"
        )
        connection.exec_driver_sql(
            "INSERT INTO hr.cctv VALUES (1, '2026-05-01'), (2, '2026-05-01')"
        )
    engine.dispose()
    cctv(target_db)  # public.cctv: the same ids, swept by its own rule
    config = configure(target_db, tmp_path, monkeypatch, "cctv", "hr.cctv")
    assert hold(config, "-t", "hr.cctv", "-k", "1").exit_code == 0
    assert [h["table"] for h in holds(config)] == ["hr.cctv"]
    items = plan(config)
    assert (items["hr-cctv"]["held"], items["cctv"]["held"]) == (1, 0)
    run(config)
    assert remaining(target_db, "cctv", "id") == {("5",)}
    engine = target_db.engine()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT id FROM hr.cctv").scalars().all() == [1]
    engine.dispose()


# --- d. UUID, text and composite keys ---------------------------------------------------


def uuid_type(target_db: TargetDb) -> sa.types.TypeEngine:
    return postgresql.UUID(as_uuid=True) if target_db.engine_name == "postgresql" else sa.CHAR(36)


def test_a_hold_on_a_uuid_key(target_db, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    sa.Table("badge", metadata, sa.Column("id", uuid_type(target_db), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    native = target_db.engine_name == "postgresql"
    stored = (lambda u: u) if native else str
    target_db.create(metadata, {"badge": [{"id": stored(u), "recorded_at": OLD}
                                          for u in (U1, U2, U3)]})  # fmt: skip
    tables = ["badge"]
    if target_db.engine_name == "mariadb":  # MariaDB's own UUID type too
        engine = target_db.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE badge_native (id uuid PRIMARY KEY, "
                                       "recorded_at datetime)")  # fmt: skip
            connection.exec_driver_sql("INSERT INTO badge_native VALUES " + ", ".join(
                f"('{u}', '2026-05-01')" for u in (U1, U2, U3)))  # fmt: skip
        engine.dispose()
        tables.append("badge_native")
    config = configure(target_db, tmp_path, monkeypatch, *tables)
    refused(hold(config, "-t", "badge", "-k", "not-a-uuid"), "--key")
    # A native uuid is a value (any spelling); CHAR(36) is text, matched exactly.
    upper = hold(config, "-t", "badge", "-k", str(U2).upper())
    if native:
        assert upper.exit_code == 0, upper.stderr
    else:
        refused(upper, "--key")
        assert hold(config, "-t", "badge", "-k", str(U2)).exit_code == 0
    for table in tables[1:]:
        assert hold(config, "-t", table, "-k", str(U2)).exit_code == 0
    items = plan(config)
    assert all((items[t]["due"], items[t]["held"]) == (2, 1) for t in tables), items
    assert all(items[t]["held_by"] == {"legal hold": 1} for t in tables)
    run(config)
    for table in tables:
        assert remaining(target_db, table, "id") == {(str(U2),)}


def test_a_hold_on_a_text_key_holds_exactly_that_row(target_db, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    # Byte-exact by default on every engine (the MariaDB test database is utf8mb4_bin),
    # so both spellings can be keys; and a case-insensitive table where they cannot.
    sa.Table("subscriber", metadata, sa.Column("email", sa.String(254), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    sa.Table("member", metadata, sa.Column("email", insensitive(target_db, 254), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    target_db.create(metadata, {
        "subscriber": [{"email": e, "recorded_at": OLD} for e in (ANNA, ANNA_LOWER, BOB)],
        "member": [{"email": ANNA, "recorded_at": OLD}, {"email": BOB, "recorded_at": OLD}],
    })  # fmt: skip
    config = configure(target_db, tmp_path, monkeypatch, "subscriber", "member")

    # Never found (or held) through the collation: another case, a trailing space.
    for near in (ANNA_LOWER, ANNA + " ", "ANNA@X.DK"):
        result = hold(config, "-t", "member", "-k", near)
        refused(result, "--key")
        assert near.strip().lower() not in result.stderr.lower()
    assert holds(config) == []
    assert hold(config, "-t", "subscriber", "-k", ANNA).exit_code == 0
    assert hold(config, "-t", "member", "-k", f"email={ANNA}").exit_code == 0  # COL=VALUE too

    items = plan(config)
    assert (items["subscriber"]["due"], items["subscriber"]["held"]) == (2, 1)
    assert (items["member"]["due"], items["member"]["held"]) == (1, 1)
    run(config)
    assert remaining(target_db, "subscriber", "email") == {(ANNA,)}
    assert remaining(target_db, "member", "email") == {(ANNA,)}

    # The application renames the held key to another spelling: the hold was for
    # 'Anna@x.dk', and it does not hold 'anna@x.dk', however the column collates.
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE member SET email = :new WHERE email = :old"),
                           {"new": ANNA_LOWER, "old": ANNA})  # fmt: skip
    engine.dispose()
    item = plan(config)["member"]
    assert (item["due"], item["held"]) == (1, 0)
    run(config)
    assert remaining(target_db, "member", "email") == set()


def shift_rows() -> list[dict]:
    return [{"site": s, "person": p, "recorded_at": OLD}
            for s, p in ((1, ANNA), (1, ANNA_LOWER), (2, ANNA), (1, BOB))]  # fmt: skip


def test_a_hold_on_a_composite_key(target_db, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    sa.Table("shift", metadata, sa.Column("site", sa.Integer, primary_key=True),
             sa.Column("person", sa.String(254), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    sa.Table("pair", metadata, sa.Column("a", sa.Integer, primary_key=True),
             sa.Column("b", sa.Integer, primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    target_db.create(metadata, {
        "shift": shift_rows(),
        "pair": [{"a": a, "b": b, "recorded_at": OLD} for a, b in ((1, 2), (2, 1), (1, 1))],
    })  # fmt: skip
    config = configure(target_db, tmp_path, monkeypatch, "shift", "pair")
    for args in (
        ["-k", "1"],  # not COL=VALUE
        ["-k", "site=1"],  # a column missing
        ["-k", "site=1", "-k", "site=2", "-k", f"person={ANNA}"],  # a column twice
        ["-k", "site=1", "-k", f"nobody={ANNA}"],  # not a key column
        ["-k", "site=x", "-k", f"person={ANNA}"],  # not an integer
        ["-k", "site=3", "-k", f"person={ANNA}"],  # no such row
        ["-k", "site=1", "-k", "person=ANNA@x.dk"],  # no such row, exactly
    ):
        result = hold(config, "-t", "shift", *args)
        refused(result, "--key")
        assert "anna@x" not in result.stderr.lower()
    assert holds(config) == []
    # The columns in any order.
    assert hold(config, "-t", "shift", "-k", f"person={ANNA}", "-k", "site=1").exit_code == 0
    assert hold(config, "-t", "pair", "-k", "b=2", "-k", "a=1").exit_code == 0
    listed = {h["table"]: h["key"] for h in holds(config)}
    assert listed["pair"] == "(1, 2)"  # integers are not personal: shown as they are
    assert listed["shift"].startswith("hmac:")

    items = plan(config)
    assert (items["shift"]["due"], items["shift"]["held"]) == (3, 1)
    assert (items["pair"]["due"], items["pair"]["held"]) == (2, 1)
    run(config)
    assert remaining(target_db, "shift", "site", "person") == {("1", ANNA)}
    assert remaining(target_db, "pair", "a", "b") == {("1", "2")}


ERASE_CONFIG = """
[subject]
root = "subscriber"
identifiers = { email = "email" }
"""


def test_erase_honours_holds_on_text_and_composite_keys(target_db, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    sa.Table("subscriber", metadata, sa.Column("email", sa.String(254), primary_key=True),
             sa.Column("name", sa.String(100)))  # fmt: skip
    sa.Table("visit", metadata,
             sa.Column("email", sa.String(254), sa.ForeignKey("subscriber.email"),
                       primary_key=True),
             sa.Column("day", sa.Date, primary_key=True))  # fmt: skip
    days = (dt.date(2026, 1, 5), dt.date(2026, 1, 6))
    target_db.create(metadata, {
        "subscriber": [{"email": e, "name": "x"} for e in (ANNA, ANNA_LOWER)],
        "visit": [{"email": e, "day": d} for e in (ANNA, ANNA_LOWER) for d in days],
    })  # fmt: skip
    config = write_config(tmp_path, ERASE_CONFIG, target_db.url, monkeypatch)
    assert hold(config, "-t", "subscriber", "-k", ANNA).exit_code == 0
    added = hold(config, "-t", "visit", "-k", f"email={ANNA}", "-k", "day=2026-01-05")
    assert added.exit_code == 0, added.stderr
    refused(hold(config, "-t", "visit", "-k", f"email={ANNA}", "-k", "day=5 Jan"), "--key")

    result = run_cli("erase", "-c", str(config), "--subject", f"email={ANNA}", "--json")
    assert result.exit_code == 0, result.stderr
    kept = {k["table"]: k for k in result.json()["kept"]}
    assert (kept["subscriber"]["rows"], kept["visit"]["rows"]) == (1, 1)
    assert kept["visit"]["basis"].startswith("legal hold")
    assert remaining(target_db, "subscriber", "email") == {(ANNA,), (ANNA_LOWER,)}
    assert remaining(target_db, "visit", "email", "day") == {
        (ANNA, "2026-01-05"), (ANNA_LOWER, "2026-01-05"), (ANNA_LOWER, "2026-01-06")
    }  # fmt: skip


# --- d. the key is never readable -------------------------------------------------------


def secrets_of(*values: str) -> list[bytes]:
    """A value as it might leak: itself, lower-cased, UUID hex, or a bare SHA-256."""
    found = []
    for value in values:
        for form in {value, value.lower(), value.replace("-", "")}:
            found += [form.encode(), hashlib.sha256(form.encode()).hexdigest().encode()]
    return found


def state_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("state.db*") if p.is_file())


def test_a_personal_key_is_never_in_clear(target_db, tmp_path, monkeypatch):
    metadata = sa.MetaData()
    sa.Table("subscriber", metadata, sa.Column("email", sa.String(254), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    sa.Table("badge", metadata, sa.Column("id", uuid_type(target_db), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    sa.Table("shift", metadata, sa.Column("site", sa.Integer, primary_key=True),
             sa.Column("person", sa.String(254), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    native = target_db.engine_name == "postgresql"
    target_db.create(metadata, {
        "subscriber": [{"email": e, "recorded_at": OLD} for e in (ANNA, BOB)],
        "badge": [{"id": u if native else str(u), "recorded_at": OLD} for u in (U1, U2)],
        "shift": [{"site": 7, "person": ANNA, "recorded_at": OLD}],
    })  # fmt: skip
    cctv(target_db)
    config = configure(target_db, tmp_path, monkeypatch, "subscriber", "badge", "shift", "cctv")
    for args in (["-t", "subscriber", "-k", ANNA], ["-t", "badge", "-k", str(U2)],
                 ["-t", "shift", "-k", "site=7", "-k", f"person={ANNA}"],
                 ["-t", "cctv", "-k", "3"]):  # fmt: skip
        added = hold(config, *args)
        assert added.exit_code == 0, added.stderr
    run_json = run(config)
    assert remaining(target_db, "subscriber", "email") == {(ANNA,)}
    assert remaining(target_db, "badge", "id") == {(str(U2),)}
    assert remaining(target_db, "shift", "person") == {(ANNA,)}

    # What the commands show: integer keys as they are, the others only as a label.
    listed = holds(config)
    labels = [h["key"] for h in listed if h["table"] != "cctv"]
    assert all(isinstance(k, str) and k.startswith("hmac:") for k in labels), labels
    assert len(set(labels)) == 3
    assert [h["key"] for h in listed if h["table"] == "cctv"] == [3]
    outputs = [
        run_cli("hold", "list", "-c", str(config)).stdout,
        json.dumps(listed),
        json.dumps(run_json),
        run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json").stdout,
        run_cli("audit", "list", "-c", str(config), "--json").stdout,
    ]
    audit_keys = []
    for run_row in json.loads(outputs[-1])["runs"]:
        shown = run_cli("audit", "show", "-c", str(config), str(run_row["id"]), "--json")
        outputs += [shown.stdout, run_cli("audit", "show", "-c", str(config),
                                          str(run_row["id"])).stdout]  # fmt: skip
        audit_keys += [e["key_to"] for e in shown.json()["entries"] if e["kind"] == "hold-add"]
    assert sorted(audit_keys, key=str) == sorted(["3", *labels], key=str)
    leaks = secrets_of(ANNA, str(U2))
    for text in outputs:
        assert not [s for s in leaks if s in text.encode()]
    # The state database (file, WAL and all) holds neither the key nor its bare hash.
    stored = state_bytes(tmp_path)
    assert b"hmac:" in stored  # the labels are there; the values are not
    assert not [s for s in leaks if s in stored]
    with sqlite3.connect(tmp_path / "state.db") as connection:
        rows = connection.execute(
            "SELECT row_key, row_key_sealed FROM holds ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == [None, None, None, 3]
    assert all(r[1].startswith("v1:") for r in rows[:3]) and rows[3][1] is None
    assert len({r[1] for r in rows[:3]}) == 3
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


def test_another_hash_key_is_a_clear_error(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    metadata = sa.MetaData()
    sa.Table("subscriber", metadata, sa.Column("email", sa.String(254), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    target_db.create(metadata, {"subscriber": [{"email": e, "recorded_at": OLD}
                                               for e in (ANNA, BOB)]})  # fmt: skip
    cctv(target_db)
    config = configure(target_db, tmp_path, monkeypatch, "subscriber", "cctv")
    assert hold(config, "-t", "subscriber", "-k", ANNA).exit_code == 0
    before = target_db.checksum()

    monkeypatch.setenv("GDPR_SWEEP_KEY", "another-secret-0123456789abcdef")
    for command in (["plan", "--json"], ["run"]):
        result = run_cli(command[0], "-c", str(config), "--as-of", AS_OF, *command[1:])
        refused(result, "sweep.hash_key_env")
    refused(hold(config, "-t", "cctv", "-k", "1"), "sweep.hash_key_env")
    monkeypatch.delenv("GDPR_SWEEP_KEY")
    refused(run_cli("plan", "-c", str(config), "--as-of", AS_OF), "sweep.hash_key_env")
    monkeypatch.setenv("GDPR_SWEEP_KEY", TEST_KEY)
    # A sealed key is bound to its database and table: moved to another, it does not open.
    with sqlite3.connect(tmp_path / "state.db") as connection:
        connection.execute("UPDATE holds SET table_name = 'cctv'")
    refused(run_cli("run", "-c", str(config), "--as-of", AS_OF), "sweep.hash_key_env")
    assert target_db.checksum() == before
    with sqlite3.connect(tmp_path / "state.db") as connection:
        connection.execute("UPDATE holds SET table_name = 'subscriber'")
    run(config)
    assert remaining(target_db, "subscriber", "email") == {(ANNA,)}


# --- c. the sweep lock ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def locked_state(request, tmp_path, monkeypatch):
    """(config, a context manager holding the sweep lock as a running sweep would)."""
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    cctv(target_db)
    config = configure(target_db, tmp_path, monkeypatch, "cctv")
    if request.param == "sqlite":
        return config, lambda: held_file_lock(tmp_path / "state.db")
    url = os.environ.get(ENGINE_ENV["postgresql"])
    if not url:
        _unavailable(f"postgresql: set {ENGINE_ENV['postgresql']} to a test server")
    _reset_server_database(url, "postgresql")
    monkeypatch.setenv("STATE_URL", url)
    text = config.read_text().replace(
        'state_url = "sqlite:///state.db"', 'state_url_env = "STATE_URL"'
    )
    config.write_text(text)
    return config, lambda: held_advisory_lock(url)


def test_hold_add_and_release_take_the_sweep_lock(locked_state):
    config, locked = locked_state
    assert run_cli("migrate", "-c", str(config)).exit_code == 0
    with locked():
        at_once = hold(config, "-t", "cctv", "-k", "2")
        started = time.monotonic()
        waited = hold(config, "-t", "cctv", "-k", "2", "--wait-lock", "1s")
        assert 1.0 <= time.monotonic() - started < 5
    for result in (at_once, waited):
        assert result.exit_code == 4, result.stderr
        assert result.stderr.startswith("error: another gdpr-sweep is running")
        assert result.stderr.count("\n") == 1
    assert "after waiting 1 s" in waited.stderr
    assert holds(config) == []
    refused(hold(config, "-t", "cctv", "-k", "2", "--wait-lock", "soon"), "--wait-lock")

    lock = locked()
    lock.__enter__()
    releaser = threading.Timer(0.8, lambda: lock.__exit__(None, None, None))
    releaser.start()
    try:
        added = hold(config, "-t", "cctv", "-k", "2", "--wait-lock", "20s")
    finally:
        releaser.join()
    assert added.exit_code == 0, added.stderr
    assert [h["status"] for h in holds(config)] == ["active"]

    with locked():
        release = run_cli("hold", "release", "-c", str(config), "1")
    assert release.exit_code == 4, release.stderr
    assert [h["status"] for h in holds(config)] == ["active"]
    released = run_cli("hold", "release", "-c", str(config), "1", "--wait-lock", "5s")
    assert released.exit_code == 0, released.stderr
    assert [h["status"] for h in holds(config)] == ["released"]
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


def _gdpr_sweep(config: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDPR_SWEEP_FAILPOINT")}
    return subprocess.Popen(
        [sys.executable, "-m", "gdpr_sweep", *args, "-c", str(config)],
        env={**env, "GDPR_SWEEP_KEY": TEST_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _batches_done(state: Path) -> int:
    try:
        with sqlite3.connect(state, timeout=5) as connection:
            return connection.execute(
                "SELECT count(*) FROM audit_entries WHERE kind = 'batch'"
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_hold_add_while_a_run_is_paused(target_db, tmp_path, monkeypatch):
    cctv(target_db)  # ids 1-4 due, 5 not
    config = write_config(tmp_path, rule("cctv"), target_db.url, monkeypatch,
                          extra_sweep="max_fraction = 1.0\nbatch_size = 1")  # fmt: skip
    assert run_cli("migrate", "-c", str(config)).exit_code == 0
    sweep = _gdpr_sweep(config, "run", "--as-of", AS_OF, "--json", "--pause-between-batches", "1")
    waiting: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 60
        while _batches_done(tmp_path / "state.db") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        # The first outcome is written with the second batch's intent; that batch then
        # commits within milliseconds and the run pauses for a second, holding the
        # sweep lock (and no lock in the target database): stop it there.
        time.sleep(0.3)
        sweep.send_signal(signal.SIGSTOP)
        assert _batches_done(tmp_path / "state.db") < 4

        result = hold(config, "-t", "cctv", "-k", "5")
        assert result.exit_code == 4, result.stderr
        assert result.stderr.count("\n") == 1
        assert holds(config) == [] and hold_runs(tmp_path) == []

        # Waiting: one for a row the run leaves (5), one for a row it is about to delete (4).
        for key in ("5", "4"):
            args = ["-d", "main", "-t", "cctv", "-k", key, "--reason", REASON]
            waiting.append(_gdpr_sweep(config, "hold", "add", *args, "--wait-lock", "60s"))
        time.sleep(1.5)
        assert [p.poll() for p in waiting] == [None, None]  # both wait for the lock
        assert holds(config) == []
    finally:
        sweep.send_signal(signal.SIGCONT)
    out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 0, err
    assert json.loads(out)["items"][0]["done"] == 4
    kept, gone = (p.communicate(timeout=60) for p in waiting)
    assert waiting[0].returncode == 0, kept[1]
    # The row was checked again under the lock: the run had deleted it meanwhile.
    assert waiting[1].returncode == 2, gone[1]
    assert gone[1].startswith("error: --key: cctv in database main has no row 4")
    assert [(h["key"], h["status"]) for h in holds(config)] == [(5, "active")]
    assert remaining(target_db, "cctv", "id") == {("5",)}
    assert run_cli("audit", "verify", "-c", str(config)).exit_code == 0


# --- the state database's own migration -------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def state_url(request, tmp_path, monkeypatch) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url = os.environ.get(ENGINE_ENV[request.param])
    if not url:
        _unavailable(f"{request.param}: set {ENGINE_ENV[request.param]} to a test server")
    _reset_server_database(url, request.param)
    return url


def test_integer_holds_survive_the_migration(state_url, tmp_path, monkeypatch):
    from alembic import command

    from gdpr_sweep.state.migrate import HEAD, alembic_config

    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    cctv(target_db)
    metadata = sa.MetaData()
    sa.Table("subscriber", metadata, sa.Column("email", sa.String(254), primary_key=True),
             sa.Column("recorded_at", sa.DateTime))  # fmt: skip
    target_db.create(metadata, {"subscriber": [{"email": ANNA, "recorded_at": OLD}]})
    config = configure(target_db, tmp_path, monkeypatch, "cctv", "subscriber")
    monkeypatch.setenv("STATE_URL", state_url)
    config.write_text(config.read_text().replace('state_url = "sqlite:///state.db"',
                                                 'state_url_env = "STATE_URL"'))  # fmt: skip
    engine = sa.create_engine(state_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0005")  # before sealed keys
        connection.execute(sa.text(
            "INSERT INTO holds (database_name, table_name, row_key, reason, created_by, "
            "created_at) VALUES ('main', 'cctv', 2, 'old', 'me@host', '2026-11-01T00:00:00')"
        ))  # fmt: skip

    def revision() -> str:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    assert plan(config)["cctv"]["held"] == 1  # read as it is: plan migrates nothing
    assert revision() == "0005"
    assert [(h["key"], h["status"]) for h in holds(config)] == [(2, "active")]
    assert revision() == HEAD
    assert hold(config, "-t", "subscriber", "-k", ANNA).exit_code == 0
    items = plan(config)
    assert (items["cctv"]["held"], items["subscriber"]["held"]) == (1, 1)
    run(config)
    assert remaining(target_db, "cctv", "id") == {("2",), ("5",)}
    assert remaining(target_db, "subscriber", "email") == {(ANNA,)}
    engine.dispose()
