"""Export a named person's rows from every database as one JSON document (GDPR art. 15, 20).

The document is personal data by intent: it is written only to the file given, created
owner-only, and streamed row by row (never a whole table in memory). Nothing of it
reaches logs or the audit trail, which records counts and the subject's keyed hash.

Values round-trip: each table lists its column types, and every value is written in
one exact encoding per type (gdpr_sweep.values, the README's table): dates and timestamps as
ISO 8601 text, decimals as exact decimal text, binary as base64, json as itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from .. import __version__
from ..approval import Approval
from ..catalog import Catalog, qualified_name
from ..checks.findings import raise_findings
from ..checks.subject_checks import check_subject
from ..config import Config
from ..engines import DatabaseFailure, database_failure, select_databases
from ..errors import DatabaseUnavailable, SchemaError, UsageError
from ..faults import failpoint
from ..formats import format_name
from ..keys import hash_key
from ..state.store import StateStore
from ..values.encoding import RowEncoder
from ..values.tables import prepare_session, readers, row_order
from .fingerprints import subject_hash
from .graph import build_graph
from .identifiers import parse_subject
from .rows import SubjectRows


@dataclass
class ExportResult:
    subject: str
    path: Path
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    failures: list[DatabaseFailure] = field(default_factory=list)
    # Per database: root rows matching the identifier only ignoring case or spaces.
    case_insensitive_matches: dict[str, int] = field(default_factory=dict)
    approval: Approval = field(default_factory=Approval)  # --ticket

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            **self.approval.details(),
            "out": str(self.path),
            "tables": [{"database": db, "table": t, "rows": n} for (db, t), n in self.rows.items()],
            "failures": self.failures,
            "case_insensitive_matches": sum(self.case_insensitive_matches.values()),
        }


def _write_database(
    out: IO[str],
    connection: sa.Connection,
    catalog: Catalog,
    config: Config,
    column: str,
    value: str,
    result: ExportResult,
    database: str,
) -> None:
    graph = build_graph(catalog, config, column)
    rows = SubjectRows(graph, value, catalog.dialect)
    matches = rows.case_insensitive_matches(connection)
    result.case_insensitive_matches[database] = matches
    out.write(f'"case_insensitive_matches": {matches}, ')
    out.write('"tables": [')
    prepare_session(connection)
    for t_index, table in enumerate(graph.order):
        name = qualified_name(table)
        found = readers(connection, table)
        types = {r.name: r.type_name for r in found}
        out.write(("," if t_index else "") + "\n      {")
        out.write(f'"table": {json.dumps(name)}, "columns": {json.dumps(types)}, "rows": [')
        encoder = RowEncoder(found)
        query = (
            sa.select(*(e.label(f"c{i}") for i, e in enumerate(encoder.expressions)))
            .select_from(table)
            .where(rows.of(table))
            .order_by(*row_order(table, catalog.dialect))
        )
        stream = connection.execution_options(stream_results=True, yield_per=1000).execute(query)
        count = 0
        for row in stream:
            out.write(("," if count else "") + "\n        " + encoder.text(row))
            count += 1
        out.write("\n      ]}")
        result.rows[(database, name)] = count
    out.write("\n    ]")


def export_subject(
    config: Config,
    subject: str,
    out_path: Path,
    *,
    databases: list[str] | None = None,
    preflight: Callable[[], None] | None = None,
    approval: Approval | None = None,
) -> ExportResult:
    """Write every row of the person, in every selected database, to `out_path`.

    `preflight` is called once the subject and databases are validated, before any
    row is read: the CLI checks there that `out_path` can be written (exit 2 if not).
    A write that fails later is exit 2 as well: an export changes no row, and nothing
    is recorded in the audit trail for a file that was not written.
    """
    kind, column, value = parse_subject(subject, config)
    hmac_key = hash_key(config)
    hashed = subject_hash(hmac_key, kind, value)
    targets = select_databases(config, databases)
    if preflight is not None:
        preflight()
    result = ExportResult(hashed, out_path, approval=approval or Approval())
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise UsageError(f"--out: cannot write {str(out_path)!r} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            out.write("{\n")
            out.write(
                f'  "format": "{format_name("export")}", "gdpr_sweep_version": "{__version__}",\n'
            )
            out.write(f'  "subject": {json.dumps(hashed)}, "exported_at": "{now}",\n')
            out.write(f'  "ticket": {json.dumps(result.approval.ticket)},\n')
            out.write('  "databases": [')
            for index, target in enumerate(targets):
                out.write(("," if index else "") + "\n    {")
                out.write(
                    f'"database": {json.dumps(target.name)}, '
                    f'"controller": {json.dumps(target.db.controller)}, '
                )
                # Each database goes to an unnamed scratch file first, so one that fails
                # half-way leaves a valid document with its error instead.
                with tempfile.TemporaryFile("w+", encoding="utf-8", dir=out_path.parent) as part:
                    try:
                        with target.read_only() as connection:
                            catalog = Catalog(connection)
                            raise_findings(check_subject(catalog, target.name, config))
                            _write_database(
                                part,
                                connection,
                                catalog,
                                config,
                                column,
                                value,
                                result,
                                target.name,
                            )
                        part.write(', "error": null}')
                        part.seek(0)
                        shutil.copyfileobj(part, out)
                    except (DatabaseUnavailable, SchemaError, sa.exc.DBAPIError) as exc:
                        # The scratch file, with what was read of the person's rows, goes;
                        # the error names the database and the failure, never the driver's
                        # text where it can quote a value (engines.database_failure).
                        failure = database_failure(target, exc)
                        result.failures.append(failure)
                        for key_ in [k for k in result.rows if k[0] == target.name]:
                            del result.rows[key_]
                        result.case_insensitive_matches.pop(target.name, None)
                        out.write(f'"tables": [], "error": {json.dumps(failure["error"])}}}')
                    finally:
                        target.dispose()
            out.write("\n  ]\n}\n")
        failpoint("before-export-write")
        os.replace(tmp, out_path)
    except OSError as exc:
        # Out of space, the directory gone, --out a directory: no row was changed, and
        # the half-written scratch file goes (it holds the person's data).
        tmp.unlink(missing_ok=True)
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"--out: cannot write {str(out_path)!r} ({reason}); nothing was exported"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _audit(config, hmac_key, hashed, result)
    return result


def _audit(config: Config, hmac_key: bytes, hashed: str, result: ExportResult) -> None:
    """Record that the person's data was exported: counts only."""
    with StateStore(config, hmac_key) as store:
        run_id = store.start_run(
            "export",
            dt.datetime.now(dt.UTC),
            subject_hash=hashed,
            approval=result.approval.details(),
        )
        for (database, table), rows in result.rows.items():
            store.append(
                run_id,
                "export",
                database=database,
                table=table,
                action="exported",
                rows=rows,
                details={"subject": hashed},
            )
        store.finish_run(
            run_id,
            "partial" if result.failures else "completed",
            {"subject": hashed, "failures": result.failures},
        )
