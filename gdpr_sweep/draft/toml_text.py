"""The drafted config as TOML text, with a comment on every choice.

Values are encoded by tomli-w (`tomli_w.dumps` of one key at a time: exact string
escapes and key quoting), the comments and layout are ours; the result is parsed back
with tomllib before it is written. Comments hold names, types and counts only.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from ..config import TODO
from .rules import RuleDraft
from .subject import SubjectDraft


@dataclass
class DraftDocument:
    """What the text is made of: the database entry, the subject, the rules."""

    database: str
    url: str | None  # written as `url` (a SQLite file), else url_env
    url_env: str | None
    engine: str
    tables: int
    subject: SubjectDraft | None
    rules: list[RuleDraft]
    skipped: list[str] = field(default_factory=list)  # one line each: table and why


def _comment(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _key(name: str) -> str:
    return tomli_w.dumps({name: 0}).rsplit(" = ", 1)[0]


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip()[len("v = ") :]


def _line(name: str, value: Any, comment: str = "") -> str:
    text = f"{_key(name)} = {_value(value)}"
    return f"{text}  # {_comment(comment)}" if comment else text


def _header(lines: list[str], title: str) -> None:
    lines += ["", f"# --- {title} " + "-" * max(3, 80 - len(title) - 7)]


def _table_column(table: str, column: str) -> list[str]:
    return [_line("table", table), _line("column", column)]


def _subject(lines: list[str], subject: SubjectDraft | None) -> None:
    _header(lines, "who a person is: erase and export")
    if subject is None:
        lines += [
            "# No table has an e-mail or identity-number column, so no [subject] is suggested:",
            "# erase and export need one (see config.example.toml).",
        ]
        return
    lines += [
        f"# Suggested root: {_comment(subject.root.name)} ({_comment(subject.why)}).",
        "# Every table that reaches it through foreign keys holds a person's rows.",
        "[subject]",
        _line("root", subject.root.name),
    ]
    if subject.parents:
        lines.append("# Suggested parents: tables whose rows the person's rows refer to.")
        for parent in subject.parents:
            lines.append(f"#   {_comment(parent.table)}: {_comment(parent.why)}")
        lines.append(_line("parents", [p.table for p in subject.parents]))
    lines += [
        "# Erasure deletes the person's rows; rows a law makes you keep (invoices) get",
        '# [subject.erase.TABLE] action = "keep" with the rule that deletes them later.',
        "[subject.identifiers]  # --subject KIND=VALUE finds the root rows by these",
    ]
    for kind, column in subject.identifiers:
        lines.append(_line(kind, column))
    for link in subject.links:
        lines += [
            "",
            f"# Suggested link: no foreign key, but {_comment(link.why)}.",
            "[[subject.links]]",
            *_table_column(link.table, link.column),
            _line("references", link.target),
        ]
    for ref in subject.references:
        lines += [
            "",
            f"# Suggested reference: {_comment(ref.why)}.",
            "[[subject.references]]",
            *_table_column(ref.table, ref.column),
            _line(
                "action",
                ref.action,
                'erasing the referred person sets it to NULL ("null"), keeps it ("keep") '
                'or refuses ("refuse")',
            ),
        ]


def _rule(lines: list[str], rule: RuleDraft) -> None:
    facts = rule.facts
    shown = ", ".join(c.name for c in facts.personal) or "its primary key"
    lines += [
        "",
        f"# {_comment(facts.name)}: personal-looking columns {_comment(shown)}.",
        "[[rules]]",
        _line("id", rule.id),
        _line("table", facts.name),
        _line("action", rule.action, rule.action_why),
        _line("after", TODO, 'how long after `since` the rows are kept, e.g. "6 months"'),
    ]
    if rule.since is None:
        lines.append(
            _line("since", TODO, "no date or timestamp column: name one, or use since_latest")
        )
    else:
        lines.append(_line("since", rule.since, rule.since_why))
    if rule.activity is not None:
        table, column, key = (_value(v) for v in rule.activity)
        lines.append(
            f"# or from the latest activity: since_latest = {{ table = {table}, "
            f"column = {column}, key = {key} }}"
        )
    lines.append(_line("basis", TODO, "the legal basis for keeping them that long"))
    lines.append(_line("categories", rule.categories, "the data categories the rows hold"))
    if rule.cascade:
        notes = "; ".join(rule.notes)
        lines.append(_line("cascade", [t.name for t in rule.cascade], notes))
    if rule.action == "anonymise":
        lines.append("[rules.columns]")
        for choice in rule.columns:
            if choice.strategy is None:
                lines.append(f"# {_comment(choice.column)}: {_comment(choice.why)}")
            else:
                lines.append(_line(choice.column, choice.strategy, choice.why))


def draft_text(document: DraftDocument) -> str:
    """The config text; it parses as TOML (checked here)."""
    lines = [
        "# A first gdpr-sweep config, drafted by `gdpr-sweep init` from the schema of",
        f"# database {_comment(document.database)} ({document.engine}, "
        f"{document.tables} tables, {len(document.rules)} rules).",
        "#",
        '# Every "TODO" is a question only you can answer: `gdpr-sweep check` lists those',
        "# left, and no other command runs until they are answered. Everything else is a",
        "# suggestion from column names, types, constraints and counts (never a value):",
        "# read each one, and delete what does not fit.",
        "",
        "[sweep]",
        _line("state_url", "sqlite:///gdpr-sweep-state.db",
              "the tool's own database (audit trail, holds), beside this file"),
        _line("hash_key_env", "GDPR_SWEEP_KEY", "the secret for keyed hashes (run, apply)"),
        _line("timezone", "Europe/Copenhagen", "how naive timestamps are read: set yours"),
        "",
        f"[databases.{_key(document.database)}]",
    ]  # fmt: skip
    if document.url is not None:
        lines.append(_line("url", document.url, "a SQLite file: no secret in it"))
    else:
        lines.append(_line("url_env", document.url_env, "the URL (and its password) comes from "
                           "the environment, never from this file"))  # fmt: skip
    lines.append('# controller = "..."  # who is data controller (shown in plans and receipts)')
    _subject(lines, document.subject)
    _header(lines, "retention rules")
    if not document.rules:
        lines.append("# No table has personal-looking columns (by their names).")
    for rule in document.rules:
        _rule(lines, rule)
    if document.skipped:
        lines += ["", "# Not drafted:"]
        lines += [f"#   {_comment(line)}" for line in document.skipped]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # a bug here must never write a file check cannot read
    return text
