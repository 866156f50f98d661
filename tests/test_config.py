"""Config validation through the real CLI: every bad config is exit 2 and one line.

SPEC: unknown keys, wrong types and impossible values are errors that name the key
path (`rules[2].after: "6 monts" is not a period`); exit 2 is "bad usage or bad config:
one line naming the argument or key; nothing touched". Each case below starts from a
valid config (checked by `test_base_config_is_valid`), changes one thing, and asserts
the exit code, the single `error: KEY: ...` line, no traceback, and that no file in
the directory (the SQLite target, a state database) was created or changed.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdpr_sweep.config import load_config
from gdpr_sweep.periods import FiscalYearEnd, Period
from tests.conftest import CliResult, run_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-01-01"
DELETE = object()  # a change that removes the key


# --- a valid config over a real SQLite database ----------------------------------------


def make_target(directory: Path) -> Path:
    """Create target.db with the tables the base config names, and a few rows."""
    metadata = sa.MetaData()
    person = sa.Table(
        "person",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80)),
        sa.Column("email", sa.String(120)),
        sa.Column("status", sa.String(10)),
        sa.Column("birth_date", sa.Date),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", sa.DateTime),
        sa.Column("consent_until", sa.Date),
        sa.Column("flag", sa.Boolean),
    )
    sa.Table(
        "invoice",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("person.id", ondelete="CASCADE")),
        sa.Column("invoice_date", sa.Date),
    )
    sa.Table(
        "engagement",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("person.id", ondelete="CASCADE")),
        sa.Column("performed_at", sa.DateTime),
    )
    sa.Table(
        "note",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_email", sa.String(120)),
    )
    path = directory / "target.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            metadata.create_all(connection)
            connection.execute(
                person.insert(),
                [
                    {
                        "id": i,
                        "name": f"Person {i}",
                        "email": f"p{i}@example.invalid",
                        "status": "closed",
                        "created_at": dt.datetime(2020, 1, i),
                        "flag": False,
                    }
                    for i in range(1, 5)
                ],
            )
    finally:
        engine.dispose()
    return path


#: One rule on a real table: the smallest valid config the cases below change.
BASE: dict[str, Any] = {
    "sweep": {"state_url": "sqlite:///state.db", "timezone": "Europe/Copenhagen"},
    "databases": {"main": {"url": "sqlite:///target.db", "controller": "Testkommune"}},
    "rules": [
        {
            "id": "r",
            "table": "person",
            "action": "delete",
            "after": "6 months",
            "since": "created_at",
        }
    ],
}

ANONYMISE = {"action": "anonymise", "columns": {"name": "null"}}

SUBJECT: dict[str, Any] = {
    "root": "person",
    "identifiers": {"email": "email"},
    "links": [{"table": "note", "column": "person_email", "references": "person.email"}],
    "erase": {
        "invoice": {"action": "keep", "rule": "r"},
        "person": {"action": "anonymise", "columns": {"name": "null", "email": "null"}},
    },
}

#: Every key SPEC names, set to a valid value: the seed of the mutation test.
FULL: dict[str, Any] = {
    "sweep": {
        "state_url": "sqlite:///state.db",
        "hash_key_env": "GDPR_SWEEP_KEY",
        "timezone": "Europe/Copenhagen",
        "fiscal_year_end": "12-31",
        "batch_size": 5000,
        "max_fraction": 0.5,
    },
    "databases": {"main": {"url": "sqlite:///target.db", "controller": "Testkommune"}},
    "rules": [
        {
            "id": "person-anonymise",
            "table": "person",
            "databases": ["*"],
            "action": "anonymise",
            "after": "6 months",
            "since": "created_at",
            "basis": "GDPR art. 6(1)(c)",
            "only": {"status": ["closed"]},
            "unless_after": "consent_until",
            "unless_true": "flag",
            "columns": {"name": "null", "email": "hash", "birth_date": "year", "notes": "redact"},
        },
        {
            "id": "invoice-delete",
            "table": "invoice",
            "databases": ["main"],
            "action": "delete",
            "after": "5 years",
            "since": "invoice_date",
            "from_fiscal_year_end": True,
            "basis": "Bookkeeping Act",
        },
        {
            "id": "person-delete",
            "table": "person",
            "action": "delete",
            "after": "10 years",
            "since_latest": {"table": "engagement", "column": "performed_at", "key": "person_id"},
            "since": "created_at",
            "cascade": ["engagement", "invoice"],
            "description": "no activity for ten years",
        },
    ],
    "subject": {
        "root": "person",
        "identifiers": {"email": "email"},
        "links": [{"table": "note", "column": "person_email", "references": "person.email"}],
        "erase": {
            "invoice": {"action": "keep", "rule": "invoice-delete"},
            "person": {"action": "anonymise", "columns": {"name": "null", "email": "null"}},
        },
    },
}


def _parse_path(path: str) -> list[str | int]:
    """'rules[0].only.status' -> ['rules', 0, 'only', 'status']."""
    steps: list[str | int] = []
    for part in path.split("."):
        name, *indices = re.split(r"\[(\d+)\]", part)
        if name:
            steps.append(name)
        steps.extend(int(i) for i in indices if i != "")
    return steps


def changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of `base` with each `path: value` set (DELETE removes it)."""
    document = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, last = _parse_path(path)
        node: Any = document
        for step in parents:
            node = node[step]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list) and last == len(node):
            node.append(copy.deepcopy(value))
        else:
            node[last] = copy.deepcopy(value)
    return document


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file in the directory except the configs: what a bad config must not touch."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.suffix != ".toml"
    }


def assert_one_line_error(result: CliResult, *fragments: str, key: str | None = None) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    if key is not None:
        assert lines[0].startswith(f"error: {key}: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return make_target(tmp_path)


def write(directory: Path, document: dict[str, Any], name: str = "gdpr-sweep.toml") -> Path:
    path = directory / name
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


def run_both(config: Path, *extra: str) -> list[CliResult]:
    return [
        run_cli("plan", "-c", str(config), "--as-of", AS_OF, *extra),
        run_cli("check", "-c", str(config), *extra),
    ]


# --- the base configs are valid ---------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [BASE, changed(BASE, {"subject": SUBJECT}), FULL],
    ids=["base", "base+subject", "full"],
)
def test_base_config_is_valid(tmp_path: Path, target: Path, document: dict[str, Any]) -> None:
    config = write(tmp_path, document)
    before = snapshot(tmp_path)
    for result in run_both(config):
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert result.stderr == ""
    assert snapshot(tmp_path) == before


# --- bad configs --------------------------------------------------------------------------

NAN, INF = math.nan, math.inf
C = pytest.param

BAD_CONFIGS = [
    # top level
    C({"rule": [{"id": "x"}]}, "rule", ("did you mean 'rules'",), id="top-typo-rule"),
    C({"sweeps": {"batch_size": 1}}, "sweeps", ("did you mean 'sweep'",), id="top-typo-sweeps"),
    C({"version": 1}, "version", ("unknown key",), id="top-unknown"),
    C({"sweep": 1}, "sweep", ("must be a table",), id="sweep-not-table"),
    C({"databases": DELETE}, "databases", ("required",), id="databases-missing"),
    C({"databases": {}}, "databases", (), id="databases-empty"),
    C({"databases": ["nope"]}, "databases", ("must be a table",), id="databases-array"),
    C({"rules": "r"}, "rules", ("array of tables",), id="rules-string"),
    C({"rules": [1]}, "rules[0]", ("must be a table",), id="rules-item-int"),
    C({"subject": "person"}, "subject", ("must be a table",), id="subject-string"),
    # [sweep]: unknown keys and wrong types for every key
    C({"sweep.batchsize": 10}, "sweep.batchsize", ("did you mean 'batch_size'",), id="sweep-typo"),
    C({"sweep.colour": "red"}, "sweep.colour", ("unknown key",), id="sweep-unknown"),
    C({"sweep.state_url": 1}, "sweep.state_url", ("must be a string",), id="state_url-int"),
    C({"sweep.hash_key_env": True}, "sweep.hash_key_env", ("string",), id="hash_key_env-bool"),
    C({"sweep.timezone": 1}, "sweep.timezone", ("must be a string",), id="timezone-int"),
    C({"sweep.fiscal_year_end": 1231}, "sweep.fiscal_year_end", (), id="fye-int"),
    C(
        {"sweep.fiscal_year_end": dt.date(2025, 12, 31)},
        "sweep.fiscal_year_end",
        (),
        id="fye-date",
    ),
    C({"sweep.batch_size": "5000"}, "sweep.batch_size", ("integer",), id="batch_size-str"),
    C({"sweep.batch_size": 1.5}, "sweep.batch_size", ("integer",), id="batch_size-float"),
    C({"sweep.batch_size": True}, "sweep.batch_size", ("integer",), id="batch_size-bool"),
    C({"sweep.max_fraction": "half"}, "sweep.max_fraction", ("number",), id="max_fraction-str"),
    C({"sweep.max_fraction": True}, "sweep.max_fraction", ("number",), id="max_fraction-bool"),
    C({"sweep.max_fraction": [0.5]}, "sweep.max_fraction", ("number",), id="max_fraction-list"),
    # [sweep]: impossible values
    C({"sweep.batch_size": 0}, "sweep.batch_size", (), id="batch_size-0"),
    C({"sweep.batch_size": -1}, "sweep.batch_size", (), id="batch_size-negative"),
    C({"sweep.batch_size": 10**30}, "sweep.batch_size", (), id="batch_size-huge"),
    C({"sweep.max_fraction": 0}, "sweep.max_fraction", (), id="max_fraction-0"),
    C({"sweep.max_fraction": 0.0}, "sweep.max_fraction", (), id="max_fraction-0.0"),
    C({"sweep.max_fraction": 1.5}, "sweep.max_fraction", (), id="max_fraction-1.5"),
    C({"sweep.max_fraction": -0.1}, "sweep.max_fraction", (), id="max_fraction-negative"),
    C({"sweep.max_fraction": NAN}, "sweep.max_fraction", (), id="max_fraction-nan"),
    C({"sweep.max_fraction": INF}, "sweep.max_fraction", (), id="max_fraction-inf"),
    C(
        {"sweep.timezone": "Europe/Copenhagn"},
        "sweep.timezone",
        ("Europe/Copenhagn",),
        id="timezone-typo",
    ),
    C({"sweep.timezone": ""}, "sweep.timezone", (), id="timezone-empty"),
    C({"sweep.timezone": "../../etc/passwd"}, "sweep.timezone", (), id="timezone-path"),
    C({"sweep.fiscal_year_end": "13-01"}, "sweep.fiscal_year_end", (), id="fye-13-01"),
    C({"sweep.fiscal_year_end": "02-30"}, "sweep.fiscal_year_end", (), id="fye-02-30"),
    C({"sweep.fiscal_year_end": "1231"}, "sweep.fiscal_year_end", (), id="fye-1231"),
    C({"sweep.fiscal_year_end": "12-31 "}, "sweep.fiscal_year_end", (), id="fye-trailing-space"),
    C({"sweep.hash_key_env": "NOT VALID"}, "sweep.hash_key_env", (), id="hash_key_env-name"),
    C({"sweep.state_url": "not a url"}, "sweep.state_url", (), id="state_url-garbage"),
    C(
        {"sweep.state_url": "postgresql://app:s3cret@db.example/state"},
        "sweep.state_url",
        ("password",),
        id="state_url-password",
    ),
    # [databases.NAME]
    C(
        {"databases.main.controler": "x"},
        "databases.main.controler",
        ("did you mean 'controller'",),
        id="db-typo",
    ),
    C(
        {"databases.main.url_env": "TARGET_URL"},
        "databases.main",
        ("url", "url_env"),
        id="db-url-and-url_env",
    ),
    C({"databases.main.url": DELETE}, "databases.main", ("url",), id="db-neither-url"),
    C(
        {"databases.main.url": "postgresql://app:s3cret@db.example/app"},
        "databases.main.url",
        ("password",),
        id="db-url-password",
    ),
    C(
        {"databases.main.url": "mysql+pymysql://root:s3cret@localhost/app?charset=utf8mb4"},
        "databases.main.url",
        ("password",),
        id="db-url-password-mysql",
    ),
    C({"databases.main.url": "not a url"}, "databases.main.url", (), id="db-url-garbage"),
    C({"databases.main.url": 5}, "databases.main.url", ("string",), id="db-url-int"),
    C(
        {"databases.main.url": DELETE, "databases.main.url_env": "1 BAD"},
        "databases.main.url_env",
        (),
        id="db-url_env-name",
    ),
    C({"databases.main": "sqlite:///x.db"}, "databases.main", ("table",), id="db-not-table"),
    C(
        {"databases": {"bad name": {"url": "sqlite:///target.db"}}},
        "databases.bad name",
        (),
        id="db-name",
    ),
    C({"databases.main.controller": 1}, "databases.main.controller", (), id="db-controller-int"),
    # [[rules]]: unknown and missing keys
    C({"rules[0].aftr": "1 day"}, "rules[0].aftr", ("did you mean 'after'",), id="rule-typo"),
    C({"rules[0].id": DELETE}, "rules[0].id", ("required",), id="rule-no-id"),
    C({"rules[0].table": DELETE}, "rules[0].table", ("required",), id="rule-no-table"),
    C({"rules[0].action": DELETE}, "rules[0].action", ("required",), id="rule-no-action"),
    C({"rules[0].after": DELETE}, "rules[0].after", ("required",), id="rule-no-after"),
    C({"rules[0].since": DELETE}, "rules[0]", ("since",), id="rule-no-since"),
    C(
        {"rules[1]": BASE["rules"][0]},
        "rules[1].id",
        ("'r'", "rules[0]"),
        id="rule-duplicate-id",
    ),
    C({"rules[0].id": "bad id!"}, "rules[0].id", (), id="rule-id-chars"),
    C({"rules[0].id": 7}, "rules[0].id", ("string",), id="rule-id-int"),
    # action
    C({"rules[0].action": "remove"}, "rules[0].action", ("'remove'",), id="action-remove"),
    C(
        {"rules[0].action": "anonymize"},
        "rules[0].action",
        ("did you mean 'anonymise'",),
        id="action-anonymize",
    ),
    C({"rules[0].action": 1}, "rules[0].action", ("string",), id="action-int"),
    # after
    C({"rules[0].after": "6 monts"}, "rules[0].after", ("6 monts", "period"), id="after-typo"),
    C({"rules[0].after": "-6 months"}, "rules[0].after", ("period",), id="after-negative"),
    C({"rules[0].after": "6"}, "rules[0].after", ("period",), id="after-no-unit"),
    C({"rules[0].after": 6}, "rules[0].after", ("period",), id="after-int"),
    C({"rules[0].after": 6.0}, "rules[0].after", ("period",), id="after-float"),
    C({"rules[0].after": ["6 months"]}, "rules[0].after", (), id="after-list"),
    C({"rules[0].after": ""}, "rules[0].after", (), id="after-empty"),
    C({"rules[0].after": "100000 years"}, "rules[0].after", ("200 years",), id="after-huge"),
    # databases
    C(
        {"rules[0].databases": ["nope"]},
        "rules[0].databases[0]",
        ("'nope'",),
        id="rule-db-unknown",
    ),
    C({"rules[0].databases": []}, "rules[0].databases", (), id="rule-db-empty"),
    C({"rules[0].databases": ["main", "main"]}, "rules[0].databases", (), id="rule-db-twice"),
    C({"rules[0].databases": [1]}, "rules[0].databases", (), id="rule-db-int"),
    # columns and strategies
    C({"rules[0].columns": {"name": "null"}}, "rules[0].columns", (), id="columns-on-delete"),
    C(
        {"rules[0].action": "anonymise"},
        "rules[0].columns",
        ("required",),
        id="anonymise-no-columns",
    ),
    C(
        {**{f"rules[0].{k}": v for k, v in ANONYMISE.items()}, "rules[0].columns": {}},
        "rules[0].columns",
        (),
        id="anonymise-empty-columns",
    ),
    C(
        {"rules[0].action": "anonymise", "rules[0].columns": {"name": "scramble"}},
        "rules[0].columns.name",
        ("'scramble'",),
        id="strategy-unknown",
    ),
    C(
        {"rules[0].action": "anonymise", "rules[0].columns": {"name": 1}},
        "rules[0].columns.name",
        (),
        id="strategy-int",
    ),
    C(
        {"rules[0].action": "anonymise", "rules[0].columns": {"a.b": "null"}},
        "rules[0].columns.a.b",
        (),
        id="strategy-dotted-column",
    ),
    C(
        {**{f"rules[0].{k}": v for k, v in ANONYMISE.items()}, "rules[0].cascade": ["note"]},
        "rules[0].cascade",
        ("delete",),
        id="cascade-on-anonymise",
    ),
    C({"rules[0].cascade": [1]}, "rules[0].cascade", (), id="cascade-int"),
    C({"rules[0].cascade": ["a.b.c"]}, "rules[0].cascade[0]", (), id="cascade-3-parts"),
    # since, since_latest, from_fiscal_year_end
    C({"rules[0].since": 1}, "rules[0].since", ("string",), id="since-int"),
    C({"rules[0].since": "a.b"}, "rules[0].since", (), id="since-dotted"),
    C(
        {
            "rules[0].from_fiscal_year_end": True,
            "rules[0].since_latest": {
                "table": "engagement",
                "column": "performed_at",
                "key": "person_id",
            },
        },
        "rules[0].from_fiscal_year_end",
        ("since_latest",),
        id="fiscal-with-since_latest",
    ),
    C(
        {"rules[0].from_fiscal_year_end": "yes"},
        "rules[0].from_fiscal_year_end",
        ("true or false",),
        id="fiscal-string",
    ),
    C(
        {"rules[0].since_latest": {"table": "engagement", "column": "performed_at"}},
        "rules[0].since_latest.key",
        ("required",),
        id="since_latest-no-key",
    ),
    C(
        {
            "rules[0].since_latest": {
                "table": "engagement",
                "column": "performed_at",
                "key": "person_id",
                "kye": "x",
            }
        },
        "rules[0].since_latest.kye",
        ("did you mean 'key'",),
        id="since_latest-unknown-key",
    ),
    C(
        {"rules[0].since_latest": "engagement.performed_at"},
        "rules[0].since_latest",
        ("table",),
        id="since_latest-string",
    ),
    # only
    C({"rules[0].only": {}}, "rules[0].only", (), id="only-empty"),
    C({"rules[0].only": {"status": []}}, "rules[0].only.status", (), id="only-empty-list"),
    C(
        {"rules[0].only": {"status": ["closed", 1]}},
        "rules[0].only.status",
        ("mixes",),
        id="only-mixed-types",
    ),
    C({"rules[0].only": {"status": NAN}}, "rules[0].only.status", ("NaN",), id="only-nan"),
    C(
        {"rules[0].only": {"status": {"a": 1}}},
        "rules[0].only.status",
        (),
        id="only-table-value",
    ),
    C(
        {"rules[0].only": {"status": dt.time(7, 32)}},
        "rules[0].only.status",
        (),
        id="only-time-value",
    ),
    C({"rules[0].only": {"status": 2**64}}, "rules[0].only.status", (), id="only-int-overflow"),
    C({"rules[0].only": "closed"}, "rules[0].only", ("table",), id="only-string"),
    # identifiers
    C({"rules[0].table": "a.b.c.d"}, "rules[0].table", (), id="table-3-dots"),
    C({"rules[0].table": ""}, "rules[0].table", (), id="table-empty"),
    C({"rules[0].table": "x" * 300}, "rules[0].table", (), id="table-too-long"),
    C({"rules[0].table": "a\nb"}, "rules[0].table", (), id="table-control-char"),
    C({"rules[0].unless_true": "a.b"}, "rules[0].unless_true", (), id="unless_true-dotted"),
    C({"rules[0].unless_after": 1}, "rules[0].unless_after", (), id="unless_after-int"),
    C({"rules[0].basis": 1}, "rules[0].basis", ("string",), id="basis-int"),
    C({"rules[0].description": ""}, "rules[0].description", (), id="description-empty"),
    # [subject]
    C(
        {"subject": {"root": "person"}},
        "subject.identifiers",
        ("required",),
        id="subject-no-identifiers",
    ),
    C(
        {"subject": {**SUBJECT, "identifiers": {}}},
        "subject.identifiers",
        (),
        id="subject-identifiers-empty",
    ),
    C(
        {"subject": {"identifiers": {"email": "email"}}},
        "subject.root",
        ("required",),
        id="subject-no-root",
    ),
    C(
        {"subject": {**SUBJECT, "roots": "person"}},
        "subject.roots",
        ("did you mean 'root'",),
        id="subject-typo",
    ),
    C(
        {"subject": {**SUBJECT, "identifiers": {"e mail": "email"}}},
        "subject.identifiers.e mail",
        (),
        id="subject-identifier-kind",
    ),
    C(
        {"subject": changed(SUBJECT, {"links[0].references": "person_email"})},
        "subject.links[0].references",
        ("TABLE.COLUMN",),
        id="link-references-no-dot",
    ),
    C(
        {"subject": changed(SUBJECT, {"links[0].colum": "x"})},
        "subject.links[0].colum",
        ("did you mean 'column'",),
        id="link-typo",
    ),
    C(
        {"subject": changed(SUBJECT, {"erase.invoice.rule": "no-such-rule"})},
        "subject.erase.invoice.rule",
        ("'no-such-rule'",),
        id="erase-keep-unknown-rule",
    ),
    C(
        {"subject": changed(SUBJECT, {"erase.invoice.rule": DELETE})},
        "subject.erase.invoice",
        ("keep",),
        id="erase-keep-without-rule-or-basis",
    ),
    C(
        {"subject": changed(SUBJECT, {"erase.person.columns": DELETE})},
        "subject.erase.person.columns",
        ("required",),
        id="erase-anonymise-no-columns",
    ),
    C(
        {"subject": changed(SUBJECT, {"erase.person.action": "destroy"})},
        "subject.erase.person.action",
        ("'destroy'",),
        id="erase-action-unknown",
    ),
    C(
        {"subject": changed(SUBJECT, {"erase.invoice.action": "delete"})},
        "subject.erase.invoice.rule",
        ("keep",),
        id="erase-rule-on-delete",
    ),
    C(
        {"subject": changed(SUBJECT, {"erase.invoice.until": "2030-01-01"})},
        "subject.erase.invoice.until",
        ("unknown key",),
        id="erase-typo",
    ),
    # [[subject.references]] and parents (issue 16)
    C(
        {
            "subject": {
                **SUBJECT,
                "references": [{"table": "note", "column": "x", "action": "drop"}],
            }
        },
        "subject.references[0].action",
        ("'drop'",),
        id="reference-action-unknown",
    ),
    C(
        {"subject": {**SUBJECT, "references": [{"table": "note"}]}},
        "subject.references[0].column",
        ("required",),
        id="reference-no-column",
    ),
    C(
        {"subject": {**SUBJECT, "references": [{"table": "note", "colum": "x", "column": "x"}]}},
        "subject.references[0].colum",
        ("did you mean 'column'",),
        id="reference-typo",
    ),
    C(
        {
            "subject": {
                **SUBJECT,
                "references": [
                    {"table": "note", "column": "person_email"},
                    {"table": "note", "column": "person_email", "action": "keep"},
                ],
            }
        },
        "subject.references[1]",
        ("same reference as subject.references[0]",),
        id="reference-twice",
    ),
    C(
        {"subject": {**SUBJECT, "references": {"table": "note", "column": "x"}}},
        "subject.references",
        ("array of tables",),
        id="reference-not-array",
    ),
    C(
        {"subject": {**SUBJECT, "parents": ["person"]}},
        "subject.parents",
        ("root table",),
        id="parent-is-root",
    ),
    C(
        {"subject": {**SUBJECT, "parents": []}},
        "subject.parents",
        ("must not be empty",),
        id="parents-empty",
    ),
    C(
        {"subject": {**SUBJECT, "parents": [1]}},
        "subject.parents",
        ("list of non-empty strings",),
        id="parent-not-a-string",
    ),
    C(
        {"subject": changed(SUBJECT, {"erase.invoice": "keep"})},
        "subject.erase.invoice",
        ("table",),
        id="erase-entry-string",
    ),
]


@pytest.mark.parametrize(("changes", "key", "fragments"), BAD_CONFIGS)
@pytest.mark.parametrize("command", ["plan", "check"])
def test_bad_config_is_one_line_naming_the_key(
    tmp_path: Path,
    target: Path,
    command: str,
    changes: dict[str, Any],
    key: str,
    fragments: tuple[str, ...],
) -> None:
    config = write(tmp_path, changed(BASE, changes))
    before = snapshot(tmp_path)
    extra = ["--as-of", AS_OF] if command == "plan" else []
    result = run_cli(command, "-c", str(config), *extra)
    assert_one_line_error(result, *fragments, key=key)
    assert "s3cret" not in result.stdout + result.stderr  # a password is never echoed
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "changes",
    [
        C({"a\nb": 1}, id="top-level"),
        C({"sweep": {"x\ny": 1}}, id="sweep"),
        C({"databases": {"a\nb": {"url": "sqlite:///target.db"}}}, id="db"),
        C(
            {"subject": {**SUBJECT, "identifiers": {"e\rmail": "email"}}},
            id="identifier-kind",
        ),
        C(
            {"rules[0].action": "anonymise", "rules[0].columns": {"a\nb": "null"}},
            id="column",
        ),
    ],
)
def test_control_character_in_a_key_stays_on_one_line(
    tmp_path: Path, target: Path, changes: dict[str, Any]
) -> None:
    config = write(tmp_path, changed(BASE, changes))
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF)
    assert_one_line_error(result)


def test_there_are_many_bad_configs() -> None:
    assert len(BAD_CONFIGS) >= 40


@pytest.mark.parametrize("command", ["plan", "check"])
def test_url_env_naming_an_unset_variable(
    tmp_path: Path, target: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.delenv("NO_SUCH_TARGET_URL", raising=False)
    config = write(
        tmp_path,
        changed(
            BASE, {"databases.main.url": DELETE, "databases.main.url_env": "NO_SUCH_TARGET_URL"}
        ),
    )
    before = snapshot(tmp_path)
    extra = ["--as-of", AS_OF] if command == "plan" else []
    result = run_cli(command, "-c", str(config), *extra)
    assert_one_line_error(result, "NO_SUCH_TARGET_URL", key="databases.main.url_env")
    assert snapshot(tmp_path) == before


def test_url_env_set_to_the_target_is_valid(
    tmp_path: Path, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOME_TARGET_URL", f"sqlite:///{target}")
    config = write(
        tmp_path,
        changed(BASE, {"databases.main.url": DELETE, "databases.main.url_env": "SOME_TARGET_URL"}),
    )
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("command", ["plan", "check"])
def test_url_to_a_file_that_is_not_a_database(tmp_path: Path, target: Path, command: str) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n", encoding="utf-8")
    config = write(tmp_path, changed(BASE, {"databases.main.url": "sqlite:///notes.txt"}))
    before = snapshot(tmp_path)
    extra = ["--as-of", AS_OF] if command == "plan" else []
    result = run_cli(command, "-c", str(config), *extra)
    output = result.stdout + result.stderr
    assert "internal error" not in output, output
    assert result.exit_code in (2, 3), output
    assert "database main" in output or "databases.main" in output, output
    assert snapshot(tmp_path) == before


def test_url_to_a_missing_sqlite_file_creates_nothing(tmp_path: Path, target: Path) -> None:
    config = write(tmp_path, changed(BASE, {"databases.main.url": "sqlite:///typo.db"}))
    before = snapshot(tmp_path)
    for result in run_both(config):
        assert result.exit_code in (2, 3), (result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        assert len(result.stderr.splitlines()) <= 1
    assert not (tmp_path / "typo.db").exists()
    assert snapshot(tmp_path) == before


def test_url_query_argument_does_not_leak_a_warning(tmp_path: Path, target: Path) -> None:
    # In a subprocess: pytest captures warnings, the real console script does not.
    config = write(tmp_path, changed(BASE, {"databases.main.url": "sqlite:///target.db?foo=bar"}))
    result = subprocess.run(
        [sys.executable, "-m", "gdpr_sweep", "plan", "-c", str(config), "--as-of", AS_OF],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 2), result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) <= 1, result.stderr


# --- the file itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[sweep\n",
        'rules = [\n  { id = "r"\n',
        "[databases.main]\nurl = sqlite:///target.db\n",
        '[databases.main]\nurl = "a"\nurl = "b"\n',
        "a = 1\na = 2\n",
    ],
    ids=["unclosed-table", "unclosed-array", "bare-string", "duplicate-key", "duplicate-top"],
)
def test_invalid_toml_is_one_line_naming_the_file(tmp_path: Path, target: Path, text: str) -> None:
    config = tmp_path / "broken.toml"
    config.write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)
    for result in run_both(config):
        assert_one_line_error(result, "broken.toml", "not valid TOML")
    assert snapshot(tmp_path) == before


def test_config_not_utf8(tmp_path: Path, target: Path) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes('[sweep]\ntimezone = "Europe/København"\n'.encode("latin-1"))
    for result in run_both(config):
        assert_one_line_error(result, "latin1.toml", "UTF-8")


def test_config_file_missing_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "gdpr-sweep.toml"
    for result in run_both(missing):
        assert_one_line_error(result, str(missing), "not found")
    assert list(tmp_path.iterdir()) == []


def test_config_from_the_environment_missing_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDPR_SWEEP_CONFIG", str(tmp_path / "env.toml"))
    result = run_cli("plan", "--as-of", AS_OF)
    assert_one_line_error(result, "env.toml", "not found")


def test_default_config_missing_names_gdpr_sweep_toml(tmp_path: Path) -> None:
    result = run_cli("check")  # cwd is tmp_path (conftest), which has no config
    assert_one_line_error(result, "gdpr-sweep.toml", "not found")


def test_config_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    result = run_cli("check", "-c", str(tmp_path / "dir.toml"))
    assert_one_line_error(result, "dir.toml")


# --- command-line arguments --------------------------------------------------------------


@pytest.mark.parametrize(
    "as_of",
    ["yesterday", "", "2026-02-30", "2026-13-01", "01-01-2026", "2026-01-01T25:00", "now"],
)
def test_as_of_garbage(tmp_path: Path, target: Path, as_of: str) -> None:
    config = write(tmp_path, BASE)
    before = snapshot(tmp_path)
    result = run_cli("plan", "-c", str(config), "--as-of", as_of)
    assert_one_line_error(result, key="--as-of")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "as_of",
    [
        pytest.param(
            "0001-01-01",
        ),
        pytest.param(
            "0001-01-01T00:00",
        ),
        pytest.param(
            "9999-12-31",
        ),
        pytest.param(
            "9999-12-31T23:59:59-12:00",
        ),
    ],
)
def test_as_of_out_of_range_is_bad_usage(tmp_path: Path, target: Path, as_of: str) -> None:
    config = write(tmp_path, BASE)
    result = run_cli("plan", "-c", str(config), "--as-of", as_of)
    assert_one_line_error(result, key="--as-of")


def test_as_of_accepts_the_spec_forms(tmp_path: Path, target: Path) -> None:
    config = write(tmp_path, BASE)
    for as_of in (
        "2026-03-29",
        "2026-03-29T12:00:00",
        "2026-03-29T12:00:00+02:00",
        "2026-03-29T10:00:00Z",
    ):
        result = run_cli("plan", "-c", str(config), "--as-of", as_of, "--json")
        assert result.exit_code == 0, (as_of, result.stderr)


def test_unknown_rule(tmp_path: Path, target: Path) -> None:
    config = write(tmp_path, BASE)
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--rule", "nope")
    assert_one_line_error(result, "'nope'", key="--rule")


@pytest.mark.parametrize("command", ["plan", "check"])
def test_unknown_database(tmp_path: Path, target: Path, command: str) -> None:
    config = write(tmp_path, BASE)
    before = snapshot(tmp_path)
    result = run_cli(command, "-c", str(config), "--database", "nope")
    assert_one_line_error(result, "'nope'", key="--database")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "--bogus"),
        ("check", "--bogus"),
        ("plan", "--as-of"),
        ("plan", "-c"),
        ("plan", "--json=yes"),
        ("plan", "extra-argument"),
        ("no-such-command",),
    ],
    ids=lambda args: " ".join(args),
)
def test_bad_usage_is_one_line(tmp_path: Path, target: Path, args: tuple[str, ...]) -> None:
    write(tmp_path, BASE)
    before = snapshot(tmp_path)
    result = run_cli(*args)
    assert_one_line_error(result)
    assert snapshot(tmp_path) == before


# --- random mutations: exit 0 or 2, never 1, never a traceback -------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
#: Keys without control characters: a key with a line break is a known bug (see
#: test_control_character_in_a_key_stays_on_one_line), kept out so this test is not flaky.
_key = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12)
_plausible = st.sampled_from(
    [
        "",
        " ",
        "*",
        "main",
        "person",
        "invoice",
        "note",
        "created_at",
        "email",
        "person.email",
        "a.b.c",
        "null",
        "hash",
        "year",
        "scramble",
        "anonymise",
        "delete",
        "keep",
        "6 months",
        "0 days",
        "6 monts",
        "12-31",
        "02-29",
        "Europe/Copenhagen",
        "UTC",
        "r",
        "invoice-delete",
        "person-delete",
        "sqlite:///target.db",
        "sqlite://",
        "sqlite:///:memory:",
    ]
)
_scalars = st.one_of(
    _text,
    _plausible,
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 2, 10**6, 10**6 + 1]),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
    st.times(),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(_key, _plausible), inner, max_size=3)
    ),
    max_leaves=6,
)


def _kind(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return "datetime"
    return type(value).__name__


def _locations(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value in the document (tables, arrays and leaves)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        found.append((*path, key))
        if isinstance(value, (dict, list)):
            found.extend(_locations(value, (*path, key)))
    return found


def _tables(node: Any, path: tuple = ()) -> list[tuple]:
    found = [path] if isinstance(node, dict) else []
    if isinstance(node, (dict, list)):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            found.extend(_tables(value, (*path, key)))
    return found


def _at(document: Any, path: tuple) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(FULL)
    for _ in range(draw(st.integers(1, 2))):
        how = draw(st.sampled_from(["replace", "replace", "add", "delete"]))
        if how == "add":
            table = draw(st.sampled_from(_tables(document)))
            key = draw(st.one_of(_key, _plausible))
            _at(document, table)[key] = draw(_values)
            continue
        locations = _locations(document)
        if not locations:
            break
        *parent, last = draw(st.sampled_from(locations))
        container = _at(document, tuple(parent))
        if how == "delete":
            del container[last]
            continue
        old = container[last]
        container[last] = draw(_values.filter(lambda v, old=old: _kind(v) != _kind(old)))
    return document


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=mutated_configs(), command=st.sampled_from(["plan", "check"]))
def test_mutated_config_is_exit_0_or_2(
    tmp_path: Path, target: Path, document: dict[str, Any], command: str
) -> None:
    config = tmp_path / "mutated.toml"
    config.write_text(tomli_w.dumps(document), encoding="utf-8")
    before = snapshot(tmp_path)
    extra = ["--as-of", AS_OF] if command == "plan" else []
    result = run_cli(command, "-c", str(config), *extra)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code in (0, 2), (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) <= 1, result.stderr
    if lines:
        assert lines[0].startswith("error: "), lines[0]
    if result.exit_code == 2 and not lines:
        assert command == "check" and "✗" in result.stdout, result.stdout
    assert snapshot(tmp_path) == before


# --- config.example.toml ----------------------------------------------------------------

#: The keys SPEC's sample configuration uses, per table.
SPEC_KEYS = {
    "sweep": {
        "state_url",
        "hash_key_env",
        "timezone",
        "fiscal_year_end",
        "batch_size",
        "max_fraction",
    },
    "rule": {
        "id",
        "table",
        "databases",
        "action",
        "after",
        "since",
        "basis",
        "only",
        "unless_after",
        "unless_true",
        "columns",
        "from_fiscal_year_end",
        "since_latest",
        "cascade",
    },
    "subject": {"root", "identifiers", "links", "erase"},
}


def test_example_config_loads_and_has_the_spec_keys() -> None:
    path = REPO_ROOT / "config.example.toml"
    config = load_config(path)
    raw = tomllib.loads(path.read_text(encoding="utf-8"))

    assert set(raw["sweep"]) == SPEC_KEYS["sweep"]
    assert set().union(*(set(rule) for rule in raw["rules"])) >= SPEC_KEYS["rule"]
    assert set(raw["subject"]) == SPEC_KEYS["subject"]

    sweep = config.sweep
    assert sweep.timezone == "Europe/Copenhagen"
    assert sweep.fiscal_year_end == FiscalYearEnd(12, 31)
    assert (sweep.batch_size, sweep.max_fraction) == (5000, 0.5)
    assert sweep.hash_key_env == "GDPR_SWEEP_KEY"
    assert {db.name for db in config.databases} >= {"aarhus", "odense"}
    assert config.database("aarhus").url_env == "AARHUS_DB_URL"
    assert config.database("odense").url == "sqlite:///odense.db"

    rules = {rule.id: rule for rule in config.rules}
    counselling = rules["counselling-anonymise"]
    assert counselling.action == "anonymise"
    assert counselling.after == Period(6, "month")
    assert counselling.only == (("status", ("closed",)),)
    assert dict(counselling.columns) == {
        "name": "null",
        "email": "null",
        "cpr": "null",
        "birth_date": "year",
        "notes": "redact",
        "phone": "hash",
    }
    invoice = rules["invoice-delete"]
    assert (invoice.action, invoice.after, invoice.from_fiscal_year_end) == (
        "delete",
        Period(5, "year"),
        True,
    )
    customer = rules["customer-delete"]
    assert customer.since_latest is not None
    assert (customer.since_latest.table, customer.since_latest.key) == ("engagement", "customer_id")
    assert customer.cascade == ("contact_person",)

    subject = config.subject
    assert subject is not None
    assert subject.root == "candidate"
    assert dict(subject.identifiers) == {"email": "email", "cpr": "cpr"}
    assert [(link.table, link.references_table) for link in subject.links] == [
        ("consultant_mail", "candidate"),
        ("attachment", "candidate"),
    ]
    erase = {entry.table: entry for entry in subject.erase}
    assert (erase["invoice"].action, erase["invoice"].rule) == ("keep", "invoice-delete")
    assert erase["candidate"].action == "anonymise"
    assert config.digest.startswith("sha256:")


# --- the config digest ----------------------------------------------------------------------

DIGEST_A = """
# a comment
[sweep]
timezone = "Europe/Copenhagen"   # trailing comment
state_url = "sqlite:///state.db"
batch_size = 100

[databases.main]
url = "sqlite:///target.db"
controller = "Testkommune"

[[rules]]
id = "r"
table = "person"
action = "anonymise"
after = "6 months"
since = "created_at"
only = { status = ["closed", "archived"] }
[rules.columns]
name = "null"
email = "hash"
"""

DIGEST_B = """
[[rules]]
since = "created_at"
after = "6 months"
columns = { email = "hash", name = "null" }
only = { status = ["closed", "archived"] }
action = "anonymise"
table = "person"
id = "r"

[databases.main]
controller = "Testkommune"
url = "sqlite:///target.db"

[sweep]
batch_size = 100
state_url = "sqlite:///state.db"
timezone = "Europe/Copenhagen"
"""


def _digest(directory: Path, text: str, name: str) -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return load_config(path).digest


def test_digest_ignores_comments_and_key_order(tmp_path: Path) -> None:
    a = _digest(tmp_path, DIGEST_A, "a.toml")
    assert a.startswith("sha256:")
    assert _digest(tmp_path, DIGEST_B, "b.toml") == a
    assert _digest(tmp_path, DIGEST_A, "a-again.toml") == a


DIGEST_TABLES = """
[databases.a]
url = "sqlite:///a.db"

[databases.b]
url = "sqlite:///b.db"

[[rules]]
id = "r"
table = "person"
action = "delete"
after = "6 months"
since = "created_at"

[subject]
root = "person"
identifiers = { email = "email", cpr = "cpr" }

[subject.erase.invoice]
action = "keep"
rule = "r"

[subject.erase.person]
action = "delete"
"""


@pytest.mark.parametrize(
    ("old", "new"),
    [
        C(
            '[databases.a]\nurl = "sqlite:///a.db"\n\n[databases.b]\nurl = "sqlite:///b.db"',
            '[databases.b]\nurl = "sqlite:///b.db"\n\n[databases.a]\nurl = "sqlite:///a.db"',
            id="databases",
        ),
        C(
            '{ email = "email", cpr = "cpr" }',
            '{ cpr = "cpr", email = "email" }',
            id="identifiers",
        ),
        C(
            '[subject.erase.invoice]\naction = "keep"\nrule = "r"\n\n'
            '[subject.erase.person]\naction = "delete"',
            '[subject.erase.person]\naction = "delete"\n\n'
            '[subject.erase.invoice]\nrule = "r"\naction = "keep"',
            id="erase",
        ),
        C('after = "6 months"', 'after = "6 month"', id="same-period-spelled-differently"),
        C('table = "person"', 'table = "person"  # the same table', id="comment"),
    ],
)
def test_digest_ignores_the_order_of_tables(tmp_path: Path, old: str, new: str) -> None:
    assert old in DIGEST_TABLES
    a = _digest(tmp_path, DIGEST_TABLES, "a.toml")
    assert _digest(tmp_path, DIGEST_TABLES.replace(old, new), "b.toml") == a


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('after = "6 months"', 'after = "7 months"'),
        ('after = "6 months"', 'after = "6 years"'),
        ('since = "created_at"', 'since = "birth_date"'),
        ('email = "hash"', 'email = "null"'),
        ('"closed", "archived"', '"closed"'),
        ("batch_size = 100", "batch_size = 101"),
    ],
)
def test_digest_changes_with_the_config(tmp_path: Path, old: str, new: str) -> None:
    assert old in DIGEST_A
    a = _digest(tmp_path, DIGEST_A, "a.toml")
    assert _digest(tmp_path, DIGEST_A.replace(old, new), "b.toml") != a


def test_digest_is_the_plan_digest(tmp_path: Path, target: Path) -> None:
    config = write(tmp_path, BASE)
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["config_digest"] == load_config(config).digest
    document = changed(BASE, {"rules[0].after": "7 months"})
    config = write(tmp_path, document, "changed.toml")
    changed_result = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert changed_result.json()["config_digest"] != result.json()["config_digest"]
