"""Intake end to end against the real broker and database (SPEC §4, §5.1)."""

from __future__ import annotations

from aio_pika.abc import AbstractChannel

from services.intake.client import TicketPublisher, publish_raw
from services.intake.worker import SERVICE as INTAKE
from shared.config import Settings
from shared.db import Pool
from shared.messaging.envelope import Envelope
from shared.messaging.topology import (
    ATTEMPT,
    DL_ATTEMPTS,
    DL_ERROR,
    DL_QUEUE,
    DL_REASON,
    EXCHANGE,
    amqp_message,
)
from tests.helpers import body, contact, depth, running, take_all, wait_until


async def count(db: Pool, sql: str, *args: object) -> int:
    n = await db.fetchval(sql, *args)
    assert isinstance(n, int)
    return n


async def test_new_tickets_are_persisted_and_routed_to_their_role(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    async with running(INTAKE, settings), TicketPublisher(settings.amqp_url, producer="t") as pub:
        await pub.publish(contact("chat-1", subject="这款有现货吗?什么时候发货"))
        await pub.publish(contact("chat-2", subject="收到的杯子破损了", order_id="o-1"))
        await wait_until(lambda: _routed(channel, 2), what="two routed tickets")

    presale, aftersales = await take_all(channel, "presale"), await take_all(channel, "aftersales")
    assert [body(m)["payload"]["kind"] for m in presale] == ["inquiry"]
    assert [body(m)["payload"]["kind"] for m in aftersales] == ["quality"]
    rows = await db.fetch("SELECT * FROM tickets ORDER BY external_id")
    assert [
        (r["external_id"], r["owner_role"], r["owner_agent_id"], r["status"]) for r in rows
    ] == [
        ("chat-1", "presale", None, "queued"),
        ("chat-2", "aftersales", None, "queued"),
    ]
    routed = body(aftersales[0])
    assert routed["correlation_id"] == rows[1]["id"] == aftersales[0].correlation_id
    assert routed["producer"] == "intake" and routed["causation_id"]
    history = await db.fetch("SELECT action, actor_name, message_id FROM ticket_history")
    assert sorted(h["action"] for h in history) == ["opened", "opened"]


async def test_follow_up_attaches_to_the_open_ticket_of_the_order(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    async with running(INTAKE, settings), TicketPublisher(settings.amqp_url, producer="t") as pub:
        await pub.publish(contact("chat-1", subject="还没发货吗", order_id="o-9"))
        await wait_until(lambda: _routed(channel, 1), what="the first ticket")
        await db.execute(  # an after-sales agent took it (the ownership core does this)
            """UPDATE tickets SET owner_agent_id = 'a7', first_handler_id = 'a7',
                   first_handler_role = 'aftersales', status = 'in_progress'"""
        )
        await pub.publish(
            contact("phone-5", source="phone-system", subject="再问一下", order_id="o-9")
        )
        await wait_until(lambda: _routed(channel, 2), what="the follow-up")

    assert await count(db, "SELECT count(*) FROM tickets") == 1
    follow_up = body((await take_all(channel, "aftersales"))[-1])
    assert follow_up["type"] == "ticket.follow_up_attached"
    assert follow_up["payload"]["agent_id"] == "a7"
    contacts = await db.fetch("SELECT external_id, is_follow_up FROM ticket_contacts ORDER BY 1")
    assert [(c["external_id"], c["is_follow_up"]) for c in contacts] == [
        ("chat-1", False),
        ("phone-5", True),
    ]


async def test_republished_and_redelivered_ticket_makes_one_ticket(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    ticket = contact("chat-dup", subject="想退货", order_id="o-2")
    async with TicketPublisher(settings.amqp_url, producer="t") as pub:
        await pub.publish(ticket)  # the same message id each time (derived from the dedup key)
        await pub.publish(ticket)
        await pub.publish(ticket)
        await pub.publish(ticket, message_id="a-different-id-1")  # a new id, same dedup key
        await pub.publish(ticket, message_id="a-different-id-2")
    # Forced redelivery: take the first delivery and nack it back before any worker sees it.
    intake = await channel.get_queue("intake")
    first = await intake.get()
    await first.nack(requeue=True)

    async with running(INTAKE, settings):
        await wait_until(lambda: _intake_empty(channel), what="intake drained")
    assert await count(db, "SELECT count(*) FROM tickets") == 1
    assert await depth(channel, "aftersales") == 1


async def test_bad_input_is_dead_lettered_with_its_reason_and_work_goes_on(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    good = contact("chat-ok")
    envelope = {
        "message_id": "m-bad-contract",
        "type": "ticket.submit",
        "schema_version": 1,
        "sent_at": "2026-11-23T02:00:00Z",
        "producer": "t",
        "payload": {"source": "im-gateway", "external_id": "x"},  # no customer, subject, ...
    }
    unknown = {**envelope, "message_id": "m-unknown", "type": "ticket.teleport"}
    await publish_raw(settings.amqp_url, [b"{not json", envelope, unknown])
    async with running(INTAKE, settings), TicketPublisher(settings.amqp_url, producer="t") as pub:
        await pub.publish(good)
        await wait_until(lambda: _routed(channel, 1), what="the good ticket")
        await wait_until(lambda: _depth_is(channel, "intake.dlq", 3), what="three dead letters")

    dead = {m.headers[DL_REASON]: m for m in await take_all(channel, "intake.dlq")}
    assert set(dead) == {"malformed_json", "invalid_contract", "unknown_type"}
    assert "payload.customer: Field required" in str(dead["invalid_contract"].headers[DL_ERROR])
    assert all(
        m.headers[DL_QUEUE] == "intake" and m.headers[DL_ATTEMPTS] == 1 for m in dead.values()
    )
    assert dead["unknown_type"].message_id == "m-unknown"
    assert await count(db, "SELECT count(*) FROM tickets") == 1


async def _routed(channel: AbstractChannel, n: int) -> bool:
    return await depth(channel, "presale") + await depth(channel, "aftersales") >= n


async def _intake_empty(channel: AbstractChannel) -> bool:
    return await depth(channel, "intake") == 0 and await _routed(channel, 1)


async def _depth_is(channel: AbstractChannel, queue: str, n: int) -> bool:
    return await depth(channel, queue) == n


async def test_a_garbled_attempt_header_does_not_stall_the_message(
    settings: Settings, channel: AbstractChannel, db: Pool
) -> None:
    """Headers are input too: an unreadable `tq-attempt` is read as the first attempt."""
    envelope = Envelope.wrap(contact("chat-hdr"), producer="t")
    message = amqp_message(envelope, headers={ATTEMPT: "three"})
    exchange = await channel.get_exchange(EXCHANGE)
    await exchange.publish(message, routing_key="intake")
    async with running(INTAKE, settings):
        await wait_until(lambda: _routed(channel, 1), what="the ticket routed")
    assert await count(db, "SELECT count(*) FROM tickets") == 1
