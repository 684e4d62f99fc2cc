"""What the agent-facing roles (pre-sale, after-sales) do with tickets arriving in their queue.

A routed ticket or follow-up waits here for an agent of the role to take it; the worker checks
that the database agrees the ticket is this role's (a message that disagrees is a bug upstream
and is dead-lettered). Claiming and auto-assignment (SPEC §5.2) build on this.
"""

from __future__ import annotations

from shared.models.tickets import FollowUpAttached, TicketRouted
from shared.runtime import Handler, Incoming, Outcome, Transaction


class WrongRole(Exception):
    pass


def desk_handlers(role: str) -> dict[str, Handler]:
    async def ticket_arrived(
        tx: Transaction, msg: Incoming[TicketRouted | FollowUpAttached]
    ) -> Outcome:
        ticket_id = msg.payload.ticket_id
        status = await tx.conn.fetchval("SELECT status FROM tickets WHERE id = $1", ticket_id)
        if status is None:
            raise LookupError(f"ticket {ticket_id} is not in the database")
        if msg.payload.role != role:
            raise WrongRole(f"ticket {ticket_id} was routed to {msg.payload.role}, not {role}")
        return Outcome("awaiting_agent", ticket_id)

    return {"ticket.routed": ticket_arrived, "ticket.follow_up_attached": ticket_arrived}
