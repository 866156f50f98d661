"""`plan` a DPO can read: any terminal width, Markdown and CSV for a sign-off document.

At 80 and 120 columns (COLUMNS, as Rich reads it) the rule, table, action and due count
of every item are whole — never cut to `1,…`, never dropped — however long the rule ids
and table names, and the legal basis is shown. `--format md` (a table per database) and
`--format csv` (RFC 4180) parse back to the items of `plan --json`. `--format` with
`--json` is exit 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.cells import cell_len

from tests.configs import rule_toml
from tests.conftest import TargetDb, items_by_rule, run_cli

AS_OF = "2026-06-01"
LONG_RULE = "counselling-case-anonymise-after-course-end"
LONG_TABLE = "counselling_case_archive_2019_2026"
BASIS_PIPE = 'GDPR art. 6(1)(c) | Bogføringsloven § 10, "five years"'
RULES = rule_toml(
    LONG_RULE,
    LONG_TABLE,
    "anonymise",
    after="6 months",
    since="ended_at",
    columns={"name": "null"},
    basis="GDPR art. 6(1)(c), 9(2)(b); the counselling contract",
) + rule_toml(
    "mail-delete",
    "mail",
    "delete",
    after="30 days",
    since="sent_at",
    unless_true="kept",
    basis=BASIS_PIPE,
)


def build(path: Path, due_cases: int) -> None:
    target = TargetDb("sqlite", f"sqlite:///{path}")
    m = sa.MetaData()
    sa.Table(
        LONG_TABLE,
        m,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(60)),
        sa.Column("ended_at", sa.DateTime),
    )
    sa.Table("mail", m, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("sent_at", sa.DateTime), sa.Column("kept", sa.Boolean))  # fmt: skip
    old = dt.datetime(2025, 1, 5, 12, 0)
    target.create(
        m,
        {
            LONG_TABLE: [{"id": i, "name": f"N{i}", "ended_at": old} for i in range(due_cases)],
            "mail": [{"id": i, "sent_at": old, "kept": i < 2} for i in range(7)],
        },
    )


def configure(tmp_path: Path, databases: dict[str, int]) -> Path:
    """A config with a SQLite database per name, each with `due_cases` rows due."""
    body = '[sweep]\nstate_url = "sqlite:///state.db"\ntimezone = "Europe/Copenhagen"\n'
    for name, due_cases in databases.items():
        build(tmp_path / f"{name}.db", due_cases)
        body += (
            f'\n[databases.{name}]\nurl = "sqlite:///{tmp_path / name}.db"\n'
            f'controller = "Controller of {name}"\n'
        )
    path = tmp_path / "gdpr-sweep.toml"
    path.write_text(body + RULES, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("many", [False, True], ids=["one-database", "two-databases"])
def test_every_width_keeps_rule_table_action_and_due_whole(
    tmp_path: Path, width: int, many: bool
) -> None:
    databases = {"main": 1234, "second": 5} if many else {"main": 1234}
    config = configure(tmp_path, databases)
    items = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json").json()["items"]
    assert sorted(i["due"] for i in items if i["rule"] == LONG_RULE)[-1] == 1234
    shown = run_cli("plan", "-c", str(config), "--as-of", AS_OF, env={"COLUMNS": str(width)})
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= width
    for item in items:
        count = f"{item['due']:,}"
        due = re.compile(rf"(?<![\d,]){re.escape(count)}(?![\d,])")
        assert any(item["rule"] in line for line in lines), item["rule"]
        assert any(item["table"] in line for line in lines), item["table"]
        assert any(due.search(line) for line in lines), item["due"]
        action = re.compile(rf"\b{item['action']}\b")
        assert any(action.search(line) for line in lines)
        words = re.findall(r"[\w§]+", item["basis"])
        assert all(word in shown.stdout for word in words), "the legal basis is shown"
        if many:
            assert any(item["database"] in line for line in lines)
    # Nothing was cut: the one ellipsis is the config digest's, in the caption.
    assert all("…" not in line or "config sha256:" in line for line in lines)
    assert "1,…" not in shown.stdout


def md_rows(text: str) -> dict[str, list[dict[str, str]]]:
    """Each `## database` section's table, as dicts by header."""
    sections: dict[str, list[dict[str, str]]] = {}
    current: list[dict[str, str]] = []
    headers: list[str] = []
    for line in text.splitlines():
        if line.startswith("## database "):
            current = sections.setdefault(line.split()[2], [])
            headers = []
        elif line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not headers:
                headers = cells
            elif not set(line) <= set("|-: "):
                current.append(dict(zip(headers, cells, strict=True)))
    return sections


def test_markdown_and_csv_parse_back_to_the_plan(tmp_path: Path) -> None:
    config = configure(tmp_path, {"main": 1234, "second": 5})
    c = str(config)
    expected = run_cli("plan", "-c", c, "--as-of", AS_OF, "--json").json()["items"]

    md = run_cli("plan", "-c", c, "--as-of", AS_OF, "--format", "md")
    assert md.exit_code == 0, md.stdout + md.stderr
    sections = md_rows(md.stdout)
    assert list(sections) == ["main", "second"]  # a table per database
    assert "· controller Controller of main" in md.stdout
    for item in expected:
        (row,) = [r for r in sections[item["database"]] if r["rule"] == item["rule"]]
        assert (row["table"], row["action"], row["after"]) == (
            item["table"], item["action"], item["after"],
        )  # fmt: skip
        assert int(row["due"].replace(",", "")) == item["due"]
        assert int(row["held"].replace(",", "")) == item["held"]
        assert row["legal basis"] == item["basis"]
        assert row["due before"] == item["cutoff"][:10]
    assert "2 unless" not in md.stdout and "2 kept is true" in md.stdout

    # The real process's bytes (the test runner folds CRLF): RFC 4180 line ends.
    raw = subprocess.run(
        [sys.executable, "-m", "gdpr_sweep", "plan", "-c", c, "--as-of", AS_OF, "--format", "csv"],
        capture_output=True,
        check=True,
    ).stdout
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == len(expected) + 1
    text = raw.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [(r["database"], r["rule"]) for r in rows] == [
        (i["database"], i["rule"]) for i in expected
    ]
    for row, item in zip(rows, expected, strict=True):
        assert (int(row["due"]), int(row["held"]), row["basis"]) == (
            item["due"], item["held"], item["basis"],
        )  # fmt: skip
        assert (row["table"], row["cutoff"], row["controller"]) == (
            item["table"], item["cutoff"], item["controller"],
        )  # fmt: skip
    assert items_by_rule({"items": rows})["mail-delete"]["held_because"] == "2 kept is true"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--format", "md", "--json"], "--format: cannot be combined with --json"),
        (["--format", "html"], "--format: one of text, md, csv"),
    ],
)
def test_format_with_json_or_unknown_is_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    config = configure(tmp_path, {"main": 3})
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF, *args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {words}") and len(result.stderr.splitlines()) == 1
