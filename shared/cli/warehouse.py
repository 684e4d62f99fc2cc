"""`ticketq warehouse ...`: the warehouse staff's tasks, operations and stock (issue 5, SPEC §7).

Operations are `TicketCommand`s like every action (see `shared.cli.finance`). Steps of a return
(`pick-up`, `track-return`) and an interception (`intercept --requested/--confirmed`) keep the
task open; `receive-return`, `ship`, `reissue-part`, `ship-replacement`, `reship`, `urge` and
`change-order` finish it and send the result back to the first handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import typer

from shared.cli.finance import HandoffId, ReturnOpt, list_tasks
from shared.cli.output import Column, emit, run, table
from shared.cli.rpc import database
from shared.cli.tickets import JsonOpt, build, ticket_action
from shared.config import get_settings
from shared.domain.roles import Role
from shared.models.commands import (
    CommandArgs,
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

warehouse_app = typer.Typer(
    help="Warehouse: tasks waiting, shipments, returns, stock.", no_args_is_help=True
)

CarrierOpt = Annotated[str, typer.Option("--carrier", help="e.g. SF, ZTO")]
TrackingOpt = Annotated[str, typer.Option("--tracking", help="The tracking number")]
ItemsOpt = Annotated[
    list[str] | None,
    typer.Option("--item", metavar="SKU=QTY", help="Repeatable; stock moves by these"),
]


def stock_lines(items: Sequence[str] | None, option: str = "--item") -> list[StockLine]:
    lines = []
    for item in items or ():
        sku, sep, qty = item.partition("=")
        if not sep or not sku.strip() or not qty.strip().isdigit() or int(qty) < 1:
            raise typer.BadParameter(f"expected SKU=QTY, got {item!r}", param_hint=option)
        lines.append(StockLine(sku=sku.strip(), quantity=int(qty)))
    return lines


@warehouse_app.command("tasks")
def tasks(as_json: JsonOpt = False) -> None:
    """Tasks handed to the warehouse and not done yet."""
    list_tasks(Role.WAREHOUSE, as_json)


@warehouse_app.command("stock")
def stock(
    sku: Annotated[str | None, typer.Option("--sku", help="Only this SKU")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Stock levels, and the net movement tasks made to each (shipments, restocks)."""

    async def go() -> list[dict[str, Any]]:
        async with database(get_settings()) as conn:
            rows = await conn.fetch(
                """SELECT s.sku, s.on_hand, coalesce(sum(m.delta), 0) AS moved, s.updated_at
                     FROM stock s LEFT JOIN stock_movements m ON m.sku = s.sku
                    WHERE s.sku = coalesce($1, s.sku)
                    GROUP BY s.sku ORDER BY s.sku""",
                sku,
            )
            return [dict(r) for r in rows]

    levels = run(go())
    emit(
        levels,
        as_json=as_json,
        text=lambda: table(
            levels,
            [
                "sku",
                Column("on_hand", "ON HAND", align="right"),
                Column("moved", "MOVEMENTS", align="right"),
                "updated_at",
            ],
        ),
    )


@ticket_action(warehouse_app, "ship")
def ship(
    handoff_id: HandoffId,
    carrier: CarrierOpt,
    tracking: TrackingOpt,
    items: ItemsOpt = None,
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Ship the order (default items: the order's); once per task, stock never below 0."""
    return build(
        ShipArgs,
        handoff_id=handoff_id,
        carrier=carrier,
        tracking_number=tracking,
        items=stock_lines(items),
        return_on_violation=return_on_violation,
    )


@ticket_action(warehouse_app, "urge")
def urge(
    handoff_id: HandoffId,
    delay_reason: Annotated[str, typer.Option("--delay-reason", help="Why it has not shipped")],
) -> CommandArgs:
    """Urge a late shipment and record the reason for the delay."""
    return build(UrgeShipmentArgs, handoff_id=handoff_id, delay_reason=delay_reason)


@ticket_action(warehouse_app, "change-order")
def change_order(
    handoff_id: HandoffId,
    change: Annotated[str, typer.Option("--change", help="What changes (address, item...)")],
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Change an order before shipping (printed: void, reverse audit, edit, re-audit)."""
    return build(
        OrderChangeArgs,
        handoff_id=handoff_id,
        change=change,
        return_on_violation=return_on_violation,
    )


@ticket_action(warehouse_app, "intercept")
def intercept(
    handoff_id: HandoffId,
    redirect: Annotated[
        bool, typer.Option("--redirect", help="The carrier redirects it (finishes the task)")
    ] = False,
    confirmed: Annotated[
        bool, typer.Option("--confirmed/--requested", help="Interception state")
    ] = False,
    note: Annotated[str | None, typer.Option("--note")] = None,
) -> CommandArgs:
    """Redirect a shipped parcel, or record its interception requested / confirmed."""
    mode: Literal["redirect", "intercept"] = "redirect" if redirect else "intercept"
    return build(InterceptArgs, handoff_id=handoff_id, mode=mode, confirmed=confirmed, note=note)


@ticket_action(warehouse_app, "reship")
def reship(
    handoff_id: HandoffId,
    carrier: CarrierOpt,
    tracking: TrackingOpt,
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Ship again once the interception is confirmed."""
    return build(
        ReshipArgs,
        handoff_id=handoff_id,
        carrier=carrier,
        tracking_number=tracking,
        return_on_violation=return_on_violation,
    )


@ticket_action(warehouse_app, "pick-up")
def pick_up(
    handoff_id: HandoffId,
    carrier: CarrierOpt,
    tracking: Annotated[str | None, typer.Option("--tracking")] = None,
) -> CommandArgs:
    """Courier pick-up of a return arranged (the task stays open)."""
    return build(PickUpArgs, handoff_id=handoff_id, carrier=carrier, tracking_number=tracking)


@ticket_action(warehouse_app, "track-return")
def track_return(
    handoff_id: HandoffId,
    delivered: Annotated[
        bool, typer.Option("--delivered/--in-transit", help="Where the return is")
    ] = False,
    tracking: Annotated[str | None, typer.Option("--tracking")] = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
) -> CommandArgs:
    """Record where the return is (the task stays open)."""
    status: Literal["in_transit", "delivered"] = "delivered" if delivered else "in_transit"
    return build(
        TrackReturnArgs, handoff_id=handoff_id, status=status, tracking_number=tracking, note=note
    )


@ticket_action(warehouse_app, "receive-return")
def receive_return(
    handoff_id: HandoffId,
    inspection: Annotated[
        str, typer.Option("--inspection", help="passed, damaged, wrong_item or missing_parts")
    ],
    notes: Annotated[str | None, typer.Option("--notes")] = None,
    restock: Annotated[
        list[str] | None,
        typer.Option("--restock", metavar="SKU=QTY", help="Back into stock; repeatable"),
    ] = None,
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Receive and inspect a return; what passed goes back into stock (finishes the task)."""
    return build(
        ReceiveReturnArgs,
        handoff_id=handoff_id,
        inspection=inspection,
        notes=notes,
        restock=stock_lines(restock, "--restock"),
        return_on_violation=return_on_violation,
    )


@ticket_action(warehouse_app, "reissue-part")
def reissue_part(
    handoff_id: HandoffId,
    sku: Annotated[str, typer.Option("--sku", help="The part")],
    carrier: CarrierOpt,
    tracking: TrackingOpt,
    quantity: Annotated[int, typer.Option("--quantity", min=1)] = 1,
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Send a replacement part; its tracking number goes back to the first handler."""
    return build(
        ReissuePartArgs,
        handoff_id=handoff_id,
        sku=sku,
        quantity=quantity,
        carrier=carrier,
        tracking_number=tracking,
        return_on_violation=return_on_violation,
    )


@ticket_action(warehouse_app, "ship-replacement")
def ship_replacement(
    handoff_id: HandoffId,
    carrier: CarrierOpt,
    tracking: TrackingOpt,
    items: ItemsOpt = None,
    return_on_violation: ReturnOpt = False,
) -> CommandArgs:
    """Ship a replacement or a new item (exchange, quality problem)."""
    return build(
        ShipReplacementArgs,
        handoff_id=handoff_id,
        carrier=carrier,
        tracking_number=tracking,
        items=stock_lines(items),
        return_on_violation=return_on_violation,
    )
