"""The firing loop: wakes when the clock reaches the next due time or a nearer timer is armed,
survives losing its LISTEN connection, and fires each timer once across replicas."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool, create_pool
from shared.timers import TimerLoop
from tests.helpers import T0, captured_logs, wait_until
from tests.timers.support import KIND, arm_one, bulk_arm, count_effect, effects, running, states

pytestmark = pytest.mark.integration

PROMPT = 2.0  # seconds of real time a woken loop may take to fire (it takes milliseconds)


def counting_loop(settings: Settings, batch: int = 200) -> TimerLoop:
    return TimerLoop({KIND: count_effect}, database_url=settings.database_url, batch=batch)


async def fired(pool: Pool) -> None:
    async def done() -> bool:
        return await _count(pool) > 0

    await wait_until(done, timeout=PROMPT, what="the timer to fire")


async def _count(pool: Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM timer_effects")
    return count


async def asleep(loop: TimerLoop) -> None:
    """Wait until the loop finished its round and sleeps."""

    async def sleeping() -> bool:
        return loop.sleeping

    await wait_until(sleeping, timeout=PROMPT, what="the loop to sleep")


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"kind": KIND} if name.endswith("_total") else {}) or 0


async def test_fires_when_the_clock_reaches_the_due_time(pool: Pool, settings: Settings) -> None:
    clock, loop = FixedClock(T0), counting_loop(settings)
    fired_before = sample("ticketq_timers_fired_total")
    late_before = sample("ticketq_timer_lateness_seconds_sum")
    async with pool.acquire() as conn:
        await arm_one(conn, "t1", T0 + timedelta(minutes=2), T0)
    async with running(loop, pool, clock):
        await asleep(loop)

        async def pending_sampled() -> bool:
            return sample("ticketq_timers_pending") == 1

        await wait_until(pending_sampled, timeout=PROMPT, what="the pending gauge")
        clock.advance(timedelta(minutes=1, seconds=59))
        await asyncio.sleep(0.2)  # not due yet: nothing may fire
        assert await _count(pool) == 0
        started = time.monotonic()
        clock.advance(timedelta(seconds=3))
        await fired(pool)
        assert time.monotonic() - started < PROMPT
    assert sample("ticketq_timers_fired_total") == fired_before + 1
    assert sample("ticketq_timer_lateness_seconds_sum") == late_before + 2  # by the FixedClock


async def test_wakes_for_a_nearer_timer_armed_while_it_sleeps(
    pool: Pool, settings: Settings
) -> None:
    clock, loop = FixedClock(T0), counting_loop(settings)
    async with pool.acquire() as conn:
        await arm_one(conn, "far", T0 + timedelta(hours=1), T0)
    async with running(loop, pool, clock):
        await asleep(loop)
        # The loop waits for T0+1h: moving the clock to T0+1m does not wake it, so only the
        # notification of the arm below can.
        clock.set(T0 + timedelta(minutes=1))
        await asyncio.sleep(0.1)
        async with pool.acquire() as conn:
            await arm_one(conn, "near", T0 + timedelta(minutes=1), clock.now())
        await fired(pool)
        assert await pool.fetchval("SELECT ticket_id FROM timer_effects") == "near"


async def test_survives_losing_its_listen_connection(pool: Pool, settings: Settings) -> None:
    clock, loop = FixedClock(T0), counting_loop(settings)
    admin = await asyncpg.connect(settings.database_url)

    async def listener() -> int | None:
        pid: int | None = await admin.fetchval(
            """SELECT pid FROM pg_stat_activity
                WHERE datname = current_database() AND query LIKE 'LISTEN%'"""
        )
        return pid

    try:
        async with captured_logs("info") as logs, running(loop, pool, clock):
            first = await listener()
            assert first is not None
            await asleep(loop)
            await admin.execute("SELECT pg_terminate_backend($1)", first)

            async def listening_again() -> bool:
                pid = await listener()
                return pid is not None and pid != first and loop.listening.is_set()

            await wait_until(listening_again, timeout=10, what="LISTEN to be back")
            await asleep(loop)
            async with pool.acquire() as conn:  # heard on the new connection
                await arm_one(conn, "t1", T0, T0)
            await fired(pool)
        events = [e["event"] for e in logs]
        assert events.count("timer_listen_lost") == 1
        assert events.count("timer_listen_restored") == 1
    finally:
        await admin.close()


async def test_two_replicas_fire_each_timer_once(pool: Pool, settings: Settings) -> None:
    n = 2000
    clock = FixedClock(T0)
    async with pool.acquire() as conn:
        await bulk_arm(conn, n, T0 + timedelta(minutes=2), T0)
    pools = [await create_pool(settings, size=2) for _ in range(2)]
    loops = [counting_loop(settings, batch=50) for _ in pools]
    try:
        async with running(loops[0], pools[0], clock), running(loops[1], pools[1], clock):
            await asleep(loops[0])
            await asleep(loops[1])
            clock.advance(timedelta(minutes=2))

            async def all_fired() -> bool:
                return await _count(pool) >= n

            await wait_until(all_fired, timeout=60, what="every timer to fire")
    finally:
        for p in pools:
            await p.close()
    async with pool.acquire() as conn:
        assert await effects(conn) == (n, n)
        assert await states(conn) == {"fired": n}
