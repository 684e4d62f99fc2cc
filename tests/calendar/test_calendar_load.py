"""Reading calendar files: what loads, and each refusal naming the line (SPEC §3, §8)."""

from __future__ import annotations

from datetime import date, time

import pytest

from shared.agents.roster import SEED_SHIFTS, Shift
from shared.calendar import CalendarError, DayKind, Span, parse_calendar, sample_calendar
from shared.calendar.load import calendar_body, calendar_from_body, shift_spans
from shared.tickets.roles import Role

WEEKLY = """\
weekly:
  presale: {mon-sun: [day, night]}
  aftersales: {mon-sun: [day, night]}
  supervisor: {mon-sun: [day, night]}
  warehouse: {mon-fri: [day]}
  finance: {mon-fri: [half_day]}
"""


def spans(*texts: str) -> tuple[Span, ...]:
    return tuple(Span.parse(t) for t in texts)


def test_named_shifts_are_merged_and_2400_is_an_end() -> None:
    cal = parse_calendar(
        WEEKLY
        + "special_days:\n"
        + "  - {name: 双11, date: 11-11, hours: {presale: ['00:00-02:00', '08:00-24:00']}}\n"
    )
    assert cal.spans(Role.PRESALE, date(2026, 11, 23)) == spans("09:00-23:30")
    assert cal.spans(Role.WAREHOUSE, date(2026, 11, 28)) == ()  # Saturday
    assert cal.spans(Role.PRESALE, date(2027, 11, 11)) == spans("00:00-02:00", "08:00-24:00")
    assert cal.spans(Role.WAREHOUSE, date(2027, 11, 11)) == ()  # not listed: closed
    assert str(Span.parse("08:00-24:00")) == "08:00-24:00"


def test_a_dated_entry_wins_over_an_every_year_special_day() -> None:
    cal = parse_calendar(
        WEEKLY
        + "holidays:\n  - {name: closed, date: 2027-11-11}\n"
        + "special_days:\n  - {name: 双11, date: 11-11, hours: {presale: [day]}}\n"
    )
    assert cal.day(date(2027, 11, 11)).kind is DayKind.HOLIDAY
    assert cal.spans(Role.PRESALE, date(2027, 11, 11)) == ()
    assert cal.day(date(2028, 11, 11)).kind is DayKind.SPECIAL


def test_a_roster_s_own_shifts_may_be_named() -> None:
    early = Shift("early", time(9, 0), time(10, 0))
    cal = parse_calendar(
        WEEKLY.replace("finance: {mon-fri: [half_day]}", "finance: {mon-fri: [early]}"),
        shifts=shift_spans([*SEED_SHIFTS, early]),
    )
    assert cal.spans(Role.FINANCE, date(2026, 11, 23)) == spans("09:00-10:00")


def test_the_sample_calendar() -> None:
    cal = sample_calendar()
    assert cal.timezone.key == "Asia/Shanghai"
    national_day = cal.day(date(2026, 10, 1))
    assert national_day.kind is DayKind.HOLIDAY and national_day.name == "国庆节 National Day"
    assert national_day.spans(Role.PRESALE) == spans("10:00-22:00")
    assert national_day.spans(Role.WAREHOUSE) == ()
    makeup = cal.day(date(2026, 10, 10))  # a Saturday worked as a Monday
    assert makeup.kind is DayKind.MAKEUP and makeup.spans(Role.FINANCE) == spans("10:00-15:30")
    assert cal.day(date(2026, 11, 11)).kind is DayKind.SPECIAL
    assert cal.day(date(2027, 6, 18)).spans(Role.AFTERSALES) == spans("00:00-02:00", "08:00-24:00")
    assert cal.day(date(2026, 11, 24)).kind is DayKind.REGULAR
    assert {d.year for d in cal.holidays} == {2026, 2027}


def test_the_stored_body_reads_back_as_the_same_calendar() -> None:
    cal = sample_calendar()
    assert calendar_from_body(calendar_body(cal)) == cal


BAD_CASES = [
    pytest.param(
        WEEKLY.replace("[day]}", "['09:00-12:00', '11:00-13:00']}"),
        "warehouse",
        "weekly.warehouse.mon-fri: 11:00-13:00 overlaps 09:00-12:00",
        id="overlapping",
    ),
    pytest.param(
        WEEKLY + "  cook: {mon: [day]}\n", "cook", "unknown role 'cook'", id="unknown-role"
    ),
    pytest.param(
        WEEKLY.replace("[half_day]", "['15:30-10:00']"),
        "finance",
        "span 15:30-10:00 must start before it ends",
        id="end-before-start",
    ),
    pytest.param(
        "timezone: Asia/Beijing\n" + WEEKLY,
        "timezone",
        "unknown time zone 'Asia/Beijing'",
        id="bad-time-zone",
    ),
    pytest.param(
        WEEKLY + "holidays:\n  - {name: x, date: 2026-02-30}\n",
        "2026-02-30",
        "no such date '2026-02-30'",
        id="bad-date",
    ),
    pytest.param(
        WEEKLY + "holidays:\n  - {name: x, date: 1/10/2026}\n",
        "1/10/2026",
        "expected a date like 2026-10-01",
        id="date-format",
    ),
    pytest.param(
        WEEKLY + "holiday:\n  - {name: x, date: 2026-10-01}\n",
        "holiday:",
        "unknown field 'holiday'",
        id="unknown-key",
    ),
    pytest.param(
        WEEKLY + "holidays:\n  - name: x\n    date: 2026-10-01\n    hour: {}\n",
        "hour:",
        "unknown field 'hour'",
        id="unknown-nested-key",
    ),
    pytest.param(
        WEEKLY + "makeup_days:\n  - {date: 2026-10-09, works_as: mon}\n",
        "2026-10-09",
        "make-up workday 2026-10-09 is a fri, not a weekend day",
        id="make-up-on-a-weekday",
    ),
    pytest.param(
        WEEKLY + "holidays:\n  - {name: a, from: 2026-10-01, to: 2026-10-07}\n"
        "makeup_days:\n  - {date: 2026-10-03, works_as: mon}\n",
        "2026-10-03",
        "2026-10-03 is already given on line 8",
        id="date-given-twice",
    ),
    pytest.param(
        WEEKLY + "holidays:\n  - {name: a, from: 2026-10-07, to: 2026-10-01}\n",
        "2026-10-07",
        "to 2026-10-01 is before from 2026-10-07",
        id="period-backwards",
    ),
    pytest.param(
        WEEKLY.replace("[half_day]", "[morning]"),
        "morning",
        "unknown shift 'morning' (known: day, half_day, night)",
        id="unknown-shift",
    ),
    pytest.param(
        WEEKLY.replace("[half_day]", "['10:00-24:30']"),
        "24:30",
        "no such clock time '24:30'",
        id="past-2400",
    ),
    pytest.param(
        WEEKLY.replace("mon-fri: [half_day]", "fri-mon: [half_day]"),
        "fri-mon",
        "a day range runs forward within one week",
        id="backwards-days",
    ),
    pytest.param(
        WEEKLY.replace("  finance: {mon-fri: [half_day]}\n", ""),
        "presale",  # where the weekly mapping starts
        "every role needs staffed hours; none for finance",
        id="role-without-hours",
    ),
    pytest.param(
        WEEKLY + "holidays: [a, b\nmakeup_days: []\n",
        "makeup_days",
        "not valid YAML",
        id="not-yaml",
    ),
]


@pytest.mark.parametrize(("text", "bad_line", "message"), BAD_CASES)
def test_a_bad_calendar_is_refused_naming_the_line(text: str, bad_line: str, message: str) -> None:
    line = next(i for i, t in enumerate(text.splitlines(), 1) if bad_line in t)
    with pytest.raises(CalendarError) as refused:
        parse_calendar(text)
    assert str(refused.value).startswith(f"line {line}: "), refused.value
    assert message in str(refused.value)
