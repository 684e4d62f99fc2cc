"""The ticket's clocks firing against the real broker and database (SPEC §8).

Intake and two after-sales replicas run in this process on one FixedClock: the tests move it,
and the replicas' timer loops wake for whatever fell due (no real waiting for time to pass).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.aftersales.worker import SERVICE as AFTERSALES
from services.intake.client import publish_ticket
from services.intake.worker import SERVICE as INTAKE
from shared.bootstrap import RunningService, start_service
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.tickets.contracts import ReplyArgs
from shared.tickets.read_model import list_tickets, running_clocks
from tests.helpers import T0, add_agents, captured_logs, contact, wait_until
from tests.staff import one
from tests.tcp_proxy import TcpProxy

SHOP = ZoneInfo("Asia/Shanghai")
ROSTER = [
    ("a1", "李娜", ["aftersales"], ["day", "night"]),
    ("s1", "孙主管", ["supervisor"], ["day"]),
    ("s2", "周主管", ["supervisor"], ["night"]),
]


@dataclass
class Desk:
    clock: FixedClock
    running: list[RunningService]

    def at(self, delta: timedelta) -> datetime:
        """Set the clock to T0 + delta (T0: Monday 10:00 in Shanghai)."""
        self.clock.set(T0 + delta)
        return T0 + delta


@pytest.fixture
async def desk(settings: Settings, db: Pool, broker: object) -> AsyncIterator[Desk]:
    await add_agents(db, ROSTER)
    clock = FixedClock(T0)
    running = [await start_service(s, settings, clock=clock) for s in (INTAKE, AFTERSALES)]
    running.append(await start_service(AFTERSALES, settings, clock=clock))  # a second replica
    for r in running[1:]:
        assert r.timer_loop is not None
        await asyncio.wait_for(r.timer_loop.listening.wait(), 10)
    yield Desk(clock, running)
    for r in running:
        await r.stop()


async def new_ticket(settings: Settings, db: Pool, name: str) -> str:
    """An after-sales ticket auto-assigned to a1 at the clock's time; its id."""
    await publish_ticket(settings.amqp_url, contact(name, subject="我要退货", order_id=f"o-{name}"))

    async def assigned() -> bool:
        owner = await db.fetchval("SELECT owner_agent_id FROM tickets WHERE external_id = $1", name)
        return bool(owner == "a1")

    await wait_until(assigned, what=f"{name} assigned")
    return str(await db.fetchval("SELECT id FROM tickets WHERE external_id = $1", name))


async def reply(settings: Settings, tid: str, text: str = "您好", **extra: Any) -> None:
    answer = await one(settings, tid, "a1", ReplyArgs(text=text, **extra))
    assert answer.accepted, answer


async def timer(db: Pool, tid: str, kind: str) -> dict[str, Any]:
    row = await db.fetchrow(
        """SELECT state, due_at FROM timers WHERE ticket_id = $1 AND kind = $2
            ORDER BY generation DESC LIMIT 1""",
        tid,
        kind,
    )
    assert row is not None, f"no {kind} timer for {tid}"
    return dict(row)


async def settled(db: Pool, tid: str, kind: str) -> None:
    async def done() -> bool:
        return bool((await timer(db, tid, kind))["state"] != "pending")

    await wait_until(done, what=f"{kind} of {tid} fired or cancelled")


async def actions(db: Pool, tid: str) -> list[str]:
    rows = await db.fetch("SELECT action FROM ticket_history WHERE ticket_id = $1 ORDER BY id", tid)
    return [r["action"] for r in rows]


async def test_assigned_at_closing_is_due_next_morning_and_nothing_fires_overnight(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    desk.clock.set(datetime(2026, 11, 23, 23, 29, 50, tzinfo=SHOP))
    tid = await new_ticket(settings, db, "late")
    due = (await timer(db, tid, "first_response"))["due_at"]
    assert due == datetime(2026, 11, 24, 9, 0, 20, tzinfo=SHOP)
    desk.clock.set(datetime(2026, 11, 24, 9, 0, 19, tzinfo=SHOP))
    for r in desk.running[1:]:
        assert r.timer_loop is not None
        assert await r.timer_loop.fire_due(r.pool, desk.clock) == 0
    assert await db.fetchval("SELECT count(*) FROM timers WHERE state = 'fired'") == 0
    desk.clock.set(due)
    await settled(db, tid, "first_response")
    assert (await timer(db, tid, "first_response"))["state"] == "fired"
    assert await db.fetchval("SELECT met FROM first_responses WHERE ticket_id = $1", tid) is False
    assert (await timer(db, tid, "no_response_2m"))["state"] == "pending"  # due 09:01:50


async def test_two_minutes_without_reply_is_one_breach_and_a_reply_cancels_it(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    silent = await new_ticket(settings, db, "silent")
    answered = await new_ticket(settings, db, "answered")
    desk.at(timedelta(minutes=1))
    await reply(settings, answered)
    desk.at(timedelta(minutes=2))
    await settled(db, silent, "no_response_2m")
    breaches = await db.fetch("SELECT ticket_id, agent_id, kind, at FROM breaches")
    assert [dict(b) for b in breaches] == [
        {
            "ticket_id": silent,
            "agent_id": "a1",
            "kind": "no_response_2m",
            "at": T0 + timedelta(minutes=2),
        }
    ]
    assert (await actions(db, silent)).count("breached") == 1
    assert (await timer(db, answered, "no_response_2m"))["state"] == "cancelled"
    assert "breached" not in await actions(db, answered)


async def test_first_response_met_and_missed_per_ticket_and_agent(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    quick = await new_ticket(settings, db, "quick")
    slow = await new_ticket(settings, db, "slow")
    desk.at(timedelta(seconds=10))
    await reply(settings, quick)
    desk.at(timedelta(seconds=31))
    await settled(db, slow, "first_response")
    desk.at(timedelta(seconds=40))
    await reply(settings, slow)
    rows = await db.fetch(
        """SELECT ticket_id, agent_id, replied_at - assigned_at AS took, business_seconds, met
             FROM first_responses ORDER BY ticket_id"""
    )
    assert {r["ticket_id"]: (r["agent_id"], r["business_seconds"], r["met"]) for r in rows} == {
        quick: ("a1", 10, True),
        slow: ("a1", 40, False),
    }
    assert "first_response_missed" in await actions(db, slow)
    assert "first_response_missed" not in await actions(db, quick)


async def test_a_reply_in_the_instant_the_breach_is_due_has_exactly_one_outcome(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    """The reply is handled at the due instant itself. The test holds the timer row a little
    while (as a replica claiming it would), so the reply's cancel and the loops' claim really
    race for it when it lets go; either way one outcome, the same in history and breaches."""
    outcomes = []
    rng = random.Random(7)
    for i in range(8):
        start = desk.at(timedelta(minutes=5 * i))
        tid = await new_ticket(settings, db, f"race-{i}")
        due = start + timedelta(minutes=2)
        assert (await timer(db, tid, "no_response_2m"))["due_at"] == due
        async with db.acquire() as conn, conn.transaction():
            await conn.execute(
                """SELECT 1 FROM timers WHERE ticket_id = $1 AND kind = 'no_response_2m'
                      AND state = 'pending' FOR UPDATE""",
                tid,
            )
            desk.clock.set(due)
            sent = asyncio.create_task(reply(settings, tid))
            await asyncio.sleep(rng.uniform(0, 0.15))
        await sent
        await settled(db, tid, "no_response_2m")
        state = (await timer(db, tid, "no_response_2m"))["state"]
        breaches = await db.fetchval("SELECT count(*) FROM breaches WHERE ticket_id = $1", tid)
        history = await actions(db, tid)
        assert history.count("replied") == 1
        assert (state, breaches, history.count("breached")) in {
            ("fired", 1, 1),
            ("cancelled", 0, 0),
        }, (state, breaches, history)
        replied_at = await db.fetchval(
            "SELECT at FROM ticket_history WHERE ticket_id = $1 AND action = 'replied'", tid
        )
        assert replied_at == due  # the same instant
        outcomes.append(state)
    print("outcomes:", outcomes)


async def test_thirty_minutes_escalates_to_the_supervisor_on_shift_or_the_next_one(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    tid = await new_ticket(settings, db, "ignored")
    desk.at(timedelta(minutes=30))
    await settled(db, tid, "no_response_30m")
    row = await db.fetchrow("SELECT * FROM tickets WHERE id = $1", tid)
    assert row is not None
    assert (row["status"], row["owner_role"], row["owner_agent_id"]) == (
        "escalated",
        "supervisor",
        "s1",
    )
    assert row["first_handler_id"] == "a1"  # still tracking it
    escalation = await db.fetchrow("SELECT to_agent_id, kind FROM escalations")
    assert escalation is not None and dict(escalation) == {
        "to_agent_id": "s1",
        "kind": "no_response_30m",
    }
    last = await db.fetchrow(
        "SELECT actor_id, action FROM ticket_history WHERE ticket_id = $1 ORDER BY id DESC", tid
    )
    assert last is not None and dict(last) == {"actor_id": "system", "action": "escalated"}

    # 16:00, s1 (day shift) offline: s2 comes on at 17:00 and has till 17:30.
    await db.execute("UPDATE agents SET online = false WHERE id = 's1'")
    desk.at(timedelta(hours=6))
    later = await new_ticket(settings, db, "ignored-late")
    desk.at(timedelta(hours=6, minutes=30))
    await settled(db, later, "no_response_30m")
    state = await db.fetchval("SELECT state FROM tickets WHERE id = $1", later)
    assert state["owner"]["agent"]["id"] == "s2"
    deadline = datetime.fromisoformat(state["escalation"]["deadline"])
    assert deadline == datetime(2026, 11, 23, 17, 30, tzinfo=SHOP)


async def test_a_reply_racing_the_escalation_neither_deadlocks_nor_splits(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    """The escalation locks the ticket while holding its timer; a command locks the ticket's
    timers before the ticket: one order, so neither waits on the other in a cycle."""
    rng = random.Random(3)
    async with captured_logs("warning") as logs:
        for i in range(6):
            start = desk.at(timedelta(minutes=40 * i))
            tid = await new_ticket(settings, db, f"late-reply-{i}")
            sent = asyncio.create_task(reply(settings, tid))
            await asyncio.sleep(rng.uniform(0, 0.02))
            desk.clock.set(start + timedelta(minutes=30))
            await sent
            await settled(db, tid, "no_response_30m")
            state = (await timer(db, tid, "no_response_30m"))["state"]
            rows = await db.fetchval("SELECT count(*) FROM escalations WHERE ticket_id = $1", tid)
            status = await db.fetchval("SELECT status FROM tickets WHERE id = $1", tid)
            assert (state, rows, (await actions(db, tid)).count("escalated"), status) in {
                ("fired", 1, 1, "escalated"),
                ("cancelled", 0, 0, "in_progress"),
            }
    assert [e["event"] for e in logs if e["event"].startswith("timer_")] == []


async def test_two_replicas_never_fire_a_timer_twice(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    tickets = [await new_ticket(settings, db, f"many-{i}") for i in range(12)]
    desk.at(timedelta(minutes=31))

    async def all_escalated() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM escalations") == len(tickets))

    await wait_until(all_escalated, what="every ticket escalated")
    for tid in tickets:
        history = await actions(db, tid)
        for action in ("first_response_missed", "breached", "escalated"):
            assert history.count(action) == 1, (tid, history)
    fired = await db.fetchval("SELECT count(*) FROM timers WHERE state = 'fired'")
    assert fired == 3 * len(tickets)
    assert await db.fetchval("SELECT count(DISTINCT ticket_id) FROM breaches") == len(tickets)


async def test_a_promised_reply_reminds_at_the_time_and_escalates_when_missed(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    tid = await new_ticket(settings, db, "promise")
    now = desk.at(timedelta(seconds=10))
    await reply(settings, tid, "我去仓库查一下,一小时内回复您", promise_by=now + timedelta(hours=1))
    async with db.acquire() as conn:
        clocks = {c["kind"]: c for c in await running_clocks(conn, tid, now)}
        within = timedelta(minutes=10)
        soon = await list_tickets(conn, due_within=within, now=now + timedelta(hours=1))
        nothing_yet = await list_tickets(conn, due_within=within, now=now)
    assert set(clocks) == {"reply_promised", "reply_promise_missed", "not_resolved_today"}
    assert clocks["reply_promised"]["left_seconds"] == 3600
    assert [t["id"] for t in soon.rows] == [tid]
    assert nothing_yet.total == 0

    desk.at(timedelta(hours=1, seconds=10))
    await settled(db, tid, "reply_promised")
    assert (await actions(db, tid))[-1] == "owner_reminded"
    assert await db.fetchval("SELECT count(*) FROM escalations") == 0
    desk.at(timedelta(hours=1, minutes=10, seconds=10))
    await settled(db, tid, "reply_promise_missed")
    escalation = await db.fetchrow("SELECT to_agent_id, kind, reason FROM escalations")
    assert escalation is not None
    assert (escalation["to_agent_id"], escalation["kind"]) == ("s1", "reply_promise_missed")
    assert escalation["reason"] == "the reply promised by 2026-11-23 11:00 was not sent"
    assert (await actions(db, tid))[-1] == "escalated"


async def test_a_customer_waiting_five_minutes_after_writing_again_prompts_the_owner(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    tid = await new_ticket(settings, db, "again-1")
    await reply(settings, tid)
    desk.at(timedelta(minutes=1))
    again = contact("again-2", subject="还没好吗", order_id="o-again-1")
    await publish_ticket(settings.amqp_url, again)

    async def waiting() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) FROM timers WHERE ticket_id = $1 AND kind = $2",
                tid,
                "customer_waiting_5m",
            )
        )

    await wait_until(waiting, what="the follow-up's clock")
    desk.at(timedelta(minutes=6))
    await settled(db, tid, "customer_waiting_5m")
    reminded = await db.fetchrow(
        """SELECT actor_id, detail->>'timer' AS timer FROM ticket_history
            WHERE ticket_id = $1 AND action = 'owner_reminded'""",
        tid,
    )
    assert reminded is not None and dict(reminded) == {
        "actor_id": "system",
        "timer": "customer_waiting_5m",
    }


async def test_not_resolved_today_is_a_breach_unless_a_follow_up_is_promised(
    settings: Settings, db: Pool, desk: Desk
) -> None:
    forgotten = await new_ticket(settings, db, "forgotten")
    followed = await new_ticket(settings, db, "followed")
    await reply(settings, forgotten)
    await reply(settings, followed, promise_by=datetime(2026, 11, 24, 10, 0, tzinfo=SHOP))
    closing = datetime(2026, 11, 23, 23, 30, tzinfo=SHOP)
    assert (await timer(db, forgotten, "not_resolved_today"))["due_at"] == closing
    desk.clock.set(closing)
    for tid in (forgotten, followed):

        async def fired(tid: str = tid) -> bool:
            return bool(
                await db.fetchval(
                    """SELECT count(*) FROM timers WHERE ticket_id = $1
                          AND kind = 'not_resolved_today' AND state = 'fired'""",
                    tid,
                )
            )

        await wait_until(fired, what=f"end of day for {tid}")
        nxt = await timer(db, tid, "not_resolved_today")
        assert nxt == {"state": "pending", "due_at": closing + timedelta(days=1)}
    breaches = await db.fetch("SELECT ticket_id, agent_id, kind FROM breaches")
    assert [tuple(b) for b in breaches] == [(forgotten, "a1", "not_resolved_today")]
    async with db.acquire() as conn:
        breached = await list_tickets(conn, breached=True, now=closing)
    assert [t["id"] for t in breached.rows] == [forgotten]


async def test_timers_due_while_the_broker_is_away_fire_once(
    settings: Settings, db: Pool, broker: object
) -> None:
    """The desk loses RabbitMQ (a proxy cut) while its 2-min clock falls due: timers need only
    PostgreSQL, so it fires then, once, and nothing fires again when the broker is back."""
    await add_agents(db, ROSTER)
    proxy = TcpProxy(settings.amqp_url)
    await proxy.restore()
    clock = FixedClock(T0)
    cut_off = settings.model_copy(update={"amqp_url": proxy.url(settings.amqp_url)})
    running = [
        await start_service(INTAKE, settings, clock=clock),
        await start_service(AFTERSALES, cut_off, clock=clock),
    ]
    try:
        loop = running[1].timer_loop
        assert loop is not None
        await asyncio.wait_for(loop.listening.wait(), 10)
        tid = await new_ticket(settings, db, "away-1")
        await proxy.cut()
        clock.set(T0 + timedelta(minutes=3))
        await settled(db, tid, "no_response_2m")
        await proxy.restore()
        await new_ticket(settings, db, "away-2")  # the desk is back: it assigns again
        breaches = await db.fetchval(
            "SELECT count(*) FROM breaches b JOIN timers t ON t.id = b.timer_id "
            "WHERE t.ticket_id = $1 AND t.kind = 'no_response_2m'",
            tid,
        )
        assert breaches == 1
        assert (await timer(db, tid, "no_response_2m"))["state"] == "fired"
    finally:
        for r in running:
            await r.stop()
        await proxy.close()
