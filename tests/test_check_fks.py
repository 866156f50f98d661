"""`check` and foreign keys, and strategies that would fail every night (issue 15).

Real schemas made with raw DDL (the syntax is the point: inline REFERENCES, other
schemas, self-references), the real `check`, and where the outcome is the engine's
own (ON DELETE CASCADE/SET NULL, cascade tables, anonymised columns) the real `run`
with every row of every table compared afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gdpr_sweep.strategies import hash_value
from tests.conftest import TEST_KEY, TargetDb, run_cli, write_config

AS_OF = "2026-11-23"
OLD = "2020-01-01 00:00:00"  # due under "6 months"
NEW = "2026-11-01 00:00:00"  # not yet


def clock(target_db: TargetDb) -> str:
    """A naive timestamp type on each engine."""
    return "TIMESTAMP" if target_db.engine_name == "postgresql" else "DATETIME"


def ddl(target_db: TargetDb, *statements: str) -> None:
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def rows(target_db: TargetDb, table: str, columns: str = "*") -> list[tuple]:
    """Every row of `table`, in primary-key (first column) order."""
    engine = target_db.engine()
    try:
        with engine.connect() as connection:
            result = connection.exec_driver_sql(f"SELECT {columns} FROM {table} ORDER BY 1")
            return [tuple(row) for row in result]
    finally:
        engine.dispose()


def delete_rule(table: str, extra: str = "", rule_id: str = "r") -> str:
    return (
        f'[[rules]]\nid = "{rule_id}"\ntable = "{table}"\naction = "delete"\n'
        f'after = "6 months"\nsince = "created_at"\n{extra}\n'
    )


def anonymise_rule(table: str, columns: str, since: str = "ended_at") -> str:
    return (
        f'[[rules]]\nid = "r"\ntable = "{table}"\naction = "anonymise"\n'
        f'after = "6 months"\nsince = "{since}"\ncolumns = {{ {columns} }}\n'
    )


def check(tmp_path: Path, target_db: TargetDb, monkeypatch, body: str, extra_sweep: str = ""):
    config = write_config(tmp_path, body, target_db.url, monkeypatch, extra_sweep=extra_sweep)
    return config, run_cli("check", "-c", str(config))


def run(config: Path, *args: str):
    """`run` as of AS_OF; --force: these small tables are mostly due (sweep.max_fraction)."""
    return run_cli("run", "-c", str(config), "--as-of", AS_OF, "--force", *args)


def lines(output: str, mark: str) -> list[str]:
    """The finding lines with mark "!" (warnings) or "✗" (errors)."""
    return [line for line in output.splitlines() if line.startswith(mark)]


# --- point 5: foreign keys the reflection missed ------------------------------------


def test_inline_references_keep_their_on_delete(target_db: TargetDb, tmp_path, monkeypatch):
    """`col INTEGER REFERENCES customer(id) ON DELETE SET NULL` is SET NULL, not NO ACTION.

    (SQLAlchemy's SQLite reflection drops the action of the inline form; `check` used
    to refuse and advise a cascade that would have deleted the invoices.)
    """
    ts = clock(target_db)
    ddl(
        target_db,
        f"CREATE TABLE customer (id INTEGER PRIMARY KEY, created_at {ts})",
        "CREATE TABLE invoice (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer(id) ON DELETE SET NULL, amount INTEGER)",
        "CREATE TABLE note (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer (id) ON DELETE CASCADE)",
        f"INSERT INTO customer VALUES (1, '{OLD}'), (2, '{NEW}')",
        "INSERT INTO invoice VALUES (10, 1, 100), (11, 2, 200), (12, NULL, 300)",
        "INSERT INTO note VALUES (20, 1), (21, 2)",
    )
    config, result = check(tmp_path, target_db, monkeypatch, delete_rule("customer"))
    assert result.exit_code == 0, result.stdout
    assert lines(result.stdout, "!") == [] and lines(result.stdout, "✗") == [], result.stdout
    done = run(config)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert rows(target_db, "customer", "id") == [(2,)]
    assert rows(target_db, "invoice") == [(10, None, 100), (11, 2, 200), (12, None, 300)]
    assert rows(target_db, "note") == [(21, 2)]


@pytest.fixture
def billing(target_db: TargetDb) -> Iterator[str]:
    """A second schema (PostgreSQL) or database (MariaDB), dropped before and after."""
    if target_db.engine_name == "sqlite":
        pytest.skip("SQLite's foreign keys never leave their database")
    engine = target_db.engine()
    name = "billing" if target_db.engine_name == "postgresql" else f"{engine.url.database}_billing"
    drop = (
        f"DROP SCHEMA IF EXISTS {name} CASCADE"
        if target_db.engine_name == "postgresql"
        else f"DROP DATABASE IF EXISTS {name}"
    )
    create = (
        f"CREATE SCHEMA {name}"
        if target_db.engine_name == "postgresql"
        else f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    )
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(drop)
            connection.exec_driver_sql(create)
        yield name
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(drop)
        engine.dispose()


def test_references_from_other_schemas_are_seen(
    target_db: TargetDb, billing: str, tmp_path, monkeypatch
):
    """`billing.note → hr.candidate` (or another MariaDB database): `check` used to pass,
    and every run then failed with a foreign-key violation; a cascade into it was refused
    as having no foreign key."""
    ts = clock(target_db)
    pg = target_db.engine_name == "postgresql"
    candidate = "hr.candidate" if pg else "candidate"
    # From the other database, MariaDB needs the home database named.
    referred = candidate if pg else f"{target_db.engine().url.database}.candidate"
    if pg:
        ddl(target_db, "CREATE SCHEMA hr")
    ddl(
        target_db,
        f"CREATE TABLE {candidate} (id INTEGER PRIMARY KEY, email VARCHAR(254) UNIQUE, "
        f"created_at {ts})",
        f"CREATE TABLE {billing}.note (id INTEGER PRIMARY KEY, "
        f"candidate_id INTEGER REFERENCES {referred} (id))",
        f"CREATE TABLE {billing}.mail (id INTEGER PRIMARY KEY, "
        f"candidate_email VARCHAR(254) REFERENCES {referred} (email))",
        f"INSERT INTO {candidate} VALUES (1, 'a@example.org', '{OLD}'), "
        f"(2, 'b@example.org', '{NEW}'), (3, 'c@example.org', '{OLD}')",
        f"INSERT INTO {billing}.note VALUES (10, 1), (11, 2), (12, NULL)",
        f"INSERT INTO {billing}.mail VALUES (20, 'a@example.org'), (21, 'b@example.org')",
    )
    if pg:  # and from the default schema to another one
        ddl(
            target_db,
            "CREATE TABLE letter (id INTEGER PRIMARY KEY, "
            "candidate_id INTEGER REFERENCES hr.candidate (id))",
            "INSERT INTO letter VALUES (30, 3), (31, 2)",
        )

    # Without cascade: the referenced candidates are held back, and check says so.
    _, result = check(tmp_path, target_db, monkeypatch, delete_rule(candidate))
    assert result.exit_code == 0, result.stdout
    warned = "\n".join(lines(result.stdout, "!"))
    assert (
        f"rules[0].action: due rows of {candidate!r} that rows of '{billing}.note' still "
        "reference (candidate_id, " in warned
    ), result.stdout
    assert f"'{billing}.mail' still reference (candidate_email, " in warned
    assert ("rows of 'letter' still reference (candidate_id, " in warned) == pg

    # Anonymising a column another schema's key refers to is refused.
    _, result = check(
        tmp_path, target_db, monkeypatch, anonymise_rule(candidate, 'email = "null"', "created_at")
    )
    assert result.exit_code == 2, result.stdout
    assert (
        f"rules[0].columns.email: is referenced by a foreign key of '{billing}.mail' "
        "(candidate_email)" in result.stdout
    )

    # With the other schema's tables in cascade, the run deletes them with the parent.
    tables = [f"{billing}.note", f"{billing}.mail"] + (["letter"] if pg else [])
    cascade = "cascade = [" + ", ".join(f'"{t}"' for t in tables) + "]"
    config, result = check(tmp_path, target_db, monkeypatch, delete_rule(candidate, cascade))
    assert result.exit_code == 0, result.stdout
    assert lines(result.stdout, "✗") == [] and lines(result.stdout, "!") == [], result.stdout
    done = run(config)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert rows(target_db, candidate, "id") == [(2,)]
    assert rows(target_db, f"{billing}.note") == [(11, 2), (12, None)]
    assert rows(target_db, f"{billing}.mail") == [(21, "b@example.org")]
    if pg:
        assert rows(target_db, "letter") == [(31, 2)]


def test_references_into_the_default_schema_from_another(
    target_db: TargetDb, billing: str, tmp_path, monkeypatch
):
    """`billing.ticket → public.candidate` (PostgreSQL), named as plain `candidate`."""
    if target_db.engine_name != "postgresql":
        pytest.skip("the default schema and another: PostgreSQL")
    ddl(
        target_db,
        "CREATE TABLE candidate (id INTEGER PRIMARY KEY, created_at TIMESTAMP)",
        f"CREATE TABLE {billing}.ticket (id INTEGER PRIMARY KEY, "
        "candidate_id INTEGER REFERENCES public.candidate (id))",
        f"INSERT INTO candidate VALUES (1, '{OLD}'), (2, '{NEW}')",
        f"INSERT INTO {billing}.ticket VALUES (10, 1), (11, 2)",
    )
    _, result = check(tmp_path, target_db, monkeypatch, delete_rule("candidate"))
    assert result.exit_code == 0, result.stdout
    assert "rows of 'billing.ticket' still reference (candidate_id, " in result.stdout
    config, result = check(
        tmp_path, target_db, monkeypatch, delete_rule("candidate", 'cascade = ["billing.ticket"]')
    )
    assert result.exit_code == 0 and lines(result.stdout, "!") == [], result.stdout
    done = run(config)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert rows(target_db, "candidate", "id") == [(2,)]
    assert rows(target_db, "billing.ticket") == [(11, 2)]


SELF_REFERENCE_ROWS = [
    # id, parent_id, created_at: 1 and 4 are due
    (1, None, OLD),
    (2, 1, NEW),
    (3, 2, NEW),
    (4, None, OLD),
    (5, 4, NEW),
    (6, None, NEW),
]


@pytest.mark.parametrize("ondelete", ["CASCADE", "SET NULL", "NO ACTION"])
def test_self_reference_in_a_deleted_table(
    target_db: TargetDb, tmp_path, monkeypatch, ondelete: str
):
    """`comment.parent_id → comment.id`: check says what the run then does."""
    ddl(
        target_db,
        f"CREATE TABLE comment (id INTEGER PRIMARY KEY, parent_id INTEGER, "
        f"created_at {clock(target_db)}, "
        f"FOREIGN KEY (parent_id) REFERENCES comment (id) ON DELETE {ondelete})",
        "INSERT INTO comment VALUES "
        + ", ".join(
            f"({i}, {'NULL' if p is None else p}, '{c}')" for i, p, c in SELF_REFERENCE_ROWS
        ),
    )
    config, result = check(tmp_path, target_db, monkeypatch, delete_rule("comment"))
    before = target_db.checksum()
    if ondelete == "NO ACTION":
        assert result.exit_code == 2, result.stdout
        assert "✗ database main: rules[0].action: 'comment' references itself (parent_id, " in (
            result.stdout
        )
        assert "deleting a row that other rows still reference fails mid-run" in result.stdout
        assert "declare ON DELETE SET NULL or CASCADE on parent_id" in result.stdout
        refused = run(config)
        assert refused.exit_code == 2, refused.stdout + refused.stderr
        assert "references itself" in refused.stderr
        assert target_db.checksum() == before
        return
    assert result.exit_code == 0, result.stdout
    warned = lines(result.stdout, "!")
    assert len(warned) == 1, result.stdout
    assert (
        f"rules[0].action: 'comment' references itself (parent_id, ON DELETE {ondelete})"
        in (warned[0])
    )
    done = run(config)
    assert done.exit_code == 0, done.stdout + done.stderr
    if ondelete == "CASCADE":
        assert "deleted with it by the engine, due or not" in warned[0]
        # 2 and 3 (under 1) and 5 (under 4) go with their due ancestors.
        assert rows(target_db, "comment", "id, parent_id") == [(6, None)]
    else:
        assert "stay, with parent_id set to NULL" in warned[0]
        assert rows(target_db, "comment", "id, parent_id") == [
            (2, None),
            (3, 2),
            (5, None),
            (6, None),
        ]


def test_self_reference_in_a_cascade_table(target_db: TargetDb, tmp_path, monkeypatch):
    """A cascade table, or one the engine cascades into, that references itself without
    an action is refused too (naming the cascade entry, or the rule's action)."""
    ts = clock(target_db)
    ddl(
        target_db,
        f"CREATE TABLE customer (id INTEGER PRIMARY KEY, created_at {ts})",
        "CREATE TABLE note (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer (id), reply_to INTEGER REFERENCES note (id))",
        "CREATE TABLE visit (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer (id) ON DELETE CASCADE, "
        "follows_id INTEGER REFERENCES visit (id))",
    )
    body = delete_rule("customer", 'cascade = ["note"]')
    _, result = check(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 2, result.stdout
    assert "✗ database main: rules[0].cascade[0]: 'note' references itself (reply_to, " in (
        result.stdout
    )
    assert "declare ON DELETE SET NULL or CASCADE on reply_to" in result.stdout
    assert "✗ database main: rules[0].action: 'visit' references itself (follows_id, " in (
        result.stdout
    )


# --- point 4, check side: references that hold parents back -------------------------


def held_back_schema(target_db: TargetDb) -> None:
    ts = clock(target_db)
    ddl(
        target_db,
        f"CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(254), created_at {ts})",
        "CREATE TABLE invoice (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer (id))",
        "CREATE TABLE contact (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer (id))",
        "CREATE TABLE phone_call (id INTEGER PRIMARY KEY, "
        "contact_id INTEGER REFERENCES contact (id))",
        f"CREATE TABLE orders (id INTEGER PRIMARY KEY, created_at {ts}, "
        "customer_id INTEGER REFERENCES customer (id) ON DELETE CASCADE)",
        "CREATE TABLE visit (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer (id) ON DELETE CASCADE)",
        "CREATE TABLE visit_note (id INTEGER PRIMARY KEY, "
        "visit_id INTEGER REFERENCES visit (id) ON DELETE SET NULL)",
        "CREATE TABLE badge (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer (id) ON DELETE CASCADE)",
        "CREATE TABLE badge_scan (id INTEGER PRIMARY KEY, badge_id INTEGER REFERENCES badge (id))",
    )


def test_references_without_on_delete_hold_parents_back(target_db: TargetDb, tmp_path, monkeypatch):
    """No longer a refusal advising a cascade (which would delete the invoices the law
    keeps): a warning that referenced parents are held back, per referencing table."""
    held_back_schema(target_db)
    body = delete_rule("customer", 'cascade = ["contact"]') + delete_rule(
        "orders", rule_id="orders"
    )
    config, result = check(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 0, result.stdout
    assert lines(result.stdout, "✗") == [], result.stdout
    warned = lines(result.stdout, "!")
    expected = [
        "rules[0].action: due rows of 'customer' that rows of 'invoice' still reference "
        "(customer_id, ",
        "rules[0].cascade[0]: due rows of 'customer' whose 'contact' rows are still "
        "referenced by rows of 'phone_call' (contact_id, ",
        "rules[0].action: rows of 'orders' reference 'customer' with ON DELETE CASCADE "
        "(customer_id) and have their own delete rule (rules[1]): due rows of 'customer' "
        "whose 'orders' rows are kept longer are held back (referenced)",
        # badge goes with the customer by the engine; a scan of it holds both back
        "rules[0].action: due rows of 'customer' whose 'badge' rows (deleted with them "
        "by ON DELETE CASCADE) are still referenced by rows of 'badge_scan' (badge_id, ",
    ]
    for text in expected:
        assert sum(text in line for line in warned) == 1, (text, result.stdout)
    # visit cascades, and its notes are detached: nothing holds a customer back there
    assert len(warned) == 4, result.stdout
    assert "visit" not in result.stdout
    assert all("held back (referenced)" in line for line in warned)
    assert "add 'invoice' to the rule's cascade only to delete them with the parent" in (
        result.stdout
    )
    planned = run_cli("plan", "-c", str(config), "--as-of", AS_OF)
    assert planned.exit_code == 0, planned.stdout + planned.stderr


def test_cascade_into_rows_kept_on_erasure_is_a_warning(target_db: TargetDb, tmp_path, monkeypatch):
    held_back_schema(target_db)
    body = (
        delete_rule("customer", 'cascade = ["contact", "phone_call"]')
        + '[subject]\nroot = "customer"\nidentifiers = { email = "email" }\n'
        + '[subject.erase.orders]\naction = "keep"\nbasis = "Bookkeeping Act"\n'
        + '[subject.erase.invoice]\naction = "keep"\nbasis = "Bookkeeping Act"\n'
    )
    _, result = check(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 0, result.stdout
    rule_lines = [line for line in lines(result.stdout, "!") if "rules[0]" in line]
    assert len(rule_lines) == 3, result.stdout  # invoice, orders, badge_scan
    assert (
        "rules[0].action: rows of 'orders' reference 'customer' with ON DELETE CASCADE "
        '(customer_id) and are kept on erasure (subject.erase.orders action "keep")'
    ) in rule_lines[1] + rule_lines[0]
    assert any("rows of 'invoice' still reference" in line for line in rule_lines)


# --- point 6: strategies that cannot succeed ----------------------------------------


def test_redact_into_a_composite_unique_key(target_db: TargetDb, tmp_path, monkeypatch):
    ts = clock(target_db)
    ddl(
        target_db,
        "CREATE TABLE account (id INTEGER PRIMARY KEY, tenant VARCHAR(20), "
        f"login VARCHAR(60), joined_on DATE, ended_at {ts}, "
        "UNIQUE (tenant, login), UNIQUE (tenant, joined_on))",
        "INSERT INTO account VALUES "
        f"(1, 'a', 'x', '2019-03-01', '{OLD}'), (2, 'a', 'y', '2019-05-01', '{OLD}'), "
        f"(3, 'b', 'z', '2019-05-01', '{NEW}'), (4, NULL, 'w', '2019-06-01', '{OLD}')",
    )
    before = target_db.checksum()
    for columns, key, strategy in (
        ('login = "redact"', "rules[0].columns.login", "redact"),
        ('joined_on = "year"', "rules[0].columns.joined_on", "year"),
    ):
        config, result = check(tmp_path, target_db, monkeypatch, anonymise_rule("account", columns))
        assert result.exit_code == 2, result.stdout
        column = key.rsplit(".", 1)[1]
        assert (
            f"{key}: is part of UNIQUE (tenant, {column}), and rows share the other columns' "
            f"values, so strategy {strategy!r} would give two of them the same key"
        ) in result.stdout, result.stdout
        refused = run(config)
        assert refused.exit_code == 2 and key in refused.stderr, refused.stderr
        assert target_db.checksum() == before
    # The same strategy in [subject.erase.T] is refused naming that key.
    body = (
        '[subject]\nroot = "account"\nidentifiers = { login = "login" }\n'
        '[subject.erase.account]\naction = "anonymise"\ncolumns = { login = "redact" }\n'
    )
    _, result = check(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 2, result.stdout
    assert "subject.erase.account.columns.login: is part of UNIQUE (tenant, login)" in (
        result.stdout
    )
    ddl(target_db, "UPDATE account SET tenant = 'c' WHERE id = 2")
    # Both columns of the key redacted: every two rows would collide.
    _, result = check(
        tmp_path,
        target_db,
        monkeypatch,
        anonymise_rule("account", 'login = "redact", tenant = "redact"'),
    )
    assert result.exit_code == 2, result.stdout
    assert "rules[0].columns.login: is part of UNIQUE (tenant, login), and rows share" in (
        result.stdout
    )
    # The other column nulled: the anonymised rows never collide, nothing to say.
    _, result = check(
        tmp_path,
        target_db,
        monkeypatch,
        anonymise_rule("account", 'login = "redact", tenant = "null"'),
    )
    assert result.exit_code == 0 and lines(result.stdout, "!") == [], result.stdout
    # No two rows share a tenant: a warning, and the run succeeds.
    config, result = check(
        tmp_path, target_db, monkeypatch, anonymise_rule("account", 'login = "redact"')
    )
    assert result.exit_code == 0, result.stdout
    warned = lines(result.stdout, "!")
    assert (
        len(warned) == 1
        and "rules[0].columns.login: is part of UNIQUE (tenant, login);" in (warned[0])
    )
    done = run(config)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert rows(target_db, "account", "id, tenant, login") == [
        (1, "a", "[redacted]"),
        (2, "c", "[redacted]"),
        (3, "b", "z"),
        (4, None, "[redacted]"),
    ]


def test_hash_into_a_short_unique_column(target_db: TargetDb, tmp_path, monkeypatch):
    """13 characters leave 8 hex digits: 200 values collide with odds ~5e-6 (refused),
    50 with ~3e-7 (fine)."""
    ddl(
        target_db,
        f"CREATE TABLE person (id INTEGER PRIMARY KEY, code VARCHAR(13) UNIQUE, "
        f"ended_at {clock(target_db)})",
        "INSERT INTO person VALUES "
        + ", ".join(f"({i}, 'P{i:04d}', '{OLD if i % 2 else NEW}')" for i in range(1, 201)),
    )
    before = target_db.checksum()
    config, result = check(
        tmp_path, target_db, monkeypatch, anonymise_rule("person", 'code = "hash"')
    )
    assert result.exit_code == 2, result.stdout
    finding = re.search(r"rules\[0\]\.columns\.code: (.*)", result.stdout)
    assert finding, result.stdout
    assert finding.group(1).startswith(
        "is UNIQUE and holds 200 values; a keyed hash cut to 8 hex digits gives two of them "
        "the same pseudonym with odds of about 5e-06"
    ), finding.group(1)
    assert "widen the column to at least 14 characters" in finding.group(1)
    refused = run(config)
    assert refused.exit_code == 2, refused.stderr
    assert target_db.checksum() == before
    ddl(target_db, "DELETE FROM person WHERE id > 50")
    config, result = check(
        tmp_path, target_db, monkeypatch, anonymise_rule("person", 'code = "hash"')
    )
    assert result.exit_code == 0, result.stdout
    done = run(config)
    assert done.exit_code == 0, done.stdout + done.stderr
    key = TEST_KEY.encode()
    assert rows(target_db, "person", "id, code") == [
        (i, hash_value(f"P{i:04d}", key, 13) if i % 2 else f"P{i:04d}") for i in range(1, 51)
    ]


def test_redact_into_an_enum_without_the_placeholder(target_db: TargetDb, tmp_path, monkeypatch):
    """PostgreSQL and MariaDB ENUMs; on SQLite the same list as a CHECK constraint."""
    ts = clock(target_db)

    def make(values: str) -> None:
        ddl(target_db, "DROP TABLE IF EXISTS ticket")
        if target_db.engine_name == "postgresql":
            ddl(
                target_db,
                "DROP TYPE IF EXISTS ticket_state",
                f"CREATE TYPE ticket_state AS ENUM ({values})",
            )
            kind = "ticket_state"
        elif target_db.engine_name == "mariadb":
            kind = f"ENUM({values})"
        else:
            kind = f"VARCHAR(12) CHECK (state IN ({values}))"
        ddl(
            target_db,
            f"CREATE TABLE ticket (id INTEGER PRIMARY KEY, state {kind}, ended_at {ts})",
            f"INSERT INTO ticket VALUES (1, 'open', '{OLD}'), (2, 'closed', '{NEW}')",
        )

    make("'open', 'closed'")
    before = target_db.checksum()
    for strategy in ("redact", "hash"):
        config, result = check(
            tmp_path, target_db, monkeypatch, anonymise_rule("ticket", f'state = "{strategy}"')
        )
        assert result.exit_code == 2, result.stdout
        assert "rules[0].columns.state: " in result.stdout
        if target_db.engine_name != "sqlite":
            expected = (
                "is an ENUM whose values do not include the placeholder"
                if strategy == "redact"
                else "is an ENUM; a keyed hash is never one of its values"
            )
            assert expected in result.stdout, result.stdout
        refused = run(config)
        assert refused.exit_code == 2, refused.stderr
        assert target_db.checksum() == before
    make("'open', 'closed', '[redacted]'")
    config, result = check(
        tmp_path, target_db, monkeypatch, anonymise_rule("ticket", 'state = "redact"')
    )
    assert result.exit_code == 0, result.stdout
    done = run(config)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert rows(target_db, "ticket", "id, state") == [(1, "[redacted]"), (2, "closed")]


def test_keys_referenced_and_own(target_db: TargetDb, tmp_path, monkeypatch):
    """A column another table's key refers to is refused for every strategy; NULL in a
    nullable key of the rule's own table detaches the row, and is fine."""
    ts = clock(target_db)
    ddl(
        target_db,
        f"CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(254) UNIQUE, ended_at {ts})",
        "CREATE TABLE mailing (id INTEGER PRIMARY KEY, "
        "customer_email VARCHAR(254) REFERENCES customer (email))",
        "CREATE TABLE profile (id INTEGER PRIMARY KEY, "
        "customer_id INTEGER REFERENCES customer (id), "
        "manager_id INTEGER NOT NULL REFERENCES customer (id), "
        f"ended_at {ts})",
        f"INSERT INTO customer VALUES (1, 'a@example.org', '{OLD}'), (2, 'b@example.org', '{NEW}')",
        "INSERT INTO mailing VALUES (10, 'a@example.org')",
        f"INSERT INTO profile VALUES (20, 1, 2, '{OLD}'), (21, 2, 1, '{NEW}')",
    )
    before = target_db.checksum()
    cases = [
        (
            "customer",
            strategy,
            "email",
            "is referenced by a foreign key of 'mailing' (customer_email)",
        )
        for strategy in ("null", "hash", "redact")
    ] + [
        ("profile", "null", "manager_id", "is NOT NULL"),
        ("profile", "hash", "customer_id", "is a foreign key"),
    ]
    for table, strategy, column, expected in cases:
        config, result = check(
            tmp_path, target_db, monkeypatch, anonymise_rule(table, f'{column} = "{strategy}"')
        )
        assert result.exit_code == 2, (table, strategy, result.stdout)
        assert f"rules[0].columns.{column}: {expected}" in result.stdout, result.stdout
        refused = run(config)
        assert refused.exit_code == 2 and expected in refused.stderr, refused.stderr
        assert target_db.checksum() == before
    config, result = check(
        tmp_path, target_db, monkeypatch, anonymise_rule("profile", 'customer_id = "null"')
    )
    assert result.exit_code == 0, result.stdout
    done = run(config)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert rows(target_db, "profile", "id, customer_id, manager_id") == [(20, None, 2), (21, 2, 1)]
    assert rows(target_db, "customer", "id, email") == [(1, "a@example.org"), (2, "b@example.org")]
    assert rows(target_db, "mailing") == [(10, "a@example.org")]


# --- point 6 b: a run that fails partway counts what it committed -------------------


def test_failed_batch_keeps_committed_rows_counted(target_db: TargetDb, tmp_path, monkeypatch):
    """Batches 1-4 commit, batch 5 hits a CHECK that `check` could not test (it names
    another column): run --json `done`, the metrics file and the summary say 8."""
    ddl(
        target_db,
        f"CREATE TABLE case_file (id INTEGER PRIMARY KEY, notes VARCHAR(40), "
        f"ended_at {clock(target_db)}, "
        "CONSTRAINT late_row CHECK (id <> 9 OR notes <> '[redacted]'))",
        "INSERT INTO case_file VALUES "
        + ", ".join(f"({i}, 'note {i}', '{OLD}')" for i in range(1, 13)),
    )
    body = anonymise_rule("case_file", 'notes = "redact"')
    config, result = check(tmp_path, target_db, monkeypatch, body, extra_sweep="batch_size = 2")
    assert result.exit_code == 0, result.stdout
    assert "CHECK constraint late_row" in result.stdout  # a warning: it could not be tested
    metrics = tmp_path / "sweep.prom"
    failed = run(config, "--json", "--metrics-file", str(metrics))
    assert failed.exit_code == 3, failed.stdout + failed.stderr
    document = failed.json()
    [item] = document["items"]
    assert (item["due"], item["done"]) == (12, 8), item
    done_metric = [
        line
        for line in metrics.read_text().splitlines()
        if line.startswith("gdpr_sweep_rows_done{")
    ]
    assert len(done_metric) == 1 and done_metric[0].endswith(" 8"), done_metric
    assert rows(target_db, "case_file", "id, notes") == [
        (i, "[redacted]" if i <= 8 else f"note {i}") for i in range(1, 13)
    ]
    assert "note 9" not in failed.stdout + failed.stderr
    # The human summary says the same: rows 1 and 2 due again commit, then 9 fails.
    ddl(target_db, "UPDATE case_file SET notes = 'again' WHERE id IN (1, 2)")
    again = run(config)
    assert again.exit_code == 3, again.stdout + again.stderr
    assert "2 rows done" in again.stdout, again.stdout
    assert rows(target_db, "case_file", "id, notes")[:3] == [
        (1, "[redacted]"),
        (2, "[redacted]"),
        (3, "[redacted]"),
    ]
