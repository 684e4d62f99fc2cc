"""Arm, cancel and re-arm in the caller's transaction; what fires and what never does."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Connection, Pool, create_pool
from shared.timers import Firing, TimerLoop, arm, cancel, record_breach
from tests.helpers import T0, captured_logs, contact, wait_until
from tests.timers.support import (
    KIND,
    arm_one,
    bulk_arm,
    cancel_one,
    count_effect,
    effects,
    states,
)

pytestmark = pytest.mark.integration

DUE = T0 + timedelta(minutes=2)


def counting_loop() -> TimerLoop:
    """Rounds are driven by hand here (`fire_due`): no LISTEN connection is made."""
    return TimerLoop({KIND: count_effect}, database_url="unused")


async def test_generations(pool: Pool) -> None:
    async with pool.acquire() as conn:
        assert await arm_one(conn, "t1", DUE, T0) == 1
        assert await arm_one(conn, "t1", DUE + timedelta(minutes=1), T0) == 2
        assert await arm_one(conn, "t2", DUE, T0) == 1
        assert await cancel_one(conn, "t1")
        assert not await cancel_one(conn, "t1")
        assert not await cancel_one(conn, "never")
        assert await arm_one(conn, "t1", DUE, T0) == 3
        rows = await conn.fetch(
            "SELECT generation, state FROM timers WHERE ticket_id = 't1' ORDER BY generation"
        )
    assert [tuple(r) for r in rows] == [(1, "cancelled"), (2, "cancelled"), (3, "pending")]


async def test_naive_due_time_refused(pool: Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(ValueError, match="timezone-aware"):
            await arm_one(conn, "t1", DUE.replace(tzinfo=None), T0)


async def test_arm_and_cancel_outside_a_transaction_refused(pool: Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="transaction of the state change"):
            await arm(conn, ticket_id="t1", kind=KIND, due_at=DUE, clock="business", now=T0)
        with pytest.raises(RuntimeError, match="transaction of the state change"):
            await cancel(conn, ticket_id="t1", kind=KIND)
        assert await conn.fetchval("SELECT count(*) FROM timers") == 0


async def test_old_generation_never_fires(pool: Pool) -> None:
    loop, clock = counting_loop(), FixedClock(T0)
    async with pool.acquire() as conn:
        await arm_one(conn, "t1", DUE, T0)
        await arm_one(conn, "t1", DUE + timedelta(minutes=10), T0)  # re-armed: later
    clock.set(DUE + timedelta(minutes=1))
    assert await loop.fire_due(pool, clock) == 0
    clock.set(DUE + timedelta(minutes=10))
    assert await loop.fire_due(pool, clock) == 1
    assert await loop.fire_due(pool, clock) == 0
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT generation FROM timer_effects") == 2
        assert await states(conn) == {"cancelled": 1, "fired": 1}


async def test_cancel_rolled_back_still_fires(pool: Pool) -> None:
    loop, clock = counting_loop(), FixedClock(DUE)
    async with pool.acquire() as conn:
        await arm_one(conn, "t1", DUE, T0)
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                assert await cancel(conn, ticket_id="t1", kind=KIND)
                raise RuntimeError("the reply's transaction failed")
    assert await loop.fire_due(pool, clock) == 1
    async with pool.acquire() as conn:
        assert await effects(conn) == (1, 1)


async def test_arm_rolled_back_leaves_no_timer(pool: Pool) -> None:
    async with pool.acquire() as conn:
        await arm_one(conn, "t1", DUE, T0)
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await arm_one(conn, "t1", DUE + timedelta(hours=1), T0)
                raise RuntimeError("the state change failed")
        rows = await conn.fetch("SELECT generation, state FROM timers")
    assert [tuple(r) for r in rows] == [(1, "pending")]


async def test_failing_handler_holds_up_no_other_timer(pool: Pool) -> None:
    async def fussy(firing: Firing) -> None:
        if firing.timer.ticket_id == "bad":
            raise LookupError("no such ticket")
        await count_effect(firing)

    loop, clock = TimerLoop({KIND: fussy}, database_url="unused"), FixedClock(DUE)
    async with pool.acquire() as conn:
        for ticket in ("a", "bad", "b"):
            await arm_one(conn, ticket, DUE, T0)
    assert await loop.fire_due(pool, clock) == 2
    async with pool.acquire() as conn:
        assert await effects(conn) == (2, 2)
        bad = await conn.fetchrow("SELECT * FROM timers WHERE ticket_id = 'bad'")
    assert bad is not None
    assert (bad["state"], bad["attempts"]) == ("pending", 1)
    assert bad["fire_after"] == DUE + timedelta(seconds=1)
    assert bad["last_error"] == "LookupError: no such ticket"


async def test_a_lost_race_is_logged_as_a_warning_and_a_fault_as_an_error(pool: Pool) -> None:
    """Both are tried again later; only the fault is an operator's business."""

    async def fails(firing: Firing) -> None:
        if firing.timer.ticket_id == "race":
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        raise LookupError("no such ticket")

    loop = TimerLoop({KIND: fails}, database_url="unused")
    async with pool.acquire() as conn:
        for ticket in ("race", "bad"):
            await arm_one(conn, ticket, DUE, T0)
    async with captured_logs("info") as logs:
        assert await loop.fire_due(pool, FixedClock(DUE)) == 0
    levels = {
        e["error"].split(":")[0]: e["log_level"] for e in logs if e["event"] == "timer_fire_failed"
    }
    assert levels == {"DeadlockDetectedError": "warning", "LookupError": "error"}
    rows = await pool.fetch("SELECT state, attempts FROM timers")
    assert [tuple(r) for r in rows] == [("pending", 1), ("pending", 1)]


async def test_firing_emits_messages_and_wakes_the_relay(pool: Pool) -> None:
    woken: list[bool] = []

    async def remind(firing: Firing) -> None:
        firing.emit("intake", contact("e-1"), ticket_id=firing.timer.ticket_id)

    loop = TimerLoop({KIND: remind}, database_url="unused", on_commit=lambda: woken.append(True))
    async with pool.acquire() as conn:
        await arm_one(conn, "t1", DUE, T0)
    assert await loop.fire_due(pool, FixedClock(DUE)) == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT routing_key, ticket_id FROM outbox")
    assert row is not None and tuple(row) == ("intake", "t1")
    assert woken == [True]


# --- An agent's reply in the same instant the timer is due: exactly one outcome ----------


async def breach(firing: Firing) -> None:
    await record_breach(firing, agent_id="a-1")


async def reply(pool: Pool, ticket_id: str) -> bool:
    """The agent's reply: cancels the timer; records the reply only if it beat the timer."""
    async with pool.acquire() as conn, conn.transaction():
        beat_the_timer = await cancel(conn, ticket_id=ticket_id, kind=KIND)
        if beat_the_timer:
            await conn.execute(
                """INSERT INTO timer_effects (timer_id, ticket_id, generation, what)
                   VALUES (0, $1, 0, 'replied in time')""",
                ticket_id,
            )
        return beat_the_timer


def breaches_counted() -> float:
    return REGISTRY.get_sample_value("ticketq_breaches_total", {"kind": KIND}) or 0


async def outcomes(pool: Pool) -> dict[str, tuple[str, int, int]]:
    """Per ticket: (timer state, breach rows, in-time reply rows)."""
    rows = await pool.fetch(
        """SELECT t.ticket_id, t.state,
                  (SELECT count(*) FROM breaches b WHERE b.ticket_id = t.ticket_id),
                  (SELECT count(*) FROM timer_effects e WHERE e.ticket_id = t.ticket_id)
             FROM timers t"""
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


async def test_reply_holding_the_row_wins(pool: Pool) -> None:
    loop = TimerLoop({KIND: breach}, database_url="unused")
    async with pool.acquire() as conn:
        await arm_one(conn, "t1", DUE, T0)
        async with conn.transaction():
            assert await cancel(conn, ticket_id="t1", kind=KIND)
            assert await loop.fire_due(pool, FixedClock(DUE)) == 0  # skipped: locked
            await conn.execute(
                "INSERT INTO timer_effects (timer_id, ticket_id, generation, what)"
                " VALUES (0, 't1', 0, 'replied in time')"
            )
    assert await loop.fire_due(pool, FixedClock(DUE)) == 0
    assert await outcomes(pool) == {"t1": ("cancelled", 0, 1)}


async def test_timer_holding_the_row_wins(pool: Pool, settings: Settings) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_breach(firing: Firing) -> None:
        entered.set()
        await release.wait()
        await breach(firing)

    loop = TimerLoop({KIND: slow_breach}, database_url="unused")
    async with pool.acquire() as conn:
        await arm_one(conn, "t1", DUE, T0)
    firing = asyncio.create_task(loop.fire_due(pool, FixedClock(DUE)))
    await asyncio.wait_for(entered.wait(), 5)
    replying = asyncio.create_task(reply(pool, "t1"))

    async def reply_waits_on_the_row() -> bool:
        waiting = await pool.fetchval(
            """SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'"""
        )
        return bool(waiting)

    await wait_until(reply_waits_on_the_row, timeout=5, what="the reply to wait for the row")
    release.set()
    assert await firing == 1
    assert not await replying  # it found the timer fired: too late
    assert await outcomes(pool) == {"t1": ("fired", 1, 0)}


async def test_replies_racing_the_loop_have_one_outcome_each(
    pool: Pool, settings: Settings
) -> None:
    n = 300
    before = breaches_counted()
    loop, clock = TimerLoop({KIND: breach}, database_url="unused", batch=10), FixedClock(DUE)
    async with pool.acquire() as conn:
        await bulk_arm(conn, n, DUE, T0)
    loop_pool = await create_pool(settings, size=2)
    try:

        async def fire_all() -> None:
            while await loop.fire_due(loop_pool, clock):
                pass

        # The loop fires from t0 up (in id order), the agents reply from the last ticket
        # down: they meet somewhere, each side winning some, racing where they meet.
        tickets = [f"t{i}" for i in reversed(range(n))]
        *replied, _ = await asyncio.gather(*(reply(pool, t) for t in tickets), fire_all())
    finally:
        await loop_pool.close()
    result = await outcomes(pool)
    assert len(result) == n
    fired = [t for t, outcome in result.items() if outcome == ("fired", 1, 0)]
    cancelled = [t for t, outcome in result.items() if outcome == ("cancelled", 0, 1)]
    assert len(fired) + len(cancelled) == n, result
    assert fired and cancelled  # both sides won some: they did race
    assert sorted(cancelled) == sorted(t for t, won in zip(tickets, replied, strict=True) if won)
    assert breaches_counted() - before == len(fired)


# --- A firing moves one ticket: its locks never cross a command's -------------------------


async def owned_ticket(conn: Connection, ticket_id: str, agent_id: str) -> None:
    """A ticket row with an owner: the `agent_load` trigger counts it for that agent."""
    await conn.execute(
        """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                                customer_id, customer, subject, body, owner_role,
                                owner_agent_id, opened_at)
           VALUES ($1, 'inquiry', 'in_progress', 'wangwang', 'normal', 'test', $1, 'c', '{}',
                   's', 'b', 'presale', $2, $3)""",
        ticket_id,
        agent_id,
        T0,
    )


async def test_firings_and_a_command_moving_tickets_between_agents_never_deadlock(
    pool: Pool,
) -> None:
    """Two escalations fire (t1: a -> d, t2: b -> c) while a command moves t3 from c to d.
    Each locks the two agents' load rows in key order; the command holds c and waits for d,
    which the first firing holds. Fired in one transaction, the second firing then waited for
    c: a deadlock, one side rolled back after a second. One firing per transaction: the first
    commits, the command follows, the second fires; each handler runs once."""
    first_holds, go_on = asyncio.Event(), asyncio.Event()
    calls: dict[str, int] = {}

    async def escalate_to(firing: Firing) -> None:
        ticket_id = firing.timer.ticket_id
        calls[ticket_id] = calls.get(ticket_id, 0) + 1
        await firing.conn.execute(
            "UPDATE tickets SET owner_agent_id = $2 WHERE id = $1",
            ticket_id,
            firing.timer.payload["to"],
        )
        if ticket_id == "t1":
            first_holds.set()
            await go_on.wait()

    async def command_moves_t3_to_d() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE tickets SET owner_agent_id = 'd' WHERE id = 't3'")

    async with pool.acquire() as conn:
        for ticket_id, agent_id in (("t1", "a"), ("t2", "b"), ("t3", "c")):
            await owned_ticket(conn, ticket_id, agent_id)
        async with conn.transaction():
            for ticket_id, to, due in (("t1", "d", DUE), ("t2", "c", DUE + timedelta(seconds=1))):
                await arm(
                    conn,
                    ticket_id=ticket_id,
                    kind=KIND,
                    due_at=due,
                    clock="business",
                    now=T0,
                    payload={"to": to},
                )
    loop = TimerLoop({KIND: escalate_to}, database_url="unused")
    firing = asyncio.create_task(loop.fire_due(pool, FixedClock(DUE + timedelta(seconds=1))))
    await asyncio.wait_for(first_holds.wait(), 5)
    command = asyncio.create_task(command_moves_t3_to_d())

    async def command_waits_for_d() -> bool:
        return bool(
            await pool.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock'"""
            )
        )

    await wait_until(command_waits_for_d, timeout=5, what="the command to wait for d's row")
    go_on.set()
    assert await firing == 2
    await command  # not chosen as a deadlock's victim
    assert calls == {"t1": 1, "t2": 1}  # no firing rolled back and run again
    load = await pool.fetch("SELECT agent_id, open_tickets FROM agent_load ORDER BY agent_id")
    assert [tuple(r) for r in load] == [("a", 0), ("b", 0), ("c", 1), ("d", 2)]


async def test_two_replicas_on_one_ticket_never_wait_for_each_other(pool: Pool) -> None:
    """A ticket's flow timeout and its 30-minute clock are both due; the timeout's handler
    cancels the other clock. A replica's firing holds all the ticket's pending timers, so the
    other replica gives the ticket up at once rather than take the other timer: held by two,
    each waited for the other's (a deadlock). The cancelled clock never fires."""
    later = "no_response_30m"
    entered, release = asyncio.Event(), asyncio.Event()
    fired: list[str] = []

    async def timeout(firing: Firing) -> None:
        fired.append(firing.timer.kind)
        entered.set()
        await release.wait()
        await cancel(firing.conn, ticket_id=firing.timer.ticket_id, kind=later)

    async def escalate(firing: Firing) -> None:
        fired.append(firing.timer.kind)

    handlers = {KIND: timeout, later: escalate}
    async with pool.acquire() as conn, conn.transaction():
        await arm(conn, ticket_id="t", kind=KIND, due_at=DUE, clock="business", now=T0)
        await arm(conn, ticket_id="t", kind=later, due_at=DUE, clock="business", now=T0)
    first = TimerLoop(handlers, database_url="unused")
    second = TimerLoop(handlers, database_url="unused")
    firing = asyncio.create_task(first.fire_due(pool, FixedClock(DUE)))
    await asyncio.wait_for(entered.wait(), 5)
    assert await asyncio.wait_for(second.fire_due(pool, FixedClock(DUE)), 5) == 0
    release.set()
    assert await firing == 1
    assert await second.fire_due(pool, FixedClock(DUE)) == 0  # nothing left due
    assert fired == [KIND]
    async with pool.acquire() as conn:
        assert await states(conn) == {"fired": 1, "cancelled": 1}
