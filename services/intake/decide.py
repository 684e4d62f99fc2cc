"""Intake's decision for one contact: open a new ticket, or attach it to the open one."""

from __future__ import annotations

from dataclasses import dataclass

from services.intake.classify import classify
from services.intake.contracts import SubmitTicket
from shared.tickets.roles import Role, TicketKind, role_for_kind


@dataclass(frozen=True)
class OpenTicket:
    """The unfinished ticket already open for the contact's order."""

    id: str
    owner_role: Role
    owner_agent_id: str | None
    first_handler_id: str | None
    first_handler_role: Role | None


@dataclass(frozen=True)
class OpenNewTicket:
    kind: TicketKind
    role: Role  # owner: this role, no agent yet (§5.1)


@dataclass(frozen=True)
class AttachFollowUp:
    """未处理完毕顾客: the contact goes to the ticket's first handler, not to a new agent."""

    ticket_id: str
    role: Role
    agent_id: str | None


def route_contact(
    contact: SubmitTicket, open_ticket: OpenTicket | None
) -> OpenNewTicket | AttachFollowUp:
    if open_ticket is None:
        kind = classify(contact)
        return OpenNewTicket(kind=kind, role=role_for_kind(kind))
    if open_ticket.first_handler_id is not None and open_ticket.first_handler_role is not None:
        return AttachFollowUp(
            open_ticket.id, open_ticket.first_handler_role, open_ticket.first_handler_id
        )
    # Nobody has taken it yet: it waits in the owning role's queue with its new contact.
    return AttachFollowUp(open_ticket.id, open_ticket.owner_role, open_ticket.owner_agent_id)
