"""Business time on a shop calendar: when a role is staffed, and deadlines counted in its hours.

Every function takes timezone-aware datetimes and returns aware UTC datetimes. Staffed time is
computed a local day at a time (zoneinfo turns each day's wall-clock spans into instants, so
DST days are as long as they really are), never minute by minute. Spans that meet at midnight
(…-24:00 then 00:00-…) are one stretch.

A business clock counts only the role's staffed time (SPEC §3: response clocks pause outside
staffed hours); a calendar clock counts every second (24 h unpaid, 72 h shipment, 7-day returns).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from shared.calendar.model import Calendar
from shared.tickets.roles import Role

Interval = tuple[datetime, datetime]

# A role with no staffed time this many days running is never staffed: refuse, do not spin.
MAX_IDLE_DAYS = 800
# A role staffed around the clock has no end of its stretch: it is cut into pieces this long.
MAX_STRETCH = timedelta(days=7)


class ClockKind(StrEnum):
    BUSINESS = "business"  # the role's staffed time only
    CALENDAR = "calendar"  # every second


def deadline(
    calendar: Calendar, kind: ClockKind, role: Role, start: datetime, duration: timedelta
) -> datetime:
    """When a timer started at `start` for `duration` on clock `kind` is due (UTC)."""
    if kind is ClockKind.BUSINESS:
        return add_business_time(calendar, role, start, duration)
    return _utc(start) + duration


def staffed(calendar: Calendar, role: Role, at: datetime) -> bool:
    start, _ = next(_stretches(calendar, role, _utc(at)))
    return start <= _utc(at)


def intervals(calendar: Calendar, role: Role, start: datetime, end: datetime) -> list[Interval]:
    """The role's staffed stretches between `start` and `end`, clipped to them."""
    start, end = _utc(start), _utc(end)
    out: list[Interval] = []
    if end <= start:
        return out
    for s, e in _stretches(calendar, role, start):
        if s >= end:
            break
        out.append((max(s, start), min(e, end)))
    return out


def add_business_time(
    calendar: Calendar, role: Role, start: datetime, duration: timedelta
) -> datetime:
    """The instant at which `duration` of the role's staffed time has passed since `start`.

    It lies in a staffed stretch or at its closing end; a zero duration is `start` itself.
    E.g. 23:29:50 plus 30 s, staffed 09:00-23:30 daily: 09:00:20 the next morning.
    """
    if duration < timedelta(0):
        raise ValueError(f"a duration of business time cannot be negative, got {duration}")
    at = _utc(start)
    left = duration
    if not left:
        return at
    for s, e in _stretches(calendar, role, at):
        s = max(s, at)
        if left <= e - s:
            return s + left
        left -= e - s
    raise AssertionError("unreachable: _stretches never ends")  # pragma: no cover


def business_time_between(calendar: Calendar, role: Role, a: datetime, b: datetime) -> timedelta:
    """Staffed time from `a` to `b`; negative when `b` is before `a` (time overdue)."""
    if b < a:
        return -business_time_between(calendar, role, b, a)
    return sum((e - s for s, e in intervals(calendar, role, a, b)), timedelta(0))


def next_staffed(calendar: Calendar, role: Role, at: datetime) -> datetime:
    """`at` if the role is staffed then, else when it next is."""
    start, _ = next(_stretches(calendar, role, _utc(at)))
    return max(start, _utc(at))


def end_of_staffed_period(calendar: Calendar, role: Role, at: datetime) -> datetime:
    """The end of the staffed stretch containing `at`, or of the next one ("not resolved today").

    A stretch is cut after `MAX_STRETCH` (7 days): a role staffed around the clock ends there.
    """
    _, end = next(_stretches(calendar, role, _utc(at)))
    return end


# --------------------------------------------------------------------------------------------


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {at!r}")
    return at.astimezone(UTC)


def _stretches(calendar: Calendar, role: Role, at: datetime) -> Iterator[Interval]:
    """The role's staffed stretches that end after `at` (UTC), in order, merged across midnight."""
    tz = calendar.timezone
    # From the day before: a stretch that holds `at` may have begun then (…-24:00, 00:00-…).
    day = at.astimezone(tz).date() - timedelta(days=1)
    pending: Interval | None = None
    idle = 0
    while True:
        found = False
        for s, e in _instants(calendar, role, day):
            found = True
            if pending is not None and s <= pending[1]:
                if pending[1] - pending[0] < MAX_STRETCH:
                    pending = (pending[0], max(pending[1], e))
                    continue
                s, e = pending[1], max(pending[1], e)
            if pending is not None and pending[1] > at:
                yield pending
            pending = (s, e)
        idle = 0 if found else idle + 1
        if idle > MAX_IDLE_DAYS:
            raise ValueError(f"{role} is not staffed in {MAX_IDLE_DAYS} days after {day}")
        day += timedelta(days=1)


def _instants(calendar: Calendar, role: Role, day: date) -> tuple[Interval, ...]:
    """The role's spans on local `day` as UTC instants, each computed once per calendar (the
    conversions were most of a deadline's cost in the intake profile)."""
    key = (role, day)
    known = calendar.instants.get(key)
    if known is None:
        tz = calendar.timezone
        midnight = datetime(day.year, day.month, day.day)  # naive: local wall clock
        found: list[Interval] = []
        for span in calendar.spans(role, day):
            # Wall time -> instant; a time in a DST gap takes the offset before the jump.
            s = (midnight + timedelta(seconds=span.start)).replace(tzinfo=tz).astimezone(UTC)
            e = (midnight + timedelta(seconds=span.end)).replace(tzinfo=tz).astimezone(UTC)
            if e > s:  # else wholly inside a DST gap
                found.append((s, e))
        known = calendar.instants[key] = tuple(found)
    return known
