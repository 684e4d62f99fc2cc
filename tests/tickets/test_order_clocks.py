"""The order's clocks (SPEC §6-§8): 24 h unpaid opens the chase (追单), 72 h paid and not shipped
starts the urge-shipment path, signing starts the return window; upstream order events, on the
real broker and database, time moved by a FixedClock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from aio_pika.abc import AbstractChannel

from services.aftersales.worker import SERVICE as AFTERSALES
from services.intake.client import publish_ticket
from services.intake.contracts import OrderPaid, OrderShipped, OrderSigned
from services.intake.worker import SERVICE as INTAKE
from services.presale.worker import SERVICE as PRESALE
from shared.bootstrap import RunningService, start_service
from shared.clock import FixedClock
from shared.config import Settings
from shared.db import Pool
from shared.tickets.contracts import Order, TakeOverChaseArgs
from shared.tickets.roles import TicketKind
from tests.helpers import T0, add_agents, contact, depth, publish_events, wait_until
from tests.staff import one

ROSTER = [
    ("p1", "王芳", ["presale"], ["day"]),
    ("p2", "刘洋", ["presale"], ["day"]),
    ("a1", "李娜", ["aftersales"], ["day"]),
]


@dataclass
class Shop:
    clock: FixedClock
    running: list[RunningService]


@pytest.fixture
async def shop(settings: Settings, db: Pool, broker: object) -> AsyncIterator[Shop]:
    await add_agents(db, ROSTER)
    clock = FixedClock(T0)
    running = [await start_service(s, settings, clock=clock) for s in (INTAKE, PRESALE, AFTERSALES)]
    for r in running[1:]:
        assert r.timer_loop is not None
        await asyncio.wait_for(r.timer_loop.listening.wait(), 10)
    yield Shop(clock, running)
    for r in running:
        await r.stop()


async def opened(
    settings: Settings,
    db: Pool,
    name: str,
    order: Order,
    subject: str,
    kind: TicketKind | None = None,
) -> str:
    ticket = contact(name, subject=subject, kind=kind).model_copy(update={"order": order})
    await publish_ticket(settings.amqp_url, ticket)

    async def owned() -> bool:
        return bool(
            await db.fetchval(
                "SELECT owner_agent_id IS NOT NULL FROM tickets WHERE external_id = $1", name
            )
        )

    await wait_until(owned, what=f"{name} assigned")
    return str(await db.fetchval("SELECT id FROM tickets WHERE external_id = $1", name))


async def timer_state(db: Pool, tid: str, kind: str) -> str | None:
    state = await db.fetchval(
        """SELECT state FROM timers WHERE ticket_id = $1 AND kind = $2
            ORDER BY generation DESC LIMIT 1""",
        tid,
        kind,
    )
    return None if state is None else str(state)


async def in_state(db: Pool, tid: str, kind: str, state: str) -> bool:
    return await timer_state(db, tid, kind) == state


async def history_has(db: Pool, tid: str, action: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT count(*) FROM ticket_history WHERE ticket_id = $1 AND action = $2", tid, action
        )
    )


UNPAID = TicketKind.UNPAID_REMINDER


def unpaid(order_id: str) -> Order:
    return Order(id=order_id, amount=Decimal("99.00"), placed_at=T0 - timedelta(hours=1))


async def test_an_order_unpaid_24h_opens_its_chase_to_another_agent_while_the_first_is_away(
    settings: Settings, db: Pool, shop: Shop
) -> None:
    tid = await opened(settings, db, "unpaid-1", unpaid("o-u1"), "催付", UNPAID)
    first = await db.fetchval("SELECT first_handler_id FROM tickets WHERE id = $1", tid)
    other = "p2" if first == "p1" else "p1"
    assert await timer_state(db, tid, "unpaid_24h") == "pending"
    early = await one(settings, tid, other, TakeOverChaseArgs())
    assert (early.accepted, early.code) == (False, "invalid_transition")  # not open yet

    shop.clock.set(T0 + timedelta(hours=23))  # placed an hour before T0: 24 h now
    await wait_until(lambda: history_has(db, tid, "chase_opened"), what="the chase to open")
    busy = await one(settings, tid, other, TakeOverChaseArgs())
    assert (busy.accepted, busy.code) == (False, "not_owner")  # the first handler is at work

    await db.execute("UPDATE agents SET online = false WHERE id = $1", first)
    taken = await one(settings, tid, other, TakeOverChaseArgs())
    assert taken.accepted, taken
    row = await db.fetchrow(
        "SELECT first_handler_id, owner_agent_id FROM tickets WHERE id = $1", tid
    )
    assert row is not None and (row["first_handler_id"], row["owner_agent_id"]) == (other, other)
    assert await history_has(db, tid, "chase_taken_over")


async def test_payment_cancels_the_chase_clock(settings: Settings, db: Pool, shop: Shop) -> None:
    tid = await opened(settings, db, "unpaid-2", unpaid("o-u2"), "催付", UNPAID)
    await publish_events(settings, OrderPaid(order_id="o-u2", source="order-centre", paid_at=T0))
    await wait_until(lambda: in_state(db, tid, "unpaid_24h", "cancelled"), what="payment")
    paid_at = await db.fetchval("SELECT order_data->>'paid_at' FROM tickets WHERE id = $1", tid)
    assert paid_at is not None  # the ticket's order data knows it
    shop.clock.set(T0 + timedelta(hours=30))
    assert not await history_has(db, tid, "chase_opened")


async def test_paid_72h_and_not_shipped_reminds_the_owner_unless_shipped_first(
    settings: Settings, db: Pool, shop: Shop
) -> None:
    paid = Order(id="o-p1", amount=Decimal("59.00"), placed_at=T0, paid_at=T0)
    late = await opened(settings, db, "urge-1", paid, "还没发货吗", TicketKind.URGE_SHIPMENT)
    other = paid.model_copy(update={"id": "o-p2"})
    shipped = await opened(settings, db, "urge-2", other, "还没发货吗", TicketKind.URGE_SHIPMENT)
    assert await timer_state(db, late, "shipment_72h") == "pending"
    await publish_events(
        settings, OrderShipped(order_id="o-p2", source="order-centre", shipped_at=T0)
    )
    await wait_until(lambda: in_state(db, shipped, "shipment_72h", "cancelled"), what="shipped")
    shop.clock.set(T0 + timedelta(hours=72))
    await wait_until(lambda: history_has(db, late, "owner_reminded"), what="the 72 h reminder")
    assert await timer_state(db, shipped, "shipment_72h") == "cancelled"


async def test_events_for_unknown_orders_and_out_of_order_are_kept_not_dead_lettered(
    settings: Settings, db: Pool, shop: Shop, channel: AbstractChannel
) -> None:
    shipped = OrderShipped(order_id="o-late", source="order-centre", shipped_at=T0)
    paid = OrderPaid(order_id="o-late", source="order-centre", paid_at=T0 - timedelta(hours=5))
    await publish_events(settings, shipped, paid, shipped)  # shipped first; shipped again

    async def known() -> bool:
        row = await db.fetchrow("SELECT paid_at, shipped_at FROM orders WHERE order_id = 'o-late'")
        return row is not None and row["paid_at"] is not None and row["shipped_at"] is not None

    await wait_until(known, what="both events kept")
    assert await depth(channel, "intake.dlq") == 0
    # A contact about it now: its order data has both, and no shipment clock runs.
    order = Order(id="o-late", amount=Decimal("59.00"), placed_at=T0 - timedelta(days=1))
    tid = await opened(settings, db, "late-1", order, "还没收到")
    data = await db.fetchval("SELECT order_data FROM tickets WHERE id = $1", tid)
    assert data["paid_at"] is not None and data["shipped_at"] is not None
    assert await timer_state(db, tid, "shipment_72h") is None


async def test_signing_starts_the_return_window_which_closes_after_seven_days(
    settings: Settings, db: Pool, shop: Shop
) -> None:
    days_ago = T0 - timedelta(days=3)
    order = Order(
        id="o-s1", amount=Decimal("59.00"), placed_at=days_ago, paid_at=days_ago, shipped_at=T0
    )
    tid = await opened(settings, db, "sign-1", order, "我要退货", TicketKind.RETURN)
    await publish_events(
        settings, OrderSigned(order_id="o-s1", source="order-centre", signed_at=T0)
    )
    await wait_until(lambda: in_state(db, tid, "return_window", "pending"), what="the window")
    shop.clock.set(T0 + timedelta(days=7))
    await wait_until(lambda: history_has(db, tid, "return_window_closed"), what="the window")
