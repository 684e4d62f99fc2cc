"""The messages a decision's events send: work handed to a role, a ticket back with its first
handler. The desk sends them with its transaction, a timer's firing with its own."""

from __future__ import annotations

from shared import tickets as domain
from shared.messaging.envelope import Contract
from shared.tickets import Accepted
from shared.tickets.contracts import HandoffRequested, TicketReturned
from shared.tickets.roles import Role


def messages_for(accepted: Accepted) -> list[tuple[str, Contract]]:
    """(queue, message) for each event that moves work between roles."""
    out: list[tuple[str, Contract]] = []
    for event in accepted.events:
        match event:
            case domain.HandoffRequested() if event.role is not Role.SUPERVISOR:
                out.append(
                    (
                        event.role.value,
                        HandoffRequested(
                            ticket_id=event.ticket_id,
                            handoff_id=event.handoff_id,
                            role=event.role,
                            action=event.task.action,
                            data=dict(event.task.data),
                            first_handler_id=event.first_handler.id
                            if event.first_handler
                            else None,
                            requested_by=event.by.id,
                            requested_at=event.at,
                        ),
                    )
                )
            case domain.TicketReturnedToFirstHandler() if event.owner.agent is not None:
                ticket = accepted.ticket
                out.append(
                    (
                        event.owner.role.value,
                        TicketReturned(
                            ticket_id=event.ticket_id,
                            role=event.owner.role,
                            first_handler_id=event.owner.agent.id,
                            results=[
                                {
                                    "handoff_id": h.id,
                                    "role": h.role.value,
                                    "action": h.task.action,
                                    "outcome": h.result.outcome,
                                    "data": dict(h.result.data),
                                }
                                for h in ticket.handoffs
                                if h.result is not None
                            ],
                            returned_at=event.at,
                        ),
                    )
                )
    return out
