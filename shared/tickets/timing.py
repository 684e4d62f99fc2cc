"""The ticket's clocks on the shop calendar (SPEC §8): the adapter of `shared.tickets.clocks`.

`apply_clocks` arms and cancels what a decision's events call for, inside the transaction that
saves the decision (call it right after `save_decision` / `insert_ticket`), and keeps the first
response measurement (`first_responses`). `FIRE_HANDLERS` are what each kind does when it fires,
run by every desk replica's timer loop (`shared.bootstrap.Service.timers`).

What firing does, and where it shows:

| kind                 | effect                                                               |
|----------------------|----------------------------------------------------------------------|
| first_response       | `first_responses.met` false; history `first_response_missed`         |
| no_response_2m       | a breach against the owning agent (none: the queue); history         |
|                      | `breached`                                                           |
| no_response_30m      | the aggregate's Escalate as the system, to the supervisor on shift   |
|                      | or next on shift; an escalation row (history `escalated`)            |
| customer_waiting_5m  | history `owner_reminded`: ask if the customer can wait, promise time |
| reply_promised       | history `owner_reminded` at the promised time                        |
| reply_promise_missed | escalation as for 30 min, `PROMISE_GRACE` after the promised time    |
| not_resolved_today   | no promise pending: a breach against the first handler, history      |
|                      | `breached`; either way it re-arms for the end of the next staffed    |
|                      | period while the ticket stays unresolved                             |
| unpaid_24h           | the aggregate's OpenChase: history `chase_opened`; another pre-sale  |
|                      | agent may take the chase over while its first handler is away        |
| shipment_72h         | history `owner_reminded`: the urge-shipment path                     |
| return_window        | history `return_window_closed`                                       |
| flow_timeout         | the flow's `timeout` move as the system (history `stepped`)          |
| evidence_due         | not yet waiting for the platform's ruling: escalated as for 30 min   |
|                      | (after-sales' own, `services.aftersales.platform`)                   |

Locks, one order for all: timers, then the ticket. A firing holds all the ticket's pending
timers from its claim (`shared.timers.store.claim_ticket`, which gives the ticket up if anyone
holds one); a command locks them before the ticket (`load_ticket`), so a reply racing a firing
either waits for it to commit and finds the timer fired, or locks them first and cancels it
(the firing gives the ticket up until then): exactly one outcome. Firings lock the ticket with
`lock_timers=False`, holding its timers already, and may change its other clocks (a flow's
timeout does).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from shared import timers
from shared.agents.roster import SHOP_TIMEZONE
from shared.agents.store import load_roster
from shared.calendar.maths import (
    ClockKind,
    add_business_time,
    business_time_between,
    deadline,
    end_of_staffed_period,
)
from shared.calendar.model import Calendar
from shared.calendar.store import load_calendar
from shared.config import get_settings
from shared.db import Connection
from shared.flows.model import TIMEOUT, FlowBook
from shared.tickets import (
    SYSTEM,
    Accepted,
    Decision,
    Escalate,
    EscalationCategory,
    OpenChase,
    Step,
    Ticket,
    TicketReplied,
    TicketStatus,
    decide,
)
from shared.tickets.clocks import (
    DAY_LEAD,
    RULES,
    Arm,
    Cancel,
    Op,
    OrderTimes,
    TimerKind,
    order_timers_for,
    supervisor_for,
    timers_for,
)
from shared.tickets.messages import messages_for
from shared.tickets.roles import Role, TicketKind
from shared.tickets.store import append_history, load_ticket, order_facts_of, save_decision
from shared.timers import Firing, record_breach, record_escalation

log = structlog.get_logger(__name__)

# How long the supervisor has to act on a timer's escalation (business time).
ESCALATION_DEADLINE = timedelta(minutes=30)

# The history's words for what firings do (beside `commands.ACTIONS`; the actor: the system).
FIRST_RESPONSE_MISSED = "first_response_missed"
BREACHED = "breached"
OWNER_REMINDED = "owner_reminded"
ESCALATION_UNASSIGNED = "escalation_unassigned"  # no supervisor on the roster to take it
RETURN_WINDOW_CLOSED = "return_window_closed"


def due_at(calendar: Calendar, arm: Arm) -> datetime:
    rule = arm.rule
    if rule.after is None:  # not resolved today: the end of the role's staffed stretch
        today = add_business_time(calendar, arm.role, arm.start, DAY_LEAD)
        return end_of_staffed_period(calendar, arm.role, today)
    return deadline(calendar, rule.clock, arm.role, arm.start, rule.after)


def _engine_clock(kind: TimerKind) -> timers.ClockKind:
    return "business" if RULES[kind].clock is ClockKind.BUSINESS else "calendar"


async def apply_clocks(conn: Connection, decision: Accepted, now: datetime) -> None:
    """Arm and cancel what `decision` calls for, in the caller's transaction."""
    ops = timers_for(decision)
    if not ops:
        return
    answered_in_time = await apply_ops(conn, decision.ticket.id, ops, now)
    for event in decision.events:
        if isinstance(event, TicketReplied):
            await _first_reply(conn, decision, event.at, answered_in_time)


async def apply_order_clocks(
    conn: Connection,
    ticket_id: str,
    kind: TicketKind,
    role: Role,
    before: OrderTimes,
    after: OrderTimes,
    now: datetime,
) -> None:
    """Arm and cancel the order's clocks on one of its tickets, in the caller's transaction."""
    window = timedelta(days=get_settings().return_window_days)
    ops = order_timers_for(kind, role, before, after, return_window=window)
    if ops:
        await apply_ops(conn, ticket_id, ops, now)


async def apply_opening_clocks(
    conn: Connection,
    opened: Accepted,
    order: OrderTimes | None,
    now: datetime,
) -> None:
    """`apply_clocks`, then `apply_order_clocks` for what is known of its `order`, for a ticket
    opened in this transaction: it has no timer yet, so nothing is cancelled and every timer
    is armed in one statement."""
    ops = timers_for(opened)
    if order is not None:
        t, window = opened.ticket, timedelta(days=get_settings().return_window_days)
        ops += order_timers_for(t.kind, t.owner.role, OrderTimes(), order, return_window=window)
    if ops:
        await apply_ops(conn, opened.ticket.id, ops, now, fresh=True)


async def apply_ops(
    conn: Connection, ticket_id: str, ops: list[Op], now: datetime, *, fresh: bool = False
) -> bool:
    """Apply `ops` on one ticket, in the caller's transaction; whether a first-response timer
    was cancelled (answered in time). `fresh`: the ticket was made in this transaction.

    Ops on distinct kinds go in one or two statements (`timers.arm_all`); a kind met twice
    (armed then cancelled in one decision) needs them one by one, in order."""
    kinds = [op.kind for op in ops]
    if len(set(kinds)) != len(kinds):
        return await _apply_in_order(conn, ticket_id, ops, now)
    arms = [op for op in ops if isinstance(op, Arm)]
    armings: list[timers.Arming] = []
    if arms:
        calendar = await load_calendar(conn)
        armings = [_arming(calendar, op) for op in arms]
    cancelled = await timers.arm_all(
        conn,
        ticket_id=ticket_id,
        cancel=[op.kind.value for op in ops if isinstance(op, Cancel)],
        arm=armings,
        now=now,
        fresh=fresh,
    )
    for op, arming in zip(arms, armings, strict=True):
        if op.kind is TimerKind.FIRST_RESPONSE:
            await _measure_first_response(conn, ticket_id, op, arming.due_at)
    return TimerKind.FIRST_RESPONSE.value in cancelled


async def _apply_in_order(conn: Connection, ticket_id: str, ops: list[Op], now: datetime) -> bool:
    calendar: Calendar | None = None
    answered_in_time = False
    for op in ops:
        if isinstance(op, Cancel):
            cancelled = await timers.cancel(conn, ticket_id=ticket_id, kind=op.kind.value)
            answered_in_time |= op.kind is TimerKind.FIRST_RESPONSE and cancelled
            continue
        calendar = calendar or await load_calendar(conn)
        arming = _arming(calendar, op)
        await timers.arm(
            conn,
            ticket_id=ticket_id,
            kind=arming.kind,
            due_at=arming.due_at,
            clock=arming.clock,
            now=now,
            payload=arming.payload,
        )
        if op.kind is TimerKind.FIRST_RESPONSE:
            await _measure_first_response(conn, ticket_id, op, arming.due_at)
    return answered_in_time


def _arming(calendar: Calendar, op: Arm) -> timers.Arming:
    payload: dict[str, Any] = {"role": op.role.value, "start": op.start.isoformat()}
    if op.agent_id is not None:
        payload["agent_id"] = op.agent_id
    return timers.Arming(op.kind.value, due_at(calendar, op), _engine_clock(op.kind), payload)


async def _measure_first_response(conn: Connection, ticket_id: str, op: Arm, due: datetime) -> None:
    await conn.execute(
        """INSERT INTO first_responses (ticket_id, agent_id, assigned_at, due_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT (ticket_id) DO NOTHING""",
        ticket_id,
        op.agent_id,
        op.start,
        due,
    )


async def _first_reply(
    conn: Connection, decision: Accepted, at: datetime, answered_in_time: bool
) -> None:
    """The ticket's first reply after it was taken: when, how much staffed time it took, and
    met if it cancelled the 30 s timer (else the timer fired first: missed)."""
    assigned_at = await conn.fetchval(
        "SELECT assigned_at FROM first_responses WHERE ticket_id = $1 AND replied_at IS NULL",
        decision.ticket.id,
    )
    if assigned_at is None:
        return
    took = business_time_between(
        await load_calendar(conn), decision.ticket.first_handler_role, assigned_at, at
    )
    await conn.execute(
        """UPDATE first_responses SET replied_at = $2, business_seconds = $3,
                  met = coalesce(met, $4)
            WHERE ticket_id = $1""",
        decision.ticket.id,
        at,
        took.total_seconds(),
        answered_in_time,
    )


# --- firing -----------------------------------------------------------------------------------


async def _history(
    firing: Firing, action: str, detail: dict[str, Any], reason: str | None = None
) -> None:
    await append_history(
        firing.conn,
        ticket_id=firing.timer.ticket_id,
        at=firing.now,
        actor_id=SYSTEM.id,
        actor_name=SYSTEM.name,
        action=action,
        message_id=f"timer:{firing.timer.id}",
        detail={"timer": firing.timer.kind, "due_at": firing.timer.due_at.isoformat(), **detail},
        reason=reason,
    )


async def _owners(firing: Firing) -> tuple[str | None, str | None] | None:
    """(owning agent, first handler) of an unfinished ticket; None once resolved or closed."""
    row = await firing.conn.fetchrow(
        "SELECT owner_agent_id, first_handler_id, status FROM tickets WHERE id = $1",
        firing.timer.ticket_id,
    )
    if row is None or row["status"] in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return None
    return row["owner_agent_id"], row["first_handler_id"]


async def first_response_missed(firing: Firing) -> None:
    agent_id = firing.timer.payload.get("agent_id")
    await firing.conn.execute(
        "UPDATE first_responses SET met = false WHERE ticket_id = $1 AND met IS NULL",
        firing.timer.ticket_id,
    )
    await _history(firing, FIRST_RESPONSE_MISSED, {"agent_id": agent_id})


async def no_response(firing: Firing) -> None:
    owners = await _owners(firing)
    if owners is None:
        return
    await record_breach(firing, agent_id=owners[0])
    await _history(
        firing, BREACHED, {"agent_id": owners[0]}, "no response to the customer within 2 min"
    )


async def no_response_escalate(firing: Firing) -> None:
    await escalate(firing, "no response to the customer within 30 min (staffed time)")


async def promise_missed(firing: Firing) -> None:
    await escalate(firing, f"the reply promised by {_promised(firing)} was not sent")


def _promised(firing: Firing) -> str:
    """The promised time (the promise timers' start), as the shop reads it."""
    at = datetime.fromisoformat(firing.timer.payload["start"]).astimezone(SHOP_TIMEZONE)
    return f"{at:%Y-%m-%d %H:%M}"


async def remind_owner(firing: Firing) -> None:
    owners = await _owners(firing)
    if owners is None:
        return
    if firing.timer.kind == TimerKind.REPLY_PROMISED:
        reason = f"the customer was promised a reply by {_promised(firing)}"
    else:
        reason = "the customer has waited 5 min since writing again: ask if they can wait and "
        reason += "promise a time"
    await _history(firing, OWNER_REMINDED, {"agent_id": owners[0]}, reason)


async def not_resolved_today(firing: Firing) -> None:
    owners = await _owners(firing)
    if owners is None:
        return
    promised = await firing.conn.fetchval(
        """SELECT count(*) FROM timers
            WHERE ticket_id = $1 AND kind = $2 AND state = 'pending'""",
        firing.timer.ticket_id,
        TimerKind.REPLY_PROMISED.value,
    )
    if not promised:
        await record_breach(firing, agent_id=owners[1])
        await _history(
            firing,
            BREACHED,
            {"agent_id": owners[1]},
            "not resolved today and no follow-up promised to the customer",
        )
    # Tomorrow's end of day asks again while the ticket stays unresolved.
    role = Role(firing.timer.payload["role"])
    calendar = await load_calendar(firing.conn)
    await timers.arm(
        firing.conn,
        ticket_id=firing.timer.ticket_id,
        kind=firing.timer.kind,
        due_at=end_of_staffed_period(calendar, role, firing.timer.due_at),
        clock="business",
        now=firing.now,
        payload=firing.timer.payload,
    )


async def escalate(firing: Firing, problem: str) -> None:
    """Through the aggregate's Escalate as the system (history: escalated, the ticket with the
    supervisor), plus the escalation row; a ticket already with a supervisor gets the row only."""
    conn, timer = firing.conn, firing.timer
    ticket = await load_ticket(conn, timer.ticket_id, lock_timers=False)
    if ticket is None or ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return
    calendar = await load_calendar(conn)
    chosen = supervisor_for(await load_roster(conn), calendar, firing.now)
    if chosen is None:  # nobody to send it to: counted, for the shop manager to see
        await record_escalation(firing, to_agent_id=None, reason=problem)
        await _history(firing, ESCALATION_UNASSIGNED, {}, problem)
        return
    supervisor, starts = chosen
    customer_id = await conn.fetchval("SELECT customer_id FROM tickets WHERE id = $1", ticket.id)
    decision = decide(
        ticket,
        Escalate(
            actor=SYSTEM,
            at=firing.now,
            message_id=f"timer:{timer.id}",
            category=EscalationCategory.TIMER_BREACH,
            customer_info={"customer_id": customer_id},
            problem=problem,
            actions_taken=f"timer {timer.kind} fired",
            customer_demand="an answer",
            responsible=supervisor.ref,
            deadline=deadline(
                calendar, ClockKind.BUSINESS, Role.SUPERVISOR, starts, ESCALATION_DEADLINE
            ),
        ),
    )
    if isinstance(decision, Accepted):
        await save_decision(conn, decision)
    await record_escalation(firing, to_agent_id=supervisor.id, reason=problem)


async def open_chase(firing: Firing) -> None:
    """24 h unpaid: through the aggregate, the chase opens to other pre-sale agents (追单)."""
    ticket = await load_ticket(firing.conn, firing.timer.ticket_id, lock_timers=False)
    if ticket is None:
        return
    decision = decide(
        ticket, OpenChase(actor=SYSTEM, at=firing.now, message_id=f"timer:{firing.timer.id}")
    )
    if isinstance(decision, Accepted):  # a resolved or closed ticket has nothing to chase
        await save_decision(firing.conn, decision)


async def shipment_overdue(firing: Firing) -> None:
    owners = await _owners(firing)
    if owners is None:
        return
    reason = (
        "paid more than 72 h ago and not shipped: the urge-shipment path (soothe the customer, "
        "hand the urging to the warehouse, who records the delay reason; tell the supervisor)"
    )
    await _history(firing, OWNER_REMINDED, {"agent_id": owners[0]}, reason)


async def return_window_closed(firing: Firing) -> None:
    if await _owners(firing) is None:
        return
    reason = "the no-reason return window since signing has closed"
    await _history(firing, RETURN_WINDOW_CLOSED, {}, reason)


async def system_step(
    conn: Connection,
    ticket: Ticket,
    flows: FlowBook,
    *,
    answer: str,
    at: datetime,
    message_id: str,
    note: str | None = None,
) -> Decision:
    """The system's answer at the ticket's waiting state (its timer fired, the platform
    ruled), decided through the aggregate on the order's facts; the caller saves it."""
    return decide(
        ticket,
        Step(
            actor=SYSTEM,
            at=at,
            message_id=message_id,
            answer=answer,
            flow=flows.of(ticket.flow),
            facts=await order_facts_of(conn, ticket.id),
            note=note,
        ),
    )


def flow_timeout(book: FlowBook) -> timers.FireHandler:
    """A waiting state timed out: the flow's `timeout` move, through the aggregate as the
    system; what it sends (a hand-over's task) goes with the firing."""

    async def fire(firing: Firing) -> None:
        conn, timer = firing.conn, firing.timer
        ticket = await load_ticket(conn, timer.ticket_id, lock_timers=False)
        start = datetime.fromisoformat(timer.payload["start"])
        if ticket is None or ticket.flow is None or ticket.flow.entered_at != start:
            return  # it moved on meanwhile
        decision = await system_step(
            conn, ticket, book, answer=TIMEOUT, at=firing.now, message_id=f"timer:{timer.id}"
        )
        if not isinstance(decision, Accepted):
            log.warning("flow_timeout_refused", ticket_id=ticket.id, code=decision.code)
            return
        await save_decision(conn, decision)
        await apply_clocks(conn, decision, firing.now)
        for queue, message in messages_for(decision):
            firing.emit(queue, message, ticket_id=ticket.id)

    return fire


FIRE_HANDLERS: dict[str, timers.FireHandler] = {
    TimerKind.FIRST_RESPONSE: first_response_missed,
    TimerKind.NO_RESPONSE: no_response,
    TimerKind.NO_RESPONSE_ESCALATE: no_response_escalate,
    TimerKind.CUSTOMER_WAITING: remind_owner,
    TimerKind.NOT_RESOLVED_TODAY: not_resolved_today,
    TimerKind.REPLY_PROMISED: remind_owner,
    TimerKind.PROMISE_MISSED: promise_missed,
    TimerKind.UNPAID_24H: open_chase,
    TimerKind.SHIPMENT_72H: shipment_overdue,
    TimerKind.RETURN_WINDOW: return_window_closed,
}
