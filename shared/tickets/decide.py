"""The ticket aggregate: who owns it, who tracks it, and what each command may do (SPEC §4, §5).

Seed 000's flow: customer → **first handler** (首接人: "由发起人跟踪最终处理结果", the one who
started it tracks the final result) → next handler(s) → back to the first handler → closed.

The state is immutable. `decide(ticket, command)` is the only way to change it: it returns either
`Accepted` (the new ticket, the events to publish, and exactly one history entry) or `Rejected`
(a reason code, a message for people, and the name of the rule that broke). Nothing here reads
the clock or does I/O; every command carries its own time.

Who may do what, in one place:

| command              | who                                                                 |
|----------------------|---------------------------------------------------------------------|
| Claim                | an agent of the owning role while no agent owns it, or a supervisor |
| Assign               | the system (auto-assignment) or a supervisor                        |
| Reply, HandOff       | the owner, the first handler (tracking), or a supervisor            |
| Escalate             | the same, or the system (timer breaches)                            |
| RecordResult         | the handoff's taker, else an agent of its role; or a supervisor     |
| Resolve, Close       | the first handler or a supervisor                                   |
| ReassignFirstHandler | a supervisor                                                        |
| Step (flow move)     | as Reply; a waiting state's `timeout` also the system (its timer);  |
|                      | a move into an end state as Resolve                                 |

Design decisions (see also `_settled`):

* **Parallel handoffs (§5.4).** Every handoff is kept in `handoffs`; the owner is the role of the
  most recently opened handoff that has no result yet (or the agent who took it). The first
  handler is *tracking* the ticket while it is away, so they (or a supervisor) may open more
  handoffs in parallel, reply to the customer and escalate, although the owner is now another
  role. An agent of the handoff's role may take it (Claim, or Assign by the system); they then
  own the ticket and may act on it too (reply; hand off further, which nests).
* **Results return to the first handler (§5.5).** A handoff's result is recorded by the agent
  who took it or, if nobody did, by any agent of its role. When the last open handoff gets its
  result, the owner becomes `(first_handler_role, first_handler)` again, never another agent of
  that role. `first_handler_role` is the role of the queue the ticket was routed to, i.e. the
  role in which the first handler took it: a pre-sale agent who hands an after-sales question
  to after-sales (§5.6) gets the result back as pre-sale. Richer sub-work inside a handoff
  (its own sub-handoffs, approvals) can come later; today it nests: the newest open handoff
  owns the ticket.
* **Escalation (§5.8, seed 002 "问题升级").** An escalation is a handoff to the supervisor role
  that the named responsible person (责任人) has already taken, plus an `Escalation` record with
  the seed's fields. So the owner becomes `(supervisor, responsible)`, the status `escalated`,
  the first handler keeps tracking, and the supervisor's decision is recorded as that handoff's
  result, which returns the ticket to the first handler like any other result. A ticket that
  nobody claimed yet (a timer breach) returns to its role's queue instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeAlias, assert_never

from shared.flows.model import (
    End,
    Flow,
    FlowPosition,
    HandOver,
    moves,
    start_position,
    timeout_of,
)
from shared.tickets.commands import (
    Assign,
    AttachFollowUp,
    Claim,
    Close,
    Command,
    Escalate,
    HandOff,
    Open,
    OpenChase,
    ReassignFirstHandler,
    RecordResult,
    Reply,
    Resolve,
    Step,
    TakeOverChase,
    action_of,
)
from shared.tickets.events import (
    ChaseOpened,
    ChaseTakenOver,
    ContactAttached,
    Event,
    EventFactory,
    FirstHandlerReassigned,
    FlowStepped,
    HandoffRequested,
    HandoffResultRecorded,
    Stamp,
    TicketAssigned,
    TicketClaimed,
    TicketClosed,
    TicketEscalated,
    TicketOpened,
    TicketReplied,
    TicketRequeued,
    TicketResolved,
    TicketReturnedToFirstHandler,
)
from shared.tickets.flow_rules import (
    answer_allowed_here,
    loss_reason_from_the_list,
    resolved_at_the_flows_end,
    resumed,
    system_answers_only_waits,
    ticket_follows_the_flow,
)
from shared.tickets.model import (
    ESCALATION_ACTION,
    AgentRef,
    Escalation,
    Handoff,
    HandoffResult,
    Owner,
    Task,
    Ticket,
    TicketStatus,
    new_ticket,
)
from shared.tickets.roles import Role
from shared.tickets.rules import (
    Rejected,
    a_chase_is_taken_over_only_while_open_and_its_handler_away,
    a_result_is_recorded_once,
    close_only_after_resolve,
    closed_ticket_is_final,
    escalate_once_at_a_time,
    expected_version_matches,
    handoff_ids_are_unique,
    is_system,
    no_handoffs_pending,
    only_an_agent_of_its_role_chases,
    only_first_handler_may_finish,
    only_one_agent_owns_the_work,
    only_owner_or_tracker_may_act,
    only_supervisor_may_reassign,
    only_system_or_supervisor_may_assign,
    only_the_handoff_role_records_its_result,
    only_the_owning_role_may_claim,
    only_the_system_opens_a_chase,
    reassign_an_existing_first_handler,
    resolve_once,
    resolved_ticket_takes_no_new_work,
    result_is_for_a_known_handoff,
)

# --------------------------------------------------------------------------------------------
# Outcomes of `decide`


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One line of the append-only history (§4): who, when, what, why, and which message."""

    at: datetime
    actor_id: str
    actor_name: str
    action: str  # what happened, e.g. "handed_off" (commands.ACTIONS)
    detail: Mapping[str, object]  # JSON-ready
    reason: str | None
    message_id: str


@dataclass(frozen=True, kw_only=True)
class Accepted:
    ticket: Ticket
    events: tuple[Event, ...]
    history: HistoryEntry


Decision: TypeAlias = Accepted | Rejected

# --------------------------------------------------------------------------------------------
# The decision


def decide(ticket: Ticket, command: Command) -> Decision:
    """Check `command` against every rule; accept it with its effects or say which rule broke."""
    if rejected := (
        expected_version_matches(ticket, command) or closed_ticket_is_final(ticket, command)
    ):
        return rejected
    match command:
        case AttachFollowUp():
            return _attach_follow_up(ticket, command)
        case OpenChase():
            return _open_chase(ticket, command)
        case TakeOverChase():
            return _take_over_chase(ticket, command)
        case Claim():
            return _claim(ticket, command)
        case Assign():
            return _assign(ticket, command)
        case Reply():
            return _reply(ticket, command)
        case HandOff():
            return _hand_off(ticket, command)
        case RecordResult():
            return _record_result(ticket, command)
        case Resolve():
            return _resolve(ticket, command)
        case Close():
            return _close(ticket, command)
        case Escalate():
            return _escalate(ticket, command)
        case ReassignFirstHandler():
            return _reassign_first_handler(ticket, command)
        case Step():
            return _step(ticket, command)
        case _:
            assert_never(command)


def open_ticket(command: Open) -> Accepted:
    """A ticket's birth (§5.1): queued in its role's queue, no agent yet, version 1."""
    ticket = new_ticket(command.ticket_id, command.kind, command.role, command.at)
    stamp = Stamp(ticket_id=ticket.id, version=ticket.version, at=command.at, by=command.actor.ref)
    return Accepted(
        ticket=ticket,
        events=(TicketOpened(**stamp, kind=command.kind, role=command.role),),
        history=_history(
            command, {"kind": command.kind.value, "routed_to": command.role.value}, None
        ),
    )


def _attach_follow_up(ticket: Ticket, command: AttachFollowUp) -> Decision:
    reopened = ticket.status is TicketStatus.RESOLVED
    after = _settled(replace(ticket, resolution=None, resolved_at=None)) if reopened else ticket
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (ContactAttached(**stamp, owner=after.owner, reopened=reopened),),
        {
            "source": command.source,
            "external_id": command.external_id,
            "owner": _owner_detail(after.owner),
            "reopened": reopened,
        },
        reason="the customer wrote again; the ticket is back with its first handler"
        if reopened
        else None,
    )


def _claim(ticket: Ticket, command: Claim) -> Decision:
    actor = command.actor
    if rejected := (
        only_one_agent_owns_the_work(ticket, actor.ref)
        or resolved_ticket_takes_no_new_work(ticket, command)
        or only_the_owning_role_may_claim(ticket, actor)
    ):
        return rejected
    after, handoff_id, first = _take(ticket, actor.ref, command.flow, command.at)
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            TicketClaimed(
                **stamp, owner=after.owner, handoff_id=handoff_id, became_first_handler=first
            ),
        ),
        {
            "owner": _owner_detail(after.owner),
            "handoff_id": handoff_id,
            **_flow_started(ticket, after),
        },
    )


def _assign(ticket: Ticket, command: Assign) -> Decision:
    # The roster picked an agent of the owning role (roster.choose_assignee); a reference
    # carries no roles, so that is not checked again here.
    if rejected := (
        only_system_or_supervisor_may_assign(ticket, command.actor)
        or only_one_agent_owns_the_work(ticket, command.agent)
        or resolved_ticket_takes_no_new_work(ticket, command)
    ):
        return rejected
    after, handoff_id, first = _take(ticket, command.agent, command.flow, command.at)
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            TicketAssigned(
                **stamp, owner=after.owner, handoff_id=handoff_id, became_first_handler=first
            ),
        ),
        {
            "owner": _owner_detail(after.owner),
            "handoff_id": handoff_id,
            **_flow_started(ticket, after),
        },
    )


def _take(
    ticket: Ticket, agent: AgentRef, flow: Flow | None, at: datetime
) -> tuple[Ticket, str | None, bool]:
    """Give the unowned work to `agent`: the queued ticket itself, or the handoff owning it.

    The first handler's taking starts the ticket on `flow` (the newest of its kind), once.

    Returns the new ticket, the handoff taken (None for the ticket) and whether `agent` became
    the first handler.
    """
    current = ticket.open_handoffs[-1] if ticket.open_handoffs else None
    if current is None:
        # §5.2: the first agent to take a queued ticket owns it and is its first handler.
        # (Only a queued ticket has no owning agent and no open handoff.)
        taken = replace(
            ticket,
            first_handler=agent,
            owner=Owner(ticket.owner.role, agent),
            status=TicketStatus.IN_PROGRESS,
            flow=ticket.flow or (start_position(flow, at) if flow else None),
        )
        return taken, None, True
    handoffs = tuple(replace(h, taken_by=agent) if h is current else h for h in ticket.handoffs)
    return _settled(replace(ticket, handoffs=handoffs)), current.id, False


def _reply(ticket: Ticket, command: Reply) -> Decision:
    if rejected := only_owner_or_tracker_may_act(ticket, command.actor):
        return rejected
    first = ticket.first_response_at is None
    after = replace(ticket, first_response_at=command.at) if first else ticket
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            TicketReplied(
                **stamp, text=command.text, first_response=first, promise_by=command.promise_by
            ),
        ),
        {"first_response": first}
        | ({} if command.promise_by is None else {"promise_by": command.promise_by.isoformat()}),
    )


def _hand_off(ticket: Ticket, command: HandOff) -> Decision:
    if rejected := (
        only_owner_or_tracker_may_act(ticket, command.actor)
        or resolved_ticket_takes_no_new_work(ticket, command)
        or handoff_ids_are_unique(ticket, command, command.handoff_id)
    ):
        return rejected
    handoff = Handoff(
        id=command.handoff_id,
        role=command.role,
        task=command.task,
        opened_at=command.at,
        opened_by=command.actor.ref,
    )
    after = _settled(replace(ticket, handoffs=(*ticket.handoffs, handoff)))
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            HandoffRequested(
                **stamp,
                handoff_id=handoff.id,
                role=handoff.role,
                task=handoff.task,
                first_handler=after.first_handler,
            ),
        ),
        {
            "handoff_id": handoff.id,
            "role": str(handoff.role),
            "task": {"action": handoff.task.action, "data": dict(handoff.task.data)},
            "owner": _owner_detail(after.owner),
        },
    )


def _record_result(ticket: Ticket, command: RecordResult) -> Decision:
    if rejected := result_is_for_a_known_handoff(ticket, command):
        return rejected
    handoff = ticket.handoff(command.handoff_id)
    assert handoff is not None  # checked just above
    if rejected := (
        only_the_handoff_role_records_its_result(ticket, handoff, command.actor)
        or a_result_is_recorded_once(ticket, handoff, command)
    ):
        return rejected
    result = HandoffResult(
        outcome=command.outcome, data=command.data, at=command.at, by=command.actor.ref
    )
    handoffs = tuple(replace(h, result=result) if h is handoff else h for h in ticket.handoffs)
    position = ticket.flow
    resume = resumed(position, handoff.id, command.outcome) if position else None
    moved = (
        replace(
            position,
            state=resume,
            entered_at=command.at,
            handoff_id=None,
            resume={},
            timeout=position.resume_timeouts.get(resume),
            resume_timeouts={},
        )
        if position and resume
        else position
    )
    after = _settled(replace(ticket, handoffs=handoffs, flow=moved))
    back_home = not after.open_handoffs
    stepped = (
        ()
        if position is None or moved is position
        else (_flow_move(position, command.outcome, after.flow),)
    )

    def events(stamp: Stamp) -> tuple[Event, ...]:
        recorded = HandoffResultRecorded(
            **stamp,
            handoff_id=handoff.id,
            role=handoff.role,
            result=result,
            first_handler=after.first_handler,
        )
        flowed = tuple(FlowStepped(**stamp, **move) for move in stepped)
        if not back_home:
            return (recorded, *flowed)
        if after.first_handler is None:
            return (recorded, *flowed, TicketRequeued(**stamp, owner=after.owner))
        return (recorded, *flowed, TicketReturnedToFirstHandler(**stamp, owner=after.owner))

    return _accept(
        ticket,
        after,
        command,
        events,
        {
            "handoff_id": handoff.id,
            "role": str(handoff.role),
            "outcome": command.outcome,
            "data": dict(command.data),
            "owner": _owner_detail(after.owner),
            "returned_to_first_handler": back_home,
            **({"flow": stepped[0]} if stepped else {}),
        },
    )


def _resolve(ticket: Ticket, command: Resolve) -> Decision:
    if rejected := (
        only_first_handler_may_finish(ticket, command.actor, "resolve")
        or resolve_once(ticket, command)
        or no_handoffs_pending(ticket)
        or resolved_at_the_flows_end(ticket)
    ):
        return rejected
    after = replace(
        ticket, status=TicketStatus.RESOLVED, resolution=command.summary, resolved_at=command.at
    )
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (TicketResolved(**stamp, summary=command.summary),),
        {"summary": command.summary},
    )


def _close(ticket: Ticket, command: Close) -> Decision:
    if rejected := (
        only_first_handler_may_finish(ticket, command.actor, "close")
        or close_only_after_resolve(ticket, command)
    ):
        return rejected
    after = replace(ticket, status=TicketStatus.CLOSED, closed_at=command.at)
    return _accept(ticket, after, command, lambda stamp: (TicketClosed(**stamp),), {})


def _escalate(ticket: Ticket, command: Escalate) -> Decision:
    actor = command.actor
    allowed = None if is_system(actor) else only_owner_or_tracker_may_act(ticket, actor)
    if rejected := (
        allowed
        or escalate_once_at_a_time(ticket, command)
        or handoff_ids_are_unique(ticket, command, command.handoff_id)
    ):
        return rejected
    escalation = Escalation(
        handoff_id=command.handoff_id,
        category=command.category,
        customer_info=command.customer_info,
        problem=command.problem,
        actions_taken=command.actions_taken,
        customer_demand=command.customer_demand,
        responsible=command.responsible,
        deadline=command.deadline,
        opened_at=command.at,
        opened_by=actor.ref,
    )
    # The responsible person has taken the supervisor handoff from the start, so they own it.
    handoff = Handoff(
        id=escalation.handoff_id,
        role=Role.SUPERVISOR,
        task=Task(ESCALATION_ACTION, {"category": str(command.category)}),
        opened_at=command.at,
        opened_by=actor.ref,
        taken_by=command.responsible,
    )
    after = _settled(replace(ticket, handoffs=(*ticket.handoffs, handoff), escalation=escalation))
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            TicketEscalated(**stamp, escalation=escalation, first_handler=after.first_handler),
        ),
        {
            "handoff_id": handoff.id,
            "category": str(command.category),
            "responsible": _ref_detail(command.responsible),
            "deadline": command.deadline.isoformat(),
            "owner": _owner_detail(after.owner),
        },
        reason=f"{command.category}: {command.problem}",
    )


def _reassign_first_handler(ticket: Ticket, command: ReassignFirstHandler) -> Decision:
    if rejected := (
        only_supervisor_may_reassign(ticket, command.actor)
        or reassign_an_existing_first_handler(ticket, command)
    ):
        return rejected
    previous = ticket.first_handler
    assert previous is not None  # checked just above
    new = command.new_first_handler
    # The owner follows only if the ticket is at home with the old first handler; work that is
    # away stays with whoever does it and will come back to the new one.
    home = Owner(ticket.first_handler_role, new)
    owner = ticket.owner if ticket.open_handoffs else home
    after = replace(ticket, first_handler=new, owner=owner)
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            FirstHandlerReassigned(
                **stamp, previous=previous, new=new, reason=command.reason, owner=after.owner
            ),
        ),
        {
            "from": _ref_detail(previous),
            "to": _ref_detail(new),
            "owner": _owner_detail(after.owner),
        },
        reason=command.reason,
    )


def _open_chase(ticket: Ticket, command: OpenChase) -> Decision:
    if rejected := (
        only_the_system_opens_a_chase(ticket, command)
        or resolved_ticket_takes_no_new_work(ticket, command)
    ):
        return rejected
    after = replace(ticket, chase_open=True)
    return _accept(ticket, after, command, lambda stamp: (ChaseOpened(**stamp),), {})


def _take_over_chase(ticket: Ticket, command: TakeOverChase) -> Decision:
    actor = command.actor
    if rejected := (
        a_chase_is_taken_over_only_while_open_and_its_handler_away(ticket, command)
        or resolved_ticket_takes_no_new_work(ticket, command)
        or only_an_agent_of_its_role_chases(ticket, actor)
    ):
        return rejected
    previous = ticket.first_handler
    home = Owner(ticket.first_handler_role, actor.ref)
    # Work away stays with whoever does it and comes back to the chaser.
    owner = ticket.owner if ticket.open_handoffs else home
    status = ticket.status if ticket.open_handoffs else TicketStatus.IN_PROGRESS
    after = replace(ticket, first_handler=actor.ref, owner=owner, status=status, chase_open=False)
    return _accept(
        ticket,
        after,
        command,
        lambda stamp: (
            ChaseTakenOver(**stamp, previous=previous, new=actor.ref, owner=after.owner),
        ),
        {
            "from": None if previous is None else _ref_detail(previous),
            "to": _ref_detail(actor.ref),
            "owner": _owner_detail(after.owner),
        },
        reason="the order stayed unpaid 24 h and its first handler is away (追单)",
    )


def _step(ticket: Ticket, command: Step) -> Decision:
    """A move on the flow (module docstring of `shared.flows.model`). Entering a hand-over opens
    its handoff (the ticket resumes when the result comes back); entering an end resolves the
    ticket with the end's reason, so it follows the rules of Resolve."""
    actor = command.actor
    system = is_system(actor)  # a waiting state's timer fired, or the platform ruled
    if rejected := (
        (None if system else only_owner_or_tracker_may_act(ticket, actor))
        or resolved_ticket_takes_no_new_work(ticket, command)
        or ticket_follows_the_flow(ticket, command)
    ):
        return rejected
    flow, position = command.flow, ticket.flow
    assert flow is not None and position is not None  # ticket_follows_the_flow
    if rejected := (
        (system_answers_only_waits(ticket, flow, command) if system else None)
        or answer_allowed_here(ticket, flow, command)
    ):
        return rejected
    target = flow.state(moves(flow.state(position.state))[command.answer])
    entered = FlowPosition(
        kind=position.kind,
        version=position.version,
        state=target.name,
        entered_at=command.at,
        timeout=timeout_of(target),
    )
    after = ticket
    handoff: Handoff | None = None
    match target:
        case End():
            if rejected := (
                only_first_handler_may_finish(ticket, command.actor, "end the flow of")
                or no_handoffs_pending(ticket)
                or loss_reason_from_the_list(ticket, flow, target, command)
            ):
                return rejected
            reason = target.resolution or f"{flow.kind}: lost ({command.reason})"
            if command.note:
                reason += f"; {command.note}"
            entered = replace(entered, end_reason=reason)
            after = replace(
                ticket, status=TicketStatus.RESOLVED, resolution=reason, resolved_at=command.at
            )
        case HandOver():
            handoff = Handoff(
                id=ticket.next_handoff_id,
                role=Role(target.role),
                task=Task(
                    target.action,
                    {"flow_state": target.name, **({"note": command.note} if command.note else {})},
                ),
                opened_at=command.at,
                opened_by=command.actor.ref,
            )
            if rejected := handoff_ids_are_unique(ticket, command, handoff.id):
                return rejected
            resume_timeouts = {
                state: after_
                for state in target.on.values()
                if (after_ := timeout_of(flow.state(state))) is not None
            }
            entered = replace(
                entered,
                handoff_id=handoff.id,
                resume=dict(target.on),
                resume_timeouts=resume_timeouts,
            )
            after = _settled(replace(ticket, handoffs=(*ticket.handoffs, handoff)))
    after = replace(after, flow=entered)
    move = _flow_move(position, command.answer, entered)

    def events(stamp: Stamp) -> tuple[Event, ...]:
        stepped = FlowStepped(**stamp, **move)
        if isinstance(target, End):
            return (stepped, TicketResolved(**stamp, summary=after.resolution or ""))
        if handoff is not None:
            requested = HandoffRequested(
                **stamp,
                handoff_id=handoff.id,
                role=handoff.role,
                task=handoff.task,
                first_handler=after.first_handler,
            )
            return (stepped, requested)
        return (stepped,)

    detail: dict[str, object] = {**move, "note": command.note}
    if handoff is not None:
        detail |= {
            "handoff_id": handoff.id,
            "role": str(handoff.role),
            "action": handoff.task.action,
            "owner": _owner_detail(after.owner),
        }
    if isinstance(target, End):
        detail["resolution"] = after.resolution
    return _accept(ticket, after, command, events, detail, reason=command.reason)


def _flow_move(left: FlowPosition, answer: str, entered: FlowPosition | None) -> dict[str, str]:
    """A move as the history and the FlowStepped event say it."""
    assert entered is not None
    return {
        "flow": f"{left.kind} v{left.version}",
        "left": left.state,
        "answer": answer,
        "entered": entered.state,
    }


def _flow_started(before: Ticket, after: Ticket) -> dict[str, object]:
    if before.flow is not None or after.flow is None:
        return {}
    return {"flow": f"{after.flow.kind} v{after.flow.version}", "flow_state": after.flow.state}


def _settled(ticket: Ticket) -> Ticket:
    """Owner and status as they follow from the open handoffs (§5.4, §5.5, §5.8).

    Work away: the newest open handoff owns the ticket (the agent who took it, else its role).
    Nothing away: the ticket is home with its first handler, or waiting in its queue.
    """
    pending = ticket.open_handoffs
    if pending:
        newest = pending[-1]
        escalated = ticket.escalation is not None and any(
            h.id == ticket.escalation.handoff_id for h in pending
        )
        return replace(
            ticket,
            owner=Owner(newest.role, newest.taken_by),
            status=TicketStatus.ESCALATED if escalated else TicketStatus.HANDED_OFF,
        )
    home = TicketStatus.IN_PROGRESS if ticket.first_handler is not None else TicketStatus.QUEUED
    return replace(ticket, owner=ticket.home_owner, status=home)


def _accept(
    before: Ticket,
    after: Ticket,
    command: Command,
    events: EventFactory,
    detail: Mapping[str, object],
    *,
    reason: str | None = None,
) -> Accepted:
    ticket = replace(after, version=before.version + 1)
    stamp = Stamp(ticket_id=ticket.id, version=ticket.version, at=command.at, by=command.actor.ref)
    return Accepted(ticket=ticket, events=events(stamp), history=_history(command, detail, reason))


def _history(
    command: Command | Open, detail: Mapping[str, object], reason: str | None
) -> HistoryEntry:
    return HistoryEntry(
        at=command.at,
        actor_id=command.actor.id,
        actor_name=command.actor.name,
        action=action_of(command),
        detail=dict(detail),
        reason=reason,
        message_id=command.message_id,
    )


def _ref_detail(agent: AgentRef) -> dict[str, str]:
    return {"id": agent.id, "name": agent.name}


def _owner_detail(owner: Owner) -> dict[str, object]:
    agent = None if owner.agent is None else _ref_detail(owner.agent)
    return {"role": str(owner.role), "agent": agent}
