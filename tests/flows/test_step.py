"""Moves on a flow through the pure aggregate: who may move, which answers, ends, hand-overs."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import yaml

from services.flows import FLOW_DIRS, load_all
from shared.flows.load import load_flows
from shared.flows.view import position_view
from shared.tickets import (
    SYSTEM,
    AttachFollowUp,
    FlowStepped,
    HandoffRequested,
    Rejected,
    RejectionCode,
    Resolve,
    TicketResolved,
    TicketStatus,
    decide,
)
from shared.tickets.read_model import TICKET
from shared.tickets.roles import Role
from shared.tickets.store import ticket_state
from tests.flows.support import AGENTS, T0, accept, claimed, later, moved, msg, returned, step

BOOK = load_all()
WRONG_ITEM = BOOK.newest("wrong_item")
INQUIRY = BOOK.newest("inquiry")
assert WRONG_ITEM is not None and INQUIRY is not None


def test_the_first_handler_taking_the_ticket_starts_it_on_the_newest_flow() -> None:
    ticket = claimed(WRONG_ITEM, "wrong_item")
    assert ticket.flow is not None
    assert (ticket.flow.kind, ticket.flow.version, ticket.flow.state) == (
        "wrong_item",
        1,
        "ask_photos",
    )
    assert ticket.flow.entered_at == T0


def test_a_ticket_without_a_flow_works_as_before_and_refuses_moves() -> None:
    ticket = claimed(None, "wrong_item")
    assert ticket.flow is None
    refused = step(ticket, WRONG_ITEM, "photos_received")
    assert isinstance(refused, Rejected) and refused.code is RejectionCode.NOT_ALLOWED_BY_FLOW
    assert "was not started for it" in refused.message


def test_a_move_is_recorded_as_stepped_with_the_state_left_the_answer_and_the_state_entered() -> (
    None
):
    ticket = claimed(WRONG_ITEM, "wrong_item")
    moved_on = moved(ticket, WRONG_ITEM, "photos_received", at=later(T0, 1))
    assert moved_on.history.action == "stepped"
    assert moved_on.history.detail == {
        "flow": "wrong_item v1",
        "left": "ask_photos",
        "answer": "photos_received",
        "entered": "verify",
        "note": None,
    }
    assert moved_on.ticket.flow is not None and moved_on.ticket.flow.state == "verify"
    assert moved_on.ticket.version == ticket.version + 1
    (event,) = moved_on.events
    assert isinstance(event, FlowStepped) and event.entered == "verify"


def test_a_move_the_flow_does_not_allow_is_rejected_naming_the_allowed_answers() -> None:
    ticket = moved(claimed(WRONG_ITEM, "wrong_item"), WRONG_ITEM, "photos_received").ticket
    refused = step(ticket, WRONG_ITEM, "refund_now")
    assert isinstance(refused, Rejected)
    assert (refused.code, refused.rule) == (
        RejectionCode.NOT_ALLOWED_BY_FLOW,
        "answer_allowed_here",
    )
    assert "'refund_now' is not allowed at 'verify' of wrong_item v1" in refused.message
    assert "allowed answers: shop_error, not_shop_error" in refused.message


def test_only_the_owner_first_handler_or_a_supervisor_may_move_it() -> None:
    ticket = claimed(WRONG_ITEM, "wrong_item")
    stranger = step(ticket, WRONG_ITEM, "photos_received", by=AGENTS[Role.WAREHOUSE])
    assert isinstance(stranger, Rejected) and stranger.code is RejectionCode.NOT_OWNER
    assert moved(ticket, WRONG_ITEM, "photos_received", by=AGENTS[Role.SUPERVISOR])


def test_a_waiting_state_times_out_only_once_its_duration_has_passed() -> None:
    ticket = claimed(WRONG_ITEM, "wrong_item")
    early = step(ticket, WRONG_ITEM, "timeout", at=later(T0, 23.9))
    assert isinstance(early, Rejected) and "allowed answers: photos_received" in early.message
    due = moved(ticket, WRONG_ITEM, "timeout", at=later(T0, 24))
    assert due.ticket.flow is not None and due.ticket.flow.state == "no_photos"


def test_a_hand_over_opens_its_handoff_and_the_result_resumes_the_flow() -> None:
    ticket = claimed(WRONG_ITEM, "wrong_item")
    for answer in ("photos_received", "shop_error"):
        ticket = moved(ticket, WRONG_ITEM, answer).ticket
    handed = moved(ticket, WRONG_ITEM, "accepted", note="50.00 agreed")
    after = handed.ticket
    assert after.flow is not None and after.flow.state == "payout"
    (handoff,) = after.open_handoffs
    assert (handoff.role, handoff.task.action) == (Role.FINANCE, "payout")
    assert handoff.task.data == {"flow_state": "payout", "note": "50.00 agreed"}
    assert after.flow.handoff_id == handoff.id
    assert any(isinstance(e, HandoffRequested) for e in handed.events)

    waiting = step(after, WRONG_ITEM, "confirmed")
    assert isinstance(waiting, Rejected)
    assert f"it waits for handoff {handoff.id} (finance: payout)" in waiting.message

    back = returned(after, "done", at=later(T0, 2))
    assert back.ticket.flow is not None and back.ticket.flow.state == "paid"
    assert back.ticket.flow.handoff_id is None
    assert back.history.detail["flow"] == {
        "flow": "wrong_item v1",
        "left": "payout",
        "answer": "done",
        "entered": "paid",
    }
    failed = returned(after, "failed")
    assert failed.ticket.flow is not None and failed.ticket.flow.state == "offer_compensation"


def test_an_end_resolves_the_ticket_with_its_resolution() -> None:
    ticket = claimed(WRONG_ITEM, "wrong_item")
    for answer in ("photos_received", "not_shop_error"):
        ticket = moved(ticket, WRONG_ITEM, answer).ticket
    ended = moved(ticket, WRONG_ITEM, "accepted")
    assert ended.ticket.status is TicketStatus.RESOLVED
    assert ended.ticket.resolution == "explained: not the shop's error"
    assert ended.ticket.flow is not None and ended.ticket.flow.end_reason == ended.ticket.resolution
    assert any(isinstance(e, TicketResolved) for e in ended.events)
    after_end = step(ended.ticket, WRONG_ITEM, "accepted")
    assert isinstance(after_end, Rejected)


def test_a_ticket_on_a_flow_is_resolved_at_an_end_not_half_way() -> None:
    """A free `resolve` half-way would skip what the path records; once the flow has ended
    and a follow-up reopened the ticket, the flow has no moves left and `resolve` finishes it."""
    ticket = moved(claimed(WRONG_ITEM, "wrong_item"), WRONG_ITEM, "photos_received").ticket
    agent = AGENTS[Role.AFTERSALES]
    half_way = Resolve(actor=agent, at=T0, message_id=msg(), summary="已处理")
    refused = decide(ticket, half_way)
    assert isinstance(refused, Rejected) and refused.code is RejectionCode.NOT_ALLOWED_BY_FLOW
    assert "stands at 'verify'" in refused.message
    ticket = moved(ticket, WRONG_ITEM, "not_shop_error").ticket
    ended = moved(ticket, WRONG_ITEM, "accepted").ticket
    follow_up = AttachFollowUp(
        actor=SYSTEM, at=later(T0, 1), message_id=msg(), source="im", external_id="again"
    )
    reopened = accept(ended, follow_up).ticket
    assert reopened.status is not TicketStatus.RESOLVED
    no_moves = step(reopened, WRONG_ITEM, "accepted")
    assert isinstance(no_moves, Rejected) and no_moves.code is RejectionCode.NOT_ALLOWED_BY_FLOW
    again = Resolve(actor=agent, at=later(T0, 2), message_id=msg(), summary="再次说明")
    assert accept(reopened, again).ticket.status is TicketStatus.RESOLVED


def test_the_system_answers_only_where_the_flow_waits() -> None:
    """A timer's timeout or the platform's ruling moves a wait; a question is the agent's."""
    ticket = claimed(WRONG_ITEM, "wrong_item")
    at_question = moved(ticket, WRONG_ITEM, "photos_received").ticket
    refused = step(at_question, WRONG_ITEM, "shop_error", by=SYSTEM)
    assert isinstance(refused, Rejected) and refused.rule == "system_answers_only_waits"
    assert moved(ticket, WRONG_ITEM, "photos_received", by=SYSTEM)


def test_no_deal_needs_a_loss_reason_from_the_flows_list() -> None:
    ticket = moved(claimed(INQUIRY, "inquiry"), INQUIRY, "need_understood").ticket
    for reason in (None, "felt_like_it"):
        refused = step(ticket, INQUIRY, "no_deal", reason=reason)
        assert isinstance(refused, Rejected) and refused.rule == "loss_reason_from_the_list"
        assert "needs --reason, one of: price_too_high, out_of_stock" in refused.message
    lost = moved(ticket, INQUIRY, "no_deal", reason="price_too_high", note="嫌贵")
    assert lost.ticket.resolution == "inquiry: lost (price_too_high); 嫌贵"
    assert lost.history.reason == "price_too_high"


def test_a_ticket_finishes_on_the_version_it_started_on(tmp_path: Path) -> None:
    v1_dir = FLOW_DIRS[0]
    (tmp_path / "inquiry.v1.yaml").write_text((v1_dir / "inquiry.v1.yaml").read_text())
    v2 = yaml.safe_load((v1_dir / "inquiry.v1.yaml").read_text())
    v2["version"] = 2
    v2["states"]["greet"]["answers"] = {
        "need_understood": "advise",
        "aftersales": "transfer_to_aftersales",  # renamed in v2
    }
    (tmp_path / "inquiry.v2.yaml").write_text(yaml.safe_dump(v2, allow_unicode=True))
    book = load_flows([tmp_path])
    v1 = book.get("inquiry", 1)

    started_on_v1 = claimed(v1, "inquiry")
    # The desk looks its flow up by the version the ticket recorded, not the newest.
    flow = book.of(started_on_v1.flow)
    assert flow is v1
    assert moved(started_on_v1, flow, "after_sales_question")
    refused = step(started_on_v1, flow, "aftersales")
    assert isinstance(refused, Rejected) and "of inquiry v1" in refused.message
    on_v2 = claimed(book.newest("inquiry"), "inquiry")
    assert on_v2.flow is not None and on_v2.flow.version == 2
    mismatched = step(started_on_v1, book.newest("inquiry"), "need_understood")
    assert isinstance(mismatched, Rejected) and "follows inquiry v1" in mismatched.message


def test_a_state_stored_before_flows_existed_loads_without_a_flow() -> None:
    ticket = claimed(WRONG_ITEM, "wrong_item")
    stored = ticket_state(ticket)
    assert stored["flow"]["state"] == "ask_photos"
    del stored["flow"]  # as the tickets' state column holds it from before
    assert TICKET.validate_python(stored).flow is None
    assert TICKET.validate_python(ticket_state(ticket)) == ticket


def test_the_timer_may_move_a_waiting_state_on_once_it_is_due() -> None:
    ticket = claimed(WRONG_ITEM, "wrong_item")
    assert moved(ticket, WRONG_ITEM, "timeout", at=later(T0, 24), by=SYSTEM)
    early = step(ticket, WRONG_ITEM, "timeout", at=later(T0, 1), by=SYSTEM)
    assert isinstance(early, Rejected) and early.code is RejectionCode.NOT_ALLOWED_BY_FLOW


def test_a_guarded_answer_is_allowed_only_when_the_orders_times_say_so() -> None:
    returns = BOOK.newest("return")
    ticket = moved(claimed(returns, "return"), returns, "returning").ticket
    signed_3_days_ago = {"signed_at": T0 - timedelta(days=3)}
    assert moved(ticket, returns, "within_window", facts=signed_3_days_ago)
    late = {"signed_at": T0 - timedelta(days=8)}
    refused = step(ticket, returns, "within_window", facts=late)
    assert isinstance(refused, Rejected) and refused.code is RejectionCode.NOT_ALLOWED_BY_FLOW
    assert "(it needs signed_at at most 7d ago; the order has {'signed_at': '2026-11-15" in (
        refused.message
    )
    assert "allowed answers: shop_fault, outside_window" in refused.message
    unsigned = step(ticket, returns, "outside_window")
    assert isinstance(unsigned, Rejected) and "the order has no times" in unsigned.message
    assert moved(ticket, returns, "shop_fault")  # the one answer without a guard


def test_a_state_missing_from_an_edited_version_is_refused_not_crashed() -> None:
    ticket = claimed(WRONG_ITEM, "wrong_item")
    assert ticket.flow is not None
    edited = dataclasses.replace(ticket, flow=dataclasses.replace(ticket.flow, state="gone"))
    refused = step(edited, WRONG_ITEM, "photos_received")
    assert isinstance(refused, Rejected) and "its state 'gone' is not in wrong_item v1" in (
        refused.message
    )
    view = position_view(edited.flow, WRONG_ITEM)
    assert view is not None and view["question"] == "(not in the loaded flow)"
