"""Helpers for the erasure tests of issue 16 (references, parents, cycles).

Every such test reads every row of every table before and after, runs the real CLI
(`export`, `erase --dry-run --json`, `erase --json --receipt`), and checks that the
dry run and the erasure report the same `erased`, `kept` and `references`, and that no
personal value reaches any output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from gdpr_sweep.values.encoding import encode_value
from tests.conftest import CliResult, run_cli

Rows = dict[str, dict[tuple, dict]]


def by_id(rows: dict[str, list[dict]]) -> Rows:
    """The rows given to `TargetDb.create`, keyed like `dump()` (every table has `id`)."""
    return {name: {(r["id"],): dict(r) for r in table_rows} for name, table_rows in rows.items()}


def dump(url: str) -> Rows:
    """Every row of every table, by primary key."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            tables: Rows = {}
            for name, table in metadata.tables.items():
                pk = list(table.primary_key.columns)
                tables[name] = {
                    tuple(row[c.name] for c in pk): dict(row)
                    for row in connection.execute(sa.select(table).order_by(*pk)).mappings()
                }
            return tables
    finally:
        engine.dispose()


def personal_values(rows: dict[str, list[dict]], columns: set[str]) -> tuple[str, ...]:
    """Every value of `columns` (names, e-mails, streets) in the test's rows."""
    return tuple(
        str(r[c])
        for table_rows in rows.values()
        for r in table_rows
        for c in columns
        if c in r and r[c] is not None
    )


def assert_no_personal_value(markers: tuple[str, ...], *texts: str) -> None:
    for text in texts:
        for marker in markers:
            escaped = json.dumps(marker)[1:-1]  # as JSON with ensure_ascii would write it
            assert marker not in text and escaped not in text, f"personal value {marker!r}"


def exported(path: Path) -> Rows:
    """The export's non-empty tables, by `id`."""
    document = json.loads(path.read_text(encoding="utf-8"))
    [database] = document["databases"]
    assert database["error"] is None, database["error"]
    return {t["table"]: {(r["id"],): r for r in t["rows"]} for t in database["tables"] if t["rows"]}


def encoded(rows: dict[tuple, dict]) -> dict[tuple, dict]:
    """Rows of one table (from `dump()`) as the export writes them (dates as ISO text)."""
    return {k: {c: encode_value(v) for c, v in row.items()} for k, row in rows.items()}


def summary(document: dict) -> tuple[set, set, set]:
    """(erased, kept, references) of a receipt, as sets of tuples."""
    assert "references" in document, "the receipt has no `references` list"
    erased = {(e["table"], e["action"], e["rows"]) for e in document["erased"]}
    kept = {(k["table"], k["rows"], k["basis"]) for k in document["kept"]}
    references = {
        (r["table"], tuple(r["columns"]), r["referenced_table"], r["action"], r["rows"])
        for r in document["references"]
    }
    return erased, kept, references


def database_error(document: dict) -> str | None:
    [database] = document["databases"]
    return database["error"]


@dataclass
class Erasure:
    """What one person's export, dry run and erasure printed and wrote."""

    export: Rows
    dry: dict
    receipt: dict
    dry_result: CliResult
    real_result: CliResult

    @property
    def erased(self) -> tuple[set, set, set]:
        """The receipt's (erased, kept, references), after checking the dry run agrees."""
        assert summary(self.dry) == summary(self.receipt), "dry run and erasure disagree"
        return summary(self.receipt)


def export_rows(config: Path, tmp_path: Path, subject: str, markers: tuple[str, ...]) -> Rows:
    out = tmp_path / "export.json"
    result = run_cli("export", "-c", str(config), "--subject", subject, "--out", str(out))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert_no_personal_value(markers, result.stdout, result.stderr)
    return exported(out)


def run_all(
    config: Path,
    tmp_path: Path,
    subject: str,
    markers: tuple[str, ...],
    exit_code: int = 0,
    url: str | None = None,
) -> Erasure:
    """Export, dry run (JSON and text), real erasure (each exits `exit_code`, export 0).

    With `url`, also checks that the export and the dry run changed nothing.
    """
    before = dump(url) if url else None
    rows = export_rows(config, tmp_path, subject, markers)
    dry = run_cli("erase", "-c", str(config), "--subject", subject, "--dry-run", "--json")
    assert dry.exit_code == exit_code, dry.stderr + dry.stdout
    assert_no_personal_value(markers, dry.stdout, dry.stderr)
    words = run_cli("erase", "-c", str(config), "--subject", subject, "--dry-run")
    assert words.exit_code == exit_code, words.stderr + words.stdout
    assert_no_personal_value(markers, words.stdout, words.stderr)
    if url:
        assert dump(url) == before, "export or dry run changed rows"

    receipt = tmp_path / "receipt.json"
    real = run_cli("erase", "-c", str(config), "--subject", subject, "--json",
                   "--receipt", str(receipt))  # fmt: skip
    assert real.exit_code == exit_code, real.stderr + real.stdout
    text = receipt.read_text(encoding="utf-8")
    assert_no_personal_value(markers, real.stdout, real.stderr, text)
    document = json.loads(text)
    assert real.json() == document
    return Erasure(rows, dry.json(), document, dry, real)


def exported_tables(path: Path) -> dict[str, list[dict]]:
    """Every table of the export (the empty ones too), its rows as the export lists them."""
    document = json.loads(path.read_text(encoding="utf-8"))
    [database] = document["databases"]
    assert database["error"] is None
    return {t["table"]: t["rows"] for t in database["tables"]}


def erased_and_kept(document: dict) -> tuple[set, set]:
    """(erased, kept) of a receipt or a dry run, as sets of tuples (`summary` without
    the references)."""
    erased = {(e["table"], e["action"], e["rows"]) for e in document["erased"]}
    kept = {(k["table"], k["rows"], k["basis"]) for k in document["kept"]}
    return erased, kept


def export_dry_run_erase(
    config: Path, tmp_path: Path, subject: str, markers: tuple[str, ...]
) -> tuple[Path, dict, dict]:
    """Export, `--dry-run --json`, real erasure with `--receipt` (each must exit 0, and
    print none of `markers`): return the export file, the dry run and the receipt."""
    out = tmp_path / "export.json"
    export = run_cli("export", "-c", str(config), "--subject", subject, "--out", str(out))
    assert export.exit_code == 0, export.stderr + export.stdout
    assert_no_personal_value(markers, export.stdout, export.stderr)

    dry = run_cli("erase", "-c", str(config), "--subject", subject, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr + dry.stdout
    assert_no_personal_value(markers, dry.stdout, dry.stderr)

    receipt = tmp_path / "receipt.json"
    real = run_cli("erase", "-c", str(config), "--subject", subject, "--receipt", str(receipt))
    assert real.exit_code == 0, real.stderr + real.stdout
    text = receipt.read_text(encoding="utf-8")
    assert_no_personal_value(markers, real.stdout, real.stderr, text)
    return out, dry.json(), json.loads(text)
