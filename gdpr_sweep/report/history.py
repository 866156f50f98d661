"""What was done: the sweeps and the requests of the report's period, from the state
database (the runs and their audit entries), never from a target database.

A run belongs to the period by its as-of (the day it swept for), in `sweep.timezone`.
The runs table is the tool's own, one row per run; only the period's runs are kept, and
only the entries that explain them (`run-start`: ticket and approver; `erase`: what was
erased or kept; `stopped`, `database-failed`, `verify-failed`: why) are read.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..state.models import audit_entries, runs
from ..times import parse_stored

SWEEPS = ("run", "apply")
REQUESTS = {"erase": "erasure", "export": "access", "replay": "erasure replayed"}
#: Run statuses a DPO should look at, and what each means.
TROUBLE = {
    "partial": "a database or rule failed, the others completed",
    "failed": "the run failed",
    "refused": "refused before anything was changed",
    "stopped": "stopped by a signal after its current batch",
    "interrupted": "the process died; the next run marked it and carried on",
    "incomplete": "the nightly window ran out; the next run carried on",
}
_EXPLAINING = ("run-start", "erase", "replay", "stopped", "database-failed", "verify-failed")


@dataclass
class SweepRecord:
    """One `run` or `apply`: when, how it ended, and per (database, rule) what it did."""

    run_id: int
    command: str
    as_of: dt.date
    status: str
    ticket: str | None = None
    approved_by: str | None = None
    done: dict[tuple[str, str], int] = field(default_factory=dict)
    left: dict[tuple[str, str], int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def rows(self, database: str) -> int:
        return sum(n for (db, _rule), n in self.done.items() if db == database)

    def touches(self, database: str) -> bool:
        """Whether the sweep acted on `database` or a reason it failed names it."""
        named = re.compile(rf"\bdatabase {re.escape(database)}\b")
        return any(db == database for db, _rule in (*self.done, *self.left)) or any(
            named.search(reason) for reason in self.reasons
        )


@dataclass
class KeptRows:
    database: str
    table: str
    rows: int
    basis: str
    until: str | None


@dataclass
class RequestRecord:
    """One erasure or access request (`erase`, `export`, `replay`)."""

    run_id: int
    kind: str  # erasure | access | erasure replayed
    day: dt.date
    status: str
    ticket: str | None = None
    changed: dict[str, int] = field(default_factory=dict)  # per database: rows erased
    kept: list[KeptRows] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class History:
    sweeps: list[SweepRecord] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)


def read_history(engine: sa.Engine, since: dt.date, until: dt.date, tz: ZoneInfo) -> History:
    """The sweeps and requests whose as-of falls on a local day in [since, until]."""
    history = History()
    wanted = (*SWEEPS, *REQUESTS)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(runs.c.id, runs.c.command, runs.c.as_of, runs.c.status, runs.c.summary)
            .where(runs.c.command.in_(wanted))
            .order_by(runs.c.id)
        )
        chosen = []
        for row in rows:
            day = parse_stored(row.as_of).astimezone(tz).date()
            if since <= day <= until:
                chosen.append((row, day))
        entries = _explaining_entries(connection, [row.id for row, _day in chosen])
    for row, day in chosen:
        summary = _json(row.summary)
        mine = entries.get(row.id, [])
        if row.command in SWEEPS:
            history.sweeps.append(_sweep(row, day, summary, mine))
        else:
            history.requests.append(_request(row, day, mine))
    return history


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _explaining_entries(connection: sa.Connection, run_ids: list[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for start in range(0, len(run_ids), 500):  # bounded IN lists
        chunk = run_ids[start : start + 500]
        result = connection.execute(
            sa.select(audit_entries)
            .where(audit_entries.c.run_id.in_(chunk), audit_entries.c.kind.in_(_EXPLAINING))
            .order_by(audit_entries.c.id)
        )
        for entry in result:
            found.setdefault(entry.run_id, []).append(entry)
    return found


def _start_details(entries: list[Any]) -> dict[str, Any]:
    start = next((e for e in entries if e.kind == "run-start"), None)
    return _json(start.details) if start is not None else {}


def _sweep(row: Any, day: dt.date, summary: dict[str, Any], entries: list[Any]) -> SweepRecord:
    started = _start_details(entries)
    record = SweepRecord(
        run_id=row.id,
        command=row.command,
        as_of=day,
        status=row.status,
        ticket=summary.get("ticket") or started.get("ticket"),
        approved_by=summary.get("approved_by") or started.get("approved_by"),
    )
    for item in summary.get("items") or []:
        key = (str(item.get("database")), str(item.get("rule")))
        record.done[key] = record.done.get(key, 0) + int(item.get("done") or 0)
        if item.get("left"):
            record.left[key] = int(item["left"])
    if summary.get("reason"):  # a refused run
        record.reasons.append(str(summary["reason"]))
    record.reasons += [str(f.get("error")) for f in summary.get("failures") or [] if f]
    for entry in entries:
        if entry.kind == "stopped":
            reason = _json(entry.details).get("reason")
            record.reasons.append(f"stopped ({reason}) with {entry.rows or 0:,} row(s) left")
    if row.status == "interrupted" and not record.reasons:
        record.reasons.append(TROUBLE["interrupted"])
    return record


def _request(row: Any, day: dt.date, entries: list[Any]) -> RequestRecord:
    record = RequestRecord(
        run_id=row.id,
        kind=REQUESTS[row.command],
        day=day,
        status=row.status,
        ticket=_start_details(entries).get("ticket"),
    )
    for entry in entries:
        if entry.kind == "database-failed":
            record.reasons.append(str(_json(entry.details).get("error")))
        if entry.kind not in ("erase", "replay") or not entry.rows:
            continue
        database = str(entry.database_name)
        if entry.action == "kept":
            details = _json(entry.details)
            record.kept.append(
                KeptRows(
                    database,
                    str(entry.table_name),
                    int(entry.rows),
                    str(details.get("basis") or "(no basis recorded)"),
                    details.get("until"),
                )
            )
        elif entry.action in ("deleted", "anonymised"):
            record.changed[database] = record.changed.get(database, 0) + int(entry.rows)
    return record
