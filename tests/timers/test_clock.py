"""Waiting on the clock: a FixedClock wakes its waiters when moved, real clocks sleep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from shared.clock import FixedClock, SystemClock
from shared.timers.store import notice, read_notice

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def test_fixed_clock_wakes_a_waiter_once_moved_to_its_time() -> None:
    clock, wakeup = FixedClock(T), asyncio.Event()
    waiting = asyncio.create_task(clock.wait_until(T + timedelta(minutes=2), wakeup))
    await asyncio.sleep(0)
    clock.advance(timedelta(minutes=1))
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.set(T + timedelta(minutes=2))
    await asyncio.wait_for(waiting, 1)


async def test_fixed_clock_past_time_returns_at_once() -> None:
    await asyncio.wait_for(FixedClock(T).wait_until(T, asyncio.Event()), 1)


async def test_wakeup_ends_any_wait() -> None:
    for clock in (FixedClock(T), SystemClock()):
        wakeup = asyncio.Event()
        waiting = asyncio.create_task(clock.wait_until(None, wakeup))
        await asyncio.sleep(0)
        wakeup.set()
        await asyncio.wait_for(waiting, 1)


async def test_system_clock_sleeps_until_the_time() -> None:
    clock = SystemClock()
    at = clock.now() + timedelta(milliseconds=50)
    await asyncio.wait_for(clock.wait_until(at, asyncio.Event()), 1)
    assert clock.now() >= at


def test_notice_round_trip() -> None:
    assert read_notice(notice("first_response", T)) == ("first_response", T.timestamp())
    assert read_notice("garbage") is None
