"""The ticket's clocks (SPEC §8): which timers a decision arms and cancels. Pure.

`timers_for(decision)` reads the accepted decision's events and returns what to arm or cancel;
the adapter (`shared.tickets.timing`) turns each `Arm` into a due time on the shop calendar and
applies it in the transaction that saves the decision.

| event                                 | arms (from the event's time)     | cancels          |
|---------------------------------------|----------------------------------|------------------|
| opened (routed to a role)             | no_response_2m, no_response_30m  |                  |
| claimed / assigned: first handler     | first_response (none yet),       |                  |
|                                       | not_resolved_today               |                  |
| follow-up contact attached            | customer_waiting_5m (+ not_      |                  |
|                                       | resolved_today if it reopened)   |                  |
| replied                               | reply_promised, reply_promise_   | first_response,  |
|                                       | missed (at the promised time, if | no_response_*,   |
|                                       | promised)                        | customer_waiting,|
|                                       |                                  | the promises     |
| handed off, escalated by an agent     |                                  | no_response_*    |
| resolved, closed                      |                                  | every kind       |
| the flow moved or started             | flow_timeout, if it waits now    | flow_timeout     |

Response clocks start when the customer's contact opens the ticket, so a ticket nobody takes
also breaches and escalates; they count the owning role's staffed hours (§3: paused while the
shop is closed). A reply made with a promise re-arms the promise timers; a reply without one
cancels them (the customer heard back). "Today" ends with the role's staffed stretch that
`DAY_LEAD` of staffed time after the start lies in.

The order's clocks follow what the shop knows of the order (the contact's order data and the
upstream order events, `order_timers_for`), on the calendar clock:

| the order                                   | arms                                | cancels      |
|---------------------------------------------|-------------------------------------|--------------|
| placed, not paid (unpaid-reminder tickets)  | unpaid_24h from when it was placed  |              |
| paid (urge-shipment tickets)                | shipment_72h from payment, unless   | unpaid_24h   |
|                                             | already shipped                     |              |
| shipped                                     |                                     | shipment_72h |
| signed for (return, exchange tickets)       | return_window (7 days, configurable)|              |
|                                             | from signing                        |              |
| closed (the trade was closed)               |                                     | all three    |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.agents.roster import Agent, Roster
from shared.calendar.maths import ClockKind, next_staffed, staffed
from shared.calendar.model import Calendar
from shared.tickets.decide import Accepted
from shared.tickets.events import (
    ContactAttached,
    FlowStepped,
    HandoffRequested,
    TicketAssigned,
    TicketClaimed,
    TicketClosed,
    TicketEscalated,
    TicketOpened,
    TicketReplied,
    TicketResolved,
)
from shared.tickets.model import Ticket
from shared.tickets.roles import Role, TicketKind


class TimerKind(StrEnum):
    FIRST_RESPONSE = "first_response"  # measured: met or missed (30 s target)
    NO_RESPONSE = "no_response_2m"  # a breach against the owning agent
    NO_RESPONSE_ESCALATE = "no_response_30m"  # escalate to the supervisor on shift
    CUSTOMER_WAITING = "customer_waiting_5m"  # prompt the owner: ask, promise a time
    NOT_RESOLVED_TODAY = "not_resolved_today"  # a follow-up (a promise) must exist
    REPLY_PROMISED = "reply_promised"  # remind the owner at the promised time
    PROMISE_MISSED = "reply_promise_missed"  # still no reply: escalate
    UNPAID_24H = "unpaid_24h"  # the chase opens to other pre-sale agents (追单)
    SHIPMENT_72H = "shipment_72h"  # paid, not shipped: the urge-shipment path (催发货)
    RETURN_WINDOW = "return_window"  # the no-reason return window closes (7 days)
    FLOW_TIMEOUT = "flow_timeout"  # a flow's waiting state timed out: its `timeout` move
    EVIDENCE_DUE = "evidence_due"  # the platform's deadline for the shop's evidence (小二介入)


@dataclass(frozen=True)
class Rule:
    """A kind's clock and how long it runs; `after` None: to the end of the staffed period
    (the one `DAY_LEAD` of staffed time after the start lies in)."""

    clock: ClockKind
    after: timedelta | None


# The grace after a promised time before a missed promise escalates.
PROMISE_GRACE = timedelta(minutes=10)
# "Today" for a ticket taken in a day's last half hour of staffed time is the next staffed day:
# nobody can resolve, or promise a follow-up for, a ticket taken at 23:29:50 before 23:30.
DAY_LEAD = timedelta(minutes=30)

RULES: dict[TimerKind, Rule] = {
    TimerKind.FIRST_RESPONSE: Rule(ClockKind.BUSINESS, timedelta(seconds=30)),
    TimerKind.NO_RESPONSE: Rule(ClockKind.BUSINESS, timedelta(minutes=2)),
    TimerKind.NO_RESPONSE_ESCALATE: Rule(ClockKind.BUSINESS, timedelta(minutes=30)),
    TimerKind.CUSTOMER_WAITING: Rule(ClockKind.BUSINESS, timedelta(minutes=5)),
    TimerKind.NOT_RESOLVED_TODAY: Rule(ClockKind.BUSINESS, None),
    TimerKind.REPLY_PROMISED: Rule(ClockKind.CALENDAR, timedelta(0)),
    TimerKind.PROMISE_MISSED: Rule(ClockKind.CALENDAR, PROMISE_GRACE),
    TimerKind.UNPAID_24H: Rule(ClockKind.CALENDAR, timedelta(hours=24)),
    TimerKind.SHIPMENT_72H: Rule(ClockKind.CALENDAR, timedelta(hours=72)),
    TimerKind.RETURN_WINDOW: Rule(ClockKind.CALENDAR, timedelta(days=7)),  # `after` overrides
    TimerKind.FLOW_TIMEOUT: Rule(ClockKind.CALENDAR, timedelta(0)),  # the flow's wait, `after`
    TimerKind.EVIDENCE_DUE: Rule(ClockKind.CALENDAR, timedelta(0)),  # at the platform's deadline
}
ORDER_KINDS = (TimerKind.UNPAID_24H, TimerKind.SHIPMENT_72H, TimerKind.RETURN_WINDOW)
# Whose path each order clock belongs to (§7): the customer asking where the parcel is, and a
# return or exchange checked against the window since signing.
SHIPMENT_KINDS = frozenset({TicketKind.URGE_SHIPMENT})
RETURN_KINDS = frozenset({TicketKind.RETURN, TicketKind.EXCHANGE})

NO_RESPONSE = (TimerKind.NO_RESPONSE, TimerKind.NO_RESPONSE_ESCALATE)
PROMISES = (TimerKind.REPLY_PROMISED, TimerKind.PROMISE_MISSED)


@dataclass(frozen=True)
class Arm:
    """Start `kind`'s clock at `start`, counting `role`'s staffed hours if it is business."""

    kind: TimerKind
    role: Role
    start: datetime
    agent_id: str | None = None  # whom it measures (first response)
    after: timedelta | None = None  # instead of the kind's own duration (a configured window)

    @property
    def rule(self) -> Rule:
        rule = RULES[self.kind]
        return rule if self.after is None else Rule(rule.clock, self.after)


@dataclass(frozen=True)
class Cancel:
    kind: TimerKind


Op = Arm | Cancel


def timers_for(decision: Accepted) -> list[Op]:
    """What the decision's events arm and cancel, in order (a later op on a kind wins)."""
    ticket = decision.ticket
    ops: list[Op] = []
    for event in decision.events:
        match event:
            case TicketOpened():
                ops += [Arm(kind, event.role, event.at) for kind in NO_RESPONSE]
            case TicketClaimed() | TicketAssigned() if event.became_first_handler:
                agent = event.owner.agent
                if ticket.first_response_at is None:
                    ops.append(
                        Arm(
                            TimerKind.FIRST_RESPONSE,
                            event.owner.role,
                            event.at,
                            agent.id if agent else None,
                        )
                    )
                ops.append(Arm(TimerKind.NOT_RESOLVED_TODAY, event.owner.role, event.at))
            case ContactAttached():
                ops.append(Arm(TimerKind.CUSTOMER_WAITING, event.owner.role, event.at))
                if event.reopened:
                    ops.append(Arm(TimerKind.NOT_RESOLVED_TODAY, event.owner.role, event.at))
            case TicketReplied():
                ops += [
                    Cancel(kind)
                    for kind in (TimerKind.FIRST_RESPONSE, *NO_RESPONSE, TimerKind.CUSTOMER_WAITING)
                ]
                if event.promise_by is None:
                    ops += [Cancel(kind) for kind in PROMISES]
                else:
                    role = ticket.owner.role
                    ops += [Arm(kind, role, event.promise_by) for kind in PROMISES]
            case HandoffRequested() | TicketEscalated():
                ops += [Cancel(kind) for kind in NO_RESPONSE]
            case TicketResolved() | TicketClosed():
                ops += [Cancel(kind) for kind in TimerKind]
        if isinstance(event, FlowStepped) or (
            isinstance(event, TicketClaimed | TicketAssigned) and event.became_first_handler
        ):
            ops += _flow_wait(ticket)
    return ops


def _flow_wait(ticket: Ticket) -> list[Op]:
    """The flow moved (or started): its old wait is over; a waiting state starts its own."""
    position = ticket.flow
    if position is None:  # no flow: no wait ever armed
        return []
    ops: list[Op] = [Cancel(TimerKind.FLOW_TIMEOUT)]
    if position.timeout is not None and position.end_reason is None:
        start, after = position.entered_at, position.timeout
        ops.append(Arm(TimerKind.FLOW_TIMEOUT, ticket.first_handler_role, start, after=after))
    return ops


@dataclass(frozen=True)
class OrderTimes:
    """What the shop knows of an order's life: each time once known, never moved."""

    placed_at: datetime | None = None
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    signed_at: datetime | None = None
    closed_at: datetime | None = None


def order_timers_for(
    kind: TicketKind, role: Role, before: OrderTimes, after: OrderTimes, *, return_window: timedelta
) -> list[Op]:
    """What learning `after` (having known `before`) arms and cancels on a ticket of `kind` about
    the order. A new ticket passes an empty `before`."""
    if after.closed_at is not None:
        return [Cancel(k) for k in ORDER_KINDS] if before.closed_at is None else []
    ops: list[Op] = []
    unpaid = after.paid_at is None and after.placed_at is not None
    if kind is TicketKind.UNPAID_REMINDER and unpaid and before.placed_at is None:
        assert after.placed_at is not None
        ops.append(Arm(TimerKind.UNPAID_24H, role, after.placed_at))
    if after.paid_at is not None and before.paid_at is None:
        ops.append(Cancel(TimerKind.UNPAID_24H))
        if after.shipped_at is None and kind in SHIPMENT_KINDS:
            ops.append(Arm(TimerKind.SHIPMENT_72H, role, after.paid_at))
    if after.shipped_at is not None and before.shipped_at is None:
        ops.append(Cancel(TimerKind.SHIPMENT_72H))
    if after.signed_at is not None and before.signed_at is None and kind in RETURN_KINDS:
        ops.append(Arm(TimerKind.RETURN_WINDOW, role, after.signed_at, after=return_window))
    return ops


def supervisor_for(
    roster: Roster, calendar: Calendar, at: datetime
) -> tuple[Agent, datetime] | None:
    """Who an escalation at `at` goes to, and from when: the supervisor on shift and online now
    (lowest id first), else the one whose shift next brings them to work on a day the calendar
    staffs supervisors (checked a week ahead). None: the roster has no supervisor for it."""
    supervisors = sorted(
        (a for a in roster.agents if Role.SUPERVISOR in a.roles), key=lambda a: a.id
    )
    if staffed(calendar, Role.SUPERVISOR, at):
        for agent in supervisors:
            if agent.online and roster.on_shift(agent, at):
                return agent, at
    tz = roster.timezone
    today = at.astimezone(tz).date()
    upcoming: list[tuple[datetime, str, Agent]] = []
    for agent in supervisors:
        for shift in (s for s in roster.shifts if s.name in agent.shifts):
            for days in range(8):
                day = today + timedelta(days=days)
                start = datetime.combine(day, shift.start, tzinfo=tz)
                end = datetime.combine(day, shift.end, tzinfo=tz)
                if end <= at:
                    continue
                # The calendar may open later that day (a holiday's reduced hours).
                begins = next_staffed(calendar, Role.SUPERVISOR, max(start, at))
                if at < begins < end:  # not now: whoever is on shift now is offline
                    upcoming.append((begins, agent.id, agent))
                    break
    if not upcoming:
        return None
    begins, _, agent = min(upcoming, key=lambda u: (u[0], u[1]))
    return agent, begins
