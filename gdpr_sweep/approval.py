"""Who approved a run and under which ticket: `--approved-by NAME`, `--ticket REF`.

SPEC: names given with `--approved-by` and `--ticket` are the controller's own staff
and references (staff ids, case numbers — never a data subject's details), recorded as
given in the audit trail (the run's `run-start` entry, so they are part of the hash
chain), in receipts and in the report. A value is one line of printable text, at most
200 characters; anything else is exit 2 naming the option, and the value is not quoted
back.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError

MAX_LENGTH = 200


def _checked(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        raise UsageError(f"{option}: must not be empty")
    if len(text) > MAX_LENGTH:
        raise UsageError(f"{option}: at most {MAX_LENGTH} characters")
    if any(not ch.isprintable() for ch in text):
        raise UsageError(f"{option}: one line of printable text (no control characters)")
    return text


@dataclass(frozen=True)
class Approval:
    """The request a run answers: a ticket, and (for `apply`) who signed off the plan."""

    ticket: str | None = None
    approved_by: str | None = None

    @classmethod
    def given(cls, ticket: str | None = None, approved_by: str | None = None) -> Approval:
        return cls(_checked("--ticket", ticket), _checked("--approved-by", approved_by))

    def details(self) -> dict[str, str]:
        """The fields to record: only those given."""
        fields = {"ticket": self.ticket, "approved_by": self.approved_by}
        return {name: value for name, value in fields.items() if value is not None}
