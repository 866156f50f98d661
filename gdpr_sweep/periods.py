"""Calendar arithmetic for retention periods: pure functions, no database.

SPEC counts periods the way EU Regulation 1182/71 counts legal time limits, on the
local calendar of `sweep.timezone`: with `L` the local date of the event and `A` the
local date of the as-of, a row is due when `L + period < A`. Months and years clamp to
the last day of the month (31 Aug + 6 months = 28/29 Feb).

Everything here works on *dates*: a DST change cannot shift a cutoff because no
clock time takes part in the comparison. `due_before()` turns the inequality into a
threshold date `T` with `L + period < A  <=>  L < T`, so the database can compare a
column against one bound parameter (and use its index).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Unit = Literal["day", "week", "month", "year"]

#: The longest period accepted, in days (about 200 years). Retention schedules never
#: come near it; the bound keeps date arithmetic far from year 1 and year 9999.
MAX_PERIOD_DAYS = 200 * 366

#: The as-of years accepted: far enough from year 1 and 9999 that no period can overflow.
AS_OF_YEARS = (1800, 7999)

_PERIOD_RE = re.compile(r"^\s*(\d{1,6})\s*(day|week|month|year)s?\s*$")
_DAYS_PER_UNIT = {"day": 1, "week": 7, "month": 31, "year": 366}


@dataclass(frozen=True, order=True)
class Period:
    """A retention period: `count` calendar units."""

    count: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'' if self.count == 1 else 's'}"


def parse_period(text: str) -> Period:
    """Parse "6 months", "180 days", "1 year" into a Period; ValueError if it is not one."""
    match = _PERIOD_RE.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f'{text!r} is not a period (e.g. "6 months", "180 days", "5 years")')
    count, unit = int(match.group(1)), match.group(2)
    if count * _DAYS_PER_UNIT[unit] > MAX_PERIOD_DAYS:
        raise ValueError(f"{text!r} is longer than 200 years")
    return Period(count, unit)  # type: ignore[arg-type]


def add_months(day: dt.date, months: int) -> dt.date:
    """Add (or subtract) calendar months, clamping to the last day of the month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def add_period(day: dt.date, period: Period) -> dt.date:
    """Return the local date on which `period` counted from `day` ends."""
    if period.unit == "day":
        return day + dt.timedelta(days=period.count)
    if period.unit == "week":
        return day + dt.timedelta(weeks=period.count)
    if period.unit == "month":
        return add_months(day, period.count)
    return add_months(day, 12 * period.count)


def due_before(as_of_date: dt.date, period: Period) -> dt.date:
    """Return the threshold T such that `L + period < as_of_date` exactly when `L < T`.

    `add_period` is monotone (non-decreasing) in L, so the set of due dates is every
    date before the smallest L with `L + period >= as_of_date`; that L is T. For days
    and weeks it is plain subtraction; for months and years clamping makes several
    event dates end on the same day (28-31 Aug + 6 months all end on 28 Feb), so we
    start from the subtraction and step to the exact boundary (at most a few days).
    """
    if period.unit in ("day", "week"):
        days = period.count * (7 if period.unit == "week" else 1)
        return as_of_date - dt.timedelta(days=days)
    months = period.count * (12 if period.unit == "year" else 1)
    threshold = add_months(as_of_date, -months)
    while add_period(threshold, period) >= as_of_date:
        threshold -= dt.timedelta(days=1)
    while add_period(threshold, period) < as_of_date:
        threshold += dt.timedelta(days=1)
    return threshold


@dataclass(frozen=True)
class FiscalYearEnd:
    """The last day of the fiscal year as month and day ("12-31", "06-30")."""

    month: int
    day: int

    def __str__(self) -> str:
        return f"{self.month:02d}-{self.day:02d}"

    def in_year(self, year: int) -> dt.date:
        """Return the fiscal year end falling in calendar `year` (clamped: 02-29 -> 02-28)."""
        last = calendar.monthrange(year, self.month)[1]
        return dt.date(year, self.month, min(self.day, last))

    def end_of_year_holding(self, day: dt.date) -> dt.date:
        """Return the last day of the fiscal year that holds `day`."""
        end = self.in_year(day.year)
        return end if day <= end else self.in_year(day.year + 1)

    def last_end_before(self, day: dt.date) -> dt.date:
        """Return the latest fiscal year end strictly before `day`."""
        end = self.in_year(day.year)
        return end if end < day else self.in_year(day.year - 1)


def parse_fiscal_year_end(text: str) -> FiscalYearEnd:
    """Parse "MM-DD" into a FiscalYearEnd; ValueError if it is no day of the year."""
    match = re.fullmatch(r"(\d{2})-(\d{2})", text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not MM-DD")
    month, day = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2000, month)[1]:
        raise ValueError(f"{text!r} is not a day of the year")
    return FiscalYearEnd(month, day)


def fiscal_due_before(as_of_date: dt.date, period: Period, fiscal: FiscalYearEnd) -> dt.date:
    """Return T such that `fiscal_end(L) + period < as_of_date` exactly when `L < T`.

    The fiscal year end holding L is monotone in L, so the due dates are those whose
    fiscal year ended before `due_before(...)`: every L up to and including the last
    fiscal year end before that threshold.
    """
    plain = due_before(as_of_date, period)
    return fiscal.last_end_before(plain) + dt.timedelta(days=1)


# --- time zones and the as-of ------------------------------------------------------


def load_timezone(name: str) -> ZoneInfo:
    """Return the IANA time zone `name`; ValueError if there is none by that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f'{name!r} is not an IANA time zone (e.g. "Europe/Copenhagen")') from exc


def start_of_local_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Return the aware instant at which local `day` begins in `tz`.

    Where midnight falls in a DST gap (some zones switch at 00:00), fold=0 maps the
    missing 00:00 with the offset in force before the switch, which is the switch
    instant itself: the first moment of that local day.
    """
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz)


def parse_as_of(text: str | None, tz: ZoneInfo, now: dt.datetime | None = None) -> dt.datetime:
    """Parse `--as-of` into an aware instant.

    `YYYY-MM-DD` is local midnight in `tz`; an ISO 8601 timestamp with an offset is
    taken as is; without an offset it is local time in `tz`. None means now.
    """
    if text is None:
        return (now or dt.datetime.now(dt.UTC)).astimezone(tz)
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            instant = start_of_local_day(dt.date.fromisoformat(text), tz)
        else:
            parsed = dt.datetime.fromisoformat(text)
            instant = parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 timestamp") from None
    if not AS_OF_YEARS[0] <= instant.year <= AS_OF_YEARS[1]:
        raise ValueError(f"{text!r} is outside the years {AS_OF_YEARS[0]}-{AS_OF_YEARS[1]}")
    return instant


def local_date(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    """Return the local calendar date of an aware instant in `tz`."""
    return instant.astimezone(tz).date()


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Parse "45m", "90s", "1h30m", "500ms" into seconds; ValueError if it is not one."""
    compact = text.replace(" ", "") if isinstance(text, str) else ""
    parts = _DURATION_RE.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f'{text!r} is not a duration (e.g. "45m", "90s", "1h30m")')
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    seconds = sum(float(number) * scale[unit] for number, unit in parts)
    if not 0 < seconds <= 7 * 24 * 3600:
        raise ValueError(f"{text!r} must be more than 0 and at most a week")
    return seconds
