"""A partitioned table and its partitions are one table (issue 16, point 8; PostgreSQL).

A pagila-shaped schema, built with raw DDL: `customer` (the root, by email), `rental →
customer`, and `payment` PARTITION BY RANGE (payment_date) with six monthly partitions
`payment_p2022_01` … `_06`, its primary key `(payment_date, payment_id)` as in pagila.
In the `partitions` variant the foreign keys `payment.customer_id → customer` and
`payment.rental_id → rental` are declared on each partition (as pagila does), not on
the parent, and the indexes too; in the `parent` variant they are declared once, on
`payment`. `refund → payment` refers to the partitioned table itself.

The graph, export and erase reach `payment`, never a partition: `[subject.erase.payment]`
keep / anonymise / delete act on the person's payments in every partition and nobody
else's, the receipt and the export name `payment`, and `--dry-run` counts what the
real erasure does. Naming a partition in the config is an error naming the parent.

Each test reads every row of every table (the parent and each partition) before and
after, and asserts exactly what changed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.catalog import Catalog
from gdpr_sweep.strategies import REDACTED
from gdpr_sweep.subject.receipts import LEGAL_HOLD_BASIS
from gdpr_sweep.values.encoding import encode_value
from tests.conftest import TargetDb, run_cli, write_config
from tests.erase_support import erased_and_kept, export_dry_run_erase, exported_tables

EMAIL = "mette.marker@example.dk"
FIRST, LAST = "Mette", "Markersen"
STAFF_EMAIL = "mike.hillyer@example.dk"
MARKERS = (EMAIL, "Markersen", "mette-ref", "mette-delivery", "mette-refund", STAFF_EMAIL,
           "Hillyer")  # fmt: skip
MONTHS = range(1, 7)
PARTITIONS = [f"payment_p2022_{m:02d}" for m in MONTHS]
#: The `subpartitions` variant splits June (itself partitioned) in two halves.
SUBPARTITIONS = {"payment_p2022_06_a": range(1, 16), "payment_p2022_06_b": range(16, 31)}
UTC = dt.UTC

# --- the schema -------------------------------------------------------------------------

BASE_DDL = """
CREATE TABLE customer (
    customer_id integer PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text
);
CREATE INDEX idx_customer_email ON customer (email);
CREATE TABLE rental (
    rental_id integer PRIMARY KEY,
    rental_date timestamptz NOT NULL,
    customer_id integer NOT NULL REFERENCES customer (customer_id),
    delivery_note text
);
CREATE INDEX idx_fk_rental_customer_id ON rental (customer_id);
CREATE TABLE staff (
    staff_id integer PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text
);
CREATE INDEX idx_staff_email ON staff (email);
CREATE TABLE payment (
    payment_id integer NOT NULL,
    customer_id integer NOT NULL,
    staff_id integer,
    rental_id integer,
    amount numeric(5, 2) NOT NULL,
    reference text,
    payment_date timestamptz NOT NULL,
    PRIMARY KEY (payment_date, payment_id)
) PARTITION BY RANGE (payment_date);
"""

PARENT_FKS = """
ALTER TABLE payment ADD CONSTRAINT payment_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customer (customer_id);
ALTER TABLE payment ADD CONSTRAINT payment_rental_id_fkey
    FOREIGN KEY (rental_id) REFERENCES rental (rental_id);
ALTER TABLE payment ADD CONSTRAINT payment_staff_id_fkey
    FOREIGN KEY (staff_id) REFERENCES staff (staff_id);
CREATE INDEX idx_fk_payment_customer_id ON payment (customer_id);
CREATE INDEX idx_fk_payment_rental_id ON payment (rental_id);
CREATE INDEX idx_fk_payment_staff_id ON payment (staff_id);
"""

REFUND_DDL = """
CREATE TABLE refund (
    refund_id integer PRIMARY KEY,
    payment_date timestamptz NOT NULL,
    payment_id integer NOT NULL,
    reason text,
    FOREIGN KEY (payment_date, payment_id) REFERENCES payment (payment_date, payment_id)
);
CREATE INDEX idx_fk_refund_payment ON refund (payment_date, payment_id);
"""


def partition_ddl(fk_on: str) -> str:
    statements = []
    for month, name in zip(MONTHS, PARTITIONS, strict=True):
        start = f"2022-{month:02d}-01"
        end = f"2022-{month + 1:02d}-01"
        split = fk_on == "subpartitions" and month == 6
        statements.append(
            f"CREATE TABLE {name} PARTITION OF payment "
            f"FOR VALUES FROM ('{start} 00:00:00+00') TO ('{end} 00:00:00+00')"
            + (" PARTITION BY RANGE (payment_date);" if split else ";")
        )
        if split:  # June in two halves: partitions of a partition
            statements.append(
                f"CREATE TABLE {name}_a PARTITION OF {name} "
                "FOR VALUES FROM ('2022-06-01 00:00:00+00') TO ('2022-06-16 00:00:00+00');"
            )
            statements.append(
                f"CREATE TABLE {name}_b PARTITION OF {name} "
                "FOR VALUES FROM ('2022-06-16 00:00:00+00') TO ('2022-07-01 00:00:00+00');"
            )
        if fk_on in ("partitions", "subpartitions"):  # as pagila: on each partition
            statements.append(
                f"ALTER TABLE {name} ADD CONSTRAINT {name}_customer_id_fkey "
                "FOREIGN KEY (customer_id) REFERENCES customer (customer_id);"
            )
            statements.append(
                f"ALTER TABLE {name} ADD CONSTRAINT {name}_rental_id_fkey "
                "FOREIGN KEY (rental_id) REFERENCES rental (rental_id);"
            )
            statements.append(
                f"ALTER TABLE {name} ADD CONSTRAINT {name}_staff_id_fkey "
                "FOREIGN KEY (staff_id) REFERENCES staff (staff_id);"
            )
            for column in ("customer_id", "rental_id", "staff_id"):
                statements.append(f"CREATE INDEX idx_fk_{name}_{column} ON {name} ({column});")
    return "\n".join(statements)


def ddl(fk_on: str) -> str:
    return BASE_DDL + (PARENT_FKS if fk_on == "parent" else "") + partition_ddl(fk_on) + REFUND_DDL


def at(month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2022, month, day, hour, 0, tzinfo=UTC)


def day_of(customer: int, month: int, n: int) -> int:
    """Her second June payment is in the second half of June (the other subpartition)."""
    return 20 if (customer, month, n) == (1, 6, 1) else 3 + n


def rows() -> dict[str, list[dict]]:
    """Mette (1) pays twice a month, January to June; Jens (2) once a month; Sofie (3)
    three times. One of Mette's payments has no rental (found only by customer_id)."""
    customers = [
        {"customer_id": 1, "first_name": FIRST, "last_name": LAST, "email": EMAIL},
        {"customer_id": 2, "first_name": "Jens", "last_name": "Other", "email": "jens@x.dk"},
        {"customer_id": 3, "first_name": "Sofie", "last_name": "Third", "email": "sofie@x.dk"},
    ]
    staff = [
        {"staff_id": 1, "first_name": "Mike", "last_name": "Hillyer", "email": STAFF_EMAIL},
        {"staff_id": 2, "first_name": "Jon", "last_name": "Stephens", "email": "jon@x.dk"},
    ]
    rentals = []
    payments = []
    payment_id = 16000
    for month in MONTHS:
        for customer, count in ((1, 2), (2, 1), (3, 1 if month <= 3 else 0)):
            if not count:
                continue
            rental_id = customer * 100 + month
            note = "mette-delivery" if customer == 1 else f"delivery {customer}"
            rentals.append({"rental_id": rental_id, "rental_date": at(month, 2),
                            "customer_id": customer, "delivery_note": note})  # fmt: skip
            for n in range(count):
                payment_id += 1
                no_rental = customer == 1 and month == 1 and n == 1
                payments.append({
                    "payment_id": payment_id, "customer_id": customer,
                    "staff_id": 1 + payment_id % 2,
                    "rental_id": None if no_rental else rental_id,
                    "amount": decimal.Decimal(f"{month}.{n}9"),
                    "reference": f"mette-ref-{month}-{n}" if customer == 1 else f"ref {payment_id}",
                    "payment_date": at(month, day_of(customer, month, n), 10 + customer),
                })  # fmt: skip
    mine = [p for p in payments if p["customer_id"] == 1]
    his = [p for p in payments if p["customer_id"] == 2]
    refunds = [
        {"refund_id": 1, "payment_date": mine[0]["payment_date"],
         "payment_id": mine[0]["payment_id"], "reason": "mette-refund 1"},
        {"refund_id": 2, "payment_date": his[2]["payment_date"],
         "payment_id": his[2]["payment_id"], "reason": "damaged disc"},
        {"refund_id": 3, "payment_date": mine[9]["payment_date"],
         "payment_id": mine[9]["payment_id"], "reason": "mette-refund 2"},
    ]  # fmt: skip
    return {"customer": customers, "staff": staff, "rental": rentals, "payment": payments,
            "refund": refunds}  # fmt: skip


ROWS = rows()
HER_PAYMENTS = [p for p in ROWS["payment"] if p["customer_id"] == 1]
assert len(HER_PAYMENTS) == 12
assert {p["payment_date"].month for p in HER_PAYMENTS} == set(MONTHS)


#: Declarative partitioning is PostgreSQL's: every test runs there only (no skip noise).
pytestmark = pytest.mark.parametrize("target_db", ["postgresql"], indirect=True)


@pytest.fixture(params=["partitions", "parent", "subpartitions"])
def pagila(request: pytest.FixtureRequest, target_db: TargetDb) -> Iterator[TargetDb]:
    """The pagila-shaped schema with its rows; foreign keys on the partitions or the parent."""
    if target_db.engine_name != "postgresql":
        pytest.skip("declarative partitioning (PARTITION BY RANGE): a PostgreSQL test")
    engine = target_db.engine()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(ddl(request.param))
            metadata = sa.MetaData()
            metadata.reflect(connection, only=list(ROWS))
            for name in ROWS:
                connection.execute(metadata.tables[name].insert(), ROWS[name])
    finally:
        engine.dispose()
    yield target_db


# --- reading it back ------------------------------------------------------------------


def dump(url: str) -> dict[str, dict[tuple, dict]]:
    """Every row of every table — the parent `payment` and each partition — by key."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            tables: dict[str, dict[tuple, dict]] = {}
            for table in metadata.tables.values():
                pk = list(table.primary_key.columns)
                tables[table.name] = {
                    tuple(row[c.name] for c in pk): dict(row)
                    for row in connection.execute(sa.select(table).order_by(*pk)).mappings()
                }
            return tables
    finally:
        engine.dispose()


def key_of(table: str, row: dict) -> tuple:
    if table == "payment":
        return (row["payment_date"], row["payment_id"])
    return (row[f"{table}_id"],)


def in_partition(name: str, row: dict) -> bool:
    """Does partition `name` hold payment `row`?"""
    when = row["payment_date"]
    if name in SUBPARTITIONS:
        return when.month == 6 and when.day in SUBPARTITIONS[name]
    return when.month == MONTHS[PARTITIONS.index(name)]


def with_partitions(
    tables: dict[str, dict[tuple, dict]], like: dict[str, dict[tuple, dict]]
) -> dict[str, dict[tuple, dict]]:
    """`tables` and what each partition (and subpartition) `like` has must hold."""
    partitions = [n for n in like if n in PARTITIONS or n in SUBPARTITIONS]
    return {
        **tables,
        **{
            name: {k: r for k, r in tables["payment"].items() if in_partition(name, r)}
            for name in partitions
        },
    }


def partitions_of(before: dict[str, dict[tuple, dict]]) -> list[str]:
    return [n for n in before if n in PARTITIONS or n in SUBPARTITIONS]


def assert_no_personal_value(*texts: str) -> None:
    for text in texts:
        for marker in MARKERS:
            assert marker not in text, marker


def assert_initial(before: dict[str, dict[tuple, dict]]) -> None:
    initial = {name: {key_of(name, r): r for r in table_rows} for name, table_rows in ROWS.items()}
    assert set(before) - set(SUBPARTITIONS) == {*ROWS, *PARTITIONS}
    assert before == with_partitions(initial, before)
    for name in [*PARTITIONS, *(n for n in SUBPARTITIONS if n in before)]:
        assert before[name], name  # every partition holds rows, hers among them
        assert any(r["customer_id"] == 1 for r in before[name].values()), name


def run_all(config: Path, tmp_path: Path) -> tuple[Path, dict, dict]:
    """Export, dry run, real erasure: return the export file and both documents."""
    return export_dry_run_erase(config, tmp_path, f"email={EMAIL}", MARKERS)


def her_keys(before: dict[str, dict[tuple, dict]]) -> dict[str, set[tuple]]:
    payments = {k for k, r in before["payment"].items() if r["customer_id"] == 1}
    return {
        "customer": {(1,)},
        "rental": {k for k, r in before["rental"].items() if r["customer_id"] == 1},
        "payment": payments,
        "refund": {k for k, r in before["refund"].items() if key_of("payment", r) in payments},
        "staff": set(),
    }


def assert_export(out: Path, before: dict[str, dict[tuple, dict]]) -> None:
    """The export lists `payment` (never a partition) with every one of her payments."""
    tables = exported_tables(out)
    assert set(tables) == {"customer", "rental", "payment", "refund"}
    for name, keys in her_keys(before).items():
        if not keys:
            continue
        expected = {
            k: {c: encode_value(v) for c, v in before[name][k].items()} for k in sorted(keys)
        }
        got = {tuple(key_of(name, r)): r for r in tables[name]}
        got = {
            (dt.datetime.fromisoformat(k[0]), k[1]) if name == "payment" else k: r
            for k, r in got.items()
        }
        assert got == expected, name
    assert len(tables["payment"]) == 12
    assert len(tables["refund"]) == 2


def config_text(body: str) -> str:
    return f"""
[subject]
root = "customer"
identifiers = {{ email = "email" }}
{body}
"""


CUSTOMER_AND_RENTAL = """
[subject.erase.rental]
columns = { delivery_note = "null" }
[subject.erase.customer]
columns = { first_name = "redact", last_name = "redact", email = "null" }
"""


def anonymised_customer(row: dict) -> dict:
    return {**row, "first_name": REDACTED, "last_name": REDACTED, "email": None}


def anonymised_rental(row: dict) -> dict:
    return {**row, "delivery_note": None}


# --- keep -------------------------------------------------------------------------------


def test_keep_keeps_every_payment_in_every_partition(
    pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    body = '[subject.erase.payment]\naction = "keep"\nbasis = "Bookkeeping Act"\n'
    config = write_config(tmp_path, config_text(body + CUSTOMER_AND_RENTAL), pagila.url,
                          monkeypatch)  # fmt: skip
    before = dump(pagila.url)
    assert_initial(before)
    hers = her_keys(before)

    out, dry, receipt = run_all(config, tmp_path)
    assert_export(out, before)

    # Her refunds are deleted (nothing refers to them); her payments stay, so do the
    # rentals and the customer row they refer to — anonymised.
    erased = {("refund", "deleted", 2), ("rental", "anonymised", 6),
              ("customer", "anonymised", 1)}  # fmt: skip
    kept = {("payment", 12, "Bookkeeping Act")}
    assert erased_and_kept(dry) == (erased, kept)
    assert erased_and_kept(receipt) == (erased, kept)
    assert all(not t["table"].startswith("payment_") for t in receipt["tables"])

    expected = dict(before)
    expected["refund"] = {k: r for k, r in before["refund"].items() if k not in hers["refund"]}
    expected["rental"] = {
        k: anonymised_rental(r) if k in hers["rental"] else r for k, r in before["rental"].items()
    }
    expected["customer"] = {
        k: anonymised_customer(r) if k in hers["customer"] else r
        for k, r in before["customer"].items()
    }
    after = dump(pagila.url)
    assert after == expected
    for name in partitions_of(before):  # every partition still holds her payments, untouched
        assert after[name] == before[name], name


def test_keep_until_a_rule_names_payment_and_the_date(
    pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    body = """
[[rules]]
id = "payment-delete"
table = "payment"
action = "delete"
after = "5 years"
since = "payment_date"
basis = "Bookkeeping Act §10"

[subject.erase.payment]
action = "keep"
rule = "payment-delete"
"""
    config = write_config(tmp_path, config_text(body + CUSTOMER_AND_RENTAL), pagila.url,
                          monkeypatch)  # fmt: skip
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 0, check.stdout + check.stderr
    before = dump(pagila.url)

    _out, dry, receipt = run_all(config, tmp_path)

    # Her last payment: 2022-06-20 11:00 UTC (13:00 in Copenhagen), plus five years.
    for document in (dry, receipt):
        assert document["kept"] == [
            {"database": "main", "table": "payment", "rows": 12, "basis": "Bookkeeping Act §10",
             "until": "2027-06-20", "rule": "payment-delete"}
        ]  # fmt: skip
    after = dump(pagila.url)
    assert after["payment"] == before["payment"]
    for name in partitions_of(before):
        assert after[name] == before[name], name


# --- anonymise --------------------------------------------------------------------------


def test_anonymise_changes_her_payments_in_every_partition_and_no_one_elses(
    pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    body = '[subject.erase.payment]\naction = "anonymise"\ncolumns = { reference = "null" }\n'
    config = write_config(tmp_path, config_text(body + CUSTOMER_AND_RENTAL), pagila.url,
                          monkeypatch)  # fmt: skip
    before = dump(pagila.url)
    assert_initial(before)
    hers = her_keys(before)

    out, dry, receipt = run_all(config, tmp_path)
    assert_export(out, before)

    erased = {("refund", "deleted", 2), ("payment", "anonymised", 12),
              ("rental", "anonymised", 6), ("customer", "anonymised", 1)}  # fmt: skip
    assert erased_and_kept(dry) == (erased, set())
    assert erased_and_kept(receipt) == (erased, set())

    expected = dict(before)
    expected["refund"] = {k: r for k, r in before["refund"].items() if k not in hers["refund"]}
    expected["payment"] = {
        k: {**r, "reference": None} if k in hers["payment"] else r
        for k, r in before["payment"].items()
    }
    expected["rental"] = {
        k: anonymised_rental(r) if k in hers["rental"] else r for k, r in before["rental"].items()
    }
    expected["customer"] = {
        k: anonymised_customer(r) if k in hers["customer"] else r
        for k, r in before["customer"].items()
    }
    after = dump(pagila.url)
    assert after == with_partitions(expected, before)
    for name in partitions_of(before):
        changed = {k for k in before[name] if after[name][k] != before[name][k]}
        assert changed == {k for k in before[name] if k in hers["payment"]}, name
        assert changed, name


# --- delete (the default) ---------------------------------------------------------------


def test_delete_removes_exactly_her_payments_from_every_partition(
    pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = write_config(tmp_path, config_text(""), pagila.url, monkeypatch)
    before = dump(pagila.url)
    assert_initial(before)
    hers = her_keys(before)

    out, dry, receipt = run_all(config, tmp_path)
    assert_export(out, before)

    erased = {("refund", "deleted", 2), ("payment", "deleted", 12),
              ("rental", "deleted", 6), ("customer", "deleted", 1)}  # fmt: skip
    assert erased_and_kept(dry) == (erased, set())
    assert erased_and_kept(receipt) == (erased, set())

    expected = {
        name: {k: r for k, r in table.items() if k not in hers[name]}
        for name, table in before.items()
        if name in hers
    }
    after = dump(pagila.url)
    assert after == with_partitions(expected, before)
    for name in partitions_of(before):
        if name != "payment_p2022_06_b":  # which holds only hers
            assert after[name], name  # the others' payments are all still there
        assert all(r["customer_id"] != 1 for r in after[name].values()), name
        assert after[name] == {k: r for k, r in before[name].items() if r["customer_id"] != 1}


def test_a_hold_on_one_payment_keeps_it_whatever_its_partition(
    pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A hold is placed on `payment` (the key says which row, hence which partition)."""
    config = write_config(tmp_path, config_text(CUSTOMER_AND_RENTAL), pagila.url, monkeypatch)
    before = dump(pagila.url)
    hers = her_keys(before)
    held = next(p for p in HER_PAYMENTS if p["payment_date"].month == 3)
    held_key = (held["payment_date"], held["payment_id"])
    add = run_cli("hold", "add", "-c", str(config), "-d", "main", "-t", "payment",
                  "-k", f"payment_date={held['payment_date'].isoformat()}",
                  "-k", f"payment_id={held['payment_id']}", "--reason", "case 2026-7")  # fmt: skip
    assert add.exit_code == 0, add.stdout + add.stderr

    _out, dry, receipt = run_all(config, tmp_path)

    # The held payment stays, so does its rental (anonymised) and the customer row.
    erased = {("refund", "deleted", 2), ("payment", "deleted", 11),
              ("rental", "deleted", 5), ("rental", "anonymised", 1),
              ("customer", "anonymised", 1)}  # fmt: skip
    kept = {("payment", 1, LEGAL_HOLD_BASIS)}
    assert erased_and_kept(dry) == (erased, kept)
    assert erased_and_kept(receipt) == (erased, kept)

    gone = {
        "refund": hers["refund"],
        "payment": hers["payment"] - {held_key},
        "rental": hers["rental"] - {(held["rental_id"],)},
    }
    expected = {
        name: {k: r for k, r in table.items() if k not in gone.get(name, set())}
        for name, table in before.items()
        if name in hers
    }
    expected["rental"][(held["rental_id"],)] = anonymised_rental(
        before["rental"][(held["rental_id"],)]
    )
    expected["customer"][(1,)] = anonymised_customer(before["customer"][(1,)])
    after = dump(pagila.url)
    assert after == with_partitions(expected, before)
    assert after["payment_p2022_03"][held_key] == before["payment_p2022_03"][held_key]


@pytest.mark.parametrize("pagila", ["partitions"], indirect=True)
def test_a_hold_on_a_partition_name_is_refused_naming_the_parent(
    pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = write_config(tmp_path, config_text(""), pagila.url, monkeypatch)
    held = HER_PAYMENTS[0]
    add = run_cli("hold", "add", "-c", str(config), "-d", "main", "-t", "payment_p2022_01",
                  "-k", f"payment_date={held['payment_date'].isoformat()}",
                  "-k", f"payment_id={held['payment_id']}", "--reason", "case 2026-7")  # fmt: skip
    assert add.exit_code == 2, add.stdout + add.stderr
    assert "payment_p2022_01 is a partition of payment; name payment" in add.stdout + add.stderr


# --- a reference from the partitioned table ----------------------------------------------

STAFF_CONFIG = """
[subject]
root = "staff"
identifiers = { email = "email" }

[[subject.references]]            # the staff member who took a payment is not its owner
table = "payment"
column = "staff_id"
"""


def test_a_reference_declared_on_payment_nulls_it_in_every_partition(
    pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Erasing a staff member: the customers' payments they took are other people's
    rows, in every partition; their `staff_id` is set to NULL, nothing else changes."""
    config = write_config(tmp_path, STAFF_CONFIG, pagila.url, monkeypatch)
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 0, check.stdout + check.stderr
    before = dump(pagila.url)
    assert_initial(before)
    taken = {k for k, r in before["payment"].items() if r["staff_id"] == 1}
    assert {k[0].month for k in taken} == set(MONTHS)

    out = tmp_path / "export.json"
    export = run_cli("export", "-c", str(config), "--subject", f"email={STAFF_EMAIL}",
                     "--out", str(out))  # fmt: skip
    assert export.exit_code == 0, export.stdout + export.stderr
    assert exported_tables(out) == {"staff": [encode_value_row(before["staff"][(1,)])]}

    dry = run_cli("erase", "-c", str(config), "--subject", f"email={STAFF_EMAIL}",
                  "--dry-run", "--json")  # fmt: skip
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    receipt = tmp_path / "receipt.json"
    real = run_cli("erase", "-c", str(config), "--subject", f"email={STAFF_EMAIL}",
                   "--receipt", str(receipt))  # fmt: skip
    assert real.exit_code == 0, real.stdout + real.stderr
    document = json.loads(receipt.read_text(encoding="utf-8"))
    assert_no_personal_value(dry.stdout, dry.stderr, real.stdout, real.stderr, json.dumps(document))
    references = [
        {"database": "main", "table": "payment", "columns": ["staff_id"],
         "referenced_table": "staff", "action": "nulled", "rows": len(taken)}
    ]  # fmt: skip
    for result in (dry.json(), document):
        assert erased_and_kept(result) == ({("staff", "deleted", 1)}, set())
        assert result["references"] == references

    expected = dict(before)
    expected["staff"] = {k: r for k, r in before["staff"].items() if k != (1,)}
    expected["payment"] = {
        k: {**r, "staff_id": None} if k in taken else r for k, r in before["payment"].items()
    }
    after = dump(pagila.url)
    assert after == with_partitions(expected, before)
    for name in partitions_of(before):
        assert {k for k in after[name] if after[name][k] != before[name][k]} == {
            k for k in before[name] if k in taken
        }, name


def encode_value_row(row: dict) -> dict:
    return {c: encode_value(v) for c, v in row.items()}


# --- the catalog ------------------------------------------------------------------------


def test_catalog_sees_one_table_and_one_key_per_foreign_key(pagila: TargetDb):
    engine = pagila.engine()
    try:
        with engine.connect() as connection:
            catalog = Catalog(connection)
            keys = sorted(
                (fk.child[1], fk.columns, fk.referred[1]) for fk in catalog.foreign_keys()
            )
            assert keys == [
                ("payment", ("customer_id",), "customer"),
                ("payment", ("rental_id",), "rental"),
                ("payment", ("staff_id",), "staff"),
                ("refund", ("payment_date", "payment_id"), "payment"),
                ("rental", ("customer_id",), "customer"),
            ]
            customer = catalog.table("customer")
            assert customer is not None
            refs = sorted((r.child.name, r.columns) for r in catalog.references_to(customer))
            assert refs == [("payment", ("customer_id",)), ("rental", ("customer_id",))]
            payment = catalog.table("payment")
            assert payment is not None
            assert catalog.foreign_key_columns(payment) == {"customer_id", "rental_id", "staff_id"}
            assert catalog.is_indexed(payment, "customer_id")
            assert catalog.is_indexed(payment, "rental_id")
            assert catalog.partition_parent("payment_p2022_03") == "payment"
            assert catalog.partition_parent("public.payment_p2022_03") == "public.payment"
            if "payment_p2022_06_a" in catalog.inspector.get_table_names():
                assert catalog.partition_parent("payment_p2022_06_a") == "payment"
                assert catalog.partition_parent("payment_p2022_06") == "payment"
            assert catalog.partition_parent("payment") is None
            assert catalog.partition_parent("customer") is None
            assert catalog.partition_parent("nosuch") is None
    finally:
        engine.dispose()


def test_check_passes_and_warns_of_no_missing_index(
    pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Indexes declared on every partition (pagila) index the partitioned table."""
    config = write_config(tmp_path, config_text(CUSTOMER_AND_RENTAL), pagila.url, monkeypatch)
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 0, check.stdout + check.stderr
    assert "no index" not in check.stdout + check.stderr
    assert "payment_p2022" not in check.stdout + check.stderr


# --- naming a partition in the config ----------------------------------------------------

PARTITION_NAMED = {
    "erase": (
        '[subject.erase.payment_p2022_01]\naction = "keep"\nbasis = "Bookkeeping Act"\n',
        "subject.erase.payment_p2022_01",
    ),
    "link": (
        '[[subject.links]]\ntable = "payment_p2022_01"\ncolumn = "reference"\n'
        'references = "customer.email"\n',
        "subject.links[0]",
    ),
    "link-references": (
        '[[subject.links]]\ntable = "refund"\ncolumn = "payment_id"\n'
        'references = "payment_p2022_01.payment_id"\n',
        "subject.links[0].references",
    ),
    "reference": (
        '[[subject.references]]\ntable = "payment_p2022_01"\ncolumn = "staff_id"\n',
        "subject.references[0]",
    ),
    "parents": ('parents = ["payment_p2022_01"]\n', "subject.parents"),
    "rule": (
        '[[rules]]\nid = "old-payments"\ntable = "payment_p2022_01"\naction = "delete"\n'
        'after = "5 years"\nsince = "payment_date"\n',
        "rules[0].table",
    ),
}


@pytest.mark.parametrize("pagila", ["partitions"], indirect=True)  # a name: one shape is enough
@pytest.mark.parametrize("case", sorted(PARTITION_NAMED))
def test_naming_a_partition_is_an_error_naming_the_parent(
    case: str, pagila: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    body, key = PARTITION_NAMED[case]
    config = write_config(tmp_path, config_text(body), pagila.url, monkeypatch)
    before = dump(pagila.url)
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 2, check.stdout + check.stderr
    output = check.stdout + check.stderr
    lines = [line for line in output.splitlines() if "is a partition of" in line]
    assert len(lines) == 1, output
    assert f"{key}: payment_p2022_01 is a partition of payment; name payment" in lines[0]

    if case != "rule":  # an erasure with it fails too (exit 2), nothing touched
        erase = run_cli("erase", "-c", str(config), "--subject", f"email={EMAIL}")
        assert erase.exit_code in (2, 3), erase.stdout + erase.stderr
        assert "is a partition of payment" in erase.stdout + erase.stderr
    assert dump(pagila.url) == before
