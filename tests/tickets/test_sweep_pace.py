"""The waiting-ticket sweep keeps the shop clock's pace (no servers needed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from shared.clock import FixedClock, StartedClock
from shared.tickets.desk import _pause

START = datetime(2026, 11, 11, 8, 59, tzinfo=UTC)


async def test_a_compressed_shop_day_sweeps_at_its_own_pace() -> None:
    # 5 s of shop time at 1,200 times the real pace: the pause is the real-time floor (0.1 s),
    # not 5 real seconds (100 shop minutes, when the waiting tickets of 09:00 would wait).
    clock = StartedClock(START, speed=1200)
    await asyncio.wait_for(_pause(clock, 5.0), timeout=2.0)


async def test_a_test_clock_moved_past_the_next_sweep_wakes_it() -> None:
    # A test's clock stands still: the sweep waits for it to be moved (or `every` real
    # seconds), not for time to pass.
    clock = FixedClock(START)
    pause = asyncio.create_task(_pause(clock, 5.0))
    await asyncio.sleep(0)  # the pause has read the clock: its next sweep is due at 08:59:05
    clock.advance(timedelta(seconds=6))
    await asyncio.wait_for(pause, timeout=2.0)
