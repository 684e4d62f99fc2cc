"""Tickets walked on flows in memory: the pure aggregate, no server."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from shared.flows.model import Facts, Flow
from shared.tickets import (
    Accepted,
    Actor,
    Claim,
    Command,
    Decision,
    RecordResult,
    Step,
    Ticket,
    decide,
    new_ticket,
)
from shared.tickets.roles import Role, TicketKind, role_for_kind

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
AGENTS = {
    Role.PRESALE: Actor("p1", "王芳", frozenset({Role.PRESALE})),
    Role.AFTERSALES: Actor("a1", "李娜", frozenset({Role.AFTERSALES})),
    Role.WAREHOUSE: Actor("w1", "赵仓", frozenset({Role.WAREHOUSE})),
    Role.FINANCE: Actor("f1", "钱财", frozenset({Role.FINANCE})),
    Role.SUPERVISOR: Actor("s1", "孙主管", frozenset({Role.SUPERVISOR})),
}
_ids = itertools.count(1)


def msg() -> str:
    return f"m-{next(_ids)}"


def accept(ticket: Ticket, command: Command) -> Accepted:
    decision = decide(ticket, command)
    assert isinstance(decision, Accepted), decision
    return decision


def claimed(flow: Flow | None, kind: str, at: datetime = T0) -> Ticket:
    """A ticket of `kind` its desk's agent claimed, starting it on `flow`."""
    role = role_for_kind(TicketKind(kind))
    ticket = new_ticket("T-1", TicketKind(kind), role, at)
    return accept(ticket, Claim(actor=AGENTS[role], at=at, message_id=msg(), flow=flow)).ticket


def step(
    ticket: Ticket,
    flow: Flow | None,
    answer: str,
    *,
    at: datetime = T0,
    reason: str | None = None,
    note: str | None = None,
    by: Actor | None = None,
    facts: Facts | None = None,
) -> Decision:
    actor = by or AGENTS[ticket.first_handler_role]
    return decide(
        ticket,
        Step(
            actor=actor,
            at=at,
            message_id=msg(),
            answer=answer,
            flow=flow,
            reason=reason,
            note=note,
            facts=facts or {},
        ),
    )


def result(ticket: Ticket, outcome: str, *, at: datetime = T0) -> Decision:
    """The result of the handoff the flow opened, recorded by its role."""
    assert ticket.flow is not None and ticket.flow.handoff_id is not None
    handoff = ticket.handoff(ticket.flow.handoff_id)
    assert handoff is not None
    return decide(
        ticket,
        RecordResult(
            actor=AGENTS[handoff.role],
            at=at,
            message_id=msg(),
            handoff_id=handoff.id,
            outcome=outcome,  # type: ignore[arg-type]
        ),
    )


def later(at: datetime, hours: float) -> datetime:
    return at + timedelta(hours=hours)


def moved(ticket: Ticket, flow: Flow | None, answer: str, **kw: object) -> Accepted:
    """An accepted Step."""
    decision = step(ticket, flow, answer, **kw)  # type: ignore[arg-type]
    assert isinstance(decision, Accepted), decision
    return decision


def returned(ticket: Ticket, outcome: str, *, at: datetime = T0) -> Accepted:
    """An accepted result of the flow's handoff."""
    decision = result(ticket, outcome, at=at)
    assert isinstance(decision, Accepted), decision
    return decision
