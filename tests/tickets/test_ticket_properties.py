"""The ownership rules hold after any sequence of commands from anyone (SPEC §4, §5).

Random commands come from random actors: the owner, the first handler, other agents of the
same role, warehouse and finance staff, supervisors, the system and a stranger, with random
expected versions. After every step the invariants below are checked against the state before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from shared import tickets as ticket_module
from shared.tickets import (
    ACTIONS,
    HANDOFF_ROLES,
    SYSTEM,
    Accepted,
    Actor,
    Assign,
    AttachFollowUp,
    Claim,
    Close,
    Command,
    Escalate,
    EscalationCategory,
    HandOff,
    HistoryEntry,
    OpenChase,
    ReassignFirstHandler,
    RecordResult,
    Rejected,
    RejectionCode,
    Reply,
    Resolve,
    Step,
    TakeOverChase,
    Task,
    Ticket,
    TicketReturnedToFirstHandler,
    TicketStatus,
    decide,
    is_supervisor,
    new_ticket,
)
from shared.tickets.roles import Role, TicketKind

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

ACTORS = (
    Actor("a1", "Li Na", frozenset({Role.PRESALE})),
    Actor("a2", "Zhao Lei", frozenset({Role.PRESALE})),
    Actor("s1", "Chen Jing", frozenset({Role.AFTERSALES})),
    Actor("s2", "Sun Yu", frozenset({Role.AFTERSALES})),
    Actor("x1", "He Ping", frozenset({Role.AFTERSALES, Role.WAREHOUSE})),
    Actor("w1", "Wang Fang", frozenset({Role.WAREHOUSE})),
    Actor("f1", "Qian Hui", frozenset({Role.FINANCE})),
    Actor("m1", "Zhou Min", frozenset({Role.SUPERVISOR})),
    Actor("m2", "Wu Gang", frozenset({Role.SUPERVISOR, Role.AFTERSALES})),
    Actor("z9", "Passer-by", frozenset()),
    SYSTEM,
)
STRANGER = ACTORS[-2]
AGENTS = ACTORS[:-2]
RESPONSIBLE = (ACTORS[7], ACTORS[8], ACTORS[0])  # usually a supervisor, sometimes not
HANDOFF_IDS = ("H1", "H2", "H3", "H4")
COMMAND_KINDS = (
    "claim",
    "assign",
    "reply",
    "hand_off",
    "record_result",
    "resolve",
    "close",
    "escalate",
    "reassign",
)


def involved(ticket: Ticket) -> list[Actor]:
    """Actors likely to be allowed now, so that random runs get somewhere."""
    open_roles = {h.role for h in ticket.open_handoffs}
    names = {a.id for a in (ticket.owner.agent, ticket.first_handler) if a is not None}
    return [
        a for a in ACTORS if a.id in names or ticket.owner.role in a.roles or open_roles & a.roles
    ] or list(ACTORS)


@st.composite
def commands(draw: st.DrawFn, ticket: Ticket, n: int) -> Command:
    actor = draw(st.sampled_from(ACTORS) | st.sampled_from(involved(ticket)))
    at = T0 + timedelta(minutes=n)
    message_id = f"m-{n}"
    v = ticket.version
    expected = draw(st.sampled_from([None, None, None, None, v, v, v - 1, v + 1]))
    agent = draw(st.sampled_from(AGENTS)).ref
    match draw(st.sampled_from(COMMAND_KINDS)):
        case "claim":
            return Claim(actor=actor, at=at, message_id=message_id, expected_version=expected)
        case "assign":
            return Assign(
                actor=draw(st.sampled_from([SYSTEM, actor])),
                at=at,
                message_id=message_id,
                expected_version=expected,
                agent=agent,
            )
        case "reply":
            return Reply(
                actor=actor, at=at, message_id=message_id, expected_version=expected, text="亲"
            )
        case "hand_off":
            return HandOff(
                actor=actor,
                at=at,
                message_id=message_id,
                expected_version=expected,
                handoff_id=draw(st.sampled_from(HANDOFF_IDS)),
                role=draw(st.sampled_from(sorted(HANDOFF_ROLES))),
                task=Task("do_it", {"n": n}),
            )
        case "record_result":
            return RecordResult(
                actor=actor,
                at=at,
                message_id=message_id,
                expected_version=expected,
                handoff_id=draw(
                    st.sampled_from([h.id for h in ticket.open_handoffs] or ["H9"])
                    | st.sampled_from([h.id for h in ticket.handoffs] + ["H9"])
                ),
                outcome=draw(st.sampled_from(["done", "failed"])),
                data={"n": n},
            )
        case "resolve":
            return Resolve(
                actor=actor,
                at=at,
                message_id=message_id,
                expected_version=expected,
                summary="told the customer",
            )
        case "close":
            return Close(actor=actor, at=at, message_id=message_id, expected_version=expected)
        case "escalate":
            return Escalate(
                actor=actor,
                at=at,
                message_id=message_id,
                expected_version=expected,
                category=draw(st.sampled_from(list(EscalationCategory))),
                customer_info={"customer_id": "c-1"},
                problem="needs a decision",
                actions_taken="asked",
                customer_demand="money",
                responsible=draw(st.sampled_from(RESPONSIBLE)).ref,
                deadline=at + timedelta(hours=2),
            )
        case _:
            return ReassignFirstHandler(
                actor=actor,
                at=at,
                message_id=message_id,
                expected_version=expected,
                new_first_handler=agent,
                reason="went off shift",
            )


def may_have_done(before: Ticket, command: Command) -> bool:
    """Who may change the ticket, restated independently of the implementation."""
    actor = command.actor
    boss = is_supervisor(actor)
    owner = before.owner.agent is not None and before.owner.agent.id == actor.id
    first = before.first_handler is not None and before.first_handler.id == actor.id
    match command:
        case Claim():
            return before.owner.agent is None and (boss or before.owner.role in actor.roles)
        case Assign():
            return before.owner.agent is None and (boss or actor == SYSTEM)
        case Reply() | HandOff() | Step():  # Step: tests/flows walks the flows
            return boss or owner or first
        case Escalate():
            return boss or owner or first or actor == SYSTEM
        case RecordResult():
            handoff = before.handoff(command.handoff_id)
            assert handoff is not None and handoff.is_open
            if handoff.taken_by is not None:
                return boss or handoff.taken_by.id == actor.id
            return boss or handoff.role in actor.roles
        case Resolve() | Close():
            return boss or first
        case ReassignFirstHandler():
            return boss
        case AttachFollowUp() | OpenChase() | TakeOverChase():  # not drawn here
            return False


def check_state(ticket: Ticket) -> None:
    # Exactly one owner, and the one that follows from the work that is away.
    pending = ticket.open_handoffs
    if pending:
        assert (ticket.owner.role, ticket.owner.agent) == (pending[-1].role, pending[-1].taken_by)
        assert ticket.status in (TicketStatus.HANDED_OFF, TicketStatus.ESCALATED)
    else:
        # Home: every result has landed with the first handler (or the queue if none yet).
        assert ticket.owner == ticket.home_owner
        assert ticket.status is not TicketStatus.HANDED_OFF
        assert ticket.status is not TicketStatus.ESCALATED
    if ticket.status is TicketStatus.IN_PROGRESS:
        assert ticket.first_handler is not None and ticket.owner.agent == ticket.first_handler
    if ticket.status is TicketStatus.QUEUED:
        assert ticket.first_handler is None and ticket.owner.agent is None
    escalated = ticket.escalation is not None and any(
        h.id == ticket.escalation.handoff_id for h in pending
    )
    assert (ticket.status is TicketStatus.ESCALATED) == escalated


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(list(TicketKind)),
    role=st.sampled_from([Role.PRESALE, Role.AFTERSALES]),
    data=st.data(),
)
def test_ownership_rules_hold_after_every_command(
    kind: TicketKind, role: Role, data: st.DataObject
) -> None:
    ticket = new_ticket("T1", kind, role, T0)
    accepted = 0
    history: list[HistoryEntry] = []
    for n in range(1, 41):
        before = ticket
        command = data.draw(commands(ticket, n))
        decision = decide(ticket, command)

        if before.status is TicketStatus.CLOSED or command.actor == STRANGER:
            assert isinstance(decision, Rejected)
        stale = command.expected_version not in (None, before.version)
        if stale:
            assert isinstance(decision, Rejected)
            assert decision.code is RejectionCode.VERSION_CONFLICT

        if isinstance(decision, Rejected):
            assert decision.message
            assert callable(getattr(ticket_module, decision.rule, None))  # a named rule
            assert ticket == before  # nothing changed, nothing recorded
            continue

        assert isinstance(decision, Accepted)
        ticket = decision.ticket
        accepted += 1
        history.append(decision.history)
        assert may_have_done(before, command), (command, before)
        assert ticket.version == before.version + 1 == accepted + 1

        entry = history[-1]
        assert (entry.at, entry.message_id, entry.action) == (
            command.at,
            command.message_id,
            ACTIONS[type(command)],
        )
        assert (entry.actor_id, entry.actor_name) == (command.actor.id, command.actor.name)
        assert decision.events and all(e.version == ticket.version for e in decision.events)

        # The first handler is set once, and changed only by a supervisor's reassignment.
        if before.first_handler is None:
            if ticket.first_handler is not None:
                assert isinstance(command, Claim | Assign)
        elif ticket.first_handler != before.first_handler:
            assert isinstance(command, ReassignFirstHandler)
            assert is_supervisor(command.actor) and entry.reason
        assert ticket.first_handler_role == before.first_handler_role == role

        # Back with the first handler only when the last open handoff got its result.
        returned = any(isinstance(e, TicketReturnedToFirstHandler) for e in decision.events)
        if before.open_handoffs and not ticket.open_handoffs:
            assert isinstance(command, RecordResult)
            assert ticket.owner == ticket.home_owner
            assert returned == (ticket.first_handler is not None)
        else:
            assert not returned

        if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            assert not ticket.open_handoffs
        if ticket.status is TicketStatus.CLOSED:
            assert before.status is TicketStatus.RESOLVED

        check_state(ticket)

    assert len(history) == accepted == ticket.version - 1
    assert len({e.message_id for e in history}) == len(history)
