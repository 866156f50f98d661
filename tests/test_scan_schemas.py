"""`scan` covers every schema the user may use (issue 17, point 6).

PostgreSQL: `hr.employee` (CPR numbers and health notes) next to `public`; its
columns are findings named `hr.employee`, `--strict` exits 5, and a rule (or cascade)
naming `hr.employee`, or the subject graph reaching it, covers it. A partitioned table
is scanned once, under its own name, never per partition; views are not tables; a
schema the user has no USAGE on is not scanned. SQLite: `main` and attached databases,
never `temp`. MariaDB: the URL's database only (the other databases on the server belong
to other applications) — unchanged, see tests/test_scan.py.

Every test runs the real CLI (`scan --json`, `scan --strict`, plain `scan`), reads every
row of every table before and after (the scan reads no row and changes nothing) and
asserts that no value inserted appears in any output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.catalog import Catalog
from gdpr_sweep.scan import TABLE_WITHOUT_RULE, UNCOVERED_COLUMN, scanned_tables
from tests.configs import rule_toml
from tests.conftest import CliResult, TargetDb, run_cli, write_config

CPR = "010203-4711"
HEALTH = "Quistmeyer-syndrome-note"
NAME = "Zebulon Quistmeyer"
EMAIL = "zebulon.quistmeyer@example.dk"
MARKERS = (CPR, HEALTH, NAME, EMAIL, "Quistmeyer", "4711")

POSTGRESQL = pytest.mark.parametrize("target_db", ["postgresql"], indirect=True)

HR_DDL = """
CREATE SCHEMA hr;
CREATE TABLE hr.department (id integer PRIMARY KEY, title text NOT NULL);
CREATE TABLE hr.employee (
    id integer PRIMARY KEY,
    department_id integer REFERENCES hr.department (id),
    cpr text NOT NULL,
    health_notes text,
    hired_on date NOT NULL
);
CREATE VIEW hr.employee_health AS SELECT id, cpr, health_notes FROM hr.employee;
CREATE TABLE customer (
    id integer PRIMARY KEY,
    email text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE VIEW customer_contact AS SELECT id, email FROM customer;
"""

HR_ROWS = """
INSERT INTO hr.department VALUES (1, 'Kitchen');
INSERT INTO hr.employee VALUES (1, 1, '010203-4711', 'Quistmeyer-syndrome-note', '2020-02-01');
INSERT INTO customer VALUES (1, 'zebulon.quistmeyer@example.dk', '2024-05-01 12:00+00');
"""

CUSTOMER_RULE = rule_toml(
    "customer-delete", "customer", "delete", after="3 years", since="created_at"
)

EMPLOYEE_ANONYMISE = rule_toml(
    "employee-anonymise",
    "hr.employee",
    "anonymise",
    after="5 years",
    since="hired_on",
    columns={"cpr": "redact", "health_notes": "null"},
)

EMPLOYEE_DELETE = rule_toml(
    "employee-delete", "hr.employee", "delete", after="5 years", since="hired_on"
)


# --- helpers ---------------------------------------------------------------------------------


def execute(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in sql.split(";"):
                if statement.strip():
                    connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def every_row(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, partition and view in every non-system schema."""
    engine = sa.create_engine(url)
    rows: dict[str, list[tuple]] = {}
    try:
        with engine.connect() as connection:
            names = connection.exec_driver_sql(
                "SELECT n.nspname, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname !~ '^pg_' ORDER BY 1, 2"
            ).all()
            for schema, table in names:
                quoted = f'"{schema}"."{table}"'
                rows[f"{schema}.{table}"] = sorted(
                    tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {quoted}")
                )
    finally:
        engine.dispose()
    return rows


def scan_cli(config: Path, *extra: str) -> CliResult:
    result = run_cli("scan", "-c", str(config), *extra)
    for marker in MARKERS:
        assert marker not in result.stdout and marker not in result.stderr
    return result


def findings(config: Path) -> set[tuple[str, str | None, str]]:
    """The findings of `scan --json`, as (table, column, kind)."""
    result = scan_cli(config, "--json")
    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert document["scanned"] == ["main"] and document["unreachable"] == []
    return {(f["table"], f["column"], f["kind"]) for f in document["findings"]}


def strict_exit(config: Path) -> int:
    return scan_cli(config, "--strict").exit_code


@pytest.fixture
def hr_db(target_db: TargetDb) -> TargetDb:
    execute(target_db.url, HR_DDL)
    execute(target_db.url, HR_ROWS)
    return target_db


# --- schemas ---------------------------------------------------------------------------------


@POSTGRESQL
def test_a_table_in_another_schema_is_scanned_and_fails_strict(
    hr_db: TargetDb, tmp_path, monkeypatch
):
    before = every_row(hr_db.url)
    config = write_config(tmp_path, CUSTOMER_RULE, hr_db.url, monkeypatch)
    assert findings(config) == {
        ("hr.employee", None, TABLE_WITHOUT_RULE),
        ("hr.employee", "cpr", UNCOVERED_COLUMN),
        ("hr.employee", "health_notes", UNCOVERED_COLUMN),
    }  # not the views, not hr.department (nothing personal), not customer (its rule)
    assert strict_exit(config) == 5

    text = scan_cli(config)
    assert text.exit_code == 0
    assert "3 finding(s) in 1 database(s) scanned." in text.stdout
    assert "'hr.employee', column 'cpr' looks personal (an identity number" in text.stdout
    assert "'hr.employee', column 'health_notes' looks personal (" in text.stdout
    assert "add a delete or anonymise rule for 'hr.employee'" in text.stdout

    # Reflection only: not a row changed anywhere.
    assert every_row(hr_db.url) == before
    assert before["hr.employee"] == [(1, 1, CPR, HEALTH, before["hr.employee"][0][4])]


@POSTGRESQL
@pytest.mark.parametrize("rule", [EMPLOYEE_ANONYMISE, EMPLOYEE_DELETE], ids=["anonymise", "delete"])
def test_a_rule_naming_the_qualified_table_covers_it(
    hr_db: TargetDb, tmp_path, monkeypatch, rule: str
):
    before = every_row(hr_db.url)
    # `public.customer` is the default schema's `customer`, named either way.
    body = CUSTOMER_RULE.replace('table = "customer"', 'table = "public.customer"') + rule
    config = write_config(tmp_path, body, hr_db.url, monkeypatch)
    assert findings(config) == set()
    assert strict_exit(config) == 0
    assert every_row(hr_db.url) == before


@POSTGRESQL
def test_an_anonymise_rule_that_forgets_a_column_is_named_in_the_finding(
    hr_db: TargetDb, tmp_path, monkeypatch
):
    rule = EMPLOYEE_ANONYMISE.replace(', health_notes = "null"', "")
    config = write_config(tmp_path, CUSTOMER_RULE + rule, hr_db.url, monkeypatch)
    assert findings(config) == {("hr.employee", "health_notes", UNCOVERED_COLUMN)}
    text = scan_cli(config)
    assert "add 'health_notes' to the columns of rule 'employee-anonymise'" in text.stdout
    assert strict_exit(config) == 5


@POSTGRESQL
def test_a_cascade_child_in_another_schema_is_covered(hr_db: TargetDb, tmp_path, monkeypatch):
    execute(
        hr_db.url,
        "CREATE TABLE hr.customer_note (id integer PRIMARY KEY, "
        "customer_id integer NOT NULL REFERENCES customer (id), note text);"
        "INSERT INTO hr.customer_note VALUES (1, 1, 'Quistmeyer called')",
    )
    config = write_config(tmp_path, CUSTOMER_RULE + EMPLOYEE_DELETE, hr_db.url, monkeypatch)
    assert findings(config) == {
        ("hr.customer_note", None, TABLE_WITHOUT_RULE),
        ("hr.customer_note", "note", UNCOVERED_COLUMN),
    }
    cascade = CUSTOMER_RULE + 'cascade = ["hr.customer_note"]\n' + EMPLOYEE_DELETE
    config = write_config(tmp_path, cascade, hr_db.url, monkeypatch)
    assert findings(config) == set()
    assert strict_exit(config) == 0


SUBJECT_EMPLOYEE = """
[subject]
root = "hr.employee"
identifiers = { cpr = "cpr" }
"""

PAYSLIP_DDL = """
CREATE TABLE payslip (
    id integer PRIMARY KEY,
    employee_id integer NOT NULL REFERENCES hr.employee (id),
    salary numeric(10, 2) NOT NULL,
    paid_on date NOT NULL
);
CREATE TABLE hr.sick_leave (
    id integer PRIMARY KEY,
    employee_id integer NOT NULL REFERENCES hr.employee (id),
    diagnosis text
);
INSERT INTO payslip VALUES (1, 1, 4711.00, '2024-05-01');
INSERT INTO hr.sick_leave VALUES (1, 1, 'Quistmeyer-syndrome-note');
"""


@POSTGRESQL
def test_the_subject_graph_covers_a_root_in_another_schema_and_what_refers_to_it(
    hr_db: TargetDb, tmp_path, monkeypatch
):
    execute(hr_db.url, PAYSLIP_DDL)
    before = every_row(hr_db.url)
    config = write_config(tmp_path, CUSTOMER_RULE, hr_db.url, monkeypatch)
    without = findings(config)
    assert without == {
        ("hr.employee", None, TABLE_WITHOUT_RULE),
        ("hr.employee", "cpr", UNCOVERED_COLUMN),
        ("hr.employee", "health_notes", UNCOVERED_COLUMN),
        ("hr.sick_leave", None, TABLE_WITHOUT_RULE),
        ("hr.sick_leave", "diagnosis", UNCOVERED_COLUMN),
        ("payslip", None, TABLE_WITHOUT_RULE),
        ("payslip", "salary", UNCOVERED_COLUMN),
    }

    # With the root hr.employee, erasure reaches every column (hr.sick_leave, and
    # public.payslip through its foreign key into hr): no column is uncovered, but no
    # rule removes the tables' rows on a schedule.
    config = write_config(tmp_path, CUSTOMER_RULE + SUBJECT_EMPLOYEE, hr_db.url, monkeypatch)
    assert findings(config) == {
        (table, None, TABLE_WITHOUT_RULE) for table in ("hr.employee", "hr.sick_leave", "payslip")
    }
    text = scan_cli(config)
    assert text.stdout.count("erasure on request reaches it") == 3
    assert strict_exit(config) == 5

    # ... and rules for all three: nothing left.
    rules = EMPLOYEE_DELETE + 'cascade = ["hr.sick_leave", "public.payslip"]\n'
    config = write_config(
        tmp_path, CUSTOMER_RULE + rules + SUBJECT_EMPLOYEE, hr_db.url, monkeypatch
    )
    assert findings(config) == set()
    assert strict_exit(config) == 0
    assert every_row(hr_db.url) == before


@POSTGRESQL
def test_a_subject_root_in_the_default_schema_covers_a_child_in_another(
    hr_db: TargetDb, tmp_path, monkeypatch
):
    execute(
        hr_db.url,
        "CREATE TABLE hr.customer_note (id integer PRIMARY KEY, "
        "customer_id integer NOT NULL REFERENCES customer (id), note text)",
    )
    subject = '[subject]\nroot = "customer"\nidentifiers = { email = "email" }\n'
    config = write_config(
        tmp_path, CUSTOMER_RULE + EMPLOYEE_DELETE + subject, hr_db.url, monkeypatch
    )
    assert findings(config) == {("hr.customer_note", None, TABLE_WITHOUT_RULE)}


@POSTGRESQL
def test_scan_ignore_takes_qualified_names(hr_db: TargetDb, tmp_path, monkeypatch):
    config = write_config(
        tmp_path, CUSTOMER_RULE, hr_db.url, monkeypatch,
        extra_sweep='scan_ignore = ["hr.employee.health_notes"]',
    )  # fmt: skip
    assert findings(config) == {
        ("hr.employee", None, TABLE_WITHOUT_RULE),
        ("hr.employee", "cpr", UNCOVERED_COLUMN),
    }
    config = write_config(
        tmp_path, CUSTOMER_RULE, hr_db.url, monkeypatch, extra_sweep='scan_ignore = ["hr.*"]'
    )
    assert findings(config) == set()


# --- partitions ------------------------------------------------------------------------------

PARTITION_DDL = """
CREATE TABLE visit (
    id integer NOT NULL,
    visitor_name text,
    visited_at date NOT NULL
) PARTITION BY RANGE (visited_at);
CREATE TABLE visit_2024 PARTITION OF visit FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE hr.visit_2025 PARTITION OF visit FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE visit_2026 PARTITION OF visit FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')
    PARTITION BY RANGE (visited_at);
CREATE TABLE visit_2026_h1 PARTITION OF visit_2026
    FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE visit_2026_h2 PARTITION OF visit_2026
    FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
CREATE TABLE hr.absence (
    id integer NOT NULL,
    employee_id integer NOT NULL,
    sick_note text,
    absent_on date NOT NULL
) PARTITION BY LIST (employee_id);
CREATE TABLE hr.absence_odd PARTITION OF hr.absence FOR VALUES IN (1, 3, 5);
CREATE TABLE absence_rest PARTITION OF hr.absence DEFAULT;
INSERT INTO visit VALUES (1, 'Zebulon Quistmeyer', '2024-03-01'),
    (2, 'Zebulon Quistmeyer', '2025-03-01'), (3, 'Zebulon Quistmeyer', '2026-03-01'),
    (4, 'Zebulon Quistmeyer', '2026-09-01');
INSERT INTO hr.absence VALUES (1, 1, 'Quistmeyer-syndrome-note', '2024-03-01'),
    (2, 2, 'Quistmeyer-syndrome-note', '2024-03-02');
"""

VISIT_RULES = rule_toml(
    "visit-delete", "visit", "delete", after="1 year", since="visited_at"
) + rule_toml(
    "absence-anonymise",
    "hr.absence",
    "anonymise",
    after="1 year",
    since="absent_on",
    columns={"sick_note": "null"},
)


@POSTGRESQL
def test_a_partitioned_table_is_scanned_once_under_its_own_name(
    hr_db: TargetDb, tmp_path, monkeypatch
):
    execute(hr_db.url, PARTITION_DDL)
    before = every_row(hr_db.url)
    body = CUSTOMER_RULE + EMPLOYEE_DELETE
    config = write_config(tmp_path, body, hr_db.url, monkeypatch)
    assert findings(config) == {
        ("visit", None, TABLE_WITHOUT_RULE),
        ("visit", "visitor_name", UNCOVERED_COLUMN),
        ("hr.absence", None, TABLE_WITHOUT_RULE),
        ("hr.absence", "sick_note", UNCOVERED_COLUMN),
    }  # no partition, in its parent's schema or another, at any depth
    assert strict_exit(config) == 5

    config = write_config(tmp_path, body + VISIT_RULES, hr_db.url, monkeypatch)
    assert findings(config) == set()
    assert strict_exit(config) == 0
    assert every_row(hr_db.url) == before
    assert len(before["public.visit"]) == 4 and len(before["hr.absence"]) == 2


@POSTGRESQL
def test_scanned_tables_lists_each_table_once_default_schema_first(hr_db: TargetDb):
    execute(hr_db.url, PARTITION_DDL)
    engine = hr_db.engine()
    try:
        with engine.connect() as connection:
            assert scanned_tables(Catalog(connection)) == [
                "customer",
                "visit",
                "hr.absence",
                "hr.department",
                "hr.employee",
            ]
    finally:
        engine.dispose()


# --- privileges ------------------------------------------------------------------------------

#: Roles are server-wide: one per pytest-xdist worker.
SCANNER = "test_scanner_" + os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture
def scanner_url(hr_db: TargetDb) -> Iterator[str]:
    """A login role that may use `public` but not `hr` (dropped afterwards)."""
    url = sa.make_url(hr_db.url)
    execute(
        hr_db.url,
        f"DROP ROLE IF EXISTS {SCANNER}; CREATE ROLE {SCANNER} LOGIN;"
        f"GRANT USAGE ON SCHEMA public TO {SCANNER}",
    )
    try:
        yield url.set(username=SCANNER, password=None).render_as_string(hide_password=False)
    finally:
        execute(hr_db.url, f"DROP OWNED BY {SCANNER}; DROP ROLE {SCANNER}")


@POSTGRESQL
def test_a_schema_the_user_may_not_use_is_not_scanned(
    hr_db: TargetDb, scanner_url: str, tmp_path, monkeypatch
):
    execute(
        hr_db.url,
        "CREATE TABLE guestbook (id integer PRIMARY KEY, email text);"
        "INSERT INTO guestbook VALUES (1, 'zebulon.quistmeyer@example.dk')",
    )
    config = write_config(tmp_path, CUSTOMER_RULE, scanner_url, monkeypatch)
    assert findings(config) == {
        ("guestbook", None, TABLE_WITHOUT_RULE),
        ("guestbook", "email", UNCOVERED_COLUMN),
    }  # hr.employee is there, but this user cannot reach it
    execute(hr_db.url, f"GRANT USAGE ON SCHEMA hr TO {SCANNER}")
    assert ("hr.employee", "cpr", UNCOVERED_COLUMN) in findings(config)


# --- SQLite ----------------------------------------------------------------------------------


def test_sqlite_scans_main_and_attached_databases_but_not_temp(tmp_path):
    main, aux = tmp_path / "main.db", tmp_path / "aux.db"
    for path, ddl in (
        (main, "CREATE TABLE member (id INTEGER PRIMARY KEY, email TEXT)"),
        (aux, "CREATE TABLE patient (id INTEGER PRIMARY KEY, cpr TEXT, diagnosis TEXT)"),
    ):
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.begin() as connection:
            connection.exec_driver_sql(ddl)
            connection.exec_driver_sql("CREATE VIEW v AS SELECT * FROM " + ddl.split()[2])
        engine.dispose()
    engine = sa.create_engine(f"sqlite:///{main}")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("ATTACH DATABASE ? AS aux", (str(aux),))
            connection.exec_driver_sql("CREATE TEMP TABLE scratch (id INTEGER, email TEXT)")
            assert scanned_tables(Catalog(connection)) == ["member", "aux.patient"]
    finally:
        engine.dispose()

    # Without an attachment (the CLI never attaches): main only, as before.
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text('[sweep]\nstate_url = "sqlite:///state.db"\n'
                      '[databases.main]\nurl = "sqlite:///main.db"\n')  # fmt: skip
    assert findings(config) == {
        ("member", None, TABLE_WITHOUT_RULE),
        ("member", "email", UNCOVERED_COLUMN),
    }
    assert json.loads(scan_cli(config, "--json").stdout)["scanned"] == ["main"]


@POSTGRESQL
def test_in_the_state_database_only_the_default_schema_holds_our_tables(
    target_db: TargetDb, tmp_path, monkeypatch
):
    execute(
        target_db.url,
        "CREATE SCHEMA hr;"
        "CREATE TABLE runs (id integer PRIMARY KEY, user_name text);"  # ours, by place
        "CREATE TABLE hr.runs (id integer PRIMARY KEY, runner_email text);"  # not ours
        "INSERT INTO hr.runs VALUES (1, 'zebulon.quistmeyer@example.dk')",
    )
    monkeypatch.setenv("TEST_TARGET_URL", target_db.url)
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(
        '[sweep]\nstate_url_env = "TEST_TARGET_URL"\n'
        '[databases.main]\nurl_env = "TEST_TARGET_URL"\n'
    )
    assert findings(config) == {
        ("hr.runs", None, TABLE_WITHOUT_RULE),
        ("hr.runs", "runner_email", UNCOVERED_COLUMN),
    }
