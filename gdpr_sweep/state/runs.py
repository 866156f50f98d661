"""Runs in the state database: starting one, finishing it, marking those a killed
process left `running` as interrupted (with the batches it never confirmed), and
reading them back.

Every change to a run's row is written with an audit entry that seals the row
(`run_row`, see `chain.py`), in the same transaction. `StateStore`'s methods of the
same names come here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import __version__
from .chain import SELECT_LAST_ENTRY, chain_head, run_row_digest
from .models import audit_entries, runs
from .stamps import utc_now, who_is_running

if TYPE_CHECKING:
    from .store import StateStore


def start_run(
    store: StateStore,
    command: str,
    as_of: dt.datetime,
    plan_digest: str | None = None,
    subject_hash: str | None = None,
    approval: dict[str, str] | None = None,
) -> int:
    """Record a new run as `running`, with a `run-start` audit entry; return its id.

    `approval`: the ticket and approver given (`Approval.details()`), recorded in
    the chained `run-start` entry."""
    store._ensure_key()
    with store.engine.begin() as connection:
        run_id = connection.execute(
            runs.insert().values(
                command=command,
                as_of=as_of.isoformat(),
                config_digest=store.config.digest,
                plan_digest=plan_digest,
                user_name=who_is_running(),
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                tool_version=__version__,
                started_at=utc_now(),
                status="running",
                subject_hash=subject_hash,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        store._append(
            connection,
            run_id,
            "run-start",
            details={
                "command": command,
                "as_of": as_of.isoformat(),
                "config_digest": store.config.digest,
                "plan_digest": plan_digest,
                "subject": subject_hash,
                **(approval or {}),
                "run_row": _seal(store, connection, run_id),
            },
        )
    return int(run_id)


def _seal(store: StateStore, connection: sa.Connection, run_id: int) -> str:
    """The keyed digest of the run's row as it now stands (see `chain.py`)."""
    assert store.hmac_key is not None, "writing the audit trail needs the key"
    row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()
    return run_row_digest(store.hmac_key, row)


def finish_run(store: StateStore, run_id: int, status: str, summary: dict[str, Any]) -> str:
    """Record how the run ended; return the chain's head after it (`N:digest`)."""
    store._ensure_key()
    with store.engine.begin() as connection:
        this_run = runs.update().where(runs.c.id == run_id)
        connection.execute(
            this_run.values(
                status=status, finished_at=utc_now(), summary=json.dumps(summary, default=str)
            )
        )
        head = store._append(
            connection,
            run_id,
            "run-end",
            details={"status": status, "run_row": _seal(store, connection, run_id)},
        )
        count = connection.execute(SELECT_LAST_ENTRY).one().id
        summary = {**summary, "audit_head": head}
        connection.execute(this_run.values(summary=json.dumps(summary, default=str)))
    assert store.hmac_key is not None
    return chain_head(store.hmac_key, head, count)


def mark_interrupted(store: StateStore) -> list[int]:
    """Mark runs left `running` by a killed process as `interrupted` (lock held)."""
    store._ensure_key()
    with store.engine.begin() as connection:
        stale = [
            row.id
            for row in connection.execute(
                sa.select(runs.c.id).where(runs.c.status == "running").order_by(runs.c.id)
            )
        ]
        for run_id in stale:
            pending = _unconfirmed_batches(connection, run_id)
            for entry in pending:
                store._append(
                    connection,
                    run_id,
                    "batch-unconfirmed",
                    database=entry.database_name,
                    rule=entry.rule_id,
                    table=entry.table_name,
                    action=entry.action,
                    key_from=entry.key_from,
                    key_to=entry.key_to,
                    details={
                        "note": "the process died during this batch; its "
                        "transaction either committed or rolled back as a whole, "
                        "and rows still due are processed by the next run"
                    },
                )
            connection.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status="interrupted", finished_at=utc_now())
            )
            store._append(
                connection,
                run_id,
                "run-interrupted",
                details={"run_row": _seal(store, connection, run_id)},
            )
    return stale


def _unconfirmed_batches(connection: sa.Connection, run_id: int) -> list[Any]:
    entries = connection.execute(
        sa.select(audit_entries)
        .where(
            audit_entries.c.run_id == run_id,
            audit_entries.c.kind.in_(("batch-start", "batch")),
        )
        .order_by(audit_entries.c.id)
    ).all()
    open_batches: dict[tuple, Any] = {}
    for entry in entries:
        ident = (entry.database_name, entry.rule_id, entry.key_from, entry.key_to)
        if entry.kind == "batch-start":
            open_batches[ident] = entry
        else:
            open_batches.pop(ident, None)
    return list(open_batches.values())


def recent_runs(store: StateStore, limit: int = 50) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        ).mappings()
        return [dict(row) for row in rows]


def last_success(store: StateStore) -> float | None:
    """Unix time at which the last sweep (run or apply) completed without failures."""
    with store.engine.connect() as connection:
        finished = connection.execute(
            sa.select(sa.func.max(runs.c.finished_at)).where(
                runs.c.command.in_(("run", "apply")), runs.c.status == "completed"
            )
        ).scalar()
    return dt.datetime.fromisoformat(finished).timestamp() if finished else None


def run_and_entries(
    store: StateStore, run_id: int
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        entries = connection.execute(
            sa.select(audit_entries)
            .where(audit_entries.c.run_id == run_id)
            .order_by(audit_entries.c.id)
        ).mappings()
        return (dict(row) if row else None), [dict(e) for e in entries]
