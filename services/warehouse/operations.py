"""The warehouse's operations: shipping, urging, order changes, interceptions, returns, parts
and replacements (SPEC §7), with stock that never goes below zero.

Each reads its ledger (locked), checks its rules (`services.warehouse.rules`) and writes its
rows; `OPERATIONS` maps each argument type to its operation, and the warehouse worker alone runs
them (`shared.tickets.operations.operation_handler`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.warehouse.contracts import (
    InterceptArgs,
    OrderChangeArgs,
    PickUpArgs,
    ReceiveReturnArgs,
    ReissuePartArgs,
    ReshipArgs,
    ShipArgs,
    ShipReplacementArgs,
    StockLine,
    TrackReturnArgs,
    UrgeShipmentArgs,
)
from services.warehouse.rules import (
    change_before_shipping,
    reship_after_confirmed_interception,
    restock_only_what_passed,
    stock_stays_non_negative,
)
from shared.tickets.contracts import Order
from shared.tickets.operations import Effect, Op, Operations, Violation, order_on_ticket


def _order_items(order: Order | None) -> list[StockLine]:
    if order is None:
        return []
    return [StockLine(sku=i.sku, quantity=i.quantity) for i in order.items]


def _deltas(lines: Sequence[StockLine], sign: int) -> dict[str, int]:
    deltas: dict[str, int] = {}
    for line in lines:
        deltas[line.sku] = deltas.get(line.sku, 0) + sign * line.quantity
    return deltas


async def move_stock(op: Op, deltas: Mapping[str, int], reason: str) -> Violation | None:
    """Lock the stock rows (sku order), check no level goes negative, then move them."""
    if not deltas:
        return None
    skus = sorted(deltas)
    await op.conn.executemany(
        "INSERT INTO stock (sku, on_hand) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        [(sku,) for sku in skus if deltas[sku] > 0],
    )
    rows = await op.conn.fetch(
        "SELECT sku, on_hand FROM stock WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE",
        skus,
    )
    if violation := stock_stays_non_negative({r["sku"]: r["on_hand"] for r in rows}, deltas):
        return violation
    await op.conn.executemany(
        "UPDATE stock SET on_hand = on_hand + $2, updated_at = $3 WHERE sku = $1",
        [(sku, deltas[sku], op.at) for sku in skus],
    )
    await op.conn.executemany(
        """INSERT INTO stock_movements (sku, delta, reason, ticket_id, handoff_id, by_agent, at,
                                        message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (
                sku,
                deltas[sku],
                reason,
                op.ticket.id,
                op.handoff.id,
                op.actor.id,
                op.at,
                op.message_id,
            )
            for sku in skus
        ],
    )
    return None


async def ship(
    op: Op, kind: str, carrier: str, tracking_number: str, items: Sequence[StockLine]
) -> Effect | Violation:
    if violation := await move_stock(op, _deltas(items, -1), kind):
        return violation
    await op.conn.execute(
        """INSERT INTO shipments (ticket_id, handoff_id, order_id, kind, carrier, tracking_number,
                                  items, by_agent, at, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        op.ticket.id,
        op.handoff.id,
        op.order_id,
        kind,
        carrier,
        tracking_number,
        [line.model_dump() for line in items],
        op.actor.id,
        op.at,
        op.message_id,
    )
    return Effect(
        f"{kind} shipped with {carrier}, tracking number {tracking_number}",
        {
            "kind": kind,
            "carrier": carrier,
            "tracking_number": tracking_number,
            "items": [line.model_dump() for line in items],
        },
    )


async def reship(op: Op, args: ReshipArgs) -> Effect | Violation:
    status = await op.conn.fetchval(
        "SELECT status FROM interceptions WHERE handoff_id = $1", op.handoff.id
    )
    if violation := reship_after_confirmed_interception(status):
        return violation
    # The intercepted parcel itself goes out again: no stock moves.
    return await ship(op, "reship", args.carrier, args.tracking_number, [])


async def change_order(op: Op, args: OrderChangeArgs) -> Effect | Violation:
    order = order_on_ticket(op.order, op.ticket.id)
    if isinstance(order, Violation):
        return order
    shipped = bool(
        await op.conn.fetchval(
            "SELECT true FROM shipments WHERE order_id = $1 AND kind = 'ship' LIMIT 1", order.id
        )
    )
    if violation := change_before_shipping(order, shipped):
        return violation
    printed = order.printed_at is not None
    steps = ["void_print", "reverse_audit", "edit", "re_audit"] if printed else ["edit"]
    return Effect(
        f"order {order.id} changed ({', '.join(steps)}): {args.change}",
        {"change": args.change, "steps": steps, "printed": printed},
    )


async def intercept(op: Op, args: InterceptArgs) -> Effect | Violation:
    if args.mode == "redirect":
        return Effect("parcel redirected", {"mode": "redirect", "note": args.note})
    status = "confirmed" if args.confirmed else "requested"
    await op.conn.execute(
        """INSERT INTO interceptions (handoff_id, ticket_id, mode, status, note, updated_at)
           VALUES ($1, $2, 'intercept', $3, $4, $5)
           ON CONFLICT (handoff_id) DO UPDATE
               SET status = CASE WHEN interceptions.status = 'confirmed' THEN 'confirmed'
                                 ELSE excluded.status END,
                   note = excluded.note, updated_at = excluded.updated_at""",
        op.handoff.id,
        op.ticket.id,
        status,
        args.note,
        op.at,
    )
    return Effect(f"interception {status}", {"interception": status}, finishes=False)


async def track_return(op: Op, args: PickUpArgs | TrackReturnArgs) -> Effect | Violation:
    if isinstance(args, PickUpArgs):
        status, carrier, note = "pickup_arranged", args.carrier, ""
    else:
        status, carrier, note = args.status, None, args.note
    await op.conn.execute(
        """INSERT INTO returns (handoff_id, ticket_id, order_id, status, carrier,
                                tracking_number, notes, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (handoff_id) DO UPDATE
               SET status = excluded.status,
                   carrier = coalesce(excluded.carrier, returns.carrier),
                   tracking_number = coalesce(excluded.tracking_number, returns.tracking_number),
                   notes = excluded.notes, updated_at = excluded.updated_at""",
        op.handoff.id,
        op.ticket.id,
        op.order_id,
        status,
        carrier,
        args.tracking_number,
        note,
        op.at,
    )
    data = {"return_status": status, "tracking_number": args.tracking_number}
    return Effect(f"return {status.replace('_', ' ')}", data, finishes=False)


async def receive_return(op: Op, args: ReceiveReturnArgs) -> Effect | Violation:
    if violation := restock_only_what_passed(args.inspection, args.restock) or await move_stock(
        op, _deltas(args.restock, +1), "restock"
    ):
        return violation
    await op.conn.execute(
        """INSERT INTO returns (handoff_id, ticket_id, order_id, status, inspection, notes,
                                updated_at)
           VALUES ($1, $2, $3, 'received', $4, $5, $6)
           ON CONFLICT (handoff_id) DO UPDATE
               SET status = 'received', inspection = excluded.inspection,
                   notes = excluded.notes, updated_at = excluded.updated_at""",
        op.handoff.id,
        op.ticket.id,
        op.order_id,
        args.inspection,
        args.notes,
        op.at,
    )
    restocked = [line.model_dump() for line in args.restock]
    return Effect(
        f"return received, inspection {args.inspection}, restocked "
        f"{sum(line.quantity for line in args.restock)} item(s)",
        {"inspection": args.inspection, "notes": args.notes, "restocked": restocked},
    )


async def ship_order(op: Op, args: ShipArgs) -> Effect | Violation:
    items = args.items or _order_items(op.order)
    return await ship(op, "ship", args.carrier, args.tracking_number, items)


async def reissue_part(op: Op, args: ReissuePartArgs) -> Effect | Violation:
    line = StockLine(sku=args.sku, quantity=args.quantity)
    return await ship(op, "part", args.carrier, args.tracking_number, [line])


async def ship_replacement(op: Op, args: ShipReplacementArgs) -> Effect | Violation:
    return await ship(op, "replacement", args.carrier, args.tracking_number, args.items)


async def urge_shipment(op: Op, args: UrgeShipmentArgs) -> Effect | Violation:
    return Effect(
        f"shipment urged; delay reason recorded: {args.delay_reason}",
        {"delay_reason": args.delay_reason},
    )


OPERATIONS: Operations = {
    ShipArgs: ship_order,
    ReissuePartArgs: reissue_part,
    ShipReplacementArgs: ship_replacement,
    ReshipArgs: reship,
    UrgeShipmentArgs: urge_shipment,
    OrderChangeArgs: change_order,
    InterceptArgs: intercept,
    PickUpArgs: track_return,
    TrackReturnArgs: track_return,
    ReceiveReturnArgs: receive_return,
}
