"""`gdpr-sweep init` against hostile schemas: what must not crash, leak or fail at night.

- a generated column looks personal: the draft gives it no strategy (an UPDATE that sets
  it fails on every engine), and `check` refuses one written by hand;
- a table or column whose name a config cannot hold (a dot, a newline): never a crash
  (exit 1), never silently left out: the table is listed as not drafted, the column
  makes the rule a delete;
- a CHECK constraint holding a value: `check`'s warning names the constraint, never
  its text;
- a table init may not read (no SELECT privilege): still drafted, never exit 1;
- `--out` a directory, a URL of an engine gdpr-sweep does not sweep: exit 2, one line;
- a column (or database) named `only`: its TODOs are still found.

Every draft is answered and must pass `check` and then `run` far in the future.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.config import find_todos
from tests.conftest import TargetDb, run_cli

FAR = "2099-01-01"
KEY = {"GDPR_SWEEP_KEY": "0123456789abcdef0123456789"}
MARKER = re.compile(r"(?i)mrk")


def no_marker(*texts: str) -> None:
    for text in texts:
        assert not MARKER.search(text), text


def draft(target_db: TargetDb, tmp_path: Path) -> Path:
    out = tmp_path / "gdpr-sweep.toml"
    result = run_cli("init", "--url", target_db.url, "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    no_marker(result.stdout, result.stderr, out.read_text(encoding="utf-8"))
    return out


def answered(out: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> Path:
    text = out.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^after = "TODO"', 'after = "1 day"', text)
    text = re.sub(r'(?m)^basis = "TODO"', 'basis = "a basis"', text)
    path = out.with_name("answered.toml")
    path.write_text(text, encoding="utf-8")
    for entry in tomllib.loads(text)["databases"].values():
        if "url_env" in entry:
            monkeypatch.setenv(entry["url_env"], url)
    return path


def check_and_run(config: Path) -> str:
    """check passes and run far in the future completes; their output (for markers)."""
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 0, check.stdout + check.stderr
    run = run_cli("run", "-c", str(config), "--as-of", FAR, "--force", env=KEY)
    assert run.exit_code == 0, run.stdout + run.stderr
    return check.stdout + check.stderr + run.stdout + run.stderr


def rules_by_table(path: Path) -> dict[str, dict]:
    return {r["table"]: r for r in tomllib.loads(path.read_text(encoding="utf-8"))["rules"]}


# --- generated columns -----------------------------------------------------------------


def generated_schema() -> sa.MetaData:
    m = sa.MetaData()
    sa.Table("member", m, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("status", sa.String(20)), sa.Column("first_name", sa.String(80)),
             sa.Column("full_name", sa.String(80), sa.Computed("upper(first_name)",
                                                               persisted=True)),
             sa.Column("created_at", sa.DateTime, nullable=False))  # fmt: skip
    return m


def test_a_generated_column_gets_no_strategy_and_the_draft_runs(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    target_db.create(generated_schema(), {"member": [
        {"id": 1, "status": "s", "first_name": "mrkname", "created_at": dt.datetime(2020, 1, 1)}
    ]})  # fmt: skip
    out = draft(target_db, tmp_path)
    rule = rules_by_table(out)["member"]
    assert rule["action"] == "anonymise"
    assert rule["columns"] == {"first_name": "null"}  # full_name follows it
    assert "# full_name: a person's name: a generated column" in out.read_text(encoding="utf-8")
    config = answered(out, monkeypatch, target_db.url)
    no_marker(check_and_run(config))
    with target_db.engine().connect() as connection:
        row = connection.exec_driver_sql("SELECT first_name, full_name FROM member").one()
    assert tuple(row) == (None, None)


def test_check_refuses_a_strategy_on_a_generated_column(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_db.create(generated_schema())
    out = draft(target_db, tmp_path)
    config = answered(out, monkeypatch, target_db.url)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('first_name = "null"', 'full_name = "null"'), encoding="utf-8")
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 2, check.stdout + check.stderr
    assert "full_name: is a generated column" in check.stdout


# --- names a config cannot hold ------------------------------------------------------------


def unnameable_schema(newlines: bool) -> sa.MetaData:
    m = sa.MetaData()
    pk = {"primary_key": True, "autoincrement": False}
    sa.Table("dot.ted", m, sa.Column("id", sa.Integer, **pk), sa.Column("email", sa.String(254)),
             sa.Column("created_at", sa.DateTime))  # fmt: skip
    sa.Table("card", m, sa.Column("id", sa.Integer, **pk), sa.Column("status", sa.String(20)),
             sa.Column("e.mail", sa.String(254)), sa.Column("phone", sa.String(40)),
             sa.Column("created.at", sa.DateTime), sa.Column("issued_at", sa.DateTime))  # fmt: skip
    if newlines:
        sa.Table("new\nline", m, sa.Column("id", sa.Integer, **pk),
                 sa.Column("email", sa.String(254)),
                 sa.Column("created_at", sa.DateTime))  # fmt: skip
        sa.Table("note", m, sa.Column("id", sa.Integer, **pk),
                 sa.Column("status", sa.String(20)), sa.Column("first\nname", sa.String(80)),
                 sa.Column("sent_at", sa.DateTime))  # fmt: skip
    return m


def test_names_a_config_cannot_hold_are_said_never_a_crash(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newlines = target_db.engine_name != "mariadb"  # MariaDB refuses them itself
    target_db.create(unnameable_schema(newlines))
    out = draft(target_db, tmp_path)
    text = out.read_text(encoding="utf-8")
    assert "#   'dot.ted': a config cannot name it" in text
    rules = rules_by_table(out)
    assert "dot.ted" not in rules
    # The e-mail column cannot be written in [rules.columns]: the rows are deleted, and
    # its dotted clock is never `since`.
    assert rules["card"]["action"] == "delete" and rules["card"]["since"] == "issued_at"
    if newlines:
        assert "#   'new\\nline': a config cannot name it" in text
        assert rules["note"]["action"] == "delete"
    check_and_run(answered(out, monkeypatch, target_db.url))


# --- values in CHECK constraints -----------------------------------------------------------


def test_a_check_constraints_text_never_reaches_check_output(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    m = sa.MetaData()
    sa.Table("contact", m, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("status", sa.String(20)), sa.Column("phone", sa.String(40), nullable=False),
             sa.Column("birth_date", sa.Date, nullable=False),
             sa.Column("created_at", sa.DateTime, nullable=False),
             # A value in it, and another column: the engine cannot test the new value.
             sa.CheckConstraint("phone <> '+45 MRK 1234' OR status IS NOT NULL", name="ck_phone"),
             sa.CheckConstraint("birth_date >= '1900-06-01'", name="ck_born"))  # fmt: skip
    target_db.create(m, {"contact": [
        {"id": 1, "status": "s", "phone": "12", "birth_date": dt.date(1980, 5, 5),
         "created_at": dt.datetime(2020, 1, 1)}]})  # fmt: skip
    out = draft(target_db, tmp_path)
    assert rules_by_table(out)["contact"]["columns"] == {"phone": "redact", "birth_date": "year"}
    config = answered(out, monkeypatch, target_db.url)
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 0, check.stdout + check.stderr
    no_marker(check.stdout, check.stderr)
    assert "CHECK constraint ck_phone mentions it" in check.stdout
    # year writes a new date too (1900-07-01 becomes 1900-01-01): the constraint is said.
    assert "CHECK constraint ck_born mentions it" in check.stdout


# --- privileges ------------------------------------------------------------------------------


@pytest.mark.parametrize("target_db", ["postgresql"], indirect=True)
def test_a_table_init_may_not_read_is_still_drafted(target_db: TargetDb, tmp_path: Path) -> None:
    m = sa.MetaData()
    for name in ("hidden", "shown"):
        sa.Table(name, m, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("email", sa.String(254)),
                 sa.Column("created_at", sa.DateTime))  # fmt: skip
    target_db.create(m)
    url = sa.engine.make_url(target_db.url)
    role = "gdpr_sweep_h27_reader"
    with target_db.engine().begin() as connection:
        exists = connection.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'")
        if exists.first() is None:
            connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
        connection.exec_driver_sql(f"GRANT SELECT ON shown TO {role}")
        connection.exec_driver_sql(f"REVOKE SELECT ON hidden FROM {role}")
    out = tmp_path / "gdpr-sweep.toml"
    reader = url.set(username=role, password=None).render_as_string(hide_password=False)
    result = run_cli("init", "--url", reader, "--out", str(out))
    try:
        assert result.exit_code == 0, result.stdout + result.stderr
        assert set(rules_by_table(out)) == {"hidden", "shown"}
        assert "its rows could not be read" in out.read_text(encoding="utf-8")
    finally:
        with target_db.engine().begin() as connection:
            connection.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            connection.exec_driver_sql(f"REVOKE USAGE ON SCHEMA public FROM {role}")


# --- the command line ------------------------------------------------------------------------


def _sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    TargetDb("sqlite", url).create(generated_schema())
    return url


def test_out_a_directory_says_so_with_or_without_force(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    for extra in ((), ("--force",)):
        result = run_cli("init", "--url", url, "--out", str(tmp_path), *extra)
        assert result.exit_code == 2
        assert result.stderr.strip().endswith("is a directory"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("url", ["bogus://x", "oracle://u:mrkpw@h/db"])
def test_an_engine_gdpr_sweep_does_not_sweep_is_bad_usage(tmp_path: Path, url: str) -> None:
    result = run_cli("init", "--url", url, "--out", str(tmp_path / "x.toml"))
    assert result.exit_code == 2, result.stderr
    assert "is no engine gdpr-sweep sweeps" in result.stderr
    no_marker(result.stdout, result.stderr)
    assert not (tmp_path / "x.toml").exists()


# --- TODOs -------------------------------------------------------------------------------------


def test_todos_under_a_key_named_only_are_found() -> None:
    data = {
        "databases": {"only": {"url_env": "TODO"}},
        "rules": [
            {"id": "r", "only": {"status": "todo"}, "columns": {"only": " todo "}},
        ],
        "subject": {"links": [{"table": "t", "only": {"kind": "TODO"}}]},
    }
    assert find_todos(data) == ["databases.only.url_env", "rules[0].columns.only"]


def test_check_lists_a_todo_in_a_column_named_only(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[databases.main]\nurl = "{url}"\n\n[[rules]]\nid = "r"\ntable = "member"\n'
        'action = "anonymise"\nafter = "1 year"\nsince = "created_at"\nbasis = "b"\n'
        '[rules.columns]\nonly = "TODO"\n',
        encoding="utf-8",
    )
    check = run_cli("check", "-c", str(config))
    assert check.exit_code == 2
    assert '✗ rules[0].columns.only: still "TODO"' in check.stdout


# --- big tables ------------------------------------------------------------------------------


def test_a_link_is_found_from_a_bounded_sample_of_values(tmp_path: Path) -> None:
    """Each sampled value is looked up in the other table (maybe without an index): the
    sample is the documented 1,000 values, not the 10,000 rows NULLs are counted in."""
    import datetime as dt

    m = sa.MetaData()
    pk = {"primary_key": True, "autoincrement": False}
    sa.Table("candidate", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("email", sa.String(254)), sa.Column("created_at", sa.DateTime))  # fmt: skip
    sa.Table("mail_log", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("recipient_email", sa.String(254)),
             sa.Column("sent_at", sa.DateTime))  # fmt: skip
    t0 = dt.datetime(2020, 1, 1)
    rows = {
        "candidate": [{"id": i, "email": f"p{i}@x.dk", "created_at": t0} for i in range(1500)],
        "mail_log": [
            {"id": i, "recipient_email": f"p{i}@x.dk", "sent_at": t0} for i in range(1500)
        ],
    }
    url = f"sqlite:///{tmp_path / 'big.db'}"
    TargetDb("sqlite", url).create(m, rows)
    out = draft(TargetDb("sqlite", url), tmp_path)
    assert "1,000 of 1,000 sampled values are candidate.email" in out.read_text(encoding="utf-8")


def test_a_relative_sqlite_url_in_url_env_is_read_as_the_config_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config takes a relative SQLite path from its own directory: init must draft
    the file check will open, not one beside the working directory."""
    monkeypatch.chdir(tmp_path)
    TargetDb("sqlite", f"sqlite:///{tmp_path / 'app.db'}").create(generated_schema())
    (tmp_path / "conf").mkdir()
    monkeypatch.setenv("APP_DB_URL", "sqlite:///app.db")
    out = tmp_path / "conf" / "gdpr-sweep.toml"
    result = run_cli("init", "--url-env", "APP_DB_URL", "--out", str(out))
    assert result.exit_code == 3 and "conf/app.db" in result.stderr, result.stderr
    assert not out.exists()
    monkeypatch.setenv("APP_DB_URL", "sqlite:///../app.db")
    result = run_cli("init", "--url-env", "APP_DB_URL", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    check_and_run(answered(out, monkeypatch, "sqlite:///../app.db"))


@pytest.mark.parametrize(
    ("database", "variable"), [("1shop", "DB_1SHOP_DB_URL"), ("my-shop", "MY_SHOP_DB_URL")]
)
def test_the_variable_init_asks_for_is_one_a_shell_can_set(database: str, variable: str) -> None:
    from gdpr_sweep.draft import draft_source

    source = draft_source(f"postgresql+psycopg://u:pw@h/{database}", None, Path("x.toml"))
    assert source.env_to_set == source.url_env == variable
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable)


# --- a column's own CHECK (MariaDB: also every JSON column's json_valid) ------------------


def test_a_columns_own_check_constraint_is_tested(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ip_address VARCHAR(45) CHECK (...)` and a JSON column (MariaDB: LONGTEXT with
    CHECK (json_valid(...))): MariaDB's reflection missed both, so check passed a
    placeholder the engine refuses, and the run failed every night."""
    import datetime as dt

    m = sa.MetaData()
    pk = {"primary_key": True, "autoincrement": False}
    sa.Table("visit", m, sa.Column("id", sa.Integer, **pk), sa.Column("status", sa.String(20)),
             sa.Column("ip_address", sa.String(45), sa.CheckConstraint("length(ip_address) > 12"),
                       nullable=False),
             sa.Column("created_at", sa.DateTime, nullable=False))  # fmt: skip
    sa.Table("profile", m, sa.Column("id", sa.Integer, **pk), sa.Column("status", sa.String(20)),
             sa.Column("home_address", sa.JSON, nullable=False),
             sa.Column("created_at", sa.DateTime, nullable=False))  # fmt: skip
    t0 = dt.datetime(2020, 1, 1)
    target_db.create(m, {
        "visit": [{"id": 1, "status": "s", "ip_address": "2001:db8::1:2:3", "created_at": t0}],
        "profile": [{"id": 1, "status": "s", "home_address": {"street": "x"}, "created_at": t0}],
    })  # fmt: skip
    out = draft(target_db, tmp_path)
    rules = rules_by_table(out)
    assert rules["visit"]["columns"] == {"ip_address": "hash"}  # the placeholder is too short
    assert rules["profile"]["action"] == "delete"  # no placeholder is JSON
    check_and_run(answered(out, monkeypatch, target_db.url))


@pytest.mark.parametrize("name", ["we?ird.db", "pc%41.db", "sp ace#1.db"])
def test_a_sqlite_file_with_url_characters_is_the_file_check_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from urllib.parse import quote

    monkeypatch.chdir(tmp_path)
    TargetDb("sqlite", "sqlite:///" + quote(str(tmp_path / name))).create(generated_schema())
    assert (tmp_path / name).exists()
    out = tmp_path / "gdpr-sweep.toml"
    result = run_cli("init", "--url", "sqlite:///" + quote(name), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    check_and_run(answered(out, monkeypatch, ""))


def test_out_is_never_the_sqlite_database_itself(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    database = tmp_path / "app.db"
    before = database.read_bytes()
    result = run_cli("init", "--url", url, "--out", str(database), "--force")
    assert result.exit_code == 2 and "is the database itself" in result.stderr, result.stderr
    assert database.read_bytes() == before


def test_an_ip_address_is_an_online_identifier_not_a_postal_address(tmp_path: Path) -> None:
    m = sa.MetaData()
    sa.Table("login", m, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("ip_address", sa.String(45)), sa.Column("ipv6_addr", sa.String(45)),
             sa.Column("at", sa.DateTime))  # fmt: skip
    url = f"sqlite:///{tmp_path / 'app.db'}"
    TargetDb("sqlite", url).create(m)
    out = draft(TargetDb("sqlite", url), tmp_path)
    assert rules_by_table(out)["login"]["categories"] == ["online-identifier"]
    assert "personal-looking columns ip_address, ipv6_addr" in out.read_text(encoding="utf-8")


# --- a deleted parent that rows which stay still reference ---------------------------------


def test_a_due_person_referenced_by_kept_rows_loses_their_personal_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    m = sa.MetaData()
    pk = {"primary_key": True, "autoincrement": False}
    sa.Table("customer", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("email", sa.String(254)), sa.Column("full_name", sa.String(80)),
             sa.Column("created_at", sa.DateTime, nullable=False))  # fmt: skip
    sa.Table("purchase", m, sa.Column("id", sa.Integer, **pk),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False),
             sa.Column("total", sa.Integer), sa.Column("delivery_address", sa.String(200)),
             sa.Column("placed_at", sa.DateTime, nullable=False))  # fmt: skip
    t0 = dt.datetime(2020, 1, 1)
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    TargetDb("sqlite", url).create(m, {
        "customer": [{"id": 1, "email": "mrk@x.dk", "full_name": "mrk", "created_at": t0}],
        "purchase": [{"id": 1, "customer_id": 1, "total": 5, "delivery_address": "mrk",
                      "placed_at": t0}],
    })  # fmt: skip
    out = draft(TargetDb("sqlite", url), tmp_path)
    check_and_run(answered(out, monkeypatch, url))
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        left = connection.exec_driver_sql(
            "SELECT count(*) FROM customer WHERE email IS NOT NULL OR full_name IS NOT NULL"
        ).scalar()
    engine.dispose()
    assert left == 0


def test_a_mariadb_url_without_a_database_is_bad_usage(tmp_path: Path) -> None:
    result = run_cli("init", "--url", "mysql+pymysql://u:mrkpw@127.0.0.1:1/", "--out",
                     str(tmp_path / "x.toml"))  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert "name the database" in result.stderr
    no_marker(result.stdout, result.stderr)
