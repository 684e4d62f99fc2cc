"""The platform's interventions on after-sales tickets (小二介入, SPEC §7).

`platform.intervention_opened` tells the order's unfinished tickets (history) and arms the
evidence deadline on each; at the deadline a ticket not yet waiting for the ruling (its
evidence not submitted) is escalated to the supervisor. `platform.ruling` answers the flow's
wait for the ruling as the system (`ruled_for_shop` / `ruled_for_customer`), through the
aggregate; a ticket not at that wait gets the ruling in its history, for its agent to answer
when it gets there. Each fact is kept as first known (`platform_interventions`), so a
re-published event or a ruling before its opening changes nothing twice; an intervention on an
order with no ticket yet is kept.
"""

from __future__ import annotations

import functools
from typing import Any

import structlog

from services.aftersales.contracts import InFavourOf, PlatformInterventionOpened, PlatformRuling
from shared import timers
from shared.flows.model import FlowBook, Wait
from shared.messaging.envelope import Contract
from shared.messaging.runtime import Handler, Incoming, Outcome, Transaction
from shared.tickets import SYSTEM, Accepted, Ticket, TicketStatus
from shared.tickets.clocks import Arm, TimerKind
from shared.tickets.desk import commit
from shared.tickets.roles import Role
from shared.tickets.store import (
    append_history,
    load_ticket,
    lock_order,
    unfinished_tickets_of_order,
)
from shared.tickets.timing import apply_ops, escalate, system_step
from shared.timers import FireHandler, Firing

log = structlog.get_logger(__name__)

# The flows' answers to a wait for the platform's ruling (wrong_item, platform_complaint).
RULING_ANSWERS = {InFavourOf.SHOP: "ruled_for_shop", InFavourOf.CUSTOMER: "ruled_for_customer"}

# The history's words (actor: the system).
INTERVENTION_OPENED = "platform_intervention_opened"
PLATFORM_RULED = "platform_ruled"


def waits_for_ruling(ticket: Ticket, flows: FlowBook) -> bool:
    """The ticket's flow stands at a wait the platform's ruling answers."""
    flow = flows.of(ticket.flow)
    if flow is None or ticket.flow is None or ticket.flow.state not in flow.states:
        return False
    state = flow.state(ticket.flow.state)
    return isinstance(state, Wait) and any(a in state.answers for a in RULING_ANSWERS.values())


async def intervention_opened(
    tx: Transaction, msg: Incoming[PlatformInterventionOpened]
) -> Outcome:
    event, conn = msg.payload, tx.conn
    await lock_order(conn, event.order_id)
    not_ruled = await conn.fetchval(
        """INSERT INTO platform_interventions
               (intervention_id, order_id, opened_at, evidence_due_at, reason)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (intervention_id) DO UPDATE SET
               opened_at = excluded.opened_at, evidence_due_at = excluded.evidence_due_at,
               reason = excluded.reason, updated_at = now()
           WHERE platform_interventions.opened_at IS NULL
           RETURNING ruled_at IS NULL""",
        event.intervention_id,
        event.order_id,
        event.opened_at,
        event.evidence_due_at,
        event.reason,
    )
    if not_ruled is None:
        return Outcome("intervention_already_known")
    tickets = await unfinished_tickets_of_order(conn, event.order_id)
    for ticket_id in tickets:
        if not_ruled:  # timers before the ticket's history: the one lock order
            deadline = Arm(TimerKind.EVIDENCE_DUE, Role.AFTERSALES, event.evidence_due_at)
            await apply_ops(conn, ticket_id, [deadline], tx.now)
        await _history(
            tx,
            msg,
            ticket_id,
            INTERVENTION_OPENED,
            {"evidence_due_at": event.evidence_due_at.isoformat()},
            f"the platform intervened: {event.reason}",
        )
    return Outcome("intervention_opened", tickets[0] if tickets else None)


async def ruling(tx: Transaction, msg: Incoming[PlatformRuling], *, flows: FlowBook) -> Outcome:
    event, conn = msg.payload, tx.conn
    await lock_order(conn, event.order_id)
    new = await conn.fetchval(
        """INSERT INTO platform_interventions
               (intervention_id, order_id, ruled_at, in_favour_of, note)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (intervention_id) DO UPDATE SET
               ruled_at = excluded.ruled_at, in_favour_of = excluded.in_favour_of,
               note = excluded.note, updated_at = now()
           WHERE platform_interventions.ruled_at IS NULL
           RETURNING true""",
        event.intervention_id,
        event.order_id,
        event.ruled_at,
        event.in_favour_of.value,
        event.note,
    )
    if new is None:
        return Outcome("ruling_already_known")
    answer = RULING_ANSWERS[event.in_favour_of]
    tickets = await unfinished_tickets_of_order(conn, event.order_id)
    for ticket_id in tickets:
        await timers.cancel(conn, ticket_id=ticket_id, kind=TimerKind.EVIDENCE_DUE.value)
        ticket = await load_ticket(conn, ticket_id)
        assert ticket is not None  # listed under the order's lock
        if waits_for_ruling(ticket, flows):
            decision = await system_step(
                conn,
                ticket,
                flows,
                answer=answer,
                at=tx.now,
                message_id=f"{msg.envelope.message_id}:{ticket_id}",
                note=event.note,
            )
            if isinstance(decision, Accepted):
                await commit(tx, decision)
                continue
            log.warning("ruling_step_refused", ticket_id=ticket_id, code=decision.code)
        await _history(
            tx,
            msg,
            ticket_id,
            PLATFORM_RULED,
            {"in_favour_of": event.in_favour_of.value, "answer": answer},
            f"the platform ruled for the {event.in_favour_of.value}: answer {answer!r} when "
            "the ticket waits for the ruling",
        )
    return Outcome(f"ruled_for_{event.in_favour_of.value}", tickets[0] if tickets else None)


async def _history(
    tx: Transaction,
    msg: Incoming[Any],
    ticket_id: str,
    action: str,
    detail: dict[str, Any],
    reason: str,
) -> None:
    event = msg.payload
    await append_history(
        tx.conn,
        ticket_id=ticket_id,
        at=tx.now,
        actor_id=SYSTEM.id,
        actor_name=SYSTEM.name,
        action=action,
        message_id=msg.envelope.message_id,
        detail={"intervention_id": event.intervention_id, "source": event.source, **detail},
        reason=reason,
    )


def evidence_due(flows: FlowBook) -> FireHandler:
    """The platform's evidence deadline passed: a ticket still short of its wait for the ruling
    (the evidence not submitted) goes to the supervisor."""

    async def fire(firing: Firing) -> None:
        ticket = await load_ticket(firing.conn, firing.timer.ticket_id, lock_timers=False)
        if ticket is None or ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            return
        if not waits_for_ruling(ticket, flows):
            await escalate(
                firing,
                "the platform's evidence deadline passed and the ticket is not waiting for its "
                "ruling: the evidence may not have been submitted",
            )

    return fire


def platform_handlers(flows: FlowBook) -> dict[type[Contract], Handler]:
    return {
        PlatformInterventionOpened: intervention_opened,
        PlatformRuling: functools.partial(ruling, flows=flows),
    }
