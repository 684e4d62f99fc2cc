"""Walking tickets along their flows on the real broker and database: the five workers in this
process, commands sent the way the CLI sends them, time moved by a FixedClock."""

from __future__ import annotations

from typing import Any

from services.flows import load_all
from services.intake.client import publish_ticket
from shared.cli.commands import send_command
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.messaging.envelope import Contract
from shared.tickets.contracts import (
    CommandReply,
    ReplyArgs,
    StepArgs,
)
from shared.tickets.read_model import ticket_view
from shared.tickets.roles import TicketKind
from tests.helpers import command_for, contact, token_for, wait_until

ROSTER = [
    ("p1", "王芳", ["presale"], ["day"]),
    ("a1", "李娜", ["aftersales"], ["day"]),
    ("w1", "赵仓", ["warehouse"], ["day"]),
    ("f1", "钱财", ["finance"], ["day"]),
    ("s1", "孙主管", ["supervisor"], ["day"]),
]


async def start(service: Any, settings: Settings, clock: FixedClock) -> Any:
    from shared.bootstrap import start_service

    return await start_service(service, settings, clock=clock)


async def opened(settings: Settings, db: Pool, kind: TicketKind, name: str, **kw: Any) -> str:
    """A ticket of `kind` from a new contact, assigned to its desk's agent (p1 or a1)."""
    await publish_ticket(settings.amqp_url, contact(name, kind=kind, order_id=f"o-{name}", **kw))

    async def assigned() -> bool:
        owner = await db.fetchval("SELECT owner_agent_id FROM tickets WHERE external_id = $1", name)
        return owner is not None

    await wait_until(assigned, what="auto-assignment")
    tid = str(await db.fetchval("SELECT id FROM tickets WHERE external_id = $1", name))
    # The first response, as an agent gives it: the response clocks stop (SPEC §8), so the
    # hours a path waits do not escalate the ticket to a supervisor.
    owner = str(await db.fetchval("SELECT owner_agent_id FROM tickets WHERE id = $1", tid))
    answered = await send(settings, tid, owner, ReplyArgs(text="您好,我来帮您处理"))
    assert answered.accepted, answered
    return tid


async def send(settings: Settings, tid: str, actor: str, args: Contract) -> CommandReply:
    """A command the way the CLI sends it (request/reply to the queue its type goes to)."""
    return await send_command(
        settings, command_for(tid, actor, args), token=await token_for(settings, actor)
    )


async def by_the_clock(db: Pool, tid: str, clock: FixedClock) -> None:
    """A waiting state's timeout is the shop clock's move: its timer fires, as the system,
    once the FixedClock passes it. Wait for a timeout move made at the clock's time (the move
    may be made before this looks: the time, not the state, says which move is awaited)."""
    now = clock.now()

    async def moved() -> bool:
        return any(
            h["detail"]["answer"] == "timeout" and h["at"] == now for h in await history(db, tid)
        )

    await wait_until(moved, what=f"{tid} to time out at {now}")


async def walk(
    settings: Settings, tid: str, actor: str, *answers: str, **kw: Any
) -> list[CommandReply]:
    replies = []
    for answer in answers:
        reply = await send(settings, tid, actor, StepArgs(answer=answer, **kw))
        assert reply.accepted, reply
        replies.append(reply)
    return replies


async def flow(db: Pool, tid: str) -> dict[str, Any]:
    async with db.acquire() as conn:
        view = await ticket_view(conn, tid, load_all())
    assert view is not None and view["flow"] is not None
    return dict(view["flow"])


async def history(db: Pool, tid: str, action: str = "stepped") -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT at, actor_id, detail, reason FROM ticket_history "
        "WHERE ticket_id = $1 AND action = $2 ORDER BY id",
        tid,
        action,
    )
    return [dict(r) for r in rows]


async def handoff_of(db: Pool, tid: str) -> str:
    state = await db.fetchval("SELECT state FROM tickets WHERE id = $1", tid)
    return str(state["flow"]["handoff_id"])
