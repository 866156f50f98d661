"""Runs in the state database: starting one, finishing it, marking those a killed
process left `running` as interrupted (with the batches it never confirmed), and
reading them back.

Many processes may share a state database (shards): a run is started only while its
process holds its process lock (`tenant_lock.py`), and a `running` run is taken for
interrupted only when the lock of the process that recorded it (its host and pid) is
free — that process is gone — never merely because another process starts.

Every change to a run's row is written with an audit entry that seals the row
(`run_row`, see `chain.py`), in the same transaction. `StateStore` has them as a mixin.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import __version__
from ..times import parse_stored, stored
from .chain import SELECT_LAST_ENTRY, chain_head, run_row_digest
from .models import audit_entries, runs
from .stamps import utc_now, who_is_running
from .tenant_lock import LockSpace, process_name, this_process

if TYPE_CHECKING:
    from ..config import Config


class RunRecords:
    """`StateStore`'s runs: a mixin, `self` is the store (see `store.py`)."""

    # What StateStore (store.py) provides.
    config: Config
    engine: sa.Engine
    hmac_key: bytes | None

    _ensure_key: Callable[[], None]
    _append: Callable[..., str]
    _timed: Callable[[], Any]
    hold_process_lock: Callable[[], None]
    locks: LockSpace

    def start_run(
        self,
        command: str,
        as_of: dt.datetime,
        plan_digest: str | None = None,
        subject_hash: str | None = None,
        approval: dict[str, Any] | None = None,
    ) -> int:
        """Record a new run as `running`, with a `run-start` audit entry; return its id.

        `approval`: the ticket and approver given (`Approval.details()`), recorded in
        the chained `run-start` entry."""
        self._ensure_key()
        self.hold_process_lock()
        with self._timed(), self.engine.begin() as connection:
            run_id = insert_run(
                connection,
                command,
                as_of,
                self.config.digest,
                plan_digest=plan_digest,
                subject_hash=subject_hash,
            )
            self._append(
                connection,
                run_id,
                "run-start",
                details={
                    "command": command,
                    "as_of": stored(as_of),
                    "config_digest": self.config.digest,
                    "plan_digest": plan_digest,
                    "subject": subject_hash,
                    **(approval or {}),
                    "run_row": _seal(self, connection, run_id),
                },
            )
        return int(run_id)

    def record_plan(
        self,
        as_of: dt.datetime,
        plan_digest: str,
        summary: dict[str, Any],
        write: Callable[[int], None] = lambda run_id: None,
    ) -> int:
        """Record a plan written by `plan --out`: a `planned` run, finished as it starts,
        sealed by one `planned` entry (digests and counts, no key); return its id.

        `write(run_id)` writes the plan file before the record is committed: a file that
        cannot be written leaves no record (and a record always has its file)."""
        self._ensure_key()
        with self.engine.begin() as connection:
            run_id = insert_run(
                connection, "plan", as_of, self.config.digest, plan_digest=plan_digest
            )
            this_run = runs.update().where(runs.c.id == run_id)
            connection.execute(
                this_run.values(
                    status="planned",
                    finished_at=utc_now(),
                    summary=json.dumps(summary, default=str),
                )
            )
            self._append(
                connection,
                run_id,
                "planned",
                rows=int(summary.get("rows_due") or 0),
                details={
                    "command": "plan",
                    "as_of": as_of.isoformat(),
                    "config_digest": self.config.digest,
                    "plan_digest": plan_digest,
                    "run_row": _seal(self, connection, run_id),
                },
            )
            write(int(run_id))
        return int(run_id)

    def planned_run(self, plan_digest: str) -> int | None:
        """The newest `planned` run that recorded this plan digest (None: none did)."""
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(sa.func.max(runs.c.id)).where(
                    runs.c.command == "plan", runs.c.plan_digest == plan_digest
                )
            ).scalar()
        return None if found is None else int(found)

    def approvals(self, run_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Per run, what its chained `run-start` (or `planned`) entry recorded of the
        review: `approved_by`, `ticket`, `plan_digest`, `plan_run` (those given)."""
        if not run_ids:
            return {}
        wanted = ("approved_by", "ticket", "plan_digest", "plan_run")
        found: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    audit_entries.c.run_id, audit_entries.c.kind, audit_entries.c.details
                ).where(
                    audit_entries.c.run_id.in_(run_ids),
                    audit_entries.c.kind.in_(("run-start", "planned")),
                )
            )
            for row in rows:
                try:
                    details = json.loads(row.details or "{}")
                except ValueError:
                    continue  # an altered entry: `audit verify` says so
                if isinstance(details, dict):
                    if row.kind == "planned":  # the plan's own run planned it
                        details = {**details, "plan_run": row.run_id}
                    found[row.run_id] = {
                        k: details[k] for k in wanted if details.get(k) is not None
                    }
        return found

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> str:
        """Record how the run ended; return the chain's head after it (`N:digest`)."""
        self._ensure_key()
        with self._timed(), self.engine.begin() as connection:
            this_run = runs.update().where(runs.c.id == run_id)
            connection.execute(
                this_run.values(
                    status=status, finished_at=utc_now(), summary=json.dumps(summary, default=str)
                )
            )
            head = self._append(
                connection,
                run_id,
                "run-end",
                details={"status": status, "run_row": _seal(self, connection, run_id)},
            )
            count = connection.execute(SELECT_LAST_ENTRY).one().id
            summary = {**summary, "audit_head": head}
            connection.execute(this_run.values(summary=json.dumps(summary, default=str)))
        assert self.hmac_key is not None
        return chain_head(self.hmac_key, head, count)

    def mark_interrupted(self) -> list[int]:
        """Mark runs left `running` by a process that is gone as `interrupted`.

        Gone: its process lock is free (see the module's docstring). This process's
        own runs, and those of processes still holding their lock (other shards,
        other hosts), are left alone."""
        self._ensure_key()
        with self.engine.connect() as connection:
            running = connection.execute(
                sa.select(runs.c.id, runs.c.host, runs.c.pid)
                .where(runs.c.status == "running")
                .order_by(runs.c.id)
            ).all()
        ours = this_process()
        stale: list[int] = []
        for run_id, host, pid in running:
            if (host, pid) == ours:
                continue
            probe = self.locks.try_take("process", process_name(host, pid))
            if probe is None:
                continue  # its process still holds its lock: it is running
            try:
                if self._mark_one_interrupted(run_id):
                    stale.append(run_id)
            finally:
                probe.release()
        return stale

    def _mark_one_interrupted(self, run_id: int) -> bool:
        """Mark one run interrupted, if it is still `running` (read again under the
        write): its process may have finished it since it was listed."""
        with self._timed(), self.engine.begin() as connection:
            status = connection.execute(
                sa.select(runs.c.status).where(runs.c.id == run_id)
            ).scalar()
            if status != "running":
                return False
            for entry in _unconfirmed_batches(connection, run_id):
                self._append(
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
            self._append(
                connection,
                run_id,
                "run-interrupted",
                details={"run_row": _seal(self, connection, run_id)},
            )
        return True

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

    def last_success(self) -> float | None:
        """Unix time at which the last sweep (run or apply) completed without failures."""
        with self.engine.connect() as connection:
            finished = connection.execute(
                sa.select(sa.func.max(runs.c.finished_at)).where(
                    runs.c.command.in_(("run", "apply")), runs.c.status == "completed"
                )
            ).scalar()
        return parse_stored(finished).timestamp() if finished else None

    def run(self, run_id: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            entries = connection.execute(
                sa.select(audit_entries)
                .where(audit_entries.c.run_id == run_id)
                .order_by(audit_entries.c.id)
            ).mappings()
            return (dict(row) if row else None), [dict(e) for e in entries]


def insert_run(
    connection: sa.Connection, command: str, as_of: dt.datetime, config_digest: str, **fields: Any
) -> int:
    """Insert a `running` run row for this process (who, where, which version); its id."""
    return int(
        connection.execute(
            runs.insert().values(
                command=command,
                as_of=stored(as_of),
                config_digest=config_digest,
                user_name=who_is_running(),
                host=this_process()[0],
                pid=this_process()[1],
                tool_version=__version__,
                started_at=utc_now(),
                status="running",
                **fields,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    )


def _seal(store: RunRecords, connection: sa.Connection, run_id: int) -> str:
    """The keyed digest of the run's row as it now stands (see `chain.py`)."""
    assert store.hmac_key is not None, "writing the audit trail needs the key"
    row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()
    return run_row_digest(store.hmac_key, row)


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
