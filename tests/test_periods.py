"""Calendar arithmetic: property tests for the due threshold, plus SPEC's worked examples.

SPEC ("When a row is due"): with `L` the local date of the event and `A` the local date
of the as-of, a row is due when `L + period < A`. `due_before(A, p)` must turn that into
a threshold `T` with `L + p < A  <=>  L < T` exactly, for every L; `fiscal_due_before`
likewise with `L` replaced by the end of the fiscal year holding it.
"""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdpr_sweep.periods import (
    FiscalYearEnd,
    Period,
    add_months,
    add_period,
    due_before,
    fiscal_due_before,
    local_date,
    parse_as_of,
    parse_fiscal_year_end,
    parse_period,
)

D = dt.date
CPH = ZoneInfo("Europe/Copenhagen")
UTC = dt.UTC

# --- strategies ------------------------------------------------------------------------

dates = st.dates(min_value=D(1900, 1, 1), max_value=D(2200, 12, 31))


@st.composite
def _month_end_dates(draw: st.DrawFn) -> dt.date:
    """The last few days of a month, where month arithmetic clamps."""
    year, month = draw(st.integers(1900, 2200)), draw(st.integers(1, 12))
    last = calendar.monthrange(year, month)[1]
    return D(year, month, last - draw(st.integers(0, 3)))


#: As-of and event dates, half of them at month ends (28 Feb, 29 Feb, 30th, 31st).
edge_dates = st.one_of(dates, _month_end_dates())

periods = st.one_of(
    st.builds(Period, st.integers(0, 400), st.just("day")),
    st.builds(Period, st.integers(0, 60), st.just("week")),
    st.builds(Period, st.integers(0, 120), st.just("month")),
    st.builds(Period, st.integers(0, 60), st.just("year")),
)


@st.composite
def fiscal_year_ends(draw: st.DrawFn) -> FiscalYearEnd:
    """Any day of a leap year, biased towards month ends and 02-29."""
    month = draw(st.integers(1, 12))
    last = calendar.monthrange(2000, month)[1]
    day = draw(st.one_of(st.just(last), st.integers(1, last)))
    return FiscalYearEnd(month, day)


@st.composite
def event_near(draw: st.DrawFn, threshold: dt.date, spread: int) -> dt.date:
    """An event date near the threshold (where the comparison matters), or anywhere."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(edge_dates)
    width = 3 if choice == 1 else spread
    return threshold + dt.timedelta(days=draw(st.integers(-width, width)))


# --- the threshold is exact ------------------------------------------------------------


def _naive_start(as_of: dt.date, period: Period) -> dt.date:
    """`as_of` minus the period by plain subtraction: where the threshold is, roughly."""
    if period.unit in ("day", "week"):
        return as_of - dt.timedelta(days=period.count * (7 if period.unit == "week" else 1))
    return add_months(as_of, -period.count * (12 if period.unit == "year" else 1))


def _window(*centres: dt.date, width: int = 5) -> set[dt.date]:
    return {c + dt.timedelta(days=d) for c in centres for d in range(-width, width + 1)}


@settings(max_examples=300, deadline=None)
@given(as_of=edge_dates, period=periods, data=st.data())
def test_due_before_is_the_exact_threshold(as_of: dt.date, period: Period, data) -> None:
    threshold = due_before(as_of, period)
    # Every event date around the threshold and around plain subtraction (where month
    # clamping makes the two differ), and one drawn anywhere or near.
    events = _window(threshold, _naive_start(as_of, period))
    events.add(data.draw(event_near(threshold, 40), label="event"))
    for event in sorted(events):
        assert (add_period(event, period) < as_of) == (event < threshold), event


@settings(max_examples=300, deadline=None)
@given(as_of=edge_dates, period=periods)
def test_due_before_is_the_smallest_date_not_due(as_of: dt.date, period: Period) -> None:
    threshold = due_before(as_of, period)
    assert add_period(threshold, period) >= as_of  # T itself is not due
    assert add_period(threshold - dt.timedelta(days=1), period) < as_of  # the day before is


@settings(max_examples=300, deadline=None)
@given(as_of=edge_dates, period=periods, fiscal=fiscal_year_ends(), data=st.data())
def test_fiscal_due_before_is_the_exact_threshold(
    as_of: dt.date, period: Period, fiscal: FiscalYearEnd, data
) -> None:
    threshold = fiscal_due_before(as_of, period, fiscal)
    naive = _naive_start(as_of, period)
    events = _window(
        threshold,
        naive,
        fiscal.last_end_before(naive),
        fiscal.end_of_year_holding(naive),
        width=3,
    )
    events.add(data.draw(event_near(threshold, 400), label="event"))
    for event in sorted(events):
        due = add_period(fiscal.end_of_year_holding(event), period) < as_of
        assert due == (event < threshold), event


@settings(max_examples=300, deadline=None)
@given(day=edge_dates, fiscal=fiscal_year_ends())
def test_end_of_year_holding_is_the_next_fiscal_year_end(
    day: dt.date, fiscal: FiscalYearEnd
) -> None:
    end = fiscal.end_of_year_holding(day)
    assert end >= day
    assert end.month == fiscal.month
    assert end.day == min(fiscal.day, calendar.monthrange(end.year, fiscal.month)[1])
    assert end - day < dt.timedelta(days=366)
    before = fiscal.last_end_before(day)
    assert before < day <= end
    assert fiscal.end_of_year_holding(before + dt.timedelta(days=1)) == end


# --- add_period ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(first=edge_dates, second=edge_dates, period=periods)
def test_add_period_is_monotone(first: dt.date, second: dt.date, period: Period) -> None:
    low, high = sorted((first, second))
    assert add_period(low, period) <= add_period(high, period)


@settings(max_examples=300, deadline=None)
@given(day=edge_dates, count=st.integers(0, 120))
def test_months_clamp_to_the_last_day_of_the_month(day: dt.date, count: int) -> None:
    result = add_period(day, Period(count, "month"))
    months = (result.year - day.year) * 12 + result.month - day.month
    assert months == count
    assert result.day == min(day.day, calendar.monthrange(result.year, result.month)[1])
    assert add_period(day, Period(count // 12, "year")) == add_months(day, 12 * (count // 12))


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=D(1900, 1, 1), max_value=D(2200, 12, 31)),
    period=st.one_of(
        st.builds(Period, st.integers(0, 200 * 366), st.just("day")),
        st.builds(Period, st.integers(0, 200 * 366 // 7), st.just("week")),
        st.builds(Period, st.integers(0, 200 * 366 // 31), st.just("month")),
        st.builds(Period, st.integers(0, 200), st.just("year")),
    ),
)
def test_never_raises_for_the_accepted_range(day: dt.date, period: Period) -> None:
    # Every period parse_period accepts, from and to any date in 1900-2200.
    assert isinstance(add_period(day, period), dt.date)
    assert isinstance(due_before(day, period), dt.date)
    assert isinstance(fiscal_due_before(day, period, FiscalYearEnd(2, 29)), dt.date)


@pytest.mark.parametrize(
    ("start", "period", "end"),
    [
        (D(2025, 8, 31), Period(6, "month"), D(2026, 2, 28)),
        (D(2023, 8, 31), Period(6, "month"), D(2024, 2, 29)),  # leap year
        (D(2025, 8, 28), Period(6, "month"), D(2026, 2, 28)),
        (D(2024, 2, 29), Period(1, "year"), D(2025, 2, 28)),
        (D(2024, 2, 29), Period(4, "year"), D(2028, 2, 29)),
        (D(2024, 1, 31), Period(1, "month"), D(2024, 2, 29)),
        (D(2025, 3, 31), Period(1, "month"), D(2025, 4, 30)),
        (D(2025, 12, 31), Period(2, "month"), D(2026, 2, 28)),
        (D(2025, 3, 1), Period(5, "day"), D(2025, 3, 6)),
        (D(2025, 12, 29), Period(1, "week"), D(2026, 1, 5)),
        (D(2025, 6, 15), Period(0, "year"), D(2025, 6, 15)),
    ],
)
def test_add_period_examples(start: dt.date, period: Period, end: dt.date) -> None:
    assert add_period(start, period) == end


def test_month_clamping_makes_several_events_share_a_threshold() -> None:
    # 28-31 Aug 2025 + 6 months all end on 28 Feb 2026: on 1 Mar all are due, on
    # 28 Feb none. The threshold jumps from 28 Aug to 1 Sep.
    assert due_before(D(2026, 3, 1), Period(6, "month")) == D(2025, 9, 1)
    assert due_before(D(2026, 2, 28), Period(6, "month")) == D(2025, 8, 28)


# --- parse_period ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 day", Period(1, "day")),
        ("1 days", Period(1, "day")),
        ("180 days", Period(180, "day")),
        ("2 weeks", Period(2, "week")),
        ("1 week", Period(1, "week")),
        ("6 months", Period(6, "month")),
        ("1 month", Period(1, "month")),
        ("5 years", Period(5, "year")),
        ("1 year", Period(1, "year")),
        ("  6 months  ", Period(6, "month")),
        ("6months", Period(6, "month")),
        ("0 days", Period(0, "day")),
        ("200 years", Period(200, "year")),
    ],
)
def test_parse_period_accepts(text: str, expected: Period) -> None:
    assert parse_period(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "6 monts",
        "-1 days",
        "-6 months",
        "+6 months",
        "6",
        "months",
        "1.5 years",
        "",
        "   ",
        "6 months ago",
        "six months",
        "6 months 2 days",
        "201 years",
        "100000 years",
        "999999 days",
        "1000000 days",
        "3000 months",
    ],
)
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


@pytest.mark.parametrize("value", [6, 6.0, None, ["6 months"], b"6 months"])
def test_parse_period_rejects_non_strings_with_value_error(value) -> None:
    with pytest.raises(ValueError):
        parse_period(value)  # type: ignore[arg-type]


def test_parse_period_round_trips_through_str() -> None:
    for period in (Period(1, "day"), Period(2, "week"), Period(6, "month"), Period(1, "year")):
        assert parse_period(str(period)) == period
    assert str(Period(1, "year")) == "1 year"
    assert str(Period(5, "year")) == "5 years"


_period_like = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A\s{0,2}-?\d{1,7}(\.\d)?\s{0,2}(day|week|month|year|monts|yr)s?\s{0,2}\Z"),
)


@settings(max_examples=500, deadline=None)
@given(text=_period_like)
def test_parse_period_parses_or_raises_value_error(text: str) -> None:
    try:
        period = parse_period(text)
    except ValueError:
        return
    assert isinstance(period, Period)
    assert period.count >= 0
    assert period.unit in ("day", "week", "month", "year")
    assert parse_period(str(period)) == period


# --- fiscal year ends ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12-31", FiscalYearEnd(12, 31)),
        ("06-30", FiscalYearEnd(6, 30)),
        ("02-29", FiscalYearEnd(2, 29)),
    ],
)
def test_parse_fiscal_year_end_accepts(text: str, expected: FiscalYearEnd) -> None:
    assert parse_fiscal_year_end(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["13-01", "02-30", "1231", "00-10", "04-31", "12-00", "", "12/31"])
def test_parse_fiscal_year_end_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fiscal_year_end(text)


def test_fiscal_year_end_02_29_clamps_in_common_years() -> None:
    fiscal = FiscalYearEnd(2, 29)
    assert fiscal.in_year(2025) == D(2025, 2, 28)
    assert fiscal.in_year(2024) == D(2024, 2, 29)
    assert fiscal.end_of_year_holding(D(2025, 3, 1)) == D(2026, 2, 28)
    assert fiscal.end_of_year_holding(D(2023, 3, 1)) == D(2024, 2, 29)


# --- as-of and local dates ---------------------------------------------------------------


def test_as_of_date_is_local_midnight_on_the_dst_night() -> None:
    # DST starts at 02:00 on 29 Mar 2026 in Copenhagen: midnight is still +01:00.
    as_of = parse_as_of("2026-03-29", CPH)
    assert as_of.utcoffset() == dt.timedelta(hours=1)
    assert (as_of.year, as_of.month, as_of.day, as_of.hour, as_of.minute) == (2026, 3, 29, 0, 0)
    assert as_of.astimezone(UTC) == dt.datetime(2026, 3, 28, 23, 0, tzinfo=UTC)


def test_as_of_date_in_summer_is_local_midnight() -> None:
    as_of = parse_as_of("2026-07-01", CPH)
    assert as_of.astimezone(UTC) == dt.datetime(2026, 6, 30, 22, 0, tzinfo=UTC)


def test_as_of_naive_timestamp_is_local_time() -> None:
    as_of = parse_as_of("2026-03-29T12:00:00", CPH)
    assert as_of.utcoffset() == dt.timedelta(hours=2)
    assert as_of.astimezone(UTC) == dt.datetime(2026, 3, 29, 10, 0, tzinfo=UTC)


def test_as_of_offset_is_honoured() -> None:
    as_of = parse_as_of("2026-03-28T23:30:00+00:00", CPH)
    assert as_of.astimezone(UTC) == dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert local_date(as_of, CPH) == D(2026, 3, 29)
    as_of = parse_as_of("2026-01-01T00:00:00-05:00", CPH)
    assert as_of.astimezone(UTC) == dt.datetime(2026, 1, 1, 5, 0, tzinfo=UTC)


def test_as_of_z_suffix_is_utc() -> None:
    as_of = parse_as_of("2026-01-01T00:00:00Z", CPH)
    assert as_of.astimezone(UTC) == dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert as_of.utcoffset() == dt.timedelta(hours=1)
    assert local_date(as_of, CPH) == D(2026, 1, 1)


def test_as_of_none_is_now() -> None:
    now = dt.datetime(2026, 5, 1, 21, 59, tzinfo=UTC)
    assert parse_as_of(None, CPH, now=now) == now
    assert local_date(parse_as_of(None, CPH, now=now), CPH) == D(2026, 5, 1)
    assert parse_as_of(None, CPH).tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2026-02-30",
        "2026-13-01",
        "26-01-01",
        "2026-01-01T25:00",
        "2026/01/01",
        "now",
    ],
)
def test_as_of_garbage_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_as_of(text, CPH)


def test_as_of_out_of_range_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_as_of("9999-12-31T23:59:59-12:00", CPH)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=40),
        st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
            dt.datetime.isoformat
        ),
        st.dates(min_value=D(1900, 1, 1), max_value=D(2200, 1, 1)).map(D.isoformat),
    )
)
def test_parse_as_of_gives_an_aware_instant_or_value_error(text: str) -> None:
    try:
        as_of = parse_as_of(text, CPH)
    except ValueError:
        return
    assert as_of.tzinfo is not None
    assert as_of.utcoffset() is not None


@settings(max_examples=200, deadline=None)
@given(instant=st.datetimes(min_value=dt.datetime(1901, 1, 1), timezones=st.just(UTC)))
def test_local_date_is_the_copenhagen_calendar_date(instant: dt.datetime) -> None:
    local = instant.astimezone(CPH)
    assert local_date(instant, CPH) == local.date()
    assert local_date(instant, ZoneInfo("UTC")) == instant.date()


def test_local_date_across_midnight() -> None:
    assert local_date(dt.datetime(2026, 6, 30, 22, 0, tzinfo=UTC), CPH) == D(2026, 7, 1)
    assert local_date(dt.datetime(2026, 6, 30, 21, 59, 59, tzinfo=UTC), CPH) == D(2026, 6, 30)


# --- SPEC's worked examples --------------------------------------------------------------


def _due(event: dt.date, as_of: dt.date, period: str, fiscal: FiscalYearEnd | None = None) -> bool:
    p = parse_period(period)
    threshold = due_before(as_of, p) if fiscal is None else fiscal_due_before(as_of, p, fiscal)
    return event < threshold


def test_spec_invoice_kept_through_the_fiscal_year_end_plus_five_years() -> None:
    # Invoice dated 15 Jun 2020, fiscal year ending 31 Dec, 5 years: kept through
    # 31 Dec 2025, due on 1 Jan 2026.
    fiscal = parse_fiscal_year_end("12-31")
    invoice = D(2020, 6, 15)
    assert fiscal_due_before(D(2026, 1, 1), Period(5, "year"), fiscal) == D(2021, 1, 1)
    assert not _due(invoice, D(2025, 12, 31), "5 years", fiscal)
    assert _due(invoice, D(2026, 1, 1), "5 years", fiscal)
    # Every invoice of fiscal year 2020 becomes due the same day; 2021's does not.
    assert _due(D(2020, 12, 31), D(2026, 1, 1), "5 years", fiscal)
    assert _due(D(2020, 1, 1), D(2026, 1, 1), "5 years", fiscal)
    assert not _due(D(2021, 1, 1), D(2026, 1, 1), "5 years", fiscal)


def test_spec_invoice_with_a_june_fiscal_year() -> None:
    fiscal = parse_fiscal_year_end("06-30")
    # 15 Jun 2020 belongs to the fiscal year ending 30 Jun 2020: due from 1 Jul 2025.
    assert not _due(D(2020, 6, 15), D(2025, 6, 30), "5 years", fiscal)
    assert _due(D(2020, 6, 15), D(2025, 7, 1), "5 years", fiscal)
    # 1 Jul 2020 belongs to the next fiscal year.
    assert not _due(D(2020, 7, 1), D(2025, 7, 1), "5 years", fiscal)


def test_spec_cctv_recording_due_from_the_seventh() -> None:
    # Recorded (at 14:00) on 1 Mar, after = "5 days": due from 7 Mar, not on 6 Mar.
    recorded = local_date(dt.datetime(2026, 3, 1, 14, 0, tzinfo=CPH), CPH)
    assert due_before(D(2026, 3, 7), Period(5, "day")) == D(2026, 3, 2)
    assert _due(recorded, D(2026, 3, 7), "5 days")
    assert not _due(recorded, D(2026, 3, 6), "5 days")
    # The as-of's time of day does not matter: 23:59 on 6 Mar is still 6 Mar.
    late = local_date(parse_as_of("2026-03-06T23:59:59", CPH), CPH)
    assert not _due(recorded, late, "5 days")
    early = local_date(parse_as_of("2026-03-07", CPH), CPH)
    assert _due(recorded, early, "5 days")


def test_spec_six_months_from_the_end_of_august() -> None:
    # 31 Aug + 6 months ends with 28 Feb (29 in a leap year).
    assert _due(D(2025, 8, 31), D(2026, 3, 1), "6 months")
    assert not _due(D(2025, 8, 31), D(2026, 2, 28), "6 months")
    assert not _due(D(2023, 8, 31), D(2024, 2, 29), "6 months")
    assert _due(D(2023, 8, 31), D(2024, 3, 1), "6 months")


def test_spec_a_dst_change_never_shifts_the_cutoff() -> None:
    # The comparison is on local dates, so the same threshold before and after a
    # DST change (29 Mar 2026 and 25 Oct 2026 in Copenhagen).
    for as_of in ("2026-03-29T01:30", "2026-03-29T03:30", "2026-03-29T23:59"):
        assert local_date(parse_as_of(as_of, CPH), CPH) == D(2026, 3, 29)
    for as_of in ("2026-10-25T00:30", "2026-10-25T02:30", "2026-10-25T23:30"):
        assert local_date(parse_as_of(as_of, CPH), CPH) == D(2026, 10, 25)
