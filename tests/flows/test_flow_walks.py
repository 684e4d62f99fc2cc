"""Random walks through every loaded flow, with the real aggregate: no state without an allowed
move, no end without a reason, no move outside the flow accepted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.flows import load_all
from shared.flows.model import ORDER_TIMES, End, Flow, HandOver, Wait, allowed_answers, moves
from shared.tickets import Rejected, RejectionCode, TicketStatus
from tests.flows.support import T0, claimed, moved, returned, step

BOOK = load_all()
ANSWER = st.sampled_from(["x", "now", "please", "timeout"])


@pytest.mark.parametrize("flow", list(BOOK), ids=str)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_random_walk_never_gets_stuck_and_never_ends_without_a_reason(
    flow: Flow, data: st.DataObject
) -> None:
    ticket = claimed(flow, flow.kind)
    at = T0
    # The order's times as its guards read them: some set, some not, some long ago.
    facts = {
        name: T0 - timedelta(hours=hours)
        for name, hours in data.draw(
            st.dictionaries(st.sampled_from(ORDER_TIMES), st.integers(0, 400))
        ).items()
    }
    for _ in range(60):
        position = ticket.flow
        assert position is not None and position.version == flow.version
        state = flow.state(position.state)
        if isinstance(state, End):
            assert ticket.status is TicketStatus.RESOLVED
            assert ticket.resolution and position.end_reason == ticket.resolution
            return
        if isinstance(state, HandOver):
            assert position.handoff_id is not None and ticket.handoff(position.handoff_id)
            ticket = returned(ticket, data.draw(st.sampled_from(sorted(state.on))), at=at).ticket
            continue
        waits = [timedelta(0), timedelta(minutes=5)]
        if isinstance(state, Wait):
            waits.append(state.timeout.after)
        at += data.draw(st.sampled_from(waits))
        allowed = allowed_answers(state, position, at, facts)
        if not allowed:  # only a wait whose answers the order's times rule out: its timer
            assert isinstance(state, Wait), f"{flow}: no allowed move at {state.name}"
            at = max(at, position.entered_at + state.timeout.after)
            allowed = allowed_answers(state, position, at, facts)
            assert allowed == ("timeout",)
        if isinstance(state, Wait) and at >= position.entered_at + state.timeout.after:
            assert "timeout" in allowed
        for guarded in set(moves(state)) - set(allowed) - {"timeout"}:
            refused = step(ticket, flow, guarded, at=at, facts=facts)
            assert isinstance(refused, Rejected) and "it needs" in refused.message
        bogus = f"{allowed[0]}_{data.draw(ANSWER)}"
        refused = step(ticket, flow, bogus, at=at, facts=facts)
        assert isinstance(refused, Rejected)
        assert refused.code is RejectionCode.NOT_ALLOWED_BY_FLOW
        answer = data.draw(st.sampled_from(allowed))
        target = flow.state(moves(state)[answer])
        reason = None
        if isinstance(target, End) and target.resolution is None:
            reason = data.draw(st.sampled_from(flow.loss_reasons))
        ticket = moved(ticket, flow, answer, at=at, reason=reason, facts=facts).ticket
        at += timedelta(minutes=1)
