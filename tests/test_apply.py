"""`run` and `apply` on SQLite, PostgreSQL and MariaDB: run the real CLI, then query.

Small batch sizes make every rule take several batches, so keyset batching, cascade
order and idempotence are exercised for real.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.strategies import HASH_PREFIX
from tests.configs import rule_toml, since_latest
from tests.conftest import TargetDb, run_cli, write_config

D = dt.date
T = dt.datetime
AS_OF = "2026-06-01"
OLD, NEW = T(2020, 3, 4, 10, 30), T(2026, 5, 1, 9, 0)  # due / not due at AS_OF (6 months)


def schema() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "counselling_case",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("municipality", sa.String(60)),  # statistics: kept
        sa.Column("outcome", sa.String(20)),  # statistics: kept
        sa.Column("name", sa.String(120)),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(40)),
        sa.Column("birth_date", sa.Date),
        sa.Column("notes", sa.Text),
        sa.Column("course_ended_at", sa.DateTime),
        sa.Column("under_investigation", sa.Boolean, nullable=False, default=False),
    )
    sa.Table(
        "customer",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120)),
        sa.Column("created_at", sa.DateTime),
    )
    sa.Table(
        "contact_person",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("name", sa.String(120)),
    )
    sa.Table(
        "contact_note",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("contact_person.id"), nullable=False),
        sa.Column("body", sa.Text),
    )
    sa.Table(
        "engagement",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("performed_at", sa.DateTime),
    )
    return metadata


RULES = rule_toml(
    "counselling-anonymise",
    "counselling_case",
    "anonymise",
    after="6 months",
    since="course_ended_at",
    unless_true="under_investigation",
    columns={
        "name": "null",
        "email": "null",
        "phone": "hash",
        "birth_date": "year",
        "notes": "redact",
    },
) + rule_toml(
    "customer-delete",
    "customer",
    "delete",
    after="3 years",
    since_latest=since_latest("engagement", "performed_at", "customer_id"),
    since="created_at",
    cascade=["contact_person", "contact_note", "engagement"],
)


def seed(target_db: TargetDb, cases: int = 23, customers: int = 17) -> dict[str, set[int]]:
    """Build the tables; return the ids that are due per rule."""
    case_rows, due_cases = [], set()
    for i in range(1, cases + 1):
        old = i % 3 != 0
        held = i % 7 == 0
        case_rows.append({
            "id": i, "municipality": f"Kommune {i % 4}", "outcome": "employed",
            "name": f"Person {i}", "email": f"p{i}@example.dk", "phone": f"+45 0000 {i:04d}",
            "birth_date": D(1970 + i, 5, 17), "notes": f"note {i}",
            "course_ended_at": OLD if old else NEW, "under_investigation": held,
        })  # fmt: skip
        if old and not held:
            due_cases.add(i)
    customer_rows, contact_rows, note_rows, engagement_rows, due_customers = [], [], [], [], set()
    for i in range(1, customers + 1):
        # odd: last engagement long ago (due); even: recent engagement (not due)
        customer_rows.append({"id": i, "name": f"Firma {i}", "created_at": OLD})
        engagement_rows.append({"id": i, "customer_id": i, "performed_at": OLD})
        if i % 2 == 0:
            engagement_rows.append({"id": 100 + i, "customer_id": i, "performed_at": NEW})
        else:
            due_customers.add(i)
        contact_rows.append({"id": i, "customer_id": i, "name": f"Kontakt {i}"})
        note_rows.append({"id": i, "contact_id": i, "body": f"note {i}"})
    target_db.create(schema(), {
        "counselling_case": case_rows, "customer": customer_rows,
        "contact_person": contact_rows, "contact_note": note_rows,
        "engagement": engagement_rows,
    })  # fmt: skip
    return {"counselling-anonymise": due_cases, "customer-delete": due_customers}


def config(tmp_path: Path, target_db: TargetDb, monkeypatch, batch_size: int = 4,
           max_fraction: float = 0.9, rules: str = RULES) -> Path:  # fmt: skip
    return write_config(
        tmp_path, rules, target_db.url, monkeypatch,
        extra_sweep=f"batch_size = {batch_size}\nmax_fraction = {max_fraction}",
    )  # fmt: skip


def ids(target_db: TargetDb, sql: str) -> set[int]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            return {row[0] for row in connection.exec_driver_sql(sql)}
    finally:
        engine.dispose()


def audit_rows(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "state.db") as connection:
        return connection.execute(sql).fetchall()


def test_run_acts_on_exactly_the_due_rows_and_is_idempotent(target_db, tmp_path, monkeypatch):
    due = seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    all_cases = ids(target_db, "SELECT id FROM counselling_case")

    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    done = {item["rule"]: item["done"] for item in summary["items"]}
    assert done == {rule: len(keys) for rule, keys in due.items()}
    assert all(item["batches"] > 1 for item in summary["items"])

    # Anonymised: exactly the due cases; identifiers gone, statistics untouched.
    anonymised = ids(target_db, "SELECT id FROM counselling_case WHERE name IS NULL")
    assert anonymised == due["counselling-anonymise"]
    engine = target_db.engine()
    with engine.connect() as connection:
        case = sa.Table("counselling_case", sa.MetaData(), autoload_with=connection)
        for row in connection.execute(sa.select(case)).mappings():
            assert row["municipality"] == f"Kommune {row['id'] % 4}"
            assert row["outcome"] == "employed"
            if row["id"] in anonymised:
                assert row["email"] is None
                assert row["notes"] == "[redacted]"
                assert row["birth_date"] == D(1970 + row["id"], 1, 1)
                assert row["phone"].startswith(HASH_PREFIX)
                assert len(row["phone"]) <= 40
            else:
                assert row["name"] == f"Person {row['id']}"
                assert row["notes"] == f"note {row['id']}"
                assert row["birth_date"] == D(1970 + row["id"], 5, 17)
    engine.dispose()
    assert ids(target_db, "SELECT id FROM counselling_case") == all_cases

    # Deleted: exactly the due customers, their children and grandchildren with them.
    kept = set(range(1, 18)) - due["customer-delete"]
    assert ids(target_db, "SELECT id FROM customer") == kept
    assert ids(target_db, "SELECT customer_id FROM contact_person") == kept
    assert ids(target_db, "SELECT contact_id FROM contact_note") == kept
    assert ids(target_db, "SELECT DISTINCT customer_id FROM engagement") == kept

    # The same as-of again: nothing due, nothing changed.
    before = target_db.checksum()
    again = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--json")
    assert again.exit_code == 0
    assert [item["due"] for item in again.json()["items"]] == [0, 0]
    assert target_db.checksum() == before

    # The audit trail: one batch entry per batch, rows adding up, chain intact.
    for rule, keys in due.items():
        (rows,) = audit_rows(
            tmp_path, f"SELECT sum(rows) FROM audit_entries WHERE kind='batch' AND rule_id='{rule}'"
        )[0:1][0]
        assert rows == len(keys)
    assert run_cli("audit", "verify", "-c", str(cfg)).exit_code == 0
    listing = run_cli("audit", "list", "-c", str(cfg), "--json").json()
    assert [run["status"] for run in listing["runs"]] == ["completed", "completed"]


def test_plan_then_apply_executes_the_reviewed_plan(target_db, tmp_path, monkeypatch):
    due = seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    plan_file = tmp_path / "plan.json"
    assert run_cli("plan", "-c", str(cfg), "--as-of", AS_OF, "--out", str(plan_file)).exit_code == 0
    result = run_cli("apply", str(plan_file), "-c", str(cfg), "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["as_of"].startswith(AS_OF)
    assert (
        ids(target_db, "SELECT id FROM counselling_case WHERE name IS NULL")
        == due["counselling-anonymise"]
    )
    # Applying the same plan again: the due set is now empty, so the plan is stale.
    result = run_cli("apply", str(plan_file), "-c", str(cfg), "--yes")
    assert result.exit_code == 5
    assert "stale plan" in result.stderr


def test_apply_refuses_a_stale_plan_and_touches_nothing(target_db, tmp_path, monkeypatch):
    seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    plan_file = tmp_path / "plan.json"
    assert run_cli("plan", "-c", str(cfg), "--as-of", AS_OF, "--out", str(plan_file)).exit_code == 0

    # A row changes between review and apply: same count, different set.
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE counselling_case SET under_investigation = "
            + ("true" if target_db.engine_name == "postgresql" else "1")
            + " WHERE id = 1"
        )
        connection.exec_driver_sql(
            "UPDATE counselling_case SET under_investigation = "
            + ("false" if target_db.engine_name == "postgresql" else "0")
            + " WHERE id = 7"
        )
    engine.dispose()
    before = target_db.checksum()
    result = run_cli("apply", str(plan_file), "-c", str(cfg), "--yes")
    assert result.exit_code == 5
    assert result.stderr.count("\n") == 1
    assert "a different set" in result.stderr
    assert target_db.checksum() == before

    # The config changes between review and apply.
    cfg.write_text(cfg.read_text().replace('after = "3 years"', 'after = "2 years"'))
    result = run_cli("apply", str(plan_file), "-c", str(cfg), "--yes")
    assert result.exit_code == 5
    assert "config" in result.stderr
    assert target_db.checksum() == before


def test_max_fraction_guard_refuses_unless_forced(target_db, tmp_path, monkeypatch):
    due = seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch, max_fraction=0.3)
    before = target_db.checksum()
    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF)
    assert result.exit_code == 5
    assert "sweep.max_fraction" in result.stderr
    assert target_db.checksum() == before
    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--force", "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert ids(target_db, "SELECT id FROM customer") == set(range(1, 18)) - due["customer-delete"]


GUARD_RULE = rule_toml("old-delete", "customer", "delete", after="3 years", since="created_at")


@pytest.mark.parametrize(
    ("old", "fraction", "refused"),
    [
        (5, 0.5, False),  # 5 of 10 is not more than half
        (6, 0.5, True),  # 6 of 10 is
        (1, 0.5, False),  # the table is counted only as far as the guard needs
        (9, 0.9, False),
        (10, 0.9, True),
        (3, 0.3, False),  # 0.3 is not exact in binary: 3 / 0.3 = 9.999...
        (4, 0.3, True),
    ],
)
def test_max_fraction_guard_boundary(target_db, tmp_path, monkeypatch, old, fraction, refused):
    metadata = sa.MetaData()
    sa.Table(
        "customer",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime),
    )
    rows = [{"id": i, "created_at": OLD if i <= old else NEW} for i in range(1, 11)]
    target_db.create(metadata, {"customer": rows})
    cfg = config(tmp_path, target_db, monkeypatch, max_fraction=fraction, rules=GUARD_RULE)
    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--json")
    left = ids(target_db, "SELECT id FROM customer")
    if refused:
        assert result.exit_code == 5, result.stderr
        assert f"would touch {old:,} of 10 rows" in result.stderr
        assert left == set(range(1, 11))
    else:
        assert result.exit_code == 0, result.stderr
        assert left == set(range(old + 1, 11))


def test_second_sweep_exits_4_while_the_lock_is_held(target_db, tmp_path, monkeypatch):
    seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    before = target_db.checksum()
    fd = os.open(tmp_path / "state.db.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF)
    finally:
        os.close(fd)
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1
    assert target_db.checksum() == before
    # Released (as when the holder dies): the next sweep runs.
    assert run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--quiet").exit_code == 0


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_entries SET rows = rows + 1 WHERE kind = 'batch' AND id = "
        "(SELECT min(id) FROM audit_entries WHERE kind = 'batch')",
        "DELETE FROM audit_entries WHERE id = 3",
        "UPDATE audit_entries SET id = -id WHERE id IN (3, 4)",
        "DELETE FROM audit_entries WHERE id = (SELECT max(id) FROM audit_entries)",
    ],
    ids=["edited", "deleted", "reordered", "truncated"],
)
def test_audit_verify_detects_an_altered_trail(tmp_path, monkeypatch, tamper):
    target = tmp_path / "target.db"
    target_db = TargetDb("sqlite", f"sqlite:///{target}")
    seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    assert run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--quiet").exit_code == 0
    assert run_cli("audit", "verify", "-c", str(cfg)).exit_code == 0
    with sqlite3.connect(tmp_path / "state.db") as connection:
        connection.execute(tamper)
        if "-id" in tamper:  # swap two entries' positions
            connection.execute("UPDATE audit_entries SET id = 4 WHERE id = -3")
            connection.execute("UPDATE audit_entries SET id = 3 WHERE id = -4")
    result = run_cli("audit", "verify", "-c", str(cfg))
    assert result.exit_code == 5
    assert result.stderr.startswith("error: audit trail altered")
    assert result.stderr.count("\n") == 1


def test_run_needs_the_hash_key(target_db, tmp_path, monkeypatch):
    seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    monkeypatch.delenv("GDPR_SWEEP_KEY")
    before = target_db.checksum()
    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert "sweep.hash_key_env" in result.stderr
    assert target_db.checksum() == before


def test_run_output_holds_no_personal_value(target_db, tmp_path, monkeypatch):
    seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    outputs = []
    for args in (["--json"], []):
        result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, *args)
        outputs += [result.stdout, result.stderr]
    for args in (["list"], ["show", "1"], ["show", "1", "--json"], ["verify"]):
        result = run_cli("audit", *args, "-c", str(cfg))
        outputs += [result.stdout, result.stderr]
    state = (tmp_path / "state.db").read_bytes()
    for marker in ("Person 1", "example.dk", "+45 0000", "note 1", "Firma", "Kontakt"):
        assert not any(marker in text for text in outputs), marker
        assert marker.encode() not in state, marker


def test_postgresql_state_database_with_advisory_lock(tmp_path, monkeypatch):
    """State on PostgreSQL (URL from state_url_env): migrated, audited, locked."""
    from tests.conftest import ENGINE_ENV, _reset_server_database, _unavailable

    url = os.environ.get(ENGINE_ENV["postgresql"])
    if not url:
        _unavailable("postgresql: set GDPR_SWEEP_TEST_PG_URL for the state-database test")
    _reset_server_database(url, "postgresql")
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    due = seed(target_db)
    monkeypatch.setenv("STATE_URL", url)
    cfg = config(tmp_path, target_db, monkeypatch)
    cfg.write_text(cfg.read_text().replace('state_url = "sqlite:///state.db"',
                                           'state_url_env = "STATE_URL"'))  # fmt: skip

    holder = sa.create_engine(url)
    with holder.connect() as connection:
        from gdpr_sweep.state.lock import ADVISORY_LOCK_ID

        connection.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        locked = run_cli("run", "-c", str(cfg), "--as-of", AS_OF)
        connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
    holder.dispose()
    assert locked.exit_code == 4, locked.stderr

    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    assert sum(item["done"] for item in result.json()["items"]) == sum(map(len, due.values()))
    assert run_cli("audit", "verify", "-c", str(cfg)).exit_code == 0
    assert not (tmp_path / "state.db").exists()


ODD_COLUMNS = ["gdpr_sweep_last", "gdpr_sweep_upper", "param_1", 'we"ird name', "select"]


def test_columns_named_like_sql_or_our_parameters_are_just_columns(
    target_db, tmp_path, monkeypatch
):
    """Real columns whose names collide with SQL words or with the batch's bound keys."""
    metadata = sa.MetaData()
    sa.Table(
        "odd",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ended_at", sa.DateTime),
        *(sa.Column(name, sa.String(40)) for name in ODD_COLUMNS),
    )
    rows = [
        {"id": i, "ended_at": OLD if i % 2 else NEW, **{n: f"v{i}" for n in ODD_COLUMNS}}
        for i in range(1, 13)
    ]
    target_db.create(metadata, {"odd": rows})
    columns = ", ".join(
        f'{json.dumps(name)} = "{"redact" if i % 2 else "null"}"'
        for i, name in enumerate(ODD_COLUMNS)
    )
    body = (
        '[[rules]]\nid = "odd"\ntable = "odd"\naction = "anonymise"\nafter = "6 months"\n'
        f'since = "ended_at"\ncolumns = {{ {columns} }}\n'
    )
    cfg = config(tmp_path, target_db, monkeypatch, batch_size=2, max_fraction=1, rules=body)
    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--json", "--quiet")
    assert result.exit_code == 0, result.stderr
    (item,) = result.json()["items"]
    assert (item["done"], item["left"], item["batches"]) == (6, 0, 3)
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            odd = sa.Table("odd", sa.MetaData(), autoload_with=connection)
            for row in connection.execute(sa.select(odd).order_by(odd.c.id)).mappings():
                for i, name in enumerate(ODD_COLUMNS):
                    done = "[redacted]" if i % 2 else None
                    assert row[name] == (done if row["id"] % 2 else f"v{row['id']}"), row
    finally:
        engine.dispose()
