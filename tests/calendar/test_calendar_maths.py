"""Deadline maths on shop calendars (SPEC §3, §8): staffed hours, holidays, 调休, special days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.calendar import (
    Calendar,
    ClockKind,
    add_business_time,
    business_time_between,
    deadline,
    end_of_staffed_period,
    intervals,
    next_staffed,
    parse_calendar,
    sample_calendar,
    staffed,
)
from shared.tickets.roles import Role

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
SAMPLE = sample_calendar()
P, W = Role.PRESALE, Role.WAREHOUSE
SECOND = timedelta(seconds=1)

# Berlin keeps DST (2026: 03-29 02:00 -> 03:00, 10-25 03:00 -> 02:00). Finance works around
# the clock, so its days are 23 and 25 hours long on those Sundays.
BERLIN_CALENDAR = parse_calendar(
    """
timezone: Europe/Berlin
weekly:
  presale: {mon-sun: ['09:00-17:00']}
  aftersales: {mon-fri: ['09:00-17:00']}
  supervisor: {mon-sun: ['02:00-03:00', '09:00-17:00']}
  warehouse: {mon-fri: ['08:00-16:00']}
  finance: {mon-sun: ['00:00-24:00']}
special_days:
  - {name: Silvester, date: 2026-12-31, hours: {presale: ['08:00-24:00']}}
  - {name: Neujahr, date: 2027-01-01, hours: {presale: ['00:00-02:00']}}
"""
)


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    """Shanghai local time."""
    return datetime(year, month, day, hour, minute, sec, tzinfo=SHANGHAI)


def be(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Berlin local time."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# --- shift edges and overnight ----------------------------------------------------------------


def test_a_ticket_assigned_just_before_closing_is_due_next_staffed_morning() -> None:
    due = add_business_time(SAMPLE, P, sh(2026, 11, 23, 23, 29, 50), 30 * SECOND)
    assert due == sh(2026, 11, 24, 9, 0, 20)
    assert due.tzinfo is UTC


@pytest.mark.parametrize(
    ("at", "is_staffed"),
    [
        (sh(2026, 11, 23, 8, 59, 59), False),
        (sh(2026, 11, 23, 9, 0), True),
        (sh(2026, 11, 23, 17, 15), True),  # day and night shifts overlap at the handover
        (sh(2026, 11, 23, 23, 29, 59), True),
        (sh(2026, 11, 23, 23, 30), False),  # the closing end is out
    ],
)
def test_shift_edges(at: datetime, is_staffed: bool) -> None:
    assert staffed(SAMPLE, P, at) is is_staffed


def test_business_time_starts_counting_at_opening_and_runs_through_the_handover() -> None:
    assert add_business_time(SAMPLE, P, sh(2026, 11, 23, 3, 0), SECOND) == sh(2026, 11, 23, 9, 0, 1)
    assert add_business_time(SAMPLE, P, sh(2026, 11, 23, 17, 0), timedelta(hours=1)) == sh(
        2026, 11, 23, 18, 0
    )
    # Ending exactly at closing time is the closing instant, not the next morning.
    assert add_business_time(SAMPLE, P, sh(2026, 11, 23, 23, 0), timedelta(minutes=30)) == sh(
        2026, 11, 23, 23, 30
    )


def test_staffed_stretches_and_their_ends() -> None:
    assert next_staffed(SAMPLE, P, sh(2026, 11, 23, 3, 0)) == sh(2026, 11, 23, 9, 0)
    assert next_staffed(SAMPLE, P, sh(2026, 11, 23, 12, 0)) == sh(2026, 11, 23, 12, 0)
    assert end_of_staffed_period(SAMPLE, P, sh(2026, 11, 23, 12, 0)) == sh(2026, 11, 23, 23, 30)
    assert end_of_staffed_period(SAMPLE, P, sh(2026, 11, 23, 3, 0)) == sh(2026, 11, 23, 23, 30)
    assert end_of_staffed_period(SAMPLE, P, sh(2026, 11, 23, 23, 30)) == sh(2026, 11, 24, 23, 30)
    assert intervals(SAMPLE, W, sh(2026, 11, 27, 12, 0), sh(2026, 11, 30, 10, 0)) == [
        (sh(2026, 11, 27, 12, 0), sh(2026, 11, 27, 17, 30)),  # Friday, clipped
        (sh(2026, 11, 30, 9, 0), sh(2026, 11, 30, 10, 0)),  # Monday, clipped
    ]


# --- holidays, make-up workdays, special days -------------------------------------------------


def test_the_warehouse_is_closed_over_national_day() -> None:
    start = sh(2026, 9, 30, 17, 0)  # Wednesday: 30 min left in the day shift
    assert add_business_time(SAMPLE, W, start, timedelta(hours=1)) == sh(2026, 10, 8, 9, 30)
    assert business_time_between(SAMPLE, W, start, sh(2026, 10, 8, 12, 0)) == timedelta(hours=3.5)


def test_customer_service_works_reduced_hours_on_a_holiday() -> None:
    assert not staffed(SAMPLE, P, sh(2026, 10, 1, 9, 30))
    assert next_staffed(SAMPLE, P, sh(2026, 10, 1, 9, 30)) == sh(2026, 10, 1, 10, 0)
    assert end_of_staffed_period(SAMPLE, P, sh(2026, 10, 1, 9, 30)) == sh(2026, 10, 1, 22, 0)


def test_a_make_up_saturday_is_worked_with_a_weekday_s_hours() -> None:
    friday = sh(2026, 10, 9, 17, 0)
    assert add_business_time(SAMPLE, W, friday, timedelta(hours=1)) == sh(2026, 10, 10, 9, 30)
    ordinary_friday = sh(2026, 11, 27, 17, 0)
    assert add_business_time(SAMPLE, W, ordinary_friday, timedelta(hours=1)) == sh(
        2026, 11, 30, 9, 30
    )


def test_singles_day_opens_at_midnight_and_closes_at_2400() -> None:
    before = sh(2026, 11, 10, 23, 29, 50)
    assert add_business_time(SAMPLE, P, before, 30 * SECOND) == sh(2026, 11, 11, 0, 0, 20)
    assert add_business_time(SAMPLE, P, sh(2026, 11, 11, 1, 59, 50), 30 * SECOND) == sh(
        2026, 11, 11, 8, 0, 20
    )
    assert end_of_staffed_period(SAMPLE, P, sh(2026, 11, 11, 20, 0)) == sh(2026, 11, 12, 0, 0)
    # The next day is an ordinary Thursday again.
    assert next_staffed(SAMPLE, P, sh(2026, 11, 12, 0, 0)) == sh(2026, 11, 12, 9, 0)


def test_a_stretch_ending_at_2400_runs_on_into_the_next_day_s_midnight_span() -> None:
    eve = be(2026, 12, 31, 20, 0)
    assert end_of_staffed_period(BERLIN_CALENDAR, P, eve) == be(2027, 1, 1, 2, 0)
    assert intervals(BERLIN_CALENDAR, P, eve, be(2027, 1, 2, 0, 0)) == [(eve, be(2027, 1, 1, 2, 0))]


# --- time zones -------------------------------------------------------------------------------


def test_days_are_as_long_as_the_zone_makes_them_around_dst() -> None:
    fin = Role.FINANCE
    day = timedelta(hours=24)
    assert business_time_between(BERLIN_CALENDAR, fin, be(2026, 3, 29), be(2026, 3, 30)) == day - (
        timedelta(hours=1)
    )
    assert business_time_between(BERLIN_CALENDAR, fin, be(2026, 10, 25), be(2026, 10, 26)) == (
        day + timedelta(hours=1)
    )
    # Staffed around the clock: its stretch is cut a week on, not searched for forever.
    assert (
        be(2026, 4, 3)
        <= end_of_staffed_period(BERLIN_CALENDAR, fin, be(2026, 3, 28))
        <= be(2026, 4, 5)
    )
    # Saturday 16:59 + 2 min: one minute Saturday, one minute Sunday at 09:00 summer time.
    due = add_business_time(BERLIN_CALENDAR, P, be(2026, 3, 28, 16, 59), 2 * 60 * SECOND)
    assert due == datetime(2026, 3, 29, 7, 1, tzinfo=UTC)


def test_a_span_inside_the_spring_forward_gap_has_no_time() -> None:
    sup = Role.SUPERVISOR
    assert intervals(BERLIN_CALENDAR, sup, be(2026, 3, 29), be(2026, 3, 29, 8)) == []
    assert business_time_between(BERLIN_CALENDAR, sup, be(2026, 3, 28), be(2026, 3, 28, 8)) == (
        timedelta(hours=1)
    )


def test_a_calendar_in_tokyo_counts_tokyo_hours() -> None:
    tokyo = parse_calendar(
        "timezone: Asia/Tokyo\nweekly: {"
        + ", ".join(f"{r.value}: {{mon-sun: [day]}}" for r in Role)
        + "}\n"
    )
    assert next_staffed(tokyo, P, datetime(2026, 11, 23, 23, 0, tzinfo=UTC)) == datetime(
        2026, 11, 24, 0, 0, tzinfo=UTC
    )  # 09:00 in Tokyo


# --- the one function timers call -------------------------------------------------------------


def test_deadline_by_clock_kind() -> None:
    start = sh(2026, 11, 23, 23, 29, 50)
    business = deadline(SAMPLE, ClockKind.BUSINESS, P, start, 30 * SECOND)
    calendar = deadline(SAMPLE, ClockKind.CALENDAR, P, start, 30 * SECOND)
    assert business == sh(2026, 11, 24, 9, 0, 20)
    assert calendar == sh(2026, 11, 23, 23, 30, 20) and calendar.tzinfo is UTC


def test_naive_times_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        staffed(SAMPLE, P, datetime(2026, 11, 23, 12, 0))
    with pytest.raises(ValueError, match="negative"):
        add_business_time(SAMPLE, P, sh(2026, 11, 23, 12, 0), -SECOND)


def test_business_time_between_is_negative_when_overdue() -> None:
    a, b = sh(2026, 11, 23, 23, 0), sh(2026, 11, 24, 9, 30)
    assert business_time_between(SAMPLE, P, a, b) == timedelta(hours=1)
    assert business_time_between(SAMPLE, P, b, a) == -timedelta(hours=1)


# --- properties -------------------------------------------------------------------------------

calendars = st.sampled_from([SAMPLE, BERLIN_CALENDAR])
roles = st.sampled_from(list(Role))
instants = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20))


@given(calendars, roles, instants, instants, durations)
def test_adding_business_time_is_monotonic_in_the_start(
    cal: Calendar, role: Role, a: datetime, b: datetime, d: timedelta
) -> None:
    early, late = sorted((a, b))
    assert add_business_time(cal, role, early, d) <= add_business_time(cal, role, late, d)


@given(calendars, roles, instants, durations, durations)
def test_adding_business_time_is_monotonic_in_the_duration(
    cal: Calendar, role: Role, t: datetime, a: timedelta, b: timedelta
) -> None:
    short, long = sorted((a, b))
    assert add_business_time(cal, role, t, short) <= add_business_time(cal, role, t, long)


@given(calendars, roles, instants, durations, durations)
def test_adding_business_time_is_additive(
    cal: Calendar, role: Role, t: datetime, a: timedelta, b: timedelta
) -> None:
    stepwise = add_business_time(cal, role, add_business_time(cal, role, t, a), b)
    assert stepwise == add_business_time(cal, role, t, a + b)


@given(calendars, roles, instants, durations)
def test_business_time_between_undoes_adding_it(
    cal: Calendar, role: Role, t: datetime, d: timedelta
) -> None:
    assert business_time_between(cal, role, t, add_business_time(cal, role, t, d)) == d


@given(calendars, roles, instants, durations.filter(bool))
def test_a_deadline_never_lands_outside_staffed_time(
    cal: Calendar, role: Role, t: datetime, d: timedelta
) -> None:
    due = deadline(cal, ClockKind.BUSINESS, role, t, d)
    # In a staffed stretch or at its closing end: the instant just before it is staffed.
    assert staffed(cal, role, due - timedelta(microseconds=1))
