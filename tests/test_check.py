"""`check` (and the same validation inside `plan`) against real reflected schemas."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import TargetDb, run_cli, write_config


def people_schema(ondelete: str | None = None) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "candidate",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(8)),
        sa.Column("status", sa.String(10)),
        sa.Column("age", sa.Integer),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("ended_label", sa.String(20)),
    )
    sa.Table(
        "meeting",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "candidate_id",
            sa.Integer,
            sa.ForeignKey("candidate.id", ondelete=ondelete)
            if ondelete
            else sa.ForeignKey("candidate.id"),
        ),
        sa.Column("held_at", sa.DateTime),
    )
    sa.Table(
        "minutes",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meeting.id")),
    )
    sa.Table("unrelated", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return metadata


def rule(
    body: str, action: str = "delete", table: str = "candidate", since: str = "ended_at"
) -> str:
    return (
        f'[[rules]]\nid = "r"\ntable = "{table}"\naction = "{action}"\n'
        f'after = "6 months"\nsince = "{since}"\n{body}\n'
    )


def check(tmp_path, target_db, monkeypatch, body: str):
    config = write_config(tmp_path, body, target_db.url, monkeypatch)
    return config, run_cli("check", "-c", str(config))


def test_valid_config_passes(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(people_schema())
    _, result = check(tmp_path, target_db, monkeypatch, rule('cascade = ["meeting", "minutes"]'))
    assert result.exit_code == 0, result.stdout
    assert "database main: config matches the schema" in result.stdout


def test_findings_name_the_key_and_the_fix(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(people_schema())
    cases = {
        rule("", table="nosuch"): "rules[0].table: no table 'nosuch'",
        rule("", since="nosuch"): "rules[0].since: table 'candidate' has no column 'nosuch'",
        # (A text column can be a clock on SQLite, which keeps dates as text; a number
        # cannot, without since_format.)
        rule("", since="age"): "rules[0].since: column 'age' is",
        rule("only = { status = 3 }", action="delete"): "rules[0].only.status: a int value",
        rule('only = { age = "x" }'): "rules[0].only.age: a str value",
        rule('unless_true = "status"'): "rules[0].unless_true: column 'status'",
        rule('unless_after = "age"'): "rules[0].unless_after: column 'age'",
        rule(
            'cascade = ["meeting", "minutes", "unrelated"]'
        ): "rules[0].cascade[2]: table 'unrelated' has no foreign key to 'candidate'",
        rule(
            'columns = { name = "null" }', action="anonymise"
        ): "rules[0].columns.name: is NOT NULL",
        rule(
            'columns = { phone = "hash" }', action="anonymise"
        ): "rules[0].columns.phone: is too short for a keyed hash",
        rule(
            'columns = { age = "redact" }', action="anonymise"
        ): "rules[0].columns.age: strategy 'redact' needs a text column",
        rule(
            'columns = { email = "year" }', action="anonymise"
        ): "rules[0].columns.email: strategy 'year' needs a date column",
        rule(
            'columns = { id = "null" }', action="anonymise"
        ): "rules[0].columns.id: is the primary key",
    }
    for body, expected in cases.items():
        config, result = check(tmp_path, target_db, monkeypatch, body)
        assert result.exit_code == 2, (body, result.stdout)
        assert expected in result.stdout, (body, result.stdout)
        assert "—" in result.stdout  # every finding says how to fix it
        # `plan` refuses the same config with one line and exit 2.
        planned = run_cli("plan", "-c", str(config))
        assert planned.exit_code == 2, planned.stdout
        assert planned.stderr.count("\n") == 1 and expected in planned.stderr


def test_delete_on_referenced_table_warns_of_held_rows(target_db: TargetDb, tmp_path, monkeypatch):
    """A reference without ON DELETE holds referenced parents back: a warning, not a
    refusal advising a cascade (which would delete rows meant to stay)."""
    target_db.create(people_schema())
    _, result = check(tmp_path, target_db, monkeypatch, rule(""))
    assert result.exit_code == 0, result.stdout
    assert (
        "! database main: rules[0].action: due rows of 'candidate' that rows of 'meeting' "
        "still reference (candidate_id, " in result.stdout
    )
    assert "are held back (referenced) until those rows go" in result.stdout
    assert "add 'meeting' to the rule's cascade only to delete them with the parent" in (
        result.stdout
    )
    # Cascading to meeting: minutes reference meeting in turn, and hold candidates back.
    _, result = check(tmp_path, target_db, monkeypatch, rule('cascade = ["meeting"]'))
    assert result.exit_code == 0, result.stdout
    assert (
        "rules[0].cascade[0]: due rows of 'candidate' whose 'meeting' rows are still "
        "referenced by rows of 'minutes' (meeting_id, " in result.stdout
    )
    assert "'meeting' that rows" not in result.stdout


def test_on_delete_cascade_in_schema_is_enough(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(people_schema(ondelete="CASCADE"))
    _, result = check(tmp_path, target_db, monkeypatch, rule(""))
    assert result.exit_code == 0, result.stdout


def test_rule_on_a_view_is_refused(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(people_schema())
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE VIEW candidate_view AS SELECT * FROM candidate")
    engine.dispose()
    _, result = check(tmp_path, target_db, monkeypatch, rule("", table="candidate_view"))
    assert result.exit_code == 2
    assert "'candidate_view' is a view, not a table" in result.stdout


def test_subject_tables_and_columns_must_exist(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(people_schema(ondelete="CASCADE"))
    body = rule("") + (
        '[subject]\nroot = "candidate"\nidentifiers = { email = "email", cpr = "cpr" }\n'
        '[[subject.links]]\ntable = "meeting"\ncolumn = "nosuch"\nreferences = "candidate.id"\n'
    )
    _, result = check(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 2
    assert "subject.root: table 'candidate' has no column 'cpr'" in result.stdout
    assert "subject.links[0]: table 'meeting' has no column 'nosuch'" in result.stdout


def good_down_and_missing(tmp_path, monkeypatch) -> Path:
    """A config of three databases: `good` (SQLite), `down` (a server nobody listens
    on, its URL with a password) and `missing` (no such SQLite file)."""
    good = tmp_path / "good.db"
    engine = sa.create_engine(f"sqlite:///{good}")
    people_schema(ondelete="CASCADE").create_all(engine)
    engine.dispose()
    monkeypatch.setenv("DOWN_URL", "postgresql+psycopg://sweeper:s3cret@127.0.0.1:1/down")
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(
        '[databases.good]\nurl = "sqlite:///good.db"\n'
        '[databases.down]\nurl_env = "DOWN_URL"\n'
        '[databases.missing]\nurl = "sqlite:///no-such-file.db"\n' + rule("")
    )
    return config


def test_unreachable_database_is_named_and_others_still_planned(tmp_path, monkeypatch):
    config = good_down_and_missing(tmp_path, monkeypatch)
    result = run_cli("check", "-c", str(config))
    assert result.exit_code == 3
    assert "database down: cannot connect" in result.stdout
    assert "database missing: no SQLite file" in result.stdout
    assert not (tmp_path / "no-such-file.db").exists()
    assert "s3cret" not in result.stdout + result.stderr
    assert "sweeper" not in result.stdout + result.stderr

    result = run_cli("plan", "-c", str(config), "--json")
    assert result.exit_code == 3
    document = result.json()
    assert [item["database"] for item in document["items"]] == ["good"]
    assert sorted(f["database"] for f in document["failures"]) == ["down", "missing"]


def test_unindexed_subject_columns_are_warnings(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(people_schema(ondelete="CASCADE"))
    body = rule("") + '[subject]\nroot = "candidate"\nidentifiers = { email = "email" }\n'
    _, result = check(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 0, result.stdout
    assert "subject.identifiers.email: candidate.email has no index" in result.stdout
    # InnoDB indexes every foreign-key column by itself; SQLite and PostgreSQL do not.
    unindexed = target_db.engine_name != "mariadb"
    assert ("meeting.candidate_id has no index" in result.stdout) == unindexed
    assert ("minutes.meeting_id has no index" in result.stdout) == unindexed
    assert "database main: config matches the schema" in result.stdout


def test_constraint_aware_strategies(target_db: TargetDb, tmp_path, monkeypatch):
    """Nothing a strategy would break is discovered mid-run: check and run refuse it."""
    metadata = sa.MetaData()
    sa.Table("owner", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "profile",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owner.id")),
        sa.Column("login", sa.String(60), unique=True),
        sa.Column("code", sa.String(20)),
        sa.Column("code2", sa.String(20)),
        sa.Column("phone", sa.String(40)),
        sa.Column("ended_at", sa.DateTime),
        sa.CheckConstraint("code LIKE 'K%'", name="code_starts_with_k"),
        sa.CheckConstraint("code2 IS NOT NULL", name="code2_present"),
        sa.CheckConstraint("length(phone) >= 8", name="phone_long_enough"),
    )
    target_db.create(
        metadata,
        {
            "owner": [{"id": 1}],
            "profile": [
                {
                    "id": 1,
                    "owner_id": 1,
                    "login": "a",
                    "code": "K1",
                    "code2": "x",
                    "phone": "12345678",
                    "ended_at": dt.datetime(2020, 1, 1),
                },
            ],
        },
    )
    cases = {
        "login": ("redact", "is UNIQUE, and strategy 'redact' gives many rows the same value"),
        "owner_id": ("redact", "is a foreign key"),
        "code": ("redact", "CHECK constraint code_starts_with_k"),
        "code2": ("null", "CHECK constraint code2_present"),
    }
    for column, (strategy, expected) in cases.items():
        body = (
            '[[rules]]\nid = "r"\ntable = "profile"\naction = "anonymise"\nafter = "1 day"\n'
            f'since = "ended_at"\ncolumns = {{ {column} = "{strategy}" }}\n'
        )
        config, result = check(tmp_path, target_db, monkeypatch, body)
        assert result.exit_code == 2, (column, result.stdout)
        assert f"rules[0].columns.{column}: {expected}" in result.stdout, result.stdout
        before = target_db.checksum()
        run = run_cli("run", "-c", str(config), "--force")
        assert run.exit_code == 2 and expected in run.stderr, run.stderr
        assert target_db.checksum() == before
    # A hash that satisfies the CHECK, on a UNIQUE column, is fine; so is NULL in a
    # nullable foreign key (it detaches the row).
    body = (
        '[[rules]]\nid = "r"\ntable = "profile"\naction = "anonymise"\nafter = "1 day"\n'
        'since = "ended_at"\ncolumns = { phone = "hash", login = "hash", owner_id = "null" }\n'
    )
    _, result = check(tmp_path, target_db, monkeypatch, body)
    assert result.exit_code == 0, result.stdout


HOSTILE = [
    'candidate"; DROP TABLE candidate; --',
    "candidate'; DELETE FROM candidate; --",
    "cand`idate",
    "c\u0430ndidate",  # a Cyrillic a (U+0430): looks like candidate, is not
    "candidate) OR (1=1",
    "candidate/*",
]


def test_hostile_identifiers_are_names_never_sql(target_db: TargetDb, tmp_path, monkeypatch):
    target_db.create(
        people_schema(ondelete="CASCADE"),
        {"candidate": [{"id": 1, "name": "x", "ended_at": dt.datetime(2020, 1, 1)}]},
    )
    before = target_db.checksum()
    tried = 0
    for name in HOSTILE:
        escaped = json.dumps(name)[1:-1]  # a TOML basic string holds JSON escapes
        for body, key in (
            (rule("", table=escaped), "rules[0].table"),
            (rule("", since=escaped), "rules[0].since"),
            (rule(f'only = {{ "{escaped}" = 1 }}'), "rules[0].only"),
        ):
            config, result = check(tmp_path, target_db, monkeypatch, body)
            output = result.stdout + result.stderr
            assert result.exit_code == 2, (name, output)
            assert key in output and "Traceback" not in output, (name, output)
            planned = run_cli("run", "-c", str(config), "--force")
            assert planned.exit_code == 2, (name, planned.stderr)
            tried += 1
    assert tried == 3 * len(HOSTILE)
    assert target_db.checksum() == before
