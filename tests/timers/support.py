"""What the timer tests share: an effects table, a fire handler that counts, a running loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from shared.clock import Clock
from shared.db import Connection, Pool
from shared.timers import Firing, TimerLoop, arm, cancel

KIND = "no_response_2m"

# No unique key on purpose: a timer fired twice shows as two rows.
EFFECTS = """CREATE TABLE IF NOT EXISTS timer_effects (
    id         bigserial PRIMARY KEY,
    timer_id   bigint    NOT NULL,
    ticket_id  text      NOT NULL,
    generation integer   NOT NULL,
    what       text      NOT NULL
)"""


async def count_effect(firing: Firing) -> None:
    """A fire handler whose effect is a row written in the firing's transaction."""
    timer = firing.timer
    await firing.conn.execute(
        """INSERT INTO timer_effects (timer_id, ticket_id, generation, what)
           VALUES ($1, $2, $3, 'fired')""",
        timer.id,
        timer.ticket_id,
        timer.generation,
    )


async def arm_one(conn: Connection, ticket_id: str, due_at: datetime, now: datetime) -> int:
    """Arm in a transaction of its own (a savepoint inside the caller's, if any)."""
    async with conn.transaction():
        return await arm(
            conn, ticket_id=ticket_id, kind=KIND, due_at=due_at, clock="business", now=now
        )


async def cancel_one(conn: Connection, ticket_id: str) -> bool:
    async with conn.transaction():
        return await cancel(conn, ticket_id=ticket_id, kind=KIND)


async def bulk_arm(conn: Connection, n: int, due_at: datetime, now: datetime) -> None:
    """`n` pending timers at once (tickets t0…), as arm() would leave them."""
    await conn.execute(
        """INSERT INTO timers
               (ticket_id, kind, generation, clock, due_at, fire_after, armed_at)
           SELECT 't' || i, $2, 1, 'calendar', $3, $3, $4 FROM generate_series(0, $1 - 1) AS i""",
        n,
        KIND,
        due_at,
        now,
    )


async def effects(conn: Connection) -> tuple[int, int]:
    """(effect rows, distinct timers with an effect)."""
    row = await conn.fetchrow("SELECT count(*), count(DISTINCT timer_id) FROM timer_effects")
    assert row is not None
    return row[0], row[1]


async def states(conn: Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT state, count(*) FROM timers GROUP BY state")
    return {r["state"]: r["count"] for r in rows}


@contextlib.asynccontextmanager
async def running(loop: TimerLoop, pool: Pool, clock: Clock) -> AsyncIterator[TimerLoop]:
    """The loop as a task, listening before this yields; cancelled at the end."""
    task = asyncio.create_task(loop.run(pool, clock))
    try:
        await asyncio.wait_for(loop.listening.wait(), 10)
        yield loop
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
