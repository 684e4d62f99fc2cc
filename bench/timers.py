"""Durable timers: arming rate, and firing (fires/s, lateness) with a million pending.

    python -m bench.timers [--pending 1000000] [--due 10000] [--window 60]

In a database of its own (dropped after): loads `--pending` far-off timers with COPY (bulk
arming rate), arms a sample one transaction each with `arm()` (1 and 8 connections), then
runs one firing loop (SystemClock) while `--due` timers fall due spread over `--window`
seconds of real time (lateness = commit of the firing - due time), and finally fires a
backlog of `--due` timers all due at once (fires/s). Each firing records a breach row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from bench.harness import bench_database
from shared.clock import SystemClock
from shared.config import Settings
from shared.db import Pool, create_pool
from shared.logging import configure_logging
from shared.timers import Firing, TimerLoop, arm, record_breach
from shared.timers.store import CHANNEL, notice

KIND = "no_response_2m"
COLUMNS = ["ticket_id", "kind", "generation", "clock", "due_at", "fire_after", "armed_at"]
COPY_CHUNK = 100_000


def rows(
    prefix: str, n: int, due: Iterator[datetime], now: datetime
) -> Iterator[tuple[object, ...]]:
    for i in range(n):
        at = next(due)
        yield (f"{prefix}{i}", KIND, 1, "business", at, at, now)


async def bulk_arm(pool: Pool, prefix: str, n: int, due: Iterator[datetime]) -> float:
    """COPY `n` pending timers (and wake the loops, as arm() does); rows/s."""
    started, now = time.perf_counter(), datetime.now(UTC)
    async with pool.acquire() as conn:
        for first in range(0, n, COPY_CHUNK):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "timers",
                    records=list(rows(f"{prefix}{first}-", min(COPY_CHUNK, n - first), due, now)),
                    columns=COLUMNS,
                )
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, notice(KIND, now))
    return n / (time.perf_counter() - started)


async def arm_one_by_one(pool: Pool, n: int, connections: int) -> float:
    """arm() in a transaction of its own each, from `connections` at once; arms/s."""
    far = datetime.now(UTC) + timedelta(days=30)

    async def worker(w: int) -> None:
        async with pool.acquire() as conn:
            for i in range(w, n, connections):
                async with conn.transaction():
                    await arm(
                        conn,
                        ticket_id=f"arm{connections}-{i}",
                        kind=KIND,
                        due_at=far,
                        clock="business",
                        now=datetime.now(UTC),
                    )

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(connections)))
    return n / (time.perf_counter() - started)


def spread(start: datetime, n: int, window: float) -> Iterator[datetime]:
    for i in range(n):
        yield start + timedelta(seconds=window * i / n)


async def fire(
    settings: Settings, pool: Pool, prefix: str, n: int, due: Iterator[datetime]
) -> tuple[float, list[float]]:
    """Load `n` timers due as `due` says, fire them with one loop: (fires/s, lateness s)."""
    lateness: list[float] = []
    done = asyncio.Event()

    async def breach(firing: Firing) -> None:
        await record_breach(firing, agent_id="a-1")
        due_at = firing.timer.due_at.timestamp()

        def committed() -> None:
            lateness.append(time.time() - due_at)
            if len(lateness) >= n:
                done.set()

        firing.on_commit.append(committed)

    loop = TimerLoop({KIND: breach}, database_url=settings.database_url)
    loop_pool = await create_pool(settings)  # a worker's pool: TICKETQ_DB_POOL_SIZE
    task = asyncio.create_task(loop.run(loop_pool, SystemClock()))
    try:
        await loop.listening.wait()
        await bulk_arm(pool, prefix, n, due)
        started = time.perf_counter()
        await asyncio.wait_for(done.wait(), timeout=600)
        return n / (time.perf_counter() - started), lateness
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await loop_pool.close()


def quantiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100)
    return q[49], q[98], max(values)


async def run(args: argparse.Namespace) -> None:
    base = Settings()
    async with bench_database(base, f"timers_{int(time.time())}") as settings:
        pool = await create_pool(settings, size=8)
        try:
            far = spread(datetime.now(UTC) + timedelta(days=1), args.pending, 86_400 * 7)
            rate = await bulk_arm(pool, "p", args.pending - args.due, far)
            print(f"bulk arm (COPY, {args.pending - args.due} rows): {rate:,.0f} timers/s")
            for connections in (1, 8):
                rate = await arm_one_by_one(pool, args.arm_sample, connections)
                print(f"arm() one per transaction, {connections} connection(s): {rate:,.0f}/s")
            async with pool.acquire() as conn:
                await conn.execute("VACUUM ANALYZE timers")
                pending = await conn.fetchval("SELECT count(*) FROM timers WHERE state = 'pending'")
            print(f"pending before firing: {pending:,}")

            start = datetime.now(UTC) + timedelta(seconds=5)
            _, late = await fire(
                settings, pool, "d", args.due, spread(start, args.due, args.window)
            )
            p50, p99, worst = quantiles(late)
            print(
                f"{args.due} due over {args.window:.0f} s: lateness p50 {p50 * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms"
            )
            past = datetime.now(UTC) - timedelta(seconds=1)
            rate, _ = await fire(settings, pool, "b", args.due, spread(past, args.due, 0))
            print(f"{args.due} due at once (backlog): {rate:,.0f} fires/s")
        finally:
            await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=1_000_000, help="timers pending in all")
    parser.add_argument("--due", type=int, default=10_000, help="of which due in the window")
    parser.add_argument("--window", type=float, default=60.0, help="seconds they fall due over")
    parser.add_argument("--arm-sample", type=int, default=2_000, help="timers armed by arm()")
    args = parser.parse_args()
    configure_logging("warning")
    print(f"timers benchmark: {args.pending:,} pending, {os.cpu_count()} cores")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
