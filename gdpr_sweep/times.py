"""Times as gdpr-sweep stores and shows them: always ISO 8601 with an offset.

The rule (README "Machine-readable output", SPEC): every time printed or written
carries its UTC offset. Moments at which something happened (a run started or
finished, an audit entry was recorded, a hold added or released, an export written, a
log line) are shown in UTC, `+00:00`; the as-of, the instant the rules are evaluated at
(it decides the local days), and the cutoffs are shown in `sweep.timezone` with that
zone's offset, as `--as-of` reads them. Dates that are days (a cutoff's day,
`--until`, a hold's `until`, `replay --since`) stay dates.

The state database stores every time in UTC, `runs.as_of` too. Earlier versions
stored a run's as-of in local time (with its offset) for `run`, `apply` and `erase` and
in UTC for the other commands; readers take either (no migration: the runs table is
sealed into the audit chain), and a stored time without an offset (none is written)
as UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def stored(instant: dt.datetime) -> str:
    """An aware instant as the state database stores it: UTC, microseconds."""
    if instant.tzinfo is None:
        raise ValueError("a time without an offset cannot be stored")
    return instant.astimezone(dt.UTC).isoformat(timespec="microseconds")


def parse_stored(text: str) -> dt.datetime:
    """A time read from the state database, any offset (UTC when it has none)."""
    parsed = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def shown_utc(text: str | None, timespec: str = "seconds") -> str | None:
    """A stored moment as shown: UTC with `+00:00` (None stays None)."""
    return _shown(text, dt.UTC, timespec)


def shown_local(text: str | None, tz: ZoneInfo, timespec: str = "seconds") -> str | None:
    """A stored as-of as shown: in `sweep.timezone` with its offset."""
    return _shown(text, tz, timespec)


def _shown(text: str | None, tz: dt.tzinfo, timespec: str) -> str | None:
    if text is None:
        return None
    try:
        return parse_stored(text).astimezone(tz).isoformat(timespec=timespec)
    except ValueError:
        return text  # not a time (an altered row: `audit verify` says so): as stored
