"""The load auto-assignment sees is the real count of open tickets each agent owns (SPEC §5.2).

The load is a counter kept by a trigger (migration 0011); two connections run a random mix of
every command that moves ownership at once, and the counter must still equal a count of the
tickets themselves, at every step and at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import datetime, timedelta
from typing import TypedDict

from shared import tickets as domain
from shared.db import Connection, Pool, migrations
from shared.tickets.desk import auto_assign
from shared.tickets.roles import Role, TicketKind
from shared.tickets.store import insert_ticket, load_ticket, open_ticket_counts, save_decision
from tests.helpers import T0, add_agents

ROSTER = [
    ("p1", "王芳", ["presale"], ["day"]),
    ("a1", "李娜", ["aftersales"], ["day"]),
    ("a2", "张伟", ["aftersales"], ["day"]),
    ("a3", "刘洋", ["aftersales", "presale"], ["day"]),
    ("w1", "赵仓", ["warehouse"], ["day"]),
    ("f1", "钱财", ["finance"], ["day"]),
    ("s1", "孙主管", ["supervisor"], ["day"]),
]
ACTORS = [domain.Actor(i, name, frozenset(Role(r) for r in roles)) for i, name, roles, _ in ROSTER]
SUPERVISOR = ACTORS[-1]
TICKETS = 30
STEPS = 250  # per connection

# Each (role, agent) whose counter and whose real count of open owned tickets differ, read in
# one statement (one snapshot) so that the other connection's commits cannot fall in between.
MISMATCHES = """
    SELECT coalesce(c.role, l.role) AS role, coalesce(c.agent_id, l.agent_id) AS agent_id,
           coalesce(c.n, 0) AS counted, coalesce(l.open_tickets, 0) AS kept
      FROM (SELECT owner_role AS role, owner_agent_id AS agent_id, count(*) AS n
              FROM tickets
             WHERE owner_agent_id IS NOT NULL AND status NOT IN ('resolved', 'closed')
             GROUP BY 1, 2) c
      FULL JOIN agent_load l ON l.role = c.role AND l.agent_id = c.agent_id
     WHERE coalesce(c.n, 0) <> coalesce(l.open_tickets, 0)"""


async def test_the_load_the_assigner_sees_is_the_open_tickets_owned(db: Pool) -> None:
    await add_agents(db, ROSTER)
    ids = [f"T{i}" for i in range(TICKETS)]
    async with db.acquire() as conn:
        for i, tid in enumerate(ids):
            await open_ticket(conn, tid, Role.PRESALE if i % 3 == 0 else Role.AFTERSALES)
    ticks = itertools.count()
    await asyncio.gather(*(mix(db, ids, random.Random(seed), ticks) for seed in (16, 61)))

    async with db.acquire() as conn:
        for role in Role:
            counted = await conn.fetch(
                """SELECT owner_agent_id, count(*) AS n FROM tickets
                   WHERE owner_role = $1 AND owner_agent_id IS NOT NULL
                     AND status NOT IN ('resolved', 'closed')
                   GROUP BY owner_agent_id""",
                role.value,
            )
            seen = await open_ticket_counts(conn, role)
            assert seen == {r["owner_agent_id"]: r["n"] for r in counted}, role
        done = {r["action"] for r in await conn.fetch("SELECT action FROM ticket_history")}
    # The mix went through every change of owner or status there is.
    assert done >= {
        "assigned",
        "claimed",
        "handed_off",
        "result_recorded",
        "escalated",
        "resolved",
        "follow_up_attached",  # reopens a resolved ticket
        "closed",
        "first_handler_reassigned",
    }, done


async def test_the_migration_counts_the_tickets_open_before_it(db: Pool) -> None:
    """Migration 0011 on a database that already has tickets: the load starts from them."""
    undo = """DROP TRIGGER tickets_agent_load ON tickets; DROP FUNCTION agent_load_follow();
              DROP TABLE agent_load; DROP INDEX tickets_queued"""
    await db.execute(undo)  # the schema as it was before 0011
    async with db.acquire() as conn:
        for i in range(40):
            await open_ticket(conn, f"T{i}", Role.AFTERSALES)
    await db.execute(
        """UPDATE tickets SET owner_agent_id = 'a' || (1 + n % 3), owner_role = r, status = s
             FROM (SELECT id, substr(id, 2)::int AS n FROM tickets) x,
                  LATERAL (SELECT (ARRAY['aftersales', 'presale'])[1 + x.n % 2] AS r,
                                  (ARRAY['in_progress', 'handed_off', 'resolved', 'closed',
                                         'escalated'])[1 + x.n % 5] AS s) y
            WHERE tickets.id = x.id AND x.n % 7 <> 0"""
    )
    await db.execute(dict(migrations())["0011_assignment_load"])
    assert await db.fetch(MISMATCHES) == []
    assert await db.fetchval("SELECT sum(open_tickets) FROM agent_load") == 20


async def open_ticket(conn: Connection, ticket_id: str, role: Role) -> None:
    """A new ticket as intake opens it: queued for `role`."""
    opened = domain.open_ticket(
        domain.Open(
            actor=domain.SYSTEM,
            at=T0,
            message_id=f"open-{ticket_id}",
            ticket_id=ticket_id,
            kind=TicketKind.INQUIRY if role is Role.PRESALE else TicketKind.RETURN,
            role=role,
        )
    )
    contact: dict[str, object] = {
        "channel": "wangwang",
        "priority": "normal",
        "source": "test",
        "external_id": ticket_id,
        "customer_id": "c1",
        "customer": {"id": "c1", "nick": "nick"},
        "order_id": None,
        "order_data": None,
        "subject": "问一下",
        "body": "",
        "attachments": [],
        "opened_at": T0,
    }
    await insert_ticket(conn, opened, contact)


async def mix(db: Pool, ids: list[str], rng: random.Random, ticks: itertools.count[int]) -> None:
    async with db.acquire() as conn:
        for _ in range(STEPS):
            tid = rng.choice(ids)
            at = T0 + timedelta(seconds=next(ticks))
            async with conn.transaction():
                if rng.random() < 0.2:
                    # As the desk does: the role's lock first, then the ticket.
                    role = Role(
                        await conn.fetchval("SELECT owner_role FROM tickets WHERE id = $1", tid)
                    )
                    await auto_assign(conn, tid, role, at, f"assign-{tid}-{at.timestamp()}")
                else:
                    ticket = await load_ticket(conn, tid)
                    assert ticket is not None
                    decision = domain.decide(ticket, random_command(ticket, rng, at))
                    if isinstance(decision, domain.Accepted):
                        await save_decision(conn, decision)
            assert await conn.fetch(MISMATCHES) == []


# Weighted by repetition: closing needs a resolve first, a result an open handoff.
KINDS = [
    *("claim", "hand_off", "result", "result", "escalate", "resolve", "close", "close"),
    *("reopen", "reassign", "reply"),
]


class _Common(TypedDict):
    actor: domain.Actor
    at: datetime
    message_id: str


def random_command(ticket: domain.Ticket, rng: random.Random, at: datetime) -> domain.Command:
    """Any command, by someone likely to be allowed it (the domain refuses the rest)."""
    involved = {
        a.id
        for a in (ticket.owner.agent, ticket.first_handler, *(h.taken_by for h in ticket.handoffs))
        if a is not None
    }
    actor = rng.choice(
        [a for a in ACTORS if a.id in involved or ticket.owner.role in a.roles] + [SUPERVISOR]
    )

    def by(who: domain.Actor) -> _Common:
        return _Common(actor=who, at=at, message_id=f"m-{ticket.id}-{ticket.version}")

    open_handoffs = [h.id for h in ticket.handoffs if h.result is None]
    match rng.choice(KINDS):
        case "claim":
            return domain.Claim(**by(actor))
        case "hand_off":
            return domain.HandOff(
                **by(actor),
                handoff_id=f"{ticket.id}-H{len(ticket.handoffs) + 1}",
                role=rng.choice([Role.WAREHOUSE, Role.FINANCE]),
                task=domain.Task("check", {}),
            )
        case "result" if open_handoffs:
            return domain.RecordResult(
                **by(actor), handoff_id=rng.choice(open_handoffs), outcome="done"
            )
        case "escalate":
            return domain.Escalate(
                **by(actor),
                category=rng.choice(list(domain.EscalationCategory)),
                customer_info={},
                problem="顾客不满意",
                actions_taken="已道歉",
                customer_demand="赔偿",
                responsible=SUPERVISOR.ref,
                deadline=at + timedelta(days=1),
            )
        case "resolve":
            return domain.Resolve(**by(actor), summary="已处理")
        case "close":
            return domain.Close(**by(actor))
        case "reopen":
            return domain.AttachFollowUp(**by(domain.SYSTEM), source="test", external_id=f"f-{at}")
        case "reassign":
            candidates = [a for a in ACTORS if ticket.first_handler_role in a.roles]
            return domain.ReassignFirstHandler(
                **by(SUPERVISOR),
                new_first_handler=rng.choice(candidates or ACTORS).ref,
                reason="下班了",
            )
        case _:
            return domain.Reply(**by(actor), text="您好")
