"""The review trail: plan → approval → apply, each step in the audit trail.

`plan --out FILE` writes the plan with its digest (`plan_digest`, a SHA-256 of the
plan's canonical JSON, so anyone holding the file can recompute it) and records a
`planned` run: the digest, as-of, config digest and per rule the counts — never a key
or a value. `apply FILE --approved-by NAME --ticket REF` recomputes the digest from the
file (a file changed after `plan --out` is refused, exit 5), finds the `planned` run
that recorded it, and records both, with who approved and the ticket, in its chained
`run-start` entry and its summary.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from .errors import Refused

if TYPE_CHECKING:
    from .plan import Plan

#: Fields of a plan file that record the trail, not the plan: not part of the digest.
TRAIL_FIELDS = ("plan_digest", "plan_run")


def plan_digest(document: dict[str, Any]) -> str:
    """The digest of a plan document (its trail fields left out), `sha256:<hex>`."""
    content = {name: value for name, value in document.items() if name not in TRAIL_FIELDS}
    canonical = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as JSON (what `plan --json` prints), as it reads back from a file."""
    return json.loads(json.dumps(plan.to_json(), ensure_ascii=False, default=str))


def checked_digest(document: dict[str, Any], path: str) -> str:
    """The digest of a plan file's content; refuse (exit 5) one changed since it was written."""
    digest = plan_digest(document)
    stated = document.get("plan_digest")
    if stated is not None and stated != digest:
        raise Refused(
            f"PLAN: {path!r} was changed after plan --out wrote it (its digest is no longer "
            f"{str(stated)[:19]}…); make a new plan"
        )
    return digest


def planned_summary(plan: Plan, digest: str) -> dict[str, Any]:
    """What the `planned` run records: digests, as-of, counts per rule; no key, no value."""
    return {
        "as_of": plan.as_of.isoformat(),
        "timezone": plan.timezone,
        "config_digest": plan.config_digest,
        "plan_digest": digest,
        "rows_due": plan.total_due,
        "items": [
            {
                "database": item.database,
                "rule": item.rule,
                "table": item.table,
                "action": item.action,
                "cutoff": item.cutoff,
                "due": item.due,
                "held": item.held,
            }
            for item in plan.items
        ],
        "failures": [dict(failure) for failure in plan.failures],
    }


def reviewed_fields(digest: str | None, planned_run: int | None) -> dict[str, Any]:
    """The link of an `apply` run to the plan it executed (empty for `run`)."""
    if digest is None:
        return {}
    return {"plan_digest": digest, "plan_run": planned_run}
