"""References between two people are not ownership (issue 16, points 1 and 2).

A Chinook-shaped schema: `employee.reports_to → employee` (a self-reference: always a
reference), `customer.support_rep_id → employee` (declared a reference with
`[[subject.references]]`), `invoice → customer`, `invoice_line → invoice`.

Erasing Nancy Edwards, a manager (three reports) and the support agent of three
customers, erases her employee row only: the people who report to her and the
customers she serves are other people — never exported or erased as hers. Their
reference to her is set to NULL (`null`, the default), left in place with her row
anonymised (`keep`), or the database is not erased at all (`refuse`, exit 3). Her row
is never "shared" because other people point at it (point 2), and an ON DELETE CASCADE
self-reference never takes her reports with her. An undeclared self-reference on a NOT
NULL column cannot be nulled, so it refuses.

Erasing a customer whose invoices are kept: the invoices stay (basis, until), the
customer row stays anonymised because they refer to it, the invoice lines (which no
kept row refers to) are deleted.

Also: a declared `keep` on the NOT NULL self-reference; bad `[[subject.references]]`
entries (exit 2 from `check`, nothing touched); a held row detaches nobody; a refused
database leaves the others erased; her own customer row found through a link is hers
while the customers she serves are not; a reference is matched by table and column
(tickets she opened are hers, tickets assigned to her are not); more referencing rows
than one chunk of keys.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.strategies import REDACTED
from gdpr_sweep.subject.receipts import LEGAL_HOLD_BASIS, SHARED_BASIS
from tests.conftest import TargetDb, run_cli, write_config
from tests.erase_support import (
    by_id,
    database_error,
    dump,
    encoded,
    personal_values,
    run_all,
)

NANCY = "email=nancy.edwards@chinook.example"
ROBERT = "email=robert.king@chinook.example"
LEONIE = "email=leonekohler@surfeu.example"


def schema(
    reports_to_nullable: bool = True,
    reports_to_ondelete: str | None = None,
    support_rep_ondelete: str | None = None,
) -> sa.MetaData:
    m = sa.MetaData()
    sa.Table(
        "employee", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("first_name", sa.String(40)), sa.Column("last_name", sa.String(40)),
        sa.Column("email", sa.String(120), index=True),
        sa.Column("reports_to", sa.Integer,
                  sa.ForeignKey("employee.id", ondelete=reports_to_ondelete),
                  nullable=reports_to_nullable, index=True),
    )  # fmt: skip
    sa.Table(
        "customer", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(80)), sa.Column("email", sa.String(120), index=True),
        sa.Column("support_rep_id", sa.Integer,
                  sa.ForeignKey("employee.id", ondelete=support_rep_ondelete),
                  nullable=True, index=True),
    )  # fmt: skip
    sa.Table(
        "invoice", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False,
                  index=True),
        sa.Column("invoice_date", sa.Date, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),  # in cents
    )  # fmt: skip
    sa.Table(
        "invoice_line", m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoice.id"), nullable=False,
                  index=True),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("price", sa.Integer, nullable=False),
    )  # fmt: skip
    return m


def rows(top_reports_to_self: bool = False) -> dict[str, list[dict]]:
    """Nancy (2) manages Jane, Margaret and Steve (3, 4, 5) and serves customers 1, 2 and
    4; Michael (6) manages Robert (7), whom nobody reports to and no customer has.
    Rows are in an order each engine's immediate FK checks accept."""
    top = 1 if top_reports_to_self else None
    return {
        "employee": [
            {"id": 1, "first_name": "Andrew", "last_name": "Adams",
             "email": "andrew.adams@chinook.example", "reports_to": top},
            {"id": 2, "first_name": "Nancy", "last_name": "Edwards",
             "email": "nancy.edwards@chinook.example", "reports_to": 1},
            {"id": 3, "first_name": "Jane", "last_name": "Peacock",
             "email": "jane.peacock@chinook.example", "reports_to": 2},
            {"id": 4, "first_name": "Margaret", "last_name": "Park",
             "email": "margaret.park@chinook.example", "reports_to": 2},
            {"id": 5, "first_name": "Steve", "last_name": "Johnson",
             "email": "steve.johnson@chinook.example", "reports_to": 2},
            {"id": 6, "first_name": "Michael", "last_name": "Mitchell",
             "email": "michael.mitchell@chinook.example", "reports_to": 1},
            {"id": 7, "first_name": "Robert", "last_name": "King",
             "email": "robert.king@chinook.example", "reports_to": 6},
        ],
        "customer": [
            {"id": 1, "name": "Luís Gonçalves", "email": "luisg@embraer.example",
             "support_rep_id": 2},
            {"id": 2, "name": "Leonie Köhler", "email": "leonekohler@surfeu.example",
             "support_rep_id": 2},
            {"id": 3, "name": "François Tremblay", "email": "ftremblay@gmail.example",
             "support_rep_id": 3},
            {"id": 4, "name": "Bjørn Hansen", "email": "bjorn.hansen@yahoo.example",
             "support_rep_id": 2},
            {"id": 5, "name": "František Wichterlová", "email": "frantisekw@jetbrains.example",
             "support_rep_id": None},
            {"id": 6, "name": "Helena Holý", "email": "hholy@gmail.example",
             "support_rep_id": 6},
        ],
        "invoice": [
            {"id": 1, "customer_id": 1, "invoice_date": dt.date(2024, 1, 1), "total": 198},
            {"id": 2, "customer_id": 2, "invoice_date": dt.date(2024, 1, 2), "total": 396},
            {"id": 3, "customer_id": 2, "invoice_date": dt.date(2024, 3, 15), "total": 891},
            {"id": 4, "customer_id": 4, "invoice_date": dt.date(2024, 2, 1), "total": 1386},
            {"id": 5, "customer_id": 3, "invoice_date": dt.date(2024, 5, 1), "total": 99},
        ],
        "invoice_line": [
            {"id": 1, "invoice_id": 1, "track_id": 2, "price": 99},
            {"id": 2, "invoice_id": 1, "track_id": 4, "price": 99},
            {"id": 3, "invoice_id": 2, "track_id": 6, "price": 99},
            {"id": 4, "invoice_id": 2, "track_id": 8, "price": 99},
            {"id": 5, "invoice_id": 2, "track_id": 10, "price": 99},
            {"id": 6, "invoice_id": 3, "track_id": 12, "price": 99},
            {"id": 7, "invoice_id": 4, "track_id": 14, "price": 1386},
            {"id": 8, "invoice_id": 5, "track_id": 16, "price": 99},
        ],
    }  # fmt: skip


MARKERS = personal_values(rows(), {"first_name", "last_name", "email", "name"})

#: Nancy's own employee row, exactly as it is, is all an export of her holds.
NANCY_KEYS = {"employee": {(2,)}}
REPORTS = ((3,), (4,), (5,))
HER_CUSTOMERS = ((1,), (2,), (4,))

REPORTS_NULLED = ("employee", ("reports_to",), "employee", "nulled", 3)
CUSTOMERS_NULLED = ("customer", ("support_rep_id",), "employee", "nulled", 3)
CUSTOMERS_KEPT = ("customer", ("support_rep_id",), "employee", "kept", 3)

EMPLOYEE_COLUMNS = '{ first_name = "redact", last_name = "null", email = "null" }'


def employee_config(reference: str | None, employee: str = "") -> str:
    action = f'action = "{reference}"' if reference else ""
    return f"""
[subject]
root = "employee"
identifiers = {{ email = "email" }}

[[subject.references]]
table = "customer"
column = "support_rep_id"
{action}
{employee}
"""


def anonymised_nancy(expected: dict) -> None:
    expected["employee"][(2,)].update(first_name=REDACTED, last_name=None, email=None)


def assert_export_is_hers_only(erasure, before: dict) -> None:
    assert set(erasure.export) == set(NANCY_KEYS), "only her employee row is hers"
    assert erasure.export["employee"] == {(2,): before["employee"][(2,)]}


# --- point 1: null (the default), keep, refuse ------------------------------------


EMPLOYEE_ACTIONS = {
    "default-delete": "",
    # point 2: an explicit delete with other people's rows pointing at her
    "delete": '[subject.erase.employee]\naction = "delete"',
    "anonymise": f'[subject.erase.employee]\naction = "anonymise"\ncolumns = {EMPLOYEE_COLUMNS}',
}


@pytest.mark.parametrize("employee", list(EMPLOYEE_ACTIONS))
@pytest.mark.parametrize("reference", [None, "null"], ids=["default", "null"])
def test_null_reference_detaches_her_reports_and_customers(
    target_db: TargetDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: str | None,
    employee: str,
):
    target_db.create(schema(), rows())
    body = employee_config(reference, EMPLOYEE_ACTIONS[employee])
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == by_id(rows())

    erasure = run_all(config, tmp_path, NANCY, MARKERS, url=target_db.url)

    assert_export_is_hers_only(erasure, before)
    action = "anonymised" if employee == "anonymise" else "deleted"
    erased, kept, references = erasure.erased
    assert erased == {("employee", action, 1)}
    assert kept == set()  # never "shared" because other people point at her (point 2)
    assert references == {REPORTS_NULLED, CUSTOMERS_NULLED}

    expected = by_id(rows())
    if employee == "anonymise":
        anonymised_nancy(expected)
    else:
        del expected["employee"][(2,)]
    for key in REPORTS:
        expected["employee"][key]["reports_to"] = None
    for key in HER_CUSTOMERS:
        expected["customer"][key]["support_rep_id"] = None
    assert dump(target_db.url) == expected


def test_keep_reference_leaves_customers_and_anonymises_her(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(schema(), rows())
    # The employee table's action stays "delete": her row must stay (customers keep
    # referring to it), so it is anonymised with these columns instead.
    body = employee_config("keep", f"[subject.erase.employee]\ncolumns = {EMPLOYEE_COLUMNS}")
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, NANCY, MARKERS, url=target_db.url)

    assert_export_is_hers_only(erasure, before)
    erased, kept, references = erasure.erased
    assert erased == {("employee", "anonymised", 1)}
    assert kept == set()
    # The reports' self-reference is still a `null` reference: it is nulled.
    assert references == {REPORTS_NULLED, CUSTOMERS_KEPT}

    expected = by_id(rows())
    anonymised_nancy(expected)
    for key in REPORTS:
        expected["employee"][key]["reports_to"] = None
    assert dump(target_db.url) == expected
    assert all(dump(target_db.url)["customer"][k]["support_rep_id"] == 2 for k in HER_CUSTOMERS)


def test_keep_reference_without_columns_fails_and_touches_nothing(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Her row must stay (kept references) and there is nothing to anonymise it with."""
    target_db.create(schema(), rows())
    config = write_config(tmp_path, employee_config("keep"), target_db.url, monkeypatch)
    before = dump(target_db.url)
    real = run_cli("erase", "-c", str(config), "--subject", NANCY, "--json")
    assert real.exit_code == 3, real.stderr + real.stdout
    error = database_error(real.json())
    assert error is not None and "subject.erase.employee" in error, error
    assert dump(target_db.url) == before


def test_refuse_reference_fails_the_database_and_touches_nothing(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(schema(), rows())
    config = write_config(tmp_path, employee_config("refuse"), target_db.url, monkeypatch)
    before = dump(target_db.url)

    # Both the dry run and the erasure exit 3 (run_all checks).
    erasure = run_all(config, tmp_path, NANCY, MARKERS, exit_code=3, url=target_db.url)

    assert_export_is_hers_only(erasure, before)  # the export is unaffected by the action
    error = database_error(erasure.receipt)
    assert error is not None
    assert "\n" not in error
    assert "subject.references[0] (customer.support_rep_id → employee)" in error, error
    assert database_error(erasure.dry) == error
    for document in (erasure.dry, erasure.receipt):
        assert document["erased"] == []
        assert document["kept"] == []
        assert document.get("references") == []
    assert dump(target_db.url) == before  # not even her reports were detached


def test_refuse_reference_erases_someone_nobody_refers_to(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(schema(), rows())
    config = write_config(tmp_path, employee_config("refuse"), target_db.url, monkeypatch)

    erasure = run_all(config, tmp_path, ROBERT, MARKERS, url=target_db.url)

    assert set(erasure.export) == {"employee"}
    assert set(erasure.export["employee"]) == {(7,)}
    assert erasure.erased == ({("employee", "deleted", 1)}, set(), set())
    expected = by_id(rows())
    del expected["employee"][(7,)]
    assert dump(target_db.url) == expected


# --- ON DELETE CASCADE and NOT NULL self-references --------------------------------


@pytest.mark.parametrize("cascading", ["reports_to", "both"])
def test_cascading_references_never_delete_other_people(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cascading: str
):
    """An ON DELETE CASCADE reference would delete her reports (and customers) with her:
    the nulling runs first, so they stay, detached."""
    metadata = schema(
        reports_to_ondelete="CASCADE",
        support_rep_ondelete="CASCADE" if cascading == "both" else None,
    )
    target_db.create(metadata, rows())
    config = write_config(tmp_path, employee_config(None), target_db.url, monkeypatch)
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, NANCY, MARKERS, url=target_db.url)

    assert_export_is_hers_only(erasure, before)
    assert erasure.erased == (
        {("employee", "deleted", 1)},
        set(),
        {REPORTS_NULLED, CUSTOMERS_NULLED},
    )
    expected = by_id(rows())
    del expected["employee"][(2,)]
    for key in REPORTS:
        expected["employee"][key]["reports_to"] = None
    for key in HER_CUSTOMERS:
        expected["customer"][key]["support_rep_id"] = None
    assert dump(target_db.url) == expected


def test_not_null_self_reference_refuses(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`reports_to` NOT NULL (the top manager reports to herself): her reports cannot be
    detached, so the database is not erased — the dry run says so too."""
    target_db.create(schema(reports_to_nullable=False), rows(top_reports_to_self=True))
    config = write_config(tmp_path, employee_config(None), target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == by_id(rows(top_reports_to_self=True))

    erasure = run_all(config, tmp_path, NANCY, MARKERS, exit_code=3, url=target_db.url)

    assert_export_is_hers_only(erasure, before)
    error = database_error(erasure.receipt)
    assert error is not None and "\n" not in error
    assert "employee.reports_to" in error, error
    assert database_error(erasure.dry) == error
    for document in (erasure.dry, erasure.receipt):
        assert document["erased"] == [] and document["kept"] == []
        assert document.get("references") == []
    assert dump(target_db.url) == before


def test_not_null_self_reference_erases_someone_nobody_reports_to(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(schema(reports_to_nullable=False), rows(top_reports_to_self=True))
    config = write_config(tmp_path, employee_config(None), target_db.url, monkeypatch)

    erasure = run_all(config, tmp_path, ROBERT, MARKERS, url=target_db.url)

    assert erasure.erased == ({("employee", "deleted", 1)}, set(), set())
    expected = by_id(rows(top_reports_to_self=True))
    del expected["employee"][(7,)]
    assert dump(target_db.url) == expected


# --- root customer: kept invoices, and `null` on her own foreign key ---------------

CUSTOMER_CONFIG = """
[[rules]]
id = "invoice-delete"
table = "invoice"
action = "delete"
after = "5 years"
since = "invoice_date"
from_fiscal_year_end = true
basis = "Danish Bookkeeping Act § 10"

[subject]
root = "customer"
identifiers = { email = "email" }

[subject.erase.invoice]
action = "keep"
rule = "invoice-delete"

[subject.erase.customer]
columns = { name = "null", email = "null" }
"""


def test_customer_with_kept_invoices_stays_anonymised(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(schema(), rows())
    config = write_config(tmp_path, CUSTOMER_CONFIG, target_db.url, monkeypatch)
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, LEONIE, MARKERS, url=target_db.url)

    # Her customer row, her invoices and their lines; never her support agent.
    assert erasure.export == {
        "customer": {(2,): before["customer"][(2,)]},
        "invoice": encoded({k: before["invoice"][k] for k in ((2,), (3,))}),
        "invoice_line": {k: before["invoice_line"][k] for k in ((3,), (4,), (5,), (6,))},
    }
    erased, kept, references = erasure.erased
    # Invoice lines are not referenced by the kept invoices (they refer to them), so
    # they are deleted; the customer row is referenced by kept invoices: anonymised.
    assert erased == {("invoice_line", "deleted", 4), ("customer", "anonymised", 1)}
    assert kept == {("invoice", 2, "Danish Bookkeeping Act § 10")}
    assert references == set()
    [invoice] = erasure.receipt["kept"]
    assert invoice["rule"] == "invoice-delete"
    assert invoice["until"] == "2029-12-31"  # fiscal year 2024 + 5 years
    assert SHARED_BASIS not in {k["basis"] for k in erasure.receipt["kept"]}

    expected = by_id(rows())
    expected["customer"][(2,)].update(name=None, email=None)  # support_rep_id stays 2
    for key in ((3,), (4,), (5,), (6,)):
        del expected["invoice_line"][key]
    assert dump(target_db.url) == expected


ANONYMISE_CUSTOMER = """
[subject]
root = "customer"
identifiers = { email = "email" }

[subject.erase.customer]
action = "anonymise"
columns = { support_rep_id = "null", name = "null", email = "null" }
"""


def test_null_on_a_nullable_foreign_key_column_is_accepted(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Point 2: `null` on customer.support_rep_id (a nullable FK to another table)."""
    target_db.create(schema(), rows())
    config = write_config(tmp_path, ANONYMISE_CUSTOMER, target_db.url, monkeypatch)
    before = dump(target_db.url)

    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 0, check.stdout + check.stderr
    assert dump(target_db.url) == before

    erasure = run_all(config, tmp_path, LEONIE, MARKERS, url=target_db.url)

    erased, kept, references = erasure.erased
    assert erased == {
        ("customer", "anonymised", 1),
        ("invoice", "deleted", 2),
        ("invoice_line", "deleted", 4),
    }
    assert kept == set() and references == set()
    expected = by_id(rows())
    expected["customer"][(2,)].update(name=None, email=None, support_rep_id=None)
    for key in ((2,), (3,)):
        del expected["invoice"][key]
    for key in ((3,), (4,), (5,), (6,)):
        del expected["invoice_line"][key]
    assert dump(target_db.url) == expected


# --- a declared NOT NULL self-reference, and config errors -------------------------


def test_declared_keep_self_reference_leaves_her_reports(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`reports_to` NOT NULL declared `keep`: her reports keep pointing at her row,
    which stays, anonymised; the customers' (nullable, default) reference is nulled."""
    target_db.create(schema(reports_to_nullable=False), rows(top_reports_to_self=True))
    body = employee_config(None, f"[subject.erase.employee]\ncolumns = {EMPLOYEE_COLUMNS}")
    body += '\n[[subject.references]]\ntable = "employee"\ncolumn = "reports_to"\naction = "keep"\n'
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, NANCY, MARKERS, url=target_db.url)

    assert_export_is_hers_only(erasure, before)
    assert erasure.erased == (
        {("employee", "anonymised", 1)},
        set(),
        {("employee", ("reports_to",), "employee", "kept", 3), CUSTOMERS_NULLED},
    )
    expected = by_id(rows(top_reports_to_self=True))
    anonymised_nancy(expected)
    for key in HER_CUSTOMERS:
        expected["customer"][key]["support_rep_id"] = None
    assert dump(target_db.url) == expected


BAD_REFERENCES = {
    "bad-action": ("customer", "support_rep_id", "sometimes", "subject.references[0].action"),
    "no-table": ("nowhere", "support_rep_id", "null", "subject.references[0]"),
    "no-column": ("customer", "nope", "null", "subject.references[0]"),
    "not-a-foreign-key": ("customer", "email", "null", "subject.references[0].column"),
    "null-on-not-null": ("employee", "reports_to", "null", "subject.references[0].action"),
}


@pytest.mark.parametrize("case", list(BAD_REFERENCES))
def test_bad_references_are_config_errors(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
):
    table, column, action, key = BAD_REFERENCES[case]
    target_db.create(schema(reports_to_nullable=False), rows(top_reports_to_self=True))
    body = f"""
[subject]
root = "employee"
identifiers = {{ email = "email" }}

[[subject.references]]
table = "{table}"
column = "{column}"
action = "{action}"
"""
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    before = dump(target_db.url)
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 2, check.stdout + check.stderr
    assert key in check.stdout + check.stderr
    for dry_run in (("--dry-run",), ()):
        result = run_cli("erase", "-c", str(config), "--subject", NANCY, *dry_run)
        # A bad action is wrong in the config itself (exit 2); the others are found
        # against each database's schema, like a missing subject.root table: exit 2 per
        # semantics.md, today's erase fails that database (exit 3) — either way the
        # line names the key and nothing is touched.
        expected = {2} if case == "bad-action" else {2, 3}
        assert result.exit_code in expected, (dry_run, result.stdout, result.stderr)
        assert key in result.stdout + result.stderr
    assert dump(target_db.url) == before


# --- a held row changes nothing; a refused database leaves the others erased --------


@pytest.mark.parametrize("reference", ["null", "refuse"])
def test_a_held_row_is_not_detached_from_anyone(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: str
):
    """Her employee row under a legal hold stays as it is, so nobody's reference to it
    changes, and `refuse` has nothing to refuse (no row of hers would change)."""
    target_db.create(schema(), rows())
    config = write_config(tmp_path, employee_config(reference), target_db.url, monkeypatch)
    hold = run_cli("hold", "add", "-c", str(config), "-d", "main", "-t", "employee",
                   "-k", "2", "--reason", "case 2026-17")  # fmt: skip
    assert hold.exit_code == 0, hold.stdout + hold.stderr
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, NANCY, MARKERS, url=target_db.url)

    assert erasure.erased == (set(), {("employee", 1, LEGAL_HOLD_BASIS)}, set())
    assert dump(target_db.url) == before


def test_a_refused_database_leaves_the_others_erased(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`main` refuses (customers refer to her); `archive`, where no customer has her as
    their agent, is erased: exit 3, and only `main` has an error."""
    target_db.create(schema(), rows())
    archive_url = f"sqlite:///{tmp_path / 'archive.db'}"
    archive_rows = rows()
    for customer in archive_rows["customer"]:
        if customer["support_rep_id"] == 2:
            customer["support_rep_id"] = 3
    TargetDb("sqlite", archive_url).create(schema(), archive_rows)
    body = f'[databases.archive]\nurl = "{archive_url}"\n' + employee_config("refuse")
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    before = dump(target_db.url)

    for dry_run in (("--dry-run",), ()):
        result = run_cli("erase", "-c", str(config), "--subject", NANCY, "--json", *dry_run)
        assert result.exit_code == 3, result.stdout + result.stderr
        document = result.json()
        errors = {db["database"]: db["error"] for db in document["databases"]}
        assert errors["archive"] is None
        assert "subject.references[0] (customer.support_rep_id → employee)" in errors["main"]
        assert {
            (e["database"], e["table"], e["action"], e["rows"]) for e in document["erased"]
        } == {("archive", "employee", "deleted", 1)}
        assert {
            (r["database"], r["table"], r["action"], r["rows"]) for r in document["references"]
        } == {("archive", "employee", "nulled", 3)}
    assert dump(target_db.url) == before
    expected = by_id(archive_rows)
    del expected["employee"][(2,)]
    for key in REPORTS:
        expected["employee"][key]["reports_to"] = None
    assert dump(archive_url) == expected


LINKED = """
[[subject.links]]
table = "customer"
column = "email"
references = "employee.email"
"""


def test_her_own_customer_row_found_by_a_link_is_hers(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Nancy also shops (customer 7, same e-mail, served by Jane): that customer row is
    hers through the link, with its invoice and lines, and erased; the customers she
    serves are not, though the same table: the reference is a foreign key, the link is
    not."""
    data = rows()
    data["customer"].append(
        {"id": 7, "name": "Nancy Edwards", "email": "nancy.edwards@chinook.example",
         "support_rep_id": 3}
    )  # fmt: skip
    data["invoice"].append(
        {"id": 6, "customer_id": 7, "invoice_date": dt.date(2024, 7, 1), "total": 99}
    )
    data["invoice_line"].append({"id": 9, "invoice_id": 6, "track_id": 18, "price": 99})
    target_db.create(schema(), data)
    config = write_config(tmp_path, employee_config(None, LINKED), target_db.url, monkeypatch)
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, NANCY, MARKERS, url=target_db.url)

    assert erasure.export == {
        "employee": {(2,): before["employee"][(2,)]},
        "customer": {(7,): before["customer"][(7,)]},
        "invoice": encoded({(6,): before["invoice"][(6,)]}),
        "invoice_line": {(9,): before["invoice_line"][(9,)]},
    }
    assert erasure.erased == (
        {
            ("employee", "deleted", 1),
            ("customer", "deleted", 1),
            ("invoice", "deleted", 1),
            ("invoice_line", "deleted", 1),
        },
        set(),
        {REPORTS_NULLED, CUSTOMERS_NULLED},
    )
    expected = by_id(data)
    del expected["employee"][(2,)]
    del expected["customer"][(7,)]
    del expected["invoice"][(6,)]
    del expected["invoice_line"][(9,)]
    for key in REPORTS:
        expected["employee"][key]["reports_to"] = None
    for key in HER_CUSTOMERS:
        expected["customer"][key]["support_rep_id"] = None
    assert dump(target_db.url) == expected


def test_a_reference_is_matched_by_table_and_column(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A helpdesk ticket has two keys to employee: `opened_by` (ownership: the tickets
    she opened are hers) and `assigned_to` (declared a reference: tickets other people
    opened and assigned to her are theirs, only detached from her)."""
    metadata = schema()
    sa.Table(
        "ticket", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("opened_by", sa.Integer, sa.ForeignKey("employee.id"), nullable=False,
                  index=True),
        sa.Column("assigned_to", sa.Integer, sa.ForeignKey("employee.id"), nullable=True,
                  index=True),
        sa.Column("topic", sa.String(80)),
    )  # fmt: skip
    data = rows()
    data["ticket"] = [
        {"id": 1, "opened_by": 2, "assigned_to": 2, "topic": "laptop"},
        {"id": 2, "opened_by": 2, "assigned_to": 3, "topic": "printer"},
        {"id": 3, "opened_by": 3, "assigned_to": 2, "topic": "vpn"},
        {"id": 4, "opened_by": 4, "assigned_to": 2, "topic": "mail"},
        {"id": 5, "opened_by": 6, "assigned_to": 7, "topic": "phone"},
    ]
    target_db.create(metadata, data)
    body = employee_config(None) + (
        '\n[[subject.references]]\ntable = "ticket"\ncolumn = "assigned_to"\n'
    )
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, NANCY, MARKERS, url=target_db.url)

    assert erasure.export == {
        "employee": {(2,): before["employee"][(2,)]},
        "ticket": {k: before["ticket"][k] for k in ((1,), (2,))},
    }
    assert erasure.erased == (
        {("employee", "deleted", 1), ("ticket", "deleted", 2)},
        set(),
        {
            REPORTS_NULLED,
            CUSTOMERS_NULLED,
            ("ticket", ("assigned_to",), "employee", "nulled", 2),
        },
    )
    expected = by_id(data)
    del expected["employee"][(2,)]
    del expected["ticket"][(1,)]
    del expected["ticket"][(2,)]
    expected["ticket"][(3,)]["assigned_to"] = None
    expected["ticket"][(4,)]["assigned_to"] = None
    for key in REPORTS:
        expected["employee"][key]["reports_to"] = None
    for key in HER_CUSTOMERS:
        expected["customer"][key]["support_rep_id"] = None
    assert dump(target_db.url) == expected


def test_many_references_are_nulled_in_chunks(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """More referencing rows than one statement's chunk of keys (500): every one is
    nulled and counted, and the dry run counts the same."""
    data = rows()
    extra = range(100, 1301)
    data["employee"] += [
        {"id": i, "first_name": "Temp", "last_name": f"Worker{i}",
         "email": f"temp{i}@chinook.example", "reports_to": 2}
        for i in extra
    ]  # fmt: skip
    data["customer"] += [
        {"id": i, "name": f"Shopper {i}", "email": f"shopper{i}@chinook.example",
         "support_rep_id": 2}
        for i in extra
    ]  # fmt: skip
    target_db.create(schema(), data)
    config = write_config(tmp_path, employee_config(None), target_db.url, monkeypatch)

    erasure = run_all(config, tmp_path, NANCY, MARKERS, url=target_db.url)

    count = 3 + len(extra)
    assert erasure.erased == (
        {("employee", "deleted", 1)},
        set(),
        {
            ("employee", ("reports_to",), "employee", "nulled", count),
            ("customer", ("support_rep_id",), "employee", "nulled", count),
        },
    )
    expected = by_id(data)
    del expected["employee"][(2,)]
    for key in [*REPORTS, *((i,) for i in extra)]:
        expected["employee"][key]["reports_to"] = None
    for key in [*HER_CUSTOMERS, *((i,) for i in extra)]:
        expected["customer"][key]["support_rep_id"] = None
    assert dump(target_db.url) == expected
