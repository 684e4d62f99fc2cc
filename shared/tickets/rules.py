"""Who is who, and the named rules: each returns None when it holds, else the rejection."""

from __future__ import annotations

from dataclasses import dataclass

from shared.tickets.commands import (
    Command,
    ReassignFirstHandler,
    RecordResult,
    TakeOverChase,
    command_name,
)
from shared.tickets.model import (
    SYSTEM,
    Actor,
    AgentRef,
    Handoff,
    RejectionCode,
    Ticket,
    TicketStatus,
)
from shared.tickets.roles import Role

# Who is who


def is_supervisor(actor: Actor) -> bool:
    return Role.SUPERVISOR in actor.roles


def is_system(actor: Actor) -> bool:
    return actor.id == SYSTEM.id


def is_owner(ticket: Ticket, actor: Actor) -> bool:
    return ticket.owner.agent is not None and ticket.owner.agent.id == actor.id


def is_first_handler(ticket: Ticket, actor: Actor) -> bool:
    return ticket.first_handler is not None and ticket.first_handler.id == actor.id


def may_act(ticket: Ticket, actor: Actor) -> bool:
    """The owner, the first handler (who tracks the ticket while it is away), or a supervisor."""
    return is_owner(ticket, actor) or is_first_handler(ticket, actor) or is_supervisor(actor)


def may_take(ticket: Ticket, actor: Actor) -> bool:
    """Claiming unowned work is for agents of the owning role (and supervisors)."""
    return ticket.owner.agent is None and (ticket.owner.role in actor.roles or is_supervisor(actor))


def may_record_result(handoff: Handoff, actor: Actor) -> bool:
    if is_supervisor(actor):
        return True
    if handoff.taken_by is not None:
        return handoff.taken_by.id == actor.id
    return handoff.role in actor.roles


def may_finish(ticket: Ticket, actor: Actor) -> bool:
    """Resolving and closing belong to the first handler (§5.6) or a supervisor."""
    return is_first_handler(ticket, actor) or is_supervisor(actor)


def works_on(ticket: Ticket, actor: Actor) -> bool:
    """Someone with a part in the ticket's flow: its owner, or a role it was ever handed to.

    Decides between the two refusals of Resolve/Close: a participant who is not the first
    handler hears `not_first_handler`; a stranger hears `not_owner`, naming the owner.
    """
    return (
        may_act(ticket, actor)
        or may_take(ticket, actor)
        or any(may_record_result(h, actor) for h in ticket.handoffs)
    )


@dataclass(frozen=True)
class Rejected:
    code: RejectionCode
    message: str
    rule: str = ""  # the named rule that broke, for logs and tests


# --------------------------------------------------------------------------------------------
# The rules. Each returns None when it holds, else the rejection that names it.


def expected_version_matches(ticket: Ticket, command: Command) -> Rejected | None:
    expected = command.expected_version
    if expected is None or expected == ticket.version:
        return None
    return Rejected(
        RejectionCode.VERSION_CONFLICT,
        f"ticket {ticket.id} is at version {ticket.version}, "
        f"the command expected version {expected}",
        "expected_version_matches",
    )


def closed_ticket_is_final(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status is not TicketStatus.CLOSED:
        return None
    return _invalid(ticket, command, "it is closed", "closed_ticket_is_final")


def only_owner_or_tracker_may_act(ticket: Ticket, actor: Actor) -> Rejected | None:
    if may_act(ticket, actor):
        return None
    return _not_owner(
        ticket, "only the owner or a supervisor may act", "only_owner_or_tracker_may_act"
    )


def only_system_or_supervisor_may_assign(ticket: Ticket, actor: Actor) -> Rejected | None:
    if is_system(actor) or is_supervisor(actor):
        return None
    return _not_owner(
        ticket,
        "only auto-assignment or a supervisor may assign it",
        "only_system_or_supervisor_may_assign",
    )


def only_one_agent_owns_the_work(ticket: Ticket, agent: AgentRef) -> Rejected | None:
    """Claim/Assign: unowned work only; a ticket is never taken from its owner."""
    owner = ticket.owner.agent
    if owner is None:
        return None
    if owner.id == agent.id:
        return Rejected(
            RejectionCode.INVALID_TRANSITION,
            f"ticket {ticket.id} is already owned by {ticket.owner}",
            "only_one_agent_owns_the_work",
        )
    return _not_owner(
        ticket, "only the owner or a supervisor may act", "only_one_agent_owns_the_work"
    )


def only_the_owning_role_may_claim(ticket: Ticket, actor: Actor) -> Rejected | None:
    if may_take(ticket, actor):
        return None
    role = ticket.owner.role
    return _not_owner(
        ticket,
        f"only a {role} agent or a supervisor may claim it",
        "only_the_owning_role_may_claim",
    )


def resolved_ticket_takes_no_new_work(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status is not TicketStatus.RESOLVED:
        return None
    return _invalid(ticket, command, "it is resolved", "resolved_ticket_takes_no_new_work")


def handoff_ids_are_unique(ticket: Ticket, command: Command, handoff_id: str) -> Rejected | None:
    if ticket.handoff(handoff_id) is None:
        return None
    return _invalid(
        ticket, command, f"handoff {handoff_id} already exists", "handoff_ids_are_unique"
    )


def result_is_for_a_known_handoff(ticket: Ticket, command: RecordResult) -> Rejected | None:
    if ticket.handoff(command.handoff_id) is not None:
        return None
    return _invalid(
        ticket, command, f"it has no handoff {command.handoff_id}", "result_is_for_a_known_handoff"
    )


def only_the_handoff_role_records_its_result(
    ticket: Ticket, handoff: Handoff, actor: Actor
) -> Rejected | None:
    if may_record_result(handoff, actor):
        return None
    holder = (
        f"{handoff.role} agent {handoff.taken_by}"
        if handoff.taken_by is not None
        else f"the {handoff.role} role"
    )
    return Rejected(
        RejectionCode.NOT_OWNER,
        f"handoff {handoff.id} of ticket {ticket.id} is owned by {holder}; "
        f"only they or a supervisor may record its result",
        "only_the_handoff_role_records_its_result",
    )


def a_result_is_recorded_once(
    ticket: Ticket, handoff: Handoff, command: Command
) -> Rejected | None:
    if handoff.is_open:
        return None
    return _invalid(
        ticket, command, f"handoff {handoff.id} already has its result", "a_result_is_recorded_once"
    )


def only_first_handler_may_finish(ticket: Ticket, actor: Actor, verb: str) -> Rejected | None:
    if may_finish(ticket, actor):
        return None
    if not works_on(ticket, actor):
        return _not_owner(
            ticket, "only the owner or a supervisor may act", "only_first_handler_may_finish"
        )
    tracker = ticket.first_handler if ticket.first_handler is not None else "nobody yet"
    return Rejected(
        RejectionCode.NOT_FIRST_HANDLER,
        f"ticket {ticket.id}'s first handler is {tracker}; "
        f"only the first handler or a supervisor may {verb} it",
        "only_first_handler_may_finish",
    )


def no_handoffs_pending(ticket: Ticket) -> Rejected | None:
    pending = ticket.open_handoffs
    if not pending:
        return None
    listed = ", ".join(f"{h.id} ({h.role}: {h.task.action})" for h in pending)
    return Rejected(
        RejectionCode.HANDOFFS_PENDING,
        f"ticket {ticket.id} still waits for handoff results: {listed}",
        "no_handoffs_pending",
    )


def resolve_once(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status is not TicketStatus.RESOLVED:
        return None
    return _invalid(ticket, command, "it is already resolved", "resolve_once")


def close_only_after_resolve(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status is TicketStatus.RESOLVED:
        return None
    return _invalid(
        ticket, command, f"it is {ticket.status}, not resolved", "close_only_after_resolve"
    )


def escalate_once_at_a_time(ticket: Ticket, command: Command) -> Rejected | None:
    if ticket.status not in (TicketStatus.ESCALATED, TicketStatus.RESOLVED):
        return None
    return _invalid(ticket, command, f"it is {ticket.status}", "escalate_once_at_a_time")


def only_supervisor_may_reassign(ticket: Ticket, actor: Actor) -> Rejected | None:
    if is_supervisor(actor):
        return None
    return _not_owner(
        ticket, "only a supervisor may reassign the first handler", "only_supervisor_may_reassign"
    )


def reassign_an_existing_first_handler(
    ticket: Ticket, command: ReassignFirstHandler
) -> Rejected | None:
    if ticket.first_handler is None:
        reason = "nobody has taken it yet (assign it instead)"
    elif ticket.first_handler.id == command.new_first_handler.id:
        reason = f"{ticket.first_handler} already is its first handler"
    else:
        return None
    return _invalid(ticket, command, reason, "reassign_an_existing_first_handler")


def _not_owner(ticket: Ticket, who_may: str, rule: str) -> Rejected:
    tracking = ""
    if ticket.first_handler is not None and ticket.owner.agent != ticket.first_handler:
        first = ticket.first_handler
        tracking = f", tracked by its first handler {first.name} ({first.id})"
    return Rejected(
        RejectionCode.NOT_OWNER,
        f"ticket {ticket.id} is owned by {ticket.owner}{tracking}; {who_may}",
        rule,
    )


def _invalid(ticket: Ticket, command: Command, why: str, rule: str) -> Rejected:
    return Rejected(
        RejectionCode.INVALID_TRANSITION,
        f"cannot {command_name(command)} ticket {ticket.id}: {why}",
        rule,
    )


def only_the_system_opens_a_chase(ticket: Ticket, command: Command) -> Rejected | None:
    if is_system(command.actor):
        return None
    return _invalid(
        ticket,
        command,
        "a chase opens when the order stays unpaid 24 h",
        "only_the_system_opens_a_chase",
    )


def a_chase_is_taken_over_only_while_open_and_its_handler_away(
    ticket: Ticket, command: TakeOverChase
) -> Rejected | None:
    rule = "a_chase_is_taken_over_only_while_open_and_its_handler_away"
    if not ticket.chase_open:
        return _invalid(ticket, command, "its order is not open for chasing (24 h unpaid)", rule)
    if ticket.first_handler is not None and ticket.first_handler.id == command.actor.id:
        return _invalid(ticket, command, "it is already yours", rule)
    if not command.first_handler_away:
        return _not_owner(ticket, "its first handler is at work: only they chase it", rule)
    return None


def only_an_agent_of_its_role_chases(ticket: Ticket, actor: Actor) -> Rejected | None:
    if ticket.first_handler_role in actor.roles:
        return None
    return _not_owner(
        ticket,
        f"only a {ticket.first_handler_role} agent may take over its chase",
        "only_an_agent_of_its_role_chases",
    )
