"""`plan --sql`: the statements `apply` will execute, compiled for each engine.

On every engine: the SQL shown is that engine's (its text comparison, its casts), every
rule's pins, batches, cascades (children first) and recount are there, the cutoff and
`only` values are named beside their placeholders, and no key or value of the data —
not a held row's key, not an e-mail — appears. Executed in a scratch transaction with
the shown values bound (the run-time keys bound as a batch would bind them), the
statements pin and act on exactly the rows `plan` counts. It changes nothing: the
tables and the state database are as before.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.configs import WHOLE_TABLE, rule_toml
from tests.conftest import TargetDb, plan_items, run_cli, write_config

AS_OF = "2026-06-01"
OLD, NEW = dt.datetime(2024, 1, 10, 9, 0), dt.datetime(2026, 5, 30, 9, 0)
HELD_KEY = "K-SECRET-7"  # a text key: personal, it may be shown only as a placeholder
EMAILS = [f"person{i}@example.dk" for i in range(6)]

CONFIG = rule_toml(
    "person-delete",
    "person",
    "delete",
    after="1 year",
    since="created_at",
    cascade=["note"],
    basis="GDPR art. 6(1)(b)",
) + rule_toml(
    "contact-anonymise",
    "contact",
    "anonymise",
    after="6 months",
    since="seen_at",
    only={"kind": "lead"},
    columns={"name": "redact", "phone": "hash"},
)

#: What shows that a statement was compiled for the engine: its exact text comparison.
ENGINE_MARK = {
    "sqlite": 'COLLATE "BINARY"',
    "postgresql": 'COLLATE "C"',
    "mariadb": "USING utf8mb4",
}


def build(target_db: TargetDb) -> None:
    m = sa.MetaData()
    sa.Table(
        "person",
        m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(100)),
        sa.Column("created_at", sa.DateTime),
    )
    sa.Table(
        "note",
        m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("person.id")),
        sa.Column("body", sa.String(100)),
    )
    sa.Table("contact", m, sa.Column("code", sa.String(20), primary_key=True),
             sa.Column("name", sa.String(60)), sa.Column("phone", sa.String(80)),
             sa.Column("kind", sa.String(10)), sa.Column("seen_at", sa.DateTime))  # fmt: skip
    people = [
        {"id": i, "email": e, "created_at": OLD if i < 4 else NEW} for i, e in enumerate(EMAILS)
    ]
    notes = [{"id": 10 + i, "person_id": i, "body": f"about {EMAILS[i]}"} for i in range(6)]
    contacts = [
        {"code": code, "name": f"Name {code}", "phone": f"+45 2000 00{i:02}", "kind": kind,
         "seen_at": seen}
        for i, (code, kind, seen) in enumerate(
            [(HELD_KEY, "lead", OLD), ("K-2", "lead", OLD), ("K-3", "lead", OLD),
             ("K-4", "customer", OLD), ("K-5", "lead", NEW)]
        )
    ]  # fmt: skip
    target_db.create(m, {"person": people, "note": notes, "contact": contacts})


def parse(output: str) -> dict[str, list[tuple[str, str, dict[str, Any], set[str]]]]:
    """Per rule: (when, SQL, shown values, placeholders not shown) of each statement."""
    rules: dict[str, list] = {}
    current: list | None = None
    for block in output.split("\n\n"):
        lines = block.strip("\n").splitlines()
        header = re.match(r"-- ==== database \S+ \(\w+\) · rule \d+ of \d+: (\S+)", lines[0])
        if header:
            current = rules.setdefault(header.group(1), [])
            continue
        if current is None or not lines[0].startswith("-- "):
            continue
        end = next(i for i, line in enumerate(lines) if line.endswith(";"))
        sql = "\n".join(lines[1 : end + 1])[:-1]
        values: dict[str, Any] = {}
        hidden: set[str] = set()
        for line in lines[end + 1 :]:
            for name, literal in re.findall(r":(\w+) = ('(?:[^']|'')*'|[^,\s]+)", line):
                values[name] = literal_value(literal)
            bare = re.match(r"--   :(\w+)  \(", line)
            if bare:
                hidden.add(bare.group(1))
        current.append((lines[0][3:], sql, values, hidden))
    return rules


def literal_value(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("NULL", "true", "false"):
        return {"NULL": None, "true": True, "false": False}[text]
    return float(text) if "." in text else int(text)


def driver_sql(sql: str, dialect: str) -> str:
    """The shown `:name` placeholders as the driver spells them."""
    if dialect == "sqlite":
        return sql  # sqlite3 takes :name as it is
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql.replace("%", "%%"))


def state_rows(directory: Path) -> list[tuple]:
    with sqlite3.connect(directory / "state.db") as connection:
        names = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return [
            row for name in sorted(names) for row in connection.execute(f'SELECT * FROM "{name}"')
        ]


def held_contact(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, int]]:
    """The tables, the config, a legal hold on one due contact; each rule's due count."""
    build(target_db)
    config = write_config(tmp_path, CONFIG, target_db.url, monkeypatch, extra_sweep=WHOLE_TABLE)
    held = run_cli("hold", "add", "-c", str(config), "-d", "main", "-t", "contact", "-k",
                   HELD_KEY, "--reason", "case 2026-7")  # fmt: skip
    assert held.exit_code == 0, held.stdout + held.stderr
    return config, {rule: item["due"] for rule, item in plan_items(config, AS_OF).items()}


def test_plan_sql_is_what_apply_runs(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, due = held_contact(target_db, tmp_path, monkeypatch)
    c = str(config)
    assert due == {"person-delete": 4, "contact-anonymise": 2}
    before, state_before = target_db.checksum(), state_rows(tmp_path)

    shown = run_cli("plan", "-c", c, "--as-of", AS_OF, "--sql")
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    output = shown.stdout
    assert target_db.checksum() == before and state_rows(tmp_path) == state_before
    for value in [HELD_KEY, *EMAILS, "Name K-2", "+45 2000"]:
        assert value not in output
    assert ENGINE_MARK[target_db.engine_name] in output
    assert f"database main ({target_db.engine_name})" in output
    assert "held_key_1  (a held row's key (legal hold; not shown))" in output
    assert "(cutoff: due when created_at is before 2025-06-01" in output
    assert "(only: kind (rule contact-anonymise))" in output

    statements = parse(output)
    assert list(statements) == ["person-delete", "contact-anonymise"] or set(statements) == set(due)
    whens = [when for when, *_ in statements["person-delete"]]
    cascade = whens.index("the first batch: cascade to note")
    assert cascade < whens.index("the first batch: delete")  # children first
    dialect = target_db.engine_name
    engine = target_db.engine()
    try:
        with engine.connect() as connection, connection.begin() as scratch:
            for rule, rule_due in due.items():
                acted = run_first_batch(connection, statements[rule], dialect)
                assert acted == (rule_due, rule_due), rule
            scratch.rollback()
    finally:
        engine.dispose()
    assert target_db.checksum() == before


def run_first_batch(connection: sa.Connection, statements: list, dialect: str) -> tuple[int, int]:
    """Run the shown pin and first batch; return (keys pinned, rows the batch acts on)."""
    pinned = acted = 0
    # What the run binds and plan --sql never shows: the held key, the batch's last key.
    upper: dict[str, Any] = {"held_key_1": HELD_KEY}
    for when, sql, values, hidden in statements:
        if not (when.startswith("pin") or when.startswith("the first batch")):
            continue
        params = {**values, **{name: upper[name] for name in hidden if name in upper}}
        result = connection.exec_driver_sql(driver_sql(sql, dialect), params)
        if when.startswith("pin") and sql.startswith("INSERT"):
            pinned = result.rowcount
        elif when.endswith("its last key"):
            upper["gdpr_sweep_upper_0"] = result.scalar_one()
        elif when.endswith(("delete", "read the values to pseudonymise")):
            acted = len(result.all()) if sql.startswith("SELECT") else result.rowcount
            break
    return pinned, acted


def test_plan_sql_with_other_outputs_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    build(target_db)
    c = str(write_config(tmp_path, CONFIG, target_db.url, monkeypatch))
    for extra in (["--json"], ["--format", "md"], ["--out", str(tmp_path / "p.json")]):
        result = run_cli("plan", "-c", c, "--sql", *extra)
        assert result.exit_code == 2, (extra, result.stdout, result.stderr)
        assert result.stderr.startswith("error: --sql: cannot be combined with")
    assert not (tmp_path / "p.json").exists()
    unknown = run_cli("plan", "-c", c, "--sql", "--rule", "nope")
    assert unknown.exit_code == 2 and unknown.stderr.startswith("error: --rule: no rule")


def test_plan_sql_of_an_unreachable_database_is_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, CONFIG, f"sqlite:///{tmp_path / 'gone.db'}", monkeypatch)
    result = run_cli("plan", "-c", str(config), "--sql")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "-- failed: " in result.stdout and result.stderr.startswith("error: ")
    assert not (tmp_path / "gone.db").exists()


def test_plan_sql_shows_what_run_runs_in_place(
    target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule nothing else in the run affects: `run` walks its table without pins
    (inplace_keys.py); the shown first batch acts on exactly the due rows."""
    config, due = held_contact(target_db, tmp_path, monkeypatch)
    c = str(config)
    before = target_db.checksum()
    shown = run_cli("plan", "-c", c, "--as-of", AS_OF, "--sql")
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    statements = parse(shown.stdout)
    prefix = "run (not apply), without pins: the first batch"
    dialect = target_db.engine_name
    engine = target_db.engine()
    try:
        with engine.connect() as connection, connection.begin() as scratch:
            for rule, rule_due in due.items():
                walked = [
                    (when.removeprefix("run (not apply), without pins: "), *rest)
                    for when, *rest in statements[rule]
                    if when.startswith(prefix)
                ]
                assert walked, rule
                assert "gdpr_sweep_pin" not in " ".join(sql for _, sql, *_ in walked)
                assert run_first_batch(connection, walked, dialect) == (0, rule_due), rule
            scratch.rollback()
    finally:
        engine.dispose()
    assert target_db.checksum() == before
