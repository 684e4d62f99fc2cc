"""Every message type the system knows: name, version, contract and the queues that take it."""

from __future__ import annotations

from dataclasses import dataclass

from shared.models.base import Contract
from shared.models.commands import CommandReply, HandoffRequested, TicketCommand, TicketReturned
from shared.models.tickets import FollowUpAttached, SubmitTicket, TicketRouted

AGENT_QUEUES = ("presale", "aftersales", "warehouse", "finance")


@dataclass(frozen=True)
class MessageType:
    name: str
    version: int
    model: type[Contract]
    queues: tuple[str, ...]
    summary: str
    # Handled alike on whichever of its queues it lands (an agent's command can go to any
    # desk): dedup and stored answers are then system-wide, not per queue.
    any_queue: bool = False

    def inbox_scope(self, queue: str) -> str:
        return self.name if self.any_queue else queue


MESSAGE_TYPES: dict[str, MessageType] = {
    t.name: t
    for t in (
        MessageType(
            "ticket.submit",
            1,
            SubmitTicket,
            ("intake",),
            "An upstream system submits a customer contact",
        ),
        MessageType(
            "ticket.routed",
            1,
            TicketRouted,
            ("presale", "aftersales"),
            "Intake routed a new ticket to a role's queue",
        ),
        MessageType(
            "ticket.follow_up_attached",
            1,
            FollowUpAttached,
            ("presale", "aftersales"),
            "A follow-up contact was attached to an unfinished ticket",
        ),
        MessageType(
            "ticket.command",
            1,
            TicketCommand,
            AGENT_QUEUES,
            "An agent's command on a ticket (request/reply: set reply_to)",
            any_queue=True,
        ),
        MessageType(
            "ticket.command_reply",
            1,
            CommandReply,
            (),
            "The answer to a ticket.command, sent to its reply_to queue",
        ),
        MessageType(
            "handoff.requested",
            1,
            HandoffRequested,
            ("aftersales", "warehouse", "finance"),
            "Work handed to a role with a task",
        ),
        MessageType(
            "ticket.returned",
            1,
            TicketReturned,
            ("presale", "aftersales"),
            "Every handoff has a result: the ticket is back with its first handler",
        ),
    )
}

_BY_MODEL = {t.model: t for t in MESSAGE_TYPES.values()}


def message_type_of(model: type[Contract]) -> MessageType:
    return _BY_MODEL[model]
