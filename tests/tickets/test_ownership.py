"""The ownership core against the real broker and database (SPEC §5, seed 000 客服流程化规范)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aio_pika.abc import AbstractChannel

from services.aftersales.worker import SERVICE as AFTERSALES
from services.finance.worker import SERVICE as FINANCE
from services.intake.client import publish_ticket
from services.intake.worker import SERVICE as INTAKE
from services.presale.worker import SERVICE as PRESALE
from services.warehouse.worker import SERVICE as WAREHOUSE
from shared.bootstrap import Service, start_service
from shared.cli.commands import send_command
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.tickets.contracts import (
    ClaimArgs,
    CloseArgs,
    CommandArgs,
    CommandReply,
    HandOffArgs,
    ReassignArgs,
    RecordResultArgs,
    ReplyArgs,
    ResolveArgs,
    TicketCommand,
)
from shared.tickets.roles import TicketKind
from tests.helpers import T0, add_agents, contact, token_for, wait_until

# The generic desk: a kind with no flow, so a free `resolve` is how the ticket ends.
FREE = TicketKind.GENERAL_AFTERSALES

ROSTER = [
    ("p1", "王芳", ["presale"], ["day"]),
    ("a1", "李娜", ["aftersales"], ["day"]),
    ("a2", "张伟", ["aftersales"], ["day"]),
    ("w1", "赵仓", ["warehouse"], ["day"]),
    ("f1", "钱财", ["finance"], ["day"]),
    ("s1", "孙主管", ["supervisor"], ["day"]),
]


@pytest.fixture
async def desk(settings: Settings, db: Pool, broker: object) -> AsyncIterator[FixedClock]:
    await add_agents(db, ROSTER)
    clock = FixedClock(T0)
    services: list[Service] = [INTAKE, PRESALE, AFTERSALES, WAREHOUSE, FINANCE]
    running = [await start_service(s, settings, clock=clock) for s in services]
    yield clock
    for r in running:
        await r.stop()


async def ask(
    settings: Settings, ticket_id: str, actor: str, args: CommandArgs, *, version: int | None = None
) -> CommandReply:
    """An agent's command, through the CLI's own request/reply client."""
    command = TicketCommand(
        ticket_id=ticket_id, actor_id=actor, expected_version=version, args=args
    )
    return await send_command(settings, command, token=await token_for(settings, actor))


async def ticket_row(db: Pool, ticket_id: str | None = None) -> dict[str, object]:
    row = await db.fetchrow(
        "SELECT * FROM tickets WHERE id = coalesce($1, id) ORDER BY id LIMIT 1", ticket_id
    )
    assert row is not None
    return dict(row)


async def test_seed_000_flow_results_return_to_the_first_handler(
    settings: Settings, db: Pool, desk: FixedClock, channel: AbstractChannel
) -> None:
    await publish_ticket(
        settings.amqp_url, contact("ww-1", subject="发错货了", order_id="o-1", kind=FREE)
    )
    await wait_until(lambda: _assigned(db), what="auto-assignment")
    t = await ticket_row(db)
    tid = str(t["id"])
    assert (t["owner_role"], t["owner_agent_id"], t["first_handler_id"]) == (
        "aftersales",
        "a1",
        "a1",
    )

    assert (await ask(settings, tid, "a1", ReplyArgs(text="您好,请上传照片"))).accepted
    pick_up = await ask(settings, tid, "a1", HandOffArgs(role="warehouse", action="pick_up_return"))
    refund = await ask(
        settings, tid, "a1", HandOffArgs(role="finance", action="refund", data={"amount": "59.00"})
    )
    assert pick_up.accepted and refund.accepted

    for stranger in (ClaimArgs(), HandOffArgs(role="finance", action="refund"), CloseArgs()):
        refused = await ask(settings, tid, "a2", stranger)
        assert (refused.accepted, refused.code) == (False, "not_owner")
        assert "owned by the finance role" in refused.message
        assert "tracked by its first handler 李娜 (a1)" in refused.message
    warehouse_close = await ask(settings, tid, "w1", CloseArgs())
    assert (warehouse_close.accepted, warehouse_close.code) == (False, "not_first_handler")

    done = {"outcome": "done"}
    assert (
        await ask(
            settings,
            tid,
            "w1",
            RecordResultArgs(handoff_id=f"{tid}-H1", data={"tracking": "SF1"}, **done),
        )
    ).accepted
    t = await ticket_row(db, tid)
    assert t["owner_role"] == "finance"  # the refund is still out
    back = await ask(
        settings,
        tid,
        "f1",
        RecordResultArgs(handoff_id=f"{tid}-H2", data={"refund_id": "R1"}, **done),
    )
    assert back.accepted and back.owner == "aftersales agent 李娜 (a1)"

    assert (await ask(settings, tid, "a1", ResolveArgs(summary="已退款,退货已取件"))).accepted
    assert (await ask(settings, tid, "a1", CloseArgs())).accepted
    t = await ticket_row(db, tid)
    assert (t["status"], t["owner_agent_id"], t["first_handler_id"]) == ("closed", "a1", "a1")
    actions = [
        r["action"]
        for r in await db.fetch(
            "SELECT action FROM ticket_history WHERE ticket_id = $1 ORDER BY id", tid
        )
    ]
    assert actions == [
        "opened",
        "assigned",
        "replied",
        "handed_off",
        "handed_off",
        "result_recorded",
        "result_recorded",
        "resolved",
        "closed",
    ]


async def test_concurrent_commands_on_one_version_one_wins(
    settings: Settings, db: Pool, desk: FixedClock
) -> None:
    await publish_ticket(settings.amqp_url, contact("ww-2", subject="退货", order_id="o-2"))
    await wait_until(lambda: _assigned(db), what="auto-assignment")
    tid, version = (await ticket_row(db))["id"], (await ticket_row(db))["version"]
    replies = await asyncio.gather(
        ask(settings, str(tid), "a1", ReplyArgs(text="第一条"), version=int(str(version))),
        ask(settings, str(tid), "a1", ReplyArgs(text="第二条"), version=int(str(version))),
    )
    assert sorted((r.accepted, r.code) for r in replies) == [
        (False, "version_conflict"),
        (True, None),
    ]


async def test_supervisor_reassigns_an_absent_first_handler(
    settings: Settings, db: Pool, desk: FixedClock
) -> None:
    await publish_ticket(settings.amqp_url, contact("ww-3", subject="补偿", order_id="o-3"))
    await wait_until(lambda: _assigned(db), what="auto-assignment")
    tid = str((await ticket_row(db))["id"])
    assert (await ask(settings, tid, "a1", HandOffArgs(role="finance", action="payout"))).accepted
    await db.execute("UPDATE agents SET online = false WHERE id = 'a1'")  # a1 left
    assert (
        await ask(settings, tid, "f1", RecordResultArgs(handoff_id=f"{tid}-H1", outcome="done"))
    ).accepted
    assert (await ticket_row(db, tid))["owner_agent_id"] == "a1"  # the result waits for a1
    refused = await ask(settings, tid, "a2", ReassignArgs(new_first_handler_id="a2", reason="x"))
    assert refused.code == "not_owner"
    moved = await ask(
        settings, tid, "s1", ReassignArgs(new_first_handler_id="a2", reason="李娜 off for the week")
    )
    assert moved.accepted
    t = await ticket_row(db, tid)
    assert (t["first_handler_id"], t["owner_agent_id"]) == ("a2", "a2")
    reason = await db.fetchval(
        """SELECT reason FROM ticket_history
           WHERE ticket_id = $1 AND action = 'first_handler_reassigned'""",
        tid,
    )
    assert reason == "李娜 off for the week"


async def _assigned(db: Pool) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM tickets WHERE owner_agent_id IS NOT NULL"))


async def test_outside_staffed_hours_tickets_wait_then_are_assigned(
    settings: Settings, db: Pool, desk: FixedClock
) -> None:
    desk.set(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))  # 00:00 in Shanghai: closed
    await publish_ticket(settings.amqp_url, contact("ww-5", subject="退货", order_id="o-5"))
    await wait_until(lambda: _history_has(db, "opened"), what="the ticket reaching after-sales")
    await asyncio.sleep(0.5)  # let after-sales handle the routed message
    assert (await ticket_row(db))["status"] == "queued"
    desk.set(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))  # 09:00: the day shift starts
    await wait_until(lambda: _assigned(db), timeout=15, what="the sweep assigning it")


async def _history_has(db: Pool, action: str) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM ticket_history WHERE action = $1", action))


async def test_a_command_the_domain_cannot_build_is_rejected_not_dead_lettered(
    settings: Settings, db: Pool, desk: FixedClock
) -> None:
    await publish_ticket(settings.amqp_url, contact("ww-6", subject="退货", order_id="o-6"))
    await wait_until(lambda: _assigned(db), what="auto-assignment")
    tid = str((await ticket_row(db))["id"])
    refused = await ask(settings, tid, "a1", HandOffArgs(role="presale", action="x"))
    assert (refused.accepted, refused.code) == (False, "invalid_command")


async def test_a_follow_up_reopens_a_resolved_ticket_to_its_first_handler(
    settings: Settings, db: Pool, desk: FixedClock
) -> None:
    """The customer writes again after being told the result, before the ticket is closed:
    the contact joins the ticket, which is back with its first handler, who can act on it."""
    await publish_ticket(
        settings.amqp_url, contact("ww-r1", subject="发错货了", order_id="o-r", kind=FREE)
    )
    await wait_until(lambda: _assigned(db), what="auto-assignment")
    tid = str((await ticket_row(db))["id"])
    assert (await ask(settings, tid, "a1", ResolveArgs(summary="已补发"))).accepted

    await publish_ticket(settings.amqp_url, contact("ww-r2", subject="还没收到", order_id="o-r"))

    async def reopened() -> bool:
        return (await ticket_row(db, tid))["status"] == "in_progress"

    await wait_until(reopened, what="the follow-up to reopen the ticket")
    t = await ticket_row(db, tid)
    assert (t["owner_role"], t["owner_agent_id"]) == ("aftersales", "a1")
    last = await db.fetchrow(
        "SELECT action, detail FROM ticket_history WHERE ticket_id = $1 ORDER BY id DESC LIMIT 1",
        tid,
    )
    assert last is not None and last["action"] == "follow_up_attached"
    assert last["detail"]["reopened"] is True
    assert await db.fetchval("SELECT count(*) FROM tickets") == 1  # no second ticket
    assert (await ask(settings, tid, "a1", ReplyArgs(text="已为您查询物流"))).accepted
