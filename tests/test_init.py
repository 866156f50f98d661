"""`gdpr-sweep init`: a draft config from a live schema, on every engine.

Three schemas shaped like common applications: an applicant-tracking system without
foreign keys (links found by name and by a count of matching values), a shop with
customers, orders, addresses, payment cards and support agents (a foreign key from an
agent into the customer is a reference between two people), and the demo schema. Every
personal column's rows hold a marker string; none may reach the draft or any output.

Each draft must parse, `check` must name exactly its TODOs (exit 2), and once the test
answers them (`after = "6 months"`, `basis = "some basis"`) `check` passes and
`plan --as-of 2026-06-01` runs.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.config import find_todos
from gdpr_sweep.demo.tables import demo_metadata
from tests.conftest import CliResult, TargetDb, run_cli

AS_OF = "2026-06-01"
T0 = dt.datetime(2024, 3, 1, 12, 0)

# --- (a) applicant tracking, no foreign keys -----------------------------------------------


def ats_schema() -> sa.MetaData:
    m = sa.MetaData()
    pk = {"primary_key": True, "autoincrement": False}
    sa.Table("candidate", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("first_name", sa.String(80)), sa.Column("last_name", sa.String(80)),
             sa.Column("email", sa.String(254), unique=True), sa.Column("phone", sa.String(30)),
             sa.Column("cpr", sa.String(11)), sa.Column("created_at", sa.DateTime, nullable=False),
             sa.Column("last_contact_at", sa.DateTime))  # fmt: skip
    sa.Table("job", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("title", sa.String(120), nullable=False), sa.Column("opened_on", sa.Date),
             sa.Column("closed_on", sa.Date))  # fmt: skip
    sa.Table("application", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("candidate_id", sa.Integer, nullable=False),
             sa.Column("job_id", sa.Integer, nullable=False),
             sa.Column("status", sa.String(20), nullable=False),
             sa.Column("applied_at", sa.DateTime, nullable=False),
             sa.Column("notes", sa.Text))  # fmt: skip
    sa.Table("interview", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("application_id", sa.Integer, nullable=False),
             sa.Column("held_at", sa.DateTime), sa.Column("interviewer_notes", sa.Text),
             sa.Column("score", sa.Integer))  # fmt: skip
    sa.Table("email_log", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("recipient_email", sa.String(254)),
             sa.Column("subject_line", sa.String(200)),
             sa.Column("sent_at", sa.DateTime, nullable=False))  # fmt: skip
    return m


ATS_ROWS = {
    "candidate": [
        {"id": i, "first_name": f"MRKfirst{i}", "last_name": f"MRKlast{i}",
         "email": f"mrk.cand{i}@example.dk", "phone": f"MRKph{i}", "cpr": f"MRKcpr{i}",
         "created_at": T0, "last_contact_at": None if i == 3 else T0}
        for i in (1, 2, 3)
    ],
    "job": [{"id": 10, "title": "Welder", "opened_on": T0.date(), "closed_on": None}],
    "application": [
        {"id": 100 + i, "candidate_id": i, "job_id": 10, "status": "open", "applied_at": T0,
         "notes": f"MRKappnote{i}"}
        for i in (1, 2)
    ],
    "interview": [{"id": 7, "application_id": 101, "held_at": T0, "interviewer_notes": "MRKiv",
                   "score": 4}],
    "email_log": [{"id": 1, "recipient_email": "mrk.cand1@example.dk", "subject_line": "Hi",
                   "sent_at": T0}],
}  # fmt: skip

# --- (b) a shop ------------------------------------------------------------------------------


def shop_schema() -> sa.MetaData:
    m = sa.MetaData()
    pk = {"primary_key": True, "autoincrement": False}
    sa.Table("address", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("street", sa.String(120), nullable=False),
             sa.Column("postal_code", sa.String(10)), sa.Column("city", sa.String(60)),
             sa.Column("created_at", sa.DateTime, nullable=False))  # fmt: skip
    sa.Table("payment_card", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("card_number", sa.String(19), unique=True, nullable=False),
             sa.Column("holder_name", sa.String(120)), sa.Column("expires_on", sa.Date),
             sa.Column("added_at", sa.DateTime, nullable=False))  # fmt: skip
    sa.Table("customer", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("name", sa.String(120), nullable=False),
             sa.Column("email", sa.String(254), unique=True, nullable=False),
             sa.Column("phone", sa.String(30)),
             sa.Column("address_id", sa.Integer, sa.ForeignKey("address.id")),
             sa.Column("created_at", sa.DateTime, nullable=False),
             sa.Column("last_order_at", sa.DateTime))  # fmt: skip
    sa.Table("support_agent", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("name", sa.String(120)), sa.Column("email", sa.String(254), nullable=False),
             sa.Column("hired_on", sa.Date, nullable=False),
             sa.Column("key_account_id", sa.Integer, sa.ForeignKey("customer.id")))  # fmt: skip
    sa.Table("orders", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False),
             sa.Column("shipping_address_id", sa.Integer, sa.ForeignKey("address.id")),
             sa.Column("payment_card_id", sa.Integer, sa.ForeignKey("payment_card.id")),
             sa.Column("ordered_at", sa.DateTime, nullable=False),
             sa.Column("total", sa.Numeric(10, 2), nullable=False),
             sa.Column("delivery_notes", sa.Text))  # fmt: skip
    sa.Table("product", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("title", sa.String(120), nullable=False),
             sa.Column("price", sa.Numeric(10, 2), nullable=False))  # fmt: skip
    sa.Table("order_line", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
             sa.Column("product_id", sa.Integer, sa.ForeignKey("product.id"), nullable=False),
             sa.Column("quantity", sa.Integer, nullable=False))  # fmt: skip
    return m


SHOP_ROWS = {
    "address": [{"id": i, "street": f"MRKstreet{i}", "postal_code": f"MRKpc{i}", "city": "Aarhus",
                 "created_at": T0} for i in (1, 2)],
    "payment_card": [{"id": 1, "card_number": "MRKcard1", "holder_name": "MRKholder1",
                      "expires_on": dt.date(2027, 1, 31), "added_at": T0}],
    "customer": [{"id": i, "name": f"MRKcust{i}", "email": f"mrk.cust{i}@example.dk",
                  "phone": None, "address_id": i, "created_at": T0, "last_order_at": T0}
                 for i in (1, 2)],
    "support_agent": [{"id": 1, "name": "MRKagent", "email": "mrk.agent@example.dk",
                       "hired_on": T0.date(), "key_account_id": 1}],
    "orders": [{"id": 1, "customer_id": 1, "shipping_address_id": 2, "payment_card_id": 1,
                "ordered_at": T0, "total": 10, "delivery_notes": "MRKdeliver"}],
    "product": [{"id": 1, "title": "Kettle", "price": 20}],
    "order_line": [{"id": 1, "order_id": 1, "product_id": 1, "quantity": 2}],
}  # fmt: skip

# --- (c) the demo schema, a marker in every text column --------------------------------------


def demo_rows(metadata: sa.MetaData) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for t, table in enumerate(metadata.sorted_tables):
        rows[table.name] = []
        for i in (1, 2):
            row: dict = {}
            for c, column in enumerate(table.columns):
                if column.primary_key or column.foreign_keys:
                    row[column.name] = i if column.primary_key else 1
                elif isinstance(column.type, sa.Boolean):
                    row[column.name] = False
                elif isinstance(column.type, sa.DateTime):
                    row[column.name] = T0
                elif isinstance(column.type, sa.Date):
                    row[column.name] = T0.date()
                elif isinstance(column.type, (sa.Integer, sa.Numeric)):
                    row[column.name] = 1
                else:
                    row[column.name] = f"MRK{t}x{c}x{i}"
            rows[table.name].append(row)
    return rows


MARKER = re.compile(r"(?i)mrk")


def no_marker(*texts: str) -> None:
    for text in texts:
        assert not MARKER.search(text), MARKER.search(text)


def init(target_db: TargetDb, tmp_path: Path, *extra: str) -> tuple[CliResult, Path]:
    out = tmp_path / "gdpr-sweep.toml"
    result = run_cli("init", "--url", target_db.url, "--out", str(out), *extra)
    assert result.exit_code == 0, result.stdout + result.stderr
    no_marker(result.stdout, result.stderr, out.read_text(encoding="utf-8"))
    return result, out


def answer(draft: Path) -> Path:
    """The draft with its TODOs answered (only after and basis are asked)."""
    text = draft.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^after = "TODO"', 'after = "6 months"', text)
    text = re.sub(r'(?m)^basis = "TODO"', 'basis = "some basis"', text)
    answered = draft.with_name("answered.toml")
    answered.write_text(text, encoding="utf-8")
    return answered


def check_names_only_todos(draft: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> dict:
    """Set the draft's url_env, run check: exit 2, one ✗ line per TODO and no other."""
    document = tomllib.loads(draft.read_text(encoding="utf-8"))
    for entry in document["databases"].values():
        if "url_env" in entry:
            monkeypatch.setenv(entry["url_env"], url)
    todos = find_todos(document)
    assert todos and all(re.fullmatch(r"rules\[\d+\]\.(after|basis)", k) for k in todos)
    result = run_cli("check", "-c", str(draft))
    assert result.exit_code == 2, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert [line.split(":")[0].removeprefix("✗ ") for line in errors] == todos
    assert 'still "TODO"' in result.stdout
    plan = run_cli("plan", "-c", str(draft), "--as-of", AS_OF)
    assert plan.exit_code == 2 and todos[0] in plan.stderr, plan.stderr
    return document


def passes(draft: Path) -> None:
    answered = answer(draft)
    check = run_cli("check", "-c", str(answered))
    assert check.exit_code == 0, check.stdout + check.stderr
    assert "✗" not in check.stdout
    plan = run_cli("plan", "-c", str(answered), "--as-of", AS_OF, "--json")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    no_marker(check.stdout, check.stderr, plan.stdout, plan.stderr)


def rules_by_table(document: dict) -> dict[str, dict]:
    return {rule["table"]: rule for rule in document["rules"]}


def test_applicant_tracking_without_foreign_keys(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_db.create(ats_schema(), ATS_ROWS)
    _result, draft = init(target_db, tmp_path)
    document = check_names_only_todos(draft, monkeypatch, target_db.url)
    subject = document["subject"]
    assert subject["root"] == "candidate"
    assert subject["identifiers"] == {"email": "email", "cpr": "cpr"}
    links = {(x["table"], x["column"], x["references"]) for x in subject["links"]}
    assert links == {
        ("application", "candidate_id", "candidate.id"),
        ("interview", "application_id", "application.id"),
        ("email_log", "recipient_email", "candidate.email"),
    }
    rules = rules_by_table(document)
    assert set(rules) == {"candidate", "application", "interview", "email_log"}
    assert rules["candidate"]["action"] == "delete"
    assert rules["candidate"]["since"] == "last_contact_at"
    assert rules["application"]["columns"] == {"notes": "null"}
    assert rules["interview"]["categories"] == ["free-text"]
    assert set(rules["candidate"]["categories"]) == {"name", "contact", "identity-number"}
    assert "1 of 3 sampled rows are NULL" in draft.read_text(encoding="utf-8")
    passes(draft)


def test_shop_with_addresses_cards_and_support_agents(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_db.create(shop_schema(), SHOP_ROWS)
    _result, draft = init(target_db, tmp_path)
    document = check_names_only_todos(draft, monkeypatch, target_db.url)
    subject = document["subject"]
    assert subject["root"] == "customer"
    assert subject["identifiers"] == {"email": "email"}
    assert sorted(subject["parents"]) == ["address", "payment_card"]
    assert subject["references"] == [
        {"table": "support_agent", "column": "key_account_id", "action": "null"}
    ]
    assert "links" not in subject
    rules = rules_by_table(document)
    assert set(rules) == {"address", "payment_card", "customer", "support_agent", "orders"}
    assert rules["orders"]["action"] == "anonymise"
    assert rules["orders"]["columns"] == {"delivery_notes": "null"}
    assert rules["address"]["columns"] == {"street": "redact", "postal_code": "null"}
    assert rules["payment_card"]["since"] == "expires_on"
    assert rules["payment_card"]["categories"] == ["name", "financial"]
    # Orders stay (anonymised) and refer to their customer with no ON DELETE action: a
    # delete would hold every customer with an order back forever, e-mail and all.
    assert rules["customer"]["action"] == "anonymise"
    assert rules["customer"]["columns"] == {"name": "redact", "email": "hash", "phone": "null"}
    passes(draft)


def test_demo_schema(target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metadata = demo_metadata()
    target_db.create(metadata, demo_rows(metadata))
    _result, draft = init(target_db, tmp_path)
    document = check_names_only_todos(draft, monkeypatch, target_db.url)
    assert document["subject"]["root"] == "candidate"
    rules = rules_by_table(document)
    assert rules["counselling_case"]["since"] == "course_ended_on"
    assert rules["counselling_case"]["columns"]["birth_date"] == "year"
    assert "health" in rules["counselling_case"]["categories"]
    assert rules["customer"]["cascade"] == ["contact_person"]
    assert rules["newsletter_signup"]["since"] == "unsubscribed_at"
    assert "cctv_recording" not in rules and "engagement" not in rules
    passes(draft)


# --- the command line -------------------------------------------------------------------------


def sqlite_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    TargetDb("sqlite", url).create(shop_schema(), SHOP_ROWS)
    return url


def test_an_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path)
    out = tmp_path / "gdpr-sweep.toml"
    out.write_text("# mine\n", encoding="utf-8")
    refused = run_cli("init", "--url", url, "--out", str(out))
    assert refused.exit_code == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and "--force" in refused.stderr
    assert out.read_text(encoding="utf-8") == "# mine\n"
    replaced = run_cli("init", "--url", url, "--out", str(out), "--force")
    assert replaced.exit_code == 0, replaced.stderr
    assert 'root = "customer"' in out.read_text(encoding="utf-8")


def test_default_out_and_sqlite_url_relative_to_it(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path)  # the tests run in tmp_path
    result = run_cli("init", "--url", url)
    assert result.exit_code == 0, result.stderr
    document = tomllib.loads((tmp_path / "gdpr-sweep.toml").read_text(encoding="utf-8"))
    assert document["databases"] == {"shop": {"url": "sqlite:///shop.db"}}
    assert result.stderr == ""


@pytest.mark.parametrize(
    "args",
    [(), ("--url", "sqlite:///a.db", "--url-env", "X"), ("--url-env", "NOT_SET_ANYWHERE")],
)
def test_url_options_are_checked(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli("init", *args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--url" in result.stderr
    assert not (tmp_path / "gdpr-sweep.toml").exists()


def test_url_env_is_written_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_URL", sqlite_db(tmp_path))
    result = run_cli("init", "--url-env", "SHOP_URL")
    assert result.exit_code == 0, result.stderr
    document = tomllib.loads((tmp_path / "gdpr-sweep.toml").read_text(encoding="utf-8"))
    assert document["databases"] == {"shop": {"url_env": "SHOP_URL"}}


def test_schema_only_on_postgresql(tmp_path: Path) -> None:
    result = run_cli("init", "--url", sqlite_db(tmp_path), "--schema", "hr")
    assert result.exit_code == 2 and "--schema" in result.stderr
    assert not (tmp_path / "gdpr-sweep.toml").exists()


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    result = run_cli("init", "--url", f"sqlite:///{tmp_path / 'nope.db'}")
    assert result.exit_code == 3 and "no SQLite file" in result.stderr
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "gdpr-sweep.toml").exists()


@pytest.mark.parametrize("target_db", ["postgresql", "mariadb"], indirect=True)
def test_a_password_in_the_url_is_never_written(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_db.create(shop_schema(), SHOP_ROWS)
    password = "Pw-never-written-42"
    url = sa.engine.make_url(target_db.url).set(password=password)
    result = run_cli("init", "--url", url.render_as_string(hide_password=False))
    out = tmp_path / "gdpr-sweep.toml"
    assert password not in result.stdout + result.stderr
    if result.exit_code == 0:  # the server takes any password (trust authentication)
        text = out.read_text(encoding="utf-8")
        assert password not in text
        (entry,) = tomllib.loads(text)["databases"].values()
        assert set(entry) == {"url_env"}
        assert f"set {entry['url_env']} to the database URL" in result.stderr
    else:  # refused: one line, the password masked, no file
        assert result.exit_code == 3 and len(result.stderr.strip().splitlines()) == 1
        assert not out.exists()


@pytest.mark.parametrize("target_db", ["postgresql"], indirect=True)
def test_postgresql_schemas(target_db: TargetDb, tmp_path: Path) -> None:
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA hr")
        connection.exec_driver_sql(
            "CREATE TABLE hr.employee (id integer PRIMARY KEY, email varchar(254) NOT NULL, "
            "notes text, hired_on date NOT NULL)"
        )
    engine.dispose()
    result = run_cli("init", "--url", target_db.url, "--schema", "hr")
    assert result.exit_code == 0, result.stderr
    document = tomllib.loads((tmp_path / "gdpr-sweep.toml").read_text(encoding="utf-8"))
    assert [r["table"] for r in document["rules"]] == ["hr.employee"]
    assert document["subject"]["root"] == "hr.employee"
    missing = run_cli("init", "--url", target_db.url, "--schema", "nope", "--force")
    assert missing.exit_code == 2 and "no schema 'nope'" in missing.stderr


# --- TODO values in any config -----------------------------------------------------------------


def test_todo_values_are_refused_by_their_key(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path)
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(
        f'[databases.main]\nurl = "{url}"\n\n[[rules]]\nid = "r"\ntable = "orders"\n'
        'action = "delete"\nafter = "1 year"\nsince = "ordered_at"\nbasis = "todo"\n'
        'description = " TODO "\nonly = { delivery_notes = "TODO" }\n'
        'categories = ["financial", "TODO"]\n',
        encoding="utf-8",
    )
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 2
    keys = [line.split(":")[0][2:] for line in check.stdout.splitlines() if line.startswith("✗")]
    assert keys == ["rules[0].basis", "rules[0].description", "rules[0].categories[1]"]
    plan = run_cli("plan", "-c", str(config))
    assert plan.exit_code == 2
    assert plan.stderr.startswith('error: rules[0].basis: still "TODO"')
    assert "and 2 more" in plan.stderr


def test_categories_is_a_list_of_names(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path)
    config = tmp_path / "gdpr-sweep.toml"
    base = (
        f'[databases.main]\nurl = "{url}"\n\n[[rules]]\nid = "r"\ntable = "orders"\n'
        'action = "delete"\nafter = "1 year"\nsince = "ordered_at"\n'
    )
    config.write_text(base + 'categories = ["financial", "free-text"]\n', encoding="utf-8")
    assert run_cli("check", "-c", str(config)).exit_code == 0
    config.write_text(base + "categories = [1]\n", encoding="utf-8")
    bad = run_cli("check", "-c", str(config))
    assert bad.exit_code == 2 and "rules[0].categories" in bad.stderr


def odd_schema() -> sa.MetaData:
    m = sa.MetaData()
    sa.Table("order", m, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("E-mail", sa.String(254)), sa.Column("e_mail", sa.String(254)),
             sa.Column("First Name", sa.String(80), nullable=False),
             sa.Column("Created At", sa.DateTime, nullable=False))  # fmt: skip
    return m


def test_names_that_need_quoting(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = {"order": [{"id": 1, "E-mail": "mrk@x.dk", "e_mail": "mrk2@x.dk",
                       "First Name": "MRKfirst", "Created At": T0}]}  # fmt: skip
    target_db.create(odd_schema(), rows)
    _result, draft = init(target_db, tmp_path)
    document = check_names_only_todos(draft, monkeypatch, target_db.url)
    assert document["subject"]["identifiers"] == {"E-mail": "E-mail", "e_mail": "e_mail"}
    (rule,) = document["rules"]
    assert rule["id"] == "order-delete" and rule["since"] == "Created At"
    passes(draft)


def people_schema() -> sa.MetaData:
    m = sa.MetaData()
    pk = {"primary_key": True, "autoincrement": False}
    sa.Table("employee", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("full_name", sa.String(120), nullable=False),
             sa.Column("email", sa.String(254), unique=True, nullable=False),
             sa.Column("manager_id", sa.Integer, sa.ForeignKey("employee.id")),
             sa.Column("salary", sa.Integer, nullable=False),
             sa.Column("left_on", sa.Date))  # fmt: skip
    sa.Table("badge", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("owner_email", sa.String(254), sa.ForeignKey("employee.email")),
             sa.Column("issued_at", sa.DateTime, nullable=False))  # fmt: skip
    sa.Table("visitor_log", m, sa.Column("visitor_name", sa.String(120)),
             sa.Column("visited_at", sa.DateTime))  # fmt: skip
    return m


def test_what_cannot_be_deleted_is_anonymised_and_what_fits_nothing_is_said(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = {
        "employee": [{"id": 1, "full_name": "MRKboss", "email": "mrk.boss@x.dk",
                      "manager_id": None, "salary": 1, "left_on": None},
                     {"id": 2, "full_name": "MRKstaff", "email": "mrk.staff@x.dk",
                      "manager_id": 1, "salary": 2, "left_on": T0.date()}],
        "badge": [{"id": 1, "owner_email": "mrk.staff@x.dk", "issued_at": T0}],
        "visitor_log": [{"visitor_name": "MRKvisitor", "visited_at": T0}],
    }  # fmt: skip
    target_db.create(people_schema(), rows)
    _result, draft = init(target_db, tmp_path)
    document = check_names_only_todos(draft, monkeypatch, target_db.url)
    (rule,) = document["rules"]
    # Rows refer to each other without ON DELETE: never deleted. The e-mail is referenced
    # by another table's key and the salary is a NOT NULL number: nothing fits them.
    assert rule["action"] == "anonymise" and rule["columns"] == {"full_name": "redact"}
    assert rule["since"] == "left_on"
    text = draft.read_text(encoding="utf-8")
    assert "# email: an e-mail address: no strategy fits" in text
    assert "#   visitor_log: personal-looking columns but no primary key" in text
    passes(draft)


def _email_type() -> sa.types.TypeEngine:
    """Text that compares case-insensitively where the engine lets a column say so."""
    return (
        sa.String(100)
        .with_variant(sa.String(100, collation="NOCASE"), "sqlite")
        .with_variant(sa.String(100, collation="utf8mb4_general_ci"), "mysql", "mariadb")
    )


def test_a_link_is_suggested_only_for_exactly_equal_values(
    target_db: TargetDb, tmp_path: Path
) -> None:
    """Under a case-insensitive collation `Anna.MRK@x.dk` = `anna.mrk@x.dk`, but the sweep
    matches exactly (matching.equals): such a column is no link to the person."""
    m = sa.MetaData()
    pk = {"primary_key": True, "autoincrement": False}
    sa.Table(
        "member",
        m,
        sa.Column("id", sa.Integer, **pk),
        sa.Column("email", _email_type(), nullable=False),
        sa.Column("cpr", sa.String(11)),
        sa.Column("joined_at", sa.DateTime),
    )
    for name in ("newsletter", "reminder"):
        sa.Table(name, m, sa.Column("id", sa.Integer, **pk),
                 sa.Column("recipient_email", _email_type()),
                 sa.Column("sent_at", sa.DateTime))  # fmt: skip
    emails = [f"Person{i}.MRK@x.dk" for i in range(1, 6)]
    target_db.create(m, {
        "member": [{"id": i, "email": e, "cpr": f"MRK{i}", "joined_at": T0}
                   for i, e in enumerate(emails, 1)],
        "newsletter": [{"id": i, "recipient_email": e.lower(), "sent_at": T0}
                       for i, e in enumerate(emails, 1)],
        "reminder": [{"id": i, "recipient_email": e, "sent_at": T0}
                     for i, e in enumerate(emails, 1)],
    })  # fmt: skip
    _result, draft = init(target_db, tmp_path)
    subject = tomllib.loads(draft.read_text(encoding="utf-8"))["subject"]
    assert subject["root"] == "member"
    linked = {(link["table"], link["column"]) for link in subject.get("links", [])}
    assert ("reminder", "recipient_email") in linked
    assert ("newsletter", "recipient_email") not in linked
