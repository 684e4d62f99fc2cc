"""Agent commands (request/reply over AMQP) and the messages that move work between roles."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
)

from shared.messaging.envelope import Contract
from shared.tickets.roles import Role, TicketKind

MONEY_PATTERN = r"^\d{1,10}(\.\d{1,2})?$"


def _money_on_the_wire(value: object, info: ValidationInfo) -> object:
    """From JSON, only the schema's decimal string: a JSON number (59.0) is refused."""
    if info.mode != "json":
        return value
    if not (isinstance(value, str) and re.fullmatch(MONEY_PATTERN, value)):
        raise ValueError('a money amount is a decimal string such as "59.00"')
    return Decimal(value)  # what strict validation wants once a function has seen the input


# On the wire a decimal string ("59.00"): JSON numbers are binary floats, money is not.
# An upstream system's name (`im-gateway`, `order-centre`, `tmall-platform`): part of dedup keys.
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

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


# An amount that moves money: strictly positive (a refund of 0.00 is a typo, not a refund).
Amount = Annotated[Money, Field(gt=0)]


def _command_required(schema: dict[str, Any]) -> None:
    # The tag has a default for Python callers, but a message without it cannot be read.
    schema["required"] = ["command", *(f for f in schema.get("required", []) if f != "command")]


class _Args(Contract):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_command_required)


class ClaimArgs(_Args):
    """Take a queued ticket (becoming its first handler) or a handoff sent to your role."""

    command: Literal["claim"] = "claim"


class ReplyArgs(_Args):
    """Answer the customer; the first reply is the ticket's first response (§8)."""

    command: Literal["reply"] = "reply"
    text: str = Field(min_length=1, max_length=5000)
    promise_by: AwareDatetime | None = Field(
        None,
        description="The next reply is promised by then: the owner is reminded at that time, "
        "and the ticket escalates if it is missed (§8)",
    )


class HandOffArgs(_Args):
    """Move work to another role with a task (§5.4); the first handler keeps tracking."""

    command: Literal["hand_off"] = "hand_off"
    role: Role = Field(description="aftersales, warehouse, finance or supervisor")
    action: str = Field(min_length=1, max_length=100, examples=["refund", "pick_up_return"])
    data: dict[str, Any] = Field(default_factory=dict, description="What the task needs")


class RecordResultArgs(_Args):
    """Report a handoff's result; it returns to the ticket's first handler (§5.5)."""

    command: Literal["record_result"] = "record_result"
    handoff_id: str = Field(min_length=1)
    outcome: Literal["done", "failed"]
    data: dict[str, Any] = Field(default_factory=dict, examples=[{"refund_id": "R-1"}])


class ResolveArgs(_Args):
    command: Literal["resolve"] = "resolve"
    summary: str = Field(min_length=1, max_length=5000, description="What the customer was told")


class CloseArgs(_Args):
    command: Literal["close"] = "close"


class EscalateArgs(_Args):
    """Escalate to the supervisor (§5.8, seed 002 §3)."""

    command: Literal["escalate"] = "escalate"
    category: Literal[
        "large_amount_dispute",
        "malicious_complaint",
        "quality_hazard",
        "system_failure",
        "excessive_demand",
        "timer_breach",
    ]
    customer_info: dict[str, Any] = Field(default_factory=dict)
    problem: str = Field(min_length=1)
    actions_taken: str = Field(min_length=1)
    customer_demand: str = Field(min_length=1)
    responsible_id: str = Field(min_length=1, description="Agent id of the responsible person")
    deadline: AwareDatetime


class ReassignArgs(_Args):
    """Supervisor only: a new first handler, with the reason recorded (§4, §5.7)."""

    command: Literal["reassign_first_handler"] = "reassign_first_handler"
    new_first_handler_id: str = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=1000)


class TakeOverChaseArgs(_Args):
    """Pre-sale: take over the chase of an order unpaid 24 h whose first handler is away (追单);
    you become its first handler and the order's credit is yours."""

    command: Literal["take_over_chase"] = "take_over_chase"


class StepArgs(_Args):
    """A move on the ticket's flow: the answer at its current step (`tickets show` lists the
    allowed ones); a move the flow does not allow is rejected `not_allowed_by_flow`."""

    command: Literal["step"] = "step"
    answer: str = Field(min_length=1, max_length=64, examples=["shop_error"])
    note: str | None = Field(None, max_length=2000, description="What was said or found")
    reason: str | None = Field(
        None, max_length=200, description="A loss reason from the flow's list, when it ends so"
    )


# --- Warehouse and finance operations (issue 5): typed results of a handoff --------------------
class OperationArgs(_Args):
    """A warehouse or finance operation's arguments: the handoff (task) it completes or advances.

    The role's worker checks it against its ledger and writes the ledger row and the handoff's
    result in one transaction (`shared.tickets.operations`); a violation writes nothing.
    """

    # Whether `return_on_violation` may send a violation back as the task's failed result
    # (an approval's refusal is the approver's matter, never the task's).
    returns_on_violation: ClassVar[bool] = True

    command: str  # each operation's literal tag

    handoff_id: str = Field(min_length=1, description="The handoff (task) this operation is for")
    return_on_violation: bool = Field(
        False,
        description="On a rule violation, also record the handoff as failed with the reason, "
        "so it returns to the first handler (the ledger is never written either way)",
    )


CommandArgs = Annotated[
    ClaimArgs
    | ReplyArgs
    | HandOffArgs
    | RecordResultArgs
    | ResolveArgs
    | CloseArgs
    | EscalateArgs
    | ReassignArgs
    | TakeOverChaseArgs
    | StepArgs,
    Field(discriminator="command"),
]


class OnTicket(Contract):
    """A command on one ticket by one actor: what every agent's and staff's command shares."""

    ticket_id: str = Field(min_length=1)
    actor_id: str = Field(min_length=1, description="The agent acting (roster id)")
    expected_version: int | None = Field(
        None, ge=1, description="The version the agent saw; a newer one rejects the command"
    )


class TicketCommand(OnTicket):
    """An agent's command on a ticket. Sent with `reply_to`; the answer is a CommandReply."""

    TYPE: ClassVar[str] = "ticket.command"
    args: CommandArgs


class OperationCommand(OnTicket):
    """A role's operation on one of its handoffs; each role's worker has its own type."""


class RevealTicket(OnTicket):
    """A supervisor asks for a ticket with its personal data unmasked (SPEC §10): recorded in
    `pii_reveals` before it is answered; anyone else is refused."""

    TYPE: ClassVar[str] = "ticket.reveal"


class CommandReply(Contract):
    """Accepted, or rejected with the rule that broke and a message for the agent."""

    TYPE: ClassVar[str] = "ticket.command_reply"

    ticket_id: str
    accepted: bool
    code: str | None = Field(
        None,
        description="Rejection code: not_owner, not_first_handler, version_conflict, "
        "handoffs_pending, invalid_transition, not_allowed_by_flow, invalid_command, "
        "unknown_agent, unknown_ticket; "
        "for warehouse and finance operations the ledger rule that broke, e.g. "
        "refund_exceeds_paid, payout_needs_approval, invoice_before_receipt, "
        "invoice_exceeds_order, stock_would_go_negative (see shared.tickets.operations)",
    )
    message: str
    version: int | None = Field(None, description="The ticket's version after the command")
    owner: str | None = Field(None, description="Who owns the ticket now, for display")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="What an operation recorded (refund id, tracking number...), if any",
    )


class HandoffRequested(Contract):
    """Work handed to a role: its task waits there (warehouse, finance, after-sales)."""

    TYPE: ClassVar[str] = "handoff.requested"

    ticket_id: str
    handoff_id: str
    role: Role
    action: str
    data: dict[str, Any]
    first_handler_id: str | None = Field(description="Who tracks it and gets the result")
    requested_by: str
    requested_at: AwareDatetime


class TicketReturned(Contract):
    """Every handoff has its result: the ticket is back with its first handler (§5.5)."""

    TYPE: ClassVar[str] = "ticket.returned"

    ticket_id: str
    role: Role
    first_handler_id: str
    results: list[dict[str, Any]] = Field(description="The handoffs' outcomes and data")
    returned_at: AwareDatetime


class TicketRouted(Contract):
    """Intake persisted a new ticket and put it in a role's queue, waiting for an agent."""

    TYPE: ClassVar[str] = "ticket.routed"

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

    TYPE: ClassVar[str] = "ticket.follow_up_attached"

    ticket_id: str
    source: str
    external_id: str
    channel: Channel
    subject: str
    text: str
    role: Role = Field(description="Role of the agent it goes to")
    agent_id: str | None = Field(description="The first handler, or null if none yet")
    attached_at: AwareDatetime
