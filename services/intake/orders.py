"""Upstream order events (order centre): what the shop knows of each order, and the order's
clocks on its unfinished tickets (SPEC §6-§8: 24 h unpaid, 72 h unshipped, the return window).

Each time is kept as first known and never moved (`orders`), so an event re-published, sent
twice with new ids, or arriving out of order (shipped before paid) changes nothing it should
not; an event about an order no ticket mentions yet is kept for the ticket that may come.
Intake takes the same per-order lock (`lock_order`) as when it opens a ticket, so the two
never race.
"""

from __future__ import annotations

from dataclasses import fields

import asyncpg

from services.intake.contracts import (
    OrderClosed,
    OrderEvent,
    OrderPaid,
    OrderShipped,
    OrderSigned,
)
from shared.db import Connection
from shared.messaging.runtime import Incoming, Outcome, Transaction
from shared.tickets.clocks import OrderTimes
from shared.tickets.contracts import Order
from shared.tickets.roles import Role, TicketKind
from shared.tickets.store import lock_order
from shared.tickets.timing import apply_order_clocks

_COLUMNS = tuple(f.name for f in fields(OrderTimes))
# The `orders` columns of an order's times (`times_from` reads them off a row).
ORDER_COLUMNS = _COLUMNS


async def learn(
    conn: Connection, order_id: str, news: OrderTimes, close_reason: str | None = None
) -> tuple[OrderTimes, OrderTimes]:
    """Record what `news` tells of the order (first known wins); (before, after)."""
    row = await conn.fetchrow(
        f"SELECT {', '.join(_COLUMNS)} FROM orders WHERE order_id = $1", order_id
    )
    return await record(conn, order_id, times_from(row), news, close_reason)


def times_from(row: asyncpg.Record | None) -> OrderTimes | None:
    """An order's times from a row holding `ORDER_COLUMNS` (None: no row, never heard of)."""
    if row is None:
        return None
    return OrderTimes(**{c: row[c] for c in _COLUMNS})


async def record(
    conn: Connection,
    order_id: str,
    known: OrderTimes | None,
    news: OrderTimes,
    close_reason: str | None = None,
) -> tuple[OrderTimes, OrderTimes]:
    """`learn`, the order's times already read under its lock (`known`, None: no row yet)."""
    before = known or OrderTimes()
    after = OrderTimes(**{c: getattr(before, c) or getattr(news, c) for c in _COLUMNS})
    if known is None or after != before:
        await conn.execute(
            f"""INSERT INTO orders (order_id, {", ".join(_COLUMNS)}, close_reason, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, now())
                ON CONFLICT (order_id) DO UPDATE SET
                    {", ".join(f"{c} = excluded.{c}" for c in _COLUMNS)},
                    close_reason = coalesce(orders.close_reason, excluded.close_reason),
                    updated_at = now()""",
            order_id,
            *(getattr(after, c) for c in _COLUMNS),
            close_reason,
        )
    return before, after


def times_of(order: Order) -> OrderTimes:
    """What a contact's order data tells of its life."""
    return OrderTimes(
        placed_at=order.placed_at,
        paid_at=order.paid_at,
        shipped_at=order.shipped_at,
        signed_at=order.signed_at,
    )


def _news(event: OrderEvent) -> OrderTimes:
    match event:
        case OrderPaid():
            return OrderTimes(placed_at=event.placed_at, paid_at=event.paid_at)
        case OrderShipped():
            return OrderTimes(shipped_at=event.shipped_at)
        case OrderSigned():
            return OrderTimes(signed_at=event.signed_at)
        case OrderClosed():
            return OrderTimes(closed_at=event.closed_at)


async def order_event(tx: Transaction, msg: Incoming[OrderEvent]) -> Outcome:
    event = msg.payload
    await lock_order(tx.conn, event.order_id)
    reason = event.reason if isinstance(event, OrderClosed) else None
    before, after = await learn(tx.conn, event.order_id, _news(event), reason)
    if after == before:
        return Outcome("order_already_known")
    tickets = await tx.conn.fetch(
        """SELECT id, kind, first_handler_role, owner_role FROM tickets
            WHERE order_id = $1 AND status NOT IN ('resolved', 'closed') ORDER BY id""",
        event.order_id,
    )
    known = {c: v.isoformat() for c, v in vars(after).items() if v is not None}
    for ticket in tickets:
        role = Role(ticket["first_handler_role"] or ticket["owner_role"])
        # Timers before the ticket row: the one lock order (shared.tickets.timing).
        await apply_order_clocks(
            tx.conn, ticket["id"], TicketKind(ticket["kind"]), role, before, after, tx.now
        )
        await tx.conn.execute(
            """UPDATE tickets SET order_data = order_data || $2::jsonb
                WHERE id = $1 AND order_data IS NOT NULL""",
            ticket["id"],
            {k: v for k, v in known.items() if k in Order.model_fields},
        )
    return Outcome(f"{event.TYPE.replace('.', '_')}", tickets[0]["id"] if tickets else None)
