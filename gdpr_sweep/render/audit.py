"""What the state commands show: audit runs and entries, chain verification, key rotation, holds."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from ..formats import format_name
from ..times import shown_local, shown_utc

if TYPE_CHECKING:  # Rich is imported when something is drawn
    from zoneinfo import ZoneInfo

    from rich.console import Console

    from ..holds.store import Hold
    from ..state.chain_verify import ChainVerification
    from ..state.rotation import RotationResult


def runs_document(
    runs: list[dict[str, Any]],
    tz: ZoneInfo,
    approvals: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`audit list --json`: each run row, its summary an object (stored as JSON text),
    with the review its chained entry recorded (`approved_by`, `ticket`, `plan_run`)."""
    approvals = approvals or {}
    return {
        "format": format_name("audit list"),
        "runs": [run_json(run, tz, approvals.get(run["id"])) for run in runs],
    }


def run_document(
    run: dict[str, Any],
    entries: list[dict[str, Any]],
    tz: ZoneInfo,
    approval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`audit show --json`: the run and its entries, summary and details as objects."""
    return {
        "format": format_name("audit show"),
        "run": run_json(run, tz, approval),
        "entries": [entry_json(entry) for entry in entries],
    }


#: What a run's row shows of its review, null when not given (review_trail.py).
REVIEW_FIELDS = ("approved_by", "ticket", "plan_run")


def run_json(
    run: dict[str, Any], tz: ZoneInfo, approval: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A run row as JSON: `summary` (null while it runs) an object, not a JSON string;
    its as-of in `sweep.timezone`, when it started and finished in UTC (`times.py`);
    `approved_by`, `ticket` and `plan_run` as the run's chained entry recorded them."""
    review = {name: (approval or {}).get(name) for name in REVIEW_FIELDS}
    return {
        **run,
        "as_of": shown_local(run["as_of"], tz, "auto"),
        "started_at": shown_utc(run["started_at"], "auto"),
        "finished_at": shown_utc(run["finished_at"], "auto"),
        "summary": _decoded(run["summary"]),
        **review,
    }


def entry_json(entry: dict[str, Any]) -> dict[str, Any]:
    """An audit entry as JSON: `details` (null when it has none) an object."""
    return {
        **entry,
        "recorded_at": shown_utc(entry["recorded_at"], "auto"),
        "details": _decoded(entry["details"]),
    }


def _decoded(text: str | None) -> Any:
    """The JSON text as its value; text that is not JSON (an altered row: `audit verify`
    says so) as it is stored."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def print_audit_runs(
    console: Console,
    runs: list[dict[str, Any]],
    tz: ZoneInfo,
    approvals: dict[int, dict[str, Any]] | None = None,
) -> None:
    from rich.table import Table
    from rich.text import Text

    approvals = approvals or {}
    table = Table(title="gdpr-sweep runs (newest first)")
    for header in (
        "run",
        "command",
        "as of",
        "started",
        "finished",
        "status",
        "user@host",
    ):
        table.add_column(header, no_wrap=True)
    table.add_column("approved by", overflow="fold")
    table.add_column("ticket", overflow="fold")
    for run in runs:
        review = approvals.get(run["id"], {})
        table.add_row(
            str(run["id"]),
            run["command"],
            shown_local(run["as_of"], tz),
            shown_utc(run["started_at"]),
            shown_utc(run["finished_at"]) or "",
            run["status"],
            f"{run['user_name']}@{run['host']}",
            Text(review.get("approved_by") or ""),  # as given: never read as markup
            Text(review.get("ticket") or ""),
        )
    console.print(table)


def review_line(approval: dict[str, Any] | None) -> str | None:
    """`approved by staff-4711 · ticket DPO-1 · plan sha256:0f3a… (planned in run 7)`."""
    approval = approval or {}
    parts = []
    if approval.get("approved_by"):
        parts.append(f"approved by {approval['approved_by']}")
    if approval.get("ticket"):
        parts.append(f"ticket {approval['ticket']}")
    if approval.get("plan_digest"):
        planned = approval.get("plan_run")
        where = f" (planned in run {planned})" if planned is not None else " (not in this trail)"
        parts.append(f"plan {str(approval['plan_digest'])[:19]}…{where}")
    return " · ".join(parts) or None


def print_audit_run(
    console: Console,
    run: dict[str, Any],
    entries: list[dict[str, Any]],
    tz: ZoneInfo,
    approval: dict[str, Any] | None = None,
) -> None:
    from rich.table import Table

    console.print(
        f"run {run['id']}: {run['command']} as of {shown_local(run['as_of'], tz)}, "
        f"{run['status']}, "
        f"config {run['config_digest'][:19]}…, by {run['user_name']}@{run['host']}",
        highlight=False,
        markup=False,
    )
    review = review_line(approval)
    if review is not None:
        console.print(review, highlight=False, markup=False)
    table = Table()
    for header in (
        "entry",
        "recorded",
        "kind",
        "database",
        "rule",
        "table",
        "action",
        "rows",
        "keys",
    ):
        table.add_column(header, no_wrap=header != "keys")
    for e in entries:
        keys = f"({e['key_from'] or ''}, {e['key_to']}]" if e["key_to"] is not None else ""
        if e["kind"].startswith("partition") and e.get("details"):
            keys = _partition_text(e["details"])
        table.add_row(
            str(e["id"]),
            shown_utc(e["recorded_at"], "milliseconds"),
            e["kind"],
            e["database_name"] or "",
            e["rule_id"] or "",
            e["table_name"] or "",
            e["action"] or "",
            "" if e["rows"] is None else f"{e['rows']:,}",
            keys,
        )
    console.print(table)


def _partition_text(details: Any) -> str:
    """`partition event_2024_01 [2024-01-01, 2024-02-01)`: a partition entry's keys column."""
    if isinstance(details, str):
        details = json.loads(details)
    bounds = f"[{details.get('from') or '-inf'}, {details.get('to') or '+inf'})"
    return f"partition {details.get('partition')} {bounds}"


def print_holds(console: Console, holds: list[Hold], today: dt.date) -> None:
    from rich.table import Table

    table = Table(title="gdpr-sweep holds")
    for header in ("id", "status", "database", "table", "key", "until", "reason", "by", "since"):
        table.add_column(header, no_wrap=header not in ("reason",))
    for hold in holds:
        table.add_row(
            str(hold.id),
            hold.status_on(today),
            hold.database,
            hold.table,
            str(hold.key),
            str(hold.until or ""),
            hold.reason,
            hold.created_by,
            shown_utc(hold.created_at),
        )
    console.print(table)


def holds_document(holds: list[Hold], today: dt.date) -> dict[str, Any]:
    """`hold list --json`: every hold's fields and its status today."""
    return {
        "format": format_name("hold list"),
        "holds": [
            {
                **vars(h),
                "created_at": shown_utc(h.created_at, "auto"),
                "released_at": shown_utc(h.released_at, "auto"),
                "status": h.status_on(today),
            }
            for h in holds
        ],
    }


def hold_added(hold: Hold) -> str:
    return (
        f"hold {hold.id}: {hold.database}.{hold.table} row {hold.key}, "
        f"until {hold.until or 'released'}"
    )


def verification_document(
    verification: ChainVerification, current: str | None, head: str | None
) -> dict[str, Any]:
    """`audit verify --json`: whether the chain is intact, its head and key segments."""
    broken, unchecked = verification.broken, verification.unchecked
    return {
        "format": format_name("audit verify"),
        "intact": broken is None and not unchecked,
        "entries": verification.checked,
        "head": current,
        "broken": None if broken is None else {"entry": broken.entry_id, "reason": broken.reason},
        "segments": [s.to_json() for s in verification.segments],
        "unchecked": [s.to_json() for s in unchecked],
        "head_checked": head is None or not verification.head_unchecked,
    }


def verification_summary(verification: ChainVerification, current: str | None) -> str:
    rotations = len(verification.segments) - 1
    segments = f", {rotations + 1} key segments" if rotations > 0 else ""
    return f"audit trail intact: {verification.checked} entries verify{segments} (head {current})"


def rotation_summary(result: RotationResult, key_env: str, old_keys_env: str) -> str:
    """What `audit rotate-key` did, or that the key was already the state database's."""
    if not result.rotated:
        return (
            f"nothing to do: {key_env} is already this state database's "
            f"key (key check {result.key_check})"
        )
    return (
        f"key rotated at entry {result.entry} (run {result.run_id}): key check "
        f"{result.previous_key_check} -> {result.key_check}; {result.holds} hold "
        f"key(s) and {result.erased_subjects} erased subject key(s) re-sealed; keep "
        f"the old keys in {old_keys_env}: the entries before {result.entry} were "
        f"written with them (head {result.head})"
    )
