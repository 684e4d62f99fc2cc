"""Agent commands (request/reply over AMQP) and the messages that move work between roles."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field

from shared.domain.roles import Role
from shared.models.base import Contract
from shared.models.tickets import Money

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


# --- Warehouse and finance operations (issue 5): typed results of a handoff --------------------
# Each names the handoff it completes (or advances); the desk validates it against the
# service's ledger and writes the ledger row and the handoff's result in one transaction
# (`shared.effects`). A rule violation writes nothing and is answered with its code.


class _Effect(_Args):
    handoff_id: str = Field(min_length=1, description="The handoff (task) this operation is for")
    return_on_violation: bool = Field(
        False,
        description="On a rule violation, also record the handoff as failed with the reason, "
        "so it returns to the first handler (the ledger is never written either way)",
    )


class StockLine(Contract):
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=100_000)


class RefundArgs(_Effect):
    """Finance: register a refund (§7 Return); never more than was paid, once per task."""

    command: Literal["refund"] = "refund"
    amount: Amount
    reason: str = Field(min_length=1, max_length=500, description="Verified reason")
    refund_id: str | None = Field(
        None, min_length=1, max_length=100, description="Payment system's refund id, if known"
    )


class PayoutArgs(_Effect):
    """Finance: pay an agreed compensation; above the threshold a supervisor approval must
    be on record (§7 Compensation)."""

    command: Literal["payout"] = "payout"
    amount: Amount
    reason: str = Field("compensation", min_length=1, max_length=500)


class ApprovePayoutArgs(_Effect):
    """Supervisor: approve a compensation payout of up to `amount` for a finance handoff."""

    command: Literal["approve_payout"] = "approve_payout"
    amount: Amount


class CashbackArgs(_Effect):
    """Finance: an entry in the cash-back register (返现登记)."""

    command: Literal["cashback"] = "cashback"
    amount: Amount
    note: str = Field("", max_length=500)


class InvoiceArgs(_Effect):
    """Finance: issue an invoice after confirmed receipt, amount at most the order's."""

    command: Literal["invoice"] = "invoice"
    title: str = Field(min_length=1, max_length=200, description="Invoice title (抬头)")
    amount: Amount
    quantity: int = Field(ge=1, le=100_000)
    einvoice_id: str | None = Field(None, min_length=1, max_length=100)
    tracking_number: str | None = Field(
        None, min_length=1, max_length=100, description="For a paper invoice sent by post"
    )


class ShipArgs(_Effect):
    """Warehouse: ship the order (carrier and tracking number back); stock goes down."""

    command: Literal["ship"] = "ship"
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    items: list[StockLine] = Field(
        default_factory=list, max_length=200, description="Empty: the order's items"
    )


class UrgeShipmentArgs(_Effect):
    """Warehouse: urge a late shipment, recording the reason for the delay (§7)."""

    command: Literal["urge_shipment"] = "urge_shipment"
    delay_reason: str = Field(min_length=1, max_length=1000)


class OrderChangeArgs(_Effect):
    """Warehouse: change an order before shipping (printed: void, reverse audit, edit, re-audit)."""

    command: Literal["change_order"] = "change_order"
    change: str = Field(min_length=1, max_length=1000, description="What was changed")


class InterceptArgs(_Effect):
    """Warehouse: redirect a shipped parcel (done), or request / confirm its interception."""

    command: Literal["intercept"] = "intercept"
    mode: Literal["redirect", "intercept"]
    confirmed: bool = Field(False, description="The carrier confirmed the interception")
    note: str = Field("", max_length=1000)


class ReshipArgs(_Effect):
    """Warehouse: ship again once the interception is confirmed."""

    command: Literal["reship"] = "reship"
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)


class PickUpArgs(_Effect):
    """Warehouse: courier pick-up of a return arranged (a step; the handoff stays open)."""

    command: Literal["pick_up"] = "pick_up"
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str | None = Field(None, min_length=1, max_length=100)


class TrackReturnArgs(_Effect):
    """Warehouse: where the return is (a step; the handoff stays open)."""

    command: Literal["track_return"] = "track_return"
    status: Literal["in_transit", "delivered"]
    tracking_number: str | None = Field(None, min_length=1, max_length=100)
    note: str = Field("", max_length=1000)


class ReceiveReturnArgs(_Effect):
    """Warehouse: received and inspected; what passed inspection goes back into stock."""

    command: Literal["receive_return"] = "receive_return"
    inspection: Literal["passed", "damaged", "wrong_item", "missing_parts"]
    notes: str = Field("", max_length=2000)
    restock: list[StockLine] = Field(default_factory=list, max_length=200)


class ReissuePartArgs(_Effect):
    """Warehouse: send a replacement part (tracking number back to the customer)."""

    command: Literal["reissue_part"] = "reissue_part"
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(1, ge=1, le=100)
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)


class ShipReplacementArgs(_Effect):
    """Warehouse: ship a replacement or a new item (exchange, quality problem)."""

    command: Literal["ship_replacement"] = "ship_replacement"
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    items: list[StockLine] = Field(min_length=1, max_length=200)


EffectArgs = (
    RefundArgs
    | PayoutArgs
    | ApprovePayoutArgs
    | CashbackArgs
    | InvoiceArgs
    | ShipArgs
    | UrgeShipmentArgs
    | OrderChangeArgs
    | InterceptArgs
    | ReshipArgs
    | PickUpArgs
    | TrackReturnArgs
    | ReceiveReturnArgs
    | ReissuePartArgs
    | ShipReplacementArgs
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
    | EffectArgs,
    Field(discriminator="command"),
]


class TicketCommand(Contract):
    """An agent's command on a ticket. Sent with `reply_to`; the answer is a CommandReply."""

    ticket_id: str = Field(min_length=1)
    actor_id: str = Field(min_length=1, description="The agent acting (roster id)")
    expected_version: int | None = Field(
        None, ge=1, description="The version the agent saw; a newer one rejects the command"
    )
    args: CommandArgs


class CommandReply(Contract):
    """Accepted, or rejected with the rule that broke and a message for the agent."""

    ticket_id: str
    accepted: bool
    code: str | None = Field(
        None,
        description="Rejection code: not_owner, not_first_handler, version_conflict, "
        "handoffs_pending, invalid_transition, invalid_command, unknown_agent, unknown_ticket; "
        "for warehouse and finance operations the ledger rule that broke, e.g. "
        "refund_exceeds_paid, payout_needs_approval, invoice_before_receipt, "
        "invoice_exceeds_order, stock_would_go_negative (see shared.effects)",
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

    ticket_id: str
    role: Role
    first_handler_id: str
    results: list[dict[str, Any]] = Field(description="The handoffs' outcomes and data")
    returned_at: AwareDatetime
