"""Declared parents: the address a person's rows refer to is hers too (issue 16, point 5).

A shop: `customer.address_id → address`, `payment_card(customer_id → customer,
billing_address_id → address)`, `order_line(customer_id → customer, product_id →
product)` and, in one test, `invoice(customer_id → customer, billing_address_id →
address)`. With `[subject] parents = ["address"]`:

- Mette's home and her card's billing address are hers alone: exported and deleted
  (or anonymised, as `[subject.erase.address]` says);
- Jens shares his household address with Karen: exported with his rows, but kept as it
  is (basis SHARED_BASIS), and nothing of Karen's is his — nothing is followed downward
  from a parent;
- the product catalogue is referenced by her order lines but never a parent: never
  exported, never touched;
- without `parents`, no address is hers: not exported, not touched;
- an address her kept invoice refers to must stay: semantics.md — "delete rows that kept
  or anonymised rows of the person still reference are anonymised instead" — so it is
  anonymised with `[subject.erase.address] columns` (it is hers, not shared: the invoice
  is her own row); so is her home, which her anonymised customer row still refers to.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.strategies import REDACTED
from gdpr_sweep.subject.receipts import LEGAL_HOLD_BASIS, SHARED_BASIS
from tests.conftest import TargetDb, run_cli, write_config
from tests.erase_support import by_id, dump, encoded, personal_values, run_all

METTE = "email=mette.marker@example.dk"
JENS = "email=jens.jensen@example.dk"


def schema(with_invoice: bool = False, chain: bool = False) -> sa.MetaData:
    m = sa.MetaData()
    key = {"primary_key": True, "autoincrement": False}
    country = []
    if chain:
        sa.Table("country", m, sa.Column("id", sa.Integer, **key),
                 sa.Column("name", sa.String(60)))  # fmt: skip
        sa.Table("supplier", m, sa.Column("id", sa.Integer, **key),
                 sa.Column("company", sa.String(60)))  # fmt: skip
        country = [sa.Column("country_id", sa.Integer, sa.ForeignKey("country.id"), index=True)]
    sa.Table("address", m, sa.Column("id", sa.Integer, **key),
             sa.Column("street", sa.String(120)), sa.Column("city", sa.String(60)),
             *country)  # fmt: skip
    if chain:
        sa.Table(
            "pickup_point", m, sa.Column("id", sa.Integer, **key),
            sa.Column("label", sa.String(60)),
            sa.Column("address_id", sa.Integer, sa.ForeignKey("address.id", ondelete="SET NULL"),
                      index=True),
        )  # fmt: skip
    sa.Table(
        "customer", m, sa.Column("id", sa.Integer, **key),
        sa.Column("email", sa.String(120), index=True), sa.Column("name", sa.String(120)),
        sa.Column("address_id", sa.Integer, sa.ForeignKey("address.id"), nullable=True,
                  index=True),
    )  # fmt: skip
    sa.Table(
        "payment_card", m, sa.Column("id", sa.Integer, **key),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False,
                  index=True),
        sa.Column("billing_address_id", sa.Integer, sa.ForeignKey("address.id"),
                  nullable=True, index=True),
        sa.Column("last4", sa.String(4)),
    )  # fmt: skip
    supplier = (
        [sa.Column("supplier_id", sa.Integer, sa.ForeignKey("supplier.id"), index=True)]
        if chain
        else []
    )
    sa.Table("product", m, sa.Column("id", sa.Integer, **key),
             sa.Column("title", sa.String(120)), *supplier)  # fmt: skip
    sa.Table(
        "order_line", m, sa.Column("id", sa.Integer, **key),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False,
                  index=True),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("product.id"), nullable=False,
                  index=True),
        sa.Column("quantity", sa.Integer, nullable=False),
    )  # fmt: skip
    if with_invoice:
        sa.Table(
            "invoice", m, sa.Column("id", sa.Integer, **key),
            sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"),
                      nullable=False, index=True),
            sa.Column("billing_address_id", sa.Integer, sa.ForeignKey("address.id"),
                      nullable=False, index=True),
            sa.Column("invoice_date", sa.Date, nullable=False),
            sa.Column("total", sa.Integer, nullable=False),
        )  # fmt: skip
    return m


def rows(with_invoice: bool = False) -> dict[str, list[dict]]:
    """Mette (1) lives at 10 and bills her second card to 14 (and her invoice to 15);
    Jens (2) and Karen (3) share the household address 11; Karen bills to 13."""
    data = {
        "address": [
            {"id": 10, "street": "Vestergade 12", "city": "Aarhus"},
            {"id": 11, "street": "Nørregade 7", "city": "Odense"},
            {"id": 12, "street": "Algade 3", "city": "Aalborg"},
            {"id": 13, "street": "Strøget 1", "city": "København"},
            {"id": 14, "street": "Havnegade 5", "city": "Aarhus"},
            {"id": 15, "street": "Skolevej 9", "city": "Vejle"},
        ],
        "customer": [
            {"id": 1, "email": "mette.marker@example.dk", "name": "Mette Markersen",
             "address_id": 10},
            {"id": 2, "email": "jens.jensen@example.dk", "name": "Jens Jensen",
             "address_id": 11},
            {"id": 3, "email": "karen.jensen@example.dk", "name": "Karen Jensen",
             "address_id": 11},
            {"id": 4, "email": "ole.olsen@example.dk", "name": "Ole Olsen", "address_id": 12},
            {"id": 5, "email": "lone.lund@example.dk", "name": "Lone Lund", "address_id": None},
        ],
        "payment_card": [
            {"id": 1, "customer_id": 1, "billing_address_id": 10, "last4": "4242"},
            {"id": 2, "customer_id": 1, "billing_address_id": 14, "last4": "1881"},
            {"id": 3, "customer_id": 2, "billing_address_id": 11, "last4": "5555"},
            {"id": 4, "customer_id": 3, "billing_address_id": 13, "last4": "0005"},
            {"id": 5, "customer_id": 4, "billing_address_id": None, "last4": "9999"},
        ],
        "product": [
            {"id": 1, "title": "Welding helmet"},
            {"id": 2, "title": "Forklift manual"},
            {"id": 3, "title": "Safety boots"},
        ],
        "order_line": [
            {"id": 1, "customer_id": 1, "product_id": 1, "quantity": 1},
            {"id": 2, "customer_id": 1, "product_id": 2, "quantity": 2},
            {"id": 3, "customer_id": 2, "product_id": 1, "quantity": 1},
            {"id": 4, "customer_id": 3, "product_id": 3, "quantity": 1},
            {"id": 5, "customer_id": 4, "product_id": 2, "quantity": 3},
        ],
    }  # fmt: skip
    if with_invoice:
        data["invoice"] = [
            {"id": 1, "customer_id": 1, "billing_address_id": 15,
             "invoice_date": dt.date(2024, 5, 1), "total": 49900},
            {"id": 2, "customer_id": 4, "billing_address_id": 12,
             "invoice_date": dt.date(2024, 6, 1), "total": 12900},
        ]  # fmt: skip
    return data


MARKERS = personal_values(rows(True), {"email", "name", "street"})

ADDRESS_COLUMNS = '{ street = "redact", city = "null" }'


def config_body(parents: str | None, extra: str = "") -> str:
    line = f"parents = {parents}" if parents is not None else ""
    return f"""
[subject]
root = "customer"
identifiers = {{ email = "email" }}
{line}
{extra}
"""


def hers(before: dict, keys: dict[str, tuple[int, ...]]) -> dict:
    return {table: {(k,): before[table][(k,)] for k in ids} for table, ids in keys.items()}


CASES = {
    "delete": ('["address"]', "", "deleted"),
    "anonymise": (
        '["address"]',
        f'[subject.erase.address]\naction = "anonymise"\ncolumns = {ADDRESS_COLUMNS}',
        "anonymised",
    ),
    "bare-string": ('"address"', "", "deleted"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_her_own_addresses_are_exported_and_erased(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
):
    parents, extra, address_action = CASES[case]
    target_db.create(schema(), rows())
    config = write_config(tmp_path, config_body(parents, extra), target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == by_id(rows())

    erasure = run_all(config, tmp_path, METTE, MARKERS, url=target_db.url)

    # Her rows and the addresses they refer to; never the product catalogue.
    assert erasure.export == hers(
        before,
        {"customer": (1,), "payment_card": (1, 2), "order_line": (1, 2), "address": (10, 14)},
    )
    erased, kept, references = erasure.erased
    assert erased == {
        ("customer", "deleted", 1),
        ("payment_card", "deleted", 2),
        ("order_line", "deleted", 2),
        ("address", address_action, 2),
    }
    assert kept == set() and references == set()

    expected = by_id(rows())
    del expected["customer"][(1,)]
    for key in (1, 2):
        del expected["payment_card"][(key,)]
        del expected["order_line"][(key,)]
    for key in (10, 14):
        if address_action == "deleted":
            del expected["address"][(key,)]
        else:
            expected["address"][(key,)].update(street=REDACTED, city=None)
    after = dump(target_db.url)
    assert after == expected
    assert after["product"] == before["product"]


@pytest.mark.parametrize("address", ["delete", "anonymise"])
def test_a_shared_household_address_is_exported_and_kept(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, address: str
):
    extra = CASES[address][1]
    target_db.create(schema(), rows())
    config = write_config(tmp_path, config_body('["address"]', extra), target_db.url, monkeypatch)
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, JENS, MARKERS, url=target_db.url)

    # His household address is his too (exported); Karen's rows are not, though she
    # lives there: nothing is followed downward from a parent.
    assert erasure.export == hers(
        before, {"customer": (2,), "payment_card": (3,), "order_line": (3,), "address": (11,)}
    )
    erased, kept, references = erasure.erased
    assert erased == {
        ("customer", "deleted", 1),
        ("payment_card", "deleted", 1),
        ("order_line", "deleted", 1),
    }
    assert kept == {("address", 1, SHARED_BASIS)}
    assert references == set()

    expected = by_id(rows())
    del expected["customer"][(2,)]
    del expected["payment_card"][(3,)]
    del expected["order_line"][(3,)]
    after = dump(target_db.url)
    assert after == expected
    assert after["address"][(11,)] == before["address"][(11,)]  # as it was, for Karen
    assert after["customer"][(3,)] == before["customer"][(3,)]


def test_without_parents_no_address_is_hers(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(schema(), rows())
    config = write_config(tmp_path, config_body(None), target_db.url, monkeypatch)
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, METTE, MARKERS, url=target_db.url)

    assert erasure.export == hers(
        before, {"customer": (1,), "payment_card": (1, 2), "order_line": (1, 2)}
    )
    assert erasure.erased == (
        {
            ("customer", "deleted", 1),
            ("payment_card", "deleted", 2),
            ("order_line", "deleted", 2),
        },
        set(),
        set(),
    )
    expected = by_id(rows())
    del expected["customer"][(1,)]
    for key in (1, 2):
        del expected["payment_card"][(key,)]
        del expected["order_line"][(key,)]
    after = dump(target_db.url)
    assert after == expected
    assert after["address"] == before["address"]


KEPT_INVOICE = f"""
[subject.erase.invoice]
action = "keep"
basis = "Danish Bookkeeping Act § 10"

[subject.erase.customer]
columns = {{ name = "null", email = "null" }}

[subject.erase.address]
columns = {ADDRESS_COLUMNS}
"""


def test_a_parent_her_kept_invoice_refers_to_is_anonymised(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target_db.create(schema(with_invoice=True), rows(with_invoice=True))
    body = config_body('["address"]', KEPT_INVOICE)
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == by_id(rows(with_invoice=True))

    erasure = run_all(config, tmp_path, METTE, MARKERS, url=target_db.url)

    export = hers(
        before,
        {
            "customer": (1,),
            "payment_card": (1, 2),
            "order_line": (1, 2),
            "address": (10, 14, 15),
        },
    )
    export["invoice"] = encoded({(1,): before["invoice"][(1,)]})
    assert erasure.export == export
    erased, kept, references = erasure.erased
    # The address table's action is "delete": 14 (only her deleted card refers to it) is
    # deleted; 15 (her kept invoice) and 10 (her customer row, which stays anonymised
    # because the invoice refers to it) must stay, so they are anonymised.
    assert erased == {
        ("customer", "anonymised", 1),
        ("payment_card", "deleted", 2),
        ("order_line", "deleted", 2),
        ("address", "deleted", 1),
        ("address", "anonymised", 2),
    }
    assert kept == {("invoice", 1, "Danish Bookkeeping Act § 10")}
    assert references == set()

    expected = by_id(rows(with_invoice=True))
    expected["customer"][(1,)].update(name=None, email=None)
    for key in (1, 2):
        del expected["payment_card"][(key,)]
        del expected["order_line"][(key,)]
    del expected["address"][(14,)]
    for key in (10, 15):
        expected["address"][(key,)].update(street=REDACTED, city=None)
    assert dump(target_db.url) == expected


@pytest.mark.parametrize(
    ("parents", "message"),
    [('["nowhere"]', "nowhere"), ('["customer"]', "root")],
    ids=["no-such-table", "the-root"],
)
def test_bad_parents_are_config_errors(
    target_db: TargetDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    parents: str,
    message: str,
):
    target_db.create(schema(), rows())
    config = write_config(tmp_path, config_body(parents), target_db.url, monkeypatch)
    before = dump(target_db.url)
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 2, check.stdout + check.stderr
    assert "subject.parents" in check.stdout + check.stderr
    for dry_run in (("--dry-run",), ()):
        result = run_cli("erase", "-c", str(config), "--subject", METTE, *dry_run)
        # The root as a parent is wrong in the config itself (exit 2); a table missing
        # from a database is found per database, like a missing subject.root table
        # (exit 2 per semantics.md; today's erase reports schema findings per database,
        # exit 3) — either way one line naming the key, and nothing touched.
        expected = {2} if message == "root" else {2, 3}
        assert result.exit_code in expected, (dry_run, result.stdout, result.stderr)
        output = result.stdout + result.stderr
        assert "subject.parents" in output and message in output, output
    assert dump(target_db.url) == before


def chain_rows() -> dict[str, list[dict]]:
    """rows(), and: Mette's home (10) is the only address in country 2; her card's
    billing address (14) is in country 1 with everyone else's, and a pickup point is
    there too; the products come from suppliers."""
    data = rows()
    data["country"] = [{"id": 1, "name": "Danmark"}, {"id": 2, "name": "Kalaallit Nunaat"}]
    data["supplier"] = [{"id": 1, "company": "Svejs A/S"}, {"id": 2, "company": "Truck ApS"}]
    for address in data["address"]:
        address["country_id"] = 2 if address["id"] == 10 else 1
    for product in data["product"]:
        product["supplier_id"] = 1 if product["id"] != 2 else 2
    data["pickup_point"] = [
        {"id": 1, "label": "Havnen", "address_id": 14},
        {"id": 2, "label": "Centrum", "address_id": None},
    ]
    return data


def test_parents_are_transitive_only_through_parents(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`parents = ["address", "country", "supplier"]`: her addresses' countries are hers
    (a parent of a parent); a supplier is reached only through the product catalogue,
    which is not a parent, so it is never hers. Her card's billing address is also a
    pickup point's (a foreign key ON DELETE SET NULL, from a table outside her rows):
    shared, kept as it is, and so is the country everyone lives in."""
    data = chain_rows()
    target_db.create(schema(chain=True), data)
    parents = '["address", "country", "supplier"]'
    config = write_config(tmp_path, config_body(parents), target_db.url, monkeypatch)
    before = dump(target_db.url)
    assert before == by_id(data)

    erasure = run_all(config, tmp_path, METTE, MARKERS, url=target_db.url)

    assert erasure.export == hers(
        before,
        {
            "customer": (1,),
            "payment_card": (1, 2),
            "order_line": (1, 2),
            "address": (10, 14),
            "country": (1, 2),
        },
    )
    erased, kept, references = erasure.erased
    assert erased == {
        ("customer", "deleted", 1),
        ("payment_card", "deleted", 2),
        ("order_line", "deleted", 2),
        ("address", "deleted", 1),
        ("country", "deleted", 1),
    }
    assert kept == {("address", 1, SHARED_BASIS), ("country", 1, SHARED_BASIS)}
    assert references == set()

    expected = by_id(data)
    del expected["customer"][(1,)]
    for key in (1, 2):
        del expected["payment_card"][(key,)]
        del expected["order_line"][(key,)]
    del expected["address"][(10,)]
    del expected["country"][(2,)]
    after = dump(target_db.url)
    assert after == expected
    assert after["pickup_point"] == before["pickup_point"]
    assert after["supplier"] == before["supplier"]


def test_a_parent_a_held_row_refers_to_stays_anonymised(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Her second card is under a legal hold: it stays as it is, so the customer row and
    the billing address it refers to stay too (anonymised), like for a kept row; so does
    her home, which the staying customer row refers to."""
    target_db.create(schema(), rows())
    extra = (
        f'[subject.erase.customer]\ncolumns = {{ name = "null", email = "null" }}\n\n'
        f"[subject.erase.address]\ncolumns = {ADDRESS_COLUMNS}\n"
    )
    config = write_config(tmp_path, config_body('["address"]', extra), target_db.url, monkeypatch)
    hold = run_cli("hold", "add", "-c", str(config), "-d", "main", "-t", "payment_card",
                   "-k", "2", "--reason", "chargeback 2026-4411")  # fmt: skip
    assert hold.exit_code == 0, hold.stdout + hold.stderr
    before = dump(target_db.url)

    erasure = run_all(config, tmp_path, METTE, MARKERS, url=target_db.url)

    assert erasure.export == hers(
        before,
        {"customer": (1,), "payment_card": (1, 2), "order_line": (1, 2), "address": (10, 14)},
    )
    assert erasure.erased == (
        {
            ("customer", "anonymised", 1),
            ("payment_card", "deleted", 1),
            ("order_line", "deleted", 2),
            ("address", "anonymised", 2),
        },
        {("payment_card", 1, LEGAL_HOLD_BASIS)},
        set(),
    )
    expected = by_id(rows())
    expected["customer"][(1,)].update(name=None, email=None)
    del expected["payment_card"][(1,)]
    for key in (1, 2):
        del expected["order_line"][(key,)]
    for key in (10, 14):
        expected["address"][(key,)].update(street=REDACTED, city=None)
    assert dump(target_db.url) == expected
