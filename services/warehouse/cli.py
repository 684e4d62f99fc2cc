"""`ticketq warehouse ...`: the warehouse's tasks, operations and stock (SPEC §7).

`tasks` lists the handoffs waiting for the warehouse; each operation is derived from its argument
model (`services.warehouse.contracts`) and sent to the warehouse worker, which alone applies it.
Steps of a return (`pick-up`, `track-return`) and an interception (`intercept --mode intercept`)
keep the task open; `receive-return`, `ship`, `reissue-part`, `ship-replacement`, `reship`,
`urge-shipment` and `change-order` finish it and send the result back to the first handler.
`adjust-stock` corrects a level by hand, with the reason.
"""

from __future__ import annotations

from typing import Annotated

import typer

from services.warehouse.contracts import AdjustStock, StockAdjusted, WarehouseOperation
from shared.cli.commands import ActorOpt, JsonOpt, ask, build, operation_commands
from shared.cli.output import Column, Refused, emit, fail, run, table
from shared.cli.reads import read
from shared.cli.session import acting_as
from shared.config import get_settings
from shared.tickets.cli import tasks_command
from shared.tickets.read_requests import ShowStock
from shared.tickets.roles import Role

warehouse_app = typer.Typer(
    help="Warehouse: tasks waiting, shipments, returns, stock.", no_args_is_help=True
)
tasks_command(warehouse_app, Role.WAREHOUSE)
operation_commands(warehouse_app, WarehouseOperation)


@warehouse_app.command("stock")
def stock(
    sku: Annotated[str | None, typer.Option("--sku", help="Only this SKU")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stock levels, and the net movement tasks made to each (shipments, restocks)."""

    levels = read(ShowStock, actor, sku=sku)
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


@warehouse_app.command("adjust-stock")
def adjust_stock(
    sku: Annotated[str, typer.Option("--sku", help="The SKU")],
    delta: Annotated[int, typer.Option("--delta", help="Units added (+) or removed (-)")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the movement)")],
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct a stock level by hand, with the reason; it never goes below zero."""
    agent, token = acting_as(actor)
    command = build(AdjustStock, actor_id=agent, sku=sku, delta=delta, reason=reason)
    reply = run(ask(get_settings(), command, StockAdjusted, sender=agent, token=token))
    if not reply.accepted:
        fail(Refused(reply.message, code=reply.code))
    emit(reply.model_dump(mode="json"), as_json=as_json, text=lambda: reply.message)
