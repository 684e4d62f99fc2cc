"""Contracts of new tickets and follow-up contacts (SPEC §4) and of intake's routing."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, Field, ValidationInfo, WithJsonSchema

from shared.domain.roles import Role, TicketKind
from shared.models.base import Contract

MONEY_PATTERN = r"^\d{1,10}(\.\d{1,2})?$"


def _money_on_the_wire(value: object, info: ValidationInfo) -> object:
    """From JSON, only the schema's decimal string: a JSON number (59.0) is refused."""
    if info.mode != "json":
        return value
    if not (isinstance(value, str) and re.fullmatch(MONEY_PATTERN, value)):
        raise ValueError('a money amount is a decimal string such as "59.00"')
    return Decimal(value)  # what strict validation wants once a function has seen the input


# On the wire a decimal string ("59.00"): JSON numbers are binary floats, money is not.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2),
    BeforeValidator(_money_on_the_wire),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN, "examples": ["59.00"]}),
]


class Channel(StrEnum):
    WANGWANG = "wangwang"  # 旺旺 / IM
    PHONE = "phone"
    EMAIL = "email"
    PLATFORM = "platform"
    SYSTEM = "system"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Customer(Contract):
    id: str = Field(min_length=1, max_length=100, description="Customer id on the platform")
    nick: str = Field(min_length=1, max_length=100, description="Platform nickname (not personal)")
    name: str | None = Field(None, max_length=100, description="Real name: personal data")
    phone: str | None = Field(None, max_length=40, description="Phone number: personal data")
    address: str | None = Field(None, max_length=500, description="Address: personal data")


class OrderItem(Contract):
    sku: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=300)
    quantity: int = Field(ge=1)
    unit_price: Money


class Order(Contract):
    id: str = Field(min_length=1, max_length=100, description="Order id")
    amount: Money = Field(description="Amount paid, CNY")
    placed_at: AwareDatetime | None = None
    paid_at: AwareDatetime | None = Field(None, description="Unset: the order is not paid")
    printed_at: AwareDatetime | None = Field(None, description="Shipping label printed")
    shipped_at: AwareDatetime | None = None
    signed_at: AwareDatetime | None = Field(None, description="Customer signed for the parcel")
    items: list[OrderItem] = Field(default_factory=list, max_length=200)


class Attachment(Contract):
    url: str = Field(min_length=1, max_length=2000)
    kind: str = Field("photo", pattern="^(photo|video|file)$")
    caption: str | None = Field(None, max_length=300)


class SubmitTicket(Contract):
    """A customer contact from an upstream system: a new ticket, or a follow-up to an open one."""

    source: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
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


class TicketRouted(Contract):
    """Intake persisted a new ticket and put it in a role's queue, waiting for an agent."""

    ticket_id: str
    kind: TicketKind
    role: Role = Field(description="The owning role; no agent yet")
    priority: Priority
    subject: str
    customer_id: str
    order_id: str | None
    routed_at: AwareDatetime


class FollowUpAttached(Contract):
    """A new contact was attached to an unfinished ticket and goes to its first handler."""

    ticket_id: str
    source: str
    external_id: str
    channel: Channel
    subject: str
    text: str
    role: Role = Field(description="Role of the agent it goes to")
    agent_id: str | None = Field(description="The first handler, or null if none yet")
    attached_at: AwareDatetime
