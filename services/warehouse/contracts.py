"""The warehouse's messages: its operations on handed-off tasks (SPEC §7).

Each operation completes or advances a warehouse handoff; `WarehouseOperation` carries one to
the warehouse worker (request/reply), which alone applies them (`services.warehouse.operations`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from shared.messaging.envelope import Contract
from shared.tickets.contracts import OperationArgs, OperationCommand


class StockLine(Contract):
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=100_000)


class ShipArgs(OperationArgs):
    """Warehouse: ship the order (carrier and tracking number back); stock goes down."""

    command: Literal["ship"] = "ship"
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    items: list[StockLine] = Field(
        default_factory=list, max_length=200, description="Empty: the order's items"
    )


class UrgeShipmentArgs(OperationArgs):
    """Warehouse: urge a late shipment, recording the reason for the delay (§7)."""

    command: Literal["urge_shipment"] = "urge_shipment"
    delay_reason: str = Field(min_length=1, max_length=1000)


class OrderChangeArgs(OperationArgs):
    """Warehouse: change an order before shipping (printed: void, reverse audit, edit, re-audit)."""

    command: Literal["change_order"] = "change_order"
    change: str = Field(min_length=1, max_length=1000, description="What was changed")


class InterceptArgs(OperationArgs):
    """Warehouse: redirect a shipped parcel (done), or request / confirm its interception."""

    command: Literal["intercept"] = "intercept"
    mode: Literal["redirect", "intercept"]
    confirmed: bool = Field(False, description="The carrier confirmed the interception")
    note: str = Field("", max_length=1000)


class ReshipArgs(OperationArgs):
    """Warehouse: ship again once the interception is confirmed."""

    command: Literal["reship"] = "reship"
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)


class PickUpArgs(OperationArgs):
    """Warehouse: courier pick-up of a return arranged (a step; the handoff stays open)."""

    command: Literal["pick_up"] = "pick_up"
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str | None = Field(None, min_length=1, max_length=100)


class TrackReturnArgs(OperationArgs):
    """Warehouse: where the return is (a step; the handoff stays open)."""

    command: Literal["track_return"] = "track_return"
    status: Literal["in_transit", "delivered"]
    tracking_number: str | None = Field(None, min_length=1, max_length=100)
    note: str = Field("", max_length=1000)


class ReceiveReturnArgs(OperationArgs):
    """Warehouse: received and inspected; what passed inspection goes back into stock."""

    command: Literal["receive_return"] = "receive_return"
    inspection: Literal["passed", "damaged", "wrong_item", "missing_parts"]
    notes: str = Field("", max_length=2000)
    restock: list[StockLine] = Field(default_factory=list, max_length=200)


class ReissuePartArgs(OperationArgs):
    """Warehouse: send a replacement part (tracking number back to the customer)."""

    command: Literal["reissue_part"] = "reissue_part"
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(1, ge=1, le=100)
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)


class ShipReplacementArgs(OperationArgs):
    """Warehouse: ship a replacement or a new item (exchange, quality problem)."""

    command: Literal["ship_replacement"] = "ship_replacement"
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    items: list[StockLine] = Field(min_length=1, max_length=200)


WarehouseArgs = Annotated[
    ShipArgs
    | UrgeShipmentArgs
    | OrderChangeArgs
    | InterceptArgs
    | ReshipArgs
    | PickUpArgs
    | TrackReturnArgs
    | ReceiveReturnArgs
    | ReissuePartArgs
    | ShipReplacementArgs,
    Field(discriminator="command"),
]


class WarehouseOperation(OperationCommand):
    """A warehouse staff member's operation on a handoff; the answer is a CommandReply."""

    TYPE: ClassVar[str] = "warehouse.operation"
    args: WarehouseArgs


class AdjustStock(Contract):
    """Warehouse staff correct a stock level by hand, with the reason (a count, breakage found);
    it never goes below zero. Request/reply: the answer is a StockAdjusted."""

    TYPE: ClassVar[str] = "warehouse.adjust_stock"

    actor_id: str = Field(min_length=1, max_length=100, description="The staff member (roster id)")
    sku: str = Field(min_length=1, max_length=100)
    delta: int = Field(ge=-100_000, le=100_000, description="Units added (+) or removed (-)")
    reason: str = Field(min_length=1, max_length=500, description="Why: kept with the movement")

    @field_validator("delta")
    @classmethod
    def _moves_something(cls, delta: int) -> int:
        if delta == 0:
            raise ValueError("a stock adjustment moves at least one unit")
        return delta


class StockAdjusted(Contract):
    """Done, with the level now; or refused, with why (nothing changed)."""

    TYPE: ClassVar[str] = "warehouse.stock_adjusted"

    accepted: bool
    code: str | None = Field(
        None, description="not_warehouse, unknown_agent, stock_would_go_negative"
    )
    message: str
    on_hand: int | None = None
