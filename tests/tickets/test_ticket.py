"""The ticket's ownership rules (SPEC §4, §5), one rule and one rejection code at a time."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.tickets import (
    SYSTEM,
    Accepted,
    Actor,
    AgentRef,
    Assign,
    AttachFollowUp,
    Claim,
    Close,
    Command,
    ContactAttached,
    Escalate,
    EscalationCategory,
    FirstHandlerReassigned,
    HandOff,
    HandoffRequested,
    HandoffResultRecorded,
    Open,
    OpenChase,
    Outcome,
    Owner,
    ReassignFirstHandler,
    RecordResult,
    Rejected,
    RejectionCode,
    Reply,
    Resolve,
    TakeOverChase,
    Task,
    Ticket,
    TicketAssigned,
    TicketClaimed,
    TicketClosed,
    TicketEscalated,
    TicketOpened,
    TicketReplied,
    TicketRequeued,
    TicketResolved,
    TicketReturnedToFirstHandler,
    TicketStatus,
    decide,
    new_ticket,
    open_ticket,
)
from shared.tickets.roles import Role, TicketKind

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

LI_NA = Actor("a1", "Li Na", frozenset({Role.PRESALE}))
ZHAO_LEI = Actor("a2", "Zhao Lei", frozenset({Role.PRESALE}))
CHEN_JING = Actor("s1", "Chen Jing", frozenset({Role.AFTERSALES}))
SUN_YU = Actor("s2", "Sun Yu", frozenset({Role.AFTERSALES}))
WANG_FANG = Actor("w1", "Wang Fang", frozenset({Role.WAREHOUSE}))
QIAN_HUI = Actor("f1", "Qian Hui", frozenset({Role.FINANCE}))
ZHOU_MIN = Actor("m1", "Zhou Min", frozenset({Role.SUPERVISOR}))

_message_ids = itertools.count(1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def msg() -> str:
    return f"m-{next(_message_ids)}"


def accept(ticket: Ticket, command: Command) -> Accepted:
    decision = decide(ticket, command)
    assert isinstance(decision, Accepted), decision
    return decision


def step(ticket: Ticket, command: Command) -> Ticket:
    return accept(ticket, command).ticket


def reject(ticket: Ticket, command: Command, code: RejectionCode) -> Rejected:
    decision = decide(ticket, command)
    assert isinstance(decision, Rejected), decision
    assert decision.code is code, decision
    return decision


def presale_ticket() -> Ticket:
    return new_ticket("T1", TicketKind.INQUIRY, Role.PRESALE, T0)


def return_ticket() -> Ticket:
    return new_ticket("T2", TicketKind.RETURN, Role.AFTERSALES, T0)


def claimed(ticket: Ticket, actor: Actor) -> Ticket:
    return step(ticket, Claim(actor=actor, at=at(1), message_id=msg()))


def hand_off(actor: Actor, handoff_id: str, role: Role, action: str, **data: object) -> HandOff:
    return HandOff(
        actor=actor,
        at=at(5),
        message_id=msg(),
        handoff_id=handoff_id,
        role=role,
        task=Task(action, data),
    )


def result(
    actor: Actor, handoff_id: str, outcome: Outcome = "done", **data: object
) -> RecordResult:
    return RecordResult(
        actor=actor,
        at=at(30),
        message_id=msg(),
        handoff_id=handoff_id,
        outcome=outcome,
        data=data,
    )


def resolve(actor: Actor) -> Resolve:
    return Resolve(actor=actor, at=at(40), message_id=msg(), summary="refunded 59.00")


def close(actor: Actor) -> Close:
    return Close(actor=actor, at=at(41), message_id=msg())


def escalate(actor: Actor, responsible: Actor = ZHOU_MIN, minutes: float = 10) -> Escalate:
    return Escalate(
        actor=actor,
        at=at(minutes),
        message_id=msg(),
        category=EscalationCategory.LARGE_AMOUNT_DISPUTE,
        customer_info={"customer_id": "c-9", "nick": "tb_mao"},
        problem="wants 2000 for a scratched table",
        actions_taken="offered 50 compensation",
        customer_demand="full refund and keep the table",
        responsible=responsible.ref,
        deadline=at(minutes + 120),
    )


# --- §5.1, §5.2: queued, claimed, auto-assigned ---------------------------------------------


def test_a_new_ticket_waits_in_its_role_queue() -> None:
    ticket = presale_ticket()
    assert ticket.status is TicketStatus.QUEUED
    assert ticket.owner == Owner(Role.PRESALE, None)
    assert ticket.first_handler is None
    assert ticket.version == 1


def test_the_first_claimant_becomes_owner_and_first_handler() -> None:
    decision = accept(presale_ticket(), Claim(actor=LI_NA, at=at(1), message_id="m-claim"))
    ticket = decision.ticket
    assert ticket.owner == Owner(Role.PRESALE, LI_NA.ref)
    assert ticket.first_handler == LI_NA.ref
    assert ticket.status is TicketStatus.IN_PROGRESS
    assert ticket.version == 2
    (event,) = decision.events
    assert isinstance(event, TicketClaimed)
    assert event.became_first_handler and event.handoff_id is None
    assert (event.ticket_id, event.version, event.by) == ("T1", 2, LI_NA.ref)
    assert decision.history.action == "claimed"
    assert decision.history.message_id == "m-claim"
    assert (decision.history.actor_id, decision.history.actor_name) == ("a1", "Li Na")


def test_auto_assignment_makes_the_agent_owner_and_first_handler() -> None:
    decision = accept(
        return_ticket(), Assign(actor=SYSTEM, at=at(1), message_id=msg(), agent=CHEN_JING.ref)
    )
    assert decision.ticket.owner == Owner(Role.AFTERSALES, CHEN_JING.ref)
    assert decision.ticket.first_handler == CHEN_JING.ref
    assert isinstance(decision.events[0], TicketAssigned)
    assert decision.history.actor_id == SYSTEM.id


def test_a_claim_by_an_agent_without_the_role_names_the_owning_role() -> None:
    rejected = reject(
        presale_ticket(),
        Claim(actor=WANG_FANG, at=at(1), message_id=msg()),
        RejectionCode.NOT_OWNER,
    )
    assert "presale" in rejected.message
    assert rejected.rule == "only_the_owning_role_may_claim"


def test_a_second_claim_is_refused_naming_the_owner() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    rejected = reject(
        ticket, Claim(actor=ZHAO_LEI, at=at(2), message_id=msg()), RejectionCode.NOT_OWNER
    )
    assert rejected.message == (
        "ticket T1 is owned by presale agent Li Na (a1); only the owner or a supervisor may act"
    )


def test_auto_assignment_loses_to_an_earlier_claim() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    assign = Assign(actor=SYSTEM, at=at(2), message_id=msg(), agent=ZHAO_LEI.ref)
    assert "Li Na" in reject(ticket, assign, RejectionCode.NOT_OWNER).message


def test_claiming_ones_own_ticket_again_is_not_a_change() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    reject(ticket, Claim(actor=LI_NA, at=at(2), message_id=msg()), RejectionCode.INVALID_TRANSITION)


def test_only_the_system_or_a_supervisor_assigns() -> None:
    assign = Assign(actor=LI_NA, at=at(1), message_id=msg(), agent=ZHAO_LEI.ref)
    reject(presale_ticket(), assign, RejectionCode.NOT_OWNER)
    by_lead = Assign(actor=ZHOU_MIN, at=at(1), message_id=msg(), agent=ZHAO_LEI.ref)
    assert step(presale_ticket(), by_lead).first_handler == ZHAO_LEI.ref


# --- §5.3: only the owner (or a supervisor) acts ----------------------------------------------


def test_a_reply_records_the_first_response_once() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    first = accept(ticket, Reply(actor=LI_NA, at=at(2), message_id=msg(), text="亲, 在的"))
    assert first.ticket.first_response_at == at(2)
    assert first.events == (
        TicketReplied(
            ticket_id="T1", version=3, at=at(2), by=LI_NA.ref, text="亲, 在的", first_response=True
        ),
    )
    second = accept(first.ticket, Reply(actor=LI_NA, at=at(3), message_id=msg(), text="好的"))
    assert second.ticket.first_response_at == at(2)
    assert second.history.detail == {"first_response": False}


def test_anyone_but_the_owner_or_a_supervisor_is_refused() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    for stranger in (ZHAO_LEI, CHEN_JING, WANG_FANG, SYSTEM):
        reply = Reply(actor=stranger, at=at(2), message_id=msg(), text="hi")
        assert "Li Na (a1)" in reject(ticket, reply, RejectionCode.NOT_OWNER).message
    assert step(ticket, Reply(actor=ZHOU_MIN, at=at(2), message_id=msg(), text="hi"))


def test_a_queued_ticket_has_no_agent_to_act_for_it() -> None:
    reply = Reply(actor=LI_NA, at=at(1), message_id=msg(), text="hi")
    rejected = reject(presale_ticket(), reply, RejectionCode.NOT_OWNER)
    assert "presale role" in rejected.message


# --- the seed 000 flow: pick-up and refund in parallel, back to the first handler -------------


def test_seed_000_return_flow_comes_back_to_the_first_handler() -> None:
    ticket = return_ticket()
    ticket = step(ticket, Assign(actor=SYSTEM, at=at(1), message_id=msg(), agent=CHEN_JING.ref))
    ticket = step(ticket, Reply(actor=CHEN_JING, at=at(1.2), message_id=msg(), text="亲, 在的"))

    pickup = accept(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "courier_pickup"))
    assert pickup.ticket.owner == Owner(Role.WAREHOUSE, None)
    assert pickup.ticket.status is TicketStatus.HANDED_OFF
    assert pickup.ticket.first_handler == CHEN_JING.ref
    (requested,) = pickup.events
    assert isinstance(requested, HandoffRequested)
    assert requested.first_handler == CHEN_JING.ref

    # The first handler is tracking, so may send the refund in parallel although the owner is
    # now the warehouse; the owner becomes the newest open handoff's role.
    refund = accept(pickup.ticket, hand_off(CHEN_JING, "H2", Role.FINANCE, "refund", amount="59"))
    ticket = refund.ticket
    assert ticket.owner == Owner(Role.FINANCE, None)
    assert [h.id for h in ticket.open_handoffs] == ["H1", "H2"]

    refunded = accept(ticket, result(QIAN_HUI, "H2", refund_id="R-77"))
    ticket = refunded.ticket
    assert ticket.owner == Owner(Role.WAREHOUSE, None)  # the pick-up is still out
    assert ticket.status is TicketStatus.HANDED_OFF
    assert [type(e) for e in refunded.events] == [HandoffResultRecorded]

    picked_up = accept(ticket, result(WANG_FANG, "H1", tracking_no="SF123"))
    ticket = picked_up.ticket
    assert ticket.owner == Owner(Role.AFTERSALES, CHEN_JING.ref)
    assert ticket.status is TicketStatus.IN_PROGRESS
    assert [type(e) for e in picked_up.events] == [
        HandoffResultRecorded,
        TicketReturnedToFirstHandler,
    ]
    handoff = ticket.handoff("H1")
    assert handoff is not None and handoff.result is not None
    assert dict(handoff.result.data) == {"tracking_no": "SF123"}
    assert handoff.result.by == WANG_FANG.ref

    resolved = accept(ticket, resolve(CHEN_JING))
    assert resolved.ticket.status is TicketStatus.RESOLVED
    assert isinstance(resolved.events[0], TicketResolved)
    closed = accept(resolved.ticket, close(CHEN_JING))
    assert closed.ticket.status is TicketStatus.CLOSED
    assert closed.ticket.closed_at == at(41)
    assert isinstance(closed.events[0], TicketClosed)
    assert closed.ticket.version == 9  # created + 8 accepted commands


def test_a_second_agent_cannot_claim_hand_off_or_close_anothers_ticket() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    owner = "ticket T2 is owned by aftersales agent Chen Jing (s1)"
    claim = Claim(actor=SUN_YU, at=at(2), message_id=msg())
    assert reject(ticket, claim, RejectionCode.NOT_OWNER).message.startswith(owner)
    handoff = hand_off(SUN_YU, "H1", Role.FINANCE, "refund")
    assert reject(ticket, handoff, RejectionCode.NOT_OWNER).message.startswith(owner)
    ticket = step(ticket, resolve(CHEN_JING))
    assert reject(ticket, close(SUN_YU), RejectionCode.NOT_OWNER).message.startswith(owner)


def test_a_warehouse_agent_may_not_resolve_or_close() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "receive_return"))
    rejected = reject(ticket, resolve(WANG_FANG), RejectionCode.NOT_FIRST_HANDLER)
    assert "Chen Jing (s1)" in rejected.message
    ticket = step(ticket, result(WANG_FANG, "H1"))
    ticket = step(ticket, resolve(CHEN_JING))
    reject(ticket, close(WANG_FANG), RejectionCode.NOT_FIRST_HANDLER)


def test_a_result_returns_to_the_first_handler_not_another_agent_of_the_role() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.FINANCE, "refund"))
    ticket = step(ticket, result(QIAN_HUI, "H1"))
    assert ticket.owner.agent == CHEN_JING.ref
    reply = Reply(actor=SUN_YU, at=at(31), message_id=msg(), text="refund done")
    reject(ticket, reply, RejectionCode.NOT_OWNER)


# --- §5.6: pre-sale passes an after-sales question on and keeps tracking it -------------------


def test_presale_hands_off_to_aftersales_and_gets_the_result_back() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    ticket = step(ticket, hand_off(LI_NA, "H1", Role.AFTERSALES, "answer_warranty_question"))
    assert ticket.owner == Owner(Role.AFTERSALES, None)

    # An after-sales agent takes the handoff and may then talk to the customer.
    taken = accept(ticket, Claim(actor=CHEN_JING, at=at(6), message_id=msg()))
    ticket = taken.ticket
    assert ticket.owner == Owner(Role.AFTERSALES, CHEN_JING.ref)
    assert ticket.first_handler == LI_NA.ref
    (claimed_event,) = taken.events
    assert isinstance(claimed_event, TicketClaimed)
    assert claimed_event.handoff_id == "H1" and not claimed_event.became_first_handler
    ticket = step(ticket, Reply(actor=CHEN_JING, at=at(7), message_id=msg(), text="保修一年"))
    # ...and nobody else of after-sales may record its result.
    reject(ticket, result(SUN_YU, "H1"), RejectionCode.NOT_OWNER)

    ticket = step(ticket, result(CHEN_JING, "H1", answer="one year warranty"))
    assert ticket.owner == Owner(Role.PRESALE, LI_NA.ref)
    assert ticket.status is TicketStatus.IN_PROGRESS
    reject(ticket, resolve(CHEN_JING), RejectionCode.NOT_FIRST_HANDLER)
    ticket = step(ticket, resolve(LI_NA))
    assert step(ticket, close(LI_NA)).status is TicketStatus.CLOSED


# --- handoff rules ------------------------------------------------------------------------------


def test_a_result_is_recorded_by_the_handoffs_role_or_a_supervisor() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "receive_return"))
    rejected = reject(ticket, result(QIAN_HUI, "H1"), RejectionCode.NOT_OWNER)
    assert "warehouse" in rejected.message
    reject(ticket, result(CHEN_JING, "H1"), RejectionCode.NOT_OWNER)  # tracking is not doing
    assert step(ticket, result(ZHOU_MIN, "H1")).owner.agent == CHEN_JING.ref


def test_a_result_is_recorded_once_and_only_for_a_known_handoff() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "receive_return"))
    reject(ticket, result(WANG_FANG, "H9"), RejectionCode.INVALID_TRANSITION)
    ticket = step(ticket, result(WANG_FANG, "H1"))
    reject(ticket, result(WANG_FANG, "H1", "failed"), RejectionCode.INVALID_TRANSITION)


def test_handoff_ids_are_unique() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "receive_return"))
    again = hand_off(CHEN_JING, "H1", Role.FINANCE, "refund")
    reject(ticket, again, RejectionCode.INVALID_TRANSITION)


def test_the_owner_is_the_newest_open_handoff() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "receive_return"))
    ticket = step(ticket, hand_off(CHEN_JING, "H2", Role.FINANCE, "refund"))
    ticket = step(ticket, hand_off(ZHOU_MIN, "H3", Role.WAREHOUSE, "reissue_part"))
    assert ticket.owner == Owner(Role.WAREHOUSE, None)
    ticket = step(ticket, result(WANG_FANG, "H3"))
    assert ticket.owner == Owner(Role.FINANCE, None)
    ticket = step(ticket, result(WANG_FANG, "H1"))
    assert ticket.owner == Owner(Role.FINANCE, None)
    ticket = step(ticket, result(QIAN_HUI, "H2"))
    assert ticket.owner == Owner(Role.AFTERSALES, CHEN_JING.ref)


def test_the_first_handler_may_reply_while_the_work_is_away() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "receive_return"))
    reply = Reply(actor=CHEN_JING, at=at(6), message_id=msg(), text="仓库在处理")
    assert step(ticket, reply).owner == Owner(Role.WAREHOUSE, None)
    reject(
        ticket, Reply(actor=SUN_YU, at=at(6), message_id=msg(), text="x"), RejectionCode.NOT_OWNER
    )


def test_handoffs_go_to_the_other_roles_only() -> None:
    with pytest.raises(ValueError, match="cannot hand off to presale"):
        hand_off(CHEN_JING, "H1", Role.PRESALE, "sell_more")
    with pytest.raises(ValueError, match="outcome"):
        RecordResult(actor=WANG_FANG, at=at(1), message_id=msg(), handoff_id="H1", outcome="ok")  # type: ignore[arg-type]


# --- §5.6: resolve and close -------------------------------------------------------------------


def test_resolve_waits_for_every_handoff() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "receive_return"))
    ticket = step(ticket, hand_off(CHEN_JING, "H2", Role.FINANCE, "refund"))
    ticket = step(ticket, result(WANG_FANG, "H1"))
    rejected = reject(ticket, resolve(CHEN_JING), RejectionCode.HANDOFFS_PENDING)
    assert "H2 (finance: refund)" in rejected.message
    assert "H1" not in rejected.message


def test_close_only_after_resolve() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    reject(ticket, close(CHEN_JING), RejectionCode.INVALID_TRANSITION)
    ticket = step(ticket, resolve(CHEN_JING))
    reject(ticket, resolve(CHEN_JING), RejectionCode.INVALID_TRANSITION)
    assert step(ticket, close(CHEN_JING)).status is TicketStatus.CLOSED


def test_a_supervisor_may_resolve_and_close() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, resolve(ZHOU_MIN))
    assert step(ticket, close(ZHOU_MIN)).status is TicketStatus.CLOSED


def test_nothing_is_accepted_on_a_closed_ticket() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(step(ticket, resolve(CHEN_JING)), close(CHEN_JING))
    commands: list[Command] = [
        Claim(actor=SUN_YU, at=at(50), message_id=msg()),
        Assign(actor=SYSTEM, at=at(50), message_id=msg(), agent=SUN_YU.ref),
        Reply(actor=CHEN_JING, at=at(50), message_id=msg(), text="thanks"),
        hand_off(CHEN_JING, "H1", Role.FINANCE, "refund"),
        result(QIAN_HUI, "H1"),
        resolve(ZHOU_MIN),
        close(ZHOU_MIN),
        escalate(ZHOU_MIN, minutes=50),
        ReassignFirstHandler(
            actor=ZHOU_MIN, at=at(50), message_id=msg(), new_first_handler=SUN_YU.ref, reason="x"
        ),
    ]
    for command in commands:
        rejected = reject(ticket, command, RejectionCode.INVALID_TRANSITION)
        assert "closed" in rejected.message


# --- versions ----------------------------------------------------------------------------------


def test_a_stale_version_is_refused_before_anything_else() -> None:
    ticket = claimed(presale_ticket(), LI_NA)  # version 2
    stale = Claim(actor=ZHAO_LEI, at=at(2), message_id=msg(), expected_version=1)
    rejected = reject(ticket, stale, RejectionCode.VERSION_CONFLICT)
    assert "version 2" in rejected.message and "version 1" in rejected.message
    current = Reply(actor=LI_NA, at=at(2), message_id=msg(), text="hi", expected_version=2)
    assert step(ticket, current).version == 3


# --- §5.7: the supervisor reassigns the first handler --------------------------------------------


def test_an_off_shift_first_handler_is_reassigned_with_the_reason_in_history() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.FINANCE, "refund"))
    reason = "Chen Jing is off shift until Monday; the refund result must not wait"
    reassign = ReassignFirstHandler(
        actor=ZHOU_MIN,
        at=at(20),
        message_id="m-reassign",
        new_first_handler=SUN_YU.ref,
        reason=reason,
    )
    decision = accept(ticket, reassign)
    assert decision.history.reason == reason
    assert decision.history.action == "first_handler_reassigned"
    assert decision.history.message_id == "m-reassign"
    assert decision.history.actor_name == "Zhou Min"
    assert decision.history.detail["from"] == {"id": "s1", "name": "Chen Jing"}
    (event,) = decision.events
    assert isinstance(event, FirstHandlerReassigned)
    assert (event.previous, event.new, event.reason) == (CHEN_JING.ref, SUN_YU.ref, reason)
    ticket = decision.ticket
    assert ticket.owner == Owner(Role.FINANCE, None)  # the refund is still away
    ticket = step(ticket, result(QIAN_HUI, "H1"))
    assert ticket.owner == Owner(Role.AFTERSALES, SUN_YU.ref)
    reject(ticket, resolve(CHEN_JING), RejectionCode.NOT_OWNER)
    assert step(ticket, resolve(SUN_YU)).status is TicketStatus.RESOLVED


def test_the_owner_moves_with_the_first_handler_when_the_ticket_is_home() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    reassign = ReassignFirstHandler(
        actor=ZHOU_MIN, at=at(20), message_id=msg(), new_first_handler=SUN_YU.ref, reason="left"
    )
    ticket = step(ticket, reassign)
    assert ticket.owner == Owner(Role.AFTERSALES, SUN_YU.ref)
    assert ticket.first_handler == SUN_YU.ref


def test_only_a_supervisor_reassigns_and_only_with_a_reason() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    by_agent = ReassignFirstHandler(
        actor=CHEN_JING, at=at(20), message_id=msg(), new_first_handler=SUN_YU.ref, reason="tired"
    )
    rejected = reject(ticket, by_agent, RejectionCode.NOT_OWNER)
    assert "only a supervisor may reassign" in rejected.message
    with pytest.raises(ValueError, match="reason"):
        ReassignFirstHandler(
            actor=ZHOU_MIN, at=at(20), message_id=msg(), new_first_handler=SUN_YU.ref, reason=" "
        )
    queued = ReassignFirstHandler(
        actor=ZHOU_MIN, at=at(20), message_id=msg(), new_first_handler=SUN_YU.ref, reason="x"
    )
    reject(return_ticket(), queued, RejectionCode.INVALID_TRANSITION)


# --- §5.8: escalation ---------------------------------------------------------------------------


def test_an_escalation_goes_to_the_responsible_supervisor_and_comes_back() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    escalated = accept(ticket, escalate(CHEN_JING))
    ticket = escalated.ticket
    assert ticket.status is TicketStatus.ESCALATED
    assert ticket.owner == Owner(Role.SUPERVISOR, ZHOU_MIN.ref)
    assert ticket.first_handler == CHEN_JING.ref
    assert ticket.escalation is not None
    assert ticket.escalation.customer_demand == "full refund and keep the table"
    assert ticket.escalation.deadline == at(130)
    (event,) = escalated.events
    assert isinstance(event, TicketEscalated) and event.first_handler == CHEN_JING.ref
    assert escalated.history.reason is not None
    assert escalated.history.reason.startswith("large_amount_dispute")

    reject(ticket, resolve(CHEN_JING), RejectionCode.HANDOFFS_PENDING)
    reject(ticket, escalate(CHEN_JING), RejectionCode.INVALID_TRANSITION)

    decision = result(ZHOU_MIN, ticket.escalation.handoff_id, decision="refund 300, keep it")
    back = accept(ticket, decision)
    assert back.ticket.owner == Owner(Role.AFTERSALES, CHEN_JING.ref)
    assert back.ticket.status is TicketStatus.IN_PROGRESS
    assert isinstance(back.events[-1], TicketReturnedToFirstHandler)


def test_only_the_owner_first_handler_supervisor_or_timers_escalate() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    reject(ticket, escalate(SUN_YU), RejectionCode.NOT_OWNER)
    assert step(ticket, escalate(SYSTEM)).status is TicketStatus.ESCALATED
    assert step(ticket, escalate(ZHOU_MIN)).status is TicketStatus.ESCALATED


def test_the_first_handler_tracks_an_escalation_while_work_is_away() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    ticket = step(ticket, hand_off(CHEN_JING, "H1", Role.WAREHOUSE, "receive_return"))
    ticket = step(ticket, escalate(CHEN_JING, minutes=10))
    assert ticket.owner == Owner(Role.SUPERVISOR, ZHOU_MIN.ref)
    ticket = step(ticket, result(WANG_FANG, "H1"))
    assert ticket.status is TicketStatus.ESCALATED  # the decision is still pending
    assert ticket.escalation is not None
    ticket = step(ticket, result(ZHOU_MIN, ticket.escalation.handoff_id))
    assert ticket.owner == Owner(Role.AFTERSALES, CHEN_JING.ref)


def test_a_timer_breach_on_an_unclaimed_ticket_returns_it_to_the_queue() -> None:
    ticket = step(return_ticket(), escalate(SYSTEM, minutes=30))
    assert ticket.owner == Owner(Role.SUPERVISOR, ZHOU_MIN.ref)
    assert ticket.escalation is not None
    back = accept(ticket, result(ZHOU_MIN, ticket.escalation.handoff_id))
    assert back.ticket.owner == Owner(Role.AFTERSALES, None)
    assert back.ticket.status is TicketStatus.QUEUED
    assert isinstance(back.events[-1], TicketRequeued)
    assert claimed(back.ticket, SUN_YU).first_handler == SUN_YU.ref


# --- commands are well formed ------------------------------------------------------------------


def test_commands_need_aware_times_and_a_message_id() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Claim(actor=LI_NA, at=datetime(2024, 6, 3, 10, 0), message_id=msg())
    with pytest.raises(ValueError, match="message_id"):
        Claim(actor=LI_NA, at=at(1), message_id="")
    with pytest.raises(ValueError, match="deadline"):
        Escalate(
            actor=LI_NA,
            at=at(10),
            message_id=msg(),
            category=EscalationCategory.TIMER_BREACH,
            customer_info={},
            problem="no reply for 30 minutes",
            actions_taken="",
            customer_demand="",
            responsible=ZHOU_MIN.ref,
            deadline=at(5),
        )


def test_a_rejection_changes_nothing() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    decide(ticket, Claim(actor=ZHAO_LEI, at=at(2), message_id=msg()))
    assert ticket == claimed(presale_ticket(), LI_NA)
    assert ticket.owner.agent == AgentRef("a1", "Li Na")


# --- birth and follow-ups ---------------------------------------------------------------------

INTAKE = Actor("system:intake", "intake")


def test_a_ticket_is_born_in_the_aggregate_queued_for_its_role() -> None:
    opened = open_ticket(
        Open(
            actor=INTAKE,
            at=T0,
            message_id=msg(),
            ticket_id="T9",
            kind=TicketKind.RETURN,
            role=Role.AFTERSALES,
        )
    )
    assert opened.ticket == new_ticket("T9", TicketKind.RETURN, Role.AFTERSALES, T0)
    assert opened.history.action == "opened"
    assert opened.history.detail == {"kind": "return", "routed_to": "aftersales"}
    [event] = opened.events
    assert isinstance(event, TicketOpened) and (event.version, event.role) == (1, Role.AFTERSALES)


def follow_up(minutes: float) -> AttachFollowUp:
    return AttachFollowUp(
        actor=INTAKE, at=at(minutes), message_id=msg(), source="im", external_id=f"c-{minutes}"
    )


def test_a_follow_up_on_a_resolved_ticket_reopens_it_to_its_first_handler() -> None:
    ticket = step(claimed(return_ticket(), CHEN_JING), resolve(CHEN_JING))
    assert ticket.status is TicketStatus.RESOLVED
    decision = accept(ticket, follow_up(50))
    after = decision.ticket
    assert after.status is TicketStatus.IN_PROGRESS and after.owner.agent == CHEN_JING.ref
    assert (after.resolution, after.resolved_at) == (None, None)
    assert decision.history.action == "follow_up_attached"
    assert decision.history.detail["reopened"] is True
    [event] = decision.events
    assert isinstance(event, ContactAttached) and event.reopened
    # reopened, the first handler can work and resolve it again
    assert step(after, resolve(CHEN_JING)).status is TicketStatus.RESOLVED


def test_a_follow_up_on_an_open_ticket_changes_no_owner_and_a_closed_one_refuses_it() -> None:
    ticket = claimed(return_ticket(), CHEN_JING)
    after = accept(ticket, follow_up(10)).ticket
    assert (after.owner, after.status, after.version) == (
        ticket.owner,
        ticket.status,
        ticket.version + 1,
    )
    done = step(step(ticket, resolve(CHEN_JING)), close(CHEN_JING))
    reject(done, follow_up(60), RejectionCode.INVALID_TRANSITION)


# --- the chase of an unpaid order (追单) ----------------------------------------------------------


def test_only_the_system_opens_a_chase_and_only_while_the_ticket_is_unresolved() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    reject(
        ticket, OpenChase(actor=LI_NA, at=at(2), message_id=msg()), RejectionCode.INVALID_TRANSITION
    )
    opened = accept(ticket, OpenChase(actor=SYSTEM, at=at(2), message_id=msg()))
    assert opened.ticket.chase_open and opened.history.action == "chase_opened"
    resolved = step(ticket, resolve(LI_NA))
    reject(
        resolved,
        OpenChase(actor=SYSTEM, at=at(50), message_id=msg()),
        RejectionCode.INVALID_TRANSITION,
    )


def take_over(actor: Actor, away: bool) -> TakeOverChase:
    return TakeOverChase(actor=actor, at=at(3), message_id=msg(), first_handler_away=away)


def test_a_chase_is_taken_over_by_another_agent_of_the_role_while_the_first_is_away() -> None:
    ticket = claimed(presale_ticket(), LI_NA)
    reject(ticket, take_over(ZHAO_LEI, True), RejectionCode.INVALID_TRANSITION)  # not open
    chased = step(ticket, OpenChase(actor=SYSTEM, at=at(2), message_id=msg()))
    reject(chased, take_over(ZHAO_LEI, False), RejectionCode.NOT_OWNER)  # Li Na is at work
    reject(chased, take_over(CHEN_JING, True), RejectionCode.NOT_OWNER)  # not pre-sale
    reject(chased, take_over(LI_NA, True), RejectionCode.INVALID_TRANSITION)  # hers already
    taken = accept(chased, take_over(ZHAO_LEI, True))
    after = taken.ticket
    assert after.first_handler == ZHAO_LEI.ref and after.owner.agent == ZHAO_LEI.ref
    assert not after.chase_open and after.status is TicketStatus.IN_PROGRESS
    assert taken.history.action == "chase_taken_over"
    assert taken.history.detail["from"] == {"id": "a1", "name": "Li Na"}
