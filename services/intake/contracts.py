"""Intake's messages: customer contacts (SPEC §2, §4) and upstream order events, from upstream
systems.

What intake sends on (`ticket.routed`, `ticket.follow_up_attached`) is the ticket kernel's
(`shared.tickets.contracts`), as are the ticket's parts (customer, order).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from shared.messaging.envelope import Contract
from shared.tickets.contracts import (
    SOURCE_PATTERN,
    Attachment,
    Channel,
    Customer,
    Order,
    Priority,
)
from shared.tickets.roles import TicketKind


class SubmitTicket(Contract):
    """A customer contact from an upstream system: a new ticket, or a follow-up to an open one."""

    TYPE: ClassVar[str] = "ticket.submit"

    source: str = Field(
        pattern=SOURCE_PATTERN,
        description="The upstream system, e.g. `im-gateway`; with `external_id`, the dedup key",
        examples=["im-gateway"],
    )
    external_id: str = Field(
        min_length=1, max_length=200, description="The contact's id in the upstream system"
    )
    channel: Channel
    customer: Customer
    order: Order | None = Field(None, description="The order the contact is about, if any")
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field("", max_length=10_000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)
    priority: Priority = Priority.NORMAL
    kind: TicketKind | None = Field(
        None, description="Kind, when the upstream system knows it (e.g. an unpaid-order reminder)"
    )
    occurred_at: AwareDatetime = Field(description="When the customer made contact")


# --- upstream order events (order centre) -------------------------------------------------------


class _OrderEvent(Contract):
    order_id: str = Field(min_length=1, max_length=100, description="The order's id")
    source: str = Field(
        pattern=SOURCE_PATTERN,
        description="The upstream system, e.g. `order-centre`",
        examples=["order-centre"],
    )


class OrderPaid(_OrderEvent):
    """The order was paid (an unpaid reminder's chase ends; the 72 h shipment clock starts)."""

    TYPE: ClassVar[str] = "order.paid"

    paid_at: AwareDatetime
    placed_at: AwareDatetime | None = Field(None, description="When it was placed, if known")


class OrderShipped(_OrderEvent):
    """The order left the warehouse."""

    TYPE: ClassVar[str] = "order.shipped"

    shipped_at: AwareDatetime
    carrier: str | None = Field(None, min_length=1, max_length=100)
    tracking_number: str | None = Field(None, min_length=1, max_length=100)


class OrderSigned(_OrderEvent):
    """The customer signed for the parcel (receipt: invoices may go out; the no-reason return
    window starts)."""

    TYPE: ClassVar[str] = "order.signed"

    signed_at: AwareDatetime


class OrderClosed(_OrderEvent):
    """The trade was closed (cancelled unpaid, or refunded in full)."""

    TYPE: ClassVar[str] = "order.closed"

    closed_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


OrderEvent = OrderPaid | OrderShipped | OrderSigned | OrderClosed
