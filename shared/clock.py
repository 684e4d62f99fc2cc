"""The clock, a port: rules are handed times, services are handed a clock (never `datetime.now()`).

Tests move a `FixedClock` instead of sleeping; demos start a `StartedClock` at staffed hours.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Protocol


class Clock(Protocol):
    """Where "now" comes from; logic is handed times, services are handed a clock."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class StartedClock:
    """Runs at the real pace from a chosen start: demos and process tests at staffed hours."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"a clock's time must be timezone-aware, got {start!r}")
        self._start, self._t0 = start, monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=monotonic() - self._t0)


def clock_from_env() -> Clock:
    """`TICKETQ_CLOCK_START` (ISO time) gives a StartedClock; unset, the system clock."""
    start = os.environ.get("TICKETQ_CLOCK_START")
    return StartedClock(datetime.fromisoformat(start)) if start else SystemClock()


class FixedClock:
    """A clock for tests: stands still until set or advanced."""

    def __init__(self, at: datetime) -> None:
        self.set(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError(f"a clock's time must be timezone-aware, got {at!r}")
        self._at = at

    def advance(self, delta: timedelta) -> datetime:
        self._at += delta
        return self._at
