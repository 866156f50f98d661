"""An independent reading of SPEC's "When a row is due", for the randomised oracle test.

Nothing here imports gdpr_sweep: the point is a second, separately written
implementation of the calendar rule and the filters, to compare the real CLI with.

- `L` is the local date of the clock value (dates and naive timestamps are already
  local; an epoch instant is converted into the configured time zone), `A` the local
  date of the as-of. A row is due when `L + period < A`.
- N days/weeks are plain day arithmetic; N months/years move the month and clamp the
  day to the end of the target month (31 Aug + 6 months = 28/29 Feb).
- A clock value that cannot be read as a date (NULL, MariaDB's zero date, text that is
  not `YYYY-MM-DD...` of a valid date, numbers where no `since_format` says how to read
  them) is never due.
- `only`: the column equals the value or one of the list exactly (NULL never matches);
  `unless_true`: a true column keeps the row; `anonymise` with `null`: a row whose
  column is already NULL has nothing left to anonymise and is not due.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UNITS = ("days", "weeks", "months", "years")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class Period:
    n: int
    unit: str  # one of UNITS

    def text(self) -> str:
        """The config's spelling: "1 month", "6 months"."""
        return f"{self.n} {self.unit[:-1] if self.n == 1 else self.unit}"


def _shift_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def add_period(day: dt.date, period: Period, sign: int = 1) -> dt.date:
    """`day` plus (or, with sign=-1, minus) the period, months clamped to the month's end."""
    if period.unit == "days":
        return day + dt.timedelta(days=sign * period.n)
    if period.unit == "weeks":
        return day + dt.timedelta(days=sign * 7 * period.n)
    months = period.n if period.unit == "months" else 12 * period.n
    return _shift_months(day, sign * months)


def as_of_local_date(text: str, tz: ZoneInfo) -> dt.date:
    """The local date of `--as-of TEXT` (a date is local midnight; naive is local time)."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return dt.date.fromisoformat(text)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.date()
    return parsed.astimezone(tz).date()


def iso_text_date(value: object) -> dt.date | None:
    """The date of an ISO `YYYY-MM-DD...` text, None for anything else or an invalid date."""
    if not isinstance(value, str):
        return None
    match = _ISO_DATE.match(value)
    if match is None:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def clock_date(value: object, reading: str, tz: ZoneInfo) -> dt.date | None:
    """The local date `L` of one clock value, or None when it is never due.

    reading: "native" (a DATE/DATETIME value as the driver returns it, or a zero-date
    string from MariaDB), "sqlite-text" (whatever SQLite holds: only ISO text counts),
    "unixepoch" (integer seconds since 1970 UTC; anything else is unreadable).
    """
    if value is None:
        return None
    if reading == "native":
        if isinstance(value, dt.datetime):
            return value.date()  # naive: already local wall-clock time
        if isinstance(value, dt.date):
            return value
        return None  # '0000-00-00' and friends
    if reading == "sqlite-text":
        return iso_text_date(value)
    if reading == "unixepoch":
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return dt.datetime.fromtimestamp(value, tz).date()
    raise ValueError(f"unknown reading {reading!r}")


@dataclass(frozen=True)
class RuleSpec:
    action: str  # "delete" | "anonymise" (anonymise: note = "null")
    period: Period
    only: tuple[str, ...] | None  # status values, None: no `only`
    unless_true: bool  # unless_true = "held"
    reading: str  # how `since` is read, see clock_date


def is_due(
    rule: RuleSpec,
    a_local: dt.date,
    tz: ZoneInfo,
    since: object,
    status: object,
    held: object,
    note: object,
) -> bool:
    """Whether the oracle says `run` must change this row."""
    day = clock_date(since, rule.reading, tz)
    if day is None or not add_period(day, rule.period) < a_local:
        return False
    if rule.only is not None and not (isinstance(status, str) and status in rule.only):
        return False
    if rule.unless_true and held is True:
        return False
    return not (rule.action == "anonymise" and note is None)


def due_rows(rule: RuleSpec, a_local: dt.date, tz: ZoneInfo, rows: Sequence[dict]) -> set[int]:
    """The `rid` of every row the oracle says is due."""
    return {
        row["rid"]
        for row in rows
        if is_due(rule, a_local, tz, row["since"], row["status"], row["held"], row["note"])
    }
