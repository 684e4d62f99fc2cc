"""The shop calendar (SPEC §3, §8): staffed hours per role as versioned data, and business time.

`model` is the data, `load` reads and checks a file, `maths` computes deadlines, `store` keeps
versions in PostgreSQL, `cli` is `ticketq calendar`.
"""

from __future__ import annotations

from shared.calendar.load import parse_calendar, sample_calendar
from shared.calendar.maths import (
    ClockKind,
    add_business_time,
    business_time_between,
    deadline,
    end_of_staffed_period,
    intervals,
    next_staffed,
    staffed,
)
from shared.calendar.model import Calendar, CalendarError, DayKind, ShopDay, Span

__all__ = [
    "Calendar",
    "CalendarError",
    "ClockKind",
    "DayKind",
    "ShopDay",
    "Span",
    "add_business_time",
    "business_time_between",
    "deadline",
    "end_of_staffed_period",
    "intervals",
    "next_staffed",
    "parse_calendar",
    "sample_calendar",
    "staffed",
]
