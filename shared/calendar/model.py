"""The shop calendar (营业日历) as data: the hours each role is staffed on a shop day (SPEC §3, §8).

A calendar is a time zone, weekly staffed hours per role, public holidays (法定节假日: closed, or
reduced hours), make-up workdays (调休: a weekend date worked with a given weekday's hours) and
special days with their own hours (大促, e.g. 双11). Hours are local wall-clock spans of one day;
a span may end at 24:00, and a stretch that goes on past midnight is two spans on two days.
Nothing here reads a file or the clock: `shared.calendar.load` builds calendars, and
`shared.calendar.maths` computes with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from shared.tickets.roles import Role

DAY_SECONDS = 24 * 3600
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()


class CalendarError(ValueError):
    """The calendar data is wrong; the message says where (the line of the file) and how."""


@dataclass(frozen=True, order=True)
class Span:
    """Staffed from `start` (in) to `end` (out), in seconds after local midnight; `end` may be
    24:00 (86400), the next day's midnight."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= DAY_SECONDS:
            raise CalendarError(f"span {self} must start before it ends (within 00:00-24:00)")

    @classmethod
    def parse(cls, text: str) -> Span:
        """`'09:00-17:30'`; `'HH:MM:SS'` is accepted too, and `24:00` as an end."""
        start, sep, end = text.partition("-")
        if not sep:
            raise CalendarError(f"expected a span like '09:00-17:30', got {text!r}")
        return cls(_seconds(start), _seconds(end))

    def __str__(self) -> str:
        return f"{clock_text(self.start)}-{clock_text(self.end)}"


def clock_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _seconds(text: str) -> int:
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise CalendarError(f"expected a clock time like '09:00', got {text.strip()!r}")
    hours, minutes, secs = (int(p) for p in [*parts, "00"][:3])
    if minutes > 59 or secs > 59 or hours > 24 or (hours == 24 and minutes + secs > 0):
        raise CalendarError(f"no such clock time {text.strip()!r} (00:00 to 24:00)")
    return hours * 3600 + minutes * 60 + secs


# A day's staffed spans per role: sorted, disjoint, not touching. A role absent is not staffed.
Hours = Mapping[Role, tuple[Span, ...]]


class DayKind(StrEnum):
    REGULAR = "regular"  # the weekday's hours
    HOLIDAY = "holiday"  # 法定节假日: closed, or its own reduced hours
    MAKEUP = "makeup"  # 调休上班: a weekend day worked with a weekday's hours
    SPECIAL = "special"  # 大促 and the like: its own hours


@dataclass(frozen=True)
class DayRule:
    """A holiday or special day: its name and its own hours (no role listed: closed)."""

    name: str
    hours: Hours = field(default_factory=dict)


@dataclass(frozen=True)
class MakeUpDay:
    """调休: this weekend date is worked with the hours of weekday `works_as` (0 = Monday)."""

    name: str
    works_as: int


@dataclass(frozen=True)
class ShopDay:
    """One shop day as the calendar has it."""

    date: date
    kind: DayKind
    name: str | None
    hours: Hours

    def spans(self, role: Role) -> tuple[Span, ...]:
        return self.hours.get(role, ())


@dataclass(frozen=True, eq=True)
class Calendar:
    """A validated shop calendar (built by `shared.calendar.load`).

    Dated entries (holidays, make-up days, dated special days) name distinct dates; a special day
    given as month-day (`annual`, e.g. 11-11) applies every year unless a dated entry names it.
    """

    timezone: ZoneInfo
    weekly: tuple[Hours, ...]  # 7 days, Monday first
    holidays: Mapping[date, DayRule] = field(default_factory=dict)
    makeup_days: Mapping[date, MakeUpDay] = field(default_factory=dict)
    special_days: Mapping[date, DayRule] = field(default_factory=dict)
    annual: Mapping[tuple[int, int], DayRule] = field(default_factory=dict)  # (month, day)
    # A role's staffed spans on a local day as UTC instants, computed once (a calendar never
    # changes; shared.calendar.maths fills it): a few thousand entries for years of days.
    instants: dict[tuple[Role, date], tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def day(self, on: date) -> ShopDay:
        if rule := self.special_days.get(on):
            return ShopDay(on, DayKind.SPECIAL, rule.name, rule.hours)
        if rule := self.holidays.get(on):
            return ShopDay(on, DayKind.HOLIDAY, rule.name, rule.hours)
        if makeup := self.makeup_days.get(on):
            return ShopDay(on, DayKind.MAKEUP, makeup.name, self.weekly[makeup.works_as])
        if rule := self.annual.get((on.month, on.day)):
            return ShopDay(on, DayKind.SPECIAL, rule.name, rule.hours)
        return ShopDay(on, DayKind.REGULAR, None, self.weekly[on.weekday()])

    def spans(self, role: Role, on: date) -> tuple[Span, ...]:
        return self.day(on).spans(role)
