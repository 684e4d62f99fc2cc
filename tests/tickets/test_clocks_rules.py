"""The ticket's clocks as pure rules (SPEC §8): what each decision arms and cancels, when an
armed clock is due on the shop calendar, and who an escalation goes to."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.agents.roster import Agent, Roster
from shared.calendar import sample_calendar
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
    HandOff,
    Open,
    Reply,
    Resolve,
    Task,
    Ticket,
    decide,
    open_ticket,
)
from shared.tickets.clocks import (
    NO_RESPONSE,
    ORDER_KINDS,
    PROMISES,
    Arm,
    Cancel,
    Op,
    OrderTimes,
    TimerKind,
    order_timers_for,
    supervisor_for,
)
from shared.tickets.clocks import timers_for as ops_of
from shared.tickets.roles import Role, TicketKind
from shared.tickets.timing import due_at

SHOP = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=SHOP)  # a Monday, staffed
A1 = Actor("a1", "李娜", frozenset({Role.AFTERSALES}))
CALENDAR = sample_calendar()


def accepted(ticket: Ticket, command: Command) -> Accepted:
    decision = decide(ticket, command)
    assert isinstance(decision, Accepted), decision
    return decision


def opened(at: datetime = T0) -> Accepted:
    return open_ticket(
        Open(
            actor=SYSTEM,
            at=at,
            message_id="m-open",
            ticket_id="T1",
            kind=TicketKind.RETURN,
            role=Role.AFTERSALES,
        )
    )


def taken(at: datetime = T0) -> Accepted:
    return accepted(opened(at).ticket, Claim(actor=A1, at=at, message_id="m-claim"))


def test_opening_starts_the_response_clocks_of_the_routed_role() -> None:
    assert ops_of(opened()) == [
        Arm(TimerKind.NO_RESPONSE, Role.AFTERSALES, T0),
        Arm(TimerKind.NO_RESPONSE_ESCALATE, Role.AFTERSALES, T0),
    ]


def test_the_first_handler_taking_it_starts_first_response_and_the_day() -> None:
    expected = [
        Arm(TimerKind.FIRST_RESPONSE, Role.AFTERSALES, T0, "a1"),
        Arm(TimerKind.NOT_RESOLVED_TODAY, Role.AFTERSALES, T0),
    ]
    assert ops_of(taken()) == expected
    assigned = accepted(
        opened().ticket,
        Assign(actor=SYSTEM, at=T0, message_id="m-assign", agent=AgentRef("a1", "李娜")),
    )
    assert ops_of(assigned) == expected


def test_a_reply_stops_the_response_clocks_and_a_promise_arms_its_own() -> None:
    ticket = taken().ticket
    plain = accepted(ticket, Reply(actor=A1, at=T0, message_id="m-r", text="您好"))
    stopped = [
        Cancel(k)
        for k in (TimerKind.FIRST_RESPONSE, *NO_RESPONSE, TimerKind.CUSTOMER_WAITING, *PROMISES)
    ]
    assert ops_of(plain) == stopped
    by = T0 + timedelta(hours=2)
    promise = Reply(actor=A1, at=T0, message_id="m-p", text="稍等", promise_by=by)
    promised = accepted(ticket, promise)
    assert ops_of(promised) == [
        *stopped[:-2],
        Arm(TimerKind.REPLY_PROMISED, Role.AFTERSALES, by),
        Arm(TimerKind.PROMISE_MISSED, Role.AFTERSALES, by),
    ]


def test_a_follow_up_starts_the_customer_waiting_clock() -> None:
    ticket = taken().ticket
    follow_up = AttachFollowUp(actor=SYSTEM, at=T0, message_id="m-f", source="im", external_id="x")
    assert ops_of(accepted(ticket, follow_up)) == [
        Arm(TimerKind.CUSTOMER_WAITING, Role.AFTERSALES, T0)
    ]


def test_a_reopened_ticket_gets_a_new_day() -> None:
    resolved = accepted(taken().ticket, Resolve(actor=A1, at=T0, message_id="m-s", summary="ok"))
    follow_up = AttachFollowUp(actor=SYSTEM, at=T0, message_id="m-f", source="im", external_id="x")
    assert ops_of(accepted(resolved.ticket, follow_up)) == [
        Arm(TimerKind.CUSTOMER_WAITING, Role.AFTERSALES, T0),
        Arm(TimerKind.NOT_RESOLVED_TODAY, Role.AFTERSALES, T0),
    ]


def test_handoff_stops_no_response_and_resolve_close_stop_everything() -> None:
    ticket = taken().ticket
    handoff = HandOff(
        actor=A1, at=T0, message_id="m-h", handoff_id="H1", role=Role.FINANCE, task=Task("refund")
    )
    assert ops_of(accepted(ticket, handoff)) == [Cancel(k) for k in NO_RESPONSE]
    resolved = accepted(ticket, Resolve(actor=A1, at=T0, message_id="m-s", summary="ok"))
    assert ops_of(resolved) == [Cancel(k) for k in TimerKind]
    closed = accepted(resolved.ticket, Close(actor=A1, at=T0, message_id="m-c"))
    assert ops_of(closed) == [Cancel(k) for k in TimerKind]


def test_business_clocks_wait_for_the_next_staffed_morning() -> None:
    late = datetime(2026, 11, 23, 23, 29, 50, tzinfo=SHOP)
    due = due_at(CALENDAR, Arm(TimerKind.FIRST_RESPONSE, Role.AFTERSALES, late))
    assert due == datetime(2026, 11, 24, 9, 0, 20, tzinfo=SHOP)
    # Taken in the day's last half hour: "today" is tomorrow, ending at 23:30.
    day = due_at(CALENDAR, Arm(TimerKind.NOT_RESOLVED_TODAY, Role.AFTERSALES, late))
    assert day == datetime(2026, 11, 24, 23, 30, tzinfo=SHOP)
    assert due_at(CALENDAR, Arm(TimerKind.NOT_RESOLVED_TODAY, Role.AFTERSALES, T0)) == datetime(
        2026, 11, 23, 23, 30, tzinfo=SHOP
    )
    # A promise is plain time: 03:00 is 03:00 (+ the grace for the escalation).
    night = datetime(2026, 11, 24, 3, 0, tzinfo=SHOP)
    assert due_at(CALENDAR, Arm(TimerKind.REPLY_PROMISED, Role.AFTERSALES, night)) == night
    missed = due_at(CALENDAR, Arm(TimerKind.PROMISE_MISSED, Role.AFTERSALES, night))
    assert missed == night + timedelta(minutes=10)


def supervisors(*agents: Agent) -> Roster:
    return Roster(agents=agents)


S_DAY = Agent("s1", "孙主管", frozenset({Role.SUPERVISOR}), ("day",))
S_NIGHT = Agent("s2", "周主管", frozenset({Role.SUPERVISOR}), ("night",))


def test_escalations_go_to_the_supervisor_on_shift_or_the_next_one() -> None:
    roster = supervisors(S_NIGHT, S_DAY)
    assert supervisor_for(roster, CALENDAR, T0) == (S_DAY, T0)
    evening = datetime(2026, 11, 23, 18, 0, tzinfo=SHOP)
    assert supervisor_for(roster, CALENDAR, evening) == (S_NIGHT, evening)
    away = Agent("s1", "孙主管", frozenset({Role.SUPERVISOR}), ("day",), online=False)
    half_past_four = datetime(2026, 11, 23, 16, 30, tzinfo=SHOP)
    assert supervisor_for(supervisors(away, S_NIGHT), CALENDAR, half_past_four) == (
        S_NIGHT,
        datetime(2026, 11, 23, 17, 0, tzinfo=SHOP),
    )
    midnight = datetime(2026, 11, 24, 0, 30, tzinfo=SHOP)
    assert supervisor_for(roster, CALENDAR, midnight) == (
        S_DAY,
        datetime(2026, 11, 24, 9, 0, tzinfo=SHOP),
    )
    # A holiday opens at 10:00: the day-shift supervisor is due then, not at 09:00.
    national_day = datetime(2026, 10, 2, 1, 0, tzinfo=SHOP)
    assert supervisor_for(roster, CALENDAR, national_day) == (
        S_DAY,
        datetime(2026, 10, 2, 10, 0, tzinfo=SHOP),
    )
    assert supervisor_for(supervisors(), CALENDAR, T0) is None


# --- the order's clocks ---------------------------------------------------------------------

WINDOW = timedelta(days=7)
PLACED, PAID, SHIPPED, SIGNED = (T0 + timedelta(hours=h) for h in (0, 1, 30, 60))


def order_ops(kind: TicketKind, before: OrderTimes, after: OrderTimes) -> list[Op]:
    return order_timers_for(kind, Role.PRESALE, before, after, return_window=WINDOW)


def test_an_unpaid_reminder_starts_the_24h_chase_clock_when_the_order_was_placed() -> None:
    unpaid = OrderTimes(placed_at=PLACED)
    assert order_ops(TicketKind.UNPAID_REMINDER, OrderTimes(), unpaid) == [
        Arm(TimerKind.UNPAID_24H, Role.PRESALE, PLACED)
    ]
    assert order_ops(TicketKind.INQUIRY, OrderTimes(), unpaid) == []  # no chase for others
    assert order_ops(TicketKind.UNPAID_REMINDER, unpaid, unpaid) == []  # nothing new


def test_payment_ends_the_chase_and_starts_the_shipment_clock_unless_shipped() -> None:
    unpaid, paid = OrderTimes(placed_at=PLACED), OrderTimes(placed_at=PLACED, paid_at=PAID)
    assert order_ops(TicketKind.UNPAID_REMINDER, unpaid, paid) == [Cancel(TimerKind.UNPAID_24H)]
    assert order_ops(TicketKind.URGE_SHIPMENT, unpaid, paid) == [
        Cancel(TimerKind.UNPAID_24H),
        Arm(TimerKind.SHIPMENT_72H, Role.PRESALE, PAID),
    ]
    shipped_first = OrderTimes(shipped_at=SHIPPED)  # the events came out of order
    both = OrderTimes(paid_at=PAID, shipped_at=SHIPPED)
    assert order_ops(TicketKind.LOGISTICS, shipped_first, both) == [Cancel(TimerKind.UNPAID_24H)]


def test_shipping_cancels_the_72h_clock_signing_starts_the_window_closing_cancels_all() -> None:
    paid = OrderTimes(paid_at=PAID)
    shipped = OrderTimes(paid_at=PAID, shipped_at=SHIPPED)
    signed = OrderTimes(paid_at=PAID, shipped_at=SHIPPED, signed_at=SIGNED)
    assert order_ops(TicketKind.RETURN, paid, shipped) == [Cancel(TimerKind.SHIPMENT_72H)]
    assert order_ops(TicketKind.INQUIRY, shipped, signed) == []  # no return asked
    [window] = order_ops(TicketKind.RETURN, shipped, signed)
    assert window == Arm(TimerKind.RETURN_WINDOW, Role.PRESALE, SIGNED, after=WINDOW)
    assert window.rule.after == WINDOW
    closed = OrderTimes(paid_at=PAID, closed_at=SHIPPED)
    assert order_ops(TicketKind.RETURN, paid, closed) == [Cancel(k) for k in ORDER_KINDS]
    assert order_ops(TicketKind.RETURN, closed, closed) == []
