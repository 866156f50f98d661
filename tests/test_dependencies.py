"""Rules that feed each other, cascades that go together, parents still referenced.

Each test builds a schema where one rule's rows are another rule's clock, cascade or
blocker, plans it, runs it (both config orders where order could matter), and then
reads every table: plan counts = run counts, and exactly the expected rows remain.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.configs import ONE_ROW_BATCHES, WHOLE_TABLE, rule_toml, since_latest
from tests.conftest import TargetDb, items_by_rule, run_cli, write_config

D = dt.date
AS_OF = "2026-06-01"


def _ids(target_db: TargetDb, table: str) -> list[int]:
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            return [r[0] for r in connection.exec_driver_sql(f"SELECT id FROM {table} ORDER BY id")]
    finally:
        engine.dispose()


# --- rules feeding each other, and parents still referenced (points 3 and 4) ------------


def _bookkeeping_schema() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "customer",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(80)),
        sa.Column("created_at", sa.Date),
    )
    sa.Table(
        "invoice",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        # No ON DELETE action: an invoice the law keeps keeps its customer too.
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("dated", sa.Date, nullable=False),
    )
    return metadata


INVOICE_RULE = rule_toml(
    "invoice-delete",
    "invoice",
    "delete",
    since="dated",
    after="5 years",
    from_fiscal_year_end=True,
    basis="Bookkeeping Act",
)

CUSTOMER_RULE = rule_toml(
    "customer-delete",
    "customer",
    "delete",
    since="created_at",
    after="3 years",
    since_latest=since_latest("invoice", "dated", "customer_id"),
)


def _seed_bookkeeping(target_db: TargetDb) -> None:
    target_db.create(
        _bookkeeping_schema(),
        {
            "customer": [
                {"id": 1, "name": "Old Customer", "created_at": D(2012, 1, 1)},
                {"id": 2, "name": "Kept By Invoice", "created_at": D(2012, 1, 1)},
                {"id": 3, "name": "Recent", "created_at": D(2012, 1, 1)},
                {"id": 4, "name": "Never Invoiced Old", "created_at": D(2010, 5, 5)},
                {"id": 5, "name": "Never Invoiced New", "created_at": D(2025, 5, 5)},
            ],
            "invoice": [
                # customer 1: both invoices past 5 years after their fiscal year: all go
                {"id": 10, "customer_id": 1, "dated": D(2018, 3, 1)},
                {"id": 11, "customer_id": 1, "dated": D(2019, 6, 15)},
                # customer 2: due by its last invoice (2021 + 3 years), but that invoice
                # is kept through 2026-12-31: the customer is held, "referenced"
                {"id": 20, "customer_id": 2, "dated": D(2019, 1, 10)},
                {"id": 21, "customer_id": 2, "dated": D(2021, 6, 15)},
                # customer 3: nothing due
                {"id": 30, "customer_id": 3, "dated": D(2025, 1, 1)},
            ],
        },
    )


@pytest.mark.parametrize("invoice_first", [True, False], ids=["invoice-first", "customer-first"])
def test_rules_feeding_each_other_do_what_the_plan_said(
    target_db, tmp_path, monkeypatch, invoice_first
):
    _seed_bookkeeping(target_db)
    rules = INVOICE_RULE + CUSTOMER_RULE if invoice_first else CUSTOMER_RULE + INVOICE_RULE
    path = write_config(tmp_path, rules, target_db.url, monkeypatch, extra_sweep=ONE_ROW_BATCHES)
    check = run_cli("check", "-c", str(path))
    assert check.exit_code == 0, check.stdout + check.stderr
    assert "held back (referenced)" in check.stdout + check.stderr
    assert "moves the clock back" not in check.stdout + check.stderr  # 5 years > 3 years
    plan = run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--json")
    assert plan.exit_code == 0, plan.stderr
    planned = items_by_rule(plan.json())
    assert planned["invoice-delete"]["due"] == 3
    assert planned["customer-delete"]["due"] == 2  # customers 1 and 4
    assert planned["customer-delete"]["held"] == 1  # customer 2
    assert planned["customer-delete"]["held_by"] == {"referenced": 1}
    assert planned["customer-delete"]["referenced_by"] == {"invoice": 1}

    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    done = items_by_rule(run.json())
    assert done["invoice-delete"]["done"] == 3
    assert done["customer-delete"]["done"] == 2
    assert all(item["left"] == 0 for item in run.json()["items"])
    assert _ids(target_db, "customer") == [2, 3, 5]
    assert _ids(target_db, "invoice") == [21, 30]

    # The held customer goes in the run in which its last invoice goes.
    later = run_cli("run", "-c", str(path), "--as-of", "2027-01-02", "--json")
    assert later.exit_code == 0, later.stdout + later.stderr
    assert _ids(target_db, "invoice") == [30]
    assert _ids(target_db, "customer") == [3, 5]


def test_apply_of_a_plan_over_rules_feeding_each_other(target_db, tmp_path, monkeypatch):
    _seed_bookkeeping(target_db)
    path = write_config(
        tmp_path, INVOICE_RULE + CUSTOMER_RULE, target_db.url, monkeypatch, extra_sweep=WHOLE_TABLE
    )
    plan_file = tmp_path / "plan.json"
    made = run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--out", str(plan_file))
    assert made.exit_code == 0, made.stderr
    applied = run_cli("apply", str(plan_file), "-c", str(path), "--yes", "--json")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert {i["rule"]: i["done"] for i in applied.json()["items"]} == {
        "invoice-delete": 3,
        "customer-delete": 2,
    }
    assert _ids(target_db, "customer") == [2, 3, 5]


# --- a cascade with the child's clock, and a held cascade child (points 2 and 1) --------


def _engagement_schema() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "customer",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(80)),
    )
    sa.Table(
        "engagement",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("performed_at", sa.Date, nullable=False),
    )
    return metadata


ENGAGEMENT_RULES = rule_toml(
    "customer-delete",
    "customer",
    "delete",
    after="3 years",
    since_latest=since_latest("engagement", "performed_at", "customer_id"),
    cascade=["engagement"],
)


def _seed_engagements(target_db: TargetDb) -> None:
    target_db.create(
        _engagement_schema(),
        {
            "customer": [
                {"id": 1, "name": "Lapsed"},
                {"id": 2, "name": "Active"},
                {"id": 3, "name": "Lapsed With Held Engagement"},
            ],
            "engagement": [
                {"id": 10, "customer_id": 1, "performed_at": D(2020, 1, 1)},
                {"id": 11, "customer_id": 1, "performed_at": D(2022, 2, 1)},
                {"id": 20, "customer_id": 2, "performed_at": D(2024, 1, 1)},
                {"id": 30, "customer_id": 3, "performed_at": D(2021, 5, 5)},
                {"id": 31, "customer_id": 3, "performed_at": D(2021, 6, 6)},
            ],
        },
    )


def test_a_cascade_over_the_clock_table_deletes_parent_and_children_together(
    target_db, tmp_path, monkeypatch
):
    _seed_engagements(target_db)
    path = write_config(
        tmp_path, ENGAGEMENT_RULES, target_db.url, monkeypatch, extra_sweep=ONE_ROW_BATCHES
    )
    plan = items_by_rule(run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--json").json())
    assert plan["customer-delete"]["due"] == 2
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert items_by_rule(run.json())["customer-delete"]["done"] == 2
    assert _ids(target_db, "customer") == [2]
    assert _ids(target_db, "engagement") == [20]


def test_a_held_cascade_child_keeps_its_parent_and_siblings(target_db, tmp_path, monkeypatch):
    _seed_engagements(target_db)
    path = write_config(
        tmp_path, ENGAGEMENT_RULES, target_db.url, monkeypatch, extra_sweep=WHOLE_TABLE
    )
    held = run_cli(
        "hold", "add", "-c", str(path), "-d", "main", "-t", "engagement", "-k", "31",
        "--reason", "case 2026-118",
    )  # fmt: skip
    assert held.exit_code == 0, held.stdout + held.stderr
    plan = items_by_rule(run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--json").json())
    item = plan["customer-delete"]
    assert (item["due"], item["held"]) == (1, 1)
    assert item["held_by"] == {"legal hold on a row that goes with it": 1}
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert items_by_rule(run.json())["customer-delete"]["done"] == 1
    assert _ids(target_db, "customer") == [2, 3]
    assert _ids(target_db, "engagement") == [20, 30, 31]


# --- an engine-level ON DELETE CASCADE child that a rule keeps longer (point 4) ----------


def _notes_schema() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "customer",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.Date),
    )
    sa.Table(
        "note",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "customer_id",
            sa.Integer,
            sa.ForeignKey("customer.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("written", sa.Date, nullable=False),
    )
    return metadata


NOTE_RULES = rule_toml(
    "customer-delete", "customer", "delete", since="created_at", after="3 years"
) + rule_toml("note-delete", "note", "delete", since="written", after="10 years")


def test_an_engine_cascade_does_not_take_rows_a_rule_keeps_longer(target_db, tmp_path, monkeypatch):
    target_db.create(
        _notes_schema(),
        {
            "customer": [
                {"id": 1, "created_at": D(2015, 1, 1)},
                {"id": 2, "created_at": D(2015, 1, 1)},
                {"id": 3, "created_at": D(2025, 1, 1)},
            ],
            "note": [
                {"id": 10, "customer_id": 1, "written": D(2012, 1, 1)},  # due
                {"id": 20, "customer_id": 2, "written": D(2020, 1, 1)},  # kept to 2030
                {"id": 30, "customer_id": 3, "written": D(2025, 2, 2)},
            ],
        },
    )
    path = write_config(tmp_path, NOTE_RULES, target_db.url, monkeypatch, extra_sweep=WHOLE_TABLE)
    plan = items_by_rule(run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--json").json())
    assert (plan["customer-delete"]["due"], plan["customer-delete"]["held"]) == (1, 1)
    assert plan["customer-delete"]["held_by"] == {"referenced": 1}
    assert plan["note-delete"]["due"] == 1
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert {i["rule"]: i["done"] for i in run.json()["items"]} == {
        "customer-delete": 1,
        "note-delete": 1,
    }
    assert _ids(target_db, "customer") == [2, 3]
    assert _ids(target_db, "note") == [20, 30]


# --- text and composite keys through the pins ------------------------------------------


def test_pinned_composite_text_keys(target_db, tmp_path, monkeypatch):
    """A composite key of text columns, differing only by case, batched one by one."""
    metadata = sa.MetaData()
    sa.Table(
        "subscriber",
        metadata,
        sa.Column("email", sa.String(120), primary_key=True),
        sa.Column("region", sa.String(10), primary_key=True),
        sa.Column("left_at", sa.Date, nullable=False),
    )
    target_db.create(
        metadata,
        {
            "subscriber": [
                {"email": "Anna@x.dk", "region": "DK", "left_at": D(2019, 1, 1)},
                {"email": "anna@x.dk", "region": "dk", "left_at": D(2026, 1, 1)},
                {"email": "bo@x.dk", "region": "DK", "left_at": D(2018, 1, 1)},
                {"email": "bo@x.dk", "region": "SE", "left_at": D(2026, 1, 1)},
            ]
        },
    )
    rules = rule_toml("subscriber-delete", "subscriber", "delete", since="left_at", after="1 year")
    path = write_config(tmp_path, rules, target_db.url, monkeypatch, extra_sweep=ONE_ROW_BATCHES)
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert items_by_rule(run.json())["subscriber-delete"]["done"] == 2
    engine = target_db.engine()
    with engine.connect() as connection:
        left = connection.exec_driver_sql(
            "SELECT email, region FROM subscriber ORDER BY left_at, region"
        ).all()
    engine.dispose()
    assert sorted(map(tuple, left)) == [("anna@x.dk", "dk"), ("bo@x.dk", "SE")]


# --- a self-reference the engine cascades through ---------------------------------------


def _comments(target_db: TargetDb, ondelete: str) -> None:
    metadata = sa.MetaData()
    sa.Table(
        "comment",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("comment.id", ondelete=ondelete)),
        sa.Column("posted", sa.Date, nullable=False),
    )
    target_db.create(metadata)
    engine = target_db.engine()
    with engine.begin() as connection:  # parents first: the foreign key is checked per row
        for row in [
            {"id": 1, "parent_id": None, "posted": D(2020, 1, 1)},  # due
            {"id": 2, "parent_id": 1, "posted": D(2026, 3, 1)},  # reply, not due
            {"id": 3, "parent_id": 2, "posted": D(2026, 4, 1)},  # reply to the reply
            {"id": 4, "parent_id": None, "posted": D(2020, 1, 1)},  # due
            {"id": 5, "parent_id": None, "posted": D(2026, 4, 1)},
        ]:
            connection.execute(metadata.tables["comment"].insert(), row)
    engine.dispose()


COMMENT_RULE = rule_toml("comment-delete", "comment", "delete", since="posted", after="1 year")


def test_a_held_reply_keeps_the_thread_the_engine_would_cascade(target_db, tmp_path, monkeypatch):
    _comments(target_db, "CASCADE")
    path = write_config(tmp_path, COMMENT_RULE, target_db.url, monkeypatch, extra_sweep=WHOLE_TABLE)
    check = run_cli("check", "-c", str(path))
    assert check.exit_code == 0, check.stdout + check.stderr
    assert "references itself" in check.stdout + check.stderr
    held = run_cli(
        "hold", "add", "-c", str(path), "-d", "main", "-t", "comment", "-k", "3",
        "--reason", "case 7",
    )  # fmt: skip
    assert held.exit_code == 0, held.stdout + held.stderr
    plan = items_by_rule(run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--json").json())
    assert (plan["comment-delete"]["due"], plan["comment-delete"]["held"]) == (1, 1)
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert _ids(target_db, "comment") == [1, 2, 3, 5]


def test_without_a_hold_the_engine_cascades_the_replies_as_check_said(
    target_db, tmp_path, monkeypatch
):
    _comments(target_db, "CASCADE")
    path = write_config(tmp_path, COMMENT_RULE, target_db.url, monkeypatch, extra_sweep=WHOLE_TABLE)
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert items_by_rule(run.json())["comment-delete"]["done"] == 2
    assert _ids(target_db, "comment") == [5]  # the replies went with their thread


def test_a_self_reference_set_null_detaches_the_replies(target_db, tmp_path, monkeypatch):
    _comments(target_db, "SET NULL")
    path = write_config(tmp_path, COMMENT_RULE, target_db.url, monkeypatch, extra_sweep=WHOLE_TABLE)
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert _ids(target_db, "comment") == [2, 3, 5]
    assert target_db.scalar("SELECT parent_id FROM comment WHERE id = 2") is None
    assert target_db.scalar("SELECT parent_id FROM comment WHERE id = 3") == 2


def test_pins_order_text_keys_by_the_column_own_collation(target_db, tmp_path, monkeypatch):
    """A key column whose collation is not the database's default (ICU on PostgreSQL,
    a case-insensitive one on MariaDB, NOCASE on SQLite): batches of one row over the
    pins must find exactly the due rows, so the pins must sort like the column."""
    collate = {
        "postgresql": 'COLLATE "en-x-icu"',
        "mariadb": "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
        "sqlite": "COLLATE NOCASE",
    }[target_db.engine_name]
    engine = target_db.engine()
    with engine.begin() as connection:
        if target_db.engine_name == "postgresql":
            connection.exec_driver_sql("CREATE DOMAIN item_code AS VARCHAR(20)")
            key_type = f"item_code {collate}"
        else:
            key_type = f"VARCHAR(20) {collate}"
        connection.exec_driver_sql(
            f"CREATE TABLE item (code {key_type} NOT NULL PRIMARY KEY, ended DATE NOT NULL)"
        )
        for code, ended in [
            ("a", "2019-01-01"), ("B", "2026-05-01"), ("c", "2019-01-01"),
            ("D", "2019-01-01"), ("e", "2026-05-01"), ("F", "2019-01-01"),
        ]:  # fmt: skip
            connection.execute(
                sa.text("INSERT INTO item (code, ended) VALUES (:c, :e)"),
                {"c": code, "e": D.fromisoformat(ended)},
            )
    engine.dispose()
    rules = rule_toml("item-delete", "item", "delete", since="ended", after="1 year")
    path = write_config(tmp_path, rules, target_db.url, monkeypatch, extra_sweep=ONE_ROW_BATCHES)
    run = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert items_by_rule(run.json())["item-delete"]["done"] == 4
    engine = target_db.engine()
    with engine.connect() as connection:
        left = sorted(r[0] for r in connection.exec_driver_sql("SELECT code FROM item"))
    engine.dispose()
    assert left == ["B", "e"]


def test_check_warns_when_another_rule_deletes_the_activity_a_clock_reads(
    target_db, tmp_path, monkeypatch
):
    """Engagements deleted after a year, customers 3 years after their last engagement:
    once the last one is gone the clock falls back to older activity (check says so; an
    invoice rule of 5 years under a 3-year customer rule is no such case, see above)."""
    _seed_engagements(target_db)
    calls = rule_toml(
        "engagement-delete", "engagement", "delete", since="performed_at", after="1 year"
    )
    rules = ENGAGEMENT_RULES.replace('cascade = ["engagement"]\n', "") + calls
    path = write_config(tmp_path, rules, target_db.url, monkeypatch, extra_sweep=WHOLE_TABLE)
    check = run_cli("check", "-c", str(path))
    assert check.exit_code == 0, check.stdout + check.stderr
    output = check.stdout + check.stderr
    assert "rules[0].since_latest.table" in output and "moves the clock back" in output
