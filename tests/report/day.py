"""A small known shop day (2026-11-22 in Shanghai) written by SQL, and its hand-counted figures.

Breaches and escalations are written by the real timers engine (armed, then fired by
`TimerLoop.fire_due` on a fixed clock inside the day).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.clock import FixedClock
from shared.db import Pool
from shared.timers import Firing, TimerLoop, arm, record_breach, record_escalation

DAY = date(2026, 11, 22)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(hh: int, mm: int = 0, *, days: int = 0) -> datetime:
    """A time of the day (Shanghai), `days` after it."""
    return datetime(2026, 11, 22, hh, mm, tzinfo=SHANGHAI) + timedelta(days=days)


# id, kind, channel, source, desk, opened
TICKETS = (
    ("T1", "inquiry", "im", "im-gateway", "presale", at(10, 5)),
    ("T2", "unpaid_reminder", "im", "order-centre", "presale", at(9)),
    ("T3", "complaint", "phone", "call-centre", "aftersales", at(14, 30)),
    ("T4", "complaint", "im", "im-gateway", "aftersales", at(15, days=-1)),
    ("T5", "inquiry", "email", "mail", "presale", at(23, 30)),
    ("T6", "inquiry", "im", "im-gateway", "presale", at(0, 30, days=1)),
    ("T7", "return", "im", "im-gateway", "aftersales", at(8)),
)

# ticket, at, actor, action, detail, reason
HISTORY: tuple[tuple[str, datetime, str, str, dict[str, Any], str | None], ...] = (
    (
        "T1",
        at(11),
        "a1",
        "stepped",
        {
            "flow": "inquiry v1",
            "left": "ask",
            "answer": "lost",
            "entered": "lost",
            "resolution": "inquiry: lost (price_too_high)",
        },
        "price_too_high",
    ),
    ("T2", at(11), "a2", "chase_taken_over", {}, None),
    (
        "T2",
        at(12),
        "a2",
        "stepped",
        {
            "flow": "unpaid_reminder v1",
            "left": "thank",
            "answer": "thanked",
            "entered": "paid",
            "resolution": "paid",
        },
        None,
    ),
    ("T3", at(15), "a3", "handed_off", {"handoff_id": "h1", "role": "warehouse"}, None),
    (
        "T3",
        at(16),
        "w1",
        "result_recorded",
        {
            "handoff_id": "h1",
            "role": "warehouse",
            "outcome": "done",
            "data": {"delay_reason": "carrier backlog"},
        },
        None,
    ),
    ("T3", at(16, 30), "a3", "handed_off", {"handoff_id": "h2", "role": "finance"}, None),
    ("T4", at(16, days=-1), "a3", "resolved", {}, None),
    ("T4", at(10), "c1", "follow_up_attached", {"reopened": True}, None),
    ("T7", at(9), "a3", "resolved", {}, None),
)

# ticket, agent, business seconds, replied
FIRST_RESPONSES = (
    ("T1", "a1", 10, at(10, 6)),
    ("T2", "a2", 25, at(9, 1)),
    ("T3", "a3", 45, at(14, 31)),
    ("T5", "a1", 5, at(0, 1, days=1)),
)

# what the timers fire: ticket, kind, agent (breach) or supervisor (escalation)
BREACHES = (
    ("T1", "no_response_2m", "a1"),
    ("T3", "no_response_2m", "a3"),
    ("T5", "no_response_2m", "a1"),
)
ESCALATIONS = (("T3", "escalate_10m", "s1"),)


async def write_day(db: Pool) -> None:
    async with db.acquire() as conn, conn.transaction():
        await conn.executemany(
            """INSERT INTO tickets (id, kind, status, channel, priority, source, external_id,
                   customer_id, customer, subject, body, owner_role, first_handler_role,
                   opened_at)
               VALUES ($1, $2, 'open', $3, 'normal', $4, $1, 'c', '{}', 's', 'b', $5, $5, $6)""",
            TICKETS,
        )
        await conn.executemany(
            """INSERT INTO ticket_history (ticket_id, at, actor_id, actor_name, action, detail,
                   reason, message_id) VALUES ($1, $2, $3, $3, $4, $5, $6, gen_random_uuid())""",
            HISTORY,
        )
        await conn.executemany(
            """INSERT INTO first_responses (ticket_id, agent_id, assigned_at, due_at,
                   replied_at, business_seconds, met)
               VALUES ($1, $2, $4, $4, $4, $3::numeric, $3::numeric <= 30)""",
            FIRST_RESPONSES,
        )
        await conn.execute("INSERT INTO order_payments (order_id, paid) VALUES ('O7', 100)")
        await conn.executemany(
            """INSERT INTO refunds (refund_id, ticket_id, handoff_id, order_id, amount, reason,
                   by_agent, at, message_id) VALUES ($1, 'T7', $1, 'O7', $2, 'r', 'f1', $3, $1)""",
            [("r1", 12.5, at(10)), ("r2", 7.25, at(11)), ("r0", 1, at(10, days=-1))],
        )
        await conn.execute(
            """INSERT INTO payouts (payout_id, ticket_id, handoff_id, amount, reason,
                   approval_required, by_agent, at, message_id)
               VALUES ('p1', 'T7', 'p1', 30, 'late', false, 'f1', $1, 'p1')""",
            at(12),
        )
    await fire_timers(db)


async def fire_timers(db: Pool) -> None:
    """Arm each breach and escalation timer due within the day; fire them at 17:00."""

    async def breach(f: Firing) -> None:
        await record_breach(f, agent_id=f.timer.payload["agent"])

    async def escalate(f: Firing) -> None:
        await record_escalation(f, to_agent_id=f.timer.payload["agent"], reason="late")

    handlers = {kind: breach for _, kind, _ in BREACHES}
    handlers |= {kind: escalate for _, kind, _ in ESCALATIONS}
    async with db.acquire() as conn:
        for ticket, kind, agent in (*BREACHES, *ESCALATIONS):
            async with conn.transaction():
                await arm(
                    conn,
                    ticket_id=ticket,
                    kind=kind,
                    due_at=at(16),
                    clock="business",
                    now=at(15),
                    payload={"agent": agent},
                )
    await TimerLoop(handlers, database_url="unused").fire_due(db, FixedClock(at(17)))
