"""Agent commands (request/reply over AMQP) and the messages that move work between roles."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field

from shared.domain.roles import Role
from shared.models.base import Contract


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


CommandArgs = Annotated[
    ClaimArgs
    | ReplyArgs
    | HandOffArgs
    | RecordResultArgs
    | ResolveArgs
    | CloseArgs
    | EscalateArgs
    | ReassignArgs,
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
        "handoffs_pending, invalid_transition, invalid_command, unknown_agent, unknown_ticket",
    )
    message: str
    version: int | None = Field(None, description="The ticket's version after the command")
    owner: str | None = Field(None, description="Who owns the ticket now, for display")


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
