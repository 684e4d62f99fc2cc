"""The flow's named rules (`not_allowed_by_flow`): each returns None when it holds, else the
rejection, naming the moves that are allowed."""

from __future__ import annotations

from shared.flows.model import Ask, End, Flow, FlowPosition, HandOver, Wait, allowed_answers
from shared.tickets.commands import Step
from shared.tickets.model import RejectionCode, Ticket
from shared.tickets.rules import Rejected


def _refuse(ticket: Ticket, why: str, rule: str) -> Rejected:
    return Rejected(RejectionCode.NOT_ALLOWED_BY_FLOW, f"ticket {ticket.id}: {why}", rule)


def ticket_follows_the_flow(ticket: Ticket, command: Step) -> Rejected | None:
    """A Step needs a ticket on a flow, and the very version it started on."""
    position, flow = ticket.flow, command.flow
    if position is None:
        return _refuse(
            ticket,
            f"its kind's path was not started for it (opened before flows existed, or no "
            f"flow for {ticket.kind}); use reply, handoff and resolve",
            "ticket_follows_the_flow",
        )
    if flow is None or (flow.kind, flow.version) != (position.kind, position.version):
        return _refuse(
            ticket,
            f"it follows {position.kind} v{position.version}, which is not loaded here",
            "ticket_follows_the_flow",
        )
    if position.state not in flow.states:  # a released version's file was edited
        return _refuse(
            ticket,
            f"its state {position.state!r} is not in {flow} as loaded (released versions are "
            "never edited: add a new version)",
            "ticket_follows_the_flow",
        )
    return None


def resolved_at_the_flows_end(ticket: Ticket) -> Rejected | None:
    """A ticket on a flow is resolved by stepping to one of its ends (which records why), not
    by a free `resolve` half-way. Once its flow has ended (a follow-up reopened it), the flow has
    no moves left and `resolve` is how it is finished again."""
    position = ticket.flow
    if position is None or position.end_reason is not None:
        return None
    return _refuse(
        ticket,
        f"it follows {position.kind} v{position.version} and stands at {position.state!r}: "
        "resolve it by stepping to an end of its flow (`ticketq tickets show` lists the moves)",
        "resolved_at_the_flows_end",
    )


def system_answers_only_waits(ticket: Ticket, flow: Flow, command: Step) -> Rejected | None:
    """The system moves a flow only where it waits for something outside (a timer's timeout,
    the platform's ruling); questions are the agents'."""
    position = ticket.flow
    assert position is not None  # ticket_follows_the_flow
    if isinstance(flow.state(position.state), Wait):
        return None
    return _refuse(
        ticket,
        f"{position.state!r} of {flow} is a question for its owner, not a wait the system answers",
        "system_answers_only_waits",
    )


def answer_allowed_here(ticket: Ticket, flow: Flow, command: Step) -> Rejected | None:
    position = ticket.flow
    assert position is not None  # ticket_follows_the_flow
    state = flow.state(position.state)
    allowed = allowed_answers(state, position, command.at, command.facts)
    if command.answer in allowed:
        return None
    why = ""
    if isinstance(state, Ask | Wait) and (guard := state.guards.get(command.answer)):
        seen = {k: v.isoformat() for k, v in command.facts.items()} or "no times"
        why = f" (it needs {guard}; the order has {seen})"
    match state:
        case HandOver():
            now = f"it waits for handoff {position.handoff_id} ({state.role}: {state.action}); "
            now += "its result moves the flow on"
        case End():
            now = "its flow has ended"
        case _:
            now = f"allowed answers: {', '.join(allowed)}"
    return _refuse(
        ticket,
        f"{command.answer!r} is not allowed at {position.state!r} of {flow}{why}; {now}",
        "answer_allowed_here",
    )


def loss_reason_from_the_list(
    ticket: Ticket, flow: Flow, end: End, command: Step
) -> Rejected | None:
    """An end without a fixed resolution is a loss: its reason comes from the flow's list."""
    if end.resolution is not None or command.reason in flow.loss_reasons:
        return None
    return _refuse(
        ticket,
        f"ending at {end.name!r} needs --reason, one of: {', '.join(flow.loss_reasons)}",
        "loss_reason_from_the_list",
    )


def resumed(position: FlowPosition, handoff_id: str, outcome: str) -> str | None:
    """The state a handoff's result moves the flow to, if it is the flow's hand-over."""
    if position.handoff_id != handoff_id:
        return None
    return position.resume.get(outcome)
