"""`check` on `[[subject.references]]` and `[subject] parents` (issue 16), every engine.

A reference must name a column of a reflected foreign key (anything else would never
be followed and would hide a mistake); `"null"` — the default — on a NOT NULL column
could never detach anyone; a parent must exist. Each is one line naming the key, exit
2 from `check`; `erase` fails that database with the same line (exit 3) before
touching a row. A nullable foreign-key
column of another person's table is a valid `null` strategy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TargetDb, run_cli, write_config

SCHEMA = (
    "CREATE TABLE employee (id INTEGER PRIMARY KEY, email VARCHAR(100), "
    "reports_to INTEGER REFERENCES employee(id))",
    "CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(100), "
    "support_rep_id INTEGER REFERENCES employee(id), "
    "account_rep_id INTEGER NOT NULL REFERENCES employee(id), rep_name VARCHAR(100))",
    "INSERT INTO employee VALUES (1, 'boss@example.dk', NULL), (2, 'rep@example.dk', 1)",
    "INSERT INTO customer VALUES (1, 'c@example.dk', 2, 2, 'Rep')",
)

BASE = """
[subject]
root = "employee"
identifiers = { email = "email" }
"""


def build(target_db: TargetDb) -> None:
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            for statement in SCHEMA:
                if target_db.engine_name == "mariadb":
                    # MariaDB ignores an inline REFERENCES: declare it as a constraint.
                    statement = statement.replace(
                        "reports_to INTEGER REFERENCES employee(id)",
                        "reports_to INTEGER, FOREIGN KEY (reports_to) REFERENCES employee(id)",
                    ).replace(
                        "support_rep_id INTEGER REFERENCES employee(id), "
                        "account_rep_id INTEGER NOT NULL REFERENCES employee(id), "
                        "rep_name VARCHAR(100)",
                        "support_rep_id INTEGER, account_rep_id INTEGER NOT NULL, "
                        "rep_name VARCHAR(100), "
                        "FOREIGN KEY (support_rep_id) REFERENCES employee(id), "
                        "FOREIGN KEY (account_rep_id) REFERENCES employee(id)",
                    )
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_a_well_formed_reference_and_null_on_another_tables_key_pass_check(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(target_db)
    body = (
        BASE
        + '[[subject.references]]\ntable = "customer"\ncolumn = "support_rep_id"\n'
        + '[[subject.references]]\ntable = "customer"\ncolumn = "account_rep_id"\n'
        + 'action = "keep"\n'
        + '[subject.erase.customer]\naction = "anonymise"\n'
        + 'columns = { support_rep_id = "null", rep_name = "null" }\n'
        + '[subject.erase.employee]\naction = "anonymise"\ncolumns = { email = "null" }\n'
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    checked = run_cli("check", "-c", str(config))
    assert checked.exit_code == 0, checked.stdout + checked.stderr


def test_a_table_of_other_people_found_as_the_persons_rows_is_warned_about(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """customer has an `email` of its own and is reached through `support_rep_id`, a
    column that does not name the table it refers to: likely other people. The warning
    names the key to declare, printed literally (not eaten as Rich markup)."""
    build(target_db)
    config = write_config(tmp_path, BASE, target_db.url, monkeypatch)
    checked = run_cli("check", "-c", str(config))
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    out = checked.stdout + checked.stderr
    warned = [line for line in out.splitlines() if "identifier column(s) of its own" in line]
    keys = {
        c
        for line in warned
        for c in ("support_rep_id", "account_rep_id")
        if f"subject: customer.{c}:" in line
    }
    assert len(warned) == 2 and keys == {"support_rep_id", "account_rep_id"}, out
    assert all('declare [[subject.references]] table = "customer"' in w for w in warned)

    declared = write_config(
        tmp_path,
        BASE
        + '[[subject.references]]\ntable = "customer"\ncolumn = "support_rep_id"\n'
        + '[[subject.references]]\ntable = "customer"\ncolumn = "account_rep_id"\n'
        + 'action = "refuse"\n',
        target_db.url,
        monkeypatch,
    )
    again = run_cli("check", "-c", str(declared))
    assert again.exit_code == 0, again.stdout + again.stderr
    assert "identifier column(s) of its own" not in again.stdout + again.stderr
