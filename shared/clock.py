"""The clock, a port: rules are handed times, services are handed a clock (never `datetime.now()`).

Tests move a `FixedClock` instead of sleeping; demos start a `StartedClock` at staffed hours.
Loops that wait for a time (the timers) wait through the clock: real clocks sleep in real
time, a `FixedClock` wakes its waiters when a test moves it past their time (time-skipping).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Protocol


class Clock(Protocol):
    """Where "now" comes from; logic is handed times, services are handed a clock."""

    def now(self) -> datetime: ...

    async def wait_until(self, at: datetime | None, wakeup: asyncio.Event) -> None:
        """Return once the clock reads `at` (never, if None) or `wakeup` is set, whichever is
        first. It may return early (a real clock stepped meanwhile): callers read `now()`."""


async def _wait_real(
    now: datetime, at: datetime | None, wakeup: asyncio.Event, speed: float = 1.0
) -> None:
    timeout = None if at is None else max(0.0, (at - now).total_seconds() / speed)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wakeup.wait(), timeout)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait_until(self, at: datetime | None, wakeup: asyncio.Event) -> None:
        await _wait_real(self.now(), at, wakeup)


class StartedClock:
    """Runs from a chosen start at the real pace (demos and process tests at staffed hours),
    or `speed` times faster (a shop day compressed into a minute, `bench/shopday.py`).

    `origin` is the Unix time at which the clock reads `start` (default: now); processes given
    the same start, speed and origin read the same shop time."""

    def __init__(self, start: datetime, *, speed: float = 1.0, origin: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError(f"a clock's time must be timezone-aware, got {start!r}")
        if speed <= 0:
            raise ValueError(f"a clock's speed must be positive, got {speed!r}")
        elapsed = 0.0 if origin is None else time.time() - origin
        self._start, self._t0, self.speed = start, monotonic() - elapsed, speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(monotonic() - self._t0) * self.speed)

    async def wait_until(self, at: datetime | None, wakeup: asyncio.Event) -> None:
        await _wait_real(self.now(), at, wakeup, self.speed)


def clock_from_env() -> Clock:
    """`TICKETQ_CLOCK_START` (ISO time) gives a StartedClock, `TICKETQ_CLOCK_SPEED` times the
    real pace (default 1) from `TICKETQ_CLOCK_ORIGIN` (Unix time; default now); unset, the
    system clock."""
    start = os.environ.get("TICKETQ_CLOCK_START")
    if not start:
        return SystemClock()
    origin = os.environ.get("TICKETQ_CLOCK_ORIGIN")
    return StartedClock(
        datetime.fromisoformat(start),
        speed=float(os.environ.get("TICKETQ_CLOCK_SPEED", "1")),
        origin=float(origin) if origin else None,
    )


class FixedClock:
    """A clock for tests: stands still until set or advanced; moving it past a waiter's time
    wakes that waiter at once (no real time passes)."""

    def __init__(self, at: datetime) -> None:
        self._waiters: dict[asyncio.Event, datetime] = {}
        self.set(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError(f"a clock's time must be timezone-aware, got {at!r}")
        self._at = at
        self._wake_due()

    def advance(self, delta: timedelta) -> datetime:
        self._at += delta
        self._wake_due()
        return self._at

    async def wait_until(self, at: datetime | None, wakeup: asyncio.Event) -> None:
        """Wait on `wakeup`, which this clock sets itself once it is moved to `at`."""
        if at is not None and self._at >= at:
            return
        if at is not None:
            self._waiters[wakeup] = at
        try:
            await wakeup.wait()
        finally:
            self._waiters.pop(wakeup, None)

    def _wake_due(self) -> None:
        for event, at in self._waiters.items():
            if at <= self._at:
                event.set()
